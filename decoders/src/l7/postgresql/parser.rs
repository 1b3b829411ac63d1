//! PostgreSQL frontend/backend protocol v3: message parsing over borrowed bytes.
//!
//! Pure functions from bytes to borrowed views, no state, no allocation,
//! no panics. References are to "Message Formats" (§55.7 of the
//! PostgreSQL 17 manual, <https://www.postgresql.org/docs/current/protocol-message-formats.html>)
//! and "Message Flow" (§55.2).
//!
//! Every message after the start-up phase is a type byte, an `Int32`
//! length that counts itself but not the type byte, and a body. The
//! frontend's first message (`StartupMessage`, `SSLRequest`,
//! `GSSENCRequest`, `CancelRequest`) has no type byte: an `Int32` length,
//! then an `Int32` code.
//!
//! Readers of fields the session needs (`Query`, `Parse`, `Bind`,
//! `Close`, `CommandComplete`, `ErrorResponse`…) accept a body cut short
//! (the session hands over only the first bytes of a long message): a
//! string without its terminator ends at the end of the bytes.
//! [`validate`] is strict: it checks a whole body's layout to the byte,
//! and is what the probe and the gap resynchronisation trust.

use crate::l7::Direction;

/// Type byte and length of a tagged message (§55.7).
pub const HEADER_LEN: usize = 5;
/// The server rejects a longer start-up packet (`MAX_STARTUP_PACKET_LENGTH`
/// in `src/include/libpq/pqcomm.h`).
pub const MAX_STARTUP_LEN: usize = 10_000;
/// Largest message the server accepts (`PQ_LARGE_MESSAGE_LIMIT`, 1 GiB - 1).
pub const MAX_MESSAGE_LEN: usize = 0x3fff_ffff;
/// `StartupMessage` code of protocol 3.0: major 3 in the high 16 bits.
pub const PROTOCOL_3: u32 = 3 << 16;
/// `SSLRequest` code (§55.7: 1234 in the high 16 bits, 5679 in the low).
pub const SSL_REQUEST: u32 = 80_877_103;
/// `GSSENCRequest` code (1234, 5680).
pub const GSSENC_REQUEST: u32 = 80_877_104;
/// `CancelRequest` code (1234, 5678).
pub const CANCEL_REQUEST: u32 = 80_877_102;

/// Why bytes are not a PostgreSQL message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The bytes end inside the message.
    Truncated,
    /// A length below its minimum (4 for a tagged message, 8 for a
    /// start-up one) or above the protocol's limit.
    BadLength,
    /// A type byte no message of this direction has.
    BadTag,
    /// An untagged message with an unknown code.
    BadCode,
}

impl ParseError {
    /// Stable name of the error, used as the `L7Error::Malformed` kind.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            ParseError::Truncated => "postgresql_truncated",
            ParseError::BadLength => "postgresql_bad_length",
            ParseError::BadTag => "postgresql_bad_tag",
            ParseError::BadCode => "postgresql_bad_code",
        }
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at + 4) {
        Some(&[a, b1, c, d]) => Some(u32::from_be_bytes([a, b1, c, d])),
        _ => None,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at + 2) {
        Some(&[a, b1]) => Some(u16::from_be_bytes([a, b1])),
        _ => None,
    }
}

/// Type bytes of frontend messages (§55.7): `Bind`, `Close`, `CopyData`,
/// `CopyDone`, `CopyFail`, `Describe`, `Execute`, `Flush`, `FunctionCall`,
/// `Parse`, `PasswordMessage` (and the SASL/GSS responses), `Query`,
/// `Sync`, `Terminate`.
#[must_use]
pub fn is_frontend_tag(t: u8) -> bool {
    matches!(t, b'B' | b'C' | b'd' | b'c' | b'f' | b'D' | b'E' | b'H' | b'F' | b'P' | b'p' | b'Q' | b'S' | b'X')
}

