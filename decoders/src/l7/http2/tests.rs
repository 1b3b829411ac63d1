//! HTTP/2 (RFC 9113) with HPACK (RFC 7541), and gRPC on it: byte-array tests of parser and session.
//!
//! Header blocks are written by hand: indexed static fields (`0x82`
//! `:method GET`, `0x83` POST, `0x84` `:path /`, `0x86` `:scheme http`,
//! `0x88` `:status 200`) and literals without indexing (`0x00`, name,
//! value), plus the RFC 7541 Appendix C.4 examples (Huffman, dynamic table).

use super::parser::{self, Hpack, PREFACE};
use super::session::Session;
use super::{probe, Probe};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, SessionConfig, Transport};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A literal field without indexing, new name (RFC 7541 §6.2.2).
fn lit(name: &str, value: &str) -> Vec<u8> {
    let mut b = vec![0x00, name.len() as u8];
    b.extend_from_slice(name.as_bytes());
    b.push(value.len() as u8);
    b.extend_from_slice(value.as_bytes());
    b
}

fn block(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn settings() -> Vec<u8> {
    // SETTINGS_MAX_CONCURRENT_STREAMS = 100, INITIAL_WINDOW_SIZE = 65535.
    frame(parser::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 0xff, 0xff])
}

fn get_request(stream: u32, path: &str) -> Vec<u8> {
    let b =
        block(&[&[0x82, 0x86], &lit(":path", path), &lit(":authority", "Example.TEST"), &lit("user-agent", "ua/1")]);
    frame(parser::HEADERS, parser::FLAG_END_HEADERS | parser::FLAG_END_STREAM, stream, &b)
}

fn response(stream: u32, status: &str, end: bool) -> Vec<u8> {
    let b = block(&[&lit(":status", status), &lit("content-type", "text/plain")]);
    let flags = parser::FLAG_END_HEADERS | if end { parser::FLAG_END_STREAM } else { 0 };
    frame(parser::HEADERS, flags, stream, &b)
}

fn client_bytes() -> Vec<u8> {
    [PREFACE.to_vec(), settings(), get_request(1, "/a?b=1")].concat()
}

fn server_bytes() -> Vec<u8> {
    [
        settings(),
        frame(parser::SETTINGS, parser::FLAG_ACK, 0, &[]),
        response(1, "200", false),
        frame(parser::DATA, parser::FLAG_END_STREAM, 1, b"hello"),
    ]
    .concat()
}

fn session() -> Session {
    Session::new(&SessionConfig::default(), Transport::Tcp)
}

/// Feeds `data` whole, asserting it is all consumed.
fn feed(s: &mut Session, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) {
    assert_eq!(s.parse(dir, data, ts, out), Ok(data.len()));
}

/// Feeds in two pieces split at `at`, with the caller's semantics.
fn feed_split(s: &mut Session, dir: Direction, data: &[u8], at: usize, out: &mut Vec<Call>) {
    let n = s.parse(dir, &data[..at], 1, out).unwrap();
    let rest = &data[n..];
    assert_eq!(s.parse(dir, rest, 2, out), Ok(rest.len()), "split at {at}");
}

fn attr<'a>(c: &'a Call, key: &str) -> Option<&'a str> {
    c.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

// ---- parser ----

#[test]
fn frame_header_reads_fields() {
    let f = frame(parser::HEADERS, 0x25, 0x8000_0003, b"xyz");
    let h = parser::parse_frame_header(&f).unwrap();
    assert_eq!((h.len, h.kind, h.flags, h.stream_id), (3, 1, 0x25, 3));
    assert!(parser::parse_frame_header(&f[..8]).is_none());
}

#[test]
fn headers_fragment_strips_padding_and_priority() {
    let mut payload = vec![2u8]; // pad length
    payload.extend_from_slice(&[0x80, 0, 0, 1, 16]); // priority
    payload.extend_from_slice(&[0x82, 0x84]);
    payload.extend_from_slice(&[0, 0]);
    let h = parser::FrameHeader {
        len: payload.len() as u32,
        kind: parser::HEADERS,
        flags: parser::FLAG_PADDED | parser::FLAG_PRIORITY | parser::FLAG_END_HEADERS,
        stream_id: 1,
    };
    assert_eq!(parser::headers_fragment(&h, &payload), Ok(&[0x82u8, 0x84][..]));
    assert!(parser::headers_fragment(&h, &payload[..4]).is_err());
}

