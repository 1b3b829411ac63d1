//! The MySQL [`Decoder`]: packet framing of both directions, command and
//! response pairing, the result-set state machine, limits and [`Call`]s.
//!
//! Framing: a packet is a 4-byte header and its payload; a payload of
//! `0xffffff` bytes continues in the next packet (those are counted, not
//! read). A packet is handled once it is whole, or once
//! `max_message_bytes` of it are there: then its first bytes are read and
//! the rest is consumed unread as it arrives, so memory stays bounded and a
//! large row or statement never stops the flow.
//!
//! Compressed protocol: negotiated at login (CLIENT_COMPRESS; it starts
//! after the login's OK), or recognised when no greeting was seen and the
//! first packets only parse inside a 7-byte compressed header. Each
//! compressed packet is stored as is or zlib-inflated in 8 KiB pieces, and
//! its bytes are framed as above (packets may span compressed packets). A
//! compressed packet larger than `max_message_bytes` is skipped like lost
//! bytes. zstd (CLIENT_ZSTD_COMPRESSION_ALGORITHM) is not decoded: the flow
//! after the login is consumed unread.
//!
//! Client packets with sequence 0 are commands; a sequence-1 packet with
//! the HandshakeResponse41 shape starts a `Login` call; any other client
//! packet (auth switch answers, `LOAD DATA LOCAL` contents) is counted in
//! the bytes of the call it belongs to. Server packets answer the oldest
//! waiting command; a greeting (sequence 0, protocol 10) is remembered for
//! the `Login` call. With no command waiting, a server packet with
//! sequence 1 that reads as OK, ERR or a column count starts a call
//! without request; others are consumed unread.
//!
//! Result sets: column count, that many column definitions, an EOF packet
//! unless CLIENT_DEPRECATE_EOF is on, rows, and a terminator (EOF, or OK
//! with header `0xfe`) or ERR. CLIENT_DEPRECATE_EOF comes from the
//! handshake when seen; otherwise the packet after the last column
//! definition tells: a 5-byte `0xfe` packet is an EOF (rows follow), a
//! longer one is the OK that ends an empty result, anything else a row.
//! In the rows, any `0xfe` packet shorter than `0xffffff` is the
//! terminator in both modes (a row starting with `0xfe` holds a value of
//! at least 2^24 bytes). `SERVER_MORE_RESULTS_EXISTS` in the terminator's
//! status keeps the call open for the next result.
//!
//! Gaps: towards the server, the next `parse` skips to the first offset
//! where a packet probes as a command; towards the client, the response
//! being read ends as `Unparsed` and the next `parse` skips to the first
//! sequence-1 packet that probes as a response start. Bytes before are
//! consumed unread.
//!
//! Limits: `max_pending` waiting commands (the oldest leaves as a
//! `Timeout` call; if its response was being read, the server side
//! resynchronises as after a gap), [`MAX_STATEMENTS`] remembered prepared statements (the
//! oldest is forgotten). A command packet with no payload is counted in
//! [`Session::malformed`] and skipped.
//!
//! Times: `request_ts` and `response_first_ts` are the capture times of a
//! message's first byte (remembered when a `parse` leaves a split packet
//! unconsumed), `response_end_ts` that of the last packet's.

use std::collections::VecDeque;

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZFlush, MZStatus};

use super::parser::{self, parse_header, HEADER_LEN, MAX_PACKET_LEN};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, Probe, SessionConfig, Transport};

/// Default cut of SQL text, names and error messages, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// Prepared statements whose text is remembered for `COM_STMT_EXECUTE`.
pub const MAX_STATEMENTS: usize = 64;

/// What the response to a command looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// OK or ERR (or an EOF).
    OkErr,
    /// OK, ERR, local infile request or result sets.
    ResultSet,
    /// `COM_STMT_PREPARE_OK` and its definitions, or ERR.
    Prepare,
    /// Rows and a terminator (`COM_STMT_FETCH`).
    Rows,
    /// Column definitions and an EOF (`COM_FIELD_LIST`).
    FieldList,
    /// One packet of any shape (`COM_STATISTICS`).
    OnePacket,
    /// Authentication exchange until OK or ERR (Login, `COM_CHANGE_USER`).
    Auth,
}

/// A reusable zlib decoder (its state is large: boxed, made on first use).
struct Inflater(Box<InflateState>);

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inflater")
    }
}

/// Where the response being read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resp {
    /// No packet of the front command's response yet (or between results).
    First,
    ColumnDefs {
        left: u64,
    },
    AfterDefs,
    Rows,
    PrepareParams {
        left: u16,
        columns: u16,
    },
    PrepareAfterParams {
        columns: u16,
    },
    PrepareColumns {
        left: u16,
    },
    PrepareAfterColumns,
    FieldList,
    Auth,
}

/// A command waiting for (or receiving) its response.
#[derive(Debug)]
struct Pending {
    expect: Expect,
    ts: i64,
    /// Its response has started.
    started: bool,
    columns: u64,
    rows: u64,
    results: u32,
    call: Call,
}

/// Per-direction framing state.
#[derive(Debug, Default, Clone, Copy)]
struct DirState {
    /// Bytes of the current packet still to consume unread.
    skip: u64,
    /// The last packet was `0xffffff` long: the next one continues it.
    continued: bool,
    /// Bytes were lost: find the next packet boundary first.
    resync: bool,
    /// Capture time of the first byte the last `parse` left unconsumed.
    partial_ts: Option<i64>,
}

