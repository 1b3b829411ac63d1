//! Link layers: Ethernet with 802.1Q/802.1ad tags and MPLS, Linux cooked
//! captures (SLL, SLL2) and BSD loopback.

use super::{be16, ip, DecodeError, Layer, Packet};

pub(super) const ETH_IPV4: u16 = 0x0800;
pub(super) const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE_SESSION: u16 = 0x8864;

/// Ethernet II frame (no FCS), as carried by captures and by VXLAN,
/// GENEVE, GRE-TEB and ERSPAN.
pub(super) fn ethernet<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    if b.len() < 14 {
        return Err(DecodeError::Truncated(Layer::Link));
    }
    p.dst_mac.copy_from_slice(&b[0..6]);
    p.src_mac.copy_from_slice(&b[6..12]);
    p.vlans = [0; 2];
    p.vlan_count = 0;
    let ethertype = be16(b, 12);
    if ethertype < 0x0600 {
        // 802.3 length field: LLC/SNAP (STP, CDP…), never IP in practice.
        return Err(DecodeError::NotIp);
    }
    ethertype_payload(p, ethertype, &b[14..], depth)
}

/// Dispatches on an ethertype, unwrapping VLAN tags and MPLS labels.
pub(super) fn ethertype_payload<'a>(
    p: &mut Packet<'a>,
    mut ethertype: u16,
    mut b: &'a [u8],
    depth: u8,
) -> Result<(), DecodeError> {
    // Up to 8 tags: QinQ is two, anything deeper is odd but harmless.
    for _ in 0..8 {
        match ethertype {
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                if b.len() < 4 {
                    return Err(DecodeError::Truncated(Layer::Vlan));
                }
                let vid = be16(b, 0) & 0x0fff;
                if (p.vlan_count as usize) < p.vlans.len() {
                    p.vlans[p.vlan_count as usize] = vid;
                    p.vlan_count += 1;
                }
                ethertype = be16(b, 2);
                b = &b[4..];
            }
            _ => break,
        }
    }
    match ethertype {
        ETH_IPV4 => ip::ipv4(p, b, depth),
        ETH_IPV6 => ip::ipv6(p, b, depth),
        ETH_MPLS | ETH_MPLS_MC => mpls(p, b, depth),
        ETH_PPPOE_SESSION => pppoe_session(p, b, depth),
        ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => Err(DecodeError::Malformed(Layer::Vlan, "too many tags")),
        _ => Err(DecodeError::NotIp),
    }
}

/// MPLS label stack (RFC 3032): pop to bottom of stack, then guess the
/// payload from the IP version nibble (no pseudowire control word).
fn mpls<'a>(p: &mut Packet<'a>, mut b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    for _ in 0..16 {
        if b.len() < 4 {
            return Err(DecodeError::Truncated(Layer::Mpls));
        }
        let bottom = b[2] & 0x01 != 0;
        b = &b[4..];
        if bottom {
            return match b.first().map(|v| v >> 4) {
                Some(4 | 6) => ip::any_ip(p, b, depth),
                Some(_) => Err(DecodeError::Unsupported("mpls_non_ip")),
                None => Err(DecodeError::Truncated(Layer::Mpls)),
            };
        }
    }
    Err(DecodeError::Malformed(Layer::Mpls, "label stack too deep"))
}

/// Linux cooked capture v1: 16-byte header, protocol last.
/// <https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html>
pub(super) fn sll<'a>(p: &mut Packet<'a>, b: &'a [u8]) -> Result<(), DecodeError> {
    if b.len() < 16 {
        return Err(DecodeError::Truncated(Layer::Link));
    }
    let addr_len = be16(b, 4);
    if addr_len == 6 {
        p.src_mac.copy_from_slice(&b[6..12]);
    }
    cooked(p, be16(b, 2), be16(b, 14), &b[16..])
}

/// Linux cooked capture v2: 20-byte header, protocol first.
/// <https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html>
pub(super) fn sll2<'a>(p: &mut Packet<'a>, b: &'a [u8]) -> Result<(), DecodeError> {
    if b.len() < 20 {
        return Err(DecodeError::Truncated(Layer::Link));
    }
    if b[11] == 6 {
        p.src_mac.copy_from_slice(&b[12..18]);
    }
    cooked(p, be16(b, 8), be16(b, 0), &b[20..])
}

