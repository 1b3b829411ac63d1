//! Live capture against real traffic, compared with tcpdump on the same
//! interface and with a replay of tcpdump's file. Root only (CI runs as
//! root); elsewhere each test prints SKIP. The topology is a veth pair:
//! `ftlv0` (10.96.0.1) in the root namespace, its peer in namespace
//! `ftl-srv` (10.96.0.2) running a real HTTP server; curl runs in the root
//! namespace. A guard deletes everything even when a test fails.

use flowtrail_capture::ebpf::{EbpfConfig, EbpfMode, EbpfSource};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flowtrail::pipeline::{capture, replay, Input, LiveOptions, LiveSource, Opener, ReplayOptions};
use flowtrail_tests::{read_kind, root, Scratch, Table};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Network namespace + veth + HTTP server; removed on drop.
struct Topology {
    ns: String,
    veth: String,
    server: Option<Child>,
}

impl Topology {
    fn new(tag: &str, veth: &str, subnet: u8) -> Self {
        let ns = format!("ftl-{tag}");
        let t = Topology { ns: ns.clone(), veth: veth.to_string(), server: None };
        t.cleanup();
        assert!(sh(&format!("ip netns add {ns}")), "ip netns add");
        assert!(sh(&format!("ip link add {veth} type veth peer name eth0 netns {ns}")), "veth");
        // No IPv6: neighbour discovery would add packets at random moments.
        let _ = sh(&format!("sysctl -qw net.ipv6.conf.{veth}.disable_ipv6=1"));
        let _ = sh(&format!("ip netns exec {ns} sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1"));
        assert!(sh(&format!("ip addr add 10.96.{subnet}.1/24 dev {veth} && ip link set {veth} up")));
        assert!(sh(&format!(
            "ip netns exec {ns} sh -c 'ip addr add 10.96.{subnet}.2/24 dev eth0 && ip link set eth0 up && ip link set lo up'"
        )));
        // Offloads off: MTU-sized segments, as on a real wire.
        let _ = sh(&format!("ethtool -K {veth} tso off gso off gro off"));
        let _ = sh(&format!("ip netns exec {ns} ethtool -K eth0 tso off gso off gro off"));
        t
    }

    fn serve_http(&mut self, subnet: u8) {
        let dir = std::env::temp_dir().join(format!("ftl-www-{}", self.ns));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<html>flowtrail live test</html>\n".repeat(20)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "timeout", "60", "python3", "-m", "http.server", "80", "--bind"])
            .arg(format!("10.96.{subnet}.2"))
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("http server");
        self.server = Some(child);
        for _ in 0..50 {
            if sh(&format!("curl -s -o /dev/null --max-time 1 http://10.96.{subnet}.2/")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("http server did not start");
    }

    fn cleanup(&self) {
        let _ = sh(&format!("ip netns pids {0} | xargs -r kill; ip netns del {0}", self.ns));
        let _ = sh(&format!("ip link del {}", self.veth));
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.cleanup();
    }
}

fn traffic(subnet: u8, requests: usize) {
    for i in 0..requests {
        let path = if i % 5 == 4 { "missing" } else { "index.html" };
        let _ = sh(&format!("curl -s -o /dev/null --max-time 2 http://10.96.{subnet}.2/{path}"));
    }
}

/// tcpdump on `iface`, only packets of direction `dir` (`in`, `out`, `inout`).
fn tcpdump_dir(iface: &str, file: &Path, dir: &str) -> Child {
    tcpdump_in(None, iface, file, dir)
}

/// tcpdump on `iface` of namespace `ns` (the current one when `None`).
fn tcpdump_in(ns: Option<&str>, iface: &str, file: &Path, dir: &str) -> Child {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "tcpdump"]);
            c
        }
        None => Command::new("tcpdump"),
    };
    let c = cmd
        .args(["-i", iface, "-Q", dir, "-U", "--immediate-mode", "-B", "16384", "-n", "--time-stamp-precision=nano"])
        .arg("-w")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    // Ready when it says it is listening (a loaded machine can take seconds).
    let mut c = c;
    let stderr = c.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let log = tcpdump_log(file);
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let mut out = std::fs::File::create(log).ok();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
            if let Some(f) = &mut out {
                let _ = writeln!(f, "{line}");
            }
        }
    });
    let _ = rx.recv_timeout(Duration::from_secs(20));
    // The live capture started just before needs its sockets open too.
    std::thread::sleep(Duration::from_millis(700));
    c
}

/// Where tcpdump's messages for capture `file` go.
fn tcpdump_log(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".log");
    PathBuf::from(p)
}

