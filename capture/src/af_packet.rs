//! Live capture through an AF_PACKET `TPACKET_V3` memory-mapped ring.
//!
//! One [`AfPacketSource`] is one socket bound to one interface, read by one
//! thread. To spread an interface over N worker threads, open N sources
//! with the same [`Fanout`] group: the kernel hashes each packet's flow
//! symmetrically (both directions of a connection land on the same
//! socket), and with [`Fanout::defrag`] it reassembles IPv4 fragments
//! before hashing (the members then see the reassembled datagram).
//!
//! # Ring
//! The socket is opened with protocol 0 (it hears nothing yet), gets
//! `PACKET_VERSION = TPACKET_V3`, its filter and `PACKET_RX_RING`
//! (`block_count` blocks of `block_size` bytes), the ring is mapped
//! (`MAP_LOCKED` when `RLIMIT_MEMLOCK` allows, else plain), and only then is
//! the socket bound to the interface with `ETH_P_ALL`: no packet of another
//! interface or before the filter ever reaches the ring. The kernel fills
//! a block with variable-size frames and hands it over (status
//! `TP_STATUS_USER`) when it is full or `block_timeout_ms` after its first
//! packet. [`next_packet`](PacketSource::next_packet) lends each frame
//! straight from the mapping (no copy) and gives the block back
//! (`TP_STATUS_KERNEL`) when asked for the packet after its last frame.
//! While no block is ready it waits in `poll(2)`.
//!
//! # Frames
//! Timestamps are the kernel's (`tp_sec`/`tp_nsec`, `CLOCK_REALTIME`, ns).
//! When the NIC or the kernel stripped an 802.1Q/802.1ad tag into metadata
//! (`TP_STATUS_VLAN_VALID`), the tag is put back after the MAC addresses,
//! as libpcap does: those frames are copied into one reusable buffer
//! (`orig_len` grows by 4). Link types come from the interface's `ARPHRD_*`
//! ([`netdev::linktype_of_arphrd`]): Ethernet, veth, tap, bridges and
//! loopback give `LINKTYPE_ETHERNET`, tun/WireGuard/ipip give `LINKTYPE_RAW`;
//! other hardware types are refused. Outgoing packets may carry checksums
//! the NIC has yet to fill in (`TP_STATUS_CSUMNOTREADY`), as with tcpdump.
//!
//! # Snap length and filters
//! Linux has no per-socket snap length: a classic BPF program's return
//! value is the number of bytes kept. Without a filter the source attaches
//! `ret #snaplen`; with one, the filter ends in `ret #snaplen` itself.
//! Frames are also cut to `snaplen` in user space (after a VLAN tag is put
//! back). A filter is tcpdump syntax, compiled by running
//! `tcpdump -ddd -y <DLT> -s <snaplen> <filter>` ([`compile_filter`]), so
//! **tcpdump must be installed** (`scripts/setup.sh --test` installs it;
//! [`AfPacketConfig::tcpdump`] names another binary). The program is
//! compiled for an offline link type, so it reads VLAN tags only where
//! they are in the packet bytes: a `vlan` filter misses tags the kernel
//! stripped.
//!
//! # Stopping and interface loss
//! [`stop_handle`](AfPacketSource::stop_handle) gives a flag; once set,
//! `next_packet` returns `Ok(None)` within `poll_timeout_ms` when idle, or
//! at the next block boundary under traffic. [`PacketSource::poll_packet`]
//! waits at most its timeout and answers [`Polled::Idle`] with the wall
//! clock, for pipelines that must expire flows while the wire is quiet.
//! An interface going down pauses the source (the kernel resumes it when
//! the interface comes up); an interface deleted or moved to another
//! namespace ends it with [`CaptureError::InterfaceGone`] once the ring is
//! drained.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::netdev;
use crate::{linktype, CaptureError, CaptureStats, Direction, InterfaceInfo, PacketSource, Polled, RawPacket};

/// The largest snap length, as tcpdump's (`-s 0`).
pub const MAX_SNAPLEN: u32 = 262_144;
/// `BPF_MAXINSNS`: the kernel refuses longer classic BPF programs.
const BPF_MAXINSNS: usize = 4096;

/// How a fanout group spreads packets over its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutMode {
    /// `PACKET_FANOUT_HASH`: by symmetric flow hash (both directions of a
    /// flow go to the same socket). What flow analysis wants.
    Hash,
    /// `PACKET_FANOUT_LB`: round robin.
    LoadBalance,
    /// `PACKET_FANOUT_CPU`: by the CPU that received the packet.
    Cpu,
    /// `PACKET_FANOUT_ROLLOVER`: fill one socket, then the next.
    Rollover,
    /// `PACKET_FANOUT_RND`: at random.
    Random,
    /// `PACKET_FANOUT_QM`: by the NIC's receive queue.
    QueueMapping,
}

