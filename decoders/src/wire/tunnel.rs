//! Tunnel decapsulation: VXLAN (RFC 7348), GENEVE (RFC 8926), GRE (RFC 2784,
//! RFC 2890 key and sequence), ERSPAN types I, II and III
//! (draft-foschiano-erspan), IP-in-IP (RFC 2003) and IPv6-in-IP (RFC 4213).
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
    if v6_proto { ip::ipv6(p, b, depth) } else { ip::ipv4(p, b, depth) }
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
