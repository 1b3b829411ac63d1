//! TCP health per direction: retransmissions, reordering, zero windows.
//!
//! The rules follow Wireshark's `tcp_analyze_sequence_number` so counts
//! can be checked against `tcp.analysis.*` in tests: a segment that
//! carries data (or SYN/FIN) and starts below the highest sequence number
//! seen in its direction is out-of-order when it comes within one RTT
//! (3 ms when the handshake was not seen) of the segment that advanced
//! that highest sequence number and does not repeat the previous
//! segment's sequence number; otherwise it is a retransmission.
//! Keep-alives (one byte, or none, just below the next sequence) are neither.

/// Wrapping sequence comparison (RFC 9293 §3.4).
#[inline]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Sequence tracking of one direction; lives as long as the flow.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SeqTrack {
    valid: bool,
    next_seq: u32,
    next_seq_ts: i64,
    last_seq: u32,
}

/// What one segment was, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SegmentKind {
    Normal,
    Retransmission,
    OutOfOrder,
}

impl SeqTrack {
    /// `seg_len` counts payload plus one for SYN and one for FIN.
    pub(super) fn on_segment(&mut self, seq: u32, seg_len: u32, ts: i64, ooo_window_ns: i64) -> SegmentKind {
        if seg_len == 0 {
            return SegmentKind::Normal;
        }
        let end = seq.wrapping_add(seg_len);
        if !self.valid {
            *self = SeqTrack { valid: true, next_seq: end, next_seq_ts: ts, last_seq: seq };
            return SegmentKind::Normal;
        }
        let mut kind = SegmentKind::Normal;
        if seq_lt(seq, self.next_seq) {
            let keepalive = seg_len <= 1 && seq == self.next_seq.wrapping_sub(1);
            if !keepalive {
                kind = if ts - self.next_seq_ts < ooo_window_ns && seq != self.last_seq {
                    SegmentKind::OutOfOrder
                } else {
                    SegmentKind::Retransmission
                };
            }
            if seq_lt(self.next_seq, end) {
                self.next_seq = end;
                self.next_seq_ts = ts;
            }
        } else {
            self.next_seq = end;
            self.next_seq_ts = ts;
        }
        self.last_seq = seq;
        kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn in_order_then_resend_is_retransmission() {
        let mut t = SeqTrack::default();
        assert_eq!(t.on_segment(100, 10, 0, 3 * MS), SegmentKind::Normal);
        assert_eq!(t.on_segment(110, 10, MS, 3 * MS), SegmentKind::Normal);
        assert_eq!(t.on_segment(110, 10, 200 * MS, 3 * MS), SegmentKind::Retransmission);
    }

    #[test]
    fn hole_filled_quickly_is_out_of_order() {
        let mut t = SeqTrack::default();
        t.on_segment(100, 10, 0, 3 * MS);
        t.on_segment(120, 10, MS, 3 * MS); // 110..120 missing
        assert_eq!(t.on_segment(110, 10, 2 * MS, 3 * MS), SegmentKind::OutOfOrder);
    }

    #[test]
    fn hole_filled_late_is_retransmission() {
        let mut t = SeqTrack::default();
        t.on_segment(100, 10, 0, 3 * MS);
        t.on_segment(120, 10, MS, 3 * MS);
        assert_eq!(t.on_segment(110, 10, 50 * MS, 3 * MS), SegmentKind::Retransmission);
    }

    #[test]
    fn keepalive_and_wraparound() {
        let mut t = SeqTrack::default();
        t.on_segment(u32::MAX - 4, 10, 0, 3 * MS);
        assert_eq!(t.on_segment(5, 10, MS, 3 * MS), SegmentKind::Normal);
        assert_eq!(t.on_segment(14, 1, 9000 * MS, 3 * MS), SegmentKind::Normal, "keep-alive");
        assert_eq!(t.on_segment(u32::MAX - 4, 10, 9001 * MS, 3 * MS), SegmentKind::Retransmission);
    }
}