/// Type bytes of backend messages (§55.7).
#[must_use]
pub fn is_backend_tag(t: u8) -> bool {
    matches!(
        t,
        b'R' | b'K'
            | b'2'
            | b'3'
            | b'C'
            | b'd'
            | b'c'
            | b'G'
            | b'H'
            | b'W'
            | b'D'
            | b'I'
            | b'E'
            | b'V'
            | b'v'
            | b'n'
            | b'N'
            | b'A'
            | b't'
            | b'S'
            | b'1'
            | b's'
            | b'Z'
            | b'T'
    )
}

/// Message kinds whose useful fields come first, so that a long one can
/// be read from its first bytes and the rest skipped.
#[must_use]
pub fn streamable(dir: Direction, tag: u8) -> bool {
    match dir {
        Direction::ToServer => matches!(tag, b'Q' | b'P' | b'B' | b'F' | b'd' | b'p' | b'f'),
        Direction::ToClient => matches!(tag, b'D' | b'T' | b'd' | b'A' | b'N' | b'V' | b'R' | b'S' | b'v'),
    }
}

/// Type byte and total size (type byte included) of the tagged message
/// at the start of `b`, which needs at least [`HEADER_LEN`] bytes.
pub fn tagged_header(b: &[u8]) -> Result<(u8, usize), ParseError> {
    let (&tag, _) = b.split_first().ok_or(ParseError::Truncated)?;
    let len = be32(b, 1).ok_or(ParseError::Truncated)? as usize;
    if !(4..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(ParseError::BadLength);
    }
    Ok((tag, len + 1))
}

/// Length (itself included) and code of an untagged start-up message.
pub fn untagged_header(b: &[u8]) -> Result<(usize, u32), ParseError> {
    let len = be32(b, 0).ok_or(ParseError::Truncated)? as usize;
    let code = be32(b, 4).ok_or(ParseError::Truncated)?;
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return Err(ParseError::BadLength);
    }
    Ok((len, code))
}

/// A frontend message without a type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initial<'a> {
    /// `StartupMessage`: protocol version and `name\0value\0` pairs.
    Startup {
        major: u16,
        minor: u16,
        params: Params<'a>,
    },
    SslRequest,
    GssEncRequest,
    /// `CancelRequest`: the backend's process id (the secret key that
    /// follows is not read).
    Cancel {
        pid: u32,
    },
}

/// Reads a whole untagged message (length prefix included).
pub fn parse_initial(msg: &[u8]) -> Result<Initial<'_>, ParseError> {
    let (len, code) = untagged_header(msg)?;
    let msg = msg.get(..len).ok_or(ParseError::Truncated)?;
    match code {
        SSL_REQUEST if len == 8 => Ok(Initial::SslRequest),
        GSSENC_REQUEST if len == 8 => Ok(Initial::GssEncRequest),
        // 3.0 keys are 4 bytes; 3.2 allows up to 256 (§55.7).
        CANCEL_REQUEST if (16..=268).contains(&len) => {
            Ok(Initial::Cancel { pid: be32(msg, 8).ok_or(ParseError::Truncated)? })
        }
        c if c >> 16 == 3 => {
            let params = Params { rest: msg.get(8..).unwrap_or_default() };
            Ok(Initial::Startup { major: 3, minor: (c & 0xffff) as u16, params })
        }
        _ => Err(ParseError::BadCode),
    }
}

/// `name\0value\0` pairs of a `StartupMessage`, ended by an empty name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let (name, after) = cstr_strict(self.rest, 0)?;
        if name.is_empty() {
            self.rest = &[];
            return None;
        }
        let (value, after) = cstr_strict(self.rest, after)?;
        self.rest = self.rest.get(after..).unwrap_or_default();
        Some((name, value))
    }
}

/// The NUL-terminated string at `at` and the offset after its NUL.
fn cstr_strict(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(at..)?;
    let n = rest.iter().position(|&c| c == 0)?;
    Some((rest.get(..n)?, at + n + 1))
}

/// Like [`cstr_strict`], but a string cut by the end of `b` ends there.
fn cstr_lenient(b: &[u8], at: usize) -> (&[u8], usize) {
    let rest = b.get(at..).unwrap_or_default();
    match rest.iter().position(|&c| c == 0) {
        Some(n) => (rest.get(..n).unwrap_or_default(), at + n + 1),
        None => (rest, b.len().max(at)),
    }
}