/// `PACKET_FANOUT` membership. Every socket in a group must be on the same
/// interface with the same mode and flags; group ids are per network
/// namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    pub group: u16,
    pub mode: FanoutMode,
    /// `PACKET_FANOUT_FLAG_DEFRAG`: reassemble IPv4 fragments before
    /// choosing a socket, so all of a datagram lands on one (which then
    /// sees the reassembled datagram instead of the fragments).
    pub defrag: bool,
    /// `PACKET_FANOUT_FLAG_ROLLOVER`: when the chosen socket's ring is
    /// full, use another instead of dropping (breaks flow affinity).
    pub rollover: bool,
}

impl Fanout {
    /// The default: `PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG`.
    pub fn hash(group: u16) -> Self {
        Fanout { group, mode: FanoutMode::Hash, defrag: true, rollover: false }
    }

    fn arg(&self) -> libc::c_int {
        let mode = match self.mode {
            FanoutMode::Hash => libc::PACKET_FANOUT_HASH,
            FanoutMode::LoadBalance => libc::PACKET_FANOUT_LB,
            FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
            FanoutMode::Rollover => libc::PACKET_FANOUT_ROLLOVER,
            FanoutMode::Random => libc::PACKET_FANOUT_RND,
            FanoutMode::QueueMapping => libc::PACKET_FANOUT_QM,
        };
        let mut type_flags = mode;
        if self.defrag {
            type_flags |= libc::PACKET_FANOUT_FLAG_DEFRAG;
        }
        if self.rollover {
            type_flags |= libc::PACKET_FANOUT_FLAG_ROLLOVER;
        }
        (u32::from(self.group) | (type_flags << 16)) as libc::c_int
    }
}

/// How to open an [`AfPacketSource`]. [`AfPacketConfig::new`] gives the
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Interface name (one interface per socket).
    pub interface: String,
    /// Network namespace the interface is in: an `ip netns` name or a path
    /// to a namespace file; `None` for the caller's (see
    /// [`netdev::in_netns`]).
    pub netns: Option<String>,
    /// Bytes per ring block: a multiple of the page size, and at least a
    /// frame. The largest packet a ring holds is about one block. 1 MiB.
    pub block_size: u32,
    /// Blocks in the ring (ring memory = `block_size * block_count`). 64.
    pub block_count: u32,
    /// `tp_frame_size`: TPACKET_V3 packs frames of any size into blocks,
    /// but the kernel still checks this: a multiple of 16, at least the
    /// frame header (`TPACKET3_HDRLEN`), at most a block. 2048.
    pub frame_size: u32,
    /// Hand a block over at most this long after its first packet
    /// (`tp_retire_blk_tov`); 0 lets the kernel choose from the link speed.
    /// Bounds the latency of a quiet link. 64.
    pub block_timeout_ms: u32,
    /// Bytes kept of each packet, 1..=262144. 262144.
    pub snaplen: u32,
    /// Put the interface in promiscuous mode while the socket is open
    /// (`PACKET_MR_PROMISC`; the kernel counts users and undoes it). true.
    pub promiscuous: bool,
    /// Join a fanout group. None.
    pub fanout: Option<Fanout>,
    /// tcpdump-syntax capture filter (empty = none). None.
    pub filter: Option<String>,
    /// The tcpdump that compiles `filter`. `tcpdump` (from `PATH`).
    pub tcpdump: PathBuf,
    /// Skip packets the host sends (`PACKET_IGNORE_OUTGOING`, Linux 4.20+).
    /// false: flow analysis wants both directions.
    pub ignore_outgoing: bool,
    /// Longest wait in `poll(2)` before looking at the stop flag. 100.
    pub poll_timeout_ms: u32,
}

