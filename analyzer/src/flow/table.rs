//! The flow table of one worker shard.
//!
//! Time is the packets' time: the table never reads a clock, so a replay
//! gives the same records every run and with any number of shards. A flow
//! ends when a packet arrives after it was idle longer than its timeout
//! (checked on arrival, so the record does not depend on when sweeps run),
//! when a new SYN reuses the 5-tuple of a closed connection, at a sweep
//! (every few seconds of capture time), or at the end of the input.

use std::net::IpAddr;
use std::sync::Arc;

use flowtrail_capture::Direction;
use flowtrail_decoders::l7::{self, Call};
use flowtrail_decoders::wire::{tcp_flags, Packet, Transport, Tunnel};
use hashbrown::HashTable;

use super::key::FlowKey;
use super::tcp::{analyze, seq_lt, Segment, SegmentKind, SeqTrack, DEFAULT_OOO_NS};
use crate::reassembly::{L7Config, L7Flow, L7Shard, L7Stats, SegmentFlags};
use crate::records::{CallRecord, FlowRecord};

const SEC: i64 = 1_000_000_000;

/// Timeouts and limits, all in capture time.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub tcp_opening_timeout_ns: i64,
    pub tcp_established_timeout_ns: i64,
    pub tcp_closing_timeout_ns: i64,
    /// Both sides sent a FIN: the connection is over, only a late ACK or
    /// retransmission may follow. 5 s, Zeek's `tcp_close_delay` (DeepFlow's
    /// `closed_fin` is 2 s, but retransmissions 3 s after both FINs occur in
    /// real captures, and would start a flow of their own); short, so a busy
    /// server's finished connections do not fill the table for 35 s.
    pub tcp_closed_timeout_ns: i64,
    pub udp_timeout_ns: i64,
    pub other_timeout_ns: i64,
    /// Long flows emit a `period` record at every multiple of this.
    pub period_ns: i64,
    /// Most flows one shard tracks; packets of flows beyond are counted
    /// as untracked.
    pub max_flows: usize,
    /// L7 decoding into call records; `None` for flows only.
    pub l7: Option<L7Config>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_opening_timeout_ns: 20 * SEC,
            tcp_established_timeout_ns: 300 * SEC,
            tcp_closing_timeout_ns: 35 * SEC,
            tcp_closed_timeout_ns: 5 * SEC,
            udp_timeout_ns: 60 * SEC,
            other_timeout_ns: 60 * SEC,
            period_ns: 60 * SEC,
            max_flows: 2_000_000,
            l7: Some(L7Config::default()),
        }
    }
}

/// Names of a capture point, shared by every flow seen there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePoint {
    pub name: String,
    pub file: String,
    pub interface: String,
    /// `file`, `afpacket`, `tc` or `xdp`.
    pub mode: &'static str,
    /// Kernel ifindex of the interface (live capture only).
    pub ifindex: Option<u32>,
    /// Named network namespace the interface was opened in (live capture).
    pub netns: Option<String>,
}

impl CapturePoint {
    /// A point known only by its name (tests, tools).
    #[must_use]
    pub fn named(name: &str, mode: &'static str) -> Self {
        CapturePoint {
            name: name.to_string(),
            file: String::new(),
            interface: String::new(),
            mode,
            ifindex: None,
            netns: None,
        }
    }
}

/// What the pipeline knows about a packet besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct PacketInfo {
    pub ts_ns: i64,
    pub point: u32,
    /// Bytes on the wire (all fragments of a reassembled datagram).
    pub wire_len: u32,
    /// Frames that made this packet (>1 for a reassembled datagram).
    pub frames: u32,
    /// Which way it crossed the capture point's interface, when the
    /// capture mode knows (`None` for reassembled datagrams).
    pub direction: Option<Direction>,
}

