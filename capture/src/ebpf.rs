//! Live capture through eBPF: a TC clsact classifier (ingress and egress;
//! pod veths, vSwitch taps) or an XDP program (NIC and mirror ports;
//! ingress only) copies the first bytes of every packet into a ring buffer
//! that [`EbpfSource`] drains.
//!
//! The kernel-side programs live in `capture-ebpf/` and are built apart
//! (nightly, bpf-linker): `scripts/setup-ebpf.sh && scripts/build-ebpf.sh`.
//! The object is not embedded in this crate, so flowtrail builds on stable
//! without that toolchain; [`find_object`] says where it is looked for.
//!
//! What the programs guarantee: they never change a packet's fate (TC
//! returns `TC_ACT_UNSPEC`, i.e. "carry on as if this filter were absent";
//! XDP returns `XDP_PASS` unless [`EbpfConfig::xdp_drop`]). A full ring
//! loses the copy, never the packet, and counts it: see
//! [`CaptureStats::dropped`].
//!
//! Limits: at most [`SNAP_LEN`] bytes per packet (a constant of the
//! object: ring reservations have a fixed size); each record takes
//! [`RECORD_SIZE`] + 8 bytes of the ring whatever the packet's length; the
//! ring is 16 MiB (about 56 700 records) unless [`EbpfConfig::ring_bytes`]
//! says otherwise.
//! Timestamps are `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) plus a
//! REALTIME−MONOTONIC offset sampled at open and once a second after, so
//! they follow NTP slews and steps within a second. Records from different
//! CPUs can be out of order by the time it takes one program to run.
//!
//! Needs root (CAP_BPF + CAP_NET_ADMIN) and kernel ≥ 5.18 (ring buffer,
//! `bpf_xdp_load_bytes`); TC uses TCX links on ≥ 6.6 and a clsact qdisc
//! with netlink filters below that.

use std::{
    collections::HashMap,
    ffi::OsString,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{
        tc::{self, SchedClassifierLinkId, TcAttachOptions},
        xdp::XdpLinkId,
        LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode,
    },
    util::KernelVersion,
    Ebpf, EbpfLoader,
};
use capture_ebpf_common::{names, Config, PacketRecord, DIR_EGRESS, FLAG_XDP_DROP, HOOK_XDP, RECORD_HEADER_SIZE};
pub use capture_ebpf_common::{Counters, RECORD_SIZE, SNAP_LEN};

use crate::{linktype, CaptureError, CaptureStats, InterfaceInfo, PacketSource, Polled, RawPacket};

/// Environment variable naming the eBPF object (beats the default places).
pub const OBJECT_ENV: &str = "FLOWTRAIL_EBPF_OBJECT";
/// The object's path relative to the workspace root.
pub const OBJECT_REL_PATH: &str = "capture-ebpf/target/bpfel-unknown-none/release/flowtrail-capture-ebpf";
/// How to build the object, as said in [`EbpfError::ObjectNotFound`].
pub const BUILD_HINT: &str = "scripts/setup-ebpf.sh && scripts/build-ebpf.sh";

/// Which hook the programs attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EbpfMode {
    /// TC clsact classifier at ingress and egress: both directions.
    #[default]
    Tc,
    /// XDP: ingress only, before the kernel allocates an skb.
    Xdp,
}

/// How the XDP program attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpAttach {
    /// Generic (skb) mode on virtual devices (those without
    /// `/sys/class/net/IF/device`: veth, bridge, tap…, where native XDP
    /// either is missing or needs a program on the peer), the kernel's
    /// choice elsewhere.
    #[default]
    Auto,
    /// The kernel's choice (native when the driver has it).
    Default,
    /// Generic XDP, run by the network stack: works on every device.
    Skb,
    /// Native XDP in the driver; fails where the driver has none.
    Driver,
}

/// Which way a packet crossed its interface (TC ingress or egress; XDP
/// is always ingress). Also in each [`RawPacket`]'s `direction`.
pub use crate::Direction;

