//! TLS wire format: pure functions from bytes to borrowed views, and the
//! JA3/JA3S/JA4 fingerprints computed from those views. No state.
//!
//! Layers (RFC 8446 §5.1, RFC 5246 §6.2.1): a byte stream of *records*
//! (5-byte header: content type, legacy version, length); the payload of
//! handshake records is a stream of *handshake messages* (4-byte header:
//! type and 24-bit length, RFC 8446 §4) that may be split across records
//! and packed several to a record. Reassembling messages is the session's
//! job; the functions here take a complete record or message.
//!
//! The record and hello layouts are read with `tls-parser` (rusticata,
//! nom-based, fuzzed): `parse_tls_record_header`, `parse_tls_raw_record`,
//! `parse_tls_message_handshake` and its per-extension parsers. Extensions
//! are walked here with [`extensions`] so that the *order and types* of
//! every extension survive (JA3/JA4 need them even when one extension's
//! content is odd, where `parse_tls_extensions` would stop early), and each
//! one we want is then decoded by `tls-parser`.
//!
//! Every function takes untrusted bytes and never panics; what does not
//! parse is `None`.

use std::fmt::Write as _;

// `md-5`: JA3 and JA3S are defined as the MD5 of their strings (salesforce/ja3).
use md5::Md5;
// `sha2`: JA4's b and c parts are truncated SHA-256 digests (FoxIO JA4 spec).
use sha2::{Digest, Sha256};
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

/// Record content types (RFC 8446 §5.1, RFC 6520 for heartbeat).
pub const CT_CHANGE_CIPHER_SPEC: u8 = 20;
pub const CT_ALERT: u8 = 21;
pub const CT_HANDSHAKE: u8 = 22;
pub const CT_APPLICATION_DATA: u8 = 23;
pub const CT_HEARTBEAT: u8 = 24;

/// Handshake message types (RFC 8446 §4, RFC 5246 §7.4).
pub const HS_CLIENT_HELLO: u8 = 1;
pub const HS_SERVER_HELLO: u8 = 2;
pub const HS_SERVER_HELLO_DONE: u8 = 14;

/// Extension types (IANA TLS ExtensionType registry).
pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_SUPPORTED_GROUPS: u16 = 10;
pub const EXT_EC_POINT_FORMATS: u16 = 11;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
pub const EXT_ALPN: u16 = 16;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// Record header size (RFC 8446 §5.1).
pub const RECORD_HEADER_LEN: usize = 5;
/// Handshake message header size (RFC 8446 §4).
pub const HANDSHAKE_HEADER_LEN: usize = 4;
/// Largest record payload on the wire: a TLS 1.2 `TLSCiphertext` may
/// carry 2^14 + 2048 bytes (RFC 5246 §6.2.3); TLS 1.3 allows less
/// (2^14 + 256, RFC 8446 §5.2).
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// `ServerHello.random` of a HelloRetryRequest: SHA-256 of
/// "HelloRetryRequest" (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A record header (RFC 8446 §5.1 `TLSPlaintext`, RFC 5246 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: u8,
    pub version: u16,
    /// Payload length, header excluded.
    pub len: usize,
}

impl RecordHeader {
    /// A content type of TLS ≤ 1.3, a 3.x record version (SSL 3.0 to
    /// TLS 1.3; TLS 1.3 freezes it at 0x0301/0x0303) and a length within
    /// [`MAX_RECORD_LEN`]. Anything else means the stream is not TLS or we
    /// lost its framing.
    #[must_use]
    pub fn is_plausible(&self) -> bool {
        (CT_CHANGE_CIPHER_SPEC..=CT_HEARTBEAT).contains(&self.content_type)
            && (0x0300..=0x0304).contains(&self.version)
            && self.len <= MAX_RECORD_LEN
    }

    /// Header plus payload.
    #[must_use]
    pub fn total_len(&self) -> usize {
        RECORD_HEADER_LEN + self.len
    }
}

/// The header of the record at the start of `data`, if 5 bytes are there.
#[must_use]
pub fn record_header(data: &[u8]) -> Option<RecordHeader> {
    let (_, h) = tls_parser::parse_tls_record_header(data).ok()?;
    Some(RecordHeader { content_type: h.record_type.0, version: h.version.0, len: usize::from(h.len) })
}

/// The payload of the complete record at the start of `data`
/// (`tls-parser` checks it against its own limit, 2^14 + 256, which every
/// plaintext record we read, handshake, alert and change_cipher_spec,
/// stays under: RFC 8446 §5.1).
#[must_use]
pub fn record_payload(data: &[u8]) -> Option<&[u8]> {
    let (_, rec) = tls_parser::parse_tls_raw_record(data).ok()?;
    Some(rec.data)
}