/// Counters of one shard, summed by the pipeline.
#[derive(Debug, Clone, Default)]
pub struct TableStats {
    pub packets: u64,
    pub flows_tcp: u64,
    pub flows_udp: u64,
    pub flows_icmp: u64,
    pub flows_other: u64,
    pub records_final: u64,
    pub records_period: u64,
    /// Packets of new flows refused because the table was full.
    pub untracked_packets: u64,
    /// Highest number of flows held at once.
    pub max_concurrent_flows: u64,
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// Per-record counters of one direction (reset at each period record).
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    packets: i64,
    bytes: i64,
    payload: i64,
    fragments: i64,
    flags: u8,
    syn: i64,
    fin: i64,
    rst: i64,
    retrans: i64,
    ooo: i64,
    zero_win: i64,
    ttl_min: u8,
    ttl_max: u8,
    /// TCP sequence range sent (`[seq_first, seq_next)`, wrapping), set by
    /// the first non-RST segment of the record.
    seq: Option<(u32, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientBy {
    Syn,
    SynAck,
    Echo,
    Port,
    FirstPacket,
}

impl ClientBy {
    fn as_str(self) -> &'static str {
        match self {
            ClientBy::Syn => "syn",
            ClientBy::SynAck => "synack",
            ClientBy::Echo => "echo",
            ClientBy::Port => "port",
            ClientBy::FirstPacket => "first_packet",
        }
    }
}

/// TCP state that spans the whole flow.
#[derive(Debug, Clone, Copy, Default)]
struct TcpState {
    saw_syn: bool,
    saw_synack: bool,
    established: bool,
    last_syn_ts: Option<i64>,
    last_synack_ts: Option<i64>,
    rtt_server: Option<i64>,
    rtt_client: Option<i64>,
    fin: [bool; 2],
    /// Who sent the first RST, and whether the handshake had completed.
    first_rst: Option<usize>,
    rst_before_synack: bool,
    isn: [Option<u32>; 2],
    syn_ip_id: Option<u16>,
    syn_mss: Option<u16>,
    syn_wscale: Option<u8>,
    syn_tsval: Option<u32>,
    /// Time of the most recent SYN and the first pure ACK after it: the
    /// handshake RTT Wireshark uses as its out-of-order window.
    mru_syn_ts: Option<i64>,
    first_rtt: Option<i64>,
    seq: [SeqTrack; 2],
}

#[derive(Debug)]
struct Flow {
    /// The flow's key (the index keeps only slots and hashes).
    key: FlowKey,
    id: i64,
    point: Arc<CapturePoint>,
    /// True when the key's `lo` endpoint is the client.
    client_is_lo: bool,
    client_by: ClientBy,
    start_ns: i64,
    last_ns: i64,
    rec_start_ns: i64,
    rec_end_ns: i64,
    next_period_ns: i64,
    macs: [Option<[u8; 6]>; 2],
    vlan_count: u8,
    tunnel: Option<Tunnel>,
    ip_version: u8,
    c: [Counters; 2],
    tcp: TcpState,
    /// L7 state, created at the first payload byte.
    l7: Option<Box<L7Flow>>,
    calls_made: i32,
    /// The input's end once known (flush), else `i64::MAX`.
    end_horizon: i64,
    /// FNV-1a of the first payload bytes each side sent (NAT correlation).
    payload_hash: [Option<u64>; 2],
    /// TCP option TOA (real client port and address) the client first sent.
    toa: Option<(u16, std::net::Ipv4Addr)>,
    /// Directions the client's packets crossed the interface in: bit 0
    /// ingress, bit 1 egress (none when the capture mode does not say).
    client_dir: u8,
}

/// Flow key → slot in the slab. Entries are a slot and 32 bits of the
/// key's hash (8 bytes) and the keys live in the flows: at a million flows
/// the index is ~10 MB and stays in the last-level cache, where a map of
/// full keys (60-byte entries, 64 MB) missed on nearly every lookup on top
/// of the flow's own miss (a third of a flows-only replay at 1M flows).
/// A lookup compares the stored hash bits first, so it reads a flow only
/// when the bits agree (the flow it then updates). hashbrown's
/// `HashTable` (the engine of its `HashMap`) does the probing.
#[derive(Default)]
struct Index {
    table: HashTable<(u32, u32)>,
    hasher: foldhash::fast::RandomState,
}

impl Index {
    /// 32 bits of the key's (randomly seeded) hash.
    fn hash(&self, key: &FlowKey) -> u32 {
        std::hash::BuildHasher::hash_one(&self.hasher, key.words()) as u32
    }

    /// The table's 64-bit hash, spread from the stored 32 bits (an odd
    /// multiplier: both the low bits hashbrown places by and the top bits
    /// it tags with depend on all 32), so rehashing needs no key.
    fn wide(h: u32) -> u64 {
        u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(h)
    }

    fn find(&self, hash: u32, key: &FlowKey, slab: &mut Slab) -> Option<u32> {
        self.table
            .find(Self::wide(hash), |&(slot, h)| h == hash && slab.get_mut(slot).is_some_and(|f| f.key == *key))
            .map(|&(slot, _)| slot)
    }

    fn insert(&mut self, hash: u32, slot: u32) {
        self.table.insert_unique(Self::wide(hash), (slot, hash), |&(_, h)| Self::wide(h));
    }

    fn remove(&mut self, hash: u32, key: &FlowKey, slab: &mut Slab) -> Option<u32> {
        let e = self
            .table
            .find_entry(Self::wide(hash), |&(slot, h)| h == hash && slab.get_mut(slot).is_some_and(|f| f.key == *key))
            .ok()?;
        Some(e.remove().0 .0)
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn drain(&mut self) -> impl Iterator<Item = u32> + '_ {
        self.table.drain().map(|(slot, _)| slot)
    }
}

/// Finished records in batches of at most `BATCH_CAPACITY`, oldest first.
/// A sweep that ends half a million idle flows at once fills many
/// batches from the pool instead of doubling one vector (copying every
/// record at each step, and faulting in fresh pages for each copy).
struct Batches<R: 'static> {
    full: std::collections::VecDeque<Vec<R>>,
    cur: Vec<R>,
    pool: &'static crate::records::Pool<R>,
}

impl<R> Batches<R> {
    fn new(pool: &'static crate::records::Pool<R>) -> Self {
        Batches { full: std::collections::VecDeque::new(), cur: Vec::new(), pool }
    }

    fn push(&mut self, r: R) {
        if self.cur.len() >= crate::records::BATCH_CAPACITY {
            let next = self.pool.take();
            self.full.push_back(std::mem::replace(&mut self.cur, next));
        } else if self.cur.capacity() == 0 {
            self.cur = self.pool.take();
        }
        self.cur.push(r);
    }

    fn len(&self) -> usize {
        self.full.iter().map(Vec::len).sum::<usize>() + self.cur.len()
    }

    fn take(&mut self) -> Vec<R> {
        self.full.pop_front().unwrap_or_else(|| std::mem::take(&mut self.cur))
    }
}

/// Flows by slot, in fixed-size chunks: a slot's flow never moves, and
/// growing the table allocates one more chunk instead of copying every
/// flow into a vector twice the size (at a million flows, the doubling
/// copies and the page faults of the new copy were a third of a
/// flows-only replay's time).
#[derive(Default)]
struct Slab {
    chunks: Vec<Vec<Option<Flow>>>,
    len: u32,
}

