//! The TLS session: record framing of both directions, handshake message
//! reassembly across records, and one [`Call`] per handshake.
//!
//! Per direction the session frames records (RFC 8446 §5.1). Handshake,
//! alert and change_cipher_spec records are read whole: `parse` returns
//! the offset of the first incomplete one and the caller hands it back
//! with the next bytes. Application data (and anything encrypted) is
//! skipped as it arrives, without waiting for the end of the record.
//! Handshake messages are reassembled across records (RFC 8446 §5.1:
//! "Handshake messages MAY be coalesced into a single TLSPlaintext record
//! or fragmented across several records"); only a ClientHello or a
//! ServerHello that spans records is copied, into a buffer bounded by
//! `SessionConfig::max_message_bytes`; other messages are skipped.
//!
//! Once the handshake is over (a change_cipher_spec or application data
//! record from each side after the ServerHello), the call is emitted and
//! every later byte of the flow is consumed unread.

use super::parser::{self, RecordHeader, Sslv2Hello, HANDSHAKE_HEADER_LEN, RECORD_HEADER_LEN};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, SessionConfig, Transport};

const CLIENT: usize = 0;
const SERVER: usize = 1;

fn side_of(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => CLIENT,
        Direction::ToClient => SERVER,
    }
}

/// A TLS connection's decoder (see the module documentation).
#[derive(Debug)]
pub struct Session {
    max_message: usize,
    /// DTLS is out of scope: over UDP every datagram is ignored.
    udp: bool,
    sides: [Side; 2],
    /// The handshake being decoded; allocated with its first message.
    hs: Option<Box<Handshake>>,
    /// The call was emitted (or the flow finished): bytes are ignored.
    done: bool,
}

/// Framing state of one direction.
#[derive(Debug, Default)]
struct Side {
    /// Framing lost (a gap, a bad record, an oversized message): every
    /// byte of this direction is consumed unread from now on.
    lost: bool,
    /// Capture time of the first byte the caller still holds for us.
    pending_ts: Option<i64>,
    /// Payload bytes left of a record being skipped.
    skip: usize,
    /// This side's handshake records are ciphertext from now on.
    encrypted: bool,
    /// This side sent change_cipher_spec or encrypted records after the
    /// ServerHello: its part of the handshake is over.
    finished: bool,
    /// Record bytes, headers included.
    bytes: u64,
    msg: Reassembly,
}

/// A handshake message in progress across records.
#[derive(Debug, Default)]
struct Reassembly {
    /// A message header split across records.
    hdr: [u8; HANDSHAKE_HEADER_LEN],
    hdr_len: usize,
    /// Type of the message whose body is still arriving.
    typ: u8,
    /// Body bytes of that message still to come (0: at a boundary).
    missing: usize,
    /// Whether the message is kept (ClientHello, ServerHello) in `buf`.
    keep: bool,
    buf: Vec<u8>,
    /// Capture time of the message's first byte.
    start_ts: i64,
}

impl Reassembly {
    /// No message is in progress: the next byte starts one.
    fn at_boundary(&self) -> bool {
        self.missing == 0 && self.hdr_len == 0
    }
}

/// What is known of the handshake so far.
#[derive(Debug)]
struct Handshake {
    call: Call,
    client_hello: HelloState,
    /// The (real) ServerHello arrived, parsed or not.
    server_hello: bool,
    hello_retry: bool,
    /// Bytes of the server's direction were lost before its ServerHello.
    server_lost: bool,
    /// The server's response could not be parsed.
    server_unparsed: bool,
    /// Server records extend `response_end_ts` until the client speaks.
    flight_open: bool,
    client_session_id: [u8; 32],
    client_session_id_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelloState {
    None,
    Started,
    Parsed,
}

impl Session {
    #[must_use]
    pub fn new(cfg: &SessionConfig, transport: Transport) -> Self {
        Session {
            max_message: cfg.max_message_bytes,
            udp: transport == Transport::Udp,
            sides: [Side::default(), Side::default()],
            hs: None,
            done: false,
        }
    }

    fn handshake(&mut self) -> &mut Handshake {
        self.hs.get_or_insert_with(|| {
            Box::new(Handshake {
                call: Call::new(L7Protocol::Tls),
                client_hello: HelloState::None,
                server_hello: false,
                hello_retry: false,
                server_lost: false,
                server_unparsed: false,
                flight_open: false,
                client_session_id: [0; 32],
                client_session_id_len: 0,
            })
        })
    }

