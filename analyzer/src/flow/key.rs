//! Flow keys and the symmetric hash that shards them.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use flowtrail_decoders::wire::{Packet, Transport};

/// Normalised flow key: `lo` is the smaller (address, port) endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub point: u32,
    pub vlans: [u16; 2],
    pub tunnel_id: u32,
    pub proto: u8,
    pub lo: (IpAddr, u16),
    pub hi: (IpAddr, u16),
}

impl FlowKey {
    /// The key of a packet, and whether the packet was sent by `lo`.
    #[must_use]
    pub fn of(point: u32, p: &Packet<'_>) -> (Self, bool) {
        let (sp, dp) = match p.transport {
            Transport::Tcp(t) => (t.src_port, t.dst_port),
            Transport::Udp { src_port, dst_port } => (src_port, dst_port),
            Transport::Icmp { echo: Some((id, _)), .. } => (id, id),
            _ => (0, 0),
        };
        let src = (p.ip.src, sp);
        let dst = (p.ip.dst, dp);
        // The same order as comparing the (IpAddr, port) tuples (V4 before
        // V6, then bytes, then port), without the derived chained compare.
        let from_lo = (ip_rank(p.ip.src), sp) <= (ip_rank(p.ip.dst), dp);
        debug_assert_eq!(from_lo, src <= dst);
        let (lo, hi) = if from_lo { (src, dst) } else { (dst, src) };
        let key = FlowKey { point, vlans: p.vlans, tunnel_id: p.tunnel.map_or(0, |t| t.id), proto: p.ip.proto, lo, hi };
        (key, from_lo)
    }

    /// The key folded into four words, for the flow table's hash: one
    /// pass of the hasher over fixed-size data instead of the derived
    /// field-by-field `Hash` (enum tags, lengths). Equal keys fold alike.
    #[must_use]
    pub fn words(&self) -> [u64; 4] {
        let ((fa, a), (fb, b)) = (ip_rank(self.lo.0), ip_rank(self.hi.0));
        [
            (a as u64) ^ ((a >> 64) as u64).rotate_left(17) ^ u64::from(self.lo.1) << 48,
            (b as u64) ^ ((b >> 64) as u64).rotate_left(17) ^ u64::from(self.hi.1) << 48,
            u64::from(self.point) << 32 | u64::from(self.tunnel_id),
            u64::from(self.vlans[0]) << 48
                | u64::from(self.vlans[1]) << 32
                | u64::from(self.proto) << 16
                | u64::from(fa) << 8
                | u64::from(fb),
        ]
    }

    /// A hash that is the same in every run and on every machine (for
    /// sharding and flow ids), unlike the randomly seeded table hasher.
    #[must_use]
    pub fn stable_hash(&self, extra: i64) -> u64 {
        let state = foldhash::fast::FixedState::with_seed(0x0066_6c6f_7774_726c);
        let mut h = state.build_hasher();
        self.hash(&mut h);
        extra.hash(&mut h);
        std::hash::Hasher::finish(&h)
    }
}

/// An address as (family, number), ordered like `IpAddr`'s `Ord`: every
/// IPv4 address before every IPv6 one, then by bytes.
#[inline]
fn ip_rank(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(a) => (4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (6, u128::from(a)),
    }
}

/// The worker shard a packet belongs to: both directions of a flow go to
/// the same shard, so shards share nothing.
#[must_use]
pub fn shard_of(key: &FlowKey, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    (key.stable_hash(0) % shards as u64) as usize
}