#[test]
fn huffman_decodes_rfc7541_examples() {
    // RFC 7541 C.4.1: "www.example.com".
    let mut out = Vec::new();
    parser::huffman_decode(&[0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff], &mut out)
        .unwrap();
    assert_eq!(out, b"www.example.com");
    out.clear();
    // C.4.2: "no-cache".
    parser::huffman_decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf], &mut out).unwrap();
    assert_eq!(out, b"no-cache");
    // Padding of 8 bits, and padding that is not all ones, are errors.
    assert!(parser::huffman_decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf, 0xff], &mut Vec::new()).is_err());
    assert!(parser::huffman_decode(&[0x00], &mut Vec::new()).is_err());
}

type Owned = (Option<String>, Option<String>);

fn decode_all(h: &mut Hpack, b: &[u8]) -> (Vec<Owned>, Result<(), parser::ParseError>) {
    let mut v = Vec::new();
    let r = h.decode(b, &mut |(n, val)| {
        v.push((
            n.map(|n| String::from_utf8_lossy(n).into_owned()),
            val.map(|x| String::from_utf8_lossy(x).into_owned()),
        ));
    });
    (v, r)
}

fn some(n: &str, v: &str) -> Owned {
    (Some(n.to_owned()), Some(v.to_owned()))
}

const C41: [u8; 17] =
    [0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff];
const C42: [u8; 12] = [0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];

#[test]
fn hpack_rfc7541_c4_requests_share_the_dynamic_table() {
    let mut h = Hpack::default();
    let (v, r) = decode_all(&mut h, &C41);
    assert_eq!(r, Ok(()));
    assert_eq!(
        v,
        [some(":method", "GET"), some(":scheme", "http"), some(":path", "/"), some(":authority", "www.example.com")]
    );
    assert_eq!(h.len(), 1);
    let (v, r) = decode_all(&mut h, &C42);
    assert_eq!(r, Ok(()));
    assert_eq!(v[3], some(":authority", "www.example.com"));
    assert_eq!(v[4], some("cache-control", "no-cache"));
    assert_eq!(h.len(), 2);
}

#[test]
fn hpack_mid_connection_marks_unknown_entries_and_keeps_the_rest() {
    // The second request of C.4 without the first: index 62 is unknown.
    let mut h = Hpack::default();
    let (v, r) = decode_all(&mut h, &C42);
    assert_eq!(r, Ok(()));
    assert_eq!(v.len(), 5);
    assert_eq!(v[3], (None, None));
    assert_eq!(v[4], some("cache-control", "no-cache"));
    // A literal with an unknown indexed name keeps its value.
    let (v, _) = decode_all(&mut h, &[0x7f, 0x10, 0x01, b'x']);
    assert_eq!(v, [(None, Some("x".to_owned()))]);
}

#[test]
fn hpack_errors_on_bad_input_without_panicking() {
    let mut h = Hpack::default();
    assert!(decode_all(&mut h, &[0x80]).1.is_err()); // index 0
    assert!(decode_all(&mut h, &[0x00, 0x05, b'a']).1.is_err()); // truncated string
    assert!(decode_all(&mut h, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).1.is_err()); // overflow
    assert!(decode_all(&mut h, &[0x82, 0x20]).1.is_err()); // size update after a field
                                                           // Deterministic garbage: never panics, table stays bounded.
    let mut x = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut b = Vec::new();
        for _ in 0..(x % 64) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b.push(x as u8);
        }
        let _ = decode_all(&mut h, &b);
        assert!(h.len() <= parser::MAX_TABLE_SIZE / 32);
    }
}

#[test]
fn percent_decode_grpc_message() {
    assert_eq!(parser::percent_decode(b"not%20found%3A%20x"), "not found: x");
    assert_eq!(parser::percent_decode(b"bad%zz%"), "bad%zz%");
}

// ---- probe ----

#[test]
fn probe_matches_preface_and_mid_connection_frames() {
    assert_eq!(probe(PREFACE, C, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&client_bytes(), C, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&PREFACE[..10], C, Transport::Tcp), Probe::NeedMore);
    assert_eq!(probe(PREFACE, C, Transport::Udp), Probe::NoMatch);
    // Server side first: SETTINGS.
    assert_eq!(probe(&server_bytes(), S, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&settings()[..5], S, Transport::Tcp), Probe::NeedMore);
    // Mid-connection HEADERS of a request and of a response.
    assert_eq!(probe(&get_request(5, "/"), C, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&response(5, "404", true), S, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&frame(parser::HEADERS, 4, 1, &[0x88]), S, Transport::Tcp), Probe::Match);
    // WINDOW_UPDATE then HEADERS.
    let wu = [frame(parser::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]), get_request(3, "/")].concat();
    assert_eq!(probe(&wu, C, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&wu[..12], C, Transport::Tcp), Probe::NeedMore);
}

