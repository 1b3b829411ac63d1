//! The Redis [`Decoder`]: incremental framing of RESP values in both
//! directions, in-order pairing of commands and replies, pub/sub pushes,
//! limits, and [`Call`]s.
//!
//! Framing is a small state machine per direction (a stack of open
//! aggregates, at most [`MAX_DEPTH`] deep, and a count of blob bytes still
//! to skip), so a value of any size is consumed as it arrives: only a
//! header line, or the first bytes of a bulk string that is kept (command
//! name, key, channel, error text; at most [`MAX_TEXT`] bytes), wait for
//! more bytes. A line longer than `max_message_bytes` without its CRLF is
//! `L7Error::TooLarge`; bytes that are not RESP are
//! `L7Error::Malformed("redis_…")` and end the direction.
//!
//! Bytes towards the server are commands, towards the client replies.
//! A command is a RESP array of bulk strings or an inline line; empty
//! lines and empty arrays (`*0`, `*-1`) are ignored, as Redis does.
//!
//! Pairing: replies answer commands in order (pipelining), except:
//! - a RESP3 push (`>`), and a RESP2 array whose first element is
//!   `message`, `pmessage` or `smessage` on a connection that subscribed
//!   (or when no command waits), is a published message: a call of its
//!   own without request (see the module doc);
//! - subscription confirmations (`subscribe`, `unsubscribe`…, one per
//!   channel) end the waiting command of that name; the others (a
//!   `SUBSCRIBE a b c` gets three) are absorbed;
//! - after `MONITOR` is answered, simple strings nothing waits for (the
//!   monitor feed) are absorbed;
//! - a command that left as a timeout (by `expire` or by `max_pending`)
//!   still owes its reply: that many replies are skipped before pairing
//!   goes on, so later replies stay with their commands.
//!
//! Gaps: the partial value is dropped and the next `parse` of the
//! direction skips to the first line start that looks like a message
//! (`*<n>\r\n$` towards the server, any well-formed RESP header towards
//! the client). A gap in replies also ends the waiting commands as
//! `Timeout` calls (their replies may be among the lost bytes).
//!
//! Times: `request_ts` and `response_first_ts` are the capture time of a
//! message's first byte, `response_end_ts` that of its last.

use std::collections::VecDeque;

use super::parser::{self, Header, KeyAt, Length, ParseError, MAX_BULK_LEN, MAX_COUNT, MAX_TEXT};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, SessionConfig, Transport};

/// Deepest nesting of aggregates accepted (Redis' own replies nest a few
/// levels: `COMMAND DOCS` about six).
pub const MAX_DEPTH: usize = 32;
/// Longest command name kept.
const MAX_COMMAND: usize = 32;
/// Bytes of a reply's first element read to recognise a push kind.
const MAX_KIND: usize = 16;
/// Top-level elements whose text may be kept (command, key or
/// subcommand, key after a subcommand / pmessage channel).
const SLOTS: usize = 3;

/// One open aggregate.
#[derive(Debug, Clone, Copy, Default)]
struct Frame {
    /// Values still expected; `None`: a streamed aggregate ended by `.`.
    remaining: Option<u64>,
    /// Values completed so far.
    done: u64,
    /// An attribute (`|`): it describes the next value and is not one.
    attribute: bool,
    /// A streamed string (`$?`): only `;` chunks until `;0`.
    chunks: bool,
}

/// What to do with the CRLF after a blob payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crlf {
    /// It ends a value.
    Value,
    /// It ends a chunk of a streamed string.
    Chunk,
}

/// The message being framed in one direction.
#[derive(Debug, Default)]
struct Msg {
    active: bool,
    start_ts: i64,
    bytes: u64,
    /// Type byte of the message's value (after any attribute); 0 until read.
    ty: u8,
    null: bool,
    /// Kept text, and the spans of top-level elements 0..SLOTS in it (for
    /// an error reply, slot 0 is the error text). Reused across messages.
    text: Vec<u8>,
    spans: [Option<(u32, u32)>; SLOTS],
    /// The flow ended before the message did.
    truncated: bool,
}

impl Msg {
    fn reset(&mut self) {
        self.active = false;
        self.bytes = 0;
        self.ty = 0;
        self.null = false;
        self.truncated = false;
        self.text.clear();
        self.spans = [None; SLOTS];
    }

    fn slot(&self, i: usize) -> Option<&[u8]> {
        let (start, len) = (*self.spans.get(i)?)?;
        self.text.get(start as usize..(start + len) as usize)
    }

