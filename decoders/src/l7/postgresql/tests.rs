//! PostgreSQL frontend/backend protocol v3: byte-array tests of parser and session.
//!
//! Messages are built by the helpers below after the spec's message table
//! (§55.7); the constants marked "corpus" are payloads copied from
//! DeepFlow's `postgre/pgsql-all.pcap` and Zeek's
//! `postgresql/psql-create-insert-select-delete-drop.pcap`, with the
//! values tshark 4.0 shows for them.

use super::parser::{self, Initial, ParseError};
use super::session::{MAX_STATEMENTS, PREFIX};
use super::{probe, Session, MAX_TEXT};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, Probe, SessionConfig, Transport};

use Direction::{ToClient, ToServer};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

// ---- corpus bytes -------------------------------------------------------

/// pgsql-all frame 1: Parse "" `SELECT 'x'`, Bind, Describe portal, Execute, Sync.
const DF_PARSE_BATCH: &str =
    "50000000120053454c45435420277827000000420000000c000000000000000044000000065000450000000900000000005300000004";
/// pgsql-all frame 2: ParseComplete, BindComplete, RowDescription, DataRow, CommandComplete `SELECT 1`, ReadyForQuery I.
const DF_PARSE_REPLY: &str = "31000000043200000004540000002100013f636f6c756d6e3f0000000000000000000019ffffffffffff0000440000000b00010000000178430000000d53454c4543542031005a0000000549";
/// Zeek psql capture: StartupMessage user=postgres database=postgres application_name=psql…
const ZEEK_STARTUP_PREFIX: &str = "0000005400030000757365720070";

// ---- hand-built messages ------------------------------------------------

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&u32::try_from(body.len() + 4).expect("small").to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn untagged(code: u32, rest: &[u8]) -> Vec<u8> {
    let mut m = u32::try_from(rest.len() + 8).expect("small").to_be_bytes().to_vec();
    m.extend_from_slice(&code.to_be_bytes());
    m.extend_from_slice(rest);
    m
}

fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in params {
        cstr(&mut b, k);
        cstr(&mut b, v);
    }
    b.push(0);
    untagged(parser::PROTOCOL_3, &b)
}

fn ssl_request() -> Vec<u8> {
    untagged(parser::SSL_REQUEST, &[])
}

fn gssenc_request() -> Vec<u8> {
    untagged(parser::GSSENC_REQUEST, &[])
}

fn cancel(pid: u32, key: u32) -> Vec<u8> {
    let mut b = pid.to_be_bytes().to_vec();
    b.extend_from_slice(&key.to_be_bytes());
    untagged(parser::CANCEL_REQUEST, &b)
}

fn query(sql: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, sql);
    msg(b'Q', &b)
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, name);
    cstr(&mut b, sql);
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&23u32.to_be_bytes());
    msg(b'P', &b)
}

fn bind(portal: &str, stmt: &str, params: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    cstr(&mut b, stmt);
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&u16::try_from(params.len()).expect("few").to_be_bytes());
    for p in params {
        match p {
            Some(v) => {
                b.extend_from_slice(&u32::try_from(v.len()).expect("small").to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&u32::MAX.to_be_bytes()),
        }
    }
    b.extend_from_slice(&0u16.to_be_bytes());
    msg(b'B', &b)
}

fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    cstr(&mut b, name);
    msg(b'D', &b)
}

fn close(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    cstr(&mut b, name);
    msg(b'C', &b)
}

fn execute(portal: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    b.extend_from_slice(&0u32.to_be_bytes());
    msg(b'E', &b)
}

fn sync() -> Vec<u8> {
    msg(b'S', &[])
}

fn password(secret: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, secret);
    msg(b'p', &b)
}

fn auth(code: u32, extra: &[u8]) -> Vec<u8> {
    let mut b = code.to_be_bytes().to_vec();
    b.extend_from_slice(extra);
    msg(b'R', &b)
}

fn param_status(k: &str, v: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, k);
    cstr(&mut b, v);
    msg(b'S', &b)
}

fn key_data(pid: u32, key: u32) -> Vec<u8> {
    let mut b = pid.to_be_bytes().to_vec();
    b.extend_from_slice(&key.to_be_bytes());
    msg(b'K', &b)
}

fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

fn complete(tag: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, tag);
    msg(b'C', &b)
}

