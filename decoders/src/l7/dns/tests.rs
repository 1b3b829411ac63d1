//! Byte-array tests of the DNS parser, probe and session. The hex strings
//! marked "corpus" are DNS payloads (UDP payloads, or TCP payloads with
//! their length prefix) copied from public test captures: Suricata-verify
//! `dns/dns-eve` and `dns/dns-tcp-www-google-com`, DeepFlow's
//! `flow_generator/dns/*` and `udp_normal`, nDPI's `dns-google-nsid`.

use super::parser::{self, ParseError, Section};
use super::{probe, Session};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, Probe, SessionConfig, Transport};

use Direction::{ToClient, ToServer};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

// ---- corpus bytes -------------------------------------------------------

/// dns-eve: `client-cf.dropbox.com` A, id 0x99ab.
const EVE_QUERY: &str = "99ab0100000100000000000009636c69656e742d63660764726f70626f7803636f6d0000010001";
/// dns-eve: its answer, 52.85.112.21.
const EVE_ANSWER: &str =
    "99ab8180000100010000000009636c69656e742d63660764726f70626f7803636f6d0000010001c00c000100010000002f000434557015";
/// dns-eve: `block.dropbox.com` A, id 0x0d4f.
const EVE_CNAME_QUERY: &str = "0d4f0100000100000000000005626c6f636b0764726f70626f7803636f6d0000010001";
/// dns-eve: CNAME `block.g1.dropbox.com` (compressed), then A 45.58.70.33.
const EVE_CNAME_ANSWER: &str = "0d4f8180000100020000000005626c6f636b0764726f70626f7803636f6d0000010001c00c0005000100000009000b05626c6f636b026731c012c02f000100010000000800042d3a4621";
/// dns-google-nsid: `www.wikipedia.it` A with EDNS, id 0xca11.
const NSID_QUERY: &str =
    "ca1101200001000000000001037777770977696b6970656469610269740000010001000029100000000000000400030000";
/// Its answer: CNAME, CNAME, 4 A, and an OPT record carrying an NSID.
const NSID_ANSWER: &str = "ca1181800001000600000001037777770977696b6970656469610269740000010001c00c0005000100000258001106623766643762047965706103636f6d00c02e0005000100000258001f0e64327832723978693972643373630a636c6f756466726f6e74036e657400c04b000100010000003c00046c9dc21cc04b000100010000003c00046c9dc23ec04b000100010000003c00046c9dc20bc04b000100010000003c00046c9dc21b000029100000000000000b0003000772332e6d696c31";
/// a-and-ns: `aa.bb.cc.ddd.eee.fff.zqytest.com` AAAA, id 0x1cf4.
const AAAA_QUERY: &str =
    "1cf401000001000000000000026161026262026363036464640365656503666666077a71797465737403636f6d00001c0001";
/// Its answer: no AAAA (NODATA), an SOA in the authority section.
const AAAA_NODATA: &str = "1cf485800001000000010000026161026262026363036464640365656503666666077a71797465737403636f6d00001c0001c0210006000100002a300020026e73c02104726f6f74c02178492d2100002a3000000e1000093a8000002a30";
/// udp_normal: PTR `223.0.30.10.in-addr.arpa`, id 0x2a94.
const PTR_QUERY: &str = "2a940100000100000000000003323233013002333002313007696e2d61646472046172706100000c0001";
/// Its answer: authoritative NXDOMAIN.
const PTR_NXDOMAIN: &str = "2a948583000100000001000003323233013002333002313007696e2d61646472046172706100000c0001c0150006000100013c0e0017c01500000000000000708000001c2000093a8000015180";
/// DeepFlow dns.pcap, TCP with length prefix: `guoyongxin.com` A + OPT, id 0xdfe3.
const TCP_QUERY: &str = "002bdfe3012000010000000000010a67756f796f6e6778696e03636f6d00000100010000291000000000000000";
/// Its answer: NXDOMAIN with an SOA and an OPT record.
const TCP_NXDOMAIN: &str = "0074dfe3818300010000000100010a67756f796f6e6778696e03636f6d0000010001c0170006000100000384003d01610c67746c642d73657276657273036e657400056e73746c640c766572697369676e2d677273c0175ef17d43000007080000038400093a80000151800000291000000000000000";
/// DeepFlow dns.pcap, second TCP connection: `yunshan.net.cn` A, id 0xecd4.
const TCP_QUERY2: &str = "002becd4012000010000000000010779756e7368616e036e657402636e00000100010000291000000000000000";
/// dns-tcp-www-google-com, TCP: its answer, 12 A records.
const GOOGLE_TCP_QUERY: &str = "00375f78012000010000000000010377777706676f6f676c6503636f6d0000010001000029100000000000000c000a00085a760730fb2b37d5";
const GOOGLE_TCP_ANSWER: &str = "00eb5f7881800001000c000000010377777706676f6f676c6503636f6d0000010001c00c00010001000000080004d8c5f2f4c00c00010001000000080004d8c5f2e0c00c00010001000000080004d8c5f2eec00c00010001000000080004d8c5f2d2c00c00010001000000080004d8c5f2e6c00c00010001000000080004d8c5f2dfc00c00010001000000080004d8c5f2f5c00c00010001000000080004d8c5f2e7c00c00010001000000080004d8c5f2fbc00c00010001000000080004d8c5f2edc00c00010001000000080004d8c5f2d9c00c00010001000000080004d8c5f2d80000290200000000000000";

// ---- hand-built messages ------------------------------------------------

fn push_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(u8::try_from(label.len()).expect("short label"));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A resource record whose owner is the first question's name (pointer
/// to offset 12).
fn rr(rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut r = vec![0xc0, 0x0c];
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&ttl.to_be_bytes());
    r.extend_from_slice(&u16::try_from(rdata.len()).expect("short rdata").to_be_bytes());
    r.extend_from_slice(rdata);
    r
}

/// An OPT pseudo-record (root owner) with the extended-RCODE octet.
fn opt(ext_rcode: u8) -> Vec<u8> {
    // Owner ".", TYPE 41, CLASS = UDP size 4096, TTL = extended RCODE,
    // version 0, flags 0; RDLENGTH 0.
    vec![0, 0, 41, 0x10, 0x00, ext_rcode, 0, 0, 0, 0, 0]
}

