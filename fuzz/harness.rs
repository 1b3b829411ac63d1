//! Bodies of the fuzz targets, shared by `fuzz/fuzz_targets/*.rs` (nightly,
//! libFuzzer) and `tests/tests/fuzz_regressions.rs` (stable, `cargo test`),
//! so a saved reproducer runs exactly the same code in both.
//!
//! Each function takes the raw fuzz input, must never panic on any bytes
//! except where an assertion below says an invariant of flowtrail broke,
//! and returns a small summary the tests can check.
//!
//! Input formats (all integers little-endian):
//!
//! * `wire_dissect`: `link: u8` (index into [`LINKS`], modulo its length),
//!   `extra: u16` (bytes the capture "did not keep": wire length is the
//!   frame's length plus this), then the frame.
//! * `pcap_reader`: the bytes of a pcap or pcapng file.
//! * `defrag`: [`DEFRAG_HDR`] bytes: `base_ts: i64` (ns), `d0: u8`, `d1: u8`
//!   (see [`defrag_config`]); then [chunks](chunks) of raw-IP frames.
//! * `flow_table`: [`FLOW_HDR`] bytes: `base_ts: i64` (ns), `c0..c3: u8`
//!   (see [`flow_config`]); then [chunks](chunks) of raw-IP frames.
//!
//! A chunk is `len: u16, dt_us: i32, extra: u32, flags: u8` and `len` frame
//! bytes (the last chunk takes what is left when the input is shorter).
//! Each chunk's time is the previous one plus `dt_us` microseconds (which
//! may be negative: captures are not always in time order), or plus
//! `dt_us << 32` nanoseconds when bit 1 of `flags` is set (a jump: pcapng
//! interfaces with different `if_tsoffset` interleave in one file). Its
//! wire length is the frame's length plus `extra`, and bit 0 of `flags` is
//! its capture point. Timestamps use the whole `i64` range on purpose: a
//! pcapng `if_tsoffset`/`if_tsresol` can put a packet anywhere in it, and
//! `flowtrail-capture` saturates to `i64::MIN`/`i64::MAX`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use flowtrail::defrag::{Datagram, DefragConfig, Defragmenter};
use flowtrail::flow::{FlowConfig, FlowKey, FlowTable, PacketInfo, TableStats};
use flowtrail::reassembly::L7Config;
use flowtrail::records::{CallRecord, FlowRecord};
use flowtrail_capture::pcap_file::{PcapFileSource, MAX_INTERFACES, MAX_RECORD_LEN};
use flowtrail_capture::PacketSource;
use flowtrail_decoders::wire::{dissect_frame, dissect_transport, LinkType, Packet};

/// Link types `wire_dissect` cycles through, by the input's first byte.
pub const LINKS: [LinkType; 11] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Ppp,
    LinkType::PppEther,
    LinkType::Nflog,
];

/// Largest IP datagram the reassembler builds (IPv6 payload plus header).
const MAX_DATAGRAM: usize = 65_535 + 40;

// ---------------------------------------------------------------------------
// wire_dissect

/// What `wire_dissect` saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireOutcome {
    pub decoded: bool,
    pub fragment: bool,
    /// `dissect_transport` on the fragment's payload decoded.
    pub fragment_transport: bool,
}

/// Dissects one frame of a link type chosen by the first byte.
pub fn wire_dissect(data: &[u8]) -> WireOutcome {
    let [link, e0, e1, frame @ ..] = data else { return WireOutcome::default() };
    let link = LINKS[usize::from(*link) % LINKS.len()];
    let wire_len = (frame.len() as u32).saturating_add(u32::from(u16::from_le_bytes([*e0, *e1])));
    let mut out = WireOutcome::default();
    let Ok(p) = dissect_frame(link, frame, wire_len) else { return out };
    out.decoded = true;
    check_packet(&p, frame, u64::from(wire_len));
    if p.ip.frag.is_some() {
        out.fragment = true;
        if let Ok(q) = dissect_transport(&p, p.payload) {
            // (q may be a fragment again: the tunnelled packet inside.)
            out.fragment_transport = true;
            check_packet(&q, p.payload, p.payload.len() as u64);
        }
    }
    out
}