fn row_description(cols: &[&str]) -> Vec<u8> {
    let mut b = u16::try_from(cols.len()).expect("few").to_be_bytes().to_vec();
    for c in cols {
        cstr(&mut b, c);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
    msg(b'T', &b)
}

fn data_row(vals: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = u16::try_from(vals.len()).expect("few").to_be_bytes().to_vec();
    for v in vals {
        match v {
            Some(v) => {
                b.extend_from_slice(&u32::try_from(v.len()).expect("small").to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&u32::MAX.to_be_bytes()),
        }
    }
    msg(b'D', &b)
}

fn error_like(tag: u8, severity: &str, code: &str, message: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (t, v) in [(b'S', severity), (b'V', severity), (b'C', code), (b'M', message), (b'F', "parse_relation.c")] {
        b.push(t);
        cstr(&mut b, v);
    }
    b.push(0);
    msg(tag, &b)
}

fn error(severity: &str, code: &str, message: &str) -> Vec<u8> {
    error_like(b'E', severity, code, message)
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn session() -> Session {
    Session::new(&SessionConfig::default(), Transport::Tcp)
}

/// Plays the analyzer for both directions: keeps what `parse` did not
/// consume and passes it again with the next chunk.
struct Conn {
    s: Session,
    buf: [Vec<u8>; 2],
    out: Vec<Call>,
}

impl Conn {
    fn new() -> Self {
        Conn::with(session())
    }
    fn with(s: Session) -> Self {
        Conn { s, buf: [Vec::new(), Vec::new()], out: Vec::new() }
    }
    fn feed(&mut self, dir: Direction, chunk: &[u8], ts: i64) -> Result<(), L7Error> {
        let i = usize::from(dir == ToClient);
        self.buf[i].extend_from_slice(chunk);
        let n = self.s.parse(dir, &self.buf[i], ts, &mut self.out)?;
        assert!(n <= self.buf[i].len());
        self.buf[i].drain(..n);
        Ok(())
    }
    fn send(&mut self, dir: Direction, chunk: &[u8], ts: i64) {
        self.feed(dir, chunk, ts).expect("parses");
    }
    fn gap(&mut self, dir: Direction, len: u32) {
        self.buf[usize::from(dir == ToClient)].clear();
        self.s.on_gap(dir, len);
    }
    fn take(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.out)
    }
}

fn attr<'a>(c: &'a Call, key: &str) -> Option<&'a str> {
    c.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn assert_sorted(c: &Call) {
    assert!(c.attributes.windows(2).all(|w| w[0].0 < w[1].0), "attributes not sorted: {:?}", c.attributes);
}

fn no_secret(calls: &[Call]) {
    for c in calls {
        let all = format!("{c:?}");
        assert!(!all.contains("SECRET"), "a secret was stored: {all}");
    }
}

// ---- parser -------------------------------------------------------------

#[test]
fn parser_reads_start_up_packets() {
    let m = startup(&[("user", "alice"), ("database", "shop"), ("application_name", "psql")]);
    let Ok(Initial::Startup { major, minor, params }) = parser::parse_initial(&m) else { panic!("startup") };
    assert_eq!((major, minor), (3, 0));
    let p: Vec<_> = params.collect();
    assert_eq!(p, [(&b"user"[..], &b"alice"[..]), (b"database", b"shop"), (b"application_name", b"psql")]);
    assert_eq!(parser::parse_initial(&ssl_request()), Ok(Initial::SslRequest));
    assert_eq!(parser::parse_initial(&gssenc_request()), Ok(Initial::GssEncRequest));
    assert_eq!(parser::parse_initial(&cancel(4242, 7)), Ok(Initial::Cancel { pid: 4242 }));
    // Protocol 2.0 and unknown codes are not v3.
    assert_eq!(parser::parse_initial(&untagged(2 << 16, &[0])), Err(ParseError::BadCode));
    assert_eq!(parser::parse_initial(&untagged(1234, &[])), Err(ParseError::BadCode));
    // Lengths: below 8, above 10 000, longer than the bytes.
    assert_eq!(parser::parse_initial(&[0, 0, 0, 4, 0, 3, 0, 0]), Err(ParseError::BadLength));
    assert_eq!(parser::parse_initial(&[0, 0, 0x27, 0x11, 0, 3, 0, 0]), Err(ParseError::BadLength));
    assert_eq!(parser::parse_initial(&[0, 0, 0, 9, 0, 3, 0, 0]), Err(ParseError::Truncated));
    assert_eq!(parser::parse_initial(&[0, 0, 0]), Err(ParseError::Truncated));
    // The corpus packet's header: length 84, protocol 3.0, then "user".
    assert_eq!(parser::untagged_header(&hex(ZEEK_STARTUP_PREFIX)), Ok((84, parser::PROTOCOL_3)));
}

#[test]
fn parser_reads_frontend_messages() {
    let b = hex(DF_PARSE_BATCH);
    assert_eq!(parser::tagged_header(&b), Ok((b'P', 19)));
    let (name, sql) = parser::parse_message(&b[5..19]);
    assert_eq!((name, sql), (&b""[..], &b"SELECT 'x'"[..]));
    let q = query("SELECT 1");
    assert_eq!(parser::query_text(&q[5..]), b"SELECT 1");
    // A body cut short still gives the text so far.
    assert_eq!(parser::query_text(&q[5..9]), b"SELE");
    let bm = bind("p1", "S_18", &[Some(b"42"), None]);
    assert_eq!(parser::bind_message(&bm[5..]), (&b"p1"[..], &b"S_18"[..]));
    assert_eq!(parser::target(&close(b'S', "S_3")[5..]), (b'S', &b"S_3"[..]));
    assert_eq!(parser::target(&[]), (0, &b""[..]));
    assert_eq!(parser::tagged_header(&[b'Q', 0, 0, 0, 3]), Err(ParseError::BadLength));
    assert_eq!(parser::tagged_header(&[b'Q', 0x40, 0, 0, 0]), Err(ParseError::BadLength));
    assert_eq!(parser::tagged_header(&[b'Q', 0, 0]), Err(ParseError::Truncated));
    assert!(parser::is_frontend_tag(b'Q') && !parser::is_frontend_tag(b'Z'));
    assert!(parser::is_backend_tag(b'Z') && !parser::is_backend_tag(b'Q'));
}

#[test]
fn parser_reads_backend_fields() {
    let e = error("ERROR", "42P01", "relation \"nope\" does not exist");
    let f = parser::error_fields(&e[5..]);
    assert_eq!(f.severity, Some(&b"ERROR"[..]));
    assert_eq!(f.code, Some(&b"42P01"[..]));
    assert_eq!(f.message, Some(&b"relation \"nope\" does not exist"[..]));
    // Localized S only: it stands for the severity.
    let f = parser::error_fields(b"SFEHLER\0C22012\0Mdivision by zero\0\0");
    assert_eq!((f.severity, f.code), (Some(&b"FEHLER"[..]), Some(&b"22012"[..])));
    assert_eq!(parser::error_fields(b"").code, None);
    assert_eq!(parser::error_fields(b"Cabc").code, Some(&b"abc"[..]));

    let c = complete("INSERT 0 5");
    assert_eq!(parser::command_tag(&c[5..]), b"INSERT 0 5");
    for (tag, rows) in [
        (&b"INSERT 0 5"[..], Some(5)),
        (b"SELECT 12", Some(12)),
        (b"UPDATE 0", Some(0)),
        (b"DELETE 3", Some(3)),
        (b"COPY 7", Some(7)),
        (b"MERGE 2", Some(2)),
        (b"FETCH 1", Some(1)),
        (b"CREATE TABLE", None),
        (b"SELECT", None),
        (b"BEGIN", None),
        (b"SELECT x1", None),
        (b"", None),
    ] {
        assert_eq!(parser::tag_rows(tag), rows, "{}", String::from_utf8_lossy(tag));
    }
    assert_eq!(parser::ready_status(&ready(b'T')[5..]), Some(b'T'));
    let r = auth(10, b"SCRAM-SHA-256\0\0");
    assert_eq!(parser::auth_code(&r[5..]), Some(10));
    assert_eq!(parser::sasl_mechanism(&r[5..]), b"SCRAM-SHA-256");
    assert_eq!(parser::backend_pid(&key_data(77, 99)[5..]), Some(77));
    let s = param_status("server_version", "16.4");
    assert_eq!(parser::parameter_status(&s[5..]), (&b"server_version"[..], &b"16.4"[..]));
}

#[test]
fn parser_validates_layouts() {
    let ok: [(Direction, Vec<u8>); 20] = [
        (ToServer, query("SELECT 1")),
        (ToServer, parse("s1", "SELECT $1")),
        (ToServer, bind("", "s1", &[Some(b"1"), None])),
        (ToServer, describe(b'P', "")),
        (ToServer, execute("")),
        (ToServer, sync()),
        (ToServer, close(b'S', "s1")),
        (ToServer, msg(b'X', &[])),
        (ToClient, ready(b'I')),
        (ToClient, complete("SELECT 1")),
        (ToClient, error("ERROR", "42601", "syntax error")),
        (ToClient, error_like(b'N', "NOTICE", "00000", "hello")),
        (ToClient, row_description(&["a", "b"])),
        (ToClient, data_row(&[Some(b"x"), None])),
        (ToClient, auth(0, &[])),
        (ToClient, auth(5, &[1, 2, 3, 4])),
        (ToClient, auth(10, b"SCRAM-SHA-256\0\0")),
        (ToClient, key_data(1, 2)),
        (ToClient, param_status("TimeZone", "UTC")),
        (ToClient, msg(b'1', &[])),
    ];
    for (dir, m) in &ok {
        assert!(parser::validate(*dir, m[0], &m[5..], false), "{dir:?} {m:?}");
        // Every prefix is a fine partial body.
        for cut in 5..m.len() {
            assert!(parser::validate(*dir, m[0], &m[5..cut], true), "{dir:?} {m:?} cut {cut}");
        }
    }
    let bad: [(Direction, Vec<u8>); 12] = [
        (ToServer, msg(b'Q', b"SELECT 1")),            // no NUL
        (ToServer, msg(b'Q', b"SELECT\x01 1\0")),      // control character
        (ToServer, msg(b'Q', b"SELECT 1\0extra")),     // bytes after the NUL
        (ToServer, msg(b'S', b"x")),                   // Sync has no body
        (ToServer, msg(b'D', b"Xname\0")),             // neither S nor P
        (ToServer, msg(b'p', b"secret\0")),            // no checkable layout
        (ToClient, msg(b'Z', b"Q")),                   // unknown status
        (ToClient, msg(b'Z', b"II")),                  // too long
        (ToClient, msg(b'E', b"Mno code\0\0")),        // no C field
        (ToClient, msg(b'D', &[0, 2, 0, 0, 0, 9, 1])), // value runs out
        (ToClient, msg(b'R', &[0, 0, 0, 99])),         // unknown auth code
        (ToClient, msg(b'K', &[0, 0, 0, 1])),          // key missing
    ];
    for (dir, m) in &bad {
        assert!(!parser::validate(*dir, m[0], &m[5..], false), "{dir:?} {m:?}");
    }
    // A frontend tag checked as a backend one.
    assert!(!parser::validate(ToClient, b'Q', b"SELECT 1\0", false));
}

#[test]
fn parser_text_cuts_on_a_character_boundary() {
    assert_eq!(parser::text(b"abc", 2), "ab");
    assert_eq!(parser::text("é".repeat(3).as_bytes(), 3), "é");
    assert_eq!(parser::text("é".repeat(3).as_bytes(), 4), "éé");
    assert_eq!(parser::text(b"a\xffb", 10), "a\u{fffd}b");
    assert_eq!(parser::text(b"", 10), "");
}

// ---- probe ----------------------------------------------------------------

#[test]
fn probe_matches_its_own_first_bytes() {
    let own: [(Direction, Vec<u8>); 11] = [
        (ToServer, startup(&[("user", "postgres"), ("database", "postgres")])),
        (ToServer, hex(ZEEK_STARTUP_PREFIX)),
        (ToServer, ssl_request()),
        (ToServer, gssenc_request()),
        (ToServer, cancel(1, 2)),
        (ToServer, hex(DF_PARSE_BATCH)),
        (ToServer, cat(&[query("BEGIN"), query("COMMIT")])),
        (ToServer, cat(&[bind("", "S_18", &[Some(b"1")]), execute(""), sync()])),
        (ToClient, hex(DF_PARSE_REPLY)),
        (ToClient, cat(&[auth(10, b"SCRAM-SHA-256\0\0")])),
        (ToClient, cat(&[error("FATAL", "28000", "no pg_hba.conf entry"), ready(b'I')])),
    ];
    for (dir, b) in &own {
        assert_eq!(probe(b, *dir, Transport::Tcp), Probe::Match, "{dir:?} {b:?}");
        assert_eq!(probe(b, *dir, Transport::Udp), Probe::NoMatch);
    }
    // Too short to tell.
    assert_eq!(probe(&ssl_request()[..5], ToServer, Transport::Tcp), Probe::NeedMore);
    assert_eq!(probe(&query("SELECT 1")[..7], ToServer, Transport::Tcp), Probe::NeedMore);
    assert_eq!(probe(b"", ToClient, Transport::Tcp), Probe::NeedMore);
    // A long Parse cut by the segment: judged on its first bytes.
    let long = parse("", &format!("SELECT {}", "x, ".repeat(2000)));
    assert_eq!(probe(&long[..40], ToServer, Transport::Tcp), Probe::NeedMore);
    assert_eq!(probe(&long[..1400], ToServer, Transport::Tcp), Probe::Match);
}

#[test]
fn probe_rejects_other_protocols_first_bytes() {
    let mut dns = vec![0x00, 0x1d, 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    dns.extend(b"\x07example\x04test\x00\x00\x01\x00\x01");
    let mut kafka = vec![0, 0, 0, 0x1f, 0, 0x12, 0, 3, 0, 0, 0, 1, 0, 7];
    kafka.extend(b"client1\0\x0akafka-java\x063.6.0\0");
    let mut random = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..256 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push((x >> 24) as u8);
    }
    let others: [(&str, Vec<u8>); 17] = [
        ("http request", b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n".to_vec()),
        ("http post", b"POST /api HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}".to_vec()),
        ("http response", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("tls client hello", hex("160301020001000200030300000000000000000000000000000000000000000000000000000000000000")),
        ("tls server hello", hex("160303007a0200007603035f0000000000000000000000000000000000000000000000000000000000000000")),
        ("dns over tcp", dns),
        ("http2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("http2 settings", hex("000012040000000000000300000064000400a00000000200000000")),
        (
            "mysql greeting",
            hex("4a0000000a382e302e33360008000000262b4d1e3f71440300ffffff0200ffdf15000000000000000000000b3e1a18625a0e4c3d5f420063616368696e675f736861325f70617373776f726400"),
        ),
        ("redis ping", b"*1\r\n$4\r\nPING\r\n".to_vec()),
        ("redis reply", b"+PONG\r\n".to_vec()),
        ("kafka apiversions", kafka),
        ("mqtt connect", hex("101000044d5154540402003c000474657374")),
        ("ssh client", b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".to_vec()),
        ("ssh server", b"SSH-2.0-OpenSSH_8.9\r\n".to_vec()),
        ("random", random),
        ("zeros", vec![0; 64]),
    ];
    for (name, b) in &others {
        for dir in [ToServer, ToClient] {
            assert_eq!(probe(b, dir, Transport::Tcp), Probe::NoMatch, "{name} {dir:?}");
        }
    }
}

// ---- session: start-up ----------------------------------------------------

#[test]
fn startup_with_md5_password_is_one_call() {
    let mut c = Conn::new();
    let st = startup(&[("user", "alice"), ("database", "shop"), ("application_name", "psql")]);
    c.send(ToServer, &st, 100);
    c.send(ToClient, &auth(5, &[1, 2, 3, 4]), 110);
    let pw = password("md5SECRETSECRET");
    c.send(ToServer, &pw, 120);
    let reply = cat(&[
        auth(0, &[]),
        param_status("server_version", "16.4"),
        param_status("TimeZone", "UTC"),
        key_data(4242, 0x5ec2e7),
        ready(b'I'),
    ]);
    c.send(ToClient, &reply, 130);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.request_type.as_deref(), Some("Startup"));
    assert_eq!(call.request_resource.as_deref(), Some("shop"));
    assert_eq!(call.version.as_deref(), Some("3.0"));
    assert_eq!(call.status, CallStatus::Ok);
    assert_eq!(call.response_code, None);
    assert_eq!((call.request_ts, call.response_first_ts, call.response_end_ts), (Some(100), Some(110), Some(130)));
    assert_eq!(call.request_bytes, (st.len() + pw.len()) as u64);
    assert_eq!(call.response_bytes, (9 + 4 + reply.len()) as u64);
    let attrs: Vec<(&str, &str)> = call.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        attrs,
        [
            ("postgresql.application_name", "psql"),
            ("postgresql.auth", "md5"),
            ("postgresql.backend_pid", "4242"),
            ("postgresql.database", "shop"),
            ("postgresql.server_version", "16.4"),
            ("postgresql.transaction", "idle"),
            ("postgresql.user", "alice"),
        ]
    );
    no_secret(&calls);
}

#[test]
fn startup_refused_by_sasl_failure_ends_at_the_error() {
    let mut c = Conn::new();
    c.send(ToServer, &startup(&[("user", "bob")]), 1);
    c.send(ToClient, &auth(10, b"SCRAM-SHA-256\0\0"), 2);
    c.send(ToServer, &password("n,,n=,r=SECRETNONCE"), 3);
    c.send(ToClient, &auth(11, b"r=SECRETNONCEserver,s=SECRETSALT,i=4096"), 4);
    c.send(ToServer, &password("c=biws,r=SECRET,p=SECRETPROOF"), 5);
    c.send(ToClient, &error("FATAL", "28P01", "password authentication failed for user \"bob\""), 6);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.request_type.as_deref(), Some("Startup"));
    // No database parameter: the server uses the user's name.
    assert_eq!(call.request_resource.as_deref(), Some("bob"));
    assert_eq!(call.status, CallStatus::ClientError);
    assert_eq!(call.response_code, Some(28));
    assert_eq!(call.response_exception.as_deref(), Some("28P01: password authentication failed for user \"bob\""));
    assert_eq!(attr(call, "postgresql.auth"), Some("sasl:SCRAM-SHA-256"));
    assert_eq!(attr(call, "postgresql.severity"), Some("FATAL"));
    assert_eq!(call.response_end_ts, Some(6));
    assert_sorted(call);
    no_secret(&calls);
    c.s.finish(10, &mut c.out);
    assert!(c.take().is_empty());
}

#[test]
fn ssl_request_refused_then_startup() {
    let mut c = Conn::new();
    c.send(ToServer, &ssl_request(), 1);
    c.send(ToClient, b"N", 2);
    c.send(ToServer, &startup(&[("user", "u"), ("database", "d")]), 3);
    c.send(ToClient, &cat(&[auth(0, &[]), ready(b'I')]), 4);
    let calls = c.take();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].request_type.as_deref(), Some("SSLRequest"));
    assert_eq!(calls[0].response_code, Some(i32::from(b'N')));
    assert_eq!(attr(&calls[0], "postgresql.ssl"), Some("refused"));
    assert_eq!((calls[0].request_bytes, calls[0].response_bytes), (8, 1));
    assert_eq!(calls[1].request_type.as_deref(), Some("Startup"));
    assert_eq!(attr(&calls[1], "postgresql.auth"), Some("ok"));
}