fn message(id: u16, flags: u16, question: Option<(&str, u16)>, answers: &[Vec<u8>], additional: &[Vec<u8>]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&u16::from(question.is_some()).to_be_bytes());
    m.extend_from_slice(&u16::try_from(answers.len()).expect("few").to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&u16::try_from(additional.len()).expect("few").to_be_bytes());
    if let Some((name, qtype)) = question {
        push_name(&mut m, name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
    }
    for r in answers.iter().chain(additional) {
        m.extend_from_slice(r);
    }
    m
}

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    message(id, 0x0100, Some((name, qtype)), &[], &[])
}

fn response(id: u16, flags: u16, name: &str, qtype: u16, answers: &[Vec<u8>]) -> Vec<u8> {
    message(id, flags, Some((name, qtype)), answers, &[])
}

fn tcp_framed(msgs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend_from_slice(&u16::try_from(m.len()).expect("short").to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

fn udp() -> Session {
    Session::new(&SessionConfig::default(), Transport::Udp)
}

fn tcp() -> Session {
    Session::new(&SessionConfig::default(), Transport::Tcp)
}

/// Feeds one datagram.
fn dgram(s: &mut Session, dir: Direction, bytes: &[u8], ts: i64) -> Vec<Call> {
    let mut out = Vec::new();
    assert_eq!(s.parse(dir, bytes, ts, &mut out), Ok(bytes.len()));
    out
}

/// Plays the analyzer for a TCP direction: keeps what `parse` did not
/// consume and passes it again with the next chunk.
struct Stream {
    buf: Vec<u8>,
}

impl Stream {
    fn new() -> Self {
        Stream { buf: Vec::new() }
    }
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

fn attr<'a>(c: &'a Call, key: &str) -> Option<&'a str> {
    c.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn attrs(c: &Call) -> Vec<(&str, &str)> {
    c.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn assert_sorted(c: &Call) {
    assert!(c.attributes.windows(2).all(|w| w[0].0 < w[1].0), "attributes not sorted: {:?}", c.attributes);
}

// ---- parser -------------------------------------------------------------

#[test]
fn parser_reads_header_question_and_records() {
    let b = hex(EVE_ANSWER);
    let m = parser::parse_message(&b).expect("parses");
    assert_eq!(m.header.id, 0x99ab);
    assert!(m.header.qr() && m.header.rd() && m.header.ra());
    assert!(!m.header.aa() && !m.header.tc() && !m.header.z());
    assert_eq!((m.header.opcode(), m.header.rcode()), (0, 0));
    assert_eq!((m.header.qdcount, m.header.ancount, m.header.nscount, m.header.arcount), (1, 1, 0, 0));
    let q = m.question.expect("question");
    assert_eq!((q.qtype, q.qclass), (1, 1));
    assert!(q.name.eq_text("client-cf.dropbox.com"));
    assert!(!q.name.eq_text("client-cf.dropbox.co"));
    assert!(!q.name.eq_text("client-cf.dropbox.comm"));
    let labels: Vec<&[u8]> = q.name.labels().collect();
    assert_eq!(labels, [&b"client-cf"[..], b"dropbox", b"com"]);
    let recs: Vec<_> = m.records().collect::<Result<_, _>>().expect("records");
    assert_eq!(recs.len(), 1);
    let (section, r) = recs[0];
    assert_eq!(section, Section::Answer);
    assert!(r.name.is_compressed());
    assert_eq!((r.rtype, r.rclass, r.ttl), (1, 1, 47));
    assert_eq!(r.ipv4(), Some(std::net::Ipv4Addr::new(52, 85, 112, 21)));
    assert_eq!(m.rcode(), 0);
}

#[test]
fn parser_sections_and_opt() {
    let b = hex(NSID_ANSWER);
    let m = parser::parse_message(&b).expect("parses");
    let sections: Vec<Section> = m.records().map(|r| r.expect("record").0).collect();
    assert_eq!(sections.len(), 7);
    assert_eq!(sections[6], Section::Additional);
    let o = m.opt().expect("OPT record");
    assert_eq!(o.rtype, parser::TYPE_OPT);
    assert!(o.name.is_root());
    let cname = m.answers().next().expect("answer").target().expect("CNAME target");
    let mut s = String::new();
    cname.write_text(&mut s);
    assert_eq!(s, "b7fd7b.yepa.com");
}

#[test]
fn parser_names_are_lowercase_and_escaped() {
    // "A.b" as one label (a dot inside), "\x01Z", then "COM".
    let mut m = message(1, 0x0100, None, &[], &[]);
    m[5] = 1;
    m.extend_from_slice(&[3, b'A', b'.', b'b', 2, 1, b'Z', 3, b'C', b'O', b'M', 0, 0, 1, 0, 1]);
    let msg = parser::parse_message(&m).expect("parses");
    let q = msg.question.expect("question");
    let mut s = String::new();
    q.name.write_text(&mut s);
    assert_eq!(s, r"a\.b.\001z.com");
    assert!(q.name.eq_text(r"a\.b.\001z.com"));

    // The root name.
    let m = message(1, 0x0100, Some((".", 2)), &[], &[]);
    let q = parser::parse_message(&m).expect("parses").question.expect("question");
    assert!(q.name.is_root());
    assert!(q.name.eq_text("."));
}

#[test]
fn parser_limits_names() {
    // 5 labels of 63 octets: 321 octets, over 255.
    let mut m = message(1, 0x0100, None, &[], &[]);
    m[5] = 1;
    for _ in 0..5 {
        m.push(63);
        m.extend_from_slice(&[b'x'; 63]);
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(parser::parse_message(&m).err(), Some(ParseError::NameTooLong));

    // Label types 01 and 10 are not supported.
    let mut m = message(1, 0x0100, None, &[], &[]);
    m[5] = 1;
    m.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
    assert_eq!(parser::parse_message(&m).err(), Some(ParseError::BadLabel));

    // A pointer past the end.
    let mut m = message(1, 0x0100, None, &[], &[]);
    m[5] = 1;
    m.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1]);
    assert_eq!(parser::parse_message(&m).err(), Some(ParseError::BadPointer));

    assert_eq!(parser::parse_message(&[0; 11]).err(), Some(ParseError::ShortHeader));
    let mut m = hex(EVE_QUERY);
    m.truncate(m.len() - 1);
    assert_eq!(parser::parse_message(&m).err(), Some(ParseError::Truncated));
}

#[test]
fn parser_compression_loops_end() {
    // The question's name is a pointer to itself.
    let mut m = message(7, 0x0100, None, &[], &[]);
    m[5] = 1;
    m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    assert_eq!(parser::parse_message(&m).err(), Some(ParseError::PointerLoop));

    // Two pointers to each other, after a label.
    let mut m = message(7, 0x0100, None, &[], &[]);
    m[5] = 1;
    m.extend_from_slice(&[1, b'a', 0xc0, 0x10, 0xc0, 0x0e, 0, 1, 0, 1]);
    assert_eq!(parser::parse_message(&m).err(), Some(ParseError::PointerLoop));

    // A label looping onto itself grows the name until it is too long.
    let mut m = message(7, 0x0100, None, &[], &[]);
    m[5] = 1;
    m.extend_from_slice(&[1, b'a', 0xc0, 0x0c, 0, 1, 0, 1]);
    assert_eq!(parser::parse_message(&m).err(), Some(ParseError::NameTooLong));

    // Chains of distinct backward pointers: 100 are followed, 200 are
    // too many jumps.
    let mut m = vec![0u8; 12];
    m.extend_from_slice(&[1, b'a', 0]);
    let mut prev = 12u16;
    let mut heads = Vec::new();
    for _ in 0..200 {
        let here = u16::try_from(m.len()).expect("small");
        m.extend_from_slice(&(0xc000 | prev).to_be_bytes());
        heads.push(here);
        prev = here;
    }
    let (name, end) = parser::parse_name(&m, usize::from(heads[99])).expect("100 jumps");
    assert!(name.eq_text("a"));
    assert_eq!(end, usize::from(heads[99]) + 2);
    assert_eq!(parser::parse_name(&m, usize::from(heads[199])).err(), Some(ParseError::PointerLoop));
}

// ---- probe --------------------------------------------------------------

#[test]
fn probe_matches_dns() {
    assert_eq!(probe(&hex(EVE_QUERY), ToServer, Transport::Udp), Probe::Match);
    assert_eq!(probe(&hex(EVE_ANSWER), ToClient, Transport::Udp), Probe::Match);
    assert_eq!(probe(&hex(NSID_QUERY), ToServer, Transport::Udp), Probe::Match);
    assert_eq!(probe(&hex(PTR_NXDOMAIN), ToClient, Transport::Udp), Probe::Match);
    assert_eq!(probe(&hex(TCP_QUERY), ToServer, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&hex(TCP_NXDOMAIN), ToClient, Transport::Tcp), Probe::Match);
    // The question is enough over TCP; the rest of the message may follow.
    let q = hex(GOOGLE_TCP_ANSWER);
    assert_eq!(probe(&q[..40], ToClient, Transport::Tcp), Probe::Match);
    // The root NS query.
    assert_eq!(probe(&query(1, ".", 2), ToServer, Transport::Udp), Probe::Match);
}

#[test]
fn probe_checks_direction() {
    assert_eq!(probe(&hex(EVE_QUERY), ToClient, Transport::Udp), Probe::NoMatch);
    assert_eq!(probe(&hex(EVE_ANSWER), ToServer, Transport::Udp), Probe::NoMatch);
    assert_eq!(probe(&hex(TCP_QUERY), ToClient, Transport::Tcp), Probe::NoMatch);
}

#[test]
fn probe_asks_for_more() {
    let q = hex(TCP_QUERY);
    for n in 0..14 {
        assert_eq!(probe(&q[..n], ToServer, Transport::Tcp), Probe::NeedMore, "{n} bytes");
    }
    // Inside the question name.
    assert_eq!(probe(&q[..20], ToServer, Transport::Tcp), Probe::NeedMore);
    assert_eq!(probe(&[], ToServer, Transport::Udp), Probe::NeedMore);
    // A datagram is whole: a short one is not DNS.
    assert_eq!(probe(&hex(EVE_QUERY)[..11], ToServer, Transport::Udp), Probe::NoMatch);
    assert_eq!(probe(&hex(EVE_QUERY)[..20], ToServer, Transport::Udp), Probe::NoMatch);
}

#[test]
fn probe_rejects_odd_headers() {
    let base = hex(EVE_QUERY);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = base.clone();
        f(&mut m);
        probe(&m, ToServer, Transport::Udp)
    };
    assert_eq!(with(&|_| {}), Probe::Match);
    assert_eq!(with(&|m| m[5] = 0), Probe::NoMatch, "QDCOUNT 0");
    assert_eq!(with(&|m| m[5] = 5), Probe::NoMatch, "QDCOUNT 5");
    assert_eq!(with(&|m| m[2] |= 3 << 3), Probe::NoMatch, "opcode 3");
    assert_eq!(with(&|m| m[2] |= 7 << 3), Probe::NoMatch, "opcode 7");
    assert_eq!(with(&|m| m[3] |= 0x40), Probe::NoMatch, "Z bit");
    assert_eq!(with(&|m| m[3] |= 0x03), Probe::NoMatch, "rcode in a query");
    assert_eq!(with(&|m| m[7] = 1), Probe::Match, "one answer fits in 39 bytes");
    assert_eq!(with(&|m| m[7] = 3), Probe::NoMatch, "three answers cannot fit");
    let n = base.len();
    assert_eq!(with(&|m| m[n - 1] = 9), Probe::NoMatch, "QCLASS 9");
    assert_eq!(with(&|m| m[n - 3] = 0), Probe::NoMatch, "QTYPE 0");
    // mDNS sets the top bit of QCLASS (unicast response).
    assert_eq!(with(&|m| m[n - 2] = 0x80), Probe::Match);
    // A compressed first question.
    let mut m = message(1, 0x0100, None, &[], &[]);
    m[5] = 1;
    m.extend_from_slice(&[1, b'a', 0xc0, 0x02, 0, 1, 0, 1]);
    assert_eq!(probe(&m, ToServer, Transport::Udp), Probe::NoMatch);
    // A response cut by the snap length keeps its counts: still DNS.
    let mut cut = hex(NSID_ANSWER);
    cut.truncate(60);
    assert_eq!(probe(&cut, ToClient, Transport::Udp), Probe::Match);
    // NetBIOS name service (corpus: Teredo captures): same format, not DNS.
    let nbns =
        hex("86640110000100000000000020454a464146474447434f4548455045504548454d4546434f45444550454e41410000200001");
    assert_eq!(probe(&nbns, ToServer, Transport::Udp), Probe::NoMatch);
    // TCP length below a header.
    assert_eq!(probe(&[0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], ToServer, Transport::Tcp), Probe::NoMatch);
}

#[test]
fn probe_rejects_http_tls_and_random() {
    let http = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n\r\n";
    let http_resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    // TLS 1.2 record, ClientHello (start of one from a real handshake).
    let tls = hex(concat!(
        "160301020001000200fc0303",
        "5c3b4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081920",
        "20e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        "003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff",
        "010001750000000e000c0000096c6f63616c686f7374"
    ));
    let tls_server_hello = hex("160303005a0200005603031122334455");
    for dir in [ToServer, ToClient] {
        for t in [Transport::Udp, Transport::Tcp] {
            assert_eq!(probe(http, dir, t), Probe::NoMatch, "http {dir:?} {t:?}");
            assert_eq!(probe(http_resp, dir, t), Probe::NoMatch, "http response {dir:?} {t:?}");
            assert_eq!(probe(&tls, dir, t), Probe::NoMatch, "tls {dir:?} {t:?}");
            assert_eq!(probe(&tls_server_hello, dir, t), Probe::NoMatch, "tls {dir:?} {t:?}");
        }
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut matched = 0;
    for _ in 0..20_000 {
        let len = 14 + rng.below(500);
        let bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        for dir in [ToServer, ToClient] {
            for t in [Transport::Udp, Transport::Tcp] {
                if probe(&bytes, dir, t) == Probe::Match {
                    matched += 1;
                }
            }
        }
    }
    assert_eq!(matched, 0, "random buffers probed as DNS");
}

// ---- session: UDP -------------------------------------------------------

#[test]
fn udp_a_query_and_answer() {
    let mut s = udp();
    assert!(dgram(&mut s, ToServer, &hex(EVE_QUERY), 1_000).is_empty());
    assert_eq!(s.pending(), 1);
    let out = dgram(&mut s, ToClient, &hex(EVE_ANSWER), 1_372);
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.protocol, crate::l7::L7Protocol::Dns);
    assert_eq!(c.request_ts, Some(1_000));
    assert_eq!(c.response_first_ts, Some(1_372));
    assert_eq!(c.response_end_ts, Some(1_372));
    assert_eq!(c.request_type.as_deref(), Some("A"));
    assert_eq!(c.request_domain.as_deref(), Some("client-cf.dropbox.com"));
    assert_eq!(c.request_resource.as_deref(), Some("client-cf.dropbox.com"));
    assert_eq!(c.version, None);
    assert_eq!(c.response_code, Some(0));
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!(c.response_exception, None);
    assert_eq!((c.request_bytes, c.response_bytes), (39, 55));
    assert_eq!(
        attrs(c),
        [("dns.answer_count", "1"), ("dns.answers", "52.85.112.21"), ("dns.id", "39339"), ("dns.opcode", "QUERY"),]
    );
    assert_eq!(s.pending(), 0);
    let mut out = Vec::new();
    s.finish(2_000, &mut out);
    assert!(out.is_empty());
    assert_eq!(s.malformed(), 0);
}

#[test]
fn udp_aaaa() {
    let mut s = udp();
    dgram(&mut s, ToServer, &query(0x1234, "Example.COM.", 28), 10);
    let addr: std::net::Ipv6Addr = "2001:db8::1".parse().expect("address");
    let resp = response(0x1234, 0x8180, "example.com", 28, &[rr(28, 60, &addr.octets())]);
    let out = dgram(&mut s, ToClient, &resp, 20);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_type.as_deref(), Some("AAAA"));
    assert_eq!(out[0].request_domain.as_deref(), Some("example.com"));
    assert_eq!(attr(&out[0], "dns.answers"), Some("2001:db8::1"));
    assert_eq!(out[0].status, CallStatus::Ok);

    // corpus: AAAA with no data, an SOA in the authority section.
    let out = {
        dgram(&mut s, ToServer, &hex(AAAA_QUERY), 30);
        dgram(&mut s, ToClient, &hex(AAAA_NODATA), 31)
    };
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.request_type.as_deref(), Some("AAAA"));
    assert_eq!(c.request_domain.as_deref(), Some("aa.bb.cc.ddd.eee.fff.zqytest.com"));
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!(attr(c, "dns.answer_count"), Some("0"));
    assert_eq!(attr(c, "dns.answers"), None);
    assert_eq!(attr(c, "dns.authoritative"), Some("true"));
}

