//! The per-flow HTTP/1.x decoder: message framing of both byte streams
//! (RFC 9112 §6), request/response pairing, gaps, limits, and turning
//! message heads into [`Call`]s. Bodies are skipped as they arrive and
//! never buffered.

use std::collections::VecDeque;

use super::parser::{self, ContentLength, HeadFields, RequestHead, ResponseHead, TransferEncoding, MAX_HEADERS};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, Probe, SessionConfig, Transport};

/// Header fields whose values are never kept, whatever `attr_headers` says.
pub const REDACTED_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// Longest start-line prefix looked at when searching a message start.
const START_LINE_LIMIT: usize = 8192;

/// Shortest possible response (`HTTP/1.1 200\n\n`): a smaller gap between
/// messages cannot have swallowed one.
const MIN_RESPONSE_BYTES: u32 = 14;

/// Where the next bytes of a chunked body are (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// A chunk-size line; `scanned` bytes of it were searched for its LF.
    Size { scanned: usize },
    /// Chunk data still to skip.
    Data(u64),
    /// The CRLF after chunk data; `cr` once its CR was seen.
    DataEnd { cr: bool },
    /// The trailer section: bytes in the current line and in the section.
    Trailers { line_len: usize, total: usize },
}

/// How the rest of a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Content-Length: bytes still to skip.
    Length(u64),
    Chunked(Chunk),
    /// A response without length: everything until the connection closes.
    UntilClose,
}

/// What a direction expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No byte seen yet: a message start, or a capture that began mid-flow.
    Start,
    /// A message head (start-line and header section).
    Head,
    Body(Body),
    /// Out of sync (gap, mid-flow start, false start): bytes are skipped up
    /// to a plausible start-line. `line_start`: the next byte begins a line.
    Resync {
        line_start: bool,
    },
    /// Gave up after an error; everything is ignored.
    Dead,
}

/// The state of one direction.
#[derive(Debug)]
struct Side {
    phase: Phase,
    /// Errors in the current message are reported (else the direction
    /// resynchronises): false for a message found while resynchronising.
    strict: bool,
    /// Time of the first byte of the head being received.
    head_ts: Option<i64>,
    /// Length of the incomplete head at the last parse attempt, and how
    /// far it was searched for its ending empty line: the head is parsed
    /// again only once it has doubled or an empty line arrived, so a head
    /// fed byte by byte costs linear time, not quadratic.
    head_tried: usize,
    head_scanned: usize,
    /// Time of the last bytes seen.
    last_ts: Option<i64>,
    /// What the incomplete head shows so far (start-line and complete
    /// fields), kept in case it never completes (snap length, gap, limit).
    salvage: Option<Box<Call>>,
}

impl Side {
    fn new() -> Self {
        Side {
            phase: Phase::Start,
            strict: true,
            head_ts: None,
            head_tried: 0,
            head_scanned: 0,
            last_ts: None,
            salvage: None,
        }
    }

    fn reset_head(&mut self) {
        self.head_ts = None;
        self.head_tried = 0;
        self.head_scanned = 0;
        self.salvage = None;
    }

    /// Whether the incomplete head `rest`, presented again with more bytes,
    /// is worth handing to the parser.
    fn worth_parsing(&mut self, rest: &[u8]) -> bool {
        let (tried, scanned) = (self.head_tried, self.head_scanned);
        self.head_scanned = rest.len();
        if tried == 0 || rest.len() < scanned || rest.len() >= tried.saturating_mul(2) {
            return true;
        }
        parser::has_empty_line(&rest[scanned.saturating_sub(3)..])
    }
}

/// Request methods that change how the response is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Head,
    Connect,
    Other,
}

