//! Frames built by etherparse (an independent implementation) must
//! dissect to the fields etherparse put in them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{PacketBuilder, TcpOptionElement};

use super::*;

/// Dissects an owned test frame (leaked: tests only).
fn eth(f: Vec<u8>) -> Result<Packet<'static>, DecodeError> {
    dissect(LinkType::Ethernet, Vec::leak(f))
}

fn tcp_frame(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Timestamp(111, 0),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

#[test]
fn tcp_with_options() {
    let f = tcp_frame(b"hello");
    let p = dissect(LinkType::Ethernet, &f).unwrap();
    assert_eq!(p.src_mac, [1, 2, 3, 4, 5, 6]);
    assert_eq!(p.dst_mac, [7, 8, 9, 10, 11, 12]);
    assert_eq!(p.ip.version, 4);
    assert_eq!(p.ip.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(p.ip.ttl, 64);
    assert_eq!(p.ip.proto, 6);
    let Transport::Tcp(t) = p.transport else { panic!("not tcp") };
    assert_eq!((t.src_port, t.dst_port, t.seq), (40000, 80, 1000));
    assert_eq!(t.flags, tcp_flags::SYN);
    assert_eq!(t.window, 64240);
    assert_eq!(t.options.mss, Some(1460));
    assert_eq!(t.options.wscale, Some(7));
    assert!(t.options.sack_permitted);
    assert_eq!(t.options.timestamp, Some((111, 0)));
    assert_eq!(p.payload, b"hello");
    assert_eq!(p.payload_len, 5);
    assert!(p.tunnel.is_none());
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = PacketBuilder::ethernet2([0; 6], [0; 6]).ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).udp(53, 5353);
    let _ = &mut f;
    let mut v = Vec::new();
    f.write(&mut v, b"ab").unwrap();
    v.resize(60, 0); // minimum Ethernet frame
    let p = dissect(LinkType::Ethernet, &v).unwrap();
    assert_eq!(p.payload, b"ab");
    assert_eq!(p.ports(), (53, 5353));
}

#[test]
fn snap_truncated_payload_keeps_claimed_length() {
    let f = tcp_frame(&[0x55; 1000]);
    let p = dissect_frame(LinkType::Ethernet, &f[..128], f.len() as u32).unwrap();
    assert_eq!(p.payload_len, 1000);
    assert_eq!(p.payload.len(), 128 - 14 - 20 - 40);
    assert_eq!(p.uncaptured, f.len() as u32 - 128);
}

#[test]
fn ip_length_beyond_the_wire_is_cut_to_the_wire() {
    // The IP header claims 1000 payload bytes the frame never carried.
    let f = tcp_frame(&[0x55; 1000]);
    let p = dissect(LinkType::Ethernet, &f[..128]).unwrap();
    assert_eq!(p.payload_len, 128 - 14 - 20 - 40);
}

#[test]
fn qinq_and_ipv6_udp() {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .double_vlan(etherparse::VlanId::try_new(100).unwrap(), etherparse::VlanId::try_new(200).unwrap())
        .ipv6([0xfd; 16], [0xfe; 16], 33)
        .udp(1234, 53);
    let mut v = Vec::new();
    b.write(&mut v, b"q").unwrap();
    let p = dissect(LinkType::Ethernet, &v).unwrap();
    assert_eq!((p.vlan_count, p.vlans), (2, [100, 200]));
    assert_eq!(p.ip.version, 6);
    assert_eq!(p.ip.dst, IpAddr::V6(Ipv6Addr::from([0xfe; 16])));
    assert_eq!(p.ip.ttl, 33);
    assert_eq!(p.ports(), (1234, 53));
    assert_eq!(p.payload, b"q");
}

fn outer_udp(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([9; 6], [8; 6]).ipv4([192, 168, 0, 1], [192, 168, 0, 2], 64).udp(50000, dst_port);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

#[test]
fn vxlan_decapsulates_to_inner_flow() {
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    vx.extend(tcp_frame(b"in"));
    let f = outer_udp(4789, &vx);
    let p = dissect(LinkType::Ethernet, &f).unwrap();
    let t = p.tunnel.unwrap();
    assert_eq!(t.kind, TunnelKind::Vxlan);
    assert_eq!(t.id, 42);
    assert_eq!(t.outer_src, IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)));
    assert_eq!(p.ip.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(p.ports(), (40000, 80));
    assert_eq!(p.src_mac, [1, 2, 3, 4, 5, 6]);
    assert_eq!(p.payload, b"in");
}

#[test]
fn garbage_on_vxlan_port_is_plain_udp() {
    let f = outer_udp(4789, b"\x00not vxlan at all");
    let p = dissect(LinkType::Ethernet, &f).unwrap();
    assert!(p.tunnel.is_none());
    assert_eq!(p.ports(), (50000, 4789));
    assert_eq!(p.payload, b"\x00not vxlan at all");
}

#[test]
fn geneve_with_options() {
    let mut g = vec![0x01, 0, 0x65, 0x58, 0, 0, 7, 0, 1, 2, 3, 4];
    g.extend(tcp_frame(b""));
    let p = eth(outer_udp(6081, &g)).unwrap();
    assert_eq!(p.tunnel.unwrap().kind, TunnelKind::Geneve);
    assert_eq!(p.tunnel.unwrap().id, 7);
    assert_eq!(p.ports(), (40000, 80));
}

fn outer_ip(proto: u8, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([9; 6], [8; 6]).ip(etherparse::IpHeaders::Ipv4(
        etherparse::Ipv4Header::new(
            payload.len() as u16,
            64,
            etherparse::IpNumber(proto),
            [172, 16, 0, 1],
            [172, 16, 0, 2],
        )
        .unwrap(),
        Default::default(),
    ));
    let mut v = Vec::new();
    b.write(&mut v, etherparse::IpNumber(proto), payload).unwrap();
    v
}

#[test]
fn erspan_ii_and_iii() {
    let inner = tcp_frame(b"m");
    // GRE with sequence number, protocol 0x88be, then the ERSPAN II header (session 5).
    let mut g = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0x00, 0x00, 0x05, 0, 0, 0, 0];
    g.extend(&inner);
    let p = eth(outer_ip(47, &g)).unwrap();
    let t = p.tunnel.unwrap();
    assert_eq!((t.kind, t.id), (TunnelKind::ErspanII, 5));
    assert_eq!(p.ports(), (40000, 80));

    let mut g3 = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
    g3.extend([0x20, 0x00, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x01]);
    g3.extend([0; 8]); // platform subheader announced by the O bit
    g3.extend(&inner);
    let p = eth(outer_ip(47, &g3)).unwrap();
    let t = p.tunnel.unwrap();
    assert_eq!((t.kind, t.id), (TunnelKind::ErspanIII, 9));
    assert_eq!(p.payload, b"m");
}

