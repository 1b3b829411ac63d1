//! The Kafka [`Decoder`]: framing by the 4-byte size, request/response
//! pairing by correlation id, limits, and [`Call`]s.
//!
//! Requests travel one way, responses the other (Kafka has no
//! server-initiated messages). The request direction is the one of the
//! first bytes the session is given: the analyzer starts the session on
//! the bytes the probe matched, and the probe matches requests only.
//! Usually that is `ToServer`; when the analyzer guessed the client
//! wrong (a capture without the handshake, two high ports) it is
//! `ToClient`, and the session follows the bytes. A broker answers the
//! requests of one connection in order, so when a response answers a
//! request, the requests sent before it that are still waiting will
//! never be answered (their responses were lost in a gap): they leave as
//! `Timeout` calls at once.
//!
//! Large messages: a message up to `max_message_bytes` is decoded whole.
//! A larger one (a Produce or a Fetch response of megabytes) is decoded
//! from its first [`HEAD_BYTES`] and the rest is consumed unread as it
//! arrives; a response's call is emitted when its last byte is seen. A
//! size below the smallest header or above [`MAX_FRAME`] ends the
//! direction with `L7Error::Malformed("kafka_bad_size")`; a request
//! header that does not parse (unknown API key, bad `client_id`) with
//! `kafka_bad_header`.
//!
//! Limits: at most `max_pending` waiting requests (the oldest leaves as
//! a `Timeout` call).
//!
//! Gaps: the partial message is dropped; the next `parse` of the
//! direction skips to the first offset where a request header probes as
//! Kafka (towards the server) or where a plausible size is followed by
//! the correlation id of a waiting request (towards the client). Bytes
//! before it are consumed unread.

use std::collections::VecDeque;

use super::parser::{self, ParseError};
use super::MAX_FRAME;
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, Probe, SessionConfig, Transport};

/// Longest `request_resource` or `kafka.client_id`, in bytes.
pub const MAX_TEXT: usize = 256;
/// How much of a message larger than `max_message_bytes` is decoded.
pub const HEAD_BYTES: usize = 4096;

/// A request waiting for its response.
#[derive(Debug)]
struct Pending {
    correlation_id: i32,
    api_key: i16,
    api_version: i16,
    ts: i64,
    call: Call,
}

/// Per-direction framing state.
#[derive(Debug, Default)]
struct DirState {
    /// Bytes of the current large message still to consume unread.
    skip: usize,
    /// The call of a large response, emitted when its last byte is seen.
    skip_call: Option<Box<Call>>,
    /// Bytes were lost: skip to the next plausible message first.
    resync: bool,
    /// Capture time of the first byte the last `parse` left unconsumed.
    partial_ts: Option<i64>,
}

/// A Kafka connection's decoder.
#[derive(Debug)]
pub struct Session {
    max_pending: usize,
    max_message: usize,
    /// Requests waiting for a response, oldest first.
    pending: VecDeque<Pending>,
    dirs: [DirState; 2],
    /// The direction requests travel, set by the first bytes seen.
    requests: Option<Direction>,
    malformed: u64,
    /// Calls completed by `on_gap`, handed out by the next call that has
    /// an output.
    flushed: Vec<Call>,
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

/// Smallest message size: a request header with a null client id, or a
/// response's correlation id.
fn min_size(request: bool) -> usize {
    if request {
        10
    } else {
        4
    }
}

/// Lossy UTF-8 of at most [`MAX_TEXT`] bytes (cut at a character
/// boundary).
pub(crate) fn text(b: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(b.get(..MAX_TEXT).unwrap_or(b)).into_owned();
    if b.len() > MAX_TEXT && s.ends_with('\u{fffd}') {
        s.pop();
    }
    s
}

enum Sync {
    At(usize),
    NeedMore(usize),
    Nothing,
}

impl Session {
    #[must_use]
    pub fn new(cfg: &SessionConfig, _transport: Transport) -> Self {
        Session {
            max_pending: cfg.max_pending.max(1),
            max_message: cfg.max_message_bytes,
            pending: VecDeque::new(),
            dirs: [DirState::default(), DirState::default()],
            requests: None,
            malformed: 0,
            flushed: Vec::new(),
        }
    }

