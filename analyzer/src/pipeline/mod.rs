//! The wiring, in dataflow order:
//!
//! `capture::PacketSource` → `RawPacket` → `decoders::wire::dissect` →
//! `Packet` → `analyzer::flow::FlowTable` → `reassembly::L7Flow` →
//! `decoders::l7::Session` → `Call` → `records::{FlowRecord, CallRecord}` →
//! `sink::ParquetSink`
//!
//! One reader thread reads the sources (merged by timestamp when there are
//! several), dissects each frame, reassembles IP fragments, and hands
//! packets in batches to N worker shards chosen by a symmetric flow hash.
//! Each shard owns its flow table: no locks on the packet path. Finished
//! records go to one writer thread. With one worker the table runs inline
//! on the reader thread. Records do not depend on N: flow ids come from a
//! fixed hash, and flows end by packet time, never by thread timing.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use flowtrail_capture::pcap_file::PcapFileSource;
use flowtrail_capture::{CaptureStats, Direction, PacketSource};
use flowtrail_decoders::wire::{dissect_frame, dissect_transport, DecodeError, LinkType, Packet};

mod live;

pub use live::{capture, capture_with, LiveOptions, LiveSource, Opener};

use crate::defrag::{detach, Datagram, DefragConfig, DefragStats, Defragmenter};
use crate::flow::{shard_of, CapturePoint, FlowConfig, FlowKey, FlowTable, PacketInfo, TableStats};
use crate::metrics::{Metrics, SinkPublisher, TablePublisher};
use crate::reassembly::L7Stats;
use crate::records::{CallRecord, FlowRecord};
use crate::sink::object::{FileQueue, UploadStats};
use crate::sink::{ParquetSink, SinkStats};

/// One input file and the capture point name it gets.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    /// `--point NAME=FILE`; else the file's name.
    pub point: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub inputs: Vec<Input>,
    pub out_dir: PathBuf,
    pub workers: usize,
    pub flow: FlowConfig,
    pub defrag: DefragConfig,
    pub progress: bool,
    /// Distinguishes the files of this run from earlier runs in `out_dir`.
    pub run_id: String,
    /// Correlate this run's flows and calls into `nat_paths` when it ends.
    pub nat: Option<crate::nat::NatConfig>,
}

/// What a run did, for the summary and for tests.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub packets: u64,
    pub bytes: u64,
    pub non_ip: u64,
    pub decode_errors: BTreeMap<&'static str, u64>,
    pub unsupported_linktype: u64,
    pub defrag: DefragStats,
    pub flows: TableStats,
    pub l7: L7Stats,
    /// Flow records written.
    pub sink: SinkStats,
    /// Call records written.
    pub calls: SinkStats,
    pub capture: CaptureStats,
    pub elapsed: Duration,
    /// Errors that ended an input early (truncated or corrupt files).
    pub input_errors: Vec<String>,
    pub workers: usize,
    /// NAT path correlation, when it ran.
    pub nat: Option<crate::nat::NatStats>,
    /// NAT path records written.
    pub nat_paths: SinkStats,
    /// `--write-pcap`: pcapng files closed, packets and bytes written.
    pub pcap_files: u64,
    pub pcap_packets: u64,
    pub pcap_bytes: u64,
    /// Every capture point of the run, in the order first seen (live: each
    /// interface captured on, even without packets; replay: each file, or
    /// each interface of a pcapng file, that had packets).
    pub points: Vec<PointStats>,
    /// `-o s3://…`: what went to object storage and what failed to.
    pub upload: Option<UploadStats>,
}

/// What one capture point saw and lost. For live capture these are the
/// figures the metrics endpoint reports for the point (`flowtrail_capture_*`
/// with `point="<name>"`), summed over capture threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PointStats {
    /// Capture point name (`capture_point` in records).
    pub name: String,
    /// `file`, `afpacket`, `tc`, `xdp`.
    pub mode: &'static str,
    /// Interface name (`capture_interface`).
    pub interface: String,
    /// File name for replay; empty for live capture.
    pub file: String,
    pub ifindex: Option<u32>,
    pub netns: Option<String>,
    /// Packets read at this point (all, before decoding).
    pub packets: u64,
    /// Bytes on the wire of those packets (frames' original lengths).
    pub bytes: u64,
    /// Packets lost before flowtrail read them, by cause: `kernel`
    /// (AF_PACKET ring full, `tp_drops`), `ebpf_ring_full` (TC/XDP ring
    /// full), `file` (as pcapng interface statistics report, `isb_ifdrop`).
    /// The cause of the point's mode is always present, 0 included.
    /// Queues between threads block rather than drop; what analysis gives
    /// up at its caps is counted run-wide (untracked packets, fragments).
    pub drops: BTreeMap<&'static str, u64>,
    /// Live: packets the kernel handed to the socket or ring (drops
    /// included); 0 for files.
    pub kernel_packets: u64,
    /// Live AF_PACKET: times the ring froze (user space held every block).
    pub ring_freezes: u64,
}

