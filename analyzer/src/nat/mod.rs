//! NAT paths: which connection and which request at one capture point is
//! which at another, across gateways, iptables/IPVS NAT, load balancers and
//! L7 proxies.
//!
//! Correlation is a pass over flow and call records, never over packets:
//! one flowtrail that saw several capture points and many flowtrail runs on
//! many nodes (their Parquet merged later by `flowtrail correlate`) give the
//! same links. [`read`] turns records into observations ([`FlowObs`],
//! [`CallObs`]); [`Linker`] links them, one time chunk after another, with a
//! tail of the previous chunk as long as the widest matching window, so
//! memory is bounded by the window and not by the number of flows.
//!
//! # What links, and how (in this order; a flow or call linked by an
//! earlier key is not linked again by a later one)
//!
//! 1. **`tcp_isn`**: TCP flows with the same client initial sequence number
//!    whose first packets are at most `isn_window` apart. NAT leaves
//!    sequence numbers alone; a device that rewrites them gives other ISNs
//!    and never links here. Keys that both sides carry must agree: the
//!    server ISN, the SYN's TSval, and the SYN's IPv4 id (unless the server
//!    ISN confirms). Confidence 1 with the server ISN and one more key, 0.9
//!    with two confirming keys, 0.8 with one, 0.6 with the client ISN alone.
//! 2. **`toa`**: a TCP flow whose client sent the TOA option (the real
//!    client address, IPVS FULLNAT) links to the flow of that client
//!    address and port within `isn_window`; confidence 0.9.
//! 3. **`tcp_seq`**: TCP connections whose start was not captured (at
//!    one point or both), by their sequence numbers, which NAT leaves
//!    alone: two TCP flows at other points (or other tuples), not both
//!    with a captured SYN, whose first records overlap in time (within
//!    `max_skew`, starts at most `seq_window` apart), whose client byte
//!    ranges (`client_seq_first`..`client_seq_next`, modulo 2^32) overlap
//!    by at least [`MIN_SEQ_OVERLAP`] bytes, and whose server ranges do
//!    too. Ranges shorter than that (pure ACKs, a keep-alive probe, a
//!    lone FIN) are no evidence. A SYN proxy or a relay picks new
//!    sequence numbers for one side or both and never links here. Linked
//!    only when exactly one earlier flow not yet linked qualifies
//!    (ambiguity counted, never linked); siblings never link. Confidence
//!    0.95 when both directions overlap by 64 bytes or more, else 0.8.
//!    Indexed by 1 MiB buckets of the client sequence space (a range is
//!    filed under every bucket it touches), scanned like the other keys
//!    (more than `MAX_SEQ_SCAN` flows of one bucket inside the window:
//!    counted ambiguous; about a million flows in 60 s). Side a is the
//!    flow whose point saw the connection first, which is the one nearer
//!    the client only when the captures started together; its
//!    `hop_latency_ns` compares the first packets each point saw, which
//!    need not be the same packet. Only a flow's first record is read, so
//!    a point that started capturing just before a period boundary gives
//!    a short first range.
//! 4. **`dns_id`**: DNS over UDP, by transaction id, query name and type,
//!    within `dns_window`; the link carries the two calls. Confidence 0.9.
//! 5. **`payload_hash`**: flows of the same L4 protocol whose first client
//!    payloads hash alike (and first server payloads too when both have
//!    one), starting at most `payload_window` apart: TCP connections whose
//!    start was not captured, TCP relays (new ISNs: translation `proxy`),
//!    other UDP, ICMP echo. Linked only when exactly one earlier flow
//!    qualifies: ambiguity never links. Confidence 0.9 with both hashes,
//!    0.7 with the client's alone.
//! 6. **`x_request_id`**, then **`traceparent`** (trace id and span id),
//!    then **`timing`**: calls (not DNS, not TLS handshakes) seen
//!    downstream and upstream of an L7 proxy. Ids come from requests or, when
//!    the proxy only echoed it, from the response. Without an id, a call
//!    links to the call with the same request type and resource whose
//!    request it falls inside (starts after it, its response ends before
//!    that one's), the innermost when such calls nest, and only when no
//!    other call chose the same one. Calls on connections already linked at
//!    L4 are the same request, not a proxy hop, and are not linked at L7.
//!
//! Side `a` is the observation seen first (nearer the client). Every time
//! window is widened by `max_skew` for clocks of different hosts, and
//! `hop_latency_ns` carries that skew.
//!
//! `path_id` is the id of the chain's first observation, hashed with the
//! link kind: every link of one connection (`l4`) or one request (`l7`)
//! shares it.

pub mod path;
pub mod read;

use hashbrown::{HashMap, HashSet};

use crate::records::NatPathRecord;

/// Earlier observations a key looks at for one new one (newest first,
/// inside its window): bounds the work when many share a key (a health
/// check every client sends, the same first bytes of every connection).
const MAX_CANDIDATES: usize = 16;

/// More earlier observations than this with one key inside its window: the
/// key is too common to link by (counted as ambiguous, never linked).
const MAX_SCAN: usize = 64;

/// The earlier members of group `g` before position `gi` inside the window
/// (`within`), newest first; `None` when there are more than [`MAX_SCAN`].
fn recent(g: &[usize], gi: usize, within: impl Fn(usize) -> bool) -> Option<Vec<usize>> {
    recent_max(g, gi, MAX_SCAN, within)
}

