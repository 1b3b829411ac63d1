//! Application protocols: detection by payload and one decoder per
//! protocol, each with the same shape.
//!
//! Every protocol lives in `l7/<proto>/` with the same four files:
//! - `parser.rs`: pure functions from `&[u8]` to borrowed message views,
//!   citing the RFC; no state.
//! - `session.rs`: the per-flow [`Decoder`] implementation: framing of the
//!   byte stream, request/response pairing, limits, and turning messages
//!   into [`Call`]s.
//! - `mod.rs`: `probe` (cheap detection on the first bytes of a direction)
//!   and re-exports.
//! - `tests.rs`: byte-array tests of parser and session.
//!
//! The analyzer feeds each direction's reassembled bytes, in order, to the
//! session; it reports lost bytes with `on_gap`. Sessions never read a
//! clock: every time comes with the bytes. A decoder fills typed fields of
//! [`Call`]; the record schema (column names) lives in the analyzer.

pub mod dns;
pub mod http1;
pub mod http2;
pub mod kafka;
pub mod mqtt;
pub mod mysql;
pub mod postgresql;
pub mod redis;
pub mod tls;

/// The protocols flowtrail decodes, in probe order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L7Protocol {
    Http1,
    Tls,
    Dns,
    Http2,
    Mysql,
    Postgresql,
    Redis,
    Kafka,
    Mqtt,
    /// gRPC is not probed: the HTTP/2 session labels its calls `grpc`
    /// when a stream carries `content-type: application/grpc`.
    Grpc,
}

impl L7Protocol {
    /// Every protocol with a probe and a session, in the order probes run.
    pub const ALL: [L7Protocol; 9] = [
        L7Protocol::Http1,
        L7Protocol::Tls,
        L7Protocol::Dns,
        L7Protocol::Http2,
        L7Protocol::Mysql,
        L7Protocol::Postgresql,
        L7Protocol::Redis,
        L7Protocol::Kafka,
        L7Protocol::Mqtt,
    ];

    /// The value of the `l7_protocol` column.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            L7Protocol::Http1 => "http",
            L7Protocol::Tls => "tls",
            L7Protocol::Dns => "dns",
            L7Protocol::Http2 => "http2",
            L7Protocol::Mysql => "mysql",
            L7Protocol::Postgresql => "postgresql",
            L7Protocol::Redis => "redis",
            L7Protocol::Kafka => "kafka",
            L7Protocol::Mqtt => "mqtt",
            L7Protocol::Grpc => "grpc",
        }
    }

    /// Position in [`L7Protocol::ALL`] (gRPC shares HTTP/2's).
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            L7Protocol::Http1 => 0,
            L7Protocol::Tls => 1,
            L7Protocol::Dns => 2,
            L7Protocol::Http2 | L7Protocol::Grpc => 3,
            L7Protocol::Mysql => 4,
            L7Protocol::Postgresql => 5,
            L7Protocol::Redis => 6,
            L7Protocol::Kafka => 7,
            L7Protocol::Mqtt => 8,
        }
    }

    /// Ports where this protocol is usual; they only break ties between
    /// probes that both match.
    #[must_use]
    pub fn default_ports(self) -> &'static [u16] {
        match self {
            L7Protocol::Http1 => &[80, 8080, 8000, 8008, 3128],
            L7Protocol::Tls => &[443, 8443, 6443, 993, 995, 465, 853],
            L7Protocol::Dns => &[53, 5353, 5355],
            L7Protocol::Http2 | L7Protocol::Grpc => &[80, 8080, 50051, 9090],
            L7Protocol::Mysql => &[3306, 3307, 33060],
            L7Protocol::Postgresql => &[5432, 5433, 6432],
            L7Protocol::Redis => &[6379, 6380, 26379],
            L7Protocol::Kafka => &[9092, 9093, 29092],
            L7Protocol::Mqtt => &[1883, 8883],
        }
    }
}

/// Which way bytes travel, relative to the flow's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer,
    ToClient,
}

/// Transport the bytes came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A reassembled byte stream.
    Tcp,
    /// One datagram per call to `parse`.
    Udp,
}