    fn keep(&mut self, slot: usize, bytes: &[u8]) {
        // At most SLOTS pieces of at most MAX_TEXT bytes: the casts cannot truncate.
        let start = self.text.len() as u32;
        self.text.extend_from_slice(bytes);
        if let Some(s) = self.spans.get_mut(slot) {
            *s = Some((start, bytes.len() as u32));
        }
    }
}

/// Framing state of one direction.
#[derive(Debug, Default)]
struct Half {
    /// Open aggregates, outermost first; only the first `depth` are live
    /// (kept allocated across messages, at most [`MAX_DEPTH`]).
    stack: Vec<Frame>,
    depth: usize,
    /// Blob payload bytes still to skip.
    skip: u64,
    crlf: Option<Crlf>,
    msg: Msg,
    /// Bytes were lost: find a message start before framing again.
    resync: bool,
    /// Capture time of the first byte the last `parse` left unconsumed.
    partial_ts: Option<i64>,
    /// Capture time of the last bytes given to `parse`.
    last_ts: i64,
}

impl Half {
    fn clear_framing(&mut self) {
        self.depth = 0;
        self.skip = 0;
        self.crlf = None;
        self.msg.reset();
    }

    /// A value ended: counts it in its aggregate, closing the aggregates it
    /// completes. True when the whole message is complete.
    fn value_done(&mut self) -> bool {
        loop {
            let Some(i) = self.depth.checked_sub(1) else { return true };
            let Some(f) = self.stack.get_mut(i) else { return true };
            f.done += 1;
            match f.remaining {
                Some(r) if r > 1 => {
                    f.remaining = Some(r - 1);
                    return false;
                }
                Some(_) => {
                    let attribute = f.attribute;
                    self.depth = i;
                    if attribute {
                        return false;
                    }
                }
                None => return false,
            }
        }
    }

    fn push(&mut self, frame: Frame) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        self.stack.truncate(self.depth);
        self.stack.push(frame);
        self.depth += 1;
        Ok(())
    }

    /// The top-level element index a string read now would have, when it
    /// is a direct element of the message's (non-attribute) aggregate.
    fn top_slot(&self) -> Option<usize> {
        if self.depth != 1 {
            return None;
        }
        let f = self.stack.first()?;
        if f.attribute || f.chunks {
            return None;
        }
        usize::try_from(f.done).ok().filter(|&i| i < SLOTS)
    }
}

/// What a command waiting for its reply still needs.
#[derive(Debug)]
struct Pending {
    ts: i64,
    /// Confirmation kind of a subscribe-family command.
    subscribe: Option<&'static str>,
    monitor: bool,
    /// The request half: `request_*` fields filled.
    call: Call,
}

/// A Redis connection's decoder.
#[derive(Debug)]
pub struct Session {
    max_pending: usize,
    max_message: usize,
    halves: [Half; 2],
    pending: VecDeque<Pending>,
    /// Replies still owed to commands that already left as timeouts.
    owed: u64,
    /// The client subscribed to a channel: arrays may be published messages.
    subscribed: bool,
    /// `MONITOR` was answered: the server streams its feed.
    monitor: bool,
    /// A gap in replies: the waiting commands leave as timeouts at the next call.
    flush: bool,
    malformed: u64,
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

/// Lossy UTF-8 of at most `max` bytes (kept text is already bounded).
fn text(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes.get(..max).unwrap_or(bytes)).into_owned()
}

fn upper(bytes: &[u8]) -> String {
    text(bytes, MAX_COMMAND).to_ascii_uppercase()
}

impl Session {
    #[must_use]
    pub fn new(cfg: &SessionConfig, _transport: Transport) -> Self {
        Session {
            // Zero would drop every command at once; one is the least that works.
            max_pending: cfg.max_pending.max(1),
            // A header line and a kept prefix must fit.
            max_message: cfg.max_message_bytes.max(2 * MAX_TEXT),
            halves: [Half::default(), Half::default()],
            pending: VecDeque::new(),
            owed: 0,
            subscribed: false,
            monitor: false,
            flush: false,
            malformed: 0,
        }
    }