#[test]
fn udp_cname_chains() {
    let mut s = udp();
    dgram(&mut s, ToServer, &hex(EVE_CNAME_QUERY), 1);
    let out = dgram(&mut s, ToClient, &hex(EVE_CNAME_ANSWER), 2);
    assert_eq!(attr(&out[0], "dns.answers"), Some("block.g1.dropbox.com,45.58.70.33"));
    assert_eq!(attr(&out[0], "dns.answer_count"), Some("2"));

    dgram(&mut s, ToServer, &hex(NSID_QUERY), 3);
    let out = dgram(&mut s, ToClient, &hex(NSID_ANSWER), 4);
    let c = &out[0];
    assert_eq!(c.request_domain.as_deref(), Some("www.wikipedia.it"));
    assert_eq!(
        attr(c, "dns.answers"),
        Some(
            "b7fd7b.yepa.com,d2x2r9xi9rd3sc.cloudfront.net,108.157.194.28,108.157.194.62,108.157.194.11,108.157.194.27"
        )
    );
    assert_eq!(attr(c, "dns.answer_count"), Some("6"));
    assert_eq!(c.response_code, Some(0));
    assert_sorted(c);
}

#[test]
fn udp_nxdomain() {
    let mut s = udp();
    dgram(&mut s, ToServer, &hex(PTR_QUERY), 100);
    let out = dgram(&mut s, ToClient, &hex(PTR_NXDOMAIN), 124);
    let c = &out[0];
    assert_eq!(c.request_type.as_deref(), Some("PTR"));
    assert_eq!(c.request_domain.as_deref(), Some("223.0.30.10.in-addr.arpa"));
    assert_eq!(c.response_code, Some(3));
    assert_eq!(c.status, CallStatus::ClientError);
    assert_eq!(c.response_exception.as_deref(), Some("NXDOMAIN"));
    assert_eq!(
        attrs(c),
        [("dns.answer_count", "0"), ("dns.authoritative", "true"), ("dns.id", "10900"), ("dns.opcode", "QUERY")]
    );
}