#[test]
fn ssl_request_accepted_leaves_the_rest_unread() {
    let mut c = Conn::new();
    c.send(ToServer, &ssl_request(), 1);
    // The answer and the start of the server's TLS bytes in one segment.
    c.send(ToClient, &hex("5316030300"), 2);
    c.send(ToServer, &hex("1603010200010001fc0303"), 3);
    c.send(ToServer, &query("SELECT 'looks like SQL but is inside TLS'"), 4);
    c.send(ToClient, &cat(&[complete("SELECT 1"), ready(b'I')]), 5);
    c.s.finish(6, &mut c.out);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_type.as_deref(), Some("SSLRequest"));
    assert_eq!(calls[0].response_code, Some(i32::from(b'S')));
    assert_eq!(attr(&calls[0], "postgresql.ssl"), Some("accepted"));
    assert!(c.buf.iter().all(Vec::is_empty), "everything consumed");
}

#[test]
fn tls_hello_before_the_answer_means_accepted() {
    let mut c = Conn::new();
    c.send(ToServer, &ssl_request(), 1);
    c.send(ToServer, &hex("1603010200010001fc0303"), 2);
    c.send(ToClient, &hex("160303007a"), 3);
    c.s.finish(4, &mut c.out);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, CallStatus::Timeout);
}

