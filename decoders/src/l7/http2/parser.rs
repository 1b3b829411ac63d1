//! HTTP/2 framing (RFC 9113 §4, §6) and HPACK header decoding (RFC 7541):
//! pure functions over borrowed bytes, plus the HPACK decoding context (the
//! dynamic table, RFC 7541 §2.3.2), which is state by nature.
//!
//! Why HPACK is written here rather than taken from a crate: the maintained
//! crates (`loona-hpack`/`fluke-hpack`, `hpack`, `httlib-hpack`) stop a
//! whole header block at the first index their table does not hold. A
//! capture that starts mid-connection never has the peer's dynamic table,
//! and the issue asks to keep the static and literal fields of such a block
//! and mark the rest unknown. They also allocate a `Vec` per field (and
//! `loona-hpack` builds a `HashMap` Huffman table per decoder, i.e. per
//! flow). This decoder is ~250 lines: integers (§5.1), strings (§5.2), the
//! static table (Appendix A), the canonical Huffman code (Appendix B, as
//! code lengths: the code is canonical, so lengths are enough) and a
//! bounded dynamic table. It never panics and never reads out of bounds.

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Size of a frame header (RFC 9113 §4.1).
pub const FRAME_HEADER_LEN: usize = 9;
/// Largest frame payload without a SETTINGS_MAX_FRAME_SIZE change
/// (RFC 9113 §4.2); the probe accepts no more.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;

/// Frame types (RFC 9113 §6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

/// Frame flags (RFC 9113 §6.1, §6.2).
pub const FLAG_END_STREAM: u8 = 0x1;
pub const FLAG_ACK: u8 = 0x1;
pub const FLAG_END_HEADERS: u8 = 0x4;
pub const FLAG_PADDED: u8 = 0x8;
pub const FLAG_PRIORITY: u8 = 0x20;

/// A frame header (RFC 9113 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    /// Stream identifier, reserved bit cleared.
    pub stream_id: u32,
}

impl FrameHeader {
    #[must_use]
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Reads a frame header from the first 9 bytes.
#[must_use]
pub fn parse_frame_header(b: &[u8]) -> Option<FrameHeader> {
    let &[l0, l1, l2, kind, flags, s0, s1, s2, s3] = b.get(..FRAME_HEADER_LEN)? else { return None };
    Some(FrameHeader {
        len: u32::from_be_bytes([0, l0, l1, l2]),
        kind,
        flags,
        stream_id: u32::from_be_bytes([s0 & 0x7f, s1, s2, s3]),
    })
}

/// Whether a frame header is one a conforming peer could send with default
/// settings: a known type, only its defined flags, the stream id and length
/// its type requires (RFC 9113 §6), length at most `max_len`.
#[must_use]
pub fn plausible_header(h: &FrameHeader, max_len: u32) -> bool {
    if h.len > max_len {
        return false;
    }
    let s0 = h.stream_id == 0;
    match h.kind {
        DATA => !s0 && h.flags & !(FLAG_END_STREAM | FLAG_PADDED) == 0,
        HEADERS => {
            !s0 && h.flags & !(FLAG_END_STREAM | FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY) == 0 && h.len > 0
        }
        PRIORITY => !s0 && h.len == 5 && h.flags == 0,
        RST_STREAM => !s0 && h.len == 4 && h.flags == 0,
        SETTINGS => s0 && h.len.is_multiple_of(6) && (h.flags == 0 || (h.flags == FLAG_ACK && h.len == 0)),
        PUSH_PROMISE => !s0 && h.flags & !(FLAG_END_HEADERS | FLAG_PADDED) == 0 && h.len >= 4,
        PING => s0 && h.len == 8 && h.flags & !FLAG_ACK == 0,
        GOAWAY => s0 && h.len >= 8 && h.flags == 0,
        WINDOW_UPDATE => h.len == 4 && h.flags == 0,
        CONTINUATION => !s0 && h.flags & !FLAG_END_HEADERS == 0,
        _ => false,
    }
}

/// Why a frame or header block could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Padding or priority fields longer than the payload.
    BadPadding,
    /// An HPACK integer or string runs past the block, or overflows.
    HpackTruncated,
    /// Invalid Huffman code, padding or EOS inside a string (§5.2).
    HpackHuffman,
    /// A dynamic table size update above the limit or after a field (§4.2).
    HpackTableSize,
    /// Index 0 (§6.1).
    HpackIndex,
}