/// [`recent`] with another bound.
fn recent_max(g: &[usize], gi: usize, max: usize, within: impl Fn(usize) -> bool) -> Option<Vec<usize>> {
    let v: Vec<usize> = g[..gi].iter().rev().copied().take_while(|&a| within(a)).take(max + 1).collect();
    (v.len() <= max).then_some(v)
}

/// [`MAX_SCAN`] for a `tcp_seq` bucket: sharing a 1 MiB bucket says
/// nothing about two flows (unlike sharing a payload hash), so only work
/// bounds it: 4096 buckets times this many flows inside the window.
const MAX_SEQ_SCAN: usize = 256;

/// Link records handed out at once by [`Linker::link_into`].
pub const EMIT_BATCH: usize = 16 * 1024;

/// Matching windows; see the module documentation.
#[derive(Debug, Clone)]
pub struct NatConfig {
    /// Largest clock difference between capture points.
    pub max_skew_ns: i64,
    /// Largest gap between two sightings of one SYN (SYN retransmissions
    /// dropped before the NAT included).
    pub isn_window_ns: i64,
    pub dns_window_ns: i64,
    pub payload_window_ns: i64,
    /// Largest gap between the starts of two sightings' first records for
    /// `tcp_seq` (a first record ends at the first period boundary: one
    /// period, 60 s by default).
    pub seq_window_ns: i64,
    /// Longest call (downstream) considered for L7 links.
    pub l7_window_ns: i64,
    /// Request-id groups larger than this are ids a client reuses, not one
    /// request: their calls must also nest in time.
    pub max_id_group: usize,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            max_skew_ns: 5_000_000,
            isn_window_ns: 5_000_000_000,
            dns_window_ns: 2_000_000_000,
            payload_window_ns: 2_000_000_000,
            seq_window_ns: 60_000_000_000,
            l7_window_ns: 300_000_000_000,
            max_id_group: 8,
        }
    }
}

impl NatConfig {
    /// How far back a chunk must look: the widest window.
    #[must_use]
    pub fn tail_ns(&self) -> i64 {
        self.isn_window_ns
            .max(self.dns_window_ns)
            .max(self.payload_window_ns)
            .max(self.seq_window_ns)
            .max(self.l7_window_ns)
            + 2 * self.max_skew_ns
    }
}

/// An address as correlation keeps it: no allocation, compared and hashed
/// as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ip(pub std::net::IpAddr);

impl Default for Ip {
    fn default() -> Self {
        Ip(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
}

impl std::fmt::Display for Ip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Ip {
    /// Parses a record's address column (unspecified when it does not parse).
    #[must_use]
    pub fn parse(s: &str) -> Ip {
        s.parse().map(Ip).unwrap_or_default()
    }
}

/// Strings that repeat across records (capture points, protocol names),
/// shared instead of allocated per record.
pub type Name = std::sync::Arc<str>;

/// A flow as correlation sees it (its first record).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlowObs {
    pub flow_id: i64,
    pub point: Name,
    pub start_ns: i64,
    /// Last packet of the first record.
    pub end_ns: i64,
    pub l4: Name,
    pub client_ip: Ip,
    pub client_port: i32,
    pub server_ip: Ip,
    pub server_port: i32,
    pub client_isn: Option<i64>,
    pub server_isn: Option<i64>,
    pub syn_ip_id: Option<i32>,
    pub syn_tsval: Option<i64>,
    pub toa: Option<(Ip, i32)>,
    pub client_hash: Option<i64>,
    pub server_hash: Option<i64>,
    /// `[first, next)` sequence range each side sent in the first record
    /// (wrapping; see [`seq_overlap`]).
    pub client_seq: Option<(u32, u32)>,
    pub server_seq: Option<(u32, u32)>,
}

/// A call as correlation sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallObs {
    pub call_id: i64,
    pub flow_id: i64,
    pub point: Name,
    /// First byte of the request (or of the response without request).
    pub start_ns: i64,
    /// Last byte of the response, `None` without response.
    pub end_ns: Option<i64>,
    pub has_request: bool,
    pub l4: Name,
    pub l7: Name,
    pub client_ip: Ip,
    pub client_port: i32,
    pub server_ip: Ip,
    pub server_port: i32,
    pub request_type: Option<String>,
    pub resource: Option<String>,
    pub response_code: Option<i32>,
    /// `X-Request-ID` of the request, else of the response.
    pub request_id: Option<String>,
    /// `(trace_id, span_id)` from trace headers.
    pub trace: Option<(String, String)>,
    pub dns_id: Option<i64>,
}

/// What a correlation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatStats {
    pub flows: u64,
    pub calls: u64,
    /// Links written, by `match_method`.
    pub links: std::collections::BTreeMap<&'static str, u64>,
    /// Observations left unlinked because several candidates qualified.
    pub ambiguous: u64,
    /// Equal client ISNs that other keys contradicted.
    pub isn_conflicts: u64,
}

trait Tuple {
    fn point(&self) -> &str;
    fn tuple(&self) -> (Ip, i32, Ip, i32);
}

impl Tuple for FlowObs {
    fn point(&self) -> &str {
        &self.point
    }
    fn tuple(&self) -> (Ip, i32, Ip, i32) {
        (self.client_ip, self.client_port, self.server_ip, self.server_port)
    }
}