#[test]
fn gssenc_refused_and_ssl_answered_by_an_old_server() {
    let mut c = Conn::new();
    c.send(ToServer, &gssenc_request(), 1);
    c.send(ToClient, b"N", 2);
    c.send(ToServer, &ssl_request(), 3);
    // A pre-7.0 server answers with an ErrorResponse.
    c.send(ToClient, &error("FATAL", "08P01", "unsupported frontend protocol"), 4);
    let calls = c.take();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0].request_type.as_deref(), Some("GSSENCRequest"));
    assert_eq!(attr(&calls[0], "postgresql.gssenc"), Some("refused"));
    assert_eq!(calls[1].request_type.as_deref(), Some("SSLRequest"));
    assert_eq!(calls[1].status, CallStatus::ServerError);
    assert_eq!(calls[1].response_code, Some(8));
    // A byte that is neither an answer nor a message: unparsed.
    let mut c = Conn::new();
    c.send(ToServer, &ssl_request(), 1);
    let _ = c.feed(ToClient, b"?", 2);
    c.s.finish(3, &mut c.out);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, CallStatus::Unparsed);
}

#[test]
fn cancel_request_is_whole_when_sent() {
    let mut c = Conn::new();
    c.send(ToServer, &cancel(4242, 0x5ec2e7), 9);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_type.as_deref(), Some("CancelRequest"));
    assert_eq!(calls[0].status, CallStatus::Ok);
    assert_eq!(calls[0].request_bytes, 16);
    assert_eq!(calls[0].attributes, [("postgresql.backend_pid".to_owned(), "4242".to_owned())]);
    assert!(!format!("{calls:?}").contains(&0x5ec2e7.to_string()));
}