    /// Messages that could not be framed so far.
    #[must_use]
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Commands waiting for a reply.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of the first `want` bytes of a string at element `slot` of a
    /// message going `dir` worth keeping (0: none).
    fn want(&self, d: usize, slot: usize) -> usize {
        let msg = &self.halves[d].msg;
        if d == 0 {
            let Some(cmd) = msg.slot(0) else { return if slot == 0 { MAX_COMMAND } else { 0 } };
            match (slot, parser::key_at(cmd)) {
                (1, KeyAt::First | KeyAt::Subcommand | KeyAt::SubcommandThenKey) => MAX_TEXT,
                (2, KeyAt::Second | KeyAt::SubcommandThenKey) => MAX_TEXT,
                _ => 0,
            }
        } else {
            if !matches!(msg.ty, b'*' | b'>') {
                return 0;
            }
            match (slot, msg.slot(0).and_then(parser::message_channel_index)) {
                (0, _) => MAX_KIND,
                (i, Some(ch)) if i == ch => MAX_TEXT,
                _ => 0,
            }
        }
    }

    fn parse_stream(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        if self.flush {
            self.flush = false;
            self.owed = 0;
            out.extend(self.pending.drain(..).map(timeout_call));
        }
        let d = dir_index(dir);
        self.halves[d].last_ts = ts;
        let first_ts = self.halves[d].partial_ts.take().unwrap_or(ts);
        let mut pos = 0usize;
        if self.halves[d].resync {
            match find_sync(data, dir) {
                Ok(off) => {
                    self.halves[d].resync = false;
                    pos = off;
                }
                Err(keep_from) => {
                    if keep_from < data.len() {
                        self.halves[d].partial_ts = Some(ts);
                    }
                    return Ok(keep_from);
                }
            }
        }
        let res = self.frame(d, data, &mut pos, first_ts, ts, out);
        if let Err(e) = res {
            self.malformed += 1;
            self.halves[d].clear_framing();
            return Err(match e {
                Some(pe) => L7Error::Malformed(pe.kind()),
                None => L7Error::TooLarge,
            });
        }
        if pos < data.len() {
            if data.len() - pos >= self.max_message {
                self.halves[d].clear_framing();
                return Err(L7Error::TooLarge);
            }
            self.halves[d].partial_ts = Some(if pos == 0 { first_ts } else { ts });
        }
        Ok(pos)
    }

    /// Frames values from `data[*pos..]`; leaves `*pos` at the first byte
    /// it could not use yet. `Err(None)`: a line exceeds the size limit.
    fn frame(
        &mut self,
        d: usize,
        data: &[u8],
        pos: &mut usize,
        first_ts: i64,
        ts: i64,
        out: &mut Vec<Call>,
    ) -> Result<(), Option<ParseError>> {
        loop {
            let rest = data.get(*pos..).unwrap_or_default();
            let h = &mut self.halves[d];
            if h.skip > 0 {
                let n = usize::try_from(h.skip).unwrap_or(usize::MAX).min(rest.len());
                *pos += n;
                h.skip -= n as u64;
                h.msg.bytes += n as u64;
                if h.skip > 0 {
                    return Ok(());
                }
                continue;
            }
            if let Some(c) = h.crlf {
                let Some(two) = rest.get(..2) else { return Ok(()) };
                if two != b"\r\n" {
                    return Err(Some(ParseError::MissingCrlf));
                }
                *pos += 2;
                h.msg.bytes += 2;
                h.crlf = None;
                if c == Crlf::Value && h.value_done() {
                    self.complete(d, ts, out);
                }
                continue;
            }
            let Some(&first) = rest.first() else { return Ok(()) };
            if !h.msg.active {
                h.msg.reset();
                h.msg.active = true;
                h.msg.start_ts = if *pos == 0 { first_ts } else { ts };
                if d == 0 && first != b'*' {
                    // An inline command: one line ended by LF.
                    let limit = rest.len().min(self.max_message);
                    let Some(lf) = rest.get(..limit).and_then(|r| r.iter().position(|&b| b == b'\n')) else {
                        h.msg.active = false;
                        return if rest.len() >= self.max_message { Err(None) } else { Ok(()) };
                    };
                    let line = rest.get(..lf).unwrap_or_default();
                    *pos += lf + 1;
                    h.msg.bytes = (lf + 1) as u64;
                    self.inline(line, out);
                    continue;
                }
            }
            let hdr = match parser::parse_header(rest, self.max_message) {
                Ok(Some(hdr)) => hdr,
                Ok(None) if rest.len() >= self.max_message => return Err(None),
                Ok(None) => return Ok(()),
                Err(e) => return Err(Some(e)),
            };
            if !self.item(d, rest, hdr, pos, ts, out)? {
                return Ok(());
            }
        }
    }