/// `Query` body: the SQL text (possibly cut with the body).
#[must_use]
pub fn query_text(body: &[u8]) -> &[u8] {
    cstr_lenient(body, 0).0
}

/// `Parse` body: statement name and SQL text.
#[must_use]
pub fn parse_message(body: &[u8]) -> (&[u8], &[u8]) {
    let (name, at) = cstr_lenient(body, 0);
    (name, cstr_lenient(body, at).0)
}

/// `Bind` body: portal name and statement name.
#[must_use]
pub fn bind_message(body: &[u8]) -> (&[u8], &[u8]) {
    let (portal, at) = cstr_lenient(body, 0);
    (portal, cstr_lenient(body, at).0)
}

/// `Close` and `Describe` bodies: `S` (statement) or `P` (portal), and the name.
#[must_use]
pub fn target(body: &[u8]) -> (u8, &[u8]) {
    match body.split_first() {
        Some((&kind, rest)) => (kind, cstr_lenient(rest, 0).0),
        None => (0, &[]),
    }
}

/// `CommandComplete` body: the command tag (`INSERT 0 1`, `SELECT 5`…).
#[must_use]
pub fn command_tag(body: &[u8]) -> &[u8] {
    cstr_lenient(body, 0).0
}

/// Rows a command tag reports: its last word for the commands whose tag
/// ends in a count (§55.7 `CommandComplete`).
#[must_use]
pub fn tag_rows(tag: &[u8]) -> Option<u64> {
    let mut words = tag.split(|&c| c == b' ');
    let first = words.next()?;
    if !matches!(first, b"INSERT" | b"DELETE" | b"UPDATE" | b"MERGE" | b"SELECT" | b"MOVE" | b"FETCH" | b"COPY") {
        return None;
    }
    let last = tag.rsplit(|&c| c == b' ').next()?;
    if last.is_empty() || last.len() > 20 || !last.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(last).ok()?.parse().ok()
}

/// `ReadyForQuery` body: transaction status `I`, `T` or `E`.
#[must_use]
pub fn ready_status(body: &[u8]) -> Option<u8> {
    body.first().copied()
}

/// The fields of an `ErrorResponse` or `NoticeResponse` a call keeps
/// (§55.8): severity (`V`, else the localized `S`), SQLSTATE (`C`) and
/// primary message (`M`). Other fields (detail, hint, position, where…)
/// are not read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    pub severity: Option<&'a [u8]>,
    pub code: Option<&'a [u8]>,
    pub message: Option<&'a [u8]>,
}

/// Reads the fields of an `ErrorResponse` or `NoticeResponse` body.
#[must_use]
pub fn error_fields(body: &[u8]) -> ErrorFields<'_> {
    let mut f = ErrorFields::default();
    let mut at = 0;
    while let Some(&t) = body.get(at) {
        if t == 0 {
            break;
        }
        let (value, next) = cstr_lenient(body, at + 1);
        match t {
            b'V' => f.severity = Some(value),
            b'S' if f.severity.is_none() => f.severity = Some(value),
            b'C' => f.code = Some(value),
            b'M' => f.message = Some(value),
            _ => {}
        }
        at = next;
    }
    f
}

/// `Authentication*` body: the request code (0 ok, 3 cleartext, 5 MD5,
/// 7 GSS, 9 SSPI, 10 SASL…).
#[must_use]
pub fn auth_code(body: &[u8]) -> Option<u32> {
    be32(body, 0)
}

/// `AuthenticationSASL` body: the first mechanism offered.
#[must_use]
pub fn sasl_mechanism(body: &[u8]) -> &[u8] {
    cstr_lenient(body, 4).0
}

/// `BackendKeyData` body: the process id (the secret key is not read).
#[must_use]
pub fn backend_pid(body: &[u8]) -> Option<u32> {
    be32(body, 0)
}

/// `ParameterStatus` body: name and value.
#[must_use]
pub fn parameter_status(body: &[u8]) -> (&[u8], &[u8]) {
    let (name, at) = cstr_lenient(body, 0);
    (name, cstr_lenient(body, at).0)
}

