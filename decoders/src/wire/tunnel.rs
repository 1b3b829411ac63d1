//! Tunnel decapsulation: VXLAN (RFC 7348), VXLAN-GPE
//! (draft-ietf-nvo3-vxlan-gpe) with NSH (RFC 8300), GENEVE (RFC 8926), GRE
//! (RFC 2784, RFC 2890 key and sequence) also over UDP (RFC 8086), ERSPAN
//! types I, II and III (draft-foschiano-erspan), IP-in-IP (RFC 2003),
//! IPv6-in-IP (RFC 4213), GTP-U (3GPP TS 29.281) and Teredo (RFC 4380).
//!
//! Entering a tunnel records the outer addresses the first time (the
//! outermost tunnel is the one a record names) and counts depth; the walk
//! then continues on the inner frame.

use super::{be16, be32, ip, link, DecodeError, Layer, Packet, Tunnel, TunnelKind, MAX_DEPTH};

fn enter(p: &mut Packet<'_>, kind: TunnelKind, id: u32, depth: u8) -> Result<u8, DecodeError> {
    if depth >= MAX_DEPTH {
        return Err(DecodeError::Malformed(Layer::Tunnel, "tunnels nested too deep"));
    }
    match &mut p.tunnel {
        Some(t) => t.depth += 1,
        None => {
            p.tunnel = Some(Tunnel { kind, id, outer_src: p.ip.src, outer_dst: p.ip.dst, depth: 1 });
        }
    }
    Ok(depth + 1)
}

pub(super) fn ip_in_ip<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8, v6_proto: bool) -> Result<(), DecodeError> {
    let kind = if v6_proto { TunnelKind::Ipv6InIp } else { TunnelKind::IpInIp };
    let depth = enter(p, kind, 0, depth)?;
    if v6_proto {
        ip::ipv6(p, b, depth)
    } else {
        ip::ipv4(p, b, depth)
    }
}

/// VXLAN: 8 bytes, the I flag says the VNI is valid.
pub(super) fn vxlan<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    if b.len() < 8 {
        return Err(DecodeError::Truncated(Layer::Tunnel));
    }
    if b[0] & 0x08 == 0 {
        return Err(DecodeError::Malformed(Layer::Tunnel, "VXLAN I flag not set"));
    }
    let vni = be32(b, 4) >> 8;
    let depth = enter(p, TunnelKind::Vxlan, vni, depth)?;
    link::ethernet(p, &b[8..], depth)
}

/// GENEVE: version 0, options of `opt_len` 4-byte words, then a protocol
/// type like GRE's.
pub(super) fn geneve<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    if b.len() < 8 {
        return Err(DecodeError::Truncated(Layer::Tunnel));
    }
    if b[0] >> 6 != 0 {
        return Err(DecodeError::Malformed(Layer::Tunnel, "GENEVE version is not 0"));
    }
    let hdr = 8 + usize::from(b[0] & 0x3f) * 4;
    if b.len() < hdr {
        return Err(DecodeError::Truncated(Layer::Tunnel));
    }
    let proto = be16(b, 2);
    let vni = be32(b, 4) >> 8;
    let depth = enter(p, TunnelKind::Geneve, vni, depth)?;
    by_protocol_type(p, proto, &b[hdr..], depth)
}

const GRE_CSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQ: u16 = 0x1000;
const GRE_TEB: u16 = 0x6558;
const GRE_ERSPAN_II: u16 = 0x88be;
const GRE_ERSPAN_III: u16 = 0x22eb;

pub(super) fn gre<'a>(p: &mut Packet<'a>, b: &'a [u8], claimed: u32, depth: u8) -> Result<(), DecodeError> {
    if b.len() < 4 {
        return Err(DecodeError::Truncated(Layer::Tunnel));
    }
    let flags = be16(b, 0);
    if flags & 0x0007 != 0 {
        // Version 1 is PPTP's enhanced GRE, carrying PPP.
        return Err(DecodeError::Unsupported("gre_version"));
    }
    if flags & GRE_ROUTING != 0 {
        return Err(DecodeError::Unsupported("gre_source_routing"));
    }
    let proto = be16(b, 2);
    let mut off = 4;
    if flags & GRE_CSUM != 0 {
        off += 4;
    }
    let mut key = 0;
    if flags & GRE_KEY != 0 {
        if b.len() < off + 4 {
            return Err(DecodeError::Truncated(Layer::Tunnel));
        }
        key = be32(b, off);
        off += 4;
    }
    let has_seq = flags & GRE_SEQ != 0;
    if has_seq {
        off += 4;
    }
    if b.len() < off || (claimed as usize) < off {
        return Err(DecodeError::Truncated(Layer::Tunnel));
    }
    let inner = &b[off..];
    match proto {
        // ERSPAN I has no sequence number and no header of its own.
        GRE_ERSPAN_II if !has_seq => {
            let depth = enter(p, TunnelKind::ErspanI, key, depth)?;
            link::ethernet(p, inner, depth)
        }
        GRE_ERSPAN_II => {
            if inner.len() < 8 {
                return Err(DecodeError::Truncated(Layer::Tunnel));
            }
            let session = u32::from(be16(inner, 2) & 0x03ff);
            let depth = enter(p, TunnelKind::ErspanII, session, depth)?;
            link::ethernet(p, &inner[8..], depth)
        }
        GRE_ERSPAN_III => {
            if inner.len() < 12 {
                return Err(DecodeError::Truncated(Layer::Tunnel));
            }
            let session = u32::from(be16(inner, 2) & 0x03ff);
            // The O bit announces an 8-byte platform-specific subheader.
            let hdr = if inner[11] & 0x01 != 0 { 20 } else { 12 };
            if inner.len() < hdr {
                return Err(DecodeError::Truncated(Layer::Tunnel));
            }
            let depth = enter(p, TunnelKind::ErspanIII, session, depth)?;
            link::ethernet(p, &inner[hdr..], depth)
        }
        _ => {
            let depth = enter(p, TunnelKind::Gre, key, depth)?;
            by_protocol_type(p, proto, inner, depth)
        }
    }
}