#[test]
fn probe_rejects_other_protocols_first_bytes() {
    let mut dns_tcp = vec![0, 29, 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    dns_tcp.extend(b"\x07example\x04test\x00\x00\x01\x00\x01");
    let pg_startup = b"\x00\x00\x00\x29\x00\x03\x00\x00user\x00postgres\x00database\x00db\x00\x00".to_vec();
    let kafka = b"\x00\x00\x00\x23\x00\x12\x00\x03\x00\x00\x00\x01\x00\x09kafka-cli\x00\x0a\x6b\x61\x66\x6b\x61\x2d\x63\x6c\x69\x06\x32\x2e\x38\x2e\x30\x00".to_vec();
    let mqtt = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04abcd".to_vec();
    let mysql = b"\x4a\x00\x00\x00\x0a8.0.32\x00\x08\x00\x00\x00abcdefgh\x00\xff\xf7".to_vec();
    let mut random = Vec::new();
    let mut x = 0x9e37_79b9u32;
    for _ in 0..64 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        random.push(x as u8);
    }
    let cases: Vec<(&str, Vec<u8>, Direction)> = vec![
        ("http1 request", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), C),
        ("http1 post", b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n".to_vec(), C),
        ("http1 response", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(), S),
        ("tls client hello", vec![0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03, 0, 0, 0], C),
        ("tls server hello", vec![0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03, 0, 0, 0], S),
        ("dns over tcp", dns_tcp, C),
        ("mysql greeting", mysql, S),
        ("postgres startup", pg_startup, C),
        ("postgres ssl request", vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f], C),
        ("redis ping", b"*1\r\n$4\r\nPING\r\n".to_vec(), C),
        ("kafka apiversions", kafka, C),
        ("mqtt connect", mqtt, C),
        ("ssh client", b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), C),
        ("ssh server", b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n".to_vec(), S),
        ("random", random, C),
        ("zeros", vec![0; 32], C),
        ("data first", frame(parser::DATA, 0, 1, b"abc"), C),
        ("bad setting id", frame(parser::SETTINGS, 0, 0, &[0, 0x42, 0, 0, 0, 1]), S),
        ("settings on stream 1", frame(parser::SETTINGS, 0, 1, &[0, 3, 0, 0, 0, 1]), S),
        ("headers without pseudo", frame(parser::HEADERS, 4, 1, &lit("x", "y")), C),
    ];
    for (name, bytes, dir) in &cases {
        assert_eq!(probe(bytes, *dir, Transport::Tcp), Probe::NoMatch, "{name}");
        // And the full detector never picks HTTP/2 for them.
        let d = crate::l7::detect(bytes, *dir, Transport::Tcp, 80);
        assert_ne!(d, crate::l7::Detection::Found(L7Protocol::Http2), "{name}");
    }
    // The preface and a SETTINGS frame go to HTTP/2 and nothing else.
    assert_eq!(
        crate::l7::detect(&client_bytes(), C, Transport::Tcp, 5000),
        crate::l7::Detection::Found(L7Protocol::Http2)
    );
    assert_eq!(
        crate::l7::detect(&server_bytes(), S, Transport::Tcp, 5000),
        crate::l7::Detection::Found(L7Protocol::Http2)
    );
}

// ---- session ----

#[test]
fn get_request_and_response_give_one_call() {
    let mut s = session();
    let mut out = Vec::new();
    feed(&mut s, C, &client_bytes(), 10, &mut out);
    assert!(out.is_empty());
    feed(&mut s, S, &server_bytes(), 20, &mut out);
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.protocol, L7Protocol::Http2);
    assert_eq!(c.request_type.as_deref(), Some("GET"));
    assert_eq!(c.request_domain.as_deref(), Some("example.test"));
    assert_eq!(c.request_resource.as_deref(), Some("/a?b=1"));
    assert_eq!(c.version.as_deref(), Some("HTTP/2"));
    assert_eq!(c.user_agent.as_deref(), Some("ua/1"));
    assert_eq!(c.response_code, Some(200));
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!((c.request_ts, c.response_first_ts, c.response_end_ts), (Some(10), Some(20), Some(20)));
    assert_eq!(c.request_bytes, get_request(1, "/a?b=1").len() as u64);
    assert_eq!(c.response_bytes, (response(1, "200", false).len() + 9 + 5) as u64);
    assert_eq!(attr(c, "http2.stream_id"), Some("1"));
    assert_eq!(attr(c, "http.content_type"), Some("text/plain"));
    assert_eq!(s.pending(), 0);
}

