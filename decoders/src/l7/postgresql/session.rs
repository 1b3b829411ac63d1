//! PostgreSQL frontend/backend protocol v3: the per-flow session.
//!
//! Framing: towards the server a message starting with a zero byte is a
//! start-up packet (no frontend type byte is zero, and a start-up length
//! is below 16 MiB), anything else a tagged message; towards the client
//! every message is tagged, except the one-byte answer to an
//! `SSLRequest`/`GSSENCRequest`, read when such a request waits.
//!
//! Pairing (§55.2): requests wait in order; every backend message is part
//! of the response to the oldest waiting request, and `ReadyForQuery`
//! ends it. An extended-protocol batch is open until its `Sync`;
//! messages the server sends before that (after a `Flush`) belong to it.
//! An `ErrorResponse` of severity `FATAL` or `PANIC`, or any error during
//! start-up, ends its call at once (the server closes the connection
//! without `ReadyForQuery`). Backend messages with no request waiting
//! (a capture that starts mid-connection) make a call without request
//! fields, ended by the next `ReadyForQuery`; server-initiated messages
//! (`ParameterStatus`, `NotificationResponse`, `NoticeResponse`,
//! `Authentication*`, `BackendKeyData`) do not start one.
//!
//! Prepared statements: the text of each named `Parse` is remembered,
//! cut to [`MAX_TEXT`](super::MAX_TEXT) bytes, for at most
//! [`MAX_STATEMENTS`] names per connection (the oldest is forgotten
//! first); `Close` of a statement forgets it.
//!
//! Limits: a message is buffered whole up to `max_message_bytes`. A
//! longer message whose useful fields come first (`Query`, `Parse`,
//! `Bind`, `FunctionCall`, `CopyData`, `DataRow`, `RowDescription`,
//! notices…) is read from its first [`PREFIX`] bytes and the rest is
//! skipped as it arrives; any other longer message ends the direction
//! with `L7Error::TooLarge`. At most `max_pending` requests wait (the
//! oldest leaves as a `Timeout` call). A length below 4 or a type byte
//! of the other direction ends the direction with
//! `L7Error::Malformed("postgresql_…")`.
//!
//! Gaps, and the first bytes of each direction (a capture may start
//! mid-message): framing starts at the first offset where a message
//! probes as PostgreSQL (a start-up packet, or a tagged message whose
//! body has its type's exact layout followed by a plausible header; see
//! the module's `# Probe`). Bytes before it are consumed unread. A gap
//! that falls inside a message being skipped only shortens the skip.
//! A gap towards the server closes the open extended batch (its `Sync`
//! may be lost), so the next `ReadyForQuery` still pairs.
//!
//! Times: `request_ts` and `response_first_ts` are the capture times of
//! the first byte of the first message (remembered when a `parse` leaves
//! a split message unconsumed), `response_end_ts` that of the end.

use std::collections::VecDeque;

use super::parser::{self, Initial, ParseError, HEADER_LEN};
use super::MAX_TEXT;
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, Probe, SessionConfig, Transport};

/// Named prepared statements remembered per connection.
pub const MAX_STATEMENTS: usize = 256;
/// Longest statement name kept (`NAMEDATALEN` - 1 in the server).
const MAX_NAME: usize = 63;
/// Bytes of a message longer than `max_message_bytes` read before the
/// rest is skipped.
pub const PREFIX: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Startup,
    Ssl,
    GssEnc,
    Query,
    Extended,
    FunctionCall,
    /// Complete when sent: no answer comes.
    Cancel,
    /// A response nothing asked for (capture started mid-connection).
    Orphan,
}

/// A request (and the response so far) waiting for its end.
#[derive(Debug)]
struct Pending {
    kind: Kind,
    /// Capture time of the request's first byte.
    ts: Option<i64>,
    call: Call,
    /// Extended batch: what it holds, for `request_type`.
    has_execute: bool,
    has_parse: bool,
    first_message: Option<&'static str>,
    statement: Option<String>,
    // Response details, turned into attributes when the call ends.
    command_tag: Option<String>,
    severity: Option<String>,
    auth: Option<String>,
    backend_pid: Option<u32>,
    server_version: Option<String>,
    transaction: Option<u8>,
    /// `SSLRequest`/`GSSENCRequest`: its one-byte answer was read.
    answered: bool,
}

