//! Types shared by flowtrail's eBPF capture programs (`capture-ebpf/`,
//! kernel side) and the loader in `flowtrail-capture` (feature `ebpf`).
//!
//! Everything here is `#[repr(C)]` with explicit padding so that both
//! sides agree on the layout byte for byte. Feature `user` adds the
//! `aya::Pod` impls the loader needs to read and write maps.
#![no_std]

/// Bytes copied from the start of each packet at most. A ring-buffer
/// reservation must have a constant size, so every record carries this
/// many bytes of room whatever the packet's length; the loader can lower
/// the effective snap length at run time (it reads fewer bytes) but not
/// raise it. Changing it means rebuilding both the eBPF object and the
/// loader; the loader rejects ring entries whose size is not
/// [`RECORD_SIZE`], so a mismatch shows as an error, not as garbage.
pub const SNAP_LEN: usize = 256;

/// Ring buffer size in bytes (power of two, multiple of the page size):
/// 16 MiB holds about 56 700 records of [`RECORD_SIZE`] (288) + 8 header bytes.
pub const RING_BYTES: u32 = 16 << 20;

/// [`PacketRecord::direction`] of a packet the interface received.
pub const DIR_INGRESS: u32 = 0;
/// [`PacketRecord::direction`] of a packet the interface sent.
pub const DIR_EGRESS: u32 = 1;

/// [`PacketRecord::hook`]: the TC clsact classifier.
pub const HOOK_TC: u16 = 0;
/// [`PacketRecord::hook`]: the XDP program.
pub const HOOK_XDP: u16 = 1;

/// [`Config::flags`] bit: the XDP program returns `XDP_DROP` (after
/// copying) instead of `XDP_PASS`. For mirror ports whose traffic nobody
/// else wants. TC never drops.
pub const FLAG_XDP_DROP: u32 = 1;

/// Names of the objects in the eBPF ELF, shared so they cannot drift.
pub mod names {
    /// `RingBuf` map of [`super::PacketRecord`]s.
    pub const MAP_EVENTS: &str = "FT_EVENTS";
    /// Per-CPU `Array` of one [`super::Counters`].
    pub const MAP_COUNTERS: &str = "FT_COUNTERS";
    /// `Array` of one [`super::Config`].
    pub const MAP_CONFIG: &str = "FT_CONFIG";
    /// TC classifier attached at ingress.
    pub const PROG_TC_INGRESS: &str = "ft_tc_ingress";
    /// TC classifier attached at egress.
    pub const PROG_TC_EGRESS: &str = "ft_tc_egress";
    /// XDP program.
    pub const PROG_XDP: &str = "ft_xdp";
}

/// Run-time settings the loader writes into the one-element config map.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Zero (reserved).
    pub _reserved: u32,
}

/// What the programs count, per CPU (userspace sums the CPUs).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets the programs ran on, dropped copies included.
    pub seen: u64,
    /// Copies lost: the ring was full (reservation failed), or a load
    /// helper failed.
    pub drops: u64,
}

/// One packet as the eBPF programs hand it over through the ring buffer.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PacketRecord {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds (not counting
    /// suspend). The loader adds a REALTIME−MONOTONIC offset.
    pub ts_ns: u64,
    /// `ifindex` of the device the packet was seen on.
    pub ifindex: u32,
    /// Length of the packet on the wire (`skb->len`, XDP buffer length).
    pub len: u32,
    /// Bytes of `data` filled: `min(len, SNAP_LEN)`.
    pub cap_len: u32,
    /// [`DIR_INGRESS`] or [`DIR_EGRESS`].
    pub direction: u32,
    /// [`HOOK_TC`] or [`HOOK_XDP`].
    pub hook: u16,
    /// Zero.
    pub _pad0: u16,
    /// Zero.
    pub _pad1: u32,
    /// The first `cap_len` bytes of the packet from its link-layer header.
    pub data: [u8; SNAP_LEN],
}

/// Size of one [`PacketRecord`] in the ring buffer (without the kernel's
/// 8-byte record header).
pub const RECORD_SIZE: usize = core::mem::size_of::<PacketRecord>();

/// Offset of [`PacketRecord::data`].
pub const RECORD_HEADER_SIZE: usize = RECORD_SIZE - SNAP_LEN;

const _: () = assert!(RECORD_HEADER_SIZE == 32);
const _: () = assert!(RECORD_SIZE.is_multiple_of(8));
const _: () = assert!(SNAP_LEN > 0 && SNAP_LEN.is_multiple_of(8));
const _: () = assert!(RING_BYTES.is_power_of_two());

impl PacketRecord {
    /// Decode the fixed fields from the bytes of one ring-buffer entry
    /// (which need not be aligned for `PacketRecord`); the packet bytes
    /// follow at [`RECORD_HEADER_SIZE`]. `None` when the entry is too short.
    pub fn header_from_bytes(raw: &[u8]) -> Option<RecordHeader> {
        if raw.len() < RECORD_HEADER_SIZE {
            return None;
        }
        let u32_at = |o: usize| u32::from_ne_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[0..8]);
        Some(RecordHeader {
            ts_ns: u64::from_ne_bytes(ts),
            ifindex: u32_at(8),
            len: u32_at(12),
            cap_len: u32_at(16),
            direction: u32_at(20),
            hook: u16::from_ne_bytes([raw[24], raw[25]]),
        })
    }
}

/// The fixed fields of a [`PacketRecord`], decoded by the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub ts_ns: u64,
    pub ifindex: u32,
    pub len: u32,
    pub cap_len: u32,
    pub direction: u32,
    pub hook: u16,
}

#[cfg(feature = "user")]
// SAFETY: repr(C), every field is plain data, padding is explicit.
unsafe impl aya::Pod for Config {}
#[cfg(feature = "user")]
// SAFETY: repr(C), every field is plain data, padding is explicit.
unsafe impl aya::Pod for PacketRecord {}
#[cfg(feature = "user")]
// SAFETY: repr(C), two u64s.
unsafe impl aya::Pod for Counters {}
