//! MySQL client/server protocol: pure functions from packet bytes to
//! borrowed views. No state, no allocation, no panics.
//!
//! References are to the MySQL source documentation, "Client/Server
//! Protocol" (dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html):
//! packet framing (`page_protocol_basic_packets`), integer and string
//! types (`page_protocol_basic_dt_integers`, `…_dt_strings`), the
//! connection phase (`page_protocol_connection_phase_packets`), the text
//! and prepared-statement command phases (`page_protocol_com_query`,
//! `page_protocol_com_stmt_*`) and the generic response packets
//! (`page_protocol_basic_ok_packet`, `…_err_packet`, `…_eof_packet`).
//!
//! Every function takes a packet's payload (without the 4-byte header) or
//! a prefix of it: a payload cut short by the session's size limit still
//! yields what its first bytes hold, and anything else is `None`.

/// Size of the packet header: 3-byte little-endian length, sequence id.
pub const HEADER_LEN: usize = 4;
/// Length of a packet whose payload continues in the next packet.
pub const MAX_PACKET_LEN: u32 = 0x00ff_ffff;

// Capability flags (`group__group__cs__capabilities__flags`).
pub const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
pub const CLIENT_COMPRESS: u32 = 0x0000_0020;
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub const CLIENT_SSL: u32 = 0x0000_0800;
pub const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
pub const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x0020_0000;
pub const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;
pub const CLIENT_QUERY_ATTRIBUTES: u32 = 0x0800_0000;
pub const CLIENT_ZSTD_COMPRESSION: u32 = 0x0400_0000;

/// `SERVER_MORE_RESULTS_EXISTS` in the status flags of OK and EOF.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

// Command bytes (`my_command.h`, `enum_server_command`).
pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_FIELD_LIST: u8 = 0x04;
pub const COM_CREATE_DB: u8 = 0x05;
pub const COM_DROP_DB: u8 = 0x06;
pub const COM_STATISTICS: u8 = 0x09;
pub const COM_PROCESS_INFO: u8 = 0x0a;
pub const COM_PING: u8 = 0x0e;
pub const COM_CHANGE_USER: u8 = 0x11;
pub const COM_BINLOG_DUMP: u8 = 0x12;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1a;
pub const COM_STMT_FETCH: u8 = 0x1c;
pub const COM_BINLOG_DUMP_GTID: u8 = 0x1e;
pub const COM_RESET_CONNECTION: u8 = 0x1f;

/// The name of a command byte, `None` past the last one MySQL 8 defines.
#[must_use]
pub fn command_name(cmd: u8) -> Option<&'static str> {
    const NAMES: [&str; 33] = [
        "COM_SLEEP",
        "COM_QUIT",
        "COM_INIT_DB",
        "COM_QUERY",
        "COM_FIELD_LIST",
        "COM_CREATE_DB",
        "COM_DROP_DB",
        "COM_REFRESH",
        "COM_SHUTDOWN",
        "COM_STATISTICS",
        "COM_PROCESS_INFO",
        "COM_CONNECT",
        "COM_PROCESS_KILL",
        "COM_DEBUG",
        "COM_PING",
        "COM_TIME",
        "COM_DELAYED_INSERT",
        "COM_CHANGE_USER",
        "COM_BINLOG_DUMP",
        "COM_TABLE_DUMP",
        "COM_CONNECT_OUT",
        "COM_REGISTER_SLAVE",
        "COM_STMT_PREPARE",
        "COM_STMT_EXECUTE",
        "COM_STMT_SEND_LONG_DATA",
        "COM_STMT_CLOSE",
        "COM_STMT_RESET",
        "COM_SET_OPTION",
        "COM_STMT_FETCH",
        "COM_DAEMON",
        "COM_BINLOG_DUMP_GTID",
        "COM_RESET_CONNECTION",
        "COM_CLONE",
    ];
    NAMES.get(usize::from(cmd)).copied()
}

/// A packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload length; [`MAX_PACKET_LEN`] means the payload continues.
    pub len: u32,
    pub seq: u8,
}

/// The header at the start of `b`, if 4 bytes are there.
#[must_use]
pub fn parse_header(b: &[u8]) -> Option<Header> {
    match b.get(..HEADER_LEN) {
        Some(&[a, b1, c, seq]) => Some(Header { len: u32::from_le_bytes([a, b1, c, 0]), seq }),
        _ => None,
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Some(u16::from_le_bytes([x, y])),
        _ => None,
    }
}