impl Pending {
    fn new(kind: Kind, ts: Option<i64>) -> Self {
        let mut call = Call::new(L7Protocol::Postgresql);
        call.request_ts = ts;
        Pending {
            kind,
            ts,
            call,
            has_execute: false,
            has_parse: false,
            first_message: None,
            statement: None,
            command_tag: None,
            severity: None,
            auth: None,
            backend_pid: None,
            server_version: None,
            transaction: None,
            answered: false,
        }
    }

    /// Counts a response message of `len` bytes whose first byte came at `ts`.
    fn answer(&mut self, len: usize, ts: i64) {
        if self.call.response_first_ts.is_none() {
            self.call.response_first_ts = Some(ts);
        }
        self.call.response_bytes += len as u64;
    }

    fn request_type(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Startup => Some("Startup"),
            Kind::Ssl => Some("SSLRequest"),
            Kind::GssEnc => Some("GSSENCRequest"),
            Kind::Query => Some("Query"),
            Kind::FunctionCall => Some("FunctionCall"),
            Kind::Cancel => Some("CancelRequest"),
            Kind::Extended if self.has_execute => Some("Execute"),
            Kind::Extended if self.has_parse => Some("Parse"),
            Kind::Extended => Some(self.first_message.unwrap_or("Sync")),
            Kind::Orphan => None,
        }
    }

    /// The finished call: request type, version and sorted attributes.
    fn into_call(self, version: Option<&str>) -> Call {
        let request_type = self.request_type();
        let mut call = self.call;
        call.request_type = request_type.map(str::to_owned);
        if call.version.is_none() && self.kind != Kind::Orphan {
            call.version = version.map(str::to_owned);
        }
        let attrs = &mut call.attributes;
        let mut push = |k: &str, v: String| attrs.push((format!("postgresql.{k}"), v));
        if let Some(tag) = self.command_tag {
            if let Some(rows) = parser::tag_rows(tag.as_bytes()) {
                push("rows", rows.to_string());
            }
            push("command_tag", tag);
        }
        if let Some(s) = self.statement {
            push("statement", s);
        }
        if let Some(s) = self.severity {
            push("severity", s);
        }
        if let Some(a) = self.auth {
            push("auth", a);
        }
        if let Some(pid) = self.backend_pid {
            push("backend_pid", pid.to_string());
        }
        if let Some(v) = self.server_version {
            push("server_version", v);
        }
        if let Some(t) = self.transaction {
            let t = match t {
                b'I' => "idle".to_owned(),
                b'T' => "in_transaction".to_owned(),
                b'E' => "failed".to_owned(),
                other => parser::text(&[other], 1),
            };
            push("transaction", t);
        }
        attrs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        call
    }
}

/// Where framing can start after a gap or at a direction's first bytes.
enum Sync {
    At(usize),
    NeedMore(usize),
    Nothing,
}

/// What one framing step did.
enum Step {
    Consumed(usize),
    NeedMore,
}

