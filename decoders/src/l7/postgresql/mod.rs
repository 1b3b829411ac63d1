//! PostgreSQL frontend/backend protocol v3: detection and a session that
//! turns each request and its response into one [`Call`](super::Call).
//!
//! - [`parser`]: the wire format, zero-copy views over one message.
//! - [`session`]: [`Session`], framing, pairing, limits and calls.
//!
//! Why a parser of our own: the crates that read this protocol
//! (`postgres-protocol`, `pgwire`) are written for one end of a
//! connection. `postgres-protocol` decodes only backend messages and
//! allocates per message; `pgwire` decodes both directions but through
//! `bytes::BytesMut` it owns, copying every message and failing on one it
//! cannot read, and neither reads a message cut short. A passive decoder
//! needs both directions, borrowed bytes, tolerance for a truncated long
//! message and a strict layout check for detection: a few hundred lines
//! over the spec's message table.
//!
//! # Probe
//!
//! Towards the server: a start-up packet (no type byte): a length of 8 to
//! 10 000 and the `SSLRequest` or `GSSENCRequest` code with length 8, the
//! `CancelRequest` code with length 16 to 268, or protocol 3.x whose
//! first parameter name is a lower-case identifier (`user`, `database`,
//! `_pq_.…`). Either way, a capture that starts mid-connection: a
//! message with a type byte of its direction, a length of 4 to 16 MiB
//! whose body has exactly the layout of its type (`Query`: printable SQL
//! ending in its one NUL; `Parse`, `Bind`, `RowDescription`, `DataRow`,
//! `ErrorResponse` with `C` and `M` fields, `ReadyForQuery` with `I`, `T`
//! or `E`…), checked on the bytes present once at least 64 of the body
//! are there, and, when the next message's header is present, a valid
//! type byte and length for it. Type bytes whose body cannot be checked
//! (`CopyData`, `PasswordMessage`) never match. The other protocols'
//! first bytes fail on the type byte (`*`, `+`, 0x16, 0x10…), on the
//! length (`PRI *`, `POST`, `HTTP`, `SSH-` read as lengths are hundreds
//! of megabytes) or on the start-up code (DNS, Kafka).
//!
//! # The call
//!
//! One call per request and everything the server answers up to its
//! `ReadyForQuery` (`Z`):
//!
//! | request | `request_type` | `request_resource` |
//! |---|---|---|
//! | `StartupMessage`, and the authentication exchange up to `ReadyForQuery` (or the `ErrorResponse` that ends it) | `Startup` | the database |
//! | `SSLRequest` and its one-byte answer | `SSLRequest` | — |
//! | `GSSENCRequest` and its one-byte answer | `GSSENCRequest` | — |
//! | `CancelRequest` (no answer: the call is complete when sent, status `ok`) | `CancelRequest` | — |
//! | simple query `Q` | `Query` | the SQL text |
//! | extended batch: `Parse`/`Bind`/`Describe`/`Execute`/`Close`/`Flush` up to `Sync` | `Execute` if the batch has an `Execute`, else `Parse` if it has a `Parse`, else the first message's name (`Bind`, `Describe`, `Close`, `Flush`, `Sync`) | the SQL text of the first `Parse`, else of the named statement the first `Bind` uses (remembered from its `Parse` on this connection) |
//! | `FunctionCall` | `FunctionCall` | — |
//!
//! SQL text is cut to [`MAX_TEXT`] bytes on a character boundary.
//! `COPY … FROM STDIN` data (`CopyData`, `CopyDone`, `CopyFail`) counts
//! in the bytes of the `Query` that started it. Passwords, SASL and GSS
//! messages (`p`) count in the bytes of the `Startup` call and are never
//! read. `Terminate` is not a call.
//!
//! - `version`: `3.0` (or `3.x`) from the `StartupMessage` when seen, else none.
//! - `response_code`: none when the call succeeded. An `ErrorResponse`
//!   gives the SQLSTATE class (its first two characters) as a number when
//!   both are digits (`23505` → 23, `42P01` → 42, `08006` → 8), else 1
//!   (classes `XX`, `HV`, `P0`, `F0`). `SSLRequest`/`GSSENCRequest`: the
//!   answer byte (`S` 83, `N` 78, `G` 71). A class keeps the number
//!   compact and groupable; the full SQLSTATE is in `response_exception`.
//! - `response_exception`: `SQLSTATE: message` of the first
//!   `ErrorResponse`, cut to [`MAX_TEXT`] bytes. `NoticeResponse` is not an
//!   error and is not kept.
//! - `status`: `ok`; with an `ErrorResponse`, `server_error` for the
//!   classes that are the server's trouble (`08` connection exception,
//!   `53` insufficient resources, `57` operator intervention, `58` system
//!   error, `XX` internal error), `client_error` for every other class
//!   (syntax, constraint, privilege, data, authentication…); `timeout`
//!   when no `ReadyForQuery` came before `expire`/`finish` (a call that
//!   already holds an error keeps it); `unparsed` for an `SSLRequest` or
//!   `GSSENCRequest` answered by a byte that is neither its answer nor
//!   the start of an `ErrorResponse` (an old server refusing with an
//!   error gives that error's code and status). A response seen without
//!   its request (capture started mid-connection) is a call with no
//!   request fields, ended by its `ReadyForQuery` or by `finish`.
//! - `request_bytes`/`response_bytes`: all messages of the request and of
//!   the response, headers included.
//!
//! Attributes (sorted by key):
//! - `postgresql.user`, `postgresql.database`, `postgresql.application_name`
//!   (`Startup`, from the `StartupMessage`), `postgresql.auth` (the method
//!   the server asked for: `ok` (trust), `cleartext`, `md5`, `gss`, `sspi`,
//!   `sasl:<mechanism>`), `postgresql.backend_pid` (`BackendKeyData`, and
//!   the target of a `CancelRequest`), `postgresql.server_version`
//!   (`ParameterStatus`).
//! - `postgresql.ssl` / `postgresql.gssenc`: `accepted` or `refused`.
//!   After an accepted one the connection is encrypted and every further
//!   byte is consumed unread.
//! - `postgresql.statement`: the name of the prepared statement a batch
//!   uses (unnamed statements have none).
//! - `postgresql.command_tag` and `postgresql.rows`: the last
//!   `CommandComplete` of the response and the count it ends with
//!   (`INSERT 0 1` → 1, `SELECT 5` → 5).
//! - `postgresql.severity`: of the `ErrorResponse` (`ERROR`, `FATAL`…).
//! - `postgresql.transaction`: the `ReadyForQuery` status: `idle`,
//!   `in_transaction` or `failed`.
//!
//! Server-initiated messages (`ParameterStatus`, `NotificationResponse`,
//! `NoticeResponse`) are not calls; they count in the bytes of the call
//! under way, if any.

