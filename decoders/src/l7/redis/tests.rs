//! Byte-array tests of the Redis parser, probe and session. Messages
//! marked "corpus" are TCP payloads copied from public captures: DeepFlow's
//! `flow_generator/redis/redis.pcap` and `redis-debug.pcap`, nDPI's
//! `resp.pcap`, Zeek's `redis/pipelining-example.pcap`. Expected values
//! follow the RESP and RESP3 specifications and agree with tshark 4.0's
//! `resp` dissector on the corpus bytes.

use super::parser::{self, ErrorClass, Header, KeyAt, Length, ParseError};
use super::{probe, Session};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, Probe, SessionConfig, Transport};

use Direction::{ToClient, ToServer};

// ---- corpus bytes -------------------------------------------------------

/// redis.pcap frame 4: `EXISTS verify_code`.
const EXISTS: &[u8] = b"*2\r\n$6\r\nEXISTS\r\n$11\r\nverify_code\r\n";
/// redis.pcap frame 5: its reply, integer 1.
const EXISTS_REPLY: &[u8] = b":1\r\n";
/// redis.pcap frame 1: `GET user_conf_config_1`.
const GET_CONF: &[u8] = b"*2\r\n$3\r\nGET\r\n$18\r\nuser_conf_config_1\r\n";
/// redis-debug.pcap frame 4: `LRANGE mylist 0 299`.
const LRANGE: &[u8] = b"*4\r\n$6\r\nLRANGE\r\n$6\r\nmylist\r\n$1\r\n0\r\n$3\r\n299\r\n";
/// nDPI resp.pcap frames 26 and 27: lower-case `ping`, `+PONG`.
const PING_LOWER: &[u8] = b"*1\r\n$4\r\nping\r\n";
/// nDPI resp.pcap frame 31: `set test "Hello world!"`.
const SET_TEST: &[u8] = b"*3\r\n$3\r\nset\r\n$4\r\ntest\r\n$12\r\nHello world!\r\n";
/// Zeek pipelining-example.pcap frames 5 and 7: three inline PINGs, three PONGs.
const INLINE_PINGS: &[u8] = b"PING\r\nPING\r\nPING\r\n";
const PONGS: &[u8] = b"+PONG\r\n+PONG\r\n+PONG\r\n";

// ---- helpers ------------------------------------------------------------

fn session() -> Session {
    Session::new(&SessionConfig::default(), Transport::Tcp)
}

fn session_with(max_message_bytes: usize, max_pending: usize) -> Session {
    Session::new(&SessionConfig { max_message_bytes, max_pending, attr_headers: Vec::new() }, Transport::Tcp)
}

/// A RESP array of bulk strings (how clients send commands).
fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn bulk(b: &[u8]) -> Vec<u8> {
    let mut v = format!("${}\r\n", b.len()).into_bytes();
    v.extend_from_slice(b);
    v.extend_from_slice(b"\r\n");
    v
}

/// Plays the analyzer for one direction: keeps what `parse` did not
/// consume and passes it again with the next chunk.
#[derive(Default)]
struct Stream {
    buf: Vec<u8>,
}

impl Stream {
    fn feed(
        &mut self,
        s: &mut Session,
        dir: Direction,
        chunk: &[u8],
        ts: i64,
        out: &mut Vec<Call>,
    ) -> Result<(), L7Error> {
        self.buf.extend_from_slice(chunk);
        let n = s.parse(dir, &self.buf, ts, out)?;
        assert!(n <= self.buf.len());
        self.buf.drain(..n);
        Ok(())
    }
}

/// Feeds a command then its reply, each whole, and returns the calls.
fn exchange(req: &[u8], reply: &[u8]) -> Vec<Call> {
    let mut s = session();
    let mut out = Vec::new();
    let (mut a, mut b) = (Stream::default(), Stream::default());
    a.feed(&mut s, ToServer, req, 10, &mut out).expect("request");
    b.feed(&mut s, ToClient, reply, 20, &mut out).expect("reply");
    s.finish(30, &mut out);
    out
}

fn one(req: &[u8], reply: &[u8]) -> Call {
    let calls = exchange(req, reply);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    calls.into_iter().next().expect("one call")
}

fn attr<'a>(c: &'a Call, key: &str) -> Option<&'a str> {
    c.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn reply_type(c: &Call) -> Option<&str> {
    attr(c, "redis.reply_type")
}

fn assert_sorted(c: &Call) {
    assert!(c.attributes.windows(2).all(|w| w[0].0 < w[1].0), "attributes not sorted: {:?}", c.attributes);
}

// ---- parser -------------------------------------------------------------

#[test]
fn parser_reads_header_lines() {
    assert_eq!(parser::parse_header(b"$11\r\nverify_code\r\n", 64), Ok(Some(Header { ty: b'$', arg: b"11", len: 5 })));
    assert_eq!(parser::parse_header(b"+OK\r\n", 64), Ok(Some(Header { ty: b'+', arg: b"OK", len: 5 })));
    assert_eq!(parser::parse_header(b"_\r\n", 64), Ok(Some(Header { ty: b'_', arg: b"", len: 3 })));
    assert_eq!(parser::parse_header(b";0\r\n", 64), Ok(Some(Header { ty: b';', arg: b"0", len: 4 })));
    // No CRLF yet, or not within the limit.
    assert_eq!(parser::parse_header(b"+OK\r", 64), Ok(None));
    assert_eq!(parser::parse_header(b"+OKAY\r\n", 4), Ok(None));
    assert_eq!(parser::parse_header(b"", 64), Ok(None));
    assert_eq!(parser::parse_header(b"GET x\r\n", 64), Err(ParseError::UnknownType));
    assert_eq!(parser::parse_header(b"+a\nb\r\n", 64), Err(ParseError::BadLine));
}

