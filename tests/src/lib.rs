//! Shared helpers of flowtrail's integration tests: replay into a scratch
//! directory, read the Parquet back as text rows, and compute tshark's
//! view of the same capture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use flowtrail::flow::FlowConfig;
use flowtrail::pipeline::{replay, Input, ReplayOptions, RunSummary};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub mod l7;

/// The workspace root (tests run from their crate directory).
#[must_use]
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// `../shared/corpus` when present.
#[must_use]
pub fn corpus() -> Option<PathBuf> {
    let p = root().join("../shared/corpus");
    p.is_dir().then(|| p.canonicalize().expect("corpus path"))
}

/// The captures in `pcaps/`, sorted.
#[must_use]
pub fn bundled_pcaps() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("pcaps"))
        .expect("pcaps/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_capture(p))
        .collect();
    v.sort();
    v
}

#[must_use]
pub fn is_capture(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng" | "cap"))
}

/// A fresh scratch directory, removed by `Drop`.
pub struct Scratch(pub PathBuf);

impl Scratch {
    #[must_use]
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "flowtrail-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Rows of one record kind as text: column names and cells (`-` for null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    #[must_use]
    pub fn col(&self, name: &str) -> usize {
        self.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name}"))
    }

    /// Tab-separated, header first.
    #[must_use]
    pub fn to_tsv(&self) -> String {
        let mut s = self.columns.join("\t");
        s.push('\n');
        for r in &self.rows {
            s.push_str(&r.join("\t"));
            s.push('\n');
        }
        s
    }

    /// Each row as a map from column name to cell.
    #[must_use]
    pub fn maps(&self) -> Vec<BTreeMap<&str, &str>> {
        self.rows
            .iter()
            .map(|r| self.columns.iter().map(String::as_str).zip(r.iter().map(String::as_str)).collect())
            .collect()
    }
}

fn batch_rows(b: &RecordBatch, rows: &mut Vec<Vec<String>>) {
    let opts = FormatOptions::default().with_null("-");
    let fmts: Vec<ArrayFormatter<'_>> =
        b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("formattable")).collect();
    for i in 0..b.num_rows() {
        rows.push(fmts.iter().map(|f| f.value(i).to_string()).collect());
    }
}

/// Reads every `*.parquet` below `dir/kind`, sorted by
/// (start_ns, flow_id, record_kind). Also checks no temporary file is left.
#[must_use]
pub fn read_kind(dir: &Path, kind: &str) -> Table {
    let mut files = Vec::new();
    let mut stack = vec![dir.join(kind)];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.ends_with(".inprogress"), "temporary file left behind: {}", p.display());
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for f in files {
        let file = std::fs::File::open(&f).expect("open parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet footer").build().expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            if columns.is_empty() {
                columns = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
            }
            batch_rows(&batch, &mut rows);
        }
    }
    let mut t = Table { columns, rows };
    if !t.rows.is_empty() && !t.columns.iter().any(|c| c == "start_ns") {
        // NAT paths: by the first side's start, then whole rows.
        let s = t.col("a_start_ns");
        t.rows.sort_by(|a, b| (a[s].parse::<i64>().unwrap_or(0), a).cmp(&(b[s].parse::<i64>().unwrap_or(0), b)));
    } else if !t.rows.is_empty() {
        let third = if t.columns.iter().any(|c| c == "record_kind") { "record_kind" } else { "call_index" };
        let (s, id, k) = (t.col("start_ns"), t.col("flow_id"), t.col(third));
        t.rows.sort_by(|a, b| {
            let key =
                |r: &Vec<String>| (r[s].parse::<i64>().unwrap_or(0), r[id].parse::<i64>().unwrap_or(0), r[k].clone());
            key(a).cmp(&key(b))
        });
    }
    t
}

/// Replays `files` with `workers` shards into a scratch directory and
/// returns the summary and the flow rows.
#[must_use]
pub fn replay_flows(files: &[PathBuf], workers: usize) -> (RunSummary, Table) {
    let (s, flows, _) = replay_all(files, workers);
    (s, flows)
}

