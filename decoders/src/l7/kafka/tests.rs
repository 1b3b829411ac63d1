//! Byte-array tests of the Kafka parser, probe and session. The hex
//! strings marked "corpus" are TCP payloads copied from DeepFlow's
//! `flow_generator/kafka/*` captures (fields checked by hand against the
//! protocol guide); the others are built here from the same layouts.

use super::parser::{self, ParseError};
use super::{probe, Session};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, Probe, SessionConfig, Transport};

use Direction::{ToClient, ToServer};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

// ---- corpus bytes -------------------------------------------------------

/// 18-api-versions-v3: ApiVersions v3 (flexible header), correlation 2,
/// client `adminclient-1`, software `apache-kafka-java` 3.0.0.
const API_VERSIONS_REQ: &str =
    "000000310012000300000002000d61646d696e636c69656e742d3100126170616368652d6b61666b612d6a61766106332e302e3000";
/// 00-produce-v2: Produce v2, correlation 1, `console-producer`, acks 1,
/// topic `topic2`.
const PRODUCE_V2_REQ: &str = "0000007500000002000000010010636f6e736f6c652d70726f64756365720001000005dc000000010006746f7069633200000001000000000000003d000000000000000000000031dfa8ca66010000000158741cd909ffffffff0000001b4d65737361676520776974686f757420636f6d7072657373696f6e";
/// Its response: topic2, partition 0, error 0.
const PRODUCE_V2_RESP: &str =
    "0000002e00000001000000010006746f70696332000000010000000000000000000000000000ffffffffffffffff00000000";
/// 01-fetch-v12-ok: Fetch v12 (flexible), correlation 15603, topic `zqy-test`.
const FETCH_V12_REQ: &str = "000000740001000c00003cf30020636f6e73756d65722d636f6e736f6c652d636f6e73756d65722d383931392d3100ffffffff000001f40000000103200000002f2671c50000342002097a71792d746573740200000000000000000000000000000024ffffffffffffffffffffffff001000000000010100";
/// Its response: header tags, throttle 0, error 0, session id, no topics.
const FETCH_V12_RESP: &str = "0000001100003cf3000000000000002f2671c50100";
/// 13-leave-group-v4: LeaveGroup v4, correlation 201, group `zzzz12`.
const LEAVE_GROUP_REQ: &str = "0000005e000d0004000000c90011636f6e73756d65722d7a7a7a7a31322d3100077a7a7a7a31320237636f6e73756d65722d7a7a7a7a31322d312d61383632336363382d353437322d343733362d383132652d643938313764323764666361000000";
/// mixed-with-unsupported: Fetch v13 (topic ids), correlation 15551976.
const FETCH_V13_REQ: &str = "000000480001000d00ed4de80020636f6e73756d65722d6672617564646574656374696f6e736572766963652d3100ffffffff000001f400000001032000000047011fe800000e6401010100";
const FETCH_V13_RESP: &str = "0000001100ed4de80000000000000047011fe80100";
/// mixed-with-unsupported: Heartbeat v4 and its response (error 0).
const HEARTBEAT_REQ: &str = "0000008d000c000400ed4dea0020636f6e73756d65722d6672617564646574656374696f6e736572766963652d3100166672617564646574656374696f6e736572766963650000000146636f6e73756d65722d6672617564646574656374696f6e736572766963652d312d33663666323435312d643139322d346434392d626233622d6634366564343962353761390000";
const HEARTBEAT_RESP: &str = "0000000c00ed4dea0000000000000000";

// ---- hand-built messages ------------------------------------------------

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(msg.len()).expect("small").to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

/// A request: header v1, or v2 (with an empty tag buffer) for flexible
/// versions.
fn request(key: i16, version: i16, corr: i32, client: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&key.to_be_bytes());
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(&corr.to_be_bytes());
    match client {
        Some(c) => {
            m.extend_from_slice(&i16::try_from(c.len()).expect("short").to_be_bytes());
            m.extend_from_slice(c.as_bytes());
        }
        None => m.extend_from_slice(&(-1i16).to_be_bytes()),
    }
    if parser::is_flexible(key, version) {
        m.push(0);
    }
    m.extend_from_slice(body);
    framed(&m)
}

/// A response with header v0 (`tags`: false) or v1.
fn response(corr: i32, tags: bool, body: &[u8]) -> Vec<u8> {
    let mut m = corr.to_be_bytes().to_vec();
    if tags {
        m.push(0);
    }
    m.extend_from_slice(body);
    framed(&m)
}