/// Invariants every decoded packet keeps (from the `Packet` docs).
fn check_packet(p: &Packet<'_>, frame: &[u8], wire_len: u64) {
    let range = frame.as_ptr_range();
    let pr = p.payload.as_ptr_range();
    assert!(
        p.payload.is_empty() || (range.start <= pr.start && pr.end <= range.end),
        "payload is not a slice of the frame"
    );
    assert!(
        p.payload.len() as u64 <= u64::from(p.payload_len),
        "captured payload {} longer than payload_len {}",
        p.payload.len(),
        p.payload_len
    );
    assert!(
        u64::from(p.payload_len) <= wire_len,
        "payload_len {} beyond the {wire_len} bytes on the wire",
        p.payload_len
    );
    assert!(matches!(p.ip.version, 4 | 6), "IP version {}", p.ip.version);
}

// ---------------------------------------------------------------------------
// pcap_reader

/// What `pcap_reader` saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PcapOutcome {
    pub opened: bool,
    pub packets: u64,
    /// Reading stopped at an error (truncated or corrupt input).
    pub error: bool,
}

/// One temporary file per thread, reused for every input of that thread.
fn temp_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static PATH: PathBuf = std::env::temp_dir().join(format!(
            "flowtrail-fuzz-{}-{}.pcap",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
    }
    PATH.with(Clone::clone)
}

/// Writes the input to a file and reads every packet from it.
pub fn pcap_reader(data: &[u8]) -> PcapOutcome {
    let path = temp_path();
    std::fs::write(&path, data).expect("write the temporary capture");
    let out = read_capture(&path, data.len() as u64);
    let _ = std::fs::remove_file(&path);
    out
}

/// Reads a capture file of `size` bytes to its end, checking the source's
/// guarantees; also dissects every packet of a known link type.
pub fn read_capture(path: &Path, size: u64) -> PcapOutcome {
    let Ok(mut src) = PcapFileSource::open(path) else { return PcapOutcome::default() };
    let mut out = PcapOutcome { opened: true, ..PcapOutcome::default() };
    // Every record takes at least 12 bytes of the file (a pcapng block; a
    // legacy record header is 16): more packets than that is a loop.
    let max_packets = size / 12 + 1;
    let mut bytes = 0u64;
    loop {
        let (interface, linktype) = match src.next_packet() {
            Ok(Some(p)) => {
                assert!(p.data.len() <= MAX_RECORD_LEN, "packet of {} bytes", p.data.len());
                bytes += p.data.len() as u64;
                if let Some(link) = LinkType::from_linktype(p.linktype) {
                    if let Ok(q) = dissect_frame(link, p.data, p.orig_len) {
                        check_packet(&q, p.data, u64::from(p.orig_len.max(p.data.len() as u32)));
                    }
                }
                (p.interface, p.linktype)
            }
            Ok(None) => break,
            Err(_) => {
                out.error = true;
                break;
            }
        };
        out.packets += 1;
        assert!(out.packets <= max_packets, "more than {max_packets} packets from {size} bytes");
        let ifaces = src.interfaces();
        let iface = ifaces.get(interface as usize).expect("packet on an undeclared interface");
        assert_eq!(iface.linktype, linktype, "packet link type differs from its interface's");
    }
    assert!(matches!(src.next_packet(), Ok(None)), "the source goes on after its end or an error");
    let stats = src.stats();
    assert_eq!(stats.packets, out.packets, "stats.packets");
    assert_eq!(stats.bytes, bytes, "stats.bytes");
    assert!(bytes <= size, "{bytes} packet bytes from a {size}-byte file");
    assert!(src.interfaces().len() <= MAX_INTERFACES);
    let (offset, total) = src.progress();
    assert!(offset <= size, "progress {offset} beyond the file size {size}");
    assert_eq!(total, Some(size), "progress total");
    out
}

// ---------------------------------------------------------------------------
// Chunks (defrag, flow_table)

pub const CHUNK_HDR: usize = 11;

/// One raw-IP frame of a `defrag` or `flow_table` input.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    pub dt_us: i32,
    pub jump: bool,
    pub extra: u32,
    pub point: u32,
    pub frame: &'a [u8],
}

/// Splits the chunk part of an input (see the module docs).
pub fn chunks(mut b: &[u8]) -> impl Iterator<Item = Chunk<'_>> {
    std::iter::from_fn(move || {
        if b.len() < CHUNK_HDR {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        let dt_us = i32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        let extra = u32::from_le_bytes([b[6], b[7], b[8], b[9]]);
        let point = u32::from(b[10] & 1);
        let jump = b[10] & 2 != 0;
        let rest = &b[CHUNK_HDR..];
        let (frame, next) = rest.split_at(len.min(rest.len()));
        b = next;
        Some(Chunk { dt_us, jump, extra, point, frame })
    })
}