#[test]
fn udp_rcodes_map_to_status() {
    for (flags, code, status, name) in [
        (0x8182u16, 2, CallStatus::ServerError, "SERVFAIL"),
        (0x8181, 1, CallStatus::ClientError, "FORMERR"),
        (0x8184, 4, CallStatus::ClientError, "NOTIMP"),
        (0x8185, 5, CallStatus::ClientError, "REFUSED"),
        (0x8186, 6, CallStatus::ClientError, "YXDOMAIN"),
        (0x818f, 15, CallStatus::ClientError, "RCODE15"),
    ] {
        let mut s = udp();
        dgram(&mut s, ToServer, &query(9, "fail.example", 1), 1);
        let out = dgram(&mut s, ToClient, &response(9, flags, "fail.example", 1, &[]), 2);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].response_code, Some(code));
        assert_eq!(out[0].status, status, "{name}");
        assert_eq!(out[0].response_exception.as_deref(), Some(name));
    }
}

#[test]
fn udp_truncated_response() {
    let mut s = udp();
    dgram(&mut s, ToServer, &query(77, "big.example", 16), 1);
    // TC set, no answers: the client retries over TCP.
    let out = dgram(&mut s, ToClient, &response(77, 0x8380, "big.example", 16, &[]), 2);
    let c = &out[0];
    assert_eq!(c.request_type.as_deref(), Some("TXT"));
    assert_eq!(attr(c, "dns.truncated"), Some("true"));
    assert_eq!(c.status, CallStatus::Ok);
    assert_sorted(c);

    // A datagram cut inside its answer section: header and question are
    // enough for a call.
    let mut s = udp();
    dgram(&mut s, ToServer, &hex(NSID_QUERY), 1);
    let mut b = hex(NSID_ANSWER);
    b.truncate(90);
    let out = dgram(&mut s, ToClient, &b, 2);
    assert_eq!(out.len(), 1);
    assert_eq!(attr(&out[0], "dns.answer_count"), Some("6"));
    assert_eq!(attr(&out[0], "dns.answers"), Some("b7fd7b.yepa.com"));
    assert_eq!(s.malformed(), 0);
}