fn string(s: &str) -> Vec<u8> {
    let mut v = i16::try_from(s.len()).expect("short").to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn compact_string(s: &str) -> Vec<u8> {
    let mut v = vec![u8::try_from(s.len() + 1).expect("short")];
    v.extend_from_slice(s.as_bytes());
    v
}

/// Produce v3..=8 body: null transactional id, acks, timeout, one topic.
fn produce_body(acks: i16, topic: &str) -> Vec<u8> {
    let mut b = (-1i16).to_be_bytes().to_vec();
    b.extend_from_slice(&acks.to_be_bytes());
    b.extend_from_slice(&1500i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&string(topic));
    b.extend_from_slice(&[0, 0, 0, 0]); // no partitions
    b
}

/// Produce response v3..=8 body: one topic, one partition with `error`.
fn produce_resp_body(topic: &str, error: i16) -> Vec<u8> {
    let mut b = 1i32.to_be_bytes().to_vec();
    b.extend_from_slice(&string(topic));
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // partition index
    b.extend_from_slice(&error.to_be_bytes());
    b.extend_from_slice(&[0; 16]);
    b
}

fn session() -> Session {
    Session::new(&SessionConfig::default(), Transport::Tcp)
}

/// Feeds chunks the way the analyzer does: what `parse` leaves is offered
/// again with the next chunk of the same direction.
struct Feeder {
    carry: [Vec<u8>; 2],
}

impl Feeder {
    fn new() -> Self {
        Feeder { carry: [Vec::new(), Vec::new()] }
    }

    fn feed(&mut self, s: &mut Session, dir: Direction, bytes: &[u8], ts: i64) -> Result<Vec<Call>, L7Error> {
        let i = usize::from(dir == ToClient);
        self.carry[i].extend_from_slice(bytes);
        let mut out = Vec::new();
        let n = s.parse(dir, &self.carry[i], ts, &mut out)?;
        assert!(n <= self.carry[i].len());
        self.carry[i].drain(..n);
        Ok(out)
    }

    fn gap(&mut self, s: &mut Session, dir: Direction) {
        self.carry[usize::from(dir == ToClient)].clear();
        s.on_gap(dir, 100);
    }
}

fn attr<'a>(c: &'a Call, key: &str) -> Option<&'a str> {
    c.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn one(mut calls: Vec<Call>) -> Call {
    assert_eq!(calls.len(), 1, "{calls:#?}");
    calls.remove(0)
}

// ---- parser -------------------------------------------------------------

#[test]
fn parser_reads_header_v1_and_v2() {
    let b = hex(PRODUCE_V2_REQ);
    let h = parser::parse_request_header(&b[4..]).unwrap();
    assert_eq!((h.api_key, h.api_version, h.correlation_id), (0, 2, 1));
    assert_eq!(h.client_id, Some(&b"console-producer"[..]));
    assert_eq!(h.body, 10 + 16);
    let b = hex(API_VERSIONS_REQ);
    let h = parser::parse_request_header(&b[4..]).unwrap();
    assert_eq!((h.api_key, h.api_version, h.correlation_id), (18, 3, 2));
    assert_eq!(h.client_id, Some(&b"adminclient-1"[..]));
    // Header v2: one more byte, the empty tag buffer.
    assert_eq!(h.body, 10 + 13 + 1);
    assert_eq!(parser::parse_request_header(&b[4..10]), Err(ParseError::Truncated));
    let bad_version = request(0, 99, 1, None, &[]);
    assert_eq!(parser::parse_request_header(&bad_version[4..]), Err(ParseError::Invalid));
    let null_client = request(3, 1, 7, None, &[]);
    assert_eq!(parser::parse_request_header(&null_client[4..]).unwrap().client_id, None);
}

#[test]
fn parser_skips_tagged_fields() {
    // Header v2 with two tagged fields (tag 0 of 3 bytes, tag 5 of 0).
    let mut m = hex("0012000300000009ffff");
    m.extend_from_slice(&[2, 0, 3, 1, 2, 3, 5, 0]);
    m.push(0xaa);
    let h = parser::parse_request_header(&m).unwrap();
    assert_eq!(m[h.body], 0xaa);
    // A varint longer than 5 bytes is invalid.
    let mut r = parser::Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert_eq!(r.uvarint(), Err(ParseError::Invalid));
}

#[test]
fn parser_flexible_versions() {
    assert!(!parser::is_flexible(0, 8));
    assert!(parser::is_flexible(0, 9));
    assert!(!parser::is_flexible(1, 11));
    assert!(parser::is_flexible(1, 12));
    assert!(parser::is_flexible(18, 3));
    assert!(!parser::is_flexible(17, 1));
    assert!(parser::is_flexible(60, 0));
}