impl PointStats {
    /// Drops of every cause.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// The drop cause a capture mode reports (see [`PointStats::drops`]).
#[must_use]
pub fn drop_cause(mode: &str) -> &'static str {
    match mode {
        "tc" | "xdp" => "ebpf_ring_full",
        "file" => "file",
        _ => "kernel",
    }
}

/// Adds a point's figures into `all`, by name (capture threads of a fanout
/// group each see part of the same interface).
fn add_point(all: &mut Vec<PointStats>, p: &PointStats) {
    match all.iter_mut().find(|q| q.name == p.name) {
        Some(q) => {
            q.packets += p.packets;
            q.bytes += p.bytes;
            for (k, v) in &p.drops {
                *q.drops.entry(k).or_insert(0) += v;
            }
            q.kernel_packets += p.kernel_packets;
            q.ring_freezes += p.ring_freezes;
            if q.ifindex.is_none() {
                q.ifindex = p.ifindex;
            }
            if q.netns.is_none() {
                q.netns.clone_from(&p.netns);
            }
        }
        None => all.push(p.clone()),
    }
}

const BATCH: usize = 1024;
/// Records a shard keeps before handing them to the writer.
const RECORD_BATCH: usize = 4096; // records::BATCH_CAPACITY leaves room above it

struct Item {
    info: PacketInfo,
    key: FlowKey,
    from_lo: bool,
    pkt: Packet<'static>,
    /// Where the payload's captured bytes are in the batch's arena.
    payload: (u32, u32),
}

/// Packets for one shard, with their payload bytes in one arena (one copy
/// per packet, amortised allocations: batches are recycled).
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    arena: Vec<u8>,
}

enum Msg {
    Point(u32, Arc<CapturePoint>),
    Batch(Batch),
    /// The input ended with a packet at this time.
    End(i64),
    /// The capture's time while no packets come (live capture).
    Tick(i64),
}

/// What shards send to the writer.
enum Output {
    Flows(Vec<FlowRecord>),
    Calls(Vec<CallRecord>),
}

type ShardResult = (TableStats, L7Stats);

enum Engine {
    Inline {
        table: Box<FlowTable>,
        sink: Sender<Output>,
        metrics: Option<TablePublisher>,
    },
    Sharded {
        txs: Vec<Sender<Msg>>,
        batches: Vec<Batch>,
        recycle: Receiver<Batch>,
        handles: Vec<std::thread::JoinHandle<ShardResult>>,
        copy_payload: bool,
    },
}

/// Hands a table's finished records to the writer.
fn send_records(table: &mut FlowTable, sink: &Sender<Output>) {
    loop {
        let flows = table.drain();
        if flows.is_empty() {
            break;
        }
        let _ = sink.send(Output::Flows(flows));
    }
    loop {
        let calls = table.drain_calls();
        if calls.is_empty() {
            break;
        }
        let _ = sink.send(Output::Calls(calls));
    }
}

impl Engine {
    fn set_point(&mut self, index: u32, point: &Arc<CapturePoint>) {
        match self {
            Engine::Inline { table, .. } => table.set_point(index, Arc::clone(point)),
            Engine::Sharded { txs, batches, .. } => {
                // Packets batched before this point was known must not
                // overtake its declaration: flush first.
                for (i, tx) in txs.iter().enumerate() {
                    if !batches[i].items.is_empty() {
                        let b = std::mem::take(&mut batches[i]);
                        let _ = tx.send(Msg::Batch(b));
                    }
                    let _ = tx.send(Msg::Point(index, Arc::clone(point)));
                }
            }
        }
    }