// ---- session: queries -----------------------------------------------------

#[test]
fn simple_query_with_rows() {
    let mut c = Conn::new();
    let q = query("SELECT id, name FROM users");
    c.send(ToServer, &q, 10);
    let reply = cat(&[
        row_description(&["id", "name"]),
        data_row(&[Some(b"1"), Some(b"ann")]),
        data_row(&[Some(b"2"), None]),
        complete("SELECT 2"),
        ready(b'T'),
    ]);
    c.send(ToClient, &reply, 20);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.request_type.as_deref(), Some("Query"));
    assert_eq!(call.request_resource.as_deref(), Some("SELECT id, name FROM users"));
    assert_eq!(call.status, CallStatus::Ok);
    assert_eq!(call.version, None, "no StartupMessage seen");
    assert_eq!((call.request_bytes, call.response_bytes), (q.len() as u64, reply.len() as u64));
    assert_eq!(attr(call, "postgresql.command_tag"), Some("SELECT 2"));
    assert_eq!(attr(call, "postgresql.rows"), Some("2"));
    assert_eq!(attr(call, "postgresql.transaction"), Some("in_transaction"));
    assert_sorted(call);
}

#[test]
fn query_text_is_cut_to_max_text() {
    let mut c = Conn::new();
    let sql = format!("INSERT INTO t VALUES ('{}')", "é".repeat(300));
    c.send(ToServer, &query(&sql), 1);
    c.send(ToClient, &cat(&[complete("INSERT 0 1"), ready(b'I')]), 2);
    let calls = c.take();
    let r = calls[0].request_resource.as_deref().expect("resource");
    assert!(r.len() <= MAX_TEXT && r.len() >= MAX_TEXT - 1, "{}", r.len());
    assert!(sql.starts_with(r));
    assert_eq!(attr(&calls[0], "postgresql.rows"), Some("1"));
}

#[test]
fn errors_map_to_code_status_and_exception() {
    // (SQLSTATE, severity, response_code, status, ends without ReadyForQuery)
    let cases = [
        ("42P01", "ERROR", 42, CallStatus::ClientError, false),
        ("23505", "ERROR", 23, CallStatus::ClientError, false),
        ("22012", "ERROR", 22, CallStatus::ClientError, false),
        ("0A000", "ERROR", 1, CallStatus::ClientError, false),
        ("08006", "ERROR", 8, CallStatus::ServerError, false),
        ("53100", "ERROR", 53, CallStatus::ServerError, false),
        ("58030", "ERROR", 58, CallStatus::ServerError, false),
        ("XX000", "ERROR", 1, CallStatus::ServerError, false),
        ("P0001", "ERROR", 1, CallStatus::ClientError, false),
        ("57P01", "FATAL", 57, CallStatus::ServerError, true),
    ];
    for (code, sev, num, status, ends) in cases {
        let mut c = Conn::new();
        c.send(ToServer, &query("SELECT 1/0"), 1);
        c.send(ToClient, &error(sev, code, "boom"), 2);
        if !ends {
            assert!(c.out.is_empty(), "{code}: waits for ReadyForQuery");
            c.send(ToClient, &ready(b'I'), 3);
        }
        let calls = c.take();
        assert_eq!(calls.len(), 1, "{code}");
        assert_eq!(calls[0].response_code, Some(num), "{code}");
        assert_eq!(calls[0].status, status, "{code}");
        assert_eq!(calls[0].response_exception.as_deref(), Some(format!("{code}: boom").as_str()));
        assert_eq!(attr(&calls[0], "postgresql.severity"), Some(sev));
        assert_eq!(calls[0].response_end_ts, Some(if ends { 2 } else { 3 }));
    }
}

#[test]
fn notices_and_notifications_are_not_errors_nor_calls() {
    let mut c = Conn::new();
    c.send(ToServer, &query("DROP TABLE IF EXISTS t"), 1);
    let reply = cat(&[
        error_like(b'N', "NOTICE", "00000", "table \"t\" does not exist, skipping"),
        complete("DROP TABLE"),
        ready(b'I'),
    ]);
    c.send(ToClient, &reply, 2);
    // Unsolicited: a notification and a parameter change, no request waiting.
    let mut notify = 77u32.to_be_bytes().to_vec();
    notify.extend_from_slice(b"chan\0payload\0");
    c.send(ToClient, &cat(&[msg(b'A', &notify), param_status("TimeZone", "UTC")]), 3);
    c.s.finish(4, &mut c.out);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, CallStatus::Ok);
    assert_eq!(calls[0].response_exception, None);
    assert_eq!(calls[0].response_bytes, reply.len() as u64);
}

