//! Byte-array tests of the MySQL parser, probe and session. The hex strings
//! marked "corpus" are TCP payloads copied from DeepFlow's
//! `flow_generator/mysql/mysql.pcap` (MySQL 8.0.21, libmysql 8.0.21);
//! their decoded values were checked against tshark 4.0's MySQL dissector.

use super::parser::{self, Header};
use super::{probe, Session, MAX_TEXT_BYTES};
use crate::l7::{Call, CallStatus, Decoder, Direction, Probe, SessionConfig, Transport};

use Direction::{ToClient, ToServer};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

// ---- corpus bytes -------------------------------------------------------

/// Greeting: protocol 10, "8.0.21", connection id 0xb7ef4c (12054348),
/// caching_sha2… no: plugin `mysql_native_password`.
const GREETING: &str = "4a0000000a382e302e3231004cefb7003d504670126d6b1100fff7ff0200ff8715000000000000000000007e793c716e333d7065397971006d7973716c5f6e61746976655f70617373776f726400";
/// HandshakeResponse41: user root, empty auth response, database deepflow,
/// plugin caching_sha2_password, connection attributes.
const LOGIN: &str = "990000018fa2bf0100000040ff0000000000000000000000000000000000000000000000726f6f74000064656570666c6f770063616368696e675f736861325f70617373776f72640053045f706964053133373732095f706c6174666f726d067838365f36340f5f636c69656e745f76657273696f6e06382e302e3231035f6f73054c696e75780c5f636c69656e745f6e616d65086c69626d7973716c";
/// Auth switch request to mysql_native_password (seq 2).
const AUTH_SWITCH: &str =
    "2c000002fe6d7973716c5f6e61746976655f70617373776f7264003d504670126d6b117e793c716e333d706539797100";
/// The client's scrambled password (seq 3): never stored.
const AUTH_DATA: &str = "14000003bb20fa99abe28ecfcbbe84a020f5a909bd90c0cc";
/// OK (seq 4) with session state: database deepflow.
const LOGIN_OK: &str = "1400000400000002400000000b01090864656570666c6f77";
/// COM_QUERY `SET NAMES utf8`.
const SET_NAMES: &str = "0f00000003534554204e414d45532075746638";

// ---- hand-built packets -------------------------------------------------

fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("short");
    let mut v = len.to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(payload);
    v
}

fn query(sql: &str) -> Vec<u8> {
    let mut p = vec![parser::COM_QUERY];
    p.extend_from_slice(sql.as_bytes());
    pkt(0, &p)
}

fn command(cmd: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![cmd];
    p.extend_from_slice(body);
    pkt(0, &p)
}

/// OK: affected rows, last insert id, status, warnings (all < 251).
fn ok(seq: u8, affected: u8, insert_id: u8, status: u16, warnings: u16) -> Vec<u8> {
    let mut p = vec![0x00, affected, insert_id];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&warnings.to_le_bytes());
    pkt(seq, &p)
}

fn err(seq: u8, code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(msg.as_bytes());
    pkt(seq, &p)
}

fn eof(seq: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0xfe, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    pkt(seq, &p)
}

/// OK with header 0xfe that ends a result set under CLIENT_DEPRECATE_EOF.
fn ok_eof(seq: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0xfe, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    pkt(seq, &p)
}