/// Answer of a cheap detection check on the first bytes of a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// These bytes start a message of this protocol.
    Match,
    /// They cannot.
    NoMatch,
    /// Too few bytes to tell; ask again with more.
    NeedMore,
}

/// How a call ended, the `response_status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    Ok,
    /// The client's fault (HTTP 4xx, DNS NXDOMAIN/FORMERR/REFUSED…).
    ClientError,
    /// The server's fault (HTTP 5xx, DNS SERVFAIL, TLS handshake failure…).
    ServerError,
    /// No response before the flow ended or the request timeout.
    Timeout,
    /// A response was seen but could not be parsed.
    Unparsed,
}

impl CallStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Ok => "ok",
            CallStatus::ClientError => "client_error",
            CallStatus::ServerError => "server_error",
            CallStatus::Timeout => "timeout",
            CallStatus::Unparsed => "unparsed",
        }
    }
}

/// Trace context found in a request (or response) header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// W3C `traceparent` trace id, B3 (`X-B3-TraceId` or `b3`) or `sw8`.
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub parent_span_id: Option<String>,
    /// `X-Request-ID` of the request.
    pub x_request_id: Option<String>,
    /// `X-Request-ID` of the response (proxies often add or echo it).
    pub x_request_id_response: Option<String>,
}

/// One request and its response (or its absence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub protocol: L7Protocol,
    /// First byte of the request; `None` when only a response was seen.
    pub request_ts: Option<i64>,
    /// First byte of the response.
    pub response_first_ts: Option<i64>,
    /// Last byte of the response.
    pub response_end_ts: Option<i64>,
    /// Method, DNS query type, `ClientHello`…
    pub request_type: Option<String>,
    /// Host, DNS query name, TLS SNI.
    pub request_domain: Option<String>,
    /// Path with query, DNS query name…
    pub request_resource: Option<String>,
    /// Protocol version (`HTTP/1.1`, `TLSv1.3`…).
    pub version: Option<String>,
    /// HTTP status, DNS rcode, TLS alert description…
    pub response_code: Option<i32>,
    pub status: CallStatus,
    /// Why it failed: reason phrase, rcode name, alert name…
    pub response_exception: Option<String>,
    /// Bytes of the request and response messages (headers and bodies).
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub user_agent: Option<String>,
    pub trace: TraceContext,
    /// Protocol details as `(key, value)` pairs with dotted keys
    /// (`dns.answers`, `tls.ja3`, `http.content_type`…), sorted by key.
    pub attributes: Vec<(String, String)>,
}

impl Call {
    /// An empty call of a protocol, status `Ok`.
    #[must_use]
    pub fn new(protocol: L7Protocol) -> Self {
        Call {
            protocol,
            request_ts: None,
            response_first_ts: None,
            response_end_ts: None,
            request_type: None,
            request_domain: None,
            request_resource: None,
            version: None,
            response_code: None,
            status: CallStatus::Ok,
            response_exception: None,
            request_bytes: 0,
            response_bytes: 0,
            user_agent: None,
            trace: TraceContext::default(),
            attributes: Vec::new(),
        }
    }
}

/// Why a session gave up on a direction (counted per protocol and kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L7Error {
    /// The bytes are not this protocol (or no longer in sync).
    Malformed(&'static str),
    /// A message exceeds the session's size limit.
    TooLarge,
    /// Too many requests waiting for responses.
    TooManyPending,
}

impl L7Error {
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            L7Error::Malformed(what) => what,
            L7Error::TooLarge => "too_large",
            L7Error::TooManyPending => "too_many_pending",
        }
    }
}

/// Options every session honours.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Largest message header block kept while waiting for its end.
    pub max_message_bytes: usize,
    /// Most requests waiting for a response before the oldest is dropped
    /// as a timeout call.
    pub max_pending: usize,
    /// Extra request headers to keep as `http.header.<name>` attributes
    /// (lower case). Authorization, Cookie and Set-Cookie are never kept.
    pub attr_headers: Vec<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig { max_message_bytes: 64 * 1024, max_pending: 256, attr_headers: Vec::new() }
    }
}

