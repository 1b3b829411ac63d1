//! Redis RESP2 and RESP3: detection, and a session that pairs commands
//! with replies and turns them into [`Call`](super::Call)s.
//!
//! - [`parser`]: the wire format, borrowed views of header lines.
//! - [`session`]: [`Session`], framing, pairing, pub/sub, limits and calls.
//!
//! Why a parser of our own rather than `redis-protocol` (6.x) or
//! `resp`/`redis` crates: they decode a whole frame into owned values
//! (every bulk string copied, every array a `Vec`) and need the whole
//! frame in the buffer, so a 500 kB `GET` reply would have to be held in
//! memory past `max_message_bytes`. A call needs the command name, the
//! first key, the reply's type and error text: a header-line reader and a
//! nesting counter that skips blob payloads as they stream by, about 200
//! lines that never allocate per value.
//!
//! # Probe
//!
//! Never on UDP (Redis is TCP only). The first bytes must be a
//! well-formed RESP value header: a type byte (one of
//! `+-:$*_#,(!=%~>|`) and a line ended by CRLF within 64 bytes whose text fits the
//! type (a simple string of printable ASCII, an error starting with an
//! upper-case code, a signed integer, a length of `-1`, `?` or up to
//! 512 MB, `t`/`f`, an empty null…). An aggregate with elements must be
//! followed by a well-formed element header, checked the same way up to
//! three levels deep. Towards the server an inline command also matches:
//! one of a few common commands (`PING`, `INFO`, `ECHO`, `GET`, `SET`,
//! `DEL`, `EXISTS`, `INCR`, `KEYS`, `SELECT`, `DBSIZE`, `MONITOR`,
//! `FLUSHALL`, `FLUSHDB`, `SUBSCRIBE`, `PUBLISH`, `CONFIG`, `CLIENT`,
//! `COMMAND`, `HELLO`) followed by a space or the line end, a printable
//! line ended by LF within 512 bytes, no `HTTP/` in it and no argument
//! starting with `/` (HTTP/0.9 `GET /`). The other protocols' first bytes
//! fail the first check: TLS `0x16`, DNS/PostgreSQL/Kafka/HTTP/2 frames
//! start with a zero length byte, MySQL's greeting (a length that may be
//! `*`, 0x2a) has no digits after it, MQTT `0x10`, HTTP and SSH lines are
//! not Redis commands. Prefixes of a valid header ask for more bytes.
//!
//! # The call
//!
//! One call per command and its reply (in order; pipelined commands are
//! answered in order), one per published message, one per reply nothing
//! waits for (capture started mid-connection).
//!
//! - `request_type`: the command name in upper case (`GET`, `SET`,
//!   `CONFIG`), at most 32 bytes; for a published message its kind
//!   (`message`, `pmessage`, `smessage`, or the RESP3 push kind such as
//!   `invalidate`); `None` for a reply without command.
//! - `request_resource`: the command's first key, truncated to 256 bytes
//!   ([`parser::MAX_TEXT`]): argument 1 for most commands and commands not
//!   known (`GET user:1` → `user:1`; `PUBLISH`/`SUBSCRIBE` → the (first)
//!   channel; `KEYS` → the pattern), argument 2 after a subcommand
//!   (`OBJECT`, `MEMORY`, `XINFO`, `XGROUP`) or for `BITOP`; `None` for
//!   commands without key (`PING`, `INFO`, `SELECT`, `EVAL`, `SCAN`,
//!   `MULTI`…, see [`parser::key_at`]) and for `AUTH` and `HELLO`, whose
//!   arguments (passwords) are never read. For a published message: its
//!   channel. Values are never kept.
//! - `request_domain`, `version`, `user_agent`, trace: `None`.
//! - `response_code`: `None` (RESP has no numeric status).
//! - `status`: `Ok` for every reply but errors; an error reply (`-` or
//!   RESP3 `!`) is `ServerError` when its code reports the server's state
//!   (`OOM`, `BUSY`, `LOADING`, `MASTERDOWN`, `MISCONF`, `READONLY`,
//!   `NOREPLICAS`, `CLUSTERDOWN`, `TRYAGAIN`) and `ClientError` for every
//!   other code (`ERR` unknown command / syntax / wrong arguments,
//!   `WRONGTYPE`, `NOAUTH`, `WRONGPASS`, `NOPERM`, `NOSCRIPT`, `EXECABORT`,
//!   `MOVED`, `ASK`…). DeepFlow calls every error reply a server error;
//!   the request caused most of them, so they are client errors here.
//!   `Timeout`: a command without reply when the flow ends, when it is
//!   older than the analyzer's request timeout, when more than
//!   `max_pending` wait (the oldest leaves) or when reply bytes were lost
//!   (gap). A nil reply (`$-1`, `*-1`, `_`) is `Ok`.
//! - `response_exception`: the error text (`ERR unknown command 'FOO'…`,
//!   `WRONGTYPE Operation against a key…`), truncated to 256 bytes.
//! - `request_ts`: first byte of the command (`None` for a published
//!   message or a reply without command); `response_first_ts` and
//!   `response_end_ts`: first and last byte of the reply.
//! - `request_bytes`, `response_bytes`: the whole RESP messages (an inline
//!   command: its line and LF).
//! - attributes: `redis.reply_type`, the reply's type: `simple`, `error`,
//!   `integer`, `bulk`, `array`, `nil` (RESP2 `$-1`/`*-1`, RESP3 `_`),
//!   `map`, `set`, `push`, `double`, `boolean`, `bignum`, `bulk_error`,
//!   `verbatim` (an attribute `|` before a reply is skipped; the type is
//!   the reply's); `redis.subcommand`, the upper-case subcommand of
//!   `CONFIG`, `CLIENT`, `CLUSTER`, `COMMAND`, `ACL`, `SCRIPT`,
//!   `FUNCTION`, `PUBSUB`, `SLOWLOG`, `LATENCY`, `MODULE`, `DEBUG`,
//!   `SENTINEL`, `OBJECT`, `MEMORY`, `XINFO` and `XGROUP`;
//!   `redis.truncated` `true` when the flow ended inside the reply (its
//!   type was read; DeepFlow's `redis.pcap` ends 2 bytes short of its last
//!   bulk string): the call keeps the reply's status and the bytes seen.
//!
//! Pub/sub: after `SUBSCRIBE` (or `PSUBSCRIBE`/`SSUBSCRIBE`) the server
//! pushes `message` arrays nothing asked for; each becomes a call with
//! `request_ts` `None`, `request_type` the kind and `request_resource` the
//! channel, `redis.reply_type` `array` (RESP2) or `push` (RESP3). The
//! confirmation of a subscribe command (one per channel) answers it; the
//! extra ones are not calls.
//!
//! Not interpreted: `CLIENT REPLY OFF|SKIP` (the commands it silences end
//! as timeouts), quoting in inline commands (words are split on blanks),
//! and the protocol version (`HELLO 3`): the same session reads RESP2 and
//! RESP3 replies.

