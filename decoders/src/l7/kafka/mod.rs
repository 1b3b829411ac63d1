//! Apache Kafka wire protocol (<https://kafka.apache.org/protocol>):
//! detection, and a session that pairs each request with its response by
//! correlation id and turns them into [`Call`](super::Call)s.
//!
//! - [`parser`]: request and response headers, the first topic of
//!   Produce, Fetch and Metadata, group ids, the first error code of the
//!   responses that carry one where it is cheap to reach.
//! - [`session`]: [`Session`], framing, pairing, limits and calls.
//!
//! Why a parser of our own: the Kafka crates (`kafka-protocol`) decode a
//! whole message into owned structs, records included, and need the
//! whole message in memory; a call needs a header, one topic name and
//! one error code from the first few hundred bytes of a message that may
//! be megabytes long.
//!
//! # Probe
//!
//! A request header, in either direction: a 4-byte size of 10 bytes to
//! 16 MiB (so the first byte is 0), a known API key
//! (0..=[`parser::MAX_API_KEY`]), a version up to
//! [`parser::MAX_API_VERSION`], a non-negative correlation id, and a
//! `client_id` of printable ASCII (or null) that fits in the message and
//! is not empty unless the request is ApiVersions.
//! Either direction, because the analyzer's guess of the client can be
//! wrong (no handshake in the capture, two high ports); the session
//! takes the direction of the first bytes it is given, those the probe
//! matched, as the request direction. A response has no header of its
//! own to recognise (a size and a correlation id) and is not looked for.
//!
//! # The call
//!
//! One request and its response:
//! - `request_type`: the API name (`Produce`, `Fetch`, `ApiVersions`…),
//!   `api_<n>` for a key without a name.
//! - `version`: the request's `api_version` (`"7"`).
//! - `request_resource`: the first topic of Produce (v0+), Fetch (v0..=12;
//!   v13+ names topics by id: `None`) and Metadata (its first name); the
//!   group id of OffsetCommit, OffsetFetch (v0..=7), JoinGroup,
//!   Heartbeat, LeaveGroup and SyncGroup; `None` otherwise. Lossy UTF-8,
//!   at most [`session::MAX_TEXT`] bytes.
//! - `request_domain`: `None`.
//! - `response_code`: the first error code of the response where the
//!   decoder knows its place: the first field (ApiVersions,
//!   SaslHandshake, SaslAuthenticate, v0 of the group APIs), after
//!   `throttle_time_ms` (Fetch v7+, JoinGroup v2+, Heartbeat, LeaveGroup,
//!   SyncGroup, ListGroups v1+, FindCoordinator v1..=3, InitProducerId,
//!   AddOffsetsToTxn, EndTxn, DescribeAcls, DescribeCluster), or the
//!   first partition's (Produce, Fetch v0..=6, ListOffsets,
//!   OffsetCommit). `None` for other APIs.
//! - `status`: error 0 or no error code is `Ok`; the broker's own failure
//!   or unavailability is `ServerError`: UNKNOWN_SERVER_ERROR (-1),
//!   CORRUPT_MESSAGE (2), LEADER_NOT_AVAILABLE (5),
//!   NOT_LEADER_OR_FOLLOWER (6), REQUEST_TIMED_OUT (7),
//!   BROKER_NOT_AVAILABLE (8), REPLICA_NOT_AVAILABLE (9),
//!   NETWORK_EXCEPTION (13), COORDINATOR_LOAD_IN_PROGRESS (14),
//!   COORDINATOR_NOT_AVAILABLE (15), NOT_COORDINATOR (16),
//!   NOT_ENOUGH_REPLICAS (19, 20), NOT_CONTROLLER (41),
//!   KAFKA_STORAGE_ERROR (56), LOG_DIR_NOT_FOUND (57),
//!   LISTENER_NOT_FOUND (72), FENCED/UNKNOWN_LEADER_EPOCH (74, 75),
//!   OFFSET_NOT_AVAILABLE (78), PREFERRED/ELIGIBLE leaders not available
//!   (80, 83) and any code without a name; every other code (the request
//!   was wrong, not authorised, or names what does not exist, like
//!   UNKNOWN_TOPIC_OR_PARTITION 3) is `ClientError`. A response whose
//!   error code is cut short is `Unparsed`; a response whose request was
//!   not seen is `Unparsed` too (its body cannot be read without the
//!   request's API key), with every request field `None`.
//! - `response_exception`: the error's name (`UNKNOWN_TOPIC_OR_PARTITION`,
//!   `ERROR_<n>` for a code without one) when the code is not 0.
//! - `request_bytes`, `response_bytes`: whole messages with their size
//!   field.
//! - attributes: `kafka.correlation_id`, `kafka.client_id` (lossy UTF-8,
//!   at most [`session::MAX_TEXT`] bytes; absent when null), `kafka.acks`
//!   (Produce).
//!
//! A Produce with `acks` 0 gets no response (the protocol guide, Produce
//! API): it becomes a call at once, status `Ok`, no response fields.
//! Requests still waiting at `expire`/`finish` become `Timeout` calls.

pub mod parser;
pub mod session;
#[cfg(test)]
mod tests;

pub use session::Session;

use super::{Direction, Probe, Transport};

/// Largest message the probe believes (and the session frames).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(data: &[u8], dir: Direction, transport: Transport) -> Probe {
    let _ = dir; // Either direction: see the module doc.
    if transport != Transport::Tcp {
        return Probe::NoMatch;
    }
    probe_request(data)
}

/// Whether `data` starts with a plausible request (size and header).
pub(crate) fn probe_request(data: &[u8]) -> Probe {
    let Some(&[a, b, c, d]) = data.get(..4) else {
        return if data.first().is_some_and(|&b| b != 0) { Probe::NoMatch } else { Probe::NeedMore };
    };
    let size = u32::from_be_bytes([a, b, c, d]) as usize;
    if !(10..=MAX_FRAME).contains(&size) {
        return Probe::NoMatch;
    }
    let msg = data.get(4..).unwrap_or_default();
    let msg = msg.get(..size).unwrap_or(msg);
    let mut r = parser::Reader::new(msg);
    let head = (|| {
        let key = r.i16()?;
        let version = r.i16()?;
        let corr = r.i32()?;
        Ok::<_, parser::ParseError>((key, version, corr))
    })();
    let Ok((key, version, corr)) = head else { return Probe::NeedMore };
    if !(0..=parser::MAX_API_KEY).contains(&key) || !(0..=parser::MAX_API_VERSION).contains(&version) || corr < 0 {
        return Probe::NoMatch;
    }
    let Ok(len) = r.i16() else { return Probe::NeedMore };
    if len == -1 {
        return Probe::Match;
    }
    let Ok(len) = usize::try_from(len) else { return Probe::NoMatch };
    // An empty client id is legal but rare outside a first ApiVersions,
    // and it is what zeros look like (an HTTP/2 SETTINGS frame reads as
    // Produce v0 with an empty client id).
    if 10 + len > size || (len == 0 && key != 18) {
        return Probe::NoMatch;
    }
    let avail = msg.get(10..).unwrap_or_default();
    let shown = avail.get(..len).unwrap_or(avail);
    if !shown.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Probe::NoMatch;
    }
    if shown.len() < len {
        Probe::NeedMore
    } else {
        Probe::Match
    }
}
