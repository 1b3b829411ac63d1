//! Tests of `PcapFileSource` on fixtures written here (by hand or with
//! pcap-file), on random bytes, and on the shared corpus when present.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flowtrail_capture::pcap_file::PcapFileSource;
use flowtrail_capture::{linktype, CaptureError, InterfaceInfo, PacketSource};

// ---------------------------------------------------------------- helpers

/// Counts heap allocations made by the current thread while enabled, to
/// check that reading packets allocates nothing.
struct CountingAlloc;

thread_local! {
    static COUNT_ALLOCS: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static ALLOC_BYTES: Cell<u64> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    if COUNT_ALLOCS.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        let _ = ALLOC_BYTES.try_with(|n| n.set(n.get() + size as u64));
    }
}

/// Runs `f` with counting on; returns its result and the bytes allocated.
fn bytes_allocated_by<T>(f: impl FnOnce() -> T) -> (T, u64) {
    ALLOC_BYTES.with(|n| n.set(0));
    COUNT_ALLOCS.with(|c| c.set(true));
    let out = f();
    COUNT_ALLOCS.with(|c| c.set(false));
    (out, ALLOC_BYTES.with(Cell::get))
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

/// Reads every packet after the first with allocation counting on; returns
/// (packets read, allocations).
fn allocations_while_reading(src: &mut PcapFileSource) -> (u64, u64) {
    // The first packet comes after the headers, which may allocate.
    assert!(src.next_packet().unwrap().is_some());
    // The counter itself must see allocations.
    COUNT_ALLOCS.with(|c| c.set(true));
    std::hint::black_box(vec![0u8; 16]);
    COUNT_ALLOCS.with(|c| c.set(false));
    assert_eq!(ALLOCS.with(Cell::get), 1, "allocation counter is broken");

    ALLOCS.with(|n| n.set(0));
    COUNT_ALLOCS.with(|c| c.set(true));
    let mut packets = 0u64;
    let mut checksum = 0u64;
    while let Ok(Some(p)) = src.next_packet() {
        packets += 1;
        checksum = checksum.wrapping_add(p.data.len() as u64 + p.ts_ns as u64);
    }
    COUNT_ALLOCS.with(|c| c.set(false));
    std::hint::black_box(checksum);
    (packets, ALLOCS.with(Cell::get))
}

/// A fresh path under the temp dir, unique per process and call.
fn tmp_path(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("flowtrail-capture-test-{}-{tag}-{n}", std::process::id()))
}

