//! Byte-array tests of the MQTT parser, probe and session. The hex
//! strings marked "corpus" are TCP payloads copied from DeepFlow's
//! `flow_generator/mqtt/*` captures and Zeek's `Traces/mqtt.pcap` (fields
//! checked against tshark's MQTT dissector); the others are built here
//! from the layouts of MQTT 3.1.1 and 5.0.

use super::parser::{self, PacketType, ParseError};
use super::{probe, Session};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, Probe, SessionConfig, Transport};

use Direction::{ToClient, ToServer};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

// ---- corpus bytes -------------------------------------------------------

/// mqtt_roundtrip, in order: (direction, payload).
const ROUNDTRIP: [(Direction, &str); 18] = [
    (ToServer, "101a00044d5154540402000a000e6d717474785f6561663961306339"), // CONNECT mqttx_eaf9a0c9
    (ToClient, "20020000"),                                                 // CONNACK 0
    (ToServer, "820e3075000974657374746f70696300"),                         // SUBSCRIBE 12405 testtopic
    (ToClient, "9003307500"),                                               // SUBACK 0
    (ToServer, "a20d3076000974657374746f706963"),                           // UNSUBSCRIBE 12406
    (ToClient, "b0023076"),                                                 // UNSUBACK
    (ToServer, "c000"),                                                     // PINGREQ
    (ToClient, "d000"),                                                     // PINGRESP
    (ToServer, "822f3077000779756e7368616e01000e64656570666c6f772d6167656e7401000f64656570666c6f772d73657276657201"), // SUBSCRIBE 3 filters
    (ToClient, "90053077010101"), // SUBACK 1 1 1
    (ToServer, "3021000e64656570666c6f772d6167656e747275737420e7899be980bc0d0a0d0a0d0a"), // PUBLISH QoS 0
    (ToServer, "3223000e64656570666c6f772d6167656e7430787275737420e7899be980bc0d0a0d0a0d0a"), // QoS 1, id 12408
    (ToClient, "40023078"),       // PUBACK
    (ToServer, "3423000e64656570666c6f772d6167656e7430797275737420e7899be980bc0d0a0d0a0d0a"), // QoS 2, id 12409
    (ToClient, "50023079"),       // PUBREC
    (ToServer, "62023079"),       // PUBREL
    (ToClient, "70023079"),       // PUBCOMP
    (ToServer, "e000"),           // DISCONNECT
];

/// Zeek mqtt.pcap: an MQTT 3.1 CONNECT (`MQIsdp`, level 3).
const ZEEK_CONNECT_31: &str = "102500064d51497364700302000500177061686f2f333441414535344137354438333935363645";
/// mqtt_one_packet_multi_publish: ten QoS 1 PUBLISHes in one segment.
const MULTI_PUBLISH: &str = "3311000d68656c6c6f2f302f776f726c6400023312000d68656c6c6f2f312f776f726c640003013313000d68656c6c6f2f322f776f726c64000401013314000d68656c6c6f2f332f776f726c6400050101013315000d68656c6c6f2f342f776f726c640006010101013316000d68656c6c6f2f352f776f726c64000701010101013317000d68656c6c6f2f362f776f726c6400080101010101013318000d68656c6c6f2f372f776f726c640009010101010101013319000d68656c6c6f2f382f776f726c64000a0101010101010101331a000d68656c6c6f2f392f776f726c64000b010101010101010101";

// ---- hand-built packets -------------------------------------------------

fn varint(mut n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        v.push(b);
        if n == 0 {
            return v;
        }
    }
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    v.extend(varint(body.len()));
    v.extend_from_slice(body);
    v
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(s.len()).expect("short").to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// CONNECT of `level` with a client id, optional will, username and
/// password; MQTT 5 gets a 5-byte properties block (Session Expiry).
fn connect(level: u8, client: &str, will: bool, user: Option<&str>, password: Option<&str>) -> Vec<u8> {
    let mut b = string(if level == 3 { b"MQIsdp" } else { b"MQTT" });
    b.push(level);
    let mut flags = 0x02;
    if will {
        flags |= 0x04;
    }
    if user.is_some() {
        flags |= 0x80;
    }
    if password.is_some() {
        flags |= 0x40;
    }
    b.push(flags);
    b.extend_from_slice(&60u16.to_be_bytes());
    if level == 5 {
        b.extend_from_slice(&[5, 0x11, 0, 0, 0, 10]);
    }
    b.extend(string(client.as_bytes()));
    if will {
        if level == 5 {
            b.push(0);
        }
        b.extend(string(b"last/will"));
        b.extend(string(b"bye"));
    }
    if let Some(u) = user {
        b.extend(string(u.as_bytes()));
    }
    if let Some(p) = password {
        b.extend(string(p.as_bytes()));
    }
    packet(0x10, &b)
}