/// What the ring said about the packet `next_packet` returned last, beyond
/// [`RawPacket`]: see [`EbpfSource::last_meta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketMeta {
    pub direction: Direction,
    /// The hook that copied it.
    pub hook: EbpfMode,
    /// Kernel ifindex of the device.
    pub ifindex: u32,
    /// `bpf_ktime_get_ns()` as the program read it (CLOCK_MONOTONIC).
    pub kernel_ts_ns: u64,
}

/// How the TC programs attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TcAttach {
    /// TCX links on kernels ≥ 6.6 (netlink if that fails), netlink below.
    #[default]
    Auto,
    /// TCX links only (kernel ≥ 6.6): ingress first, egress last.
    Tcx,
    /// A netlink `bpf da` filter on a clsact qdisc, which is added when
    /// missing and left in place at detach.
    Netlink,
}

/// How to open an [`EbpfSource`].
#[derive(Debug, Clone)]
pub struct EbpfConfig {
    pub mode: EbpfMode,
    /// Interfaces to attach to at open; more with [`EbpfSource::attach`].
    pub interfaces: Vec<String>,
    /// XDP only: drop every packet after copying it (mirror ports whose
    /// traffic nobody else needs). Ignored in TC mode: TC never drops.
    pub xdp_drop: bool,
    pub xdp_attach: XdpAttach,
    pub tc_attach: TcAttach,
    /// The eBPF object; `None`: see [`find_object`].
    pub object: Option<PathBuf>,
    /// How long `next_packet` waits for the ring at a time before it looks
    /// at the stop flag again.
    pub poll_timeout_ms: u32,
    /// Bytes kept per packet, `1..=SNAP_LEN`; 0 or more means
    /// [`SNAP_LEN`]. The programs always copy up to `SNAP_LEN`.
    pub snaplen: u32,
    /// Ring buffer size in bytes (a power of two, at least a page); 0: the
    /// object's default, 16 MiB. Each packet takes `RECORD_SIZE + 8`.
    pub ring_bytes: u32,
    /// Set it to end capture: see [`EbpfSource::stop_handle`]. `None`: the
    /// source makes its own.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for EbpfConfig {
    fn default() -> Self {
        Self {
            mode: EbpfMode::Tc,
            interfaces: Vec::new(),
            xdp_drop: false,
            xdp_attach: XdpAttach::Auto,
            tc_attach: TcAttach::Auto,
            object: None,
            poll_timeout_ms: 10,
            snaplen: 0,
            ring_bytes: 0,
            stop: None,
        }
    }
}

/// Why eBPF capture could not start or change its interfaces.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error(
        "eBPF capture object not found (looked for {}); build it with `{BUILD_HINT}` \
         in the flowtrail checkout, or point {OBJECT_ENV} at it",
        display_paths(.searched)
    )]
    ObjectNotFound { searched: Vec<PathBuf> },
    #[error("eBPF object {path}: {detail}")]
    Load { path: PathBuf, detail: String },
    #[error("eBPF program {program}: {detail}")]
    Program { program: &'static str, detail: String },
    #[error("eBPF map {map}: {detail}")]
    Map { map: &'static str, detail: String },
    #[error("attach {hook} to {interface}: {detail}")]
    Attach { interface: String, hook: &'static str, detail: String },
    #[error("detach {hook} from {interface}: {detail}")]
    Detach { interface: String, hook: &'static str, detail: String },
    #[error("no network interface named {0:?}")]
    UnknownInterface(String),
    #[error("invalid configuration: {0}")]
    Config(String),
}

fn display_paths(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    v.join(", ")
}

/// Where the eBPF object is, in this order: `explicit` (must exist), then
/// `$FLOWTRAIL_EBPF_OBJECT` (must exist), then [`OBJECT_REL_PATH`] under
/// every ancestor of the running executable and of the current directory,
/// then `flowtrail-capture-ebpf` beside the executable, then under the
/// workspace this crate was built from.
pub fn find_object(explicit: Option<&Path>) -> Result<PathBuf, EbpfError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(EbpfError::ObjectNotFound { searched: vec![p.to_path_buf()] })
        };
    }
    if let Some(p) = std::env::var_os(OBJECT_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(EbpfError::ObjectNotFound { searched: vec![p] }) };
    }
    let candidates = object_candidates();
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(EbpfError::ObjectNotFound { searched: candidates }),
    }
}