/// A strict reader for [`validate`]: running out of bytes is an error,
/// unless the body is known to be cut (`partial`), when it ends the check
/// successfully.
struct Check<'a> {
    b: &'a [u8],
    at: usize,
    partial: bool,
}

/// `Err(true)`: the bytes ran out in a partial body (fine);
/// `Err(false)`: the layout is wrong.
type Step<T> = Result<T, bool>;

impl Check<'_> {
    fn out(&self) -> bool {
        self.partial
    }
    fn u16(&mut self) -> Step<u16> {
        let v = be16(self.b, self.at).ok_or(self.out())?;
        self.at += 2;
        Ok(v)
    }
    fn u32(&mut self) -> Step<u32> {
        let v = be32(self.b, self.at).ok_or(self.out())?;
        self.at += 4;
        Ok(v)
    }
    fn skip(&mut self, n: usize) -> Step<()> {
        if self.b.len().saturating_sub(self.at) < n {
            return Err(self.out());
        }
        self.at += n;
        Ok(())
    }
    /// A NUL-terminated string; with `text`, of printable characters
    /// (tab, CR, LF and any byte from 0x20 up: UTF-8 and other encodings).
    fn cstr(&mut self, text: bool) -> Step<()> {
        let rest = self.b.get(self.at..).unwrap_or_default();
        let n = rest.iter().position(|&c| c == 0);
        let s = rest.get(..n.unwrap_or(rest.len())).unwrap_or_default();
        if text && !s.iter().all(|&c| c >= 0x20 && c != 0x7f || matches!(c, b'\t' | b'\r' | b'\n')) {
            return Err(false);
        }
        match n {
            Some(n) => {
                self.at += n + 1;
                Ok(())
            }
            None => Err(self.out()),
        }
    }
    /// `n` values, each an `Int32` length (-1 for NULL) and its bytes.
    fn values(&mut self, n: u16) -> Step<()> {
        for _ in 0..n {
            let len = self.u32()?;
            if len != u32::MAX {
                self.skip(len as usize)?;
            }
        }
        Ok(())
    }
    /// `n` format codes, each 0 (text) or 1 (binary).
    fn formats(&mut self, n: u16) -> Step<()> {
        for _ in 0..n {
            if self.u16()? > 1 {
                return Err(false);
            }
        }
        Ok(())
    }
    fn end(&self) -> Step<()> {
        if self.at == self.b.len() {
            Ok(())
        } else {
            Err(false)
        }
    }
}

/// Whether `body` has exactly the layout of a message with type byte
/// `tag` sent towards `dir` (§55.7). With `partial`, `body` is only the
/// first bytes of the message, and running out of them is not a fault.
/// Message kinds without a checkable layout (`CopyData`,
/// `PasswordMessage`, `CopyFail`, `FunctionCallResponse`) are not
/// accepted: they make poor evidence.
#[must_use]
pub fn validate(dir: Direction, tag: u8, body: &[u8], partial: bool) -> bool {
    let mut c = Check { b: body, at: 0, partial };
    let r = match dir {
        Direction::ToServer => validate_frontend(&mut c, tag),
        Direction::ToClient => validate_backend(&mut c, tag),
    };
    match r {
        Ok(()) => true,
        Err(ran_out) => ran_out,
    }
}

fn validate_frontend(c: &mut Check<'_>, tag: u8) -> Step<()> {
    match tag {
        b'Q' => c.cstr(true)?,
        b'P' => {
            c.cstr(true)?;
            c.cstr(true)?;
            let n = c.u16()?;
            c.skip(4 * usize::from(n))?;
        }
        b'B' => {
            c.cstr(true)?;
            c.cstr(true)?;
            let n = c.u16()?;
            c.formats(n)?;
            let n = c.u16()?;
            c.values(n)?;
            let n = c.u16()?;
            c.formats(n)?;
        }
        b'E' => {
            c.cstr(true)?;
            c.u32()?;
        }
        b'D' | b'C' => {
            let (&kind, _) = c.b.split_first().ok_or(c.out())?;
            if !matches!(kind, b'S' | b'P') {
                return Err(false);
            }
            c.skip(1)?;
            c.cstr(true)?;
        }
        b'F' => {
            c.u32()?;
            let n = c.u16()?;
            c.formats(n)?;
            let n = c.u16()?;
            c.values(n)?;
            c.formats(1)?;
        }
        b'S' | b'H' | b'X' | b'c' => {}
        _ => return Err(false),
    }
    c.end()
}

