//! Orders the segments of one TCP direction into a byte stream.
//!
//! - In order (the common case): the segment's bytes are released as they
//!   are, borrowed, with no copy.
//! - Retransmissions and overlaps: bytes already released are skipped; the
//!   first copy wins. Where a new copy overlaps bytes still held out of
//!   order and differs from them, that is counted as an anomaly.
//! - Out of order: held (copied) until the hole fills, up to a per-stream
//!   limit and a shared budget; past either, the hole is declared a gap.
//! - Gaps: bytes the capture never saw are released as [`Chunk::Gap`] so
//!   the decoder resynchronises. A gap is declared when the peer
//!   acknowledges beyond it (the data passed the capture point unseen),
//!   when a limit is hit, when the capture snapped the segment, and when
//!   the stream ends with holes.
//! - Sequence numbers wrap (RFC 9293 §3.4); data before the first segment
//!   seen (a capture that starts mid-connection) is simply not there: the
//!   stream starts at the first byte seen.

/// A piece of the stream, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// This many bytes are missing here.
    Gap(u32),
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Segments held out of order.
    pub out_of_order: u64,
    /// Overlapping copies whose bytes differed (first copy kept).
    pub overlap_conflicts: u64,
    /// Times the per-stream or shared buffer limit forced a gap.
    pub limit_hits: u64,
}

#[inline]
fn diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Assembler {
    /// Sequence number of the next byte to release; `None` before the
    /// first segment.
    next: Option<u32>,
    /// Out-of-order segments, sorted by sequence number, not overlapping.
    held: Vec<(u32, Vec<u8>)>,
    held_bytes: usize,
    /// Sequence number of the FIN, once seen: the peer's ACK of the FIN is
    /// one beyond the last byte and must not look like a missing byte.
    fin_at: Option<u32>,
    pub stats: AssemblerStats,
}

/// Most segments held out of order per direction.
const MAX_HELD_SEGMENTS: usize = 256;

impl Assembler {
    /// Bytes held out of order.
    #[must_use]
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The SYN (or SYN-ACK) fixes the stream's start at `isn + 1`.
    pub fn on_syn(&mut self, isn: u32) {
        if self.next.is_none() {
            self.next = Some(isn.wrapping_add(1));
        }
    }

    /// The direction sent a FIN at `seq` (after its last data byte).
    pub fn on_fin(&mut self, seq: u32) {
        self.fin_at.get_or_insert(seq);
    }