fn object_candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    let exe = std::env::current_exe().ok().and_then(|e| e.canonicalize().ok().or(Some(e)));
    if let Some(exe) = &exe {
        for dir in exe.ancestors().skip(1) {
            push(dir.join(OBJECT_REL_PATH));
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            push(dir.join(OBJECT_REL_PATH));
        }
    }
    if let Some(dir) = exe.as_deref().and_then(Path::parent) {
        push(dir.join("flowtrail-capture-ebpf"));
    }
    // The workspace this crate was compiled in (tests, dev builds).
    push(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(OBJECT_REL_PATH));
    out
}

/// The links one interface holds, dropped by detaching them.
enum Links {
    Tc { ingress: SchedClassifierLinkId, egress: SchedClassifierLinkId },
    Xdp(XdpLinkId),
}

struct Iface {
    ifindex: u32,
    links: Option<Links>,
}

/// Packets copied by the eBPF programs, lent one at a time.
///
/// Interfaces keep their index in [`PacketSource::interfaces`] after
/// [`detach`](Self::detach); attaching the same name again reuses it.
/// Dropping the source detaches everything and unloads the programs.
pub struct EbpfSource {
    mode: EbpfMode,
    xdp_attach: XdpAttach,
    tc_attach: TcAttach,
    config: Config,
    snaplen: usize,
    poll_timeout_ms: i32,
    stop: Arc<AtomicBool>,
    stopping: bool,
    /// After stopping, the ring was found empty once and re-read after a
    /// pause (a record reserved before the detach may still be submitted).
    drained_once: bool,
    infos: Vec<InterfaceInfo>,
    ifaces: Vec<Iface>,
    by_ifindex: HashMap<u32, u32>,
    buf: Box<[u8; SNAP_LEN]>,
    stats: CaptureStats,
    ring_bytes_read: u64,
    clock_offset_ns: i64,
    clock_synced: Instant,
    last: PacketMeta,
    ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, Counters>,
    config_map: Array<MapData, Config>,
    // Last: programs and their links, detached when dropped.
    bpf: Ebpf,
    object: PathBuf,
}

impl EbpfSource {
    /// Load the object, set the config map and attach to
    /// `cfg.interfaces`. Needs root.
    pub fn open(cfg: &EbpfConfig) -> Result<Self, EbpfError> {
        let object = find_object(cfg.object.as_deref())?;
        if cfg.ring_bytes != 0 && (!cfg.ring_bytes.is_power_of_two() || cfg.ring_bytes < 4096) {
            return Err(EbpfError::Config(format!(
                "ring_bytes {} is not a power of two of at least 4096",
                cfg.ring_bytes
            )));
        }
        raise_memlock_limit();
        let mut loader = EbpfLoader::new();
        if cfg.ring_bytes != 0 {
            loader.map_max_entries(names::MAP_EVENTS, cfg.ring_bytes);
        }
        let mut bpf =
            loader.load_file(&object).map_err(|e| EbpfError::Load { path: object.clone(), detail: chain(&e) })?;

        let progs: &[&'static str] = match cfg.mode {
            EbpfMode::Tc => &[names::PROG_TC_INGRESS, names::PROG_TC_EGRESS],
            EbpfMode::Xdp => &[names::PROG_XDP],
        };
        for &name in progs {
            let prog = bpf
                .program_mut(name)
                .ok_or_else(|| EbpfError::Program { program: name, detail: format!("not in {}", object.display()) })?;
            let res = match cfg.mode {
                EbpfMode::Tc => <&mut SchedClassifier>::try_from(prog).and_then(|p| p.load()),
                EbpfMode::Xdp => <&mut Xdp>::try_from(prog).and_then(|p| p.load()),
            };
            res.map_err(|e| EbpfError::Program { program: name, detail: chain(&e) })?;
        }

        let mut take = |name: &'static str| {
            bpf.take_map(name)
                .ok_or_else(|| EbpfError::Map { map: name, detail: format!("not in {}", object.display()) })
        };
        let (ring, counters, config_map) =
            (take(names::MAP_EVENTS)?, take(names::MAP_COUNTERS)?, take(names::MAP_CONFIG)?);
        let map_err = |map: &'static str| move |e: aya::maps::MapError| EbpfError::Map { map, detail: chain(&e) };
        let ring = RingBuf::try_from(ring).map_err(map_err(names::MAP_EVENTS))?;
        let counters = PerCpuArray::try_from(counters).map_err(map_err(names::MAP_COUNTERS))?;
        let config_map = Array::try_from(config_map).map_err(map_err(names::MAP_CONFIG))?;

