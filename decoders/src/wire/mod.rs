//! L2–L4 dissection into one [`Packet`] view.
//!
//! [`dissect`] walks a frame from its link layer to the innermost transport
//! header, descending through VLAN tags, MPLS, PPPoE and tunnels (VXLAN,
//! VXLAN-GPE with NSH, GENEVE, GRE and GRE-in-UDP with ERSPAN I/II/III,
//! IP-in-IP, IPv6-in-IP, GTP-U, Teredo). The result describes the
//! *innermost* IP packet and transport header; the outermost tunnel is kept
//! in [`Tunnel`] so a flow record can name its underlay.
//!
//! Why not etherparse for this walk: it has no tunnel decapsulation, its
//! strict slices reject snap-truncated packets (common in mirror captures),
//! and its TCP option iterator stops at the first unknown option (we need
//! TOA and friends later). etherparse is used instead as the independent
//! oracle in this module's tests and as the packet builder in fuzz seeds.

mod ip;
mod link;
mod transport;
mod tunnel;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr};

pub use transport::dissect_transport;

/// Link layer of a frame, from the capture's `LINKTYPE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    Ethernet,
    /// Linux "cooked" capture v1 (`tcpdump -i any`, older).
    LinuxSll,
    /// Linux "cooked" capture v2.
    LinuxSll2,
    /// Raw IP, version from the first nibble.
    RawIp,
    Ipv4,
    Ipv6,
    /// BSD loopback, address family in host byte order.
    Null,
    /// OpenBSD loopback, address family in network byte order.
    Loop,
    /// PPP in HDLC-like framing (`DLT_PPP`, `DLT_PPP_SERIAL`).
    Ppp,
    /// PPPoE without its Ethernet header (`DLT_PPP_ETHER`).
    PppEther,
    /// Linux netfilter NFLOG (`iptables -j NFLOG` captures).
    Nflog,
}

impl LinkType {
    /// Maps a libpcap `LINKTYPE_*` number; `None` for link types we skip.
    #[must_use]
    pub fn from_linktype(n: u32) -> Option<Self> {
        Some(match n {
            1 => Self::Ethernet,
            113 => Self::LinuxSll,
            276 => Self::LinuxSll2,
            101 | 12 | 14 => Self::RawIp,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            0 => Self::Null,
            108 => Self::Loop,
            9 | 50 => Self::Ppp,
            51 => Self::PppEther,
            239 => Self::Nflog,
            _ => return None,
        })
    }
}

/// The layer a decode error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Link,
    Vlan,
    Mpls,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
    Icmp,
    Tunnel,
}

impl Layer {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Vlan => "vlan",
            Self::Mpls => "mpls",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
            Self::Tunnel => "tunnel",
        }
    }
}

/// Why a frame could not be dissected. `Copy`, so the hot path can count
/// errors by kind without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The bytes end inside a header of this layer.
    Truncated(Layer),
    /// A header field is impossible (bad version, length below minimum…).
    Malformed(Layer, &'static str),
    /// A valid frame that carries no IP (ARP, LLDP, STP…): not an error,
    /// counted as non-IP traffic.
    NotIp,
    /// A link type or encapsulation flowtrail does not decode.
    Unsupported(&'static str),
}

impl DecodeError {
    /// A short stable name for counters: `truncated_tcp`, `malformed_ipv4`…
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::Truncated(l) => match l {
                Layer::Link => "truncated_link",
                Layer::Vlan => "truncated_vlan",
                Layer::Mpls => "truncated_mpls",
                Layer::Ipv4 => "truncated_ipv4",
                Layer::Ipv6 => "truncated_ipv6",
                Layer::Tcp => "truncated_tcp",
                Layer::Udp => "truncated_udp",
                Layer::Icmp => "truncated_icmp",
                Layer::Tunnel => "truncated_tunnel",
            },
            Self::Malformed(l, _) => match l {
                Layer::Link => "malformed_link",
                Layer::Vlan => "malformed_vlan",
                Layer::Mpls => "malformed_mpls",
                Layer::Ipv4 => "malformed_ipv4",
                Layer::Ipv6 => "malformed_ipv6",
                Layer::Tcp => "malformed_tcp",
                Layer::Udp => "malformed_udp",
                Layer::Icmp => "malformed_icmp",
                Layer::Tunnel => "malformed_tunnel",
            },
            Self::NotIp => "not_ip",
            Self::Unsupported(what) => what,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated(l) => write!(f, "truncated {} header", l.as_str()),
            Self::Malformed(l, why) => write!(f, "malformed {} header: {why}", l.as_str()),
            Self::NotIp => f.write_str("not an IP packet"),
            Self::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Tunnel encapsulations flowtrail decapsulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelKind {
    #[default]
    None,
    Vxlan,
    Geneve,
    /// GRE carrying IP or Ethernet (transparent Ethernet bridging).
    Gre,
    ErspanI,
    ErspanII,
    ErspanIII,
    /// IPv4 or IPv6 carried directly in IPv4 (protocol 4).
    IpInIp,
    /// IPv4 or IPv6 carried directly in IPv6 or IPv4 (protocol 41).
    Ipv6InIp,
    /// GTP-U user plane (UDP 2152), id is the TEID.
    Gtpu,
    /// Teredo (UDP 3544): IPv6 in UDP.
    Teredo,
    /// VXLAN-GPE (UDP 4790), possibly with an NSH header.
    VxlanGpe,
}

impl TunnelKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Vxlan => "vxlan",
            Self::Geneve => "geneve",
            Self::Gre => "gre",
            Self::ErspanI => "erspan1",
            Self::ErspanII => "erspan2",
            Self::ErspanIII => "erspan3",
            Self::IpInIp => "ipip",
            Self::Ipv6InIp => "ip6ip",
            Self::Gtpu => "gtpu",
            Self::Teredo => "teredo",
            Self::VxlanGpe => "vxlan-gpe",
        }
    }
}