const SLAB_CHUNK_BITS: u32 = 12;
const SLAB_CHUNK: usize = 1 << SLAB_CHUNK_BITS;

impl Slab {
    fn entry(&mut self, slot: u32) -> &mut Option<Flow> {
        &mut self.chunks[(slot >> SLAB_CHUNK_BITS) as usize][slot as usize & (SLAB_CHUNK - 1)]
    }

    fn get_mut(&mut self, slot: u32) -> Option<&mut Flow> {
        self.entry(slot).as_mut()
    }

    /// Stores a flow in a new slot and returns the slot.
    fn push(&mut self, flow: Flow) -> u32 {
        let slot = self.len;
        if (slot as usize).is_multiple_of(SLAB_CHUNK) {
            self.chunks.push(Vec::with_capacity(SLAB_CHUNK));
        }
        self.chunks.last_mut().expect("pushed above").push(Some(flow));
        self.len += 1;
        slot
    }
}

/// Why a flow's final record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndReason {
    Idle,
    EndOfInput,
    Reused,
}

/// The flow table of one shard. Records it finishes accumulate in an
/// output vector the pipeline drains.
pub struct FlowTable {
    cfg: FlowConfig,
    /// Key → slot in `slab`; see [`Index`].
    flows: Index,
    slab: Slab,
    free: Vec<u32>,
    points: Vec<Arc<CapturePoint>>,
    now_ns: i64,
    next_sweep_ns: i64,
    pub stats: TableStats,
    pub l7_stats: L7Stats,
    out: Batches<FlowRecord>,
    calls_out: Batches<CallRecord>,
    /// Calls a session just produced, before they become records.
    scratch: Vec<Call>,
    /// Out-of-order bytes the shard may still hold.
    l7_budget: usize,
}

const SWEEP_NS: i64 = 5 * SEC;

impl FlowTable {
    #[must_use]
    pub fn new(cfg: FlowConfig) -> Self {
        let l7_budget = cfg.l7.as_ref().map_or(0, |c| c.max_shard_buffer);
        FlowTable {
            cfg,
            flows: Index::default(),
            slab: Slab::default(),
            free: Vec::new(),
            points: Vec::new(),
            now_ns: i64::MIN,
            next_sweep_ns: i64::MIN,
            stats: TableStats::default(),
            l7_stats: L7Stats::default(),
            out: Batches::new(&crate::records::FLOW_POOL),
            calls_out: Batches::new(&crate::records::CALL_POOL),
            scratch: Vec::new(),
            l7_budget,
        }
    }

    /// Makes a capture point known under its index (points are declared
    /// before the first packet that uses them).
    pub fn set_point(&mut self, index: u32, point: Arc<CapturePoint>) {
        let i = index as usize;
        if self.points.len() <= i {
            self.points.resize_with(i + 1, || Arc::clone(&point));
        }
        self.points[i] = point;
    }

    /// Takes the oldest batch of flow records finished so far (at most
    /// [`crate::records::BATCH_CAPACITY`]); empty when there are none.
    /// Call until empty to take them all.
    pub fn drain(&mut self) -> Vec<FlowRecord> {
        self.out.take()
    }

    /// Takes the oldest batch of call records finished so far (as `drain`).
    pub fn drain_calls(&mut self) -> Vec<CallRecord> {
        self.calls_out.take()
    }

    /// Records waiting in `drain` and `drain_calls`.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.out.len() + self.calls_out.len()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Accounts one packet. `key`/`from_lo` come from [`FlowKey::of`].
    pub fn process(&mut self, info: &PacketInfo, key: &FlowKey, from_lo: bool, p: &Packet<'_>) {
        let ts = info.ts_ns;
        self.stats.packets += 1;
        self.advance(ts);
        // The common case, one lookup: a packet of a flow it belongs to.
        let hash = self.flows.hash(key);
        let ending = match self.flows.find(hash, key, &mut self.slab) {
            Some(slot) => {
                let f = self.slab.get_mut(slot).expect("a mapped slot holds a flow");
                let idle = ts.saturating_sub(f.last_ns) > timeout_of(&self.cfg, key.proto, f);
                let reused = matches!(p.transport, Transport::Tcp(t)
                    if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
                        && (f.tcp.fin.iter().all(|x| *x) || f.tcp.first_rst.is_some())
                        && f.tcp.isn[if from_lo == f.client_is_lo { CLIENT } else { SERVER }] != Some(t.seq));
                if !idle && !reused {
                    update(f, key, from_lo, info, p, &mut ctx!(self));
                    return;
                }
                Some(if idle { EndReason::Idle } else { EndReason::Reused })
            }
            None => None,
        };
        // The packet cannot belong to the flow held under its key: end it.
        if let Some(reason) = ending {
            let f = self.take(key).expect("present");
            self.finish(key, f, reason);
        }
        let held = self.flows.len();
        if held >= self.cfg.max_flows {
            self.stats.untracked_packets += 1;
            return;
        }
        match key.proto {
            6 => self.stats.flows_tcp += 1,
            17 => self.stats.flows_udp += 1,
            1 | 58 => self.stats.flows_icmp += 1,
            _ => self.stats.flows_other += 1,
        }
        self.stats.max_concurrent_flows = self.stats.max_concurrent_flows.max(held as u64 + 1);
        let (client_is_sender, client_by) = choose_client(p);
        let point =
            self.points.get(key.point as usize).cloned().unwrap_or_else(|| Arc::new(CapturePoint::named("", "")));
        let flow = Flow {
            key: *key,
            id: flow_id(key, &point, ts),
            point,
            client_is_lo: client_is_sender == from_lo,
            client_by,
            start_ns: ts,
            last_ns: ts,
            rec_start_ns: ts,
            rec_end_ns: ts,
            next_period_ns: next_boundary(ts, self.cfg.period_ns),
            macs: [None; 2],
            vlan_count: p.vlan_count,
            tunnel: p.tunnel,
            ip_version: p.ip.version,
            c: [Counters::default(); 2],
            tcp: TcpState::default(),
            l7: None,
            calls_made: 0,
            end_horizon: i64::MAX,
            payload_hash: [None; 2],
            toa: None,
            client_dir: 0,
        };
        let slot = match self.free.pop() {
            Some(i) => {
                *self.slab.entry(i) = Some(flow);
                i
            }
            None => self.slab.push(flow),
        };
        self.flows.insert(hash, slot);
        let f = self.slab.get_mut(slot).expect("just stored");
        update(f, key, from_lo, info, p, &mut ctx!(self));
    }

