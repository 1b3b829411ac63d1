//! NAT path records: one link between two observations of the same
//! connection or request (see `crate::nat`).

use super::{record, Record};

record! {
    /// One link of an end-to-end chain.
    pub struct NatPathRecord (kind = "nat_paths") {
        /// The same for every link of one chain: of a connection for `l4`
        /// links, of a request for `l7` links (an `l7` link joins its `l4`
        /// links through the flow ids).
        pub path_id: i64,
        /// `l4`: the same connection (or datagram exchange) seen twice;
        /// `l7`: the same request seen downstream and upstream of a proxy.
        pub link_kind: String,
        /// What changed from `a` to `b`: `none`, `dnat` (server address or
        /// port), `snat` (client address or port), `dnat+snat`, `proxy` (a new
        /// connection: an L7 proxy or a TCP relay).
        pub translation: String,
        /// The key that linked them, in the order they are tried: `tcp_isn`,
        /// `toa`, `tcp_seq` (TCP connections whose start was not captured:
        /// overlapping client and server sequence ranges, see
        /// `flows.client_seq_first`), `dns_id`, `payload_hash`,
        /// `x_request_id`, `traceparent`, `timing`.
        pub match_method: String,
        /// 1 when every key agrees; lower when the link rests on fewer keys
        /// (see `crate::nat`).
        pub confidence: f64,
        /// Capture point of the observation nearer the client.
        pub a_capture_point: String,
        /// Its flow (`flows.flow_id`).
        pub a_flow_id: i64,
        /// Its call (`calls.call_id`), for `l7` and DNS links.
        pub a_call_id: Option<i64>,
        /// Client address of that flow.
        pub a_client_ip: String,
        /// Client port of that flow.
        pub a_client_port: i32,
        /// Server address of that flow.
        pub a_server_ip: String,
        /// Server port of that flow.
        pub a_server_port: i32,
        /// First packet of the flow (`l4`) or first byte of the request
        /// (`l7`) at `a`.
        pub a_start_ns: i64,
        /// The call's resource (`l7`, DNS).
        pub a_resource: Option<String>,
        /// Capture point of the observation nearer the server.
        pub b_capture_point: String,
        /// Its flow.
        pub b_flow_id: i64,
        /// Its call, for `l7` and DNS links.
        pub b_call_id: Option<i64>,
        /// Client address of that flow (after SNAT, the gateway's).
        pub b_client_ip: String,
        /// Client port of that flow.
        pub b_client_port: i32,
        /// Server address of that flow (after DNAT, the backend's).
        pub b_server_ip: String,
        /// Server port of that flow.
        pub b_server_port: i32,
        /// First packet of the flow or first byte of the request at `b`.
        pub b_start_ns: i64,
        /// The call's resource at `b`.
        pub b_resource: Option<String>,
        /// `tcp`, `udp`, `icmp`…
        pub l4_protocol: String,
        /// `b_start_ns - a_start_ns`: for `l4` the time the first packet took
        /// from `a` to `b`, for `l7` the time the proxy held the request before
        /// sending it upstream. Across hosts it includes their clock skew.
        pub hop_latency_ns: i64,
        /// Response code at `a` (`l7`, DNS).
        pub a_response_code: Option<i32>,
        /// Response code at `b` (`l7`, DNS).
        pub b_response_code: Option<i32>,
    }
}

impl Record for NatPathRecord {
    const KIND: &'static str = "nat_paths";
    const ABOUT: &'static str = "One row per link between two observations of the same connection or request (before and after a NAT, a load balancer or a proxy, or the same packets at two capture points). Side `a` is nearer the client. Written to `DIR/nat_paths/date=YYYY-MM-DD/hour=HH/`.";

    fn partition_ns(&self) -> i64 {
        self.a_start_ns
    }
    fn sort_key(&self) -> (i64, i64, i32) {
        (self.a_start_ns, self.path_id, i32::from(self.link_kind == "l7"))
    }
}