#[test]
fn extended_batch_from_corpus() {
    let mut c = Conn::new();
    c.send(ToServer, &hex(DF_PARSE_BATCH), 1);
    c.send(ToClient, &hex(DF_PARSE_REPLY), 2);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.request_type.as_deref(), Some("Execute"));
    assert_eq!(call.request_resource.as_deref(), Some("SELECT 'x'"));
    // tshark: frame 1 is 54 bytes of PostgreSQL, frame 2 76.
    assert_eq!((call.request_bytes, call.response_bytes), (54, 76));
    assert_eq!(attr(call, "postgresql.command_tag"), Some("SELECT 1"));
    assert_eq!(attr(call, "postgresql.statement"), None);
}

#[test]
fn named_statements_are_remembered_and_forgotten() {
    let mut c = Conn::new();
    let sql = "SELECT * FROM items WHERE id = $1";
    // Prepare: Parse, Describe, Sync.
    c.send(ToServer, &cat(&[parse("S_1", sql), describe(b'S', "S_1"), sync()]), 1);
    let mut pdesc = 1u16.to_be_bytes().to_vec();
    pdesc.extend_from_slice(&23u32.to_be_bytes());
    c.send(ToClient, &cat(&[msg(b'1', &[]), msg(b't', &pdesc), msg(b'n', &[]), ready(b'I')]), 2);
    // Execute it twice, pipelined.
    let run = cat(&[bind("", "S_1", &[Some(b"7")]), execute(""), sync()]);
    c.send(ToServer, &cat(&[run.clone(), run.clone()]), 3);
    let reply = cat(&[msg(b'2', &[]), data_row(&[Some(b"7")]), complete("SELECT 1"), ready(b'I')]);
    c.send(ToClient, &cat(&[reply.clone(), reply.clone()]), 4);
    // Close it; a later Bind has no text to show.
    c.send(ToServer, &cat(&[close(b'S', "S_1"), sync()]), 5);
    c.send(ToClient, &cat(&[msg(b'3', &[]), ready(b'I')]), 6);
    c.send(ToServer, &run, 7);
    c.send(ToClient, &error("ERROR", "26000", "prepared statement \"S_1\" does not exist"), 8);
    c.send(ToClient, &ready(b'I'), 9);
    let calls = c.take();
    let summary: Vec<(Option<&str>, Option<&str>, Option<&str>)> = calls
        .iter()
        .map(|c| (c.request_type.as_deref(), c.request_resource.as_deref(), attr(c, "postgresql.statement")))
        .collect();
    assert_eq!(
        summary,
        [
            (Some("Parse"), Some(sql), Some("S_1")),
            (Some("Execute"), Some(sql), Some("S_1")),
            (Some("Execute"), Some(sql), Some("S_1")),
            (Some("Close"), None, None),
            (Some("Execute"), None, Some("S_1")),
        ]
    );
    assert_eq!(calls[4].status, CallStatus::ClientError);
    assert_eq!(calls[4].response_code, Some(26));
    assert_eq!(calls[1].request_ts, Some(3));
    assert_eq!(calls[2].request_ts, Some(3));
    assert_eq!(c.s.statements(), 0);
}

#[test]
fn statements_are_bounded() {
    let mut c = Conn::new();
    for i in 0..(MAX_STATEMENTS + 50) {
        c.send(ToServer, &cat(&[parse(&format!("s{i}"), &format!("SELECT {i}")), sync()]), 1);
        c.send(ToClient, &cat(&[msg(b'1', &[]), ready(b'I')]), 2);
    }
    assert_eq!(c.s.statements(), MAX_STATEMENTS);
    // The oldest went first; the newest are known.
    c.send(ToServer, &cat(&[bind("", "s0", &[]), execute(""), sync(), bind("", "s299", &[]), execute(""), sync()]), 3);
    c.send(ToClient, &cat(&[msg(b'2', &[]), complete("SELECT 1"), ready(b'I')]).repeat(2), 4);
    let calls = c.take();
    let n = calls.len();
    assert_eq!(calls[n - 2].request_resource, None);
    assert_eq!(calls[n - 1].request_resource.as_deref(), Some("SELECT 299"));
}

#[test]
fn error_in_a_batch_ends_at_ready_for_query() {
    let mut c = Conn::new();
    c.send(ToServer, &cat(&[parse("", "SELEC 1"), bind("", "", &[]), execute(""), sync()]), 1);
    c.send(ToClient, &error("ERROR", "42601", "syntax error at or near \"SELEC\""), 2);
    assert!(c.out.is_empty());
    c.send(ToClient, &ready(b'I'), 3);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_resource.as_deref(), Some("SELEC 1"));
    assert_eq!(calls[0].response_exception.as_deref(), Some("42601: syntax error at or near \"SELEC\""));
    assert_eq!(calls[0].status, CallStatus::ClientError);
}

#[test]
fn flush_answers_belong_to_the_open_batch() {
    let mut c = Conn::new();
    c.send(ToServer, &cat(&[parse("", "SELECT 1"), msg(b'H', &[])]), 1);
    c.send(ToClient, &msg(b'1', &[]), 2);
    c.send(ToServer, &cat(&[bind("", "", &[]), execute(""), sync()]), 3);
    c.send(ToClient, &cat(&[msg(b'2', &[]), data_row(&[Some(b"1")]), complete("SELECT 1"), ready(b'I')]), 4);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_type.as_deref(), Some("Execute"));
    assert_eq!(calls[0].response_first_ts, Some(2));
}