/// Like [`replay_flows`], also returning the call rows (sorted by
/// start, flow id and call index).
#[must_use]
pub fn replay_all(files: &[PathBuf], workers: usize) -> (RunSummary, Table, Table) {
    let out = Scratch::new("replay");
    let opts = ReplayOptions {
        inputs: files.iter().map(|p| Input { path: p.clone(), point: None }).collect(),
        out_dir: out.0.clone(),
        workers,
        flow: FlowConfig::default(),
        defrag: flowtrail::defrag::DefragConfig::default(),
        progress: false,
        run_id: "test".into(),
        nat: None,
    };
    let summary = replay(&opts).expect("replay runs");
    let t = read_kind(&out.0, "flows");
    let c = read_kind(&out.0, "calls");
    (summary, t, c)
}

/// One TCP/UDP conversation as tshark counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conv {
    pub proto: String,
    pub a: (String, u16),
    pub b: (String, u16),
    pub frames_ab: u64,
    pub bytes_ab: u64,
    pub frames_ba: u64,
    pub bytes_ba: u64,
}

/// Parses a `*.conv.tsv` table made by `shared/corpus/expect.sh`.
#[must_use]
pub fn read_conv_tsv(path: &Path) -> Vec<Conv> {
    let text = std::fs::read_to_string(path).expect("conv table");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("proto\t") && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Conv {
                proto: f[0].to_string(),
                a: (f[2].to_string(), f[3].parse().unwrap_or(0)),
                b: (f[4].to_string(), f[5].parse().unwrap_or(0)),
                frames_ab: f[6].parse().unwrap_or(0),
                bytes_ab: f[7].parse().unwrap_or(0),
                frames_ba: f[8].parse().unwrap_or(0),
                bytes_ba: f[9].parse().unwrap_or(0),
            }
        })
        .collect()
}

/// Whether tshark runs here.
#[must_use]
pub fn have_tshark() -> bool {
    Command::new("tshark").arg("-v").output().is_ok_and(|o| o.status.success())
}

/// tshark's conversations of a capture, by the same rules as
/// `shared/corpus/expect.sh`: one per `tcp.stream`/`udp.stream`, keyed on
/// the innermost IP and transport header; frames inside ICMP errors, and
/// fragments without a transport header, are not counted.
#[must_use]
pub fn tshark_conversations(pcap: &Path) -> Vec<Conv> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .args([
            "-o",
            "tcp.analyze_sequence_numbers:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
        ])
        .args([
            "-e",
            "frame.len",
            "-e",
            "frame.protocols",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.src",
            "-e",
            "ipv6.dst",
        ])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.stream",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "udp.stream",
        ])
        .output()
        .expect("tshark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut order: Vec<(String, String)> = Vec::new();
    let mut convs: BTreeMap<(String, String), Conv> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 12 {
            continue;
        }
        let p: Vec<&str> = f[1].split(':').collect();
        let Some(last_t) = p.iter().rposition(|x| *x == "tcp" || *x == "udp") else { continue };
        let proto = p[last_t];
        let before = &p[..last_t];
        if before.iter().any(|x| *x == "icmp" || *x == "icmpv6")
            || p[last_t + 1..].iter().any(|x| *x == "ip" || *x == "ipv6")
        {
            continue;
        }
        let Some(last_l3) = before.iter().rposition(|x| *x == "ip" || *x == "ipv6") else { continue };
        let l3 = p[last_l3];
        let ni = p[..=last_l3].iter().filter(|x| **x == l3).count();
        let nt = p[..=last_t].iter().filter(|x| **x == proto).count();
        let nth = |s: &str, n: usize| s.split(',').nth(n - 1).unwrap_or("").to_string();
        let (src, dst) = if l3 == "ip" { (nth(f[2], ni), nth(f[3], ni)) } else { (nth(f[4], ni), nth(f[5], ni)) };
        let (sp, dp, st) = if proto == "tcp" {
            (nth(f[6], nt), nth(f[7], nt), nth(f[8], nt))
        } else {
            (nth(f[9], nt), nth(f[10], nt), nth(f[11], nt))
        };
        if st.is_empty() || src.is_empty() {
            continue;
        }
        let len: u64 = f[0].parse().unwrap_or(0);
        let key = (proto.to_string(), st);
        let c = convs.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Conv {
                proto: proto.to_string(),
                a: (src.clone(), sp.parse().unwrap_or(0)),
                b: (dst.clone(), dp.parse().unwrap_or(0)),
                frames_ab: 0,
                bytes_ab: 0,
                frames_ba: 0,
                bytes_ba: 0,
            }
        });
        if c.a == (src, sp.parse().unwrap_or(0)) {
            c.frames_ab += 1;
            c.bytes_ab += len;
        } else {
            c.frames_ba += 1;
            c.bytes_ba += len;
        }
    }
    order.into_iter().map(|k| convs.remove(&k).expect("inserted")).collect()
}