fn publish(qos: u8, topic: &str, id: u16, payload: &[u8], v5: bool) -> Vec<u8> {
    let mut b = string(topic.as_bytes());
    if qos > 0 {
        b.extend_from_slice(&id.to_be_bytes());
    }
    if v5 {
        b.extend_from_slice(&[2, 0x01, 1]); // Payload Format Indicator
    }
    b.extend_from_slice(payload);
    packet(0x30 | (qos << 1), &b)
}

/// PUBACK/PUBREC/PUBREL/PUBCOMP; `code` adds an MQTT 5 reason code.
fn ack(first: u8, id: u16, code: Option<u8>) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    if let Some(c) = code {
        b.push(c);
        b.push(0);
    }
    packet(first, &b)
}

fn subscribe(id: u16, filters: &[&str], v5: bool) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    if v5 {
        b.push(0);
    }
    for f in filters {
        b.extend(string(f.as_bytes()));
        b.push(1);
    }
    packet(0x82, &b)
}

fn suback(id: u16, codes: &[u8], v5: bool) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    if v5 {
        b.push(0);
    }
    b.extend_from_slice(codes);
    packet(0x90, &b)
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

fn assert_sorted(c: &Call) {
    assert!(c.attributes.windows(2).all(|w| w[0].0 < w[1].0), "{:?}", c.attributes);
}

// ---- parser -------------------------------------------------------------

#[test]
fn parser_fixed_header_and_remaining_length() {
    let h = parser::parse_fixed_header(&[0x30, 0x00]).unwrap();
    assert_eq!((h.kind, h.header_len, h.remaining, h.qos()), (PacketType::Publish, 2, 0, 0));
    // 5.0 §1.5.5 examples: 127, 128, 16 383, 16 384, 268 435 455.
    for (bytes, v) in [
        (&[0x7f][..], 127),
        (&[0x80, 0x01][..], 128),
        (&[0xff, 0x7f][..], 16_383),
        (&[0x80, 0x80, 0x01][..], 16_384),
        (&[0xff, 0xff, 0xff, 0x7f][..], parser::MAX_REMAINING),
    ] {
        let mut b = vec![0x34];
        b.extend_from_slice(bytes);
        let h = parser::parse_fixed_header(&b).unwrap();
        assert_eq!((h.remaining, h.header_len, h.qos()), (v, 1 + bytes.len(), 2));
    }
    assert_eq!(parser::parse_fixed_header(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), Err(ParseError::Invalid));
    assert_eq!(parser::parse_fixed_header(&[0x30, 0x80]), Err(ParseError::Truncated));
    assert_eq!(parser::parse_fixed_header(&[]), Err(ParseError::Truncated));
    // Reserved type 0, QoS 3, and flags the type forbids.
    for first in [0x00, 0x36, 0x11, 0x80, 0x60, 0xa0, 0xc1, 0x16, 0x17] {
        assert_eq!(parser::parse_fixed_header(&[first, 0]), Err(ParseError::Invalid), "{first:#x}");
    }
}

#[test]
fn parser_connect_in_three_versions() {
    let b = hex(ROUNDTRIP[0].1);
    let c = parser::parse_connect(&b[2..]).unwrap();
    assert_eq!((c.protocol_name, c.level, c.keep_alive), (&b"MQTT"[..], 4, 10));
    assert_eq!((c.client_id, c.username), (&b"mqttx_eaf9a0c9"[..], None));
    let b = hex(ZEEK_CONNECT_31);
    let c = parser::parse_connect(&b[2..]).unwrap();
    assert_eq!((c.protocol_name, c.level, c.client_id), (&b"MQIsdp"[..], 3, &b"paho/34AAE54A75D839566E"[..]));
    let b = connect(5, "dev-7", true, Some("alice"), Some("s3cret"));
    let c = parser::parse_connect(&b[2..]).unwrap();
    assert_eq!((c.level, c.client_id, c.username), (5, &b"dev-7"[..], Some(&b"alice"[..])));
    // Wrong name for the level, reserved flag bit.
    let mut bad = connect(4, "x", false, None, None);
    bad[8] = 3;
    assert_eq!(parser::parse_connect(&bad[2..]), Err(ParseError::Invalid));
    let mut bad = connect(4, "x", false, None, None);
    bad[9] |= 1;
    assert_eq!(parser::parse_connect(&bad[2..]), Err(ParseError::Invalid));
}