#[test]
fn pipelined_queries_pair_in_order() {
    let mut c = Conn::new();
    c.send(ToServer, &cat(&[query("BEGIN"), query("UPDATE t SET x = 1"), query("COMMIT")]), 1);
    c.send(ToClient, &cat(&[complete("BEGIN"), ready(b'T'), complete("UPDATE 3"), ready(b'T')]), 2);
    c.send(ToClient, &cat(&[complete("COMMIT"), ready(b'I')]), 3);
    let calls = c.take();
    let got: Vec<(&str, &str, i64)> = calls
        .iter()
        .map(|c| {
            (
                c.request_resource.as_deref().unwrap_or(""),
                attr(c, "postgresql.command_tag").unwrap_or(""),
                c.response_end_ts.unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(got, [("BEGIN", "BEGIN", 2), ("UPDATE t SET x = 1", "UPDATE 3", 2), ("COMMIT", "COMMIT", 3)]);
}

#[test]
fn copy_from_stdin_is_one_query() {
    let mut c = Conn::new();
    let q = query("COPY t FROM STDIN");
    c.send(ToServer, &q, 1);
    c.send(ToClient, &msg(b'G', &[0, 0, 1, 0, 0]), 2);
    let data = cat(&[msg(b'd', b"1\tone\n"), msg(b'd', b"2\ttwo\n"), msg(b'c', &[])]);
    c.send(ToServer, &data, 3);
    c.send(ToClient, &cat(&[complete("COPY 2"), ready(b'I')]), 4);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_bytes, (q.len() + data.len()) as u64);
    assert_eq!(attr(&calls[0], "postgresql.rows"), Some("2"));
}

#[test]
fn function_call_and_terminate() {
    let mut c = Conn::new();
    let mut f = 1598u32.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    c.send(ToServer, &msg(b'F', &f), 1);
    let mut v = 4u32.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 1]);
    c.send(ToClient, &cat(&[msg(b'V', &v), ready(b'I')]), 2);
    c.send(ToServer, &msg(b'X', &[]), 3);
    c.s.finish(4, &mut c.out);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_type.as_deref(), Some("FunctionCall"));
}

// ---- session: framing ---------------------------------------------------

/// A whole conversation: start-up, a simple query with an error, a batch.
fn conversation() -> (Vec<u8>, Vec<u8>) {
    let to_server = cat(&[
        startup(&[("user", "u"), ("database", "d")]),
        query("SELECT * FROM nope"),
        parse("S_1", "SELECT $1::int"),
        bind("", "S_1", &[Some(b"5")]),
        describe(b'P', ""),
        execute(""),
        sync(),
    ]);
    let to_client = cat(&[
        auth(0, &[]),
        param_status("server_version", "17.0"),
        key_data(9, 10),
        ready(b'I'),
        error("ERROR", "42P01", "relation \"nope\" does not exist"),
        ready(b'I'),
        msg(b'1', &[]),
        msg(b'2', &[]),
        row_description(&["int4"]),
        data_row(&[Some(b"5")]),
        complete("SELECT 1"),
        ready(b'I'),
    ]);
    (to_server, to_client)
}

fn summary(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| {
            format!(
                "{:?} {:?} {:?} {:?} {} {} {:?}",
                c.request_type,
                c.request_resource,
                c.status,
                c.response_code,
                c.request_bytes,
                c.response_bytes,
                c.attributes
            )
        })
        .collect()
}

#[test]
fn split_at_every_byte_boundary() {
    let (up, down) = conversation();
    let mut whole = Conn::new();
    whole.send(ToServer, &up, 1);
    whole.send(ToClient, &down, 2);
    let expected = summary(&whole.take());
    assert_eq!(expected.len(), 3);
    for cut in 0..=up.len() {
        let mut c = Conn::new();
        c.send(ToServer, &up[..cut], 1);
        c.send(ToServer, &up[cut..], 1);
        c.send(ToClient, &down, 2);
        assert_eq!(summary(&c.take()), expected, "request cut at {cut}");
    }
    for cut in 0..=down.len() {
        let mut c = Conn::new();
        c.send(ToServer, &up, 1);
        c.send(ToClient, &down[..cut], 2);
        c.send(ToClient, &down[cut..], 2);
        assert_eq!(summary(&c.take()), expected, "response cut at {cut}");
    }
}

#[test]
fn split_message_keeps_its_first_byte_time() {
    let mut c = Conn::new();
    let q = query("SELECT 42");
    c.send(ToServer, &q[..3], 100);
    c.send(ToServer, &q[3..], 200);
    let r = cat(&[complete("SELECT 1"), ready(b'I')]);
    c.send(ToClient, &r[..4], 300);
    c.send(ToClient, &r[4..], 400);
    let calls = c.take();
    assert_eq!(
        (calls[0].request_ts, calls[0].response_first_ts, calls[0].response_end_ts),
        (Some(100), Some(300), Some(400))
    );
}

#[test]
fn response_without_request_mid_connection() {
    let mut c = Conn::new();
    // The capture starts inside a DataRow: its tail, then whole messages.
    let row = data_row(&[Some(b"abcdefghij")]);
    let down = cat(&[row[7..].to_vec(), data_row(&[Some(b"x")]), complete("SELECT 2"), ready(b'I')]);
    c.send(ToClient, &down, 5);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!((call.request_type.as_deref(), call.request_ts, call.request_resource.as_deref()), (None, None, None));
    assert_eq!(attr(call, "postgresql.command_tag"), Some("SELECT 2"));
    assert_eq!(call.response_first_ts, Some(5));
    assert_eq!(call.version, None);
}

#[test]
fn gap_then_resync_at_next_message() {
    let mut c = Conn::new();
    c.send(ToServer, &query("SELECT 1"), 1);
    let reply = cat(&[row_description(&["a"]), data_row(&[Some(b"1")]), complete("SELECT 1"), ready(b'I')]);
    // Half the RowDescription arrives, the rest of it is lost.
    c.send(ToClient, &reply[..10], 2);
    c.gap(ToClient, 20);
    c.send(ToClient, &reply[30..], 3);
    // Towards the server: part of a Query lost, then a whole one.
    let lost = query("SELECT 'lost'");
    c.send(ToServer, &lost[..6], 4);
    c.gap(ToServer, 8);
    c.send(ToServer, &cat(&[b"t'\0".to_vec(), query("SELECT 2")]), 5);
    c.send(ToClient, &cat(&[complete("SELECT 1"), ready(b'I')]), 6);
    let calls = c.take();
    let got: Vec<_> = calls.iter().map(|c| (c.request_resource.as_deref(), c.status, c.response_end_ts)).collect();
    assert_eq!(got, [(Some("SELECT 1"), CallStatus::Ok, Some(3)), (Some("SELECT 2"), CallStatus::Ok, Some(6))]);
}