#[test]
fn parser_lengths_and_simple_values() {
    assert_eq!(parser::parse_length(b"-1", 10), Ok(Length::Null));
    assert_eq!(parser::parse_length(b"?", 10), Ok(Length::Streamed));
    assert_eq!(parser::parse_length(b"0", 10), Ok(Length::Count(0)));
    assert_eq!(parser::parse_length(b"10", 10), Ok(Length::Count(10)));
    for bad in [&b"11"[..], b"", b"-2", b"+1", b" 1", b"1x", b"99999999999999999999"] {
        assert_eq!(parser::parse_length(bad, 10), Err(ParseError::BadLength), "{bad:?}");
    }
    for (ty, arg) in [
        (b':', &b"-42"[..]),
        (b':', b"0"),
        (b'(', b"3492890328409238509324850943850943825024385"),
        (b'#', b"t"),
        (b'#', b"f"),
        (b'_', b""),
        (b',', b"1.23"),
        (b',', b"-inf"),
        (b',', b"nan"),
        (b',', b"1.5e10"),
        (b'+', b"OK"),
        (b'-', b"ERR x"),
    ] {
        assert_eq!(parser::check_simple(ty, arg), Ok(()), "{} {arg:?}", ty as char);
    }
    for (ty, arg) in [(b':', &b"1.5"[..]), (b':', b""), (b'#', b"true"), (b'_', b"x"), (b',', b""), (b',', b"1 2")] {
        assert_eq!(parser::check_simple(ty, arg), Err(ParseError::BadValue), "{} {arg:?}", ty as char);
    }
}

#[test]
fn parser_error_classes_and_keys() {
    assert_eq!(parser::error_code(b"WRONGTYPE Operation against a key"), b"WRONGTYPE");
    assert_eq!(parser::error_code(b"ERR"), b"ERR");
    assert_eq!(parser::error_class(b"ERR unknown command 'FOO'"), ErrorClass::Client);
    assert_eq!(parser::error_class(b"WRONGTYPE Operation"), ErrorClass::Client);
    assert_eq!(parser::error_class(b"NOAUTH Authentication required."), ErrorClass::Client);
    assert_eq!(parser::error_class(b"MOVED 3999 127.0.0.1:6381"), ErrorClass::Client);
    assert_eq!(parser::error_class(b"OOM command not allowed"), ErrorClass::Server);
    assert_eq!(parser::error_class(b"LOADING Redis is loading"), ErrorClass::Server);
    assert_eq!(parser::error_class(b"READONLY You can't write against a read only replica."), ErrorClass::Server);
    assert_eq!(parser::key_at(b"get"), KeyAt::First);
    assert_eq!(parser::key_at(b"JSON.GET"), KeyAt::First);
    assert_eq!(parser::key_at(b"auth"), KeyAt::Secret);
    assert_eq!(parser::key_at(b"Hello"), KeyAt::Secret);
    assert_eq!(parser::key_at(b"PING"), KeyAt::None);
    assert_eq!(parser::key_at(b"eval"), KeyAt::None);
    assert_eq!(parser::key_at(b"CONFIG"), KeyAt::Subcommand);
    assert_eq!(parser::key_at(b"object"), KeyAt::SubcommandThenKey);
    assert_eq!(parser::key_at(b"BITOP"), KeyAt::Second);
    assert_eq!(parser::key_at(b"A_VERY_LONG_MODULE_COMMAND_NAME"), KeyAt::First);
    assert_eq!(parser::reply_type_name(b'$', true), "nil");
    assert_eq!(parser::reply_type_name(b'*', false), "array");
    assert_eq!(parser::message_channel_index(b"pmessage"), Some(2));
    assert_eq!(parser::message_channel_index(b"subscribe"), None);
    let words: Vec<&[u8]> = parser::inline_words(b"SET  k\tv\r").collect();
    assert_eq!(words, [&b"SET"[..], b"k", b"v"]);
}

// ---- probe --------------------------------------------------------------

