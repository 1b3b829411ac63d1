//! The MQTT [`Decoder`]: framing by fixed header and Remaining Length,
//! pairing of control packets (see the module doc of [`super`]), limits,
//! and [`Call`]s.
//!
//! The protocol level comes from the CONNECT (MQTT 5 adds properties
//! and reason codes to most packets); before one is seen the session
//! reads packets as 3.1.1.
//!
//! Large packets: a packet up to `max_message_bytes` is decoded whole. A
//! larger one (a PUBLISH with a big payload) is decoded from its first
//! [`HEAD_BYTES`] and the rest is consumed unread as it arrives. A fixed
//! header that breaks the format (reserved type, forbidden flags, a
//! Remaining Length over 4 bytes) ends the direction with
//! `L7Error::Malformed("mqtt_bad_header")`; a variable header that does
//! not parse is counted in [`Session::malformed`] and its packet skipped
//! (a response's call becomes `Unparsed`).
//!
//! Limits: at most `max_pending` requests waiting (the oldest leaves as
//! a `Timeout` call). A PUBLISH repeated (DUP) while its first copy
//! waits is not a new call.
//!
//! Gaps: the partial packet is dropped; the next `parse` of the
//! direction skips to the first offset where a whole packet validates
//! and is followed by the end of the bytes or another valid fixed
//! header. Bytes before it are consumed unread.

use std::collections::VecDeque;

use super::parser::{self, FixedHeader, PacketType, ParseError};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, SessionConfig, Transport};

/// Longest `request_resource`, `request_domain` or text attribute, in
/// bytes.
pub const MAX_TEXT: usize = 256;
/// How much of a packet larger than `max_message_bytes` is decoded.
pub const HEAD_BYTES: usize = 4096;

/// A request waiting for its response.
#[derive(Debug)]
struct Pending {
    /// CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE or PINGREQ.
    kind: PacketType,
    /// Direction the request travelled.
    from: Direction,
    packet_id: u16,
    ts: i64,
    call: Call,
}

#[derive(Debug, Default)]
struct DirState {
    skip: usize,
    resync: bool,
    partial_ts: Option<i64>,
}

/// An MQTT connection's decoder.
#[derive(Debug)]
pub struct Session {
    max_pending: usize,
    max_message: usize,
    /// CONNECT protocol level (3, 4 or 5).
    level: Option<u8>,
    client_id: Option<String>,
    /// The direction the client sends in, learnt from the packets only
    /// a client sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ) or only a
    /// server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP).
    client_dir: Option<Direction>,
    pending: VecDeque<Pending>,
    dirs: [DirState; 2],
    malformed: u64,
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

fn other(dir: Direction) -> Direction {
    match dir {
        Direction::ToServer => Direction::ToClient,
        Direction::ToClient => Direction::ToServer,
    }
}

fn dir_text(dir: Direction) -> &'static str {
    match dir {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
    }
}

/// Lossy UTF-8 of at most [`MAX_TEXT`] bytes.
fn text(b: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(b.get(..MAX_TEXT).unwrap_or(b)).into_owned();
    if b.len() > MAX_TEXT && s.ends_with('\u{fffd}') {
        s.pop();
    }
    s
}

/// Status of an MQTT 5 reason code (see the module doc).
#[must_use]
pub fn reason_status(code: u8) -> CallStatus {
    match code {
        0..=0x7f => CallStatus::Ok,
        0x80 | 0x83 | 0x88 | 0x89 | 0x8B | 0x9C | 0x9D => CallStatus::ServerError,
        _ => CallStatus::ClientError,
    }
}