/// Appends one chunk (for seeds and tests); frames beyond 65535 bytes are cut.
pub fn push_chunk(out: &mut Vec<u8>, dt_us: i32, extra: u32, point: u32, frame: &[u8]) {
    let frame = &frame[..frame.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(frame.len() as u16).to_le_bytes());
    out.extend_from_slice(&dt_us.to_le_bytes());
    out.extend_from_slice(&extra.to_le_bytes());
    out.push((point & 1) as u8);
    out.extend_from_slice(frame);
}

fn time_of(ts: i64, c: &Chunk<'_>) -> i64 {
    let dt = if c.jump { i64::from(c.dt_us) << 32 } else { i64::from(c.dt_us) * 1000 };
    ts.saturating_add(dt)
}

fn wire_len_of(c: &Chunk<'_>) -> u32 {
    (c.frame.len() as u32).saturating_add(c.extra)
}

// ---------------------------------------------------------------------------
// defrag

pub const DEFRAG_HDR: usize = 10;
const MS: i64 = 1_000_000;

/// Small reassembly limits from two bytes, so that every limit is hit.
// `..Default` keeps this compiling when the config gains a field.
#[allow(clippy::needless_update)]
pub fn defrag_config(d0: u8, d1: u8) -> DefragConfig {
    DefragConfig {
        timeout_ns: (1 + i64::from(d0 & 0x0f)) * 250 * MS,
        max_datagrams: 1 + usize::from(d0 >> 4),
        max_bytes: 1 << (10 + (d1 & 7)),
        max_fragments_per_datagram: 1 + usize::from(d1 >> 3),
        ..DefragConfig::default()
    }
}

/// What `defrag` saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DefragOutcome {
    pub fragments: u64,
    pub reassembled: u64,
    pub partial: u64,
    /// Datagrams (whole or partial) whose transport header decoded.
    pub transport_ok: u64,
}

/// Pushes every fragment of the input into a small reassembler.
pub fn defrag(data: &[u8]) -> DefragOutcome {
    let Some((hdr, rest)) = data.split_first_chunk::<DEFRAG_HDR>() else { return DefragOutcome::default() };
    let mut ts = i64::from_le_bytes(hdr[..8].try_into().expect("8 bytes"));
    let cfg = defrag_config(hdr[8], hdr[9]);
    let mut d = Defragmenter::new(cfg.clone());
    let mut out = DefragOutcome::default();
    let mut frames = 0u64;
    for c in chunks(rest) {
        ts = time_of(ts, &c);
        let wire_len = wire_len_of(&c);
        let Ok(p) = dissect_frame(LinkType::RawIp, c.frame, wire_len) else { continue };
        if p.ip.frag.is_none() {
            continue;
        }
        out.fragments += 1;
        if let Some(dg) = d.push(ts, c.point, wire_len, &p) {
            out.reassembled += 1;
            frames += u64::from(dg.frames);
            out.transport_ok += u64::from(check_datagram(&dg, &cfg, true));
        }
        for dg in d.take_expired() {
            out.partial += 1;
            frames += u64::from(dg.frames);
            out.transport_ok += u64::from(check_datagram(&dg, &cfg, false));
        }
    }
    d.finish();
    for dg in d.take_expired() {
        out.partial += 1;
        frames += u64::from(dg.frames);
        out.transport_ok += u64::from(check_datagram(&dg, &cfg, false));
    }
    assert!(!d.has_expired());
    let s = d.stats;
    assert_eq!(s.fragments, out.fragments, "stats.fragments");
    assert_eq!(s.reassembled, out.reassembled, "stats.reassembled");
    assert_eq!(s.partial_delivered, out.partial, "stats.partial_delivered");
    assert!(s.partial_delivered <= s.timed_out, "{s:?}");
    // A fragment is malformed, dropped at a limit, or kept in one datagram.
    assert!(frames + s.malformed + s.dropped_limit <= s.fragments, "{frames} frames delivered, {s:?}");
    out
}