#[test]
fn parser_produce_topic_in_each_layout() {
    // v2: no transactional id.
    let b = hex(PRODUCE_V2_REQ);
    let h = parser::parse_request_header(&b[4..]).unwrap();
    let p = parser::parse_produce(&b[4 + h.body..], 2).unwrap();
    assert_eq!((p.acks, p.topic), (1, Some(&b"topic2"[..])));
    // v3..=8: nullable transactional id first.
    let mut body = string("txn-1");
    body.extend_from_slice(&produce_body(-1, "orders")[2..]);
    let p = parser::parse_produce(&body, 7).unwrap();
    assert_eq!((p.acks, p.topic), (-1, Some(&b"orders"[..])));
    // v9: compact nullable transactional id, compact array and string.
    let mut body = vec![0]; // null
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&1500i32.to_be_bytes());
    body.push(2); // one topic
    body.extend_from_slice(&compact_string("logs"));
    let p = parser::parse_produce(&body, 9).unwrap();
    assert_eq!((p.acks, p.topic), (0, Some(&b"logs"[..])));
    // Cut before the topic: acks still read.
    let p = parser::parse_produce(&body[..5], 9).unwrap();
    assert_eq!((p.acks, p.topic), (0, None));
}

#[test]
fn parser_fetch_topic_by_version() {
    let b = hex(FETCH_V12_REQ);
    let h = parser::parse_request_header(&b[4..]).unwrap();
    assert_eq!(parser::parse_fetch_topic(&b[4 + h.body..], 12), Ok(Some(&b"zqy-test"[..])));
    let b = hex(FETCH_V13_REQ);
    let h = parser::parse_request_header(&b[4..]).unwrap();
    assert_eq!(parser::parse_fetch_topic(&b[4 + h.body..], 13), Ok(None));
    // v4: replica, max wait, min bytes, max bytes, isolation, topics.
    let mut body = vec![0xff; 4];
    body.extend_from_slice(&[0; 13]);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&string("t4"));
    assert_eq!(parser::parse_fetch_topic(&body, 4), Ok(Some(&b"t4"[..])));
    assert_eq!(parser::parse_fetch_topic(&body[..10], 4), Err(ParseError::Truncated));
}

#[test]
fn parser_response_error_codes() {
    let b = hex(PRODUCE_V2_RESP);
    assert_eq!(parser::response_body_offset(&b[4..], 0, 2), Ok(4));
    assert_eq!(parser::parse_response_error(&b[8..], 0, 2), Ok(Some(0)));
    let b = hex(FETCH_V12_RESP);
    // Header v1: correlation id and a tag buffer.
    assert_eq!(parser::response_body_offset(&b[4..], 1, 12), Ok(5));
    assert_eq!(parser::parse_response_error(&b[9..], 1, 12), Ok(Some(0)));
    // ApiVersions keeps response header v0 even at v3.
    assert_eq!(parser::response_body_offset(&[0, 0, 0, 2, 0, 35], 18, 3), Ok(4));
    assert_eq!(parser::parse_response_error(&[0, 35], 18, 3), Ok(Some(35)));
    // APIs without a known place: no code.
    assert_eq!(parser::parse_response_error(&[0; 8], 3, 9), Ok(None));
    assert_eq!(parser::parse_response_error(&[0], 12, 4), Err(ParseError::Truncated));
}

#[test]
fn parser_names() {
    assert_eq!(parser::api_name(0), Some("Produce"));
    assert_eq!(parser::api_name(18), Some("ApiVersions"));
    assert_eq!(parser::api_name(75), None);
    assert_eq!(parser::error_name(-1), Some("UNKNOWN_SERVER_ERROR"));
    assert_eq!(parser::error_name(3), Some("UNKNOWN_TOPIC_OR_PARTITION"));
    assert_eq!(parser::error_name(35), Some("UNSUPPORTED_VERSION"));
    assert_eq!(parser::error_name(100), Some("UNKNOWN_TOPIC_ID"));
    assert_eq!(parser::error_name(5120), None);
    assert_eq!(parser::error_name(-2), None);
}

// ---- probe --------------------------------------------------------------

