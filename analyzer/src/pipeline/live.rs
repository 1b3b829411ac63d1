//! Live capture: the same pipeline fed from interfaces instead of files.
//!
//! One or more capture threads each poll their sources (AF_PACKET sockets
//! or eBPF rings) and run a [`Reader`] of their own. With AF_PACKET fanout,
//! every capture thread opens one socket per interface in the same fanout
//! group: the kernel's symmetric flow hash gives each thread whole flows,
//! so each thread keeps its own flow table, inline, with no locks and no
//! hand-off. With eBPF there is one ring per interface and one capture
//! thread that shards packets to worker threads as replay does.
//!
//! The main thread watches links (netlink): an interface that appears and
//! matches a pattern is opened by every capture thread within about a
//! second; one that disappears ends its sources cleanly. While the wire is
//! quiet, capture threads move their tables' clocks to the wall clock once
//! a second so idle flows still end. Stopping (SIGINT, SIGTERM,
//! `--duration`) flushes every flow and call and closes every file whole.

use flowtrail_capture::pcapng_writer::PcapngWriter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use flowtrail_capture::netdev::{self, LinkEvent, LinkWatcher};
use flowtrail_capture::{CaptureError, PacketSource, Polled};

use crate::metrics::{Metrics, ReaderPublisher, SourcePublisher};

use super::{
    add_capture_stats, add_point, finish_reader, live_point_drops, new_reader, start_engine, start_writer,
    DefragConfig, FlowConfig, Reader, RunSummary, Source,
};

/// An opened live source and the mode it captures with.
pub struct LiveSource {
    pub source: Box<dyn PacketSource + Send>,
    pub mode: &'static str,
}

/// Opens a source on an interface for capture thread `thread`.
pub type Opener = Arc<dyn Fn(&str, usize) -> Result<LiveSource, CaptureError> + Send + Sync>;

pub struct LiveOptions {
    /// Interface names or globs (`eth0`, `veth*`, `tap*`).
    pub patterns: Vec<String>,
    pub opener: Opener,
    /// Capture threads, each with its own sockets and table (AF_PACKET
    /// fanout); 1 for eBPF rings.
    pub capture_threads: usize,
    /// Worker shards behind each capture thread (1 = inline).
    pub shards: usize,
    pub out_dir: std::path::PathBuf,
    pub flow: FlowConfig,
    pub defrag: DefragConfig,
    pub run_id: String,
    /// Set to stop (signal handlers set it).
    pub stop: Arc<AtomicBool>,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// Correlate the run's records into `nat_paths` when it stops (the
    /// interfaces are the capture points).
    pub nat: Option<crate::nat::NatConfig>,
    /// Publish counters here while capturing (see [`crate::metrics`]);
    /// when `capture` returns they equal its summary.
    pub metrics: Option<Arc<Metrics>>,
    /// `--write-pcap DIR`: also keep the raw packets as rotating pcapng
    /// files there (one series per capture thread; one interface block per
    /// capture point), rotated past this many bytes.
    pub write_pcap: Option<(std::path::PathBuf, u64)>,
}

enum Control {
    Open(String),
}

fn wall_now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| netdev::matches(p, name))
}

/// Captures until stopped; returns the summary of every capture thread.
pub fn capture(opts: LiveOptions) -> anyhow::Result<RunSummary> {
    capture_with(opts, None)
}