impl ParseError {
    /// Stable name, used as the `L7Error::Malformed` kind.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            ParseError::BadPadding => "http2_bad_padding",
            ParseError::HpackTruncated => "http2_hpack_truncated",
            ParseError::HpackHuffman => "http2_hpack_huffman",
            ParseError::HpackTableSize => "http2_hpack_table_size",
            ParseError::HpackIndex => "http2_hpack_index",
        }
    }
}

/// The header block fragment of a HEADERS frame payload, without padding
/// and priority fields (RFC 9113 §6.2).
pub fn headers_fragment<'a>(h: &FrameHeader, payload: &'a [u8]) -> Result<&'a [u8], ParseError> {
    let mut start = 0usize;
    let mut pad = 0usize;
    if h.has(FLAG_PADDED) {
        pad = usize::from(*payload.first().ok_or(ParseError::BadPadding)?);
        start = 1;
    }
    if h.kind == HEADERS && h.has(FLAG_PRIORITY) {
        start += 5;
    }
    if h.kind == PUSH_PROMISE {
        start += 4;
    }
    let end = payload.len().checked_sub(pad).ok_or(ParseError::BadPadding)?;
    payload.get(start..end).ok_or(ParseError::BadPadding)
}

/// RST_STREAM and GOAWAY error codes (RFC 9113 §7).
#[must_use]
pub fn error_code_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => return None,
    })
}

/// Reads a big-endian u32 at `at`.
#[must_use]
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    let &[a, b1, c, d] = b.get(at..at.checked_add(4)?)? else { return None };
    Some(u32::from_be_bytes([a, b1, c, d]))
}

/// The HPACK static table (RFC 7541 Appendix A), index 1 first.
pub const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Code length of each symbol of the HPACK Huffman code (RFC 7541
/// Appendix B; symbol 256 is EOS). The code is canonical: codes of one
/// length are consecutive, in symbol order, so lengths define it.
const HUFFMAN_LEN: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
    28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12,
    10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6,
    5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22,
    22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20,
    22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28,
    27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28,
    27, 27, 27, 27, 27, 26, 30,
];

const MAX_CODE_LEN: usize = 30;

/// Canonical decoding tables: for each length, the first code, the number
/// of codes, and where its symbols start in `symbols`.
struct Canonical {
    first: [u32; MAX_CODE_LEN + 1],
    count: [u16; MAX_CODE_LEN + 1],
    offset: [u16; MAX_CODE_LEN + 1],
    symbols: [u16; 257],
}

const fn build_canonical() -> Canonical {
    let mut c = Canonical {
        first: [0; MAX_CODE_LEN + 1],
        count: [0; MAX_CODE_LEN + 1],
        offset: [0; MAX_CODE_LEN + 1],
        symbols: [0; 257],
    };
    let mut n = 0usize;
    let mut code = 0u32;
    let mut len = 1usize;
    while len <= MAX_CODE_LEN {
        code <<= 1;
        c.first[len] = code;
        c.offset[len] = n as u16;
        let mut sym = 0usize;
        while sym < 257 {
            if HUFFMAN_LEN[sym] as usize == len {
                c.symbols[n] = sym as u16;
                n += 1;
                c.count[len] += 1;
                code += 1;
            }
            sym += 1;
        }
        len += 1;
    }
    c
}

static CANONICAL: Canonical = build_canonical();

/// Appends the Huffman-decoded `src` to `out` (RFC 7541 §5.2).
pub fn huffman_decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), ParseError> {
    let c = &CANONICAL;
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let (first, count) = (c.first[len], u32::from(c.count[len]));
            if code >= first && code - first < count {
                let idx = usize::from(c.offset[len]) + (code - first) as usize;
                match c.symbols.get(idx) {
                    Some(&s) if s < 256 => out.push(s as u8),
                    _ => return Err(ParseError::HpackHuffman),
                }
                code = 0;
                len = 0;
            } else if len >= MAX_CODE_LEN {
                return Err(ParseError::HpackHuffman);
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (the EOS prefix).
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(ParseError::HpackHuffman);
    }
    Ok(())
}