/// The opening bytes of every protocol flowtrail probes, and others.
fn openers() -> Vec<(&'static str, Direction, Vec<u8>)> {
    let mut v: Vec<(&'static str, Direction, Vec<u8>)> = vec![
        ("http request", ToServer, b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n".to_vec()),
        ("http post", ToServer, b"POST /api HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}".to_vec()),
        ("http response", ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("tls client hello", ToServer, hex(&format!("16030100400100003c0303{}", "ab".repeat(32)))),
        ("tls server hello", ToClient, hex(&format!("160303004a020000460303{}", "5f".repeat(32)))),
        ("dns over tcp query", ToServer, hex("001d123401000001000000000000076578616d706c650474657374000001000100")),
        ("dns over tcp response", ToClient, hex("002d12348180000100010000000007657861")),
        ("http2 preface", ToServer, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("http2 settings", ToClient, hex("000012040000000000000300000064000400100000000600004000")),
        ("mysql greeting", ToClient, hex("4a0000000a382e302e3332000d000000")),
        ("postgres startup", ToServer, hex("00000029000300007573657200706f7374677265730064617461626173650064620000")),
        ("postgres sslrequest", ToServer, hex("0000000804d2162f")),
        ("redis ping", ToServer, b"*1\r\n$4\r\nPING\r\n".to_vec()),
        ("mqtt connect", ToServer, hex("101a00044d5154540402003c000e6d7174745f6561663961306339")),
        ("mqtt connack", ToClient, hex("20020000")),
        ("ssh client", ToServer, b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()),
        ("ssh server", ToClient, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n".to_vec()),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..64 {
        let mut r = Vec::new();
        for _ in 0..48 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            r.push(x as u8);
        }
        v.push(("random", ToServer, r.clone()));
        v.push(("random", ToClient, r));
    }
    v
}

#[test]
fn probe_matches_kafka_requests() {
    for m in [API_VERSIONS_REQ, PRODUCE_V2_REQ, FETCH_V12_REQ, LEAVE_GROUP_REQ, FETCH_V13_REQ, HEARTBEAT_REQ] {
        let b = hex(m);
        assert_eq!(probe(&b, ToServer, Transport::Tcp), Probe::Match, "{m}");
        // Either direction: the analyzer's client guess can be wrong.
        assert_eq!(probe(&b, ToClient, Transport::Tcp), Probe::Match, "{m}");
        assert_eq!(probe(&b, ToServer, Transport::Udp), Probe::NoMatch);
    }
    let b = hex(API_VERSIONS_REQ);
    for n in 0..12 {
        assert_eq!(probe(&b[..n], ToServer, Transport::Tcp), Probe::NeedMore, "{n} bytes");
    }
    // Inside the client id: more is needed, then it matches.
    assert_eq!(probe(&b[..20], ToServer, Transport::Tcp), Probe::NeedMore);
    assert_eq!(probe(&b[..27], ToServer, Transport::Tcp), Probe::Match);
}

#[test]
fn probe_rejects_other_protocols() {
    for (name, dir, bytes) in openers() {
        if name == "kafka" {
            continue;
        }
        assert_ne!(probe(&bytes, dir, Transport::Tcp), Probe::Match, "{name}: {bytes:02x?}");
        // Whole openers of other protocols are rejected outright, not kept
        // waiting for more (random bytes may still ask for more).
        if name != "random" {
            assert_eq!(probe(&bytes, dir, Transport::Tcp), Probe::NoMatch, "{name}");
        }
    }
}

#[test]
fn probe_rejects_bad_headers() {
    // API key 75+ (unknown to the probe), negative correlation, version 31.
    for m in [request(75, 0, 1, Some("c"), &[]), request(3, 31, 1, Some("c"), &[]), request(3, 1, -5, Some("c"), &[])] {
        assert_eq!(probe(&m, ToServer, Transport::Tcp), Probe::NoMatch, "{m:02x?}");
    }
    // A client id longer than the message, or with control bytes.
    let mut m = request(3, 1, 1, Some("abc"), &[]);
    m[3] = 12;
    assert_eq!(probe(&m, ToServer, Transport::Tcp), Probe::NoMatch);
    let m = request(3, 1, 1, Some("a\u{1}c"), &[]);
    assert_eq!(probe(&m, ToServer, Transport::Tcp), Probe::NoMatch);
    // Sizes: under a header, over 16 MiB.
    assert_eq!(probe(&hex("00000009000300010000000100"), ToServer, Transport::Tcp), Probe::NoMatch);
    assert_eq!(probe(&hex("01000001000300010000000100"), ToServer, Transport::Tcp), Probe::NoMatch);
}

// ---- session ------------------------------------------------------------

#[test]
fn produce_v2_call_from_corpus() {
    let mut s = session();
    let mut f = Feeder::new();
    assert!(f.feed(&mut s, ToServer, &hex(PRODUCE_V2_REQ), 10).unwrap().is_empty());
    assert_eq!(s.pending(), 1);
    let c = one(f.feed(&mut s, ToClient, &hex(PRODUCE_V2_RESP), 20).unwrap());
    assert_eq!(c.request_type.as_deref(), Some("Produce"));
    assert_eq!(c.request_resource.as_deref(), Some("topic2"));
    assert_eq!(c.request_domain, None);
    assert_eq!(c.version.as_deref(), Some("2"));
    assert_eq!((c.response_code, c.status, c.response_exception.as_deref()), (Some(0), CallStatus::Ok, None));
    assert_eq!((c.request_ts, c.response_first_ts, c.response_end_ts), (Some(10), Some(20), Some(20)));
    // DeepFlow: captured_request_byte 121, captured_response_byte 50.
    assert_eq!((c.request_bytes, c.response_bytes), (121, 50));
    assert_eq!(
        c.attributes,
        [
            ("kafka.acks".to_owned(), "1".to_owned()),
            ("kafka.client_id".to_owned(), "console-producer".to_owned()),
            ("kafka.correlation_id".to_owned(), "1".to_owned()),
        ]
    );
    assert_eq!(s.pending(), 0);
}

#[test]
fn fetch_and_group_calls_from_corpus() {
    let mut s = session();
    let mut f = Feeder::new();
    f.feed(&mut s, ToServer, &hex(FETCH_V12_REQ), 1).unwrap();
    let c = one(f.feed(&mut s, ToClient, &hex(FETCH_V12_RESP), 2).unwrap());
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("Fetch"), Some("zqy-test")));
    assert_eq!((c.response_code, c.status), (Some(0), CallStatus::Ok));
    assert_eq!(attr(&c, "kafka.correlation_id"), Some("15603"));

    f.feed(&mut s, ToServer, &hex(FETCH_V13_REQ), 3).unwrap();
    let c = one(f.feed(&mut s, ToClient, &hex(FETCH_V13_RESP), 4).unwrap());
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("Fetch"), None));
    assert_eq!(c.version.as_deref(), Some("13"));

    f.feed(&mut s, ToServer, &hex(HEARTBEAT_REQ), 5).unwrap();
    let c = one(f.feed(&mut s, ToClient, &hex(HEARTBEAT_RESP), 6).unwrap());
    assert_eq!(
        (c.request_type.as_deref(), c.request_resource.as_deref()),
        (Some("Heartbeat"), Some("frauddetectionservice"))
    );
    assert_eq!((c.response_code, c.status), (Some(0), CallStatus::Ok));

    let c = one(f
        .feed(&mut s, ToServer, &hex(LEAVE_GROUP_REQ), 7)
        .unwrap()
        .into_iter()
        .chain(f.feed(&mut s, ToClient, &response(201, true, &[0, 0, 0, 0, 0, 0x1b, 1, 0]), 8).unwrap())
        .collect());
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("LeaveGroup"), Some("zzzz12")));
    assert_eq!((c.response_code, c.status), (Some(27), CallStatus::ClientError));
    assert_eq!(c.response_exception.as_deref(), Some("REBALANCE_IN_PROGRESS"));
}

