//! Live capture on real traffic: `AfPacketSource` on veth pairs whose peer
//! sits in a network namespace made here, and `LinkWatcher` seeing links
//! come and go. Needs root (`CAP_NET_ADMIN`, `CAP_NET_RAW`, `CAP_SYS_ADMIN`)
//! and iproute2; every test prints SKIP and passes without them. tcpdump
//! and ping (`scripts/setup.sh --test`) are needed for the parts that use
//! them, which say SKIP when they are missing.
//!
//! Every namespace and link is named after the test and this process, and
//! a guard deletes them on the way out, panics included. Traffic stays on
//! the veth pairs, in 10.98.11.0/24 to 10.98.18.0/24,
//! bounded in count. MAC addresses and neighbours are static and IPv6 is
//! off on the pairs, so the only packets on them are the tests' own.
#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flowtrail_capture::af_packet::{AfPacketConfig, AfPacketSource, Fanout};
use flowtrail_capture::netdev::{self, LinkEvent, LinkWatcher};
use flowtrail_capture::pcap_file::PcapFileSource;
use flowtrail_capture::{linktype, CaptureError, CaptureStats, PacketSource, Polled};

// ---------------------------------------------------------------- allocation counting

/// Counts heap bytes allocated by the current thread while enabled, to
/// check that `next_packet` allocates nothing per packet.
struct CountingAlloc;

thread_local! {
    static COUNT_ALLOCS: Cell<bool> = const { Cell::new(false) };
    static ALLOC_BYTES: Cell<u64> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    if COUNT_ALLOCS.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOC_BYTES.try_with(|n| n.set(n.get() + size as u64));
    }
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

// ---------------------------------------------------------------- test network

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// A veth pair: `host` in this namespace (10.98.N.1), `peer` in namespace
/// `ns` (10.98.N.2). Dropping it deletes both, also during a panic.
struct Net {
    ns: String,
    host: String,
    peer: String,
    subnet: u8,
}

impl Net {
    /// `None` (after printing SKIP) when this machine cannot run the test.
    fn new(test: &str, tag: char, subnet: u8) -> Option<Net> {
        if !is_root() {
            println!("SKIP {test}: needs root");
            return None;
        }
        if !have("ip") {
            println!("SKIP {test}: iproute2 (ip) not installed");
            return None;
        }
        let pid = std::process::id() % 100_000;
        let prefix = format!("ftc{tag}");
        // Links a killed earlier run of this test left behind.
        for d in netdev::list().unwrap_or_default() {
            if netdev::matches(&format!("{prefix}[0-9]*"), &d.name) {
                let _ = run(&["ip", "link", "del", &d.name]);
            }
        }
        let net = Net {
            ns: format!("ftcap-{tag}-{pid}"),
            host: format!("{prefix}{pid}"),
            peer: format!("{prefix}{pid}p"),
            subnet,
        };
        let _ = run(&["ip", "netns", "del", &net.ns]);
        if let Err(e) = run(&["ip", "netns", "add", &net.ns]) {
            println!("SKIP {test}: cannot create a network namespace: {e}");
            return None;
        }
        if let Err(e) = net.setup() {
            drop(net);
            panic!("{test}: setting up the test network: {e}");
        }
        Some(net)
    }

