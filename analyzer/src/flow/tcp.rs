//! TCP health per direction: retransmissions, reordering, zero windows.
//!
//! The rules are Wireshark's sequence analysis (`tcp_analyze_sequence_number`
//! in epan/dissectors/packet-tcp.c, described in the Wireshark User's Guide,
//! "TCP Analysis"), re-implemented so counts can be checked one for one
//! against `tcp.analysis.*` in tests. For a segment that carries data, SYN
//! or FIN and starts below the highest sequence number its direction has
//! sent (`next_seq`):
//! - a keep-alive (0 or 1 byte at `next_seq - 1`, no SYN/FIN/RST) is none
//!   of the below;
//! - *spurious retransmission*: its data was already acknowledged;
//! - *fast retransmission*: the other side sent at least two duplicate ACKs
//!   for exactly this sequence number, the last one less than 20 ms ago;
//! - *out of order*: it came within the handshake RTT (3 ms when unknown)
//!   of the segment that advanced `next_seq`, and does not end exactly at it;
//! - otherwise a *retransmission*.
//!
//! The first three and the last are all counted as retransmissions, as
//! Wireshark's `tcp.analysis.retransmission` flags them all. One difference
//! is known: Wireshark's "ACKed unseen segment" bookkeeping, which can
//! reset the duplicate-ACK count, is not kept.

use flowtrail_decoders::wire::tcp_flags::{FIN, RST, SYN};

/// Wrapping sequence comparison (RFC 9293 §3.4).
#[inline]
pub(super) fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

const FAST_RETRANSMISSION_NS: i64 = 20_000_000;
/// Out-of-order window when the handshake RTT is unknown.
pub(super) const DEFAULT_OOO_NS: i64 = 3_000_000;

/// Sequence state of one direction; lives as long as the flow.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SeqTrack {
    /// Highest sequence number sent plus one; 0 means not known yet (as in
    /// Wireshark, so a stream whose `next_seq` is exactly 0 behaves alike).
    next_seq: u32,
    next_seq_ts: i64,
    last_ack: u32,
    last_ack_ts: i64,
    window: u16,
    dup_acks: u32,
    last_keepalive: bool,
    last_zero_window_probe: bool,
}

/// One segment as the analysis sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub seq: u32,
    pub ack: u32,
    pub payload_len: u32,
    pub flags: u8,
    pub window: u16,
    pub ts: i64,
}

/// What one segment was, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SegmentKind {
    Normal,
    Retransmission,
    OutOfOrder,
}

/// The verdict on a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Analysis {
    pub kind: SegmentKind,
    /// Advertises a zero window (not a SYN/FIN/RST, not a window probe).
    pub zero_window: bool,
}

