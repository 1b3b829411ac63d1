//! IPv4 and IPv6 fragment reassembly, bounded in datagrams, bytes and time.
//!
//! Runs before sharding: only the first fragment carries the ports that
//! decide a packet's shard. The first copy of overlapping bytes wins
//! (RFC 5722 makes IPv6 overlaps fatal; we keep going and count them).
//! A fragment cut short by the capture's snap length is zero-filled to its
//! declared length so the datagram still completes for flow accounting.
//! A datagram that never completes is not lost either: when it expires,
//! its leading fragments (if the first one came) are handed on as a partial
//! datagram so the flow still counts their frames and bytes, as tshark
//! counts a first fragment that carries the transport header.
//!
//! Why not etherparse's `IpDefragPool`: it takes strictly sliced packets
//! (which rejects snapped captures and our tunnel walk), and its own docs
//! say it is not OOM-safe; here every limit is explicit and counted.

use std::net::IpAddr;

use flowtrail_decoders::wire::{Packet, Transport};
use hashbrown::HashMap;

/// Limits of the reassembler.
#[derive(Debug, Clone)]
pub struct DefragConfig {
    pub timeout_ns: i64,
    pub max_datagrams: usize,
    pub max_bytes: usize,
    pub max_fragments_per_datagram: usize,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            timeout_ns: 30_000_000_000,
            max_datagrams: 16_384,
            max_bytes: 64 << 20,
            max_fragments_per_datagram: 128,
        }
    }
}

/// Counters, reported in the run summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    /// Datagrams dropped because they did not complete within the timeout
    /// or the input ended first.
    pub timed_out: u64,
    /// Fragments dropped because a limit was hit.
    pub dropped_limit: u64,
    /// Fragments whose bytes overlapped earlier ones.
    pub overlaps: u64,
    /// Fragments with impossible offsets or lengths.
    pub malformed: u64,
    /// Incomplete datagrams whose first fragment was still delivered.
    pub partial_delivered: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    point: u32,
    tunnel_id: u32,
    vlans: [u16; 2],
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

struct Pending {
    first_ts: i64,
    last_ts: i64,
    point: u32,
    /// Header view of the fragment at offset 0, once seen.
    base: Option<Packet<'static>>,
    data: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    have: Vec<(u32, u32)>,
    total: Option<u32>,
    frames: u32,
    wire_len: u32,
}

/// A datagram put back together.
pub struct Datagram {
    /// The first fragment's view (addresses, protocol, tunnel).
    pub base: Packet<'static>,
    /// The IP payload of the whole datagram.
    pub data: Vec<u8>,
    pub frames: u32,
    pub wire_len: u32,
    /// Capture point and time of the last fragment.
    pub point: u32,
    pub last_ts: i64,
}

impl Datagram {
    /// What the flow table is told about the reassembled datagram: its
    /// last fragment's time, every fragment's bytes and frames, and no
    /// direction (fragments may have crossed the interface either way).
    #[must_use]
    pub fn info(&self) -> crate::flow::PacketInfo {
        crate::flow::PacketInfo {
            ts_ns: self.last_ts,
            point: self.point,
            wire_len: self.wire_len,
            frames: self.frames,
            direction: None,
        }
    }
}

pub struct Defragmenter {
    cfg: DefragConfig,
    pending: HashMap<FragKey, Pending>,
    bytes: usize,
    next_expiry_ns: i64,
    expired: Vec<Datagram>,
    pub stats: DefragStats,
}