pub mod parser;
pub mod session;
#[cfg(test)]
mod tests;

pub use session::Session;

use super::{Direction, Probe, Transport};
use parser::Length;

/// Longest header line the probe waits for.
const PROBE_LINE: usize = 64;
/// Longest inline command line the probe waits for.
const PROBE_INLINE: usize = 512;
/// Commands a client may plausibly send inline as its first line.
const INLINE_COMMANDS: [&[u8]; 20] = [
    b"PING",
    b"INFO",
    b"ECHO",
    b"GET",
    b"SET",
    b"DEL",
    b"EXISTS",
    b"INCR",
    b"KEYS",
    b"SELECT",
    b"DBSIZE",
    b"MONITOR",
    b"FLUSHALL",
    b"FLUSHDB",
    b"SUBSCRIBE",
    b"PUBLISH",
    b"CONFIG",
    b"CLIENT",
    b"COMMAND",
    b"HELLO",
];

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(data: &[u8], dir: Direction, transport: Transport) -> Probe {
    if transport == Transport::Udp {
        return Probe::NoMatch;
    }
    let Some(&first) = data.first() else { return Probe::NeedMore };
    if parser::is_type(first) {
        probe_value(data, 0)
    } else if dir == Direction::ToServer {
        probe_inline(data)
    } else {
        Probe::NoMatch
    }
}