/// Analyses a segment sent in direction `fwd`; `rev` is the other one.
pub(super) fn analyze(fwd: &mut SeqTrack, rev: &SeqTrack, s: &Segment, ooo_window_ns: i64) -> Analysis {
    let control = s.flags & (SYN | FIN | RST) != 0;
    let syn_or_fin = s.flags & (SYN | FIN) != 0;
    let len = s.payload_len;
    let zero_window_probe = len == 1 && s.seq == fwd.next_seq && rev.window == 0;
    let mut keepalive = false;
    let zero_window = !zero_window_probe && s.window == 0 && !control;
    if !zero_window_probe {
        keepalive = len <= 1 && s.seq == fwd.next_seq.wrapping_sub(1) && !control;
        let repeats = len == 0 && s.seq == fwd.next_seq && s.ack == fwd.last_ack && !control && s.window == fwd.window;
        let keepalive_ack = repeats && s.window != 0 && rev.last_keepalive;
        let probe_ack = repeats && s.window == 0 && rev.last_zero_window_probe;
        if repeats && s.window != 0 && !keepalive_ack && !probe_ack {
            fwd.dup_acks += 1;
        }
    }
    if s.ack != fwd.last_ack {
        fwd.dup_acks = 0;
    }

    let mut kind = SegmentKind::Normal;
    if (len > 0 || syn_or_fin) && !keepalive {
        let mut not_advanced = fwd.next_seq != 0 && seq_lt(s.seq, fwd.next_seq);
        if len > 1 && fwd.next_seq.wrapping_sub(1) == s.seq {
            not_advanced = false;
        }
        let end = s.seq.wrapping_add(len);
        let spurious = len > 0 && rev.last_ack != 0 && !seq_lt(rev.last_ack, end);
        let fast = not_advanced
            && rev.dup_acks >= 2
            && rev.last_ack == s.seq
            && s.ts.saturating_sub(rev.last_ack_ts) < FAST_RETRANSMISSION_NS;
        let out_of_order = not_advanced
            && s.ts.saturating_sub(fwd.next_seq_ts) < ooo_window_ns
            && fwd.next_seq != end.wrapping_add(u32::from(syn_or_fin));
        kind = if spurious || fast {
            SegmentKind::Retransmission
        } else if out_of_order {
            SegmentKind::OutOfOrder
        } else if not_advanced {
            SegmentKind::Retransmission
        } else {
            SegmentKind::Normal
        };
    }

    let next = s.seq.wrapping_add(len).wrapping_add(u32::from(syn_or_fin));
    if (seq_lt(fwd.next_seq, next) || fwd.next_seq == 0) && !zero_window_probe {
        fwd.next_seq = next;
        fwd.next_seq_ts = s.ts;
    }
    fwd.window = s.window;
    fwd.last_ack = s.ack;
    fwd.last_ack_ts = s.ts;
    fwd.last_keepalive = keepalive;
    fwd.last_zero_window_probe = zero_window_probe;
    Analysis { kind, zero_window }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtrail_decoders::wire::tcp_flags::ACK;

    const MS: i64 = 1_000_000;

    fn seg(seq: u32, ack: u32, len: u32, ts_ms: i64) -> Segment {
        Segment { seq, ack, payload_len: len, flags: ACK, window: 1000, ts: ts_ms * MS }
    }

    fn run(fwd: &mut SeqTrack, rev: &SeqTrack, s: Segment) -> SegmentKind {
        analyze(fwd, rev, &s, DEFAULT_OOO_NS).kind
    }

    #[test]
    fn in_order_then_resend_is_retransmission() {
        let (mut a, b) = (SeqTrack::default(), SeqTrack::default());
        assert_eq!(run(&mut a, &b, seg(100, 1, 10, 0)), SegmentKind::Normal);
        assert_eq!(run(&mut a, &b, seg(110, 1, 10, 1)), SegmentKind::Normal);
        assert_eq!(run(&mut a, &b, seg(110, 1, 10, 200)), SegmentKind::Retransmission);
    }

    #[test]
    fn hole_filled_quickly_is_out_of_order_late_is_retransmission() {
        let (mut a, b) = (SeqTrack::default(), SeqTrack::default());
        run(&mut a, &b, seg(100, 1, 10, 0));
        run(&mut a, &b, seg(120, 1, 10, 1)); // 110..120 missing
        assert_eq!(run(&mut a, &b, seg(110, 1, 10, 2)), SegmentKind::OutOfOrder);
        let (mut c, d) = (SeqTrack::default(), SeqTrack::default());
        run(&mut c, &d, seg(100, 1, 10, 0));
        run(&mut c, &d, seg(120, 1, 10, 1));
        assert_eq!(run(&mut c, &d, seg(110, 1, 10, 50)), SegmentKind::Retransmission);
    }

    #[test]
    fn repeated_syn_is_retransmission_keepalive_is_not() {
        let (mut a, b) = (SeqTrack::default(), SeqTrack::default());
        let syn = Segment { seq: 500, ack: 0, payload_len: 0, flags: SYN, window: 1000, ts: 0 };
        assert_eq!(analyze(&mut a, &b, &syn, DEFAULT_OOO_NS).kind, SegmentKind::Normal);
        let again = Segment { ts: 1000 * MS, ..syn };
        assert_eq!(analyze(&mut a, &b, &again, DEFAULT_OOO_NS).kind, SegmentKind::Retransmission);
        run(&mut a, &b, seg(501, 1, 10, 1001));
        assert_eq!(run(&mut a, &b, seg(510, 1, 1, 9000)), SegmentKind::Normal, "keep-alive");
    }

    #[test]
    fn acknowledged_data_sent_again_is_spurious() {
        let (mut a, mut b) = (SeqTrack::default(), SeqTrack::default());
        run(&mut a, &b, seg(100, 1, 10, 0));
        run(&mut b, &a, seg(1, 110, 0, 1)); // the peer acknowledged it
        assert_eq!(run(&mut a, &b, seg(100, 1, 10, 2)), SegmentKind::Retransmission);
    }

    #[test]
    fn zero_window_counts_but_not_on_control_segments() {
        let (mut a, b) = (SeqTrack::default(), SeqTrack::default());
        let s = Segment { window: 0, ..seg(100, 1, 0, 0) };
        assert!(analyze(&mut a, &b, &s, DEFAULT_OOO_NS).zero_window);
        let rst = Segment { flags: RST, ..s };
        assert!(!analyze(&mut a, &b, &rst, DEFAULT_OOO_NS).zero_window);
    }

    #[test]
    fn wraparound() {
        let (mut a, b) = (SeqTrack::default(), SeqTrack::default());
        run(&mut a, &b, seg(u32::MAX - 4, 1, 10, 0));
        assert_eq!(run(&mut a, &b, seg(5, 1, 10, 1)), SegmentKind::Normal);
        assert_eq!(run(&mut a, &b, seg(u32::MAX - 4, 1, 10, 900)), SegmentKind::Retransmission);
    }
}