fn column_def(seq: u8, name: &str) -> Vec<u8> {
    let mut p = Vec::new();
    for s in ["def", "db", "t", "t", name, name] {
        p.push(u8::try_from(s.len()).expect("short"));
        p.extend_from_slice(s.as_bytes());
    }
    p.extend_from_slice(&[0x0c, 0x21, 0, 0x20, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
    pkt(seq, &p)
}

fn row(seq: u8, values: &[&str]) -> Vec<u8> {
    let mut p = Vec::new();
    for v in values {
        p.push(u8::try_from(v.len()).expect("short"));
        p.extend_from_slice(v.as_bytes());
    }
    pkt(seq, &p)
}

/// A text result set: column count, definitions, EOF unless
/// `deprecate_eof`, rows, terminator with `status`.
fn result_set(cols: &[&str], rows: &[&[&str]], deprecate_eof: bool, status: u16) -> Vec<u8> {
    let mut seq = 1u8;
    let mut next = || {
        let s = seq;
        seq = seq.wrapping_add(1);
        s
    };
    let mut v = pkt(next(), &[u8::try_from(cols.len()).expect("few")]);
    for c in cols {
        v.extend(column_def(next(), c));
    }
    if !deprecate_eof {
        v.extend(eof(next(), 0x0002));
    }
    for r in rows {
        v.extend(row(next(), r));
    }
    if deprecate_eof {
        v.extend(ok_eof(next(), status));
    } else {
        v.extend(eof(next(), status));
    }
    v
}

fn cfg() -> SessionConfig {
    SessionConfig::default()
}

fn session() -> Session {
    Session::new(&cfg(), Transport::Tcp)
}

/// Feeds each `(dir, bytes)` as the analyzer does: unconsumed bytes of a
/// direction are kept and offered again with the next ones.
fn run_on(s: &mut Session, script: &[(Direction, Vec<u8>)]) -> Vec<Call> {
    let mut out = Vec::new();
    let mut carry: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (i, (dir, bytes)) in script.iter().enumerate() {
        let d = usize::from(*dir == ToClient);
        carry[d].extend_from_slice(bytes);
        let n = s.parse(*dir, &carry[d], 1000 + i as i64, &mut out).expect("parse");
        assert!(n <= carry[d].len());
        carry[d].drain(..n);
    }
    out
}

fn run(script: &[(Direction, Vec<u8>)]) -> Vec<Call> {
    let mut s = session();
    let mut out = run_on(&mut s, script);
    s.finish(99_999, &mut out);
    out
}

fn attr<'a>(c: &'a Call, key: &str) -> Option<&'a str> {
    c.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn login_script() -> Vec<(Direction, Vec<u8>)> {
    vec![
        (ToClient, hex(GREETING)),
        (ToServer, hex(LOGIN)),
        (ToClient, hex(AUTH_SWITCH)),
        (ToServer, hex(AUTH_DATA)),
        (ToClient, hex(LOGIN_OK)),
    ]
}

// ---- parser -------------------------------------------------------------

#[test]
fn header_and_lenenc() {
    assert_eq!(parser::parse_header(&[0x0f, 0, 0, 3]), Some(Header { len: 15, seq: 3 }));
    assert_eq!(parser::parse_header(&[0xff, 0xff, 0xff, 1]), Some(Header { len: parser::MAX_PACKET_LEN, seq: 1 }));
    assert_eq!(parser::parse_header(&[1, 0, 0]), None);
    assert_eq!(parser::lenenc_int(&[0xfa], 0), Some((250, 1)));
    assert_eq!(parser::lenenc_int(&[0xfc, 0x34, 0x12], 0), Some((0x1234, 3)));
    assert_eq!(parser::lenenc_int(&[0xfd, 1, 2, 3], 0), Some((0x030201, 4)));
    assert_eq!(parser::lenenc_int(&[0xfe, 1, 0, 0, 0, 0, 0, 0, 1], 0), Some((0x0100_0000_0000_0001, 9)));
    assert_eq!(parser::lenenc_int(&[0xfe, 1, 0], 0), None);
    assert_eq!(parser::lenenc_int(&[0xfb], 0), None);
    assert_eq!(parser::lenenc_int(&[0xff], 0), None);
}

#[test]
fn parses_corpus_greeting_and_login() {
    let g = hex(GREETING);
    let g = parser::parse_greeting(&g[4..]).expect("greeting");
    assert_eq!(g.server_version, b"8.0.21");
    // tshark: mysql.thread_id 12054348, server capabilities 0xf7ff / 0x87ff.
    assert_eq!(g.connection_id, 12_054_348);
    assert_eq!(g.capabilities, 0x87ff_f7ff);
    assert_eq!(g.auth_plugin, Some(b"mysql_native_password".as_slice()));

    let l = hex(LOGIN);
    let r = parser::parse_handshake_response(&l[4..]).expect("login");
    assert_eq!(r.capabilities, 0x01bf_a28f);
    assert!(!r.ssl_request);
    assert_eq!(r.user, Some(b"root".as_slice()));
    assert_eq!(r.database, Some(b"deepflow".as_slice()));
    assert_eq!(r.auth_plugin, Some(b"caching_sha2_password".as_slice()));
    // Cut inside the user name: fields after it are absent, no panic.
    let cut = parser::parse_handshake_response(&l[4..36]).expect("fixed part");
    assert_eq!((cut.user, cut.database), (None, None));
}

#[test]
fn parses_ok_err_eof_prepare() {
    let o = ok(1, 3, 7, 0x0002, 1);
    assert_eq!(
        parser::parse_ok(&o[4..]),
        Some(parser::OkPacket { affected_rows: 3, last_insert_id: 7, status: 2, warnings: 1 })
    );
    let lo = hex(LOGIN_OK);
    assert_eq!(parser::parse_ok(&lo[4..]).map(|o| o.status), Some(0x4002));
    let e = err(1, 1064, "42000", "You have an error");
    let e = parser::parse_err(&e[4..]).expect("err");
    assert_eq!((e.code, e.sqlstate, e.message), (1064, Some(b"42000".as_slice()), b"You have an error".as_slice()));
    // Pre-4.1 / handshake errors carry no SQLSTATE.
    let e = parser::parse_err(&[0xff, 0x10, 0x04, b'T', b'o', b'o']).expect("err");
    assert_eq!((e.code, e.sqlstate, e.message), (1040, None, b"Too".as_slice()));
    assert_eq!(parser::parse_eof(&eof(5, 0x22)[4..]), Some((0, 0x22)));
    assert_eq!(parser::parse_eof(&[0xfe, 0]), None);
    let p = [0x00, 7, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0];
    assert_eq!(parser::parse_prepare_ok(&p), Some(parser::PrepareOk { statement_id: 7, columns: 2, params: 1 }));
    assert_eq!(parser::parse_prepare_ok(&p[..11]), None);
}

#[test]
fn query_text_with_and_without_attributes() {
    assert_eq!(parser::query_text(b"select 1", Some(false)), b"select 1");
    assert_eq!(parser::query_text(b"\x00\x01select 1", Some(true)), b"select 1");
    assert_eq!(parser::query_text(b"\x00\x01select 1", None), b"select 1");
    assert_eq!(parser::query_text(b"select 1", None), b"select 1");
    // With parameters the text is not reached.
    assert_eq!(parser::query_text(b"\x01\x01\x00\x01", Some(true)), b"");
    assert_eq!(parser::command_name(3), Some("COM_QUERY"));
    assert_eq!(parser::command_name(0x17), Some("COM_STMT_EXECUTE"));
    assert_eq!(parser::command_name(0x40), None);
}

// ---- probe --------------------------------------------------------------

#[test]
fn probe_matches_own_and_rejects_others() {
    let mut h2_settings = vec![0, 0, 12, 4, 0, 0, 0, 0, 0];
    h2_settings.extend([0, 3, 0, 0, 0, 100, 0, 4, 0, 0xff, 0xff, 0xff]);
    let mut pg_startup = vec![0, 0, 0, 0x29, 0, 3, 0, 0];
    pg_startup.extend(b"user\0postgres\0database\0postgres\0\0");
    let mut kafka = vec![0, 0, 0, 0x1f, 0, 0x12, 0, 3, 0, 0, 0, 1, 0, 9];
    kafka.extend(b"client-id\0\0");
    let mut mqtt = vec![0x10, 0x10, 0, 4];
    mqtt.extend(b"MQTT\x04\x02\x00\x3c\x00\x04abcd");
    let mut dns_tcp = vec![0, 29, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    dns_tcp.extend(b"\x07example\x04test\x00\x00\x01\x00\x01");
    let tls_client_hello = vec![0x16, 3, 1, 0, 0x40, 1, 0, 0, 0x3c, 3, 3, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    let tls_server_hello = vec![0x16, 3, 3, 0, 0x5a, 2, 0, 0, 0x56, 3, 3, 0x11, 0x22, 0x33, 0x44, 0x55];
    let random: Vec<u8> = (0u32..64).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let others: Vec<(&str, Vec<u8>, Direction)> = vec![
        ("http request", b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), ToServer),
        ("http response", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(), ToClient),
        ("tls client hello", tls_client_hello, ToServer),
        ("tls server hello", tls_server_hello, ToClient),
        ("dns over tcp", dns_tcp.clone(), ToServer),
        ("dns over tcp response", dns_tcp, ToClient),
        ("http2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), ToServer),
        ("http2 settings", h2_settings.clone(), ToClient),
        ("http2 settings to server", h2_settings, ToServer),
        ("postgres startup", pg_startup, ToServer),
        ("postgres ssl request", vec![0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f], ToServer),
        ("redis ping", b"*1\r\n$4\r\nPING\r\n".to_vec(), ToServer),
        ("redis pong", b"+PONG\r\n".to_vec(), ToClient),
        ("kafka api versions", kafka, ToServer),
        ("mqtt connect", mqtt, ToServer),
        ("ssh client banner", b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), ToServer),
        ("ssh server banner", b"SSH-2.0-OpenSSH_8.4p1 Debian\r\n".to_vec(), ToClient),
        ("random to server", random.clone(), ToServer),
        ("random to client", random, ToClient),
        ("zeros", vec![0; 32], ToServer),
    ];
    for (name, bytes, dir) in &others {
        assert_eq!(probe(bytes, *dir, Transport::Tcp), Probe::NoMatch, "{name}");
    }
    let own: Vec<(&str, Vec<u8>, Direction)> = vec![
        ("greeting", hex(GREETING), ToClient),
        ("handshake response", hex(LOGIN), ToServer),
        ("COM_QUERY", hex(SET_NAMES), ToServer),
        ("COM_QUERY with attributes", command(3, b"\x00\x01select 1"), ToServer),
        ("COM_PING", command(parser::COM_PING, b""), ToServer),
        ("COM_INIT_DB", command(parser::COM_INIT_DB, b"test"), ToServer),
        ("COM_STMT_EXECUTE", command(0x17, &[1, 0, 0, 0, 0, 1, 0, 0, 0]), ToServer),
        ("OK", ok(1, 0, 0, 2, 0), ToClient),
        ("ERR", err(1, 1146, "42S02", "Table 'x.y' doesn't exist"), ToClient),
        ("column count", result_set(&["a"], &[], true, 2), ToClient),
    ];
    for (name, bytes, dir) in &own {
        assert_eq!(probe(bytes, *dir, Transport::Tcp), Probe::Match, "{name}");
        assert_eq!(probe(bytes, *dir, Transport::Udp), Probe::NoMatch, "{name} over UDP");
        // Short prefixes never match wrongly.
        for cut in 0..bytes.len().min(12) {
            assert_ne!(probe(&bytes[..cut], *dir, Transport::Tcp), Probe::Match, "{name} cut at {cut}");
        }
    }
    // Other protocols' probes do not take MySQL's first bytes.
    for (name, bytes, dir) in &own[..3] {
        assert_eq!(
            crate::l7::detect(bytes, *dir, Transport::Tcp, 80),
            crate::l7::Detection::Found(crate::l7::L7Protocol::Mysql),
            "{name}"
        );
    }
}

// ---- session: the call kinds --------------------------------------------

#[test]
fn login_with_auth_switch() {
    let calls = run(&login_script());
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.request_type.as_deref(), Some("Login"));
    assert_eq!(c.request_resource.as_deref(), Some("deepflow"));
    assert_eq!(c.version.as_deref(), Some("10"));
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!(c.response_code, Some(0));
    assert_eq!(c.request_ts, Some(1001));
    assert_eq!(c.response_first_ts, Some(1002));
    assert_eq!(c.response_end_ts, Some(1004));
    // Handshake response 157 bytes + scramble 24; switch 48 + OK 24.
    assert_eq!((c.request_bytes, c.response_bytes), (157 + 24, 48 + 24));
    assert_eq!(attr(c, "mysql.user"), Some("root"));
    assert_eq!(attr(c, "mysql.server_version"), Some("8.0.21"));
    assert_eq!(attr(c, "mysql.connection_id"), Some("12054348"));
    assert_eq!(attr(c, "mysql.auth_plugin"), Some("caching_sha2_password"));
    let keys: Vec<&str> = c.attributes.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    // The scramble is nowhere in the call.
    assert!(!format!("{c:?}").contains("bb20fa99"));
}

#[test]
fn login_refused() {
    let mut s = login_script();
    s.truncate(2);
    s.push((ToClient, err(2, 1045, "28000", "Access denied for user 'root'@'localhost' (using password: YES)")));
    let calls = run(&s);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, CallStatus::ClientError);
    assert_eq!(calls[0].response_code, Some(1045));
    assert_eq!(
        calls[0].response_exception.as_deref(),
        Some("28000 Access denied for user 'root'@'localhost' (using password: YES)")
    );
}

