//! Call records: one request and its response, from any L7 protocol.

use super::{record, Record};

record! {
    /// A request/response pair (or a request that got no answer).
    pub struct CallRecord (kind = "calls") {
        /// The flow the call was carried in (joins with `flows.flow_id`).
        pub flow_id: i64,
        /// Id of the call, unique and stable like `flow_id` (a hash of the flow
        /// id and `call_index`); NAT paths refer to calls by it.
        pub call_id: i64,
        /// Position of the call in its flow, from 0, in the order calls completed.
        pub call_index: i32,
        /// First byte of the request, or of the response when no request was seen.
        pub start_ns: i64,
        /// Last byte of the response; equal to `start_ns` for a call without
        /// response.
        pub end_ns: i64,
        /// First byte of the request (null when only the response was captured).
        pub request_ns: Option<i64>,
        /// First byte of the response.
        pub response_start_ns: Option<i64>,
        /// Last byte of the response.
        pub response_end_ns: Option<i64>,
        /// `response_end_ns - request_ns`: the call's latency as seen at the capture point.
        pub latency_ns: Option<i64>,
        /// `response_start_ns - request_ns`: time to the first response byte.
        pub first_byte_ns: Option<i64>,
        /// Where the packets were seen (as in flow records).
        pub capture_point: String,
        /// Kernel ifindex of the interface captured on (as in flow records).
        pub capture_ifindex: Option<i64>,
        /// Network namespace of that interface (as in flow records).
        pub capture_netns: Option<String>,
        /// Client address of the flow.
        pub client_ip: String,
        /// Client port.
        pub client_port: i32,
        /// Server address.
        pub server_ip: String,
        /// Server port.
        pub server_port: i32,
        /// `tcp` or `udp`.
        pub l4_protocol: String,
        /// `http`, `dns`, `tls`.
        pub l7_protocol: String,
        /// Protocol version (`HTTP/1.1`, `TLSv1.3`).
        pub version: Option<String>,
        /// HTTP method, DNS query type, `ClientHello`.
        pub request_type: Option<String>,
        /// HTTP Host, DNS query name, TLS SNI.
        pub request_domain: Option<String>,
        /// HTTP request target (path and query), DNS query name.
        pub request_resource: Option<String>,
        /// HTTP status, DNS rcode, TLS alert description.
        pub response_code: Option<i32>,
        /// `ok`, `client_error`, `server_error`, `timeout` (no response), `unparsed`.
        pub response_status: String,
        /// Why it failed: HTTP reason phrase, DNS rcode name, TLS alert name.
        pub response_exception: Option<String>,
        /// Bytes of the request (headers and body).
        pub request_bytes: i64,
        /// Bytes of the response (headers and body).
        pub response_bytes: i64,
        /// HTTP User-Agent.
        pub user_agent: Option<String>,
        /// Trace id from `traceparent`, B3 or `sw8`.
        pub trace_id: Option<String>,
        /// Span id from the same header.
        pub span_id: Option<String>,
        /// Parent span id, when the header carries one.
        pub parent_span_id: Option<String>,
        /// `X-Request-ID` of the request.
        pub x_request_id: Option<String>,
        /// `X-Request-ID` of the response.
        pub x_request_id_response: Option<String>,
        /// Protocol details with dotted keys: `dns.answers`, `tls.ja3`,
        /// `tls.ja4`, `tls.alpn`, `http.content_type`, `http.header.<name>`
        /// (from `--attr-header`)… Authorization and cookies are never stored.
        pub attributes: Vec<(String, String)>,
    }
}

impl Record for CallRecord {
    const KIND: &'static str = "calls";
    const ABOUT: &'static str = "One row per request/response pair (HTTP/1, DNS, TLS handshake), joinable to flows by `flow_id`. Written to `DIR/calls/date=YYYY-MM-DD/hour=HH/`.";

    fn partition_ns(&self) -> i64 {
        self.start_ns
    }
    fn sort_key(&self) -> (i64, i64, i32) {
        (self.start_ns, self.flow_id, self.call_index)
    }
}