/// A handshake message header (RFC 8446 §4): type and body length.
#[must_use]
pub fn handshake_header(data: &[u8]) -> Option<(u8, usize)> {
    match *data {
        [typ, a, b, c, ..] => Some((typ, usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c))),
        _ => None,
    }
}

/// An alert (RFC 8446 §6, RFC 5246 §7.2): `(level, description)` of a
/// plaintext alert record payload (exactly 2 bytes; anything longer is an
/// encrypted alert).
#[must_use]
pub fn alert(payload: &[u8]) -> Option<(u8, u8)> {
    match *payload {
        [level, desc] => Some((level, desc)),
        _ => None,
    }
}

/// What the first bytes of a client's stream say about an SSL 2.0-style
/// ClientHello (RFC 6101 Appendix E.1, RFC 5246 Appendix E.2), the
/// backward-compatible hello of old clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sslv2Hello {
    /// Fewer than the 11 bytes of its fixed part, all plausible so far.
    Incomplete,
    /// Not one.
    Invalid,
    /// One: the version it offers and its size, 2-byte header included.
    Hello { version: u16, total_len: usize },
}

/// Checks the fixed part of an SSL 2.0-style ClientHello: a 2-byte
/// header with the high bit set, msg_type 1, a version of SSL 2.0 or
/// 3.0..=TLS 1.2, cipher specs in 3-byte units, a session id of at most 32
/// bytes, a challenge of 16 to 32 bytes, and lengths that add up.
#[must_use]
pub fn sslv2_client_hello(data: &[u8]) -> Sslv2Hello {
    let prefix_ok = |i: usize, ok: bool| data.len() <= i || ok;
    let b = |i: usize| data.get(i).copied().unwrap_or(0);
    if !prefix_ok(0, b(0) & 0x80 != 0) || !prefix_ok(2, b(2) == 1) || !prefix_ok(3, b(3) == 0 || b(3) == 3) {
        return Sslv2Hello::Invalid;
    }
    let [h0, h1, _, v0, v1, c0, c1, s0, s1, r0, r1, ..] = *data else { return Sslv2Hello::Incomplete };
    let len = usize::from(u16::from_be_bytes([h0 & 0x7f, h1]));
    let version = u16::from_be_bytes([v0, v1]);
    let ciphers = usize::from(u16::from_be_bytes([c0, c1]));
    let session_id = usize::from(u16::from_be_bytes([s0, s1]));
    let challenge = usize::from(u16::from_be_bytes([r0, r1]));
    let valid = (version == 0x0002 || (0x0300..=0x0303).contains(&version))
        && ciphers > 0
        && ciphers % 3 == 0
        && session_id <= 32
        && (16..=32).contains(&challenge)
        && len == 9 + ciphers + session_id + challenge;
    if valid {
        Sslv2Hello::Hello { version, total_len: 2 + len }
    } else {
        Sslv2Hello::Invalid
    }
}

/// Whether a 16-bit value is a GREASE value (RFC 8701 §2: 0x0A0A,
/// 0x1A1A, … 0xFAFA), used for cipher suites, extensions, groups and
/// versions.
#[must_use]
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// One extension of a hello (RFC 8446 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawExtension<'a> {
    pub typ: u16,
    pub data: &'a [u8],
    /// Type, length and data: what `tls-parser`'s per-extension parsers take.
    pub whole: &'a [u8],
}

/// Walks an extensions block (the bytes after `extensions`' 2-byte
/// length), stopping at the first extension that runs past the end.
pub fn extensions(mut block: &[u8]) -> impl Iterator<Item = RawExtension<'_>> {
    std::iter::from_fn(move || {
        let [t0, t1, l0, l1, ..] = *block else { return None };
        let end = 4 + usize::from(u16::from_be_bytes([l0, l1]));
        let whole = block.get(..end)?;
        let ext = RawExtension { typ: u16::from_be_bytes([t0, t1]), data: &whole[4..], whole };
        block = &block[end..];
        Some(ext)
    })
}

/// What a ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello<'a> {
    pub legacy_version: u16,
    pub session_id: &'a [u8],
    /// Offered cipher suites, in order, GREASE included.
    pub ciphers: Vec<u16>,
    /// Extension types, in order, GREASE included.
    pub extensions: Vec<u16>,
    /// First `host_name` of `server_name` (RFC 6066 §3), raw.
    pub sni: Option<&'a [u8]>,
    /// `application_layer_protocol_negotiation` (RFC 7301 §3.1), in order.
    pub alpn: Vec<&'a [u8]>,
    /// `supported_versions` (RFC 8446 §4.2.1), in order, GREASE included.
    pub supported_versions: Vec<u16>,
    /// `supported_groups` (RFC 8446 §4.2.7, RFC 8422 §5.1.1).
    pub groups: Vec<u16>,
    /// `ec_point_formats` (RFC 8422 §5.1.2).
    pub point_formats: &'a [u8],
    /// `signature_algorithms` (RFC 8446 §4.2.3), in order.
    pub signature_algorithms: Vec<u16>,
}