    fn setup(&self) -> Result<(), String> {
        let (ns, host, peer, n) = (&self.ns, &self.host, &self.peer, self.subnet);
        let (hmac, pmac) = (self.host_mac(), self.peer_mac());
        run(&[
            "ip", "link", "add", host, "address", &hmac, "type", "veth", "peer", "name", peer, "address", &pmac,
            "netns", ns,
        ])?;
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6"), "1");
        self.exec(&["sh", "-c", &format!("echo 1 > /proc/sys/net/ipv6/conf/{peer}/disable_ipv6")])?;
        run(&["ip", "addr", "add", &format!("10.98.{n}.1/24"), "dev", host])?;
        run(&["ip", "-n", ns, "addr", "add", &format!("10.98.{n}.2/24"), "dev", peer])?;
        run(&["ip", "neigh", "replace", &format!("10.98.{n}.2"), "lladdr", &pmac, "dev", host, "nud", "permanent"])?;
        run(&[
            "ip",
            "-n",
            ns,
            "neigh",
            "replace",
            &format!("10.98.{n}.1"),
            "lladdr",
            &hmac,
            "dev",
            peer,
            "nud",
            "permanent",
        ])?;
        run(&["ip", "link", "set", host, "up"])?;
        run(&["ip", "-n", ns, "link", "set", peer, "up"])?;
        run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    fn host_mac(&self) -> String {
        format!("02:98:{:02x}:00:00:01", self.subnet)
    }

    fn peer_mac(&self) -> String {
        format!("02:98:{:02x}:00:00:02", self.subnet)
    }

    fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 98, self.subnet, 1)
    }

    fn peer_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 98, self.subnet, 2)
    }

    /// Runs a command inside the namespace.
    fn exec(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["ip", "netns", "exec", self.ns.as_str()];
        all.extend_from_slice(args);
        run(&all)
    }

    /// A UDP socket bound inside the namespace.
    fn peer_socket(&self, port: u16) -> UdpSocket {
        let addr = SocketAddrV4::new(self.peer_ip(), port);
        netdev::in_netns(&self.ns, || UdpSocket::bind(addr)).unwrap().unwrap()
    }

    fn host_socket(&self, port: u16) -> UdpSocket {
        UdpSocket::bind(SocketAddrV4::new(self.host_ip(), port)).unwrap()
    }

    /// `count` pings from the namespace to the host side (request and reply
    /// each). `false` when ping is not installed.
    fn ping(&self, count: u32) -> bool {
        if !have("ping") {
            return false;
        }
        let c = count.to_string();
        let to = self.host_ip().to_string();
        self.exec(&["ping", "-q", "-c", &c, "-i", "0.05", "-W", "1", &to]).unwrap();
        true
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.host]);
        let _ = run(&["ip", "netns", "del", &self.ns]);
    }
}

// ---------------------------------------------------------------- packets

#[derive(Debug, Clone, PartialEq, Eq)]
struct Captured {
    ts_ns: i64,
    data: Vec<u8>,
    orig_len: u32,
}

/// An IPv4 packet in an Ethernet frame (VLAN tag skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ip4 {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    sport: u16,
    dport: u16,
}