/// Checks a datagram and dissects its transport header; true if it decoded.
fn check_datagram(dg: &Datagram, cfg: &DefragConfig, complete: bool) -> bool {
    assert!(dg.data.len() <= MAX_DATAGRAM, "datagram of {} bytes", dg.data.len());
    assert!(dg.data.len() <= cfg.max_bytes, "datagram of {} bytes beyond max_bytes", dg.data.len());
    assert!(dg.frames >= 1);
    assert!(dg.base.ip.frag.is_some_and(|f| f.offset == 0), "base is not the first fragment");
    assert!(!dg.data.is_empty(), "empty datagram (complete: {complete})");
    let Ok(q) = dissect_transport(&dg.base, &dg.data) else { return false };
    check_packet(&q, &dg.data, dg.data.len() as u64);
    true
}

// ---------------------------------------------------------------------------
// flow_table

pub const FLOW_HDR: usize = 12;

/// Short timeouts, a small table and small L7 buffers from four bytes, so
/// that idle expiry, sweeps, period records, the full-table path and the
/// L7 limits all run. Bit 7 of `c[3]` turns L7 decoding off.
#[allow(clippy::needless_update)]
pub fn flow_config(c: [u8; 4]) -> FlowConfig {
    let lo = |b: u8| 1 + i64::from(b & 0x0f);
    let hi = |b: u8| 1 + i64::from(b >> 4);
    let l7 = (c[3] & 0x80 == 0).then(|| L7Config {
        request_timeout_ns: hi(c[1]) * 300 * MS,
        max_stream_buffer: 4096 << (c[3] >> 6 & 1),
        max_shard_buffer: 16 * 1024,
        max_detect_bytes: 512,
        ..L7Config::default()
    });
    FlowConfig {
        tcp_opening_timeout_ns: lo(c[0]) * 100 * MS,
        tcp_established_timeout_ns: hi(c[0]) * 250 * MS,
        tcp_closing_timeout_ns: lo(c[1]) * 100 * MS,
        udp_timeout_ns: hi(c[1]) * 200 * MS,
        other_timeout_ns: lo(c[2]) * 200 * MS,
        period_ns: hi(c[2]) * 500 * MS,
        max_flows: 1 + usize::from(c[3] & 0x3f),
        l7,
        ..FlowConfig::default()
    }
}

/// Reassembly inside `flow_table`, as the pipeline does before the table.
fn flow_defrag_config() -> DefragConfig {
    DefragConfig { timeout_ns: 2_000 * MS, max_datagrams: 8, max_bytes: 1 << 18, ..DefragConfig::default() }
}

/// What the table was fed, to check the records against.
#[derive(Debug, Clone, Copy, Default)]
struct Fed {
    processed: u64,
    /// Packets the table tracked (processed less untracked ones).
    packets: i64,
    bytes: i64,
    payload: i64,
    fragments: i64,
}

/// What `flow_table` saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowOutcome {
    pub processed: u64,
    pub records: usize,
    pub flows: u64,
    pub calls: usize,
}

/// Feeds every packet of the input (fragments reassembled first) to a flow
/// table, then flushes it and checks the records.
pub fn flow_table(data: &[u8]) -> FlowOutcome {
    let Some((hdr, rest)) = data.split_first_chunk::<FLOW_HDR>() else { return FlowOutcome::default() };
    let mut ts = i64::from_le_bytes(hdr[..8].try_into().expect("8 bytes"));
    let cfg = flow_config(hdr[8..12].try_into().expect("4 bytes"));
    let mut table = FlowTable::new(cfg.clone());
    let mut defrag = Defragmenter::new(flow_defrag_config());
    let mut fed = Fed::default();
    let mut records = Vec::new();
    let mut calls = Vec::new();
    let mut end = i64::MIN;
    for c in chunks(rest) {
        ts = time_of(ts, &c);
        end = end.max(ts);
        let wire_len = wire_len_of(&c);
        let Ok(p) = dissect_frame(LinkType::RawIp, c.frame, wire_len) else { continue };
        if p.ip.frag.is_none() {
            let info = PacketInfo { ts_ns: ts, point: c.point, wire_len, frames: 1, direction: None };
            feed(&mut table, &mut fed, &info, &p);
        } else {
            if let Some(dg) = defrag.push(ts, c.point, wire_len, &p) {
                feed_datagram(&mut table, &mut fed, &dg);
            }
            for dg in defrag.take_expired() {
                feed_datagram(&mut table, &mut fed, &dg);
            }
        }
        if table.pending() >= 64 {
            while table.pending() > 0 {
                records.extend(table.drain());
                calls.extend(table.drain_calls());
            }
        }
    }
    defrag.finish();
    for dg in defrag.take_expired() {
        feed_datagram(&mut table, &mut fed, &dg);
    }
    table.flush(end, 64, &mut |t| {
        while t.pending() > 0 {
            records.extend(t.drain());
            calls.extend(t.drain_calls());
        }
    });
    assert!(table.is_empty(), "flows left after flush");
    assert_eq!(table.pending(), 0, "records left after drain");
    check_records(&records, &fed, &table.stats, &cfg);
    check_calls(&calls, &records);
    let s = &table.stats;
    FlowOutcome {
        processed: fed.processed,
        records: records.len(),
        flows: s.flows_tcp + s.flows_udp + s.flows_icmp + s.flows_other,
        calls: calls.len(),
    }
}