/// Little-endian 4-byte integer at `at`.
#[must_use]
pub fn le32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at + 4) {
        Some(&[x, y, z, w]) => Some(u32::from_le_bytes([x, y, z, w])),
        _ => None,
    }
}

/// A length-encoded integer at `at`: its value and the offset after it.
/// `0xfb` (NULL in rows) and `0xff` (ERR) are not integers.
#[must_use]
pub fn lenenc_int(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let first = *b.get(at)?;
    let n = match first {
        0..=0xfa => return Some((u64::from(first), at + 1)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let bytes = b.get(at + 1..at + 1 + n)?;
    let mut v = [0u8; 8];
    v.get_mut(..n)?.copy_from_slice(bytes);
    Some((u64::from_le_bytes(v), at + 1 + n))
}

/// A NUL-terminated string at `at`: its bytes and the offset after the NUL.
fn nul_str(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some((rest.get(..end)?, at + end + 1))
}

/// Server greeting, `Protocol::HandshakeV10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting<'a> {
    pub server_version: &'a [u8],
    pub connection_id: u32,
    /// Both halves of the capability flags (the upper one may be absent).
    pub capabilities: u32,
    pub auth_plugin: Option<&'a [u8]>,
}

/// Parses a HandshakeV10 payload (first byte 10).
#[must_use]
pub fn parse_greeting(p: &[u8]) -> Option<Greeting<'_>> {
    if p.first() != Some(&10) {
        return None;
    }
    let (server_version, at) = nul_str(p, 1)?;
    let connection_id = le32(p, at)?;
    // auth-plugin-data-part-1 (8) and a filler byte.
    let at = at + 4 + 8;
    if p.get(at) != Some(&0) {
        return None;
    }
    let cap_lo = le16(p, at + 1)?;
    // character_set, status_flags, then the upper capability bytes.
    let cap_hi = le16(p, at + 6).unwrap_or(0);
    let capabilities = u32::from(cap_lo) | (u32::from(cap_hi) << 16);
    let auth_plugin = if capabilities & CLIENT_PLUGIN_AUTH != 0 {
        let data_len = usize::from(*p.get(at + 8)?);
        // 10 reserved bytes, then auth-plugin-data-part-2 of
        // max(13, auth_plugin_data_len - 8) bytes.
        let part2 = data_len.saturating_sub(8).max(13);
        nul_str(p, at + 9 + 10 + part2).map(|(s, _)| s).or_else(|| p.get(at + 9 + 10 + part2..))
    } else {
        None
    };
    Some(Greeting { server_version, connection_id, capabilities, auth_plugin })
}

/// `Protocol::HandshakeResponse41`, or the `Protocol::SSLRequest` that
/// starts TLS. The auth response is skipped, never returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeResponse<'a> {
    pub capabilities: u32,
    /// A 32-byte SSLRequest: TLS follows.
    pub ssl_request: bool,
    pub user: Option<&'a [u8]>,
    pub database: Option<&'a [u8]>,
    pub auth_plugin: Option<&'a [u8]>,
}

/// Whether a payload has the fixed part of a HandshakeResponse41: the
/// PROTOCOL_41 flag, a character set, and a zero filler after max packet
/// size and character set (23 bytes; MariaDB keeps its extended
/// capabilities in the last 4, so only the first 19 are checked).
#[must_use]
pub fn is_handshake_response(p: &[u8]) -> bool {
    le32(p, 0).is_some_and(|c| c & CLIENT_PROTOCOL_41 != 0)
        && p.get(9..28).is_some_and(|f| f.iter().all(|&b| b == 0))
        && p.len() >= 32
        && p.get(8).is_some_and(|&cs| cs != 0)
}

/// Parses a HandshakeResponse41 or SSLRequest payload. Fields past the
/// end of a cut payload are `None`.
#[must_use]
pub fn parse_handshake_response(p: &[u8]) -> Option<HandshakeResponse<'_>> {
    if !is_handshake_response(p) {
        return None;
    }
    let capabilities = le32(p, 0)?;
    let mut r = HandshakeResponse { capabilities, ssl_request: false, user: None, database: None, auth_plugin: None };
    if p.len() == 32 {
        r.ssl_request = capabilities & CLIENT_SSL != 0;
        return Some(r);
    }
    let Some((user, at)) = nul_str(p, 32) else { return Some(r) };
    r.user = Some(user);
    // The auth response is skipped over, never kept.
    let at = if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        let Some((n, at)) = lenenc_int(p, at) else { return Some(r) };
        usize::try_from(n).ok().and_then(|n| at.checked_add(n))
    } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
        p.get(at).map(|&n| at + 1 + usize::from(n))
    } else {
        nul_str(p, at).map(|(_, at)| at)
    };
    let Some(mut at) = at else { return Some(r) };
    if capabilities & CLIENT_CONNECT_WITH_DB != 0 {
        let Some((db, next)) = nul_str(p, at) else { return Some(r) };
        r.database = Some(db);
        at = next;
    }
    if capabilities & CLIENT_PLUGIN_AUTH != 0 {
        r.auth_plugin = nul_str(p, at).map(|(s, _)| s);
    }
    Some(r)
}

