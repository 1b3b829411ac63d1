//! Where packets enter flowtrail.
//!
//! A [`PacketSource`] lends one packet at a time ([`RawPacket`]) with its
//! capture timestamp in nanoseconds, the interface it was seen on and that
//! interface's link type (a libpcap `LINKTYPE_*` number). Sources never
//! decode past the capture format: the link layer and up belong to
//! `flowtrail-decoders`.
//!
//! Sources: pcap and pcapng files ([`pcap_file::PcapFileSource`]) and live
//! capture through AF_PACKET TPACKET_V3 rings ([`af_packet::AfPacketSource`],
//! Linux only). [`netdev`] lists and watches the interfaces to capture on.
//! Live sources also answer [`PacketSource::poll_packet`], which gives up
//! after a timeout so a pipeline can wake while the wire is quiet.

#[cfg(target_os = "linux")]
pub mod af_packet;
#[cfg(all(target_os = "linux", feature = "ebpf"))]
pub mod ebpf;
#[cfg(target_os = "linux")]
pub mod netdev;
pub mod pcap_file;
pub mod pcapng_writer;

use std::path::PathBuf;
use std::time::Duration;

/// `LINKTYPE_*` numbers from <https://www.tcpdump.org/linktypes.html> that
/// flowtrail decodes.
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    /// DLT_RAW as some BSDs number it (12 on OpenBSD, 14 elsewhere).
    pub const RAW_BSD12: u32 = 12;
    pub const RAW_BSD14: u32 = 14;
}

/// One captured packet, lent by a source until the next call.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Index of the interface in [`PacketSource::interfaces`].
    pub interface: u32,
    /// `LINKTYPE_*` of that interface.
    pub linktype: u32,
    /// The captured bytes (may be shorter than `orig_len` when snapped).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// Which way the packet crossed its interface, where the source knows:
    /// TC (ingress or egress hook), XDP (always ingress), AF_PACKET
    /// (`sll_pkttype`), pcapng (the EPB `epb_flags` option); `None` for
    /// classic pcap and pcapng packets without flags.
    pub direction: Option<Direction>,
}

/// Which way a packet crossed the interface it was captured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Received by the interface (TC ingress, XDP, AF_PACKET host,
    /// broadcast, multicast and other-host packets, pcapng inbound).
    #[default]
    Ingress,
    /// Sent by the interface (TC egress, AF_PACKET `PACKET_OUTGOING`,
    /// pcapng outbound).
    Egress,
}

impl Direction {
    /// `ingress` or `egress`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// An interface (capture point inside one source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Name from the pcapng `if_name` option, else `if<N>`.
    pub name: String,
    pub linktype: u32,
    pub snaplen: u32,
    /// Kernel ifindex of the interface (live capture); `None` for files,
    /// whose formats carry no ifindex.
    pub ifindex: Option<u32>,
    /// Network namespace the interface was opened in, when it is a named
    /// (`ip netns`) one or was given as a path; `None` in the initial
    /// namespace, for files, or when unknown.
    pub netns: Option<String>,
}

/// The `ip netns` name of the calling thread's network namespace, found as
/// `ip netns identify` does: the entry of `/run/netns` that is the same
/// namespace (device and inode) as `/proc/thread-self/ns/net`. `None` in
/// the initial namespace, or when no name is bound to it.
#[cfg(target_os = "linux")]
#[must_use]
pub fn current_netns_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/thread-self/ns/net").ok()?;
    let key = (me.dev(), me.ino());
    if let Ok(init) = std::fs::metadata("/proc/1/ns/net") {
        if (init.dev(), init.ino()) == key {
            return None;
        }
    }
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .ok()?
        .flatten()
        .filter(|e| e.metadata().is_ok_and(|m| (m.dev(), m.ino()) == key))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Counters a source keeps about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets returned by `next_packet`.
    pub packets: u64,
    /// Captured bytes returned.
    pub bytes: u64,
    /// Packets whose captured length is below their wire length.
    pub snapped: u64,
    /// Blocks skipped because they are not packets (pcapng statistics, name
    /// resolution, custom blocks) or packets on an unknown interface.
    pub skipped_blocks: u64,
    /// Packets the capture layer dropped (kernel or ring); 0 for files
    /// except where a pcapng interface-statistics block reports drops.
    /// Live AF_PACKET: the kernel's `tp_drops` (ring full), accumulated.
    pub dropped: u64,
    /// Live sources: packets the kernel handed to the socket after its
    /// filter, drops included (AF_PACKET `tp_packets`, accumulated). Runs
    /// ahead of `packets` by what still waits in the ring. 0 for files.
    pub kernel_packets: u64,
    /// Live AF_PACKET: times the ring froze because every block was still
    /// held by user space (`tp_freeze_q_cnt`, accumulated). 0 for files.
    pub freeze_count: u64,
}