#[test]
fn query_ok_and_error() {
    let mut script = login_script();
    script.push((ToServer, query("insert into t values (1)")));
    script.push((ToClient, ok(1, 1, 5, 2, 0)));
    script.push((ToServer, query("selec 1")));
    script.push((ToClient, err(1, 1064, "42000", "You have an error in your SQL syntax")));
    script.push((ToServer, query("select * from t for update")));
    script.push((ToClient, err(1, 1213, "40001", "Deadlock found when trying to get lock")));
    let calls = run(&script);
    assert_eq!(calls.len(), 4);
    let c = &calls[1];
    assert_eq!(c.request_type.as_deref(), Some("COM_QUERY"));
    assert_eq!(c.request_resource.as_deref(), Some("insert into t values (1)"));
    assert_eq!((c.status, c.response_code), (CallStatus::Ok, Some(0)));
    assert_eq!(attr(c, "mysql.affected_rows"), Some("1"));
    assert_eq!(attr(c, "mysql.last_insert_id"), Some("5"));
    assert_eq!((c.request_bytes, c.response_bytes), (4 + 25, 4 + 7));
    let c = &calls[2];
    assert_eq!((c.status, c.response_code), (CallStatus::ClientError, Some(1064)));
    assert_eq!(c.response_exception.as_deref(), Some("42000 You have an error in your SQL syntax"));
    assert_eq!(attr(c, "mysql.sqlstate"), Some("42000"));
    assert_eq!((calls[3].status, calls[3].response_code), (CallStatus::ServerError, Some(1213)));
}