fn ipv4_of(frame: &[u8]) -> Option<Ip4> {
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        at += 4;
        ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    }
    if ethertype != 0x0800 {
        return None;
    }
    let ip = frame.get(at + 2..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let proto = *ip.get(9)?;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(*ip.get(16)?, ip[17], ip[18], ip[19]);
    let (sport, dport) = if proto == 17 || proto == 6 {
        let l4 = ip.get(ihl..ihl + 4)?;
        (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
    } else {
        (0, 0)
    };
    Some(Ip4 { src, dst, proto, sport, dport })
}

/// Ours: IPv4 within the test's /24.
fn in_subnet(frame: &[u8], subnet: u8) -> bool {
    ipv4_of(frame).is_some_and(|p| p.src.octets()[..3] == [10, 98, subnet] && p.dst.octets()[..3] == [10, 98, subnet])
}

/// How a capture thread ended, what it kept, the source's stats and the
/// bytes `next_packet` allocated.
type CaptureResult = (Result<(), CaptureError>, Vec<Captured>, CaptureStats, u64);

/// A source read on its own thread until stopped, keeping the packets
/// `keep` accepts.
struct Capture {
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicUsize>,
    thread: JoinHandle<CaptureResult>,
}

impl Capture {
    fn start(mut src: AfPacketSource, keep: impl Fn(&[u8]) -> bool + Send + 'static) -> Capture {
        let stop = src.stop_handle();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let thread = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut alloc_bytes = 0;
            let result = loop {
                ALLOC_BYTES.with(|n| n.set(0));
                COUNT_ALLOCS.with(|c| c.set(true));
                let next = src.next_packet();
                COUNT_ALLOCS.with(|c| c.set(false));
                alloc_bytes += ALLOC_BYTES.with(Cell::get);
                match next {
                    Ok(Some(p)) => {
                        assert_eq!(p.interface, 0);
                        if keep(p.data) {
                            got.push(Captured { ts_ns: p.ts_ns, data: p.data.to_vec(), orig_len: p.orig_len });
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            let stats = src.stats();
            (result, got, stats, alloc_bytes)
        });
        Capture { stop, seen, thread }
    }

    /// Waits until `n` packets were kept (or `timeout`), then stops.
    fn finish(self, n: usize, timeout: Duration) -> (Vec<Captured>, CaptureStats, u64) {
        let until = Instant::now() + timeout;
        while self.seen.load(Ordering::SeqCst) < n && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        // A little longer, to catch packets beyond the expected count.
        std::thread::sleep(Duration::from_millis(150));
        self.stop.store(true, Ordering::SeqCst);
        let (result, got, stats, alloc) = self.thread.join().expect("capture thread panicked");
        result.expect("capture ended with an error");
        (got, stats, alloc)
    }
}

/// tcpdump writing what it sees on an interface to a nanosecond pcap.
struct Tcpdump {
    child: Child,
    file: PathBuf,
}

impl Tcpdump {
    /// Starts tcpdump and waits until it listens. `None` when it is not
    /// installed.
    fn start(iface: &str, count: usize, filter: &str) -> Option<Tcpdump> {
        if !have("tcpdump") {
            return None;
        }
        let file = std::env::temp_dir().join(format!("flowtrail-afpacket-{iface}-{}.pcap", std::process::id()));
        let mut child = Command::new("tcpdump")
            .args(["-i", iface, "-n", "-U", "-Z", "root", "--time-stamp-precision=nano", "-c"])
            .arg(count.to_string())
            .arg("-w")
            .arg(&file)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpdump");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5)).expect("tcpdump did not start listening");
        Some(Tcpdump { child, file })
    }

    /// Waits for tcpdump to have its count (killing it after `timeout`)
    /// and reads its file.
    fn finish(mut self, timeout: Duration) -> Vec<Captured> {
        let until = Instant::now() + timeout;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = read_pcap(&self.file);
        let _ = std::fs::remove_file(&self.file);
        out
    }
}

fn read_pcap(path: &Path) -> Vec<Captured> {
    let mut src = PcapFileSource::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(p) = src.next_packet().unwrap() {
        out.push(Captured { ts_ns: p.ts_ns, data: p.data.to_vec(), orig_len: p.orig_len });
    }
    out
}

fn small_ring(iface: &str) -> AfPacketConfig {
    AfPacketConfig { block_size: 256 << 10, block_count: 8, ..AfPacketConfig::new(iface) }
}

// ---------------------------------------------------------------- tests

/// Everything sent across the pair is captured, once, byte for byte as
/// tcpdump sees it, with sane timestamps, no drops, no allocation.
#[test]
fn captures_what_is_sent_as_tcpdump_sees_it() {
    let Some(net) = Net::new("captures_what_is_sent_as_tcpdump_sees_it", 'a', 11) else { return };
    let src = AfPacketSource::open(&AfPacketConfig::new(&net.host)).unwrap();
    assert_eq!(src.interfaces().len(), 1);
    assert_eq!(src.interfaces()[0].name, net.host);
    assert_eq!(src.interfaces()[0].linktype, linktype::ETHERNET);
    assert!(src.is_live());
    let pings = if have("ping") { 3 } else { 0 };
    let datagrams = 20;
    let expected = 2 * datagrams + 2 * pings;
    let tcpdump = Tcpdump::start(&net.host, expected, "udp or icmp");
    let subnet = net.subnet;
    let cap = Capture::start(src, move |f| in_subnet(f, subnet));

    let t0 = now_ns();
    let host = net.host_socket(9999);
    let peer = net.peer_socket(40000);
    for i in 0..datagrams {
        let payload = vec![i as u8; 10 + 50 * i];
        peer.send_to(&payload, SocketAddrV4::new(net.host_ip(), 9999)).unwrap();
        host.send_to(&payload, SocketAddrV4::new(net.peer_ip(), 40000)).unwrap();
    }
    if pings > 0 {
        net.ping(pings as u32);
    } else {
        println!("SKIP part: ping not installed");
    }
    let (got, stats, alloc) = cap.finish(expected, Duration::from_secs(3));
    let t1 = now_ns();

    assert_eq!(got.len(), expected, "captured {} of {expected} packets", got.len());
    let udp: Vec<Ip4> = got.iter().filter_map(|c| ipv4_of(&c.data)).filter(|p| p.proto == 17).collect();
    assert_eq!(udp.iter().filter(|p| p.dport == 9999).count(), datagrams);
    assert_eq!(udp.iter().filter(|p| p.sport == 9999).count(), datagrams);
    for c in &got {
        assert_eq!(c.data.len() as u32, c.orig_len, "nothing snapped at the default snaplen");
        assert!(
            c.ts_ns >= t0 - 1_000_000_000 && c.ts_ns <= t1 + 1_000_000_000,
            "timestamp {} outside the test",
            c.ts_ns
        );
    }
    for w in got.windows(2) {
        assert!(w[1].ts_ns >= w[0].ts_ns - 10_000_000, "timestamps go back: {} then {}", w[0].ts_ns, w[1].ts_ns);
    }
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.freeze_count, 0);
    assert!(stats.packets >= expected as u64);
    assert!(stats.kernel_packets >= stats.packets, "{stats:?}");
    assert!(stats.bytes >= got.iter().map(|c| c.data.len() as u64).sum::<u64>());
    assert_eq!(alloc, 0, "next_packet allocated {alloc} bytes");

    match tcpdump {
        Some(t) => {
            let theirs = t.finish(Duration::from_secs(2));
            assert_eq!(theirs.len(), got.len(), "tcpdump saw {} packets, we saw {}", theirs.len(), got.len());
            let ours: BTreeSet<(&[u8], u32)> = got.iter().map(|c| (c.data.as_slice(), c.orig_len)).collect();
            let tcpd: BTreeSet<(&[u8], u32)> = theirs.iter().map(|c| (c.data.as_slice(), c.orig_len)).collect();
            assert_eq!(ours, tcpd, "the same frames, byte for byte");
            let mut ts_ours: Vec<i64> = got.iter().map(|c| c.ts_ns).collect();
            let mut ts_theirs: Vec<i64> = theirs.iter().map(|c| c.ts_ns).collect();
            ts_ours.sort();
            ts_theirs.sort();
            for (a, b) in ts_ours.iter().zip(&ts_theirs) {
                assert!((a - b).abs() < 5_000_000, "timestamps differ from tcpdump's: {a} vs {b}");
            }
        }
        None => println!("SKIP part: tcpdump not installed"),
    }
}

/// Two sockets in one hash fanout group: each flow, both directions, lands
/// on one of them, and both get flows.
#[test]
fn fanout_keeps_both_directions_of_a_flow_on_one_socket() {
    let Some(net) = Net::new("fanout_keeps_both_directions_of_a_flow_on_one_socket", 'b', 12) else { return };
    let group = (std::process::id() % 60_000) as u16 + 1;
    let cfg = AfPacketConfig { fanout: Some(Fanout::hash(group)), ..small_ring(&net.host) };
    let subnet = net.subnet;
    let caps: Vec<Capture> =
        (0..2).map(|_| Capture::start(AfPacketSource::open(&cfg).unwrap(), move |f| in_subnet(f, subnet))).collect();
    let host = net.host_socket(9999);
    let flows = 32u16;
    let each = 3;
    for i in 0..flows {
        let peer = net.peer_socket(41000 + i);
        for _ in 0..each {
            peer.send_to(b"request", SocketAddrV4::new(net.host_ip(), 9999)).unwrap();
            host.send_to(b"reply", SocketAddrV4::new(net.peer_ip(), 41000 + i)).unwrap();
        }
    }
    let total = usize::from(flows) * each * 2;
    let until = Instant::now() + Duration::from_secs(3);
    while caps.iter().map(|c| c.seen.load(Ordering::SeqCst)).sum::<usize>() < total && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut got: Vec<Vec<Captured>> = Vec::new();
    for c in caps {
        let (g, stats, _) = c.finish(0, Duration::ZERO);
        assert_eq!(stats.dropped, 0);
        got.push(g);
    }
    assert_eq!(got.iter().map(Vec::len).sum::<usize>(), total);
    // flow (peer port) -> sockets that saw it, and packets per flow
    let mut owner: BTreeMap<u16, BTreeSet<usize>> = BTreeMap::new();
    let mut per_flow: BTreeMap<u16, usize> = BTreeMap::new();
    for (sock, pkts) in got.iter().enumerate() {
        for c in pkts {
            let p = ipv4_of(&c.data).unwrap();
            assert_eq!(p.proto, 17);
            let port = if p.sport == 9999 { p.dport } else { p.sport };
            owner.entry(port).or_default().insert(sock);
            *per_flow.entry(port).or_default() += 1;
        }
    }
    assert_eq!(owner.len(), usize::from(flows));
    for (port, socks) in &owner {
        assert_eq!(socks.len(), 1, "flow {port} split over sockets {socks:?}");
        assert_eq!(per_flow[port], each * 2, "flow {port}");
    }
    let on_first = owner.values().filter(|s| s.contains(&0)).count();
    assert!(on_first > 0 && on_first < usize::from(flows), "all {flows} flows on one socket ({on_first} on the first)");
}

/// A tcpdump-syntax filter keeps the UDP to one port and drops the rest
/// (pings, replies); a snap length cuts frames; the source works inside
/// another namespace; `ignore_outgoing` skips what the host sends.
#[test]
fn filter_and_snaplen_in_a_namespace() {
    let Some(net) = Net::new("filter_and_snaplen_in_a_namespace", 'c', 13) else { return };
    if !have("tcpdump") {
        let cfg = AfPacketConfig { filter: Some("udp".into()), ..small_ring(&net.host) };
        let err = AfPacketSource::open(&cfg).unwrap_err();
        assert!(matches!(err, CaptureError::Filter { .. }) && err.to_string().contains("not found"), "{err}");
        println!("SKIP filter_and_snaplen_in_a_namespace: tcpdump not installed");
        return;
    }
    // On the namespace side of the pair, opened from here.
    let cfg = AfPacketConfig {
        netns: Some(net.ns.clone()),
        filter: Some("udp dst port 9999".into()),
        snaplen: 64,
        ..small_ring(&net.peer)
    };
    let src = AfPacketSource::open(&cfg).unwrap();
    assert_eq!(src.interfaces()[0].snaplen, 64);
    let cap = Capture::start(src, |_| true);
    // On the host side, only what comes in.
    let incoming = AfPacketConfig { ignore_outgoing: true, ..small_ring(&net.host) };
    let subnet = net.subnet;
    let incoming = Capture::start(AfPacketSource::open(&incoming).unwrap(), move |f| {
        in_subnet(f, subnet) && ipv4_of(f).is_some_and(|p| p.proto == 17)
    });
    let host = net.host_socket(9999);
    let peer = net.peer_socket(40000);
    let n = 10;
    let pinged = net.ping(3);
    for _ in 0..n {
        peer.send_to(&[7u8; 500], SocketAddrV4::new(net.host_ip(), 9999)).unwrap();
        // To port 9998 (from 9999): not in the filter.
        host.send_to(&[8u8; 500], SocketAddrV4::new(net.peer_ip(), 9998)).unwrap();
    }
    let (got, stats, _) = cap.finish(n, Duration::from_secs(3));
    assert_eq!(got.len(), n, "the filter keeps exactly the datagrams to port 9999 (pinged: {pinged})");
    for c in &got {
        let p = ipv4_of(&c.data).unwrap();
        assert_eq!((p.proto, p.dport), (17, 9999));
        assert_eq!(c.data.len(), 64);
        assert_eq!(c.orig_len, 14 + 20 + 8 + 500);
    }
    assert_eq!(stats.snapped, n as u64);
    assert_eq!(stats.dropped, 0);
    let (got, _, _) = incoming.finish(n, Duration::from_secs(1));
    assert_eq!(got.len(), n, "ignore_outgoing keeps the datagrams that come in, not those sent");
    assert!(got.iter().all(|c| ipv4_of(&c.data).unwrap().dport == 9999));

    // Bad filters say so.
    let bad = AfPacketConfig { filter: Some("udp port".into()), ..small_ring(&net.host) };
    let err = AfPacketSource::open(&bad).unwrap_err();
    assert!(matches!(err, CaptureError::Filter { .. }), "{err}");
    let missing =
        AfPacketConfig { filter: Some("udp".into()), tcpdump: "/nonexistent/tcpdump".into(), ..small_ring(&net.host) };
    let err = AfPacketSource::open(&missing).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    // And impossible configurations.
    let err = AfPacketSource::open(&small_ring("ftc-no-such0")).unwrap_err();
    assert!(matches!(err, CaptureError::Config { .. }), "{err}");
    let err = AfPacketSource::open(&AfPacketConfig { frame_size: 100, ..small_ring(&net.host) }).unwrap_err();
    assert!(matches!(err, CaptureError::Config { .. }), "{err}");
}

/// An Ethernet frame carrying UDP in IPv4, behind `tags` (TPID, TCI).
fn udp_frame(dst: [u8; 6], src: [u8; 6], tags: &[(u16, u16)], ips: (Ipv4Addr, Ipv4Addr), payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&ips.0.octets());
    ip.extend_from_slice(&ips.1.octets());
    let sum = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
    let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&9999u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
    v.try_into().unwrap()
}

/// A raw AF_PACKET socket (protocol 0: it receives nothing) for sending
/// frames, and a `sockaddr_ll` for `ifindex`.
fn raw_sender(ifindex: u32) -> (std::os::fd::OwnedFd, libc::sockaddr_ll) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `fd` is new and ours.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    (fd, sll)
}