        let config =
            Config { flags: if cfg.mode == EbpfMode::Xdp && cfg.xdp_drop { FLAG_XDP_DROP } else { 0 }, _reserved: 0 };
        let snaplen = match cfg.snaplen as usize {
            0 => SNAP_LEN,
            n => n.min(SNAP_LEN),
        };
        let mut src = Self {
            mode: cfg.mode,
            xdp_attach: cfg.xdp_attach,
            tc_attach: cfg.tc_attach,
            config,
            snaplen,
            poll_timeout_ms: i32::try_from(cfg.poll_timeout_ms).unwrap_or(i32::MAX),
            stop: cfg.stop.clone().unwrap_or_default(),
            stopping: false,
            drained_once: false,
            infos: Vec::new(),
            ifaces: Vec::new(),
            by_ifindex: HashMap::new(),
            buf: Box::new([0; SNAP_LEN]),
            stats: CaptureStats::default(),
            ring_bytes_read: 0,
            clock_offset_ns: clock_offset_ns(),
            clock_synced: Instant::now(),
            last: PacketMeta::default(),
            ring,
            counters,
            config_map,
            bpf,
            object,
        };
        src.write_config()?;
        for name in &cfg.interfaces {
            src.attach(name)?;
        }
        Ok(src)
    }

    /// The object that was loaded.
    pub fn object_path(&self) -> &Path {
        &self.object
    }

    pub fn mode(&self) -> EbpfMode {
        self.mode
    }

    /// Set it (from any thread) to end capture: `next_packet` then detaches
    /// every interface, returns what the ring still holds and then
    /// `Ok(None)`, within the poll timeout when the ring is empty.
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// XDP mode: drop packets after copying them, or let them pass again.
    pub fn set_xdp_drop(&mut self, drop: bool) -> Result<(), EbpfError> {
        if self.mode != EbpfMode::Xdp {
            return Err(EbpfError::Config("xdp_drop needs XDP mode".into()));
        }
        if drop {
            self.config.flags |= FLAG_XDP_DROP;
        } else {
            self.config.flags &= !FLAG_XDP_DROP;
        }
        self.write_config()
    }

    fn write_config(&mut self) -> Result<(), EbpfError> {
        self.config_map.set(0, self.config, 0).map_err(|e| EbpfError::Map { map: names::MAP_CONFIG, detail: chain(&e) })
    }

    /// Attach the programs to `interface` and return its index in
    /// [`PacketSource::interfaces`]. Already attached: nothing changes.
    pub fn attach(&mut self, interface: &str) -> Result<u32, EbpfError> {
        let ifindex = ifindex(interface)?;
        let idx = match self.infos.iter().position(|i| i.name == interface) {
            Some(i) => {
                if self.ifaces[i].links.is_some() && self.ifaces[i].ifindex == ifindex {
                    return Ok(i as u32);
                }
                if self.ifaces[i].links.is_some() {
                    // Same name, new device (deleted and made again): the
                    // old links died with the old device.
                    let _ = self.detach(interface);
                }
                i
            }
            None => {
                self.infos.push(InterfaceInfo {
                    name: interface.to_string(),
                    linktype: linktype_of(interface),
                    snaplen: self.snaplen as u32,
                    ifindex: Some(ifindex),
                    // The programs attach in the namespace this runs in.
                    netns: crate::current_netns_name(),
                });
                self.ifaces.push(Iface { ifindex, links: None });
                self.infos.len() - 1
            }
        };
        let links = match self.mode {
            EbpfMode::Tc => self.attach_tc(interface)?,
            EbpfMode::Xdp => self.attach_xdp(interface)?,
        };
        let old = self.ifaces[idx].ifindex;
        if self.by_ifindex.get(&old) == Some(&(idx as u32)) {
            self.by_ifindex.remove(&old);
        }
        self.ifaces[idx] = Iface { ifindex, links: Some(links) };
        self.infos[idx].linktype = linktype_of(interface);
        self.infos[idx].ifindex = Some(ifindex);
        self.by_ifindex.insert(ifindex, idx as u32);
        Ok(idx as u32)
    }

    fn attach_tc(&mut self, interface: &str) -> Result<Links, EbpfError> {
        let ingress = self.attach_tc_one(interface, TcAttachType::Ingress)?;
        match self.attach_tc_one(interface, TcAttachType::Egress) {
            Ok(egress) => Ok(Links::Tc { ingress, egress }),
            Err(e) => {
                let _ = self.tc_prog(names::PROG_TC_INGRESS).map(|p| p.detach(ingress));
                Err(e)
            }
        }
    }

    fn tc_prog(&mut self, name: &'static str) -> Result<&mut SchedClassifier, EbpfError> {
        self.bpf
            .program_mut(name)
            .ok_or_else(|| EbpfError::Program { program: name, detail: "missing".into() })?
            .try_into()
            .map_err(|e| EbpfError::Program { program: name, detail: chain(&e) })
    }

    /// TCX (kernel ≥ 6.6): ingress first and egress last among the device's
    /// programs, nearest the wire both ways. Else, or when TCX fails in
    /// `Auto`, a netlink filter on a clsact qdisc (added if missing).
    fn attach_tc_one(&mut self, interface: &str, dir: TcAttachType) -> Result<SchedClassifierLinkId, EbpfError> {
        let (name, hook) = match dir {
            TcAttachType::Egress => (names::PROG_TC_EGRESS, "tc egress"),
            _ => (names::PROG_TC_INGRESS, "tc ingress"),
        };
        let only_tcx = self.tc_attach == TcAttach::Tcx;
        let tcx = match self.tc_attach {
            TcAttach::Auto => KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0)),
            TcAttach::Tcx => true,
            TcAttach::Netlink => false,
        };
        let prog = self.tc_prog(name)?;
        let err = |detail: String| EbpfError::Attach { interface: interface.to_string(), hook, detail };
        let mut tcx_err = None;
        if tcx {
            let order = if dir == TcAttachType::Egress { LinkOrder::last() } else { LinkOrder::first() };
            match prog.attach_with_options(interface, dir, TcAttachOptions::TcxOrder(order)) {
                Ok(id) => return Ok(id),
                Err(e) if only_tcx => return Err(err(format!("tcx: {}", chain(&e)))),
                Err(e) => tcx_err = Some(chain(&e)),
            }
        }
        // Already there is fine; a real failure shows at attach.
        let _ = tc::qdisc_add_clsact(interface);
        prog.attach_with_options(interface, dir, TcAttachOptions::Netlink(tc::NlOptions::default())).map_err(|e| {
            err(match &tcx_err {
                Some(t) => format!("tcx: {t}; netlink: {}", chain(&e)),
                None => format!("netlink: {}", chain(&e)),
            })
        })
    }

    fn attach_xdp(&mut self, interface: &str) -> Result<Links, EbpfError> {
        let mode = match self.xdp_attach {
            XdpAttach::Auto if is_virtual(interface) => XdpMode::Skb,
            XdpAttach::Auto | XdpAttach::Default => XdpMode::Default,
            XdpAttach::Skb => XdpMode::Skb,
            XdpAttach::Driver => XdpMode::Driver,
        };
        let prog: &mut Xdp = self
            .bpf
            .program_mut(names::PROG_XDP)
            .ok_or_else(|| EbpfError::Program { program: names::PROG_XDP, detail: "missing".into() })?
            .try_into()
            .map_err(|e| EbpfError::Program { program: names::PROG_XDP, detail: chain(&e) })?;
        prog.attach(interface, mode).map(Links::Xdp).map_err(|e| EbpfError::Attach {
            interface: interface.to_string(),
            hook: "xdp",
            detail: chain(&e),
        })
    }

    /// Detach the programs from `interface`; `false` when they were not
    /// attached. Packets already in the ring are still returned.
    ///
    /// When the device is gone (deleted, moved to another namespace) its
    /// links went with it and a failed detach is not an error.
    pub fn detach(&mut self, interface: &str) -> Result<bool, EbpfError> {
        let Some(idx) = self.infos.iter().position(|i| i.name == interface) else {
            return Ok(false);
        };
        let Some(links) = self.ifaces[idx].links.take() else {
            return Ok(false);
        };
        let was = self.ifaces[idx].ifindex;
        match self.detach_links(interface, links) {
            Err(_) if ifindex(interface).ok() != Some(was) => Ok(true),
            r => r.map(|()| true),
        }
    }

    fn detach_links(&mut self, interface: &str, links: Links) -> Result<(), EbpfError> {
        let err = |hook: &'static str| {
            move |e: aya::programs::ProgramError| EbpfError::Detach {
                interface: interface.to_string(),
                hook,
                detail: chain(&e),
            }
        };
        match links {
            Links::Tc { ingress, egress } => {
                let r1 = self.tc_prog(names::PROG_TC_INGRESS)?.detach(ingress).map_err(err("tc ingress"));
                let r2 = self.tc_prog(names::PROG_TC_EGRESS)?.detach(egress).map_err(err("tc egress"));
                r1.and(r2)?;
            }
            Links::Xdp(id) => {
                let prog: &mut Xdp = self
                    .bpf
                    .program_mut(names::PROG_XDP)
                    .ok_or_else(|| EbpfError::Program { program: names::PROG_XDP, detail: "missing".into() })?
                    .try_into()
                    .map_err(|e| EbpfError::Program { program: names::PROG_XDP, detail: chain(&e) })?;
                prog.detach(id).map_err(err("xdp"))?;
            }
        }
        Ok(())
    }

    /// Detach from every interface.
    pub fn detach_all(&mut self) -> Result<(), EbpfError> {
        let names: Vec<String> = self
            .infos
            .iter()
            .zip(&self.ifaces)
            .filter(|(_, f)| f.links.is_some())
            .map(|(i, _)| i.name.clone())
            .collect();
        let mut first_err = None;
        for n in names {
            if let Err(e) = self.detach(&n) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Direction, hook and kernel timestamp of the packet `next_packet`
    /// returned last (`RawPacket` has no room for them).
    pub fn last_meta(&self) -> PacketMeta {
        self.last
    }

    /// Names of the interfaces the programs are attached to now.
    pub fn attached(&self) -> Vec<&str> {
        self.infos.iter().zip(&self.ifaces).filter(|(_, f)| f.links.is_some()).map(|(i, _)| i.name.as_str()).collect()
    }

    /// The programs' counters summed over CPUs: packets seen and copies
    /// lost (ring full, or a load helper failed). Zero if unreadable.
    pub fn kernel_counters(&self) -> Counters {
        let mut sum = Counters::default();
        if let Ok(v) = self.counters.get(&0, 0) {
            for c in v.iter() {
                sum.seen += c.seen;
                sum.drops += c.drops;
            }
        }
        sum
    }

    fn resync_clock(&mut self) {
        if self.clock_synced.elapsed() >= Duration::from_secs(1) {
            self.clock_offset_ns = clock_offset_ns();
            self.clock_synced = Instant::now();
        }
    }

    /// Wait up to `timeout_ms` for the ring to become readable.
    fn wait(&mut self, timeout_ms: i32) -> Result<(), CaptureError> {
        let mut pfd = libc::pollfd { fd: self.ring.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, its fd owned by `self.ring`.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(CaptureError::Os { interface: SOURCE_NAME.into(), what: "poll", source: e });
            }
        }
        Ok(())
    }

    /// The next record; `deadline`: give up then with `Polled::Idle`.
    fn next_inner(&mut self, deadline: Option<Instant>) -> Result<Polled<'_>, CaptureError> {
        loop {
            if !self.stopping && self.stop.load(Ordering::Relaxed) {
                // No new records once detached; drain what is there.
                self.stopping = true;
                self.detach_all().map_err(|e| CaptureError::Config {
                    interface: SOURCE_NAME.into(),
                    detail: format!("stopping: {e}"),
                })?;
            }
            if let Some(item) = self.ring.next() {
                let raw: &[u8] = &item;
                self.ring_bytes_read += raw.len() as u64 + 8;
                if raw.len() != RECORD_SIZE {
                    return Err(CaptureError::Ring {
                        interface: SOURCE_NAME.into(),
                        detail: format!(
                            "record of {} bytes, this build expects {RECORD_SIZE} \
                             (SNAP_LEN differs): rebuild the eBPF object ({BUILD_HINT})",
                            raw.len()
                        ),
                    });
                }
                let Some(h) = PacketRecord::header_from_bytes(raw) else { unreachable!() };
                let Some(&interface) = self.by_ifindex.get(&h.ifindex) else {
                    self.stats.skipped_blocks += 1;
                    continue;
                };
                let n = (h.cap_len as usize).min(self.snaplen);
                self.buf[..n].copy_from_slice(&raw[RECORD_HEADER_SIZE..RECORD_HEADER_SIZE + n]);
                drop(item);
                self.stats.packets += 1;
                self.stats.bytes += n as u64;
                if (n as u32) < h.len {
                    self.stats.snapped += 1;
                }
                let direction = if h.direction == DIR_EGRESS { Direction::Egress } else { Direction::Ingress };
                self.last = PacketMeta {
                    direction,
                    hook: if h.hook == HOOK_XDP { EbpfMode::Xdp } else { EbpfMode::Tc },
                    ifindex: h.ifindex,
                    kernel_ts_ns: h.ts_ns,
                };
                let ts = self.clock_offset_ns.saturating_add(h.ts_ns as i64);
                return Ok(Polled::Packet(RawPacket {
                    ts_ns: ts,
                    interface,
                    linktype: self.infos[interface as usize].linktype,
                    data: &self.buf[..n],
                    orig_len: h.len,
                    direction: Some(direction),
                }));
            }
            if self.stopping {
                if self.drained_once {
                    return Ok(Polled::End);
                }
                // A program that reserved a record just before the detach
                // submits it within microseconds; until then the reader
                // sees the ring's end there. Look once more after a pause.
                self.drained_once = true;
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let mut timeout = self.poll_timeout_ms;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Ok(Polled::Idle { now_ns: clock_ns(libc::CLOCK_REALTIME) });
                }
                let left = (d - now).as_millis().min(i32::MAX as u128) as i32;
                // Round up: poll's granularity is a millisecond.
                timeout = timeout.min(left.max(1));
            }
            self.wait(timeout)?;
            self.resync_clock();
        }
    }
}