/// Packets tcpdump said its kernel socket dropped (after it stopped).
fn tcpdump_dropped(file: &Path) -> u64 {
    for _ in 0..40 {
        let log = std::fs::read_to_string(tcpdump_log(file)).unwrap_or_default();
        if let Some(l) = log.lines().find(|l| l.ends_with("packets dropped by kernel")) {
            return l.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("tcpdump said nothing about drops: {}", tcpdump_log(file).display());
}

fn stop_tcpdump(mut c: Child) {
    std::thread::sleep(Duration::from_millis(300));
    let _ = sh(&format!("kill -INT {}", c.id()));
    let _ = c.wait();
}

fn afpacket_opener() -> Opener {
    use flowtrail_capture::af_packet::{AfPacketConfig, AfPacketSource};
    Arc::new(|name: &str, _| {
        Ok(LiveSource { source: Box::new(AfPacketSource::open(&AfPacketConfig::new(name))?), mode: "afpacket" })
    })
}

fn live_opts(patterns: &[&str], opener: Opener, out: &Path, stop: Arc<AtomicBool>) -> LiveOptions {
    LiveOptions {
        patterns: patterns.iter().map(|s| (*s).to_string()).collect(),
        opener,
        capture_threads: 1,
        shards: 1,
        out_dir: out.to_path_buf(),
        flow: Default::default(),
        defrag: Default::default(),
        run_id: "live".into(),
        stop,
        duration: None,
        nat: Some(flowtrail::nat::NatConfig::default()),
        metrics: None,
        write_pcap: None,
    }
}

/// Rows without the columns that name where and how packets were seen
/// (and, when the two captures read different clocks, without times).
fn comparable(t: &Table, same_clock: bool) -> Vec<Vec<String>> {
    let skip = [
        "flow_id",
        "call_id",
        "capture_point",
        "capture_file",
        "capture_interface",
        "capture_mode",
        "capture_ifindex",
        "capture_netns",
        "client_direction",
    ];
    let keep: Vec<usize> = (0..t.columns.len())
        .filter(|i| !skip.contains(&t.columns[*i].as_str()) && (same_clock || !t.columns[*i].ends_with("_ns")))
        .collect();
    let mut rows: Vec<Vec<String>> = t.rows.iter().map(|r| keep.iter().map(|i| r[*i].clone()).collect()).collect();
    rows.sort();
    rows
}

fn replay_file(pcap: &Path, out: &Path) -> flowtrail::pipeline::RunSummary {
    replay(&ReplayOptions {
        inputs: vec![Input { path: pcap.to_path_buf(), point: None }],
        out_dir: out.to_path_buf(),
        workers: 1,
        flow: Default::default(),
        defrag: Default::default(),
        progress: false,
        run_id: "replay".into(),
        nat: None,
    })
    .expect("replay")
}

/// Captures `requests` HTTP requests live and with tcpdump at once.
fn capture_and_compare(mode: &str, opener: Opener, subnet: u8, tag: &str) {
    capture_and_compare_dir(mode, opener, subnet, tag, "inout");
}

fn capture_and_compare_dir(mode: &str, opener: Opener, subnet: u8, tag: &str, direction: &str) {
    capture_and_compare_threads(mode, opener, subnet, tag, direction, 1);
}

fn capture_and_compare_threads(mode: &str, opener: Opener, subnet: u8, tag: &str, direction: &str, threads: usize) {
    let veth = format!("ftlv{subnet}");
    let mut topo = Topology::new(tag, &veth, subnet);
    topo.serve_http(subnet);
    let dir = Scratch::new(tag);
    let (live_out, replay_out, pcap) = (dir.0.join("live"), dir.0.join("replay"), dir.0.join("tcpdump.pcap"));
    let stop = Arc::new(AtomicBool::new(false));
    let mut opts = live_opts(&[veth.as_str()], opener, &live_out, Arc::clone(&stop));
    opts.capture_threads = threads;
    // --write-pcap, rotated every 8 KiB: the kept packets must replay into
    // the same records.
    let kept = dir.0.join("kept");
    opts.write_pcap = Some((kept.clone(), 8 << 10));
    let run = std::thread::spawn(move || capture(opts).expect("capture runs"));
    let dump = tcpdump_dir(&veth, &pcap, direction);
    traffic(subnet, 10);
    stop_tcpdump(dump);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let live = run.join().expect("capture thread");
    let replayed = replay_file(&pcap, &replay_out);
    println!(
        "{mode}: live {} packets ({} dropped), tcpdump file {} packets",
        live.packets, live.capture.dropped, replayed.packets
    );
    assert!(live.packets > 50, "traffic was captured");
    assert_eq!(live.capture.dropped, 0);
    assert_eq!(live.packets, replayed.packets, "{mode} and tcpdump saw the same packets");
    let (lf, rf) = (read_kind(&live_out, "flows"), read_kind(&replay_out, "flows"));
    let (lc, rc) = (read_kind(&live_out, "calls"), read_kind(&replay_out, "calls"));
    // Two sockets stamp an outgoing packet separately (and TC at another
    // point of the stack), so times differ by microseconds: compare the rest.
    let same_clock = false;
    assert_eq!(
        comparable(&lf, same_clock),
        comparable(&rf, same_clock),
        "{mode}: flow records differ from tcpdump's replay"
    );
    assert_eq!(
        comparable(&lc, same_clock),
        comparable(&rc, same_clock),
        "{mode}: call records differ from tcpdump's replay"
    );
    // The kept pcapng files: whole, rotated, and the same packets.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&kept).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.iter().all(|f| f.extension().is_some_and(|e| e == "pcapng")), "only whole files: {files:?}");
    assert!(files.len() > 1, "rotated at 8 KiB: {files:?}");
    assert_eq!((live.pcap_packets, live.pcap_files), (live.packets, files.len() as u64));
    // Wireshark's mergecap joins them back (it reads what we wrote); one
    // file, so flows that span a rotation stay one flow.
    let all = dir.0.join("kept-all.pcapng");
    let merged = Command::new("mergecap").arg("-a").arg("-w").arg(&all).args(&files).status().expect("mergecap");
    assert!(merged.success(), "mergecap reads the kept files");
    let kept_out = dir.0.join("kept-replay");
    let again = replay(&ReplayOptions {
        inputs: vec![Input { path: all, point: Some("kept".into()) }],
        out_dir: kept_out.clone(),
        workers: 1,
        flow: Default::default(),
        defrag: Default::default(),
        progress: false,
        run_id: "kept".into(),
        nat: None,
    })
    .expect("replay kept pcapng");
    assert_eq!(again.packets, live.packets, "{mode}: --write-pcap kept every packet");
    assert_eq!(
        comparable(&read_kind(&kept_out, "flows"), true),
        comparable(&lf, true),
        "{mode}: kept packets replay into the live flow records"
    );
    assert_eq!(
        comparable(&read_kind(&kept_out, "calls"), true),
        comparable(&lc, true),
        "{mode}: kept packets replay into the live call records"
    );
    if direction == "inout" {
        assert_eq!(lc.rows.len(), 10, "one call per curl");
    }
    let mode_col = lf.col("capture_mode");
    assert!(lf.rows.iter().all(|r| r[mode_col] == mode));
    assert!(lf.rows.iter().all(|r| r[lf.col("capture_point")] == veth));
}

#[test]
fn afpacket_capture_matches_tcpdump_and_its_replay() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    capture_and_compare("afpacket", afpacket_opener(), 11, "afp");
}

/// Two capture threads, each with a socket in one fanout group: every
/// packet is seen once, by the thread that owns its flow.
#[test]
fn afpacket_fanout_threads_see_each_packet_once() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    use flowtrail_capture::af_packet::{AfPacketConfig, AfPacketSource, Fanout};
    let opener: Opener = Arc::new(|name: &str, _| {
        let mut cfg = AfPacketConfig::new(name);
        cfg.fanout = Some(Fanout::hash(0x4654));
        Ok(LiveSource { source: Box::new(AfPacketSource::open(&cfg)?), mode: "afpacket" })
    });
    capture_and_compare_threads("afpacket", opener, 16, "fan", "inout", 2);
}