/// A well-formed header at the start of `data`, and for an aggregate
/// with elements, a well-formed first element (up to depth 3).
fn probe_value(data: &[u8], depth: usize) -> Probe {
    let Some(&ty) = data.first() else { return Probe::NeedMore };
    if !parser::is_type(ty) {
        return Probe::NoMatch;
    }
    let hdr = match parser::parse_header(data, PROBE_LINE) {
        Ok(Some(h)) => h,
        Ok(None) if data.len() < PROBE_LINE && plausible_partial_line(data) => return Probe::NeedMore,
        _ => return Probe::NoMatch,
    };
    let ok = match ty {
        b'+' => !hdr.arg.is_empty() && hdr.arg.iter().all(|b| (0x20..0x7f).contains(b)),
        b'-' => {
            let code = parser::error_code(hdr.arg);
            code.len() >= 2
                && code.iter().all(u8::is_ascii_uppercase)
                && hdr.arg.iter().all(|b| (0x20..0x7f).contains(b))
        }
        b'$' | b'!' | b'=' => parser::parse_length(hdr.arg, parser::MAX_BULK_LEN).is_ok(),
        b'*' | b'%' | b'~' | b'>' | b'|' => {
            return match parser::parse_length(hdr.arg, parser::MAX_COUNT) {
                Ok(Length::Count(n)) if n > 0 && depth < 3 => {
                    probe_value(data.get(hdr.len..).unwrap_or_default(), depth + 1)
                }
                Ok(_) => Probe::Match,
                Err(_) => Probe::NoMatch,
            };
        }
        _ => parser::check_simple(ty, hdr.arg).is_ok(),
    };
    if ok {
        Probe::Match
    } else {
        Probe::NoMatch
    }
}

/// A header line cut before its CRLF that can still become one: printable
/// bytes, possibly ending in the CR.
fn plausible_partial_line(data: &[u8]) -> bool {
    let body = data.get(1..).unwrap_or_default();
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    body.iter().all(|b| (0x20..0x7f).contains(b))
}

/// An inline command towards the server.
fn probe_inline(data: &[u8]) -> Probe {
    let word_end = data.iter().position(|&b| !b.is_ascii_alphabetic()).unwrap_or(data.len());
    let word = data.get(..word_end).unwrap_or_default();
    let known = |w: &[u8]| INLINE_COMMANDS.iter().any(|c| c.eq_ignore_ascii_case(w));
    let prefix_of_known =
        |w: &[u8]| INLINE_COMMANDS.iter().any(|c| c.get(..w.len()).is_some_and(|p| p.eq_ignore_ascii_case(w)));
    if word_end == data.len() {
        return if word.len() <= 9 && prefix_of_known(word) { Probe::NeedMore } else { Probe::NoMatch };
    }
    if !known(word) || !matches!(data.get(word_end), Some(b' ' | b'\r' | b'\n')) {
        return Probe::NoMatch;
    }
    let limit = data.len().min(PROBE_INLINE);
    let lf = data.get(..limit).and_then(|d| d.iter().position(|&b| b == b'\n'));
    let line = data.get(..lf.unwrap_or(limit)).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let printable = line.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\t');
    let http = line.windows(5).any(|w| w == b"HTTP/");
    let slash = parser::inline_words(line).skip(1).any(|w| w.first() == Some(&b'/'));
    match lf {
        _ if !printable || http || slash => Probe::NoMatch,
        Some(_) => Probe::Match,
        None if data.len() < PROBE_INLINE => Probe::NeedMore,
        None => Probe::NoMatch,
    }
}