impl PacketSource for EbpfSource {
    /// Blocks until a packet comes; `Ok(None)` once the stop flag was set
    /// and the ring drained.
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        match self.next_inner(None)? {
            Polled::Packet(p) => Ok(Some(p)),
            Polled::End => Ok(None),
            Polled::Idle { .. } => unreachable!("no deadline"),
        }
    }

    fn poll_packet(&mut self, timeout: Duration) -> Result<Polled<'_>, CaptureError> {
        self.next_inner(Some(Instant::now() + timeout))
    }

    fn is_live(&self) -> bool {
        true
    }

    fn interfaces(&self) -> &[InterfaceInfo] {
        &self.infos
    }

    /// `dropped`: copies the programs lost (ring full); `kernel_packets`:
    /// packets they ran on, drops included (ahead of `packets` by what
    /// waits in the ring). Both are read from the kernel on each call.
    fn stats(&self) -> CaptureStats {
        let k = self.kernel_counters();
        CaptureStats { dropped: k.drops, kernel_packets: k.seen, ..self.stats }
    }

    /// Ring bytes consumed (records and their headers); no total.
    fn progress(&self) -> (u64, Option<u64>) {
        (self.ring_bytes_read, None)
    }
}

impl Drop for EbpfSource {
    fn drop(&mut self) {
        // Links would go with `bpf` anyway; detach explicitly first so the
        // order (links before programs and maps) does not depend on aya.
        let _ = self.detach_all();
    }
}