#[test]
fn result_sets_with_and_without_deprecate_eof() {
    for deprecate in [false, true] {
        for known in [false, true] {
            let mut script = if known {
                let mut s = login_script();
                if !deprecate {
                    // The same login without CLIENT_DEPRECATE_EOF.
                    let mut l = hex(LOGIN);
                    l[7] &= !0x01;
                    s[1].1 = l;
                }
                s
            } else {
                Vec::new()
            };
            script.push((ToServer, query("select a, b from t")));
            script.push((ToClient, result_set(&["a", "b"], &[&["1", "x"], &["2", "y"], &["3", "z"]], deprecate, 2)));
            script.push((ToServer, query("select a from t where 0")));
            script.push((ToClient, result_set(&["a"], &[], deprecate, 2)));
            script.push((ToServer, query("do 1")));
            script.push((ToClient, ok(1, 0, 0, 2, 0)));
            let calls = run(&script);
            let calls = &calls[usize::from(known)..];
            let what = format!("deprecate_eof {deprecate}, handshake seen {known}");
            assert_eq!(calls.len(), 3, "{what}");
            assert_eq!(attr(&calls[0], "mysql.column_count"), Some("2"), "{what}");
            assert_eq!(attr(&calls[0], "mysql.row_count"), Some("3"), "{what}");
            assert_eq!((calls[0].status, calls[0].response_code), (CallStatus::Ok, Some(0)), "{what}");
            assert_eq!(attr(&calls[1], "mysql.row_count"), Some("0"), "{what}");
            assert_eq!(calls[2].request_resource.as_deref(), Some("do 1"), "{what}");
            assert_eq!(calls[2].status, CallStatus::Ok, "{what}");
            assert!(calls.iter().all(|c| c.response_end_ts.is_some()), "{what}");
        }
    }
}

#[test]
fn error_inside_rows_and_multiple_results() {
    let mut rs = pkt(1, &[1]);
    rs.extend(column_def(2, "a"));
    rs.extend(eof(3, 2));
    rs.extend(row(4, &["1"]));
    rs.extend(err(5, 1317, "70100", "Query execution was interrupted"));
    // CALL p(): two result sets, then the final OK.
    let mut multi = pkt(1, &[1]);
    multi.extend(column_def(2, "a"));
    multi.extend(eof(3, 0x000a));
    multi.extend(row(4, &["1"]));
    multi.extend(eof(5, 0x000a));
    multi.extend(pkt(6, &[1]));
    multi.extend(column_def(7, "b"));
    multi.extend(eof(8, 0x000a));
    multi.extend(row(9, &["2"]));
    multi.extend(row(10, &["3"]));
    multi.extend(eof(11, 0x000a));
    multi.extend(ok(12, 0, 0, 2, 0));
    let calls = run(&[
        (ToServer, query("select sleep(10)")),
        (ToClient, rs),
        (ToServer, query("call p()")),
        (ToClient, multi),
        (ToServer, command(parser::COM_PING, b"")),
        (ToClient, ok(1, 0, 0, 2, 0)),
    ]);
    assert_eq!(calls.len(), 3);
    assert_eq!((calls[0].status, calls[0].response_code), (CallStatus::ClientError, Some(1317)));
    assert_eq!(attr(&calls[1], "mysql.result_sets"), Some("2"));
    assert_eq!(attr(&calls[1], "mysql.row_count"), Some("3"));
    assert_eq!(calls[1].status, CallStatus::Ok);
    assert_eq!(calls[2].request_type.as_deref(), Some("COM_PING"));
}

#[test]
fn prepare_execute_close() {
    // Prepare: id 7, 1 column, 1 parameter, old EOF framing.
    let mut prep = pkt(1, &[0, 7, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]);
    prep.extend(column_def(2, "?"));
    prep.extend(eof(3, 2));
    prep.extend(column_def(4, "a"));
    prep.extend(eof(5, 2));
    let mut exec = vec![7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, 42, 0, 0, 0];
    let exec_pkt = command(parser::COM_STMT_EXECUTE, &exec);
    exec.clear();
    let mut rows = pkt(1, &[1]);
    rows.extend(column_def(2, "a"));
    rows.extend(eof(3, 2));
    rows.extend(pkt(4, &[0, 0, 1, b'x']));
    rows.extend(eof(5, 2));
    let calls = run(&[
        (ToServer, command(parser::COM_STMT_PREPARE, b"select a from t where id = ?")),
        (ToClient, prep),
        (ToServer, exec_pkt),
        (ToClient, rows),
        (ToServer, command(parser::COM_STMT_CLOSE, &[7, 0, 0, 0])),
        (ToServer, command(parser::COM_QUIT, b"")),
    ]);
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].request_type.as_deref(), Some("COM_STMT_PREPARE"));
    assert_eq!(attr(&calls[0], "mysql.statement_id"), Some("7"));
    assert_eq!(attr(&calls[0], "mysql.param_count"), Some("1"));
    assert_eq!(calls[1].request_type.as_deref(), Some("COM_STMT_EXECUTE"));
    assert_eq!(calls[1].request_resource.as_deref(), Some("select a from t where id = ?"));
    assert_eq!(attr(&calls[1], "mysql.statement_id"), Some("7"));
    assert_eq!(attr(&calls[1], "mysql.row_count"), Some("1"));
    assert_eq!(calls[2].request_type.as_deref(), Some("COM_STMT_CLOSE"));
    assert_eq!(calls[2].response_first_ts, None);
    assert_eq!(calls[2].status, CallStatus::Ok);
    assert_eq!(calls[3].request_type.as_deref(), Some("COM_QUIT"));
}