#[test]
fn every_split_point_gives_the_same_call() {
    let (cb, sb) = (client_bytes(), server_bytes());
    let mut whole = Vec::new();
    let mut s = session();
    feed(&mut s, C, &cb, 1, &mut whole);
    feed(&mut s, S, &sb, 2, &mut whole);
    let strip = |mut c: Call| {
        c.request_ts = None;
        c.response_first_ts = None;
        c.response_end_ts = None;
        c
    };
    let expect = strip(whole.remove(0));
    for at in 0..=cb.len() {
        let mut s = session();
        let mut out = Vec::new();
        feed_split(&mut s, C, &cb, at, &mut out);
        feed(&mut s, S, &sb, 3, &mut out);
        assert_eq!(out.len(), 1, "client split at {at}");
        assert_eq!(strip(out.remove(0)), expect, "client split at {at}");
    }
    for at in 0..=sb.len() {
        let mut s = session();
        let mut out = Vec::new();
        feed(&mut s, C, &cb, 1, &mut out);
        feed_split(&mut s, S, &sb, at, &mut out);
        assert_eq!(out.len(), 1, "server split at {at}");
        assert_eq!(strip(out.remove(0)), expect, "server split at {at}");
    }
}

#[test]
fn split_request_keeps_its_first_byte_time() {
    let cb = client_bytes();
    let mut s = session();
    let mut out = Vec::new();
    let n = s.parse(C, &cb[..cb.len() - 3], 5, &mut out).unwrap();
    feed(&mut s, C, &cb[n..], 6, &mut out);
    feed(&mut s, S, &server_bytes(), 7, &mut out);
    assert_eq!(out[0].request_ts, Some(5));
}

#[test]
fn multiplexed_streams_pair_by_stream_id() {
    let mut s = session();
    let mut out = Vec::new();
    let c = [PREFACE.to_vec(), get_request(1, "/one"), get_request(3, "/three")].concat();
    feed(&mut s, C, &c, 1, &mut out);
    assert_eq!(s.pending(), 2);
    let r = [response(3, "404", true), response(1, "500", true)].concat();
    feed(&mut s, S, &r, 2, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].request_resource.as_deref(), Some("/three"));
    assert_eq!(out[0].response_code, Some(404));
    assert_eq!(out[0].status, CallStatus::ClientError);
    assert_eq!(attr(&out[0], "http2.stream_id"), Some("3"));
    assert_eq!(out[1].request_resource.as_deref(), Some("/one"));
    assert_eq!(out[1].status, CallStatus::ServerError);
}

#[test]
fn continuation_padding_and_priority() {
    let b = block(&[&[0x83, 0x86], &lit(":path", "/cont"), &lit(":authority", "h2.test")]);
    let (first, second) = b.split_at(5);
    let mut payload = vec![3u8];
    payload.extend_from_slice(&[0, 0, 0, 0, 16]);
    payload.extend_from_slice(first);
    payload.extend_from_slice(&[0, 0, 0]);
    let c = [
        PREFACE.to_vec(),
        frame(parser::HEADERS, parser::FLAG_PADDED | parser::FLAG_PRIORITY, 1, &payload),
        frame(parser::CONTINUATION, parser::FLAG_END_HEADERS, 1, second),
        frame(parser::DATA, parser::FLAG_PADDED | parser::FLAG_END_STREAM, 1, b"\x02ab\0\0"),
    ]
    .concat();
    let mut s = session();
    let mut out = Vec::new();
    feed(&mut s, C, &c, 1, &mut out);
    feed(&mut s, S, &response(1, "204", true), 2, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_type.as_deref(), Some("POST"));
    assert_eq!(out[0].request_resource.as_deref(), Some("/cont"));
    assert_eq!(out[0].request_domain.as_deref(), Some("h2.test"));
    assert_eq!(out[0].request_bytes, (c.len() - PREFACE.len()) as u64);
    assert_eq!(out[0].response_code, Some(204));
}

