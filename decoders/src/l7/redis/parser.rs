//! Redis RESP2/RESP3 wire format: pure functions from bytes to borrowed
//! views. No state, no allocation, no panics.
//!
//! References: the RESP specification
//! (<https://redis.io/docs/latest/develop/reference/protocol-spec/>, "RESP")
//! and RESP3 (<https://github.com/redis/redis-specifications/blob/master/protocol/RESP3.md>).
//!
//! Every value starts with a type byte and a header line ended by CRLF
//! (RESP "RESP protocol description"). Simple types keep their payload in
//! that line (`+` simple string, `-` simple error, `:` integer, and the
//! RESP3 `_` null, `#` boolean, `,` double, `(` big number); blob types
//! give a length and the payload follows with its own CRLF (`$` bulk
//! string, RESP3 `!` bulk error, `=` verbatim string); aggregates give a
//! count of values that follow (`*` array, RESP3 `%` map (pairs), `~` set,
//! `>` push, `|` attribute (pairs, placed before the value it describes)).
//! RESP3 "Streamed strings" (`$?`, then `;len` chunks ending with `;0`)
//! and "Streamed aggregate data types" (`*?` … `.`) have no length
//! up front. RESP2 nulls are `$-1` and `*-1`.
//!
//! A client may also send an inline command: one line of words ended by
//! LF (RESP "Inline commands").

/// Longest bulk string accepted: Redis' default `proto-max-bulk-len`
/// (512 MB). A longer announced length is taken as garbage.
pub const MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
/// Most elements announced by one aggregate (Redis' own request limit is
/// 1 048 576; replies can be longer, so this is only a sanity bound).
pub const MAX_COUNT: u64 = 1 << 32;
/// Longest text kept from a message (first key, error text, channel).
pub const MAX_TEXT: usize = 256;

/// Why bytes are not RESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// A value starts with a byte that is no RESP type.
    UnknownType,
    /// A length or count that is not a number in range.
    BadLength,
    /// A simple value whose line does not fit its type (integer, boolean…).
    BadValue,
    /// A line holding a lone LF before its CRLF.
    BadLine,
    /// A blob payload not followed by CRLF.
    MissingCrlf,
    /// `;` outside a streamed string, `.` outside a streamed aggregate,
    /// or anything but `;` inside a streamed string.
    BadStream,
    /// Aggregates nested deeper than the session allows.
    TooDeep,
}

impl ParseError {
    /// Stable name of the error, used as the `L7Error::Malformed` kind.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            ParseError::UnknownType => "redis_unknown_type",
            ParseError::BadLength => "redis_bad_length",
            ParseError::BadValue => "redis_bad_value",
            ParseError::BadLine => "redis_bad_line",
            ParseError::MissingCrlf => "redis_missing_crlf",
            ParseError::BadStream => "redis_bad_stream",
            ParseError::TooDeep => "redis_too_deep",
        }
    }
}

/// Whether `b` starts a RESP2 or RESP3 value.
#[must_use]
pub fn is_type(b: u8) -> bool {
    matches!(b, b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b'#' | b',' | b'(' | b'!' | b'=' | b'%' | b'~' | b'>' | b'|')
}

/// Index of the `\r` of the first CRLF in `buf`, looking at no more than
/// `limit` bytes.
#[must_use]
pub fn find_crlf(buf: &[u8], limit: usize) -> Option<usize> {
    let buf = buf.get(..limit).unwrap_or(buf);
    buf.windows(2).position(|w| w == b"\r\n")
}

/// A value's type byte and header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub ty: u8,
    /// The line after the type byte, without CRLF.
    pub arg: &'a [u8],
    /// Bytes of the header: type byte, line and CRLF.
    pub len: usize,
}

/// Reads the header line at the start of `buf` (a RESP type byte, or `;`
/// / `.` of streamed values). `Ok(None)`: no CRLF within `limit` bytes
/// yet.
pub fn parse_header(buf: &[u8], limit: usize) -> Result<Option<Header<'_>>, ParseError> {
    let Some(&ty) = buf.first() else { return Ok(None) };
    if !is_type(ty) && ty != b';' && ty != b'.' {
        return Err(ParseError::UnknownType);
    }
    let Some(cr) = find_crlf(buf, limit) else { return Ok(None) };
    let arg = buf.get(1..cr).unwrap_or_default();
    if arg.contains(&b'\n') {
        return Err(ParseError::BadLine);
    }
    Ok(Some(Header { ty, arg, len: cr + 2 }))
}