    fn dispatch(&mut self, info: PacketInfo, p: &Packet<'_>) {
        let (key, from_lo) = FlowKey::of(info.point, p);
        match self {
            Engine::Inline { table, sink, .. } => {
                table.process(&info, &key, from_lo, p);
                if table.pending() >= RECORD_BATCH {
                    send_records(table, sink);
                }
            }
            Engine::Sharded { txs, batches, recycle, copy_payload, .. } => {
                let shard = shard_of(&key, txs.len());
                let batch = &mut batches[shard];
                if batch.items.capacity() == 0 {
                    *batch = recycle.try_recv().unwrap_or_else(|_| Batch {
                        items: Vec::with_capacity(BATCH),
                        arena: Vec::with_capacity(BATCH * 256),
                    });
                }
                let payload = if *copy_payload && !p.payload.is_empty() {
                    let at = batch.arena.len() as u32;
                    batch.arena.extend_from_slice(p.payload);
                    (at, p.payload.len() as u32)
                } else {
                    (0, 0)
                };
                batch.items.push(Item { info, key, from_lo, pkt: detach(p), payload });
                if batch.items.len() >= BATCH || batch.arena.len() >= BATCH * 1536 {
                    let b = std::mem::take(batch);
                    let _ = txs[shard].send(Msg::Batch(b));
                }
            }
        }
    }

    /// Moves every table's clock while no packets come (live capture), so
    /// idle flows end and their records are written.
    fn tick(&mut self, now_ns: i64) {
        match self {
            Engine::Inline { table, sink, metrics } => {
                table.advance(now_ns);
                send_records(table, sink);
                if let Some(m) = metrics {
                    m.publish(table);
                }
            }
            Engine::Sharded { txs, batches, .. } => {
                for (tx, b) in txs.iter().zip(batches.iter_mut()) {
                    if !b.items.is_empty() {
                        let _ = tx.send(Msg::Batch(std::mem::take(b)));
                    }
                    let _ = tx.send(Msg::Tick(now_ns));
                }
            }
        }
    }

    /// Flushes every table; the input's last packet was at `end_ns`.
    fn finish(self, end_ns: i64) -> ShardResult {
        let mut total = TableStats::default();
        let mut l7 = L7Stats::default();
        match self {
            Engine::Inline { mut table, sink, metrics } => {
                table.flush(end_ns, RECORD_BATCH, &mut |t| send_records(t, &sink));
                if let Some(mut m) = metrics {
                    m.publish(&table);
                }
                add_table_stats(&mut total, &table.stats);
                add_l7_stats(&mut l7, &table.l7_stats);
            }
            Engine::Sharded { txs, mut batches, handles, .. } => {
                for (tx, b) in txs.iter().zip(batches.iter_mut()) {
                    if !b.items.is_empty() {
                        let _ = tx.send(Msg::Batch(std::mem::take(b)));
                    }
                    let _ = tx.send(Msg::End(end_ns));
                }
                drop(txs);
                for h in handles {
                    let (s, l) = h.join().expect("worker thread panicked");
                    add_table_stats(&mut total, &s);
                    add_l7_stats(&mut l7, &l);
                }
            }
        }
        (total, l7)
    }
}

fn add_table_stats(t: &mut TableStats, s: &TableStats) {
    t.packets += s.packets;
    t.flows_tcp += s.flows_tcp;
    t.flows_udp += s.flows_udp;
    t.flows_icmp += s.flows_icmp;
    t.flows_other += s.flows_other;
    t.records_final += s.records_final;
    t.records_period += s.records_period;
    t.untracked_packets += s.untracked_packets;
    t.max_concurrent_flows += s.max_concurrent_flows;
}

fn add_l7_stats(t: &mut L7Stats, s: &L7Stats) {
    for i in 0..t.detected.len() {
        t.detected[i] += s.detected[i];
    }
    t.undetected_flows += s.undetected_flows;
    t.calls += s.calls;
    for (k, v) in &s.errors {
        *t.errors.entry(k).or_insert(0) += v;
    }
    t.add_stream(&s.stream);
}