    /// Requests waiting for a response.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Messages that could not be parsed so far.
    #[must_use]
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// A request (`msg`: the bytes after the size, perhaps only the first
    /// part) of `total` bytes with its size field.
    fn on_request(&mut self, msg: &[u8], total: usize, ts: i64, out: &mut Vec<Call>) -> Result<(), L7Error> {
        let h = parser::parse_request_header(msg).map_err(|_| {
            self.malformed += 1;
            L7Error::Malformed("kafka_bad_header")
        })?;
        let body = msg.get(h.body..).unwrap_or_default();
        let mut call = Call::new(L7Protocol::Kafka);
        call.request_ts = Some(ts);
        call.request_bytes = total as u64;
        call.request_type = Some(match parser::api_name(h.api_key) {
            Some(n) => n.to_owned(),
            None => format!("api_{}", h.api_key),
        });
        call.version = Some(h.api_version.to_string());
        let mut acks = None;
        let resource = match h.api_key {
            0 => parser::parse_produce(body, h.api_version).ok().and_then(|p| {
                acks = Some(p.acks);
                p.topic
            }),
            1 => parser::parse_fetch_topic(body, h.api_version).ok().flatten(),
            3 => parser::parse_metadata_topic(body, h.api_version).ok().flatten(),
            _ => parser::parse_group_id(body, h.api_key, h.api_version).ok().flatten(),
        };
        call.request_resource = resource.map(text);
        let attrs = &mut call.attributes;
        if let Some(a) = acks {
            attrs.push(("kafka.acks".to_owned(), a.to_string()));
        }
        if let Some(c) = h.client_id {
            attrs.push(("kafka.client_id".to_owned(), text(c)));
        }
        attrs.push(("kafka.correlation_id".to_owned(), h.correlation_id.to_string()));
        attrs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if acks == Some(0) {
            out.push(call);
            return Ok(());
        }
        while self.pending.len() >= self.max_pending {
            match self.pending.pop_front() {
                Some(old) => out.push(timeout_call(old)),
                None => break,
            }
        }
        self.pending.push_back(Pending {
            correlation_id: h.correlation_id,
            api_key: h.api_key,
            api_version: h.api_version,
            ts,
            call,
        });
        Ok(())
    }

    /// A response; returns its call (times and sizes still to be set
    /// for a large one by the caller).
    fn on_response(&mut self, msg: &[u8], total: usize, first_ts: i64, out: &mut Vec<Call>) -> Option<Call> {
        let Some(&[a, b, c, d]) = msg.get(..4) else { return None };
        let corr = i32::from_be_bytes([a, b, c, d]);
        let mut call = match self.pending.iter().position(|p| p.correlation_id == corr) {
            Some(i) => {
                // Responses come in request order: older requests lost theirs.
                for _ in 0..i {
                    if let Some(old) = self.pending.pop_front() {
                        out.push(timeout_call(old));
                    }
                }
                let p = self.pending.pop_front()?;
                let mut call = p.call;
                fill_response(&mut call, msg, p.api_key, p.api_version);
                call
            }
            None => {
                let mut call = Call::new(L7Protocol::Kafka);
                call.status = CallStatus::Unparsed;
                call.attributes.push(("kafka.correlation_id".to_owned(), corr.to_string()));
                call
            }
        };
        call.response_first_ts = Some(first_ts);
        call.response_bytes = total as u64;
        Some(call)
    }