fn grpc_request(stream: u32) -> Vec<u8> {
    let b = block(&[
        &[0x83, 0x86],
        &lit(":path", "/pkg.Greeter/SayHello"),
        &lit(":authority", "greeter:50051"),
        &lit("content-type", "application/grpc+proto"),
        &lit("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        &lit("authorization", "Bearer secret-token"),
        &lit("cookie", "session=secret-cookie"),
    ]);
    let mut data = vec![0, 0, 0, 0, 3, 1, 2, 3];
    data.extend_from_slice(&[0, 0, 0, 0, 1, 9]);
    [
        frame(parser::HEADERS, parser::FLAG_END_HEADERS, stream, &b),
        frame(parser::DATA, parser::FLAG_END_STREAM, stream, &data),
    ]
    .concat()
}

fn grpc_response(stream: u32, status: &str, message: &str) -> Vec<u8> {
    let h = block(&[&[0x88], &lit("content-type", "application/grpc")]);
    let t = block(&[&lit("grpc-status", status), &lit("grpc-message", message)]);
    [
        frame(parser::HEADERS, parser::FLAG_END_HEADERS, stream, &h),
        frame(parser::DATA, 0, stream, &[0, 0, 0, 0, 2, 7, 7]),
        frame(parser::HEADERS, parser::FLAG_END_HEADERS | parser::FLAG_END_STREAM, stream, &t),
    ]
    .concat()
}

#[test]
fn grpc_call_with_trailers() {
    let mut s = session();
    let mut out = Vec::new();
    feed(&mut s, C, &[PREFACE.to_vec(), grpc_request(1)].concat(), 1, &mut out);
    feed(&mut s, S, &grpc_response(1, "5", "user%20not%20found"), 2, &mut out);
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.protocol, L7Protocol::Grpc);
    assert_eq!(c.protocol.as_str(), "grpc");
    assert_eq!(c.request_type.as_deref(), Some("POST"));
    assert_eq!(c.request_resource.as_deref(), Some("/pkg.Greeter/SayHello"));
    assert_eq!(c.response_code, Some(5));
    assert_eq!(c.status, CallStatus::ClientError);
    assert_eq!(c.response_exception.as_deref(), Some("user not found"));
    assert_eq!(attr(c, "grpc.service"), Some("pkg.Greeter"));
    assert_eq!(attr(c, "grpc.method"), Some("SayHello"));
    assert_eq!(attr(c, "grpc.request_messages"), Some("2"));
    assert_eq!(attr(c, "grpc.response_messages"), Some("1"));
    assert_eq!(attr(c, "http.status"), Some("200"));
    assert_eq!(c.trace.trace_id.as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));
    assert_eq!(c.trace.span_id.as_deref(), Some("b7ad6b7169203331"));
    // Secrets are never kept anywhere in the call.
    let dump = format!("{c:?}");
    assert!(!dump.contains("secret"), "{dump}");
    // Attributes are sorted by key.
    let keys: Vec<&str> = c.attributes.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
}

#[test]
fn grpc_status_classes_and_trailers_only() {
    for (code, status) in [("0", CallStatus::Ok), ("16", CallStatus::ClientError), ("14", CallStatus::ServerError)] {
        let mut s = session();
        let mut out = Vec::new();
        feed(&mut s, C, &grpc_request(1), 1, &mut out);
        // Trailers-only response.
        let b = block(&[&[0x88], &lit("content-type", "application/grpc"), &lit("grpc-status", code)]);
        feed(&mut s, S, &frame(parser::HEADERS, 5, 1, &b), 2, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, status, "grpc-status {code}");
        assert_eq!(out[0].response_code, Some(code.parse().unwrap()));
        let expect_exc = (code == "14").then(|| "UNAVAILABLE".to_owned());
        assert_eq!(out[0].response_exception, expect_exc.or((code == "16").then(|| "UNAUTHENTICATED".to_owned())));
    }
}