fn worker(
    cfg: FlowConfig,
    rx: Receiver<Msg>,
    recycle: Sender<Batch>,
    sink: Sender<Output>,
    mut metrics: Option<TablePublisher>,
) -> ShardResult {
    let mut table = FlowTable::new(cfg);
    let mut end_ns = i64::MIN;
    for msg in rx {
        match msg {
            Msg::End(t) => end_ns = t,
            Msg::Point(i, p) => table.set_point(i, p),
            Msg::Tick(now) => {
                table.advance(now);
                send_records(&mut table, &sink);
                if let Some(m) = &mut metrics {
                    m.publish(&table);
                }
            }
            Msg::Batch(mut batch) => {
                for it in &batch.items {
                    let (at, len) = (it.payload.0 as usize, it.payload.1 as usize);
                    let pkt = Packet { payload: &batch.arena[at..at + len], ..it.pkt };
                    table.process(&it.info, &it.key, it.from_lo, &pkt);
                }
                batch.items.clear();
                batch.arena.clear();
                let _ = recycle.try_send(batch);
                if table.pending() >= RECORD_BATCH {
                    send_records(&mut table, &sink);
                }
            }
        }
    }
    table.flush(end_ns, RECORD_BATCH, &mut |t| send_records(t, &sink));
    if let Some(m) = &mut metrics {
        m.publish(&table);
    }
    (table.stats, table.l7_stats)
}

/// A source with the state of the timestamp merge.
struct Source {
    src: Box<dyn PacketSource + Send>,
    /// Capture point name; empty for live sources (named by interface).
    name: String,
    file: String,
    /// `file`, `afpacket`, `tc`, `xdp`.
    mode: &'static str,
    /// Global capture point index of each of this source's interfaces.
    points: Vec<Option<u32>>,
    head: Option<Head>,
    done: bool,
}

/// An owned copy of a source's next packet (multi-source merge only).
struct Head {
    ts_ns: i64,
    interface: u32,
    linktype: u32,
    orig_len: u32,
    direction: Option<Direction>,
    data: Vec<u8>,
}

struct Reader {
    engine: Engine,
    defrag: Defragmenter,
    summary: RunSummary,
    points: Vec<Arc<CapturePoint>>,
    /// What each point (by index) read and lost.
    point_stats: Vec<PointStats>,
    warned: std::collections::HashSet<&'static str>,
    /// Time of the latest packet read.
    last_ts_ns: i64,
}

impl Reader {
    fn point_of(&mut self, src: &mut Source, interface: u32) -> u32 {
        let i = interface as usize;
        if let Some(Some(p)) = src.points.get(i) {
            return *p;
        }
        let info = src.src.interfaces().get(i);
        let ifname = info.map_or_else(|| format!("if{i}"), |f| f.name.clone());
        let (ifindex, netns) = info.map_or((None, None), |f| (f.ifindex, f.netns.clone()));
        let name = if src.name.is_empty() {
            ifname.clone()
        } else if i == 0 && ifname == "if0" {
            src.name.clone()
        } else {
            format!("{}/{}", src.name, ifname)
        };
        let point =
            Arc::new(CapturePoint { name, file: src.file.clone(), interface: ifname, mode: src.mode, ifindex, netns });
        let index = self.points.len() as u32;
        self.points.push(Arc::clone(&point));
        self.point_stats.push(PointStats {
            name: point.name.clone(),
            mode: point.mode,
            interface: point.interface.clone(),
            file: point.file.clone(),
            ifindex: point.ifindex,
            netns: point.netns.clone(),
            drops: BTreeMap::from([(drop_cause(point.mode), 0)]),
            ..PointStats::default()
        });
        self.engine.set_point(index, &point);
        if src.points.len() <= i {
            src.points.resize(i + 1, None);
        }
        src.points[i] = Some(index);
        index
    }

    fn count_error(&mut self, e: DecodeError) {
        if e == DecodeError::NotIp {
            self.summary.non_ip += 1;
            return;
        }
        let kind = e.kind();
        *self.summary.decode_errors.entry(kind).or_insert(0) += 1;
        if self.warned.insert(kind) {
            tracing::warn!(packet = self.summary.packets, error = %e, "undecodable packet (further ones of this kind are only counted)");
        }
    }