/// A 5-tuple in one orientation: (proto, lower endpoint, higher endpoint).
pub type TupleKey = (String, (String, u16), (String, u16));

/// Per-5-tuple totals: [frames a→b, bytes a→b, frames b→a, bytes b→a].
pub type Totals = BTreeMap<TupleKey, [u64; 4]>;

fn orient(a: (String, u16), b: (String, u16)) -> ((String, u16), (String, u16), bool) {
    if a <= b {
        (a, b, false)
    } else {
        (b, a, true)
    }
}

/// Sums conversations by 5-tuple (tshark splits reused ports into streams,
/// flowtrail into flows; the totals must agree either way).
#[must_use]
pub fn conv_totals(convs: &[Conv]) -> Totals {
    let mut t = Totals::new();
    for c in convs {
        let (lo, hi, flipped) = orient(c.a.clone(), c.b.clone());
        let e = t.entry((c.proto.clone(), lo, hi)).or_insert([0; 4]);
        let (fab, bab, fba, bba) = if flipped {
            (c.frames_ba, c.bytes_ba, c.frames_ab, c.bytes_ab)
        } else {
            (c.frames_ab, c.bytes_ab, c.frames_ba, c.bytes_ba)
        };
        e[0] += fab;
        e[1] += bab;
        e[2] += fba;
        e[3] += bba;
    }
    t
}

/// flowtrail's TCP/UDP flows summed the same way. Flows with reassembled
/// fragments are returned separately: tshark counts a fragmented datagram
/// once, in the frame that completes it.
#[must_use]
pub fn flow_totals(t: &Table) -> (Totals, Vec<TupleKey>) {
    let mut out = Totals::new();
    let mut fragmented = Vec::new();
    let c = |n: &str| t.col(n);
    let (proto, cip, cport, sip, sport) =
        (c("l4_protocol"), c("client_ip"), c("client_port"), c("server_ip"), c("server_port"));
    let (cp, sp, cb, sb, cf, sf) = (
        c("client_packets"),
        c("server_packets"),
        c("client_bytes"),
        c("server_bytes"),
        c("client_fragments"),
        c("server_fragments"),
    );
    for r in &t.rows {
        if r[proto] != "tcp" && r[proto] != "udp" {
            continue;
        }
        let num = |i: usize| r[i].parse::<u64>().unwrap_or(0);
        let (lo, hi, flipped) =
            orient((r[cip].clone(), r[cport].parse().unwrap_or(0)), (r[sip].clone(), r[sport].parse().unwrap_or(0)));
        let key = (r[proto].clone(), lo, hi);
        if num(cf) + num(sf) > 0 {
            fragmented.push(key.clone());
        }
        let e = out.entry(key).or_insert([0; 4]);
        let (fab, bab, fba, bba) =
            if flipped { (num(sp), num(sb), num(cp), num(cb)) } else { (num(cp), num(cb), num(sp), num(sb)) };
        e[0] += fab;
        e[1] += bab;
        e[2] += fba;
        e[3] += bba;
    }
    (out, fragmented)
}