/// The per-flow decoder of one protocol.
///
/// `parse` gets the bytes of one direction in order. It returns how many
/// it consumed: everything up to the end of the last message it could
/// frame (bodies it skips count as consumed as they arrive). The caller
/// keeps the rest and calls again with it plus whatever comes next, so a
/// message split across segments is seen whole. With `Transport::Udp`
/// each call is one datagram and the return value is ignored.
pub trait Decoder {
    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error>;
    /// `len` bytes of direction `dir` were lost before the next `parse`.
    /// The session resynchronises at the next message boundary it finds.
    fn on_gap(&mut self, dir: Direction, len: u32);
    /// Requests older than `older_than` (capture time) become calls with
    /// status `Timeout`.
    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>);
    /// The flow ended at `end_ts`: every pending request becomes a call
    /// with status `Timeout`.
    fn finish(&mut self, end_ts: i64, out: &mut Vec<Call>);
    /// The connection switched to another protocol (TLS after STARTTLS-like
    /// requests, HTTP/2 after `Upgrade: h2c`, a CONNECT tunnel): the
    /// session stopped consuming at the switch, and the caller detects
    /// what follows in the bytes it did not consume.
    fn switched(&self) -> bool {
        false
    }
}

/// Runs every probe on the first bytes of a direction. A single match
/// wins; several are resolved by the server port; `NeedMore` from any
/// probe that could still match asks for more bytes.
#[must_use]
pub fn detect(data: &[u8], dir: Direction, transport: Transport, server_port: u16) -> Detection {
    let mut matches: [Option<L7Protocol>; L7Protocol::ALL.len()] = [None; L7Protocol::ALL.len()];
    let mut n = 0;
    let mut need_more = false;
    for proto in L7Protocol::ALL {
        let p = match proto {
            L7Protocol::Http1 => http1::probe(data, dir, transport),
            L7Protocol::Tls => tls::probe(data, dir, transport),
            L7Protocol::Dns => dns::probe(data, dir, transport),
            L7Protocol::Http2 | L7Protocol::Grpc => http2::probe(data, dir, transport),
            L7Protocol::Mysql => mysql::probe(data, dir, transport),
            L7Protocol::Postgresql => postgresql::probe(data, dir, transport),
            L7Protocol::Redis => redis::probe(data, dir, transport),
            L7Protocol::Kafka => kafka::probe(data, dir, transport),
            L7Protocol::Mqtt => mqtt::probe(data, dir, transport),
        };
        match p {
            Probe::Match => {
                matches[n] = Some(proto);
                n += 1;
            }
            Probe::NeedMore => need_more = true,
            Probe::NoMatch => {}
        }
    }
    match n {
        0 if need_more => Detection::NeedMore,
        0 => Detection::Unknown,
        1 => Detection::Found(matches[0].expect("one match")),
        _ => {
            let by_port = matches[..n].iter().flatten().find(|p| p.default_ports().contains(&server_port));
            Detection::Found(*by_port.unwrap_or(&matches[0].expect("first match")))
        }
    }
}

/// Result of [`detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    Found(L7Protocol),
    NeedMore,
    Unknown,
}

/// A session of any protocol (an enum: no boxing per flow).
#[derive(Debug)]
pub enum Session {
    Http1(http1::Session),
    Tls(tls::Session),
    Dns(dns::Session),
    Http2(http2::Session),
    Mysql(mysql::Session),
    Postgresql(postgresql::Session),
    Redis(redis::Session),
    Kafka(kafka::Session),
    Mqtt(mqtt::Session),
}

impl Session {
    #[must_use]
    pub fn new(proto: L7Protocol, transport: Transport, cfg: &SessionConfig) -> Self {
        match proto {
            L7Protocol::Http1 => Session::Http1(http1::Session::new(cfg, transport)),
            L7Protocol::Tls => Session::Tls(tls::Session::new(cfg, transport)),
            L7Protocol::Dns => Session::Dns(dns::Session::new(cfg, transport)),
            L7Protocol::Http2 | L7Protocol::Grpc => Session::Http2(http2::Session::new(cfg, transport)),
            L7Protocol::Mysql => Session::Mysql(mysql::Session::new(cfg, transport)),
            L7Protocol::Postgresql => Session::Postgresql(postgresql::Session::new(cfg, transport)),
            L7Protocol::Redis => Session::Redis(redis::Session::new(cfg, transport)),
            L7Protocol::Kafka => Session::Kafka(kafka::Session::new(cfg, transport)),
            L7Protocol::Mqtt => Session::Mqtt(mqtt::Session::new(cfg, transport)),
        }
    }