/// Per-flow MySQL session.
#[derive(Debug)]
pub struct Session {
    max_pending: usize,
    max_message: usize,
    max_text: usize,
    pending: VecDeque<Pending>,
    resp: Resp,
    dirs: [DirState; 2],
    /// TLS, compression or replication: the rest of the flow is not read.
    unread: bool,
    /// The client asked for TLS (`CLIENT_SSL`): the rest of the flow is TLS.
    tls: bool,
    /// zlib compression was negotiated: it starts once Login succeeds.
    compress_after_login: bool,
    /// zstd compression was negotiated: once Login succeeds the flow is
    /// unread.
    zstd_after_login: bool,
    /// The compressed protocol is in use (`None`: not known yet).
    compressed: Option<bool>,
    /// Compressed protocol, per direction: uncompressed bytes not framed
    /// yet, bytes of a compressed packet too large to hold still to skip,
    /// and whether bytes were lost before the next compressed header.
    zbuf: [Vec<u8>; 2],
    zskip: [u64; 2],
    zresync: [bool; 2],
    inflater: Option<Inflater>,
    /// Server greeting: protocol version, server version, connection id.
    version: Option<String>,
    server_version: Option<String>,
    connection_id: Option<u32>,
    server_caps: Option<u32>,
    /// Capabilities in force (client's, masked by the server's when seen).
    caps: Option<u32>,
    /// CLIENT_DEPRECATE_EOF, from the handshake or inferred.
    deprecate_eof: Option<bool>,
    /// Prepared statements and their (cut) text, oldest first.
    statements: VecDeque<(u32, String)>,
    /// Calls ended by `on_gap`, handed out by the next `parse`, `expire`
    /// or `finish`.
    gap_calls: Vec<Call>,
    malformed: u64,
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

/// The packet being handled: its header, the payload bytes at hand (all
/// of it, or a prefix when `cut`), and capture times.
struct Packet<'a> {
    seq: u8,
    len: u32,
    payload: &'a [u8],
    first_ts: i64,
    ts: i64,
}

impl Packet<'_> {
    fn wire_len(&self) -> u64 {
        u64::from(self.len) + HEADER_LEN as u64
    }
    fn first(&self) -> Option<u8> {
        self.payload.first().copied()
    }
}

impl Session {
    #[must_use]
    pub fn new(cfg: &SessionConfig, _transport: Transport) -> Self {
        Session {
            max_pending: cfg.max_pending.max(1),
            // At least a handshake response and a cut statement.
            max_message: cfg.max_message_bytes.max(1024),
            max_text: MAX_TEXT_BYTES,
            pending: VecDeque::new(),
            resp: Resp::First,
            dirs: [DirState::default(); 2],
            unread: false,
            tls: false,
            compress_after_login: false,
            zstd_after_login: false,
            compressed: None,
            zbuf: [Vec::new(), Vec::new()],
            zskip: [0; 2],
            zresync: [false; 2],
            inflater: None,
            version: None,
            server_version: None,
            connection_id: None,
            server_caps: None,
            caps: None,
            deprecate_eof: None,
            statements: VecDeque::new(),
            gap_calls: Vec::new(),
            malformed: 0,
        }
    }

    /// Cut SQL text, names and messages to `n` bytes instead of
    /// [`MAX_TEXT_BYTES`].
    #[must_use]
    pub fn with_max_text(mut self, n: usize) -> Self {
        self.max_text = n;
        self
    }