impl Method {
    fn of(method: &str) -> Self {
        match method {
            "HEAD" => Method::Head,
            "CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }
}

/// A request waiting for its response (or, at the front of the queue when
/// `Session::answering`, the call whose response body is being skipped).
#[derive(Debug)]
struct Pending {
    id: u64,
    method: Method,
    /// Its response may have been lost in a gap of the server's bytes.
    gap: bool,
    call: Call,
}

/// An HTTP/1.x session: one per TCP flow. See the module documentation of
/// `http1` for the behaviour.
#[derive(Debug)]
pub struct Session {
    max_message_bytes: usize,
    max_pending: usize,
    /// `(lower-case header name, attribute key)` of `attr_headers`, less
    /// the redacted ones.
    attr_headers: Vec<(String, String)>,
    transport: Transport,
    client: Side,
    server: Side,
    /// Requests in order; the front one is being answered if `answering`.
    /// (Keeping the answered call in the queue keeps the session small.)
    pending: VecDeque<Pending>,
    answering: bool,
    next_id: u64,
    /// The request whose body the client is sending.
    client_body_owner: Option<u64>,
    /// A CONNECT or Upgrade request: the client's next bytes may belong to
    /// a tunnel, so they wait for its response.
    await_answer: Option<u64>,
    /// The server's bytes lost sync in a gap; settled by the next response.
    server_gap: bool,
    /// The server's direction failed: unanswered requests are `Unparsed`.
    server_dead: bool,
    /// After `101 Switching Protocols` or a 2xx to CONNECT: not HTTP/1.
    tunnel: bool,
    /// Calls produced outside `parse` (gaps), handed out at the next call.
    ready: Vec<Call>,
    dropped_pending: u64,
    resyncs: u64,
}

/// Outcome of searching a message start in out-of-sync bytes.
enum Start {
    At(usize),
    /// A possible start at this offset needs more bytes.
    Hold(usize),
    None,
}

impl Session {
    #[must_use]
    pub fn new(cfg: &SessionConfig, transport: Transport) -> Self {
        let mut attr_headers: Vec<(String, String)> = Vec::new();
        for name in &cfg.attr_headers {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty()
                || !name.bytes().all(parser::is_tchar)
                || REDACTED_HEADERS.contains(&name.as_str())
                || attr_headers.iter().any(|(n, _)| *n == name)
            {
                continue;
            }
            let key = format!("http.header.{name}");
            attr_headers.push((name, key));
        }
        Session {
            max_message_bytes: cfg.max_message_bytes.max(1),
            max_pending: cfg.max_pending.max(1),
            attr_headers,
            transport,
            client: Side::new(),
            server: Side::new(),
            pending: VecDeque::new(),
            answering: false,
            next_id: 0,
            client_body_owner: None,
            await_answer: None,
            server_gap: false,
            server_dead: false,
            tunnel: false,
            ready: Vec::new(),
            dropped_pending: 0,
            resyncs: 0,
        }
    }

    /// Requests dropped as `Timeout` calls because `max_pending` were
    /// already waiting.
    #[must_use]
    pub fn dropped_pending(&self) -> u64 {
        self.dropped_pending
    }

    /// Times a direction lost sync (gap, capture started mid-message) and
    /// had to search for the next message start.
    #[must_use]
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// Requests waiting for a response.
    #[must_use]
    pub fn pending_requests(&self) -> usize {
        self.pending.len() - usize::from(self.answering)
    }

    /// The call whose response is being received.
    fn answered(&mut self) -> Option<&mut Call> {
        if self.answering {
            self.pending.front_mut().map(|p| &mut p.call)
        } else {
            None
        }
    }

    /// Takes the call whose response is being received.
    fn take_answered(&mut self) -> Option<Call> {
        if !self.answering {
            return None;
        }
        self.answering = false;
        self.pending.pop_front().map(|p| p.call)
    }

    /// Whether the flow switched protocols (101, CONNECT): it is no longer
    /// HTTP/1 and every byte is ignored.
    #[must_use]
    pub fn is_tunnel(&self) -> bool {
        self.tunnel
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::ToServer => &mut self.client,
            Direction::ToClient => &mut self.server,
        }
    }

    fn start_limit(&self) -> usize {
        START_LINE_LIMIT.min(self.max_message_bytes)
    }

    /// Whether `data` starts with a plausible start-line of `dir`.
    fn start_line(&self, dir: Direction, data: &[u8]) -> Probe {
        match dir {
            Direction::ToServer => parser::check_request_line(data, false, self.start_limit()),
            Direction::ToClient => parser::check_status_line(data),
        }
    }

    /// Searches a start-line at a line start of `data`.
    fn find_start(&self, dir: Direction, data: &[u8], line_start: bool) -> Start {
        let first = if line_start { Some(0) } else { None };
        let after_lf = data.iter().enumerate().filter(|&(_, &b)| b == b'\n').map(|(i, _)| i + 1);
        for at in first.into_iter().chain(after_lf) {
            if at >= data.len() {
                break;
            }
            match self.start_line(dir, &data[at..]) {
                Probe::Match => return Start::At(at),
                Probe::NeedMore => return Start::Hold(at),
                Probe::NoMatch => {}
            }
        }
        Start::None
    }

    fn run(&mut self, dir: Direction, data: &[u8], ts: i64) -> Result<usize, L7Error> {
        if !data.is_empty() {
            self.side(dir).last_ts = Some(ts);
        }
        let mut pos = 0;
        // The bytes after the response that switched protocols are left to
        // the caller (to detect what follows); later ones are ignored.
        let was_tunnel = self.tunnel;
        loop {
            if self.tunnel {
                return Ok(if was_tunnel { data.len() } else { pos });
            }
            let rest = &data[pos..];
            match self.side(dir).phase {
                Phase::Dead => return Ok(data.len()),
                Phase::Start => match self.start_line(dir, rest) {
                    _ if rest.is_empty() => return Ok(pos),
                    Probe::Match => {
                        let side = self.side(dir);
                        side.phase = Phase::Head;
                        side.strict = true;
                    }
                    Probe::NeedMore => {
                        self.side(dir).head_ts.get_or_insert(ts);
                        return Ok(pos);
                    }
                    // The capture began inside a message.
                    Probe::NoMatch => self.lose_sync(dir, false, true),
                },
                Phase::Resync { line_start } => match self.find_start(dir, rest, line_start) {
                    Start::At(at) => {
                        pos += at;
                        let side = self.side(dir);
                        side.phase = Phase::Head;
                        side.strict = false;
                        // A start held from an earlier call keeps its time.
                        let held_ts = if at == 0 { side.head_ts } else { None };
                        side.reset_head();
                        side.head_ts = held_ts;
                    }
                    Start::Hold(at) => {
                        let side = self.side(dir);
                        side.phase = Phase::Resync { line_start: true };
                        if at > 0 {
                            side.head_ts = None;
                        }
                        side.head_ts.get_or_insert(ts);
                        return Ok(pos + at);
                    }
                    Start::None => {
                        let line_start = rest.last().map_or(line_start, |&b| b == b'\n');
                        let side = self.side(dir);
                        side.phase = Phase::Resync { line_start };
                        side.head_ts = None;
                        return Ok(data.len());
                    }
                },
                Phase::Head => {
                    // Empty lines before a start-line are ignored (RFC 9112 §2.2).
                    let blank = rest.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
                    if blank > 0 {
                        pos += blank;
                        continue;
                    }
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    if dir == Direction::ToServer {
                        if let Some(id) = self.await_answer {
                            if !self.pending.iter().any(|p| p.id == id) {
                                self.await_answer = None;
                            } else if rest.len() <= self.max_message_bytes {
                                // Maybe tunnel bytes: wait for the answer.
                                self.client.head_ts.get_or_insert(ts);
                                return Ok(pos);
                            } else {
                                self.await_answer = None;
                                self.lose_sync(dir, false, true);
                                continue;
                            }
                        }
                    }
                    let max = self.max_message_bytes;
                    let side = self.side(dir);
                    side.head_ts.get_or_insert(ts);
                    if !side.worth_parsing(rest) {
                        if rest.len() > max {
                            return Err(self.fail(dir, L7Error::TooLarge));
                        }
                        return Ok(pos);
                    }
                    let step = match dir {
                        Direction::ToServer => self.request_head(rest, ts),
                        Direction::ToClient => self.response_head(rest, ts),
                    };
                    match step {
                        Ok(Some(n)) => pos += n,
                        Ok(None) => {
                            self.side(dir).head_tried = rest.len();
                            self.stash(dir, rest);
                            if rest.len() > max {
                                return Err(self.fail(dir, L7Error::TooLarge));
                            }
                            return Ok(pos);
                        }
                        Err(e) if self.side(dir).strict || e == L7Error::TooLarge => return Err(self.fail(dir, e)),
                        Err(_) => {
                            // A false start while resynchronising: look further.
                            pos += 1;
                            let side = self.side(dir);
                            side.phase = Phase::Resync { line_start: false };
                            side.reset_head();
                        }
                    }
                }
                Phase::Body(mut body) => match step_body(&mut body, rest, self.max_message_bytes) {
                    Ok((n, done)) => {
                        self.count_body(dir, n as u64);
                        pos += n;
                        if done {
                            self.message_done(dir, Some(ts));
                        } else {
                            self.side(dir).phase = Phase::Body(body);
                            return Ok(pos);
                        }
                    }
                    Err(e) if self.side(dir).strict => return Err(self.fail(dir, e)),
                    Err(_) => self.lose_sync(dir, false, true),
                },
            }
        }
    }

    /// Parses a request head at the start of `rest`; `Ok(None)` if it is
    /// incomplete.
    fn request_head(&mut self, rest: &[u8], ts: i64) -> Result<Option<usize>, L7Error> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Some(head) = parser::parse_request(rest, &mut headers).map_err(L7Error::Malformed)? else {
            return Ok(None);
        };
        // RFC 9112 §6.3: Transfer-Encoding wins over Content-Length; a
        // request without either has no body.
        let body = match (head.fields.transfer_encoding(), head.fields.content_length()) {
            _ if head.head_len > self.max_message_bytes => Err(L7Error::TooLarge),
            (TransferEncoding::Chunked, _) => Ok(Body::Chunked(Chunk::Size { scanned: 0 })),
            (TransferEncoding::Other, _) => Err(L7Error::Malformed("http_transfer_encoding")),
            (TransferEncoding::Absent, ContentLength::Invalid) => Err(L7Error::Malformed("http_content_length")),
            (TransferEncoding::Absent, ContentLength::Valid(n)) => Ok(Body::Length(n)),
            (TransferEncoding::Absent, ContentLength::Absent) => Ok(Body::Length(0)),
        };
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                // Its body cannot be framed, but the request was made.
                let call = self.request_call(&head, self.client.head_ts.unwrap_or(ts));
                self.client.salvage = Some(Box::new(call));
                return Err(e);
            }
        };
        let method = Method::of(head.method);
        let first_ts = self.client.head_ts.unwrap_or(ts);
        self.client.reset_head();
        let call = self.request_call(&head, first_ts);
        let id = self.push_request(call, method);
        if method == Method::Connect || head.fields.upgrade {
            self.await_answer = Some(id);
        }
        if body == Body::Length(0) {
            self.message_done(Direction::ToServer, Some(ts));
        } else {
            self.client_body_owner = Some(id);
            self.client.phase = Phase::Body(body);
        }
        Ok(Some(head.head_len))
    }

    /// Parses a response head at the start of `rest`, pairs it with the
    /// oldest request, and emits the call at once when there is no body.
    fn response_head(&mut self, rest: &[u8], ts: i64) -> Result<Option<usize>, L7Error> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Some(head) = parser::parse_response(rest, &mut headers).map_err(L7Error::Malformed)? else {
            return Ok(None);
        };
        let first_ts = self.server.head_ts.unwrap_or(ts);
        let code = head.code;
        let bad_length = head.fields.transfer_encoding() == TransferEncoding::Absent
            && head.fields.content_length() == ContentLength::Invalid;
        if head.head_len > self.max_message_bytes || bad_length {
            // Its body cannot be framed, but the response was given.
            let mut call = Call::new(L7Protocol::Http1);
            fill_response(&mut call, &head, first_ts);
            self.server.salvage = Some(Box::new(call));
            let e = if bad_length { L7Error::Malformed("http_content_length") } else { L7Error::TooLarge };
            return Err(e);
        }
        let len = head.head_len as u64;
        if (100..200).contains(&code) && code != 101 {
            // Interim response (RFC 9110 §15.2): the request goes on waiting.
            self.server.reset_head();
            if let Some(p) = self.pending.front_mut().filter(|p| answerable(p, first_ts)) {
                p.call.response_bytes += len;
            }
            return Ok(Some(head.head_len));
        }
        self.settle_gap();
        let method = self.pending.front().filter(|p| answerable(p, first_ts)).map(|p| p.method);
        let tunnel = code == 101 || (method == Some(Method::Connect) && (200..300).contains(&code));
        // RFC 9112 §6.3 rules 1, 2, 4, 5, 8.
        let body = if tunnel || method == Some(Method::Head) || code == 204 || code == 304 {
            None
        } else {
            match (head.fields.transfer_encoding(), head.fields.content_length()) {
                (TransferEncoding::Chunked, _) => Some(Body::Chunked(Chunk::Size { scanned: 0 })),
                (TransferEncoding::Other, _) => Some(Body::UntilClose),
                (TransferEncoding::Absent, ContentLength::Valid(0) | ContentLength::Invalid) => None,
                (TransferEncoding::Absent, ContentLength::Valid(n)) => Some(Body::Length(n)),
                (TransferEncoding::Absent, ContentLength::Absent) => Some(Body::UntilClose),
            }
        };
        self.server.reset_head();
        if method.is_none() {
            // No request seen for it: a call of its own.
            let id = self.next_id;
            self.next_id += 1;
            self.pending.push_front(Pending {
                id,
                method: Method::Other,
                gap: false,
                call: Call::new(L7Protocol::Http1),
            });
        }
        self.answering = true;
        let Some(front) = self.pending.front_mut() else { return Ok(Some(head.head_len)) };
        if self.await_answer == Some(front.id) {
            self.await_answer = None;
        }
        fill_response(&mut front.call, &head, first_ts);
        if tunnel {
            self.tunnel = true;
            self.message_done(Direction::ToClient, Some(ts));
            return Ok(Some(head.head_len));
        }
        match body {
            Some(body) => self.server.phase = Phase::Body(body),
            None => self.message_done(Direction::ToClient, Some(ts)),
        }
        Ok(Some(head.head_len))
    }

    fn request_call(&self, head: &RequestHead<'_, '_>, ts: i64) -> Call {
        let f = &head.fields;
        let mut call = Call::new(L7Protocol::Http1);
        call.request_ts = Some(ts);
        call.request_type = Some(head.method.to_owned());
        call.request_domain = f.host.filter(|h| !h.is_empty()).map(|h| text(h).to_ascii_lowercase());
        call.request_resource = Some(head.target.to_owned());
        call.version = Some(version(head.minor).to_owned());
        call.request_bytes = head.head_len as u64;
        call.user_agent = f.user_agent.map(text);
        fill_trace(&mut call, f);
        if let Some(v) = f.referer {
            call.attributes.push(("http.referer".to_owned(), text(v)));
        }
        if let Some(v) = joined(head.headers, "x-forwarded-for") {
            call.attributes.push(("http.x_forwarded_for".to_owned(), v));
        }
        for (name, key) in &self.attr_headers {
            if let Some(v) = joined(head.headers, name) {
                call.attributes.push((key.clone(), v));
            }
        }
        call
    }

    /// After a gap in the server's bytes, the first response decides which
    /// waiting requests lost theirs: if requests sent after the gap wait
    /// behind requests sent before it, the older ones were answered in the
    /// gap (`Unparsed`). Otherwise the order is kept.
    fn settle_gap(&mut self) {
        if !self.server_gap {
            return;
        }
        self.server_gap = false;
        if let Some(first_new) = self.pending.iter().position(|p| !p.gap) {
            for _ in 0..first_new {
                if let Some(p) = self.pending.pop_front() {
                    self.unanswered(p, CallStatus::Unparsed);
                }
            }
        }
        for p in &mut self.pending {
            p.gap = false;
        }
    }

    /// A message of `dir` ended (`end_ts`: time of its last byte, if known).
    fn message_done(&mut self, dir: Direction, end_ts: Option<i64>) {
        let side = self.side(dir);
        side.phase = Phase::Head;
        side.strict = true;
        side.reset_head();
        match dir {
            Direction::ToServer => self.client_body_owner = None,
            Direction::ToClient => {
                if let Some(mut call) = self.take_answered() {
                    call.response_end_ts = end_ts;
                    self.emit(call);
                }
            }
        }
    }

    /// Adds body bytes to the message they belong to.
    fn count_body(&mut self, dir: Direction, n: u64) {
        match dir {
            Direction::ToClient => {
                if let Some(call) = self.answered() {
                    call.response_bytes += n;
                }
            }
            Direction::ToServer => {
                let Some(id) = self.client_body_owner else { return };
                if let Some(p) = self.pending.iter_mut().rev().find(|p| p.id == id) {
                    p.call.request_bytes += n;
                }
            }
        }
    }

    /// `dir` is out of sync: settle the message in progress and search the
    /// next start-line. `counted`: this is a loss of sync worth counting;
    /// `mark`: responses of waiting requests may have been lost.
    fn lose_sync(&mut self, dir: Direction, counted: bool, mark: bool) {
        if counted {
            self.resyncs += 1;
        }
        match dir {
            Direction::ToServer => {
                self.client_body_owner = None;
                self.use_salvage(dir);
            }
            Direction::ToClient => {
                if let Some(call) = self.take_answered() {
                    // Its end is unknown.
                    self.emit(call);
                } else if !self.use_salvage(dir) && self.server.head_ts.is_some() {
                    self.response_lost();
                }
                if mark {
                    for p in &mut self.pending {
                        p.gap = true;
                    }
                    self.server_gap = !self.pending.is_empty();
                }
            }
        }
        let side = self.side(dir);
        side.phase = Phase::Resync { line_start: false };
        side.strict = false;
        side.reset_head();
    }

    /// An error on `dir`: the direction is given up.
    fn fail(&mut self, dir: Direction, e: L7Error) -> L7Error {
        if dir == Direction::ToClient {
            self.server_dead = true;
            if let Some(call) = self.take_answered() {
                self.emit(call);
            } else if !self.use_salvage(dir) {
                self.response_lost();
            }
        } else {
            self.client_body_owner = None;
            self.await_answer = None;
            self.use_salvage(dir);
        }
        let side = self.side(dir);
        side.phase = Phase::Dead;
        side.reset_head();
        e
    }

    /// Queues a request, dropping the oldest waiting one beyond
    /// `max_pending`.
    fn push_request(&mut self, call: Call, method: Method) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if self.pending_requests() >= self.max_pending {
            if let Some(old) = self.pending.remove(usize::from(self.answering)) {
                self.dropped_pending += 1;
                self.unanswered(old, CallStatus::Timeout);
            }
        }
        self.pending.push_back(Pending { id, method, gap: false, call });
        id
    }

    /// Keeps what an incomplete head of `dir` shows (its start-line and
    /// complete fields), once per head.
    fn stash(&mut self, dir: Direction, rest: &[u8]) {
        let side = self.side(dir);
        if side.salvage.is_some() {
            return;
        }
        let ts = side.head_ts.unwrap_or_default();
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let call = match dir {
            Direction::ToServer => parser::parse_request_prefix(rest, &mut headers).map(|h| self.request_call(&h, ts)),
            Direction::ToClient => parser::parse_response_prefix(rest, &mut headers).map(|h| {
                let mut call = Call::new(L7Protocol::Http1);
                fill_response(&mut call, &h, ts);
                call
            }),
        };
        self.side(dir).salvage = call.map(Box::new);
    }

    /// The incomplete head of `dir` will never complete: what it showed
    /// becomes a waiting request or a response (its end unknown). Returns
    /// whether there was one.
    fn use_salvage(&mut self, dir: Direction) -> bool {
        let Some(call) = self.side(dir).salvage.take() else { return false };
        let call = *call;
        match dir {
            Direction::ToServer => {
                let method = Method::of(call.request_type.as_deref().unwrap_or_default());
                self.push_request(call, method);
            }
            Direction::ToClient => {
                self.settle_gap();
                let ts = call.response_first_ts.unwrap_or(i64::MAX);
                let request = if self.pending.front().is_some_and(|p| answerable(p, ts)) {
                    self.pending.pop_front()
                } else {
                    None
                };
                match request {
                    Some(p) => {
                        let mut merged = p.call;
                        merge_response(&mut merged, call);
                        self.emit(merged);
                    }
                    None => self.emit(call),
                }
            }
        }
        true
    }

    /// The response being received could not be parsed: the request it
    /// answers becomes `Unparsed`.
    fn response_lost(&mut self) {
        let ts = self.server.head_ts.or(self.server.last_ts).unwrap_or(i64::MAX);
        if self.pending.front().is_some_and(|p| answerable(p, ts)) {
            if let Some(p) = self.pending.pop_front() {
                self.unanswered(p, CallStatus::Unparsed);
            }
        }
    }

    /// A request that gets no response.
    fn unanswered(&mut self, p: Pending, status: CallStatus) {
        let mut call = p.call;
        call.status =
            if status == CallStatus::Timeout && (p.gap || self.server_dead) { CallStatus::Unparsed } else { status };
        self.emit(call);
    }

    fn emit(&mut self, mut call: Call) {
        call.attributes.sort();
        self.ready.push(call);
    }
}