/// A blob length or an aggregate count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// `-1`: the RESP2 null bulk string or null array.
    Null,
    /// `?`: a RESP3 streamed string or aggregate.
    Streamed,
    Count(u64),
}

/// Reads a length or count: `-1`, `?` or up to 19 decimal digits no
/// greater than `max`.
pub fn parse_length(arg: &[u8], max: u64) -> Result<Length, ParseError> {
    match arg {
        b"-1" => Ok(Length::Null),
        b"?" => Ok(Length::Streamed),
        _ => match parse_digits(arg) {
            Some(n) if n <= max => Ok(Length::Count(n)),
            _ => Err(ParseError::BadLength),
        },
    }
}

fn parse_digits(arg: &[u8]) -> Option<u64> {
    if arg.is_empty() || arg.len() > 19 || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(arg.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn is_signed_integer(arg: &[u8]) -> bool {
    let digits = match arg {
        [b'-' | b'+', rest @ ..] => rest,
        _ => arg,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// Checks the line of a simple value against its type (RESP3 "Simple
/// types"): integers and big numbers are signed decimals, booleans `t` or
/// `f`, null empty, doubles decimal/exponent notation or `inf`/`-inf`/
/// `nan`. Simple strings and errors may hold any byte but CR and LF.
pub fn check_simple(ty: u8, arg: &[u8]) -> Result<(), ParseError> {
    let ok = match ty {
        b':' => is_signed_integer(arg) && arg.len() <= 20,
        b'(' => is_signed_integer(arg),
        b'#' => matches!(arg, b"t" | b"f"),
        b'_' => arg.is_empty(),
        b',' => {
            matches!(arg, b"inf" | b"-inf" | b"nan")
                || (!arg.is_empty()
                    && arg.iter().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+')))
        }
        _ => !arg.contains(&b'\r'),
    };
    if ok {
        Ok(())
    } else {
        Err(ParseError::BadValue)
    }
}

/// The `redis.reply_type` name of a value of type `ty` (`null`: a RESP2
/// `$-1` or `*-1`).
#[must_use]
pub fn reply_type_name(ty: u8, null: bool) -> &'static str {
    match ty {
        _ if null => "nil",
        b'+' => "simple",
        b'-' => "error",
        b':' => "integer",
        b'$' => "bulk",
        b'*' => "array",
        b'_' => "nil",
        b'#' => "boolean",
        b',' => "double",
        b'(' => "bignum",
        b'!' => "bulk_error",
        b'=' => "verbatim",
        b'%' => "map",
        b'~' => "set",
        b'>' => "push",
        _ => "unknown",
    }
}

/// Who caused an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Client,
    Server,
}

/// The error code of an error reply: its first word, by convention upper
/// case (RESP "Simple errors").
#[must_use]
pub fn error_code(text: &[u8]) -> &[u8] {
    let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
    text.get(..end).unwrap_or_default()
}

/// Error codes that report the server's state rather than a bad request:
/// out of memory, busy with a script, loading its dataset, replica whose
/// master is down, failed RDB save, read-only replica, too few replicas,
/// cluster down, slot migrating (`TRYAGAIN`). Every other code (`ERR`,
/// `WRONGTYPE`, `NOAUTH`, `WRONGPASS`, `NOPERM`, `NOSCRIPT`, `EXECABORT`,
/// `MOVED`, `ASK`, `BUSYGROUP`, `NOGROUP`…) is the client's.
#[must_use]
pub fn error_class(text: &[u8]) -> ErrorClass {
    match error_code(text) {
        b"OOM" | b"BUSY" | b"LOADING" | b"MASTERDOWN" | b"MISCONF" | b"READONLY" | b"NOREPLICAS" | b"CLUSTERDOWN"
        | b"TRYAGAIN" => ErrorClass::Server,
        _ => ErrorClass::Client,
    }
}

/// Where a command's natural object (its first key, channel or pattern)
/// is among its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAt {
    /// Argument 1 (`GET key`, `PUBLISH channel`, `KEYS pattern`), also
    /// for commands not listed (module commands mostly take a key first).
    First,
    /// The first argument is a subcommand; the key is argument 2
    /// (`OBJECT ENCODING key`, `XGROUP CREATE key`, `MEMORY USAGE key`).
    SubcommandThenKey,
    /// The first argument is a subcommand and there is no key
    /// (`CONFIG GET`, `CLIENT LIST`, `ACL SETUSER`).
    Subcommand,
    /// The key is argument 2 (`BITOP AND dest …`).
    Second,
    /// No key (`PING`, `INFO`, `SELECT db`, `EVAL script`, `SCAN cursor`).
    None,
    /// The arguments hold credentials and are never read (`AUTH`, `HELLO`).
    Secret,
}

/// [`KeyAt`] of a command name (any case).
#[must_use]
pub fn key_at(cmd: &[u8]) -> KeyAt {
    let mut up = [0u8; 16];
    let Some(dst) = up.get_mut(..cmd.len()) else { return KeyAt::First };
    for (d, s) in dst.iter_mut().zip(cmd) {
        *d = s.to_ascii_uppercase();
    }
    match &*dst {
        b"AUTH" | b"HELLO" => KeyAt::Secret,
        b"OBJECT" | b"MEMORY" | b"XINFO" | b"XGROUP" => KeyAt::SubcommandThenKey,
        b"CONFIG" | b"CLIENT" | b"CLUSTER" | b"COMMAND" | b"ACL" | b"SCRIPT" | b"FUNCTION" | b"PUBSUB" | b"SLOWLOG"
        | b"LATENCY" | b"MODULE" | b"DEBUG" | b"SENTINEL" => KeyAt::Subcommand,
        b"BITOP" => KeyAt::Second,
        b"PING" | b"ECHO" | b"INFO" | b"SELECT" | b"SWAPDB" | b"MULTI" | b"EXEC" | b"DISCARD" | b"UNWATCH"
        | b"FLUSHALL" | b"FLUSHDB" | b"DBSIZE" | b"SCAN" | b"RANDOMKEY" | b"TIME" | b"LASTSAVE" | b"SAVE"
        | b"BGSAVE" | b"BGREWRITEAOF" | b"SHUTDOWN" | b"MONITOR" | b"SYNC" | b"PSYNC" | b"REPLCONF" | b"REPLICAOF"
        | b"SLAVEOF" | b"ROLE" | b"QUIT" | b"RESET" | b"READONLY" | b"READWRITE" | b"WAIT" | b"WAITAOF"
        | b"FAILOVER" | b"LOLWUT" | b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO"
        | b"MIGRATE" => KeyAt::None,
        _ => KeyAt::First,
    }
}

/// Subscribe-family commands and the kind of their confirmations
/// (RESP "Pub/Sub"): the reply to each channel is an array (RESP3: a
/// push) whose first element is this kind.
#[must_use]
pub fn subscribe_kind(cmd_upper: &str) -> Option<&'static str> {
    Some(match cmd_upper {
        "SUBSCRIBE" => "subscribe",
        "PSUBSCRIBE" => "psubscribe",
        "SSUBSCRIBE" => "ssubscribe",
        "UNSUBSCRIBE" => "unsubscribe",
        "PUNSUBSCRIBE" => "punsubscribe",
        "SUNSUBSCRIBE" => "sunsubscribe",
        _ => return None,
    })
}

/// Whether a push's first element is a subscription confirmation.
#[must_use]
pub fn is_confirmation(kind: &[u8]) -> bool {
    matches!(kind, b"subscribe" | b"psubscribe" | b"ssubscribe" | b"unsubscribe" | b"punsubscribe" | b"sunsubscribe")
}

/// Index of the channel in a published message (`message channel
/// payload`, `smessage channel payload`, `pmessage pattern channel
/// payload`); `None` for other kinds.
#[must_use]
pub fn message_channel_index(kind: &[u8]) -> Option<usize> {
    match kind {
        b"message" | b"smessage" => Some(1),
        b"pmessage" => Some(2),
        _ => None,
    }
}

/// The words of an inline command line (without its LF), split on spaces
/// and tabs. Quoting (`"a b"`) is not interpreted: the words are only used
/// for the command name and first key.
pub fn inline_words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ' || b == b'\t' || b == b'\r').filter(|w| !w.is_empty())
}