    /// Commands waiting for a response.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Packets that could not be read.
    #[must_use]
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Whether the rest of the flow is consumed unread (TLS, compression,
    /// replication stream).
    #[must_use]
    pub fn is_unread(&self) -> bool {
        self.unread
    }

    fn text(&self, b: &[u8]) -> (String, bool) {
        cut_text(b, self.max_text)
    }

    fn new_call(&self) -> Call {
        let mut call = Call::new(L7Protocol::Mysql);
        call.version.clone_from(&self.version);
        if self.compressed == Some(true) {
            call.attributes.push(("mysql.compressed".to_owned(), "true".to_owned()));
        }
        call
    }

    // ---- client side ----------------------------------------------------

    fn on_client_packet(&mut self, pkt: &Packet<'_>, continued: bool, out: &mut Vec<Call>) {
        if !continued && pkt.seq == 0 {
            self.on_command(pkt, out);
        } else if !continued && pkt.seq == 1 && parser::is_handshake_response(pkt.payload) {
            self.on_handshake_response(pkt, out);
        } else if let Some(p) = self.pending.back_mut() {
            // Auth data, LOAD DATA contents, continuation packets.
            p.call.request_bytes += pkt.wire_len();
        }
    }

    fn on_handshake_response(&mut self, pkt: &Packet<'_>, out: &mut Vec<Call>) {
        let Some(hr) = parser::parse_handshake_response(pkt.payload) else { return };
        let caps = hr.capabilities & self.server_caps.unwrap_or(u32::MAX);
        self.caps = Some(caps);
        self.deprecate_eof = Some(caps & parser::CLIENT_DEPRECATE_EOF != 0);
        let mut call = self.new_call();
        call.request_type = Some("Login".to_owned());
        call.request_ts = Some(pkt.first_ts);
        call.request_bytes = pkt.wire_len();
        let attrs = &mut call.attributes;
        if let Some(v) = &self.server_version {
            attrs.push(("mysql.server_version".to_owned(), v.clone()));
        }
        if let Some(id) = self.connection_id {
            attrs.push(("mysql.connection_id".to_owned(), id.to_string()));
        }
        if let Some(user) = hr.user {
            attrs.push(("mysql.user".to_owned(), cut_text(user, self.max_text).0));
        }
        if let Some(plugin) = hr.auth_plugin.filter(|p| !p.is_empty()) {
            attrs.push(("mysql.auth_plugin".to_owned(), cut_text(plugin, 64).0));
        }
        if let Some(db) = hr.database.filter(|d| !d.is_empty()) {
            call.request_resource = Some(self.text(db).0);
        }
        if hr.ssl_request {
            call.attributes.push(("mysql.ssl".to_owned(), "true".to_owned()));
            sort_attributes(&mut call);
            out.push(call);
            self.unread = true;
            self.tls = true;
            return;
        }
        if caps & parser::CLIENT_ZSTD_COMPRESSION != 0 {
            call.attributes.push(("mysql.compressed".to_owned(), "zstd".to_owned()));
            self.zstd_after_login = true;
        } else if caps & parser::CLIENT_COMPRESS != 0 {
            call.attributes.push(("mysql.compressed".to_owned(), "true".to_owned()));
            self.compress_after_login = true;
        }
        self.push_pending(Expect::Auth, pkt.first_ts, call, out);
    }

    fn on_command(&mut self, pkt: &Packet<'_>, out: &mut Vec<Call>) {
        use parser::*;
        let Some((&cmd, body)) = pkt.payload.split_first() else {
            self.malformed += 1;
            return;
        };
        let mut call = self.new_call();
        call.request_ts = Some(pkt.first_ts);
        call.request_bytes = pkt.wire_len();
        call.request_type = Some(match command_name(cmd) {
            Some(n) => n.to_owned(),
            None => format!("COM_0x{cmd:02x}"),
        });
        let stmt_id = le32(body, 0);
        let mut expect = Expect::OkErr;
        let mut no_response = false;
        match cmd {
            COM_QUERY | COM_STMT_PREPARE => {
                let attrs = match (cmd, self.caps) {
                    (COM_QUERY, Some(c)) => Some(c & CLIENT_QUERY_ATTRIBUTES != 0),
                    (COM_QUERY, None) => None,
                    _ => Some(false),
                };
                let sql = query_text(body, attrs);
                let sql = sql.get(..sql.len().min(self.max_text.saturating_add(4))).unwrap_or_default();
                let (text, cut) = self.text(sql);
                let cut = cut || (pkt.payload.len() as u64) < u64::from(pkt.len);
                call.request_resource = Some(redact_secrets(text));
                if cut {
                    call.attributes.push(("mysql.text_truncated".to_owned(), "true".to_owned()));
                }
                expect = if cmd == COM_QUERY { Expect::ResultSet } else { Expect::Prepare };
            }
            COM_STMT_EXECUTE | COM_STMT_FETCH | COM_STMT_CLOSE | COM_STMT_RESET | COM_STMT_SEND_LONG_DATA => {
                if let Some(id) = stmt_id {
                    call.attributes.push(("mysql.statement_id".to_owned(), id.to_string()));
                    if let Some(i) = self.statements.iter().position(|(s, _)| *s == id) {
                        if cmd == COM_STMT_CLOSE {
                            if let Some((_, sql)) = self.statements.remove(i) {
                                call.request_resource = Some(sql);
                            }
                        } else if let Some((_, sql)) = self.statements.get(i) {
                            call.request_resource = Some(sql.clone());
                        }
                    }
                }
                match cmd {
                    COM_STMT_EXECUTE => expect = Expect::ResultSet,
                    COM_STMT_FETCH => expect = Expect::Rows,
                    COM_STMT_CLOSE | COM_STMT_SEND_LONG_DATA => no_response = true,
                    _ => {}
                }
            }
            COM_INIT_DB | COM_CREATE_DB | COM_DROP_DB => {
                call.request_resource = Some(self.text(body).0);
            }
            COM_FIELD_LIST => {
                let table = body.split(|&c| c == 0).next().unwrap_or_default();
                call.request_resource = Some(self.text(table).0);
                expect = Expect::FieldList;
            }
            COM_CHANGE_USER => {
                let user = body.split(|&c| c == 0).next().unwrap_or_default();
                call.attributes.push(("mysql.user".to_owned(), self.text(user).0));
                expect = Expect::Auth;
            }
            COM_QUIT => no_response = true,
            COM_STATISTICS => expect = Expect::OnePacket,
            COM_PROCESS_INFO => expect = Expect::ResultSet,
            COM_BINLOG_DUMP | COM_BINLOG_DUMP_GTID => {
                // The replication stream that follows is not read.
                no_response = true;
                self.unread = true;
            }
            _ => {}
        }
        if no_response {
            sort_attributes(&mut call);
            out.push(call);
        } else {
            self.push_pending(expect, pkt.first_ts, call, out);
        }
    }

    fn push_pending(&mut self, expect: Expect, ts: i64, call: Call, out: &mut Vec<Call>) {
        while self.pending.len() >= self.max_pending {
            let Some(old) = self.pending.pop_front() else { break };
            if old.started {
                // The rest of its response is not read: the server side
                // resynchronises at the next response start.
                self.resp = Resp::First;
                self.dirs[1] = DirState { resync: true, ..DirState::default() };
            }
            out.push(finish_call(old, CallStatus::Timeout));
        }
        self.pending.push_back(Pending { expect, ts, started: false, columns: 0, rows: 0, results: 0, call });
    }

    // ---- server side ----------------------------------------------------

    fn on_server_packet(&mut self, pkt: &Packet<'_>, continued: bool, out: &mut Vec<Call>) {
        if continued {
            if let Some(p) = self.pending.front_mut().filter(|p| p.started) {
                p.call.response_bytes += pkt.wire_len();
            }
            return;
        }
        let idle = self.pending.front().is_none_or(|p| !p.started);
        if idle && pkt.seq == 0 && pkt.first() == Some(10) {
            if let Some(g) = parser::parse_greeting(pkt.payload) {
                self.version = Some("10".to_owned());
                self.server_version = Some(cut_text(g.server_version, 64).0);
                self.connection_id = Some(g.connection_id);
                self.server_caps = Some(g.capabilities);
                // Compression, if any, starts after the login.
                self.compressed = Some(false);
                return;
            }
        }
        if self.pending.is_empty() {
            // A response to a command not seen: only a packet that starts
            // a response is read.
            if !(pkt.seq == 1 || (pkt.seq == 0 && pkt.first() == Some(0xff))) || !starts_response(pkt.payload) {
                return;
            }
            let call = self.new_call();
            self.pending.push_back(Pending {
                expect: Expect::ResultSet,
                ts: pkt.first_ts,
                started: false,
                columns: 0,
                rows: 0,
                results: 0,
                call,
            });
        }
        let deprecate_eof = self.deprecate_eof;
        let Some(p) = self.pending.front_mut() else { return };
        if !p.started {
            p.started = true;
            p.call.response_first_ts = Some(pkt.first_ts);
            self.resp = match p.expect {
                Expect::Rows => Resp::Rows,
                Expect::FieldList => Resp::FieldList,
                Expect::Auth => Resp::Auth,
                _ => Resp::First,
            };
        }
        p.call.response_bytes += pkt.wire_len();
        p.call.response_end_ts = Some(pkt.ts);
        let first = pkt.first();
        let whole_len = pkt.len;
        let step = match self.resp {
            Resp::First => match (p.expect, first) {
                (_, Some(0xff)) => Step::Err,
                (Expect::OnePacket, _) => Step::Done(CallStatus::Ok),
                (Expect::Prepare, Some(0x00)) => match parser::parse_prepare_ok(pkt.payload) {
                    Some(ok) => {
                        p.call.attributes.push(("mysql.statement_id".to_owned(), ok.statement_id.to_string()));
                        p.call.attributes.push(("mysql.param_count".to_owned(), ok.params.to_string()));
                        p.columns = u64::from(ok.columns);
                        let sql = p.call.request_resource.clone().unwrap_or_default();
                        if self.statements.len() >= MAX_STATEMENTS {
                            self.statements.pop_front();
                        }
                        self.statements.push_back((ok.statement_id, sql));
                        if ok.params > 0 {
                            Step::Go(Resp::PrepareParams { left: ok.params, columns: ok.columns })
                        } else if ok.columns > 0 {
                            Step::Go(Resp::PrepareColumns { left: ok.columns })
                        } else {
                            Step::Done(CallStatus::Ok)
                        }
                    }
                    None => Step::Done(CallStatus::Unparsed),
                },
                (_, Some(0x00)) => ok_step(p, pkt.payload),
                (Expect::ResultSet, Some(0xfb)) => {
                    // LOAD DATA LOCAL: the client sends the file, then the
                    // server answers OK or ERR.
                    push_once(&mut p.call, "mysql.local_infile", "true");
                    Step::Stay
                }
                (Expect::ResultSet, Some(_)) => match parser::lenenc_int(pkt.payload, 0) {
                    Some((n, _)) if n > 0 => {
                        p.results += 1;
                        if p.results == 1 {
                            p.columns = n;
                        }
                        Step::Go(Resp::ColumnDefs { left: n })
                    }
                    _ => Step::Done(CallStatus::Unparsed),
                },
                (Expect::OkErr, Some(0xfe)) => Step::Done(CallStatus::Ok),
                _ => Step::Done(CallStatus::Unparsed),
            },
            Resp::ColumnDefs { left } => {
                if first == Some(0xff) {
                    Step::Err
                } else if left <= 1 {
                    Step::Go(Resp::AfterDefs)
                } else {
                    Step::Go(Resp::ColumnDefs { left: left - 1 })
                }
            }
            Resp::AfterDefs => match first {
                Some(0xff) => Step::Err,
                Some(0xfe) if whole_len < MAX_PACKET_LEN => {
                    let eof = match deprecate_eof {
                        Some(d) => !d,
                        None => whole_len < 7,
                    };
                    if eof {
                        self.deprecate_eof.get_or_insert(false);
                        Step::Go(Resp::Rows)
                    } else {
                        self.deprecate_eof.get_or_insert(true);
                        terminator_step(p, pkt.payload)
                    }
                }
                _ => {
                    self.deprecate_eof.get_or_insert(true);
                    p.rows += 1;
                    Step::Go(Resp::Rows)
                }
            },
            Resp::Rows => match first {
                Some(0xff) => Step::Err,
                Some(0xfe) if whole_len < MAX_PACKET_LEN => terminator_step(p, pkt.payload),
                _ => {
                    p.rows += 1;
                    Step::Stay
                }
            },
            Resp::PrepareParams { left, columns } => {
                if left <= 1 {
                    Step::Go(Resp::PrepareAfterParams { columns })
                } else {
                    Step::Go(Resp::PrepareParams { left: left - 1, columns })
                }
            }
            Resp::PrepareAfterParams { columns } => {
                let is_eof = first == Some(0xfe) && whole_len < 9;
                match (is_eof, columns) {
                    (true, 0) => Step::Done(CallStatus::Ok),
                    (true, _) => Step::Go(Resp::PrepareColumns { left: columns }),
                    (false, 0) => Step::Reprocess,
                    (false, c) if c <= 1 => Step::Go(Resp::PrepareAfterColumns),
                    (false, c) => Step::Go(Resp::PrepareColumns { left: c - 1 }),
                }
            }
            Resp::PrepareColumns { left } => {
                if left <= 1 {
                    Step::Go(Resp::PrepareAfterColumns)
                } else {
                    Step::Go(Resp::PrepareColumns { left: left - 1 })
                }
            }
            Resp::PrepareAfterColumns => {
                if first == Some(0xfe) && whole_len < 9 {
                    Step::Done(CallStatus::Ok)
                } else {
                    Step::Reprocess
                }
            }
            Resp::FieldList => match first {
                Some(0xff) => Step::Err,
                Some(0xfe) if whole_len < 9 => Step::Done(CallStatus::Ok),
                _ => {
                    p.columns += 1;
                    Step::Stay
                }
            },
            Resp::Auth => match first {
                Some(0x00) => ok_step(p, pkt.payload),
                Some(0xff) => Step::Err,
                // Auth switch request, more data: the exchange goes on.
                _ => Step::Stay,
            },
        };
        match step {
            Step::Stay => {}
            Step::Go(r) => self.resp = r,
            Step::Err => {
                if let Some(e) = parser::parse_err(pkt.payload) {
                    fill_error(&mut p.call, &e, self.max_text);
                    let status = error_status(e.code, e.sqlstate);
                    self.finish_front(status, out);
                } else {
                    self.finish_front(CallStatus::Unparsed, out);
                }
            }
            Step::Done(status) => {
                if status == CallStatus::Ok {
                    p.call.response_code = Some(0);
                }
                let login_ok = p.expect == Expect::Auth && status == CallStatus::Ok;
                self.finish_front(status, out);
                if login_ok && self.zstd_after_login {
                    self.unread = true;
                } else if login_ok && self.compress_after_login {
                    self.compressed = Some(true);
                }
            }
            Step::Reprocess => {
                // The definitions ended without an EOF (DEPRECATE_EOF):
                // this packet answers the next command. Its bytes were
                // counted here; take them back.
                p.call.response_bytes = p.call.response_bytes.saturating_sub(pkt.wire_len());
                self.finish_front(CallStatus::Ok, out);
                self.on_server_packet(pkt, false, out);
            }
        }
    }

    fn finish_front(&mut self, status: CallStatus, out: &mut Vec<Call>) {
        self.resp = Resp::First;
        if let Some(p) = self.pending.pop_front() {
            out.push(finish_call(p, status));
        }
    }

    // ---- framing --------------------------------------------------------

    /// Frames packets of `data`; `inner`: `data` is the uncompressed
    /// stream of the compressed protocol.
    fn parse_stream(&mut self, dir: Direction, data: &[u8], ts: i64, inner: bool, out: &mut Vec<Call>) -> usize {
        let d = dir_index(dir);
        let first_ts = self.dirs[d].partial_ts.take().unwrap_or(ts);
        let mut pos = 0usize;
        if self.dirs[d].skip > 0 {
            let n = self.dirs[d].skip.min(data.len() as u64);
            self.dirs[d].skip -= n;
            pos = n as usize;
            if self.dirs[d].skip > 0 {
                return data.len();
            }
        }
        if self.dirs[d].resync {
            let rest = data.get(pos..).unwrap_or_default();
            match find_sync(rest, dir) {
                Sync::At(off) => {
                    self.dirs[d].resync = false;
                    self.dirs[d].continued = false;
                    pos += off;
                }
                Sync::NeedMore(off) => {
                    self.dirs[d].partial_ts = Some(if pos + off == 0 { first_ts } else { ts });
                    return pos + off;
                }
                Sync::Nothing => return data.len(),
            }
        }
        while !self.unread && (inner || self.compressed != Some(true)) {
            let Some(rest) = data.get(pos..) else { break };
            let Some(h) = parse_header(rest) else { break };
            let len = h.len as usize;
            let need = len.min(self.max_message);
            let avail = rest.len() - HEADER_LEN;
            if avail < need {
                break;
            }
            let payload_len = len.min(avail);
            let payload = rest.get(HEADER_LEN..HEADER_LEN + payload_len).unwrap_or_default();
            let payload = payload.get(..payload.len().min(self.max_message)).unwrap_or_default();
            let pkt = Packet { seq: h.seq, len: h.len, payload, first_ts: if pos == 0 { first_ts } else { ts }, ts };
            let continued = self.dirs[d].continued;
            self.dirs[d].continued = h.len == MAX_PACKET_LEN;
            match dir {
                Direction::ToServer => self.on_client_packet(&pkt, continued, out),
                Direction::ToClient => self.on_server_packet(&pkt, continued, out),
            }
            if avail >= len {
                pos += HEADER_LEN + len;
            } else {
                self.dirs[d].skip = (len - avail) as u64;
                return data.len();
            }
        }
        if self.unread {
            // After an SSL request, stop at the switch: the caller detects
            // the TLS that follows (see `switched`).
            return if self.tls && !inner { pos } else { data.len() };
        }
        if !inner && self.compressed == Some(true) {
            // Compression starts after the login's OK.
            let rest = data.get(pos..).unwrap_or_default();
            return pos + self.parse_compressed(dir, rest, ts, out);
        }
        if pos < data.len() {
            self.dirs[d].partial_ts = Some(if pos == 0 { first_ts } else { ts });
        }
        pos
    }

    /// Frames compressed packets (3-byte compressed length, sequence,
    /// 3-byte uncompressed length; 0 means stored as is) and feeds their
    /// uncompressed bytes to the packet framing.
    fn parse_compressed(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> usize {
        let d = dir_index(dir);
        let mut pos = 0usize;
        if self.zskip[d] > 0 {
            let n = self.zskip[d].min(data.len() as u64);
            self.zskip[d] -= n;
            pos = n as usize;
            if self.zskip[d] > 0 {
                return data.len();
            }
        }
        if self.zresync[d] {
            let rest = data.get(pos..).unwrap_or_default();
            match find_sync_compressed(rest, dir) {
                Sync::At(off) => {
                    self.zresync[d] = false;
                    pos += off;
                }
                Sync::NeedMore(off) => return pos + off,
                Sync::Nothing => return data.len(),
            }
        }
        while let Some(&[c0, c1, c2, _seq, u0, u1, u2]) = data.get(pos..pos + 7) {
            let clen = u32::from_le_bytes([c0, c1, c2, 0]) as usize;
            let ulen = u32::from_le_bytes([u0, u1, u2, 0]);
            if clen > self.max_message {
                // Too large to hold: skipped, and the packets in it lost.
                let avail = data.len() - pos - 7;
                self.lose_bytes(dir);
                if avail >= clen {
                    pos += 7 + clen;
                    continue;
                }
                self.zskip[d] = (clen - avail) as u64;
                return data.len();
            }
            let Some(payload) = data.get(pos + 7..pos + 7 + clen) else { break };
            if ulen == 0 {
                self.feed_inner(dir, payload, ts, out);
            } else {
                self.inflate_inner(dir, payload, ulen as usize, ts, out);
            }
            pos += 7 + clen;
            if self.unread {
                return data.len();
            }
        }
        pos
    }

    /// Uncompressed bytes: appended to the direction's buffer and framed.
    fn feed_inner(&mut self, dir: Direction, bytes: &[u8], ts: i64, out: &mut Vec<Call>) {
        let d = dir_index(dir);
        let mut buf = std::mem::take(&mut self.zbuf[d]);
        buf.extend_from_slice(bytes);
        let n = self.parse_stream(dir, &buf, ts, true, out);
        buf.drain(..n.min(buf.len()));
        self.zbuf[d] = buf;
    }

    /// Inflates a zlib payload in 8 KiB pieces, framing each as it comes:
    /// a large result set never sits whole in memory. Output beyond the
    /// declared uncompressed length `ulen` (a zip bomb) is not read.
    fn inflate_inner(&mut self, dir: Direction, payload: &[u8], ulen: usize, ts: i64, out: &mut Vec<Call>) {
        let Inflater(mut state) =
            self.inflater.take().unwrap_or_else(|| Inflater(InflateState::new_boxed(DataFormat::Zlib)));
        state.reset(DataFormat::Zlib);
        let mut chunk = [0u8; 8192];
        let mut input = payload;
        let mut written = 0usize;
        loop {
            let r = inflate(&mut state, input, &mut chunk, MZFlush::None);
            input = input.get(r.bytes_consumed..).unwrap_or_default();
            written += r.bytes_written;
            if written > ulen {
                self.malformed += 1;
                self.lose_bytes(dir);
                break;
            }
            if let Some(piece) = chunk.get(..r.bytes_written).filter(|p| !p.is_empty()) {
                self.feed_inner(dir, piece, ts, out);
            }
            match r.status {
                Ok(MZStatus::StreamEnd) => break,
                Ok(_) if r.bytes_consumed == 0 && r.bytes_written == 0 => {
                    // Stuck: the zlib stream is cut short.
                    self.lose_bytes(dir);
                    break;
                }
                Ok(_) => {}
                Err(_) => {
                    self.malformed += 1;
                    self.lose_bytes(dir);
                    break;
                }
            }
        }
        self.inflater = Some(Inflater(state));
    }

    /// Bytes of the packet stream of `dir` were lost: framing restarts at
    /// the next recognisable packet, and a response being read ends as
    /// unparsed.
    fn lose_bytes(&mut self, dir: Direction) {
        let d = dir_index(dir);
        self.dirs[d] = DirState { resync: true, ..DirState::default() };
        self.zbuf[d].clear();
        if dir == Direction::ToClient && self.pending.front().is_some_and(|p| p.started) {
            self.resp = Resp::First;
            if let Some(mut p) = self.pending.pop_front() {
                push_once(&mut p.call, "mysql.incomplete", "true");
                self.gap_calls.push(finish_call(p, CallStatus::Unparsed));
            }
        }
    }
}

/// What a response packet does to the call.
enum Step {
    /// Keep reading in the same state.
    Stay,
    Go(Resp),
    /// An ERR packet ends the call.
    Err,
    /// The response is complete.
    Done(CallStatus),
    /// The response ended before this packet: finish it and read the
    /// packet afresh.
    Reprocess,
}

/// An OK packet after a command: affected rows, and more results.
fn ok_step(p: &mut Pending, payload: &[u8]) -> Step {
    let Some(ok) = parser::parse_ok(payload) else { return Step::Done(CallStatus::Unparsed) };
    if p.expect == Expect::Auth {
        return Step::Done(CallStatus::Ok);
    }
    let attrs = &mut p.call.attributes;
    attrs.retain(|(k, _)| k != "mysql.affected_rows" && k != "mysql.last_insert_id" && k != "mysql.warnings");
    attrs.push(("mysql.affected_rows".to_owned(), ok.affected_rows.to_string()));
    if ok.last_insert_id != 0 {
        attrs.push(("mysql.last_insert_id".to_owned(), ok.last_insert_id.to_string()));
    }
    if ok.warnings != 0 {
        attrs.push(("mysql.warnings".to_owned(), ok.warnings.to_string()));
    }
    if ok.status & parser::SERVER_MORE_RESULTS_EXISTS != 0 && p.expect == Expect::ResultSet {
        p.results = p.results.max(1) + 1;
        Step::Go(Resp::First)
    } else {
        Step::Done(CallStatus::Ok)
    }
}

/// The EOF or OK (`0xfe`) that ends the rows of a result.
fn terminator_step(p: &mut Pending, payload: &[u8]) -> Step {
    let status = if payload.len() < 7 {
        parser::parse_eof(payload).map(|(_, s)| s)
    } else {
        parser::parse_ok(payload).map(|ok| ok.status)
    };
    match status {
        Some(s) if s & parser::SERVER_MORE_RESULTS_EXISTS != 0 && p.expect == Expect::ResultSet => {
            Step::Go(Resp::First)
        }
        Some(_) => Step::Done(CallStatus::Ok),
        None => Step::Done(CallStatus::Unparsed),
    }
}

/// Whether a server packet with no command waiting starts a response: an
/// OK or ERR that parses, or a column count.
fn starts_response(p: &[u8]) -> bool {
    match p.first() {
        Some(0x00) => parser::parse_ok(p).is_some(),
        Some(0xff) => parser::parse_err(p).is_some(),
        Some(1..=250) => p.len() == 1,
        _ => false,
    }
}

fn finish_call(p: Pending, status: CallStatus) -> Call {
    let mut call = p.call;
    call.status = status;
    if p.started && status != CallStatus::Timeout {
        let attrs = &mut call.attributes;
        if p.columns > 0 {
            attrs.push(("mysql.column_count".to_owned(), p.columns.to_string()));
        }
        if p.columns > 0 && p.expect != Expect::Prepare && p.expect != Expect::FieldList || p.rows > 0 {
            attrs.push(("mysql.row_count".to_owned(), p.rows.to_string()));
        }
        if p.results > 1 {
            attrs.push(("mysql.result_sets".to_owned(), p.results.to_string()));
        }
    }
    sort_attributes(&mut call);
    call
}

fn push_once(call: &mut Call, key: &str, value: &str) {
    if !call.attributes.iter().any(|(k, _)| k == key) {
        call.attributes.push((key.to_owned(), value.to_owned()));
    }
}

fn sort_attributes(call: &mut Call) {
    call.attributes.sort_by(|a, b| a.0.cmp(&b.0));
}

fn fill_error(call: &mut Call, e: &parser::ErrPacket<'_>, max_text: usize) {
    call.response_code = Some(i32::from(e.code));
    let (msg, _) = cut_text(e.message, max_text);
    call.response_exception = Some(match e.sqlstate {
        Some(s) => {
            let state = cut_text(s, 5).0;
            call.attributes.push(("mysql.sqlstate".to_owned(), state.clone()));
            format!("{state} {msg}")
        }
        None => msg,
    });
}

/// The server's fault or the client's: see the module doc.
fn error_status(code: u16, sqlstate: Option<&[u8]>) -> CallStatus {
    let class = sqlstate.and_then(|s| s.get(..2));
    if matches!(class, Some(b"08" | b"40" | b"53")) {
        return CallStatus::ServerError;
    }
    match code {
        1021 | 1030 | 1037 | 1038 | 1040 | 1041 | 1053 | 1105 | 1114 | 1205 | 1213 | 3024 => CallStatus::ServerError,
        _ => CallStatus::ClientError,
    }
}

/// `b` as text of at most `max` bytes, cut at a character boundary (bytes
/// that are not UTF-8 become U+FFFD); whether it was cut.
fn cut_text(b: &[u8], max: usize) -> (String, bool) {
    if b.len() <= max {
        return (String::from_utf8_lossy(b).into_owned(), false);
    }
    let mut head = b.get(..max).unwrap_or_default();
    // Do not end inside a UTF-8 sequence.
    if let Err(e) = std::str::from_utf8(head) {
        if e.error_len().is_none() {
            head = head.get(..e.valid_up_to()).unwrap_or_default();
        }
    }
    (String::from_utf8_lossy(head).into_owned(), true)
}

/// Statements that set passwords (`IDENTIFIED BY '…'`, `PASSWORD('…')`,
/// `SET PASSWORD = '…'`) have their quoted literals replaced by `'***'`.
fn redact_secrets(sql: String) -> String {
    let upper_has = |w: &str| sql.as_bytes().windows(w.len()).any(|x| x.eq_ignore_ascii_case(w.as_bytes()));
    if !upper_has("IDENTIFIED") && !upper_has("PASSWORD") {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in sql.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    out.push_str("***");
                    out.push(c);
                    quote = None;
                }
            }
            None => {
                out.push(c);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        // A literal cut by the text limit.
        out.push_str("***");
    }
    out
}

/// Where framing can start again after a gap.
enum Sync {
    At(usize),
    NeedMore(usize),
    Nothing,
}

/// The first offset where a packet starts that probes as a command
/// (towards the server) or as a response start with sequence 1 (towards
/// the client).
fn find_sync(data: &[u8], dir: Direction) -> Sync {
    for off in 0..data.len() {
        let Some(rest) = data.get(off..) else { break };
        if rest.len() < HEADER_LEN {
            return Sync::NeedMore(off);
        }
        let seq = rest.get(3).copied();
        let plausible = match dir {
            Direction::ToServer => seq == Some(0),
            Direction::ToClient => seq == Some(1),
        };
        if !plausible {
            continue;
        }
        match super::probe_plain(rest, dir) {
            Probe::Match => return Sync::At(off),
            Probe::NeedMore => return Sync::NeedMore(off),
            Probe::NoMatch => {}
        }
    }
    Sync::Nothing
}

/// The first offset where a compressed packet starts: one that probes as
/// MySQL, or a header with a non-zero uncompressed length followed by a
/// zlib header (RFC 1950 §2.2: method 8, window up to 32K, FCHECK).
fn find_sync_compressed(data: &[u8], dir: Direction) -> Sync {
    for off in 0..data.len() {
        let Some(rest) = data.get(off..) else { break };
        let Some(&[_, _, _, _, u0, u1, u2, cmf, flg]) = rest.get(..9) else { return Sync::NeedMore(off) };
        let zlib = [u0, u1, u2] != [0, 0, 0] && cmf == 0x78 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0;
        if zlib {
            return Sync::At(off);
        }
        match super::probe_compressed(rest, dir) {
            Probe::Match => return Sync::At(off),
            Probe::NeedMore => return Sync::NeedMore(off),
            Probe::NoMatch => {}
        }
    }
    Sync::Nothing
}

impl Decoder for Session {
    fn switched(&self) -> bool {
        self.tls
    }

    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        out.append(&mut self.gap_calls);
        if self.unread {
            return Ok(data.len());
        }
        if self.compressed.is_none() {
            // No greeting seen: the first packets' shape tells.
            self.compressed = match super::probe_plain(data, dir) {
                Probe::Match => Some(false),
                _ => match super::probe_compressed(data, dir) {
                    Probe::Match => Some(true),
                    _ => None,
                },
            };
        }
        let n = if self.compressed == Some(true) {
            self.parse_compressed(dir, data, ts, out)
        } else {
            self.parse_stream(dir, data, ts, false, out)
        };
        out.append(&mut self.gap_calls);
        Ok(n)
    }

    fn on_gap(&mut self, dir: Direction, _len: u32) {
        if self.compressed == Some(true) {
            let d = dir_index(dir);
            self.zresync[d] = true;
            self.zskip[d] = 0;
        }
        self.lose_bytes(dir);
    }

    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        out.append(&mut self.gap_calls);
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending.get(i).is_some_and(|p| !p.started && p.ts < older_than) {
                if let Some(p) = self.pending.remove(i) {
                    out.push(finish_call(p, CallStatus::Timeout));
                }
            } else {
                i += 1;
            }
        }
    }

    fn finish(&mut self, _end_ts: i64, out: &mut Vec<Call>) {
        out.append(&mut self.gap_calls);
        for mut p in self.pending.drain(..) {
            if p.started {
                // The flow ended inside the response.
                push_once(&mut p.call, "mysql.incomplete", "true");
                let status = if p.call.response_code.is_none() { CallStatus::Ok } else { p.call.status };
                out.push(finish_call(p, status));
            } else {
                out.push(finish_call(p, CallStatus::Timeout));
            }
        }
        self.resp = Resp::First;
        self.dirs = [DirState::default(); 2];
        self.zbuf = [Vec::new(), Vec::new()];
    }
}