#[test]
fn rst_stream_ends_the_call_as_an_error() {
    let mut s = session();
    let mut out = Vec::new();
    feed(&mut s, C, &[PREFACE.to_vec(), get_request(1, "/slow")].concat(), 1, &mut out);
    feed(&mut s, C, &frame(parser::RST_STREAM, 0, 1, &[0, 0, 0, 8]), 3, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, CallStatus::ClientError);
    assert_eq!(out[0].response_exception.as_deref(), Some("CANCEL"));
    assert_eq!(out[0].response_end_ts, Some(3));
    // The response that crosses the client's reset gives no second call.
    feed(&mut s, S, &[response(1, "200", false), frame(parser::DATA, 1, 1, b"late")].concat(), 4, &mut out);
    s.finish(5, &mut out);
    assert_eq!(out.len(), 1);
    let mut s = session();
    let mut out = Vec::new();
    feed(&mut s, C, &get_request(1, "/x"), 1, &mut out);
    feed(&mut s, S, &frame(parser::RST_STREAM, 0, 1, &[0, 0, 0, 7]), 2, &mut out);
    assert_eq!(out[0].status, CallStatus::ServerError);
    assert_eq!(out[0].response_exception.as_deref(), Some("REFUSED_STREAM"));
}

#[test]
fn goaway_fails_streams_above_last_stream_id() {
    let mut s = session();
    let mut out = Vec::new();
    let c = [PREFACE.to_vec(), get_request(1, "/1"), get_request(3, "/3"), get_request(5, "/5")].concat();
    feed(&mut s, C, &c, 1, &mut out);
    feed(&mut s, S, &frame(parser::GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]), 2, &mut out);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|c| c.status == CallStatus::ServerError));
    assert_eq!(out[0].response_exception.as_deref(), Some("GOAWAY NO_ERROR"));
    assert_eq!(s.pending(), 1);
    feed(&mut s, S, &response(1, "200", true), 3, &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(out[2].status, CallStatus::Ok);
}

#[test]
fn response_without_request_mid_connection() {
    let mut s = session();
    let mut out = Vec::new();
    // The server's side first, no preface anywhere; `:status` on a dynamic
    // index the capture never saw (index 62) then a static one.
    let b = block(&[&[0xbe], &[0x88]]);
    feed(&mut s, S, &frame(parser::HEADERS, 5, 7, &b), 1, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_type, None);
    assert_eq!(out[0].request_ts, None);
    assert_eq!(out[0].response_code, Some(200));
    assert_eq!(out[0].status, CallStatus::Ok);
    assert_eq!(attr(&out[0], "http2.stream_id"), Some("7"));
}

#[test]
fn mid_connection_request_keeps_static_and_literal_fields() {
    let mut s = session();
    let mut out = Vec::new();
    // `:path` from an unknown dynamic entry (0xbf = index 63).
    let b = block(&[&[0x83, 0xbf], &lit(":authority", "svc")]);
    feed(&mut s, C, &frame(parser::HEADERS, 5, 9, &b), 1, &mut out);
    s.finish(5, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_type.as_deref(), Some("POST"));
    assert_eq!(out[0].request_resource, None);
    assert_eq!(out[0].request_domain.as_deref(), Some("svc"));
    assert_eq!(out[0].status, CallStatus::Timeout);
}

#[test]
fn gap_inside_data_stays_in_sync() {
    let mut s = session();
    let mut out = Vec::new();
    feed(&mut s, C, &client_bytes(), 1, &mut out);
    let mut sb = [response(1, "200", false), frame(parser::DATA, parser::FLAG_END_STREAM, 1, &[b'x'; 100])].concat();
    let cut = sb.len() - 60;
    feed(&mut s, S, &sb[..cut], 2, &mut out);
    s.on_gap(S, 50);
    sb.drain(..cut + 50);
    feed(&mut s, S, &sb, 3, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].response_code, Some(200));
    assert_eq!(out[0].response_end_ts, Some(3));
}

#[test]
fn gap_then_resync_at_next_frame() {
    let mut s = session();
    let mut out = Vec::new();
    let c = [PREFACE.to_vec(), get_request(1, "/lost")].concat();
    assert_eq!(s.parse(C, &c[..PREFACE.len() + 4], 1, &mut out), Ok(PREFACE.len()));
    s.on_gap(C, 1000);
    // Junk tail of a lost frame, then two whole requests.
    let after = [vec![0xde, 0xad, 0xbe], get_request(3, "/three"), get_request(5, "/five")].concat();
    assert_eq!(super::session::sync_offset(&after), Some(3));
    feed(&mut s, C, &after, 2, &mut out);
    feed(&mut s, S, &[response(3, "200", true), response(5, "200", true)].concat(), 3, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].request_resource.as_deref(), Some("/three"));
    assert_eq!(out[1].request_resource.as_deref(), Some("/five"));
}