    /// Frames the records of one direction; see [`Decoder::parse`].
    fn records(&mut self, side: usize, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        let first_ts = self.sides[side].pending_ts.take().unwrap_or(ts);
        let mut pos = 0;
        while pos < data.len() {
            if self.done || self.sides[side].lost {
                return Ok(data.len());
            }
            let rest = &data[pos..];
            let s = &mut self.sides[side];
            let encrypted = s.encrypted;
            if s.skip > 0 {
                let n = s.skip.min(rest.len());
                s.skip -= n;
                pos += n;
                // A partly skipped record still extends the server's flight.
                self.record_end(side, ts);
                continue;
            }
            let rec_ts = if pos == 0 { first_ts } else { ts };
            if side == CLIENT && s.bytes == 0 && rest[0] & 0x80 != 0 {
                // The client's first bytes: an SSL 2.0-style ClientHello?
                match parser::sslv2_client_hello(rest) {
                    Sslv2Hello::Incomplete => break,
                    Sslv2Hello::Hello { total_len, .. } if rest.len() < total_len => break,
                    Sslv2Hello::Hello { version, total_len } => {
                        self.sides[CLIENT].bytes += total_len as u64;
                        pos += total_len;
                        self.sslv2_client_hello(version, rec_ts);
                        continue;
                    }
                    Sslv2Hello::Invalid => return Err(self.bad_record(side, rec_ts)),
                }
            }
            let Some(h) = parser::record_header(rest) else { break };
            if !h.is_plausible() {
                return Err(self.bad_record(side, rec_ts));
            }
            let skipped = match h.content_type {
                parser::CT_APPLICATION_DATA | parser::CT_HEARTBEAT => true,
                parser::CT_HANDSHAKE => encrypted,
                _ => false,
            };
            if skipped {
                pos += RECORD_HEADER_LEN;
                self.record_start(side, &h);
                self.sides[side].skip = h.len;
                if h.len == 0 {
                    self.record_end(side, ts);
                }
                continue;
            }
            if rest.len() < h.total_len() {
                if h.content_type == parser::CT_HANDSHAKE && self.sides[side].msg.at_boundary() {
                    // The first message of a record still arriving: its
                    // start is known now, even if a gap cuts it later.
                    if let Some(&typ) = rest.get(RECORD_HEADER_LEN) {
                        self.message_start(side, typ, rec_ts);
                    }
                }
                break;
            }
            let Some(payload) = parser::record_payload(&rest[..h.total_len()]) else {
                return Err(self.bad_record(side, rec_ts));
            };
            pos += h.total_len();
            self.record_start(side, &h);
            match h.content_type {
                parser::CT_HANDSHAKE => self.handshake_payload(side, payload, rec_ts, ts)?,
                parser::CT_ALERT => self.alert(side, payload, rec_ts, ts, out),
                // change_cipher_spec: bookkeeping is in `record_start`.
                _ => {}
            }
            self.record_end(side, ts);
            self.try_complete(out);
        }
        if pos < data.len() && !self.done && !self.sides[side].lost {
            self.sides[side].pending_ts = Some(if pos == 0 { first_ts } else { ts });
        }
        Ok(pos)
    }

    /// A record header was taken: bytes, the end of the server's flight,
    /// and the switch to encryption.
    fn record_start(&mut self, side: usize, h: &RecordHeader) {
        let server_hello = self.hs.as_ref().is_some_and(|hs| hs.server_hello);
        let s = &mut self.sides[side];
        s.bytes += h.total_len() as u64;
        // An alert record that is not 2 bytes long is encrypted (once keys
        // can exist, after the ServerHello) or malformed (before it).
        let encrypted_alert = h.content_type == parser::CT_ALERT && (s.encrypted || (h.len != 2 && server_hello));
        match h.content_type {
            parser::CT_APPLICATION_DATA => {
                s.encrypted = true;
                s.finished |= server_hello;
            }
            // In TLS 1.3 change_cipher_spec is a no-op for middleboxes
            // (RFC 8446 §D.4), sent even before a second ClientHello or
            // after a HelloRetryRequest: it only counts after the real
            // ServerHello.
            parser::CT_CHANGE_CIPHER_SPEC if server_hello => {
                s.encrypted = true;
                s.finished = true;
            }
            _ if encrypted_alert => {
                s.encrypted = true;
                s.finished |= server_hello;
            }
            _ => {}
        }
        if side == CLIENT {
            // The client speaks again: the server's flight is over.
            if let Some(hs) = self.hs.as_mut() {
                hs.flight_open = false;
            }
        }
    }