/// Writes `bytes` to a temp file that is removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> Self {
        let path = tmp_path(tag);
        std::fs::write(&path, bytes).expect("write fixture");
        TempFile(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An owned copy of a lent packet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pkt {
    ts_ns: i64,
    interface: u32,
    linktype: u32,
    data: Vec<u8>,
    orig_len: u32,
}

/// Reads a source to its end: the packets, then the error if any. Checks
/// on the way that the source stays finished after its end.
fn drain(src: &mut PcapFileSource) -> (Vec<Pkt>, Option<CaptureError>) {
    let mut pkts = Vec::new();
    let err = loop {
        match src.next_packet() {
            Ok(Some(p)) => pkts.push(Pkt {
                ts_ns: p.ts_ns,
                interface: p.interface,
                linktype: p.linktype,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
            }),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    for _ in 0..3 {
        assert!(matches!(src.next_packet(), Ok(None)), "source must stay finished");
    }
    (pkts, err)
}

fn read_bytes(tag: &str, bytes: &[u8]) -> (PcapFileSource, Vec<Pkt>, Option<CaptureError>) {
    let f = TempFile::new(tag, bytes);
    let mut src = PcapFileSource::open(f.path()).expect("open fixture");
    let (pkts, err) = drain(&mut src);
    (src, pkts, err)
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i as u8)).collect()
}

/// Legacy pcap written by hand: (ts_sec, ts_frac, data, orig_len).
fn legacy_pcap(
    big_endian: bool,
    nanos: bool,
    network: u32,
    snaplen: u32,
    packets: &[(u32, u32, Vec<u8>, u32)],
) -> Vec<u8> {
    let mut w = Writer { be: big_endian, out: Vec::new() };
    w.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w.u16(2);
    w.u16(4);
    w.u32(0);
    w.u32(0);
    w.u32(snaplen);
    w.u32(network);
    for (sec, frac, data, orig) in packets {
        w.u32(*sec);
        w.u32(*frac);
        w.u32(data.len() as u32);
        w.u32(*orig);
        w.out.extend_from_slice(data);
    }
    w.out
}

struct Writer {
    be: bool,
    out: Vec<u8>,
}

impl Writer {
    fn u16(&mut self, v: u16) {
        let b = if self.be { v.to_be_bytes() } else { v.to_le_bytes() };
        self.out.extend_from_slice(&b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.be { v.to_be_bytes() } else { v.to_le_bytes() };
        self.out.extend_from_slice(&b);
    }
    fn u64(&mut self, v: u64) {
        let b = if self.be { v.to_be_bytes() } else { v.to_le_bytes() };
        self.out.extend_from_slice(&b);
    }
    fn pad4(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

/// pcapng option: code and value; `opt_endofopt` is added by the writer.
type Opt = (u16, Vec<u8>);

/// A pcapng file written by hand, block by block, in either byte order.
struct NgBuilder {
    be: bool,
    out: Vec<u8>,
}

impl NgBuilder {
    fn new(be: bool) -> Self {
        let mut b = NgBuilder { be, out: Vec::new() };
        b.shb();
        b
    }
    fn w(&self) -> Writer {
        Writer { be: self.be, out: Vec::new() }
    }
    /// Appends a block; `body` is everything between the length fields.
    fn block(&mut self, block_type: u32, body: Vec<u8>) -> &mut Self {
        let mut w = self.w();
        w.u32(block_type);
        w.u32(12 + body.len() as u32);
        w.out.extend_from_slice(&body);
        w.u32(12 + body.len() as u32);
        self.out.extend_from_slice(&w.out);
        self
    }
    fn options(&self, w: &mut Writer, opts: &[Opt]) {
        if opts.is_empty() {
            return;
        }
        for (code, value) in opts {
            w.u16(*code);
            w.u16(value.len() as u16);
            w.out.extend_from_slice(value);
            w.pad4();
        }
        w.u16(0);
        w.u16(0);
    }
    /// Starts a new section in this builder's current byte order.
    fn shb(&mut self) -> &mut Self {
        let mut w = self.w();
        w.u32(0x1a2b_3c4d);
        w.u16(1);
        w.u16(0);
        w.u64(u64::MAX);
        self.options(&mut w, &[(4, b"flowtrail tests".to_vec())]);
        self.block(0x0a0d_0d0a, w.out)
    }
    fn idb(&mut self, linktype: u16, snaplen: u32, opts: &[Opt]) -> &mut Self {
        let mut w = self.w();
        w.u16(linktype);
        w.u16(0);
        w.u32(snaplen);
        self.options(&mut w, opts);
        self.block(1, w.out)
    }
    fn epb(&mut self, if_id: u32, ts: u64, data: &[u8], orig_len: u32, opts: &[Opt]) -> &mut Self {
        let mut w = self.w();
        w.u32(if_id);
        w.u32((ts >> 32) as u32);
        w.u32(ts as u32);
        w.u32(data.len() as u32);
        w.u32(orig_len);
        w.out.extend_from_slice(data);
        w.pad4();
        self.options(&mut w, opts);
        self.block(6, w.out)
    }
    fn pb(&mut self, if_id: u16, ts: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut w = self.w();
        w.u16(if_id);
        w.u16(0);
        w.u32((ts >> 32) as u32);
        w.u32(ts as u32);
        w.u32(data.len() as u32);
        w.u32(orig_len);
        w.out.extend_from_slice(data);
        w.pad4();
        self.block(2, w.out)
    }
    fn spb(&mut self, orig_len: u32, data: &[u8]) -> &mut Self {
        let mut w = self.w();
        w.u32(orig_len);
        w.out.extend_from_slice(data);
        w.pad4();
        self.block(3, w.out)
    }
    fn isb(&mut self, if_id: u32, ifdrop: Option<u64>) -> &mut Self {
        let mut w = self.w();
        w.u32(if_id);
        w.u32(0);
        w.u32(0);
        let mut opts = vec![(4u16, self.u64_bytes(1000))];
        if let Some(d) = ifdrop {
            opts.push((5, self.u64_bytes(d)));
        }
        self.options(&mut w, &opts);
        self.block(5, w.out)
    }
    fn u64_bytes(&self, v: u64) -> Vec<u8> {
        let mut w = self.w();
        w.u64(v);
        w.out
    }
    fn i64_bytes(&self, v: i64) -> Vec<u8> {
        self.u64_bytes(v as u64)
    }
    fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

fn if_name(name: &str) -> Opt {
    (2, name.as_bytes().to_vec())
}

fn tsresol(v: u8) -> Opt {
    (9, vec![v])
}

// ------------------------------------------------------------ legacy pcap

const T0: u32 = 1_700_000_000;

#[test]
fn pcap_microsecond_little_endian_via_pcap_file() {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::{DataLink, Endianness, TsResolution};

    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: 96,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    let datas = [payload(60, 1), payload(96, 2), payload(0, 3)];
    let ts = [
        Duration::new(u64::from(T0), 123_456_000),
        Duration::new(u64::from(T0) + 1, 999_999_000),
        Duration::new(0, 1000),
    ];
    let orig = [60u32, 1514, 0];
    for i in 0..3 {
        w.write_packet(&PcapPacket { timestamp: ts[i], orig_len: orig[i], data: Cow::Borrowed(&datas[i]) }).unwrap();
    }
    let bytes = w.into_writer();
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian µs magic");

    let (src, pkts, err) = read_bytes("pcap-us-le", &bytes);
    assert!(err.is_none(), "{err:?}");
    assert!(!src.is_pcapng());
    assert_eq!(
        src.interfaces(),
        &[InterfaceInfo { name: "if0".into(), linktype: linktype::ETHERNET, snaplen: 96, ifindex: None, netns: None }]
    );
    assert_eq!(pkts.len(), 3);
    for i in 0..3 {
        assert_eq!(pkts[i].ts_ns, ts[i].as_nanos() as i64);
        assert_eq!(pkts[i].data, datas[i]);
        assert_eq!(pkts[i].orig_len, orig[i]);
        assert_eq!(pkts[i].interface, 0);
        assert_eq!(pkts[i].linktype, linktype::ETHERNET);
    }
    let stats = src.stats();
    assert_eq!(stats.packets, 3);
    assert_eq!(stats.bytes, 156);
    assert_eq!(stats.snapped, 1);
    assert_eq!(stats.skipped_blocks, 0);
    assert_eq!(stats.dropped, 0);
    assert_eq!(src.progress(), (bytes.len() as u64, Some(bytes.len() as u64)));
}

#[test]
fn pcap_nanosecond_big_endian_via_pcap_file() {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::{DataLink, Endianness, TsResolution};

    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: 65535,
        datalink: DataLink::RAW,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::Big,
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    let ts = [Duration::new(u64::from(T0), 1), Duration::new(u64::from(u32::MAX), 999_999_999)];
    for (i, t) in ts.iter().enumerate() {
        let data = payload(40 + i, 9);
        w.write_packet(&PcapPacket { timestamp: *t, orig_len: data.len() as u32, data: Cow::Owned(data) }).unwrap();
    }
    let bytes = w.into_writer();
    assert_eq!(&bytes[..4], &[0xa1, 0xb2, 0x3c, 0x4d], "big-endian ns magic");

    let (src, pkts, err) = read_bytes("pcap-ns-be", &bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(src.interfaces()[0].linktype, linktype::RAW);
    assert_eq!(src.interfaces()[0].snaplen, 65535);
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].ts_ns, i64::from(T0) * 1_000_000_000 + 1);
    // The largest legacy timestamp still fits: u32::MAX seconds + fraction.
    assert_eq!(pkts[1].ts_ns, i64::from(u32::MAX) * 1_000_000_000 + 999_999_999);
    assert_eq!(pkts[1].data, payload(41, 9));
    assert_eq!(src.stats().snapped, 0);
}

#[test]
fn pcap_all_magics_and_byte_orders_by_hand() {
    for be in [false, true] {
        for nanos in [false, true] {
            let frac = if nanos { 123_456_789 } else { 123_456 };
            let bytes = legacy_pcap(be, nanos, 113, 262_144, &[(T0, frac, payload(20, 5), 20)]);
            let (src, pkts, err) = read_bytes("pcap-magic", &bytes);
            assert!(err.is_none(), "be={be} nanos={nanos}: {err:?}");
            let want = i64::from(T0) * 1_000_000_000 + if nanos { 123_456_789 } else { 123_456_000 };
            assert_eq!(pkts.len(), 1);
            assert_eq!(pkts[0].ts_ns, want, "be={be} nanos={nanos}");
            assert_eq!(pkts[0].linktype, linktype::LINUX_SLL);
            assert_eq!(src.interfaces()[0].snaplen, 262_144);
        }
    }
}

#[test]
fn pcap_linktype_ignores_fcs_bits() {
    // Bits 28..31 of the link type field carry the FCS length.
    let bytes = legacy_pcap(false, false, 0x1000_0000 | 1, 65535, &[(T0, 0, payload(14, 0), 14)]);
    let (src, pkts, _) = read_bytes("pcap-fcs", &bytes);
    assert_eq!(src.interfaces()[0].linktype, linktype::ETHERNET);
    assert_eq!(pkts[0].linktype, linktype::ETHERNET);
}

#[test]
fn pcap_header_only_is_an_empty_capture() {
    let bytes = legacy_pcap(false, false, 1, 65535, &[]);
    let (src, pkts, err) = read_bytes("pcap-empty", &bytes);
    assert!(pkts.is_empty() && err.is_none());
    assert_eq!(src.progress(), (24, Some(24)));
}

#[test]
fn pcap_large_packets_grow_the_buffer() {
    // 3 MiB and 5 MiB records do not fit the initial 1 MiB buffer.
    let big =
        vec![(T0, 1, payload(3 << 20, 1), 3 << 20), (T0, 2, payload(10, 2), 10), (T0, 3, payload(5 << 20, 3), 5 << 20)];
    let bytes = legacy_pcap(false, false, 1, 0, &big);
    let (_, pkts, err) = read_bytes("pcap-big", &bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 3);
    for (p, want) in pkts.iter().zip(&big) {
        assert_eq!(p.data, want.2);
    }
}

#[test]
fn pcap_many_packets_across_buffer_refills() {
    let packets: Vec<_> =
        (0..20_000u32).map(|i| (T0 + i, i % 1_000_000, payload(100 + (i % 700) as usize, i as u8), 1514)).collect();
    let bytes = legacy_pcap(false, false, 1, 65535, &packets);
    assert!(bytes.len() > 4 << 20);
    let (src, pkts, err) = read_bytes("pcap-many", &bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), packets.len());
    for (p, want) in pkts.iter().zip(&packets) {
        assert_eq!(p.data, want.2);
        assert_eq!(p.ts_ns, i64::from(want.0) * 1_000_000_000 + i64::from(want.1) * 1000);
    }
    assert_eq!(src.stats().snapped, packets.len() as u64);
    assert_eq!(src.progress().0, bytes.len() as u64);
}

#[test]
fn pcap_truncated_inside_a_packet() {
    let packets = [(T0, 0, payload(100, 0), 100), (T0, 1, payload(50, 1), 50), (T0, 2, payload(80, 2), 80)];
    let bytes = legacy_pcap(false, false, 1, 65535, &packets);
    let third = 24 + (16 + 100) + (16 + 50);
    // Cut inside the third packet's data, then inside its record header.
    for cut in [third + 16 + 40, third + 7] {
        let (src, pkts, err) = read_bytes("pcap-trunc", &bytes[..cut]);
        assert_eq!(pkts.len(), 2);
        assert_eq!(pkts[1].data, payload(50, 1));
        match err {
            Some(CaptureError::Truncated { offset, packets, ref path, .. }) => {
                assert_eq!(offset, third as u64, "cut at {cut}");
                assert_eq!(packets, 2);
                assert!(path.to_string_lossy().contains("pcap-trunc"));
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
        assert_eq!(src.stats().packets, 2);
    }
}

#[test]
fn pcap_truncated_file_header() {
    let bytes = legacy_pcap(false, false, 1, 65535, &[]);
    let f = TempFile::new("pcap-short-hdr", &bytes[..10]);
    match PcapFileSource::open(f.path()) {
        Err(CaptureError::Truncated { offset: 0, packets: 0, .. }) => {}
        other => panic!("expected Truncated at 0, got {other:?}"),
    }
}

#[test]
fn pcap_corrupt_record_length() {
    let packets = [(T0, 0, payload(30, 0), 30), (T0, 1, payload(30, 1), 30)];
    let mut bytes = legacy_pcap(true, false, 1, 65535, &packets);
    let second = 24 + 16 + 30;
    // caplen of the second record: 0x7fff_ffff, far beyond 256 MiB.
    bytes[second + 8..second + 12].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    let (_, pkts, err) = read_bytes("pcap-corrupt", &bytes);
    assert_eq!(pkts.len(), 1);
    match err {
        Some(CaptureError::Corrupt { offset, packets: 1, .. }) => assert_eq!(offset, second as u64),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

// ----------------------------------------------------------------- pcapng

#[test]
fn pcapng_interfaces_with_their_own_link_type_and_resolution() {
    let mut b = NgBuilder::new(false);
    let hour = b.i64_bytes(3600);
    b.idb(1, 65535, &[if_name("eth0"), tsresol(6)])
        .idb(101, 0, &[tsresol(9)])
        // 2^-10 s units, and one hour of if_tsoffset.
        .idb(113, 128, &[(2, b"any\0".to_vec()), tsresol(0x80 | 10), (14, hour)]);
    let t_us = u64::from(T0) * 1_000_000 + 654_321;
    let t_ns = u64::from(T0) * 1_000_000_000 + 987_654_321;
    let t_bin = (u64::from(T0) << 10) | 0x3ff; // T0 + 1023/1024 s
    b.epb(0, t_us, &payload(60, 0), 60, &[(1, b"a comment".to_vec()), (2, vec![1, 0, 0, 0])])
        .block(4, vec![0; 8]) // name resolution block
        .epb(1, t_ns, &payload(20, 1), 20, &[])
        .block(0x0000_0bad, vec![0x11, 0x22, 0x33, 0x44]) // custom block
        .epb(2, t_bin, &payload(128, 2), 4000, &[]);
    let bytes = b.bytes();

    let (src, pkts, err) = read_bytes("ng-ifaces", &bytes);
    assert!(err.is_none(), "{err:?}");
    assert!(src.is_pcapng());
    assert_eq!(
        src.interfaces(),
        &[
            InterfaceInfo {
                name: "eth0".into(),
                linktype: linktype::ETHERNET,
                snaplen: 65535,
                ifindex: None,
                netns: None
            },
            InterfaceInfo { name: "if1".into(), linktype: linktype::RAW, snaplen: 0, ifindex: None, netns: None },
            InterfaceInfo {
                name: "any".into(),
                linktype: linktype::LINUX_SLL,
                snaplen: 128,
                ifindex: None,
                netns: None
            },
        ]
    );
    assert_eq!(pkts.len(), 3);
    assert_eq!((pkts[0].interface, pkts[0].linktype), (0, linktype::ETHERNET));
    assert_eq!(pkts[0].ts_ns, t_us as i64 * 1000);
    assert_eq!((pkts[1].interface, pkts[1].linktype), (1, linktype::RAW));
    assert_eq!(pkts[1].ts_ns, t_ns as i64);
    assert_eq!((pkts[2].interface, pkts[2].linktype), (2, linktype::LINUX_SLL));
    // 1023/1024 s = 999_023_437.5 ns, rounded towards zero.
    assert_eq!(pkts[2].ts_ns, (i64::from(T0) + 3600) * 1_000_000_000 + 999_023_437);
    assert_eq!(pkts[2].data, payload(128, 2));
    assert_eq!(pkts[2].orig_len, 4000);
    let stats = src.stats();
    assert_eq!((stats.packets, stats.snapped, stats.skipped_blocks), (3, 1, 2));
    assert_eq!(stats.bytes, 60 + 20 + 128);
    assert_eq!(src.progress(), (bytes.len() as u64, Some(bytes.len() as u64)));
}

#[test]
fn pcapng_odd_resolutions_are_exact() {
    // 10^-3, 10^-12 (finer than ns), 2^0 (seconds), 10^0 and a negative offset.
    let mut b = NgBuilder::new(false);
    let minus_ten = b.i64_bytes(-10);
    b.idb(1, 0, &[tsresol(3)]).idb(1, 0, &[tsresol(12)]).idb(1, 0, &[tsresol(0x80)]).idb(
        1,
        0,
        &[tsresol(0), (14, minus_ten)],
    );
    b.epb(0, 1_700_000_000_123, &[], 0, &[])
        .epb(1, 5_000_123_456_789_012, &[], 0, &[]) // 5000.123456789012 s
        .epb(2, 1_700_000_000, &[], 0, &[])
        .epb(3, 5, &[], 0, &[]);
    let (_, pkts, err) = read_bytes("ng-resol", &b.bytes());
    assert!(err.is_none(), "{err:?}");
    let ts: Vec<i64> = pkts.iter().map(|p| p.ts_ns).collect();
    assert_eq!(ts, vec![1_700_000_000_123_000_000, 5_000_123_456_789, 1_700_000_000_000_000_000, -5_000_000_000,]);
}

#[test]
fn pcapng_sections_number_interfaces_globally() {
    let mut b = NgBuilder::new(false);
    b.idb(1, 0, &[if_name("a")]).idb(101, 0, &[]).epb(1, 10, &payload(4, 0), 4, &[]);
    // Second section, big-endian, with its own interfaces.
    b.be = true;
    b.shb().idb(113, 0, &[tsresol(9)]).idb(1, 0, &[if_name("d")]);
    b.epb(0, 1_000_000_007, &payload(8, 1), 8, &[])
        .epb(1, 5, &payload(8, 2), 8, &[])
        // Interface 2 of this section does not exist: skipped.
        .epb(2, 5, &payload(8, 3), 8, &[]);
    // Third section back in little-endian, without interfaces: its packet
    // is skipped too (it must not use the previous section's interfaces).
    b.be = false;
    b.shb().epb(0, 5, &payload(8, 4), 8, &[]);
    let (src, pkts, err) = read_bytes("ng-sections", &b.bytes());
    assert!(err.is_none(), "{err:?}");
    let names: Vec<&str> = src.interfaces().iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a", "if1", "if2", "d"]);
    let got: Vec<(u32, u32, i64)> = pkts.iter().map(|p| (p.interface, p.linktype, p.ts_ns)).collect();
    assert_eq!(got, vec![(1, 101, 10_000), (2, 113, 1_000_000_007), (3, 1, 5_000)]);
    assert_eq!(src.stats().skipped_blocks, 2);
}

#[test]
fn pcapng_simple_packet_blocks() {
    let mut b = NgBuilder::new(true);
    b.idb(1, 64, &[tsresol(9)]).idb(101, 0, &[]);
    b.epb(1, 42_000, &payload(10, 0), 10, &[])
        // SPB: interface 0, time of the previous packet (42 ms, the EPB's
        // interface counts in µs).
        .spb(30, &payload(30, 1))
        // Larger than interface 0's snaplen: 64 bytes kept.
        .spb(100, &payload(64, 2))
        // Original length 5: the block holds 8 bytes with padding.
        .spb(5, &payload(5, 3));
    let (src, pkts, err) = read_bytes("ng-spb", &b.bytes());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 4);
    for p in &pkts[1..] {
        assert_eq!((p.interface, p.linktype, p.ts_ns), (0, 1, 42_000_000));
    }
    assert_eq!(pkts[1].data, payload(30, 1));
    assert_eq!((pkts[2].data.len(), pkts[2].orig_len), (64, 100));
    assert_eq!(pkts[3].data, payload(5, 3));
    assert_eq!(src.stats().snapped, 1);
}

#[test]
fn pcapng_simple_packet_before_any_packet_has_time_zero() {
    let mut b = NgBuilder::new(false);
    b.idb(1, 0, &[]).spb(4, &payload(4, 0));
    let (_, pkts, err) = read_bytes("ng-spb0", &b.bytes());
    assert!(err.is_none());
    assert_eq!(pkts[0].ts_ns, 0);
}

#[test]
fn pcapng_obsolete_packet_blocks() {
    for be in [false, true] {
        let mut b = NgBuilder::new(be);
        b.idb(1, 0, &[]).idb(228, 0, &[if_name("ip4")]);
        b.pb(1, 3_000_001, &payload(21, 7), 1500);
        let (src, pkts, err) = read_bytes("ng-pb", &b.bytes());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts.len(), 1);
        assert_eq!((pkts[0].interface, pkts[0].linktype), (1, linktype::IPV4));
        assert_eq!(pkts[0].ts_ns, 3_000_001_000);
        assert_eq!((pkts[0].data.clone(), pkts[0].orig_len), (payload(21, 7), 1500));
        assert_eq!(src.stats().snapped, 1);
    }
}

#[test]
fn pcapng_interface_statistics_drops_keep_the_last_value() {
    for be in [false, true] {
        let mut b = NgBuilder::new(be);
        b.idb(1, 0, &[]).idb(1, 0, &[]);
        b.epb(0, 1, &payload(4, 0), 4, &[])
            .isb(0, Some(5))
            .isb(1, Some(3))
            .isb(0, Some(7)) // running total: replaces 5
            .isb(1, None) // no ifdrop: keeps 3
            .isb(9, Some(1000)) // unknown interface: ignored
            .epb(1, 2, &payload(4, 1), 4, &[]);
        let (src, pkts, err) = read_bytes("ng-isb", &b.bytes());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts.len(), 2);
        let stats = src.stats();
        assert_eq!(stats.dropped, 10, "be={be}");
        assert_eq!(stats.skipped_blocks, 5);
    }
}

#[test]
fn pcapng_buffer_grows_for_a_large_block() {
    let mut b = NgBuilder::new(false);
    b.idb(1, 0, &[]).epb(0, 1, &payload(3 << 20, 1), 3 << 20, &[]).epb(0, 2, &payload(7, 2), 7, &[]);
    let (_, pkts, err) = read_bytes("ng-big", &b.bytes());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].data.len(), 3 << 20);
}

#[test]
fn pcapng_truncated_inside_a_block() {
    let mut b = NgBuilder::new(false);
    b.idb(1, 0, &[]).epb(0, 1, &payload(100, 0), 100, &[]).epb(0, 2, &payload(100, 1), 100, &[]);
    let start_of_second = b.out.len();
    b.epb(0, 3, &payload(100, 2), 100, &[]);
    let bytes = b.bytes();
    for cut in [start_of_second + 3, start_of_second + 50, bytes.len() - 1] {
        let (_, pkts, err) = read_bytes("ng-trunc", &bytes[..cut]);
        assert_eq!(pkts.len(), 2, "cut at {cut}");
        match err {
            Some(CaptureError::Truncated { offset, packets: 2, .. }) => {
                assert_eq!(offset, start_of_second as u64, "cut at {cut}")
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn pcapng_corrupt_block_lengths() {
    let mut b = NgBuilder::new(false);
    b.idb(1, 0, &[]).epb(0, 1, &payload(16, 0), 16, &[]);
    let at = b.out.len();
    b.epb(0, 2, &payload(16, 1), 16, &[]);
    let good = b.bytes();
    let set_u32 = |bytes: &mut Vec<u8>, pos: usize, v: u32| bytes[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length not a multiple of 4", {
            let mut x = good.clone();
            set_u32(&mut x, at + 4, 50);
            x
        }),
        ("length below 12", {
            let mut x = good.clone();
            set_u32(&mut x, at + 4, 8);
            x
        }),
        ("EPB length below 32", {
            let mut x = good.clone();
            set_u32(&mut x, at + 4, 28);
            x
        }),
        ("length beyond the cap", {
            let mut x = good.clone();
            set_u32(&mut x, at + 4, 0xffff_fff0);
            x
        }),
        ("trailing length differs", {
            let mut x = good.clone();
            let n = x.len();
            set_u32(&mut x, n - 4, 52);
            x
        }),
        ("caplen beyond the block", {
            let mut x = good.clone();
            set_u32(&mut x, at + 20, 17);
            x
        }),
    ];
    for (what, bytes) in cases {
        let (_, pkts, err) = read_bytes("ng-corrupt", &bytes);
        assert_eq!(pkts.len(), 1, "{what}");
        match err {
            Some(CaptureError::Corrupt { offset, packets: 1, .. }) => assert_eq!(offset, at as u64, "{what}"),
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn pcapng_bad_resolution_or_version_is_corrupt() {
    let mut b = NgBuilder::new(false);
    let idb_at = b.out.len() as u64;
    b.idb(1, 0, &[tsresol(60)]);
    let (_, _, err) = read_bytes("ng-bad-resol", &b.bytes());
    assert!(matches!(err, Some(CaptureError::Corrupt { offset, .. }) if offset == idb_at), "{err:?}");

    let mut bytes = NgBuilder::new(false).bytes();
    bytes[12] = 2; // major version 2
    let (_, _, err) = read_bytes("ng-bad-version", &bytes);
    assert!(matches!(err, Some(CaptureError::Corrupt { offset: 0, .. })), "{err:?}");
}

#[test]
fn pcapng_long_interface_names_are_cut() {
    let mut b = NgBuilder::new(false);
    b.idb(1, 0, &[if_name(&"é".repeat(200))]);
    let (src, _, err) = read_bytes("ng-long-name", &b.bytes());
    assert!(err.is_none());
    assert_eq!(src.interfaces()[0].name, "é".repeat(128));
}

#[test]
fn reading_packets_does_not_allocate() {
    // Several MiB so that the buffer refills while counting; EPBs carry
    // options (pcap-parser would collect them into a Vec).
    let mut b = NgBuilder::new(false);
    b.idb(1, 0, &[if_name("eth0"), tsresol(9)]);
    for i in 0..20_000u64 {
        let data = payload(64 + (i % 300) as usize, i as u8);
        match i % 5 {
            0 => b.spb(data.len() as u32, &data),
            1 => b.pb(0, i, &data, 1514),
            2 => b.block(0x0000_0bad, vec![0; 16]),
            _ => b.epb(0, i, &data, 1514, &[(1, b"a comment".to_vec()), (2, vec![1, 0, 0, 0])]),
        };
    }
    let f = TempFile::new("ng-noalloc", &b.bytes());
    let mut src = PcapFileSource::open(f.path()).unwrap();
    let (packets, allocs) = allocations_while_reading(&mut src);
    assert_eq!(packets, 16_000 - 1);
    assert_eq!(allocs, 0, "pcapng packets must not allocate");

    let packets: Vec<_> = (0..20_000u32).map(|i| (T0, i, payload(64 + (i % 300) as usize, 1), 1514)).collect();
    let f = TempFile::new("pcap-noalloc", &legacy_pcap(true, true, 1, 65535, &packets));
    let mut src = PcapFileSource::open(f.path()).unwrap();
    let (n, allocs) = allocations_while_reading(&mut src);
    assert_eq!(n, 20_000 - 1);
    assert_eq!(allocs, 0, "legacy pcap packets must not allocate");
}

#[test]
fn bogus_lengths_in_short_files_cost_no_memory() {
    // A legacy record claiming 200 MiB (under the 256 MiB cap) in a file
    // of a few hundred bytes: truncated, found without a big buffer.
    let mut bytes = legacy_pcap(false, false, 1, 0, &[(T0, 0, payload(100, 0), 100)]);
    let at = bytes.len() as u64;
    bytes.extend_from_slice(&legacy_pcap(false, false, 1, 0, &[(T0, 1, payload(200, 1), 200)])[24..]);
    bytes[at as usize + 8..at as usize + 12].copy_from_slice(&(200u32 << 20).to_le_bytes());
    let f = TempFile::new("pcap-bogus-len", &bytes);
    let ((pkts, err), allocated) = bytes_allocated_by(|| {
        let mut src = PcapFileSource::open(f.path()).unwrap();
        drain(&mut src)
    });
    assert_eq!(pkts.len(), 1);
    assert!(matches!(err, Some(CaptureError::Truncated { offset, packets: 1, .. }) if offset == at), "{err:?}");
    assert!(allocated < 4 << 20, "allocated {allocated} bytes");

    // The same for pcapng, in the first block and in a later one.
    let mut b = NgBuilder::new(false);
    b.idb(1, 0, &[]);
    let at = b.out.len();
    b.epb(0, 1, &payload(100, 0), 100, &[]);
    let mut bytes = b.bytes();
    bytes[at + 4..at + 8].copy_from_slice(&(200u32 << 20).to_le_bytes());
    let f = TempFile::new("ng-bogus-len", &bytes);
    let ((pkts, err), allocated) = bytes_allocated_by(|| {
        let mut src = PcapFileSource::open(f.path()).unwrap();
        drain(&mut src)
    });
    assert!(pkts.is_empty());
    assert!(matches!(err, Some(CaptureError::Truncated { offset, .. }) if offset == at as u64), "{err:?}");
    assert!(allocated < 4 << 20, "allocated {allocated} bytes");

    bytes[4..8].copy_from_slice(&(200u32 << 20).to_le_bytes());
    let f = TempFile::new("ng-bogus-shb", &bytes);
    let (res, allocated) = bytes_allocated_by(|| PcapFileSource::open(f.path()).map(|_| ()));
    assert!(matches!(res, Err(CaptureError::Truncated { offset: 0, .. })), "{res:?}");
    assert!(allocated < 4 << 20, "allocated {allocated} bytes");
}

#[cfg(unix)]
#[test]
fn reads_from_a_fifo() {
    let path = tmp_path("fifo");
    let made = std::process::Command::new("mkfifo").arg(&path).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable, skipped");
        return;
    }
    let mut b = NgBuilder::new(false);
    b.idb(1, 0, &[]);
    for i in 0..2000u64 {
        b.epb(0, i, &payload(200 + (i % 100) as usize, i as u8), 1514, &[]);
    }
    let bytes = b.bytes();
    let writer = {
        let (path, bytes) = (path.clone(), bytes.clone());
        // Small writes so that the reader sees short reads.
        std::thread::spawn(move || {
            use std::io::Write;
            let mut fifo = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            for chunk in bytes.chunks(1000) {
                fifo.write_all(chunk).unwrap();
            }
        })
    };
    let mut src = PcapFileSource::open(&path).unwrap();
    let (pkts, err) = drain(&mut src);
    writer.join().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 2000);
    assert_eq!(pkts[1999].data, payload(299, 1999u64 as u8));
    assert_eq!(src.progress(), (bytes.len() as u64, None));
}

// ------------------------------------------------------- not a capture file

#[test]
fn empty_file_and_bad_magic_are_unknown_format() {
    for (tag, bytes) in [
        ("empty", &b""[..]),
        ("short", &b"\xd4\xc3"[..]),
        ("text", &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]),
        ("crlf", &b"\n\r\r\n\x1c\x00\x00\x00hello, world"[..]),
    ] {
        let f = TempFile::new(tag, bytes);
        match PcapFileSource::open(f.path()) {
            Err(CaptureError::UnknownFormat { path }) => assert_eq!(path, f.path()),
            other => panic!("{tag}: expected UnknownFormat, got {other:?}"),
        }
    }
}

#[test]
fn missing_file_or_directory_is_io_error() {
    let path = tmp_path("does-not-exist");
    assert!(matches!(PcapFileSource::open(&path), Err(CaptureError::Io { .. })));
    // Opening a directory works on Unix; reading it does not.
    let dir = std::env::temp_dir();
    assert!(matches!(PcapFileSource::open(&dir), Err(CaptureError::Io { .. })));
}

#[test]
fn source_is_send() {
    fn send<T: Send>() {}
    send::<PcapFileSource>();
}

// -------------------------------------------------------------- robustness

/// xorshift64*: enough randomness for fuzzing, no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Opens and drains `bytes`; must not panic and must end. Every packet
/// needs at least 12 bytes of file, which bounds the count.
fn survive(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let Ok(mut src) = PcapFileSource::open(path) else {
        return;
    };
    let mut n = 0u64;
    while let Ok(Some(p)) = src.next_packet() {
        assert!(p.data.len() <= bytes.len());
        n += 1;
        assert!(n <= bytes.len() as u64 / 12 + 1, "more packets than the file can hold");
    }
    assert!(matches!(src.next_packet(), Ok(None)));
    let (done, size) = src.progress();
    assert!(done <= size.unwrap_or(u64::MAX));
}

#[test]
fn random_bytes_never_panic_and_always_end() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let path = tmp_path("fuzz");

    let mut ng = NgBuilder::new(false);
    ng.idb(1, 0, &[if_name("x"), tsresol(9)])
        .epb(0, 1, &payload(30, 0), 30, &[(1, b"c".to_vec())])
        .spb(9, &payload(9, 1))
        .pb(0, 2, &payload(3, 2), 3)
        .isb(0, Some(1));
    let seeds = [
        ng.bytes(),
        legacy_pcap(false, false, 1, 65535, &[(1, 2, payload(30, 0), 30), (3, 4, payload(5, 1), 9)]),
        legacy_pcap(true, true, 1, 65535, &[(1, 2, payload(30, 0), 30), (3, 4, payload(5, 1), 9)]),
    ];
    let magics: [&[u8]; 6] = [
        b"\xd4\xc3\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\x4d\x3c\xb2\xa1",
        b"\x34\xcd\xb2\xa1",
        b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a",
        b"\x0a\x0d\x0d\x0a\x00\x00\x00\x1c\x1a\x2b\x3c\x4d",
    ];
    for round in 0..3000 {
        let len = rng.below(300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        match round % 3 {
            // Pure noise.
            0 => {}
            // A valid magic in front of noise.
            1 => {
                let m = magics[rng.below(magics.len())];
                bytes.splice(0..0, m.iter().copied());
            }
            // A valid file with a few bytes changed and maybe cut.
            _ => {
                bytes = seeds[rng.below(seeds.len())].clone();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
                if rng.below(2) == 0 {
                    let cut = rng.below(bytes.len() + 1);
                    bytes.truncate(cut);
                }
            }
        }
        survive(&path, &bytes);
    }
    let _ = std::fs::remove_file(&path);
}

// ------------------------------------------------------------------ corpus

/// Captures whose count legitimately differs from MANIFEST (capinfos),
/// with the count we expect and why. Empty: every capture agrees.
const CORPUS_EXCEPTIONS: &[(&str, u64, &str)] = &[];

/// `/work/shared/corpus` seen from this crate, i.e. `../shared/corpus` from
/// the workspace root.
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

/// Every pcap/pcapng/cap file under the corpus, sorted.
fn corpus_files(corpus: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![corpus.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                stack.push(path);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng" | "cap")) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn corpus_packet_counts_match_manifest() {
    let corpus = corpus_dir();
    let Ok(manifest) = std::fs::read_to_string(corpus.join("MANIFEST.tsv")) else {
        return; // no corpus on this machine
    };
    let mut expected: HashMap<String, u64> = HashMap::new();
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if let (Some(file), Some(packets)) = (cols.first(), cols.get(6)) {
            if let Ok(n) = packets.trim().parse() {
                expected.insert((*file).to_owned(), n);
            }
        }
    }
    let exceptions: HashMap<&str, u64> = CORPUS_EXCEPTIONS.iter().map(|(f, n, _)| (*f, *n)).collect();

    let files = corpus_files(&corpus);
    let mut problems = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&corpus).unwrap().to_string_lossy().replace('\\', "/");
        let mut src = match PcapFileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{rel}: open failed: {e}"));
                continue;
            }
        };
        let mut n = 0u64;
        let mut error = None;
        loop {
            match src.next_packet() {
                Ok(Some(_)) => n += 1,
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let want = exceptions.get(rel.as_str()).copied().or_else(|| expected.get(&rel).copied());
        match want {
            None => problems.push(format!("{rel}: not in MANIFEST.tsv ({n} packets read)")),
            Some(want) if want != n => {
                problems.push(format!("{rel}: read {n} packets, expected {want} (error: {error:?})"))
            }
            // A file that ends in an error must be a listed exception.
            Some(_) if error.is_some() && !exceptions.contains_key(rel.as_str()) => {
                problems.push(format!("{rel}: count agrees but reading ended in {error:?}"))
            }
            Some(_) => {}
        }
    }
    eprintln!("corpus: {} capture files checked", files.len());
    assert!(
        problems.is_empty(),
        "{} of {} corpus files disagree:\n{}",
        problems.len(),
        files.len(),
        problems.join("\n")
    );
}

/// The same packets, decoded by pcap-file (an independent reader).
fn read_with_pcap_file(path: &Path) -> Result<Vec<Pkt>, String> {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::Block;
    use pcap_file::TsResolution;

    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).map_err(|e| e.to_string())?;
        // (linktype, units per second, offset seconds, snaplen) by global index.
        let mut ifaces: Vec<(u32, u128, i64, u32)> = Vec::new();
        let mut base = 0;
        let mut last_ts = 0i64;
        let ts = |raw: u128, units: u128, off: i64| (raw * 1_000_000_000 / units) as i64 + off * 1_000_000_000;
        while let Some(block) = r.next_block() {
            match block.map_err(|e| e.to_string())? {
                Block::SectionHeader(_) => base = ifaces.len(),
                Block::InterfaceDescription(idb) => {
                    let (mut units, mut off) = (1_000_000u128, 0i64);
                    for o in &idb.options {
                        match o {
                            InterfaceDescriptionOption::IfTsResol(v) if v & 0x80 == 0 => {
                                units = 10u128.pow(u32::from(*v))
                            }
                            InterfaceDescriptionOption::IfTsResol(v) => units = 1u128 << (v & 0x7f),
                            InterfaceDescriptionOption::IfTsOffset(v) => off = *v as i64,
                            _ => {}
                        }
                    }
                    ifaces.push((u32::from(idb.linktype), units, off, idb.snaplen));
                }
                Block::EnhancedPacket(p) => {
                    let g = base + p.interface_id as usize;
                    let (lt, units, off, _) = ifaces[g];
                    last_ts = ts(p.timestamp.as_nanos(), units, off);
                    out.push(Pkt {
                        ts_ns: last_ts,
                        interface: g as u32,
                        linktype: lt,
                        data: p.data.to_vec(),
                        orig_len: p.original_len,
                    });
                }
                Block::Packet(p) => {
                    let g = base + p.interface_id as usize;
                    let (lt, units, off, _) = ifaces[g];
                    last_ts = ts(u128::from(p.timestamp), units, off);
                    out.push(Pkt {
                        ts_ns: last_ts,
                        interface: g as u32,
                        linktype: lt,
                        data: p.data.to_vec(),
                        orig_len: p.original_len,
                    });
                }
                Block::SimplePacket(p) => {
                    let (lt, _, _, snap) = ifaces[base];
                    let snap = if snap == 0 { usize::MAX } else { snap as usize };
                    let n = p.data.len().min(p.original_len as usize).min(snap);
                    out.push(Pkt {
                        ts_ns: last_ts,
                        interface: base as u32,
                        linktype: lt,
                        data: p.data[..n].to_vec(),
                        orig_len: p.original_len,
                    });
                }
                _ => {}
            }
        }
    } else {
        let mut r = pcap_file::pcap::PcapReader::new(&bytes[..]).map_err(|e| e.to_string())?;
        let header = r.header();
        let lt = u32::from(header.datalink);
        while let Some(p) = r.next_raw_packet() {
            let p = p.map_err(|e| e.to_string())?;
            let frac = i64::from(p.ts_frac) * if header.ts_resolution == TsResolution::MicroSecond { 1000 } else { 1 };
            out.push(Pkt {
                ts_ns: i64::from(p.ts_sec) * 1_000_000_000 + frac,
                interface: 0,
                linktype: lt,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
            });
        }
    }
    Ok(out)
}

#[test]
fn corpus_packets_match_pcap_file_reader() {
    let corpus = corpus_dir();
    let files = corpus_files(&corpus);
    let mut problems = Vec::new();
    let mut compared = 0;
    for path in &files {
        let rel = path.strip_prefix(&corpus).unwrap().display().to_string();
        let Ok(theirs) = read_with_pcap_file(path) else {
            eprintln!("{rel}: pcap-file cannot read it, not compared");
            continue;
        };
        let mut src = PcapFileSource::open(path).unwrap();
        let (ours, err) = drain(&mut src);
        compared += 1;
        if err.is_some() || ours.len() != theirs.len() {
            problems.push(format!("{rel}: {} packets vs {} ({err:?})", ours.len(), theirs.len()));
        } else if let Some(i) = (0..ours.len()).find(|&i| ours[i] != theirs[i]) {
            let strip = |p: &Pkt| (p.ts_ns, p.interface, p.linktype, p.data.len(), p.orig_len);
            problems.push(format!("{rel}: packet {i} differs: {:?} vs {:?}", strip(&ours[i]), strip(&theirs[i])));
        }
    }
    eprintln!("corpus: {compared} of {} files compared with pcap-file", files.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