impl Tuple for CallObs {
    fn point(&self) -> &str {
        &self.point
    }
    fn tuple(&self) -> (Ip, i32, Ip, i32) {
        (self.client_ip, self.client_port, self.server_ip, self.server_port)
    }
}

/// Two observations are of different places or different tuples.
fn distinct(a: &impl Tuple, b: &impl Tuple) -> bool {
    a.point() != b.point() || a.tuple() != b.tuple()
}

/// Two connections to the same server from different client ports are
/// siblings (two clients, or one client's two connections), never two
/// sightings of one: keys that are not unique per connection (payload,
/// timing) must not link them. (A midstream SNAT that changes only the
/// client side is therefore linked by ISN or not at all.)
fn siblings(a: &impl Tuple, b: &impl Tuple) -> bool {
    let (ac, acp, as_, asp) = a.tuple();
    let (bc, bcp, bs, bsp) = b.tuple();
    as_ == bs && asp == bsp && (ac, acp) != (bc, bcp)
}

/// Whether two flows with the same first-payload hash could be one
/// connection seen twice (or the two legs of a relay): other place or
/// tuple, not siblings, and first server payloads that do not differ.
fn payload_pair(a: &FlowObs, b: &FlowObs) -> bool {
    distinct(a, b) && !siblings(a, b) && !differ(a.server_hash, b.server_hash)
}

/// Fewer bytes of overlap than this in either direction is no evidence for
/// `tcp_seq` (a keep-alive probe is one byte, a FIN one sequence number).
pub const MIN_SEQ_OVERLAP: u32 = 8;

/// Both directions overlapping by this much: `tcp_seq` confidence 0.95.
const STRONG_SEQ_OVERLAP: u32 = 64;

/// `tcp_seq` index: the client sequence space in buckets of 2^20 bytes.
const SEQ_BUCKET_BITS: u32 = 20;

/// Bytes two sequence ranges `[first, next)` share on the 2^32 circle
/// (each range shorter than 2^32; a range wrapping past 0 is one range).
#[must_use]
pub fn seq_overlap(a: (u32, u32), b: (u32, u32)) -> u32 {
    let la = u64::from(a.1.wrapping_sub(a.0));
    let lb = u64::from(b.1.wrapping_sub(b.0));
    // b relative to a's first byte: [off, off + lb), maybe past 2^32.
    let off = u64::from(b.0.wrapping_sub(a.0));
    let head = if off < la { la.min(off + lb) - off } else { 0 };
    let wrapped = (off + lb).saturating_sub(1 << 32).min(la);
    u32::try_from(head + wrapped).unwrap_or(u32::MAX)
}

/// The index buckets a client range touches (at most all of them).
fn seq_buckets(r: (u32, u32)) -> impl Iterator<Item = u32> {
    let len = u64::from(r.1.wrapping_sub(r.0));
    let first = r.0 >> SEQ_BUCKET_BITS;
    let last = (u64::from(r.0 & ((1 << SEQ_BUCKET_BITS) - 1)) + len.max(1) - 1) >> SEQ_BUCKET_BITS;
    let all = 1u32 << (32 - SEQ_BUCKET_BITS);
    let n = u32::try_from(last + 1).unwrap_or(all).min(all);
    (0..n).map(move |k| (first + k) & (all - 1))
}

/// A flow `tcp_seq` can use: TCP, both ranges long enough to be evidence.
fn seq_ranges(f: &FlowObs) -> Option<((u32, u32), (u32, u32))> {
    let (c, s) = (f.client_seq?, f.server_seq?);
    let long = |r: (u32, u32)| r.1.wrapping_sub(r.0) >= MIN_SEQ_OVERLAP;
    (&*f.l4 == "tcp" && long(c) && long(s)).then_some((c, s))
}

/// `none`, `dnat`, `snat` or `dnat+snat`, from what changed between the tuples.
fn translation(a: &impl Tuple, b: &impl Tuple) -> &'static str {
    let (ac, acp, as_, asp) = a.tuple();
    let (bc, bcp, bs, bsp) = b.tuple();
    let snat = ac != bc || acp != bcp;
    let dnat = as_ != bs || asp != bsp;
    match (dnat, snat) {
        (false, false) => "none",
        (true, false) => "dnat",
        (false, true) => "snat",
        (true, true) => "dnat+snat",
    }
}

fn differ<T: PartialEq>(a: Option<T>, b: Option<T>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x != y)
}

fn agree<T: PartialEq>(a: Option<T>, b: Option<T>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x == y)
}

/// Groups item indexes by key without a map of vectors: the `(key, index)`
/// pairs sorted, and the runs of two or more equal keys, each run in index
/// (time) order. (A million groups of two were a million allocations.)
fn runs<K: Ord + Copy>(keyed: impl Iterator<Item = (K, usize)>) -> (Vec<usize>, Vec<std::ops::Range<usize>>) {
    let mut keyed: Vec<(K, usize)> = keyed.collect();
    keyed.sort_unstable();
    let idx = keyed.iter().map(|x| x.1).collect();
    let mut ranges = Vec::new();
    let mut start = 0;
    for i in 1..=keyed.len() {
        if i == keyed.len() || keyed[i].0 != keyed[start].0 {
            if i - start > 1 {
                ranges.push(start..i);
            }
            start = i;
        }
    }
    (idx, ranges)
}