    /// The last byte of a record was taken.
    fn record_end(&mut self, side: usize, ts: i64) {
        if side == SERVER {
            if let Some(hs) = self.hs.as_mut().filter(|hs| hs.flight_open) {
                hs.call.response_end_ts = Some(ts);
            }
        }
    }

    /// The payload of a plaintext handshake record: splits it into
    /// messages, carrying a message that continues in the next record.
    fn handshake_payload(&mut self, side: usize, mut p: &[u8], rec_ts: i64, ts: i64) -> Result<(), L7Error> {
        while !p.is_empty() {
            let r = &mut self.sides[side].msg;
            if r.missing == 0 {
                let (typ, len);
                if r.hdr_len == 0 && p.len() >= HANDSHAKE_HEADER_LEN {
                    (typ, len) = parser::handshake_header(p).unwrap_or_default();
                    if let Some(whole) = p.get(..HANDSHAKE_HEADER_LEN + len) {
                        // The common case: the whole message is here.
                        p = &p[whole.len()..];
                        self.message_start(side, typ, rec_ts);
                        self.message(side, typ, whole, ts);
                        continue;
                    }
                    r.hdr.copy_from_slice(&p[..HANDSHAKE_HEADER_LEN]);
                    r.start_ts = rec_ts;
                    p = &p[HANDSHAKE_HEADER_LEN..];
                } else {
                    // A message header split across records.
                    if r.hdr_len == 0 {
                        r.start_ts = rec_ts;
                    }
                    let n = (HANDSHAKE_HEADER_LEN - r.hdr_len).min(p.len());
                    r.hdr[r.hdr_len..r.hdr_len + n].copy_from_slice(&p[..n]);
                    r.hdr_len += n;
                    p = &p[n..];
                    if r.hdr_len < HANDSHAKE_HEADER_LEN {
                        continue;
                    }
                    r.hdr_len = 0;
                    (typ, len) = parser::handshake_header(&r.hdr).unwrap_or_default();
                    if len == 0 {
                        let (hdr, start_ts) = (r.hdr, r.start_ts);
                        self.message_start(side, typ, start_ts);
                        self.message(side, typ, &hdr, ts);
                        continue;
                    }
                }
                // A message that continues in the next record(s).
                let start_ts = self.sides[side].msg.start_ts;
                self.message_start(side, typ, start_ts);
                let keep = is_kept(side, typ);
                if keep && HANDSHAKE_HEADER_LEN + len > self.max_message {
                    self.lose(side);
                    return Err(L7Error::TooLarge);
                }
                let r = &mut self.sides[side].msg;
                r.typ = typ;
                r.missing = len;
                r.keep = keep;
                if keep {
                    r.buf.clear();
                    r.buf.reserve_exact(HANDSHAKE_HEADER_LEN + len);
                    r.buf.extend_from_slice(&r.hdr);
                }
                continue;
            }
            let n = r.missing.min(p.len());
            if r.keep {
                r.buf.extend_from_slice(&p[..n]);
            }
            r.missing -= n;
            p = &p[n..];
            if r.missing == 0 {
                let typ = r.typ;
                let buf = std::mem::take(&mut r.buf);
                self.message(side, typ, &buf, ts);
            }
        }
        Ok(())
    }

    /// The first byte of a handshake message was seen at `start_ts`.
    fn message_start(&mut self, side: usize, typ: u8, start_ts: i64) {
        match (side, typ) {
            (CLIENT, parser::HS_CLIENT_HELLO) => {
                let hs = self.handshake();
                if hs.client_hello == HelloState::None && !hs.server_hello {
                    hs.client_hello = HelloState::Started;
                    hs.call.request_ts = Some(start_ts);
                    hs.call.request_type = Some("ClientHello".into());
                }
            }
            (SERVER, parser::HS_SERVER_HELLO) => {
                let hs = self.handshake();
                hs.call.response_first_ts.get_or_insert(start_ts);
            }
            _ => {}
        }
    }