/// GRE and GENEVE name their payload with an ethertype.
fn by_protocol_type<'a>(p: &mut Packet<'a>, proto: u16, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    match proto {
        GRE_TEB => link::ethernet(p, b, depth),
        link::ETH_IPV4 => ip::ipv4(p, b, depth),
        link::ETH_IPV6 => ip::ipv6(p, b, depth),
        _ => Err(DecodeError::Unsupported("tunnel_payload")),
    }
}

/// VXLAN-GPE: the P flag announces a next-protocol byte (1 IPv4, 2 IPv6,
/// 3 Ethernet, 4 NSH).
pub(super) fn vxlan_gpe<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    if b.len() < 8 {
        return Err(DecodeError::Truncated(Layer::Tunnel));
    }
    if b[0] & 0x04 == 0 {
        return Err(DecodeError::Malformed(Layer::Tunnel, "VXLAN-GPE P flag not set"));
    }
    let vni = be32(b, 4) >> 8;
    let depth = enter(p, TunnelKind::VxlanGpe, vni, depth)?;
    gpe_next(p, b[3], &b[8..], depth, true)
}

fn gpe_next<'a>(p: &mut Packet<'a>, next: u8, b: &'a [u8], depth: u8, nsh_allowed: bool) -> Result<(), DecodeError> {
    match next {
        1 => ip::ipv4(p, b, depth),
        2 => ip::ipv6(p, b, depth),
        3 => link::ethernet(p, b, depth),
        4 if nsh_allowed => {
            // NSH base header: length in 4-byte words (6 bits), next protocol.
            if b.len() < 8 {
                return Err(DecodeError::Truncated(Layer::Tunnel));
            }
            let len = usize::from(be16(b, 0) & 0x3f) * 4;
            if len < 8 || b.len() < len {
                return Err(DecodeError::Malformed(Layer::Tunnel, "NSH length"));
            }
            gpe_next(p, b[3], &b[len..], depth, false)
        }
        _ => Err(DecodeError::Unsupported("tunnel_payload")),
    }
}

/// GTP-U: version 1, protocol type GTP, message G-PDU (255); optional
/// sequence/N-PDU/extension fields; then an IP packet.
pub(super) fn gtpu<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    if b.len() < 8 {
        return Err(DecodeError::Truncated(Layer::Tunnel));
    }
    let flags = b[0];
    if flags >> 5 != 1 || flags & 0x10 == 0 {
        return Err(DecodeError::Malformed(Layer::Tunnel, "not GTPv1"));
    }
    if b[1] != 0xff {
        return Err(DecodeError::Unsupported("gtp_signalling"));
    }
    let teid = be32(b, 4);
    let mut off = 8;
    if flags & 0x07 != 0 {
        if b.len() < 12 {
            return Err(DecodeError::Truncated(Layer::Tunnel));
        }
        let mut next_ext = b[11];
        off = 12;
        // Extension headers: length in 4-byte units, last byte is the next type.
        let mut guard = 0;
        while flags & 0x04 != 0 && next_ext != 0 {
            guard += 1;
            let Some(&units) = b.get(off) else { return Err(DecodeError::Truncated(Layer::Tunnel)) };
            let len = usize::from(units) * 4;
            if len == 0 || guard > 8 || b.len() < off + len {
                return Err(DecodeError::Malformed(Layer::Tunnel, "GTP extension header"));
            }
            next_ext = b[off + len - 1];
            off += len;
        }
    }
    let depth = enter(p, TunnelKind::Gtpu, teid, depth)?;
    ip::any_ip(p, &b[off..], depth)
}

/// Teredo: IPv6 in UDP, optionally behind authentication (type 1) and
/// origin indication (type 0) headers.
pub(super) fn teredo<'a>(p: &mut Packet<'a>, mut b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    if b.len() >= 4 && b[0] == 0 && b[1] == 1 {
        let auth = 4 + usize::from(b[2]) + usize::from(b[3]) + 9;
        if b.len() < auth {
            return Err(DecodeError::Truncated(Layer::Tunnel));
        }
        b = &b[auth..];
    }
    if b.len() >= 8 && b[0] == 0 && b[1] == 0 {
        b = &b[8..];
    }
    if b.len() < 40 || b[0] >> 4 != 6 || usize::from(be16(b, 4)) + 40 != b.len() {
        return Err(DecodeError::Malformed(Layer::Tunnel, "not IPv6 in Teredo"));
    }
    let depth = enter(p, TunnelKind::Teredo, 0, depth)?;
    ip::ipv6(p, b, depth)
}