#[test]
fn parser_publish_subscribe_and_acks() {
    let b = hex(ROUNDTRIP[11].1);
    let p = parser::parse_publish(&b[2..], 1, false).unwrap();
    assert_eq!((p.topic, p.packet_id), (&b"deepflow-agent"[..], Some(12408)));
    let b = publish(2, "v5/topic", 9, b"x", true);
    let p = parser::parse_publish(&b[2..], 2, true).unwrap();
    assert_eq!((p.topic, p.packet_id), (&b"v5/topic"[..], Some(9)));
    let b = hex(ROUNDTRIP[8].1);
    let s = parser::parse_subscribe(&b[2..], false, true).unwrap();
    assert_eq!((s.packet_id, s.first, s.count), (12407, Some(&b"yunshan"[..]), 3));
    let b = hex(ROUNDTRIP[4].1);
    let s = parser::parse_subscribe(&b[2..], false, false).unwrap();
    assert_eq!((s.packet_id, s.first, s.count), (12406, Some(&b"testtopic"[..]), 1));
    assert_eq!(parser::parse_suback(&hex(ROUNDTRIP[9].1)[2..], false), Ok((12407, &[1, 1, 1][..])));
    assert_eq!(parser::parse_ack(&[0x30, 0x78], false), Ok((12408, None)));
    assert_eq!(parser::parse_ack(&[0x30, 0x78], true), Ok((12408, Some(0))));
    assert_eq!(parser::parse_ack(&[0x30, 0x78, 0x10, 0], true), Ok((12408, Some(0x10))));
    assert_eq!(parser::parse_connack(&[0, 5]), Ok((0, 5)));
    assert_eq!(parser::parse_connack(&[2, 0]), Err(ParseError::Invalid));
}

#[test]
fn parser_validates_whole_packets() {
    for (_, h) in ROUNDTRIP {
        let b = hex(h);
        let fh = parser::parse_fixed_header(&b).unwrap();
        assert_eq!(parser::validate(&fh, &b[fh.header_len..], false), Ok(()), "{h}");
    }
    let check = |b: &[u8], v5: bool| {
        let fh = parser::parse_fixed_header(b).unwrap();
        parser::validate(&fh, &b[fh.header_len..], v5)
    };
    // PINGREQ with a body, PUBACK of 3 bytes in 3.1.1, a wildcard topic.
    assert!(check(&[0xc0, 1, 0], false).is_err());
    assert!(check(&[0x40, 3, 0, 1, 0], false).is_err());
    assert!(check(&publish(0, "a/#", 0, b"", false), false).is_err());
    // An unknown MQTT 5 reason code.
    assert!(check(&ack(0x40, 1, Some(0x7e)), true).is_err());
    assert!(check(&ack(0x40, 1, Some(0x10)), true).is_ok());
}

// ---- probe --------------------------------------------------------------