#[test]
fn prepare_without_eof_ends_at_next_response() {
    // DEPRECATE_EOF, handshake not seen: after the last definition the
    // next packet answers the next command.
    let mut prep = pkt(1, &[0, 9, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
    prep.extend(column_def(2, "?"));
    prep.extend(column_def(3, "?"));
    let calls = run(&[
        (ToServer, command(parser::COM_STMT_PREPARE, b"insert into t values (?, ?)")),
        (ToClient, prep),
        (ToServer, command(parser::COM_PING, b"")),
        (ToClient, ok(1, 0, 0, 2, 0)),
    ]);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].status, CallStatus::Ok);
    assert_eq!(calls[0].response_bytes, 16 + 2 * 32);
    assert_eq!(calls[1].request_type.as_deref(), Some("COM_PING"));
    assert_eq!(calls[1].status, CallStatus::Ok);
}

#[test]
fn other_commands() {
    let calls = run(&[
        (ToServer, command(parser::COM_INIT_DB, b"shop")),
        (ToClient, ok(1, 0, 0, 2, 0)),
        (ToServer, command(parser::COM_FIELD_LIST, b"orders\0")),
        (ToClient, [column_def(1, "id"), column_def(2, "total"), eof(3, 2)].concat()),
        (ToServer, command(parser::COM_STATISTICS, b"")),
        (ToClient, pkt(1, b"Uptime: 5  Threads: 1")),
        (ToServer, command(0x1b, &[1, 0])),
        (ToClient, eof(1, 2)),
        (ToServer, command(0x3a, b"")),
        (ToClient, err(1, 1047, "08S01", "Unknown command")),
    ]);
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[0].request_type.as_deref(), Some("COM_INIT_DB"));
    assert_eq!(calls[0].request_resource.as_deref(), Some("shop"));
    assert_eq!(calls[1].request_resource.as_deref(), Some("orders"));
    assert_eq!(attr(&calls[1], "mysql.column_count"), Some("2"));
    assert_eq!(calls[2].request_type.as_deref(), Some("COM_STATISTICS"));
    assert_eq!(calls[2].status, CallStatus::Ok);
    assert_eq!(calls[3].request_type.as_deref(), Some("COM_SET_OPTION"));
    assert_eq!(calls[3].status, CallStatus::Ok);
    assert_eq!(calls[4].request_type.as_deref(), Some("COM_0x3a"));
    // SQLSTATE class 08: a connection exception is the server's.
    assert_eq!(calls[4].status, CallStatus::ServerError);
}

#[test]
fn ssl_request_leaves_the_rest_unread() {
    let l = hex(LOGIN);
    let mut ssl = l[4..36].to_vec();
    ssl[1] |= 0x08; // CLIENT_SSL
    let mut s = session();
    let calls = run_on(
        &mut s,
        &[
            (ToClient, hex(GREETING)),
            (ToServer, pkt(1, &ssl)),
            (ToServer, vec![0x16, 3, 1, 0, 0x40, 1, 0, 0, 0x3c]),
            (ToClient, vec![0x16, 3, 3, 0, 0x5a]),
            (ToServer, query("select secret")),
        ],
    );
    assert!(s.is_unread());
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_type.as_deref(), Some("Login"));
    assert_eq!(attr(&calls[0], "mysql.ssl"), Some("true"));
    assert_eq!(attr(&calls[0], "mysql.server_version"), Some("8.0.21"));
    assert_eq!(calls[0].request_bytes, 36);
}

#[test]
fn zstd_compression_leaves_the_rest_unread() {
    let mut l = hex(LOGIN);
    l[7] |= 0x04; // CLIENT_ZSTD_COMPRESSION_ALGORITHM
    let mut s = session();
    let calls = run_on(
        &mut s,
        &[
            (ToClient, hex(GREETING)),
            (ToServer, l),
            (ToClient, ok(2, 0, 0, 2, 0)),
            (ToServer, hex("1400000000000003534554204e414d455320757466")),
        ],
    );
    assert!(s.is_unread());
    assert_eq!(calls.len(), 1);
    assert_eq!(attr(&calls[0], "mysql.compressed"), Some("zstd"));
}

#[test]
fn secrets_are_redacted() {
    let calls = run(&[
        (ToServer, query("CREATE USER 'bob'@'%' IDENTIFIED BY 'hunter2'")),
        (ToClient, ok(1, 0, 0, 2, 0)),
        (ToServer, query("set password = 'it''s\\'secret'")),
        (ToClient, ok(1, 0, 0, 2, 0)),
    ]);
    assert_eq!(calls[0].request_resource.as_deref(), Some("CREATE USER '***'@'***' IDENTIFIED BY '***'"));
    let r = calls[1].request_resource.as_deref().unwrap_or_default();
    assert!(!r.contains("secret"), "{r}");
}

#[test]
fn local_infile() {
    let calls = run(&[
        (ToServer, query("LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE t")),
        (ToClient, pkt(1, b"\xfbx.csv")),
        (ToServer, pkt(2, b"1,a\n2,b\n")),
        (ToServer, pkt(3, b"")),
        (ToClient, ok(4, 2, 0, 2, 0)),
    ]);
    assert_eq!(calls.len(), 1);
    assert_eq!(attr(&calls[0], "mysql.local_infile"), Some("true"));
    assert_eq!(attr(&calls[0], "mysql.affected_rows"), Some("2"));
    assert_eq!(calls[0].request_bytes, 4 + 44 + 4 + 8 + 4);
}

// ---- session: framing ---------------------------------------------------

/// A login, a query with a result set, an error, and a ping, fed whole.
fn conversation() -> Vec<(Direction, Vec<u8>)> {
    let mut s = login_script();
    s.push((ToServer, hex(SET_NAMES)));
    s.push((ToClient, ok(1, 0, 0, 2, 0)));
    s.push((ToServer, query("select a from t")));
    s.push((ToClient, result_set(&["a"], &[&["1"], &["22"]], true, 2)));
    s.push((ToServer, query("select * from nope")));
    s.push((ToClient, err(1, 1146, "42S02", "Table 'd.nope' doesn't exist")));
    s.push((ToServer, command(parser::COM_PING, b"")));
    s.push((ToClient, ok(1, 0, 0, 2, 0)));
    s
}