    /// Handles one header at `rest` (the message is active). False when it
    /// must wait for more bytes (nothing consumed).
    fn item(
        &mut self,
        d: usize,
        rest: &[u8],
        hdr: Header<'_>,
        pos: &mut usize,
        ts: i64,
        out: &mut Vec<Call>,
    ) -> Result<bool, Option<ParseError>> {
        let top_slot = self.halves[d].top_slot();
        let want = top_slot.map_or(0, |s| self.want(d, s));
        let h = &mut self.halves[d];
        let Header { ty, arg, len } = hdr;
        let in_chunks = h.depth.checked_sub(1).and_then(|i| h.stack.get(i)).is_some_and(|f| f.chunks);
        if in_chunks || ty == b';' {
            if !in_chunks || ty != b';' {
                return Err(Some(ParseError::BadStream));
            }
            let Length::Count(n) = parser::parse_length(arg, MAX_BULK_LEN)? else {
                return Err(Some(ParseError::BadLength));
            };
            consume(h, pos, len);
            if n == 0 {
                h.depth -= 1;
                if h.value_done() {
                    self.complete(d, ts, out);
                }
            } else {
                h.skip = n;
                h.crlf = Some(Crlf::Chunk);
            }
            return Ok(true);
        }
        let top = h.depth == 0;
        if top && ty != b'|' && ty != b'.' {
            h.msg.ty = ty;
        }
        match ty {
            b'.' => {
                let open_stream =
                    h.depth.checked_sub(1).and_then(|i| h.stack.get(i)).is_some_and(|f| f.remaining.is_none());
                if !arg.is_empty() || !open_stream {
                    return Err(Some(ParseError::BadStream));
                }
                consume(h, pos, len);
                h.depth -= 1;
                if h.value_done() {
                    self.complete(d, ts, out);
                }
            }
            b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => {
                parser::check_simple(ty, arg)?;
                if top && ty == b'-' {
                    h.msg.keep(0, arg.get(..MAX_TEXT).unwrap_or(arg));
                } else if let (Some(slot), true) = (top_slot, want > 0 && ty == b'+') {
                    h.msg.keep(slot, arg.get(..want).unwrap_or(arg));
                }
                consume(h, pos, len);
                if h.value_done() {
                    self.complete(d, ts, out);
                }
            }
            b'$' | b'!' | b'=' => match parser::parse_length(arg, MAX_BULK_LEN)? {
                Length::Null if ty == b'$' => {
                    if top {
                        h.msg.null = true;
                    }
                    consume(h, pos, len);
                    if h.value_done() {
                        self.complete(d, ts, out);
                    }
                }
                Length::Streamed if ty == b'$' => {
                    h.push(Frame { chunks: true, ..Frame::default() })?;
                    consume(h, pos, len);
                }
                Length::Count(n) => {
                    let keep = match top_slot {
                        _ if top && ty == b'!' => Some((0, MAX_TEXT)),
                        Some(slot) if want > 0 && ty == b'$' => Some((slot, want)),
                        _ => None,
                    };
                    if let Some((slot, max)) = keep {
                        let k = usize::try_from(n).unwrap_or(usize::MAX).min(max);
                        let Some(body) = rest.get(len..len + k) else { return Ok(false) };
                        h.msg.keep(slot, body);
                    }
                    consume(h, pos, len);
                    h.skip = n;
                    h.crlf = Some(Crlf::Value);
                }
                _ => return Err(Some(ParseError::BadLength)),
            },
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                let attribute = ty == b'|';
                let pairs = ty == b'%' || attribute;
                match parser::parse_length(arg, MAX_COUNT)? {
                    Length::Null if ty == b'*' => {
                        if top {
                            h.msg.null = true;
                        }
                        consume(h, pos, len);
                        if h.value_done() {
                            self.complete(d, ts, out);
                        }
                    }
                    Length::Streamed if !attribute => {
                        h.push(Frame { remaining: None, ..Frame::default() })?;
                        consume(h, pos, len);
                    }
                    Length::Count(0) => {
                        consume(h, pos, len);
                        if !attribute && h.value_done() {
                            self.complete(d, ts, out);
                        }
                    }
                    Length::Count(n) => {
                        let n = if pairs { n * 2 } else { n };
                        h.push(Frame { remaining: Some(n), attribute, ..Frame::default() })?;
                        consume(h, pos, len);
                    }
                    _ => return Err(Some(ParseError::BadLength)),
                }
            }
            _ => return Err(Some(ParseError::UnknownType)),
        }
        Ok(true)
    }

    /// An inline command line (without its LF).
    fn inline(&mut self, line: &[u8], out: &mut Vec<Call>) {
        let mut words = parser::inline_words(line);
        let h = &mut self.halves[0];
        let Some(cmd) = words.next() else {
            // Redis ignores empty lines.
            h.msg.reset();
            return;
        };
        h.msg.keep(0, cmd.get(..MAX_COMMAND).unwrap_or(cmd));
        for (i, w) in words.take(SLOTS - 1).enumerate() {
            let want = self.want(0, i + 1);
            if want > 0 {
                self.halves[0].msg.keep(i + 1, w.get(..want).unwrap_or(w));
            }
        }
        let ts = self.halves[0].msg.start_ts;
        self.complete(0, ts, out);
    }

    /// A whole message of direction `d` ended at `ts`.
    fn complete(&mut self, d: usize, ts: i64, out: &mut Vec<Call>) {
        let h = &mut self.halves[d];
        h.depth = 0;
        let msg = std::mem::take(&mut h.msg);
        if d == 0 {
            self.on_command(&msg, out);
        } else {
            self.on_reply(&msg, ts, out);
        }
        // Keep the text buffer's capacity for the next message.
        let h = &mut self.halves[d];
        h.msg = msg;
        h.msg.reset();
    }

    fn on_command(&mut self, msg: &Msg, out: &mut Vec<Call>) {
        // `*0` and `*-1` are ignored by Redis: no command, no reply.
        let Some(cmd) = msg.slot(0) else { return };
        let name = upper(cmd);
        let mut call = Call::new(L7Protocol::Redis);
        call.request_ts = Some(msg.start_ts);
        call.request_bytes = msg.bytes;
        let key_at = parser::key_at(cmd);
        let key_slot = match key_at {
            KeyAt::First => Some(1),
            KeyAt::Second | KeyAt::SubcommandThenKey => Some(2),
            KeyAt::Subcommand | KeyAt::None | KeyAt::Secret => None,
        };
        call.request_resource = key_slot.and_then(|s| msg.slot(s)).map(|k| text(k, MAX_TEXT));
        if matches!(key_at, KeyAt::Subcommand | KeyAt::SubcommandThenKey) {
            if let Some(sub) = msg.slot(1) {
                call.attributes.push(("redis.subcommand".to_owned(), upper(sub)));
            }
        }
        let subscribe = parser::subscribe_kind(&name);
        if matches!(subscribe, Some("subscribe" | "psubscribe" | "ssubscribe")) {
            self.subscribed = true;
        }
        let monitor = name == "MONITOR";
        call.request_type = Some(name);
        while self.pending.len() >= self.max_pending {
            match self.pending.pop_front() {
                Some(old) => {
                    self.owed += 1;
                    out.push(timeout_call(old));
                }
                None => break,
            }
        }
        self.pending.push_back(Pending { ts: msg.start_ts, subscribe, monitor, call });
    }

    fn on_reply(&mut self, msg: &Msg, end_ts: i64, out: &mut Vec<Call>) {
        let aggregate = matches!(msg.ty, b'*' | b'>') && !msg.null;
        let kind = if aggregate { msg.slot(0) } else { None };
        let channel_at = kind.and_then(parser::message_channel_index);
        let confirmation = kind.is_some_and(parser::is_confirmation);
        let loose = self.subscribed || self.pending.is_empty();
        // A published message (or any RESP3 push that is no confirmation).
        if (msg.ty == b'>' && !confirmation) || (msg.ty == b'*' && loose && channel_at.is_some()) {
            let mut call = Call::new(L7Protocol::Redis);
            call.request_type = kind.map(|k| text(k, MAX_KIND));
            call.request_resource = channel_at.and_then(|i| msg.slot(i)).map(|c| text(c, MAX_TEXT));
            fill_reply(&mut call, msg, end_ts);
            out.push(call);
            return;
        }
        if confirmation {
            let head_matches = self
                .pending
                .front()
                .and_then(|p| p.subscribe)
                .is_some_and(|k| kind.is_some_and(|kind| kind == k.as_bytes()));
            if !head_matches && (msg.ty == b'>' || self.subscribed) {
                // One confirmation per channel: only the first ends the command.
                return;
            }
        }
        if self.owed > 0 {
            self.owed -= 1;
            return;
        }
        let (mut call, was_monitor) = match self.pending.pop_front() {
            Some(p) => (p.call, p.monitor),
            None if self.monitor && msg.ty == b'+' => return,
            None => (Call::new(L7Protocol::Redis), false),
        };
        if was_monitor && msg.ty == b'+' {
            self.monitor = true;
        }
        fill_reply(&mut call, msg, end_ts);
        out.push(call);
    }
}