/// Decodes an HPACK integer with an `n`-bit prefix at `b[*pos]` (§5.1).
fn read_int(b: &[u8], pos: &mut usize, n: u8) -> Result<u32, ParseError> {
    let mask = ((1u16 << n) - 1) as u8;
    let first = *b.get(*pos).ok_or(ParseError::HpackTruncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(u32::from(first));
    }
    let mut value = u32::from(mask);
    let mut shift = 0u32;
    loop {
        let byte = *b.get(*pos).ok_or(ParseError::HpackTruncated)?;
        *pos += 1;
        let add =
            u32::from(byte & 0x7f).checked_shl(shift).filter(|_| shift <= 28).ok_or(ParseError::HpackTruncated)?;
        value = value.checked_add(add).ok_or(ParseError::HpackTruncated)?;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

/// Reads a string literal (§5.2): raw bytes borrowed from `b`, or
/// Huffman-decoded into `scratch`.
fn read_string<'a>(b: &'a [u8], pos: &mut usize, scratch: &'a mut Vec<u8>) -> Result<&'a [u8], ParseError> {
    let huffman = b.get(*pos).ok_or(ParseError::HpackTruncated)? & 0x80 != 0;
    let len = read_int(b, pos, 7)? as usize;
    let end = pos.checked_add(len).ok_or(ParseError::HpackTruncated)?;
    let raw = b.get(*pos..end).ok_or(ParseError::HpackTruncated)?;
    *pos = end;
    if huffman {
        scratch.clear();
        huffman_decode(raw, scratch)?;
        Ok(scratch.as_slice())
    } else {
        Ok(raw)
    }
}

/// One entry of the dynamic table. A `None` name is one whose indexed name
/// was not in our table (capture started mid-connection).
#[derive(Debug, Clone)]
struct Entry {
    name: Option<Box<[u8]>>,
    value: Box<[u8]>,
}

impl Entry {
    /// Size as RFC 7541 §4.1 counts it (an unknown name counts as empty).
    fn size(&self) -> usize {
        self.name.as_ref().map_or(0, |n| n.len()) + self.value.len() + 32
    }
}

/// Most bytes a dynamic table is allowed to hold here, whatever the peer
/// announces: entries past it are evicted early, and references to them
/// then read as unknown, never as another entry.
pub const MAX_TABLE_SIZE: usize = 64 * 1024;

/// The decoding context of one direction: its dynamic table (§2.3.2).
///
/// References to entries this table does not hold (the capture started
/// after they were inserted, or a gap lost them) are reported as unknown
/// (`None`) rather than failing the block; an entry inserted with an
/// unknown name keeps its value, its name reads as unknown.
#[derive(Debug, Clone)]
pub struct Hpack {
    /// Newest first.
    entries: std::collections::VecDeque<Entry>,
    size: usize,
    max_size: usize,
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Default for Hpack {
    fn default() -> Self {
        Hpack {
            entries: std::collections::VecDeque::new(),
            size: 0,
            // SETTINGS_HEADER_TABLE_SIZE initial value (RFC 9113 §6.5.2).
            max_size: 4096,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }
}

/// A decoded field: `None` for a name or value that referred to a dynamic
/// table entry this decoder does not hold.
pub type Field<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

impl Hpack {
    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every entry (after a gap: what was inserted in it is lost).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.size = 0;
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size(),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    fn insert(&mut self, name: Option<&[u8]>, value: &[u8]) {
        let e = Entry { name: name.map(Into::into), value: value.into() };
        let size = e.size();
        let limit = self.max_size.min(MAX_TABLE_SIZE);
        if size > limit {
            // §4.4: an entry larger than the table empties it.
            self.clear();
            return;
        }
        self.evict_to(limit - size);
        self.size += size;
        self.entries.push_front(e);
    }

    /// Name and value at `index` (1-based over static then dynamic).
    fn lookup(&self, index: u32) -> Result<Field<'_>, ParseError> {
        let i = index as usize;
        if i == 0 {
            return Err(ParseError::HpackIndex);
        }
        if let Some(&(n, v)) = STATIC_TABLE.get(i - 1) {
            return Ok((Some(n.as_bytes()), Some(v.as_bytes())));
        }
        match self.entries.get(i - 1 - STATIC_TABLE.len()) {
            Some(e) => Ok((e.name.as_deref(), Some(&e.value))),
            None => Ok((None, None)),
        }
    }

    /// The rest of a literal field (§6.2) whose name index was read.
    #[allow(clippy::too_many_arguments)]
    fn literal(
        &mut self,
        block: &[u8],
        pos: &mut usize,
        index: u32,
        index_it: bool,
        name_buf: &mut Vec<u8>,
        value_buf: &mut Vec<u8>,
        f: &mut dyn FnMut(Field<'_>),
    ) -> Result<(), ParseError> {
        let name: Option<&[u8]> = if index == 0 {
            Some(read_string(block, pos, name_buf)?)
        } else {
            match self.lookup(index)?.0 {
                Some(n) => {
                    name_buf.clear();
                    name_buf.extend_from_slice(n);
                    Some(name_buf.as_slice())
                }
                None => None,
            }
        };
        let value = read_string(block, pos, value_buf)?;
        f((name, Some(value)));
        if index_it {
            self.insert(name, value);
        }
        Ok(())
    }

    /// Decodes a whole header block (§6), calling `f` for each field in
    /// order. On an error the fields before it have been reported; the
    /// table may have missed insertions, so the caller should [`clear`]
    /// it (later references then read as unknown).
    ///
    /// [`clear`]: Hpack::clear
    pub fn decode(&mut self, block: &[u8], f: &mut dyn FnMut(Field<'_>)) -> Result<(), ParseError> {
        let mut pos = 0usize;
        let mut fields = 0usize;
        while let Some(&b) = block.get(pos) {
            if b & 0x80 != 0 {
                // §6.1 Indexed Header Field.
                let index = read_int(block, &mut pos, 7)?;
                f(self.lookup(index)?);
                fields += 1;
            } else if b & 0xe0 == 0x20 {
                // §6.3 Dynamic Table Size Update: only at the start.
                let size = read_int(block, &mut pos, 5)? as usize;
                if fields > 0 {
                    return Err(ParseError::HpackTableSize);
                }
                self.max_size = size;
                self.evict_to(size.min(MAX_TABLE_SIZE));
            } else {
                // §6.2: with incremental indexing (01), without (0000),
                // never indexed (0001).
                let (prefix, index_it) = if b & 0xc0 == 0x40 { (6, true) } else { (4, false) };
                let index = read_int(block, &mut pos, prefix)?;
                let mut name_buf = std::mem::take(&mut self.name_buf);
                let mut value_buf = std::mem::take(&mut self.value_buf);
                let result = self.literal(block, &mut pos, index, index_it, &mut name_buf, &mut value_buf, f);
                self.name_buf = name_buf;
                self.value_buf = value_buf;
                result?;
                fields += 1;
            }
        }
        Ok(())
    }
}

/// gRPC status code names (grpc/doc/statuscodes.md).
#[must_use]
pub fn grpc_status_name(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => return None,
    })
}

/// Percent-decodes a `grpc-message` (gRPC over HTTP/2 spec: `%XX` of
/// UTF-8 bytes); an invalid escape is kept as is.
#[must_use]
pub fn percent_decode(v: &[u8]) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        if b == b'%' {
            if let (Some(h), Some(l)) = (v.get(i + 1).copied().and_then(hex), v.get(i + 2).copied().and_then(hex)) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// Trace-context headers are read exactly as HTTP/1 reads them.
pub(crate) use crate::l7::http1::parser::{parse_b3_multi, parse_b3_single, parse_sw8, parse_traceparent};
