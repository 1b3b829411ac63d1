//! MySQL client/server protocol (MariaDB too): detection, and a session
//! that turns each command and its response into one [`Call`](super::Call).
//!
//! - [`parser`]: packet framing and the packets a call needs, zero-copy.
//! - [`session`]: [`Session`], framing of both directions, pairing,
//!   result-set state, limits and calls.
//!
//! Why hand-written: the crates that speak the protocol (`mysql_common`,
//! `sqlx-mysql`, `mysql_async`) are client libraries: they own the
//! connection state, allocate every packet and column, and assume they
//! sent the command; none reads a passive, possibly cut, stream of both
//! directions. A call needs the command byte, the first bytes of its text
//! and the response's first packet and terminator: about 250 lines.
//!
//! # Probe
//!
//! The 4-byte header (3-byte length, sequence id) must fit the packet that
//! follows; ports never decide. Towards the server: sequence 0 and a
//! command whose shape is checked (`COM_QUIT`, `COM_PING`,
//! `COM_STATISTICS`, `COM_PROCESS_INFO`, `COM_RESET_CONNECTION` exactly 1
//! byte; `COM_STMT_CLOSE`/`RESET` 5, `COM_STMT_FETCH` 9;
//! `COM_STMT_EXECUTE` with iteration count 1; `COM_QUERY`,
//! `COM_STMT_PREPARE` and `COM_INIT_DB` followed by printable text starting
//! with a letter, `(` or `/`), or sequence 1 and a HandshakeResponse41
//! (PROTOCOL_41 flag, a character set, 19 zero filler bytes — MariaDB uses
//! the last 4 of the 23; 32 bytes with CLIENT_SSL for an SSLRequest). Towards the client: sequence 0 and a protocol-10 greeting
//! whose server version starts with a digit, or sequence 1 and an OK packet
//! that parses, an ERR packet with a `#` SQLSTATE, or a column count
//! followed by a column definition (catalog `def`). The sequence id alone
//! rejects HTTP, TLS, HTTP/2, Redis, MQTT, SSH and DNS over TCP; a length
//! of zero rejects PostgreSQL and Kafka. The same packets inside the
//! compressed protocol's 7-byte header (uncompressed length 0, payload
//! stored as is) match too.
//!
//! # The call
//!
//! One call per command, in the order sent (MySQL answers in order;
//! pipelined commands wait in a queue of at most `max_pending`):
//!
//! - `request_type`: the command's name, `COM_QUERY`, `COM_STMT_EXECUTE`…
//!   (`COM_0xNN` past the known ones); `Login` for the handshake.
//! - `request_resource`: the SQL text of `COM_QUERY` and
//!   `COM_STMT_PREPARE`, and of `COM_STMT_EXECUTE` when its statement was
//!   prepared in view; the database of `COM_INIT_DB`, `COM_CREATE_DB`,
//!   `COM_DROP_DB` and of `Login` (when the client names one); the table of
//!   `COM_FIELD_LIST`. Text is cut to [`MAX_TEXT_BYTES`] (256) bytes at a
//!   character boundary (configurable per session); string literals of a
//!   statement holding `IDENTIFIED` or `PASSWORD` are replaced by `'***'`.
//! - `request_domain`: none.
//! - `version`: the greeting's protocol version (`10`), once seen.
//! - `response_code`: `0` for OK, EOF and result sets, the error number of
//!   an ERR packet (`1064`…).
//! - `status`: `Ok` for OK/EOF/result sets; an ERR is `ServerError` when
//!   the server failed rather than the statement (SQLSTATE class `08`
//!   connection, `40` rollback/deadlock, `53` resources, `HY000` with one
//!   of the codes 1021 disk full, 1030 engine error, 1037/1038/1041 out of
//!   memory, 1040 too many connections, 1053 shutdown, 1105 unknown error,
//!   1114 table full, 1205 lock wait timeout, 1213 deadlock, 3024 query
//!   timeout), `ClientError` for every other error (syntax, access, unknown
//!   object, duplicate key…). `Timeout` when no response came, `Unparsed`
//!   when the response could not be read (a first packet of an unknown
//!   shape, bytes lost in the middle of it).
//! - `response_exception`: `SQLSTATE message` of an ERR (`42000 You have an
//!   error…`), or the message alone without SQLSTATE, cut to 256 bytes.
//! - `request_bytes`/`response_bytes`: whole packets, headers included,
//!   continuation packets and auth exchange packets too; with the
//!   compressed protocol, those of the uncompressed packets.
//! - Calls without a response: `COM_QUIT`, `COM_STMT_CLOSE`,
//!   `COM_STMT_SEND_LONG_DATA` (status `Ok`, no response fields), the
//!   SSLRequest `Login` and the binlog dump commands (the flow after them is
//!   consumed unread).
//! - A response whose first packet (sequence 1) arrives while no command
//!   waits (capture started mid-connection) is a call without request
//!   fields.
//!
//! Attributes: `mysql.server_version`, `mysql.connection_id`,
//! `mysql.user`, `mysql.auth_plugin` (Login), `mysql.ssl` (`true`: the
//! client asked for TLS; the rest of the flow is consumed unread),
//! `mysql.compressed` (`true`: the compressed protocol, zlib, is in use:
//! negotiated at login or recognised by the shape of the first packets;
//! zstd is not decoded and leaves the rest of the flow unread), `mysql.statement_id` (prepare response,
//! execute, fetch, close, reset, long data), `mysql.param_count` (prepare),
//! `mysql.affected_rows`, `mysql.last_insert_id` (when not 0),
//! `mysql.warnings` (when not 0), `mysql.column_count`, `mysql.row_count`,
//! `mysql.result_sets` (when more than one), `mysql.sqlstate`,
//! `mysql.text_truncated` (`true`), `mysql.local_infile` (`true`),
//! `mysql.incomplete` (`true`: the flow ended inside the response).
//!
//! Secrets are never stored: the auth response, auth switch data and
//! passwords of `COM_CHANGE_USER` are skipped over, and statement
//! parameters of `COM_STMT_EXECUTE` are not read.