#[test]
fn probe_matches_commands_and_replies() {
    for (dir, bytes) in [
        (ToServer, &b"*1\r\n$4\r\nPING\r\n"[..]),
        (ToServer, GET_CONF),
        (ToServer, LRANGE),
        (ToServer, INLINE_PINGS),
        (ToServer, b"ping\n"),
        (ToServer, b"INFO server\r\n"),
        (ToClient, EXISTS_REPLY),
        (ToClient, b"+OK\r\n"),
        (ToClient, b"-ERR unknown command 'FOO'\r\n"),
        (ToClient, b"-WRONGTYPE Operation against a key\r\n"),
        (ToClient, b"$5\r\nhello\r\n"),
        (ToClient, b"$-1\r\n"),
        (ToClient, b"*-1\r\n"),
        (ToClient, b"*0\r\n"),
        (ToClient, b"*2\r\n$3\r\nfoo\r\n"),
        (ToClient, b"%1\r\n+server\r\n+redis\r\n"),
        (ToClient, b"_\r\n"),
        (ToClient, b"#t\r\n"),
        (ToClient, b",3.14\r\n"),
        (ToClient, b"(12345678901234567890\r\n"),
        (ToClient, b"!21\r\nSYNTAX invalid syntax\r\n"),
        (ToClient, b"=15\r\ntxt:Some string\r\n"),
        (ToClient, b"~1\r\n:1\r\n"),
        (ToClient, b">3\r\n$7\r\nmessage\r\n"),
        (ToClient, b"|1\r\n+key\r\n"),
    ] {
        assert_eq!(probe(bytes, dir, Transport::Tcp), Probe::Match, "{:?}", String::from_utf8_lossy(bytes));
    }
    // Never on UDP.
    assert_eq!(probe(GET_CONF, ToServer, Transport::Udp), Probe::NoMatch);
}

#[test]
fn probe_asks_for_more_on_prefixes() {
    for msg in [&b"*1\r\n$4\r\nPING\r\n"[..], b"+PONG\r\n", b"PING\r\n", b"SUBSCRIBE news\r\n"] {
        for cut in 0..msg.len() {
            let p = probe(&msg[..cut], ToServer, Transport::Tcp);
            assert!(matches!(p, Probe::NeedMore | Probe::Match), "{:?} cut {cut}: {p:?}", String::from_utf8_lossy(msg));
        }
    }
    assert_eq!(probe(b"*3\r\n", ToServer, Transport::Tcp), Probe::NeedMore);
    assert_eq!(probe(b"PIN", ToServer, Transport::Tcp), Probe::NeedMore);
    // An HTTP request line is rejected before its end is seen.
    assert_eq!(probe(b"GET /index.html HTT", ToServer, Transport::Tcp), Probe::NoMatch);
    assert_eq!(probe(b"GET /index.html HTTP/1.1\r", ToServer, Transport::Tcp), Probe::NoMatch);
}

/// The opening bytes of the other protocols flowtrail decodes, and of
/// SSH and random binary: only Redis' own match.
#[test]
fn probe_rejects_other_protocols_first_bytes() {
    let mut tls_client_hello = vec![0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03];
    tls_client_hello.extend([0x5a; 32]);
    let mut tls_server_hello = vec![0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03];
    tls_server_hello.extend([0xa5; 32]);
    // DNS over TCP: length, id, flags, counts, `example.test` A.
    let mut dns = vec![0x00, 0x1e, 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    dns.extend(b"\x07example\x04test\x00\x00\x01\x00\x01");
    let h2_settings = [0x00, 0x00, 0x0c, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x64];
    // MySQL 8 greeting: 3-byte length 0x2a ('*'!), sequence 0, protocol 10, version.
    let mut mysql = vec![0x2a, 0x00, 0x00, 0x00, 0x0a];
    mysql.extend(b"8.0.36\x00");
    mysql.extend([0x08, 0, 0, 0]);
    let mut mysql_4a = mysql.clone();
    mysql_4a[0] = 0x4a;
    // PostgreSQL StartupMessage (protocol 3.0) and SSLRequest.
    let mut pg_startup = vec![0x00, 0x00, 0x00, 0x25, 0x00, 0x03, 0x00, 0x00];
    pg_startup.extend(b"user\x00postgres\x00database\x00db\x00\x00");
    let pg_ssl = [0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f];
    // Kafka ApiVersions v3 request.
    let mut kafka = vec![0x00, 0x00, 0x00, 0x23, 0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x09];
    kafka.extend(b"client-id\x00\x0akafka-java\x06\x33\x2e\x35\x2e\x31\x00");
    // MQTT 3.1.1 CONNECT.
    let mut mqtt = vec![0x10, 0x16, 0x00, 0x04];
    mqtt.extend(b"MQTT\x04\x02\x00\x3c\x00\x0aclient-one");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("http request", b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n".to_vec()),
        ("http post", b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("http/0.9 get", b"GET /\r\n".to_vec()),
        ("http response", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("tls client hello", tls_client_hello),
        ("tls server hello", tls_server_hello),
        ("dns over tcp", dns),
        ("http2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("http2 settings", h2_settings.to_vec()),
        ("mysql greeting", mysql),
        ("mysql greeting 0x4a", mysql_4a),
        ("postgresql startup", pg_startup),
        ("postgresql sslrequest", pg_ssl.to_vec()),
        ("kafka apiversions", kafka),
        ("mqtt connect", mqtt),
        ("ssh client", b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".to_vec()),
        ("ssh server", b"SSH-2.0-OpenSSH_8.9\r\n".to_vec()),
        ("binary", vec![0x00, 0x01, 0xfe, 0x42, 0x99, 0x10, 0x2a, 0x24, 0x0d, 0x0a]),
        ("binary star", vec![0x2a, 0xff, 0x0d, 0x0a, 0x24]),
        ("smtp greeting", b"220 mail.example.test ESMTP\r\n".to_vec()),
        ("ftp auth", b"AUTH TLS\r\n".to_vec()),
    ];
    for (name, bytes) in &cases {
        for dir in [ToServer, ToClient] {
            assert_eq!(probe(bytes, dir, Transport::Tcp), Probe::NoMatch, "{name} {dir:?}");
        }
    }
    // And the Redis opening bytes of the shared table match.
    assert_eq!(probe(b"*1\r\n$4\r\nPING\r\n", ToServer, Transport::Tcp), Probe::Match);
}

// ---- session: message kinds ---------------------------------------------

#[test]
fn get_with_bulk_reply() {
    let reply = bulk(b"{\"sso\": 1}");
    let c = one(GET_CONF, &reply);
    assert_eq!(c.protocol, L7Protocol::Redis);
    assert_eq!(c.request_type.as_deref(), Some("GET"));
    assert_eq!(c.request_resource.as_deref(), Some("user_conf_config_1"));
    assert_eq!(c.request_domain, None);
    assert_eq!(c.response_code, None);
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!(c.response_exception, None);
    assert_eq!((c.request_ts, c.response_first_ts, c.response_end_ts), (Some(10), Some(20), Some(20)));
    assert_eq!((c.request_bytes, c.response_bytes), (GET_CONF.len() as u64, reply.len() as u64));
    assert_eq!(c.attributes, [("redis.reply_type".to_owned(), "bulk".to_owned())]);
}

#[test]
fn corpus_exists_integer_and_lrange_array() {
    let c = one(EXISTS, EXISTS_REPLY);
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("EXISTS"), Some("verify_code")));
    assert_eq!(reply_type(&c), Some("integer"));
    let mut reply = b"*300\r\n".to_vec();
    for _ in 0..300 {
        reply.extend(bulk(b"xxx"));
    }
    let c = one(LRANGE, &reply);
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("LRANGE"), Some("mylist")));
    assert_eq!(reply_type(&c), Some("array"));
    assert_eq!(c.response_bytes, 2706, "the size of redis-debug.pcap frame 6");
}

#[test]
fn lower_case_commands_are_upper_cased() {
    let c = one(PING_LOWER, b"+PONG\r\n");
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("PING"), None));
    assert_eq!(reply_type(&c), Some("simple"));
    let c = one(SET_TEST, b"+OK\r\n");
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("SET"), Some("test")));
    // The value is never kept.
    assert!(!format!("{c:?}").contains("Hello world"));
}