fn cooked<'a>(p: &mut Packet<'a>, arphrd: u16, proto: u16, b: &'a [u8]) -> Result<(), DecodeError> {
    const ARPHRD_IPGRE: u16 = 778;
    const ARPHRD_NETLINK: u16 = 824;
    match arphrd {
        ARPHRD_NETLINK => Err(DecodeError::NotIp),
        // On a GRE device the protocol field is the GRE protocol type.
        ARPHRD_IPGRE if proto == 0x6558 => ethernet(p, b, 0),
        _ => ethertype_payload(p, proto, b, 0),
    }
}

/// BSD loopback: a 4-byte address family, host order (`DLT_NULL`) or
/// network order (`DLT_LOOP`). IPv6's value differs between BSDs.
pub(super) fn null<'a>(p: &mut Packet<'a>, b: &'a [u8], network_order: bool) -> Result<(), DecodeError> {
    if b.len() < 4 {
        return Err(DecodeError::Truncated(Layer::Link));
    }
    let raw = [b[0], b[1], b[2], b[3]];
    let family = if network_order {
        u32::from_be_bytes(raw)
    } else {
        // The capturing host's order is unknown: the family is small, so
        // whichever reading is small is right.
        let le = u32::from_le_bytes(raw);
        if le <= 0xffff {
            le
        } else {
            u32::from_be_bytes(raw)
        }
    };
    match family {
        2 => ip::ipv4(p, &b[4..], 0),
        10 | 24 | 28 | 30 => ip::ipv6(p, &b[4..], 0),
        _ => Err(DecodeError::NotIp),
    }
}

/// PPPoE session stage (RFC 2516): 6-byte header, then a PPP protocol.
pub(super) fn pppoe_session<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    if b.len() < 8 {
        return Err(DecodeError::Truncated(Layer::Link));
    }
    let len = usize::from(be16(b, 4));
    let end = (6 + len).min(b.len());
    if end < 8 {
        return Err(DecodeError::Malformed(Layer::Link, "PPPoE length below 2"));
    }
    ppp_protocol(p, be16(b, 6), &b[8..end], depth)
}

/// PPP in HDLC-like framing (RFC 1662): optional 0xff 0x03, then the
/// protocol (one byte when compressed, RFC 1661 §6.5).
pub(super) fn ppp<'a>(p: &mut Packet<'a>, b: &'a [u8]) -> Result<(), DecodeError> {
    let b = if b.starts_with(&[0xff, 0x03]) { &b[2..] } else { b };
    match b.first() {
        None => Err(DecodeError::Truncated(Layer::Link)),
        Some(x) if x & 1 == 1 => ppp_protocol(p, u16::from(*x), &b[1..], 0),
        Some(_) if b.len() < 2 => Err(DecodeError::Truncated(Layer::Link)),
        Some(_) => ppp_protocol(p, be16(b, 0), &b[2..], 0),
    }
}

fn ppp_protocol<'a>(p: &mut Packet<'a>, proto: u16, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    match proto {
        0x0021 => ip::ipv4(p, b, depth),
        0x0057 => ip::ipv6(p, b, depth),
        _ => Err(DecodeError::NotIp),
    }
}

/// Linux NFLOG: 4-byte header (family, version, resource id), then TLVs
/// in host byte order, 4-byte aligned; type 9 carries the packet.
/// <https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html>
pub(super) fn nflog<'a>(p: &mut Packet<'a>, b: &'a [u8]) -> Result<(), DecodeError> {
    const NFULA_PAYLOAD: u16 = 9;
    if b.len() < 4 {
        return Err(DecodeError::Truncated(Layer::Link));
    }
    let family = b[0];
    let mut rest = &b[4..];
    while rest.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let kind = u16::from_le_bytes([rest[2], rest[3]]) & 0x7fff;
        if len < 4 || len > rest.len() {
            return Err(DecodeError::Malformed(Layer::Link, "NFLOG TLV length"));
        }
        if kind == NFULA_PAYLOAD {
            let payload = &rest[4..len];
            return match family {
                2 => ip::ipv4(p, payload, 0),
                10 => ip::ipv6(p, payload, 0),
                _ => ip::any_ip(p, payload, 0),
            };
        }
        rest = &rest[((len + 3) & !3).min(rest.len())..];
    }
    Err(DecodeError::NotIp)
}
