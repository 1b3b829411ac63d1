//! DNS over UDP and TCP (RFC 1035): detection, and a session that pairs
//! queries with responses and turns them into [`Call`](super::Call)s.
//!
//! - [`parser`]: the wire format, zero-copy views over a message.
//! - [`session`]: [`Session`], framing, matching, limits and calls.
//!
//! Why a parser of our own rather than `simple-dns` 0.13 (which borrows
//! from the buffer): its `Packet::parse` reserves a `Vec` per section with
//! the capacity announced by the untrusted header (up to 65 535 records,
//! megabytes for one bogus datagram), allocates a `Vec` of labels for
//! every name, decodes the RDATA of every record of every section (one
//! odd record in the additional section fails the whole message, and a
//! truncated response yields nothing), and folds unknown RCODEs into
//! `Reserved`, losing the value. A call needs the header, the first
//! question, the first answers and the OPT record's TTL: about 300 lines
//! that never allocate, read records lazily and bound every name walk.
//!
//! # Probe
//!
//! A plausible header (QDCOUNT 1..=4, OPCODE 0..=6 but not 3, Z clear,
//! QR clear, RCODE 0 and record counts that fit in the message at their
//! minimum sizes towards the server, QR set towards the client) and a
//! first question that parses without compression pointers (nothing
//! precedes it to point at), with a known QCLASS and a non-zero QTYPE,
//! and that is not a NetBIOS name query (same format, UDP 137).
//! Over TCP the same follows a 2-byte length of at least 12. A UDP
//! datagram is whole, so only an empty one asks for more.

pub mod parser;
pub mod session;

#[cfg(test)]
mod tests;

pub use session::Session;

use super::{Direction, Probe, Transport};
use parser::{ParseError, HEADER_LEN};

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(data: &[u8], dir: Direction, transport: Transport) -> Probe {
    match transport {
        Transport::Udp if data.is_empty() => Probe::NeedMore,
        Transport::Udp => probe_message(data, data.len(), dir),
        Transport::Tcp => {
            let Some(&[hi, lo]) = data.get(..2) else { return Probe::NeedMore };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if len < HEADER_LEN {
                return Probe::NoMatch;
            }
            let avail = data.get(2..).unwrap_or_default();
            let avail = avail.get(..len).unwrap_or(avail);
            probe_message(avail, len, dir)
        }
    }
}

/// `avail`: the first bytes of a message of `msg_len` bytes.
fn probe_message(avail: &[u8], msg_len: usize, dir: Direction) -> Probe {
    let complete = avail.len() >= msg_len;
    let Ok(h) = parser::parse_header(avail) else {
        return if complete { Probe::NoMatch } else { Probe::NeedMore };
    };
    let opcode = h.opcode();
    let plausible = (1..=4).contains(&h.qdcount)
        && opcode <= 6
        && opcode != 3
        && !h.z()
        && match dir {
            // Smallest question: root name and two shorts (5 bytes);
            // smallest record: root name, type, class, TTL, RDLENGTH (11).
            Direction::ToServer => {
                !h.qr() && h.rcode() == 0 && HEADER_LEN + 5 * usize::from(h.qdcount) + 11 * h.record_count() <= msg_len
            }
            // No size check: a response cut by the capture's snap length
            // keeps the counts of the whole message.
            Direction::ToClient => h.qr(),
        };
    if !plausible {
        return Probe::NoMatch;
    }
    match parser::parse_question(avail, HEADER_LEN) {
        Ok((q, _)) => {
            let class_ok = matches!(q.qclass & 0x7fff, 1 | 3 | 4 | 254 | 255);
            if q.name.is_compressed() || q.qtype == 0 || !class_ok || is_netbios(&q) {
                Probe::NoMatch
            } else {
                Probe::Match
            }
        }
        Err(ParseError::Truncated) if !complete => Probe::NeedMore,
        Err(_) => Probe::NoMatch,
    }
}

/// NetBIOS name service (UDP 137) shares DNS's format: its question is a
/// 32-letter `A`..`P` label (RFC 1002 §4.1) of type NB or NBSTAT.
fn is_netbios(q: &parser::Question<'_>) -> bool {
    matches!(q.qtype, 0x20 | 0x21)
        && q.name.labels().next().is_some_and(|l| l.len() == 32 && l.iter().all(|b| (b'A'..=b'P').contains(b)))
}