impl Decoder for Session {
    fn switched(&self) -> bool {
        self.tunnel
    }

    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        if self.transport == Transport::Udp {
            return Ok(data.len());
        }
        let mut r = self.run(dir, data, ts);
        if let Ok(n) = r {
            // Progress guarantee: never hold more than a message head.
            if n.min(data.len()) == 0 && data.len() > self.max_message_bytes {
                r = Err(self.fail(dir, L7Error::TooLarge));
            }
        }
        out.append(&mut self.ready);
        r.map(|n| n.min(data.len()))
    }

    fn on_gap(&mut self, dir: Direction, len: u32) {
        if self.transport == Transport::Udp || self.tunnel || len == 0 {
            return;
        }
        let lost = u64::from(len);
        let side = self.side(dir);
        let body = match side.phase {
            Phase::Dead => return,
            Phase::Body(b) => b,
            Phase::Resync { .. } => {
                side.phase = Phase::Resync { line_start: true };
                side.head_ts = None;
                return;
            }
            Phase::Start | Phase::Head => {
                if side.head_ts.is_none() {
                    // Lost between messages: whole messages may be gone
                    // (not if too few bytes for one, as a FIN counted as
                    // a lost byte).
                    self.lose_sync(dir, true, len >= MIN_RESPONSE_BYTES);
                    self.side(dir).phase = Phase::Resync { line_start: true };
                    return;
                }
                Body::Length(0)
            }
        };
        let (body, done) = match body {
            Body::Length(rem) if rem >= lost && rem > 0 => (Body::Length(rem - lost), rem == lost),
            Body::Chunked(Chunk::Data(rem)) if rem > lost => (Body::Chunked(Chunk::Data(rem - lost)), false),
            Body::Chunked(Chunk::Data(rem)) if rem == lost => (Body::Chunked(Chunk::DataEnd { cr: false }), false),
            Body::UntilClose => (Body::UntilClose, false),
            _ => {
                self.lose_sync(dir, true, true);
                self.side(dir).phase = Phase::Resync { line_start: true };
                return;
            }
        };
        // Still in sync: the lost bytes were body bytes.
        self.count_body(dir, lost);
        if done {
            self.message_done(dir, None);
        } else {
            self.side(dir).phase = Phase::Body(body);
        }
    }

    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        let first = usize::from(self.answering);
        while self.pending.get(first).is_some_and(|p| p.call.request_ts.is_some_and(|t| t < older_than)) {
            if let Some(p) = self.pending.remove(first) {
                self.unanswered(p, CallStatus::Timeout);
            }
        }
        out.append(&mut self.ready);
    }

    fn finish(&mut self, end_ts: i64, out: &mut Vec<Call>) {
        if let Some(mut call) = self.take_answered() {
            // A body delimited by the close ends with the last byte seen.
            call.response_end_ts = Some(self.server.last_ts.unwrap_or(end_ts));
            self.emit(call);
        } else if self.server.phase == Phase::Head
            && self.server.head_ts.is_some()
            && !self.use_salvage(Direction::ToClient)
        {
            self.response_lost();
        }
        self.use_salvage(Direction::ToServer);
        while let Some(p) = self.pending.pop_front() {
            self.unanswered(p, CallStatus::Timeout);
        }
        self.client_body_owner = None;
        self.await_answer = None;
        self.client.phase = Phase::Dead;
        self.server.phase = Phase::Dead;
        out.append(&mut self.ready);
    }
}

