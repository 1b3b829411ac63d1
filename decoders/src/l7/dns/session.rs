//! The DNS [`Decoder`]: framing (one datagram per UDP `parse`, 2-byte
//! length prefixes on TCP, RFC 1035 §4.2.2), query/response pairing by
//! transaction id and question, limits, and [`Call`]s.
//!
//! Queries and responses are told apart by the QR bit, not by the
//! direction they came in: the analyzer's idea of which side is the
//! client can be wrong (both ports 53, a capture starting mid-flow) while
//! the bit is not.
//!
//! Pairing: a response takes the oldest waiting query with its id and,
//! when both carry one, the same first question (type, and name compared
//! case-insensitively). A query repeated while it waits (same id and
//! question) is a retransmission: the first copy is kept and the copies
//! are counted in `dns.retries`. A response nothing waits for is still a
//! call, with no request time or size; its request type and name come from
//! the question it repeats. A response whose header reads but whose
//! question does not ends its waiting query (same id) as `Unparsed`.
//!
//! Limits: at most `max_pending` waiting queries (the oldest leaves as a
//! `Timeout` call), TCP messages up to `max_message_bytes`. A malformed
//! UDP datagram is counted in [`Session::malformed`] and skipped; a
//! malformed TCP message is counted and ends the direction with
//! `L7Error::Malformed("dns_…")`.
//!
//! Gaps (TCP): the partial message is dropped; the next `parse` of the
//! direction skips to the first offset where a length-prefixed message
//! probes as DNS and, once whole, parses to exactly its length. Bytes
//! before it are consumed; a candidate not yet whole is kept (at most one
//! message, 65 537 bytes).
//!
//! Times: over TCP `request_ts` and `response_first_ts` are the capture
//! times of a message's first byte (remembered when a `parse` leaves a
//! split message unconsumed) and `response_end_ts` that of its last.

use std::collections::VecDeque;
use std::fmt::Write as _;

use super::parser::{self, Message, ParseError, HEADER_LEN};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, SessionConfig, Transport};

/// Answers listed in `dns.answers`.
const MAX_LISTED_ANSWERS: usize = 8;

/// A query waiting for its response.
#[derive(Debug)]
struct Pending {
    id: u16,
    opcode: u8,
    /// QTYPE of the first question; `None` for a query without one.
    qtype: Option<u16>,
    ts: i64,
    /// Copies of this query seen while it waited (same id and question).
    retries: u32,
    /// The request half of the call: `request_*` fields filled.
    call: Call,
}

/// Per-flow DNS session over UDP or TCP.
#[derive(Debug)]
pub struct Session {
    transport: Transport,
    max_pending: usize,
    max_message: usize,
    /// Outstanding queries, oldest first.
    pending: VecDeque<Pending>,
    /// Messages that could not be parsed (UDP datagrams skipped, TCP
    /// messages that ended the direction).
    malformed: u64,
    /// TCP, per direction: bytes were lost, skip to the next plausible
    /// message before framing again.
    resync: [bool; 2],
    /// TCP, per direction: capture time of the first byte the last
    /// `parse` left unconsumed (the start of a split message).
    partial_ts: [Option<i64>; 2],
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

/// Where framing can start again after a gap.
enum Sync {
    /// A plausible, whole message starts at this offset.
    At(usize),
    /// A candidate starts at this offset but is not complete yet.
    NeedMore(usize),
    /// No candidate in these bytes.
    Nothing,
}

impl Session {
    #[must_use]
    pub fn new(cfg: &SessionConfig, transport: Transport) -> Self {
        Session {
            transport,
            // Zero would drop every query at once; one is the least that works.
            max_pending: cfg.max_pending.max(1),
            max_message: cfg.max_message_bytes,
            pending: VecDeque::new(),
            malformed: 0,
            resync: [false; 2],
            partial_ts: [None; 2],
        }
    }