#[test]
fn gre_key_and_ipip() {
    let inner = &tcp_frame(b"x")[14..];
    let mut g = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0x30, 0x39];
    g.extend(inner);
    let p = eth(outer_ip(47, &g)).unwrap();
    assert_eq!(p.tunnel.unwrap().kind, TunnelKind::Gre);
    assert_eq!(p.tunnel.unwrap().id, 12345);
    assert_eq!(p.ports(), (40000, 80));

    let p = eth(outer_ip(4, inner)).unwrap();
    let t = p.tunnel.unwrap();
    assert_eq!(t.kind, TunnelKind::IpInIp);
    assert_eq!(t.outer_dst, IpAddr::V4(Ipv4Addr::new(172, 16, 0, 2)));
    assert_eq!(p.ip.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
}

#[test]
fn ipv4_fragment_stops_at_ip() {
    let mut f = tcp_frame(b"");
    // Set MF with offset 0.
    f[14 + 6] = 0x20;
    let p = dissect(LinkType::Ethernet, &f).unwrap();
    let fr = p.ip.frag.unwrap();
    assert!(fr.more);
    assert_eq!(fr.offset, 0);
    assert_eq!(p.transport, Transport::Other);
    // Reassembly hands the datagram back.
    let dg = f[34..].to_vec();
    let q = dissect_transport(&p, &dg).unwrap();
    assert_eq!(q.ports(), (40000, 80));
}

#[test]
fn cooked_and_loopback_links() {
    let eth = tcp_frame(b"s");
    let ip = &eth[14..];
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend(ip);
    assert_eq!(dissect(LinkType::LinuxSll, &sll).unwrap().ports(), (40000, 80));
    let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    sll2.extend(ip);
    let p = dissect(LinkType::LinuxSll2, &sll2).unwrap();
    assert_eq!(p.src_mac, [1, 2, 3, 4, 5, 6]);
    assert_eq!(p.payload, b"s");
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend(ip);
    assert_eq!(dissect(LinkType::Null, &null).unwrap().ports(), (40000, 80));
    let mut lo = 2u32.to_be_bytes().to_vec();
    lo.extend(ip);
    assert_eq!(dissect(LinkType::Null, &lo).unwrap().ports(), (40000, 80));
    assert_eq!(dissect(LinkType::RawIp, ip).unwrap().ports(), (40000, 80));
}

#[test]
fn arp_is_not_ip_and_short_frames_are_truncated() {
    let mut arp = vec![0xff; 12];
    arp.extend([0x08, 0x06]);
    arp.extend([0; 28]);
    assert_eq!(dissect(LinkType::Ethernet, &arp), Err(DecodeError::NotIp));
    assert_eq!(dissect(LinkType::Ethernet, &arp[..10]), Err(DecodeError::Truncated(Layer::Link)));
    let f = tcp_frame(b"");
    assert_eq!(dissect(LinkType::Ethernet, &f[..40]), Err(DecodeError::Truncated(Layer::Tcp)));
}

#[test]
fn every_prefix_and_random_bytes_never_panic() {
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    vx.extend(tcp_frame(b"in"));
    let frames = [tcp_frame(b"abc"), outer_udp(4789, &vx)];
    let links = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::Null,
        LinkType::Loop,
    ];
    for f in &frames {
        for n in 0..f.len() {
            for l in links {
                let _ = dissect(l, &f[..n]);
            }
        }
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = [0u8; 96];
    for _ in 0..20_000 {
        for b in &mut buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        // Make the interesting paths likely: IPv4/IPv6 versions, tunnel ports.
        buf[14] = if x & 1 == 0 { 0x45 } else { 0x60 };
        buf[12] = 0x08;
        buf[13] = 0;
        for l in links {
            let _ = dissect(l, &buf[..(x as usize % 96)]);
        }
    }
}