/// A PostgreSQL connection's decoder.
#[derive(Debug)]
pub struct Session {
    max_message: usize,
    max_pending: usize,
    /// Requests sent whole (up to `Sync` for a batch), oldest first.
    pending: VecDeque<Pending>,
    /// The extended batch before its `Sync`.
    building: Option<Box<Pending>>,
    /// A response nothing asked for.
    orphan: Option<Box<Pending>>,
    /// Named prepared statements and their text, oldest first.
    statements: VecDeque<(String, String)>,
    /// Protocol version of the `StartupMessage`.
    version: Option<String>,
    /// TLS or GSSAPI encryption was accepted: bytes are consumed unread.
    encrypted: bool,
    /// Per direction: body bytes of a long message still to skip.
    skip: [usize; 2],
    /// Per direction: look for a message boundary before framing.
    resync: [bool; 2],
    /// Per direction: capture time of the first unconsumed byte.
    partial_ts: [Option<i64>; 2],
    malformed: u64,
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

/// `SQLSTATE: message`, cut to `MAX_TEXT` bytes.
fn exception_text(f: &parser::ErrorFields<'_>) -> Option<String> {
    let mut s = Vec::with_capacity(MAX_TEXT);
    if let Some(code) = f.code {
        s.extend_from_slice(code.get(..MAX_TEXT).unwrap_or(code));
    }
    if let Some(msg) = f.message {
        if !s.is_empty() {
            s.extend_from_slice(b": ");
        }
        s.extend_from_slice(msg.get(..MAX_TEXT).unwrap_or(msg));
    }
    if s.is_empty() {
        None
    } else {
        Some(parser::text(&s, MAX_TEXT))
    }
}

/// The SQLSTATE class as a number when both its characters are digits,
/// else 1.
fn sqlstate_code(code: &[u8]) -> i32 {
    match code {
        [a, b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => i32::from(a - b'0') * 10 + i32::from(b - b'0'),
        _ => 1,
    }
}

/// Classes 08, 53, 57, 58 and XX are the server's trouble, the rest the
/// client's.
fn sqlstate_status(code: &[u8]) -> CallStatus {
    match code.get(..2) {
        Some(b"08" | b"53" | b"57" | b"58" | b"XX") => CallStatus::ServerError,
        _ => CallStatus::ClientError,
    }
}

impl Session {
    #[must_use]
    pub fn new(cfg: &SessionConfig, _transport: Transport) -> Self {
        Session {
            // A message needs its header at least.
            max_message: cfg.max_message_bytes.max(HEADER_LEN + 1),
            // Zero would drop every request at once; one is the least that works.
            max_pending: cfg.max_pending.max(1),
            pending: VecDeque::new(),
            building: None,
            orphan: None,
            statements: VecDeque::new(),
            version: None,
            encrypted: false,
            skip: [0; 2],
            // The capture may start mid-message in either direction.
            resync: [true; 2],
            partial_ts: [None; 2],
            malformed: 0,
        }
    }

    /// Messages that ended a direction as malformed so far.
    #[must_use]
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Requests waiting for their response (the open batch included).
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len() + usize::from(self.building.is_some())
    }

    /// Named prepared statements remembered.
    #[must_use]
    pub fn statements(&self) -> usize {
        self.statements.len()
    }

    fn emit(&self, p: Pending, out: &mut Vec<Call>) {
        out.push(p.into_call(self.version.as_deref()));
    }

    /// A call that got no `ReadyForQuery`: `Timeout`, unless it already
    /// failed (an error, an unreadable answer).
    fn emit_timeout(&self, mut p: Pending, out: &mut Vec<Call>) {
        if p.kind != Kind::Orphan && p.call.status == CallStatus::Ok {
            p.call.status = CallStatus::Timeout;
        }
        self.emit(p, out);
    }

    fn push_pending(&mut self, p: Pending, out: &mut Vec<Call>) {
        while self.pending.len() >= self.max_pending {
            match self.pending.pop_front() {
                Some(old) => self.emit_timeout(old, out),
                None => break,
            }
        }
        self.pending.push_back(p);
    }

    /// Closes the open extended batch: it now waits for `ReadyForQuery`.
    fn close_batch(&mut self, out: &mut Vec<Call>) {
        if let Some(b) = self.building.take() {
            self.push_pending(*b, out);
        }
    }

    /// The call a backend message belongs to: the oldest waiting request,
    /// else the open batch, else the response-only call (made when `create`).
    fn target(&mut self, create: bool) -> Option<&mut Pending> {
        if !self.pending.is_empty() {
            return self.pending.front_mut();
        }
        if self.building.is_some() {
            return self.building.as_deref_mut();
        }
        if self.orphan.is_none() && create {
            self.orphan = Some(Box::new(Pending::new(Kind::Orphan, None)));
        }
        self.orphan.as_deref_mut()
    }

    /// Removes and returns the call [`Session::target`] would give.
    fn take_target(&mut self) -> Option<Pending> {
        if let Some(p) = self.pending.pop_front() {
            return Some(p);
        }
        if let Some(b) = self.building.take() {
            return Some(*b);
        }
        self.orphan.take().map(|o| *o)
    }

    fn remember_statement(&mut self, name: &[u8], sql: &[u8]) {
        let name = parser::text(name, MAX_NAME);
        let sql = parser::text(sql, MAX_TEXT);
        if let Some(e) = self.statements.iter_mut().find(|(n, _)| *n == name) {
            e.1 = sql;
            return;
        }
        if self.statements.len() >= MAX_STATEMENTS {
            self.statements.pop_front();
        }
        self.statements.push_back((name, sql));
    }

    fn statement_text(&self, name: &[u8]) -> Option<&str> {
        let name = name.get(..MAX_NAME).unwrap_or(name);
        self.statements.iter().find(|(n, _)| n.as_bytes() == name).map(|(_, t)| t.as_str())
    }

    fn forget_statement(&mut self, name: &[u8]) {
        let name = name.get(..MAX_NAME).unwrap_or(name);
        self.statements.retain(|(n, _)| n.as_bytes() != name);
    }

    // ---- towards the server ---------------------------------------------

    fn on_initial(&mut self, msg: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<(), ParseError> {
        let len = msg.len() as u64;
        match parser::parse_initial(msg)? {
            Initial::Startup { major, minor, params } => {
                self.version = Some(format!("{major}.{minor}"));
                let mut p = Pending::new(Kind::Startup, Some(ts));
                p.call.request_bytes = len;
                let (mut user, mut database) = (None, None);
                for (name, value) in params {
                    let key = match name {
                        b"user" => "user",
                        b"database" => "database",
                        b"application_name" => "application_name",
                        _ => continue,
                    };
                    let value = parser::text(value, MAX_TEXT);
                    match key {
                        "user" => user = Some(value.clone()),
                        "database" => database = Some(value.clone()),
                        _ => {}
                    }
                    p.call.attributes.push((format!("postgresql.{key}"), value));
                }
                // The server's default database is the user's name.
                p.call.request_resource = database.or(user);
                self.close_batch(out);
                self.push_pending(p, out);
            }
            initial @ (Initial::SslRequest | Initial::GssEncRequest) => {
                let kind = if initial == Initial::SslRequest { Kind::Ssl } else { Kind::GssEnc };
                let mut p = Pending::new(kind, Some(ts));
                p.call.request_bytes = len;
                self.push_pending(p, out);
            }
            Initial::Cancel { pid } => {
                // No answer comes: the call is whole when sent.
                let mut p = Pending::new(Kind::Cancel, Some(ts));
                p.call.request_bytes = len;
                p.backend_pid = Some(pid);
                self.emit(p, out);
            }
        }
        Ok(())
    }

    fn on_frontend(&mut self, tag: u8, body: &[u8], len: usize, ts: i64, out: &mut Vec<Call>) {
        let len64 = len as u64;
        match tag {
            b'Q' => {
                self.close_batch(out);
                let mut p = Pending::new(Kind::Query, Some(ts));
                p.call.request_bytes = len64;
                p.call.request_resource = Some(parser::text(parser::query_text(body), MAX_TEXT));
                self.push_pending(p, out);
            }
            b'F' => {
                self.close_batch(out);
                let mut p = Pending::new(Kind::FunctionCall, Some(ts));
                p.call.request_bytes = len64;
                self.push_pending(p, out);
            }
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' | b'S' => {
                // Statement bookkeeping first: it needs `&mut self`.
                let mut resource = None;
                let mut statement = None;
                match tag {
                    b'P' => {
                        let (name, sql) = parser::parse_message(body);
                        if !name.is_empty() {
                            self.remember_statement(name, sql);
                            statement = Some(name);
                        }
                        resource = Some(parser::text(sql, MAX_TEXT));
                    }
                    b'B' => {
                        let (_, name) = parser::bind_message(body);
                        if !name.is_empty() {
                            resource = self.statement_text(name).map(str::to_owned);
                            statement = Some(name);
                        }
                    }
                    b'C' => {
                        if let (b'S', name) = parser::target(body) {
                            self.forget_statement(name);
                        }
                    }
                    _ => {}
                }
                let b = self.building.get_or_insert_with(|| Box::new(Pending::new(Kind::Extended, Some(ts))));
                b.call.request_bytes += len64;
                if b.first_message.is_none() {
                    b.first_message = Some(match tag {
                        b'P' => "Parse",
                        b'B' => "Bind",
                        b'D' => "Describe",
                        b'E' => "Execute",
                        b'C' => "Close",
                        b'H' => "Flush",
                        _ => "Sync",
                    });
                }
                match tag {
                    b'P' => b.has_parse = true,
                    b'E' => b.has_execute = true,
                    _ => {}
                }
                // The first Parse's text, else that of the first Bind's statement.
                if b.call.request_resource.is_none() && (tag == b'P' || !b.has_parse) {
                    b.call.request_resource = resource;
                }
                if b.statement.is_none() {
                    b.statement = statement.map(|n| parser::text(n, MAX_NAME));
                }
                if tag == b'S' {
                    self.close_batch(out);
                }
            }
            // Password, SASL and GSS messages: counted, never read.
            b'p' => {
                if let Some(p) = self.pending.back_mut().filter(|p| p.kind == Kind::Startup) {
                    p.call.request_bytes += len64;
                }
            }
            // COPY FROM STDIN data belongs to the query that started it.
            b'd' | b'c' | b'f' => {
                if let Some(p) = self.pending.back_mut() {
                    p.call.request_bytes += len64;
                }
            }
            // Terminate, and anything else: not a call.
            _ => {}
        }
    }

    // ---- towards the client ---------------------------------------------

    fn on_backend(&mut self, tag: u8, body: &[u8], len: usize, first_ts: i64, ts: i64, out: &mut Vec<Call>) {
        match tag {
            b'Z' => {
                let mut p = self.take_target().unwrap_or_else(|| Pending::new(Kind::Orphan, None));
                p.answer(len, first_ts);
                p.call.response_end_ts = Some(ts);
                p.transaction = parser::ready_status(body);
                self.emit(p, out);
            }
            b'E' => {
                let f = parser::error_fields(body);
                let Some(p) = self.target(true) else { return };
                p.answer(len, first_ts);
                if p.call.response_exception.is_none() {
                    let code = f.code.unwrap_or_default();
                    p.call.response_code = Some(sqlstate_code(code));
                    p.call.status = sqlstate_status(code);
                    p.call.response_exception = exception_text(&f);
                    p.severity = f.severity.map(|s| parser::text(s, MAX_NAME));
                }
                let ends = p.kind == Kind::Startup || matches!(f.severity, Some(b"FATAL" | b"PANIC"));
                if ends {
                    // No ReadyForQuery follows: the server closes.
                    if let Some(mut p) = self.take_target() {
                        p.call.response_end_ts = Some(ts);
                        self.emit(p, out);
                    }
                }
            }
            // Server-initiated or start-up messages: part of the call under
            // way, never the start of one.
            b'S' | b'A' | b'N' | b'R' | b'K' | b'v' => {
                let Some(p) = self.target(false) else { return };
                p.answer(len, first_ts);
                match tag {
                    b'S' => {
                        let (name, value) = parser::parameter_status(body);
                        if name == b"server_version" && p.kind == Kind::Startup {
                            p.server_version = Some(parser::text(value, MAX_NAME));
                        }
                    }
                    b'R' if p.auth.is_none() => {
                        p.auth = parser::auth_code(body).map(|code| match code {
                            0 => "ok".to_owned(),
                            2 => "kerberos".to_owned(),
                            3 => "cleartext".to_owned(),
                            5 => "md5".to_owned(),
                            7 => "gss".to_owned(),
                            9 => "sspi".to_owned(),
                            10 => format!("sasl:{}", parser::text(parser::sasl_mechanism(body), MAX_NAME)),
                            other => format!("code:{other}"),
                        });
                    }
                    b'K' => p.backend_pid = parser::backend_pid(body),
                    _ => {}
                }
            }
            _ => {
                let Some(p) = self.target(true) else { return };
                p.answer(len, first_ts);
                if tag == b'C' {
                    p.command_tag = Some(parser::text(parser::command_tag(body), MAX_TEXT));
                }
            }
        }
    }

    /// Whether the next byte towards the client answers an `SSLRequest`
    /// or `GSSENCRequest`.
    fn awaits_answer(&self) -> bool {
        self.pending.front().is_some_and(|p| matches!(p.kind, Kind::Ssl | Kind::GssEnc) && !p.answered)
    }

    /// The one-byte answer to an `SSLRequest` or `GSSENCRequest`. Any
    /// byte but the two answers is left for framing (an old server sends
    /// an `ErrorResponse`), and the request waits for it as `Unparsed`.
    fn on_answer(&mut self, byte: u8, ts: i64, out: &mut Vec<Call>) -> bool {
        let Some(mut p) = self.pending.pop_front() else { return false };
        let key = if p.kind == Kind::Ssl { "postgresql.ssl" } else { "postgresql.gssenc" };
        let accept = if p.kind == Kind::Ssl { b'S' } else { b'G' };
        p.answer(1, ts);
        p.call.response_end_ts = Some(ts);
        p.call.response_code = Some(i32::from(byte));
        let consumed = if byte == accept {
            p.call.attributes.push((key.to_owned(), "accepted".to_owned()));
            self.encrypted = true;
            true
        } else if byte == b'N' {
            p.call.attributes.push((key.to_owned(), "refused".to_owned()));
            true
        } else {
            p.call.status = CallStatus::Unparsed;
            p.call.response_bytes = 0;
            p.call.response_first_ts = None;
            p.call.response_end_ts = None;
            p.answered = true;
            self.pending.push_front(p);
            return false;
        };
        self.emit(p, out);
        consumed
    }

    /// Frames one message at the start of `rest`.
    fn step(
        &mut self,
        dir: Direction,
        rest: &[u8],
        first_ts: i64,
        ts: i64,
        out: &mut Vec<Call>,
    ) -> Result<Step, L7Error> {
        let d = dir_index(dir);
        let Some(&first) = rest.first() else { return Ok(Step::NeedMore) };
        if dir == Direction::ToClient && self.awaits_answer() {
            if self.on_answer(first, first_ts, out) {
                return Ok(Step::Consumed(1));
            }
            return Ok(Step::Consumed(0));
        }
        if dir == Direction::ToServer && first == 0x16 && self.pending.iter().any(|p| p.kind == Kind::Ssl) {
            // A TLS record before the answer was seen: the server said yes.
            // The record is left for the caller's detection.
            self.encrypted = true;
            return Ok(Step::Consumed(0));
        }
        if dir == Direction::ToServer && first == 0 {
            let (len, _) = match parser::untagged_header(rest) {
                Ok(h) => h,
                Err(ParseError::Truncated) => return Ok(Step::NeedMore),
                Err(e) => return Err(self.malformed_error(e)),
            };
            let Some(msg) = rest.get(..len) else { return Ok(Step::NeedMore) };
            self.on_initial(msg, first_ts, out).map_err(|e| self.malformed_error(e))?;
            return Ok(Step::Consumed(len));
        }
        let (tag, total) = match parser::tagged_header(rest) {
            Ok(h) => h,
            Err(ParseError::Truncated) => return Ok(Step::NeedMore),
            Err(e) => return Err(self.malformed_error(e)),
        };
        let tag_ok = match dir {
            Direction::ToServer => parser::is_frontend_tag(tag),
            Direction::ToClient => parser::is_backend_tag(tag),
        };
        if !tag_ok {
            return Err(self.malformed_error(ParseError::BadTag));
        }
        if total > self.max_message && !parser::streamable(dir, tag) {
            return Err(L7Error::TooLarge);
        }
        let (body, consumed) = match rest.get(HEADER_LEN..total) {
            Some(body) => (body, total),
            None if total <= self.max_message => return Ok(Step::NeedMore),
            None if rest.len() < PREFIX.min(self.max_message) => return Ok(Step::NeedMore),
            None => {
                self.skip[d] = total - rest.len();
                (rest.get(HEADER_LEN..).unwrap_or_default(), rest.len())
            }
        };
        match dir {
            Direction::ToServer => self.on_frontend(tag, body, total, first_ts, out),
            Direction::ToClient => self.on_backend(tag, body, total, first_ts, ts, out),
        }
        Ok(Step::Consumed(consumed))
    }

    fn malformed_error(&mut self, e: ParseError) -> L7Error {
        self.malformed += 1;
        L7Error::Malformed(e.kind())
    }

    /// The first offset where framing can start in `data`.
    fn find_sync(&self, dir: Direction, data: &[u8]) -> Sync {
        for off in 0..data.len() {
            let Some(rest) = data.get(off..) else { break };
            let p = match rest.first() {
                Some(0) if dir == Direction::ToServer => super::probe(rest, dir, Transport::Tcp),
                _ => super::probe_tagged(rest, dir, self.max_message),
            };
            match p {
                Probe::Match => return Sync::At(off),
                Probe::NeedMore => return Sync::NeedMore(off),
                Probe::NoMatch => {}
            }
        }
        Sync::Nothing
    }
}

impl Decoder for Session {
    /// After an accepted `SSLRequest` or `GSSENCRequest` the rest is
    /// encrypted: the caller detects TLS in it.
    fn switched(&self) -> bool {
        self.encrypted
    }

    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        if self.encrypted {
            return Ok(data.len());
        }
        let d = dir_index(dir);
        let first_ts = self.partial_ts[d].take().unwrap_or(ts);
        let mut pos = self.skip[d].min(data.len());
        self.skip[d] -= pos;
        if self.skip[d] > 0 {
            return Ok(pos);
        }
        if dir == Direction::ToClient && self.awaits_answer() {
            // The answer byte is a boundary.
            self.resync[d] = false;
        }
        if self.resync[d] {
            match self.find_sync(dir, data.get(pos..).unwrap_or_default()) {
                Sync::At(off) => {
                    self.resync[d] = false;
                    pos += off;
                }
                Sync::NeedMore(off) => {
                    let at = pos + off;
                    self.partial_ts[d] = Some(if at == 0 { first_ts } else { ts });
                    return Ok(at);
                }
                Sync::Nothing => return Ok(data.len()),
            }
        }
        while let Some(rest) = data.get(pos..) {
            if self.encrypted {
                // Stop at the switch: what follows is TLS (see `switched`).
                return Ok(pos);
            }
            if rest.is_empty() || self.skip[d] > 0 {
                break;
            }
            let msg_ts = if pos == 0 { first_ts } else { ts };
            match self.step(dir, rest, msg_ts, ts, out)? {
                Step::Consumed(n) => pos += n,
                Step::NeedMore => break,
            }
        }
        if pos < data.len() {
            self.partial_ts[d] = Some(if pos == 0 { first_ts } else { ts });
        }
        Ok(pos)
    }