    /// Moves the table's clock to `now_ns` (packet time, or the capture's
    /// time while no packets come), sweeping when due. Never goes back.
    pub fn advance(&mut self, now_ns: i64) {
        if now_ns > self.now_ns {
            self.now_ns = now_ns;
            if now_ns >= self.next_sweep_ns {
                if self.next_sweep_ns != i64::MIN {
                    self.sweep();
                }
                self.next_sweep_ns = now_ns.saturating_add(SWEEP_NS);
            }
        }
    }

    /// Removes a flow from the table, freeing its slot.
    fn take(&mut self, key: &FlowKey) -> Option<Flow> {
        let slot = self.flows.remove(self.flows.hash(key), key, &mut self.slab)?;
        self.free.push(slot);
        self.slab.entry(slot).take()
    }

    /// Ends idle flows and writes due period records.
    fn sweep(&mut self) {
        let now = self.now_ns;
        let mut ended = Vec::new();
        let mut periods = Vec::new();
        // In slot order: the flows are read one after another through
        // memory, not in the index's random order.
        for f in self.slab.chunks.iter_mut().flatten().flatten() {
            // A copy: `f` is borrowed mutably below while the key is read.
            let k = f.key;
            if now.saturating_sub(f.last_ns) > timeout_of(&self.cfg, k.proto, f) {
                ended.push(k);
                continue;
            }
            if let (Some(cfg), Some(l7)) = (&self.cfg.l7, &mut f.l7) {
                l7.expire(now.saturating_sub(cfg.request_timeout_ns), &mut self.scratch);
                if !self.scratch.is_empty() {
                    self.l7_stats.calls += self.scratch.len() as u64;
                    emit_calls(&k, f, &mut self.scratch, &mut self.calls_out);
                }
            }
            if let Some(rec) = due_period(&k, f, now, &self.cfg) {
                periods.push(rec);
            }
        }
        self.stats.records_period += periods.len() as u64;
        for rec in periods {
            self.out.push(rec);
        }
        for k in ended {
            let f = self.take(&k).expect("collected from the map");
            self.finish(&k, f, EndReason::Idle);
        }
    }

    /// The input ended at `end_ns` (the last packet of all shards): every
    /// flow ends. One idle longer than its timeout by then ended idle, as a
    /// sweep would have found; the others were still open. Deciding by the
    /// input's end rather than this shard's clock keeps records the same
    /// whatever the number of shards.
    ///
    /// `hand_off` is called whenever `batch` records are waiting, so a
    /// million open flows never sit in memory as records all at once.
    pub fn flush(&mut self, end_ns: i64, batch: usize, hand_off: &mut dyn FnMut(&mut FlowTable)) {
        // Sort small (time, id, slot) entries, not the flows themselves
        // (hundreds of bytes each, a million of them): each flow is moved
        // once, out of its slot, when its turn comes.
        let mut order: Vec<(i64, i64, u32)> = self
            .flows
            .drain()
            .map(|slot| {
                let f = self.slab.get_mut(slot).expect("mapped");
                (f.start_ns, f.id, slot)
            })
            .collect();
        order.sort_unstable();
        for (_, _, slot) in order {
            let mut f = self.slab.entry(slot).take().expect("mapped");
            let k = f.key;
            let idle = end_ns.saturating_sub(f.last_ns) > timeout_of(&self.cfg, k.proto, &f);
            f.end_horizon = end_ns;
            self.finish(&k, f, if idle { EndReason::Idle } else { EndReason::EndOfInput });
            if self.pending() >= batch {
                hand_off(self);
            }
        }
        self.slab = Slab::default();
        self.free.clear();
        hand_off(self);
    }

    fn finish(&mut self, key: &FlowKey, mut f: Flow, reason: EndReason) {
        // A minute boundary the flow lived through (idle or not) still gets
        // its period record, whenever this flow is looked at: records do
        // not depend on when a shard happened to sweep.
        if let Some(rec) = due_period(key, &mut f, i64::MAX, &self.cfg) {
            self.stats.records_period += 1;
            self.out.push(rec);
        }
        if let (Some(cfg), Some(mut l7)) = (&self.cfg.l7, f.l7.take()) {
            let mut shard = L7Shard { cfg, budget: &mut self.l7_budget, stats: &mut self.l7_stats };
            l7.finish(f.last_ns, &mut shard, &mut self.scratch);
            f.l7 = Some(l7);
            if !self.scratch.is_empty() {
                emit_calls(key, &mut f, &mut self.scratch, &mut self.calls_out);
            }
        }
        let close = close_type(key.proto, &f, reason);
        let mut rec = record(key, &f, "final");
        rec.close_type = close.to_string();
        self.stats.records_final += 1;
        self.out.push(rec);
    }
}