fn validate_backend(c: &mut Check<'_>, tag: u8) -> Step<()> {
    match tag {
        b'Z' => {
            let (&s, _) = c.b.split_first().ok_or(c.out())?;
            if !matches!(s, b'I' | b'T' | b'E') {
                return Err(false);
            }
            c.skip(1)?;
        }
        b'1' | b'2' | b'3' | b'n' | b'I' | b's' | b'c' => {}
        b'C' => c.cstr(true)?,
        b'E' | b'N' => {
            let (mut has_code, mut has_message) = (false, false);
            loop {
                let (&t, _) = c.b.get(c.at..).unwrap_or_default().split_first().ok_or(c.out())?;
                c.skip(1)?;
                if t == 0 {
                    break;
                }
                if !t.is_ascii_alphabetic() {
                    return Err(false);
                }
                has_code |= t == b'C';
                has_message |= t == b'M';
                c.cstr(true)?;
            }
            if !(has_code && has_message) {
                return Err(false);
            }
        }
        b'T' => {
            let n = c.u16()?;
            for _ in 0..n {
                c.cstr(true)?;
                c.skip(4 + 2 + 4 + 2 + 4)?;
                c.formats(1)?;
            }
        }
        b'D' => {
            let n = c.u16()?;
            c.values(n)?;
        }
        b't' => {
            let n = c.u16()?;
            c.skip(4 * usize::from(n))?;
        }
        b'K' => {
            c.u32()?;
            // 4-byte key in 3.0, up to 256 bytes in 3.2.
            let key = c.b.len().saturating_sub(c.at);
            if !(4..=256).contains(&key) && !c.partial {
                return Err(false);
            }
            c.skip(key)?;
        }
        b'S' => {
            c.cstr(true)?;
            c.cstr(true)?;
        }
        b'R' => {
            let code = c.u32()?;
            match code {
                0 | 2 | 3 | 7 | 9 => {}
                5 => c.skip(4)?,
                10 => loop {
                    let rest = c.b.get(c.at..).unwrap_or_default();
                    if rest.first() == Some(&0) {
                        c.skip(1)?;
                        break;
                    }
                    c.cstr(true)?;
                },
                8 | 11 | 12 => c.at = c.b.len(),
                _ => return Err(false),
            }
        }
        b'A' => {
            c.u32()?;
            c.cstr(true)?;
            c.cstr(true)?;
        }
        b'G' | b'H' | b'W' => {
            let (&fmt, _) = c.b.split_first().ok_or(c.out())?;
            if fmt > 1 {
                return Err(false);
            }
            c.skip(1)?;
            let n = c.u16()?;
            c.formats(n)?;
        }
        b'v' => {
            c.u32()?;
            let n = c.u32()?;
            for _ in 0..n.min(1024) {
                c.cstr(true)?;
            }
        }
        _ => return Err(false),
    }
    c.end()
}

/// `s` truncated to at most `max` bytes on a UTF-8 character boundary
/// (bytes that are not UTF-8 are replaced, as `String::from_utf8_lossy`).
#[must_use]
pub fn text(s: &[u8], max: usize) -> String {
    let cut = s.get(..max).unwrap_or(s);
    match std::str::from_utf8(cut) {
        Ok(t) => t.to_owned(),
        // The cut split a character: keep what precedes it.
        Err(e) if e.error_len().is_none() && cut.len() < s.len() => {
            String::from_utf8_lossy(cut.get(..e.valid_up_to()).unwrap_or_default()).into_owned()
        }
        Err(_) => String::from_utf8_lossy(cut).into_owned(),
    }
}