/// A response can answer a request that started no later than it.
fn answerable(p: &Pending, response_ts: i64) -> bool {
    p.call.request_ts.is_none_or(|t| t <= response_ts)
}

/// Skips body bytes at the start of `data`. Returns the bytes consumed and
/// whether the body ended; fewer bytes than given and not ended means the
/// rest is an incomplete chunk-size line to present again.
fn step_body(body: &mut Body, data: &[u8], limit: usize) -> Result<(usize, bool), L7Error> {
    let mut pos = 0;
    loop {
        let rest = &data[pos..];
        match body {
            Body::UntilClose => return Ok((data.len(), false)),
            Body::Length(rem) => {
                let take = (*rem).min(rest.len() as u64);
                *rem -= take;
                return Ok((pos + take as usize, *rem == 0));
            }
            Body::Chunked(chunk) => match chunk {
                Chunk::Size { scanned } => {
                    let from = (*scanned).min(rest.len());
                    let Some(lf) = rest[from..].iter().position(|&b| b == b'\n') else {
                        if rest.len() > parser::MAX_CHUNK_LINE {
                            return Err(L7Error::Malformed("http_chunk_size"));
                        }
                        *scanned = rest.len();
                        return Ok((pos, false));
                    };
                    let line = &rest[..from + lf + 1];
                    let size = parser::parse_chunk_line(line).map_err(L7Error::Malformed)?;
                    pos += line.len();
                    *chunk = if size == 0 { Chunk::Trailers { line_len: 0, total: 0 } } else { Chunk::Data(size) };
                }
                Chunk::Data(rem) => {
                    let take = (*rem).min(rest.len() as u64);
                    *rem -= take;
                    pos += take as usize;
                    if *rem > 0 {
                        return Ok((pos, false));
                    }
                    *chunk = Chunk::DataEnd { cr: false };
                }
                Chunk::DataEnd { cr } => match rest.first() {
                    None => return Ok((pos, false)),
                    Some(b'\r') if !*cr => {
                        *cr = true;
                        pos += 1;
                    }
                    Some(b'\n') => {
                        pos += 1;
                        *chunk = Chunk::Size { scanned: 0 };
                    }
                    Some(_) => return Err(L7Error::Malformed("http_chunk_data")),
                },
                Chunk::Trailers { line_len, total } => {
                    // Trailer fields are skipped line by line (RFC 9112 §7.1.2).
                    for &b in rest {
                        pos += 1;
                        *total += 1;
                        if *total > limit {
                            return Err(L7Error::TooLarge);
                        }
                        match b {
                            b'\n' if *line_len == 0 => return Ok((pos, true)),
                            b'\n' => *line_len = 0,
                            b'\r' => {}
                            _ => *line_len += 1,
                        }
                    }
                    return Ok((pos, false));
                }
            },
        }
    }
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn version(minor: u8) -> &'static str {
    if minor == 0 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    }
}