    fn on_packet(
        &mut self,
        point: u32,
        ts_ns: i64,
        linktype: u32,
        data: &[u8],
        orig_len: u32,
        direction: Option<Direction>,
    ) {
        // Times beyond ±73 years from 1970 ± 2^61 ns are corrupt headers;
        // keep them far from i64's ends so durations never overflow.
        let ts_ns = ts_ns.clamp(-(1 << 61), 1 << 61);
        self.summary.packets += 1;
        if let Some(c) = self.point_stats.get_mut(point as usize) {
            c.packets += 1;
            c.bytes += u64::from(orig_len);
        }
        self.last_ts_ns = self.last_ts_ns.max(ts_ns);
        self.summary.bytes += u64::from(orig_len);
        let Some(link) = LinkType::from_linktype(linktype) else {
            self.summary.unsupported_linktype += 1;
            return;
        };
        let p = match dissect_frame(link, data, orig_len) {
            Ok(p) => p,
            Err(e) => return self.count_error(e),
        };
        if p.ip.frag.is_none() {
            let info = PacketInfo { ts_ns, point, wire_len: orig_len, frames: 1, direction };
            self.engine.dispatch(info, &p);
            return;
        }
        if let Some(dg) = self.defrag.push(ts_ns, point, orig_len, &p) {
            self.dispatch_datagram(&dg);
        }
        if self.defrag.has_expired() {
            self.flush_partial_datagrams();
        }
    }

    fn dispatch_datagram(&mut self, dg: &Datagram) {
        match dissect_transport(&dg.base, &dg.data) {
            Ok(q) => self.engine.dispatch(dg.info(), &q),
            Err(e) => self.count_error(e),
        }
    }