/// [`capture`], handing every closed file to `upload` (`-o s3://…`).
pub fn capture_with(opts: LiveOptions, upload: Option<&crate::sink::object::FileQueue>) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let writer = start_writer(&opts.out_dir, &opts.run_id, opts.metrics.as_ref(), upload)?;
    // Subscribe before listing, so an interface that appears in between is not missed.
    let mut watcher = LinkWatcher::open()?;
    let initial: Vec<String> =
        watcher.devices().map(|d| d.name.clone()).filter(|n| matches_any(&opts.patterns, n)).collect();
    if initial.is_empty() {
        tracing::warn!(patterns = ?opts.patterns, "no interface matches yet; waiting for one to appear");
    }
    let threads = opts.capture_threads.max(1);
    let mut controls: Vec<Sender<Control>> = Vec::new();
    let mut handles = Vec::new();
    for t in 0..threads {
        let (tx, rx) = unbounded();
        for name in &initial {
            let _ = tx.send(Control::Open(name.clone()));
        }
        controls.push(tx);
        let engine = start_engine(opts.shards, &opts.flow, writer.tx.clone(), opts.metrics.as_ref())?;
        let reader = new_reader(engine, &opts.defrag, opts.shards.max(1));
        let (opener, stop, metrics) = (Arc::clone(&opts.opener), Arc::clone(&opts.stop), opts.metrics.clone());
        let pcap = match &opts.write_pcap {
            Some((dir, max)) => Some(PcapngWriter::new(dir, &format!("{}-t{t}", opts.run_id), *max)?),
            None => None,
        };
        handles.push(
            std::thread::Builder::new()
                .name(format!("flowtrail-capture-{t}"))
                .spawn(move || capture_thread(t, reader, &opener, &rx, &stop, metrics.as_ref(), pcap))?,
        );
    }
    drop(writer.tx);
    let deadline = opts.duration.map(|d| started + d);
    let mut open: std::collections::BTreeSet<String> = initial.into_iter().collect();
    while !opts.stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        match watcher.poll(Duration::from_millis(200)) {
            Ok(events) => {
                for e in events {
                    match e {
                        LinkEvent::Added(dev) if matches_any(&opts.patterns, &dev.name) => {
                            if open.insert(dev.name.clone()) {
                                tracing::info!(interface = %dev.name, "interface appeared: capturing");
                                for c in &controls {
                                    let _ = c.send(Control::Open(dev.name.clone()));
                                }
                            }
                        }
                        LinkEvent::Removed(dev) => {
                            if open.remove(&dev.name) {
                                tracing::info!(interface = %dev.name, "interface disappeared");
                            }
                        }
                        LinkEvent::Added(_) => {}
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "link watcher failed; no more interfaces will be picked up");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    opts.stop.store(true, Ordering::Relaxed);
    drop(controls);
    let mut total = RunSummary { workers: threads * opts.shards.max(1), ..RunSummary::default() };
    for h in handles {
        let s = h.join().expect("capture thread panicked");
        merge_summary(&mut total, &s);
    }
    (total.sink, total.calls) = writer.handle.join().expect("writer thread panicked")?;
    if let Some(cfg) = &opts.nat {
        let dirs = [opts.out_dir.clone()];
        let (stats, sink) =
            crate::nat::read::correlate_dirs(&dirs, Some(&opts.run_id), cfg, &opts.out_dir, &opts.run_id)?;
        total.nat = Some(stats);
        total.nat_paths = sink;
        if let Some(m) = &opts.metrics {
            m.add_nat_paths(&total.nat_paths);
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

fn merge_summary(t: &mut RunSummary, s: &RunSummary) {
    t.pcap_files += s.pcap_files;
    t.pcap_packets += s.pcap_packets;
    t.pcap_bytes += s.pcap_bytes;
    t.packets += s.packets;
    t.bytes += s.bytes;
    t.non_ip += s.non_ip;
    for (k, v) in &s.decode_errors {
        *t.decode_errors.entry(k).or_insert(0) += v;
    }
    t.unsupported_linktype += s.unsupported_linktype;
    let (d, e) = (&mut t.defrag, &s.defrag);
    d.fragments += e.fragments;
    d.reassembled += e.reassembled;
    d.timed_out += e.timed_out;
    d.dropped_limit += e.dropped_limit;
    d.overlaps += e.overlaps;
    d.malformed += e.malformed;
    d.partial_delivered += e.partial_delivered;
    super::add_table_stats(&mut t.flows, &s.flows);
    super::add_l7_stats(&mut t.l7, &s.l7);
    add_capture_stats(&mut t.capture, &s.capture);
    for p in &s.points {
        add_point(&mut t.points, p);
    }
    t.input_errors.extend(s.input_errors.iter().cloned());
}

/// Packets polled from one source before moving to the next.
const ROUND: usize = 512;

fn capture_thread(
    thread: usize,
    mut reader: Reader,
    opener: &Opener,
    control: &Receiver<Control>,
    stop: &AtomicBool,
    metrics: Option<&Arc<Metrics>>,
    mut pcap: Option<PcapngWriter>,
) -> RunSummary {
    // Each source with the publisher of its drops.
    let mut sources: Vec<(Source, Option<SourcePublisher>)> = Vec::new();
    let mut publisher = metrics.map(|m| ReaderPublisher::new(Arc::clone(m)));
    let publish = |p: &mut Option<ReaderPublisher>, s: &RunSummary, defrag_dropped: u64| {
        if let Some(p) = p {
            p.publish(s.non_ip, s.unsupported_linktype, &s.decode_errors, defrag_dropped);
        }
    };
    let mut last_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        while let Ok(Control::Open(name)) = control.try_recv() {
            match opener(&name, thread) {
                Ok(ls) => {
                    let mut src = Source {
                        src: ls.source,
                        name: String::new(),
                        file: String::new(),
                        mode: ls.mode,
                        points: Vec::new(),
                        head: None,
                        done: false,
                    };
                    // Declared now, so the summary lists the interface
                    // even if no packet ever comes.
                    for i in 0..src.src.interfaces().len() {
                        reader.point_of(&mut src, i as u32);
                    }
                    sources.push((src, metrics.map(|m| SourcePublisher::new(m, &name, ls.mode))));
                }
                Err(e) => {
                    tracing::warn!(interface = %name, error = %e, "cannot capture on interface");
                    reader.summary.input_errors.push(format!("{name}: {e}"));
                }
            }
        }
        // One source: wait in its poll; several: visit each without waiting.
        let wait = if sources.len() == 1 { Duration::from_millis(50) } else { Duration::ZERO };
        let mut got = 0;
        let mut i = 0;
        while i < sources.len() {
            let (n, ended) = poll_source(&mut reader, &mut sources[i].0, wait, publisher.as_mut(), &mut pcap);
            got += n;
            if ended {
                let (s, drops) = sources.remove(i);
                end_source(&mut reader, &s, drops);
            } else {
                i += 1;
            }
        }
        if got > 0 {
            publish(&mut publisher, &reader.summary, reader.defrag.stats.dropped_limit);
        }
        if sources.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        } else if got == 0 && sources.len() > 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            reader.engine.tick(wall_now_ns());
            for (s, drops) in &mut sources {
                if let Some(d) = drops {
                    d.publish(&s.src.stats());
                }
            }
        }
    }
    for (s, drops) in sources {
        end_source(&mut reader, &s, drops);
    }
    if let Some(w) = pcap {
        match w.finish() {
            Ok((files, packets, bytes)) => {
                reader.summary.pcap_files += files;
                reader.summary.pcap_packets += packets;
                reader.summary.pcap_bytes += bytes;
            }
            Err(e) => reader.summary.input_errors.push(format!("--write-pcap: {e}")),
        }
    }
    let summary = finish_reader(reader);
    publish(&mut publisher, &summary, summary.defrag.dropped_limit);
    summary
}

/// Counts an ended source's stats in the summary (run-wide and on its
/// capture point), and publishes the same.
fn end_source(reader: &mut Reader, s: &Source, drops: Option<SourcePublisher>) {
    let stats = s.src.stats();
    add_capture_stats(&mut reader.summary.capture, &stats);
    live_point_drops(reader, s, &stats);
    if let Some(mut d) = drops {
        d.publish(&stats);
    }
}

/// Writes a packet to the `--write-pcap` files; on an error (disk full…)
/// says so once, in the log and the summary, and stops writing.
fn keep_raw(
    pcap: &mut Option<PcapngWriter>,
    reader: &mut Reader,
    point: u32,
    p: &flowtrail_capture::RawPacket<'_>,
    data: &[u8],
) {
    let Some(w) = pcap else { return };
    let name = reader.points.get(point as usize).map_or("", |pt| pt.name.as_str());
    if let Err(e) = w.write(point, name, p.linktype, p.ts_ns, data, p.orig_len) {
        tracing::warn!(error = %e, "--write-pcap failed: no more packets are kept");
        reader.summary.input_errors.push(format!("--write-pcap: {e}"));
        if let Some(w) = pcap.take() {
            if let Ok((files, packets, bytes)) = w.finish() {
                reader.summary.pcap_files += files;
                reader.summary.pcap_packets += packets;
                reader.summary.pcap_bytes += bytes;
            }
        }
    }
}

/// Polls up to [`ROUND`] packets of a source. Returns how many came and
/// whether the source ended (stopped, or its interface is gone).
/// With `tally`, counts each packet for its capture point's metrics.
fn poll_source(
    reader: &mut Reader,
    src: &mut Source,
    wait: Duration,
    mut tally: Option<&mut ReaderPublisher>,
    pcap: &mut Option<PcapngWriter>,
) -> (usize, bool) {
    let mut n = 0;
    while n < ROUND {
        match src.src.poll_packet(wait) {
            Ok(Polled::Packet(p)) => {
                n += 1;
                let (point, orig) = if let Some(Some(point)) = src.points.get(p.interface as usize) {
                    keep_raw(pcap, reader, *point, &p, p.data);
                    reader.on_packet(*point, p.ts_ns, p.linktype, p.data, p.orig_len, p.direction);
                    (*point, p.orig_len)
                } else {
                    let (iface, ts, lt, orig, data) = (p.interface, p.ts_ns, p.linktype, p.orig_len, p.data.to_vec());
                    let dir = p.direction;
                    let point = reader.point_of(src, iface);
                    let raw = flowtrail_capture::RawPacket {
                        ts_ns: ts,
                        interface: iface,
                        linktype: lt,
                        data: &data,
                        orig_len: orig,
                        direction: dir,
                    };
                    keep_raw(pcap, reader, point, &raw, &data);
                    reader.on_packet(point, ts, lt, &data, orig, dir);
                    (point, orig)
                };
                if let Some(t) = tally.as_deref_mut() {
                    t.packet(point, &reader.points[point as usize], orig);
                }
            }
            Ok(Polled::Idle { .. }) => return (n, false),
            Ok(Polled::End) | Err(CaptureError::InterfaceGone { .. }) => return (n, true),
            Err(e) => {
                tracing::warn!(error = %e, "capture source failed");
                reader.summary.input_errors.push(e.to_string());
                return (n, true);
            }
        }
    }
    (n, false)
}