#[test]
fn udp_edns_extended_rcode() {
    let mut s = udp();
    dgram(&mut s, ToServer, &message(5, 0x0100, Some(("v.example", 1)), &[], &[opt(0)]), 1);
    // Header RCODE 0, OPT extended RCODE 1: BADVERS (16).
    let resp = message(5, 0x8180, Some(("v.example", 1)), &[], &[opt(1)]);
    let out = dgram(&mut s, ToClient, &resp, 2);
    assert_eq!(out[0].response_code, Some(16));
    assert_eq!(out[0].response_exception.as_deref(), Some("BADVERS"));
    assert_eq!(out[0].status, CallStatus::ClientError);

    // An OPT with extended RCODE 0 leaves the header's code.
    let resp = message(6, 0x8183, Some(("v.example", 1)), &[], &[opt(0)]);
    let out = dgram(&mut s, ToClient, &resp, 3);
    assert_eq!(out[0].response_code, Some(3));
}

#[test]
fn udp_unknown_type_and_opcode_names() {
    let mut s = udp();
    dgram(&mut s, ToServer, &query(1, "x.example", 65280), 1);
    let out = dgram(&mut s, ToClient, &response(1, 0x8180, "x.example", 65280, &[rr(65280, 1, b"zz")]), 2);
    assert_eq!(out[0].request_type.as_deref(), Some("TYPE65280"));
    assert_eq!(attr(&out[0], "dns.answers"), Some("TYPE65280"));
    for (t, name) in [(1, "A"), (2, "NS"), (5, "CNAME"), (6, "SOA"), (15, "MX"), (16, "TXT"), (12, "PTR")] {
        assert_eq!(parser::type_name(t), Some(name));
    }
    for (t, name) in [(33, "SRV"), (64, "SVCB"), (65, "HTTPS"), (255, "ANY"), (28, "AAAA")] {
        assert_eq!(parser::type_name(t), Some(name));
    }
    // MX answer listed by its type; NOTIFY opcode.
    let mut s = udp();
    dgram(&mut s, ToServer, &message(2, 0x2000, Some(("zone.example", 6)), &[], &[]), 1);
    let out =
        dgram(&mut s, ToClient, &message(2, 0xa400, Some(("zone.example", 6)), &[rr(15, 1, &[0, 10, 0])], &[]), 2);
    assert_eq!(attr(&out[0], "dns.opcode"), Some("NOTIFY"));
    assert_eq!(attr(&out[0], "dns.answers"), Some("MX"));
    assert_eq!(attr(&out[0], "dns.authoritative"), Some("true"));
}

#[test]
fn unanswered_query_times_out_on_finish() {
    let mut s = udp();
    dgram(&mut s, ToServer, &hex(EVE_QUERY), 500);
    let mut out = Vec::new();
    s.finish(9_000, &mut out);
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.status, CallStatus::Timeout);
    assert_eq!(c.request_ts, Some(500));
    assert_eq!((c.response_first_ts, c.response_end_ts, c.response_code), (None, None, None));
    assert_eq!(c.request_domain.as_deref(), Some("client-cf.dropbox.com"));
    assert_eq!(c.response_bytes, 0);
    assert_eq!(attrs(c), [("dns.id", "39339"), ("dns.opcode", "QUERY")]);
    assert_eq!(s.pending(), 0);
}

#[test]
fn expire_times_out_old_queries_only() {
    let mut s = udp();
    dgram(&mut s, ToServer, &query(1, "a.example", 1), 100);
    dgram(&mut s, ToServer, &query(2, "b.example", 1), 200);
    dgram(&mut s, ToServer, &query(3, "c.example", 1), 300);
    let mut out = Vec::new();
    s.expire(250, &mut out);
    let ids: Vec<_> = out.iter().map(|c| attr(c, "dns.id")).collect();
    assert_eq!(ids, [Some("1"), Some("2")]);
    assert!(out.iter().all(|c| c.status == CallStatus::Timeout));
    assert_eq!(s.pending(), 1);
    let out = dgram(&mut s, ToClient, &response(3, 0x8180, "c.example", 1, &[]), 301);
    assert_eq!(out[0].request_ts, Some(300));
}

