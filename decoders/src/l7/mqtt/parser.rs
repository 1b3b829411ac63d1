//! MQTT 3.1.1 (OASIS Standard, 2014) and MQTT 5.0 (OASIS Standard, 2019):
//! pure functions from a control packet's bytes to borrowed views. No
//! state, no allocation, no panics.
//!
//! A control packet is a fixed header (3.1.1 §2.2, 5.0 §2.1): one byte of
//! packet type (high nibble) and flags (low nibble), then the Remaining
//! Length as a variable byte integer of 1 to 4 bytes (at most
//! 268 435 455); then that many bytes of variable header and payload.
//! MQTT 5 adds a properties block (a variable byte integer length and
//! that many bytes, 5.0 §2.2.2) to most variable headers; this parser
//! skips it by its length. The variable-header functions take the bytes
//! after the fixed header, perhaps only the first part of a large
//! PUBLISH: whatever runs past the end is [`ParseError::Truncated`].

/// Largest Remaining Length (3.1.1 §2.2.3, 5.0 §1.5.5).
pub const MAX_REMAINING: usize = 268_435_455;

/// Why bytes are not an MQTT control packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// A field runs past the end of the bytes.
    Truncated,
    /// Reserved packet type, flags the type forbids, QoS 3, a Remaining
    /// Length over 4 bytes, or a field that breaks the format.
    Invalid,
}

/// Control packet types (3.1.1 §2.2.1, 5.0 §2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect,
    Connack,
    Publish,
    Puback,
    Pubrec,
    Pubrel,
    Pubcomp,
    Subscribe,
    Suback,
    Unsubscribe,
    Unsuback,
    Pingreq,
    Pingresp,
    Disconnect,
    /// MQTT 5 only.
    Auth,
}

impl PacketType {
    /// The type of the high nibble of the first byte (0 is reserved).
    #[must_use]
    pub fn from_nibble(n: u8) -> Option<Self> {
        use PacketType::*;
        Some(match n {
            1 => Connect,
            2 => Connack,
            3 => Publish,
            4 => Puback,
            5 => Pubrec,
            6 => Pubrel,
            7 => Pubcomp,
            8 => Subscribe,
            9 => Suback,
            10 => Unsubscribe,
            11 => Unsuback,
            12 => Pingreq,
            13 => Pingresp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The name as the standard writes it (`CONNECT`, `PUBLISH`…).
    #[must_use]
    pub fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Connect => "CONNECT",
            Connack => "CONNACK",
            Publish => "PUBLISH",
            Puback => "PUBACK",
            Pubrec => "PUBREC",
            Pubrel => "PUBREL",
            Pubcomp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            Suback => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            Unsuback => "UNSUBACK",
            Pingreq => "PINGREQ",
            Pingresp => "PINGRESP",
            Disconnect => "DISCONNECT",
            Auth => "AUTH",
        }
    }
}

/// A fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    pub kind: PacketType,
    /// The low nibble of the first byte.
    pub flags: u8,
    /// Length of the fixed header itself (2 to 5).
    pub header_len: usize,
    /// The Remaining Length.
    pub remaining: usize,
}

impl FixedHeader {
    /// PUBLISH QoS (0, 1 or 2).
    #[must_use]
    pub fn qos(&self) -> u8 {
        (self.flags >> 1) & 3
    }

    /// Whole packet length.
    #[must_use]
    pub fn total(&self) -> usize {
        self.header_len + self.remaining
    }
}

/// Parses a fixed header. Flags must be those the type requires
/// (3.1.1 §2.2.2, 5.0 §2.1.3): `0010` for PUBREL, SUBSCRIBE and
/// UNSUBSCRIBE, any but QoS 3 for PUBLISH, `0000` otherwise.
pub fn parse_fixed_header(b: &[u8]) -> Result<FixedHeader, ParseError> {
    let first = *b.first().ok_or(ParseError::Truncated)?;
    let kind = PacketType::from_nibble(first >> 4).ok_or(ParseError::Invalid)?;
    let flags = first & 0x0f;
    let flags_ok = match kind {
        PacketType::Publish => (flags >> 1) & 3 != 3,
        PacketType::Pubrel | PacketType::Subscribe | PacketType::Unsubscribe => flags == 2,
        _ => flags == 0,
    };
    if !flags_ok {
        return Err(ParseError::Invalid);
    }
    let (remaining, n) = varint(b.get(1..).unwrap_or_default())?;
    Ok(FixedHeader { kind, flags, header_len: 1 + n, remaining })
}