    /// A complete handshake message (header included).
    fn message(&mut self, side: usize, typ: u8, msg: &[u8], ts: i64) {
        match (side, typ) {
            (CLIENT, parser::HS_CLIENT_HELLO) => {
                let hs = self.handshake();
                if hs.client_hello == HelloState::Started {
                    hs.client_hello = HelloState::Parsed;
                    if let Some(ch) = parser::client_hello(msg) {
                        hs.on_client_hello(&ch);
                    }
                }
            }
            (SERVER, parser::HS_SERVER_HELLO) => {
                let hs = self.handshake();
                if hs.server_hello {
                    return;
                }
                match parser::server_hello(msg) {
                    Some(sh) if sh.hello_retry => {
                        if !hs.hello_retry {
                            hs.hello_retry = true;
                            hs.call.attributes.push(("tls.hello_retry_request".into(), "true".into()));
                        }
                        hs.flight_open = true;
                    }
                    Some(sh) => {
                        hs.server_hello = true;
                        hs.flight_open = true;
                        hs.on_server_hello(&sh);
                        if sh.version() >= 0x0304 {
                            // TLS 1.3: everything after the ServerHello is encrypted.
                            self.sides[SERVER].encrypted = true;
                        }
                    }
                    None => {
                        hs.server_hello = true;
                        hs.server_unparsed = true;
                        hs.flight_open = true;
                    }
                }
            }
            (SERVER, parser::HS_SERVER_HELLO_DONE) => {
                if let Some(hs) = self.hs.as_mut().filter(|hs| hs.flight_open) {
                    hs.call.response_end_ts = Some(ts);
                }
            }
            _ => {}
        }
    }

    /// An SSL 2.0-style ClientHello: it has no extensions, so no SNI and
    /// no fingerprint; the call gets its time and offered version.
    fn sslv2_client_hello(&mut self, version: u16, start_ts: i64) {
        self.message_start(CLIENT, parser::HS_CLIENT_HELLO, start_ts);
        let hs = self.handshake();
        if hs.client_hello == HelloState::Started {
            hs.client_hello = HelloState::Parsed;
            hs.attr("tls.client_version", parser::version_name(version));
            hs.attr("tls.sslv2_hello", "true".into());
        }
    }

    /// A plaintext alert record (an encrypted one was handled as
    /// encrypted traffic in `record_start`).
    fn alert(&mut self, side: usize, payload: &[u8], rec_ts: i64, ts: i64, out: &mut Vec<Call>) {
        if self.sides[side].encrypted {
            return;
        }
        let Some((level, desc)) = parser::alert(payload) else { return };
        let name = parser::alert_name(desc).map_or_else(|| format!("alert_{desc}"), str::to_owned);
        // Warnings that do not end a handshake: close_notify, user_canceled,
        // no_renegotiation, and unrecognized_name (sent as a warning by
        // servers that go on anyway, RFC 6066 §3).
        let fatal = level == 2 || !matches!(desc, 0 | 90 | 100 | 112);
        if !fatal {
            if let Some(hs) = self.hs.as_mut() {
                if !hs.call.attributes.iter().any(|(k, _)| k == "tls.warning_alert") {
                    hs.attr("tls.warning_alert", name);
                }
            }
            return;
        }
        let call = &mut self.handshake().call;
        call.status = if side == SERVER { CallStatus::ServerError } else { CallStatus::ClientError };
        call.response_code = Some(i32::from(desc));
        call.response_exception = Some(name);
        if side == SERVER {
            call.response_first_ts.get_or_insert(rec_ts);
            call.response_end_ts = Some(ts);
        }
        self.emit(out);
    }

    /// A record header that cannot be TLS: this direction is lost.
    fn bad_record(&mut self, side: usize, rec_ts: i64) -> L7Error {
        self.lose(side);
        if side == SERVER {
            if let Some(hs) = self.hs.as_mut().filter(|hs| !hs.server_hello) {
                hs.server_unparsed = true;
                hs.call.response_first_ts.get_or_insert(rec_ts);
            }
        }
        L7Error::Malformed("tls_bad_record")
    }

    fn lose(&mut self, side: usize) {
        let s = &mut self.sides[side];
        s.lost = true;
        s.skip = 0;
        s.pending_ts = None;
        s.msg = Reassembly::default();
        if side == SERVER {
            if let Some(hs) = self.hs.as_mut().filter(|hs| !hs.server_hello) {
                hs.server_lost = true;
            }
        }
    }

    /// Emits the call once nothing more can be learnt from either side.
    fn try_complete(&mut self, out: &mut Vec<Call>) {
        let Some(hs) = self.hs.as_ref() else {
            if self.sides.iter().all(|s| s.lost) {
                self.done = true;
            }
            return;
        };
        let settled = |s: &Side| s.finished || s.lost;
        let server_known = hs.server_hello || self.sides[SERVER].lost;
        if server_known && settled(&self.sides[CLIENT]) && settled(&self.sides[SERVER]) {
            self.emit(out);
        }
    }