fn feed(table: &mut FlowTable, fed: &mut Fed, info: &PacketInfo, p: &Packet<'_>) {
    let (key, from_lo) = FlowKey::of(info.point, p);
    assert!(key.lo <= key.hi, "flow key not normalised: {key:?}");
    let untracked = table.stats.untracked_packets;
    table.process(info, &key, from_lo, p);
    fed.processed += 1;
    if table.stats.untracked_packets == untracked {
        fed.packets += 1;
        fed.bytes += i64::from(info.wire_len);
        fed.payload += i64::from(p.payload_len);
        if info.frames > 1 {
            fed.fragments += i64::from(info.frames);
        }
    }
}

fn feed_datagram(table: &mut FlowTable, fed: &mut Fed, dg: &Datagram) {
    if let Ok(q) = dissect_transport(&dg.base, &dg.data) {
        feed(table, fed, &dg.info(), &q);
    }
}

fn check_records(records: &[FlowRecord], fed: &Fed, s: &TableStats, cfg: &FlowConfig) {
    assert_eq!(s.packets, fed.processed, "stats.packets");
    assert_eq!(s.records_final + s.records_period, records.len() as u64, "record counters");
    assert_eq!(s.records_final, s.flows_tcp + s.flows_udp + s.flows_icmp + s.flows_other, "one final record per flow");
    assert!(s.max_concurrent_flows <= cfg.max_flows as u64, "{} flows held", s.max_concurrent_flows);
    let mut sum = Fed::default();
    for r in records {
        let ctx =
            || format!("{} {}:{} -> {}:{}", r.record_kind, r.client_ip, r.client_port, r.server_ip, r.server_port);
        assert!(r.end_ns >= r.start_ns, "end_ns {} < start_ns {}: {}", r.end_ns, r.start_ns, ctx());
        assert!(r.flow_id >= 0, "{}", ctx());
        assert!(matches!(r.ip_version, 4 | 6), "{}", ctx());
        assert!(!r.close_type.is_empty(), "{}", ctx());
        for v in [r.client_packets, r.server_packets, r.client_bytes, r.server_bytes] {
            assert!(v >= 0, "negative counter: {}", ctx());
        }
        for v in [r.client_payload_bytes, r.server_payload_bytes, r.client_fragments, r.server_fragments] {
            assert!(v >= 0, "negative counter: {}", ctx());
        }
        match r.record_kind.as_str() {
            "final" => {}
            "period" => assert!(r.client_packets + r.server_packets > 0, "empty period record: {}", ctx()),
            other => panic!("record_kind {other}"),
        }
        assert_eq!(r.client_ttl_min.is_some(), r.client_packets > 0, "{}", ctx());
        assert_eq!(r.server_ttl_min.is_some(), r.server_packets > 0, "{}", ctx());
        assert!(r.client_ttl_min <= r.client_ttl_max, "{}", ctx());
        assert!(r.server_ttl_min <= r.server_ttl_max, "{}", ctx());
        assert_eq!(r.syn_count.is_some(), r.l4_protocol == "tcp", "{}", ctx());
        sum.packets += r.client_packets + r.server_packets;
        sum.bytes += r.client_bytes + r.server_bytes;
        sum.payload += r.client_payload_bytes + r.server_payload_bytes;
        sum.fragments += r.client_fragments + r.server_fragments;
    }
    let untracked = s.untracked_packets;
    assert_eq!(sum.packets, fed.packets, "packets in records ({} processed, {untracked} untracked)", fed.processed);
    assert_eq!(sum.bytes, fed.bytes, "bytes in records");
    assert_eq!(sum.payload, fed.payload, "payload bytes in records");
    assert_eq!(sum.fragments, fed.fragments, "fragments in records");
}