pub mod parser;
pub mod session;
#[cfg(test)]
mod tests;

pub use session::Session;

use super::{Direction, Probe, Transport};

/// Longest SQL text, error text or parameter value kept, in bytes.
pub const MAX_TEXT: usize = 256;

/// Body bytes a probe wants before judging a message that is not whole.
const PROBE_MIN_BODY: usize = 64;
/// Longest message a probe believes in.
const PROBE_MAX_MESSAGE: usize = 16 << 20;

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(data: &[u8], dir: Direction, transport: Transport) -> Probe {
    if transport != Transport::Tcp {
        return Probe::NoMatch;
    }
    let Some(&first) = data.first() else { return Probe::NeedMore };
    if first == 0 && dir == Direction::ToServer {
        return probe_initial(data);
    }
    probe_tagged(data, dir, PROBE_MAX_MESSAGE)
}

fn probe_initial(data: &[u8]) -> Probe {
    let (len, code) = match parser::untagged_header(data) {
        Ok(h) => h,
        Err(parser::ParseError::Truncated) => return Probe::NeedMore,
        Err(_) => return Probe::NoMatch,
    };
    match code {
        parser::SSL_REQUEST | parser::GSSENC_REQUEST if len == 8 => Probe::Match,
        parser::CANCEL_REQUEST if (16..=268).contains(&len) => Probe::Match,
        c if c >> 16 == 3 && c & 0xffff <= 16 => {
            // The first parameter name: a lower-case identifier.
            let body = data.get(8..len.min(data.len())).unwrap_or_default();
            let name_end = body.iter().position(|&c| c == 0);
            let name = body.get(..name_end.unwrap_or(body.len())).unwrap_or_default();
            let ident = name.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.');
            match name_end {
                _ if !ident => Probe::NoMatch,
                Some(n) if n > 0 => Probe::Match,
                Some(_) => Probe::NoMatch,
                None if data.len() >= len || name.len() > 64 => Probe::NoMatch,
                None => Probe::NeedMore,
            }
        }
        _ => Probe::NoMatch,
    }
}

/// A tagged message at the start of `data` whose body has its type's
/// layout, and a plausible header after it when one is present. Also the
/// session's resynchronisation test: `max_whole` is its message size
/// limit, above which only the kinds it can stream are believed.
pub(crate) fn probe_tagged(data: &[u8], dir: Direction, max_whole: usize) -> Probe {
    let Some(&tag) = data.first() else { return Probe::NeedMore };
    let tag_ok = match dir {
        Direction::ToServer => parser::is_frontend_tag(tag),
        Direction::ToClient => parser::is_backend_tag(tag),
    };
    if !tag_ok {
        return Probe::NoMatch;
    }
    let total = match parser::tagged_header(data) {
        Ok((_, total)) if total <= PROBE_MAX_MESSAGE && (total <= max_whole || parser::streamable(dir, tag)) => total,
        Ok(_) => return Probe::NoMatch,
        Err(parser::ParseError::Truncated) => return Probe::NeedMore,
        Err(_) => return Probe::NoMatch,
    };
    let whole = data.len() >= total;
    let body = data.get(parser::HEADER_LEN..total.min(data.len())).unwrap_or_default();
    if !whole && body.len() < PROBE_MIN_BODY {
        // Judge now if the bytes already present are wrong.
        return if parser::validate(dir, tag, body, true) { Probe::NeedMore } else { Probe::NoMatch };
    }
    if !parser::validate(dir, tag, body, !whole) {
        return Probe::NoMatch;
    }
    let Some(next) = data.get(total..) else { return Probe::Match };
    if next.len() < parser::HEADER_LEN {
        return Probe::Match;
    }
    let next_ok = match (dir, next.first()) {
        (Direction::ToServer, Some(&t)) => parser::is_frontend_tag(t),
        (Direction::ToClient, Some(&t)) => parser::is_backend_tag(t),
        (_, None) => false,
    };
    match parser::tagged_header(next) {
        Ok((_, len)) if next_ok && len <= PROBE_MAX_MESSAGE => Probe::Match,
        _ => Probe::NoMatch,
    }
}