    /// Adds a segment: `data` is what was captured of a payload `wire_len`
    /// bytes long starting at `seq`. Releases what is now in order to
    /// `out`. `budget` is the shared allowance for held bytes (decreased
    /// and increased as bytes are held and released); `limit` is this
    /// stream's own.
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        wire_len: u32,
        limit: usize,
        budget: &mut usize,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if wire_len == 0 {
            return;
        }
        let next = *self.next.get_or_insert(seq);
        let rel = diff(seq, next);
        let end_rel = rel + i64::from(wire_len);
        if end_rel <= 0 {
            // Entirely old: a retransmission of released bytes.
            return;
        }
        if rel > 0 {
            self.hold(seq, data, wire_len, limit, budget, out);
            return;
        }
        // Starts at or before `next`: release the new part at once.
        let skip = (-rel) as usize;
        let captured = &data[skip.min(data.len())..];
        let new_len = (end_rel) as u32;
        self.release(captured, new_len, out);
        self.drain_held(budget, out);
    }

    /// Releases `captured` bytes of a run of `len` bytes at `next`.
    fn release(&mut self, captured: &[u8], len: u32, out: &mut dyn FnMut(Chunk<'_>)) {
        let Some(next) = self.next else { return };
        let keep = captured.len().min(len as usize);
        if keep > 0 {
            out(Chunk::Data(&captured[..keep]));
        }
        let missing = len - keep as u32;
        if missing > 0 {
            self.stats.gaps += 1;
            self.stats.gap_bytes += u64::from(missing);
            out(Chunk::Gap(missing));
        }
        self.next = Some(next.wrapping_add(len));
    }

    fn hold(
        &mut self,
        seq: u32,
        data: &[u8],
        wire_len: u32,
        limit: usize,
        budget: &mut usize,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        self.stats.out_of_order += 1;
        // A snapped segment's tail is unknown: hold what we have and let
        // the hole after it be a gap later.
        let bytes = &data[..data.len().min(wire_len as usize)];
        if bytes.is_empty() {
            return;
        }
        if self.held_bytes + bytes.len() > limit || bytes.len() > *budget || self.held.len() >= MAX_HELD_SEGMENTS {
            // No room: every hole so far becomes a gap, and so does the
            // one before this segment, which is then released directly.
            self.stats.limit_hits += 1;
            while !self.held.is_empty() {
                self.skip_to_first_held(budget, out);
            }
            let next = self.next.expect("set by the caller");
            let rel = diff(seq, next);
            let end_rel = rel + i64::from(wire_len);
            if end_rel <= 0 {
                return;
            }
            if rel > 0 {
                self.gap(rel as u32);
                out(Chunk::Gap(rel as u32));
                self.next = Some(seq);
                self.release(data, wire_len, out);
            } else {
                let skip = (-rel) as usize;
                self.release(&data[skip.min(data.len())..], end_rel as u32, out);
            }
            return;
        }
        // Insert, keeping the first copy of any byte already held.
        let mut start = seq;
        let end = seq.wrapping_add(bytes.len() as u32);
        let mut pieces: Vec<(u32, Vec<u8>)> = Vec::new();
        for (hs, hd) in &self.held {
            let he = hs.wrapping_add(hd.len() as u32);
            if diff(*hs, end) >= 0 || diff(he, start) <= 0 {
                continue;
            }
            // Overlap [max(start,hs), min(end,he)): compare, keep held.
            let ov_a = if diff(*hs, start) > 0 { *hs } else { start };
            let ov_b = if diff(he, end) < 0 { he } else { end };
            let new_part = &bytes[ov_a.wrapping_sub(seq) as usize..ov_b.wrapping_sub(seq) as usize];
            let old_part = &hd[ov_a.wrapping_sub(*hs) as usize..ov_b.wrapping_sub(*hs) as usize];
            if new_part != old_part {
                self.stats.overlap_conflicts += 1;
            }
            if diff(ov_a, start) > 0 {
                pieces.push((start, bytes[start.wrapping_sub(seq) as usize..ov_a.wrapping_sub(seq) as usize].to_vec()));
            }
            if diff(ov_b, start) > 0 {
                start = ov_b;
            }
        }
        if diff(end, start) > 0 {
            pieces.push((start, bytes[start.wrapping_sub(seq) as usize..].to_vec()));
        }
        for (s, d) in pieces {
            *budget = budget.saturating_sub(d.len());
            self.held_bytes += d.len();
            let at = self.held.partition_point(|(hs, _)| diff(*hs, s) < 0);
            self.held.insert(at, (s, d));
        }
    }

    fn gap(&mut self, len: u32) {
        self.stats.gaps += 1;
        self.stats.gap_bytes += u64::from(len);
    }

    /// Releases held segments that are now in order.
    fn drain_held(&mut self, budget: &mut usize, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some((seq, _)) = self.held.first() {
            let next = self.next.expect("set before holding");
            let rel = diff(*seq, next);
            if rel > 0 {
                break;
            }
            let (_, data) = self.held.remove(0);
            self.held_bytes -= data.len();
            *budget += data.len();
            let skip = (-rel) as usize;
            if skip < data.len() {
                let len = (data.len() - skip) as u32;
                self.release(&data[skip..], len, out);
            }
        }
    }

    /// Declares the hole before the first held segment a gap and releases
    /// what follows it.
    fn skip_to_first_held(&mut self, budget: &mut usize, out: &mut dyn FnMut(Chunk<'_>)) {
        let (Some(next), Some(seq)) = (self.next, self.held.first().map(|(s, _)| *s)) else {
            return;
        };
        let missing = seq.wrapping_sub(next);
        if missing > 0 {
            self.gap(missing);
            out(Chunk::Gap(missing));
            self.next = Some(seq);
        }
        self.drain_held(budget, out);
    }

    /// The peer acknowledged up to `ack`: bytes before it that were never
    /// seen passed the capture point unseen. Declares them a gap.
    pub fn on_peer_ack(&mut self, ack: u32, budget: &mut usize, out: &mut dyn FnMut(Chunk<'_>)) {
        let Some(next) = self.next else { return };
        let ack = match self.fin_at {
            Some(fin) if diff(ack, fin) > 0 => fin,
            _ => ack,
        };
        let ahead = diff(ack, next);
        // Only a plausible distance: a stray ACK far away is ignored.
        if ahead <= 0 || ahead > 1 << 30 {
            return;
        }
        let hole_end = match self.held.first() {
            Some((seq, _)) if diff(*seq, ack) < 0 => *seq,
            _ => ack,
        };
        let missing = hole_end.wrapping_sub(next);
        if missing > 0 {
            self.gap(missing);
            out(Chunk::Gap(missing));
            self.next = Some(hole_end);
        }
        self.drain_held(budget, out);
    }

    /// The stream ended: releases everything held, with gaps for holes.
    pub fn finish(&mut self, budget: &mut usize, out: &mut dyn FnMut(Chunk<'_>)) {
        while !self.held.is_empty() {
            self.skip_to_first_held(budget, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs segments (seq, bytes) through an assembler; returns the stream
    /// with gaps shown as `_` per missing byte.
    fn run(segs: &[(u32, &[u8])], limit: usize) -> (String, AssemblerStats) {
        let mut a = Assembler::default();
        let mut budget = 1 << 20;
        let mut s = String::new();
        let mut out = |c: Chunk<'_>| match c {
            Chunk::Data(d) => s.push_str(std::str::from_utf8(d).unwrap()),
            Chunk::Gap(n) => s.push_str(&"_".repeat(n as usize)),
        };
        for (seq, d) in segs {
            a.segment(*seq, d, d.len() as u32, limit, &mut budget, &mut out);
        }
        a.finish(&mut budget, &mut out);
        assert_eq!(budget, 1 << 20, "budget returned");
        (s, a.stats)
    }

    #[test]
    fn in_order() {
        assert_eq!(run(&[(1, b"abc"), (4, b"def")], 100).0, "abcdef");
    }

    #[test]
    fn retransmission_and_partial_overlap() {
        let (s, st) = run(&[(1, b"abc"), (1, b"abc"), (2, b"bcdef")], 100);
        assert_eq!(s, "abcdef");
        assert_eq!(st.gaps, 0);
    }

    #[test]
    fn out_of_order_is_reordered() {
        let (s, st) = run(&[(1, b"ab"), (5, b"ef"), (3, b"cd"), (7, b"g")], 100);
        assert_eq!(s, "abcdefg");
        assert_eq!(st.out_of_order, 1);
    }

    #[test]
    fn overlap_with_different_bytes_keeps_first_and_counts() {
        let (s, st) = run(&[(1, b"a"), (3, b"cd"), (3, b"XY"), (2, b"b")], 100);
        assert_eq!(s, "abcd");
        assert_eq!(st.overlap_conflicts, 1);
    }

    #[test]
    fn hole_at_end_becomes_gap() {
        let (s, st) = run(&[(1, b"ab"), (5, b"ef")], 100);
        assert_eq!(s, "ab__ef");
        assert_eq!((st.gaps, st.gap_bytes), (1, 2));
    }

    #[test]
    fn limit_forces_gap() {
        let (s, st) = run(&[(1, b"a"), (3, b"cc"), (6, b"fff")], 3);
        assert_eq!(s, "a_cc_fff");
        assert!(st.limit_hits >= 1);
    }

    #[test]
    fn sequence_wraps() {
        let (s, _) = run(&[(u32::MAX - 1, b"ab"), (0, b"cd"), (3, b"f"), (2, b"e")], 100);
        assert_eq!(s, "abcdef");
    }

    #[test]
    fn peer_ack_beyond_hole_declares_gap() {
        let mut a = Assembler::default();
        let mut budget = 1000;
        let mut got = Vec::new();
        let mut out = |c: Chunk<'_>| got.push(format!("{c:?}"));
        a.on_syn(99);
        a.segment(100, b"abc", 3, 100, &mut budget, &mut out);
        a.on_peer_ack(110, &mut budget, &mut out);
        a.segment(110, b"k", 1, 100, &mut budget, &mut out);
        assert_eq!(got, vec!["Data([97, 98, 99])", "Gap(7)", "Data([107])"]);
    }

    #[test]
    fn ack_of_fin_is_not_a_missing_byte() {
        let mut a = Assembler::default();
        let mut budget = 1000;
        let mut got = Vec::new();
        let mut out = |c: Chunk<'_>| got.push(format!("{c:?}"));
        a.on_syn(99);
        a.segment(100, b"abc", 3, 100, &mut budget, &mut out);
        a.on_fin(103);
        a.on_peer_ack(104, &mut budget, &mut out);
        assert_eq!(got, vec!["Data([97, 98, 99])"]);
    }

    #[test]
    fn snapped_segment_releases_gap_for_missing_tail() {
        let mut a = Assembler::default();
        let mut budget = 1000;
        let mut got = Vec::new();
        let mut out = |c: Chunk<'_>| got.push(format!("{c:?}"));
        a.segment(1, b"ab", 5, 100, &mut budget, &mut out);
        a.segment(6, b"z", 1, 100, &mut budget, &mut out);
        assert_eq!(got, vec!["Data([97, 98])", "Gap(3)", "Data([122])"]);
    }

    #[test]
    fn random_segments_never_panic_and_return_budget() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..300 {
            let mut a = Assembler::default();
            let mut budget = 4096;
            let base = rnd() as u32;
            let mut out = |_: Chunk<'_>| {};
            for _ in 0..50 {
                let seq = base.wrapping_add((rnd() % 3000) as u32);
                let len = (rnd() % 300) as usize;
                let data = vec![b'x'; len];
                let wire = len as u32 + (rnd() % 2) as u32 * 10;
                a.segment(seq, &data, wire, 2048, &mut budget, &mut out);
                if rnd() % 5 == 0 {
                    a.on_peer_ack(base.wrapping_add((rnd() % 3000) as u32), &mut budget, &mut out);
                }
            }
            a.finish(&mut budget, &mut out);
            assert_eq!(budget, 4096);
            assert_eq!(a.held_bytes(), 0);
        }
    }
}