#[test]
fn inline_commands_pipelined() {
    let calls = exchange(INLINE_PINGS, PONGS);
    assert_eq!(calls.len(), 3);
    for c in &calls {
        assert_eq!(c.request_type.as_deref(), Some("PING"));
        assert_eq!(c.request_resource, None);
        assert_eq!(c.request_bytes, 6);
        assert_eq!(c.response_bytes, 7);
        assert_eq!(reply_type(c), Some("simple"));
    }
    let c = one(b"get  mykey\n", b"$-1\r\n");
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("GET"), Some("mykey")));
    assert_eq!(reply_type(&c), Some("nil"));
    // Empty lines are no commands.
    let c = one(b"\r\n\n\r\nPING\r\n", b"+PONG\r\n");
    assert_eq!(c.request_type.as_deref(), Some("PING"));
}

#[test]
fn pipelined_commands_pair_in_order() {
    let mut req = command(&[b"SET", b"k1", b"v"]);
    req.extend(command(&[b"INCR", b"counter"]));
    req.extend(command(&[b"GET", b"missing"]));
    req.extend(command(&[b"LPOP", b"empty"]));
    let replies = b"+OK\r\n:42\r\n$-1\r\n*-1\r\n";
    let calls = exchange(&req, replies);
    let got: Vec<_> = calls
        .iter()
        .map(|c| (c.request_type.as_deref().unwrap(), c.request_resource.as_deref().unwrap(), reply_type(c).unwrap()))
        .collect();
    assert_eq!(
        got,
        [("SET", "k1", "simple"), ("INCR", "counter", "integer"), ("GET", "missing", "nil"), ("LPOP", "empty", "nil")]
    );
    assert!(calls.iter().all(|c| c.status == CallStatus::Ok));
}

