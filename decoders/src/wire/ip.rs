//! IPv4 (RFC 791) with options and IPv6 (RFC 8200) with extension headers.
//!
//! Lengths: the IP header's length field bounds the payload, so Ethernet
//! padding never counts as payload; a snap-truncated capture keeps the
//! header's claim in `payload_len` and the captured bytes in `payload`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{be16, be32, transport, DecodeError, Fragment, Layer, Packet};

/// Raw IP: the version nibble decides.
pub(super) fn any_ip<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    match b.first().map(|v| v >> 4) {
        Some(4) => ipv4(p, b, depth),
        Some(6) => ipv6(p, b, depth),
        Some(_) => Err(DecodeError::Malformed(Layer::Ipv4, "unknown IP version")),
        None => Err(DecodeError::Truncated(Layer::Ipv4)),
    }
}

pub(super) fn ipv4<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    if b.len() < 20 {
        return Err(DecodeError::Truncated(Layer::Ipv4));
    }
    if b[0] >> 4 != 4 {
        return Err(DecodeError::Malformed(Layer::Ipv4, "version is not 4"));
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(DecodeError::Malformed(Layer::Ipv4, "header length below 20"));
    }
    if b.len() < ihl {
        return Err(DecodeError::Truncated(Layer::Ipv4));
    }
    let mut total = usize::from(be16(b, 2));
    if total == 0 {
        // TCP segmentation offload captures on the sending host show 0.
        total = b.len();
    }
    if total < ihl {
        return Err(DecodeError::Malformed(Layer::Ipv4, "total length below header length"));
    }
    total = total.min(b.len() + p.uncaptured as usize);
    let frag_field = be16(b, 6);
    let more = frag_field & 0x2000 != 0;
    let offset = u32::from(frag_field & 0x1fff) * 8;
    let proto = b[9];
    p.ip.version = 4;
    p.ip.src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    p.ip.dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
    p.ip.ttl = b[8];
    p.ip.ip_id = be16(b, 4);
    p.ip.proto = proto;
    p.ip.len = total as u32;
    let payload = &b[ihl..total.min(b.len())];
    let claimed = (total - ihl) as u32;
    if more || offset != 0 {
        p.ip.frag = Some(Fragment { id: u32::from(p.ip.ip_id), offset, more });
        p.transport = super::Transport::Other;
        p.payload = payload;
        p.payload_len = claimed;
        return Ok(());
    }
    p.ip.frag = None;
    transport::dissect_inner(p, proto, payload, claimed, depth)
}

const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_FRAGMENT: u8 = 44;
const EXT_AH: u8 = 51;
const EXT_DEST_OPTS: u8 = 60;
const EXT_MOBILITY: u8 = 135;
const EXT_HIP: u8 = 139;
const EXT_SHIM6: u8 = 140;

pub(super) fn ipv6<'a>(p: &mut Packet<'a>, b: &'a [u8], depth: u8) -> Result<(), DecodeError> {
    if b.len() < 40 {
        return Err(DecodeError::Truncated(Layer::Ipv6));
    }
    if b[0] >> 4 != 6 {
        return Err(DecodeError::Malformed(Layer::Ipv6, "version is not 6"));
    }
    let mut payload_len = usize::from(be16(b, 4));
    if payload_len == 0 {
        // Jumbogram (RFC 2675) or offloaded capture: trust the capture.
        payload_len = b.len() - 40;
    }
    payload_len = payload_len.min(b.len() + p.uncaptured as usize - 40);
    let mut next = b[6];
    p.ip.version = 6;
    p.ip.ttl = b[7];
    p.ip.ip_id = 0;
    p.ip.src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&b[8..24]).expect("16 bytes")));
    p.ip.dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&b[24..40]).expect("16 bytes")));
    p.ip.len = (payload_len + 40) as u32;
    p.ip.frag = None;
    let end = (40 + payload_len).min(b.len());
    let mut rest = &b[40..end];
    let mut claimed = payload_len;
    // Extension headers; eight is more than any sane packet carries.
    for _ in 0..8 {
        let len = match next {
            EXT_HOP_BY_HOP | EXT_ROUTING | EXT_DEST_OPTS | EXT_MOBILITY | EXT_HIP | EXT_SHIM6 => {
                if rest.len() < 2 {
                    return Err(DecodeError::Truncated(Layer::Ipv6));
                }
                (usize::from(rest[1]) + 1) * 8
            }
            EXT_AH => {
                if rest.len() < 2 {
                    return Err(DecodeError::Truncated(Layer::Ipv6));
                }
                (usize::from(rest[1]) + 2) * 4
            }
            EXT_FRAGMENT => 8,
            _ => break,
        };
        if rest.len() < len || claimed < len {
            return Err(DecodeError::Truncated(Layer::Ipv6));
        }
        if next == EXT_FRAGMENT {
            let field = be16(rest, 2);
            let offset = u32::from(field & 0xfff8);
            let more = field & 0x0001 != 0;
            if offset != 0 || more {
                p.ip.frag = Some(Fragment { id: be32(rest, 4), offset, more });
            }
        }
        next = rest[0];
        rest = &rest[len..];
        claimed -= len;
    }
    p.ip.proto = next;
    if p.ip.frag.is_some() {
        p.transport = super::Transport::Other;
        p.payload = rest;
        p.payload_len = claimed as u32;
        return Ok(());
    }
    transport::dissect_inner(p, next, rest, claimed as u32, depth)
}
