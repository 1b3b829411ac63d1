//! TLS over TCP (SSL 3.0 to TLS 1.3, RFC 5246 and RFC 8446): detection,
//! and a session that turns each handshake into one [`Call`](super::Call).
//!
//! - [`parser`]: records, handshake messages, hellos and extensions as
//!   borrowed views (read with `tls-parser`), JA3/JA3S/JA4.
//! - [`session`]: [`Session`], record framing, handshake reassembly across
//!   records, the call.
//!
//! Only the handshake is decoded: once both sides have switched to
//! encryption the call is emitted and the rest of the flow is consumed
//! unread (encrypted bytes are counted by the flow, never parsed).
//!
//! # Probe
//!
//! Towards the server: a handshake record (type 22) with a record version
//! 0x0300..=0x0304, a length of at most 2^14 + 2048 and a first handshake
//! message of type ClientHello (1). Towards the client: the same with a
//! ServerHello (2), or an alert record (21) of plaintext size 2 with a
//! level of warning or fatal (a server refusing a handshake often answers
//! with nothing else). Fewer than 6 bytes that could still start such a
//! record ask for more. Towards the server also an SSL 2.0-style
//! ClientHello (RFC 5246 Appendix E.2: `0x80|len_hi len_lo 0x01 version
//! …`, still sent by some old clients; its 11-byte fixed part must be
//! self-consistent). Not detected: DTLS (UDP is out of scope, always
//! `NoMatch`).
//!
//! # The call
//!
//! One per handshake (per connection, normally; a second ClientHello after
//! a HelloRetryRequest belongs to the same call, a duplicate one without
//! it is ignored):
//! - `request_ts`: first byte of the ClientHello; `request_type`:
//!   `ClientHello`; `request_domain` and `request_resource`: the SNI,
//!   lower-case (the resource too, so that queries grouping by resource
//!   across protocols see the name the client asked for).
//! - `response_first_ts`: first byte of the server's first hello (the
//!   HelloRetryRequest when there is one), or of its alert.
//! - `response_end_ts`: last byte of the server's first flight as far as
//!   a passive observer can tell: the last server record before the client
//!   sends anything after the ServerHello. For a full TLS 1.2 handshake
//!   that is the record holding ServerHelloDone; for a resumed TLS 1.2
//!   handshake the server's Finished; for TLS 1.3 the last encrypted record
//!   of EncryptedExtensions…Finished (the client's Finished or
//!   change_cipher_spec ends it). Without an answer from the client it is
//!   the last server record of the handshake.
//! - `version`: negotiated version (`supported_versions` of the
//!   ServerHello, else its `legacy_version`) as `TLSv1.2`, `TLSv1.3`….
//! - `status`: `Ok`; on a fatal alert during the handshake `ServerError`
//!   (from the server) or `ClientError` (from the client) with
//!   `response_code` = alert description and `response_exception` = its
//!   name (`handshake_failure`); `Timeout` for a ClientHello without an
//!   answer; `Unparsed` when the server's answer was lost to a gap or
//!   could not be parsed. TLS 1.3 encrypts every alert sent after the
//!   ServerHello (a client rejecting the certificate, say): those go
//!   unseen and the call stays `Ok`. A ServerHello without a ClientHello (capture
//!   started mid-handshake) gives a call whose request fields are `None`.
//! - `request_bytes`, `response_bytes`: TLS record bytes (headers
//!   included) each side sent until the call was emitted.
//! - attributes: `tls.sni`, `tls.alpn` (offered, comma-separated),
//!   `tls.alpn_selected`, `tls.cipher` (IANA name, or hex), `tls.client_version`
//!   (ClientHello `legacy_version`), `tls.supported_versions` (offered,
//!   GREASE left out), `tls.ja3`, `tls.ja3_string`, `tls.ja4`, `tls.ja3s`
//!   (of the ServerHello that settles the handshake, not of a
//!   HelloRetryRequest, where tshark computes it),
//!   `tls.resumed` (`true` when a TLS 1.2 server echoes the client's
//!   session id), `tls.hello_retry_request` (`true`), `tls.sslv2_hello`
//!   (`true`: an SSL 2.0-style ClientHello, which has no extensions, so
//!   no SNI and no JA3/JA4), `tls.warning_alert`
//!   (name of the first non-fatal alert: close_notify, user_canceled,
//!   no_renegotiation, unrecognized_name as warnings).
//!
//! # Gaps and limits
//!
//! A gap during the handshake loses its direction (whatever message it
//! cut is dropped, the direction is read no further); the other direction
//! goes on, and the call is emitted when nothing more can be learnt (or at
//! `finish`). After the handshake gaps do not matter. A ClientHello or
//! ServerHello spanning records is copied into a buffer of at most
//! `max_message_bytes` (`L7Error::TooLarge` beyond); other messages are
//! skipped without copying. A record header that cannot be TLS is
//! `L7Error::Malformed("tls_bad_record")`.

pub mod parser;
pub mod session;

#[cfg(test)]
mod tests;

pub use session::Session;

use super::{Direction, Probe, Transport};
use parser::{CT_ALERT, CT_HANDSHAKE, HS_CLIENT_HELLO, HS_SERVER_HELLO, MAX_RECORD_LEN};

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(data: &[u8], dir: Direction, transport: Transport) -> Probe {
    if transport == Transport::Udp {
        return Probe::NoMatch;
    }
    let want_handshake = match dir {
        Direction::ToServer => HS_CLIENT_HELLO,
        Direction::ToClient => HS_SERVER_HELLO,
    };
    let alert_ok = dir == Direction::ToClient;
    if dir == Direction::ToServer && data.first().is_some_and(|b| b & 0x80 != 0) {
        return match parser::sslv2_client_hello(data) {
            parser::Sslv2Hello::Incomplete => Probe::NeedMore,
            parser::Sslv2Hello::Invalid => Probe::NoMatch,
            parser::Sslv2Hello::Hello { .. } => Probe::Match,
        };
    }
    // Each byte that is there must fit; a prefix that fits asks for more.
    let Some(&ct) = data.first() else { return Probe::NeedMore };
    if !(ct == CT_HANDSHAKE || (alert_ok && ct == CT_ALERT)) {
        return Probe::NoMatch;
    }
    if data.get(1).is_some_and(|&major| major != 3) || data.get(2).is_some_and(|&minor| minor > 4) {
        return Probe::NoMatch;
    }
    let [_, _, _, l0, l1, b5, ..] = *data else { return Probe::NeedMore };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let fits = if ct == CT_ALERT {
        len == 2 && matches!(b5, 1 | 2)
    } else {
        // Room for at least a handshake message header.
        (parser::HANDSHAKE_HEADER_LEN..=MAX_RECORD_LEN).contains(&len) && b5 == want_handshake
    };
    if fits {
        Probe::Match
    } else {
        Probe::NoMatch
    }
}
