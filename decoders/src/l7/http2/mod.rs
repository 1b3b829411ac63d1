//! HTTP/2 (RFC 9113) with HPACK (RFC 7541), and gRPC on it: detection and a
//! session that turns each stream into one [`Call`](super::Call).
//!
//! - [`parser`]: frame headers, padding, HPACK (own decoder: why is said
//!   there), error and gRPC status names, trace-context helpers.
//! - [`session`]: [`Session`], framing, header blocks, streams, limits.
//!
//! # Probe
//!
//! TCP only. The client preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (a
//! prefix of it asks for more), so h2c prior knowledge and the bytes after
//! an HTTP/1 `Upgrade: h2c` are found. A capture that starts mid-connection
//! matches on a first frame that is:
//! - SETTINGS on stream 0, length a multiple of 6 up to 16 KiB, flags 0 or
//!   ACK (ACK: length 0), every setting a known identifier (RFC 9113
//!   §6.5.2, 8 and 9) with a legal value; an empty one must be followed by
//!   another plausible frame header;
//! - HEADERS on a non-zero stream, defined flags only, whole (up to 16 KiB)
//!   and whose header block's first field decodes to a pseudo-header;
//! - WINDOW_UPDATE (non-zero increment), PING, PRIORITY, RST_STREAM or
//!   GOAWAY with their exact lengths, followed by another plausible frame
//!   header.
//!
//! Anything else, DATA and CONTINUATION first included, is no match.
//!
//! # The call
//!
//! One call per stream, emitted when the server ends it (END_STREAM), when
//! it is reset, refused by GOAWAY, expired or left open at `finish`.
//! - `protocol`: `grpc` when the request's (or, without a request, the
//!   response's) `content-type` starts with `application/grpc`, else `http2`.
//! - `request_ts` / `response_first_ts`: first byte of the request / final
//!   response HEADERS frame; `response_end_ts`: the frame that ended the
//!   stream (RST_STREAM included; `None` when it was not seen).
//! - `request_type` `:method`; `request_domain` `:authority` (else `host`),
//!   lower-cased; `request_resource` `:path`; `version` `HTTP/2`;
//!   `user_agent`. Values are cut to [`session::MAX_TEXT`] bytes.
//! - `response_code`: HTTP/2, the `:status`; gRPC, the `grpc-status` (from
//!   the trailers or a trailers-only response), with the `:status` in
//!   attribute `http.status`.
//! - `status` (`response_status`): RST_STREAM and GOAWAY first (see below);
//!   else HTTP 4xx `client_error`, 5xx `server_error`; gRPC with HTTP 200:
//!   `grpc-status` 0 `ok`, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
//!   PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE, UNAUTHENTICATED
//!   `client_error`, every other code `server_error`; a response without
//!   status info `ok`; no response `timeout`. Nothing is `unparsed`: a
//!   header block HPACK cannot decode keeps the fields read before the
//!   error.
//! - `response_exception`: gRPC, the percent-decoded `grpc-message` (else
//!   the status name) of a non-zero status; RST_STREAM, the error code name
//!   (`CANCEL`, `REFUSED_STREAM`…); GOAWAY, `GOAWAY <code name>`.
//!   RST_STREAM status: NO_ERROR after a response `ok`; CANCEL,
//!   ENHANCE_YOUR_CALM, INADEQUATE_SECURITY, HTTP_1_1_REQUIRED
//!   `client_error`; other codes `server_error`. GOAWAY from the server ends
//!   the open client streams above its last-stream-id as `server_error`.
//!   Header blocks arriving later on a stream that already gave its call
//!   (a response crossing the client's RST_STREAM) are dropped (the last
//!   32 closed stream ids are remembered).
//! - `request_bytes` / `response_bytes`: the frames (headers included) of
//!   HEADERS, CONTINUATION and DATA of the stream per side; DATA bodies are
//!   counted, never buffered.
//! - Trace: as HTTP/1 (`traceparent`, else `b3`, else `X-B3-*`, else
//!   `sw8`; `x-request-id` of request and response).
//! - Attributes: `http2.stream_id`; `grpc.service` and `grpc.method` (from
//!   `/pkg.Service/Method`), `grpc.request_messages` and
//!   `grpc.response_messages` (5-byte message prefixes seen in DATA),
//!   `http.status`; `http.content_type` (response), `http.referer`,
//!   `http.x_forwarded_for`, `http.header.<name>` of
//!   `SessionConfig::attr_headers`. Authorization, cookie and set-cookie are
//!   never kept (only listed fields are copied).
//!
//! Mid-connection: HPACK references to dynamic-table entries inserted
//! before the capture (or lost in a gap) decode as unknown and are skipped;
//! static and literal fields are kept and the stream still gives a call (a
//! response without its request has request fields `None`). A stream
//! seen only through DATA frames gives no call. Server push: PUSH_PROMISE
//! blocks are decoded to keep the table; the pushed response is a call
//! with request fields `None`. After an HTTP/1 `Upgrade: h2c`, the
//! response on stream 1 is likewise a call without request fields (the
//! request was the HTTP/1 one).
//!
//! Limits: at most `max_pending` open streams (the oldest leaves as if
//! expired), header blocks and control frames up to `max_message_bytes`
//! (`TooLarge` beyond), HPACK tables up to [`parser::MAX_TABLE_SIZE`].