/// The fields the framing tests compare.
type Summary = (Option<String>, Option<String>, Option<i32>, CallStatus, u64, u64);

fn summary(calls: &[Call]) -> Vec<Summary> {
    calls
        .iter()
        .map(|c| {
            (
                c.request_type.clone(),
                c.request_resource.clone(),
                c.response_code,
                c.status,
                c.request_bytes,
                c.response_bytes,
            )
        })
        .collect()
}

#[test]
fn split_at_every_byte_boundary() {
    let script = conversation();
    let whole = summary(&run(&script));
    assert_eq!(whole.len(), 5);
    for (i, (dir, bytes)) in script.iter().enumerate() {
        for cut in 1..bytes.len() {
            let mut s = script.clone();
            s[i] = (*dir, bytes[..cut].to_vec());
            s.insert(i + 1, (*dir, bytes[cut..].to_vec()));
            assert_eq!(summary(&run(&s)), whole, "message {i} split at {cut}");
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    let script = conversation();
    let whole = summary(&run(&script));
    let mut bytes_script = Vec::new();
    for (dir, bytes) in &script {
        for b in bytes {
            bytes_script.push((*dir, vec![*b]));
        }
    }
    assert_eq!(summary(&run(&bytes_script)), whole);
}

#[test]
fn pipelined_commands_pair_in_order() {
    let mut reqs = query("select 1");
    reqs.extend(query("select x"));
    reqs.extend(command(parser::COM_PING, b""));
    let mut resps = result_set(&["1"], &[&["1"]], false, 2);
    resps.extend(err(1, 1054, "42S22", "Unknown column 'x'"));
    resps.extend(ok(1, 0, 0, 2, 0));
    let calls = run(&[(ToServer, reqs), (ToClient, resps)]);
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].request_resource.as_deref(), Some("select 1"));
    assert_eq!(attr(&calls[0], "mysql.row_count"), Some("1"));
    assert_eq!(calls[1].response_code, Some(1054));
    assert_eq!(calls[2].request_type.as_deref(), Some("COM_PING"));
}

#[test]
fn large_packets_are_cut_and_skipped() {
    let config = SessionConfig { max_message_bytes: 4096, ..SessionConfig::default() };
    let mut s = Session::new(&config, Transport::Tcp);
    let long_sql = format!("insert into t values ('{}')", "é".repeat(50_000));
    let q = query(&long_sql);
    let big_row = row(4, &["x"; 1]).into_iter().collect::<Vec<u8>>();
    let mut huge_value = vec![0xfc, 0x50, 0xc3];
    huge_value.extend(std::iter::repeat_n(b'v', 50_000));
    let mut rs = pkt(1, &[1]);
    rs.extend(column_def(2, "a"));
    rs.extend(eof(3, 2));
    rs.extend(pkt(4, &huge_value));
    rs.extend(big_row);
    rs.extend(eof(5, 2));
    // Segments of 1000 bytes, as TCP would deliver them.
    let mut script = Vec::new();
    for c in q.chunks(1000) {
        script.push((ToServer, c.to_vec()));
    }
    for c in rs.chunks(1000) {
        script.push((ToClient, c.to_vec()));
    }
    script.push((ToServer, command(parser::COM_PING, b"")));
    script.push((ToClient, ok(1, 0, 0, 2, 0)));
    let mut calls = run_on(&mut s, &script);
    s.finish(0, &mut calls);
    assert_eq!(calls.len(), 2);
    let r = calls[0].request_resource.as_deref().unwrap_or_default();
    assert!(r.len() <= MAX_TEXT_BYTES && r.len() > MAX_TEXT_BYTES - 4, "{}", r.len());
    assert!(r.starts_with("insert into t values ('éé"));
    assert_eq!(attr(&calls[0], "mysql.text_truncated"), Some("true"));
    assert_eq!(calls[0].request_bytes, q.len() as u64);
    assert_eq!(calls[0].response_bytes, rs.len() as u64);
    assert_eq!(attr(&calls[0], "mysql.row_count"), Some("2"));
    assert_eq!(calls[1].request_type.as_deref(), Some("COM_PING"));
}

#[test]
fn continued_packets_are_counted_not_read() {
    let first = vec![b'a'; parser::MAX_PACKET_LEN as usize];
    let mut q = vec![0xff, 0xff, 0xff, 0, parser::COM_QUERY];
    q.extend_from_slice(&first[1..]);
    // The continuation starts with bytes that look like a command.
    q.extend(pkt(1, &[parser::COM_PING]));
    let calls = run(&[(ToServer, q.clone()), (ToClient, ok(2, 0, 0, 2, 0))]);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_type.as_deref(), Some("COM_QUERY"));
    assert_eq!(calls[0].request_bytes, q.len() as u64);
    assert_eq!(calls[0].status, CallStatus::Ok);
}

#[test]
fn gap_then_resync() {
    let mut s = session();
    let mut out = run_on(&mut s, &[(ToServer, query("select a from t")), (ToClient, pkt(1, &[1]))]);
    // The rest of the result set is lost.
    s.on_gap(ToClient, 300);
    let mut tail = row(9, &["5"]);
    tail.extend(eof(10, 2));
    out.extend(run_on(&mut s, &[(ToClient, tail), (ToServer, query("select 2")), (ToClient, ok(1, 0, 0, 2, 0))]));
    // Request bytes lost: the end of a query, then a whole ping.
    s.on_gap(ToServer, 20);
    let mut junk = b"ere x = 1".to_vec();
    junk.extend(command(parser::COM_PING, b""));
    out.extend(run_on(&mut s, &[(ToServer, junk), (ToClient, ok(1, 0, 0, 2, 0))]));
    s.finish(0, &mut out);
    assert_eq!(out.len(), 3, "{out:#?}");
    assert_eq!(out[0].request_resource.as_deref(), Some("select a from t"));
    assert_eq!(out[0].status, CallStatus::Unparsed);
    assert_eq!(attr(&out[0], "mysql.incomplete"), Some("true"));
    assert_eq!(out[1].request_resource.as_deref(), Some("select 2"));
    assert_eq!(out[1].status, CallStatus::Ok);
    assert_eq!(out[2].request_type.as_deref(), Some("COM_PING"));
    assert_eq!(out[2].status, CallStatus::Ok);
}