/// The same view without the borrowed payload.
#[must_use]
pub fn detach(p: &Packet<'_>) -> Packet<'static> {
    Packet {
        src_mac: p.src_mac,
        dst_mac: p.dst_mac,
        vlans: p.vlans,
        vlan_count: p.vlan_count,
        tunnel: p.tunnel,
        ip: p.ip,
        transport: p.transport,
        payload: &[],
        payload_len: p.payload_len,
        uncaptured: p.uncaptured,
    }
}

const MAX_DATAGRAM: u32 = 65_535 + 40;

impl Defragmenter {
    #[must_use]
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            pending: HashMap::new(),
            bytes: 0,
            next_expiry_ns: i64::MIN,
            expired: Vec::new(),
            stats: DefragStats::default(),
        }
    }

    /// Adds a fragment (`p.ip.frag` is set); returns the datagram when
    /// this fragment completes it.
    pub fn push(&mut self, ts: i64, point: u32, wire_len: u32, p: &Packet<'_>) -> Option<Datagram> {
        let frag = p.ip.frag?;
        self.stats.fragments += 1;
        if ts >= self.next_expiry_ns {
            self.expire(ts);
            self.next_expiry_ns = ts.saturating_add(1_000_000_000);
        }
        let len = p.payload_len;
        let start = frag.offset;
        let end = start.saturating_add(len);
        if end > MAX_DATAGRAM || len == 0 {
            self.stats.malformed += 1;
            return None;
        }
        let key = FragKey {
            point,
            tunnel_id: p.tunnel.map_or(0, |t| t.id),
            vlans: p.vlans,
            src: p.ip.src,
            dst: p.ip.dst,
            proto: p.ip.proto,
            id: frag.id,
        };
        if !self.pending.contains_key(&key) && self.pending.len() >= self.cfg.max_datagrams {
            self.stats.dropped_limit += 1;
            return None;
        }
        // Limits first: a refused fragment leaves no empty entry behind.
        let held = self.pending.get(&key).map_or(0, |e| e.data.len());
        let grow = (end as usize).saturating_sub(held);
        if self.bytes + grow > self.cfg.max_bytes {
            self.stats.dropped_limit += 1;
            return None;
        }
        let entry = self.pending.entry(key).or_insert_with(|| Pending {
            first_ts: ts,
            last_ts: ts,
            point,
            base: None,
            data: Vec::new(),
            have: Vec::new(),
            total: None,
            frames: 0,
            wire_len: 0,
        });
        if entry.have.len() >= self.cfg.max_fragments_per_datagram {
            self.stats.dropped_limit += 1;
            return None;
        }
        if grow > 0 {
            entry.data.resize(end as usize, 0);
            self.bytes += grow;
        }
        if !frag.more {
            entry.total = Some(end);
        }
        if start == 0 {
            entry.base = Some(detach(p));
        }
        entry.frames += 1;
        entry.wire_len = entry.wire_len.saturating_add(wire_len);
        entry.last_ts = entry.last_ts.max(ts);
        // Copy only the bytes no earlier fragment supplied (first copy wins).
        let captured = &p.payload[..p.payload.len().min(len as usize)];
        let mut overlapped = false;
        let mut pos = start;
        for &(a, b) in &entry.have {
            if b <= pos || a >= end {
                continue;
            }
            overlapped = true;
            if a > pos {
                copy_range(&mut entry.data, captured, start, pos, a);
            }
            pos = pos.max(b);
        }
        if pos < end {
            copy_range(&mut entry.data, captured, start, pos, end);
        }
        if overlapped {
            self.stats.overlaps += 1;
        }
        insert_range(&mut entry.have, start, end);
        let complete =
            entry.total.is_some_and(|t| entry.have.len() == 1 && entry.have[0] == (0, t)) && entry.base.is_some();
        if !complete {
            return None;
        }
        let done = self.pending.remove(&key).expect("entry exists");
        self.bytes -= done.data.len();
        self.stats.reassembled += 1;
        let mut data = done.data;
        data.truncate(done.total.unwrap_or(0) as usize);
        let mut base = done.base.expect("checked complete");
        base.transport = Transport::Other;
        Some(Datagram {
            base,
            data,
            frames: done.frames,
            wire_len: done.wire_len,
            point: done.point,
            last_ts: done.last_ts,
        })
    }

    /// Expires datagrams older than the timeout.
    fn expire(&mut self, now: i64) {
        let timeout = self.cfg.timeout_ns;
        let old: Vec<FragKey> =
            self.pending.iter().filter(|(_, p)| now.saturating_sub(p.first_ts) > timeout).map(|(k, _)| *k).collect();
        for k in old {
            let p = self.pending.remove(&k).expect("collected from the map");
            self.give_up(p);
        }
    }

    fn give_up(&mut self, p: Pending) {
        self.bytes -= p.data.len();
        self.stats.timed_out += 1;
        let (Some(mut base), Some(&(0, end))) = (p.base, p.have.first()) else { return };
        let mut data = p.data;
        data.truncate(end as usize);
        base.transport = Transport::Other;
        self.stats.partial_delivered += 1;
        self.expired.push(Datagram {
            base,
            data,
            frames: p.frames,
            wire_len: p.wire_len,
            point: p.point,
            last_ts: p.last_ts,
        });
    }

    /// Partial datagrams given up on since the last call, oldest first.
    pub fn take_expired(&mut self) -> Vec<Datagram> {
        std::mem::take(&mut self.expired)
    }

    #[must_use]
    pub fn has_expired(&self) -> bool {
        !self.expired.is_empty()
    }

    /// The input ended: whatever is still incomplete never will be.
    pub fn finish(&mut self) {
        let mut rest: Vec<(FragKey, Pending)> = self.pending.drain().collect();
        rest.sort_by_key(|(_, p)| p.first_ts);
        for (_, p) in rest {
            self.give_up(p);
        }
    }
}