/// The values of every field `name`, joined as one list (RFC 9110 §5.3).
fn joined(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for v in parser::header_values(headers, name).filter(|v| !v.is_empty()) {
        match &mut out {
            None => out = Some(text(v)),
            Some(s) => {
                s.push_str(", ");
                s.push_str(&String::from_utf8_lossy(v));
            }
        }
    }
    out
}

fn lower_hex(v: &[u8]) -> String {
    text(v).to_ascii_lowercase()
}

/// Trace context of a request: `traceparent`, else `b3`, else the
/// `X-B3-*` fields, else `sw8`; and `X-Request-ID`.
fn fill_trace(call: &mut Call, f: &HeadFields<'_>) {
    let ids = f
        .traceparent
        .and_then(parser::parse_traceparent)
        .or_else(|| f.b3.and_then(parser::parse_b3_single))
        .or_else(|| parser::parse_b3_multi(f.x_b3_trace_id, f.x_b3_span_id, f.x_b3_parent_span_id));
    if let Some(ids) = ids {
        call.trace.trace_id = ids.trace_id.map(lower_hex);
        call.trace.span_id = ids.span_id.map(lower_hex);
        call.trace.parent_span_id = ids.parent_span_id.map(lower_hex);
    } else if let Some((trace, span)) = f.sw8.and_then(parser::parse_sw8) {
        call.trace.trace_id = Some(trace);
        call.trace.span_id = span;
    }
    call.trace.x_request_id = f.x_request_id.filter(|v| !v.is_empty()).map(text);
}