    /// Incomplete datagrams given up by the reassembler still count in
    /// their flows, at the time of their last fragment.
    fn flush_partial_datagrams(&mut self) {
        for dg in self.defrag.take_expired() {
            self.dispatch_datagram(&dg);
        }
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Where a run writes and how it shards, common to replay and capture.
/// A started writer: the channel records go to, and the thread.
struct Writer {
    tx: Sender<Output>,
    handle: std::thread::JoinHandle<anyhow::Result<(SinkStats, SinkStats)>>,
}

/// With `metrics`, publishes rows, files and bytes after every batch.
/// With `upload`, every closed file is handed to the object-storage uploader.
fn start_writer(
    out_dir: &std::path::Path,
    run_id: &str,
    metrics: Option<&Arc<Metrics>>,
    upload: Option<&FileQueue>,
) -> anyhow::Result<Writer> {
    std::fs::create_dir_all(out_dir)?;
    let (tx, rx) = bounded::<Output>(64);
    let out_dir = out_dir.to_path_buf();
    let run_id = run_id.to_string();
    let mut publish = metrics.map(|m| SinkPublisher::new(Arc::clone(m)));
    let upload = upload.cloned();
    let handle = std::thread::Builder::new().name("flowtrail-writer".into()).spawn(
        move || -> anyhow::Result<(SinkStats, SinkStats)> {
            let mut flows = ParquetSink::<FlowRecord>::new(&out_dir, &run_id);
            let mut calls = ParquetSink::<CallRecord>::new(&out_dir, &run_id);
            if let Some(q) = upload {
                let q2 = q.clone();
                flows.set_on_close(move |p| q.push(p));
                calls.set_on_close(move |p| q2.push(p));
            }
            for out in rx {
                match out {
                    Output::Flows(r) => flows.write(r)?,
                    Output::Calls(r) => calls.write(r)?,
                }
                if let Some(p) = &mut publish {
                    p.publish(&flows.stats, &calls.stats);
                }
            }
            let (flows, calls) = (flows.close()?, calls.close()?);
            if let Some(p) = &mut publish {
                p.publish(&flows, &calls);
            }
            Ok((flows, calls))
        },
    )?;
    Ok(Writer { tx, handle })
}

/// An engine: the table inline (one worker) or N shard threads. With
/// `metrics`, each table publishes on every tick and when it flushes.
fn start_engine(
    workers: usize,
    flow: &FlowConfig,
    sink: Sender<Output>,
    metrics: Option<&Arc<Metrics>>,
) -> anyhow::Result<Engine> {
    let publisher = || metrics.map(|m| TablePublisher::new(Arc::clone(m)));
    if workers <= 1 {
        return Ok(Engine::Inline { table: Box::new(FlowTable::new(flow.clone())), sink, metrics: publisher() });
    }
    let (recycle_tx, recycle_rx) = bounded(workers * 8);
    let mut txs = Vec::new();
    let mut handles = Vec::new();
    for i in 0..workers {
        let (tx, rx) = bounded(16);
        let (cfg, recycle, sink, metrics) = (flow.clone(), recycle_tx.clone(), sink.clone(), publisher());
        handles.push(
            std::thread::Builder::new()
                .name(format!("flowtrail-shard-{i}"))
                .spawn(move || worker(cfg, rx, recycle, sink, metrics))?,
        );
        txs.push(tx);
    }
    Ok(Engine::Sharded {
        txs,
        batches: (0..workers).map(|_| Batch::default()).collect(),
        recycle: recycle_rx,
        handles,
        copy_payload: flow.l7.is_some(),
    })
}

fn new_reader(engine: Engine, defrag: &DefragConfig, workers: usize) -> Reader {
    Reader {
        engine,
        defrag: Defragmenter::new(defrag.clone()),
        summary: RunSummary { workers, ..RunSummary::default() },
        points: Vec::new(),
        point_stats: Vec::new(),
        warned: std::collections::HashSet::new(),
        last_ts_ns: i64::MIN,
    }
}

/// Ends a reader: flushes reassembly and tables; returns its summary
/// (sink counters not included).
fn finish_reader(mut reader: Reader) -> RunSummary {
    reader.defrag.finish();
    reader.flush_partial_datagrams();
    let Reader { engine, defrag, mut summary, last_ts_ns, point_stats, .. } = reader;
    for p in &point_stats {
        add_point(&mut summary.points, p);
    }
    summary.defrag = defrag.stats;
    (summary.flows, summary.l7) = engine.finish(last_ts_ns);
    summary
}

/// Replays the inputs into `out_dir`. Returns an error only when the run
/// could not start (an input that does not open, an unwritable output);
/// inputs that end early are listed in `RunSummary::input_errors` after
/// every record built from them was written.
pub fn replay(opts: &ReplayOptions) -> anyhow::Result<RunSummary> {
    replay_with(opts, None)
}

/// [`replay`], handing every closed file to `upload` (`-o s3://…`).
pub fn replay_with(opts: &ReplayOptions, upload: Option<&FileQueue>) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let mut sources = Vec::new();
    for input in &opts.inputs {
        let src = PcapFileSource::open(&input.path)?;
        let file = file_name(&input.path);
        sources.push(Source {
            src: Box::new(src),
            name: input.point.clone().unwrap_or_else(|| file.clone()),
            file,
            mode: "file",
            points: Vec::new(),
            head: None,
            done: false,
        });
    }
    let workers = opts.workers.max(1);
    let writer = start_writer(&opts.out_dir, &opts.run_id, None, upload)?;
    let mut reader = new_reader(start_engine(workers, &opts.flow, writer.tx, None)?, &opts.defrag, workers);

    let total_bytes: u64 = sources.iter().filter_map(|s| s.src.progress().1).sum();
    let bar = (opts.progress && std::io::stderr().is_terminal() && total_bytes > 32 << 20).then(|| {
        let bar = indicatif::ProgressBar::new(total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bar:40} {percent}% {msg} eta {eta}",
            )
            .expect("valid template"),
        );
        bar
    });
    let mut since_tick = 0u32;
    let tick = |sources: &[Source], packets: u64| {
        if let Some(b) = &bar {
            b.set_position(sources.iter().map(|s| s.src.progress().0).sum());
            b.set_message(format!("{packets} packets"));
        }
    };

    if sources.len() == 1 {
        // One source: packets go straight from the reader's buffer.
        let mut src = sources.pop().expect("one source");
        loop {
            match src.src.next_packet() {
                Ok(Some(p)) => {
                    if let Some(Some(point)) = src.points.get(p.interface as usize) {
                        reader.on_packet(*point, p.ts_ns, p.linktype, p.data, p.orig_len, p.direction);
                    } else {
                        // First packet of an interface (rare): copy it so
                        // the source can be asked for the interface's name.
                        let (iface, ts, lt, orig, dir, data) =
                            (p.interface, p.ts_ns, p.linktype, p.orig_len, p.direction, p.data.to_vec());
                        let point = reader.point_of(&mut src, iface);
                        reader.on_packet(point, ts, lt, &data, orig, dir);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    reader.summary.input_errors.push(e.to_string());
                    break;
                }
            }
            since_tick += 1;
            if since_tick >= 1 << 16 {
                since_tick = 0;
                tick(std::slice::from_ref(&src), reader.summary.packets);
            }
        }
        add_capture_stats(&mut reader.summary.capture, &src.src.stats());
        file_point_drops(&mut reader, &src);
        sources.push(src);
    } else {
        merge_sources(&mut sources, &mut reader, &mut |s, r| {
            since_tick += 1;
            if since_tick >= 1 << 16 {
                since_tick = 0;
                tick(s, r.summary.packets);
            }
        });
        for s in &sources {
            add_capture_stats(&mut reader.summary.capture, &s.src.stats());
            file_point_drops(&mut reader, s);
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut summary = finish_reader(reader);
    (summary.sink, summary.calls) = writer.handle.join().expect("writer thread panicked")?;
    if let Some(cfg) = &opts.nat {
        // A pass over the records just written (see `nat`): the same code
        // and the same links as `flowtrail correlate` on this directory.
        let dirs = [opts.out_dir.clone()];
        let (stats, sink) =
            crate::nat::read::correlate_dirs(&dirs, Some(&opts.run_id), cfg, &opts.out_dir, &opts.run_id)?;
        summary.nat = Some(stats);
        summary.nat_paths = sink;
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// A file's drops by interface (pcapng statistics blocks) on its points.
fn file_point_drops(reader: &mut Reader, s: &Source) {
    for (i, point) in s.points.iter().enumerate() {
        let (Some(point), Some(d)) = (point, s.src.interface_dropped(i as u32)) else { continue };
        if let Some(p) = reader.point_stats.get_mut(*point as usize) {
            *p.drops.entry(drop_cause(p.mode)).or_insert(0) += d;
        }
    }
}

/// A live source's counters (one interface per source) on its point.
fn live_point_drops(reader: &mut Reader, s: &Source, stats: &CaptureStats) {
    let Some(Some(point)) = s.points.first() else { return };
    if let Some(p) = reader.point_stats.get_mut(*point as usize) {
        *p.drops.entry(drop_cause(p.mode)).or_insert(0) += stats.dropped;
        p.kernel_packets += stats.kernel_packets;
        p.ring_freezes += stats.freeze_count;
    }
}

fn add_capture_stats(t: &mut CaptureStats, s: &CaptureStats) {
    t.packets += s.packets;
    t.bytes += s.bytes;
    t.snapped += s.snapped;
    t.skipped_blocks += s.skipped_blocks;
    t.dropped += s.dropped;
    t.kernel_packets += s.kernel_packets;
    t.freeze_count += s.freeze_count;
}

/// Reads the next packet of a source into its head (a copy: the merge
/// holds one packet of every source at once).
fn refill(s: &mut Source, errors: &mut Vec<String>) {
    s.head = None;
    if s.done {
        return;
    }
    match s.src.next_packet() {
        Ok(Some(p)) => {
            let mut data = Vec::new();
            data.extend_from_slice(p.data);
            s.head = Some(Head {
                ts_ns: p.ts_ns,
                interface: p.interface,
                linktype: p.linktype,
                orig_len: p.orig_len,
                direction: p.direction,
                data,
            });
        }
        Ok(None) => s.done = true,
        Err(e) => {
            errors.push(e.to_string());
            s.done = true;
        }
    }
}

/// Several sources: always take the packet with the smallest timestamp
/// (ties go to the earlier source), as mergecap does.
fn merge_sources(sources: &mut [Source], reader: &mut Reader, tick: &mut dyn FnMut(&[Source], &Reader)) {
    for s in sources.iter_mut() {
        refill(s, &mut reader.summary.input_errors);
    }
    loop {
        let next = sources.iter().enumerate().filter_map(|(i, s)| s.head.as_ref().map(|h| (h.ts_ns, i))).min();
        let Some((_, i)) = next else { break };
        let head = sources[i].head.take().expect("chosen for its head");
        let point = reader.point_of(&mut sources[i], head.interface);
        reader.on_packet(point, head.ts_ns, head.linktype, &head.data, head.orig_len, head.direction);
        refill(&mut sources[i], &mut reader.summary.input_errors);
        tick(sources, reader);
    }
}