fn check_calls(calls: &[CallRecord], records: &[FlowRecord]) {
    let flows: std::collections::HashSet<i64> = records.iter().map(|r| r.flow_id).collect();
    for c in calls {
        assert!(flows.contains(&c.flow_id), "call of flow {} that has no flow record", c.flow_id);
        assert!(c.call_index >= 0, "call_index {}", c.call_index);
        assert!(c.request_bytes >= 0 && c.response_bytes >= 0, "negative call bytes");
        assert!(!c.response_status.is_empty(), "empty response_status");
    }
}

/// What `l7_*` saw: calls made and parse errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct L7Outcome {
    pub calls: usize,
    pub errors: usize,
}

/// One L7 session fed like the analyzer feeds it (Suricata's
/// `fuzz_applayerparserparse` shape): the first byte picks the transport
/// (bit 0: UDP) and, for `l7_stream`, the protocol; the rest is split on
/// the separator `"FTSEP"` into chunks whose first byte gives the
/// direction (bit 0), whether a gap of `byte >> 1` bytes precedes it
/// (bit 7), and whether requests expire before it (bit 6). Each chunk is
/// copied to its own buffer so a sanitizer sees over-reads. Bytes a
/// session leaves unconsumed are kept and passed again, as the analyzer's
/// carry buffer does.
pub fn l7_session(proto: Option<flowtrail_decoders::l7::L7Protocol>, data: &[u8]) -> L7Outcome {
    use flowtrail_decoders::l7::{Decoder, Direction, L7Protocol, Session, SessionConfig, Transport};
    let Some((&head, rest)) = data.split_first() else { return L7Outcome::default() };
    let transport = if head & 1 == 1 { Transport::Udp } else { Transport::Tcp };
    let proto = proto.unwrap_or(L7Protocol::ALL[usize::from(head >> 1) % L7Protocol::ALL.len()]);
    let cfg = SessionConfig { max_message_bytes: 4096, max_pending: 8, attr_headers: vec!["x-client-version".into()] };
    let mut s = Session::new(proto, transport, &cfg);
    let mut out = Vec::new();
    let mut carry: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut dead = [false; 2];
    let mut errors = 0;
    let mut ts = 1_000_000_000_i64;
    for chunk in split_on(rest, b"FTSEP") {
        let Some((&ctl, body)) = chunk.split_first() else { continue };
        let side = usize::from(ctl & 1);
        let dir = if side == 0 { Direction::ToServer } else { Direction::ToClient };
        ts += 1_000_000;
        if ctl & 0x40 != 0 {
            s.expire(ts - 500_000, &mut out);
        }
        if dead[side] {
            continue;
        }
        if ctl & 0x80 != 0 && transport == Transport::Tcp {
            carry[side].clear();
            s.on_gap(dir, u32::from(ctl >> 1));
        }
        let owned = body.to_vec();
        if transport == Transport::Udp {
            if s.parse(dir, &owned, ts, &mut out).is_err() {
                errors += 1;
            }
            continue;
        }
        carry[side].extend_from_slice(&owned);
        match s.parse(dir, &carry[side], ts, &mut out) {
            Ok(n) => {
                assert!(n <= carry[side].len(), "consumed more than given");
                carry[side].drain(..n);
                if carry[side].len() > cfg.max_message_bytes * 4 + 65_536 {
                    dead[side] = true;
                }
            }
            Err(_) => {
                errors += 1;
                dead[side] = true;
            }
        }
    }
    s.finish(ts, &mut out);
    for c in &out {
        // HTTP/2 sessions label gRPC streams `grpc`.
        let same = c.protocol == proto || (proto == L7Protocol::Http2 && c.protocol == L7Protocol::Grpc);
        assert!(same, "a session makes calls of its protocol only: {:?} from {proto:?}", c.protocol);
        for (k, v) in &c.attributes {
            assert!(!v.contains("SECRET") || !k.contains("authorization"), "credential stored");
        }
    }
    L7Outcome { calls: out.len(), errors }
}

/// Splits on a separator (the last piece may be empty).
pub fn split_on<'a>(mut b: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match b.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                let piece = &b[..i];
                b = &b[i + sep.len()..];
                Some(piece)
            }
            None => {
                done = true;
                Some(b)
            }
        }
    })
}