/// The response's part of a call.
fn fill_response(call: &mut Call, head: &ResponseHead<'_>, first_ts: i64) {
    call.response_first_ts = Some(first_ts);
    call.response_code = Some(i32::from(head.code));
    call.status = match head.code {
        400..=499 => CallStatus::ClientError,
        500..=599 => CallStatus::ServerError,
        _ => CallStatus::Ok,
    };
    if call.status != CallStatus::Ok && !head.reason.is_empty() {
        call.response_exception = Some(text(head.reason));
    }
    if call.version.is_none() {
        call.version = Some(version(head.minor).to_owned());
    }
    call.response_bytes += head.head_len as u64;
    call.trace.x_request_id_response = head.fields.x_request_id.filter(|v| !v.is_empty()).map(text);
    if let Some(v) = head.fields.content_type.filter(|v| !v.is_empty()) {
        call.attributes.push(("http.content_type".to_owned(), text(v)));
    }
}

/// Moves the response part of `response` (a call of a response alone) into
/// `call`.
fn merge_response(call: &mut Call, response: Call) {
    call.response_first_ts = response.response_first_ts;
    call.response_code = response.response_code;
    call.status = response.status;
    call.response_exception = response.response_exception;
    call.response_bytes += response.response_bytes;
    call.trace.x_request_id_response = response.trace.x_request_id_response;
    if call.version.is_none() {
        call.version = response.version;
    }
    call.attributes.extend(response.attributes);
}