#[test]
fn retransmitted_query_counts_retries() {
    let mut s = udp();
    let q = hex(EVE_QUERY);
    dgram(&mut s, ToServer, &q, 1_000);
    dgram(&mut s, ToServer, &q, 2_000);
    dgram(&mut s, ToServer, &q, 3_000);
    assert_eq!(s.pending(), 1);
    let out = dgram(&mut s, ToClient, &hex(EVE_ANSWER), 3_100);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_ts, Some(1_000), "the first copy is kept");
    assert_eq!(attr(&out[0], "dns.retries"), Some("2"));
    assert_sorted(&out[0]);
    // A second copy of the answer finds no query.
    let out = dgram(&mut s, ToClient, &hex(EVE_ANSWER), 3_200);
    assert_eq!(out[0].request_ts, None);
    assert_eq!(attr(&out[0], "dns.retries"), None);
}

#[test]
fn same_id_other_question_is_another_query() {
    let mut s = udp();
    dgram(&mut s, ToServer, &query(42, "a.example", 1), 1);
    dgram(&mut s, ToServer, &query(42, "a.example", 28), 2);
    assert_eq!(s.pending(), 2);
    let out = dgram(&mut s, ToClient, &response(42, 0x8180, "A.Example", 28, &[]), 3);
    assert_eq!(out[0].request_ts, Some(2));
    assert_eq!(out[0].request_type.as_deref(), Some("AAAA"));
    // Right id, wrong name: not an answer to the A query.
    let out = dgram(&mut s, ToClient, &response(42, 0x8180, "b.example", 1, &[]), 4);
    assert_eq!(out[0].request_ts, None);
    assert_eq!(s.pending(), 1);
}

#[test]
fn response_without_query() {
    let mut s = udp();
    let out = dgram(&mut s, ToClient, &hex(EVE_ANSWER), 5);
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.request_ts, None);
    assert_eq!(c.request_bytes, 0);
    assert_eq!(c.response_first_ts, Some(5));
    assert_eq!(c.status, CallStatus::Ok);
    // The response repeats the question.
    assert_eq!(c.request_domain.as_deref(), Some("client-cf.dropbox.com"));
    assert_eq!(attr(c, "dns.answers"), Some("52.85.112.21"));

    // Without a question section, the request fields stay empty.
    let out = dgram(&mut s, ToClient, &message(3, 0x8181, None, &[], &[]), 6);
    assert_eq!((out[0].request_type.as_deref(), out[0].request_domain.as_deref()), (None, None));
    assert_eq!(out[0].status, CallStatus::ClientError);
}

#[test]
fn max_pending_turns_oldest_into_timeout() {
    let cfg = SessionConfig { max_pending: 2, ..SessionConfig::default() };
    let mut s = Session::new(&cfg, Transport::Udp);
    assert!(dgram(&mut s, ToServer, &query(1, "a.example", 1), 1).is_empty());
    assert!(dgram(&mut s, ToServer, &query(2, "b.example", 1), 2).is_empty());
    let out = dgram(&mut s, ToServer, &query(3, "c.example", 1), 3);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, CallStatus::Timeout);
    assert_eq!(out[0].request_domain.as_deref(), Some("a.example"));
    assert_eq!(s.pending(), 2);
}

#[test]
fn udp_malformed_is_counted_and_skipped() {
    let mut s = udp();
    dgram(&mut s, ToServer, b"\x01\x02\x03", 1);
    // A pointer loop in the question.
    let mut m = message(8, 0x0100, None, &[], &[]);
    m[5] = 1;
    m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    assert!(dgram(&mut s, ToServer, &m, 2).is_empty());
    assert_eq!(s.malformed(), 2);
    // The session goes on.
    dgram(&mut s, ToServer, &hex(EVE_QUERY), 3);
    let out = dgram(&mut s, ToClient, &hex(EVE_ANSWER), 4);
    assert_eq!(out[0].status, CallStatus::Ok);
    assert_eq!(s.malformed(), 2);
}

#[test]
fn compression_loop_in_answer_does_not_hang() {
    let mut s = udp();
    dgram(&mut s, ToServer, &query(11, "loop.example", 5), 1);
    // A CNAME whose target points at itself, then an A record.
    let mut resp = response(11, 0x8180, "loop.example", 5, &[]);
    resp[7] = 2;
    let at = u16::try_from(resp.len() + 12).expect("small");
    let mut cname = vec![0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 1, 0, 2];
    cname.extend_from_slice(&(0xc000 | at).to_be_bytes());
    resp.extend_from_slice(&cname);
    resp.extend_from_slice(&rr(1, 1, &[1, 2, 3, 4]));
    let out = dgram(&mut s, ToClient, &resp, 2);
    assert_eq!(out.len(), 1);
    // The looping target is listed by its type, the next record read.
    assert_eq!(attr(&out[0], "dns.answers"), Some("CNAME,1.2.3.4"));

    // A pointer loop in the response's question: malformed, but the
    // waiting query ends as Unparsed instead of a timeout.
    dgram(&mut s, ToServer, &query(12, "x.example", 1), 3);
    let mut bad = message(12, 0x8180, None, &[], &[]);
    bad[5] = 1;
    bad.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    let out = dgram(&mut s, ToClient, &bad, 4);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, CallStatus::Unparsed);
    assert_eq!(out[0].request_domain.as_deref(), Some("x.example"));
    assert_eq!(out[0].response_bytes, bad.len() as u64);
    assert_eq!(s.malformed(), 1);
    assert_eq!(s.pending(), 0);
}

#[test]
fn answers_are_capped_at_eight() {
    let mut s = tcp();
    let mut out = Vec::new();
    let q = hex(GOOGLE_TCP_QUERY);
    assert_eq!(s.parse(ToServer, &q, 1, &mut out), Ok(q.len()));
    let a = hex(GOOGLE_TCP_ANSWER);
    assert_eq!(s.parse(ToClient, &a, 2, &mut out), Ok(a.len()));
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.request_domain.as_deref(), Some("www.google.com"));
    assert_eq!(attr(c, "dns.answer_count"), Some("12"));
    assert_eq!(
        attr(c, "dns.answers"),
        Some(
            "216.197.242.244,216.197.242.224,216.197.242.238,216.197.242.210,\
             216.197.242.230,216.197.242.223,216.197.242.245,216.197.242.231"
        )
    );
    assert_eq!((c.request_bytes, c.response_bytes), (55, 235));
}

// ---- session: TCP -------------------------------------------------------