/// A variable byte integer (5.0 §1.5.5): the value and its length.
pub fn varint(b: &[u8]) -> Result<(usize, usize), ParseError> {
    let mut v = 0usize;
    for i in 0..4 {
        let byte = *b.get(i).ok_or(ParseError::Truncated)?;
        v |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(ParseError::Invalid)
}

/// A reader over a variable header.
#[derive(Debug, Clone)]
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or(ParseError::Invalid)?;
        let s = self.b.get(self.pos..end).ok_or(ParseError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ParseError> {
        self.bytes(1)?.first().copied().ok_or(ParseError::Truncated)
    }

    fn u16(&mut self) -> Result<u16, ParseError> {
        match self.bytes(2)? {
            &[a, b] => Ok(u16::from_be_bytes([a, b])),
            _ => Err(ParseError::Truncated),
        }
    }

    /// A UTF-8 encoded string or binary data: 2-byte length and bytes.
    fn string(&mut self) -> Result<&'a [u8], ParseError> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }

    /// An MQTT 5 properties block, skipped by its length.
    fn skip_properties(&mut self) -> Result<(), ParseError> {
        let (len, n) = varint(self.b.get(self.pos..).unwrap_or_default())?;
        self.pos += n;
        self.bytes(len).map(|_| ())
    }

    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }
}

/// A CONNECT's variable header and the payload fields a call uses
/// (3.1.1 §3.1, 5.0 §3.1). The password is skipped, never returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    /// `MQTT` (3.1.1, 5.0) or `MQIsdp` (3.1).
    pub protocol_name: &'a [u8],
    /// 3 (3.1), 4 (3.1.1) or 5 (5.0).
    pub level: u8,
    pub flags: u8,
    pub keep_alive: u16,
    pub client_id: &'a [u8],
    pub username: Option<&'a [u8]>,
}

/// Parses a CONNECT body. Rejects other protocol names and levels, and
/// a set reserved flag bit.
pub fn parse_connect(body: &[u8]) -> Result<Connect<'_>, ParseError> {
    let mut r = Reader { b: body, pos: 0 };
    let protocol_name = r.string()?;
    let level = r.u8()?;
    match (protocol_name, level) {
        (b"MQTT", 4 | 5) | (b"MQIsdp", 3) => {}
        _ => return Err(ParseError::Invalid),
    }
    let flags = r.u8()?;
    if flags & 1 != 0 {
        return Err(ParseError::Invalid);
    }
    let keep_alive = r.u16()?;
    if level == 5 {
        r.skip_properties()?;
    }
    let client_id = r.string()?;
    if flags & 0x04 != 0 {
        if level == 5 {
            r.skip_properties()?;
        }
        r.string()?; // will topic
        r.string()?; // will payload
    }
    let username = if flags & 0x80 != 0 { Some(r.string()?) } else { None };
    Ok(Connect { protocol_name, level, flags, keep_alive, client_id, username })
}

/// A CONNACK: session present flag and return (3.1.1) or reason (5.0)
/// code.
pub fn parse_connack(body: &[u8]) -> Result<(u8, u8), ParseError> {
    let mut r = Reader { b: body, pos: 0 };
    let ack_flags = r.u8()?;
    let code = r.u8()?;
    if ack_flags & 0xfe != 0 {
        return Err(ParseError::Invalid);
    }
    Ok((ack_flags, code))
}

/// A PUBLISH's variable header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    pub topic: &'a [u8],
    /// Present when QoS > 0.
    pub packet_id: Option<u16>,
}

/// Parses a PUBLISH variable header (3.1.1 §3.3.2, 5.0 §3.3.2) of the
/// given QoS; MQTT 5 properties are skipped when `v5`.
pub fn parse_publish(body: &[u8], qos: u8, v5: bool) -> Result<Publish<'_>, ParseError> {
    let mut r = Reader { b: body, pos: 0 };
    let topic = r.string()?;
    let packet_id = if qos > 0 { Some(r.u16()?) } else { None };
    if v5 {
        r.skip_properties()?;
    }
    Ok(Publish { topic, packet_id })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP (and 3.1.1 UNSUBACK): packet id and,
/// in MQTT 5, a reason code when the Remaining Length exceeds 2 (absent
/// means 0, Success: 5.0 §3.4.2.1).
pub fn parse_ack(body: &[u8], v5: bool) -> Result<(u16, Option<u8>), ParseError> {
    let mut r = Reader { b: body, pos: 0 };
    let id = r.u16()?;
    if !v5 {
        return Ok((id, None));
    }
    let code = if r.at_end() { 0 } else { r.u8()? };
    Ok((id, Some(code)))
}

/// SUBSCRIBE or UNSUBSCRIBE: packet id, the first topic filter and how
/// many there are (3.1.1 §3.8, §3.10; 5.0 §3.8, §3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    pub packet_id: u16,
    pub first: Option<&'a [u8]>,
    /// Filters counted before the bytes ran out.
    pub count: usize,
}

/// Parses SUBSCRIBE (`options`: each filter is followed by a byte of
/// options) or UNSUBSCRIBE.
pub fn parse_subscribe(body: &[u8], v5: bool, options: bool) -> Result<Subscribe<'_>, ParseError> {
    let mut r = Reader { b: body, pos: 0 };
    let packet_id = r.u16()?;
    if v5 {
        r.skip_properties()?;
    }
    let mut first = None;
    let mut count = 0;
    while !r.at_end() {
        let Ok(f) = r.string() else { break };
        if options && r.u8().is_err() {
            break;
        }
        first = first.or(Some(f));
        count += 1;
    }
    Ok(Subscribe { packet_id, first, count })
}