pub mod parser;
pub mod session;
#[cfg(test)]
mod tests;

pub use session::Session;

use super::{Direction, Probe, Transport};
use parser::{FrameHeader, FRAME_HEADER_LEN, PREFACE};

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(data: &[u8], _dir: Direction, transport: Transport) -> Probe {
    if transport == Transport::Udp {
        return Probe::NoMatch;
    }
    let n = data.len().min(PREFACE.len());
    if data.get(..n) == PREFACE.get(..n) {
        return if n == PREFACE.len() { Probe::Match } else { Probe::NeedMore };
    }
    let Some(h) = parser::parse_frame_header(data) else {
        // A frame header needs 9 bytes: the length's top byte must be 0 and
        // the length at most 16 KiB, the type known.
        // With the flags known, the type's rules apply to either kind of
        // stream id.
        let ok = if let Some(&[l0, l1, l2, kind, flags]) = data.get(..5) {
            let len = u32::from_be_bytes([0, l0, l1, l2]);
            [0, 1].iter().any(|&stream_id| {
                parser::plausible_header(&FrameHeader { len, kind, flags, stream_id }, parser::DEFAULT_MAX_FRAME)
            })
        } else {
            data.first().is_none_or(|&b| b == 0)
                && data.get(1).is_none_or(|&b| b <= 0x40)
                && data.get(3).is_none_or(|&t| t <= parser::CONTINUATION)
        };
        return if ok { Probe::NeedMore } else { Probe::NoMatch };
    };
    if !parser::plausible_header(&h, parser::DEFAULT_MAX_FRAME) {
        return Probe::NoMatch;
    }
    let end = FRAME_HEADER_LEN + h.len as usize;
    let Some(payload) = data.get(FRAME_HEADER_LEN..end) else { return Probe::NeedMore };
    match h.kind {
        parser::SETTINGS if h.len > 0 => {
            if payload.chunks(6).all(valid_setting) {
                Probe::Match
            } else {
                Probe::NoMatch
            }
        }
        parser::HEADERS => probe_headers(&h, payload),
        parser::SETTINGS | parser::PING | parser::PRIORITY | parser::RST_STREAM | parser::GOAWAY => {
            next_frame(data, end)
        }
        parser::WINDOW_UPDATE => {
            if parser::be32(payload, 0).unwrap_or(0) & 0x7fff_ffff == 0 {
                Probe::NoMatch
            } else {
                next_frame(data, end)
            }
        }
        _ => Probe::NoMatch,
    }
}

/// One SETTINGS parameter (RFC 9113 §6.5.2; 8: RFC 8441, 9: RFC 9218).
fn valid_setting(s: &[u8]) -> bool {
    let (Some(&[a, b]), Some(v)) = (s.get(..2), parser::be32(s, 2)) else { return false };
    match u16::from_be_bytes([a, b]) {
        1 | 3 | 6 => true,
        2 | 8 | 9 => v <= 1,
        4 => v <= 0x7fff_ffff,
        5 => (16_384..=16_777_215).contains(&v),
        _ => false,
    }
}

/// The frame after the first must have a plausible header too.
fn next_frame(data: &[u8], at: usize) -> Probe {
    let Some(rest) = data.get(at..) else { return Probe::NeedMore };
    match parser::parse_frame_header(rest) {
        None => Probe::NeedMore,
        Some(h) if parser::plausible_header(&h, parser::DEFAULT_MAX_FRAME) => Probe::Match,
        Some(_) => Probe::NoMatch,
    }
}

/// A HEADERS frame whose block starts with a pseudo-header field.
fn probe_headers(h: &FrameHeader, payload: &[u8]) -> Probe {
    let Ok(block) = parser::headers_fragment(h, payload) else { return Probe::NoMatch };
    let mut hpack = parser::Hpack::default();
    let mut first: Option<bool> = None;
    let _ = hpack.decode(block, &mut |(name, _)| {
        if first.is_none() {
            first = Some(name.is_some_and(|n| {
                matches!(n, b":method" | b":status" | b":path" | b":authority" | b":scheme" | b":protocol")
            }));
        }
    });
    if first == Some(true) {
        Probe::Match
    } else {
        Probe::NoMatch
    }
}