/// Status of an MQTT 3.1.1 CONNACK return code.
#[must_use]
pub fn connack_v3_status(code: u8) -> CallStatus {
    match code {
        0 => CallStatus::Ok,
        3 => CallStatus::ServerError,
        _ => CallStatus::ClientError,
    }
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
            level: None,
            client_id: None,
            client_dir: None,
            pending: VecDeque::new(),
            dirs: [DirState::default(), DirState::default()],
            malformed: 0,
        }
    }

    /// Requests waiting for a response.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Packets whose variable header could not be parsed so far.
    #[must_use]
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// `to_server` or `to_client` for a packet sent in `dir`.
    fn direction_text(&self, dir: Direction) -> &'static str {
        match self.client_dir {
            Some(c) if c == dir => "to_server",
            Some(_) => "to_client",
            None => dir_text(dir),
        }
    }

    fn learn_client(&mut self, kind: PacketType, dir: Direction) {
        let client = match kind {
            PacketType::Connect => {
                self.client_dir = Some(dir);
                return;
            }
            PacketType::Subscribe | PacketType::Unsubscribe | PacketType::Pingreq => dir,
            PacketType::Connack | PacketType::Suback | PacketType::Unsuback | PacketType::Pingresp => other(dir),
            _ => return,
        };
        self.client_dir.get_or_insert(client);
    }

    fn v5(&self) -> bool {
        self.level == Some(5)
    }

    fn new_call(&self) -> Call {
        let mut call = Call::new(L7Protocol::Mqtt);
        call.request_domain.clone_from(&self.client_id);
        call.version = self.level.map(|l| {
            match l {
                3 => "3.1",
                5 => "5.0",
                _ => "3.1.1",
            }
            .to_owned()
        });
        call
    }

    fn request(&self, kind: PacketType, ts: i64, total: usize) -> Call {
        let mut call = self.new_call();
        call.request_type = Some(kind.name().to_owned());
        call.request_ts = Some(ts);
        call.request_bytes = total as u64;
        call
    }

    fn push_pending(&mut self, p: Pending, out: &mut Vec<Call>) {
        while self.pending.len() >= self.max_pending {
            match self.pending.pop_front() {
                Some(old) => out.push(timeout_call(old.call)),
                None => break,
            }
        }
        self.pending.push_back(p);
    }

    /// Removes the oldest request of `kind` sent towards `from` with
    /// `packet_id` (any id for CONNECT and PINGREQ).
    fn take(&mut self, kind: PacketType, from: Direction, packet_id: u16) -> Option<Pending> {
        let any_id = matches!(kind, PacketType::Connect | PacketType::Pingreq);
        let i = self
            .pending
            .iter()
            .position(|p| p.kind == kind && p.from == from && (any_id || p.packet_id == packet_id))?;
        self.pending.remove(i)
    }

    /// The call of a response whose request was not seen.
    fn orphan(&self, kind: PacketType, packet_id: Option<u16>) -> Call {
        let mut call = self.new_call();
        call.attributes.push(("mqtt.response_type".to_owned(), kind.name().to_owned()));
        if let Some(id) = packet_id {
            call.attributes.push(("mqtt.packet_id".to_owned(), id.to_string()));
        }
        call
    }

    /// One packet: its fixed header, its body (whole, or its first part
    /// when `total` exceeds it), first and last byte times.
    #[allow(clippy::too_many_lines, reason = "one arm per packet type")]
    fn on_packet(
        &mut self,
        dir: Direction,
        h: &FixedHeader,
        body: &[u8],
        first_ts: i64,
        end_ts: i64,
        out: &mut Vec<Call>,
    ) {
        let total = h.total();
        let v5 = self.v5();
        self.learn_client(h.kind, dir);
        match h.kind {
            PacketType::Connect => {
                let Ok(c) = parser::parse_connect(body) else {
                    self.malformed += 1;
                    return;
                };
                self.level = Some(c.level);
                self.client_id = Some(text(c.client_id));
                let mut call = self.request(h.kind, first_ts, total);
                call.attributes.push(("mqtt.client_id".to_owned(), text(c.client_id)));
                if let Some(u) = c.username {
                    call.attributes.push(("mqtt.username".to_owned(), text(u)));
                }
                // A second CONNECT replaces the first.
                if let Some(old) = self.take(PacketType::Connect, dir, 0) {
                    out.push(timeout_call(old.call));
                }
                self.push_pending(Pending { kind: h.kind, from: dir, packet_id: 0, ts: first_ts, call }, out);
            }
            PacketType::Connack => {
                let mut call = match self.take(PacketType::Connect, other(dir), 0) {
                    Some(p) => p.call,
                    None => self.orphan(h.kind, None),
                };
                match parser::parse_connack(body) {
                    Ok((_, code)) => {
                        let (status, name) = if v5 {
                            (reason_status(code), parser::reason_name(code))
                        } else {
                            (connack_v3_status(code), parser::connack_v3_name(code))
                        };
                        set_code(&mut call, code, status, name);
                    }
                    Err(_) => {
                        self.malformed += 1;
                        call.status = CallStatus::Unparsed;
                    }
                }
                out.push(respond(call, first_ts, end_ts, total));
            }
            PacketType::Publish => {
                let qos = h.qos();
                let Ok(p) = parser::parse_publish(body, qos, v5) else {
                    self.malformed += 1;
                    return;
                };
                let id = p.packet_id.unwrap_or(0);
                if qos > 0 && self.pending.iter().any(|q| q.kind == h.kind && q.from == dir && q.packet_id == id) {
                    return; // A retransmission (DUP) of a waiting PUBLISH.
                }
                let mut call = self.request(h.kind, first_ts, total);
                if !p.topic.is_empty() {
                    call.request_resource = Some(text(p.topic));
                }
                let attrs = &mut call.attributes;
                attrs.push(("mqtt.direction".to_owned(), self.direction_text(dir).to_owned()));
                if let Some(id) = p.packet_id {
                    attrs.push(("mqtt.packet_id".to_owned(), id.to_string()));
                }
                attrs.push(("mqtt.qos".to_owned(), qos.to_string()));
                if h.flags & 1 != 0 {
                    attrs.push(("mqtt.retain".to_owned(), "true".to_owned()));
                }
                if qos == 0 {
                    out.push(sorted(call));
                } else {
                    self.push_pending(Pending { kind: h.kind, from: dir, packet_id: id, ts: first_ts, call }, out);
                }
            }
            PacketType::Puback | PacketType::Pubrec | PacketType::Pubcomp => {
                let Ok((id, code)) = parser::parse_ack(body, v5) else {
                    self.malformed += 1;
                    return;
                };
                let failed = code.is_some_and(|c| c >= 0x80);
                if h.kind == PacketType::Pubrec && !failed {
                    // The exchange goes on (PUBREL, PUBCOMP): note the
                    // first response byte and its size.
                    if let Some(p) = self
                        .pending
                        .iter_mut()
                        .find(|p| p.kind == PacketType::Publish && p.from == other(dir) && p.packet_id == id)
                    {
                        p.call.response_first_ts.get_or_insert(first_ts);
                        p.call.response_bytes += total as u64;
                    }
                    return;
                }
                let mut call = match self.take(PacketType::Publish, other(dir), id) {
                    Some(p) => p.call,
                    None => self.orphan(h.kind, Some(id)),
                };
                if let Some(c) = code {
                    set_code(&mut call, c, reason_status(c), parser::reason_name(c));
                }
                let first = call.response_first_ts.unwrap_or(first_ts);
                let bytes = call.response_bytes;
                let mut call = respond(call, first, end_ts, total);
                call.response_bytes += bytes;
                out.push(call);
            }
            PacketType::Pubrel => {
                if let Ok((id, _)) = parser::parse_ack(body, v5) {
                    if let Some(p) = self
                        .pending
                        .iter_mut()
                        .find(|p| p.kind == PacketType::Publish && p.from == dir && p.packet_id == id)
                    {
                        p.call.request_bytes += total as u64;
                    }
                } else {
                    self.malformed += 1;
                }
            }
            PacketType::Subscribe | PacketType::Unsubscribe => {
                let Ok(s) = parser::parse_subscribe(body, v5, h.kind == PacketType::Subscribe) else {
                    self.malformed += 1;
                    return;
                };
                let mut call = self.request(h.kind, first_ts, total);
                call.request_resource = s.first.map(text);
                call.attributes.push(("mqtt.packet_id".to_owned(), s.packet_id.to_string()));
                if s.count > 1 {
                    call.attributes.push(("mqtt.topic_count".to_owned(), s.count.to_string()));
                }
                self.push_pending(Pending { kind: h.kind, from: dir, packet_id: s.packet_id, ts: first_ts, call }, out);
            }
            PacketType::Suback | PacketType::Unsuback => {
                let req = if h.kind == PacketType::Suback { PacketType::Subscribe } else { PacketType::Unsubscribe };
                let parsed = if h.kind == PacketType::Unsuback && !v5 {
                    parser::parse_ack(body, false).map(|(id, _)| (id, &[][..]))
                } else {
                    parser::parse_suback(body, v5)
                };
                let Ok((id, codes)) = parsed else {
                    self.malformed += 1;
                    // Without an id it cannot be matched: nothing to end.
                    return;
                };
                let mut call = match self.take(req, other(dir), id) {
                    Some(p) => p.call,
                    None => self.orphan(h.kind, Some(id)),
                };
                let code = codes.iter().copied().find(|&c| c >= 0x80).or_else(|| codes.first().copied());
                if let Some(c) = code {
                    if v5 {
                        set_code(&mut call, c, reason_status(c), parser::reason_name(c));
                    } else if c == 0x80 {
                        set_code(&mut call, c, CallStatus::ClientError, Some("Failure"));
                    } else {
                        set_code(&mut call, c, CallStatus::Ok, None);
                    }
                }
                out.push(respond(call, first_ts, end_ts, total));
            }
            PacketType::Pingreq => {
                let call = self.request(h.kind, first_ts, total);
                self.push_pending(Pending { kind: h.kind, from: dir, packet_id: 0, ts: first_ts, call }, out);
            }
            PacketType::Pingresp => {
                let call = match self.take(PacketType::Pingreq, other(dir), 0) {
                    Some(p) => p.call,
                    None => self.orphan(h.kind, None),
                };
                out.push(respond(call, first_ts, end_ts, total));
            }
            PacketType::Disconnect | PacketType::Auth => {
                let mut call = self.request(h.kind, first_ts, total);
                call.attributes.push(("mqtt.direction".to_owned(), self.direction_text(dir).to_owned()));
                if v5 {
                    if let Ok(c) = parser::parse_reason_only(body) {
                        set_code(&mut call, c, reason_status(c), parser::reason_name(c));
                    }
                }
                out.push(sorted(call));
            }
        }
    }

    fn find_sync(&self, data: &[u8]) -> Sync {
        let v5 = self.v5();
        for off in 0..data.len() {
            let Some(rest) = data.get(off..) else { break };
            let h = match parser::parse_fixed_header(rest) {
                Ok(h) => h,
                Err(ParseError::Truncated) => return Sync::NeedMore(off),
                Err(ParseError::Invalid) => continue,
            };
            if h.total() > self.max_message {
                continue;
            }
            let Some(body) = rest.get(h.header_len..h.total()) else {
                if super::partial_ok(&h, rest.get(h.header_len..).unwrap_or_default(), v5) {
                    return Sync::NeedMore(off);
                }
                continue;
            };
            if parser::validate(&h, body, v5).is_err() {
                continue;
            }
            match rest.get(h.total()..) {
                Some(next) if !next.is_empty() && parser::parse_fixed_header(next) == Err(ParseError::Invalid) => {}
                _ => return Sync::At(off),
            }
        }
        Sync::Nothing
    }
}