/// Compares totals; returns (agreeing 5-tuples, disagreements as text).
#[must_use]
pub fn compare_totals(ours: &Totals, theirs: &Totals, fragmented: &[TupleKey]) -> (usize, Vec<String>) {
    let mut agree = 0;
    let mut diffs = Vec::new();
    let keys: std::collections::BTreeSet<_> = ours.keys().chain(theirs.keys()).cloned().collect();
    for k in keys {
        let o = ours.get(&k).copied().unwrap_or([0; 4]);
        let t = theirs.get(&k).copied().unwrap_or([0; 4]);
        if o == t {
            agree += 1;
        } else if fragmented.contains(&k) {
            // Explained: counted per fragment here, per datagram by tshark.
            agree += 1;
        } else {
            diffs.push(format!(
                "{} {}:{} <-> {}:{}  flowtrail {:?}  tshark {:?}",
                k.0, k.1 .0, k.1 .1, k.2 .0, k.2 .1, o, t
            ));
        }
    }
    (agree, diffs)
}

/// Per TCP 5-tuple: [retransmissions, out-of-order, zero-window] segments.
pub type TcpAnalysis = BTreeMap<TupleKey, [u64; 3]>;

/// tshark's `tcp.analysis` flags counted per TCP 5-tuple (innermost
/// headers): retransmission or fast retransmission, out of order, zero window.
#[must_use]
pub fn tshark_tcp_analysis(pcap: &Path) -> TcpAnalysis {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .args(["-Y", "tcp.analysis.retransmission or tcp.analysis.fast_retransmission or tcp.analysis.out_of_order or tcp.analysis.zero_window"])
        .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=l"])
        .args(["-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport"])
        .args(["-e", "frame.protocols"])
        .args(["-e", "tcp.analysis.retransmission", "-e", "tcp.analysis.fast_retransmission", "-e", "tcp.analysis.out_of_order", "-e", "tcp.analysis.zero_window"])
        .output()
        .expect("tshark runs");
    let mut m = TcpAnalysis::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() < 11 {
            continue;
        }
        // The innermost IP header is the last ip/ipv6 before tcp.
        let protos: Vec<&str> = f[6].split(':').collect();
        let tcp_at = protos.iter().rposition(|x| *x == "tcp").unwrap_or(protos.len());
        let v6 = protos[..tcp_at].iter().rev().find(|x| **x == "ip" || **x == "ipv6") == Some(&"ipv6");
        let (src, dst) = if v6 { (f[1], f[4]) } else { (f[0], f[3]) };
        let (lo, hi, _) =
            orient((src.to_string(), f[2].parse().unwrap_or(0)), (dst.to_string(), f[5].parse().unwrap_or(0)));
        let e = m.entry(("tcp".to_string(), lo, hi)).or_insert([0; 3]);
        e[0] += u64::from(!f[7].is_empty() || !f[8].is_empty());
        e[1] += u64::from(!f[9].is_empty());
        e[2] += u64::from(!f[10].is_empty());
    }
    m
}

/// flowtrail's TCP health counters summed per 5-tuple, same shape.
#[must_use]
pub fn flow_tcp_analysis(t: &Table) -> TcpAnalysis {
    let mut m = TcpAnalysis::new();
    if t.rows.is_empty() {
        return m;
    }
    let c = |n: &str| t.col(n);
    let (proto, cip, cport, sip, sport) =
        (c("l4_protocol"), c("client_ip"), c("client_port"), c("server_ip"), c("server_port"));
    let cols = [
        [c("client_retransmissions"), c("server_retransmissions")],
        [c("client_out_of_order"), c("server_out_of_order")],
        [c("client_zero_window"), c("server_zero_window")],
    ];
    for r in &t.rows {
        if r[proto] != "tcp" {
            continue;
        }
        let num = |i: usize| r[i].parse::<u64>().unwrap_or(0);
        let v = cols.map(|[a, b]| num(a) + num(b));
        if v == [0; 3] {
            continue;
        }
        let (lo, hi, _) =
            orient((r[cip].clone(), r[cport].parse().unwrap_or(0)), (r[sip].clone(), r[sport].parse().unwrap_or(0)));
        let e = m.entry(("tcp".to_string(), lo, hi)).or_insert([0; 3]);
        for i in 0..3 {
            e[i] += v[i];
        }
    }
    m
}