fn send_raw(fd: &std::os::fd::OwnedFd, sll: &libc::sockaddr_ll, frame: &[u8]) {
    use std::os::fd::AsRawFd;
    // SAFETY: `frame` and `sll` are valid for the lengths given.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(n, frame.len() as isize, "{}", std::io::Error::last_os_error());
}

/// What a plain (ring-less) AF_PACKET socket receives: the kernel does not
/// put stripped VLAN tags back there, which shows that it stripped them.
fn plain_receiver(ifindex: u32) -> std::os::fd::OwnedFd {
    use std::os::fd::AsRawFd;
    let (fd, mut sll) = raw_sender(ifindex);
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: `sll` is a valid sockaddr_ll and the length is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    fd
}

fn recv_all(fd: &std::os::fd::OwnedFd) -> Vec<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n < 0 {
            return out;
        }
        out.push(buf[..n as usize].to_vec());
    }
}

/// 802.1Q and 802.1ad tags that the kernel moves into metadata on receive
/// are put back in the frame: the capture shows exactly the bytes sent (a
/// ring-less socket shows them without the tag), as tcpdump does.
#[test]
fn vlan_tags_are_put_back() {
    let Some(net) = Net::new("vlan_tags_are_put_back", 'd', 14) else { return };
    let peer_index = netdev::list_in(&net.ns).unwrap().into_iter().find(|d| d.name == net.peer).unwrap().ifindex;
    let host_index = netdev::list().unwrap().into_iter().find(|d| d.name == net.host).unwrap().ifindex;
    let (hmac, pmac) = (mac(&net.host_mac()), mac(&net.peer_mac()));
    let ips = (net.peer_ip(), net.host_ip());
    let frames: Vec<Vec<u8>> = (0..6usize)
        .map(|i| {
            let tags: &[(u16, u16)] = match i % 3 {
                0 => &[(0x8100, 3 << 13 | 100)],
                1 => &[(0x8100, 0)], // priority tag: VLAN 0
                _ => &[(0x88a8, 200), (0x8100, 100)],
            };
            udp_frame(hmac, pmac, tags, ips, &vec![i as u8; 60 + i])
        })
        .collect();

    let src = AfPacketSource::open(&small_ring(&net.host)).unwrap();
    let plain = plain_receiver(host_index);
    let tcpdump = Tcpdump::start(&net.host, frames.len(), &format!("ether src {}", net.peer_mac()));
    let cap = Capture::start(src, move |f| f.get(6..12) == Some(&pmac[..]));
    let (tx, mut sll) = netdev::in_netns(&net.ns, || raw_sender(peer_index)).unwrap();
    sll.sll_addr[..6].copy_from_slice(&hmac);
    for f in &frames {
        send_raw(&tx, &sll, f);
    }
    let (got, stats, _) = cap.finish(frames.len(), Duration::from_secs(3));
    let ours: Vec<&[u8]> = got.iter().map(|c| c.data.as_slice()).collect();
    let sent: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(ours, sent, "the captured frames are the frames sent, tags included");
    for c in &got {
        assert_eq!(c.orig_len as usize, c.data.len());
    }
    assert_eq!(stats.dropped, 0);
    let stripped = recv_all(&plain).into_iter().filter(|f| f.get(6..12) == Some(&pmac[..])).collect::<Vec<_>>();
    // The kernel stripped the outer tag of each on receive (always, since
    // Linux 3.x): what the test saw put back was put back by the source.
    assert_eq!(stripped.len(), frames.len());
    for (s, f) in stripped.iter().zip(&frames) {
        assert_eq!(s.len() + 4, f.len(), "a ring-less socket sees the frame without its outer tag");
        assert_eq!(s[..12], f[..12]);
        assert_eq!(s[12..], f[16..]);
    }
    match tcpdump {
        Some(t) => {
            let theirs = t.finish(Duration::from_secs(2));
            let theirs: Vec<&[u8]> = theirs.iter().map(|c| c.data.as_slice()).collect();
            assert_eq!(theirs, sent, "tcpdump shows the same tagged frames");
        }
        None => println!("SKIP part: tcpdump not installed"),
    }
}