    /// Messages that could not be parsed so far.
    #[must_use]
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Queries waiting for a response.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// One whole DNS message (a datagram, or a TCP message without its
    /// length prefix) whose first byte was seen at `first_ts` and last at
    /// `end_ts`.
    fn on_message(&mut self, bytes: &[u8], first_ts: i64, end_ts: i64, out: &mut Vec<Call>) -> Result<(), ParseError> {
        let msg = match parser::parse_message(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.malformed += 1;
                self.on_unparsed_response(bytes, first_ts, end_ts, out);
                return Err(e);
            }
        };
        if msg.header.qr() {
            self.on_response(&msg, first_ts, end_ts, out);
        } else {
            self.on_query(&msg, first_ts, out);
        }
        Ok(())
    }

    fn on_query(&mut self, msg: &Message<'_>, ts: i64, out: &mut Vec<Call>) {
        let h = &msg.header;
        if let Some(p) = self.pending.iter_mut().find(|p| same_question(p, h.id, msg)) {
            p.retries = p.retries.saturating_add(1);
            return;
        }
        while self.pending.len() >= self.max_pending {
            match self.pending.pop_front() {
                Some(old) => out.push(timeout_call(old)),
                None => break,
            }
        }
        let mut call = Call::new(L7Protocol::Dns);
        call.request_ts = Some(ts);
        call.request_bytes = msg.bytes.len() as u64;
        fill_question(&mut call, msg);
        self.pending.push_back(Pending {
            id: h.id,
            opcode: h.opcode(),
            qtype: msg.question.map(|q| q.qtype),
            ts,
            retries: 0,
            call,
        });
    }

    fn on_response(&mut self, msg: &Message<'_>, first_ts: i64, end_ts: i64, out: &mut Vec<Call>) {
        let h = &msg.header;
        let (mut call, retries) = match self.take_pending(h.id, msg) {
            Some(p) => (p.call, p.retries),
            None => {
                // A response without its query: the question it repeats
                // still names what was asked.
                let mut call = Call::new(L7Protocol::Dns);
                fill_question(&mut call, msg);
                (call, 0)
            }
        };
        call.response_first_ts = Some(first_ts);
        call.response_end_ts = Some(end_ts);
        call.response_bytes = msg.bytes.len() as u64;
        let rcode = msg.rcode();
        call.response_code = Some(i32::from(rcode));
        call.status = rcode_status(rcode);
        if rcode != 0 {
            call.response_exception = Some(rcode_text(rcode));
        }

        let attrs = &mut call.attributes;
        attrs.push(("dns.answer_count".to_owned(), h.ancount.to_string()));
        let answers = answers_text(msg);
        if !answers.is_empty() {
            attrs.push(("dns.answers".to_owned(), answers));
        }
        if h.aa() {
            attrs.push(("dns.authoritative".to_owned(), "true".to_owned()));
        }
        if h.tc() {
            attrs.push(("dns.truncated".to_owned(), "true".to_owned()));
        }
        push_common_attributes(&mut call, h.id, h.opcode(), retries);
        out.push(call);
    }

    /// A response whose header is readable but whose question is not:
    /// when a query with its id waits, it ends as `Unparsed` rather than
    /// as a timeout later.
    fn on_unparsed_response(&mut self, bytes: &[u8], first_ts: i64, end_ts: i64, out: &mut Vec<Call>) {
        let Ok(h) = parser::parse_header(bytes) else { return };
        if !h.qr() {
            return;
        }
        let Some(i) = self.pending.iter().position(|p| p.id == h.id) else { return };
        let Some(p) = self.pending.remove(i) else { return };
        let mut call = p.call;
        call.status = CallStatus::Unparsed;
        call.response_first_ts = Some(first_ts);
        call.response_end_ts = Some(end_ts);
        call.response_bytes = bytes.len() as u64;
        call.response_code = Some(i32::from(h.rcode()));
        push_common_attributes(&mut call, p.id, p.opcode, p.retries);
        out.push(call);
    }