    /// Emits the pending call, if any, and stops decoding.
    fn emit(&mut self, out: &mut Vec<Call>) {
        self.done = true;
        self.sides[CLIENT].msg = Reassembly::default();
        self.sides[SERVER].msg = Reassembly::default();
        let Some(hs) = self.hs.take() else { return };
        let Handshake { mut call, server_hello, server_lost, server_unparsed, .. } = *hs;
        if call.status == CallStatus::Ok {
            call.status = match () {
                () if server_hello && !server_unparsed => CallStatus::Ok,
                () if server_hello || server_lost || server_unparsed => CallStatus::Unparsed,
                () => CallStatus::Timeout,
            };
        }
        call.request_bytes = self.sides[CLIENT].bytes;
        call.response_bytes = self.sides[SERVER].bytes;
        call.attributes.sort();
        out.push(call);
    }
}

/// Messages copied when they span records: the ones a call is made of.
fn is_kept(side: usize, typ: u8) -> bool {
    matches!((side, typ), (CLIENT, parser::HS_CLIENT_HELLO) | (SERVER, parser::HS_SERVER_HELLO))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Handshake {
    fn attr(&mut self, key: &str, value: String) {
        self.call.attributes.push((key.to_owned(), value));
    }

    fn on_client_hello(&mut self, ch: &parser::ClientHello<'_>) {
        let sid = ch.session_id;
        let n = sid.len().min(self.client_session_id.len());
        self.client_session_id[..n].copy_from_slice(&sid[..n]);
        self.client_session_id_len = n;
        if let Some(sni) = ch.sni {
            let sni = lossy(sni).to_ascii_lowercase();
            self.call.request_domain = Some(sni.clone());
            self.call.request_resource = Some(sni.clone());
            self.attr("tls.sni", sni);
        }
        if !ch.alpn.is_empty() {
            let list: Vec<String> = ch.alpn.iter().map(|p| lossy(p)).collect();
            self.attr("tls.alpn", list.join(","));
        }
        self.attr("tls.client_version", parser::version_name(ch.legacy_version));
        let versions: Vec<String> = ch
            .supported_versions
            .iter()
            .filter(|v| !parser::is_grease(**v))
            .map(|&v| parser::version_name(v))
            .collect();
        if !versions.is_empty() {
            self.attr("tls.supported_versions", versions.join(","));
        }
        let ja3 = parser::ja3_string(ch);
        self.attr("tls.ja3", parser::ja3_hash(&ja3));
        self.attr("tls.ja3_string", ja3);
        self.attr("tls.ja4", parser::ja4(ch));
    }

    fn on_server_hello(&mut self, sh: &parser::ServerHello<'_>) {
        let version = sh.version();
        self.call.version = Some(parser::version_name(version));
        self.attr("tls.cipher", parser::cipher_name(sh.cipher));
        if let Some(alpn) = sh.alpn {
            self.attr("tls.alpn_selected", lossy(alpn));
        }
        self.attr("tls.ja3s", parser::ja3_hash(&parser::ja3s_string(sh)));
        // TLS 1.2 abbreviated handshake: the server echoes the session id
        // the client offered (RFC 5246 §7.4.1.3). TLS 1.3 servers always
        // echo it (RFC 8446 §4.1.3), so it means nothing there.
        let client_sid = &self.client_session_id[..self.client_session_id_len];
        if version < 0x0304 && !client_sid.is_empty() && sh.session_id == client_sid {
            self.attr("tls.resumed", "true".into());
        }
    }
}

impl Decoder for Session {
    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        self.try_complete(out);
        let side = side_of(dir);
        if self.done || self.udp || self.sides[side].lost {
            return Ok(data.len());
        }
        let result = self.records(side, data, ts, out);
        self.try_complete(out);
        result
    }

    fn on_gap(&mut self, dir: Direction, _len: u32) {
        // During the handshake a gap loses this direction's framing and
        // whatever message it cut; the other direction goes on. After the
        // handshake nothing is parsed anyway.
        if !self.done {
            self.lose(side_of(dir));
        }
    }

    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        let waiting = self.hs.as_ref().is_some_and(|hs| {
            hs.call.response_first_ts.is_none() && hs.call.request_ts.is_some_and(|t| t < older_than)
        });
        if waiting {
            self.emit(out);
        }
    }

    fn finish(&mut self, _end_ts: i64, out: &mut Vec<Call>) {
        self.emit(out);
        self.sides = [Side::default(), Side::default()];
    }
}