#[test]
fn tc_capture_matches_tcpdump_and_its_replay() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    if !ebpf_available(EbpfMode::Tc) {
        return;
    }
    let opener: Opener = Arc::new(|name: &str, _| {
        let cfg = EbpfConfig { mode: EbpfMode::Tc, interfaces: vec![name.to_string()], ..EbpfConfig::default() };
        Ok(LiveSource {
            source: Box::new(EbpfSource::open(&cfg).map_err(flowtrail_capture::CaptureError::from)?),
            mode: "tc",
        })
    });
    capture_and_compare("tc", opener, 12, "tc");
}

/// XDP sees what arrives on the interface: the server's answers on the
/// root-side veth. tcpdump -Q in sees the same.
#[test]
fn xdp_capture_matches_tcpdump_ingress_and_its_replay() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    if !ebpf_available(EbpfMode::Xdp) {
        return;
    }
    let opener: Opener = Arc::new(|name: &str, _| {
        let cfg = EbpfConfig { mode: EbpfMode::Xdp, interfaces: vec![name.to_string()], ..EbpfConfig::default() };
        Ok(LiveSource {
            source: Box::new(EbpfSource::open(&cfg).map_err(flowtrail_capture::CaptureError::from)?),
            mode: "xdp",
        })
    });
    capture_and_compare_dir("xdp", opener, 15, "xdp", "in");
}

#[test]
fn interface_created_after_start_is_captured() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    let dir = Scratch::new("late");
    let stop = Arc::new(AtomicBool::new(false));
    let opts = live_opts(&["ftlw*"], afpacket_opener(), &dir.0, Arc::clone(&stop));
    let run = std::thread::spawn(move || capture(opts).expect("capture runs"));
    std::thread::sleep(Duration::from_millis(500));
    let mut topo = Topology::new("late", "ftlw13", 13);
    topo.serve_http(13);
    std::thread::sleep(Duration::from_millis(1500));
    traffic(13, 3);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let s = run.join().unwrap();
    drop(topo);
    let calls = read_kind(&dir.0, "calls");
    println!("late interface: {} packets, {} calls", s.packets, calls.rows.len());
    assert!(calls.rows.len() >= 3, "calls on the interface created after start");
}

/// The `flowtrail` binary of this build (scripts/test.sh builds it first;
/// building it from here would wait forever on the lock `cargo test` holds).
/// Whether the eBPF programs load for `mode` (the object is built and the
/// kernel takes them); prints a SKIP line when not.
fn ebpf_available(mode: EbpfMode) -> bool {
    match EbpfSource::open(&EbpfConfig { mode, ..EbpfConfig::default() }) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIP: eBPF object not available: {e}");
            false
        }
    }
}

fn flowtrail_bin() -> PathBuf {
    // The build's target directory (CARGO_TARGET_DIR when set, relative to
    // the workspace root like cargo's), else the workspace's target/.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), |d| root().join(d));
    let p = target.join("debug/flowtrail");
    assert!(p.exists(), "{} missing: run `cargo build -p flowtrail` first (scripts/test.sh does)", p.display());
    p
}

#[test]
fn sigterm_mid_traffic_leaves_whole_files_duckdb_reads() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    let mut topo = Topology::new("term", "ftlv14", 14);
    topo.serve_http(14);
    let dir = Scratch::new("term");
    let out = dir.0.join("out");
    let mut child = Command::new(flowtrail_bin())
        .args(["capture", "-i", "ftlv14", "--mode", "afpacket", "-w", "1", "-o"])
        .arg(&out)
        .stderr(Stdio::null())
        .spawn()
        .expect("flowtrail capture");
    std::thread::sleep(Duration::from_millis(800));
    let load = std::thread::spawn(|| traffic(14, 30));
    std::thread::sleep(Duration::from_millis(600));
    assert!(sh(&format!("kill -TERM {}", child.id())));
    let status = child.wait().unwrap();
    let _ = load.join();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    // read_kind fails on any leftover temporary file.
    let flows = read_kind(&out, "flows");
    assert!(!flows.rows.is_empty());
    let q = format!("select count(*) from read_parquet('{}/**/*.parquet', union_by_name=true)", out.display());
    let o = Command::new("python3")
        .args(["-c", &format!("import duckdb; print(duckdb.sql(\"{q}\").fetchall()[0][0])")])
        .output()
        .unwrap();
    assert!(o.status.success(), "DuckDB reads every file: {}", String::from_utf8_lossy(&o.stderr));
    let n: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert_eq!(n, flows.rows.len() + read_kind(&out, "calls").rows.len());
}

