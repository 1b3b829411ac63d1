//! Drives a flow's L7 decoding: reassembled TCP bytes (or UDP datagrams)
//! → detection by payload → the protocol's session → calls.
//!
//! Zero-copy in the common case: in-order bytes go from the packet to the
//! session as they are; only bytes a session has not consumed yet (a
//! message split across segments) are kept, in a per-direction carry
//! buffer bounded by the session's message limit.

use flowtrail_decoders::l7::{
    detect, Call, Decoder, Detection, Direction, L7Error, L7Protocol, Session, SessionConfig, Transport,
};

use super::{Assembler, AssemblerStats, Chunk};

/// Limits and options of L7 decoding, per shard.
#[derive(Debug, Clone)]
pub struct L7Config {
    pub session: SessionConfig,
    /// Requests waiting longer than this (capture time) become timeout calls.
    pub request_timeout_ns: i64,
    /// Bytes one TCP direction may hold out of order.
    pub max_stream_buffer: usize,
    /// Bytes all flows of a shard may hold out of order together.
    pub max_shard_buffer: usize,
    /// Bytes looked at to detect a protocol before giving up.
    pub max_detect_bytes: usize,
}

impl Default for L7Config {
    fn default() -> Self {
        L7Config {
            session: SessionConfig::default(),
            request_timeout_ns: 60_000_000_000,
            max_stream_buffer: 256 * 1024,
            max_shard_buffer: 64 << 20,
            max_detect_bytes: 4096,
        }
    }
}

/// L7 counters of a shard.
#[derive(Debug, Clone, Default)]
pub struct L7Stats {
    pub detected: [u64; L7Protocol::ALL.len()],
    pub undetected_flows: u64,
    pub calls: u64,
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    pub stream: AssemblerStats,
}

impl L7Stats {
    pub fn add_stream(&mut self, s: &AssemblerStats) {
        self.stream.gaps += s.gaps;
        self.stream.gap_bytes += s.gap_bytes;
        self.stream.out_of_order += s.out_of_order;
        self.stream.overlap_conflicts += s.overlap_conflicts;
        self.stream.limit_hits += s.limit_hits;
    }
}

#[derive(Debug)]
enum State {
    Detecting,
    Active(Box<Session>),
    /// No decoder recognised the flow, or it failed: bytes are ignored.
    Off,
}

/// The TCP flags the stream cares about.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentFlags {
    pub syn: bool,
    pub fin: bool,
}

/// Everything a shard shares with its flows' L7 state.
pub struct L7Shard<'a> {
    pub cfg: &'a L7Config,
    /// Out-of-order bytes the shard may still hold.
    pub budget: &'a mut usize,
    pub stats: &'a mut L7Stats,
}

/// The L7 side of one flow.
#[derive(Debug)]
pub struct L7Flow {
    state: State,
    transport: Transport,
    server_port: u16,
    asm: [Assembler; 2],
    carry: [Vec<u8>; 2],
    /// Directions whose first bytes were offered to detection.
    tried: [bool; 2],
    /// Directions the session gave up on.
    dead: [bool; 2],
    detected: Option<L7Protocol>,
    detect_datagrams: u8,
}

const DIRS: [Direction; 2] = [Direction::ToServer, Direction::ToClient];

fn index_of(p: L7Protocol) -> usize {
    p.index()
}

impl L7Flow {
    #[must_use]
    pub fn new(transport: Transport, server_port: u16) -> Self {
        L7Flow {
            state: State::Detecting,
            transport,
            server_port,
            asm: [Assembler::default(), Assembler::default()],
            carry: [Vec::new(), Vec::new()],
            tried: [false; 2],
            dead: [false; 2],
            detected: None,
            detect_datagrams: 0,
        }
    }

    /// The protocol detected, if any.
    #[must_use]
    pub fn protocol(&self) -> Option<L7Protocol> {
        self.detected
    }