#[test]
fn tcp_query_and_nxdomain() {
    let mut s = tcp();
    let mut out = Vec::new();
    let q = hex(TCP_QUERY);
    assert_eq!(s.parse(ToServer, &q, 1_000, &mut out), Ok(q.len()));
    let r = hex(TCP_NXDOMAIN);
    assert_eq!(s.parse(ToClient, &r, 177_754, &mut out), Ok(r.len()));
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.request_domain.as_deref(), Some("guoyongxin.com"));
    assert_eq!(c.request_type.as_deref(), Some("A"));
    assert_eq!(c.response_code, Some(3));
    assert_eq!(c.status, CallStatus::ClientError);
    assert_eq!(c.response_exception.as_deref(), Some("NXDOMAIN"));
    // Message lengths, without the 2-byte prefix.
    assert_eq!((c.request_bytes, c.response_bytes), (43, 116));
    assert_eq!((c.request_ts, c.response_end_ts), (Some(1_000), Some(177_754)));
}

#[test]
fn tcp_two_messages_in_one_segment() {
    let mut s = tcp();
    let mut out = Vec::new();
    let mut both = hex(TCP_QUERY);
    both.extend_from_slice(&hex(TCP_QUERY2));
    // And the first two bytes of a third message.
    both.extend_from_slice(&[0x00, 0x2b]);
    assert_eq!(s.parse(ToServer, &both, 10, &mut out), Ok(both.len() - 2));
    assert!(out.is_empty());
    assert_eq!(s.pending(), 2);
    let answers =
        [&hex(TCP_NXDOMAIN)[..], &tcp_framed(&[&response(0xecd4, 0x8180, "yunshan.net.cn", 1, &[])])].concat();
    assert_eq!(s.parse(ToClient, &answers, 20, &mut out), Ok(answers.len()));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].request_domain.as_deref(), Some("guoyongxin.com"));
    assert_eq!(out[1].request_domain.as_deref(), Some("yunshan.net.cn"));
    assert_eq!(out[1].status, CallStatus::Ok);
}

#[test]
fn tcp_split_byte_by_byte() {
    let mut s = tcp();
    let mut out = Vec::new();
    let mut client = Stream::new();
    let mut server = Stream::new();
    let q = [hex(TCP_QUERY), hex(TCP_QUERY2)].concat();
    for (i, b) in q.iter().enumerate() {
        client.feed(&mut s, ToServer, &[*b], 100 + i as i64, &mut out).expect("query bytes");
    }
    assert!(client.buf.is_empty());
    assert_eq!(s.pending(), 2);
    let r = hex(TCP_NXDOMAIN);
    for (i, b) in r.iter().enumerate() {
        server.feed(&mut s, ToClient, &[*b], 1_000 + i as i64, &mut out).expect("response bytes");
    }
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.request_domain.as_deref(), Some("guoyongxin.com"));
    // The first byte of the query, the first and last of the response.
    assert_eq!(c.request_ts, Some(100));
    assert_eq!(c.response_first_ts, Some(1_000));
    assert_eq!(c.response_end_ts, Some(1_000 + r.len() as i64 - 1));
    let mut out = Vec::new();
    s.finish(5_000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_domain.as_deref(), Some("yunshan.net.cn"));
    assert_eq!(out[0].request_ts, Some(100 + hex(TCP_QUERY).len() as i64));
    assert_eq!(out[0].status, CallStatus::Timeout);
}

#[test]
fn tcp_malformed_is_an_error() {
    let mut s = tcp();
    let mut out = Vec::new();
    assert_eq!(s.parse(ToServer, &[0, 5, 1, 2, 3, 4, 5], 1, &mut out), Err(L7Error::Malformed("dns_short_message")));
    let mut m = message(8, 0x0100, None, &[], &[]);
    m[5] = 1;
    m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    let mut s = tcp();
    let framed = tcp_framed(&[&m]);
    assert_eq!(s.parse(ToServer, &framed, 1, &mut out), Err(L7Error::Malformed("dns_pointer_loop")));
    let mut m = hex(EVE_QUERY);
    m.truncate(30);
    let framed = tcp_framed(&[&m]);
    assert_eq!(s.parse(ToServer, &framed, 1, &mut out), Err(L7Error::Malformed("dns_truncated")));
    assert_eq!(s.malformed(), 2);
    assert!(out.is_empty());

    let cfg = SessionConfig { max_message_bytes: 40, ..SessionConfig::default() };
    let mut s = Session::new(&cfg, Transport::Tcp);
    let q = hex(TCP_QUERY);
    assert_eq!(s.parse(ToServer, &q, 1, &mut out), Err(L7Error::TooLarge));
}

#[test]
fn tcp_gap_resyncs_on_next_message() {
    let mut s = tcp();
    let mut out = Vec::new();
    let q1 = hex(TCP_QUERY);
    // The first half of a query, then bytes were lost.
    assert_eq!(s.parse(ToServer, &q1[..20], 1, &mut out), Ok(0));
    s.on_gap(ToServer, 30);
    // After the gap: the tail of some message, then a whole query.
    let mut after = q1[25..].to_vec();
    after.extend_from_slice(&hex(TCP_QUERY2));
    let n = s.parse(ToServer, &after, 2, &mut out).expect("resyncs");
    assert_eq!(n, after.len());
    assert_eq!(s.pending(), 1);
    let mut out = Vec::new();
    s.finish(3, &mut out);
    assert_eq!(out[0].request_domain.as_deref(), Some("yunshan.net.cn"));
    assert_eq!(out[0].request_ts, Some(2));

    // Nothing plausible: skipped, but for a tail too short to judge.
    let mut s = tcp();
    let mut out = Vec::new();
    let mut server = Stream::new();
    s.on_gap(ToClient, 10);
    let junk = b"not dns at all, just text bytes";
    server.feed(&mut s, ToClient, junk, 1, &mut out).expect("skips");
    assert_eq!(server.buf.len(), 13);
    let r = tcp_framed(&[&response(1, 0x8180, "a.example", 1, &[])]);
    server.feed(&mut s, ToClient, &r, 2, &mut out).expect("resyncs");
    assert!(server.buf.is_empty());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_domain.as_deref(), Some("a.example"));

    // UDP ignores gaps.
    let mut s = udp();
    s.on_gap(ToServer, 10);
    assert!(dgram(&mut s, ToClient, &hex(EVE_ANSWER), 1).len() == 1);
}

// ---- never panic --------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 24) as u8
    }
}

/// A real message with a few bytes changed, or random bytes.
fn mutant(rng: &mut XorShift, corpus: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(4) == 0 {
        let len = rng.below(300);
        return (0..len).map(|_| rng.byte()).collect();
    }
    let mut m = corpus[rng.below(corpus.len())].clone();
    for _ in 0..rng.below(6) {
        if m.is_empty() {
            break;
        }
        let i = rng.below(m.len());
        m[i] = match rng.below(3) {
            0 => rng.byte(),
            1 => 0xc0 | rng.byte(),
            _ => m[i] ^ 1,
        };
    }
    if rng.below(5) == 0 {
        let keep = rng.below(m.len() + 1);
        m.truncate(keep);
    }
    m
}

