//! flowtrail's kernel-side capture: a TC clsact classifier (one program
//! for ingress, one for egress: pod veths, vSwitch taps) and an XDP
//! program (NIC and mirror ports, ingress only). Each copies the first
//! `min(len, SNAP_LEN)` bytes of every packet, with its wire length,
//! ifindex, direction and a CLOCK_MONOTONIC timestamp, into one
//! fixed-size record of the `FT_EVENTS` ring buffer that userspace
//! (`flowtrail_capture::ebpf`) drains.
//!
//! The programs never change a packet's fate: TC returns `TC_ACT_UNSPEC`
//! (the next filter or program decides, as if this one were absent), XDP
//! returns `XDP_PASS` unless userspace set `FLAG_XDP_DROP` in `FT_CONFIG`.
//! A full ring drops the copy, never the packet, and counts it in
//! `FT_COUNTERS` (per CPU, with every packet seen).
//!
//! Build: scripts/build-ebpf.sh (nightly, -Z build-std=core, bpf-linker).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{xdp_action, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, TC_ACT_UNSPEC},
    helpers::generated::{bpf_ktime_get_ns, bpf_skb_load_bytes, bpf_xdp_get_buff_len, bpf_xdp_load_bytes},
    macros::{classifier, map, xdp},
    maps::{Array, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
    EbpfContext,
};
use flowtrail_capture_ebpf_common::{
    Config, Counters, PacketRecord, DIR_EGRESS, DIR_INGRESS, FLAG_XDP_DROP, HOOK_TC, HOOK_XDP, RECORD_HEADER_SIZE,
    RECORD_SIZE, RING_BYTES, SNAP_LEN,
};

/// Bytes waiting in the ring before a submit wakes the reader (~900
/// records; the ring holds 16 MiB).
const WAKEUP_BYTES: u64 = 256 << 10;

#[map]
static FT_EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map]
static FT_COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

#[map]
static FT_CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[inline(always)]
fn config() -> Config {
    match FT_CONFIG.get(0) {
        Some(c) => *c,
        None => Config::default(),
    }
}

/// Count a packet seen, and a lost copy when `dropped`. Per-CPU slot: no
/// other writer while this program runs on this CPU.
#[inline(always)]
fn count(dropped: bool) {
    if let Some(p) = FT_COUNTERS.get_ptr_mut(0) {
        unsafe {
            (*p).seen += 1;
            if dropped {
                (*p).drops += 1;
            }
        }
    }
}

/// Bytes to copy: `min(len, SNAP_LEN)`. The helpers' size argument must be
/// provably in `1..=SNAP_LEN` for the verifier, so the bound is a constant
/// (a run-time snap length is applied by userspace, which reads only what
/// it wants). 0 when there is nothing to copy.
#[inline(always)]
fn cap_len(len: u64) -> u32 {
    // Compare in 64 bits, the width the helper results come in: a bound
    // checked on a truncated copy would not carry over to the original.
    if len > SNAP_LEN as u64 {
        SNAP_LEN as u32
    } else {
        len as u32
    }
}

/// Reserve a record, let `fill` copy `n` bytes into its data (`n` in
/// `1..=SNAP_LEN`), then submit it, or discard it when the copy failed.
#[inline(always)]
fn emit(ifindex: u32, len: u64, direction: u32, hook: u16, fill: impl FnOnce(*mut u8, u32) -> i64) {
    // First thing: the time nearest the packet's arrival.
    let ts_ns = unsafe { bpf_ktime_get_ns() };
    let Some(mut entry) = FT_EVENTS.reserve::<PacketRecord>(0) else {
        count(true);
        return;
    };
    let rec = entry.as_mut_ptr();
    let n = cap_len(len);
    let mut ok = true;
    if n != 0 {
        let data = unsafe { (rec as *mut u8).add(RECORD_HEADER_SIZE) };
        ok = fill(data, n) == 0;
    }
    if !ok {
        entry.discard(0);
        count(true);
        return;
    }
    unsafe {
        (*rec).ts_ns = ts_ns;
        (*rec).ifindex = ifindex;
        (*rec).len = if len > u32::MAX as u64 { u32::MAX } else { len as u32 };
        (*rec).cap_len = n;
        (*rec).direction = direction;
        (*rec).hook = hook;
        (*rec)._pad0 = 0;
        (*rec)._pad1 = 0;
    }
    // Bytes of `data` past `cap_len` are whatever the ring held before:
    // userspace reads only `cap_len` of them.
    //
    // Wake the reader only once a batch is waiting: a wakeup per packet
    // cost the reader a poll() per packet (~1.2 µs each, measured by
    // bench/live.sh). A reader that sleeps with less than WAKEUP_BYTES
    // waiting wakes by its own poll timeout (10 ms).
    let flags = if FT_EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= WAKEUP_BYTES {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    entry.submit(flags as u64);
    count(false);
}

#[inline(always)]
fn tc_copy(ctx: &TcContext, direction: u32) -> i32 {
    let skb = ctx.skb.skb;
    // SAFETY: reads of the context the kernel handed us.
    let (ifindex, len) = unsafe { ((*skb).ifindex, u64::from((*skb).len)) };
    emit(ifindex, len, direction, HOOK_TC, |dst, n| unsafe { bpf_skb_load_bytes(ctx.as_ptr(), 0, dst.cast(), n) });
    TC_ACT_UNSPEC
}

/// TC clsact ingress: packets the device received.
#[classifier]
pub fn ft_tc_ingress(ctx: TcContext) -> i32 {
    tc_copy(&ctx, DIR_INGRESS)
}

/// TC clsact egress: packets the device sends.
#[classifier]
pub fn ft_tc_egress(ctx: TcContext) -> i32 {
    tc_copy(&ctx, DIR_EGRESS)
}

/// XDP (ingress only). `frags`: multi-buffer (jumbo) packets are
/// accepted and read through `bpf_xdp_load_bytes`.
#[xdp(frags)]
pub fn ft_xdp(ctx: XdpContext) -> u32 {
    let cfg = config();
    let md = ctx.ctx;
    // SAFETY: context reads and helpers on the context we were given.
    let ifindex = unsafe { (*md).ingress_ifindex };
    let len = unsafe { bpf_xdp_get_buff_len(md) };
    emit(ifindex, len, DIR_INGRESS, HOOK_XDP, |dst, n| unsafe { bpf_xdp_load_bytes(md, 0, dst.cast(), n) });
    if cfg.flags & FLAG_XDP_DROP != 0 {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

const _: () = assert!(RECORD_SIZE == core::mem::size_of::<PacketRecord>());

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 11] = *b"Apache-2.0\0";