/// What errors from a running source name as their interface: one ring
/// serves them all.
const SOURCE_NAME: &str = "ebpf";

impl From<EbpfError> for CaptureError {
    fn from(e: EbpfError) -> Self {
        let interface = match &e {
            EbpfError::Attach { interface, .. } | EbpfError::Detach { interface, .. } => interface.clone(),
            EbpfError::UnknownInterface(i) => i.clone(),
            _ => SOURCE_NAME.to_string(),
        };
        CaptureError::Config { interface, detail: e.to_string() }
    }
}

/// `e` and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

fn ifindex(interface: &str) -> Result<u32, EbpfError> {
    let c = std::ffi::CString::new(interface).map_err(|_| EbpfError::UnknownInterface(interface.to_string()))?;
    // SAFETY: a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(EbpfError::UnknownInterface(interface.to_string())),
        i => Ok(i),
    }
}

fn sysfs(interface: &str, file: &str) -> PathBuf {
    let mut p = PathBuf::from("/sys/class/net");
    p.push(OsString::from(interface));
    p.push(file);
    p
}

/// `LINKTYPE_*` from the device's ARPHRD type: Ethernet-framed devices
/// (and loopback, which has a zeroed Ethernet header) give Ethernet; L3
/// devices (tun, WireGuard: ARPHRD_NONE) start at the IP header.
fn linktype_of(interface: &str) -> u32 {
    const ARPHRD_NONE: u32 = 0xfffe;
    const ARPHRD_RAWIP: u32 = 519;
    match std::fs::read_to_string(sysfs(interface, "type")).ok().and_then(|s| s.trim().parse().ok()) {
        Some(ARPHRD_NONE | ARPHRD_RAWIP) => linktype::RAW,
        _ => linktype::ETHERNET,
    }
}