fn consume(h: &mut Half, pos: &mut usize, n: usize) {
    *pos += n;
    h.msg.bytes += n as u64;
}

/// Response fields and attributes of a call from its reply.
fn fill_reply(call: &mut Call, msg: &Msg, end_ts: i64) {
    call.response_first_ts = Some(msg.start_ts);
    call.response_end_ts = Some(end_ts);
    call.response_bytes = msg.bytes;
    if matches!(msg.ty, b'-' | b'!') {
        let err = msg.slot(0).unwrap_or_default();
        call.status = match parser::error_class(err) {
            parser::ErrorClass::Client => CallStatus::ClientError,
            parser::ErrorClass::Server => CallStatus::ServerError,
        };
        call.response_exception = Some(text(err, MAX_TEXT));
    }
    call.attributes.push(("redis.reply_type".to_owned(), parser::reply_type_name(msg.ty, msg.null).to_owned()));
    if msg.truncated {
        call.attributes.push(("redis.truncated".to_owned(), "true".to_owned()));
    }
    call.attributes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
}

fn timeout_call(p: Pending) -> Call {
    let mut call = p.call;
    call.status = CallStatus::Timeout;
    call.attributes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    call
}

/// After a gap: `Ok(offset)` of the first line start that looks like a
/// message (a command array `*<n>\r\n$` towards the server, a well-formed
/// RESP header towards the client), or `Err(consumed)`: none yet, the
/// bytes before `consumed` can go (a short last line is kept, it may be
/// the start of one).
fn find_sync(data: &[u8], dir: Direction) -> Result<usize, usize> {
    let mut start = 0usize;
    loop {
        let Some(rest) = data.get(start..) else { return Err(data.len()) };
        if looks_like_start(rest, dir) {
            return Ok(start);
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(lf) => start += lf + 1,
            None => return Err(if rest.len() < 64 { start } else { data.len() }),
        }
    }
}