#[test]
fn api_versions_error_and_unknown_api() {
    let mut s = session();
    let mut f = Feeder::new();
    f.feed(&mut s, ToServer, &hex(API_VERSIONS_REQ), 1).unwrap();
    // UNSUPPORTED_VERSION, response header v0 despite v3.
    let c = one(f.feed(&mut s, ToClient, &response(2, false, &[0, 35, 1, 0, 0, 0, 0, 0]), 2).unwrap());
    assert_eq!((c.request_type.as_deref(), c.version.as_deref()), (Some("ApiVersions"), Some("3")));
    assert_eq!((c.response_code, c.status), (Some(35), CallStatus::ClientError));
    assert_eq!(c.response_exception.as_deref(), Some("UNSUPPORTED_VERSION"));
    // An API newer than this decoder: named by number, no code read.
    f.feed(&mut s, ToServer, &request(90, 0, 3, Some("x"), &[1, 2, 3]), 3).unwrap();
    let c = one(f.feed(&mut s, ToClient, &response(3, true, &[0, 0, 0, 0, 0, 9]), 4).unwrap());
    assert_eq!(c.request_type.as_deref(), Some("api_90"));
    assert_eq!((c.response_code, c.status), (None, CallStatus::Ok));
}

#[test]
fn error_codes_map_to_status() {
    let cases: [(i16, CallStatus, &str); 6] = [
        (3, CallStatus::ClientError, "UNKNOWN_TOPIC_OR_PARTITION"),
        (29, CallStatus::ClientError, "TOPIC_AUTHORIZATION_FAILED"),
        (6, CallStatus::ServerError, "NOT_LEADER_OR_FOLLOWER"),
        (-1, CallStatus::ServerError, "UNKNOWN_SERVER_ERROR"),
        (56, CallStatus::ServerError, "KAFKA_STORAGE_ERROR"),
        (5120, CallStatus::ServerError, "ERROR_5120"),
    ];
    for (i, (code, status, name)) in cases.into_iter().enumerate() {
        let mut s = session();
        let mut f = Feeder::new();
        let corr = i32::try_from(i).unwrap();
        f.feed(&mut s, ToServer, &request(0, 7, corr, Some("p"), &produce_body(1, "t")), 1).unwrap();
        let c = one(f.feed(&mut s, ToClient, &response(corr, false, &produce_resp_body("t", code)), 2).unwrap());
        assert_eq!((c.response_code, c.status), (Some(i32::from(code)), status), "{code}");
        assert_eq!(c.response_exception.as_deref(), Some(name));
    }
}