/// An OK packet (header `0x00`, or `0xfe` ending a result set when
/// CLIENT_DEPRECATE_EOF is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

/// Parses an OK packet (protocol 4.1 layout: status and warnings follow
/// the two length-encoded integers).
#[must_use]
pub fn parse_ok(p: &[u8]) -> Option<OkPacket> {
    if !matches!(p.first(), Some(0x00 | 0xfe)) {
        return None;
    }
    let (affected_rows, at) = lenenc_int(p, 1)?;
    let (last_insert_id, at) = lenenc_int(p, at)?;
    let status = le16(p, at)?;
    let warnings = le16(p, at + 2)?;
    Some(OkPacket { affected_rows, last_insert_id, status, warnings })
}

/// An EOF packet (header `0xfe`, 5 bytes in protocol 4.1): warnings and
/// status flags.
#[must_use]
pub fn parse_eof(p: &[u8]) -> Option<(u16, u16)> {
    if p.first() != Some(&0xfe) || p.len() >= 9 {
        return None;
    }
    Some((le16(p, 1)?, le16(p, 3)?))
}

/// An ERR packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrPacket<'a> {
    pub code: u16,
    /// The 5-character SQLSTATE after `#` (protocol 4.1).
    pub sqlstate: Option<&'a [u8]>,
    pub message: &'a [u8],
}

/// Parses an ERR packet (header `0xff`).
#[must_use]
pub fn parse_err(p: &[u8]) -> Option<ErrPacket<'_>> {
    if p.first() != Some(&0xff) {
        return None;
    }
    let code = le16(p, 1)?;
    let rest = p.get(3..)?;
    match rest.split_first() {
        Some((b'#', tail)) if tail.len() >= 5 => {
            let (state, message) = tail.split_at(5);
            Some(ErrPacket { code, sqlstate: Some(state), message })
        }
        _ => Some(ErrPacket { code, sqlstate: None, message: rest }),
    }
}

/// `COM_STMT_PREPARE_OK`: statement id, columns, parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub statement_id: u32,
    pub columns: u16,
    pub params: u16,
}

/// Parses a `COM_STMT_PREPARE_OK` (header `0x00`, at least 12 bytes).
#[must_use]
pub fn parse_prepare_ok(p: &[u8]) -> Option<PrepareOk> {
    if p.first() != Some(&0) || p.len() < 12 {
        return None;
    }
    Some(PrepareOk { statement_id: le32(p, 1)?, columns: le16(p, 5)?, params: le16(p, 7)? })
}

/// The SQL text of a `COM_QUERY` payload after its command byte.
///
/// With CLIENT_QUERY_ATTRIBUTES the text follows a parameter count and a
/// parameter set count (and the parameters when there are any). `attrs`
/// says whether the flag was negotiated; `None` (handshake not seen)
/// recognises the common attribute-less `00 01` prefix, which no SQL text
/// starts with.
#[must_use]
pub fn query_text(body: &[u8], attrs: Option<bool>) -> &[u8] {
    let with_attrs = match attrs {
        Some(a) => a,
        None => body.starts_with(&[0, 1]),
    };
    if !with_attrs {
        return body;
    }
    match lenenc_int(body, 0).and_then(|(n, at)| lenenc_int(body, at).map(|(_, at)| (n, at))) {
        Some((0, at)) => body.get(at..).unwrap_or_default(),
        // Parameters (bitmap, types, names, values) precede the text:
        // their layout needs the whole list read; the text is not kept.
        _ => &[],
    }
}

/// Whether the first bytes of a text look like SQL or a name: printable
/// ASCII, tabs and line breaks, or UTF-8 bytes, and not empty.
#[must_use]
pub fn looks_textual(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|&c| matches!(c, b'\t' | b'\n' | b'\r' | 0x20..=0x7e | 0x80..=0xf4))
}