fn looks_like_start(rest: &[u8], dir: Direction) -> bool {
    let Ok(Some(hdr)) = parser::parse_header(rest, 64) else { return false };
    match dir {
        Direction::ToServer => {
            hdr.ty == b'*'
                && matches!(parser::parse_length(hdr.arg, 1 << 20), Ok(Length::Count(1..)))
                && rest.get(hdr.len) == Some(&b'$')
        }
        Direction::ToClient => match hdr.ty {
            b'$' | b'*' | b'!' | b'=' | b'%' | b'~' | b'>' | b'|' => parser::parse_length(hdr.arg, MAX_COUNT).is_ok(),
            b';' | b'.' => false,
            ty => parser::check_simple(ty, hdr.arg).is_ok(),
        },
    }
}

impl Decoder for Session {
    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        self.parse_stream(dir, data, ts, out)
    }

    /// The partial value is dropped (the caller drops its bytes); the next
    /// `parse` of that direction skips to a plausible message start. A gap
    /// in replies also ends the waiting commands as timeouts.
    fn on_gap(&mut self, dir: Direction, _len: u32) {
        let d = dir_index(dir);
        let h = &mut self.halves[d];
        h.clear_framing();
        h.resync = true;
        h.partial_ts = None;
        if dir == Direction::ToClient {
            self.flush = true;
        }
    }

    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        // Capture times need not be monotonic: check every entry.
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending.get(i).is_some_and(|p| p.ts < older_than) {
                if let Some(p) = self.pending.remove(i) {
                    self.owed += 1;
                    out.push(timeout_call(p));
                }
            } else {
                i += 1;
            }
        }
    }

    /// A reply cut by the end of the flow still answers its command when
    /// its type was read (`redis.truncated`); waiting commands leave as
    /// timeouts. A cut command is dropped.
    fn finish(&mut self, _end_ts: i64, out: &mut Vec<Call>) {
        let h = &mut self.halves[1];
        if h.msg.active && h.msg.ty != 0 && !h.resync {
            let mut msg = std::mem::take(&mut h.msg);
            msg.truncated = true;
            let end = h.last_ts;
            self.on_reply(&msg, end, out);
        }
        out.extend(self.pending.drain(..).map(timeout_call));
        self.owed = 0;
        self.flush = false;
        for h in &mut self.halves {
            h.clear_framing();
            h.resync = false;
            h.partial_ts = None;
        }
    }
}