    #[must_use]
    pub fn protocol(&self) -> L7Protocol {
        match self {
            Session::Http1(_) => L7Protocol::Http1,
            Session::Tls(_) => L7Protocol::Tls,
            Session::Dns(_) => L7Protocol::Dns,
            Session::Http2(_) => L7Protocol::Http2,
            Session::Mysql(_) => L7Protocol::Mysql,
            Session::Postgresql(_) => L7Protocol::Postgresql,
            Session::Redis(_) => L7Protocol::Redis,
            Session::Kafka(_) => L7Protocol::Kafka,
            Session::Mqtt(_) => L7Protocol::Mqtt,
        }
    }

    fn inner(&mut self) -> &mut dyn Decoder {
        match self {
            Session::Http1(s) => s,
            Session::Tls(s) => s,
            Session::Dns(s) => s,
            Session::Http2(s) => s,
            Session::Mysql(s) => s,
            Session::Postgresql(s) => s,
            Session::Redis(s) => s,
            Session::Kafka(s) => s,
            Session::Mqtt(s) => s,
        }
    }
}

impl Decoder for Session {
    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        self.inner().parse(dir, data, ts, out)
    }
    fn on_gap(&mut self, dir: Direction, len: u32) {
        self.inner().on_gap(dir, len);
    }
    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        self.inner().expire(older_than, out);
    }
    fn finish(&mut self, end_ts: i64, out: &mut Vec<Call>) {
        self.inner().finish(end_ts, out);
    }
    fn switched(&self) -> bool {
        match self {
            Session::Http1(s) => s.switched(),
            Session::Mysql(s) => s.switched(),
            Session::Postgresql(s) => s.switched(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod shape {
    /// Every protocol folder has the same four files, no more, no less.
    #[test]
    fn every_protocol_has_the_same_shape() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/l7");
        let mut protocols = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if !entry.path().is_dir() {
                continue;
            }
            protocols += 1;
            let mut files: Vec<String> = std::fs::read_dir(entry.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files, ["mod.rs", "parser.rs", "session.rs", "tests.rs"], "{}", entry.path().display());
        }
        assert_eq!(protocols, super::L7Protocol::ALL.len());
    }

    /// Each probe recognises its own opening bytes and rejects the others'.
    #[test]
    fn probes_reject_each_others_first_bytes() {
        use super::{detect, Detection, Direction, L7Protocol, Transport};
        let http = b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n".as_slice();
        // A TLS 1.2 record header + ClientHello header (truncated body is enough to probe).
        let tls = [0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03].as_slice();
        // DNS query for example.test A, over UDP.
        let mut dns = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        dns.extend(b"\x07example\x04test\x00\x00\x01\x00\x01");
        assert_eq!(detect(http, Direction::ToServer, Transport::Tcp, 80), Detection::Found(L7Protocol::Http1));
        assert_eq!(detect(http, Direction::ToServer, Transport::Tcp, 443), Detection::Found(L7Protocol::Http1));
        assert!(matches!(
            detect(tls, Direction::ToServer, Transport::Tcp, 80),
            Detection::Found(L7Protocol::Tls) | Detection::NeedMore
        ));
        assert_eq!(detect(&dns, Direction::ToServer, Transport::Udp, 53), Detection::Found(L7Protocol::Dns));
        assert_eq!(detect(&dns, Direction::ToServer, Transport::Udp, 80), Detection::Found(L7Protocol::Dns));
        assert_eq!(detect(b"\x00\x01garbage on port 80", Direction::ToServer, Transport::Tcp, 80), Detection::Unknown);
        assert_eq!(detect(b"SSH-2.0-OpenSSH_9.2\r\n", Direction::ToServer, Transport::Tcp, 80), Detection::Unknown);
    }
}
