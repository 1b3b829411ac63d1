//! Byte-array tests of the HTTP/1 parser and session.

use super::parser::{self, ContentLength, TransferEncoding, MAX_HEADERS};
use super::{probe, Session};
use crate::l7::Direction::{ToClient, ToServer};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, Probe, SessionConfig, Transport};

// ---------------------------------------------------------------- helpers

/// Feeds a session the way the analyzer does: unconsumed bytes are kept and
/// presented again with the next ones; a direction that failed is no
/// longer fed; a gap drops what was kept.
struct Feeder {
    s: Session,
    held: [Vec<u8>; 2],
    failed: [Option<L7Error>; 2],
    max: usize,
    out: Vec<Call>,
}

fn idx(dir: Direction) -> usize {
    match dir {
        ToServer => 0,
        ToClient => 1,
    }
}

impl Feeder {
    fn new() -> Self {
        Self::with(SessionConfig::default())
    }

    fn with(cfg: SessionConfig) -> Self {
        Feeder {
            s: Session::new(&cfg, Transport::Tcp),
            held: [Vec::new(), Vec::new()],
            failed: [None, None],
            max: cfg.max_message_bytes,
            out: Vec::new(),
        }
    }

    fn feed(&mut self, dir: Direction, bytes: &[u8], ts: i64) -> Result<(), L7Error> {
        let i = idx(dir);
        if let Some(e) = self.failed[i] {
            return Err(e);
        }
        self.held[i].extend_from_slice(bytes);
        match self.s.parse(dir, &self.held[i], ts, &mut self.out) {
            Ok(n) => {
                assert!(n <= self.held[i].len(), "consumed {n} of {}", self.held[i].len());
                assert!(n > 0 || self.held[i].len() <= self.max, "no progress with {} bytes", self.held[i].len());
                self.held[i].drain(..n);
                Ok(())
            }
            Err(e) => {
                self.failed[i] = Some(e);
                self.held[i].clear();
                Err(e)
            }
        }
    }

    fn ok(&mut self, dir: Direction, bytes: &[u8], ts: i64) {
        self.feed(dir, bytes, ts).expect("parse");
    }

    /// Feeds `bytes` in pieces of `step` bytes, all at time `ts`.
    fn pieces(&mut self, dir: Direction, bytes: &[u8], ts: i64, step: usize) {
        for piece in bytes.chunks(step.max(1)) {
            self.ok(dir, piece, ts);
        }
    }

    fn gap(&mut self, dir: Direction, len: u32) {
        self.held[idx(dir)].clear();
        self.s.on_gap(dir, len);
    }

    fn finish(&mut self, ts: i64) {
        self.s.finish(ts, &mut self.out);
    }

    fn take(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.out)
    }

    fn one(&mut self) -> Call {
        let mut calls = self.take();
        assert_eq!(calls.len(), 1, "{calls:#?}");
        calls.pop().expect("one call")
    }
}

fn attr<'a>(call: &'a Call, key: &str) -> Option<&'a str> {
    call.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n").into_bytes()
}