    fn find_sync(&self, request: bool, data: &[u8]) -> Sync {
        for off in 0..data.len() {
            let Some(rest) = data.get(off..) else { break };
            match request {
                true => match super::probe_request(rest) {
                    // When the candidate is whole, what follows must not
                    // rule out another request.
                    Probe::Match if next_plausible(rest) => return Sync::At(off),
                    Probe::NeedMore if rest.len() < 64 => return Sync::NeedMore(off),
                    _ => {}
                },
                false => {
                    let Some(&[a, b, c, d, e, f, g, h]) = rest.get(..8) else { return Sync::NeedMore(off) };
                    let size = u32::from_be_bytes([a, b, c, d]) as usize;
                    let corr = i32::from_be_bytes([e, f, g, h]);
                    if (4..=MAX_FRAME).contains(&size) && self.pending.iter().any(|p| p.correlation_id == corr) {
                        return Sync::At(off);
                    }
                }
            }
        }
        Sync::Nothing
    }
}

/// Whether the bytes after the message that starts `data` (if whole)
/// could start another request.
fn next_plausible(data: &[u8]) -> bool {
    let Some(&[a, b, c, d]) = data.get(..4) else { return true };
    let total = u32::from_be_bytes([a, b, c, d]) as usize + 4;
    match data.get(total..) {
        Some(rest) => super::probe_request(rest) != Probe::NoMatch,
        None => true,
    }
}

/// Sets the response code, status and exception from a response body.
fn fill_response(call: &mut Call, msg: &[u8], api_key: i16, api_version: i16) {
    let code = parser::response_body_offset(msg, api_key, api_version).and_then(|off| {
        let body = msg.get(off..).ok_or(ParseError::Truncated)?;
        parser::parse_response_error(body, api_key, api_version)
    });
    match code {
        Ok(Some(code)) => {
            call.response_code = Some(i32::from(code));
            call.status = error_status(code);
            if code != 0 {
                call.response_exception = Some(match parser::error_name(code) {
                    Some(n) => n.to_owned(),
                    None => format!("ERROR_{code}"),
                });
            }
        }
        Ok(None) => {}
        Err(_) => call.status = CallStatus::Unparsed,
    }
}

/// The status of an error code (see the module doc).
#[must_use]
pub fn error_status(code: i16) -> CallStatus {
    match code {
        0 => CallStatus::Ok,
        -1 | 2 | 5..=9 | 13..=16 | 19 | 20 | 41 | 56 | 57 | 72 | 74 | 75 | 78 | 80 | 83 => CallStatus::ServerError,
        c if parser::error_name(c).is_none() => CallStatus::ServerError,
        _ => CallStatus::ClientError,
    }
}

fn timeout_call(p: Pending) -> Call {
    let mut call = p.call;
    call.status = CallStatus::Timeout;
    call
}

impl Decoder for Session {
    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        out.append(&mut self.flushed);
        if data.is_empty() {
            return Ok(0);
        }
        let request = *self.requests.get_or_insert(dir) == dir;
        let d = dir_index(dir);
        let first_ts = self.dirs[d].partial_ts.take().unwrap_or(ts);
        let mut pos = 0usize;
        if self.dirs[d].skip > 0 {
            let n = self.dirs[d].skip.min(data.len());
            self.dirs[d].skip -= n;
            pos = n;
            if self.dirs[d].skip > 0 {
                return Ok(pos);
            }
            if let Some(mut c) = self.dirs[d].skip_call.take() {
                c.response_end_ts = Some(ts);
                out.push(*c);
            }
        }
        if self.dirs[d].resync {
            match self.find_sync(request, data.get(pos..).unwrap_or_default()) {
                Sync::At(off) => {
                    self.dirs[d].resync = false;
                    pos += off;
                }
                Sync::NeedMore(off) => {
                    self.dirs[d].partial_ts = Some(ts);
                    return Ok(pos + off);
                }
                Sync::Nothing => return Ok(data.len()),
            }
        }
        while let Some(rest) = data.get(pos..) {
            let Some(&[a, b, c, e]) = rest.get(..4) else { break };
            let size = u32::from_be_bytes([a, b, c, e]) as usize;
            if size < min_size(request) || size > MAX_FRAME {
                self.malformed += 1;
                return Err(L7Error::Malformed("kafka_bad_size"));
            }
            let total = size + 4;
            let msg_ts = if pos == 0 { first_ts } else { ts };
            let whole = rest.len() >= total;
            let large = total > self.max_message;
            if !whole && (!large || rest.len() < HEAD_BYTES.min(total)) {
                break;
            }
            let msg = rest.get(4..total.min(rest.len())).unwrap_or_default();
            match request {
                true => self.on_request(msg, total, msg_ts, out)?,
                false => {
                    if let Some(mut call) = self.on_response(msg, total, msg_ts, out) {
                        if whole {
                            call.response_end_ts = Some(ts);
                            out.push(call);
                        } else {
                            self.dirs[d].skip_call = Some(Box::new(call));
                        }
                    }
                }
            }
            if whole {
                pos += total;
            } else {
                self.dirs[d].skip = total - rest.len();
                return Ok(data.len());
            }
        }
        if pos < data.len() {
            self.dirs[d].partial_ts = Some(if pos == 0 { first_ts } else { ts });
        }
        Ok(pos)
    }

    /// The partial message is dropped; the next `parse` of the direction
    /// resynchronises (see the module doc).
    fn on_gap(&mut self, dir: Direction, _len: u32) {
        let st = &mut self.dirs[dir_index(dir)];
        if let Some(mut c) = st.skip_call.take() {
            // Its size was known and its head decoded: only its end is lost.
            c.response_end_ts = c.response_first_ts;
            self.flushed.push(*c);
        }
        st.skip = 0;
        st.resync = true;
        st.partial_ts = None;
    }

    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        out.append(&mut self.flushed);
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending.get(i).is_some_and(|p| p.ts < older_than) {
                if let Some(p) = self.pending.remove(i) {
                    out.push(timeout_call(p));
                }
            } else {
                i += 1;
            }
        }
    }

    fn finish(&mut self, _end_ts: i64, out: &mut Vec<Call>) {
        out.append(&mut self.flushed);
        for st in &mut self.dirs {
            if let Some(c) = st.skip_call.take() {
                out.push(*c);
            }
            *st = DirState::default();
        }
        out.extend(self.pending.drain(..).map(timeout_call));
    }
}