#[test]
fn gap_towards_the_server_closes_the_batch() {
    let mut c = Conn::new();
    c.send(ToServer, &cat(&[parse("", "SELECT 1"), bind("", "", &[]), execute("")]), 1);
    // The Sync is lost.
    c.gap(ToServer, 5);
    c.send(ToClient, &cat(&[msg(b'1', &[]), msg(b'2', &[]), complete("SELECT 1"), ready(b'I')]), 2);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_resource.as_deref(), Some("SELECT 1"));
    assert_eq!(calls[0].status, CallStatus::Ok);
}

#[test]
fn oversized_messages() {
    let cfg = SessionConfig { max_message_bytes: 2048, max_pending: 8, attr_headers: Vec::new() };
    // A long Query is read from its first bytes; the rest is skipped.
    let mut c = Conn::with(Session::new(&cfg, Transport::Tcp));
    let sql = format!("INSERT INTO t VALUES {}", "(1),".repeat(5000));
    let q = query(&sql);
    for chunk in q.chunks(1460) {
        c.send(ToServer, chunk, 1);
        assert!(c.buf[0].len() <= 2048);
    }
    // A huge DataRow streams through, with a gap inside it.
    let big = data_row(&[Some(&vec![b'x'; 50_000])]);
    let reply = cat(&[big, complete("INSERT 0 5000"), ready(b'I')]);
    c.send(ToClient, &reply[..3000], 2);
    c.gap(ToClient, 10_000);
    c.send(ToClient, &reply[13_000..], 3);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request_resource.as_deref(), Some(&sql[..MAX_TEXT]));
    assert_eq!(calls[0].request_bytes, q.len() as u64);
    assert_eq!(attr(&calls[0], "postgresql.rows"), Some("5000"));
    const { assert!(PREFIX <= 2048) };

    // An ErrorResponse that large is not streamed.
    let mut c = Conn::with(Session::new(&cfg, Transport::Tcp));
    c.send(ToServer, &cat(&[query("SELECT 1"), query("SELECT 2")]), 1);
    c.send(ToClient, &cat(&[complete("SELECT 1"), ready(b'I')]), 2);
    let huge = error("ERROR", "XX000", &"m".repeat(5000));
    assert_eq!(c.feed(ToClient, &huge, 2), Err(L7Error::TooLarge));
}

#[test]
fn too_many_pending_drops_the_oldest() {
    let cfg = SessionConfig { max_message_bytes: 4096, max_pending: 2, attr_headers: Vec::new() };
    let mut c = Conn::with(Session::new(&cfg, Transport::Tcp));
    c.send(ToServer, &cat(&[query("SELECT 1"), query("SELECT 2"), query("SELECT 3")]), 1);
    let first = c.take();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].status, CallStatus::Timeout);
    assert_eq!(first[0].request_resource.as_deref(), Some("SELECT 1"));
    assert_eq!(c.s.pending(), 2);
}

#[test]
fn malformed_input_ends_the_direction() {
    let mut c = Conn::new();
    c.send(ToServer, &query("SELECT 1"), 1);
    // A length below 4.
    assert_eq!(c.feed(ToServer, &[b'Q', 0, 0, 0, 2], 2), Err(L7Error::Malformed("postgresql_bad_length")));
    let mut c = Conn::new();
    c.send(ToServer, &query("SELECT 1"), 1);
    // A backend type byte towards the server.
    assert_eq!(c.feed(ToServer, &ready(b'I'), 2), Err(L7Error::Malformed("postgresql_bad_tag")));
    assert_eq!(c.s.malformed(), 1);
    // An unknown start-up code.
    let mut c = Conn::new();
    c.send(ToServer, &query("SELECT 1"), 1);
    assert_eq!(c.feed(ToServer, &untagged(0x0004_0000, &[0]), 2), Err(L7Error::Malformed("postgresql_bad_code")));
}

#[test]
fn garbage_never_panics() {
    let (up, down) = conversation();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..300 {
        let mut up = up.clone();
        let mut down = down.clone();
        for _ in 0..(round % 7 + 1) {
            let i = (next() as usize) % up.len();
            up[i] = next() as u8;
            let j = (next() as usize) % down.len();
            down[j] = next() as u8;
        }
        let mut c = Conn::new();
        let split = (next() as usize) % up.len();
        let _ = c.feed(ToServer, &up[..split], 1);
        let _ = c.feed(ToClient, &down, 2);
        let _ = c.feed(ToServer, &up[split..], 3);
        c.s.expire(3, &mut c.out);
        c.s.finish(4, &mut c.out);
        for call in &c.out {
            assert!(call.request_resource.as_ref().is_none_or(|r| r.len() <= MAX_TEXT));
            assert_sorted(call);
        }
    }
}

#[test]
fn expire_and_finish_make_timeouts() {
    let mut c = Conn::new();
    c.send(ToServer, &query("SELECT pg_sleep(10)"), 100);
    c.send(ToServer, &query("SELECT 2"), 300);
    c.s.expire(200, &mut c.out);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, CallStatus::Timeout);
    assert_eq!(calls[0].request_resource.as_deref(), Some("SELECT pg_sleep(10)"));
    assert_eq!(calls[0].response_first_ts, None);
    // An open batch and a half response.
    c.send(ToServer, &parse("", "SELECT 3"), 400);
    c.s.finish(500, &mut c.out);
    let calls = c.take();
    let got: Vec<_> = calls.iter().map(|c| (c.request_resource.as_deref(), c.status)).collect();
    assert_eq!(got, [(Some("SELECT 2"), CallStatus::Timeout), (Some("SELECT 3"), CallStatus::Timeout)]);
    assert_eq!(c.s.pending(), 0);
    // A response cut by the end of the capture, nothing asked for it.
    let mut c = Conn::new();
    c.send(ToClient, &cat(&[data_row(&[Some(b"1")]), complete("SELECT 1")]), 7);
    c.s.finish(9, &mut c.out);
    let calls = c.take();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].request_type.as_deref(), calls[0].status), (None, CallStatus::Ok));
}