/// Mixes an id with a tag (splitmix64 finaliser).
fn path_hash(id: i64, tag: u64) -> i64 {
    let mut z = (id as u64) ^ tag.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as i64
}

/// A link before it becomes a record.
struct Link {
    l7: bool,
    a: usize,
    b: usize,
    method: &'static str,
    translation: &'static str,
    confidence: f64,
    /// DNS links carry their calls (indexes into the call slice).
    calls: Option<(usize, usize)>,
}

/// Links observations chunk by chunk, keeping what later chunks need to
/// know about earlier ones (which flows and calls already have a link, and
/// their path ids) for the length of the tail.
#[derive(Default)]
pub struct Linker {
    pub cfg: NatConfig,
    /// Flow id → (path id, start) of flows in an `l4` link.
    l4_path: HashMap<i64, (i64, i64)>,
    /// Flows that already have a successor / a predecessor.
    l4_succ: HashSet<i64>,
    l4_pred: HashSet<i64>,
    l7_path: HashMap<i64, (i64, i64)>,
    l7_succ: HashSet<i64>,
    l7_pred: HashSet<i64>,
    pub stats: NatStats,
}

impl Linker {
    #[must_use]
    pub fn new(cfg: NatConfig) -> Self {
        Linker { cfg, ..Linker::default() }
    }

    /// Links `flows` and `calls`: the observations starting in a chunk plus
    /// the tail of earlier ones. Only links whose `b` starts at or after
    /// `emit_from` are new (the others were written with the previous
    /// chunk). Both slices are sorted here by start time.
    pub fn link(&mut self, flows: &mut [FlowObs], calls: &mut [CallObs], emit_from: i64, out: &mut Vec<NatPathRecord>) {
        self.link_into(flows, calls, emit_from, &mut |batch| out.append(batch));
    }

    /// Like [`Linker::link`], handing the records to `flush` in batches of
    /// at most [`EMIT_BATCH`] (a million links are not held at once).
    pub fn link_into(
        &mut self,
        flows: &mut [FlowObs],
        calls: &mut [CallObs],
        emit_from: i64,
        flush: &mut dyn FnMut(&mut Vec<NatPathRecord>),
    ) {
        let mut out = Vec::new();
        let out = &mut out;
        flows.sort_by_key(|f| (f.start_ns, f.flow_id));
        calls.sort_by_key(|c| (c.start_ns, c.call_id));
        self.stats.flows += flows.iter().filter(|f| f.start_ns >= emit_from).count() as u64;
        self.stats.calls += calls.iter().filter(|c| c.start_ns >= emit_from).count() as u64;
        let mut links = Vec::new();
        self.by_isn(flows, emit_from, &mut links);
        self.by_toa(flows, emit_from, &mut links);
        self.by_seq(flows, emit_from, &mut links);
        self.by_dns(flows, calls, emit_from, &mut links);
        self.by_payload(flows, emit_from, &mut links);
        // L4 path ids first: L7 linking needs them to tell a proxy hop from
        // one request seen at two points.
        self.emit(flows, calls, std::mem::take(&mut links), out, flush);
        self.by_request_id(calls, emit_from, &mut links);
        self.by_timing(calls, emit_from, &mut links);
        self.emit(flows, calls, links, out, flush);
        if !out.is_empty() {
            flush(out);
        }
        self.prune(emit_from.saturating_sub(self.cfg.tail_ns()));
    }

    fn l4_link(&mut self, flows: &[FlowObs], a: usize, b: usize, links: &mut Vec<Link>, link: Link) {
        self.l4_succ.insert(flows[a].flow_id);
        self.l4_pred.insert(flows[b].flow_id);
        links.push(Link { a, b, ..link });
    }

    fn by_isn(&mut self, flows: &[FlowObs], emit_from: i64, links: &mut Vec<Link>) {
        let (idx, ranges) = runs(
            flows.iter().enumerate().filter(|(_, f)| &*f.l4 == "tcp").filter_map(|(i, f)| Some((f.client_isn?, i))),
        );
        let window = self.cfg.isn_window_ns + self.cfg.max_skew_ns;
        for r in ranges {
            let g = &idx[r];
            for (gi, &b) in g.iter().enumerate() {
                let fb = &flows[b];
                if fb.start_ns < emit_from || self.l4_pred.contains(&fb.flow_id) {
                    continue;
                }
                let mut pick = None;
                for &a in g[..gi].iter().rev() {
                    let fa = &flows[a];
                    if fb.start_ns - fa.start_ns > window {
                        break;
                    }
                    if !distinct(fa, fb) || self.l4_succ.contains(&fa.flow_id) {
                        continue;
                    }
                    let server_ok = agree(fa.server_isn, fb.server_isn);
                    if differ(fa.server_isn, fb.server_isn)
                        || differ(fa.syn_tsval, fb.syn_tsval)
                        || (!server_ok && differ(fa.syn_ip_id, fb.syn_ip_id))
                    {
                        self.stats.isn_conflicts += 1;
                        continue;
                    }
                    pick = Some(a);
                    break;
                }
                let Some(a) = pick else { continue };
                let fa = &flows[a];
                let others = [
                    agree(fa.syn_ip_id, fb.syn_ip_id),
                    agree(fa.syn_tsval, fb.syn_tsval),
                    agree(fa.client_hash, fb.client_hash),
                ]
                .iter()
                .filter(|x| **x)
                .count();
                let confidence = match (agree(fa.server_isn, fb.server_isn), others) {
                    (true, n) if n >= 1 => 1.0,
                    (true, _) | (false, 2..) => 0.9,
                    (false, 1) => 0.8,
                    _ => 0.6,
                };
                let t = translation(fa, fb);
                self.l4_link(
                    flows,
                    a,
                    b,
                    links,
                    Link { l7: false, a, b, method: "tcp_isn", translation: t, confidence, calls: None },
                );
            }
        }
    }

