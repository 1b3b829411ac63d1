//! Prometheus metrics for live capture (`flowtrail capture --metrics-addr`).
//!
//! [`Metrics`] is a set of atomics shared as `Arc<Metrics>`. The threads
//! that already compute the run summary publish into it, never per packet
//! with a lock:
//!
//! - capture threads count packets and bytes per capture point in a plain
//!   local vector and publish it after each polling round (at most 512
//!   packets), with decoder errors; each source's kernel or ring drops are
//!   published once a second (one `getsockopt` / map read per source);
//! - flow tables (inline or shard threads) publish flows started, active
//!   flows and L7 errors on each clock tick (once a second) and when they
//!   flush at the end;
//! - the writer thread publishes rows, files and bytes after each batch;
//!   NAT paths are published when the run correlates them at its end.
//!
//! Each publisher keeps what it published last and adds the difference, so
//! once [`crate::pipeline::capture`] returns, every counter equals the same
//! figure of the returned [`RunSummary`](crate::pipeline::RunSummary).
//! Registering a new label set (a capture point, a decoder error kind)
//! takes a mutex; that happens once per label set, or when an error count
//! changes.
//!
//! [`serve`] answers `GET /metrics` in the Prometheus text exposition
//! format (version 0.0.4) with a tiny HTTP/1.1 responder on one std thread:
//! one endpoint, scraped every few seconds, one request per connection.
//! An HTTP framework would bring an async runtime and dozens of crates into
//! a binary whose capture path has neither, for no gain at this load.
//!
//! Drop causes, and what has none: `kernel` is AF_PACKET's `tp_drops`
//! (ring full), `ebpf_ring_full` the TC/XDP programs' ring-full count.
//! Ring freezes are events, not packets: `flowtrail_capture_ring_freezes_total`.
//! Queues between threads never drop: they are bounded and block, so a
//! slow consumer shows up as kernel or ring drops. What analysis gives up
//! at its caps is `flowtrail_analysis_dropped_total{cause}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flowtrail_capture::CaptureStats;
use flowtrail_decoders::l7::L7Protocol;

use crate::flow::{CapturePoint, FlowTable, TableStats};
use crate::sink::SinkStats;

/// Kinds of records, in the order of the per-kind arrays.
pub const KINDS: [&str; 3] = ["flows", "calls", "nat_paths"];
const FLOWS: usize = 0;
const CALLS: usize = 1;
const NAT_PATHS: usize = 2;

/// Drop causes a capture source reports, by capture mode.
const CAUSES: [&str; 2] = ["kernel", "ebpf_ring_full"];
const PROTOCOLS: [&str; 4] = ["tcp", "udp", "icmp", "other"];

fn cause_of(mode: &str) -> usize {
    usize::from(matches!(mode, "tc" | "xdp"))
}

/// The counters of one capture point (an interface, for live capture).
#[derive(Debug, Default)]
pub struct PointCounters {
    pub packets: AtomicU64,
    /// Bytes on the wire (the frames' original lengths).
    pub bytes: AtomicU64,
    /// By [`CAUSES`].
    dropped: [AtomicU64; CAUSES.len()],
    pub ring_freezes: AtomicU64,
    /// Bit i: cause i applies to this point (its capture mode).
    causes: AtomicU8,
}

/// Every metric of a run; see the module doc.
#[derive(Debug, Default)]
pub struct Metrics {
    points: Mutex<BTreeMap<String, Arc<PointCounters>>>,
    /// Flows started, by [`PROTOCOLS`].
    flows: [AtomicU64; 4],
    flows_active: AtomicI64,
    records: [AtomicU64; 3],
    files: [AtomicU64; 3],
    file_bytes: [AtomicU64; 3],
    non_ip: AtomicU64,
    unsupported_linktype: AtomicU64,
    untracked_packets: AtomicU64,
    defrag_dropped: AtomicU64,
    stream_limit_hits: AtomicU64,
    /// (protocol, kind) → count.
    decoder_errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The counters of a capture point, registered on first use; `mode` is
    /// its capture mode (`afpacket`, `tc`, `xdp`), which says its drop cause.
    pub fn point(&self, name: &str, mode: &str) -> Arc<PointCounters> {
        let mut points = self.points.lock().unwrap_or_else(PoisonError::into_inner);
        let p = Arc::clone(points.entry(name.to_string()).or_default());
        p.causes.fetch_or(1 << cause_of(mode), Relaxed);
        p
    }