    /// Whether the flow still wants payload.
    #[must_use]
    pub fn wants_payload(&self) -> bool {
        !matches!(self.state, State::Off)
    }

    /// A TCP segment of direction `side` (0 client→server, 1 back).
    #[allow(clippy::too_many_arguments, reason = "one segment's fields, passed by value on the hot path")]
    pub fn tcp_segment(
        &mut self,
        side: usize,
        seq: u32,
        ack: Option<u32>,
        flags: SegmentFlags,
        payload: &[u8],
        payload_len: u32,
        ts: i64,
        shard: &mut L7Shard<'_>,
        calls: &mut Vec<Call>,
    ) {
        if matches!(self.state, State::Off) {
            return;
        }
        let other = 1 - side;
        let limit = shard.cfg.max_stream_buffer;
        if flags.syn {
            self.asm[side].on_syn(seq);
        }
        // Data on a SYN (TCP Fast Open) starts after the SYN's own number.
        let seq = if flags.syn { seq.wrapping_add(1) } else { seq };
        if flags.fin {
            self.asm[side].on_fin(seq.wrapping_add(payload_len));
        }
        if let Some(ack) = ack {
            let mut asm = std::mem::take(&mut self.asm[other]);
            asm.on_peer_ack(ack, shard.budget, &mut |c| self.deliver(other, c, ts, shard.cfg, shard.stats, calls));
            self.asm[other] = asm;
        }
        if payload_len > 0 {
            let mut asm = std::mem::take(&mut self.asm[side]);
            asm.segment(seq, payload, payload_len, limit, shard.budget, &mut |c| {
                self.deliver(side, c, ts, shard.cfg, shard.stats, calls);
            });
            self.asm[side] = asm;
        }
    }

    /// A UDP datagram of direction `side`.
    pub fn datagram(&mut self, side: usize, payload: &[u8], ts: i64, shard: &mut L7Shard<'_>, calls: &mut Vec<Call>) {
        match &mut self.state {
            State::Off => {}
            State::Active(s) => {
                if let Err(e) = s.parse(DIRS[side], payload, ts, calls) {
                    *shard.stats.errors.entry(e.kind()).or_insert(0) += 1;
                }
            }
            State::Detecting => {
                self.detect_datagrams += 1;
                match detect(payload, DIRS[side], Transport::Udp, self.server_port) {
                    Detection::Found(p) => {
                        self.start(p, shard.cfg, shard.stats);
                        self.datagram(side, payload, ts, shard, calls);
                    }
                    Detection::NeedMore | Detection::Unknown => {
                        if self.detect_datagrams >= 4 {
                            self.state = State::Off;
                            shard.stats.undetected_flows += 1;
                        }
                    }
                }
            }
        }
    }

    fn start(&mut self, p: L7Protocol, cfg: &L7Config, stats: &mut L7Stats) {
        // After a switch the flow is named by what follows (HTTP/2 after
        // h2c, TLS in a CONNECT tunnel), except that a database that turned
        // on TLS stays that database.
        let db_tls = p == L7Protocol::Tls && matches!(self.detected, Some(L7Protocol::Mysql | L7Protocol::Postgresql));
        if !db_tls {
            self.detected = Some(p);
        }
        stats.detected[index_of(p)] += 1;
        self.state = State::Active(Box::new(Session::new(p, self.transport, &cfg.session)));
    }