impl AfPacketConfig {
    pub fn new(interface: impl Into<String>) -> Self {
        AfPacketConfig {
            interface: interface.into(),
            netns: None,
            block_size: 1 << 20,
            block_count: 64,
            frame_size: 2048,
            block_timeout_ms: 64,
            snaplen: MAX_SNAPLEN,
            promiscuous: true,
            fanout: None,
            filter: None,
            tcpdump: PathBuf::from("tcpdump"),
            ignore_outgoing: false,
            poll_timeout_ms: 100,
        }
    }
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Compiles a tcpdump-syntax filter to classic BPF for frames of `linktype`
/// (`LINKTYPE_ETHERNET` or `LINKTYPE_RAW`) cut to `snaplen`, by running
/// `tcpdump -ddd -y <DLT> -s <snaplen> -- <filter>`. The error says why:
/// tcpdump missing, its own message for a bad filter, or bad output.
pub fn compile_filter(filter: &str, linktype: u32, snaplen: u32, tcpdump: &Path) -> Result<Vec<BpfInsn>, String> {
    let dlt = match linktype {
        linktype::ETHERNET => "EN10MB",
        linktype::RAW => "RAW",
        other => return Err(format!("no tcpdump link type name for LINKTYPE {other}")),
    };
    let out = Command::new(tcpdump)
        .args(["-ddd", "-y", dlt, "-s", &snaplen.to_string(), "--", filter])
        .output()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "{} not found: capture filters are compiled by tcpdump; install it \
                     (scripts/setup.sh --test does) or set AfPacketConfig::tcpdump",
                    tcpdump.display()
                )
            } else {
                format!("running {}: {e}", tcpdump.display())
            }
        })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        let msg = msg.lines().filter(|l| !l.starts_with("Warning")).collect::<Vec<_>>().join("; ");
        return Err(format!("tcpdump: {}", if msg.is_empty() { out.status.to_string() } else { msg }));
    }
    parse_ddd(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `tcpdump -ddd` output: a count, then `code jt jf k` per line.
fn parse_ddd(text: &str) -> Result<Vec<BpfInsn>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let count: usize = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| format!("tcpdump -ddd printed no instruction count: {text:?}"))?;
    let mut prog = Vec::with_capacity(count);
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let insn = match f[..] {
            [code, jt, jf, k] => (|| {
                Some(BpfInsn {
                    code: code.parse().ok()?,
                    jt: jt.parse().ok()?,
                    jf: jf.parse().ok()?,
                    k: k.parse().ok()?,
                })
            })(),
            _ => None,
        };
        prog.push(insn.ok_or_else(|| format!("tcpdump -ddd printed a bad instruction: {line:?}"))?);
    }
    if prog.len() != count || count == 0 || count > BPF_MAXINSNS {
        return Err(format!("tcpdump -ddd announced {count} instructions and printed {}", prog.len()));
    }
    Ok(prog)
}

/// The mapped ring: `blocks` blocks of `block_size` bytes.
struct Ring {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    blocks: usize,
}

// SAFETY: the mapping belongs to this value alone and has no thread
// affinity; the kernel side synchronises through the block status words.
unsafe impl Send for Ring {}

impl Ring {
    fn block(&self, i: usize) -> *mut libc::tpacket_block_desc {
        debug_assert!(i < self.blocks);
        // SAFETY: i < blocks, so the offset is inside the mapping.
        unsafe { self.base.as_ptr().add(i * self.block_size).cast() }
    }

    /// The block's status word, shared with the kernel.
    fn status(&self, i: usize) -> &AtomicU32 {
        let desc = self.block(i);
        // SAFETY: `desc` points at a mapped block descriptor; block_status
        // is a 4-aligned u32 (blocks are page aligned) that the kernel and
        // we only ever access as a whole word, so viewing it as an atomic
        // for the lifetime of `&self` (the mapping outlives it) is sound.
        unsafe { AtomicU32::from_ptr(ptr::addr_of_mut!((*desc).hdr.bh1.block_status)) }
    }

    /// `(num_pkts, offset_to_first_pkt)` of a block we own.
    fn block_header(&self, i: usize) -> (u32, usize) {
        let desc = self.block(i);
        // SAFETY: the block is ours (status USER, read with Acquire), so
        // the kernel does not write its header; the fields are in bounds.
        unsafe {
            let h = ptr::addr_of!((*desc).hdr.bh1);
            (ptr::read(ptr::addr_of!((*h).num_pkts)), ptr::read(ptr::addr_of!((*h).offset_to_first_pkt)) as usize)
        }
    }

    /// The frame header at `off` in block `i` (bounds checked by caller).
    fn frame(&self, i: usize, off: usize) -> libc::tpacket3_hdr {
        debug_assert!(off + mem::size_of::<libc::tpacket3_hdr>() <= self.block_size);
        // SAFETY: in bounds (checked by the caller), in a block we own.
        unsafe { ptr::read_unaligned(self.block(i).cast::<u8>().add(off).cast()) }
    }