    fn add_decoder_errors(&self, deltas: &[(&'static str, u64)]) {
        if deltas.is_empty() {
            return;
        }
        let mut m = self.decoder_errors.lock().unwrap_or_else(PoisonError::into_inner);
        for (kind, d) in deltas {
            *m.entry(split_error(kind)).or_insert(0) += d;
        }
    }

    fn add_sink(&self, kind: usize, now: &SinkStats, last: &mut SinkStats) {
        self.records[kind].fetch_add(now.rows - last.rows, Relaxed);
        self.files[kind].fetch_add(now.files - last.files, Relaxed);
        self.file_bytes[kind].fetch_add(now.bytes - last.bytes, Relaxed);
        last.clone_from(now);
    }

    /// Records of the NAT path pass, written when the run ends.
    pub fn add_nat_paths(&self, s: &SinkStats) {
        self.add_sink(NAT_PATHS, s, &mut SinkStats::default());
    }

    /// The Prometheus text exposition format (version 0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        let mut e = Exposition::default();
        let points: Vec<(String, Arc<PointCounters>)> = self
            .points
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        let per_point = |e: &mut Exposition, name, help, f: &dyn Fn(&PointCounters) -> u64| {
            e.family(name, "counter", help);
            for (p, c) in &points {
                e.sample(name, &[("point", p)], f(c));
            }
        };
        per_point(&mut e, "flowtrail_capture_packets_total", "Packets captured, by capture point.", &|c| {
            c.packets.load(Relaxed)
        });
        per_point(
            &mut e,
            "flowtrail_capture_bytes_total",
            "Bytes captured (frames' lengths on the wire), by capture point.",
            &|c| c.bytes.load(Relaxed),
        );
        let name = "flowtrail_capture_packets_dropped_total";
        e.family(
            name,
            "counter",
            "Packets the capture layer dropped, by capture point and cause \
             (kernel: AF_PACKET ring full; ebpf_ring_full: TC/XDP ring full).",
        );
        for (p, c) in &points {
            let causes = c.causes.load(Relaxed);
            for (i, cause) in CAUSES.iter().enumerate() {
                if causes & (1 << i) != 0 {
                    e.sample(name, &[("point", p), ("cause", cause)], c.dropped[i].load(Relaxed));
                }
            }
        }
        per_point(
            &mut e,
            "flowtrail_capture_ring_freezes_total",
            "Times an AF_PACKET ring froze because user space held every block, by capture point.",
            &|c| c.ring_freezes.load(Relaxed),
        );
        let name = "flowtrail_analysis_dropped_total";
        e.family(
            name,
            "counter",
            "What analysis gave up at its caps: packets of flows the full flow table refused \
             (flow_table_full), IP fragments over the reassembly limits (defrag_limit), \
             TCP streams that hit the reassembly buffer limit (stream_limit).",
        );
        e.sample(name, &[("cause", "flow_table_full")], self.untracked_packets.load(Relaxed));
        e.sample(name, &[("cause", "defrag_limit")], self.defrag_dropped.load(Relaxed));
        e.sample(name, &[("cause", "stream_limit")], self.stream_limit_hits.load(Relaxed));
        let name = "flowtrail_non_ip_frames_total";
        e.family(name, "counter", "Frames that carry no IP packet (ARP, LLDP, ...).");
        e.sample(name, &[], self.non_ip.load(Relaxed));
        let name = "flowtrail_flows_active";
        e.family(name, "gauge", "Flows held in the flow tables now.");
        e.sample(name, &[], self.flows_active.load(Relaxed));
        let name = "flowtrail_flows_total";
        e.family(name, "counter", "Flows started, by transport protocol.");
        for (i, p) in PROTOCOLS.iter().enumerate() {
            e.sample(name, &[("protocol", p)], self.flows[i].load(Relaxed));
        }
        let per_kind = |e: &mut Exposition, name, help, a: &[AtomicU64; 3]| {
            e.family(name, "counter", help);
            for (i, k) in KINDS.iter().enumerate() {
                e.sample(name, &[("kind", k)], a[i].load(Relaxed));
            }
        };
        per_kind(&mut e, "flowtrail_records_written_total", "Records written to Parquet, by kind.", &self.records);
        per_kind(
            &mut e,
            "flowtrail_parquet_files_written_total",
            "Parquet files completed (closed and renamed into place), by kind.",
            &self.files,
        );
        per_kind(
            &mut e,
            "flowtrail_parquet_bytes_written_total",
            "Bytes of completed Parquet files, by kind.",
            &self.file_bytes,
        );
        let name = "flowtrail_decoder_errors_total";
        e.family(
            name,
            "counter",
            "Undecodable packets (wire protocols) and messages (L7 protocols), by protocol and kind.",
        );
        let mut errors: BTreeMap<(&str, &str), u64> =
            self.decoder_errors.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let linktype = self.unsupported_linktype.load(Relaxed);
        if linktype > 0 {
            *errors.entry(("link", "unsupported_linktype")).or_insert(0) += linktype;
        }
        for ((protocol, kind), v) in errors {
            e.sample(name, &[("protocol", protocol), ("kind", kind)], v);
        }
        e.out
    }
}

/// Splits an error kind of the summary (`truncated_ipv4`, `http_chunk_size`,
/// `too_large`) into the protocol it concerns and what went wrong.
fn split_error(kind: &'static str) -> (&'static str, &'static str) {
    for what in ["truncated", "malformed"] {
        if let Some(proto) = kind.strip_prefix(what).and_then(|r| r.strip_prefix('_')) {
            return (proto, what);
        }
    }
    // L7 kinds start with their protocol's name: the longest that fits
    // (`http2_...` is HTTP/2's, not HTTP's).
    let l7 = L7Protocol::ALL
        .iter()
        .map(|p| p.as_str())
        .filter(|p| kind.len() > p.len() && kind.starts_with(p) && kind.as_bytes()[p.len()] == b'_')
        .max_by_key(|p| p.len());
    if let Some(p) = l7 {
        return (p, &kind[p.len() + 1..]);
    }
    match kind {
        // L7 limits, whatever the protocol.
        "too_large" | "too_many_pending" => ("l7", kind),
        // Wire: `DecodeError::Unsupported` (`gre_version`, `mpls_non_ip`).
        _ => kind.split_once('_').unwrap_or(("wire", kind)),
    }
}

/// Builds the text exposition format.
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Publishes a capture thread's counters: packets and bytes per capture
/// point (tallied locally per packet, published per round), decoder errors,
/// non-IP frames, fragments over limits.
pub(crate) struct ReaderPublisher {
    m: Arc<Metrics>,
    /// By the reader's point index: the point's counters and what was
    /// tallied since the last publish.
    points: Vec<Option<(Arc<PointCounters>, u64, u64)>>,
    last_errors: BTreeMap<&'static str, u64>,
    last_non_ip: u64,
    last_linktype: u64,
    last_defrag: u64,
}

impl ReaderPublisher {
    pub(crate) fn new(m: Arc<Metrics>) -> Self {
        ReaderPublisher {
            m,
            points: Vec::new(),
            last_errors: BTreeMap::new(),
            last_non_ip: 0,
            last_linktype: 0,
            last_defrag: 0,
        }
    }