/// The stop flag ends an idle `next_packet` within ~200 ms; `poll_packet`
/// answers `Idle` after its timeout and `End` once stopped.
#[test]
fn stop_flag_and_idle_polls() {
    let Some(net) = Net::new("stop_flag_and_idle_polls", 'e', 15) else { return };
    let mut src = AfPacketSource::open(&small_ring(&net.host)).unwrap();
    let t = Instant::now();
    match src.poll_packet(Duration::from_millis(50)).unwrap() {
        Polled::Idle { now_ns } => assert!((now_ns - self::now_ns()).abs() < 1_000_000_000),
        other => panic!("expected Idle, got {other:?}"),
    }
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(45) && waited < Duration::from_millis(500), "{waited:?}");

    let stop = src.stop_handle();
    let worker = std::thread::spawn(move || {
        let mut n = 0;
        while src.next_packet().unwrap().is_some() {
            n += 1;
        }
        (n, src)
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    stop.store(true, Ordering::SeqCst);
    let (n, mut src) = worker.join().unwrap();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(200), "stop took {took:?}");
    assert_eq!(n, 0, "nothing on an idle pair");
    assert!(matches!(src.poll_packet(Duration::from_millis(10)).unwrap(), Polled::End));
    assert!(src.next_packet().unwrap().is_none());
}