    fn on_gap(&mut self, dir: Direction, len: u32) {
        let d = dir_index(dir);
        self.partial_ts[d] = None;
        let len = len as usize;
        if self.skip[d] >= len && self.skip[d] > 0 {
            // The lost bytes were inside a message being skipped.
            self.skip[d] -= len;
            return;
        }
        self.skip[d] = 0;
        self.resync[d] = true;
        if dir == Direction::ToServer {
            // Its Sync may be lost: let the next ReadyForQuery end it.
            if let Some(b) = self.building.take() {
                // One over `max_pending` at most: the next push trims.
                self.pending.push_back(*b);
            }
        }
    }

    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending.get(i).is_some_and(|p| p.ts.is_some_and(|t| t < older_than)) {
                if let Some(p) = self.pending.remove(i) {
                    self.emit_timeout(p, out);
                }
            } else {
                i += 1;
            }
        }
        if self.building.as_ref().is_some_and(|b| b.ts.is_some_and(|t| t < older_than)) {
            if let Some(b) = self.building.take() {
                self.emit_timeout(*b, out);
            }
        }
        if self.orphan.as_ref().is_some_and(|o| o.call.response_first_ts.is_some_and(|t| t < older_than)) {
            if let Some(o) = self.orphan.take() {
                self.emit(*o, out);
            }
        }
    }

    fn finish(&mut self, _end_ts: i64, out: &mut Vec<Call>) {
        let pending: Vec<Pending> = self.pending.drain(..).collect();
        for p in pending {
            self.emit_timeout(p, out);
        }
        if let Some(b) = self.building.take() {
            self.emit_timeout(*b, out);
        }
        if let Some(o) = self.orphan.take() {
            self.emit(*o, out);
        }
        self.partial_ts = [None; 2];
        self.skip = [0; 2];
    }
}