    /// Hands one chunk of a direction's stream to detection or the session.
    fn deliver(
        &mut self,
        side: usize,
        chunk: Chunk<'_>,
        ts: i64,
        cfg: &L7Config,
        stats: &mut L7Stats,
        calls: &mut Vec<Call>,
    ) {
        if self.dead[side] {
            return;
        }
        let dir = DIRS[side];
        let data = match chunk {
            Chunk::Gap(n) => {
                self.carry[side].clear();
                if let State::Active(s) = &mut self.state {
                    s.on_gap(dir, n);
                }
                return;
            }
            Chunk::Data(d) => d,
        };
        if matches!(self.state, State::Detecting) {
            let (found, undecided) = {
                let buf: &[u8] = if self.carry[side].is_empty() { data } else { &self.carry[side] };
                let both = !self.carry[side].is_empty();
                let view;
                let buf = if both {
                    view = [buf, data].concat();
                    &view[..]
                } else {
                    buf
                };
                match detect(buf, dir, Transport::Tcp, self.server_port) {
                    Detection::Found(p) => (Some(p), false),
                    Detection::NeedMore => (None, buf.len() < cfg.max_detect_bytes),
                    Detection::Unknown => (None, false),
                }
            };
            match found {
                Some(p) => self.start(p, cfg, stats),
                None if undecided => {
                    self.carry[side].extend_from_slice(data);
                    return;
                }
                None => {
                    self.carry[side].clear();
                    self.tried[side] = true;
                    if self.tried[1 - side] {
                        self.state = State::Off;
                        self.carry = [Vec::new(), Vec::new()];
                        stats.undetected_flows += 1;
                    }
                    return;
                }
            }
        }
        let State::Active(session) = &mut self.state else { return };
        let result = if self.carry[side].is_empty() {
            session.parse(dir, data, ts, calls).map(|n| {
                if n < data.len() {
                    self.carry[side].extend_from_slice(&data[n..]);
                }
            })
        } else {
            let carry = &mut self.carry[side];
            carry.extend_from_slice(data);
            session.parse(dir, carry, ts, calls).map(|n| {
                carry.drain(..n.min(carry.len()));
            })
        };
        let over = self.carry[side].len() > cfg.session.max_message_bytes + 65_536;
        if let Err(e) = result.and(if over { Err(L7Error::TooLarge) } else { Ok(()) }) {
            *stats.errors.entry(e.kind()).or_insert(0) += 1;
            self.dead[side] = true;
            self.carry[side] = Vec::new();
        }
        self.after_switch(ts, cfg, stats, calls);
    }

    /// After `101 Switching Protocols` (h2c, WebSocket) or a CONNECT's 2xx,
    /// and after MySQL's SSL request or PostgreSQL's accepted SSLRequest,
    /// the session stops at the switch (`Decoder::switched`): the flow's
    /// later bytes (and those held on either side) go through detection
    /// again, so HTTP/2 after `Upgrade: h2c` or TLS inside a CONNECT tunnel
    /// are decoded; anything unknown turns L7 off as usual.
    fn after_switch(&mut self, ts: i64, cfg: &L7Config, stats: &mut L7Stats, calls: &mut Vec<Call>) {
        let State::Active(session) = &mut self.state else { return };
        if !session.switched() {
            return;
        }
        session.finish(ts, calls);
        self.state = State::Detecting;
        self.tried = [false; 2];
        self.dead = [false; 2];
        for side in 0..2 {
            let held = std::mem::take(&mut self.carry[side]);
            if !held.is_empty() {
                self.deliver(side, Chunk::Data(&held), ts, cfg, stats, calls);
            }
        }
    }

    /// Requests older than `older_than` become timeout calls.
    pub fn expire(&mut self, older_than: i64, calls: &mut Vec<Call>) {
        if let State::Active(s) = &mut self.state {
            s.expire(older_than, calls);
        }
    }

    /// The flow ended: releases held bytes (with gaps) and closes the session.
    pub fn finish(&mut self, end_ts: i64, shard: &mut L7Shard<'_>, calls: &mut Vec<Call>) {
        for side in 0..2 {
            let mut asm = std::mem::take(&mut self.asm[side]);
            asm.finish(shard.budget, &mut |c| self.deliver(side, c, end_ts, shard.cfg, shard.stats, calls));
            shard.stats.add_stream(&asm.stats);
        }
        if let State::Active(s) = &mut self.state {
            s.finish(end_ts, calls);
        }
        shard.stats.calls += calls.len() as u64;
    }
}