/// Sets the response code, its status and, for a failure, its name.
fn set_code(call: &mut Call, code: u8, status: CallStatus, name: Option<&str>) {
    call.response_code = Some(i32::from(code));
    call.status = status;
    if status != CallStatus::Ok {
        call.response_exception = Some(name.map_or_else(|| format!("0x{code:02X}"), str::to_owned));
    }
}

fn respond(mut call: Call, first_ts: i64, end_ts: i64, total: usize) -> Call {
    call.response_first_ts = Some(first_ts);
    call.response_end_ts = Some(end_ts);
    call.response_bytes = total as u64;
    sorted(call)
}

fn sorted(mut call: Call) -> Call {
    call.attributes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    call
}

fn timeout_call(mut call: Call) -> Call {
    call.status = CallStatus::Timeout;
    sorted(call)
}

impl Decoder for Session {
    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
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
        }
        if self.dirs[d].resync {
            match self.find_sync(data.get(pos..).unwrap_or_default()) {
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
            let h = match parser::parse_fixed_header(rest) {
                Ok(h) => h,
                Err(ParseError::Truncated) => break,
                Err(ParseError::Invalid) => {
                    self.malformed += 1;
                    return Err(L7Error::Malformed("mqtt_bad_header"));
                }
            };
            let total = h.total();
            let msg_ts = if pos == 0 { first_ts } else { ts };
            let whole = rest.len() >= total;
            if !whole && (total <= self.max_message || rest.len() < HEAD_BYTES.min(total)) {
                break;
            }
            let body = rest.get(h.header_len..total.min(rest.len())).unwrap_or_default();
            self.on_packet(dir, &h, body, msg_ts, ts, out);
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

    fn on_gap(&mut self, dir: Direction, _len: u32) {
        let st = &mut self.dirs[dir_index(dir)];
        st.skip = 0;
        st.resync = true;
        st.partial_ts = None;
    }

    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending.get(i).is_some_and(|p| p.ts < older_than) {
                if let Some(p) = self.pending.remove(i) {
                    out.push(timeout_call(p.call));
                }
            } else {
                i += 1;
            }
        }
    }

    fn finish(&mut self, _end_ts: i64, out: &mut Vec<Call>) {
        out.extend(self.pending.drain(..).map(|p| timeout_call(p.call)));
        self.dirs = [DirState::default(), DirState::default()];
    }
}