#[test]
fn error_replies() {
    let c = one(&command(&[b"FOO"]), b"-ERR unknown command 'FOO', with args beginning with: \r\n");
    assert_eq!(c.status, CallStatus::ClientError);
    assert_eq!(c.response_exception.as_deref(), Some("ERR unknown command 'FOO', with args beginning with: "));
    assert_eq!(c.response_code, None);
    assert_eq!(reply_type(&c), Some("error"));
    let c = one(
        &command(&[b"LPUSH", b"str", b"x"]),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
    assert_eq!(c.status, CallStatus::ClientError);
    assert_eq!(c.request_resource.as_deref(), Some("str"));
    assert_eq!(
        c.response_exception.as_deref(),
        Some("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    let c = one(&command(&[b"SET", b"a", b"b"]), b"-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    assert_eq!(c.status, CallStatus::ServerError);
    // RESP3 bulk error.
    let c = one(&command(&[b"FOO"]), b"!21\r\nSYNTAX invalid syntax\r\n");
    assert_eq!(c.status, CallStatus::ClientError);
    assert_eq!(c.response_exception.as_deref(), Some("SYNTAX invalid syntax"));
    assert_eq!(reply_type(&c), Some("bulk_error"));
    // Long error text is truncated.
    let mut long = b"-ERR ".to_vec();
    long.extend([b'x'; 1000]);
    long.extend(b"\r\n");
    let c = one(&command(&[b"FOO"]), &long);
    assert_eq!(c.response_exception.as_ref().map(String::len), Some(256));
}

#[test]
fn resp3_reply_types() {
    let hello_reply = b"%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n";
    let c = one(&command(&[b"HELLO", b"3"]), hello_reply);
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("HELLO"), None));
    assert_eq!(reply_type(&c), Some("map"));
    assert_eq!(c.response_bytes, hello_reply.len() as u64);
    for (reply, name) in [
        (&b"~2\r\n+a\r\n+b\r\n"[..], "set"),
        (b",3.14\r\n", "double"),
        (b"#f\r\n", "boolean"),
        (b"(3492890328409238509324850943850943825024385\r\n", "bignum"),
        (b"=15\r\ntxt:Some string\r\n", "verbatim"),
        (b"_\r\n", "nil"),
        // An attribute describes the reply that follows it.
        (b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n", "array"),
        // Streamed string and streamed aggregate.
        (b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n", "bulk"),
        (b"*?\r\n:1\r\n:2\r\n%?\r\n+a\r\n:1\r\n.\r\n.\r\n", "array"),
    ] {
        let c = one(&command(&[b"GET", b"k"]), reply);
        assert_eq!(reply_type(&c), Some(name), "{:?}", String::from_utf8_lossy(reply));
        assert_eq!(c.response_bytes, reply.len() as u64);
    }
}

#[test]
fn secrets_are_never_kept() {
    let calls = exchange(
        &[command(&[b"AUTH", b"SECRETpass"]), command(&[b"HELLO", b"3", b"AUTH", b"user", b"SECRETpass"])].concat(),
        b"+OK\r\n%1\r\n+proto\r\n:3\r\n",
    );
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].request_type.as_deref(), Some("AUTH"));
    assert_eq!(calls[0].request_resource, None);
    assert_eq!(calls[1].request_type.as_deref(), Some("HELLO"));
    assert!(!format!("{calls:?}").contains("SECRET"));
    let c = one(b"AUTH SECRETpass\r\n", b"-WRONGPASS invalid username-password pair\r\n");
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("AUTH"), None));
    assert_eq!(c.status, CallStatus::ClientError);
    assert!(!format!("{c:?}").contains("SECRET"));
}

#[test]
fn subcommands_and_second_keys() {
    let c = one(&command(&[b"config", b"get", b"maxmemory"]), b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("CONFIG"), None));
    assert_eq!(attr(&c, "redis.subcommand"), Some("GET"));
    assert_sorted(&c);
    let c = one(&command(&[b"OBJECT", b"ENCODING", b"mykey"]), b"$6\r\nembstr\r\n");
    assert_eq!((c.request_resource.as_deref(), attr(&c, "redis.subcommand")), (Some("mykey"), Some("ENCODING")));
    let c = one(&command(&[b"BITOP", b"AND", b"dest", b"k1", b"k2"]), b":6\r\n");
    assert_eq!(c.request_resource.as_deref(), Some("dest"));
    let c = one(&command(&[b"EVAL", b"return 1", b"0"]), b":1\r\n");
    assert_eq!(c.request_resource, None);
    // Long keys are truncated to 256 bytes.
    let key = [b'k'; 300];
    let c = one(&command(&[b"GET", &key]), b"$-1\r\n");
    assert_eq!(c.request_resource.as_ref().map(String::len), Some(256));
}

#[test]
fn reply_without_command() {
    let mut s = session();
    let mut out = Vec::new();
    Stream::default().feed(&mut s, ToClient, b"+OK\r\n-ERR no\r\n", 5, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].request_ts, out[0].request_type.as_ref()), (None, None));
    assert_eq!(out[0].response_first_ts, Some(5));
    assert_eq!(out[1].status, CallStatus::ClientError);
}

// ---- pub/sub --------------------------------------------------------------

