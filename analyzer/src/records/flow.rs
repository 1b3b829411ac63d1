//! Flow records: one bidirectional conversation at one capture point.

use super::{record, Record};

record! {
    /// A bidirectional flow, or one period of a long flow.
    pub struct FlowRecord (kind = "flows") {
        /// Stable id of the flow: the same in every period record of it and
        /// in the call records made from it. Derived from the capture point,
        /// the 5-tuple and the start time, so it does not depend on threads.
        pub flow_id: i64,
        /// `final` when the flow ended (or the input did), `period` for the
        /// record a long flow emits at each period boundary (default 60 s of
        /// capture time, aligned to the minute).
        pub record_kind: String,
        /// Time of the first packet this record counts.
        pub start_ns: i64,
        /// Time of the last packet this record counts.
        pub end_ns: i64,
        /// Time of the flow's first packet (equal to `start_ns` in the first record).
        pub flow_start_ns: i64,
        /// Where the packets were seen: the file's name (or `--point NAME=FILE`),
        /// followed by `/interface` for pcapng files.
        pub capture_point: String,
        /// File the packets were read from (base name); empty for live capture.
        pub capture_file: String,
        /// Interface: pcapng `if_name` (else `if<N>`) for files, the
        /// interface captured on for live capture.
        pub capture_interface: String,
        /// `file` for replay; `afpacket`, `tc` or `xdp` for live capture.
        pub capture_mode: String,
        /// Kernel ifindex of the interface captured on (live capture, as in
        /// `/sys/class/net/<if>/ifindex` of its namespace); null for files,
        /// whose formats carry none.
        pub capture_ifindex: Option<i64>,
        /// Network namespace the interface was captured in: its `ip netns`
        /// name (or the path it was opened by); null in the initial
        /// namespace, for files, or when unknown.
        pub capture_netns: Option<String>,
        /// Which way the client's packets crossed the captured interface:
        /// `ingress` (received by it), `egress` (sent by it), `mixed` (both
        /// were seen in this flow); null when the capture mode does not say
        /// (classic pcap, pcapng without `epb_flags`). Known for `tc`
        /// (hook), `xdp` (always ingress), `afpacket` (`sll_pkttype`) and
        /// pcapng `epb_flags`. Over the whole flow so far; packets that
        /// came as reassembled IP fragments do not count.
        pub client_direction: Option<String>,
        /// Outer 802.1Q/802.1ad VLAN id of the innermost Ethernet header.
        pub vlan_outer: Option<i32>,
        /// Inner VLAN id when the frame is double tagged (QinQ).
        pub vlan_inner: Option<i32>,
        /// Outermost tunnel: `vxlan`, `geneve`, `gre`, `erspan1`, `erspan2`,
        /// `erspan3`, `ipip`, `ip6ip`; null when not tunnelled.
        pub tunnel_type: Option<String>,
        /// VNI, GRE key or ERSPAN session id of that tunnel.
        pub tunnel_id: Option<i64>,
        /// Source address of the tunnel's outer IP header (first packet).
        pub tunnel_outer_src: Option<String>,
        /// Destination address of the tunnel's outer IP header (first packet).
        pub tunnel_outer_dst: Option<String>,
        /// Number of nested tunnels.
        pub tunnel_depth: Option<i32>,
        /// Client MAC of the innermost Ethernet header.
        pub client_mac: Option<String>,
        /// Server MAC of the innermost Ethernet header.
        pub server_mac: Option<String>,
        /// 4 or 6.
        pub ip_version: i32,
        /// `tcp`, `udp`, `icmp`, `icmpv6`, or the IP protocol number.
        pub l4_protocol: String,
        /// Application protocol detected from the payload; null until L7
        /// detection runs on the flow.
        pub l7_protocol: Option<String>,
        /// Client address (innermost IP header).
        pub client_ip: String,
        /// Client port; the ICMP echo identifier for ICMP echo flows.
        pub client_port: i32,
        /// Server address.
        pub server_ip: String,
        /// Server port; the ICMP echo identifier for ICMP echo flows.
        pub server_port: i32,
        /// How the client was chosen: `syn` (sender of the SYN), `synack`
        /// (receiver of the SYN-ACK), `echo` (sender of the ICMP echo request),
        /// `port` (the side with the well-known port is the server), or
        /// `first_packet` (sender of the first packet seen).
        pub client_by: String,
        /// Packets from client to server.
        pub client_packets: i64,
        /// Packets from server to client.
        pub server_packets: i64,
        /// Bytes on the wire from client to server (whole frames, as captured
        /// on the link, tunnel headers included).
        pub client_bytes: i64,
        /// Bytes on the wire from server to client.
        pub server_bytes: i64,
        /// Transport payload bytes from client to server (per headers, also
        /// when the capture snapped them).
        pub client_payload_bytes: i64,
        /// Transport payload bytes from server to client.
        pub server_payload_bytes: i64,
        /// IP fragments from client to server that were reassembled.
        pub client_fragments: i64,
        /// IP fragments from server to client that were reassembled.
        pub server_fragments: i64,
        /// OR of the TCP flags the client sent (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128).
        pub client_tcp_flags: Option<i32>,
        /// OR of the TCP flags the server sent.
        pub server_tcp_flags: Option<i32>,
        /// SYN segments (without ACK) from the client.
        pub syn_count: Option<i64>,
        /// SYN-ACK segments from the server.
        pub synack_count: Option<i64>,
        /// FIN segments from the client.
        pub client_fin_count: Option<i64>,
        /// FIN segments from the server.
        pub server_fin_count: Option<i64>,
        /// RST segments from the client.
        pub client_rst_count: Option<i64>,
        /// RST segments from the server.
        pub server_rst_count: Option<i64>,
        /// Handshake round trip on the client side of the capture point:
        /// first ACK from the client after the SYN-ACK, minus that SYN-ACK.
        pub rtt_client_ns: Option<i64>,
        /// Handshake round trip on the server side of the capture point:
        /// first SYN-ACK minus the last SYN before it.
        pub rtt_server_ns: Option<i64>,
        /// Client segments that resent data already seen (Wireshark's rule:
        /// below the highest sequence sent, not explained as reordering).
        pub client_retransmissions: Option<i64>,
        /// Server segments that resent data already seen.
        pub server_retransmissions: Option<i64>,
        /// Client segments that filled a hole within an RTT of the hole
        /// appearing (reordering rather than loss).
        pub client_out_of_order: Option<i64>,
        /// Server segments that filled a hole within an RTT.
        pub server_out_of_order: Option<i64>,
        /// Client segments advertising a zero receive window.
        pub client_zero_window: Option<i64>,
        /// Server segments advertising a zero receive window.
        pub server_zero_window: Option<i64>,
        /// Initial sequence number of the client (from its SYN).
        pub client_isn: Option<i64>,
        /// Initial sequence number of the server (from its SYN-ACK).
        pub server_isn: Option<i64>,
        /// Lowest TCP sequence number (absolute, 0..2^32) of the segments
        /// the client sent that this record counts (RSTs aside): with
        /// `client_seq_next`, the range of the client's byte stream the record
        /// saw, also when the handshake was not captured. NAT leaves sequence
        /// numbers alone, so one connection seen at two points has
        /// overlapping ranges (the `tcp_seq` NAT path rule).
        pub client_seq_first: Option<i64>,
        /// Highest `seq + payload length (+1 for SYN or FIN)` of the same
        /// segments, modulo 2^32: one past the last sequence number the
        /// client used. Equal to `client_seq_first` when the client sent
        /// only pure ACKs.
        pub client_seq_next: Option<i64>,
        /// Lowest sequence number of the server's segments in this record.
        pub server_seq_first: Option<i64>,
        /// One past the highest sequence number of the server's segments.
        pub server_seq_next: Option<i64>,
        /// IPv4 identification of the client's first SYN (NAT correlation key).
        pub syn_ip_id: Option<i32>,
        /// MSS option of the client's first SYN.
        pub syn_mss: Option<i32>,
        /// Window scale option of the client's first SYN.
        pub syn_wscale: Option<i32>,
        /// Timestamp option TSval of the client's first SYN.
        pub syn_tsval: Option<i64>,
        /// Smallest TTL / hop limit the client's packets carried (null if none seen).
        pub client_ttl_min: Option<i32>,
        /// Largest TTL / hop limit the client's packets carried.
        pub client_ttl_max: Option<i32>,
        /// Smallest TTL / hop limit the server's packets carried (null if none seen).
        pub server_ttl_min: Option<i32>,
        /// Largest TTL / hop limit the server's packets carried.
        pub server_ttl_max: Option<i32>,
        /// How the flow ended: `fin` (both sides sent FIN), `client_rst`,
        /// `server_rst` (first RST after the handshake), `refused` (RST answered
        /// the SYN), `no_synack` (SYN never answered), `half_closed` (one side's
        /// FIN only, then idle), `timeout` (established, then idle),
        /// `unknown_start` (handshake not captured, ended idle or by end of
        /// input), `open` (still open when the input ended, or a `period` record).
        pub close_type: String,
        /// Real client address carried in the TCP TOA option (kind 254, or 200
        /// from IPVS FULLNAT) of the client's packets, when present.
        pub toa_client_ip: Option<String>,
        /// Real client port from the same TOA option.
        pub toa_client_port: Option<i32>,
        /// FNV-1a (64 bit, as a signed integer) of the first 64 bytes of the
        /// first payload the client sent: the same request seen at two capture
        /// points hashes alike whatever NAT did to its addresses.
        pub client_payload_hash: Option<i64>,
        /// The same for the first payload the server sent.
        pub server_payload_hash: Option<i64>,
    }
}

impl Record for FlowRecord {
    const KIND: &'static str = "flows";
    const ABOUT: &'static str = "One row per bidirectional flow per capture point (and per period for long flows). Written to `DIR/flows/date=YYYY-MM-DD/hour=HH/`.";

    fn partition_ns(&self) -> i64 {
        self.start_ns
    }
    fn sort_key(&self) -> (i64, i64, i32) {
        (self.start_ns, self.flow_id, i32::from(self.record_kind == "final"))
    }
}
