//! Transport headers: TCP (RFC 9293) with options, UDP (RFC 768), ICMP
//! (RFC 792) and ICMPv6 (RFC 4443); IP protocols that are tunnels go on to
//! `tunnel`.

use std::net::Ipv4Addr;

use super::{be16, be32, tunnel, DecodeError, Layer, Packet, TcpHeader, TcpOptions, Transport};

const PROTO_ICMP: u8 = 1;
const PROTO_IPIP: u8 = 4;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_IPV6: u8 = 41;
const PROTO_GRE: u8 = 47;
const PROTO_ICMPV6: u8 = 58;

/// Continues dissection of a reassembled IP datagram: `base` is the first
/// fragment's view (addresses, protocol), `datagram` the whole IP payload.
pub fn dissect_transport<'b>(base: &Packet<'_>, datagram: &'b [u8]) -> Result<Packet<'b>, DecodeError> {
    let mut p = Packet {
        src_mac: base.src_mac,
        dst_mac: base.dst_mac,
        vlans: base.vlans,
        vlan_count: base.vlan_count,
        tunnel: base.tunnel,
        ip: base.ip,
        transport: Transport::Other,
        payload: &[],
        payload_len: 0,
        uncaptured: 0,
    };
    p.ip.frag = None;
    let depth = base.tunnel.map_or(0, |t| t.depth);
    dissect_inner(&mut p, base.ip.proto, datagram, datagram.len() as u32, depth)?;
    Ok(p)
}

/// `b` is the captured IP payload, `claimed` its length per the IP header.
pub(super) fn dissect_inner<'a>(
    p: &mut Packet<'a>,
    proto: u8,
    b: &'a [u8],
    claimed: u32,
    depth: u8,
) -> Result<(), DecodeError> {
    match proto {
        PROTO_TCP => tcp(p, b, claimed),
        PROTO_UDP => udp(p, b, claimed, depth),
        PROTO_ICMP => icmp(p, b, claimed, false),
        PROTO_ICMPV6 => icmp(p, b, claimed, true),
        PROTO_IPIP => tunnel::ip_in_ip(p, b, depth, false),
        PROTO_IPV6 => tunnel::ip_in_ip(p, b, depth, true),
        PROTO_GRE => tunnel::gre(p, b, claimed, depth),
        _ => {
            p.transport = Transport::Other;
            p.payload = b;
            p.payload_len = claimed;
            Ok(())
        }
    }
}

fn tcp<'a>(p: &mut Packet<'a>, b: &'a [u8], claimed: u32) -> Result<(), DecodeError> {
    if b.len() < 20 {
        return Err(DecodeError::Truncated(Layer::Tcp));
    }
    let doff = usize::from(b[12] >> 4) * 4;
    if doff < 20 {
        return Err(DecodeError::Malformed(Layer::Tcp, "data offset below 20"));
    }
    if b.len() < doff {
        return Err(DecodeError::Truncated(Layer::Tcp));
    }
    if (claimed as usize) < doff {
        return Err(DecodeError::Malformed(Layer::Tcp, "data offset beyond IP length"));
    }
    p.transport = Transport::Tcp(TcpHeader {
        src_port: be16(b, 0),
        dst_port: be16(b, 2),
        seq: be32(b, 4),
        ack: be32(b, 8),
        flags: b[13],
        window: be16(b, 14),
        options: tcp_options(&b[20..doff]),
    });
    p.payload = &b[doff..];
    p.payload_len = claimed - doff as u32;
    Ok(())
}