    fn by_toa(&mut self, flows: &[FlowObs], emit_from: i64, links: &mut Vec<Link>) {
        if !flows.iter().any(|f| f.toa.is_some()) {
            return;
        }
        let mut by_client: HashMap<(Ip, i32), Vec<usize>> = HashMap::new();
        for (i, f) in flows.iter().enumerate() {
            if &*f.l4 == "tcp" {
                by_client.entry((f.client_ip, f.client_port)).or_default().push(i);
            }
        }
        let window = self.cfg.isn_window_ns + self.cfg.max_skew_ns;
        for b in 0..flows.len() {
            let fb = &flows[b];
            let Some((ip, port)) = &fb.toa else { continue };
            if fb.start_ns < emit_from || self.l4_pred.contains(&fb.flow_id) {
                continue;
            }
            let cands: Vec<usize> = by_client
                .get(&(*ip, *port))
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|&a| {
                            let fa = &flows[a];
                            a != b
                                && (fb.start_ns - fa.start_ns).abs() <= window
                                && !self.l4_succ.contains(&fa.flow_id)
                                && distinct(fa, fb)
                        })
                        .collect()
                })
                .unwrap_or_default();
            match cands.as_slice() {
                [a] => {
                    let t = translation(&flows[*a], fb);
                    self.l4_link(
                        flows,
                        *a,
                        b,
                        links,
                        Link { l7: false, a: *a, b, method: "toa", translation: t, confidence: 0.9, calls: None },
                    );
                }
                [] => {}
                _ => self.stats.ambiguous += 1,
            }
        }
    }

    /// Rule 3 (`tcp_seq`): see the module documentation.
    fn by_seq(&mut self, flows: &[FlowObs], emit_from: i64, links: &mut Vec<Link>) {
        // Only flows without a captured SYN start a search: when every flow
        // has one (the usual case) this costs one pass.
        if !flows.iter().any(|f| f.client_isn.is_none() && seq_ranges(f).is_some()) {
            return;
        }
        let (idx, ranges) = runs(
            flows
                .iter()
                .enumerate()
                .filter_map(|(i, f)| Some((seq_ranges(f)?.0, i)))
                .flat_map(|(r, i)| seq_buckets(r).map(move |k| (k, i))),
        );
        let window = self.cfg.seq_window_ns + self.cfg.max_skew_ns;
        let skew = self.cfg.max_skew_ns;
        // (b, a, smaller overlap) for every qualifying pair, and the flows
        // whose bucket was too crowded to decide.
        let mut pairs: Vec<(usize, usize, u32)> = Vec::new();
        let mut crowded: Vec<usize> = Vec::new();
        let mut mid: Vec<usize> = Vec::new();
        for r in ranges {
            let g = &idx[r];
            mid.clear();
            mid.extend(g.iter().copied().filter(|&i| flows[i].client_isn.is_none()));
            if mid.is_empty() {
                continue;
            }
            let mut mi = 0;
            for (gi, &b) in g.iter().enumerate() {
                while mi < mid.len() && mid[mi] < b {
                    mi += 1;
                }
                let fb = &flows[b];
                if fb.start_ns < emit_from || self.l4_pred.contains(&fb.flow_id) {
                    continue;
                }
                // A flow with a SYN pairs only with an earlier one without.
                let earlier = if fb.client_isn.is_none() { &g[..gi] } else { &mid[..mi] };
                let within = |a: usize| fb.start_ns - flows[a].start_ns <= window;
                let Some(near) = recent_max(earlier, earlier.len(), MAX_SEQ_SCAN, within) else {
                    crowded.push(b);
                    continue;
                };
                let (bc, bs) = seq_ranges(fb).unwrap_or_default();
                for a in near {
                    let fa = &flows[a];
                    if fb.start_ns > fa.end_ns + skew
                        || !distinct(fa, fb)
                        || siblings(fa, fb)
                        || differ(fa.server_isn, fb.server_isn)
                    {
                        continue;
                    }
                    let (ac, as_) = seq_ranges(fa).unwrap_or_default();
                    let o = seq_overlap(ac, bc).min(seq_overlap(as_, bs));
                    if o >= MIN_SEQ_OVERLAP {
                        pairs.push((b, a, o));
                    }
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        crowded.sort_unstable();
        crowded.dedup();
        self.stats.ambiguous += crowded.len() as u64;
        let mut targets: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        targets.dedup();
        for b in targets {
            if crowded.binary_search(&b).is_ok() || self.l4_pred.contains(&flows[b].flow_id) {
                continue;
            }
            let lo = pairs.partition_point(|p| p.0 < b);
            let hi = pairs.partition_point(|p| p.0 <= b);
            let free: Vec<(usize, u32)> = pairs[lo..hi]
                .iter()
                .filter(|p| !self.l4_succ.contains(&flows[p.1].flow_id))
                .map(|p| (p.1, p.2))
                .collect();
            match free.as_slice() {
                [(a, o)] => {
                    let t = translation(&flows[*a], &flows[b]);
                    let confidence = if *o >= STRONG_SEQ_OVERLAP { 0.95 } else { 0.8 };
                    self.l4_link(
                        flows,
                        *a,
                        b,
                        links,
                        Link { l7: false, a: *a, b, method: "tcp_seq", translation: t, confidence, calls: None },
                    );
                }
                [] => {}
                _ => self.stats.ambiguous += 1,
            }
        }
    }

    fn by_dns(&mut self, flows: &[FlowObs], calls: &[CallObs], emit_from: i64, links: &mut Vec<Link>) {
        if !calls.iter().any(|c| c.dns_id.is_some()) {
            return;
        }
        let flow_index: HashMap<i64, usize> = flows.iter().enumerate().map(|(i, f)| (f.flow_id, i)).collect();
        let mut groups: HashMap<(i64, &str, &str), Vec<usize>> = HashMap::new();
        for (i, c) in calls.iter().enumerate() {
            if let (Some(id), "dns", "udp", true) = (c.dns_id, &*c.l7, &*c.l4, c.has_request) {
                let key = (id, c.resource.as_deref().unwrap_or(""), c.request_type.as_deref().unwrap_or(""));
                groups.entry(key).or_default().push(i);
            }
        }
        let window = self.cfg.dns_window_ns + self.cfg.max_skew_ns;
        let mut keys: Vec<_> = groups.keys().copied().filter(|k| groups[k].len() > 1).collect();
        keys.sort_unstable();
        for k in keys {
            let g = &groups[&k];
            for (gi, &cb) in g.iter().enumerate() {
                let b_call = &calls[cb];
                let Some(&fb) = flow_index.get(&b_call.flow_id) else { continue };
                if b_call.start_ns < emit_from || self.l4_pred.contains(&b_call.flow_id) {
                    continue;
                }
                // Newest first, only inside the window (groups are in time order).
                let Some(near) = recent(g, gi, |ca| b_call.start_ns - calls[ca].start_ns <= window) else {
                    self.stats.ambiguous += 1;
                    continue;
                };
                // Retries of one query at one point share id and name: the
                // latest earlier sighting is the one this one is.
                let Some(ca) = near.into_iter().find(|&ca| {
                    let a_call = &calls[ca];
                    a_call.flow_id != b_call.flow_id
                        && distinct(a_call, b_call)
                        && !self.l4_succ.contains(&a_call.flow_id)
                }) else {
                    continue;
                };
                let Some(&fa) = flow_index.get(&calls[ca].flow_id) else { continue };
                let t = translation(&flows[fa], &flows[fb]);
                self.l4_link(
                    flows,
                    fa,
                    fb,
                    links,
                    Link {
                        l7: false,
                        a: fa,
                        b: fb,
                        method: "dns_id",
                        translation: t,
                        confidence: 0.9,
                        calls: Some((ca, cb)),
                    },
                );
            }
        }
    }

    fn by_payload(&mut self, flows: &[FlowObs], emit_from: i64, links: &mut Vec<Link>) {
        let (idx, ranges) = runs(flows.iter().enumerate().filter_map(|(i, f)| Some(((&*f.l4, f.client_hash?), i))));
        let window = self.cfg.payload_window_ns + self.cfg.max_skew_ns;
        for r in ranges {
            let g = &idx[r];
            for (gi, &b) in g.iter().enumerate() {
                let fb = &flows[b];
                if fb.start_ns < emit_from || self.l4_pred.contains(&fb.flow_id) {
                    continue;
                }
                // Newest first, inside the window. Every earlier flow with this
                // hash counts, linked or not: a hash many flows share (the same
                // request from many clients) is ambiguous, never a chain.
                let Some(near) = recent(g, gi, |a| fb.start_ns - flows[a].start_ns <= window) else {
                    self.stats.ambiguous += 1;
                    continue;
                };
                let qualified: Vec<usize> = near.into_iter().filter(|&a| payload_pair(&flows[a], fb)).collect();
                let free: Vec<usize> =
                    qualified.iter().copied().filter(|a| !self.l4_succ.contains(&flows[*a].flow_id)).collect();
                let mut cands = if qualified.len() > 1 { qualified } else { free };
                // A later flow inside the window that would pair with the
                // same candidate makes it ambiguous too (the second of many
                // identical requests must not take the first).
                if let [a] = cands[..] {
                    let fa = &flows[a];
                    let later = g[gi + 1..]
                        .iter()
                        .take_while(|&&c| flows[c].start_ns - fb.start_ns <= window)
                        .take(MAX_SCAN)
                        .any(|&c| payload_pair(fa, &flows[c]));
                    if later {
                        cands.push(a);
                    }
                }
                match cands.as_slice() {
                    [a] => {
                        let fa = &flows[*a];
                        let relay = differ(fa.client_isn, fb.client_isn) || differ(fa.server_isn, fb.server_isn);
                        let t = if relay { "proxy" } else { translation(fa, fb) };
                        let confidence = if agree(fa.server_hash, fb.server_hash) { 0.9 } else { 0.7 };
                        self.l4_link(
                            flows,
                            *a,
                            b,
                            links,
                            Link {
                                l7: false,
                                a: *a,
                                b,
                                method: "payload_hash",
                                translation: t,
                                confidence,
                                calls: None,
                            },
                        );
                    }
                    [] => {}
                    _ => self.stats.ambiguous += 1,
                }
            }
        }
    }

    /// Same connection (already linked at L4, or the same flow).
    fn same_connection(&self, a: &CallObs, b: &CallObs) -> bool {
        if a.flow_id == b.flow_id {
            return true;
        }
        match (self.l4_path.get(&a.flow_id), self.l4_path.get(&b.flow_id)) {
            (Some(x), Some(y)) => x.0 == y.0,
            _ => false,
        }
    }

    fn l7_candidate(c: &CallObs) -> bool {
        c.has_request && !matches!(&*c.l7, "dns" | "tls")
    }

    fn by_request_id(&mut self, calls: &[CallObs], emit_from: i64, links: &mut Vec<Link>) {
        for pass in ["x_request_id", "traceparent"] {
            let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, c) in calls.iter().enumerate() {
                if !Self::l7_candidate(c) {
                    continue;
                }
                let key = match pass {
                    "x_request_id" => c.request_id.clone(),
                    _ => c.trace.as_ref().map(|(t, s)| format!("{t}/{s}")),
                };
                if let Some(k) = key {
                    groups.entry(k).or_default().push(i);
                }
            }
            let mut keys: Vec<&String> = groups.keys().filter(|k| groups[*k].len() > 1).collect();
            keys.sort_unstable();
            let skew = self.cfg.max_skew_ns;
            for k in keys {
                let g = &groups[k];
                let strict = g.len() > self.cfg.max_id_group;
                for (gi, &b) in g.iter().enumerate() {
                    let cb = &calls[b];
                    if cb.start_ns < emit_from || self.l7_pred.contains(&cb.call_id) {
                        continue;
                    }
                    let window = self.cfg.l7_window_ns;
                    let Some(near) = recent(g, gi, |a| cb.start_ns - calls[a].start_ns <= window) else {
                        self.stats.ambiguous += 1;
                        continue;
                    };
                    let pick = near.into_iter().find(|&a| {
                        let ca = &calls[a];
                        let nested = ca.end_ns.is_some_and(|e| cb.end_ns.unwrap_or(cb.start_ns) <= e + skew);
                        !self.l7_succ.contains(&ca.call_id) && !self.same_connection(ca, cb) && (!strict || nested)
                    });
                    if let Some(a) = pick {
                        let t = if translation(&calls[a], cb) == "none" { "none" } else { "proxy" };
                        self.l7_succ.insert(calls[a].call_id);
                        self.l7_pred.insert(cb.call_id);
                        links.push(Link { l7: true, a, b, method: pass, translation: t, confidence: 1.0, calls: None });
                    }
                }
            }
        }
    }

    fn by_timing(&mut self, calls: &[CallObs], emit_from: i64, links: &mut Vec<Link>) {
        let mut groups: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for (i, c) in calls.iter().enumerate() {
            if let (true, Some(t), Some(r)) = (Self::l7_candidate(c), &c.request_type, &c.resource) {
                groups.entry((t.as_str(), r.as_str())).or_default().push(i);
            }
        }
        let skew = self.cfg.max_skew_ns;
        let mut keys: Vec<_> = groups.keys().copied().filter(|k| groups[k].len() > 1).collect();
        keys.sort_unstable();
        for k in keys {
            let g = &groups[&k];
            // Each upstream call's innermost container, then keep the pairs
            // whose container no other call chose.
            let mut chosen: Vec<(usize, usize, usize)> = Vec::new();
            for (gi, &b) in g.iter().enumerate() {
                let cb = &calls[b];
                if cb.start_ns < emit_from || self.l7_pred.contains(&cb.call_id) {
                    continue;
                }
                let Some(b_end) = cb.end_ns else { continue };
                // Newest first, only inside the window, at most MAX_CANDIDATES
                // (a hot resource has thousands of calls in five minutes).
                let window = self.cfg.l7_window_ns;
                let Some(near) = recent(g, gi, |a| cb.start_ns - calls[a].start_ns <= window) else {
                    self.stats.ambiguous += 1;
                    continue;
                };
                let cands: Vec<usize> = near
                    .into_iter()
                    .filter(|&a| {
                        let ca = &calls[a];
                        ca.end_ns.is_some_and(|a_end| b_end <= a_end + skew && cb.start_ns <= a_end + skew)
                            && !siblings(ca, cb)
                            && !self.l7_succ.contains(&ca.call_id)
                            && !self.same_connection(ca, cb)
                    })
                    .take(MAX_CANDIDATES)
                    .collect();
                let inner = cands.iter().copied().filter(|&x| {
                    let cx = &calls[x];
                    cands.iter().all(|&y| {
                        let cy = &calls[y];
                        x == y || (cx.start_ns >= cy.start_ns && cx.end_ns <= cy.end_ns)
                    })
                });
                let inner: Vec<usize> = inner.collect();
                match inner.as_slice() {
                    [a] => chosen.push((*a, b, cands.len())),
                    _ if cands.is_empty() => {}
                    _ => self.stats.ambiguous += 1,
                }
            }
            let mut count: HashMap<usize, usize> = HashMap::new();
            for (a, _, _) in &chosen {
                *count.entry(*a).or_default() += 1;
            }
            for (a, b, n) in chosen {
                if count[&a] > 1 {
                    self.stats.ambiguous += 1;
                    continue;
                }
                let t = if translation(&calls[a], &calls[b]) == "none" { "none" } else { "proxy" };
                let confidence = if n == 1 { 0.8 } else { 0.6 };
                self.l7_succ.insert(calls[a].call_id);
                self.l7_pred.insert(calls[b].call_id);
                links.push(Link { l7: true, a, b, method: "timing", translation: t, confidence, calls: None });
            }
        }
    }

    fn emit(
        &mut self,
        flows: &[FlowObs],
        calls: &[CallObs],
        mut links: Vec<Link>,
        out: &mut Vec<NatPathRecord>,
        flush: &mut dyn FnMut(&mut Vec<NatPathRecord>),
    ) {
        let start = |l: &Link| {
            if l.l7 {
                (calls[l.b].start_ns, calls[l.a].start_ns)
            } else {
                (flows[l.b].start_ns, flows[l.a].start_ns)
            }
        };
        links.sort_by_key(|l| (start(l), l.l7));
        for l in links {
            let rec = if l.l7 {
                let (a, b) = (&calls[l.a], &calls[l.b]);
                let pid = self.l7_path.get(&a.call_id).map_or_else(|| path_hash(a.call_id, 7), |p| p.0);
                self.l7_path.insert(a.call_id, (pid, a.start_ns));
                self.l7_path.insert(b.call_id, (pid, b.start_ns));
                NatPathRecord {
                    path_id: pid,
                    link_kind: "l7".into(),
                    a_flow_id: a.flow_id,
                    a_call_id: Some(a.call_id),
                    a_start_ns: a.start_ns,
                    a_resource: a.resource.clone(),
                    a_response_code: a.response_code,
                    b_flow_id: b.flow_id,
                    b_call_id: Some(b.call_id),
                    b_start_ns: b.start_ns,
                    b_resource: b.resource.clone(),
                    b_response_code: b.response_code,
                    l4_protocol: b.l4.to_string(),
                    ..sides(a, b)
                }
            } else {
                let (a, b) = (&flows[l.a], &flows[l.b]);
                let pid = self.l4_path.get(&a.flow_id).map_or_else(|| path_hash(a.flow_id, 4), |p| p.0);
                self.l4_path.insert(a.flow_id, (pid, a.start_ns));
                self.l4_path.insert(b.flow_id, (pid, b.start_ns));
                let (ca, cb) = l.calls.map_or((None, None), |(x, y)| (Some(&calls[x]), Some(&calls[y])));
                NatPathRecord {
                    path_id: pid,
                    link_kind: "l4".into(),
                    a_flow_id: a.flow_id,
                    a_call_id: ca.map(|c| c.call_id),
                    a_start_ns: a.start_ns,
                    a_resource: ca.and_then(|c| c.resource.clone()),
                    a_response_code: ca.and_then(|c| c.response_code),
                    b_flow_id: b.flow_id,
                    b_call_id: cb.map(|c| c.call_id),
                    b_start_ns: b.start_ns,
                    b_resource: cb.and_then(|c| c.resource.clone()),
                    b_response_code: cb.and_then(|c| c.response_code),
                    l4_protocol: b.l4.to_string(),
                    ..sides(a, b)
                }
            };
            *self.stats.links.entry(l.method).or_default() += 1;
            out.push(NatPathRecord {
                translation: l.translation.into(),
                match_method: l.method.into(),
                confidence: l.confidence,
                hop_latency_ns: rec.b_start_ns - rec.a_start_ns,
                ..rec
            });
            if out.len() >= EMIT_BATCH {
                flush(out);
            }
        }
    }

    /// Forgets links older than the tail.
    fn prune(&mut self, before: i64) {
        let old_l4: HashSet<i64> = self.l4_path.iter().filter(|(_, (_, t))| *t < before).map(|(id, _)| *id).collect();
        self.l4_path.retain(|_, (_, t)| *t >= before);
        self.l4_succ.retain(|id| !old_l4.contains(id));
        self.l4_pred.retain(|id| !old_l4.contains(id));
        let old_l7: HashSet<i64> = self.l7_path.iter().filter(|(_, (_, t))| *t < before).map(|(id, _)| *id).collect();
        self.l7_path.retain(|_, (_, t)| *t >= before);
        self.l7_succ.retain(|id| !old_l7.contains(id));
        self.l7_pred.retain(|id| !old_l7.contains(id));
    }
}

/// The tuple columns of both sides.
fn sides(a: &impl Tuple, b: &impl Tuple) -> NatPathRecord {
    let (ac, acp, as_, asp) = a.tuple();
    let (bc, bcp, bs, bsp) = b.tuple();
    NatPathRecord {
        a_capture_point: a.point().to_string(),
        a_client_ip: ac.to_string(),
        a_client_port: acp,
        a_server_ip: as_.to_string(),
        a_server_port: asp,
        b_capture_point: b.point().to_string(),
        b_client_ip: bc.to_string(),
        b_client_port: bcp,
        b_server_ip: bs.to_string(),
        b_server_port: bsp,
        ..NatPathRecord::default()
    }
}

#[cfg(test)]
mod tests;