/// The opening bytes of every protocol flowtrail probes, and others.
fn openers() -> Vec<(&'static str, Direction, Vec<u8>)> {
    let mut v: Vec<(&'static str, Direction, Vec<u8>)> = vec![
        ("http request", ToServer, b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n".to_vec()),
        ("http post", ToServer, b"POST /api HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}".to_vec()),
        ("http put", ToServer, b"PUT /x HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        ("http patch", ToServer, b"PATCH /x HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        ("http response", ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("tls client hello", ToServer, hex(&format!("16030100400100003c0303{}", "ab".repeat(32)))),
        ("tls server hello", ToClient, hex(&format!("160303004a020000460303{}", "5f".repeat(32)))),
        ("tls app data", ToClient, hex(&format!("1703030020{}", "c4".repeat(32)))),
        ("dns over tcp query", ToServer, hex("001d123401000001000000000000076578616d706c650474657374000001000100")),
        ("dns over tcp response", ToClient, hex("002d12348180000100010000000007657861")),
        ("http2 preface", ToServer, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("http2 settings", ToClient, hex("000012040000000000000300000064000400100000000600004000")),
        ("mysql greeting", ToClient, hex("4a0000000a382e302e3332000d000000")),
        ("postgres startup", ToServer, hex("00000029000300007573657200706f7374677265730064617461626173650064620000")),
        ("postgres sslrequest", ToServer, hex("0000000804d2162f")),
        ("redis ping", ToServer, b"*1\r\n$4\r\nPING\r\n".to_vec()),
        (
            "kafka apiversions",
            ToServer,
            hex("000000310012000300000002000d61646d696e636c69656e742d3100126170616368652d6b61666b612d6a61766106332e302e3000"),
        ),
        ("ssh client", ToServer, b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()),
        ("ssh server", ToClient, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n".to_vec()),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..256 {
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
fn probe_matches_mqtt_openers() {
    for (name, bytes) in [
        ("connect 3.1.1", hex(ROUNDTRIP[0].1)),
        ("connect 3.1", hex(ZEEK_CONNECT_31)),
        ("connect 5", connect(5, "c", true, Some("u"), Some("p"))),
        ("connack", hex(ROUNDTRIP[1].1)),
        ("subscribe", hex(ROUNDTRIP[2].1)),
        ("publish burst", hex(MULTI_PUBLISH)),
        ("suback", hex(ROUNDTRIP[9].1)),
    ] {
        assert_eq!(probe(&bytes, ToServer, Transport::Tcp), Probe::Match, "{name}");
        assert_eq!(probe(&bytes, ToClient, Transport::Tcp), Probe::Match, "{name}");
        assert_eq!(probe(&bytes, ToServer, Transport::Udp), Probe::NoMatch, "{name}");
    }
    // A CONNECT arriving a few bytes at a time.
    let b = hex(ROUNDTRIP[0].1);
    for n in 0..b.len() {
        assert_eq!(probe(&b[..n], ToServer, Transport::Tcp), Probe::NeedMore, "{n} bytes");
    }
    // PINGREQ or PUBACK alone do not open a connection.
    assert_eq!(probe(&hex("c000"), ToServer, Transport::Tcp), Probe::NoMatch);
    assert_eq!(probe(&hex("40023078"), ToClient, Transport::Tcp), Probe::NoMatch);
}

#[test]
fn probe_rejects_other_protocols() {
    for (name, dir, bytes) in openers() {
        assert_ne!(probe(&bytes, dir, Transport::Tcp), Probe::Match, "{name}: {bytes:02x?}");
        if name != "random" {
            assert_eq!(probe(&bytes, dir, Transport::Tcp), Probe::NoMatch, "{name}");
        }
    }
}

// ---- session ------------------------------------------------------------

#[test]
fn roundtrip_from_corpus() {
    let mut s = session();
    let mut f = Feeder::new();
    let mut calls = Vec::new();
    for (i, (dir, h)) in ROUNDTRIP.iter().enumerate() {
        calls.extend(f.feed(&mut s, *dir, &hex(h), i as i64 * 10).unwrap());
    }
    let got: Vec<_> = calls
        .iter()
        .map(|c| {
            assert_sorted(c);
            (
                c.request_type.as_deref().unwrap(),
                c.request_resource.as_deref(),
                c.response_code,
                c.status,
                c.request_bytes,
                c.response_bytes,
            )
        })
        .collect();
    use CallStatus::Ok;
    assert_eq!(
        got,
        [
            ("CONNECT", None, Some(0), Ok, 28, 4),
            ("SUBSCRIBE", Some("testtopic"), Some(0), Ok, 16, 5),
            ("UNSUBSCRIBE", Some("testtopic"), None, Ok, 15, 4),
            ("PINGREQ", None, None, Ok, 2, 2),
            ("SUBSCRIBE", Some("yunshan"), Some(1), Ok, 49, 7),
            ("PUBLISH", Some("deepflow-agent"), None, Ok, 35, 0),
            ("PUBLISH", Some("deepflow-agent"), None, Ok, 37, 4),
            ("PUBLISH", Some("deepflow-agent"), None, Ok, 41, 8),
            ("DISCONNECT", None, None, Ok, 2, 0),
        ]
    );
    for c in &calls {
        assert_eq!(c.request_domain.as_deref(), Some("mqttx_eaf9a0c9"));
        assert_eq!(c.version.as_deref(), Some("3.1.1"));
    }
    let connect = &calls[0];
    assert_eq!(attr(connect, "mqtt.client_id"), Some("mqttx_eaf9a0c9"));
    assert_eq!((connect.request_ts, connect.response_first_ts, connect.response_end_ts), (Some(0), Some(10), Some(10)));
    assert_eq!(attr(&calls[4], "mqtt.topic_count"), Some("3"));
    let qos2 = &calls[7];
    assert_eq!((attr(qos2, "mqtt.qos"), attr(qos2, "mqtt.packet_id")), (Some("2"), Some("12409")));
    // PUBREC at 140 is the first response byte, PUBCOMP at 160 the last.
    assert_eq!((qos2.request_ts, qos2.response_first_ts, qos2.response_end_ts), (Some(130), Some(140), Some(160)));
    assert_eq!(attr(&calls[5], "mqtt.direction"), Some("to_server"));
    assert_eq!(s.pending(), 0);
}

#[test]
fn connect_keeps_username_never_password() {
    let mut s = session();
    let mut f = Feeder::new();
    f.feed(&mut s, ToServer, &connect(5, "dev-7", true, Some("alice"), Some("s3cret")), 1).unwrap();
    let c = one(f.feed(&mut s, ToClient, &packet(0x20, &[0, 0, 0]), 2).unwrap());
    assert_eq!((c.version.as_deref(), c.request_domain.as_deref()), (Some("5.0"), Some("dev-7")));
    assert_eq!(attr(&c, "mqtt.username"), Some("alice"));
    let all = format!("{c:?}");
    assert!(!all.contains("s3cret"), "{all}");
    assert_eq!((c.response_code, c.status), (Some(0), CallStatus::Ok));
}

#[test]
fn connack_codes_map_to_status() {
    let cases = [
        (4, 0, CallStatus::Ok, None),
        (4, 1, CallStatus::ClientError, Some("unacceptable protocol version")),
        (4, 3, CallStatus::ServerError, Some("Server unavailable")),
        (4, 5, CallStatus::ClientError, Some("not authorized")),
        (5, 0x87, CallStatus::ClientError, Some("Not authorized")),
        (5, 0x86, CallStatus::ClientError, Some("Bad User Name or Password")),
        (5, 0x88, CallStatus::ServerError, Some("Server unavailable")),
        (5, 0x89, CallStatus::ServerError, Some("Server busy")),
        (5, 0x9F, CallStatus::ClientError, Some("Connection rate exceeded")),
    ];
    for (level, code, status, name) in cases {
        let mut s = session();
        let mut f = Feeder::new();
        f.feed(&mut s, ToServer, &connect(level, "c", false, None, None), 1).unwrap();
        let body: &[u8] = if level == 5 { &[0, code, 0] } else { &[0, code] };
        let c = one(f.feed(&mut s, ToClient, &packet(0x20, body), 2).unwrap());
        assert_eq!((c.response_code, c.status, c.response_exception.as_deref()), (Some(i32::from(code)), status, name));
    }
}

#[test]
fn mqtt5_reason_codes_on_acks_and_disconnect() {
    let mut s = session();
    let mut f = Feeder::new();
    f.feed(&mut s, ToServer, &connect(5, "c", false, None, None), 1).unwrap();
    f.feed(&mut s, ToClient, &packet(0x20, &[0, 0, 0]), 2).unwrap();
    // PUBACK "No matching subscribers" is a success.
    f.feed(&mut s, ToServer, &publish(1, "a", 1, b"x", true), 3).unwrap();
    let c = one(f.feed(&mut s, ToClient, &ack(0x40, 1, Some(0x10)), 4).unwrap());
    assert_eq!((c.response_code, c.status, c.response_exception.as_deref()), (Some(0x10), CallStatus::Ok, None));
    // PUBACK with no reason code means Success (0).
    f.feed(&mut s, ToServer, &publish(1, "a", 2, b"x", true), 5).unwrap();
    let c = one(f.feed(&mut s, ToClient, &ack(0x40, 2, None), 6).unwrap());
    assert_eq!((c.response_code, c.status), (Some(0), CallStatus::Ok));
    // QoS 2 refused at PUBREC: the call ends there.
    f.feed(&mut s, ToServer, &publish(2, "a", 3, b"x", true), 7).unwrap();
    let c = one(f.feed(&mut s, ToClient, &ack(0x50, 3, Some(0x97)), 8).unwrap());
    assert_eq!((c.response_code, c.status), (Some(0x97), CallStatus::ClientError));
    assert_eq!(c.response_exception.as_deref(), Some("Quota exceeded"));
    // SUBACK: the first failure code wins.
    f.feed(&mut s, ToServer, &subscribe(4, &["a", "b/#"], true), 9).unwrap();
    let c = one(f.feed(&mut s, ToClient, &suback(4, &[1, 0xA2], true), 10).unwrap());
    assert_eq!((c.response_code, c.status), (Some(0xA2), CallStatus::ClientError));
    assert_eq!(c.request_resource.as_deref(), Some("a"));
    // Server-sent DISCONNECT "Server shutting down".
    let c = one(f.feed(&mut s, ToClient, &packet(0xe0, &[0x8B, 0]), 11).unwrap());
    assert_eq!(
        (c.request_type.as_deref(), c.response_code, c.status),
        (Some("DISCONNECT"), Some(0x8B), CallStatus::ServerError)
    );
    assert_eq!(attr(&c, "mqtt.direction"), Some("to_client"));
}

#[test]
fn suback_failure_in_3_1_1() {
    let mut s = session();
    let mut f = Feeder::new();
    f.feed(&mut s, ToServer, &subscribe(7, &["secret/#"], false), 1).unwrap();
    let c = one(f.feed(&mut s, ToClient, &suback(7, &[0x80], false), 2).unwrap());
    assert_eq!(
        (c.response_code, c.status, c.response_exception.as_deref()),
        (Some(0x80), CallStatus::ClientError, Some("Failure"))
    );
}

#[test]
fn server_publish_and_separate_packet_id_spaces() {
    let mut s = session();
    let mut f = Feeder::new();
    f.feed(&mut s, ToServer, &hex(ROUNDTRIP[0].1), 1).unwrap();
    f.feed(&mut s, ToClient, &hex(ROUNDTRIP[1].1), 2).unwrap();
    // Both sides use packet id 1 at once.
    assert!(f.feed(&mut s, ToServer, &publish(1, "up", 1, b"a", false), 3).unwrap().is_empty());
    assert!(f.feed(&mut s, ToClient, &publish(1, "down", 1, b"b", false), 4).unwrap().is_empty());
    let c = one(f.feed(&mut s, ToServer, &ack(0x40, 1, None), 5).unwrap());
    assert_eq!((c.request_resource.as_deref(), attr(&c, "mqtt.direction")), (Some("down"), Some("to_client")));
    let c = one(f.feed(&mut s, ToClient, &ack(0x40, 1, None), 6).unwrap());
    assert_eq!((c.request_resource.as_deref(), attr(&c, "mqtt.direction")), (Some("up"), Some("to_server")));
    // QoS 0 from the server: a call at once.
    let c = one(f.feed(&mut s, ToClient, &publish(0, "news", 0, b"hi", false), 7).unwrap());
    assert_eq!((c.status, c.response_first_ts, attr(&c, "mqtt.qos")), (CallStatus::Ok, None, Some("0")));
}

#[test]
fn multi_publish_in_one_segment_from_corpus() {
    let mut s = session();
    let mut f = Feeder::new();
    assert!(f.feed(&mut s, ToServer, &hex(MULTI_PUBLISH), 1).unwrap().is_empty());
    assert_eq!(s.pending(), 10);
    let mut calls = Vec::new();
    for id in 2..=11u16 {
        calls.extend(f.feed(&mut s, ToClient, &ack(0x40, id, None), 2).unwrap());
    }
    let topics: Vec<_> = calls.iter().map(|c| c.request_resource.clone().unwrap()).collect();
    let want: Vec<_> = (0..10).map(|i| format!("hello/{i}/world")).collect();
    assert_eq!(topics, want);
    assert!(calls.iter().all(|c| attr(c, "mqtt.retain") == Some("true")));
}

#[test]
fn split_at_every_byte_boundary() {
    let req = hex(ROUNDTRIP[8].1);
    let resp = hex(ROUNDTRIP[9].1);
    let whole = {
        let mut s = session();
        let mut f = Feeder::new();
        f.feed(&mut s, ToServer, &req, 1).unwrap();
        one(f.feed(&mut s, ToClient, &resp, 2).unwrap())
    };
    for cut in 1..req.len() {
        let mut s = session();
        let mut f = Feeder::new();
        assert!(f.feed(&mut s, ToServer, &req[..cut], 1).unwrap().is_empty());
        assert!(f.feed(&mut s, ToServer, &req[cut..], 5).unwrap().is_empty());
        assert_eq!(one(f.feed(&mut s, ToClient, &resp, 2).unwrap()), whole, "request cut at {cut}");
    }
    for cut in 1..resp.len() {
        let mut s = session();
        let mut f = Feeder::new();
        f.feed(&mut s, ToServer, &req, 1).unwrap();
        assert!(f.feed(&mut s, ToClient, &resp[..cut], 2).unwrap().is_empty());
        let c = one(f.feed(&mut s, ToClient, &resp[cut..], 3).unwrap());
        assert_eq!((c.response_first_ts, c.response_end_ts), (Some(2), Some(3)));
        assert_eq!(Call { response_end_ts: Some(2), ..c }, whole, "response cut at {cut}");
    }
    // A PUBLISH with a 2-byte Remaining Length, split everywhere.
    let p = publish(0, "t", 0, &[7; 300], false);
    for cut in 1..p.len() {
        let mut s = session();
        let mut f = Feeder::new();
        assert!(f.feed(&mut s, ToServer, &p[..cut], 1).unwrap().is_empty());
        let c = one(f.feed(&mut s, ToServer, &p[cut..], 2).unwrap());
        assert_eq!((c.request_bytes, c.request_ts), (p.len() as u64, Some(1)), "cut {cut}");
    }
}

#[test]
fn response_without_request_still_is_a_call() {
    let mut s = session();
    let mut f = Feeder::new();
    let c = one(f.feed(&mut s, ToClient, &ack(0x40, 77, None), 1).unwrap());
    assert_eq!((c.request_type.as_deref(), c.request_ts, c.response_first_ts), (None, None, Some(1)));
    assert_eq!((attr(&c, "mqtt.response_type"), attr(&c, "mqtt.packet_id")), (Some("PUBACK"), Some("77")));
    // PUBREC of an unseen PUBLISH is no call; its PUBCOMP is.
    assert!(f.feed(&mut s, ToClient, &ack(0x50, 78, None), 2).unwrap().is_empty());
    let c = one(f.feed(&mut s, ToClient, &ack(0x70, 78, None), 3).unwrap());
    assert_eq!(attr(&c, "mqtt.response_type"), Some("PUBCOMP"));
}

#[test]
fn duplicate_publish_is_not_a_new_call() {
    let mut s = session();
    let mut f = Feeder::new();
    let p = publish(1, "t", 5, b"x", false);
    let mut dup = p.clone();
    dup[0] |= 0x08;
    f.feed(&mut s, ToServer, &p, 1).unwrap();
    f.feed(&mut s, ToServer, &dup, 2).unwrap();
    assert_eq!(s.pending(), 1);
    let c = one(f.feed(&mut s, ToClient, &ack(0x40, 5, None), 3).unwrap());
    assert_eq!(c.request_ts, Some(1));
}

#[test]
fn gap_then_resync() {
    let mut s = session();
    let mut f = Feeder::new();
    let p1 = publish(1, "first", 1, b"payload", false);
    let p2 = publish(1, "second", 2, b"payload", false);
    f.feed(&mut s, ToServer, &p1[..6], 1).unwrap();
    f.gap(&mut s, ToServer);
    let mut next = p1[9..].to_vec();
    next.extend_from_slice(&p2);
    assert!(f.feed(&mut s, ToServer, &next, 2).unwrap().is_empty());
    assert_eq!(s.pending(), 1);
    let c = one(f.feed(&mut s, ToClient, &ack(0x40, 2, None), 3).unwrap());
    assert_eq!(c.request_resource.as_deref(), Some("second"));
    // A gap on the response side: the next PUBACK is found again.
    f.feed(&mut s, ToServer, &publish(1, "third", 3, b"", false), 4).unwrap();
    f.feed(&mut s, ToClient, &[0x40], 5).unwrap();
    f.gap(&mut s, ToClient);
    let c = one(f.feed(&mut s, ToClient, &[&[0x01, 0x02][..], &ack(0x40, 3, None)].concat(), 6).unwrap());
    assert_eq!(c.request_resource.as_deref(), Some("third"));
}

#[test]
fn large_publish_is_decoded_from_its_head() {
    let cfg = SessionConfig { max_message_bytes: 1024, ..SessionConfig::default() };
    let mut s = Session::new(&cfg, Transport::Tcp);
    let mut f = Feeder::new();
    let p = publish(1, "bulk", 9, &vec![0xab; 200_000], false);
    for chunk in p.chunks(1460) {
        assert!(f.feed(&mut s, ToServer, chunk, 1).unwrap().is_empty());
        assert!(f.carry[0].len() < 8192);
    }
    let c = one(f.feed(&mut s, ToClient, &ack(0x40, 9, None), 2).unwrap());
    assert_eq!((c.request_resource.as_deref(), c.request_bytes), (Some("bulk"), p.len() as u64));
    // Framing goes on after the body.
    f.feed(&mut s, ToServer, &hex("c000"), 3).unwrap();
    assert_eq!(one(f.feed(&mut s, ToClient, &hex("d000"), 4).unwrap()).request_type.as_deref(), Some("PINGREQ"));
}

#[test]
fn bad_fixed_header_ends_the_direction() {
    let mut s = session();
    let mut out = Vec::new();
    assert_eq!(s.parse(ToServer, &[0x00, 0x00], 1, &mut out), Err(L7Error::Malformed("mqtt_bad_header")));
    assert_eq!(
        s.parse(ToServer, &[0x30, 0xff, 0xff, 0xff, 0xff], 1, &mut out),
        Err(L7Error::Malformed("mqtt_bad_header"))
    );
    // A bad variable header is counted and skipped.
    let mut s = session();
    let bad_connect = packet(0x10, &string(b"HTTP"));
    assert_eq!(s.parse(ToServer, &bad_connect, 1, &mut out), Ok(bad_connect.len()));
    assert_eq!(s.malformed(), 1);
    assert!(out.is_empty());
}

#[test]
fn too_many_pending_and_timeouts() {
    let cfg = SessionConfig { max_pending: 3, ..SessionConfig::default() };
    let mut s = Session::new(&cfg, Transport::Tcp);
    let mut f = Feeder::new();
    let mut out = Vec::new();
    for id in 1..=5u16 {
        out.extend(f.feed(&mut s, ToServer, &publish(1, "t", id, b"", false), i64::from(id) * 100).unwrap());
    }
    let ids: Vec<_> = out.iter().map(|c| (attr(c, "mqtt.packet_id").unwrap(), c.status)).collect();
    assert_eq!(ids, [("1", CallStatus::Timeout), ("2", CallStatus::Timeout)]);
    let mut out = Vec::new();
    s.expire(350, &mut out);
    assert_eq!(one(out).request_ts, Some(300));
    f.feed(&mut s, ToServer, &hex("c000"), 600).unwrap();
    let mut out = Vec::new();
    s.finish(700, &mut out);
    let kinds: Vec<_> = out.iter().map(|c| (c.request_type.as_deref().unwrap(), c.status)).collect();
    assert_eq!(
        kinds,
        [("PUBLISH", CallStatus::Timeout), ("PUBLISH", CallStatus::Timeout), ("PINGREQ", CallStatus::Timeout)]
    );
    assert_eq!(s.pending(), 0);
}

#[test]
fn truncated_and_garbage_input_never_panics() {
    let mut corpus: Vec<Vec<u8>> = ROUNDTRIP.iter().map(|(_, h)| hex(h)).collect();
    corpus.push(hex(MULTI_PUBLISH));
    corpus.push(connect(5, "c", true, Some("u"), Some("p")));
    corpus.push(suback(1, &[0, 0x80], true));
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
        if round % 4 == 0 {
            let _ = f.feed(&mut s, ToServer, &connect(5, "c", false, None, None), 0);
        }
        let cut = (next() % (m.len() as u64 + 1)) as usize;
        let dir = if round % 2 == 0 { ToServer } else { ToClient };
        if f.feed(&mut s, dir, &m[..cut], 1).is_ok() {
            let _ = f.feed(&mut s, dir, &m[cut..], 2);
        }
        if round % 5 == 0 {
            f.gap(&mut s, dir);
            let _ = f.feed(&mut s, dir, &m, 3);
        }
        let _ = probe(&m, dir, Transport::Tcp);
        if let Ok(h) = parser::parse_fixed_header(&m) {
            let body = m.get(h.header_len..).unwrap_or_default();
            let _ = parser::validate(&h, body, true);
            let _ = parser::validate(&h, body, false);
        }
        let mut out = Vec::new();
        s.finish(9, &mut out);
    }
}