#[test]
fn fetch_v12_unknown_error_from_corpus() {
    // 01-fetch-v12-unknown: the response's error code field holds 0x1400.
    let mut s = session();
    let mut f = Feeder::new();
    let req = request(
        1,
        12,
        20,
        Some("consumer-console-consumer-84107-1"),
        &hex("ffffffff000001f40000000103200000002f2671c5000000000101"),
    );
    f.feed(&mut s, ToServer, &req, 1).unwrap();
    let c = one(f.feed(&mut s, ToClient, &hex("000000110000001400000000001400029d2b8e0100"), 2).unwrap());
    assert_eq!((c.response_code, c.status), (Some(5120), CallStatus::ServerError));
}

#[test]
fn acks_zero_produce_is_a_call_at_once() {
    let mut s = session();
    let mut f = Feeder::new();
    let c = one(f.feed(&mut s, ToServer, &request(0, 7, 4, Some("p"), &produce_body(0, "fire")), 5).unwrap());
    assert_eq!((c.request_type.as_deref(), c.request_resource.as_deref()), (Some("Produce"), Some("fire")));
    assert_eq!((c.status, c.response_code, c.response_first_ts), (CallStatus::Ok, None, None));
    assert_eq!(attr(&c, "kafka.acks"), Some("0"));
    assert_eq!(s.pending(), 0);
}

#[test]
fn split_at_every_byte_boundary() {
    let req = hex(FETCH_V12_REQ);
    let resp = hex(FETCH_V12_RESP);
    let whole = {
        let mut s = session();
        let mut f = Feeder::new();
        f.feed(&mut s, ToServer, &req, 1).unwrap();
        one(f.feed(&mut s, ToClient, &resp, 2).unwrap())
    };
    for cut in 1..req.len() {
        let mut s = session();
        let mut f = Feeder::new();
        assert!(f.feed(&mut s, ToServer, &req[..cut], 1).unwrap().is_empty(), "cut {cut}");
        assert!(f.feed(&mut s, ToServer, &req[cut..], 1).unwrap().is_empty(), "cut {cut}");
        assert_eq!(one(f.feed(&mut s, ToClient, &resp, 2).unwrap()), whole, "request cut at {cut}");
    }
    for cut in 1..resp.len() {
        let mut s = session();
        let mut f = Feeder::new();
        f.feed(&mut s, ToServer, &req, 1).unwrap();
        assert!(f.feed(&mut s, ToClient, &resp[..cut], 2).unwrap().is_empty(), "cut {cut}");
        let c = one(f.feed(&mut s, ToClient, &resp[cut..], 3).unwrap());
        // First byte at 2, last at 3.
        assert_eq!((c.response_first_ts, c.response_end_ts), (Some(2), Some(3)));
        assert_eq!(Call { response_end_ts: Some(2), ..c }, whole, "response cut at {cut}");
    }
}

#[test]
fn pipelined_requests_pair_by_correlation_id() {
    let mut s = session();
    let mut f = Feeder::new();
    let mut reqs = Vec::new();
    for (corr, topic) in [(10, "a"), (11, "b"), (12, "c")] {
        reqs.extend(request(0, 7, corr, Some("p"), &produce_body(1, topic)));
    }
    assert!(f.feed(&mut s, ToServer, &reqs, 1).unwrap().is_empty());
    assert_eq!(s.pending(), 3);
    let mut resps = Vec::new();
    for (corr, topic, err) in [(10, "a", 0), (11, "b", 3), (12, "c", 0)] {
        resps.extend(response(corr, false, &produce_resp_body(topic, err)));
    }
    let calls = f.feed(&mut s, ToClient, &resps, 2).unwrap();
    let got: Vec<_> =
        calls.iter().map(|c| (c.request_resource.as_deref().unwrap(), c.response_code.unwrap())).collect();
    assert_eq!(got, [("a", 0), ("b", 3), ("c", 0)]);
}

#[test]
fn skipped_response_times_out_the_older_requests() {
    let mut s = session();
    let mut f = Feeder::new();
    let mut reqs = request(3, 1, 1, Some("c"), &[0, 0, 0, 0]);
    reqs.extend(request(3, 1, 2, Some("c"), &[0, 0, 0, 0]));
    f.feed(&mut s, ToServer, &reqs, 1).unwrap();
    let calls = f.feed(&mut s, ToClient, &response(2, false, &[0; 8]), 2).unwrap();
    let got: Vec<_> = calls.iter().map(|c| (attr(c, "kafka.correlation_id").unwrap(), c.status)).collect();
    assert_eq!(got, [("1", CallStatus::Timeout), ("2", CallStatus::Ok)]);
}

#[test]
fn response_without_request_is_unparsed() {
    let mut s = session();
    let mut f = Feeder::new();
    // The session learns the request direction from the first bytes.
    f.feed(&mut s, ToServer, &request(18, 0, 1, Some("c"), &[]), 1).unwrap();
    let calls = f.feed(&mut s, ToClient, &response(99, false, &[0, 0]), 2).unwrap();
    let c = calls.last().unwrap().clone();
    assert_eq!((c.request_type.as_deref(), c.request_ts, c.status), (None, None, CallStatus::Unparsed));
    assert_eq!(attr(&c, "kafka.correlation_id"), Some("99"));
    assert_eq!(c.response_bytes, 10);
}