/// Why a source stopped or could not start. Each variant says where.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The first bytes are neither a pcap nor a pcapng header.
    #[error("{path}: not a pcap or pcapng file")]
    UnknownFormat { path: PathBuf },
    /// The file ends in the middle of a record.
    #[error("{path}: truncated at byte offset {offset} (after {packets} packets): {detail}")]
    Truncated { path: PathBuf, offset: u64, packets: u64, detail: String },
    /// A record header is impossible (length beyond limits, bad block).
    #[error("{path}: corrupt at byte offset {offset} (after {packets} packets): {detail}")]
    Corrupt { path: PathBuf, offset: u64, packets: u64, detail: String },
    /// A system call of a live source failed (`what` names the call).
    #[error("{interface}: {what}: {source}")]
    Os { interface: String, what: &'static str, source: std::io::Error },
    /// A live source's configuration is impossible (sizes the kernel
    /// refuses, an unknown interface, an unsupported link type).
    #[error("{interface}: {detail}")]
    Config { interface: String, detail: String },
    /// A capture filter could not be compiled (tcpdump missing, bad syntax).
    #[error("{interface}: filter {filter:?}: {detail}")]
    Filter { interface: String, filter: String, detail: String },
    /// The interface a live source was bound to was deleted (or moved to
    /// another network namespace). Every packet the ring held was returned.
    #[error("{interface}: interface disappeared")]
    InterfaceGone { interface: String },
    /// The kernel's ring holds something impossible (offsets past a block).
    #[error("{interface}: ring corrupt: {detail}")]
    Ring { interface: String, detail: String },
}

/// What [`PacketSource::poll_packet`] found.
#[derive(Debug, Clone, Copy)]
pub enum Polled<'a> {
    /// A packet, lent until the next call.
    Packet(RawPacket<'a>),
    /// No packet within the timeout (live sources only). `now_ns` is the
    /// wall clock (`CLOCK_REALTIME`, the clock packet timestamps use) so a
    /// caller can expire idle state while the wire is quiet.
    Idle { now_ns: i64 },
    /// End of input: a file's end, or a live source's stop flag was set.
    End,
}

/// A lending packet source. Time comes from the packets, never a clock
/// (a quiet live source reports the wall clock in [`Polled::Idle`]).
pub trait PacketSource {
    /// The next packet, `Ok(None)` at a clean end of input. After an error
    /// the source is finished; every packet before it was returned.
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError>;
    /// Interfaces known so far (pcapng declares them as it goes).
    fn interfaces(&self) -> &[InterfaceInfo];
    fn stats(&self) -> CaptureStats;
    /// Packets the capture layer dropped on one interface, when the source
    /// counts them per interface (pcapng statistics blocks). Sources with
    /// one interface per source leave this `None`: their `stats` is it.
    fn interface_dropped(&self, interface: u32) -> Option<u64> {
        let _ = interface;
        None
    }
    /// Bytes consumed so far and total size when known, for progress bars.
    fn progress(&self) -> (u64, Option<u64>);
    /// Like [`next_packet`](Self::next_packet), but a live source waits at
    /// most about `timeout` for a packet and then answers
    /// [`Polled::Idle`]. Sources that never wait (files) keep this
    /// default, which is `next_packet` with `None` as [`Polled::End`].
    fn poll_packet(&mut self, timeout: Duration) -> Result<Polled<'_>, CaptureError> {
        let _ = timeout;
        Ok(match self.next_packet()? {
            Some(p) => Polled::Packet(p),
            None => Polled::End,
        })
    }
    /// True for live captures: packets arrive in real time, `next_packet`
    /// may block, and `Ok(None)` comes only once stopped.
    fn is_live(&self) -> bool {
        false
    }
}