#[test]
fn too_many_pending() {
    let config = SessionConfig { max_pending: 2, ..SessionConfig::default() };
    let mut s = Session::new(&config, Transport::Tcp);
    let script: Vec<_> = (0..5).map(|i| (ToServer, query(&format!("select {i}")))).collect();
    let mut out = run_on(&mut s, &script);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|c| c.status == CallStatus::Timeout));
    assert_eq!(out[0].request_resource.as_deref(), Some("select 0"));
    assert_eq!(s.pending(), 2);
    s.finish(0, &mut out);
    assert_eq!(out.len(), 5);
}

#[test]
fn expire_and_finish_time_out() {
    let mut s = session();
    let mut out = Vec::new();
    s.parse(ToServer, &query("select 1"), 100, &mut out).expect("parse");
    s.parse(ToServer, &query("select 2"), 200, &mut out).expect("parse");
    s.expire(150, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].status, out[0].request_ts), (CallStatus::Timeout, Some(100)));
    s.finish(300, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].status, CallStatus::Timeout);
    assert_eq!(out[1].response_first_ts, None);
}

#[test]
fn flow_ending_inside_a_result_set() {
    let mut rs = pkt(1, &[1]);
    rs.extend(column_def(2, "a"));
    rs.extend(row(3, &["1"]));
    let calls = run(&[(ToServer, query("select a from big")), (ToClient, rs)]);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, CallStatus::Ok);
    assert_eq!(attr(&calls[0], "mysql.incomplete"), Some("true"));
}

#[test]
fn response_without_request() {
    let calls = run(&[
        // Mid-result-set bytes: consumed unread.
        (ToClient, [row(7, &["1"]), eof(8, 2)].concat()),
        (ToClient, err(1, 1146, "42S02", "Table 'a.b' doesn't exist")),
        (ToClient, ok(1, 3, 0, 2, 0)),
    ]);
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.request_type.is_none() && c.request_ts.is_none()));
    assert_eq!(calls[0].response_code, Some(1146));
    assert_eq!(attr(&calls[1], "mysql.affected_rows"), Some("3"));
}

#[test]
fn garbage_and_truncated_input_never_panic() {
    let script = conversation();
    let mut seed = 0x1234_5678_u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for _ in 0..300 {
        let mut s = session();
        let mut out = Vec::new();
        for (dir, bytes) in &script {
            let mut b = bytes.clone();
            for _ in 0..(next() % 4) {
                let i = next() as usize % b.len();
                b[i] = next() as u8;
            }
            let cut = next() as usize % (b.len() + 1);
            let _ = s.parse(*dir, &b[..cut], 1, &mut out);
            if next() % 5 == 0 {
                s.on_gap(*dir, 3);
            }
        }
        s.finish(2, &mut out);
    }
    // Empty command packets are counted, not called.
    let mut s = session();
    let mut out = Vec::new();
    assert_eq!(s.parse(ToServer, &pkt(0, &[]), 1, &mut out), Ok(4));
    assert_eq!(s.malformed(), 1);
    assert!(out.is_empty());
}

/// nDPI `mysql.pcapng`: MariaDB 10.6 greeting, libmariadb 3.3.4 login
/// (user admin) whose filler ends with MariaDB's extended capabilities.
const MARIADB_GREETING: &str = "6a0000000a352e352e352d31302e362e31322d4d6172696144422d307562756e7475302e32322e30342e3100200000004767503d212b544800fef72d0200ff81150000000000001d0000004976374f652f59526d52313e006d7973716c5f6e61746976655f70617373776f726400";
const MARIADB_LOGIN: &str = "d600000184a6ff200000000121000000000000000000000000000000000000001d00000061646d696e0014e38721fbab8305d547465b19e40b1ce58bdf1b8f6d7973716c5f6e61746976655f70617373776f72640084035f6f73054c696e75780c5f636c69656e745f6e616d650a6c69626d617269616462045f706964063733373831320f5f636c69656e745f76657273696f6e05332e332e34095f706c6174666f726d067838365f36340c70726f6772616d5f6e616d65056d7973716c0c5f7365727665725f686f73740e3139322e3136382e38382e323031";

#[test]
fn mariadb_login() {
    assert_eq!(probe(&hex(MARIADB_GREETING), ToClient, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&hex(MARIADB_LOGIN), ToServer, Transport::Tcp), Probe::Match);
    let calls = run(&[
        (ToClient, hex(MARIADB_GREETING)),
        (ToServer, hex(MARIADB_LOGIN)),
        (ToClient, hex("0700000200000002000000")),
    ]);
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!((c.request_type.as_deref(), c.status), (Some("Login"), CallStatus::Ok));
    assert_eq!(c.request_resource, None);
    assert_eq!(attr(c, "mysql.user"), Some("admin"));
    assert_eq!(attr(c, "mysql.server_version"), Some("5.5.5-10.6.12-MariaDB-0ubuntu0.22.04.1"));
    assert_eq!(attr(c, "mysql.auth_plugin"), Some("mysql_native_password"));
}

// ---- compressed protocol ------------------------------------------------

/// DeepFlow `mysql-use.pcap`: `use \`test\`` and its OK, each inside a
/// compressed packet stored as is (uncompressed length 0).
const COMPRESSED_USE: &str = "0f0000000000000b0000000375736520607465737460";
const COMPRESSED_OK: &str = "0b0000010000000700000100000002000000";

/// Wraps bytes in compressed packets of at most `max` bytes each, stored
/// as is.
fn stored(bytes: &[u8], max: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, c) in bytes.chunks(max).enumerate() {
        v.extend_from_slice(&u32::try_from(c.len()).expect("short").to_le_bytes()[..3]);
        v.push(i as u8);
        v.extend_from_slice(&[0, 0, 0]);
        v.extend_from_slice(c);
    }
    v
}