/// The table's parts a packet's update writes to, borrowed apart from the
/// flow map so a flow can be updated after a single lookup.
struct Ctx<'a> {
    cfg: &'a FlowConfig,
    out: &'a mut Batches<FlowRecord>,
    stats: &'a mut TableStats,
    l7_budget: &'a mut usize,
    l7_stats: &'a mut L7Stats,
    scratch: &'a mut Vec<Call>,
    calls_out: &'a mut Batches<CallRecord>,
}

/// Borrows a table's [`Ctx`] (fields apart from `flows`).
macro_rules! ctx {
    ($t:expr) => {
        Ctx {
            cfg: &$t.cfg,
            out: &mut $t.out,
            stats: &mut $t.stats,
            l7_budget: &mut $t.l7_budget,
            l7_stats: &mut $t.l7_stats,
            scratch: &mut $t.scratch,
            calls_out: &mut $t.calls_out,
        }
    };
}
use ctx;

/// Accounts a packet to its flow: period boundary, counters, L7.
fn update(flow: &mut Flow, key: &FlowKey, from_lo: bool, info: &PacketInfo, p: &Packet<'_>, cx: &mut Ctx<'_>) {
    let ts = info.ts_ns;
    if ts >= flow.next_period_ns {
        if flow.c[CLIENT].packets + flow.c[SERVER].packets > 0 {
            cx.out.push(period_record(key, flow));
            cx.stats.records_period += 1;
        }
        flow.next_period_ns = next_boundary(ts, cx.cfg.period_ns);
    }
    let side = if from_lo == flow.client_is_lo { CLIENT } else { SERVER };
    account(flow, side, info, p);
    if let Some(cfg) = &cx.cfg.l7 {
        let mut shard = L7Shard { cfg, budget: cx.l7_budget, stats: cx.l7_stats };
        l7_packet(key, flow, side, p, ts, &mut shard, cx.scratch);
        if !cx.scratch.is_empty() {
            emit_calls(key, flow, cx.scratch, cx.calls_out);
        }
    }
}

/// Feeds a packet's payload to the flow's L7 decoding.
fn l7_packet(
    key: &FlowKey,
    f: &mut Flow,
    side: usize,
    p: &Packet<'_>,
    ts: i64,
    shard: &mut L7Shard<'_>,
    calls: &mut Vec<Call>,
) {
    let server_port = if f.client_is_lo { key.hi.1 } else { key.lo.1 };
    match p.transport {
        Transport::Tcp(t) => {
            let rst = t.flags & tcp_flags::RST != 0;
            if f.l7.is_none() {
                if p.payload_len == 0 || rst {
                    return;
                }
                let mut l7 = L7Flow::new(l7::Transport::Tcp, server_port);
                // Streams start after the SYNs when they were seen, so a
                // first data segment that arrives out of order still waits.
                for (i, isn) in f.tcp.isn.iter().enumerate() {
                    if let Some(isn) = isn {
                        let syn = SegmentFlags { syn: true, fin: false };
                        l7.tcp_segment(i, *isn, None, syn, &[], 0, ts, shard, calls);
                    }
                }
                f.l7 = Some(Box::new(l7));
            }
            let l7 = f.l7.as_mut().expect("created above");
            if !l7.wants_payload() {
                return;
            }
            // Requests older than the timeout expire before this packet is
            // parsed, so a late response never depends on sweep timing.
            l7.expire(ts.saturating_sub(shard.cfg.request_timeout_ns), calls);
            let flags = SegmentFlags { syn: t.flags & tcp_flags::SYN != 0, fin: t.flags & tcp_flags::FIN != 0 && !rst };
            let ack = (t.flags & tcp_flags::ACK != 0 && !rst).then_some(t.ack);
            l7.tcp_segment(side, t.seq, ack, flags, p.payload, if rst { 0 } else { p.payload_len }, ts, shard, calls);
        }
        Transport::Udp { .. } => {
            if p.payload.is_empty() {
                return;
            }
            let l7 = f.l7.get_or_insert_with(|| Box::new(L7Flow::new(l7::Transport::Udp, server_port)));
            l7.expire(ts.saturating_sub(shard.cfg.request_timeout_ns), calls);
            l7.datagram(side, p.payload, ts, shard, calls);
        }
        _ => {}
    }
}

/// Turns the calls a session produced into records with the flow's context.
fn emit_calls(key: &FlowKey, f: &mut Flow, calls: &mut Vec<Call>, out: &mut Batches<CallRecord>) {
    let (client, server) = if f.client_is_lo { (key.lo, key.hi) } else { (key.hi, key.lo) };
    for c in calls.drain(..) {
        let start = c.request_ts.or(c.response_first_ts).unwrap_or(f.last_ns);
        // A call without response ends where it started: when it was
        // declared timed out depends on the flow, not on the call.
        let end = c.response_end_ts.or(c.response_first_ts).unwrap_or(start).max(start);
        let latency = match (c.request_ts, c.response_end_ts) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let first_byte = match (c.request_ts, c.response_first_ts) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        out.push(CallRecord {
            flow_id: f.id,
            call_id: call_id(f.id, f.calls_made),
            call_index: f.calls_made,
            start_ns: start,
            end_ns: end,
            request_ns: c.request_ts,
            response_start_ns: c.response_first_ts,
            response_end_ns: c.response_end_ts,
            latency_ns: latency,
            first_byte_ns: first_byte,
            capture_point: f.point.name.clone(),
            capture_ifindex: f.point.ifindex.map(i64::from),
            capture_netns: f.point.netns.clone(),
            client_ip: client.0.to_string(),
            client_port: i32::from(client.1),
            server_ip: server.0.to_string(),
            server_port: i32::from(server.1),
            l4_protocol: l4_name(key.proto),
            l7_protocol: c.protocol.as_str().to_string(),
            version: c.version,
            request_type: c.request_type,
            request_domain: c.request_domain,
            request_resource: c.request_resource,
            response_code: c.response_code,
            response_status: c.status.as_str().to_string(),
            response_exception: c.response_exception,
            request_bytes: c.request_bytes as i64,
            response_bytes: c.response_bytes as i64,
            user_agent: c.user_agent,
            trace_id: c.trace.trace_id,
            span_id: c.trace.span_id,
            parent_span_id: c.trace.parent_span_id,
            x_request_id: c.trace.x_request_id,
            x_request_id_response: c.trace.x_request_id_response,
            attributes: c.attributes,
        });
        f.calls_made += 1;
    }
}