/// Reads the options flowtrail uses; stops quietly at anything malformed
/// (a bad option never makes the segment undecodable).
fn tcp_options(mut o: &[u8]) -> TcpOptions {
    let mut opts = TcpOptions::default();
    while let Some(&kind) = o.first() {
        match kind {
            0 => break,
            1 => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = o.get(1) else { break };
        let len = usize::from(len);
        if len < 2 || len > o.len() {
            break;
        }
        let body = &o[2..len];
        match (kind, body.len()) {
            (2, 2) => opts.mss = Some(be16(body, 0)),
            (3, 1) => opts.wscale = Some(body[0]),
            (4, 0) => opts.sack_permitted = true,
            (5, n) => opts.sack_blocks = (n / 8) as u8,
            (8, 8) => opts.timestamp = Some((be32(body, 0), be32(body, 4))),
            // TOA (Huawei 254, IPVS FULLNAT 200): port, then IPv4 address.
            (254 | 200, 6) => {
                opts.toa = Some((be16(body, 0), Ipv4Addr::new(body[2], body[3], body[4], body[5])));
            }
            _ => {}
        }
        o = &o[len..];
    }
    opts
}

const VXLAN_PORT: u16 = 4789;
const VXLAN_LINUX_PORT: u16 = 8472;
const VXLAN_GPE_PORT: u16 = 4790;
const GENEVE_PORT: u16 = 6081;
const GTPU_PORT: u16 = 2152;
const TEREDO_PORT: u16 = 3544;
const GRE_UDP_PORT: u16 = 4754;

fn udp<'a>(p: &mut Packet<'a>, b: &'a [u8], claimed: u32, depth: u8) -> Result<(), DecodeError> {
    if b.len() < 8 {
        return Err(DecodeError::Truncated(Layer::Udp));
    }
    let src_port = be16(b, 0);
    let dst_port = be16(b, 2);
    let udp_len = u32::from(be16(b, 4));
    // The UDP length bounds the payload unless it is 0 (jumbo) or lies.
    let claimed = if udp_len >= 8 && udp_len <= claimed { udp_len } else { claimed };
    if claimed < 8 {
        return Err(DecodeError::Malformed(Layer::Udp, "length below 8"));
    }
    let payload = &b[8..(claimed as usize).min(b.len())];
    let tunnel_port = |port: u16| {
        matches!(port, VXLAN_PORT | VXLAN_LINUX_PORT | VXLAN_GPE_PORT | GENEVE_PORT | GTPU_PORT | GRE_UDP_PORT)
    };
    let teredo = src_port == TEREDO_PORT || dst_port == TEREDO_PORT;
    if tunnel_port(dst_port) || teredo || (src_port == GTPU_PORT) {
        // A tunnel port carrying something that does not decode as that
        // tunnel is plain UDP: garbage on a known port is not a tunnel.
        let saved = *p;
        let decap = match dst_port {
            GENEVE_PORT => tunnel::geneve(p, payload, depth),
            VXLAN_PORT | VXLAN_LINUX_PORT => tunnel::vxlan(p, payload, depth),
            VXLAN_GPE_PORT => tunnel::vxlan_gpe(p, payload, depth),
            GRE_UDP_PORT => tunnel::gre(p, payload, payload.len() as u32, depth),
            _ if teredo => tunnel::teredo(p, payload, depth),
            _ => tunnel::gtpu(p, payload, depth),
        };
        if decap.is_ok() {
            return Ok(());
        }
        *p = saved;
    }
    p.transport = Transport::Udp { src_port, dst_port };
    p.payload = payload;
    p.payload_len = claimed - 8;
    Ok(())
}

fn icmp<'a>(p: &mut Packet<'a>, b: &'a [u8], claimed: u32, v6: bool) -> Result<(), DecodeError> {
    if b.len() < 4 || claimed < 4 {
        return Err(DecodeError::Truncated(Layer::Icmp));
    }
    let kind = b[0];
    let is_echo = if v6 { kind == 128 || kind == 129 } else { kind == 0 || kind == 8 };
    let echo = if is_echo {
        if b.len() < 8 {
            return Err(DecodeError::Truncated(Layer::Icmp));
        }
        Some((be16(b, 4), be16(b, 6)))
    } else {
        None
    };
    p.transport = Transport::Icmp { v6, kind, code: b[1], echo };
    let hdr = if b.len() >= 8 { 8 } else { 4 };
    p.payload = &b[hdr..];
    p.payload_len = claimed.saturating_sub(hdr as u32);
    Ok(())
}