fn is_virtual(interface: &str) -> bool {
    !sysfs(interface, "device").exists()
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; raise it so a
/// 16 MiB ring loads there too. Failure is left for the load to report.
fn raise_memlock_limit() {
    let rl = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain syscall with a valid struct.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rl) };
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid clock id and out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC, the realtime read bracketed by two
/// monotonic reads (the tightest of three tries).
fn clock_offset_ns() -> i64 {
    let mut best = (i64::MAX, 0);
    for _ in 0..3 {
        let m1 = clock_ns(libc::CLOCK_MONOTONIC);
        let r = clock_ns(libc::CLOCK_REALTIME);
        let m2 = clock_ns(libc::CLOCK_MONOTONIC);
        if m2 - m1 < best.0 {
            best = (m2 - m1, r - (m1 + (m2 - m1) / 2));
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout() {
        assert_eq!(RECORD_HEADER_SIZE, 32);
        assert_eq!(RECORD_SIZE, 32 + SNAP_LEN);
        let mut raw = vec![0u8; RECORD_SIZE];
        raw[0..8].copy_from_slice(&123u64.to_ne_bytes());
        raw[8..12].copy_from_slice(&7u32.to_ne_bytes());
        raw[12..16].copy_from_slice(&1500u32.to_ne_bytes());
        raw[16..20].copy_from_slice(&256u32.to_ne_bytes());
        raw[20..24].copy_from_slice(&1u32.to_ne_bytes());
        let h = PacketRecord::header_from_bytes(&raw).unwrap();
        assert_eq!((h.ts_ns, h.ifindex, h.len, h.cap_len, h.direction), (123, 7, 1500, 256, 1));
    }

    #[test]
    fn clock_offset_is_realtime_minus_monotonic() {
        let off = clock_offset_ns();
        let now = clock_ns(libc::CLOCK_REALTIME);
        let mono = clock_ns(libc::CLOCK_MONOTONIC);
        assert!((mono + off - now).abs() < 50_000_000, "offset {off}");
    }

    #[test]
    fn missing_object_says_how_to_build() {
        let e = find_object(Some(Path::new("/nonexistent/flowtrail-capture-ebpf"))).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(BUILD_HINT), "{msg}");
        assert!(msg.contains("/nonexistent/flowtrail-capture-ebpf"), "{msg}");
    }
}