/// SUBACK or MQTT 5 UNSUBACK: packet id and the return/reason codes (one
/// per filter).
pub fn parse_suback(body: &[u8], v5: bool) -> Result<(u16, &[u8]), ParseError> {
    let mut r = Reader { b: body, pos: 0 };
    let id = r.u16()?;
    if v5 {
        r.skip_properties()?;
    }
    Ok((id, body.get(r.pos..).unwrap_or_default()))
}

/// The reason code of an MQTT 5 DISCONNECT or AUTH (absent: 0).
pub fn parse_reason_only(body: &[u8]) -> Result<u8, ParseError> {
    Ok(body.first().copied().unwrap_or(0))
}

/// Checks a whole packet (fixed header and `body` of exactly its
/// Remaining Length) against the format of its type. `v5`: MQTT 5
/// variable headers.
pub fn validate(h: &FixedHeader, body: &[u8], v5: bool) -> Result<(), ParseError> {
    use PacketType as P;
    let len = body.len();
    match h.kind {
        P::Connect => parse_connect(body).map(|_| ()),
        P::Connack => {
            let (_, code) = parse_connack(body)?;
            let ok = if len == 2 { code <= 5 || (v5 && is_reason_code(code)) } else { v5 && is_reason_code(code) };
            ok.then_some(()).ok_or(ParseError::Invalid)
        }
        P::Publish => {
            let p = parse_publish(body, h.qos(), v5)?;
            let printable = p.topic.iter().all(|&b| b >= 0x20 && b != 0x7f && b != b'+' && b != b'#');
            ((v5 || !p.topic.is_empty()) && printable && std::str::from_utf8(p.topic).is_ok())
                .then_some(())
                .ok_or(ParseError::Invalid)
        }
        P::Puback | P::Pubrec | P::Pubrel | P::Pubcomp => {
            let (_, code) = parse_ack(body, v5)?;
            let ok = if v5 { code.is_some_and(is_reason_code) } else { len == 2 };
            ok.then_some(()).ok_or(ParseError::Invalid)
        }
        P::Subscribe | P::Unsubscribe => {
            let s = parse_subscribe(body, v5, h.kind == P::Subscribe)?;
            let filter_ok = s.first.is_some_and(|f| !f.is_empty() && std::str::from_utf8(f).is_ok());
            filter_ok.then_some(()).ok_or(ParseError::Invalid)
        }
        P::Suback => {
            let (_, codes) = parse_suback(body, v5)?;
            let ok = !codes.is_empty() && codes.iter().all(|&c| c <= 2 || c == 0x80 || (v5 && is_reason_code(c)));
            ok.then_some(()).ok_or(ParseError::Invalid)
        }
        P::Unsuback => {
            if v5 {
                parse_suback(body, v5).map(|_| ())
            } else {
                (len == 2).then_some(()).ok_or(ParseError::Invalid)
            }
        }
        P::Pingreq | P::Pingresp => (len == 0).then_some(()).ok_or(ParseError::Invalid),
        P::Disconnect | P::Auth => {
            if len == 0 || (v5 && body.first().copied().is_some_and(is_reason_code)) {
                Ok(())
            } else {
                Err(ParseError::Invalid)
            }
        }
    }
}

/// Whether `c` is one of MQTT 5's reason codes (5.0 §2.4).
#[must_use]
pub fn is_reason_code(c: u8) -> bool {
    reason_name(c).is_some()
}

/// The name of an MQTT 5 reason code (5.0 §2.4, Table 2-6). 0x00 is
/// "Success" (also Normal disconnection, Granted QoS 0).
#[must_use]
pub fn reason_name(c: u8) -> Option<&'static str> {
    Some(match c {
        0x00 => "Success",
        0x01 => "Granted QoS 1",
        0x02 => "Granted QoS 2",
        0x04 => "Disconnect with Will Message",
        0x10 => "No matching subscribers",
        0x11 => "No subscription existed",
        0x18 => "Continue authentication",
        0x19 => "Re-authenticate",
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported Protocol Version",
        0x85 => "Client Identifier not valid",
        0x86 => "Bad User Name or Password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8B => "Server shutting down",
        0x8C => "Bad authentication method",
        0x8D => "Keep Alive timeout",
        0x8E => "Session taken over",
        0x8F => "Topic Filter invalid",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x93 => "Receive Maximum exceeded",
        0x94 => "Topic Alias invalid",
        0x95 => "Packet too large",
        0x96 => "Message rate too high",
        0x97 => "Quota exceeded",
        0x98 => "Administrative action",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9E => "Shared Subscriptions not supported",
        0x9F => "Connection rate exceeded",
        0xA0 => "Maximum connect time",
        0xA1 => "Subscription Identifiers not supported",
        0xA2 => "Wildcard Subscriptions not supported",
        _ => return None,
    })
}

/// The name of an MQTT 3.1.1 CONNACK return code (§3.2.2.3).
#[must_use]
pub fn connack_v3_name(c: u8) -> Option<&'static str> {
    Some(match c {
        0 => "Connection Accepted",
        1 => "unacceptable protocol version",
        2 => "identifier rejected",
        3 => "Server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => return None,
    })
}