#[test]
fn requests_may_travel_to_client() {
    // The analyzer took the broker for the client: requests come ToClient.
    let mut s = session();
    let mut f = Feeder::new();
    f.feed(&mut s, ToClient, &hex(PRODUCE_V2_REQ), 1).unwrap();
    let c = one(f.feed(&mut s, ToServer, &hex(PRODUCE_V2_RESP), 2).unwrap());
    assert_eq!((c.request_type.as_deref(), c.response_code), (Some("Produce"), Some(0)));
}

#[test]
fn large_messages_are_decoded_from_their_head() {
    let cfg = SessionConfig { max_message_bytes: 1024, ..SessionConfig::default() };
    let mut s = Session::new(&cfg, Transport::Tcp);
    let mut f = Feeder::new();
    let mut body = produce_body(1, "big");
    body.extend(vec![0x55; 100_000]);
    let req = request(0, 7, 1, Some("p"), &body);
    for (i, chunk) in req.chunks(1460).enumerate() {
        assert!(f.feed(&mut s, ToServer, chunk, i as i64).unwrap().is_empty());
        assert!(f.carry[0].len() < 8192, "no more than a head is kept");
    }
    assert_eq!(s.pending(), 1);
    let mut rbody = produce_resp_body("big", 0);
    rbody.extend(vec![0x66; 50_000]);
    let resp = response(1, false, &rbody);
    let mut calls = Vec::new();
    for (i, chunk) in resp.chunks(1460).enumerate() {
        calls.extend(f.feed(&mut s, ToClient, chunk, 1000 + i as i64).unwrap());
    }
    let c = one(calls);
    assert_eq!(c.request_resource.as_deref(), Some("big"));
    assert_eq!((c.request_bytes, c.response_bytes), (req.len() as u64, resp.len() as u64));
    let last = 1000 + (resp.len() / 1460) as i64;
    assert_eq!((c.response_first_ts, c.response_end_ts), (Some(1000), Some(last)));
    // Framing goes on after the skipped bodies.
    f.feed(&mut s, ToServer, &hex(API_VERSIONS_REQ), 5000).unwrap();
    let c = one(f.feed(&mut s, ToClient, &response(2, false, &[0, 0]), 5001).unwrap());
    assert_eq!(c.request_type.as_deref(), Some("ApiVersions"));
}

#[test]
fn bad_sizes_and_headers_end_the_direction() {
    let mut s = session();
    let mut out = Vec::new();
    assert_eq!(s.parse(ToServer, &hex("7fffffff0003"), 1, &mut out), Err(L7Error::Malformed("kafka_bad_size")));
    let mut s = session();
    assert_eq!(s.parse(ToServer, &hex("00000004aabbccdd"), 1, &mut out), Err(L7Error::Malformed("kafka_bad_size")));
    let mut s = session();
    let bad = request(-3, 0, 1, Some("x"), &[]);
    assert_eq!(s.parse(ToServer, &bad, 1, &mut out), Err(L7Error::Malformed("kafka_bad_header")));
    assert_eq!(s.malformed(), 1);
    assert!(out.is_empty());
}

#[test]
fn too_many_pending_turns_oldest_into_timeout() {
    let cfg = SessionConfig { max_pending: 2, ..SessionConfig::default() };
    let mut s = Session::new(&cfg, Transport::Tcp);
    let mut f = Feeder::new();
    let mut out = Vec::new();
    for corr in 0..5 {
        out.extend(f.feed(&mut s, ToServer, &request(12, 4, corr, Some("c"), &[0]), i64::from(corr)).unwrap());
    }
    let ids: Vec<_> = out.iter().map(|c| (attr(c, "kafka.correlation_id").unwrap(), c.status)).collect();
    assert_eq!(ids, [("0", CallStatus::Timeout), ("1", CallStatus::Timeout), ("2", CallStatus::Timeout)]);
    assert_eq!(s.pending(), 2);
}

#[test]
fn expire_and_finish_time_out_waiting_requests() {
    let mut s = session();
    let mut f = Feeder::new();
    f.feed(&mut s, ToServer, &request(3, 1, 1, Some("c"), &[0, 0, 0, 0]), 100).unwrap();
    f.feed(&mut s, ToServer, &request(3, 1, 2, Some("c"), &[0, 0, 0, 0]), 200).unwrap();
    let mut out = Vec::new();
    s.expire(150, &mut out);
    let c = one(out);
    assert_eq!((c.status, attr(&c, "kafka.correlation_id")), (CallStatus::Timeout, Some("1")));
    assert_eq!(c.request_type.as_deref(), Some("Metadata"));
    let mut out = Vec::new();
    s.finish(300, &mut out);
    assert_eq!(one(out).status, CallStatus::Timeout);
    assert_eq!(s.pending(), 0);
}