/// Copies datagram bytes `[from, to)` from a fragment that starts at
/// `frag_start`; bytes the capture did not keep stay zero.
fn copy_range(data: &mut [u8], captured: &[u8], frag_start: u32, from: u32, to: u32) {
    let a = (from - frag_start) as usize;
    let b = ((to - frag_start) as usize).min(captured.len());
    if a < b {
        data[from as usize..from as usize + (b - a)].copy_from_slice(&captured[a..b]);
    }
}

/// Inserts `[a, b)` into sorted, disjoint ranges, merging neighbours.
fn insert_range(have: &mut Vec<(u32, u32)>, a: u32, b: u32) {
    let mut a = a;
    let mut b = b;
    have.retain(|&(x, y)| {
        if y < a || x > b {
            true
        } else {
            a = a.min(x);
            b = b.max(y);
            false
        }
    });
    let at = have.partition_point(|&(x, _)| x < a);
    have.insert(at, (a, b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtrail_decoders::wire::{dissect, dissect_transport, LinkType};

    /// An IPv4/UDP datagram of `n` payload bytes cut into fragments of `step` bytes.
    fn fragments(n: usize, step: usize) -> Vec<Vec<u8>> {
        let mut udp = vec![0x30, 0x39, 0x00, 0x35];
        udp.extend(((8 + n) as u16).to_be_bytes());
        udp.extend([0, 0]);
        udp.extend((0..n).map(|i| i as u8));
        let mut out = Vec::new();
        let mut off = 0;
        while off < udp.len() {
            let chunk = &udp[off..(off + step).min(udp.len())];
            let more = off + step < udp.len();
            let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
            ip[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
            let field = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
            ip[6..8].copy_from_slice(&field.to_be_bytes());
            ip.extend(chunk);
            out.push(ip);
            off += step;
        }
        out
    }

    fn run(frames: &[Vec<u8>]) -> (Defragmenter, Option<Datagram>) {
        let mut d = Defragmenter::new(DefragConfig::default());
        let mut last = None;
        for (i, f) in frames.iter().enumerate() {
            let p = dissect(LinkType::Ipv4, f).unwrap();
            if let Some(dg) = d.push(i as i64, 0, f.len() as u32, &p) {
                last = Some(dg);
            }
        }
        (d, last)
    }

    #[test]
    fn in_order_out_of_order_and_duplicates() {
        let f = fragments(3000, 1480);
        for order in [vec![0, 1, 2], vec![2, 0, 1], vec![1, 1, 2, 0, 2]] {
            let frames: Vec<_> = order.iter().map(|&i| f[i].clone()).collect();
            let (d, dg) = run(&frames);
            let dg = dg.expect("reassembled");
            assert_eq!(dg.data.len(), 3008);
            let p = dissect_transport(&dg.base, &dg.data).unwrap();
            assert_eq!(p.ports(), (12345, 53));
            assert_eq!(p.payload_len, 3000);
            assert_eq!(p.payload[2999], (2999 % 256) as u8);
            assert_eq!(d.stats.reassembled, 1);
        }
    }

    #[test]
    fn missing_fragment_times_out() {
        let f = fragments(3000, 1480);
        let (mut d, dg) = run(&f[..2]);
        assert!(dg.is_none());
        d.finish();
        assert_eq!(d.stats.timed_out, 1);
        // The leading fragments still reach the flow, with their frames.
        let partial = d.take_expired();
        assert_eq!(partial.len(), 1);
        assert_eq!(partial[0].frames, 2);
        assert_eq!(dissect_transport(&partial[0].base, &partial[0].data).unwrap().ports(), (12345, 53));
    }

    #[test]
    fn limits_hold() {
        let mut d = Defragmenter::new(DefragConfig { max_datagrams: 1, ..DefragConfig::default() });
        let f = fragments(3000, 1480);
        let p = dissect(LinkType::Ipv4, &f[0]).unwrap();
        assert!(d.push(0, 0, 0, &p).is_none());
        let mut other = f[0].clone();
        other[5] = 0x99; // another datagram id
        let q = dissect(LinkType::Ipv4, &other).unwrap();
        assert!(d.push(0, 0, 0, &q).is_none());
        assert_eq!(d.stats.dropped_limit, 1);
    }

    #[test]
    fn ranges_merge() {
        let mut h = Vec::new();
        insert_range(&mut h, 10, 20);
        insert_range(&mut h, 30, 40);
        insert_range(&mut h, 20, 30);
        assert_eq!(h, vec![(10, 40)]);
        insert_range(&mut h, 0, 5);
        assert_eq!(h, vec![(0, 5), (10, 40)]);
    }
}