/// A zlib stream of `bytes` with stored (uncompressed) deflate blocks:
/// RFC 1950 header, RFC 1951 §3.2.4 blocks, Adler-32.
fn zlib_stored(bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = bytes.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        v.push(u8::from(i + 1 == chunks.len()));
        let n = u16::try_from(c.len()).expect("block");
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(&(!n).to_le_bytes());
        v.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    v.extend_from_slice(&((b << 16) | a).to_be_bytes());
    v
}

fn zlib_packet(seq: u8, bytes: &[u8]) -> Vec<u8> {
    let z = zlib_stored(bytes);
    let mut v = u32::try_from(z.len()).expect("short").to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(&u32::try_from(bytes.len()).expect("short").to_le_bytes()[..3]);
    v.extend(z);
    v
}

#[test]
fn compressed_recognised_mid_connection() {
    assert_eq!(probe(&hex(COMPRESSED_USE), ToServer, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&hex(COMPRESSED_OK), ToClient, Transport::Tcp), Probe::Match);
    let calls = run(&[(ToServer, hex(COMPRESSED_USE)), (ToClient, hex(COMPRESSED_OK))]);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_type.as_deref(), Some("COM_QUERY"));
    assert_eq!(calls[0].request_resource.as_deref(), Some("use `test`"));
    assert_eq!(calls[0].status, CallStatus::Ok);
    assert_eq!(attr(&calls[0], "mysql.compressed"), Some("true"));
}

#[test]
fn compressed_after_login_with_zlib_and_split_packets() {
    let mut l = hex(LOGIN);
    l[4] |= 0x20; // CLIENT_COMPRESS
    let rs = result_set(&["a", "b"], &[&["1", "x"], &["2", "y"], &["3", "z"]], true, 2);
    // The result set inflates from two compressed packets, cut mid-packet.
    let (r1, r2) = rs.split_at(37);
    let mut resp = zlib_packet(1, r1);
    resp.extend(zlib_packet(2, r2));
    let script = vec![
        (ToClient, hex(GREETING)),
        (ToServer, l),
        (ToClient, ok(2, 0, 0, 2, 0)),
        (ToServer, stored(&query("select a, b from t"), 10)),
        (ToClient, resp),
        (ToServer, stored(&command(parser::COM_PING, b""), 64)),
        (ToClient, zlib_packet(1, &ok(1, 0, 0, 2, 0))),
    ];
    let whole = run(&script);
    assert_eq!(whole.len(), 3, "{whole:#?}");
    assert_eq!(attr(&whole[0], "mysql.compressed"), Some("true"));
    assert_eq!(whole[1].request_resource.as_deref(), Some("select a, b from t"));
    assert_eq!(attr(&whole[1], "mysql.row_count"), Some("3"));
    assert_eq!(attr(&whole[1], "mysql.compressed"), Some("true"));
    assert_eq!(whole[2].request_type.as_deref(), Some("COM_PING"));
    assert_eq!(whole[2].status, CallStatus::Ok);
    // Split anywhere: the same calls.
    for (i, (dir, bytes)) in script.iter().enumerate().skip(3) {
        for cut in 1..bytes.len() {
            let mut s = script.clone();
            s[i] = (*dir, bytes[..cut].to_vec());
            s.insert(i + 1, (*dir, bytes[cut..].to_vec()));
            assert_eq!(summary(&run(&s)), summary(&whole), "message {i} split at {cut}");
        }
    }
}

#[test]
fn compressed_gap_and_garbage() {
    let mut s = session();
    let mut out = run_on(&mut s, &[(ToServer, hex(COMPRESSED_USE)), (ToClient, hex(COMPRESSED_OK))]);
    s.on_gap(ToServer, 10);
    let mut junk = vec![1, 2, 3];
    junk.extend(stored(&command(parser::COM_PING, b""), 64));
    out.extend(run_on(&mut s, &[(ToServer, junk), (ToClient, zlib_packet(1, &ok(1, 0, 0, 2, 0)))]));
    // A corrupt zlib stream is counted and skipped.
    let mut bad = zlib_packet(1, &ok(1, 0, 0, 2, 0));
    let n = bad.len();
    bad[n - 3] ^= 0xff;
    out.extend(run_on(&mut s, &[(ToServer, stored(&query("select 1"), 64)), (ToClient, bad)]));
    s.finish(0, &mut out);
    assert_eq!(out.len(), 3, "{out:#?}");
    assert_eq!(out[1].request_type.as_deref(), Some("COM_PING"));
    assert_eq!(out[1].status, CallStatus::Ok);
    assert_eq!(out[2].request_resource.as_deref(), Some("select 1"));
    assert!(s.malformed() >= 1);
}

#[test]
fn compressed_output_beyond_declared_length_is_not_read() {
    let mut s = session();
    let mut out = run_on(&mut s, &[(ToServer, hex(COMPRESSED_USE))]);
    let mut bomb = zlib_packet(1, &ok(1, 0, 0, 2, 0));
    bomb[4] = 3; // declares 3 bytes, inflates to 11
    out.extend(run_on(&mut s, &[(ToClient, bomb)]));
    assert_eq!(s.malformed(), 1);
    s.finish(0, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, CallStatus::Timeout);
}

#[test]
fn dropping_a_response_in_progress_resynchronises() {
    let config = SessionConfig { max_pending: 1, ..SessionConfig::default() };
    let mut s = Session::new(&config, Transport::Tcp);
    let rs = result_set(&["a"], &[&["1"], &["2"]], false, 2);
    let (head, tail) = rs.split_at(rs.len() - 12);
    let mut out = run_on(
        &mut s,
        &[
            (ToServer, query("select a from t")),
            (ToClient, head.to_vec()),
            // A second command while the first is answered: over the limit.
            (ToServer, command(parser::COM_PING, b"")),
            (ToClient, tail.to_vec()),
            (ToClient, ok(1, 0, 0, 2, 0)),
        ],
    );
    s.finish(0, &mut out);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].status, CallStatus::Timeout);
    assert_eq!(out[1].request_type.as_deref(), Some("COM_PING"));
    assert_eq!(out[1].status, CallStatus::Ok);
}