fn ok_len(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// xorshift64*: deterministic randomness without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

// ------------------------------------------------------------------ probe

#[test]
fn probe_requests() {
    let p = |d: &[u8]| probe(d, ToServer, Transport::Tcp);
    assert_eq!(p(b"GET / HTTP/1.1\r\n"), Probe::Match);
    assert_eq!(p(b"GET /index.html HTTP/1.0\n"), Probe::Match);
    assert_eq!(p(b"POST /api?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"), Probe::Match);
    assert_eq!(p(b"PROPFIND /dav/ HTTP/1.1\r\n"), Probe::Match);
    assert_eq!(p(b"M-SEARCH * HTTP/1.1\r\n"), Probe::Match);
    assert_eq!(p(b"CONNECT example.com:443 HTTP/1.1\r\n"), Probe::Match);
    assert_eq!(p(b"OPTIONS * HTTP/1.1\r\n"), Probe::Match);
    for prefix in
        [&b""[..], b"G", b"GE", b"GET", b"GET ", b"GET /", b"GET /a HTTP/1.", b"GET /a HTTP/1.1", b"GET /a HTTP/1.1\r"]
    {
        assert_eq!(p(prefix), Probe::NeedMore, "{:?}", String::from_utf8_lossy(prefix));
    }
    assert_eq!(p(b"PROPF"), Probe::NeedMore);
}

#[test]
fn probe_rejects_garbage() {
    let p = |d: &[u8]| probe(d, ToServer, Transport::Tcp);
    assert_eq!(p(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), Probe::NoMatch, "TLS");
    assert_eq!(p(b"SSH-2.0-OpenSSH_9.6\r\n"), Probe::NoMatch);
    assert_eq!(p(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Probe::NoMatch, "h2 preface");
    assert_eq!(p(b"FOO / HTTP/1.1\r\n"), Probe::NoMatch, "unknown method");
    assert_eq!(p(b"get / HTTP/1.1\r\n"), Probe::NoMatch, "methods are case-sensitive");
    assert_eq!(p(b"GET / HTTP/2.0\r\n"), Probe::NoMatch);
    assert_eq!(p(b"GET / HTTP/1.1x\r\n"), Probe::NoMatch);
    assert_eq!(p(b"GET /a b HTTP/1.1\r\n"), Probe::NoMatch);
    assert_eq!(p(b"GET\t/ HTTP/1.1\r\n"), Probe::NoMatch);
    assert_eq!(p(b"GET \x01 HTTP/1.1\r\n"), Probe::NoMatch);
    assert_eq!(p(b"\r\nGET / HTTP/1.1\r\n"), Probe::NoMatch);
    assert_eq!(p(b"HTTP/1.1 200 OK\r\n"), Probe::NoMatch, "a response from the client");
    // A very long but valid target is a match once the limit is reached.
    let mut long = b"GET /".to_vec();
    long.resize(super::PROBE_LINE_LIMIT + 10, b'a');
    assert_eq!(p(&long), Probe::Match);
    let mut spaces = b"GET ".to_vec();
    spaces.resize(super::PROBE_LINE_LIMIT + 10, b' ');
    assert_eq!(p(&spaces), Probe::NoMatch);
}

#[test]
fn probe_responses_and_udp() {
    let p = |d: &[u8]| probe(d, ToClient, Transport::Tcp);
    assert_eq!(p(b"HTTP/1.1 200 OK\r\n"), Probe::Match);
    assert_eq!(p(b"HTTP/1.0 404 "), Probe::Match);
    assert_eq!(p(b"HTTP/1.1 204\r\n"), Probe::Match);
    for prefix in [&b""[..], b"H", b"HTTP/1.", b"HTTP/1.1", b"HTTP/1.1 ", b"HTTP/1.1 20", b"HTTP/1.1 200"] {
        assert_eq!(p(prefix), Probe::NeedMore, "{:?}", String::from_utf8_lossy(prefix));
    }
    assert_eq!(p(b"HTTP/2 200\r\n"), Probe::NoMatch);
    assert_eq!(p(b"HTTP/1.1 20x OK"), Probe::NoMatch);
    assert_eq!(p(b"HTTP/1.1 2000 OK"), Probe::NoMatch);
    assert_eq!(p(b"GET / HTTP/1.1\r\n"), Probe::NoMatch);
    assert_eq!(p(b"\x00\x00\x00\x04\x01\x00\x00\x00"), Probe::NoMatch);
    assert_eq!(probe(b"GET / HTTP/1.1\r\n", ToServer, Transport::Udp), Probe::NoMatch);
    assert_eq!(probe(b"HTTP/1.1 200 OK\r\n", ToClient, Transport::Udp), Probe::NoMatch);
}

// ----------------------------------------------------------------- parser

#[test]
fn parser_request_head() {
    let data =
        b"\r\nPOST /a?b=c HTTP/1.0\r\nHost: x\r\nContent-Length: 3, 3\r\nx-b3-traceid: 0123456789abcdef\r\n\r\nabc";
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parser::parse_request(data, &mut h).expect("valid").expect("complete");
    assert_eq!(head.method, "POST");
    assert_eq!(head.target, "/a?b=c");
    assert_eq!(head.minor, 0);
    assert_eq!(&data[head.head_len..], b"abc");
    assert_eq!(head.fields.host, Some(&b"x"[..]));
    assert_eq!(head.fields.content_length(), ContentLength::Valid(3));
    assert_eq!(head.fields.transfer_encoding(), TransferEncoding::Absent);
    assert_eq!(head.fields.x_b3_trace_id, Some(&b"0123456789abcdef"[..]));
    assert_eq!(parser::header_values(head.headers, "HOST").collect::<Vec<_>>(), vec![&b"x"[..]]);

    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert!(parser::parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n", &mut h).expect("valid").is_none());
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert_eq!(parser::parse_request(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", &mut h).err(), Some("http_header"));
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert_eq!(parser::parse_request(b"GET / HTTP/9.9\r\n\r\n", &mut h).err(), Some("http_request_line"));

    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert_eq!(parser::parse_request(&many, &mut h).err(), Some("http_too_many_headers"));
}

#[test]
fn parser_response_head() {
    let data = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parser::parse_response(data, &mut h).expect("valid").expect("complete");
    assert_eq!((head.minor, head.code, head.reason), (1, 503, &b"Service Unavailable"[..]));
    assert_eq!(head.head_len, data.len());
    assert_eq!(head.fields.transfer_encoding(), TransferEncoding::Chunked);

    // Reason phrases with obs-text are kept (httparse blanks them).
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head =
        parser::parse_response(b"HTTP/1.1 404 Nicht gefunden \xfc\r\n\r\n", &mut h).expect("ok").expect("complete");
    assert_eq!(head.reason, b"Nicht gefunden \xfc");
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parser::parse_response(b"HTTP/1.1 200\r\n\r\n", &mut h).expect("ok").expect("complete");
    assert_eq!(head.reason, b"");
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert_eq!(parser::parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n", &mut h).err(), Some("http_status_line"));
}

#[test]
fn parser_framing_fields() {
    let fields = |raw: &[u8]| {
        let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let n = httparse::parse_headers(raw, &mut h).expect("headers").unwrap().1.len();
        let f = parser::summarize(&h[..n]);
        (f.content_length(), f.transfer_encoding())
    };
    assert_eq!(fields(b"Content-Length: 10\r\n\r\n").0, ContentLength::Valid(10));
    assert_eq!(fields(b"Content-Length: 10\r\ncontent-length: 10\r\n\r\n").0, ContentLength::Valid(10));
    assert_eq!(fields(b"Content-Length: 10\r\nContent-Length: 11\r\n\r\n").0, ContentLength::Invalid);
    assert_eq!(fields(b"Content-Length: -1\r\n\r\n").0, ContentLength::Invalid);
    assert_eq!(fields(b"Content-Length: 99999999999999999999999\r\n\r\n").0, ContentLength::Invalid);
    assert_eq!(fields(b"Content-Length:\r\n\r\n").0, ContentLength::Invalid);
    assert_eq!(fields(b"Transfer-Encoding: chunked\r\n\r\n").1, TransferEncoding::Chunked);
    assert_eq!(fields(b"Transfer-Encoding: CHUNKED \r\n\r\n").1, TransferEncoding::Chunked);
    assert_eq!(fields(b"Transfer-Encoding: chunked, gzip\r\n\r\n").1, TransferEncoding::Other);
    assert_eq!(fields(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n").1, TransferEncoding::Chunked);
}

#[test]
fn parser_chunk_lines() {
    assert_eq!(parser::parse_chunk_line(b"1a\r\n"), Ok(26));
    assert_eq!(parser::parse_chunk_line(b"0\r\n"), Ok(0));
    assert_eq!(parser::parse_chunk_line(b"FF;name=value\r\n"), Ok(255));
    assert_eq!(parser::parse_chunk_line(b"\r\n"), Err("http_chunk_size"));
    assert_eq!(parser::parse_chunk_line(b"zz\r\n"), Err("http_chunk_size"));
    assert_eq!(parser::parse_chunk_line(b"5\n"), Err("http_chunk_size"));
    assert_eq!(parser::parse_chunk_line(b"fffffffffffffffff\r\n"), Err("http_chunk_size"));
}

#[test]
fn parser_trace_headers() {
    let tp = parser::parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").expect("valid");
    assert_eq!(tp.trace_id, Some(&b"4bf92f3577b34da6a3ce929d0e0e4736"[..]));
    assert_eq!(tp.span_id, Some(&b"00f067aa0ba902b7"[..]));
    assert_eq!(tp.parent_span_id, None);
    assert!(parser::parse_traceparent(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    assert!(parser::parse_traceparent(b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
    assert!(parser::parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01").is_none());
    assert!(parser::parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x").is_none());
    assert!(parser::parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x").is_some());

    let b3 =
        parser::parse_b3_single(b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90").expect("b3");
    assert_eq!(b3.trace_id, Some(&b"80f198ee56343ba864fe8b2a57d3eff7"[..]));
    assert_eq!(b3.span_id, Some(&b"e457b5a2e4d86bd1"[..]));
    assert_eq!(b3.parent_span_id, Some(&b"05e3ac9a4f6e3b90"[..]));
    assert!(parser::parse_b3_single(b"1").is_none());
    assert!(parser::parse_b3_single(b"d").is_none());

    let (trace, span) = parser::parse_sw8(
        b"1-YTRlYzZmYzhjY2FiNGJiNGI2ODIwNjQ2OThjYzk3ZTYuNzQuMTYyMTgzODExMDQ1NTAwMDk=-YTRlYzZmYzhjY2FiNGJiNGI2ODIwNjQ2OThjYzk3ZTYuNzQuMTYyMTgzODExMDQ1NTAwMDg=-2-Z2F0ZXdheQ==-Z3ctMUAxMC4wLjAuMQ==-L2FwaQ==-MTAuMC4wLjI6ODA4MA==",
    )
    .expect("sw8");
    assert_eq!(trace, "a4ec6fc8ccab4bb4b682064698cc97e6.74.16218381104550009");
    assert_eq!(span.as_deref(), Some("a4ec6fc8ccab4bb4b682064698cc97e6.74.16218381104550008-2"));
    assert!(parser::parse_sw8(b"2-YWJj-YWJj-1").is_none());
    assert!(parser::parse_sw8(b"1-!!!!-YWJj-1").is_none());
    assert_eq!(parser::base64_text(b"YWJj").as_deref(), Some("abc"));
    assert_eq!(parser::base64_text(b"YWI").as_deref(), Some("ab"));
    assert_eq!(parser::base64_text(b"YQ==").as_deref(), Some("a"));
    assert_eq!(parser::base64_text(b"Y"), None);
}

#[test]
fn parser_head_prefixes() {
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let data = b"\r\nPUT /p HTTP/1.1\r\nHost: a\r\nbad line\r\nUser-Agent: x\r\nAcce";
    let head = parser::parse_request_prefix(data, &mut h).expect("request-line");
    assert_eq!((head.method, head.target, head.minor), ("PUT", "/p", 1));
    assert_eq!(head.head_len, data.len() - 4);
    assert_eq!((head.fields.host, head.fields.user_agent), (Some(&b"a"[..]), Some(&b"x"[..])));
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert!(parser::parse_request_prefix(b"GET /p HTTP/1.1", &mut h).is_none(), "line not complete");
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert!(parser::parse_request_prefix(b"GET /p HTTP/3\r\nHost: a\r\n", &mut h).is_none());
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head =
        parser::parse_response_prefix(b"HTTP/1.0 404 Gone\r\nContent-Type: t\r\nX", &mut h).expect("status-line");
    assert_eq!((head.minor, head.code, head.reason), (0, 404, &b"Gone"[..]));
    assert_eq!(head.fields.content_type, Some(&b"t"[..]));
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert!(parser::parse_response_prefix(b"HTTP/1.1 2xx\r\n", &mut h).is_none());
}

// ---------------------------------------------------------------- session

#[test]
fn simple_exchange_fields() {
    let req = b"GET /index.html?q=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nUser-Agent: curl/8.5.0\r\nReferer: http://ref/\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nX-Request-ID: req-1\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nX-Request-ID: resp-1\r\n\r\nhello";
    let mut f = Feeder::new();
    f.ok(ToServer, req, 100);
    assert!(f.out.is_empty());
    assert_eq!(f.s.pending_requests(), 1);
    f.ok(ToClient, &resp[..resp.len() - 3], 200);
    assert!(f.out.is_empty(), "body not complete");
    f.ok(ToClient, &resp[resp.len() - 3..], 250);
    let c = f.one();
    assert_eq!(c.request_ts, Some(100));
    assert_eq!(c.response_first_ts, Some(200));
    assert_eq!(c.response_end_ts, Some(250));
    assert_eq!(c.request_type.as_deref(), Some("GET"));
    assert_eq!(c.request_domain.as_deref(), Some("example.com:8080"));
    assert_eq!(c.request_resource.as_deref(), Some("/index.html?q=1"));
    assert_eq!(c.version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(c.response_code, Some(200));
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!(c.response_exception, None);
    assert_eq!(c.request_bytes, req.len() as u64);
    assert_eq!(c.response_bytes, resp.len() as u64);
    assert_eq!(c.user_agent.as_deref(), Some("curl/8.5.0"));
    assert_eq!(c.trace.x_request_id.as_deref(), Some("req-1"));
    assert_eq!(c.trace.x_request_id_response.as_deref(), Some("resp-1"));
    assert_eq!(
        c.attributes,
        vec![
            ("http.content_type".to_owned(), "text/html".to_owned()),
            ("http.referer".to_owned(), "http://ref/".to_owned()),
            ("http.x_forwarded_for".to_owned(), "10.0.0.1, 10.0.0.2".to_owned()),
        ]
    );
    assert_eq!(f.s.pending_requests(), 0);
    f.finish(300);
    assert!(f.take().is_empty());
}

#[test]
fn keep_alive_sequence_with_request_bodies() {
    let mut f = Feeder::new();
    let post = b"POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n{\"a\":12345}";
    for i in 0..3 {
        let t = i * 1000;
        f.ok(ToServer, &post[..40], t);
        f.ok(ToServer, &post[40..], t + 1);
        f.ok(ToClient, &ok_len("done"), t + 10);
        let c = f.one();
        assert_eq!((c.request_ts, c.response_end_ts), (Some(t), Some(t + 10)));
        assert_eq!(c.request_bytes, post.len() as u64);
        assert_eq!(c.request_type.as_deref(), Some("POST"));
    }
}

/// Three pipelined requests in one segment, responses (Content-Length,
/// chunked, 404) fed in pieces of every size from 1 byte up.
#[test]
fn pipelining_any_split() {
    let mut reqs = get("/1");
    reqs.extend(get("/2"));
    reqs.extend(b"HEAD /3 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    let mut resps = ok_len("abc");
    resps.extend(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nExpires: never\r\n\r\n");
    resps.extend(b"HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\n");
    for step in [1, 2, 3, 5, 7, 13, 64, 1000] {
        let mut f = Feeder::new();
        f.ok(ToServer, &reqs, 10);
        assert_eq!(f.s.pending_requests(), 3);
        f.pieces(ToClient, &resps, 20, step);
        let calls = f.take();
        let got: Vec<_> = calls.iter().map(|c| (c.request_resource.as_deref(), c.response_code, c.status)).collect();
        assert_eq!(
            got,
            vec![
                (Some("/1"), Some(200), CallStatus::Ok),
                (Some("/2"), Some(200), CallStatus::Ok),
                (Some("/3"), Some(404), CallStatus::ClientError),
            ],
            "step {step}"
        );
        assert_eq!(calls.iter().map(|c| c.response_bytes).sum::<u64>(), resps.len() as u64, "step {step}");
        assert_eq!(calls[2].response_exception.as_deref(), Some("Not Found"));
        assert_eq!(f.s.pending_requests(), 0);
    }
}

#[test]
fn pipelining_byte_by_byte_both_directions() {
    let mut reqs = get("/a");
    reqs.extend(b"POST /b HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    reqs.extend(get("/c"));
    let resps = [ok_len("1"), ok_len("22"), ok_len("333")].concat();
    let mut f = Feeder::new();
    for (i, b) in reqs.iter().enumerate() {
        f.ok(ToServer, &[*b], i as i64);
    }
    assert_eq!(f.s.pending_requests(), 3);
    for (i, b) in resps.iter().enumerate() {
        f.ok(ToClient, &[*b], 1000 + i as i64);
    }
    let calls = f.take();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1].request_bytes, reqs.len() as u64 - 2 * get("/a").len() as u64);
    assert_eq!(calls[0].request_ts, Some(0));
    assert_eq!(calls[1].request_ts, Some(get("/a").len() as i64));
    assert_eq!(calls[0].response_first_ts, Some(1000));
    assert_eq!(calls[2].response_end_ts, Some(1000 + resps.len() as i64 - 1));
}

#[test]
fn chunked_sizes_split_and_trailers() {
    let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n";
    let mut f = Feeder::new();
    f.ok(ToServer, &get("/big"), 1);
    f.ok(ToClient, resp, 2);
    f.ok(ToClient, &[b'x'; 0x1000], 3);
    // Chunk size split across calls, with an extension.
    f.ok(ToClient, b"\r\n1", 4);
    f.ok(ToClient, b"0;ext", 5);
    f.ok(ToClient, b"=1\r", 6);
    f.ok(ToClient, b"\n", 7);
    f.ok(ToClient, &[b'y'; 0x10], 8);
    f.ok(ToClient, b"\r", 9);
    f.ok(ToClient, b"\n0\r\nX-Checksum: 1", 10);
    assert!(f.out.is_empty());
    f.ok(ToClient, b"234\r\nX-Other: y\r\n", 11);
    assert!(f.out.is_empty());
    f.ok(ToClient, b"\r\n", 12);
    let c = f.one();
    assert_eq!(c.response_end_ts, Some(12));
    let total = resp.len() + 0x1000 + 3 + 9 + 0x10 + 1 + 17 + 17 + 2;
    assert_eq!(c.response_bytes, total as u64);
    // Next exchange still in sync.
    f.ok(ToServer, &get("/next"), 20);
    f.ok(ToClient, &ok_len("n"), 21);
    assert_eq!(f.one().request_resource.as_deref(), Some("/next"));
}

#[test]
fn continue_100() {
    let head = b"PUT /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
    let fin = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    let mut f = Feeder::new();
    f.ok(ToServer, head, 100);
    f.ok(ToClient, cont, 110);
    assert!(f.out.is_empty(), "interim responses do not complete a request");
    assert_eq!(f.s.pending_requests(), 1);
    f.ok(ToServer, b"data", 120);
    f.ok(ToClient, fin, 130);
    let c = f.one();
    assert_eq!(c.response_code, Some(201));
    assert_eq!(c.response_first_ts, Some(130));
    assert_eq!(c.response_end_ts, Some(130));
    assert_eq!(c.request_bytes, head.len() as u64 + 4);
    assert_eq!(c.response_bytes, (cont.len() + fin.len()) as u64);
}

#[test]
fn head_and_304_have_no_body() {
    let mut f = Feeder::new();
    let mut reqs = b"HEAD /file HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
    reqs.extend(b"GET /cached HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n");
    reqs.extend(b"DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n");
    reqs.extend(get("/after"));
    f.ok(ToServer, &reqs, 1);
    let mut resps = b"HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n".to_vec();
    resps.extend(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 999\r\nETag: \"x\"\r\n\r\n");
    resps.extend(b"HTTP/1.1 204 No Content\r\n\r\n");
    resps.extend(ok_len("after"));
    f.ok(ToClient, &resps, 2);
    let calls = f.take();
    let got: Vec<_> = calls.iter().map(|c| (c.request_resource.as_deref(), c.response_code)).collect();
    assert_eq!(
        got,
        vec![
            (Some("/file"), Some(200)),
            (Some("/cached"), Some(304)),
            (Some("/x"), Some(204)),
            (Some("/after"), Some(200))
        ]
    );
    assert!(calls.iter().all(|c| c.response_end_ts == Some(2)));
}

#[test]
fn websocket_upgrade_then_ignore_everything() {
    let req = b"GET /chat HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let mut f = Feeder::new();
    f.ok(ToServer, req, 1);
    let mut seg = resp.to_vec();
    seg.extend(b"\x81\x05hello\x00\xff garbage HTTP/1.1 200 OK\r\n\r\n");
    f.ok(ToClient, &seg, 2);
    let c = f.one();
    assert_eq!(c.response_code, Some(101));
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!(c.response_end_ts, Some(2));
    assert!(f.s.is_tunnel());
    f.ok(ToServer, b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58 GET / HTTP/1.1\r\n\r\n", 3);
    f.ok(ToClient, b"\x00\x01\x02", 4);
    f.gap(ToClient, 1000);
    f.ok(ToClient, b"HTTP/1.1 200 OK\r\n\r\n", 5);
    assert!(f.held.iter().all(Vec::is_empty));
    f.finish(6);
    assert!(f.take().is_empty());
}

#[test]
fn h2c_upgrade_after_request_with_body() {
    let req = b"POST /x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 2\r\n\r\nhi";
    let mut f = Feeder::new();
    f.ok(ToServer, req, 1);
    f.ok(
        ToClient,
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n\x00\x00\x12\x04\x00",
        2,
    );
    f.ok(ToServer, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 3);
    let c = f.one();
    assert_eq!((c.response_code, c.request_bytes), (Some(101), req.len() as u64));
}

#[test]
fn declined_upgrade_continues_http1() {
    let mut f = Feeder::new();
    f.ok(ToServer, b"GET /a HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n", 1);
    // The next request waits for the answer (it could be tunnel bytes).
    f.ok(ToServer, &get("/b"), 2);
    assert_eq!(f.s.pending_requests(), 1);
    f.ok(ToClient, &ok_len("a"), 3);
    f.ok(ToServer, b"", 4);
    assert_eq!(f.s.pending_requests(), 1);
    f.ok(ToClient, &ok_len("b"), 5);
    let calls = f.take();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].request_resource.as_deref(), Some("/b"));
    assert_eq!(calls[1].request_ts, Some(2), "time of the request's first byte");
}

#[test]
fn connect_tunnel() {
    let mut f = Feeder::new();
    f.ok(ToServer, b"CONNECT api.example.com:443 HTTP/1.1\r\nUser-Agent: curl\r\n\r\n\x16\x03\x01\x00\x05hello", 1);
    assert_eq!(f.held[0], b"\x16\x03\x01\x00\x05hello", "bytes after CONNECT wait for the answer");
    f.ok(ToClient, b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x02hi", 2);
    let c = f.one();
    assert_eq!(c.request_type.as_deref(), Some("CONNECT"));
    assert_eq!(c.request_resource.as_deref(), Some("api.example.com:443"));
    assert_eq!(c.request_domain, None, "no Host field");
    assert_eq!(c.response_code, Some(200));
    f.ok(ToServer, b"\x17\x03\x03\x00\x10 random", 3);
    assert!(f.held[0].is_empty());
    f.ok(ToClient, b"\x17\x03\x03 whatever", 4);
    f.finish(5);
    assert!(f.take().is_empty());
}

#[test]
fn connect_refused_then_retried() {
    let mut f = Feeder::new();
    f.ok(ToServer, b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 1);
    f.ok(
        ToClient,
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 4\r\n\r\ndeny",
        2,
    );
    let c = f.one();
    assert_eq!(c.status, CallStatus::ClientError);
    assert_eq!(c.response_exception.as_deref(), Some("Proxy Authentication Required"));
    assert!(!f.s.is_tunnel());
    f.ok(ToServer, b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n", 3);
    f.ok(ToClient, b"HTTP/1.1 200 OK\r\n\r\n", 4);
    assert_eq!(f.one().response_code, Some(200));
    assert!(f.s.is_tunnel());
}

#[test]
fn response_body_until_close() {
    let mut f = Feeder::new();
    f.ok(ToServer, b"GET /old HTTP/1.0\r\n\r\n", 100);
    f.ok(ToClient, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome ", 200);
    f.ok(ToClient, b"more bytes", 300);
    assert!(f.out.is_empty());
    f.finish(400);
    let c = f.one();
    assert_eq!(c.version.as_deref(), Some("HTTP/1.0"));
    assert_eq!(c.request_domain, None);
    assert_eq!(c.response_end_ts, Some(300), "last byte of the response");
    assert_eq!(c.response_bytes, 45 + 5 + 10);
    assert_eq!(attr(&c, "http.content_type"), Some("text/plain"));
}

#[test]
fn error_statuses() {
    let mut f = Feeder::new();
    f.ok(ToServer, &[get("/missing"), get("/down"), get("/weird")].concat(), 1);
    f.ok(ToClient, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 2);
    f.ok(ToClient, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", 3);
    f.ok(ToClient, b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n", 4);
    let calls = f.take();
    assert_eq!(calls[0].status, CallStatus::ClientError);
    assert_eq!(calls[0].response_exception.as_deref(), Some("Not Found"));
    assert_eq!(calls[1].status, CallStatus::ServerError);
    assert_eq!(calls[1].response_exception.as_deref(), Some("Service Unavailable"));
    assert_eq!(calls[2].status, CallStatus::Ok);
    assert_eq!(calls[2].response_exception, None);
}

fn trace_of(headers: &str) -> crate::l7::TraceContext {
    let mut f = Feeder::new();
    f.ok(ToServer, format!("GET / HTTP/1.1\r\nHost: h\r\n{headers}\r\n").as_bytes(), 1);
    f.ok(ToClient, b"HTTP/1.1 200 OK\r\nX-Request-Id: from-proxy\r\nContent-Length: 0\r\n\r\n", 2);
    f.one().trace
}

#[test]
fn trace_headers() {
    let t = trace_of(
        "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01\r\nX-B3-TraceId: 1111111111111111\r\n",
    );
    assert_eq!(t.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(t.span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(t.parent_span_id, None);
    assert_eq!(t.x_request_id_response.as_deref(), Some("from-proxy"));

    let t = trace_of("b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90\r\n");
    assert_eq!(t.trace_id.as_deref(), Some("80f198ee56343ba864fe8b2a57d3eff7"));
    assert_eq!(t.span_id.as_deref(), Some("e457b5a2e4d86bd1"));
    assert_eq!(t.parent_span_id.as_deref(), Some("05e3ac9a4f6e3b90"));

    let t = trace_of(
        "X-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124\r\nX-B3-SpanId: a2fb4a1d1a96d312\r\nX-B3-ParentSpanId: 0020000000000001\r\nX-B3-Sampled: 1\r\n",
    );
    assert_eq!(t.trace_id.as_deref(), Some("463ac35c9f6413ad48485a3953bb6124"));
    assert_eq!(t.span_id.as_deref(), Some("a2fb4a1d1a96d312"));
    assert_eq!(t.parent_span_id.as_deref(), Some("0020000000000001"));

    let t = trace_of("sw8: 1-YTRlYzZmYzhjY2FiNGJiNGI2ODIwNjQ2OThjYzk3ZTYuNzQuMTYyMTgzODExMDQ1NTAwMDk=-YTRlYzZmYzhjY2FiNGJiNGI2ODIwNjQ2OThjYzk3ZTYuNzQuMTYyMTgzODExMDQ1NTAwMDg=-2-Z2F0ZXdheQ==-Z3ctMUAxMC4wLjAuMQ==-L2FwaQ==-MTAuMC4wLjI6ODA4MA==\r\nX-Request-ID: 7f3c\r\n");
    assert_eq!(t.trace_id.as_deref(), Some("a4ec6fc8ccab4bb4b682064698cc97e6.74.16218381104550009"));
    assert_eq!(t.span_id.as_deref(), Some("a4ec6fc8ccab4bb4b682064698cc97e6.74.16218381104550008-2"));
    assert_eq!(t.x_request_id.as_deref(), Some("7f3c"));

    // An invalid traceparent falls back to the next format.
    let t = trace_of("traceparent: garbage\r\nb3: 80f198ee56343ba8-e457b5a2e4d86bd1\r\n");
    assert_eq!(t.trace_id.as_deref(), Some("80f198ee56343ba8"));
    let t = trace_of("");
    assert_eq!(t.trace_id, None);
    assert_eq!(t.x_request_id, None);
}

#[test]
fn secrets_are_never_kept() {
    let cfg = SessionConfig {
        attr_headers: vec![
            "Authorization".into(),
            "cookie".into(),
            " Proxy-Authorization ".into(),
            "set-cookie".into(),
            "X-Tenant".into(),
            "x-tenant".into(),
            "bad header".into(),
        ],
        ..SessionConfig::default()
    };
    let mut f = Feeder::with(cfg);
    f.ok(ToServer, b"GET /me HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer SECRET1\r\nCookie: sid=SECRET2\r\nProxy-Authorization: Basic SECRET3\r\nX-Tenant: acme\r\nX-Tenant: beta\r\n\r\n", 1);
    f.ok(ToClient, b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=SECRET4\r\nContent-Length: 0\r\n\r\n", 2);
    f.ok(ToServer, b"GET /again HTTP/1.1\r\nCookie: SECRET5\r\n\r\n", 3);
    f.finish(4);
    let calls = f.take();
    assert_eq!(calls.len(), 2);
    assert_eq!(attr(&calls[0], "http.header.x-tenant"), Some("acme, beta"));
    assert_eq!(calls[0].attributes.len(), 1, "{:?}", calls[0].attributes);
    let dump = format!("{calls:?}");
    assert!(!dump.contains("SECRET"), "{dump}");
    assert!(!dump.to_ascii_lowercase().contains("cookie"), "{dump}");
    assert!(!dump.to_ascii_lowercase().contains("authorization"), "{dump}");
}

#[test]
fn timeouts_from_finish_and_expire() {
    let mut f = Feeder::new();
    f.ok(ToServer, &get("/1"), 100);
    f.ok(ToServer, &get("/2"), 200);
    f.ok(ToServer, &get("/3"), 300);
    f.s.expire(250, &mut f.out);
    let calls = f.take();
    assert_eq!(calls.iter().map(|c| c.request_resource.as_deref()).collect::<Vec<_>>(), vec![Some("/1"), Some("/2")]);
    for c in &calls {
        assert_eq!(c.status, CallStatus::Timeout);
        assert_eq!((c.response_first_ts, c.response_end_ts, c.response_code), (None, None, None));
        assert_eq!(c.response_bytes, 0);
    }
    f.s.expire(250, &mut f.out);
    assert!(f.out.is_empty());
    f.finish(1000);
    let c = f.one();
    assert_eq!((c.request_resource.as_deref(), c.status), (Some("/3"), CallStatus::Timeout));
    assert_eq!(c.request_ts, Some(300));
}

#[test]
fn response_without_request() {
    // The capture began after the request: the response stands alone.
    let mut f = Feeder::new();
    f.ok(ToClient, b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\nno", 10);
    let c = f.one();
    assert_eq!((c.request_ts, c.request_type.clone(), c.request_resource.clone()), (None, None, None));
    assert_eq!(c.response_code, Some(500));
    assert_eq!(c.status, CallStatus::ServerError);
    assert_eq!(c.version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(c.response_bytes, 59);
}

#[test]
fn response_older_than_request_stands_alone() {
    let mut f = Feeder::new();
    f.ok(ToServer, &get("/late"), 50);
    f.ok(ToClient, &ok_len("x"), 40);
    let c = f.one();
    assert_eq!(c.request_ts, None);
    assert_eq!(f.s.pending_requests(), 1);
}

#[test]
fn capture_started_mid_message() {
    let mut f = Feeder::new();
    // Tail of a request body, then a request.
    f.ok(ToServer, b"ody\":1}\r\nmore\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n", 1);
    // Tail of a response body split so that the next status-line spans calls.
    f.ok(ToClient, b"</html>\r\nHTT", 2);
    f.ok(ToClient, b"P/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 3);
    let c = f.one();
    assert_eq!(c.request_resource.as_deref(), Some("/x"));
    assert_eq!(c.response_first_ts, Some(2));
}

#[test]
fn gap_in_body_stays_in_sync() {
    let mut f = Feeder::new();
    f.ok(ToServer, &get("/1"), 1);
    f.ok(ToServer, &get("/2"), 2);
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    f.ok(ToClient, resp, 3);
    f.ok(ToClient, b"012", 4);
    f.gap(ToClient, 4);
    f.ok(ToClient, b"789", 5);
    let c = f.one();
    assert_eq!(c.response_bytes, resp.len() as u64 + 10);
    assert_eq!(c.response_end_ts, Some(5));
    assert_eq!(f.s.resyncs(), 0);
    // Chunked data gap, and a gap ending exactly at the body's end.
    f.ok(ToClient, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123", 6);
    f.gap(ToClient, 8);
    f.ok(ToClient, b"cdef\r\n0\r\n\r\n", 7);
    assert_eq!(f.one().request_resource.as_deref(), Some("/2"));
    f.ok(ToServer, &get("/3"), 8);
    f.ok(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234", 9);
    f.gap(ToClient, 5);
    let c = f.one_after_flush();
    assert_eq!((c.request_resource.as_deref(), c.response_end_ts), (Some("/3"), None));
    // A request body gap.
    f.ok(ToServer, b"POST /4 HTTP/1.1\r\nContent-Length: 6\r\n\r\nab", 10);
    f.gap(ToServer, 2);
    f.ok(ToServer, b"ef", 11);
    f.ok(ToServer, &get("/5"), 12);
    assert_eq!(f.s.pending_requests(), 2);
    assert_eq!(f.s.resyncs(), 0);
}

impl Feeder {
    /// Calls produced by a gap come out with the next parse, expire or finish.
    fn one_after_flush(&mut self) -> Call {
        self.s.expire(i64::MIN, &mut self.out);
        self.one()
    }
}

#[test]
fn gap_in_request_head_resyncs_at_next_request() {
    let mut f = Feeder::new();
    f.ok(ToServer, b"GET /cut HTTP/1.1\r\nHo", 1);
    f.gap(ToServer, 50);
    f.ok(ToServer, b"st: x\r\n\r\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n", 2);
    // The request whose head was cut is kept from its request-line.
    assert_eq!(f.s.pending_requests(), 2);
    assert_eq!(f.s.resyncs(), 1);
    f.ok(ToClient, &[ok_len("cut"), ok_len("b")].concat(), 3);
    let calls = f.take();
    assert_eq!((calls[0].request_resource.as_deref(), calls[0].request_domain.as_deref()), (Some("/cut"), None));
    assert_eq!(calls[0].request_ts, Some(1));
    assert_eq!((calls[1].request_resource.as_deref(), calls[1].request_domain.as_deref()), (Some("/b"), Some("y")));
    // A gap before the request-line is complete loses the request.
    f.ok(ToServer, b"GET /lo", 4);
    f.gap(ToServer, 50);
    f.ok(ToServer, &get("/after"), 5);
    assert_eq!(f.s.pending_requests(), 1);
    f.ok(ToClient, &ok_len("a"), 6);
    assert_eq!(f.one().request_resource.as_deref(), Some("/after"));
    // Out of sync in a chunked body: resync at the next request, found
    // at the start of a later call.
    f.ok(ToServer, b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 4);
    f.gap(ToServer, 100);
    f.ok(ToServer, b"zzzzzzzzz\r\n0\r\n", 5);
    f.ok(ToServer, b"\r\n", 6);
    f.ok(ToServer, &get("/d"), 7);
    assert_eq!(f.s.pending_requests(), 2);
    f.ok(ToClient, &ok_len("c"), 8);
    f.ok(ToClient, &ok_len("d"), 9);
    let calls = f.take();
    assert_eq!(calls.iter().map(|c| c.request_resource.as_deref()).collect::<Vec<_>>(), vec![Some("/c"), Some("/d")]);
}

#[test]
fn gap_in_response_head_loses_that_response_only() {
    let mut f = Feeder::new();
    f.ok(ToServer, &get("/a"), 1);
    // The status-line was seen: the call keeps it, its end is unknown.
    f.ok(ToClient, b"HTTP/1.1 503 Busy\r\nCont", 2);
    f.gap(ToClient, 100);
    f.ok(ToServer, &get("/b"), 3);
    f.ok(ToClient, b"t\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 4);
    // Not even a status-line: the request is Unparsed.
    f.ok(ToServer, &get("/c"), 5);
    f.ok(ToClient, b"HTTP/1.1 2", 6);
    f.gap(ToClient, 100);
    f.ok(ToServer, &get("/d"), 7);
    f.ok(ToClient, &ok_len("d"), 8);
    let calls = f.take();
    let got: Vec<_> =
        calls.iter().map(|c| (c.request_resource.as_deref(), c.status, c.response_code, c.response_end_ts)).collect();
    assert_eq!(
        got,
        vec![
            (Some("/a"), CallStatus::ServerError, Some(503), None),
            (Some("/b"), CallStatus::Ok, Some(201), Some(4)),
            (Some("/c"), CallStatus::Unparsed, None, None),
            (Some("/d"), CallStatus::Ok, Some(200), Some(8)),
        ]
    );
    assert_eq!(calls[0].response_first_ts, Some(2));
    assert_eq!(calls[0].response_exception.as_deref(), Some("Busy"));
    assert_eq!(f.s.resyncs(), 2);
}

/// A capture with a small snap length: each segment is cut, the rest of it
/// is a gap. Heads still give their start-line and complete fields.
#[test]
fn snaplen_truncated_heads_are_salvaged() {
    let mut f = Feeder::new();
    let req = b"GET /big.bin HTTP/1.1\r\nHost: 10.99.7.20\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
    f.ok(ToServer, &req[..62], 10);
    f.gap(ToServer, (req.len() - 62) as u32);
    let resp =
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\nContent-Length: 307200\r\n\r\n";
    f.ok(ToClient, &resp[..62], 20);
    f.gap(ToClient, 1386);
    for i in 0..5 {
        f.ok(ToClient, &[0u8; 62], 21 + i);
        f.gap(ToClient, 1386);
    }
    f.finish(30);
    let c = f.one();
    assert_eq!(c.request_type.as_deref(), Some("GET"));
    assert_eq!(c.request_resource.as_deref(), Some("/big.bin"));
    assert_eq!(c.request_domain.as_deref(), Some("10.99.7.20"));
    assert_eq!(c.user_agent, None, "its line was cut");
    assert_eq!((c.request_ts, c.response_first_ts, c.response_end_ts), (Some(10), Some(20), None));
    assert_eq!((c.response_code, c.status), (Some(200), CallStatus::Ok));
    assert_eq!(attr(&c, "http.content_type"), None, "its line was cut");
}

#[test]
fn oversized_head_still_gives_its_request_line() {
    let cfg = SessionConfig { max_message_bytes: 1024, ..SessionConfig::default() };
    let mut f = Feeder::with(cfg);
    let head = format!("GET /huge HTTP/1.1\r\nHost: h\r\nCookie: {}\r\n\r\n", "c".repeat(3000));
    assert_eq!(f.feed(ToServer, head.as_bytes(), 1), Err(L7Error::TooLarge));
    f.ok(ToClient, &ok_len("x"), 2);
    let c = f.one();
    assert_eq!((c.request_resource.as_deref(), c.request_domain.as_deref()), (Some("/huge"), Some("h")));
    assert_eq!(c.response_code, Some(200));
    // The same head in pieces.
    let mut f = Feeder::with(SessionConfig { max_message_bytes: 1024, ..SessionConfig::default() });
    let mut r = Ok(());
    for piece in head.as_bytes().chunks(100) {
        r = f.feed(ToServer, piece, 1);
        if r.is_err() {
            break;
        }
    }
    assert_eq!(r, Err(L7Error::TooLarge));
    f.finish(2);
    let c = f.one();
    assert_eq!((c.request_resource.as_deref(), c.status), (Some("/huge"), CallStatus::Timeout));
}

#[test]
fn gap_swallowing_whole_responses() {
    let mut f = Feeder::new();
    f.ok(ToServer, &get("/a"), 1);
    f.gap(ToClient, 500);
    f.ok(ToServer, &get("/b"), 3);
    f.ok(ToClient, &ok_len("b"), 4);
    let calls = f.take();
    let got: Vec<_> = calls.iter().map(|c| (c.request_resource.as_deref(), c.status)).collect();
    assert_eq!(got, vec![(Some("/a"), CallStatus::Unparsed), (Some("/b"), CallStatus::Ok)]);
    // Requests still waiting at the end after a server gap are Unparsed.
    f.ok(ToServer, &get("/c"), 5);
    f.gap(ToClient, 100);
    f.finish(6);
    assert_eq!(f.one().status, CallStatus::Unparsed);
    // A gap too small to hold a response (a FIN counted as a byte) is not
    // a lost response.
    let mut f = Feeder::new();
    f.ok(ToServer, &get("/slow"), 1);
    f.gap(ToClient, 1);
    f.finish(2);
    assert_eq!(f.one().status, CallStatus::Timeout);
}

#[test]
fn max_pending_overflow() {
    let cfg = SessionConfig { max_pending: 2, ..SessionConfig::default() };
    let mut f = Feeder::with(cfg);
    for i in 0..5 {
        f.ok(ToServer, &get(&format!("/{i}")), i);
    }
    let dropped = f.take();
    assert_eq!(
        dropped.iter().map(|c| c.request_resource.as_deref()).collect::<Vec<_>>(),
        vec![Some("/0"), Some("/1"), Some("/2")]
    );
    assert!(dropped.iter().all(|c| c.status == CallStatus::Timeout));
    assert_eq!(f.s.dropped_pending(), 3);
    assert_eq!(f.s.pending_requests(), 2);
    f.ok(ToClient, &[ok_len("3"), ok_len("4")].concat(), 10);
    assert_eq!(
        f.take().iter().map(|c| c.request_resource.as_deref()).collect::<Vec<_>>(),
        vec![Some("/3"), Some("/4")]
    );
}

#[test]
fn malformed_heads_are_errors() {
    let mut f = Feeder::new();
    assert_eq!(f.feed(ToServer, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 1), Err(L7Error::Malformed("http_header")));
    // The direction is given up: later bytes are ignored, not errors.
    assert_eq!(f.s.parse(ToServer, b"GET / HTTP/1.1\r\n\r\n", 2, &mut f.out), Ok(18));

    let mut f = Feeder::new();
    f.ok(ToServer, &[get("/1"), get("/2"), get("/3")].concat(), 1);
    f.ok(ToClient, &ok_len("1"), 2);
    assert_eq!(
        f.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 3),
        Err(L7Error::Malformed("http_content_length"))
    );
    f.finish(4);
    let calls = f.take();
    let got: Vec<_> = calls.iter().map(|c| (c.status, c.response_code)).collect();
    assert_eq!(got, vec![(CallStatus::Ok, Some(200)), (CallStatus::Ok, Some(200)), (CallStatus::Unparsed, None)]);

    let mut f = Feeder::new();
    f.ok(ToServer, &get("/"), 1);
    f.ok(ToClient, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 2);
    assert_eq!(f.feed(ToClient, b"zz\r\n", 3), Err(L7Error::Malformed("http_chunk_size")));
    let c = f.one();
    assert_eq!((c.response_code, c.response_end_ts), (Some(200), None));

    let mut f = Feeder::new();
    f.ok(ToServer, &get("/"), 1);
    assert_eq!(
        f.feed(ToServer, b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 2),
        Err(L7Error::Malformed("http_transfer_encoding"))
    );

    let mut f = Feeder::new();
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(f.feed(ToServer, &many, 1), Err(L7Error::Malformed("http_too_many_headers")));
}

#[test]
fn oversized_head_is_too_large() {
    let cfg = SessionConfig { max_message_bytes: 1024, ..SessionConfig::default() };
    let mut f = Feeder::with(cfg.clone());
    f.ok(ToServer, b"GET / HTTP/1.1\r\n", 1);
    let mut r = Ok(());
    for _ in 0..100 {
        r = f.feed(ToServer, b"X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n", 2);
        if r.is_err() {
            break;
        }
    }
    assert_eq!(r, Err(L7Error::TooLarge));
    // Also when the whole oversized head arrives at once.
    let mut f = Feeder::with(cfg.clone());
    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
    head.extend(format!("X-Big: {}\r\n\r\n", "b".repeat(2000)).as_bytes());
    assert_eq!(f.feed(ToServer, &head, 1), Err(L7Error::TooLarge));
    // Trailers count too.
    let mut f = Feeder::with(cfg);
    f.ok(ToServer, &get("/"), 1);
    f.ok(ToClient, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", 2);
    let trailer = format!("X-T: {}\r\n", "t".repeat(100));
    let mut r = Ok(());
    for _ in 0..20 {
        r = f.feed(ToClient, trailer.as_bytes(), 3);
        if r.is_err() {
            break;
        }
    }
    assert_eq!(r, Err(L7Error::TooLarge));
}

#[test]
fn big_head_byte_by_byte_is_linear() {
    // 60 KiB of header fed one byte at a time: quadratic re-parsing would
    // take billions of steps.
    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..60 {
        head.extend(format!("X-F{i}: {}\r\n", "v".repeat(1000)).as_bytes());
    }
    head.extend(b"\r\n");
    let mut f = Feeder::new();
    for b in &head {
        f.ok(ToServer, &[*b], 1);
    }
    assert_eq!(f.s.pending_requests(), 1);
    assert!(f.held[0].is_empty());
}

#[test]
fn udp_is_ignored() {
    let mut s = Session::new(&SessionConfig::default(), Transport::Udp);
    let mut out = Vec::new();
    assert_eq!(s.parse(ToServer, b"M-SEARCH * HTTP/1.1\r\n\r\n", 1, &mut out), Ok(23));
    s.finish(2, &mut out);
    assert!(out.is_empty());
}

// ----------------------------------------------------------- properties

/// Same calls whatever the segmentation, when every piece has the same time.
#[test]
fn any_segmentation_gives_the_same_calls() {
    let mut reqs = Vec::new();
    let mut resps = Vec::new();
    let (mut req_ends, mut resp_starts) = (Vec::new(), Vec::new());
    for i in 0..6 {
        reqs.extend(get(&format!("/r{i}")));
        req_ends.push(reqs.len());
        resp_starts.push(resps.len());
        resps.extend(match i % 3 {
            0 => ok_len(&"x".repeat(i * 7)),
            1 => {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: 1\r\n\r\n"
                    .to_vec()
            }
            _ => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\n!".to_vec(),
        });
    }
    let mut whole = Feeder::new();
    whole.ok(ToServer, &reqs, 7);
    whole.ok(ToClient, &resps, 7);
    whole.finish(7);
    let expected = whole.take();
    assert_eq!(expected.len(), 6);
    let allowed = |a: usize| {
        let complete = req_ends.iter().filter(|&&e| e <= a).count();
        resp_starts.get(complete).copied().unwrap_or(resps.len())
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200 {
        let mut f = Feeder::new();
        let (mut a, mut b) = (0, 0);
        while a < reqs.len() || b < resps.len() {
            if rng.below(2) == 0 && a < reqs.len() {
                let n = 1 + rng.below(40).min(reqs.len() - a - 1);
                f.ok(ToServer, &reqs[a..a + n], 7);
                a += n;
            } else if b < allowed(a) {
                // A response is sent once its request is complete.
                let n = 1 + rng.below(40).min(allowed(a) - b - 1);
                f.ok(ToClient, &resps[b..b + n], 7);
                b += n;
            } else if a < reqs.len() {
                f.ok(ToServer, &reqs[a..], 7);
                a = reqs.len();
            }
        }
        f.finish(7);
        assert_eq!(f.take(), expected);
    }
}

/// Random bytes, random splits, random gaps, expiries and limits never
/// panic, always make progress and never hold more than the limit.
#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let valid: Vec<u8> = [
        get("/x"),
        b"POST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
        ok_len("abc"),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n".to_vec(),
        b"HTTP/1.1 101 Switching\r\n\r\n".to_vec(),
        b"CONNECT a:1 HTTP/1.1\r\n\r\n".to_vec(),
        b"HTTP/1.0 200 OK\r\n\r\n".to_vec(),
        b"\r\n".to_vec(),
        b"HEAD / HTTP/1.1\r\n\r\n".to_vec(),
        b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
    ]
    .concat();
    let requests = [
        get("/x"),
        b"POST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
        b"DELETE /d HTTP/1.1\r\n\r\n".to_vec(),
        b"PUT /z HTTP/1.1\r\nContent-Length: 3\r\nX-A: 1\r\nCookie: c\r\n\r\nabc".to_vec(),
    ]
    .concat();
    let responses = [
        ok_len("abc"),
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nT: x\r\n\r\n".to_vec(),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno".to_vec(),
        ok_len(&"z".repeat(50)),
    ]
    .concat();
    let (mut answered, mut errors) = (0, 0);
    for round in 0..400 {
        let cfg = SessionConfig {
            max_message_bytes: [64, 300, 4096, 65536][rng.below(4)],
            max_pending: if round % 4 == 3 { 64 } else { 1 + rng.below(4) },
            attr_headers: vec!["x-a".into(), "cookie".into()],
        };
        let mut f = Feeder::with(cfg);
        let mut ts = 0;
        let mut cursors = [0usize; 2];
        for _ in 0..80 {
            ts += rng.below(3) as i64;
            let mut dir = if rng.below(2) == 0 { ToServer } else { ToClient };
            if round % 4 == 3 && cursors[1] * requests.len() >= cursors[0] * responses.len() {
                // Mostly, responses follow their requests.
                dir = ToServer;
            }
            match rng.below(20) {
                0 => {
                    let lost = rng.below(200);
                    cursors[idx(dir)] += lost;
                    f.gap(dir, lost as u32);
                    continue;
                }
                1 if round % 4 != 3 => {
                    f.s.expire(ts - 5, &mut f.out);
                    continue;
                }
                _ => {}
            }
            let len = rng.below(120);
            let bytes: Vec<u8> = match round % 4 {
                // The conversation in order, in random pieces, rarely flipped.
                3 => {
                    let (stream, cursor) = match dir {
                        ToServer => (&requests, &mut cursors[0]),
                        ToClient => (&responses, &mut cursors[1]),
                    };
                    let at = *cursor % stream.len();
                    let mut v = stream[at..(at + len).min(stream.len())].to_vec();
                    *cursor += v.len();
                    if rng.below(100) == 0 && !v.is_empty() {
                        let i = rng.below(v.len());
                        v[i] = rng.next() as u8;
                    }
                    v
                }
                // Pure noise, biased to HTTP's structural bytes.
                0 => (0..len)
                    .map(|_| b"GET HTTP/1.1 200\r\n:0123456789abcdef;x "[rng.below(38)] ^ (rng.below(16) == 0) as u8)
                    .collect(),
                // Slices of valid messages, with bytes flipped.
                1 => {
                    let at = rng.below(valid.len());
                    let mut v = valid[at..(at + len).min(valid.len())].to_vec();
                    for _ in 0..rng.below(3) {
                        if !v.is_empty() {
                            let i = rng.below(v.len());
                            v[i] = rng.next() as u8;
                        }
                    }
                    v
                }
                _ => (0..len).map(|_| rng.next() as u8).collect(),
            };
            let _ = f.feed(dir, &bytes, ts);
        }
        f.finish(ts + 1);
        errors += f.failed.iter().flatten().count();
        let calls = f.take();
        answered += calls.iter().filter(|c| c.request_ts.is_some() && c.response_code.is_some()).count();
        for c in calls {
            assert!(c.attributes.windows(2).all(|w| w[0].0 <= w[1].0));
            assert!(!c.attributes.iter().any(|(k, _)| k.contains("cookie")));
        }
    }
    // The inputs reach the interesting paths: paired calls and errors.
    eprintln!("random_input_never_panics: {answered} paired calls, {errors} errors");
    assert!(answered > 1000 && errors > 50, "{answered} paired calls, {errors} errors");
}