    fn bytes(&self, start: usize, len: usize) -> &[u8] {
        assert!(start.checked_add(len).is_some_and(|end| end <= self.len));
        // SAFETY: in bounds of the mapping (asserted), in a block we own
        // until the next call that takes `&mut` of the source.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(start), len) }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned; nothing
        // borrows the mapping any more (we are being dropped).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Where we are in the block we hold.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    left: u32,
    off: usize,
}

/// A frame found in the ring, not yet lent.
#[derive(Debug, Clone, Copy)]
struct Frame {
    start: usize,
    len: usize,
    orig_len: u32,
    ts_ns: i64,
    vlan: Option<[u8; 4]>,
    direction: Option<Direction>,
}

/// Where `sll_pkttype` is in a TPACKET_V3 frame: the `sockaddr_ll` follows
/// the header at `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))` (48), and
/// `sll_pkttype` is its byte 10 (after family, protocol, ifindex, hatype).
const SLL_PKTTYPE_OFFSET: usize = 48 + 10;

/// The direction an `sll_pkttype` says: `PACKET_OUTGOING` was sent by the
/// interface; host, broadcast, multicast and other-host packets were
/// received; loopback and the kernel's internal types say nothing.
fn direction_of_pkttype(t: u8) -> Option<Direction> {
    match t {
        libc::PACKET_OUTGOING => Some(Direction::Egress),
        libc::PACKET_HOST | libc::PACKET_BROADCAST | libc::PACKET_MULTICAST | libc::PACKET_OTHERHOST => {
            Some(Direction::Ingress)
        }
        _ => None,
    }
}

enum Step {
    Frame(Frame),
    Idle,
    End,
}

/// Counters read from `PACKET_STATISTICS`, which resets them on each read.
#[derive(Default)]
struct KernelCounters {
    packets: AtomicU64,
    drops: AtomicU64,
    freezes: AtomicU64,
}

/// A live AF_PACKET TPACKET_V3 capture on one interface (module docs).
pub struct AfPacketSource {
    // Field order is drop order: unmap the ring, then close the socket.
    ring: Ring,
    fd: OwnedFd,
    name: String,
    ifindex: i32,
    interfaces: Vec<InterfaceInfo>,
    linktype: u32,
    snaplen: usize,
    poll_timeout: Duration,
    block_timeout: Duration,
    block: usize,
    cursor: Option<Cursor>,
    stop: Arc<AtomicBool>,
    stopped: bool,
    /// The interface went down (`ENETDOWN`): check whether it still exists
    /// while idle.
    down: bool,
    /// When the interface was found gone: drain, then fail.
    gone_at: Option<Instant>,
    vlan_buf: Vec<u8>,
    stats: CaptureStats,
    kernel: KernelCounters,
}

impl AfPacketSource {
    /// Opens the ring on `cfg.interface` (in `cfg.netns`). Needs
    /// `CAP_NET_RAW` (and `CAP_SYS_ADMIN` to enter a namespace).
    /// Errors: [`CaptureError::Config`] for sizes the kernel would refuse,
    /// an unknown interface or an unsupported link type;
    /// [`CaptureError::Filter`] when the filter does not compile;
    /// [`CaptureError::Os`] naming the system call that failed.
    pub fn open(cfg: &AfPacketConfig) -> Result<Self, CaptureError> {
        match &cfg.netns {
            None => Self::open_here(cfg),
            Some(ns) => netdev::in_netns(ns, || Self::open_here(cfg)).map_err(|source| CaptureError::Os {
                interface: cfg.interface.clone(),
                what: "setns",
                source,
            })?,
        }
    }