#[test]
fn gap_then_resync_on_both_directions() {
    let mut s = session();
    let mut f = Feeder::new();
    let r1 = request(3, 1, 1, Some("c"), &[0, 0, 0, 0]);
    let r2 = request(3, 1, 2, Some("c"), &[0, 0, 0, 0]);
    let r3 = request(0, 7, 3, Some("c"), &produce_body(1, "after-gap"));
    f.feed(&mut s, ToServer, &r1, 1).unwrap();
    f.feed(&mut s, ToServer, &r2[..7], 2).unwrap();
    f.gap(&mut s, ToServer);
    // The tail of r2 (its start lost), then r3.
    let mut next = r2[9..].to_vec();
    next.extend_from_slice(&r3);
    assert!(f.feed(&mut s, ToServer, &next, 3).unwrap().is_empty());
    assert_eq!(s.pending(), 2);
    // Responses: the first one's start is lost too.
    let p1 = response(1, false, &[0; 8]);
    let p3 = response(3, false, &produce_resp_body("after-gap", 0));
    f.feed(&mut s, ToClient, &p1[..3], 4).unwrap();
    f.gap(&mut s, ToClient);
    let mut next = p1[6..].to_vec();
    next.extend_from_slice(&p3);
    let calls = f.feed(&mut s, ToClient, &next, 5).unwrap();
    let got: Vec<_> = calls.iter().map(|c| (attr(c, "kafka.correlation_id").unwrap(), c.status)).collect();
    assert_eq!(got, [("1", CallStatus::Timeout), ("3", CallStatus::Ok)]);
    assert_eq!(calls[1].request_resource.as_deref(), Some("after-gap"));
}

#[test]
fn gap_inside_a_skipped_body_ends_its_call() {
    let cfg = SessionConfig { max_message_bytes: 1024, ..SessionConfig::default() };
    let mut s = Session::new(&cfg, Transport::Tcp);
    let mut f = Feeder::new();
    f.feed(&mut s, ToServer, &request(0, 7, 1, Some("p"), &produce_body(1, "t")), 1).unwrap();
    let mut body = produce_resp_body("t", 0);
    body.extend(vec![0; 20_000]);
    let resp = response(1, false, &body);
    assert!(f.feed(&mut s, ToClient, &resp[..5000], 2).unwrap().is_empty());
    f.gap(&mut s, ToClient);
    let c = one(f.feed(&mut s, ToClient, &resp[..0], 3).unwrap());
    assert_eq!((c.response_code, c.response_end_ts), (Some(0), Some(2)));
}

#[test]
fn truncated_and_garbage_input_never_panics() {
    let corpus: Vec<Vec<u8>> = [
        API_VERSIONS_REQ,
        PRODUCE_V2_REQ,
        PRODUCE_V2_RESP,
        FETCH_V12_REQ,
        FETCH_V12_RESP,
        FETCH_V13_REQ,
        HEARTBEAT_REQ,
        LEAVE_GROUP_REQ,
    ]
    .iter()
    .map(|h| hex(h))
    .collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..3000 {
        let mut m = corpus[(next() % corpus.len() as u64) as usize].clone();
        for _ in 0..(next() % 6) {
            let i = (next() % m.len() as u64) as usize;
            m[i] = next() as u8;
        }
        if round % 3 == 0 {
            m.truncate((next() % m.len() as u64) as usize);
        }
        let mut s = session();
        let mut f = Feeder::new();
        let cut = (next() % (m.len() as u64 + 1)) as usize;
        let dir = if round % 2 == 0 { ToServer } else { ToClient };
        let _ = f.feed(&mut s, ToServer, &hex(PRODUCE_V2_REQ), 0);
        if f.feed(&mut s, dir, &m[..cut], 1).is_ok() {
            let _ = f.feed(&mut s, dir, &m[cut..], 2);
        }
        if round % 5 == 0 {
            f.gap(&mut s, dir);
            let _ = f.feed(&mut s, dir, &m, 3);
        }
        let _ = parser::parse_request_header(&m);
        for key in [0, 1, 3, 8, 9, 11, 18] {
            for v in [0, 2, 7, 9, 12, 13] {
                let _ = parser::parse_response_error(&m, key, v);
                let _ = parser::parse_group_id(&m, key, v);
            }
        }
        let _ = parser::parse_produce(&m, 9);
        let _ = parser::parse_fetch_topic(&m, 12);
        let _ = parser::parse_metadata_topic(&m, 10);
        let _ = probe(&m, dir, Transport::Tcp);
        let mut out = Vec::new();
        s.finish(9, &mut out);
    }
}