/// Deleting the interface ends the source with `InterfaceGone`, after the
/// packets the ring held. (And a snap length without a filter cuts.)
#[test]
fn interface_deletion_ends_the_source() {
    let Some(net) = Net::new("interface_deletion_ends_the_source", 'f', 16) else { return };
    let mut src = AfPacketSource::open(&AfPacketConfig { snaplen: 50, ..small_ring(&net.host) }).unwrap();
    let _host = net.host_socket(9999);
    let peer = net.peer_socket(40000);
    for _ in 0..3 {
        peer.send_to(&[5u8; 200], SocketAddrV4::new(net.host_ip(), 9999)).unwrap();
    }
    // Let the packets into the ring, then delete the interface.
    std::thread::sleep(Duration::from_millis(50));
    run(&["ip", "link", "del", &net.host]).unwrap();
    let t = Instant::now();
    let mut before = 0;
    let err = loop {
        match src.next_packet() {
            Ok(Some(p)) => {
                assert!(
                    p.data.len() <= 50 && p.orig_len as usize >= p.data.len(),
                    "{} of {}",
                    p.data.len(),
                    p.orig_len
                );
                before += usize::from(in_subnet(p.data, net.subnet));
            }
            Ok(None) => panic!("not stopped"),
            Err(e) => break e,
        }
        assert!(t.elapsed() < Duration::from_secs(3), "still capturing on a deleted interface");
    };
    assert!(matches!(err, CaptureError::InterfaceGone { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_millis(1500), "noticed after {:?}", t.elapsed());
    assert_eq!(before, 3, "the packets the ring held came first");
}

/// A ring too small for the burst counts the kernel's drops, and the
/// counters accumulate across reads.
#[test]
fn ring_overflow_is_counted() {
    let Some(net) = Net::new("ring_overflow_is_counted", 'g', 17) else { return };
    let cfg = AfPacketConfig {
        block_size: 4096,
        block_count: 2,
        frame_size: 2048,
        block_timeout_ms: 10,
        ..AfPacketConfig::new(&net.host)
    };
    let src = AfPacketSource::open(&cfg).unwrap();
    let first = src.stats();
    assert_eq!((first.kernel_packets, first.dropped), (0, 0));
    let _host = net.host_socket(9999);
    let peer = net.peer_socket(40000);
    let sent = 100;
    for _ in 0..sent {
        peer.send_to(&[0u8; 1000], SocketAddrV4::new(net.host_ip(), 9999)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let a = src.stats();
    let b = src.stats();
    assert_eq!(a.kernel_packets, sent, "{a:?}");
    assert!(a.dropped > 0 && a.dropped < sent, "{a:?}");
    assert!(a.freeze_count > 0, "{a:?}");
    assert_eq!((b.kernel_packets, b.dropped), (a.kernel_packets, a.dropped), "kernel resets; we accumulate");
    assert_eq!(a.packets, 0, "none read yet");
}

/// `LinkWatcher` sees a veth pair appear and disappear within a second,
/// in this namespace and in another.
#[test]
fn link_watcher_sees_links_come_and_go() {
    let Some(net) = Net::new("link_watcher_sees_links_come_and_go", 'h', 18) else { return };
    let mut watcher = LinkWatcher::open().unwrap();
    assert!(watcher.devices().any(|d| d.name == "lo"));
    assert!(watcher.devices().any(|d| d.name == net.host && d.kind.as_deref() == Some("veth")));
    let mut in_ns = LinkWatcher::open_in(&net.ns).unwrap();
    assert!(in_ns.devices().any(|d| d.name == net.peer && d.netns.as_deref() == Some(net.ns.as_str())));
    let listed = netdev::list_in(&net.ns).unwrap();
    assert!(listed.iter().any(|d| d.name == "lo") && listed.iter().any(|d| d.name == net.peer));

    let pid = std::process::id() % 100_000;
    let (a, b) = (format!("ftch{pid}x"), format!("ftch{pid}y"));
    let wait_for = |w: &mut LinkWatcher, want: &dyn Fn(&LinkEvent) -> bool| -> Duration {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(1) {
            if w.poll(Duration::from_millis(100)).unwrap().iter().any(want) {
                return t.elapsed();
            }
        }
        panic!("no such event within 1 s");
    };
    let t = Instant::now();
    run(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b]).unwrap();
    wait_for(&mut watcher, &|e| matches!(e, LinkEvent::Added(d) if d.name == a && netdev::matches("ftch*x", &d.name)));
    assert!(watcher.devices().any(|d| d.name == b), "the peer is known too");
    run(&["ip", "link", "del", &a]).unwrap();
    wait_for(&mut watcher, &|e| matches!(e, LinkEvent::Removed(d) if d.name == a));
    assert!(t.elapsed() < Duration::from_secs(2));
    let until = Instant::now() + Duration::from_secs(1);
    while watcher.devices().any(|d| d.name == b) && Instant::now() < until {
        watcher.poll(Duration::from_millis(50)).unwrap();
    }
    assert!(!watcher.devices().any(|d| d.name == b), "the peer went with it");

    // In the other namespace.
    run(&["ip", "-n", &net.ns, "link", "add", "nsx0", "type", "veth", "peer", "name", "nsy0"]).unwrap();
    wait_for(&mut in_ns, &|e| matches!(e, LinkEvent::Added(d) if d.name == "nsx0"));
    run(&["ip", "-n", &net.ns, "link", "del", "nsx0"]).unwrap();
    wait_for(&mut in_ns, &|e| matches!(e, LinkEvent::Removed(d) if d.name == "nsx0"));
    // Moving a link into a namespace is an appearance there.
    let moved = format!("ftch{pid}m");
    run(&["ip", "link", "add", &moved, "type", "veth", "peer", "name", &format!("ftch{pid}n")]).unwrap();
    run(&["ip", "link", "set", &moved, "netns", &net.ns]).unwrap();
    wait_for(&mut in_ns, &|e| matches!(e, LinkEvent::Added(d) if d.name == moved));
    wait_for(&mut watcher, &|e| matches!(e, LinkEvent::Removed(d) if d.name == moved));
    let _ = run(&["ip", "link", "del", &format!("ftch{pid}n")]);
}