pub mod parser;
pub mod session;
#[cfg(test)]
mod tests;

pub use session::{Session, MAX_TEXT_BYTES};

use super::{Direction, Probe, Transport};
use parser::{parse_header, HEADER_LEN};

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(data: &[u8], dir: Direction, transport: Transport) -> Probe {
    if transport != Transport::Tcp {
        return Probe::NoMatch;
    }
    match probe_plain(data, dir) {
        Probe::NoMatch => probe_compressed(data, dir),
        p => p,
    }
}

/// The compressed protocol's 7-byte header (compressed length, sequence,
/// uncompressed length 0: payload stored as is) around a packet that
/// [`probe_plain`] matches and that fits in it.
pub(super) fn probe_compressed(data: &[u8], dir: Direction) -> Probe {
    let Some(&[c0, c1, c2, seq, u0, u1, u2]) = data.get(..7) else { return Probe::NeedMore };
    let clen = u32::from_le_bytes([c0, c1, c2, 0]) as usize;
    if [u0, u1, u2] != [0, 0, 0] || clen < HEADER_LEN + 1 {
        return Probe::NoMatch;
    }
    match (dir, seq) {
        (Direction::ToServer, 0) | (Direction::ToClient, 0 | 1) => {}
        _ => return Probe::NoMatch,
    }
    let inner = data.get(7..).unwrap_or_default();
    let inner = inner.get(..clen).unwrap_or(inner);
    match parse_header(inner) {
        Some(h) if h.len as usize + HEADER_LEN > clen => Probe::NoMatch,
        Some(_) => probe_plain(inner, dir),
        None => Probe::NeedMore,
    }
}

/// [`probe`] without the compressed protocol.
pub(super) fn probe_plain(data: &[u8], dir: Direction) -> Probe {
    let Some(h) = parse_header(data) else { return Probe::NeedMore };
    if h.len == 0 {
        return Probe::NoMatch;
    }
    let len = h.len as usize;
    let avail = data.get(HEADER_LEN..).unwrap_or_default();
    let p = avail.get(..len).unwrap_or(avail);
    match (dir, h.seq) {
        (Direction::ToServer, 0) => probe_command(p, len),
        (Direction::ToServer, 1) => {
            if !(32..=8192).contains(&len) {
                return Probe::NoMatch;
            }
            if p.len() < 32 {
                return Probe::NeedMore;
            }
            let ok = parser::is_handshake_response(p)
                && (len > 32 || parser::le32(p, 0).is_some_and(|c| c & parser::CLIENT_SSL != 0));
            if ok {
                Probe::Match
            } else {
                Probe::NoMatch
            }
        }
        (Direction::ToClient, 0) => probe_greeting(p, len),
        (Direction::ToClient, 1) => probe_response(p, len, data.get(HEADER_LEN + len..)),
        _ => Probe::NoMatch,
    }
}