#[test]
fn pubsub_resp2_messages_are_calls_without_request() {
    let mut s = session();
    let mut out = Vec::new();
    let (mut a, mut b) = (Stream::default(), Stream::default());
    a.feed(&mut s, ToServer, &command(&[b"SUBSCRIBE", b"news", b"sport"]), 1, &mut out).unwrap();
    let confirmations = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n";
    b.feed(&mut s, ToClient, confirmations, 2, &mut out).unwrap();
    b.feed(&mut s, ToClient, b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n", 3, &mut out).unwrap();
    b.feed(&mut s, ToClient, b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n", 4, &mut out).unwrap();
    a.feed(&mut s, ToServer, &command(&[b"PING"]), 5, &mut out).unwrap();
    b.feed(&mut s, ToClient, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n", 6, &mut out).unwrap();
    s.finish(7, &mut out);
    assert_eq!(out.len(), 4, "{out:#?}");
    assert_eq!((out[0].request_type.as_deref(), out[0].request_resource.as_deref()), (Some("SUBSCRIBE"), Some("news")));
    assert_eq!(out[0].response_end_ts, Some(2));
    for (c, kind) in [(&out[1], "message"), (&out[2], "pmessage")] {
        assert_eq!(c.request_ts, None);
        assert_eq!(c.request_type.as_deref(), Some(kind));
        assert_eq!(c.request_resource.as_deref(), Some("news"));
        assert_eq!(reply_type(c), Some("array"));
        assert!(!format!("{c:?}").contains("hello"));
    }
    assert_eq!(out[3].request_type.as_deref(), Some("PING"));
    assert_eq!(out[3].request_ts, Some(5));
}

#[test]
fn pubsub_resp3_pushes() {
    let mut s = session();
    let mut out = Vec::new();
    let (mut a, mut b) = (Stream::default(), Stream::default());
    a.feed(&mut s, ToServer, &command(&[b"SUBSCRIBE", b"ch"]), 1, &mut out).unwrap();
    a.feed(&mut s, ToServer, &command(&[b"GET", b"k"]), 1, &mut out).unwrap();
    // Confirmation (a push) answers SUBSCRIBE; a message pushed between
    // replies does not take GET's place.
    b.feed(&mut s, ToClient, b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", 2, &mut out).unwrap();
    b.feed(&mut s, ToClient, b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n", 3, &mut out).unwrap();
    b.feed(&mut s, ToClient, b"$1\r\nv\r\n", 4, &mut out).unwrap();
    b.feed(&mut s, ToClient, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", 5, &mut out).unwrap();
    assert_eq!(out.len(), 4, "{out:#?}");
    assert_eq!(out[0].request_type.as_deref(), Some("SUBSCRIBE"));
    assert_eq!(reply_type(&out[0]), Some("push"));
    assert_eq!((out[1].request_type.as_deref(), out[1].request_resource.as_deref()), (Some("message"), Some("ch")));
    assert_eq!(reply_type(&out[1]), Some("push"));
    assert_eq!((out[2].request_type.as_deref(), reply_type(&out[2])), (Some("GET"), Some("bulk")));
    assert_eq!((out[3].request_type.as_deref(), out[3].request_ts), (Some("invalidate"), None));
}

#[test]
fn monitor_feed_is_absorbed() {
    let mut s = session();
    let mut out = Vec::new();
    let (mut a, mut b) = (Stream::default(), Stream::default());
    a.feed(&mut s, ToServer, b"MONITOR\r\n", 1, &mut out).unwrap();
    b.feed(&mut s, ToClient, b"+OK\r\n+1339518083.107412 [0 127.0.0.1:60866] \"keys\" \"*\"\r\n", 2, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_type.as_deref(), Some("MONITOR"));
}

// ---- framing --------------------------------------------------------------

/// Every message kind, request and reply each split in two at every byte.
#[test]
fn split_at_every_byte_boundary() {
    type Case = (Vec<u8>, Vec<u8>, &'static str, Option<&'static str>, &'static str);
    let cases: Vec<Case> = vec![
        (GET_CONF.to_vec(), bulk(b"some value"), "GET", Some("user_conf_config_1"), "bulk"),
        (EXISTS.to_vec(), EXISTS_REPLY.to_vec(), "EXISTS", Some("verify_code"), "integer"),
        (b"PING\r\n".to_vec(), b"+PONG\r\n".to_vec(), "PING", None, "simple"),
        (command(&[b"FOO", b"x"]), b"-ERR unknown command\r\n".to_vec(), "FOO", Some("x"), "error"),
        (command(&[b"GET", b"nokey"]), b"$-1\r\n".to_vec(), "GET", Some("nokey"), "nil"),
        (LRANGE.to_vec(), b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n".to_vec(), "LRANGE", Some("mylist"), "array"),
        (command(&[b"HELLO", b"3"]), b"%1\r\n+proto\r\n:3\r\n".to_vec(), "HELLO", None, "map"),
        (command(&[b"GET", b"k"]), b"!5\r\nERR x\r\n".to_vec(), "GET", Some("k"), "bulk_error"),
        (command(&[b"GET", b"k"]), b"$?\r\n;2\r\nab\r\n;0\r\n".to_vec(), "GET", Some("k"), "bulk"),
        (command(&[b"GET", b"k"]), b"|1\r\n+a\r\n+b\r\n:7\r\n".to_vec(), "GET", Some("k"), "integer"),
    ];
    for (req, reply, ty, res, rt) in &cases {
        for cut in 0..=req.len().max(reply.len()) {
            let mut s = session();
            let mut out = Vec::new();
            let (mut a, mut b) = (Stream::default(), Stream::default());
            let rc = cut.min(req.len());
            a.feed(&mut s, ToServer, &req[..rc], 1, &mut out).unwrap();
            a.feed(&mut s, ToServer, &req[rc..], 2, &mut out).unwrap();
            let pc = cut.min(reply.len());
            b.feed(&mut s, ToClient, &reply[..pc], 3, &mut out).unwrap();
            b.feed(&mut s, ToClient, &reply[pc..], 4, &mut out).unwrap();
            s.finish(5, &mut out);
            let what = format!("{} cut {cut}", String::from_utf8_lossy(req));
            assert_eq!(out.len(), 1, "{what}: {out:#?}");
            let c = &out[0];
            assert_eq!(c.request_type.as_deref(), Some(*ty), "{what}");
            assert_eq!(c.request_resource.as_deref(), *res, "{what}");
            assert_eq!(reply_type(c), Some(*rt), "{what}");
            assert_eq!((c.request_bytes, c.response_bytes), (req.len() as u64, reply.len() as u64), "{what}");
            // The request's first byte came with the first piece unless it was empty.
            assert_eq!(c.request_ts, Some(if rc == 0 { 2 } else { 1 }), "{what}");
            assert_eq!(c.response_first_ts, Some(if pc == 0 { 4 } else { 3 }), "{what}");
            assert_eq!(c.response_end_ts, Some(if pc == reply.len() { 3 } else { 4 }), "{what}");
        }
    }
}

/// A reply much larger than `max_message_bytes` streams through: its
/// payload is consumed as it arrives, never held.
#[test]
fn large_bulk_reply_streams_through_the_limit() {
    let mut s = session_with(4096, 8);
    let mut out = Vec::new();
    let (mut a, mut b) = (Stream::default(), Stream::default());
    a.feed(&mut s, ToServer, GET_CONF, 1, &mut out).unwrap();
    let reply = bulk(&vec![b'v'; 490_493]);
    for (i, chunk) in reply.chunks(1448).enumerate() {
        b.feed(&mut s, ToClient, chunk, 2 + i as i64, &mut out).unwrap();
        assert!(b.buf.len() < 64, "kept {} bytes", b.buf.len());
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].response_bytes, reply.len() as u64);
    assert_eq!(out[0].response_first_ts, Some(2));
}

#[test]
fn oversized_line_is_too_large() {
    let mut s = session_with(1024, 8);
    let mut out = Vec::new();
    let mut line = b"+".to_vec();
    line.extend([b'a'; 2000]);
    assert_eq!(s.parse(ToClient, &line, 1, &mut out), Err(L7Error::TooLarge));
    let mut s = session_with(1024, 8);
    assert_eq!(s.parse(ToServer, &[b'x'; 2000], 1, &mut out), Err(L7Error::TooLarge));
    // Shorter than the limit: waits.
    let mut s = session_with(1024, 8);
    assert_eq!(s.parse(ToClient, &line[..500], 1, &mut out), Ok(0));
    assert!(out.is_empty());
}

#[test]
fn too_many_pending_drops_the_oldest_as_timeout() {
    let mut s = session_with(4096, 2);
    let mut out = Vec::new();
    let req = [command(&[b"GET", b"a"]), command(&[b"GET", b"b"]), command(&[b"GET", b"c"])].concat();
    Stream::default().feed(&mut s, ToServer, &req, 1, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].request_resource.as_deref(), out[0].status), (Some("a"), CallStatus::Timeout));
    assert_eq!(s.pending(), 2);
    // `a`'s reply still comes first: it is skipped, `b` and `c` keep theirs.
    Stream::default().feed(&mut s, ToClient, b"$1\r\nA\r\n$1\r\nB\r\n$-1\r\n", 2, &mut out).unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!((out[1].request_resource.as_deref(), reply_type(&out[1])), (Some("b"), Some("bulk")));
    assert_eq!((out[2].request_resource.as_deref(), reply_type(&out[2])), (Some("c"), Some("nil")));
}

#[test]
fn reply_cut_by_the_end_of_the_flow_still_answers() {
    let mut s = session();
    let mut out = Vec::new();
    let (mut a, mut b) = (Stream::default(), Stream::default());
    a.feed(&mut s, ToServer, GET_CONF, 1, &mut out).unwrap();
    a.feed(&mut s, ToServer, EXISTS, 1, &mut out).unwrap();
    b.feed(&mut s, ToClient, b"$1107\r\n{\"sso\"", 2, &mut out).unwrap();
    b.feed(&mut s, ToClient, b": 1}", 3, &mut out).unwrap();
    s.finish(9, &mut out);
    assert_eq!(out.len(), 2, "{out:#?}");
    let c = &out[0];
    assert_eq!((c.request_type.as_deref(), c.status, reply_type(c)), (Some("GET"), CallStatus::Ok, Some("bulk")));
    assert_eq!(attr(c, "redis.truncated"), Some("true"));
    assert_eq!((c.response_first_ts, c.response_end_ts, c.response_bytes), (Some(2), Some(3), 17));
    assert_sorted(c);
    assert_eq!((out[1].request_type.as_deref(), out[1].status), (Some("EXISTS"), CallStatus::Timeout));
}

#[test]
fn expire_and_finish_make_timeouts() {
    let mut s = session();
    let mut out = Vec::new();
    let mut a = Stream::default();
    a.feed(&mut s, ToServer, &command(&[b"BLPOP", b"q", b"0"]), 100, &mut out).unwrap();
    a.feed(&mut s, ToServer, &command(&[b"GET", b"k"]), 200, &mut out).unwrap();
    s.expire(150, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].request_type.as_deref(), out[0].status), (Some("BLPOP"), CallStatus::Timeout));
    assert_eq!(out[0].response_first_ts, None);
    // BLPOP's late reply is skipped; GET gets its own.
    Stream::default().feed(&mut s, ToClient, b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n$1\r\nv\r\n", 300, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!((out[1].request_type.as_deref(), reply_type(&out[1])), (Some("GET"), Some("bulk")));
    a.feed(&mut s, ToServer, &command(&[b"DEL", b"k"]), 400, &mut out).unwrap();
    s.finish(500, &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!((out[2].request_type.as_deref(), out[2].status), (Some("DEL"), CallStatus::Timeout));
    assert_eq!(s.pending(), 0);
}

#[test]
fn gap_in_commands_resyncs_at_next_command() {
    let mut s = session();
    let mut out = Vec::new();
    let mut a = Stream::default();
    let set = command(&[b"SET", b"k", b"a long value that the gap cuts"]);
    a.feed(&mut s, ToServer, &set[..20], 1, &mut out).unwrap();
    a.buf.clear();
    s.on_gap(ToServer, 100);
    // The rest of some value, then a whole command.
    let mut after = b"value tail\r\n$3\r\nabc\r\n".to_vec();
    after.extend(command(&[b"GET", b"k2"]));
    a.feed(&mut s, ToServer, &after, 2, &mut out).unwrap();
    Stream::default().feed(&mut s, ToClient, b"$1\r\nx\r\n", 3, &mut out).unwrap();
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!((out[0].request_type.as_deref(), out[0].request_resource.as_deref()), (Some("GET"), Some("k2")));
}

#[test]
fn gap_in_replies_ends_waiting_commands() {
    let mut s = session();
    let mut out = Vec::new();
    let (mut a, mut b) = (Stream::default(), Stream::default());
    a.feed(&mut s, ToServer, &command(&[b"GET", b"big"]), 1, &mut out).unwrap();
    b.feed(&mut s, ToClient, b"$100000\r\nxxxx", 2, &mut out).unwrap();
    b.buf.clear();
    s.on_gap(ToClient, 5000);
    a.feed(&mut s, ToServer, &command(&[b"GET", b"small"]), 3, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].request_resource.as_deref(), out[0].status), (Some("big"), CallStatus::Timeout));
    // Bytes of the lost value without a line start, then the next reply.
    b.feed(&mut s, ToClient, b"xxxxxxxxxxxx\r\n$2\r\nok\r\n", 4, &mut out).unwrap();
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!((out[1].request_resource.as_deref(), reply_type(&out[1])), (Some("small"), Some("bulk")));
}

#[test]
fn garbage_and_truncated_input() {
    // A reply that is not RESP.
    let mut s = session();
    let mut out = Vec::new();
    assert_eq!(s.parse(ToClient, b"hello world\r\n", 1, &mut out), Err(L7Error::Malformed("redis_unknown_type")));
    assert_eq!(s.malformed(), 1);
    for (bytes, kind) in [
        (&b"$abc\r\n"[..], "redis_bad_length"),
        (b":1.5\r\n", "redis_bad_value"),
        (b"$3\r\nabcXY", "redis_missing_crlf"),
        (b";3\r\n", "redis_bad_stream"),
        (b".\r\n", "redis_bad_stream"),
        (b"$?\r\n+x\r\n", "redis_bad_stream"),
        (b"%-1\r\n", "redis_bad_length"),
    ] {
        let mut s = session();
        assert_eq!(s.parse(ToClient, bytes, 1, &mut out), Err(L7Error::Malformed(kind)), "{bytes:?}");
    }
    // Nesting deeper than MAX_DEPTH.
    let deep = b"*1\r\n".repeat(super::session::MAX_DEPTH + 1);
    assert_eq!(session().parse(ToClient, &deep, 1, &mut out), Err(L7Error::Malformed("redis_too_deep")));
    let ok = b"*1\r\n".repeat(super::session::MAX_DEPTH);
    assert_eq!(session().parse(ToClient, &ok, 1, &mut out), Ok(ok.len()));
    // A truncated command never completes: the flow ends with nothing.
    let req = command(&[b"GET", b"key"]);
    for cut in 0..req.len() {
        let mut s = session();
        let mut out = Vec::new();
        Stream::default().feed(&mut s, ToServer, &req[..cut], 1, &mut out).unwrap();
        s.finish(2, &mut out);
        assert!(out.is_empty(), "cut {cut}: {out:#?}");
    }
    // Empty and null arrays are no commands.
    let calls = exchange(b"*0\r\n*-1\r\n", b"");
    assert!(calls.is_empty());
}

/// Arbitrary bytes never panic, whatever the direction and split.
#[test]
fn no_panic_on_arbitrary_bytes() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"*$+-:_#,(!=%~>|;.?0123456789\r\nabcPING ";
    for _ in 0..2000 {
        let len = (next() % 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        let mut s = session_with(128, 4);
        let mut out = Vec::new();
        let dir = if next() % 2 == 0 { ToServer } else { ToClient };
        let mut st = Stream::default();
        for chunk in bytes.chunks(1 + (next() % 7) as usize) {
            if st.feed(&mut s, dir, chunk, 1, &mut out).is_err() {
                break;
            }
        }
        s.finish(2, &mut out);
        let _ = probe(&bytes, dir, Transport::Tcp);
    }
}
