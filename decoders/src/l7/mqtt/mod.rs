//! MQTT 3.1.1 and 5.0 (OASIS): detection, and a session that pairs
//! control packets into [`Call`](super::Call)s.
//!
//! - [`parser`]: fixed header, the variable headers a call reads, MQTT 5
//!   properties skipped by length.
//! - [`session`]: [`Session`], framing, pairing, limits and calls.
//!
//! Why a parser of our own: `mqttbytes`/`rumqttc` decode into owned
//! packets (payload copied, whole packet in memory) and fail a packet
//! over a size limit; a call needs the fixed header, a topic and a packet
//! id from the first bytes of a packet that may be megabytes long.
//!
//! # Probe
//!
//! The data must start with a whole, well-formed control packet (flags
//! as its type requires, every field within the Remaining Length, see
//! [`parser::validate`]) of a type that can open what is seen of a
//! connection: CONNECT (protocol name `MQTT` level 4 or 5, or `MQIsdp`
//! level 3), CONNACK, or, for a capture that starts mid-connection,
//! PUBLISH (a printable UTF-8 topic without wildcards), SUBSCRIBE,
//! UNSUBSCRIBE or SUBACK. In either direction: the analyzer's guess of
//! the client can be wrong, and the session pairs packets by the
//! direction they travel relative to each other, not by its guess. Any bytes after it must start
//! another valid fixed header. A first packet not yet whole asks for
//! more when its fixed header is valid and it is under 64 KiB. TLS
//! records (0x14..=0x17), HTTP methods and ASCII banners fail the flag
//! check of their first byte's type.
//!
//! # The call
//!
//! - `request_type`: the packet type of the request (`CONNECT`,
//!   `PUBLISH`, `SUBSCRIBE`, `UNSUBSCRIBE`, `PINGREQ`, `DISCONNECT`,
//!   `AUTH`); `None` for a response whose request was not seen (its type
//!   is in `mqtt.response_type`).
//! - Pairing: CONNECT with CONNACK; PUBLISH QoS 1 with PUBACK; PUBLISH
//!   QoS 2 with PUBREC, PUBREL and PUBCOMP (the call ends at PUBCOMP, or
//!   at a PUBREC with a failure reason code); SUBSCRIBE with SUBACK and
//!   UNSUBSCRIBE with UNSUBACK by packet id; PINGREQ with the next
//!   PINGRESP. PUBLISH QoS 0, DISCONNECT and AUTH have no response: each
//!   is a call at once, status `Ok` unless its MQTT 5 reason code says
//!   otherwise.
//! - Direction: a PUBLISH from the server (to a subscriber) is a call as
//!   well as one from the client; `mqtt.direction` says which
//!   (`to_server`, `to_client`: the client is the side that sent
//!   CONNECT, SUBSCRIBE, UNSUBSCRIBE or PINGREQ, or received their
//!   answers; the analyzer's guess until one is seen), and its
//!   acknowledgements come the other way. Packet ids of the two directions are separate spaces.
//! - `request_domain`: the client identifier from CONNECT, on every call
//!   of the connection once seen.
//! - `request_resource`: the PUBLISH topic, the first topic filter of
//!   SUBSCRIBE/UNSUBSCRIBE (lossy UTF-8, at most [`session::MAX_TEXT`]
//!   bytes); `None` otherwise.
//! - `version`: `3.1`, `3.1.1` or `5.0` from the CONNECT protocol level;
//!   `None` before a CONNECT was seen.
//! - `response_code`: the CONNACK return/reason code; the first failure
//!   code of a SUBACK (or MQTT 5 UNSUBACK), else its first code; the
//!   MQTT 5 reason code of PUBACK, PUBREC, PUBCOMP (0 when omitted),
//!   DISCONNECT and AUTH; `None` where 3.1.1 has no code (PUBACK, PUBCOMP,
//!   UNSUBACK, PINGRESP).
//! - `status`: code 0 (or no code) is `Ok`, and so are MQTT 5 codes below
//!   0x80 (Granted QoS, No matching subscribers…). CONNACK 3.1.1: 3
//!   (Server unavailable) is `ServerError`, 1, 2, 4, 5 `ClientError`.
//!   SUBACK 3.1.1: 0x80 (Failure) is `ClientError` (a refused filter).
//!   MQTT 5 codes of 0x80 and above: Unspecified error (0x80),
//!   Implementation specific error (0x83), Server unavailable (0x88),
//!   Server busy (0x89), Server shutting down (0x8B), Use another server
//!   (0x9C), Server moved (0x9D) are `ServerError`; the others (Not
//!   authorized, Topic Name invalid, Quota exceeded…) `ClientError`.
//!   A response that does not parse is `Unparsed`; a request with no
//!   response by `expire`/`finish` is `Timeout`.
//! - `response_exception`: the name of a failure code (`Not authorized`,
//!   `Server unavailable`…).
//! - `request_bytes`/`response_bytes`: whole packets; a QoS 2 flow counts
//!   PUBLISH and PUBREL as request, PUBREC and PUBCOMP as response.
//! - attributes: `mqtt.client_id` (CONNECT), `mqtt.username` (CONNECT;
//!   the password is never read), `mqtt.qos`, `mqtt.packet_id`,
//!   `mqtt.retain` (PUBLISH with the retain flag), `mqtt.direction`
//!   (PUBLISH), `mqtt.topic_count` (SUBSCRIBE/UNSUBSCRIBE with several
//!   filters), `mqtt.response_type` (response without its request).

