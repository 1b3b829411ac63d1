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
        let from_lo = src <= dst;
        let (lo, hi) = if from_lo { (src, dst) } else { (dst, src) };
        let key = FlowKey { point, vlans: p.vlans, tunnel_id: p.tunnel.map_or(0, |t| t.id), proto: p.ip.proto, lo, hi };
        (key, from_lo)
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

/// The worker shard a packet belongs to: both directions of a flow go to
/// the same shard, so shards share nothing.
#[must_use]
pub fn shard_of(key: &FlowKey, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    (key.stable_hash(0) % shards as u64) as usize
}