#[test]
fn oversized_header_frame_is_too_large() {
    let cfg = SessionConfig { max_message_bytes: 64, ..SessionConfig::default() };
    let mut s = Session::new(&cfg, Transport::Tcp);
    let mut out = Vec::new();
    let big = get_request(1, &"x".repeat(100));
    assert_eq!(s.parse(C, &big, 1, &mut out), Err(L7Error::TooLarge));
    // DATA of any size is never buffered.
    let mut s = Session::new(&cfg, Transport::Tcp);
    feed(&mut s, C, &get_request(1, "/"), 1, &mut out);
    let data = frame(parser::DATA, 0, 1, &[0; 1000]);
    assert_eq!(s.parse(C, &data[..500], 1, &mut out), Ok(500));
}

#[test]
fn too_many_streams_drop_the_oldest_as_timeout() {
    let cfg = SessionConfig { max_pending: 2, ..SessionConfig::default() };
    let mut s = Session::new(&cfg, Transport::Tcp);
    let mut out = Vec::new();
    let c = [get_request(1, "/1"), get_request(3, "/3"), get_request(5, "/5")].concat();
    feed(&mut s, C, &c, 1, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_resource.as_deref(), Some("/1"));
    assert_eq!(out[0].status, CallStatus::Timeout);
    assert_eq!((s.pending(), s.dropped()), (2, 1));
}

#[test]
fn expire_and_finish_give_timeouts() {
    let mut s = session();
    let mut out = Vec::new();
    feed(&mut s, C, &get_request(1, "/old"), 100, &mut out);
    feed(&mut s, C, &get_request(3, "/new"), 300, &mut out);
    s.expire(200, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_resource.as_deref(), Some("/old"));
    assert_eq!(out[0].status, CallStatus::Timeout);
    s.finish(400, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].status, CallStatus::Timeout);
    assert_eq!(s.pending(), 0);
}

#[test]
fn interim_response_is_not_final() {
    let mut s = session();
    let mut out = Vec::new();
    feed(&mut s, C, &get_request(1, "/"), 1, &mut out);
    feed(&mut s, S, &[response(1, "100", false), response(1, "200", true)].concat(), 2, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].response_code, Some(200));
}

#[test]
fn garbage_and_truncated_input_never_panic() {
    let mut x = 0xdead_beefu32;
    for round in 0..300 {
        let mut s = session();
        let mut out = Vec::new();
        let mut bytes = if round % 2 == 0 { client_bytes() } else { server_bytes() };
        let len = bytes.len();
        for _ in 0..(round % 7 + 1) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            bytes[x as usize % len] = (x >> 8) as u8;
        }
        let dir = if round % 3 == 0 { C } else { S };
        let cut = x as usize % (len + 1);
        let _ = s.parse(dir, &bytes[..cut], 1, &mut out);
        let _ = s.parse(dir, &bytes, 2, &mut out);
        s.on_gap(dir, x % 100);
        let _ = s.parse(dir, &bytes, 3, &mut out);
        s.finish(4, &mut out);
        assert_eq!(s.pending(), 0);
    }
}

#[test]
fn data_without_headers_gives_no_call() {
    let mut s = session();
    let mut out = Vec::new();
    feed(&mut s, C, &frame(parser::DATA, 1, 9, b"abc"), 1, &mut out);
    feed(&mut s, S, &frame(parser::DATA, 1, 9, b"abcdef"), 2, &mut out);
    s.finish(3, &mut out);
    assert!(out.is_empty());
    assert_eq!(s.pending(), 0);
}

#[test]
fn data_split_inside_counts_grpc_messages_once() {
    // The 5-byte prefixes straddle the pieces at every split point.
    let req = [PREFACE.to_vec(), grpc_request(1)].concat();
    for at in 0..=req.len() {
        let mut s = session();
        let mut out = Vec::new();
        feed_split(&mut s, C, &req, at, &mut out);
        feed(&mut s, S, &grpc_response(1, "0", ""), 3, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(attr(&out[0], "grpc.request_messages"), Some("2"), "split at {at}");
        assert_eq!(out[0].request_bytes, (req.len() - PREFACE.len()) as u64, "split at {at}");
        assert_eq!(out[0].status, CallStatus::Ok);
        assert_eq!(out[0].response_exception, None);
    }
}
