//! Live eBPF capture on a veth pair whose far end sits in a network
//! namespace made here: TC sees both directions, XDP ingress only, bytes
//! match tcpdump on the same interface, packets still arrive, detach
//! leaves nothing attached.
//!
//! Needs root and the eBPF object (`scripts/setup-ebpf.sh &&
//! scripts/build-ebpf.sh`); without either each test prints SKIP and
//! passes. Traffic stays on 10.97.0.0/24 between the veth's two ends.
#![cfg(all(target_os = "linux", feature = "ebpf"))]

use std::{
    fs::File,
    io::{BufRead, BufReader},
    net::{SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{atomic::Ordering, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aya::programs::{SchedClassifier, TcAttachType};
use flowtrail_capture::{
    ebpf::{
        find_object, Direction, EbpfConfig, EbpfError, EbpfMode, EbpfSource, TcAttach, XdpAttach, BUILD_HINT, SNAP_LEN,
    },
    linktype,
    pcap_file::PcapFileSource,
    PacketSource, Polled,
};

const IF_ROOT: &str = "fteb0";
const IF_PEER: &str = "fteb0p";
const NETNS: &str = "fteb-ns";
const ADDR_ROOT: &str = "10.97.0.1";
const ADDR_PEER: &str = "10.97.0.2";
const UDP_PORT: u16 = 40997;

/// One veth pair at a time: the tests share its names.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why this test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    if let Err(e) = find_object(None) {
        return Some(e.to_string());
    }
    if !have("ip") {
        return Some("`ip` (iproute2) not found".into());
    }
    None
}

macro_rules! skip_unless_ready {
    ($name:expr) => {
        if let Some(why) = skip_reason() {
            println!("SKIP {}: {why}", $name);
            return;
        }
    };
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

fn sh(args: &[&str]) {
    if let Err(e) = run(args) {
        panic!("{e}");
    }
}

/// The veth pair and namespace; dropping it deletes both, panic or not.
struct Veth;

impl Veth {
    fn new() -> Veth {
        Self::cleanup();
        let guard = Veth;
        sh(&["ip", "netns", "add", NETNS]);
        sh(&["ip", "link", "add", IF_ROOT, "type", "veth", "peer", "name", IF_PEER]);
        sh(&["ip", "link", "set", IF_PEER, "netns", NETNS]);
        // No IPv6: no router solicitations or MLD reports at random times
        // to upset the packet-for-packet comparison with tcpdump.
        for (ns, dev) in [(None, IF_ROOT), (Some(NETNS), IF_PEER)] {
            let key = format!("net.ipv6.conf.{dev}.disable_ipv6=1");
            let _ = match ns {
                None => run(&["sysctl", "-q", "-w", &key]),
                Some(ns) => run(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", &key]),
            };
        }
        sh(&["ip", "addr", "add", &format!("{ADDR_ROOT}/24"), "dev", IF_ROOT]);
        sh(&["ip", "-n", NETNS, "addr", "add", &format!("{ADDR_PEER}/24"), "dev", IF_PEER]);
        sh(&["ip", "link", "set", IF_ROOT, "up"]);
        sh(&["ip", "-n", NETNS, "link", "set", IF_PEER, "up"]);
        sh(&["ip", "-n", NETNS, "link", "set", "lo", "up"]);
        // Let link-up chatter pass before any capture starts.
        thread::sleep(Duration::from_millis(300));
        guard
    }

    fn cleanup() {
        let _ = run(&["ip", "link", "del", IF_ROOT]);
        let _ = run(&["ip", "netns", "del", NETNS]);
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        Self::cleanup();
    }
}

/// `n` ICMP echoes of `size` payload bytes from the namespace to the root
/// side; true when every reply came back.
fn ping_from_ns(n: u32, size: u32) -> bool {
    Command::new("ip")
        .args(["netns", "exec", NETNS, "ping", "-q", "-n", "-c", &n.to_string(), "-i", "0.2", "-W", "1"])
        .args(["-s", &size.to_string(), ADDR_ROOT])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `n` UDP datagrams from a socket inside the namespace (made by a thread
/// that enters it) to an echo socket on the root side; returns how many
/// echoes came back.
fn udp_echo_from_ns(n: usize, size: usize) -> usize {
    let server = UdpSocket::bind((ADDR_ROOT, UDP_PORT)).expect("bind root-side UDP socket");
    server.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let echo = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut served = 0;
        while let Ok((len, from)) = server.recv_from(&mut buf) {
            server.send_to(&buf[..len], from).unwrap();
            served += 1;
        }
        served
    });
    let client = thread::spawn(move || {
        let ns = File::open(format!("/run/netns/{NETNS}")).expect("open netns");
        // SAFETY: moves only this thread into the namespace.
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        let sock = UdpSocket::bind((ADDR_PEER, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let to: SocketAddr = format!("{ADDR_ROOT}:{UDP_PORT}").parse().unwrap();
        let mut back = 0;
        let mut buf = [0u8; 2048];
        for i in 0..n {
            let msg: Vec<u8> = (0..size).map(|j| (i * 7 + j) as u8).collect();
            sock.send_to(&msg, to).unwrap();
            if let Ok((len, _)) = sock.recv_from(&mut buf) {
                if buf[..len] == msg[..] {
                    back += 1;
                }
            }
        }
        back
    });
    let back = client.join().unwrap();
    let _ = echo.join();
    back
}

/// tcpdump writing a pcap of the same interface, the same snap length.
struct Tcpdump {
    child: Child,
    path: PathBuf,
}

impl Tcpdump {
    fn start(path: &Path) -> Option<Tcpdump> {
        if !have("tcpdump") {
            return None;
        }
        let mut child = Command::new("tcpdump")
            .args(["-i", IF_ROOT, "-n", "-U", "--immediate-mode", "-s", &SNAP_LEN.to_string(), "-w"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        // Ready once it says it listens.
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("listening on") => break,
                Some(Ok(_)) if Instant::now() < deadline => continue,
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
        // Keep draining stderr so tcpdump never blocks on it.
        thread::spawn(move || for _ in lines {});
        Some(Tcpdump { child, path: path.to_path_buf() })
    }

    /// Stop (SIGINT flushes) and return (data, orig_len) per packet.
    fn finish(mut self) -> Vec<(Vec<u8>, u32)> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        let mut src = PcapFileSource::open(&self.path).expect("open tcpdump's pcap");
        let mut out = Vec::new();
        while let Some(p) = src.next_packet().expect("read tcpdump's pcap") {
            out.push((p.data.to_vec(), p.orig_len));
        }
        let _ = std::fs::remove_file(&self.path);
        out
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
struct Got {
    ts_ns: i64,
    interface: u32,
    linktype: u32,
    data: Vec<u8>,
    orig_len: u32,
    dir: Direction,
    hook: EbpfMode,
}

/// Everything the source has until it stays quiet for `quiet`.
fn drain(src: &mut EbpfSource, quiet: Duration) -> Vec<Got> {
    let mut out = Vec::new();
    loop {
        match src.poll_packet(quiet).expect("poll_packet") {
            Polled::Packet(p) => {
                let (ts_ns, interface, linktype, data, orig_len) =
                    (p.ts_ns, p.interface, p.linktype, p.data.to_vec(), p.orig_len);
                let m = src.last_meta();
                out.push(Got { ts_ns, interface, linktype, data, orig_len, dir: m.direction, hook: m.hook });
            }
            Polled::Idle { .. } | Polled::End => return out,
        }
    }
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// (ICMP type) of an IPv4 ICMP packet between the two test addresses.
fn icmp_type(frame: &[u8]) -> Option<u8> {
    if frame.len() < 14 + 20 + 1 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 1 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    frame.get(14 + ihl).copied()
}

/// Destination UDP port of an IPv4 UDP packet.
fn udp_ports(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 14 + 20 + 4 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 17 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let l4 = frame.get(14 + ihl..14 + ihl + 4)?;
    Some((u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]])))
}

fn tc_attached_names(dir: TcAttachType) -> Vec<String> {
    match SchedClassifier::query_tcx(IF_ROOT, dir) {
        Ok((_, progs)) => progs.iter().map(|p| p.name_as_str().unwrap_or("?").to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Every trace of our programs on the interface, from every tool at hand.
fn leftovers() -> Vec<String> {
    let mut found = Vec::new();
    for dir in [TcAttachType::Ingress, TcAttachType::Egress] {
        found.extend(tc_attached_names(dir).into_iter().map(|n| format!("tcx {dir:?}: {n}")));
    }
    for dir in ["ingress", "egress"] {
        if let Ok(out) = run(&["tc", "filter", "show", "dev", IF_ROOT, dir]) {
            if !out.trim().is_empty() {
                found.push(format!("tc filter {dir}: {out}"));
            }
        }
    }
    if let Ok(out) = run(&["ip", "-d", "link", "show", "dev", IF_ROOT]) {
        if out.contains("xdp") || out.contains("prog/xdp") {
            found.push(format!("ip link: {out}"));
        }
    }
    if have("bpftool") {
        if let Ok(out) = run(&["bpftool", "net", "show", "dev", IF_ROOT]) {
            if out.contains("ft_") {
                found.push(format!("bpftool net: {out}"));
            }
        }
    }
    found
}

#[test]
fn missing_object_error_says_how_to_build() {
    let cfg = EbpfConfig { object: Some("/nonexistent/flowtrail-capture-ebpf".into()), ..Default::default() };
    let Err(e) = EbpfSource::open(&cfg) else { panic!("opened a missing object") };
    assert!(matches!(e, EbpfError::ObjectNotFound { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(BUILD_HINT) && msg.contains("/nonexistent/"), "{msg}");
}

#[test]
fn tc_captures_both_directions_like_tcpdump() {
    skip_unless_ready!("tc_captures_both_directions_like_tcpdump");
    let _serial = serial();
    let _veth = Veth::new();

    let mut src = EbpfSource::open(&EbpfConfig {
        mode: EbpfMode::Tc,
        interfaces: vec![IF_ROOT.into()],
        poll_timeout_ms: 50,
        ..Default::default()
    })
    .expect("open TC capture");
    assert_eq!(src.attached(), vec![IF_ROOT]);
    assert_eq!(src.interfaces().len(), 1);
    assert_eq!(src.interfaces()[0].name, IF_ROOT);
    assert_eq!(src.interfaces()[0].linktype, linktype::ETHERNET);
    for dir in [TcAttachType::Ingress, TcAttachType::Egress] {
        let names = tc_attached_names(dir);
        assert!(names.iter().any(|n| n.starts_with("ft_tc_")), "tcx {dir:?}: {names:?}");
    }

    let pcap = std::env::temp_dir().join(format!("fteb-tc-{}.pcap", std::process::id()));
    let tcpdump = Tcpdump::start(&pcap);
    if tcpdump.is_none() {
        println!("note: tcpdump missing, byte comparison skipped");
    }
    let t0 = now_ns();
    // Small echoes, then big ones that the snap length cuts, then UDP.
    let have_ping = have("ping");
    if have_ping {
        assert!(ping_from_ns(5, 56), "pings lost: the programs changed a packet's fate");
        assert!(ping_from_ns(2, 1000), "big pings lost");
    } else {
        println!("note: ping missing, UDP only");
    }
    assert_eq!(udp_echo_from_ns(5, 100), 5, "UDP echoes lost: the programs changed a packet's fate");
    thread::sleep(Duration::from_millis(200));
    let dumped = tcpdump.map(Tcpdump::finish);
    let got = drain(&mut src, Duration::from_millis(300));
    let t1 = now_ns();
    let stats = src.stats();
    println!("ebpf: {} packets, stats {stats:?}", got.len());

    assert_eq!(stats.dropped, 0, "ring drops on a handful of packets");
    assert_eq!(stats.packets, got.len() as u64);
    assert_eq!(stats.kernel_packets, got.len() as u64, "programs ran on packets that never came out");
    for g in &got {
        assert_eq!((g.interface, g.linktype, g.hook), (0, linktype::ETHERNET, EbpfMode::Tc));
        assert!(g.ts_ns >= t0 - 1_000_000 && g.ts_ns <= t1 + 1_000_000, "timestamp {} outside [{t0}, {t1}]", g.ts_ns);
        assert_eq!(g.data.len(), (g.orig_len as usize).min(SNAP_LEN));
    }
    assert!(got.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns + 1_000_000), "timestamps go back");

    // Requests come in (ingress at the root-side end), replies go out.
    let icmp = |ty: u8, dir: Direction| got.iter().filter(|g| icmp_type(&g.data) == Some(ty) && g.dir == dir).count();
    if have_ping {
        assert_eq!(icmp(8, Direction::Ingress), 7, "echo requests at ingress");
        assert_eq!(icmp(0, Direction::Egress), 7, "echo replies at egress");
        assert_eq!(icmp(8, Direction::Egress) + icmp(0, Direction::Ingress), 0, "ICMP with the wrong direction");
        let big: Vec<&Got> = got.iter().filter(|g| icmp_type(&g.data).is_some() && g.orig_len > 1000).collect();
        assert_eq!(big.len(), 4, "1000-byte echoes");
        assert!(big.iter().all(|g| g.data.len() == SNAP_LEN && g.orig_len == 14 + 20 + 8 + 1000));
        assert!(stats.snapped >= 4);
    }
    let udp = |ports: (u16, u16), dir: Direction| {
        got.iter()
            .filter(|g| udp_ports(&g.data).is_some_and(|p| p.1 == ports.1 || p.0 == ports.0) && g.dir == dir)
            .count()
    };
    assert_eq!(udp((0, UDP_PORT), Direction::Ingress), 5, "UDP requests at ingress");
    assert_eq!(udp((UDP_PORT, 0), Direction::Egress), 5, "UDP echoes at egress");

    // Byte for byte what tcpdump saw, in the same order per direction.
    if let Some(dumped) = dumped {
        println!("tcpdump: {} packets", dumped.len());
        let ours: Vec<(Vec<u8>, u32)> = got.iter().map(|g| (g.data.clone(), g.orig_len)).collect();
        let mut a = ours.clone();
        let mut b = dumped.clone();
        a.sort();
        b.sort();
        assert_eq!(a.len(), b.len(), "packet counts differ: ebpf {} tcpdump {}", a.len(), b.len());
        assert!(a == b, "captured bytes differ from tcpdump's");
    }

    // Detach: nothing left, and new packets are not captured.
    assert!(src.detach(IF_ROOT).unwrap());
    assert!(!src.detach(IF_ROOT).unwrap(), "second detach");
    assert!(src.attached().is_empty());
    let left = leftovers();
    assert!(left.is_empty(), "still attached after detach: {left:?}");
    assert_eq!(udp_echo_from_ns(2, 10), 2);
    let after = drain(&mut src, Duration::from_millis(200));
    assert!(after.is_empty(), "{} packets after detach", after.len());
    assert_eq!(src.interfaces().len(), 1, "detached interfaces keep their index");

    // Attach again (same index), then dropping the source detaches.
    assert_eq!(src.attach(IF_ROOT).unwrap(), 0);
    assert_eq!(udp_echo_from_ns(1, 10), 1);
    let again = drain(&mut src, Duration::from_millis(300));
    assert_eq!(again.len(), 2, "re-attached: {again:?}");
    drop(src);
    let left = leftovers();
    assert!(left.is_empty(), "still attached after drop: {left:?}");
}

#[test]
fn xdp_captures_ingress_only() {
    skip_unless_ready!("xdp_captures_ingress_only");
    let _serial = serial();
    let _veth = Veth::new();

    // Open with no interface, attach after: the hot-plug path.
    let mut src = EbpfSource::open(&EbpfConfig {
        mode: EbpfMode::Xdp,
        xdp_attach: XdpAttach::Skb,
        poll_timeout_ms: 50,
        ..Default::default()
    })
    .expect("open XDP capture");
    assert!(src.interfaces().is_empty());
    assert_eq!(src.attach(IF_ROOT).unwrap(), 0);
    assert_eq!(src.attach(IF_ROOT).unwrap(), 0, "attach twice is a no-op");
    assert!(!leftovers().is_empty(), "the attached XDP program is invisible to the detach check");

    let pcap = std::env::temp_dir().join(format!("fteb-xdp-{}.pcap", std::process::id()));
    let tcpdump = Tcpdump::start(&pcap);
    assert_eq!(udp_echo_from_ns(5, 100), 5, "UDP echoes lost: XDP changed a packet's fate");
    thread::sleep(Duration::from_millis(200));
    let dumped = tcpdump.map(Tcpdump::finish);
    let got = drain(&mut src, Duration::from_millis(300));
    let stats = src.stats();
    println!("ebpf xdp: {} packets, stats {stats:?}", got.len());
    assert_eq!(stats.dropped, 0);
    assert!(got.iter().all(|g| g.dir == Direction::Ingress && g.hook == EbpfMode::Xdp));
    let requests = got.iter().filter(|g| udp_ports(&g.data).is_some_and(|p| p.1 == UDP_PORT)).count();
    let replies = got.iter().filter(|g| udp_ports(&g.data).is_some_and(|p| p.0 == UDP_PORT)).count();
    assert_eq!((requests, replies), (5, 0), "XDP sees what comes in, never what goes out");
    if let Some(dumped) = dumped {
        // tcpdump sees both ways: ours are exactly its incoming packets,
        // i.e. those whose source MAC is not the root end's.
        let mac = std::fs::read_to_string(format!("/sys/class/net/{IF_ROOT}/address")).unwrap();
        let mac: Vec<u8> = mac.trim().split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        let mut incoming: Vec<(Vec<u8>, u32)> =
            dumped.into_iter().filter(|(d, _)| d.len() >= 12 && d[6..12] != mac[..]).collect();
        let mut ours: Vec<(Vec<u8>, u32)> = got.iter().map(|g| (g.data.clone(), g.orig_len)).collect();
        incoming.sort();
        ours.sort();
        assert_eq!(ours.len(), incoming.len(), "packet counts differ from tcpdump's incoming");
        assert!(ours == incoming, "bytes differ from tcpdump's");
    }

    // --xdp-drop: copied, then dropped.
    src.set_xdp_drop(true).unwrap();
    assert_eq!(udp_echo_from_ns(2, 10), 0, "xdp_drop let packets through");
    let dropped = drain(&mut src, Duration::from_millis(200));
    let copied = dropped.iter().filter(|g| udp_ports(&g.data).is_some_and(|p| p.1 == UDP_PORT)).count();
    assert_eq!(copied, 2, "dropped packets are still captured");
    src.set_xdp_drop(false).unwrap();
    assert_eq!(udp_echo_from_ns(1, 10), 1, "passing again");

    // The stop flag detaches, drains and ends.
    let stop = src.stop_handle();
    stop.store(true, Ordering::Relaxed);
    let t = Instant::now();
    while src.next_packet().unwrap().is_some() {}
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(src.attached().is_empty());
    let left = leftovers();
    assert!(left.is_empty(), "still attached after stop: {left:?}");
}

#[test]
fn full_ring_counts_drops() {
    skip_unless_ready!("full_ring_counts_drops");
    let _serial = serial();
    let _veth = Veth::new();

    // One page of ring: room for 14 records. Nobody reads while 60 UDP
    // packets (30 each way) go by.
    let mut src = EbpfSource::open(&EbpfConfig {
        mode: EbpfMode::Tc,
        interfaces: vec![IF_ROOT.into()],
        ring_bytes: 4096,
        poll_timeout_ms: 50,
        ..Default::default()
    })
    .expect("open TC capture with a small ring");
    assert_eq!(udp_echo_from_ns(30, 64), 30, "a full ring must not lose packets, only copies");
    let got = drain(&mut src, Duration::from_millis(200));
    let stats = src.stats();
    println!("small ring: {} packets, stats {stats:?}", got.len());
    assert!(stats.dropped > 0, "no drops counted");
    assert_eq!(got.len() as u64, stats.packets);
    assert!(got.len() <= 4096 / (flowtrail_capture::ebpf::RECORD_SIZE + 8));
    assert_eq!(stats.packets + stats.dropped, stats.kernel_packets);
    assert!(stats.kernel_packets >= 60);

    // The device goes away under the capture: detach still succeeds.
    sh(&["ip", "link", "del", IF_ROOT]);
    assert!(src.detach(IF_ROOT).unwrap());
    assert!(src.attached().is_empty());
    assert!(matches!(src.attach(IF_ROOT), Err(EbpfError::UnknownInterface(_))));
}

/// The path kernels before 6.6 take: a netlink filter on a clsact qdisc.
#[test]
fn tc_netlink_attach_and_detach() {
    skip_unless_ready!("tc_netlink_attach_and_detach");
    if !have("tc") {
        println!("SKIP tc_netlink_attach_and_detach: `tc` not found");
        return;
    }
    let _serial = serial();
    let _veth = Veth::new();
    let mut src = EbpfSource::open(&EbpfConfig {
        mode: EbpfMode::Tc,
        tc_attach: TcAttach::Netlink,
        interfaces: vec![IF_ROOT.into()],
        poll_timeout_ms: 50,
        ..Default::default()
    })
    .expect("open TC capture (netlink)");
    for dir in ["ingress", "egress"] {
        let out = run(&["tc", "filter", "show", "dev", IF_ROOT, dir]).unwrap();
        assert!(out.contains("ft_tc_"), "no netlink filter at {dir}: {out}");
    }
    assert_eq!(udp_echo_from_ns(3, 50), 3);
    let got = drain(&mut src, Duration::from_millis(300));
    let dirs = |d: Direction| got.iter().filter(|g| udp_ports(&g.data).is_some() && g.dir == d).count();
    assert_eq!((dirs(Direction::Ingress), dirs(Direction::Egress)), (3, 3), "{got:?}");
    drop(src);
    let left = leftovers();
    assert!(left.is_empty(), "still attached after drop: {left:?}");
}

#[test]
fn source_is_send() {
    fn send<T: Send>() {}
    send::<EbpfSource>();
}