    /// Removes and returns the oldest query the response answers: same
    /// id, and the same question when both carry one.
    fn take_pending(&mut self, id: u16, msg: &Message<'_>) -> Option<Pending> {
        let i = self.pending.iter().position(|p| {
            p.id == id
                && match (msg.question, p.qtype) {
                    (Some(_), Some(_)) => same_question(p, id, msg),
                    _ => true,
                }
        })?;
        self.pending.remove(i)
    }

    fn parse_udp(&mut self, data: &[u8], ts: i64, out: &mut Vec<Call>) -> usize {
        // A malformed datagram is counted (in `on_message`) and skipped.
        let _ = self.on_message(data, ts, ts, out);
        data.len()
    }

    fn parse_tcp(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        let d = dir_index(dir);
        let first_ts = self.partial_ts[d].take().unwrap_or(ts);
        let mut pos = 0usize;
        if self.resync[d] {
            match find_sync(data, dir) {
                Sync::At(off) => {
                    self.resync[d] = false;
                    pos = off;
                }
                Sync::NeedMore(off) => {
                    self.partial_ts[d] = Some(if off == 0 { first_ts } else { ts });
                    return Ok(off);
                }
                Sync::Nothing => return Ok(data.len()),
            }
        }
        while let Some(rest) = data.get(pos..) {
            let Some(&[hi, lo]) = rest.get(..2) else { break };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if len < HEADER_LEN {
                self.malformed += 1;
                return Err(L7Error::Malformed("dns_short_message"));
            }
            if len > self.max_message {
                return Err(L7Error::TooLarge);
            }
            let Some(bytes) = rest.get(2..2 + len) else { break };
            let msg_first_ts = if pos == 0 { first_ts } else { ts };
            self.on_message(bytes, msg_first_ts, ts, out).map_err(|e| L7Error::Malformed(e.kind()))?;
            pos += 2 + len;
        }
        if pos < data.len() {
            self.partial_ts[d] = Some(if pos == 0 { first_ts } else { ts });
        }
        Ok(pos)
    }
}

/// Scans for the first offset where a length-prefixed message starts that
/// probes as DNS for `dir` and, when whole, parses to its last record
/// ending exactly at its length.
fn find_sync(data: &[u8], dir: Direction) -> Sync {
    for off in 0..data.len() {
        let Some(rest) = data.get(off..) else { break };
        match super::probe(rest, dir, Transport::Tcp) {
            super::Probe::NoMatch => continue,
            super::Probe::NeedMore => return Sync::NeedMore(off),
            super::Probe::Match => {}
        }
        let Some(&[hi, lo]) = rest.get(..2) else { return Sync::NeedMore(off) };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(bytes) = rest.get(2..2 + len) else { return Sync::NeedMore(off) };
        if whole_message_parses(bytes) {
            return Sync::At(off);
        }
    }
    Sync::Nothing
}

fn whole_message_parses(bytes: &[u8]) -> bool {
    let Ok(msg) = parser::parse_message(bytes) else { return false };
    let mut records = msg.records();
    for r in records.by_ref() {
        if r.is_err() {
            return false;
        }
    }
    records.position() == bytes.len()
}

/// Whether pending query `p` has id `id` and the same first question as
/// `msg` (type, and name compared case-insensitively).
fn same_question(p: &Pending, id: u16, msg: &Message<'_>) -> bool {
    if p.id != id {
        return false;
    }
    match (msg.question, p.qtype, p.call.request_domain.as_deref()) {
        (Some(q), Some(t), Some(name)) => q.qtype == t && q.name.eq_text(name),
        (None, None, _) => true,
        _ => false,
    }
}