/// Parses a complete ClientHello handshake message, header included.
#[must_use]
pub fn client_hello(msg: &[u8]) -> Option<ClientHello<'_>> {
    let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)))) =
        tls_parser::parse_tls_message_handshake(msg)
    else {
        return None;
    };
    let mut out = ClientHello {
        legacy_version: ch.version.0,
        session_id: ch.session_id.unwrap_or_default(),
        ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
        ..ClientHello::default()
    };
    for ext in extensions(ch.ext.unwrap_or_default()) {
        out.extensions.push(ext.typ);
        let Ok((_, parsed)) = tls_parser::parse_tls_client_hello_extension(ext.whole) else { continue };
        match parsed {
            TlsExtension::SNI(names) => {
                out.sni = names.iter().find(|(t, _)| t.0 == 0).map(|(_, name)| *name);
            }
            TlsExtension::ALPN(protocols) => out.alpn = protocols,
            TlsExtension::SupportedVersions(v) => out.supported_versions = v.iter().map(|v| v.0).collect(),
            TlsExtension::EllipticCurves(g) => out.groups = g.iter().map(|g| g.0).collect(),
            TlsExtension::EcPointFormats(f) => out.point_formats = f,
            TlsExtension::SignatureAlgorithms(s) => out.signature_algorithms = s,
            _ => {}
        }
    }
    Some(out)
}

/// What a ServerHello (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3) tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello<'a> {
    pub legacy_version: u16,
    pub session_id: &'a [u8],
    pub cipher: u16,
    /// Extension types, in order.
    pub extensions: Vec<u16>,
    /// `supported_versions.selected_version` (RFC 8446 §4.2.1).
    pub selected_version: Option<u16>,
    /// The protocol chosen by ALPN (RFC 7301 §3.1).
    pub alpn: Option<&'a [u8]>,
    /// A HelloRetryRequest: a ServerHello with the special random
    /// (RFC 8446 §4.1.3).
    pub hello_retry: bool,
}

impl ServerHello<'_> {
    /// The version the server chose: `supported_versions` if present
    /// (TLS 1.3), else `legacy_version` (RFC 8446 §4.2.1).
    #[must_use]
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// Parses a complete ServerHello handshake message, header included.
#[must_use]
pub fn server_hello(msg: &[u8]) -> Option<ServerHello<'_>> {
    let Ok((_, TlsMessage::Handshake(hs))) = tls_parser::parse_tls_message_handshake(msg) else { return None };
    let (legacy_version, random, session_id, cipher, ext) = match hs {
        TlsMessageHandshake::ServerHello(sh) => {
            (sh.version.0, sh.random, sh.session_id.unwrap_or_default(), sh.cipher.0, sh.ext)
        }
        // TLS 1.3 draft 18 layout (no session id), still seen from old stacks.
        TlsMessageHandshake::ServerHelloV13Draft18(sh) => (sh.version.0, sh.random, &[][..], sh.cipher.0, sh.ext),
        _ => return None,
    };
    let mut out =
        ServerHello { legacy_version, session_id, cipher, hello_retry: random == HRR_RANDOM, ..ServerHello::default() };
    for ext in extensions(ext.unwrap_or_default()) {
        out.extensions.push(ext.typ);
        let Ok((_, parsed)) = tls_parser::parse_tls_server_hello_extension(ext.whole) else { continue };
        match parsed {
            TlsExtension::SupportedVersions(v) if v.len() == 1 => out.selected_version = Some(v[0].0),
            TlsExtension::ALPN(p) => out.alpn = p.first().copied(),
            _ => {}
        }
    }
    Some(out)
}

/// `TLSv1.2`-style name of a protocol version; hex for anything else
/// (drafts, DTLS, garbage).
#[must_use]
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1.0".into(),
        0x0302 => "TLSv1.1".into(),
        0x0303 => "TLSv1.2".into(),
        0x0304 => "TLSv1.3".into(),
        _ => format!("0x{v:04x}"),
    }
}

/// IANA name of a cipher suite (`tls-parser` carries the registry), or
/// its hex value.
#[must_use]
pub fn cipher_name(id: u16) -> String {
    match tls_parser::TlsCipherSuite::from_id(id) {
        Some(c) => c.name.to_owned(),
        None => format!("0x{id:04x}"),
    }
}