/// A call's id: its flow's id and its index, mixed (splitmix64), so it is
/// stable across runs like the flow id.
fn call_id(flow_id: i64, index: i32) -> i64 {
    let mut z = (flow_id as u64) ^ (u64::from(index as u32) << 1 | 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as i64
}

/// A flow's id: from the capture point's name (not its index, which
/// depends on the run), the 5-tuple and the start time.
fn flow_id(key: &FlowKey, point: &CapturePoint, start_ns: i64) -> i64 {
    use std::hash::BuildHasher;
    let name = foldhash::fast::FixedState::with_seed(0x0070_6f69_6e74).hash_one(point.name.as_str());
    let h = FlowKey { point: 0, ..*key }.stable_hash(start_ns) ^ name;
    (h & 0x7fff_ffff_ffff_ffff) as i64
}

/// The period record due at time `now`, if the flow lived past its next
/// period boundary: it is alive until it has been idle for its timeout, so
/// the boundary counts when it comes before both `now` and that moment.
fn due_period(key: &FlowKey, f: &mut Flow, now: i64, cfg: &FlowConfig) -> Option<FlowRecord> {
    // A closed connection ended with its last packet; others live on
    // until they have been idle for their timeout.
    let closed = f.tcp.first_rst.is_some() || f.tcp.fin.iter().all(|x| *x);
    let alive_until = if closed { f.last_ns } else { f.last_ns.saturating_add(timeout_of(cfg, key.proto, f)) };
    let horizon = now.min(alive_until).min(f.end_horizon);
    if horizon < f.next_period_ns || f.c[CLIENT].packets + f.c[SERVER].packets == 0 {
        return None;
    }
    let rec = period_record(key, f);
    f.next_period_ns = next_boundary(horizon, cfg.period_ns);
    Some(rec)
}

/// Idle time after which a flow ends, by protocol and TCP state.
fn timeout_of(cfg: &FlowConfig, proto: u8, f: &Flow) -> i64 {
    match proto {
        6 if f.tcp.first_rst.is_none() && f.tcp.fin.iter().all(|x| *x) => cfg.tcp_closed_timeout_ns,
        6 if f.tcp.first_rst.is_some() || f.tcp.fin.iter().any(|x| *x) => cfg.tcp_closing_timeout_ns,
        6 if f.tcp.saw_syn && !f.tcp.established => cfg.tcp_opening_timeout_ns,
        6 => cfg.tcp_established_timeout_ns,
        17 => cfg.udp_timeout_ns,
        _ => cfg.other_timeout_ns,
    }
}

/// The next multiple of `period` strictly after `ts`.
fn next_boundary(ts: i64, period: i64) -> i64 {
    ts.div_euclid(period).saturating_add(1).saturating_mul(period)
}

/// Well-known ports are servers; Linux ephemeral ports (32768+) are clients.
fn server_port_rank(port: u16) -> u8 {
    match port {
        0..=1023 => 0,
        1024..=32767 => 1,
        _ => 2,
    }
}

/// Whether the sender of the flow's first packet is the client, and why.
fn choose_client(p: &Packet<'_>) -> (bool, ClientBy) {
    match p.transport {
        Transport::Tcp(t) if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN => (true, ClientBy::Syn),
        Transport::Tcp(t) if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN | tcp_flags::ACK => {
            (false, ClientBy::SynAck)
        }
        Transport::Icmp { v6, kind, echo: Some(_), .. } => {
            let request = if v6 { kind == 128 } else { kind == 8 };
            (request, ClientBy::Echo)
        }
        Transport::Tcp(_) | Transport::Udp { .. } => {
            let (sp, dp) = p.ports();
            match server_port_rank(sp).cmp(&server_port_rank(dp)) {
                std::cmp::Ordering::Less => (false, ClientBy::Port),
                std::cmp::Ordering::Greater => (true, ClientBy::Port),
                std::cmp::Ordering::Equal => (true, ClientBy::FirstPacket),
            }
        }
        _ => (true, ClientBy::FirstPacket),
    }
}

fn account(f: &mut Flow, side: usize, info: &PacketInfo, p: &Packet<'_>) {
    let ts = info.ts_ns;
    if f.c[CLIENT].packets + f.c[SERVER].packets == 0 {
        f.rec_start_ns = ts;
    }
    f.last_ns = f.last_ns.max(ts);
    f.rec_end_ns = f.rec_end_ns.max(ts);
    if f.macs[side].is_none() && p.src_mac != [0; 6] {
        f.macs[side] = Some(p.src_mac);
    }
    let c = &mut f.c[side];
    if c.packets == 0 {
        c.ttl_min = p.ip.ttl;
        c.ttl_max = p.ip.ttl;
    } else {
        c.ttl_min = c.ttl_min.min(p.ip.ttl);
        c.ttl_max = c.ttl_max.max(p.ip.ttl);
    }
    c.packets += 1;
    c.bytes += i64::from(info.wire_len);
    if side == CLIENT {
        f.client_dir |= match info.direction {
            Some(Direction::Ingress) => DIR_INGRESS,
            Some(Direction::Egress) => DIR_EGRESS,
            None => 0,
        };
    }
    c.payload += i64::from(p.payload_len);
    if info.frames > 1 {
        c.fragments += i64::from(info.frames);
    }
    if f.payload_hash[side].is_none() && !p.payload.is_empty() {
        f.payload_hash[side] = Some(payload_hash(p.payload));
    }
    let Transport::Tcp(t) = p.transport else { return };
    c.flags |= t.flags;
    if side == CLIENT && f.toa.is_none() {
        f.toa = t.options.toa;
    }
    let syn = t.flags & tcp_flags::SYN != 0;
    let ack = t.flags & tcp_flags::ACK != 0;
    let fin = t.flags & tcp_flags::FIN != 0;
    let rst = t.flags & tcp_flags::RST != 0;
    if syn {
        c.syn += 1;
    }
    if fin {
        c.fin += 1;
    }
    if rst {
        c.rst += 1;
    }
    let s = &mut f.tcp;
    if syn && !ack && side == CLIENT {
        if !s.saw_syn {
            s.isn[CLIENT] = Some(t.seq);
            s.syn_ip_id = (p.ip.version == 4).then_some(p.ip.ip_id);
            s.syn_mss = t.options.mss;
            s.syn_wscale = t.options.wscale;
            s.syn_tsval = t.options.timestamp.map(|x| x.0);
        }
        s.saw_syn = true;
        if !s.saw_synack {
            s.last_syn_ts = Some(ts);
        }
    } else if syn && ack && side == SERVER {
        if !s.saw_synack {
            s.isn[SERVER] = Some(t.seq);
            if let Some(syn_ts) = s.last_syn_ts {
                s.rtt_server = Some(ts.saturating_sub(syn_ts));
            }
        }
        s.saw_synack = true;
        s.last_synack_ts = Some(ts);
    } else if ack && !syn && side == CLIENT && s.saw_synack && !s.established {
        if let Some(sa) = s.last_synack_ts {
            s.rtt_client = Some(ts.saturating_sub(sa));
        }
        s.established = true;
    }
    if !s.saw_syn && !s.saw_synack && (p.payload_len > 0 || ack) {
        // Midstream: the connection was established before the capture.
        s.established = true;
    }
    if fin {
        s.fin[side] = true;
    }
    if rst && s.first_rst.is_none() {
        s.first_rst = Some(side);
        s.rst_before_synack = !s.saw_synack;
    }
    if syn && !ack {
        s.mru_syn_ts = Some(ts);
    } else if ack && !syn && s.first_rtt.is_none() {
        s.first_rtt = s.mru_syn_ts.map(|t0| ts.saturating_sub(t0));
    }
    if !rst {
        let end = t.seq.wrapping_add(p.payload_len).wrapping_add(u32::from(syn || fin));
        c.seq = Some(match c.seq {
            None => (t.seq, end),
            Some((lo, hi)) => (if seq_lt(t.seq, lo) { t.seq } else { lo }, if seq_lt(hi, end) { end } else { hi }),
        });
    }
    let ooo_window = s.first_rtt.filter(|r| *r > 0).unwrap_or(DEFAULT_OOO_NS);
    let segment = Segment { seq: t.seq, ack: t.ack, payload_len: p.payload_len, flags: t.flags, window: t.window, ts };
    let [client, server] = &mut s.seq;
    let (fwd, rev) = if side == CLIENT { (client, &*server) } else { (server, &*client) };
    let a = analyze(fwd, rev, &segment, ooo_window);
    if a.zero_window {
        c.zero_win += 1;
    }
    match a.kind {
        SegmentKind::Normal => {}
        SegmentKind::Retransmission => c.retrans += 1,
        SegmentKind::OutOfOrder => c.ooo += 1,
    }
}

fn close_type(proto: u8, f: &Flow, reason: EndReason) -> &'static str {
    if proto != 6 {
        return if reason == EndReason::EndOfInput { "open" } else { "timeout" };
    }
    let s = &f.tcp;
    if let Some(who) = s.first_rst {
        if s.fin[CLIENT] && s.fin[SERVER] {
            return "fin";
        }
        if who == SERVER && s.saw_syn && s.rst_before_synack {
            return "refused";
        }
        return if who == CLIENT { "client_rst" } else { "server_rst" };
    }
    if s.fin[CLIENT] && s.fin[SERVER] {
        return "fin";
    }
    if s.saw_syn && !s.saw_synack {
        return "no_synack";
    }
    if s.fin[CLIENT] || s.fin[SERVER] {
        return "half_closed";
    }
    if !s.saw_syn && !s.saw_synack {
        return "unknown_start";
    }
    match reason {
        EndReason::Idle => "timeout",
        EndReason::EndOfInput | EndReason::Reused => "open",
    }
}