/// Sets `request_type`, `request_domain` and `request_resource` from the
/// first question.
fn fill_question(call: &mut Call, msg: &Message<'_>) {
    let Some(q) = msg.question else { return };
    call.request_type = Some(type_text(q.qtype));
    let mut name = String::new();
    q.name.write_text(&mut name);
    call.request_resource = Some(name.clone());
    call.request_domain = Some(name);
}

/// `dns.id`, `dns.opcode` and `dns.retries`, then sorts the attributes.
fn push_common_attributes(call: &mut Call, id: u16, opcode: u8, retries: u32) {
    let attrs = &mut call.attributes;
    attrs.push(("dns.id".to_owned(), id.to_string()));
    attrs.push(("dns.opcode".to_owned(), opcode_text(opcode)));
    if retries > 0 {
        attrs.push(("dns.retries".to_owned(), retries.to_string()));
    }
    attrs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
}

fn timeout_call(p: Pending) -> Call {
    let mut call = p.call;
    call.status = CallStatus::Timeout;
    push_common_attributes(&mut call, p.id, p.opcode, p.retries);
    call
}

/// NOERROR is `Ok`, SERVFAIL the server's fault, any other code (NXDOMAIN,
/// FORMERR, REFUSED, NOTIMP, YXDOMAIN, BADVERS…) the client's.
fn rcode_status(rcode: u16) -> CallStatus {
    match rcode {
        0 => CallStatus::Ok,
        2 => CallStatus::ServerError,
        _ => CallStatus::ClientError,
    }
}

fn type_text(t: u16) -> String {
    match parser::type_name(t) {
        Some(n) => n.to_owned(),
        // RFC 3597 §5 notation for types without a mnemonic.
        None => format!("TYPE{t}"),
    }
}

fn opcode_text(op: u8) -> String {
    match parser::opcode_name(op) {
        Some(n) => n.to_owned(),
        None => format!("OPCODE{op}"),
    }
}

fn rcode_text(rc: u16) -> String {
    match parser::rcode_name(rc) {
        Some(n) => n.to_owned(),
        None => format!("RCODE{rc}"),
    }
}

/// The first [`MAX_LISTED_ANSWERS`] answers, comma-separated: addresses of
/// A/AAAA, targets of CNAME/NS/PTR/DNAME, the type's name for the rest.
fn answers_text(msg: &Message<'_>) -> String {
    let mut s = String::new();
    for (i, r) in msg.answers().take(MAX_LISTED_ANSWERS).enumerate() {
        if i > 0 {
            s.push(',');
        }
        // Writing to a String cannot fail.
        if let Some(a) = r.ipv4() {
            let _ = write!(s, "{a}");
        } else if let Some(a) = r.ipv6() {
            let _ = write!(s, "{a}");
        } else if let Some(name) = r.target() {
            name.write_text(&mut s);
        } else {
            match parser::type_name(r.rtype) {
                Some(n) => s.push_str(n),
                None => {
                    let _ = write!(s, "TYPE{}", r.rtype);
                }
            }
        }
    }
    s
}

impl Decoder for Session {
    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        match self.transport {
            Transport::Udp => Ok(self.parse_udp(data, ts, out)),
            Transport::Tcp => self.parse_tcp(dir, data, ts, out),
        }
    }

    /// TCP: the partial message is dropped (the caller drops its bytes);
    /// the next `parse` of that direction skips ahead to the first offset
    /// where a length-prefixed message probes as DNS and parses whole.
    /// UDP: nothing to do, datagrams are independent.
    fn on_gap(&mut self, dir: Direction, _len: u32) {
        if self.transport == Transport::Tcp {
            let d = dir_index(dir);
            self.resync[d] = true;
            self.partial_ts[d] = None;
        }
    }

    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        // Usually a prefix (queries arrive in time order), but capture
        // times need not be monotonic: check every entry.
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
        out.extend(self.pending.drain(..).map(timeout_call));
        self.partial_ts = [None; 2];
        self.resync = [false; 2];
    }
}