/// IANA name of an alert description (TLS Alerts registry, RFC 8446 §6).
#[must_use]
pub fn alert_name(desc: u8) -> Option<&'static str> {
    Some(match desc {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn join_decimal<I: IntoIterator<Item = u16>>(values: I) -> String {
    let mut s = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            s.push('-');
        }
        let _ = write!(s, "{v}");
    }
    s
}

/// The JA3 string (salesforce/ja3): `version,ciphers,extensions,groups,
/// point_formats`, decimal values joined by `-`, GREASE values left out.
#[must_use]
pub fn ja3_string(ch: &ClientHello<'_>) -> String {
    let no_grease = |v: &&u16| !is_grease(**v);
    format!(
        "{},{},{},{},{}",
        ch.legacy_version,
        join_decimal(ch.ciphers.iter().filter(no_grease).copied()),
        join_decimal(ch.extensions.iter().filter(no_grease).copied()),
        join_decimal(ch.groups.iter().filter(no_grease).copied()),
        join_decimal(ch.point_formats.iter().map(|&f| u16::from(f))),
    )
}

/// The JA3S string: `version,cipher,extensions` of a ServerHello.
#[must_use]
pub fn ja3s_string(sh: &ServerHello<'_>) -> String {
    let exts = join_decimal(sh.extensions.iter().filter(|v| !is_grease(**v)).copied());
    format!("{},{},{}", sh.legacy_version, sh.cipher, exts)
}

/// MD5 of a JA3/JA3S string, lower-case hex.
#[must_use]
pub fn ja3_hash(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

/// First 12 hex digits of the SHA-256 of `s`, or `000000000000` for an
/// empty list (JA4 spec).
fn sha256_12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let mut h = hex(&Sha256::digest(s.as_bytes()));
    h.truncate(12);
    h
}

fn join_hex4<I: IntoIterator<Item = u16>>(values: I) -> String {
    let mut s = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{v:04x}");
    }
    s
}

/// JA4 of a ClientHello over TCP (FoxIO JA4 spec, `JA4.md`):
/// `t` + version + `d`/`i` (SNI present or not) + 2-digit counts of
/// cipher suites and extensions (GREASE excluded, capped at 99) + first and
/// last character of the first ALPN value (`00` without ALPN), then `_` +
/// the first 12 hex digits of SHA-256 of the sorted cipher suites, then
/// `_` + the same of the sorted extensions without SNI and ALPN, followed
/// by `_` and the signature algorithms in their original order.
#[must_use]
pub fn ja4(ch: &ClientHello<'_>) -> String {
    let version = ch.supported_versions.iter().copied().filter(|v| !is_grease(*v)).max().unwrap_or(ch.legacy_version);
    let version = match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    };
    let sni = if ch.extensions.contains(&EXT_SERVER_NAME) { 'd' } else { 'i' };
    let mut ciphers: Vec<u16> = ch.ciphers.iter().copied().filter(|v| !is_grease(*v)).collect();
    let exts: Vec<u16> = ch.extensions.iter().copied().filter(|v| !is_grease(*v)).collect();
    let alpn = ja4_alpn(ch.alpn.first().copied());
    let a = format!("t{version}{sni}{:02}{:02}{alpn}", ciphers.len().min(99), exts.len().min(99));

    ciphers.sort_unstable();
    let b = sha256_12(&join_hex4(ciphers));

    let mut hashed: Vec<u16> = exts.into_iter().filter(|&e| e != EXT_SERVER_NAME && e != EXT_ALPN).collect();
    hashed.sort_unstable();
    let mut c_in = join_hex4(hashed);
    let sigs: Vec<u16> = ch.signature_algorithms.iter().copied().filter(|v| !is_grease(*v)).collect();
    if !sigs.is_empty() {
        c_in.push('_');
        c_in.push_str(&join_hex4(sigs));
    }
    let c = sha256_12(&c_in);
    format!("{a}_{b}_{c}")
}

/// JA4's two ALPN characters: first and last character of the value when
/// both are ASCII alphanumeric, else the first and last hex digits of the
/// value; `00` when there is none.
fn ja4_alpn(first: Option<&[u8]>) -> String {
    match first {
        Some(&[f, .., l]) | Some(&[f @ l]) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() => {
            format!("{}{}", char::from(f), char::from(l))
        }
        Some(&[f, .., l]) | Some(&[f @ l]) => {
            let h = hex(&[f, l]);
            format!("{}{}", &h[..1], &h[3..])
        }
        _ => "00".into(),
    }
}