pub mod parser;
pub mod session;
#[cfg(test)]
mod tests;

pub use session::Session;

use super::{Direction, Probe, Transport};
use parser::{PacketType, ParseError};

/// Largest first packet the probe waits for.
const PROBE_MAX: usize = 64 * 1024;

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(data: &[u8], dir: Direction, transport: Transport) -> Probe {
    if transport != Transport::Tcp {
        return Probe::NoMatch;
    }
    let h = match parser::parse_fixed_header(data) {
        Ok(h) => h,
        Err(ParseError::Truncated) => return Probe::NeedMore,
        Err(ParseError::Invalid) => return Probe::NoMatch,
    };
    let _ = dir; // Either direction: see the module doc.
    let opener = matches!(
        h.kind,
        PacketType::Connect
            | PacketType::Connack
            | PacketType::Publish
            | PacketType::Subscribe
            | PacketType::Unsubscribe
            | PacketType::Suback
    );
    if !opener {
        return Probe::NoMatch;
    }
    let Some(body) = data.get(h.header_len..h.total()) else {
        if h.total() > PROBE_MAX {
            return Probe::NoMatch;
        }
        // Check what is there: a CONNECT's protocol name, a topic.
        let part = data.get(h.header_len..).unwrap_or_default();
        return match partial_ok(&h, part, true) {
            true => Probe::NeedMore,
            false => Probe::NoMatch,
        };
    };
    // The protocol level is unknown here: a packet valid in either
    // version will do (CONNECT carries its own level).
    if parser::validate(&h, body, false).is_err() && parser::validate(&h, body, true).is_err() {
        return Probe::NoMatch;
    }
    match data.get(h.total()..) {
        Some(rest) if !rest.is_empty() => match parser::parse_fixed_header(rest) {
            Err(ParseError::Invalid) => Probe::NoMatch,
            _ => Probe::Match,
        },
        _ => Probe::Match,
    }
}

/// Whether the first bytes of a packet not yet whole can still be valid
/// (`v5`: allow MQTT 5 lengths).
fn partial_ok(h: &parser::FixedHeader, part: &[u8], v5: bool) -> bool {
    match h.kind {
        PacketType::Connect => {
            let want: &[u8] = if part.get(..3) == Some(b"\x00\x06M") { b"\x00\x06MQIsdp" } else { b"\x00\x04MQTT" };
            let n = part.len().min(want.len());
            part.get(..n) == want.get(..n)
        }
        PacketType::Publish => match part.get(..2) {
            Some(&[hi, lo]) => {
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                let topic = part.get(2..).unwrap_or_default();
                let topic = topic.get(..len).unwrap_or(topic);
                2 + len <= h.remaining && topic.iter().all(|&b| b >= 0x20 && b != 0x7f && b != b'+' && b != b'#')
            }
            _ => true,
        },
        // Fixed sizes in 3.1.1; a reason code and properties in 5.0.
        PacketType::Connack
        | PacketType::Puback
        | PacketType::Pubrec
        | PacketType::Pubrel
        | PacketType::Pubcomp
        | PacketType::Unsuback => h.remaining == 2 || (v5 && h.remaining < 1024),
        PacketType::Pingreq | PacketType::Pingresp => h.remaining == 0,
        PacketType::Disconnect | PacketType::Auth => h.remaining == 0 || (v5 && h.remaining < 1024),
        PacketType::Subscribe | PacketType::Unsubscribe | PacketType::Suback => (3..PROBE_MAX).contains(&h.remaining),
    }
}