/// One scrape of `/metrics`: each sample (`name{labels}`) and its value.
fn scrape(addr: std::net::SocketAddr) -> std::collections::BTreeMap<String, f64> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).expect("connect to /metrics");
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: flowtrail\r\n\r\n").unwrap();
    let mut r = String::new();
    c.read_to_string(&mut r).unwrap();
    let (head, body) = r.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("sample value");
            (k.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

/// Sum of a family's samples.
fn family(m: &std::collections::BTreeMap<String, f64>, name: &str) -> u64 {
    m.iter().filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{"))).map(|(_, v)| *v as u64).sum()
}

fn sample(m: &std::collections::BTreeMap<String, f64>, key: &str) -> u64 {
    *m.get(key).unwrap_or_else(|| panic!("no sample {key}")) as u64
}

/// `--metrics-addr`: scrapes during the run grow, and the scrape after the
/// run equals the summary `capture` returned. Two shards, so the flow
/// tables publish from their own threads.
#[test]
fn metrics_scrapes_grow_and_end_equal_to_the_summary() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    let (subnet, veth) = (41, "ftlv41");
    let mut topo = Topology::new("metrics", veth, subnet);
    topo.serve_http(subnet);
    let dir = Scratch::new("metrics");
    let out = dir.0.join("out");
    let metrics = flowtrail::metrics::Metrics::new();
    let addr = flowtrail::metrics::serve("127.0.0.1:0", Arc::clone(&metrics)).expect("metrics listener");
    let stop = Arc::new(AtomicBool::new(false));
    let mut opts = live_opts(&[veth], afpacket_opener(), &out, Arc::clone(&stop));
    opts.shards = 2;
    opts.metrics = Some(metrics);
    let run = std::thread::spawn(move || capture(opts).expect("capture runs"));
    std::thread::sleep(Duration::from_millis(800));
    let packets = format!("flowtrail_capture_packets_total{{point=\"{veth}\"}}");
    let bytes = format!("flowtrail_capture_bytes_total{{point=\"{veth}\"}}");

    traffic(subnet, 5);
    // Flow tables publish on their once-a-second tick.
    std::thread::sleep(Duration::from_millis(1500));
    let first = scrape(addr);
    assert!(sample(&first, &packets) > 0 && sample(&first, &bytes) > 0, "{first:?}");
    assert!(family(&first, "flowtrail_flows_total") > 0, "{first:?}");
    traffic(subnet, 5);
    std::thread::sleep(Duration::from_millis(1500));
    let second = scrape(addr);
    assert!(sample(&second, &packets) > sample(&first, &packets));
    for (k, v) in &first {
        if k.split('{').next().unwrap().ends_with("_total") {
            assert!(second[k] >= *v, "{k} went from {v} to {}", second[k]);
        }
    }

    stop.store(true, Ordering::Relaxed);
    let s = run.join().expect("capture thread");
    let end = scrape(addr);
    println!(
        "metrics: {} packets, {} bytes; scrapes {} -> {} -> {} packets",
        s.packets,
        s.bytes,
        sample(&first, &packets),
        sample(&second, &packets),
        sample(&end, &packets)
    );
    assert!(s.packets > 50, "traffic was captured");
    assert_eq!(family(&end, "flowtrail_capture_packets_total"), s.packets, "one point, every packet");
    assert_eq!(sample(&end, &packets), s.packets);
    assert_eq!(sample(&end, &bytes), s.bytes);
    assert_eq!(family(&end, "flowtrail_capture_packets_dropped_total"), s.capture.dropped);
    assert_eq!(
        sample(&end, &format!("flowtrail_capture_packets_dropped_total{{point=\"{veth}\",cause=\"kernel\"}}")),
        0
    );
    assert_eq!(family(&end, "flowtrail_capture_ring_freezes_total"), s.capture.freeze_count);
    // The summary's per-point table is what the endpoint says per point.
    assert_eq!(s.points.len(), 1, "{:?}", s.points);
    for p in &s.points {
        let point = format!("point=\"{}\"", p.name);
        assert_eq!(sample(&end, &format!("flowtrail_capture_packets_total{{{point}}}")), p.packets);
        assert_eq!(sample(&end, &format!("flowtrail_capture_bytes_total{{{point}}}")), p.bytes);
        assert_eq!(sample(&end, &format!("flowtrail_capture_ring_freezes_total{{{point}}}")), p.ring_freezes);
        assert_eq!(p.drops.keys().copied().collect::<Vec<_>>(), ["kernel"], "afpacket's cause");
        for (cause, n) in &p.drops {
            let key = format!("flowtrail_capture_packets_dropped_total{{{point},cause=\"{cause}\"}}");
            assert_eq!(sample(&end, &key), *n, "{key}");
        }
        assert_eq!((p.mode, p.interface.as_str()), ("afpacket", veth));
        assert!(p.ifindex.is_some());
    }
    assert_eq!(s.points[0].packets, s.packets);
    let f = &s.flows;
    for (proto, n) in [("tcp", f.flows_tcp), ("udp", f.flows_udp), ("icmp", f.flows_icmp), ("other", f.flows_other)] {
        assert_eq!(sample(&end, &format!("flowtrail_flows_total{{protocol=\"{proto}\"}}")), n, "{proto} flows");
    }
    assert_eq!(sample(&end, "flowtrail_flows_active"), 0, "every flow flushed");
    assert_eq!(sample(&end, "flowtrail_analysis_dropped_total{cause=\"flow_table_full\"}"), f.untracked_packets);
    assert_eq!(sample(&end, "flowtrail_non_ip_frames_total"), s.non_ip);
    let errors = s.decode_errors.values().sum::<u64>() + s.l7.errors.values().sum::<u64>() + s.unsupported_linktype;
    assert_eq!(family(&end, "flowtrail_decoder_errors_total"), errors);
    for (kind, sink) in [("flows", &s.sink), ("calls", &s.calls), ("nat_paths", &s.nat_paths)] {
        let k = format!("{{kind=\"{kind}\"}}");
        assert_eq!(sample(&end, &format!("flowtrail_records_written_total{k}")), sink.rows, "{kind} rows");
        assert_eq!(sample(&end, &format!("flowtrail_parquet_files_written_total{k}")), sink.files, "{kind} files");
        assert_eq!(sample(&end, &format!("flowtrail_parquet_bytes_written_total{k}")), sink.bytes, "{kind} bytes");
    }
    // And the summary is what is on disk.
    let calls = read_kind(&out, "calls");
    assert_eq!(calls.rows.len(), 10, "one call per curl");
    assert_eq!(sample(&end, "flowtrail_records_written_total{kind=\"calls\"}"), 10);
    assert_eq!(
        sample(&end, "flowtrail_records_written_total{kind=\"flows\"}"),
        read_kind(&out, "flows").rows.len() as u64
    );
    drop(topo);
}

/// The vSwitch topology: namespace `ftlvs<tag>-hyp` (the "hypervisor")
/// holds bridge `br0` (10.97.N.1) with two veth "pods" on it, `vethweb`
/// (namespace `ftlvs<tag>-web`, nginx on 10.97.N.11) and `vethred`
/// (namespace `ftlvs<tag>-red`, redis-server on 10.97.N.12), and TAP
/// `tapvm`, whose fd tests/scripts/tap_vm.py holds as a "VM" (10.97.N.20:
/// answers ARP, ICMP echo, and echoes UDP). No IPv6 anywhere, so nothing
/// talks on its own. Dropping it kills every process in the namespaces and
/// deletes them (the veths, the bridge and the TAP go with them).
struct VSwitch {
    tag: String,
    subnet: u8,
    vm: Option<Child>,
    servers: Vec<Child>,
    www: PathBuf,
}

const VM_MAC: &str = "02:66:74:00:00:14";

/// The MAC of host N of the vSwitch subnet.
fn host_mac(n: u8) -> String {
    format!("02:66:74:00:00:{n:02x}")
}

impl VSwitch {
    fn ns(&self, role: &str) -> String {
        format!("ftlvs{}-{role}", self.tag)
    }

    fn ip(&self, host: u8) -> String {
        format!("10.97.{}.{host}", self.subnet)
    }

    /// `cmd` in namespace `role`, must succeed.
    fn run(&self, role: &str, cmd: &str) {
        let ns = self.ns(role);
        assert!(sh(&format!("ip netns exec {ns} sh -c '{cmd}'")), "in {ns}: {cmd}");
    }

    fn new(tag: &str, subnet: u8, www: PathBuf) -> Self {
        let mut v = VSwitch { tag: tag.to_string(), subnet, vm: None, servers: Vec::new(), www };
        v.cleanup();
        for role in ["hyp", "web", "red"] {
            assert!(sh(&format!("ip netns add {}", v.ns(role))), "ip netns add");
            v.run(
                role,
                "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 && ip link set lo up",
            );
        }
        let hyp = v.ns("hyp");
        // No multicast snooping: the bridge would join 224.0.0.106 (router
        // discovery) and repeat its IGMP reports at random moments.
        v.run(
            "hyp",
            &format!(
                "ip link add br0 type bridge mcast_snooping 0 && ip addr add {}/24 dev br0 && ip link set br0 up",
                v.ip(1)
            ),
        );
        for (pod, host) in [("web", 11), ("red", 12)] {
            let ns = v.ns(pod);
            v.run("hyp", &format!("ip link add veth{pod} type veth peer name eth0 netns {ns}"));
            v.run("hyp", &format!("ip link set veth{pod} master br0 && ip link set veth{pod} up"));
            v.run(pod, &format!("ip addr add {}/24 dev eth0 && ip link set eth0 up", v.ip(host)));
            // Offloads off: MTU-sized segments, as on a real wire.
            let _ = sh(&format!("ip netns exec {hyp} ethtool -K veth{pod} tso off gso off gro off"));
            let _ = sh(&format!("ip netns exec {ns} ethtool -K eth0 tso off gso off gro off"));
        }
        // The VM: it makes the TAP, the hypervisor puts it on the bridge.
        let script = root().join("tests/scripts/tap_vm.py");
        let mut vm = Command::new("ip")
            .args(["netns", "exec", &hyp, "timeout", "150", "python3"])
            .arg(&script)
            .args(["tapvm", VM_MAC, &v.ip(20), "140"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tap_vm.py");
        let mut line = String::new();
        use std::io::BufRead;
        let _ = std::io::BufReader::new(vm.stdout.take().expect("piped")).read_line(&mut line);
        v.vm = Some(vm);
        assert_eq!(line.trim(), "ready", "the VM opened its TAP");
        v.run("hyp", "ip link set tapvm master br0 && ip link set tapvm up");
        // Permanent neighbours everywhere: no ARP refresh can fall between
        // the moments tcpdump and flowtrail start or stop. (The VM still
        // answers ARP; nothing asks.)
        let hosts = [("hyp", "br0", 1), ("web", "eth0", 11), ("red", "eth0", 12)];
        for (role, dev, host) in hosts {
            v.run(role, &format!("ip link set {dev} address {}", host_mac(host)));
        }
        for (role, dev, host) in hosts {
            for (_, _, peer) in hosts.iter().filter(|h| h.2 != host) {
                v.run(
                    role,
                    &format!("ip neigh replace {} lladdr {} dev {dev} nud permanent", v.ip(*peer), host_mac(*peer)),
                );
            }
        }
        v.run("hyp", &format!("ip neigh replace {} lladdr {VM_MAC} dev br0 nud permanent", v.ip(20)));
        v
    }

    fn start(&mut self, role: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role), "timeout", "150"])
            .args(args)
            .current_dir(&self.www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(args[0]);
        self.servers.push(child);
    }

    /// nginx in the web pod, redis-server in the redis pod; waits until
    /// both answer (from the hypervisor and the web pod).
    fn serve(&mut self) {
        let w = &self.www;
        for d in ["html", "tmp"] {
            std::fs::create_dir_all(w.join(d)).unwrap();
        }
        std::fs::write(w.join("html/index.html"), "<html>flowtrail vswitch test</html>\n".repeat(20)).unwrap();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {w}/nginx.pid; error_log {w}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {w}/tmp/b; proxy_temp_path {w}/tmp/p;\n\
             fastcgi_temp_path {w}/tmp/f; uwsgi_temp_path {w}/tmp/u; scgi_temp_path {w}/tmp/s;\n\
             server {{ listen {ip}:80; root {w}/html; }} }}\n",
            w = w.display(),
            ip = self.ip(11)
        );
        std::fs::write(w.join("nginx.conf"), conf).unwrap();
        let conf = w.join("nginx.conf").display().to_string();
        self.start("web", &["nginx", "-c", &conf]);
        let red = self.ip(12);
        self.start(
            "red",
            &[
                "redis-server",
                "--bind",
                &red,
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
        );
        let (hyp, web) = (self.ns("hyp"), self.ns("web"));
        let nginx = format!("ip netns exec {hyp} curl -s -o /dev/null --max-time 1 http://{}/", self.ip(11));
        let redis = format!("ip netns exec {web} redis-cli -h {red} ping | grep -q PONG");
        for _ in 0..100 {
            if sh(&nginx) && sh(&redis) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nginx or redis-server did not start");
    }

    /// Bounded traffic: curl from the hypervisor to nginx, redis-benchmark
    /// from the web pod to the redis pod, ping and UDP echo to the VM.
    fn traffic(&self) {
        let (hyp, web) = (self.ns("hyp"), self.ns("web"));
        for i in 0..10 {
            let path = if i % 5 == 4 { "missing" } else { "index.html" };
            let _ = sh(&format!("ip netns exec {hyp} curl -s -o /dev/null --max-time 2 http://{}/{path}", self.ip(11)));
        }
        assert!(
            sh(&format!(
                "ip netns exec {web} timeout 60 redis-benchmark -h {} -n 2000 -c 2 -P 1 -t set,get -q",
                self.ip(12)
            )),
            "redis-benchmark"
        );
        assert!(sh(&format!("ip netns exec {hyp} ping -q -n -c 5 -i 0.2 -W 1 {}", self.ip(20))), "the VM answers ping");
        let udp = format!(
            "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); \
             n=0\nfor i in range(5):\n    s.sendto(b'flowtrail %d' % i, ('{}', 7007))\n    \
             try:\n        n += s.recv(100) == b'flowtrail %d' % i\n    except OSError:\n        pass\n\
             assert n == 5, n",
            self.ip(20)
        );
        assert!(
            Command::new("ip")
                .args(["netns", "exec", &hyp, "timeout", "20", "python3", "-c", &udp])
                .status()
                .is_ok_and(|s| s.success()),
            "the VM echoes UDP"
        );
    }

    fn ifindex(&self, iface: &str) -> String {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.ns("hyp"), "cat", &format!("/sys/class/net/{iface}/ifindex")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn cleanup(&self) {
        for role in ["web", "red", "hyp"] {
            let _ = sh(&format!("ip netns pids {0} | xargs -r kill; ip netns del {0}", self.ns(role)));
        }
    }
}

impl Drop for VSwitch {
    fn drop(&mut self) {
        for mut c in self.servers.drain(..).chain(self.vm.take()) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.cleanup();
    }
}

/// Prints the packets only one of the captures of `iface` has: those kept
/// by `--write-pcap` in `kept` against tcpdump's `pcap` (by tshark).
fn explain_mismatch(kept: &Path, pcap: &Path, iface: &str) {
    let fields = |f: &Path, filter: &str| -> Vec<String> {
        let mut cmd = Command::new("tshark");
        cmd.arg("-r").arg(f).args(["-Y", filter, "-T", "fields", "-E", "separator=/"]);
        for e in ["frame.len", "eth.src", "eth.dst", "ip.src", "ip.dst", "ip.proto", "tcp.seq_raw", "tcp.flags"] {
            cmd.args(["-e", e]);
        }
        cmd.output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let files = std::fs::read_dir(kept).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default();
    let ours: Vec<String> =
        files.iter().flat_map(|k| fields(k, &format!("frame.interface_name == \"{iface}\""))).collect();
    let mut theirs = fields(pcap, "frame");
    for l in &ours {
        match theirs.iter().position(|t| t == l) {
            Some(i) => {
                theirs.remove(i);
            }
            None => println!("{iface}: only live: {l}"),
        }
    }
    for l in &theirs {
        println!("{iface}: only tcpdump: {l}");
    }
}

/// Rows of `t` whose `capture_point` is `point`.
fn at_point(t: &Table, point: &str) -> Table {
    let c = t.col("capture_point");
    Table { columns: t.columns.clone(), rows: t.rows.iter().filter(|r| r[c] == point).cloned().collect() }
}

/// The vSwitch topology captured by `flowtrail capture --mode MODE -i
/// 'tap*' -i 'veth*'` run in the hypervisor namespace, and by tcpdump on
/// the TAP and on the redis pod's host-side veth at the same time.
fn vswitch_capture(mode: &str, tag: &str, subnet: u8) {
    let dir = Scratch::new(&format!("vswitch-{tag}"));
    let www = dir.0.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let mut vs = VSwitch::new(tag, subnet, www);
    vs.serve();
    let hyp = vs.ns("hyp");
    let live_out = dir.0.join("live");
    let child = Command::new("ip")
        .args(["netns", "exec", &hyp])
        .arg(flowtrail_bin())
        .args(["capture", "--mode", mode, "-i", "tap*", "-i", "veth*", "-w", "1", "--run-id", "vs", "-o"])
        .arg(&live_out)
        .arg("--write-pcap")
        .arg(dir.0.join("kept"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("flowtrail capture");
    std::thread::sleep(Duration::from_millis(1500));
    let ifaces = ["tapvm", "vethred"];
    let dumps: Vec<(Child, PathBuf)> = ifaces
        .iter()
        .map(|i| {
            let pcap = dir.0.join(format!("{i}.pcap"));
            (tcpdump_in(Some(&hyp), i, &pcap, "inout"), pcap)
        })
        .collect();
    vs.traffic();
    let mut pcaps = Vec::new();
    for (d, pcap) in dumps {
        stop_tcpdump(d);
        pcaps.push(pcap);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(sh(&format!("kill -TERM {}", child.id())));
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "flowtrail capture: {}\n{text}", out.status);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(live_out.join("runs/vs.json")).expect("runs/vs.json")).unwrap();
    let points = json["points"].as_array().expect("points in the run summary");
    let point = |name: &str| points.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name}: {json}"));
    let (lf, lc) = (read_kind(&live_out, "flows"), read_kind(&live_out, "calls"));
    for p in points {
        println!(
            "{mode}: {} ifindex {} netns {}: {} packets, drops {}",
            p["name"], p["ifindex"], p["netns"], p["packets"], p["drops"]
        );
    }
    for name in ["tapvm", "vethred", "vethweb"] {
        let p = point(name);
        assert_eq!(p["mode"], mode);
        assert_eq!(p["ifindex"].to_string(), vs.ifindex(name), "{name}: ifindex");
        assert_eq!(p["netns"], hyp.as_str(), "{name}: netns");
        assert!(p["packets"].as_u64().unwrap() > 0, "{name}: traffic seen");
        // The text summary lists it too.
        assert!(text.lines().any(|l| l.trim_start().starts_with(name) && l.contains(mode)), "{name}:\n{text}");
    }
    assert_eq!(json["capture_dropped"], 0, "no drops: {json}");
    for (iface, pcap) in ifaces.iter().zip(&pcaps) {
        let replay_out = dir.0.join(format!("replay-{iface}"));
        let replayed = replay_file(pcap, &replay_out);
        let p = point(iface);
        let theirs_dropped = tcpdump_dropped(pcap);
        println!("{mode}: {iface}: live {} packets, tcpdump {}", p["packets"], replayed.packets);
        assert_eq!(p["dropped"], 0, "{iface}: no drops");
        // Where each record was seen.
        let (pf, pc) = (at_point(&lf, iface), at_point(&lc, iface));
        let ifindex = vs.ifindex(iface);
        for t in [&pf, &pc] {
            assert!(t.rows.iter().all(|r| r[t.col("capture_ifindex")] == ifindex), "{iface}: capture_ifindex");
            assert!(t.rows.iter().all(|r| r[t.col("capture_netns")] == hyp), "{iface}: capture_netns");
        }
        if theirs_dropped > 0 {
            // A loaded machine: tcpdump's copy is not whole, so it proves nothing.
            println!("{mode}: {iface}: tcpdump dropped {theirs_dropped} packets: not compared");
            continue;
        }
        if p["packets"].as_u64() != Some(replayed.packets) {
            explain_mismatch(&dir.0.join("kept"), pcap, iface);
        }
        assert_eq!(p["packets"].as_u64(), Some(replayed.packets), "{iface}: live and tcpdump saw the same packets");
        let (rf, rc) = (read_kind(&replay_out, "flows"), read_kind(&replay_out, "calls"));
        assert!(!pf.rows.is_empty());
        assert_eq!(
            comparable(&pf, false),
            comparable(&rf, false),
            "{mode} {iface}: flows differ from tcpdump's replay"
        );
        assert_eq!(
            comparable(&pc, false),
            comparable(&rc, false),
            "{mode} {iface}: calls differ from tcpdump's replay"
        );
        assert!(rf.rows.iter().all(|r| r[rf.col("capture_ifindex")] == "-" && r[rf.col("client_direction")] == "-"));
    }
    // The redis flows: the web pod's packets enter the bridge on vethweb
    // (ingress) and leave it into the redis pod on vethred (egress).
    let redis = |point: &str| -> Vec<String> {
        let t = at_point(&lf, point);
        let (port, dir) = (t.col("server_port"), t.col("client_direction"));
        t.rows.iter().filter(|r| r[port] == "6379").map(|r| r[dir].clone()).collect()
    };
    let (on_red, on_web) = (redis("vethred"), redis("vethweb"));
    assert!(on_red.len() >= 2, "redis-benchmark's connections: {on_red:?}");
    assert!(on_red.iter().all(|d| d == "egress"), "client packets leave the bridge into the redis pod: {on_red:?}");
    assert_eq!(on_web.len(), on_red.len());
    assert!(on_web.iter().all(|d| d == "ingress"), "client packets enter the bridge from the web pod: {on_web:?}");
    // The VM's flows (ping, UDP echo from the hypervisor): its TAP sends
    // the hypervisor's packets to the VM.
    let vm = at_point(&lf, "tapvm");
    let (proto, dir) = (vm.col("l4_protocol"), vm.col("client_direction"));
    let vm_flows: Vec<(&str, &str)> = vm.rows.iter().map(|r| (r[proto].as_str(), r[dir].as_str())).collect();
    assert!(vm_flows.contains(&("icmp", "egress")) && vm_flows.contains(&("udp", "egress")), "{vm_flows:?}");
    let redis_calls = at_point(&lc, "vethred").rows.len();
    println!(
        "{mode}: {} flows, {} calls ({redis_calls} redis calls on vethred), {} packets",
        lf.rows.len(),
        lc.rows.len(),
        json["packets"]
    );
    assert!(redis_calls >= 4000, "redis-benchmark's SETs and GETs: {redis_calls}");
    drop(vs);
}

#[test]
fn vswitch_afpacket_on_tap_and_veths_matches_tcpdump() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    vswitch_capture("afpacket", "a", 61);
}

#[test]
fn vswitch_tc_on_tap_and_veths_matches_tcpdump() {
    if !is_root() {
        eprintln!("SKIP: not root");
        return;
    }
    if !ebpf_available(EbpfMode::Tc) {
        return;
    }
    vswitch_capture("tc", "t", 62);
}

/// pcapng blocks, little-endian: `kind`, then `body` padded to 32 bits.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len().div_ceil(4) * 4) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(len as usize - 4, 0);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

/// One pcapng option, padded.
fn opt(code: u16, value: &[u8]) -> Vec<u8> {
    let mut o = [code.to_le_bytes(), (value.len() as u16).to_le_bytes()].concat();
    o.extend_from_slice(value);
    o.resize(4 + value.len().div_ceil(4) * 4, 0);
    o
}

/// Replay of a pcapng whose packets say their direction (`epb_flags`) and
/// whose statistics block reports drops: `client_direction` comes from the
/// flags, and the summary's per-point table (text and JSON) has the file's
/// packets, wire bytes and drops.
#[test]
fn pcapng_direction_flags_and_statistics_reach_records_and_the_summary() {
    use flowtrail_capture::pcap_file::PcapFileSource;
    use flowtrail_capture::PacketSource;
    let dir = Scratch::new("epbflags");
    let mut src = PcapFileSource::open(&root().join("pcaps/http_keepalive.pcap")).expect("bundled pcap");
    let mut out =
        block(0x0A0D_0D0A, &[&0x1A2B_3C4D_u32.to_le_bytes()[..], &[1, 0, 0, 0], &(-1i64).to_le_bytes()].concat());
    let (mut packets, mut bytes, mut linktype) = (0u64, 0u64, None);
    let mut epbs = Vec::new();
    while let Some(p) = src.next_packet().unwrap() {
        linktype.get_or_insert(p.linktype);
        // Ethernet, IPv4, TCP: to port 80 is inbound (the server's side).
        let ihl = usize::from(p.data[14] & 0x0f) * 4;
        let to_server = u16::from_be_bytes([p.data[16 + ihl], p.data[17 + ihl]]) == 80;
        let ts = p.ts_ns as u64;
        let mut body = [0u32, (ts >> 32) as u32, ts as u32, p.data.len() as u32, p.orig_len]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>();
        body.extend_from_slice(p.data);
        body.resize(20 + p.data.len().div_ceil(4) * 4, 0);
        body.extend(opt(2, &(if to_server { 1u32 } else { 2 }).to_le_bytes()));
        body.extend(opt(0, &[]));
        epbs.push(block(6, &body));
        packets += 1;
        bytes += u64::from(p.orig_len);
    }
    assert_eq!(linktype, Some(1), "an Ethernet capture");
    let idb =
        [&1u16.to_le_bytes()[..], &[0, 0], &0u32.to_le_bytes(), &opt(2, b"eth7"), &opt(9, &[9]), &opt(0, &[])].concat();
    out.extend(block(1, &idb));
    for e in epbs {
        out.extend(e);
    }
    let isb = [&[0u8; 12][..], &opt(5, &7u64.to_le_bytes()), &opt(0, &[])].concat();
    out.extend(block(5, &isb));
    let file = dir.0.join("flags.pcapng");
    std::fs::write(&file, out).unwrap();

    let s = replay_file(&file, &dir.0.join("out"));
    assert_eq!(s.packets, packets);
    let flows = read_kind(&dir.0.join("out"), "flows");
    let (port, d) = (flows.col("server_port"), flows.col("client_direction"));
    assert!(!flows.rows.is_empty());
    assert!(flows.rows.iter().all(|r| r[port] == "80" && r[d] == "ingress"), "{:?}", flows.rows);
    assert!(flows.rows.iter().all(|r| r[flows.col("capture_ifindex")] == "-" && r[flows.col("capture_netns")] == "-"));
    let expected = flowtrail::pipeline::PointStats {
        name: "flags.pcapng/eth7".into(),
        mode: "file",
        interface: "eth7".into(),
        file: "flags.pcapng".into(),
        ifindex: None,
        netns: None,
        packets,
        bytes,
        drops: [("file", 7)].into_iter().collect(),
        kernel_packets: 0,
        ring_freezes: 0,
    };
    assert_eq!(s.points, vec![expected]);
    assert_eq!(s.capture.dropped, 7);
    let text = flowtrail::summary::render(&s);
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("flags.pcapng/eth7")
            && l.ends_with(&format!("file    : {packets} packets, {bytes} bytes, drops file 7"))),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&flowtrail::summary::to_json(&s)).unwrap();
    let p = &json["points"][0];
    assert_eq!(
        (p["name"].as_str(), p["packets"].as_u64(), p["dropped"].as_u64()),
        (Some("flags.pcapng/eth7"), Some(packets), Some(7))
    );
    assert_eq!(p["drops"]["file"], 7);
    assert!(p["ifindex"].is_null() && p["netns"].is_null());
}
