//! HTTP/1.0 and HTTP/1.1 (RFC 9112, semantics RFC 9110).
//!
//! - [`probe`]: a request-line with a known method (`GET `, `POST `,
//!   WebDAV's `PROPFIND `…) ending in ` HTTP/1.0` or ` HTTP/1.1` from the
//!   client, or `HTTP/1.x NNN` from the server. `NeedMore` while the first
//!   line is an incomplete but valid prefix (up to 8 KiB, past which a
//!   valid method and target are a match). UDP never matches.
//! - [`Session`]: heads are parsed with `httparse` (zero-copy, at most 64
//!   fields); bodies (Content-Length, chunked with trailers, until close)
//!   are skipped as they arrive and never buffered.
//!
//! # Calls
//!
//! One call per request and its final response, in order (pipelining:
//! the N-th response answers the N-th request).
//! - `request_ts`: first byte of the request head; `response_first_ts`:
//!   first byte of the final response (1xx interim responses only add
//!   their bytes to `response_bytes`); `response_end_ts`: last byte of the
//!   response (for a body delimited by the close, the last byte seen before
//!   `finish`; `None` when the end was lost in a gap).
//! - `request_type` method, `request_domain` the Host field as sent,
//!   lower-cased (port kept; none without Host, as Zeek and DeepFlow),
//!   `request_resource` the request-target as sent (authority for CONNECT,
//!   absolute URI for proxies), `version` of the request (of the response
//!   when no request was seen).
//! - `response_code`, `status` (1xx–3xx ok, 4xx client_error, 5xx
//!   server_error), `response_exception` the reason phrase of 4xx/5xx.
//! - `request_bytes` / `response_bytes`: head plus body bytes (bytes lost
//!   in a gap inside a body of known length included).
//! - Trace: `traceparent` (trace id, span id = its parent-id), else `b3`,
//!   else `X-B3-TraceId/SpanId/ParentSpanId`, else `sw8` (trace id
//!   base64-decoded, span id `<parent segment id>-<parent span id>`);
//!   `X-Request-ID` of request and response.
//! - Attributes: `http.content_type` (response), `http.referer`,
//!   `http.x_forwarded_for` and `http.header.<name>` for each of
//!   `SessionConfig::attr_headers` (request; repeated fields joined with
//!   `, `). Authorization, Proxy-Authorization, Cookie and Set-Cookie are
//!   never kept.
//!
//! # Framing and pairing
//!
//! - Responses to HEAD, 204 and 304 have no body; a response without
//!   length runs until the close. A response is paired with the oldest
//!   waiting request that started no later than it; otherwise it is a call
//!   of its own (request fields `None`), as when the capture began
//!   mid-flow.
//! - `101 Switching Protocols` and a 2xx answer to CONNECT end HTTP/1: the
//!   call is produced and every later byte of both directions is ignored.
//!   After a CONNECT or `Upgrade` request the client's next bytes wait (up
//!   to `max_message_bytes`) for the answer, since they may be tunnel bytes.
//! - A direction whose first bytes are not a start-line (capture began
//!   mid-message) skips to the next start-line.
//!
//! # Gaps
//!
//! A gap inside a body of known remaining length (Content-Length, chunk
//! data) or inside a body delimited by the close keeps the direction in
//! sync. Any other gap puts it out of sync: bytes are skipped up to a
//! plausible start-line at the start of a later `parse` or after a line
//! feed, where parsing resumes (errors in that first message resynchronise
//! again instead of failing). The session assumes the caller drops bytes it
//! was holding for a direction when it reports a gap there.
//!
//! - A head cut by a gap (a small snap length, a lost segment), by
//!   `max_message_bytes` or by the end of the flow still counts when its
//!   start-line was complete: the call gets the start-line and the fields
//!   whose lines were complete (a response's end is then unknown:
//!   `response_end_ts` is `None`, as for a response whose body lost sync).
//! - A request whose response was lost becomes `Unparsed` (not `Timeout`:
//!   the server answered, the answer was not seen): when not even the
//!   status-line was seen; and after a gap between messages, if requests
//!   sent after the gap wait behind requests sent before it, the first
//!   response answers the oldest of the later ones and the earlier ones are
//!   `Unparsed`; requests still waiting at `finish` or `expire` after such
//!   a gap are `Unparsed` too. A gap too short to hold a response (under 14
//!   bytes, such as a FIN counted as a byte) loses none.
//!
//! # Limits and errors
//!
//! - A head (or chunk trailer section) longer than `max_message_bytes` is
//!   `L7Error::TooLarge`; more than 64 header fields, a bad start-line,
//!   field, Content-Length, request Transfer-Encoding or chunk framing is
//!   `L7Error::Malformed("http_…")`. The direction is then given up (later
//!   bytes are ignored); unanswered requests of a failed server direction
//!   are `Unparsed`.
//! - At most `max_pending` requests wait; beyond, the oldest becomes a
//!   `Timeout` call ([`Session::dropped_pending`] counts them).
//! - `expire(t)` turns requests that started before `t` into `Timeout`
//!   calls; `finish` turns every waiting request into one.
//! - Never panics; memory per session is bounded by `max_pending` calls.

pub(crate) mod parser;
mod session;
#[cfg(test)]
mod tests;

pub use session::{Session, REDACTED_HEADERS};

use super::{Direction, Probe, Transport};

/// Longest first line the probe waits for.
pub const PROBE_LINE_LIMIT: usize = 8192;

/// Cheap check on the first bytes of a direction: a request-line with a
/// known method from the client, a status-line from the server.
#[must_use]
pub fn probe(data: &[u8], dir: Direction, transport: Transport) -> Probe {
    if transport == Transport::Udp {
        return Probe::NoMatch;
    }
    match dir {
        Direction::ToServer => parser::check_request_line(data, true, PROBE_LINE_LIMIT),
        Direction::ToClient => parser::check_status_line(data),
    }
}