    /// One packet of the reader's point `index` (a vector slot, no lock).
    #[inline]
    pub(crate) fn packet(&mut self, index: u32, point: &CapturePoint, wire_len: u32) {
        let i = index as usize;
        if let Some(Some((_, p, b))) = self.points.get_mut(i) {
            *p += 1;
            *b += u64::from(wire_len);
            return;
        }
        if self.points.len() <= i {
            self.points.resize(i + 1, None);
        }
        self.points[i] = Some((self.m.point(&point.name, point.mode), 1, u64::from(wire_len)));
    }

    /// Publishes what was tallied, and the reader's counters (`non_ip`,
    /// `unsupported_linktype`, `decode_errors` of its summary; fragments
    /// dropped at the limits).
    pub(crate) fn publish(
        &mut self,
        non_ip: u64,
        unsupported_linktype: u64,
        errors: &BTreeMap<&'static str, u64>,
        defrag_dropped: u64,
    ) {
        for (c, p, b) in self.points.iter_mut().flatten() {
            if *p > 0 {
                c.packets.fetch_add(std::mem::take(p), Relaxed);
                c.bytes.fetch_add(std::mem::take(b), Relaxed);
            }
        }
        self.m.non_ip.fetch_add(non_ip - self.last_non_ip, Relaxed);
        self.last_non_ip = non_ip;
        self.m.unsupported_linktype.fetch_add(unsupported_linktype - self.last_linktype, Relaxed);
        self.last_linktype = unsupported_linktype;
        self.m.defrag_dropped.fetch_add(defrag_dropped - self.last_defrag, Relaxed);
        self.last_defrag = defrag_dropped;
        publish_map(&self.m, errors, &mut self.last_errors);
    }
}

fn publish_map(m: &Metrics, now: &BTreeMap<&'static str, u64>, last: &mut BTreeMap<&'static str, u64>) {
    let deltas: Vec<(&'static str, u64)> = now
        .iter()
        .filter_map(|(k, v)| {
            let d = v - last.get(k).copied().unwrap_or(0);
            (d > 0).then_some((*k, d))
        })
        .collect();
    if !deltas.is_empty() {
        m.add_decoder_errors(&deltas);
        last.clone_from(now);
    }
}

/// Publishes one live source's drops and ring freezes.
pub(crate) struct SourcePublisher {
    point: Arc<PointCounters>,
    cause: usize,
    last: CaptureStats,
}

impl SourcePublisher {
    /// A source capturing on interface `name` in `mode`.
    pub(crate) fn new(m: &Metrics, name: &str, mode: &str) -> Self {
        SourcePublisher { point: m.point(name, mode), cause: cause_of(mode), last: CaptureStats::default() }
    }

    /// `now` is the source's accumulated stats.
    pub(crate) fn publish(&mut self, now: &CaptureStats) {
        self.point.dropped[self.cause].fetch_add(now.dropped - self.last.dropped, Relaxed);
        self.point.ring_freezes.fetch_add(now.freeze_count - self.last.freeze_count, Relaxed);
        self.last = *now;
    }
}

/// Publishes one flow table's flows, active flows and L7 errors.
pub(crate) struct TablePublisher {
    m: Arc<Metrics>,
    last: TableStats,
    last_active: i64,
    last_limit_hits: u64,
    last_errors: BTreeMap<&'static str, u64>,
}

impl TablePublisher {
    pub(crate) fn new(m: Arc<Metrics>) -> Self {
        TablePublisher {
            m,
            last: TableStats::default(),
            last_active: 0,
            last_limit_hits: 0,
            last_errors: BTreeMap::new(),
        }
    }

    pub(crate) fn publish(&mut self, table: &FlowTable) {
        let (s, m) = (&table.stats, &self.m);
        let flows = [s.flows_tcp, s.flows_udp, s.flows_icmp, s.flows_other];
        let last = [self.last.flows_tcp, self.last.flows_udp, self.last.flows_icmp, self.last.flows_other];
        for ((counter, now), last) in m.flows.iter().zip(flows).zip(last) {
            counter.fetch_add(now - last, Relaxed);
        }
        m.untracked_packets.fetch_add(s.untracked_packets - self.last.untracked_packets, Relaxed);
        self.last = s.clone();
        let active = table.len() as i64;
        m.flows_active.fetch_add(active - self.last_active, Relaxed);
        self.last_active = active;
        let hits = table.l7_stats.stream.limit_hits;
        m.stream_limit_hits.fetch_add(hits - self.last_limit_hits, Relaxed);
        self.last_limit_hits = hits;
        publish_map(m, &table.l7_stats.errors, &mut self.last_errors);
    }
}

/// Publishes the writer's flow and call sinks.
pub(crate) struct SinkPublisher {
    m: Arc<Metrics>,
    last: [SinkStats; 2],
}

impl SinkPublisher {
    pub(crate) fn new(m: Arc<Metrics>) -> Self {
        SinkPublisher { m, last: Default::default() }
    }

    pub(crate) fn publish(&mut self, flows: &SinkStats, calls: &SinkStats) {
        self.m.add_sink(FLOWS, flows, &mut self.last[0]);
        self.m.add_sink(CALLS, calls, &mut self.last[1]);
    }
}

/// Largest request head read; a longer one is answered 431.
const MAX_REQUEST_HEAD: usize = 8192;

/// Serves `GET /metrics` on `addr` from a thread of its own, for the life
/// of the process. Returns the address bound (port 0 picks a free one).
pub fn serve(addr: impl ToSocketAddrs, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("flowtrail-metrics".into()).spawn(move || {
        for conn in listener.incoming() {
            match conn {
                Ok(s) => {
                    if let Err(e) = respond(s, &metrics) {
                        tracing::debug!(error = %e, "metrics request failed");
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: do not spin.
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    })?;
    Ok(local)
}

/// One request, one response, then the connection closes.
fn respond(mut s: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    // A client that stalls cannot hold the only serving thread for long.
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = vec![0u8; MAX_REQUEST_HEAD];
    let mut n = 0;
    let head_end = loop {
        if let Some(i) = find(&buf[..n], b"\r\n\r\n").or_else(|| find(&buf[..n], b"\n\n")) {
            break i;
        }
        if n == buf.len() {
            reply(&mut s, "431 Request Header Fields Too Large", "", "request head too large\n", false)?;
            // Read a little of the rest: closing with unread bytes would
            // reset the connection and could lose the answer.
            s.shutdown(std::net::Shutdown::Write)?;
            s.set_read_timeout(Some(Duration::from_millis(200)))?;
            let _ = std::io::copy(&mut (&mut s).take(64 << 10), &mut std::io::sink());
            return Ok(());
        }
        let r = s.read(&mut buf[n..])?;
        if r == 0 {
            if n == 0 {
                return Ok(());
            }
            break n;
        }
        n += r;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next()) else {
        return reply(&mut s, "400 Bad Request", "", "bad request line\n", false);
    };
    if !version.starts_with("HTTP/1.") {
        return reply(&mut s, "400 Bad Request", "", "HTTP/1.x only\n", false);
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != "/metrics" {
        return reply(&mut s, "404 Not Found", "", "not found: try /metrics\n", false);
    }
    match method {
        "GET" => reply(&mut s, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &metrics.render(), false),
        "HEAD" => reply(&mut s, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &metrics.render(), true),
        _ => reply(&mut s, "405 Method Not Allowed", "", "GET or HEAD\n", false),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reply(s: &mut TcpStream, status: &str, content_type: &str, body: &str, head_only: bool) -> std::io::Result<()> {
    let content_type = if content_type.is_empty() { "text/plain; charset=utf-8" } else { content_type };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    s.write_all(out.as_bytes())?;
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(text: &str) -> Vec<(&str, &str)> {
        text.lines().filter(|l| !l.starts_with('#')).map(|l| l.rsplit_once(' ').expect("name value")).collect()
    }

    #[test]
    fn exposition_escapes_label_values_and_declares_every_family() {
        let m = Metrics::new();
        let odd = m.point("we\"ird\\if\nx", "afpacket");
        odd.packets.fetch_add(3, Relaxed);
        odd.bytes.fetch_add(180, Relaxed);
        m.point("veth0", "tc").packets.fetch_add(5, Relaxed);
        // Fanout: a second thread registers the same point: same counters.
        m.point("veth0", "tc").packets.fetch_add(2, Relaxed);
        m.add_decoder_errors(&[("truncated_ipv4", 2), ("http2_hpack_index", 1), ("http_chunk_size", 4)]);
        m.add_decoder_errors(&[("truncated_ipv4", 1), ("too_large", 1), ("gre_version", 1)]);
        let text = m.render();
        assert!(
            text.contains("flowtrail_capture_packets_total{point=\"we\\\"ird\\\\if\\nx\"} 3\n"),
            "quote, backslash and newline escaped:\n{text}"
        );
        assert!(text.contains("flowtrail_capture_packets_total{point=\"veth0\"} 7\n"));
        assert!(text.contains("flowtrail_capture_packets_dropped_total{point=\"veth0\",cause=\"ebpf_ring_full\"} 0\n"));
        assert!(
            text.contains("flowtrail_capture_packets_dropped_total{point=\"we\\\"ird\\\\if\\nx\",cause=\"kernel\"} 0")
        );
        for (labels, v) in [
            ("protocol=\"ipv4\",kind=\"truncated\"", 3),
            ("protocol=\"http2\",kind=\"hpack_index\"", 1),
            ("protocol=\"http\",kind=\"chunk_size\"", 4),
            ("protocol=\"l7\",kind=\"too_large\"", 1),
            ("protocol=\"gre\",kind=\"version\"", 1),
        ] {
            assert!(text.contains(&format!("flowtrail_decoder_errors_total{{{labels}}} {v}\n")), "{labels}:\n{text}");
        }
        // Every sample's family is declared once, HELP then TYPE, before it.
        let mut declared: Vec<&str> = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if let Some(rest) = l.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!declared.contains(&name), "{name} declared twice");
                let ty = lines[i + 1].strip_prefix("# TYPE ").expect("TYPE after HELP");
                let (tname, kind) = ty.split_once(' ').unwrap();
                assert_eq!(tname, name);
                assert!(kind == "counter" || kind == "gauge");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{name}: counters end in _total");
                declared.push(name);
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert_eq!(declared.last(), Some(&name), "sample {l} under its own family");
            }
        }
        for family in [
            "flowtrail_capture_packets_total",
            "flowtrail_capture_bytes_total",
            "flowtrail_capture_packets_dropped_total",
            "flowtrail_flows_active",
            "flowtrail_records_written_total",
            "flowtrail_decoder_errors_total",
            "flowtrail_parquet_files_written_total",
            "flowtrail_parquet_bytes_written_total",
        ] {
            assert!(declared.contains(&family), "{family} missing");
        }
        // One sample per label set.
        let keys: Vec<&str> = samples(&text).iter().map(|(k, _)| *k).collect();
        let unique: std::collections::BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(keys.len(), unique.len(), "a label set appears twice:\n{text}");
        assert!(samples(&text).iter().all(|(_, v)| v.parse::<f64>().is_ok()));
    }

    #[test]
    fn publishers_add_differences_only() {
        let m = Metrics::new();
        let mut s = SinkPublisher::new(Arc::clone(&m));
        let mut stats = SinkStats { rows: 10, files: 0, bytes: 0 };
        s.publish(&stats, &SinkStats::default());
        stats = SinkStats { rows: 25, files: 1, bytes: 4096 };
        s.publish(&stats, &SinkStats::default());
        s.publish(&stats, &SinkStats::default());
        let text = m.render();
        assert!(text.contains("flowtrail_records_written_total{kind=\"flows\"} 25\n"));
        assert!(text.contains("flowtrail_parquet_files_written_total{kind=\"flows\"} 1\n"));
        assert!(text.contains("flowtrail_parquet_bytes_written_total{kind=\"flows\"} 4096\n"));
        let mut src = SourcePublisher::new(&m, "eth0", "afpacket");
        src.publish(&CaptureStats { dropped: 4, freeze_count: 1, ..CaptureStats::default() });
        src.publish(&CaptureStats { dropped: 9, freeze_count: 1, ..CaptureStats::default() });
        let text = m.render();
        assert!(text.contains("flowtrail_capture_packets_dropped_total{point=\"eth0\",cause=\"kernel\"} 9\n"));
        assert!(text.contains("flowtrail_capture_ring_freezes_total{point=\"eth0\"} 1\n"));
    }

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn responder_serves_metrics_and_404_elsewhere() {
        let m = Metrics::new();
        m.point("lo", "afpacket").packets.fetch_add(1, Relaxed);
        let addr = serve("127.0.0.1:0", Arc::clone(&m)).unwrap();
        let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("flowtrail_capture_packets_total{point=\"lo\"} 1\n"));
        assert!(get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
        let head_only = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head_only.starts_with("HTTP/1.1 200 OK") && head_only.ends_with("\r\n\r\n"));
        assert!(get(addr, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not Found"));
        assert!(get(addr, "GET /metricsx HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not Found"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(get(addr, "nonsense\r\n\r\n").starts_with("HTTP/1.1 400"));
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_REQUEST_HEAD));
        assert!(get(addr, &huge).starts_with("HTTP/1.1 431"));
        // Still serving after all that.
        assert!(get(addr, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
    }
}