fn verdict(ok: bool) -> Probe {
    if ok {
        Probe::Match
    } else {
        Probe::NoMatch
    }
}

/// `p`: the first bytes of a command packet of `len` bytes.
fn probe_command(p: &[u8], len: usize) -> Probe {
    use parser::*;
    let Some(&cmd) = p.first() else { return Probe::NeedMore };
    match cmd {
        COM_QUIT | COM_PING | COM_STATISTICS | COM_PROCESS_INFO | COM_RESET_CONNECTION => verdict(len == 1),
        COM_STMT_CLOSE | COM_STMT_RESET => verdict(len == 5),
        COM_STMT_FETCH => verdict(len == 9),
        COM_STMT_EXECUTE => {
            if len < 10 {
                return Probe::NoMatch;
            }
            match (p.get(5), le32(p, 6)) {
                (Some(&flags), Some(iterations)) => verdict(flags & 0xf0 == 0 && iterations == 1),
                _ => Probe::NeedMore,
            }
        }
        COM_QUERY | COM_STMT_PREPARE | COM_INIT_DB => {
            // Enough text to judge: 32 bytes, or the whole packet.
            let want = len.min(1 + 2 + 32);
            if p.len() < want {
                return Probe::NeedMore;
            }
            let body = p.get(1..).unwrap_or_default();
            let text = if cmd == COM_INIT_DB { body } else { query_text(body, None) };
            let head = text.get(..text.len().min(32)).unwrap_or_default();
            let first = head.iter().find(|c| !c.is_ascii_whitespace());
            verdict(looks_textual(head) && first.is_some_and(|&c| c.is_ascii_alphabetic() || c == b'(' || c == b'/'))
        }
        _ => Probe::NoMatch,
    }
}

/// `p`: the first bytes of a greeting of `len` bytes.
fn probe_greeting(p: &[u8], len: usize) -> Probe {
    if !(20..=1024).contains(&len) || p.first() != Some(&10) {
        return Probe::NoMatch;
    }
    let version = p.get(1..).unwrap_or_default();
    let version = version.get(..version.len().min(64)).unwrap_or_default();
    match version.iter().position(|&c| c == 0) {
        Some(end) => {
            let v = version.get(..end).unwrap_or_default();
            if !(v.first().is_some_and(u8::is_ascii_digit) && v.iter().all(|c| (0x20..0x7f).contains(c))) {
                return Probe::NoMatch;
            }
            if p.len() < len.min(1 + end + 1 + 4 + 8 + 1 + 2) {
                return Probe::NeedMore;
            }
            verdict(parser::parse_greeting(p).is_some())
        }
        None if version.len() < 64 && p.len() < len => Probe::NeedMore,
        None => Probe::NoMatch,
    }
}

/// `p`: the first bytes of a response packet of `len` bytes with
/// sequence 1; `next`: the bytes after it.
fn probe_response(p: &[u8], len: usize, next: Option<&[u8]>) -> Probe {
    let Some(&first) = p.first() else { return Probe::NeedMore };
    match first {
        0x00 => {
            if !(7..=256).contains(&len) {
                return Probe::NoMatch;
            }
            if p.len() < len {
                return Probe::NeedMore;
            }
            verdict(parser::parse_ok(p).is_some())
        }
        0xff => {
            if !(9..=1024).contains(&len) {
                return Probe::NoMatch;
            }
            if p.len() < len.min(9 + 16) {
                return Probe::NeedMore;
            }
            match parser::parse_err(p) {
                Some(e) => verdict(
                    e.code >= 1000
                        && e.sqlstate.is_some_and(|s| s.iter().all(u8::is_ascii_alphanumeric))
                        && parser::looks_textual(e.message.get(..e.message.len().min(16)).unwrap_or_default()),
                ),
                None => Probe::NoMatch,
            }
        }
        1..=250 if len == 1 => {
            // A column count: the first column definition follows, with
            // sequence 2 and catalog "def".
            let Some(next) = next else { return Probe::NeedMore };
            match next.get(..8) {
                Some(&[_, _, _, 2, 3, b'd', b'e', b'f']) => Probe::Match,
                Some(_) => Probe::NoMatch,
                None => Probe::NeedMore,
            }
        }
        _ => Probe::NoMatch,
    }
}