#[test]
fn random_input_never_panics() {
    let udp_corpus: Vec<Vec<u8>> = [
        EVE_QUERY,
        EVE_ANSWER,
        EVE_CNAME_QUERY,
        EVE_CNAME_ANSWER,
        NSID_QUERY,
        NSID_ANSWER,
        AAAA_QUERY,
        AAAA_NODATA,
        PTR_QUERY,
        PTR_NXDOMAIN,
    ]
    .iter()
    .map(|h| hex(h))
    .collect();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let cfg = SessionConfig { max_pending: 8, ..SessionConfig::default() };
    for round in 0..300 {
        let mut out = Vec::new();
        // UDP: datagrams in both directions.
        let mut s = Session::new(&cfg, Transport::Udp);
        for _ in 0..40 {
            let m = mutant(&mut rng, &udp_corpus);
            let dir = if rng.below(2) == 0 { ToServer } else { ToClient };
            let _ = probe(&m, dir, Transport::Udp);
            let _ = parser::parse_message(&m).map(|msg| (msg.records().count(), msg.rcode()));
            assert_eq!(s.parse(dir, &m, round, &mut out), Ok(m.len()));
            assert!(s.pending() <= 8);
        }
        s.expire(round, &mut out);
        s.finish(round, &mut out);

        // TCP: framed mutants, random splits, random gaps.
        let mut s = Session::new(&cfg, Transport::Tcp);
        for dir in [ToServer, ToClient] {
            let mut stream = Vec::new();
            for _ in 0..10 {
                let m = mutant(&mut rng, &udp_corpus);
                if rng.below(8) == 0 {
                    stream.extend_from_slice(&m);
                } else {
                    stream.extend_from_slice(&tcp_framed(&[&m]));
                }
            }
            let mut feeder = Stream::new();
            let mut at = 0;
            while at < stream.len() {
                let n = 1 + rng.below(64).min(stream.len() - at - 1);
                let chunk = &stream[at..at + n];
                at += n;
                for k in 0..=chunk.len().min(16) {
                    let _ = probe(&chunk[..k], dir, Transport::Tcp);
                }
                if rng.below(16) == 0 {
                    feeder.buf.clear();
                    s.on_gap(dir, 7);
                }
                if feeder.feed(&mut s, dir, chunk, round, &mut out).is_err() {
                    break;
                }
            }
        }
        s.finish(round, &mut out);
        for c in &out {
            assert_sorted(c);
        }
    }
}

// ---- hickory-proto as an oracle -----------------------------------------

/// Every message hickory-proto decodes, this parser reads the same way:
/// header, first question, every record, answers' addresses and targets,
/// RCODE with its EDNS extension. (The converse need not hold: this parser
/// is more lenient, e.g. with names hickory finds invalid.)
#[test]
fn agrees_with_hickory_proto() {
    use hickory_proto::op::Message as HMessage;
    use hickory_proto::rr::RData;

    let mut corpus: Vec<Vec<u8>> = [
        EVE_QUERY,
        EVE_ANSWER,
        EVE_CNAME_QUERY,
        EVE_CNAME_ANSWER,
        NSID_QUERY,
        NSID_ANSWER,
        AAAA_QUERY,
        AAAA_NODATA,
        PTR_QUERY,
        PTR_NXDOMAIN,
    ]
    .iter()
    .map(|h| hex(h))
    .collect();
    for framed in [TCP_QUERY, TCP_NXDOMAIN, TCP_QUERY2, GOOGLE_TCP_QUERY, GOOGLE_TCP_ANSWER] {
        corpus.push(hex(framed)[2..].to_vec());
    }
    corpus.push(message(5, 0x8180, Some(("v.example", 1)), &[], &[opt(1)]));

    let lower = |l: &[u8]| l.to_ascii_lowercase();
    let mut rng = XorShift(0x853c_49e6_748f_ea9b);
    let mut checked = 0;
    for i in 0..30_000 {
        let m = if i < corpus.len() { corpus[i].clone() } else { mutant(&mut rng, &corpus) };
        let Ok(h) = HMessage::from_vec(&m) else { continue };
        checked += 1;
        let ours = parser::parse_message(&m).unwrap_or_else(|e| panic!("{e:?} where hickory reads {m:02x?}"));
        assert_eq!(ours.header.id, h.metadata.id);
        assert_eq!(ours.header.opcode(), u8::from(h.metadata.op_code));
        assert_eq!(ours.header.tc(), h.metadata.truncation);
        assert_eq!(ours.header.aa(), h.metadata.authoritative);
        assert_eq!(usize::from(ours.header.qdcount), h.queries.len());
        if let (Some(q), Some(hq)) = (ours.question, h.queries.first()) {
            assert_eq!(q.qtype, u16::from(hq.query_type()), "{m:02x?}");
            let a: Vec<Vec<u8>> = q.name.labels().map(lower).collect();
            let b: Vec<Vec<u8>> = hq.name().iter().map(lower).collect();
            assert_eq!(a, b, "{m:02x?}");
        }
        let records: Vec<_> = ours.records().collect::<Result<_, _>>().expect("records hickory reads");
        let answers: Vec<_> = records.iter().filter(|(s, _)| *s == Section::Answer).map(|(_, r)| r).collect();
        assert_eq!(answers.len(), h.answers.len());
        for (r, hr) in answers.iter().zip(&h.answers) {
            match &hr.data {
                RData::A(a) => assert_eq!(r.ipv4(), Some(a.0)),
                RData::AAAA(a) => assert_eq!(r.ipv6(), Some(a.0)),
                RData::CNAME(n) => {
                    let t = r.target().expect("CNAME target");
                    let a: Vec<Vec<u8>> = t.labels().map(lower).collect();
                    let b: Vec<Vec<u8>> = n.0.iter().map(lower).collect();
                    assert_eq!(a, b, "{m:02x?}");
                }
                _ => {}
            }
        }
        if ours.header.qr() {
            assert_eq!(ours.rcode(), u16::from(h.metadata.response_code), "{m:02x?}");
        }
    }
    assert!(checked > 1_000, "only {checked} messages decoded by hickory");
}