    fn open_here(cfg: &AfPacketConfig) -> Result<Self, CaptureError> {
        let name = cfg.interface.clone();
        let config = |detail: String| CaptureError::Config { interface: name.clone(), detail };
        let os = |what: &'static str, source: io::Error| CaptureError::Os { interface: name.clone(), what, source };
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', '\0']) {
            return Err(config(format!("bad interface name {name:?}")));
        }
        validate(cfg).map_err(config)?;

        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os("socket(AF_PACKET, SOCK_RAW)", io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // SAFETY: ifreq is plain old data; all-zero is valid.
        let mut ifr: libc::ifreq = unsafe { mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: SIOCGIFINDEX reads ifr_name and writes ifr_ifindex of
        // the ifreq we pass.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFINDEX, &mut ifr) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENODEV) {
                return Err(config("no such interface".into()));
            }
            return Err(CaptureError::Os { interface: name, what: "ioctl(SIOCGIFINDEX)", source: e });
        }
        // SAFETY: the ioctl succeeded, so the union holds the ifindex.
        let ifindex = unsafe { ifr.ifr_ifru.ifru_ifindex };
        // SAFETY: SIOCGIFHWADDR reads ifr_name and writes ifr_hwaddr.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) } != 0 {
            return Err(os("ioctl(SIOCGIFHWADDR)", io::Error::last_os_error()));
        }
        // SAFETY: the ioctl succeeded, so the union holds the hw address.
        let arphrd = unsafe { ifr.ifr_ifru.ifru_hwaddr.sa_family };
        let linktype = netdev::linktype_of_arphrd(arphrd)
            .ok_or_else(|| config(format!("unsupported hardware type ARPHRD {arphrd}")))?;

        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &(libc::tpacket_versions::TPACKET_V3 as libc::c_int))
            .map_err(|e| os("setsockopt(PACKET_VERSION, TPACKET_V3)", e))?;
        if cfg.ignore_outgoing {
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1 as &libc::c_int)
                .map_err(|e| os("setsockopt(PACKET_IGNORE_OUTGOING)", e))?;
        }

        // The filter goes on before the socket is bound: nothing unfiltered
        // ever reaches the ring.
        let filter = cfg.filter.as_deref().map(str::trim).filter(|f| !f.is_empty());
        let max_frame = cfg.block_size as usize - BLOCK_HDR_LEN - TPACKET3_HDRLEN;
        let mut prog: Vec<libc::sock_filter> = match filter {
            Some(f) => compile_filter(f, linktype, cfg.snaplen, &cfg.tcpdump)
                .map_err(|detail| CaptureError::Filter { interface: name.clone(), filter: f.to_string(), detail })?
                .into_iter()
                .map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k })
                .collect(),
            // The ring cuts frames at about a block; cut earlier if asked.
            None if (cfg.snaplen as usize) < max_frame => {
                vec![libc::sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: cfg.snaplen }]
            }
            None => Vec::new(),
        };
        if !prog.is_empty() {
            let fprog = libc::sock_fprog { len: prog.len() as libc::c_ushort, filter: prog.as_mut_ptr() };
            setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
                .map_err(|e| os("setsockopt(SO_ATTACH_FILTER)", e))?;
        }

        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: cfg.frame_size,
            tp_frame_nr: cfg.block_size / cfg.frame_size * cfg.block_count,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| os("setsockopt(PACKET_RX_RING)", e))?;
        let len = cfg.block_size as usize * cfg.block_count as usize;
        let ring =
            map_ring(&fd, len).map_err(|source| CaptureError::Os { interface: name.clone(), what: "mmap", source })?;
        let ring = Ring { base: ring, len, block_size: cfg.block_size as usize, blocks: cfg.block_count as usize };

        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: `sll` is a valid sockaddr_ll and the length is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os("bind", io::Error::last_os_error()));
        }
        if cfg.promiscuous {
            // SAFETY: packet_mreq is plain old data; all-zero is valid.
            let mut mreq: libc::packet_mreq = unsafe { mem::zeroed() };
            mreq.mr_ifindex = ifindex;
            mreq.mr_type = libc::PACKET_MR_PROMISC as libc::c_ushort;
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| os("setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)", e))?;
        }
        if let Some(fanout) = &cfg.fanout {
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &fanout.arg())
                .map_err(|e| os("setsockopt(PACKET_FANOUT)", e))?;
        }

        Ok(AfPacketSource {
            ring,
            fd,
            interfaces: vec![InterfaceInfo {
                name: name.clone(),
                linktype,
                snaplen: cfg.snaplen,
                ifindex: u32::try_from(ifindex).ok(),
                // Here runs inside `cfg.netns` when one was given.
                netns: cfg.netns.clone().or_else(crate::current_netns_name),
            }],
            name,
            ifindex,
            linktype,
            snaplen: cfg.snaplen as usize,
            poll_timeout: Duration::from_millis(u64::from(cfg.poll_timeout_ms.max(1))),
            block_timeout: Duration::from_millis(u64::from(if cfg.block_timeout_ms == 0 {
                1000
            } else {
                cfg.block_timeout_ms
            })),
            block: 0,
            cursor: None,
            stop: Arc::new(AtomicBool::new(false)),
            stopped: false,
            down: false,
            gone_at: None,
            vlan_buf: Vec::new(),
            stats: CaptureStats::default(),
            kernel: KernelCounters::default(),
        })
    }

    /// Setting this flag ends the source: `next_packet` returns `Ok(None)`
    /// within `poll_timeout_ms` (at the next block boundary under traffic).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The interface's index (in its namespace).
    pub fn ifindex(&self) -> u32 {
        self.ifindex as u32
    }

    /// The interface's `LINKTYPE_*`.
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// Finds the next frame, waiting at most `timeout` (never past the
    /// stop flag). Borrows nothing, so callers can loop on it.
    fn step(&mut self, timeout: Duration) -> Result<Step, CaptureError> {
        if self.stopped {
            return Ok(Step::End);
        }
        let mut deadline: Option<Instant> = None;
        loop {
            if let Some(cur) = self.cursor {
                if cur.left > 0 {
                    return self.take_frame(cur).map(Step::Frame);
                }
                self.release();
            }
            if self.stop.load(Ordering::Relaxed) {
                self.stopped = true;
                return Ok(Step::End);
            }
            if self.ring.status(self.block).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0 {
                let (num, first) = self.ring.block_header(self.block);
                if first > self.ring.block_size {
                    return Err(self.corrupt(format!("block {}: first frame at {first}", self.block)));
                }
                self.cursor = Some(Cursor { left: num, off: first });
                self.down = false;
                continue;
            }
            // Nothing ready: wait.
            let now = Instant::now();
            let deadline = *deadline.get_or_insert(now + timeout);
            if let Some(at) = self.gone_at {
                // The retire timer hands over the last partial block within
                // a block timeout; then there is nothing left.
                if now >= at + self.block_timeout * 2 + Duration::from_millis(20) {
                    self.stopped = true;
                    return Err(CaptureError::InterfaceGone { interface: self.name.clone() });
                }
            } else if self.down && !self.bound() {
                self.gone_at = Some(now);
                continue;
            }
            if now >= deadline {
                return Ok(Step::Idle);
            }
            let wait = (deadline - now).min(self.poll_timeout);
            let ms = wait.as_micros().div_ceil(1000).clamp(1, i32::MAX as u128) as i32;
            let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN | libc::POLLERR, revents: 0 };
            // SAFETY: one valid pollfd, count 1.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(CaptureError::Os { interface: self.name.clone(), what: "poll", source: e });
                }
            } else if pfd.revents & libc::POLLERR != 0 {
                self.socket_error()?;
            }
        }
    }

    /// Reads the frame under the cursor and moves past it.
    fn take_frame(&mut self, cur: Cursor) -> Result<Frame, CaptureError> {
        let bs = self.ring.block_size;
        if cur.off + mem::size_of::<libc::tpacket3_hdr>() > bs {
            return Err(self.corrupt(format!("block {}: frame header at {} past the block", self.block, cur.off)));
        }
        let h = self.ring.frame(self.block, cur.off);
        let mac = cur.off + h.tp_mac as usize;
        let caplen = h.tp_snaplen as usize;
        if mac + caplen > bs {
            return Err(self.corrupt(format!("block {}: frame at {} runs past the block", self.block, cur.off)));
        }
        let next = h.tp_next_offset as usize;
        if cur.left > 1 && next < mem::size_of::<libc::tpacket3_hdr>() {
            return Err(self.corrupt(format!("block {}: next frame offset {next}", self.block)));
        }
        self.cursor = Some(Cursor { left: cur.left - 1, off: cur.off + next });
        // The sockaddr_ll sits between the header and the frame's data.
        let direction = if (h.tp_mac as usize) > SLL_PKTTYPE_OFFSET {
            direction_of_pkttype(self.ring.bytes(self.block * bs + cur.off + SLL_PKTTYPE_OFFSET, 1)[0])
        } else {
            None
        };
        let vlan = (h.tp_status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && h.hv1.tp_vlan_tpid != 0 {
                h.hv1.tp_vlan_tpid
            } else {
                ETH_P_8021Q
            };
            let tci = h.hv1.tp_vlan_tci as u16;
            let [a, b] = tpid.to_be_bytes();
            let [c, d] = tci.to_be_bytes();
            [a, b, c, d]
        });
        Ok(Frame {
            start: self.block * bs + mac,
            len: caplen,
            orig_len: h.tp_len,
            ts_ns: i64::from(h.tp_sec) * 1_000_000_000 + i64::from(h.tp_nsec),
            vlan,
            direction,
        })
    }

    /// Lends a frame, putting a stripped VLAN tag back.
    fn lend(&mut self, f: Frame) -> RawPacket<'_> {
        let bytes = self.ring.bytes(f.start, f.len);
        let (data, orig_len): (&[u8], u32) = match f.vlan {
            Some(tag) if self.linktype == linktype::ETHERNET && bytes.len() >= 12 => {
                self.vlan_buf.clear();
                self.vlan_buf.extend_from_slice(&bytes[..12]);
                self.vlan_buf.extend_from_slice(&tag);
                self.vlan_buf.extend_from_slice(&bytes[12..]);
                self.vlan_buf.truncate(self.snaplen);
                (&self.vlan_buf, f.orig_len.saturating_add(4))
            }
            _ => (&bytes[..bytes.len().min(self.snaplen)], f.orig_len),
        };
        self.stats.packets += 1;
        self.stats.bytes += data.len() as u64;
        if (data.len() as u64) < u64::from(orig_len) {
            self.stats.snapped += 1;
        }
        RawPacket { ts_ns: f.ts_ns, interface: 0, linktype: self.linktype, data, orig_len, direction: f.direction }
    }

    /// Gives the current block back to the kernel.
    fn release(&mut self) {
        self.ring.status(self.block).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block = (self.block + 1) % self.ring.blocks;
        self.cursor = None;
    }

    fn corrupt(&mut self, detail: String) -> CaptureError {
        self.stopped = true;
        CaptureError::Ring { interface: self.name.clone(), detail }
    }

    /// POLLERR: read (and clear) the socket error. `ENETDOWN` means the
    /// interface went down or away; anything else ends the source.
    fn socket_error(&mut self) -> Result<(), CaptureError> {
        let mut err: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `err`/`len` are a valid c_int and its size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            let source = io::Error::last_os_error();
            return Err(CaptureError::Os { interface: self.name.clone(), what: "getsockopt(SO_ERROR)", source });
        }
        match err {
            0 => Ok(()),
            libc::ENETDOWN => {
                self.down = true;
                Ok(())
            }
            e => {
                self.stopped = true;
                let source = io::Error::from_raw_os_error(e);
                Err(CaptureError::Os { interface: self.name.clone(), what: "socket error", source })
            }
        }
    }

    /// Whether the socket is still bound to our interface: the kernel sets
    /// the bound ifindex to -1 when the interface is unregistered.
    fn bound(&self) -> bool {
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `sll`/`len` describe a valid, large enough buffer.
        let rc =
            unsafe { libc::getsockname(self.fd.as_raw_fd(), (&mut sll as *mut libc::sockaddr_ll).cast(), &mut len) };
        rc != 0 || sll.sll_ifindex == self.ifindex
    }

    /// Adds the kernel's counters since the last read to ours.
    fn read_kernel_stats(&self) {
        // SAFETY: tpacket_stats_v3 is plain old data; all-zero is valid.
        let mut st: libc::tpacket_stats_v3 = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st`/`len` describe a valid tpacket_stats_v3.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            self.kernel.packets.fetch_add(u64::from(st.tp_packets), Ordering::Relaxed);
            self.kernel.drops.fetch_add(u64::from(st.tp_drops), Ordering::Relaxed);
            self.kernel.freezes.fetch_add(u64::from(st.tp_freeze_q_cnt), Ordering::Relaxed);
        }
    }
}

impl PacketSource for AfPacketSource {
    /// The next packet, waiting for one as long as it takes; `Ok(None)`
    /// only once the stop flag is set.
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        loop {
            match self.step(self.poll_timeout)? {
                Step::Frame(f) => return Ok(Some(self.lend(f))),
                Step::Idle => continue,
                Step::End => return Ok(None),
            }
        }
    }

    fn interfaces(&self) -> &[InterfaceInfo] {
        &self.interfaces
    }

    /// Reads `PACKET_STATISTICS` (which the kernel resets on each read)
    /// and adds it to the totals: `dropped` = kernel drops,
    /// `kernel_packets`, `freeze_count`.
    fn stats(&self) -> CaptureStats {
        self.read_kernel_stats();
        CaptureStats {
            dropped: self.kernel.drops.load(Ordering::Relaxed),
            kernel_packets: self.kernel.packets.load(Ordering::Relaxed),
            freeze_count: self.kernel.freezes.load(Ordering::Relaxed),
            ..self.stats
        }
    }

    /// Bytes returned so far; no total.
    fn progress(&self) -> (u64, Option<u64>) {
        (self.stats.bytes, None)
    }

    fn poll_packet(&mut self, timeout: Duration) -> Result<Polled<'_>, CaptureError> {
        Ok(match self.step(timeout)? {
            Step::Frame(f) => Polled::Packet(self.lend(f)),
            Step::Idle => Polled::Idle { now_ns: wall_clock_ns() },
            Step::End => Polled::End,
        })
    }

    fn is_live(&self) -> bool {
        true
    }
}

impl AsFd for AfPacketSource {
    /// The packet socket (readable when a block may be ready), for callers
    /// that multiplex several sources in one thread.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl std::fmt::Debug for AfPacketSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketSource")
            .field("interface", &self.name)
            .field("ifindex", &self.ifindex)
            .field("linktype", &self.linktype)
            .field("ring_bytes", &self.ring.len)
            .finish_non_exhaustive()
    }
}

/// `BPF_RET | BPF_K`.
const BPF_RET_K: u16 = 0x06;
const ETH_P_8021Q: u16 = 0x8100;
/// The TPACKET_V3 block header (`BLK_HDR_LEN`: the descriptor, 8-aligned).
const BLOCK_HDR_LEN: usize = (mem::size_of::<libc::tpacket_block_desc>() + 7) & !7;
/// `TPACKET3_HDRLEN`: frame header + `sockaddr_ll`.
const TPACKET3_HDRLEN: usize = libc::TPACKET3_HDRLEN;

fn validate(cfg: &AfPacketConfig) -> Result<(), String> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32;
    if cfg.block_size == 0 || !cfg.block_size.is_multiple_of(page) {
        return Err(format!("block_size {} is not a multiple of the page size {page}", cfg.block_size));
    }
    if cfg.block_count == 0 {
        return Err("block_count is 0".into());
    }
    if (cfg.block_size as u64) * (cfg.block_count as u64) > isize::MAX as u64 / 2 {
        return Err("ring too large".into());
    }
    if !cfg.frame_size.is_multiple_of(16) || (cfg.frame_size as usize) < TPACKET3_HDRLEN {
        return Err(format!(
            "frame_size {} must be a multiple of 16 and at least {TPACKET3_HDRLEN} (TPACKET3_HDRLEN)",
            cfg.frame_size
        ));
    }
    if cfg.frame_size as usize > cfg.block_size as usize - BLOCK_HDR_LEN {
        return Err(format!("frame_size {} does not fit a block of {}", cfg.frame_size, cfg.block_size));
    }
    if (cfg.block_size / cfg.frame_size).checked_mul(cfg.block_count).is_none() {
        return Err("too many frames".into());
    }
    if cfg.snaplen == 0 || cfg.snaplen > MAX_SNAPLEN {
        return Err(format!("snaplen {} outside 1..={MAX_SNAPLEN}", cfg.snaplen));
    }
    Ok(())
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid T for the duration of the call and the
    // length is its size; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Maps the ring, locked in memory when the memlock limit allows.
fn map_ring(fd: &OwnedFd, len: usize) -> io::Result<NonNull<u8>> {
    let mut last = io::Error::other("unreachable");
    for flags in [libc::MAP_SHARED | libc::MAP_LOCKED, libc::MAP_SHARED] {
        // SAFETY: a fresh shared mapping of the socket's ring, of exactly
        // the ring's size; no existing memory is affected.
        let p =
            unsafe { libc::mmap(ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, fd.as_raw_fd(), 0) };
        if p != libc::MAP_FAILED {
            return NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"));
        }
        last = io::Error::last_os_error();
    }
    Err(last)
}

fn wall_clock_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddd_parses() {
        let p = parse_ddd("2\n48 0 0 9\n6 0 0 262144\n").unwrap();
        assert_eq!(p, vec![BpfInsn { code: 48, jt: 0, jf: 0, k: 9 }, BpfInsn { code: 6, jt: 0, jf: 0, k: 262144 }]);
        assert!(parse_ddd("3\n48 0 0 9\n").is_err());
        assert!(parse_ddd("1\n48 x 0 9\n").is_err());
        assert!(parse_ddd("").is_err());
    }

    #[test]
    fn fanout_arg() {
        let f = Fanout::hash(7);
        assert_eq!(f.arg() as u32, 7 | ((libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG) << 16));
    }

    #[test]
    fn config_checks() {
        let ok = AfPacketConfig::new("eth0");
        assert!(validate(&ok).is_ok());
        for bad in [
            AfPacketConfig { block_size: 1000, ..ok.clone() },
            AfPacketConfig { frame_size: 2056, ..ok.clone() },
            AfPacketConfig { frame_size: 32, ..ok.clone() },
            AfPacketConfig { frame_size: 1 << 21, ..ok.clone() },
            AfPacketConfig { block_count: 0, ..ok.clone() },
            AfPacketConfig { snaplen: 0, ..ok.clone() },
            AfPacketConfig { snaplen: MAX_SNAPLEN + 1, ..ok.clone() },
        ] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pkttype_gives_the_direction() {
        // TPACKET_ALIGN(sizeof(struct tpacket3_hdr)), then sockaddr_ll.
        let aligned = mem::size_of::<libc::tpacket3_hdr>().div_ceil(16) * 16;
        assert_eq!(SLL_PKTTYPE_OFFSET, aligned + mem::offset_of!(libc::sockaddr_ll, sll_pkttype));
        assert_eq!(direction_of_pkttype(libc::PACKET_OUTGOING), Some(Direction::Egress));
        for t in [libc::PACKET_HOST, libc::PACKET_BROADCAST, libc::PACKET_MULTICAST, libc::PACKET_OTHERHOST] {
            assert_eq!(direction_of_pkttype(t), Some(Direction::Ingress));
        }
        assert_eq!(direction_of_pkttype(libc::PACKET_LOOPBACK), None);
    }

    #[test]
    fn send_and_object_safe() {
        fn is_send<T: Send>() {}
        is_send::<AfPacketSource>();
        fn boxed(s: AfPacketSource) -> Box<dyn PacketSource + Send> {
            Box::new(s)
        }
        let _ = boxed;
    }
}