fn period_record(key: &FlowKey, f: &mut Flow) -> FlowRecord {
    let mut rec = record(key, f, "period");
    rec.close_type = "open".to_string();
    f.c = [Counters::default(); 2];
    rec
}

fn ip_string(ip: IpAddr) -> String {
    ip.to_string()
}

fn mac_string(m: [u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

fn l4_name(proto: u8) -> String {
    match proto {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

const DIR_INGRESS: u8 = 1;
const DIR_EGRESS: u8 = 2;

/// `client_direction` of a flow's direction bits.
fn direction_name(bits: u8) -> Option<&'static str> {
    match bits {
        DIR_INGRESS => Some("ingress"),
        DIR_EGRESS => Some("egress"),
        0 => None,
        _ => Some("mixed"),
    }
}

fn record(key: &FlowKey, f: &Flow, kind: &str) -> FlowRecord {
    let (client, server) = if f.client_is_lo { (key.lo, key.hi) } else { (key.hi, key.lo) };
    let cc = &f.c[CLIENT];
    let sc = &f.c[SERVER];
    let is_tcp = key.proto == 6;
    let tcp_i64 = |v: i64| is_tcp.then_some(v);
    let s = &f.tcp;
    let (rec_start, rec_end) =
        if cc.packets + sc.packets > 0 { (f.rec_start_ns, f.rec_end_ns) } else { (f.last_ns, f.last_ns) };
    FlowRecord {
        flow_id: f.id,
        record_kind: kind.to_string(),
        start_ns: rec_start,
        end_ns: rec_end,
        flow_start_ns: f.start_ns,
        capture_point: f.point.name.clone(),
        capture_file: f.point.file.clone(),
        capture_interface: f.point.interface.clone(),
        capture_mode: f.point.mode.to_string(),
        capture_ifindex: f.point.ifindex.map(i64::from),
        capture_netns: f.point.netns.clone(),
        client_direction: direction_name(f.client_dir).map(str::to_string),
        vlan_outer: (f.vlan_count >= 1).then_some(i32::from(key.vlans[0])),
        vlan_inner: (f.vlan_count >= 2).then_some(i32::from(key.vlans[1])),
        tunnel_type: f.tunnel.map(|t| t.kind.as_str().to_string()),
        tunnel_id: f.tunnel.map(|t| i64::from(t.id)),
        tunnel_outer_src: f.tunnel.map(|t| ip_string(t.outer_src)),
        tunnel_outer_dst: f.tunnel.map(|t| ip_string(t.outer_dst)),
        tunnel_depth: f.tunnel.map(|t| i32::from(t.depth)),
        client_mac: f.macs[CLIENT].map(mac_string),
        server_mac: f.macs[SERVER].map(mac_string),
        ip_version: i32::from(f.ip_version),
        l4_protocol: l4_name(key.proto),
        l7_protocol: f.l7.as_ref().and_then(|l| l.protocol()).map(|p| p.as_str().to_string()),
        client_ip: ip_string(client.0),
        client_port: i32::from(client.1),
        server_ip: ip_string(server.0),
        server_port: i32::from(server.1),
        client_by: f.client_by.as_str().to_string(),
        client_packets: cc.packets,
        server_packets: sc.packets,
        client_bytes: cc.bytes,
        server_bytes: sc.bytes,
        client_payload_bytes: cc.payload,
        server_payload_bytes: sc.payload,
        client_fragments: cc.fragments,
        server_fragments: sc.fragments,
        client_tcp_flags: is_tcp.then_some(i32::from(cc.flags)),
        server_tcp_flags: is_tcp.then_some(i32::from(sc.flags)),
        syn_count: tcp_i64(cc.syn),
        synack_count: tcp_i64(sc.syn),
        client_fin_count: tcp_i64(cc.fin),
        server_fin_count: tcp_i64(sc.fin),
        client_rst_count: tcp_i64(cc.rst),
        server_rst_count: tcp_i64(sc.rst),
        rtt_client_ns: s.rtt_client,
        rtt_server_ns: s.rtt_server,
        client_retransmissions: tcp_i64(cc.retrans),
        server_retransmissions: tcp_i64(sc.retrans),
        client_out_of_order: tcp_i64(cc.ooo),
        server_out_of_order: tcp_i64(sc.ooo),
        client_zero_window: tcp_i64(cc.zero_win),
        server_zero_window: tcp_i64(sc.zero_win),
        client_isn: s.isn[CLIENT].map(i64::from),
        server_isn: s.isn[SERVER].map(i64::from),
        client_seq_first: cc.seq.map(|r| i64::from(r.0)),
        client_seq_next: cc.seq.map(|r| i64::from(r.1)),
        server_seq_first: sc.seq.map(|r| i64::from(r.0)),
        server_seq_next: sc.seq.map(|r| i64::from(r.1)),
        syn_ip_id: s.syn_ip_id.map(i32::from),
        syn_mss: s.syn_mss.map(i32::from),
        syn_wscale: s.syn_wscale.map(i32::from),
        syn_tsval: s.syn_tsval.map(i64::from),
        client_ttl_min: (cc.packets > 0).then_some(i32::from(cc.ttl_min)),
        client_ttl_max: (cc.packets > 0).then_some(i32::from(cc.ttl_max)),
        server_ttl_min: (sc.packets > 0).then_some(i32::from(sc.ttl_min)),
        server_ttl_max: (sc.packets > 0).then_some(i32::from(sc.ttl_max)),
        close_type: String::new(),
        toa_client_ip: f.toa.map(|(_, ip)| ip.to_string()),
        toa_client_port: f.toa.map(|(port, _)| i32::from(port)),
        client_payload_hash: f.payload_hash[CLIENT].map(|h| h as i64),
        server_payload_hash: f.payload_hash[SERVER].map(|h| h as i64),
    }
}

/// Bytes of a direction's first payload that [`payload_hash`] reads.
pub const PAYLOAD_HASH_BYTES: usize = 64;

/// FNV-1a (64 bit) of the first [`PAYLOAD_HASH_BYTES`] bytes of a payload:
/// a fixed, documented function, so hashes written by separate runs on
/// separate nodes compare equal.
#[must_use]
pub fn payload_hash(payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &payload[..payload.len().min(PAYLOAD_HASH_BYTES)] {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