/// The outermost tunnel a packet came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    /// VNI (VXLAN, GENEVE), GRE key, or ERSPAN session id; 0 when none.
    pub id: u32,
    /// Addresses of the outer IP header of that tunnel.
    pub outer_src: IpAddr,
    pub outer_dst: IpAddr,
    /// How many tunnels were nested (1 for one tunnel).
    pub depth: u8,
}

/// An IP fragment that still needs reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// IPv4 identification or IPv6 fragment header identification.
    pub id: u32,
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

/// The innermost IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpHeader {
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    /// Transport protocol number (after IPv6 extension headers).
    pub proto: u8,
    /// Length of the IP packet on the wire, header included.
    pub len: u32,
    pub frag: Option<Fragment>,
}

/// TCP flag bits as in the header's 13th byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// TCP options flowtrail reads (RFC 9293 §3.2, RFC 7323, RFC 2018).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// Number of SACK blocks carried.
    pub sack_blocks: u8,
    /// (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// TOA: real client address inserted by a load balancer (option 254
    /// or 200, length 8: port then IPv4 address).
    pub toa: Option<(u16, Ipv4Addr)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: TcpOptions,
}

/// The transport header of the innermost IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpHeader),
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// ICMP or ICMPv6; `id`/`seq` are set for echo request/reply only.
    Icmp {
        v6: bool,
        kind: u8,
        code: u8,
        echo: Option<(u16, u16)>,
    },
    /// Another protocol (SCTP, ESP…) or a fragment not yet reassembled.
    Other,
}

/// One dissected frame: borrowed payload, everything else by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// MACs of the innermost Ethernet header (zero when none).
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// 802.1Q/802.1ad tags of the innermost Ethernet header, outer first;
    /// `vlan_count` says how many are set (more than two are skipped).
    pub vlans: [u16; 2],
    pub vlan_count: u8,
    pub tunnel: Option<Tunnel>,
    pub ip: IpHeader,
    pub transport: Transport,
    /// Captured transport payload (may be shorter than `payload_len`).
    pub payload: &'a [u8],
    /// Transport payload length according to the headers (never more
    /// than the frame carried on the wire).
    pub payload_len: u32,
    /// Bytes of the frame on the wire that the capture did not keep.
    pub uncaptured: u32,
}

const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl Packet<'_> {
    fn empty() -> Self {
        Packet {
            src_mac: [0; 6],
            dst_mac: [0; 6],
            vlans: [0; 2],
            vlan_count: 0,
            tunnel: None,
            ip: IpHeader {
                version: 0,
                src: UNSPECIFIED,
                dst: UNSPECIFIED,
                ttl: 0,
                ip_id: 0,
                proto: 0,
                len: 0,
                frag: None,
            },
            transport: Transport::Other,
            payload: &[],
            payload_len: 0,
            uncaptured: 0,
        }
    }

    /// The transport ports, (0, 0) for protocols without ports.
    #[must_use]
    pub fn ports(&self) -> (u16, u16) {
        match self.transport {
            Transport::Tcp(t) => (t.src_port, t.dst_port),
            Transport::Udp { src_port, dst_port } => (src_port, dst_port),
            _ => (0, 0),
        }
    }
}

/// Nested tunnels beyond this depth are malformed (or an attack).
const MAX_DEPTH: u8 = 4;

/// Dissects a frame of the given link type down to its innermost transport
/// header. A fragment stops at the IP layer with `ip.frag` set. The frame
/// is taken as whole (its wire length is its length).
pub fn dissect(link: LinkType, frame: &[u8]) -> Result<Packet<'_>, DecodeError> {
    dissect_frame(link, frame, frame.len() as u32)
}

/// Like [`dissect`] for a frame that was `wire_len` bytes on the wire. An
/// IP length that claims more than the wire carried is cut to what it
/// carried (Wireshark does the same), while a capture's snap length only
/// shortens `payload`, not `payload_len`.
pub fn dissect_frame(link: LinkType, frame: &[u8], wire_len: u32) -> Result<Packet<'_>, DecodeError> {
    let mut p = Packet::empty();
    p.uncaptured = wire_len.saturating_sub(frame.len() as u32);
    match link {
        LinkType::Ethernet => link::ethernet(&mut p, frame, 0)?,
        LinkType::LinuxSll => link::sll(&mut p, frame)?,
        LinkType::LinuxSll2 => link::sll2(&mut p, frame)?,
        LinkType::RawIp => ip::any_ip(&mut p, frame, 0)?,
        LinkType::Ipv4 => ip::ipv4(&mut p, frame, 0)?,
        LinkType::Ipv6 => ip::ipv6(&mut p, frame, 0)?,
        LinkType::Null => link::null(&mut p, frame, false)?,
        LinkType::Loop => link::null(&mut p, frame, true)?,
        LinkType::Ppp => link::ppp(&mut p, frame)?,
        LinkType::PppEther => link::pppoe_session(&mut p, frame, 0)?,
        LinkType::Nflog => link::nflog(&mut p, frame)?,
    }
    Ok(p)
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
