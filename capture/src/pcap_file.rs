//! Replay of pcap and pcapng capture files.
//!
//! [`PcapFileSource::open`] recognises the format from the first bytes of the
//! file and then lends one packet at a time through [`PacketSource`].
//!
//! # Formats
//!
//! * Legacy pcap: microsecond and nanosecond magic, either byte order, and
//!   the "modified" (Kuznetsov) variant pcap-parser knows. There is exactly
//!   one interface, `if0`, with the link type and snaplen of the file header.
//! * pcapng: any number of sections, in either byte order, each with its own
//!   Interface Description Blocks. Packets come from Enhanced Packet Blocks,
//!   Simple Packet Blocks (interface 0 of the section; they carry no time, so
//!   they get the previous packet's) and obsolete Packet Blocks. Interfaces
//!   are numbered across the whole file: the first interface of the second
//!   section follows the last one of the first. Every other block is skipped
//!   and counted in [`CaptureStats::skipped_blocks`]; so are packets on an
//!   interface the section never declared. Interface Statistics Blocks count
//!   too, and their `isb_ifdrop` feeds [`CaptureStats::dropped`] (the latest
//!   value per interface, so repeated statistics are not added twice).
//!
//! # Guarantees
//!
//! * Timestamps are exact integer nanoseconds since the epoch for every
//!   `if_tsresol` (power of 10 or of 2), plus `if_tsoffset`. Resolutions finer
//!   than a nanosecond round towards zero; a time beyond the `i64` range
//!   (about the year 2262) saturates.
//! * No heap allocation per packet: packets are lent straight from the read
//!   buffer. Only interface and error bookkeeping allocate.
//! * Bounded memory: the read buffer starts at 1 MiB and only grows when a
//!   single record needs more, up to [`MAX_RECORD_LEN`] plus a record header.
//!   At most [`MAX_INTERFACES`] interfaces are accepted, with names cut to
//!   [`MAX_IF_NAME_LEN`] bytes.
//! * Never panics and always terminates, whatever the bytes: every length is
//!   checked before it is used, and each read either adds bytes or reports
//!   the end of the file.
//! * Errors say where: a file that ends inside a record gives
//!   [`CaptureError::Truncated`], an impossible record header gives
//!   [`CaptureError::Corrupt`], both with the file offset of that record's
//!   first byte and the number of packets returned before it. Every packet
//!   before the error has been returned; after it the source only returns
//!   `Ok(None)`.
//!
//! # How pcap-parser is used
//!
//! pcap-parser's streaming readers ([`LegacyPcapReader`], [`PcapNGReader`])
//! own the file and the refillable buffer. This module frames each record
//! itself from the length in its header before parsing it, because pcap-parser
//! on its own cannot tell a truncated file from a corrupt length (both look
//! `Incomplete`), and a record longer than the buffer would never complete
//! (pcap-parser issue #29). Once the whole record is in the buffer,
//! pcap-parser's parsers decode file headers, legacy records, section headers,
//! interface descriptions, statistics and simple packets. Enhanced Packet
//! Blocks are decoded here because pcap-parser collects their options into a
//! `Vec` (a heap allocation per packet), and obsolete Packet Blocks because
//! pcap-parser does not know them.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use pcap_parser::nom::IResult;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{
    parse_interfacedescriptionblock_be, parse_interfacedescriptionblock_le, parse_interfacestatisticsblock_be,
    parse_interfacestatisticsblock_le, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified,
    parse_pcap_header, parse_sectionheaderblock, parse_simplepacketblock_be, parse_simplepacketblock_le,
    LegacyPcapBlock, LegacyPcapReader, OptionCode, PcapError, PcapNGOption, PcapNGReader, BOM_MAGIC, EPB_MAGIC,
    IDB_MAGIC, ISB_MAGIC, SHB_MAGIC, SPB_MAGIC,
};

use crate::{CaptureError, CaptureStats, Direction, InterfaceInfo, PacketSource, RawPacket};

/// Largest captured length (legacy pcap) or pcapng block length accepted.
/// Anything longer is taken as a corrupt header rather than a reason to
/// allocate gigabytes.
pub const MAX_RECORD_LEN: usize = 256 << 20;
/// Most interfaces one file may declare (bounds memory on hostile input).
pub const MAX_INTERFACES: usize = 1 << 16;
/// `if_name` options are cut to this many bytes.
pub const MAX_IF_NAME_LEN: usize = 256;

/// The read buffer starts here; pcap-parser's buffer must hold a whole
/// record, and most records are far smaller.
const INITIAL_BUFFER: usize = 1 << 20;
/// Record header of the modified legacy format, the largest one.
const LEGACY_MODIFIED_HDR: usize = 24;
const LEGACY_HDR: usize = 16;
const LEGACY_FILE_HDR: usize = 24;
/// A record never needs more than this in the buffer.
const MAX_BUFFER: usize = MAX_RECORD_LEN + LEGACY_MODIFIED_HDR;

/// Legacy pcap magics as read little-endian from the first four bytes.
const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAP_MAGIC_MODIFIED: u32 = 0xa1b2_cd34;

/// Obsolete pcapng Packet Block, unknown to pcap-parser.
const PB_MAGIC: u32 = 0x0000_0002;

/// Smallest valid total length of each block type we decode.
const SHB_MIN_LEN: usize = 28;
const IDB_MIN_LEN: usize = 20;
const EPB_MIN_LEN: usize = 32;
const PB_MIN_LEN: usize = 32;
const SPB_MIN_LEN: usize = 16;
const ISB_MIN_LEN: usize = 24;
/// Block type, block length and trailing block length.
const NG_MIN_LEN: usize = 12;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A pcap or pcapng file read as a [`PacketSource`].
pub struct PcapFileSource {
    path: PathBuf,
    input: Input,
    state: State,
    /// Bytes of the record last handed out, consumed at the next call: the
    /// packet borrows them from the buffer until then.
    pending: usize,
    finished: bool,
}

impl fmt::Debug for PcapFileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapFileSource")
            .field("path", &self.path)
            .field("format", &self.state.format)
            .field("offset", &self.input.offset)
            .field("interfaces", &self.state.interfaces)
            .field("stats", &self.state.stats)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl PcapFileSource {
    /// Opens `path` and reads its file header (legacy pcap) or its first
    /// block header (pcapng).
    ///
    /// Errors: [`CaptureError::Io`] when the file cannot be opened or read,
    /// [`CaptureError::UnknownFormat`] when it is empty or starts with
    /// neither magic, [`CaptureError::Truncated`] or
    /// [`CaptureError::Corrupt`] when the magic is right but the header is
    /// cut short or impossible.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let io_err = |source| CaptureError::Io { path: path.to_path_buf(), source };
        let unknown = || CaptureError::UnknownFormat { path: path.to_path_buf() };
        let at_start = |detail: String, truncated: bool| {
            let (path, offset, packets) = (path.to_path_buf(), 0, 0);
            if truncated {
                CaptureError::Truncated { path, offset, packets, detail }
            } else {
                CaptureError::Corrupt { path, offset, packets, detail }
            }
        };

        let mut file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        // Pipes and other special files have no useful size.
        let file_size = meta.is_file().then_some(meta.len());

        // Peek at the first bytes without seeking, so that pipes work too:
        // the feed replays them to the reader in front of the rest.
        let mut prefix = [0u8; 12];
        let prefix_len = read_full(&mut file, &mut prefix).map_err(io_err)?;
        let head = &prefix[..prefix_len];
        let magic = match head {
            [a, b, c, d, ..] => u32::from_le_bytes([*a, *b, *c, *d]),
            _ => return Err(unknown()),
        };
        let error_slot = Arc::new(Mutex::new(None));
        let feed =
            FileFeed { prefix, prefix_len, prefix_pos: 0, file, deferred: None, error_slot: Arc::clone(&error_slot) };
        let init_error = |e: PcapError<&[u8]>, what: &str| match e {
            PcapError::ReadError => io_err(take_io_error(&error_slot)),
            PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
                at_start(format!("file ends inside the {what}"), true)
            }
            other => at_start(format!("invalid {what}: {other}"), false),
        };

        let (input, format, interfaces) = if magic == SHB_MAGIC {
            // The block length is in the byte order the byte-order magic
            // announces; without one this is not pcapng at all (0a 0d 0d 0a
            // is also "\n\r\r\n" at the start of a text file).
            if head.len() < 12 {
                return Err(at_start("file ends inside the section header block".into(), true));
            }
            let big_endian = section_byte_order(head).ok_or_else(unknown)?;
            let len = u32_at(head, 4, big_endian) as usize;
            check_block_len(SHB_MAGIC, len).map_err(|detail| at_start(detail, false))?;
            // pcap-parser parses the whole first block when it opens, so the
            // buffer must hold it; a length beyond the file is a truncation,
            // not a reason to allocate.
            if let Some(size) = file_size.filter(|&size| len as u64 > size) {
                let detail = format!("section header block needs {len} bytes, the file has {size}");
                return Err(at_start(detail, true));
            }
            let capacity = INITIAL_BUFFER.max(len);
            let reader = PcapNGReader::new(capacity, feed).map_err(|e| init_error(e, "section header block"))?;
            // The section header stays in the buffer: `next_ng` handles it
            // like the headers of later sections.
            let input = Input { reader: Box::new(reader), capacity, offset: 0, error_slot };
            (input, Format::Ng(Ng { big_endian, section_base: 0 }), Vec::new())
        } else if [PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_MODIFIED].contains(&magic)
            || [PCAP_MAGIC_US, PCAP_MAGIC_NS].contains(&magic.swap_bytes())
        {
            let reader = LegacyPcapReader::new(INITIAL_BUFFER, feed).map_err(|e| init_error(e, "pcap file header"))?;
            let mut input = Input { reader: Box::new(reader), capacity: INITIAL_BUFFER, offset: 0, error_slot };
            let (_, header) = parse_pcap_header(input.reader.data())
                .map_err(|e| at_start(format!("invalid pcap file header: {e}"), false))?;
            input.consume(LEGACY_FILE_HDR);
            let big_endian = header.is_bigendian();
            let (record_hdr, parse): (usize, LegacyParseFn) = if header.is_modified_format() {
                (LEGACY_MODIFIED_HDR, parse_pcap_frame_modified)
            } else if big_endian {
                (LEGACY_HDR, parse_pcap_frame_be)
            } else {
                (LEGACY_HDR, parse_pcap_frame)
            };
            let nanos = header.is_nanosecond_precision();
            let legacy = Legacy { big_endian, nanos, record_hdr, parse };
            // libpcap's LT_LINKTYPE: the upper bits may carry FCS flags.
            let linktype = (header.network.0 as u32) & 0xffff;
            let if0 =
                InterfaceInfo { name: "if0".to_owned(), linktype, snaplen: header.snaplen, ifindex: None, netns: None };
            (input, Format::Legacy(legacy), vec![if0])
        } else {
            return Err(unknown());
        };

        Ok(PcapFileSource {
            path: path.to_path_buf(),
            input,
            state: State {
                format,
                iface_state: vec![IfaceState::default(); interfaces.len()],
                interfaces,
                stats: CaptureStats::default(),
                last_ts_ns: 0,
                file_size,
            },
            pending: 0,
            finished: false,
        })
    }

    /// The file this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is pcapng (else legacy pcap).
    pub fn is_pcapng(&self) -> bool {
        matches!(self.state.format, Format::Ng(_))
    }

    /// Finds the next packet, leaving its record in the buffer. Everything
    /// that mutates happens here, so that `next_packet` only has to borrow.
    fn advance(&mut self) -> Result<Option<PacketMeta>, CaptureError> {
        self.input.consume(std::mem::take(&mut self.pending));
        match self.state.format {
            Format::Legacy(lg) => self.next_legacy(lg),
            Format::Ng(_) => self.next_ng(),
        }
    }

    fn next_legacy(&mut self, lg: Legacy) -> Result<Option<PacketMeta>, CaptureError> {
        let hdr = lg.record_hdr;
        if !self.fill(hdr)? {
            return match self.input.available() {
                0 => Ok(None),
                left => Err(self.truncated(format!("packet record header needs {hdr} bytes, {left} left"))),
            };
        }
        // Same byte order as the parser `open` chose (the modified format
        // is little-endian only).
        let caplen = u32_at(self.input.reader.data(), 8, lg.big_endian) as usize;
        if caplen > MAX_RECORD_LEN {
            return Err(self.corrupt(format!("packet record captured length {caplen} exceeds {MAX_RECORD_LEN}")));
        }
        let total = hdr + caplen;
        if !self.fill(total)? {
            let left = self.input.available();
            return Err(self.truncated(format!("packet record needs {total} bytes, {left} left")));
        }
        let record = &self.input.reader.data()[..total];
        let frame = match (lg.parse)(record) {
            Ok((_, frame)) => frame,
            Err(e) => return Err(self.corrupt(format!("invalid packet record: {e}"))),
        };
        let frac_ns = if lg.nanos { i64::from(frame.ts_usec) } else { i64::from(frame.ts_usec) * 1000 };
        // u32 seconds times 1e9 plus a u32 fraction times 1000 fits in i64.
        let ts_ns = i64::from(frame.ts_sec) * 1_000_000_000 + frac_ns;
        let orig_len = frame.origlen;
        let iface = &self.state.interfaces[0];
        let meta = PacketMeta {
            ts_ns,
            interface: 0,
            linktype: iface.linktype,
            start: hdr,
            len: caplen,
            orig_len,
            direction: None,
        };
        self.pending = total;
        Ok(Some(self.state.count_packet(meta)))
    }

    fn next_ng(&mut self) -> Result<Option<PacketMeta>, CaptureError> {
        loop {
            self.input.consume(std::mem::take(&mut self.pending));
            let Format::Ng(ng) = self.state.format else {
                return Ok(None);
            };
            if !self.fill(8)? {
                return match self.input.available() {
                    0 => Ok(None),
                    left => Err(self.truncated(format!("block header needs 8 bytes, {left} left"))),
                };
            }
            let mut big_endian = ng.big_endian;
            // The section header magic reads the same in both byte orders;
            // its byte-order magic decides how the rest is read.
            let block_type = u32_at(self.input.reader.data(), 0, big_endian);
            if block_type == SHB_MAGIC {
                if !self.fill(12)? {
                    let left = self.input.available();
                    return Err(self.truncated(format!("section header block needs 12 bytes, {left} left")));
                }
                big_endian = match section_byte_order(self.input.reader.data()) {
                    Some(be) => be,
                    None => return Err(self.corrupt("invalid section byte-order magic".into())),
                };
            }
            let len = u32_at(self.input.reader.data(), 4, big_endian) as usize;
            if let Err(detail) = check_block_len(block_type, len) {
                return Err(self.corrupt(detail));
            }
            if !self.fill(len)? {
                let left = self.input.available();
                return Err(self.truncated(format!("block of type {block_type:#x} needs {len} bytes, {left} left")));
            }
            let block = &self.input.reader.data()[..len];
            let trailer = u32_at(block, len - 4, big_endian) as usize;
            if trailer != len {
                return Err(self.corrupt(format!(
                    "block of type {block_type:#x}: leading length {len} != trailing length {trailer}"
                )));
            }
            self.pending = len;
            let outcome = match block_type {
                SHB_MAGIC => self.state.section_header(block, big_endian).map(|()| None),
                IDB_MAGIC => self.state.interface_description(block, big_endian).map(|()| None),
                EPB_MAGIC => self.state.enhanced_packet(block, big_endian),
                SPB_MAGIC => self.state.simple_packet(block, big_endian),
                PB_MAGIC => self.state.obsolete_packet(block, big_endian),
                ISB_MAGIC => self.state.interface_statistics(block, big_endian).map(|()| None),
                _ => {
                    self.state.stats.skipped_blocks += 1;
                    Ok(None)
                }
            };
            match outcome {
                Ok(Some(meta)) => return Ok(Some(meta)),
                Ok(None) => {}
                Err(detail) => return Err(self.corrupt(detail)),
            }
        }
    }

    /// Makes `n` bytes available (n <= MAX_BUFFER); false at end of file.
    fn fill(&mut self, n: usize) -> Result<bool, CaptureError> {
        self.input.fill(n).map_err(|source| CaptureError::Io { path: self.path.clone(), source })
    }

    fn truncated(&self, detail: String) -> CaptureError {
        CaptureError::Truncated {
            path: self.path.clone(),
            offset: self.input.offset,
            packets: self.state.stats.packets,
            detail,
        }
    }

    fn corrupt(&self, detail: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset: self.input.offset,
            packets: self.state.stats.packets,
            detail,
        }
    }
}

impl PacketSource for PcapFileSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        match self.advance() {
            Ok(Some(meta)) => {
                let data = &self.input.reader.data()[meta.start..meta.start + meta.len];
                Ok(Some(RawPacket {
                    ts_ns: meta.ts_ns,
                    interface: meta.interface,
                    linktype: meta.linktype,
                    data,
                    orig_len: meta.orig_len,
                    direction: meta.direction,
                }))
            }
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(e) => {
                self.finished = true;
                self.pending = 0;
                Err(e)
            }
        }
    }

    fn interfaces(&self) -> &[InterfaceInfo] {
        &self.state.interfaces
    }

    fn stats(&self) -> CaptureStats {
        self.state.stats
    }

    /// The last `isb_ifdrop` an interface statistics block gave for it.
    fn interface_dropped(&self, interface: u32) -> Option<u64> {
        self.state.iface_state.get(interface as usize).and_then(|s| s.dropped)
    }

    fn progress(&self) -> (u64, Option<u64>) {
        (self.input.offset + self.pending as u64, self.state.file_size)
    }
}

/// Where the next packet lies in the buffer, and what is known about it.
#[derive(Debug, Clone, Copy)]
struct PacketMeta {
    ts_ns: i64,
    interface: u32,
    linktype: u32,
    /// Offset of the packet bytes from the start of the record.
    start: usize,
    len: usize,
    orig_len: u32,
    /// From the EPB's `epb_flags`, when present.
    direction: Option<Direction>,
}

type LegacyParseFn = fn(&[u8]) -> IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;

#[derive(Clone, Copy)]
struct Legacy {
    big_endian: bool,
    /// Nanosecond magic: the fraction is in ns, else µs.
    nanos: bool,
    record_hdr: usize,
    parse: LegacyParseFn,
}

impl fmt::Debug for Legacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Legacy")
            .field("big_endian", &self.big_endian)
            .field("nanos", &self.nanos)
            .field("record_hdr", &self.record_hdr)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
struct Ng {
    /// Byte order of the current section.
    big_endian: bool,
    /// Global index of the current section's interface 0.
    section_base: usize,
}

#[derive(Debug)]
enum Format {
    Legacy(Legacy),
    Ng(Ng),
}

/// Per-interface decoding state (the public part is in `InterfaceInfo`).
#[derive(Debug, Clone, Copy)]
struct IfaceState {
    /// Timestamp units per second (`if_tsresol`), up to 2^127.
    units_per_sec: u128,
    /// `if_tsoffset`, seconds added to every timestamp.
    offset_s: i64,
    /// Last `isb_ifdrop` seen for this interface.
    dropped: Option<u64>,
}

impl Default for IfaceState {
    fn default() -> Self {
        IfaceState { units_per_sec: 1_000_000, offset_s: 0, dropped: None }
    }
}

impl IfaceState {
    fn ts_ns(&self, raw: u64) -> i64 {
        let frac_ns = match self.units_per_sec {
            // The common cases, without a 128-bit division.
            1_000_000 => i128::from(raw) * 1000,
            1_000_000_000 => i128::from(raw),
            // raw < 2^64 and 1e9 < 2^30, so the product fits in u128; the
            // quotient is at most raw * 1e9 and fits in i128.
            units => (u128::from(raw) * NANOS_PER_SEC as u128 / units) as i128,
        };
        let ns = frac_ns + i128::from(self.offset_s) * NANOS_PER_SEC;
        i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
    }
}

/// Everything about the file except the buffer, so that block handlers can
/// borrow the buffer and the state at the same time.
struct State {
    format: Format,
    interfaces: Vec<InterfaceInfo>,
    iface_state: Vec<IfaceState>,
    stats: CaptureStats,
    /// Timestamp of the last packet, for Simple Packet Blocks.
    last_ts_ns: i64,
    file_size: Option<u64>,
}

/// Handlers return `Err(detail)` for a corrupt block; the caller adds where.
type BlockResult<T> = Result<T, String>;

impl State {
    fn count_packet(&mut self, meta: PacketMeta) -> PacketMeta {
        self.stats.packets += 1;
        self.stats.bytes += meta.len as u64;
        if (meta.len as u64) < u64::from(meta.orig_len) {
            self.stats.snapped += 1;
        }
        self.last_ts_ns = meta.ts_ns;
        meta
    }

    fn ng_mut(&mut self) -> Option<&mut Ng> {
        match &mut self.format {
            Format::Ng(ng) => Some(ng),
            Format::Legacy(_) => None,
        }
    }

    fn section_base(&self) -> usize {
        match &self.format {
            Format::Ng(ng) => ng.section_base,
            Format::Legacy(_) => 0,
        }
    }

    /// Global index of interface `if_id` of the current section, if declared.
    fn global_interface(&self, if_id: u32) -> Option<usize> {
        let idx = self.section_base().checked_add(usize::try_from(if_id).ok()?)?;
        (idx < self.interfaces.len()).then_some(idx)
    }

    fn section_header(&mut self, block: &[u8], big_endian: bool) -> BlockResult<()> {
        let (_, shb) = parse_sectionheaderblock(block).map_err(|e| format!("invalid section header block: {e}"))?;
        // Readers must not guess at a major version they do not know.
        if shb.major_version != 1 {
            return Err(format!("unsupported pcapng version {}.{}", shb.major_version, shb.minor_version));
        }
        let base = self.interfaces.len();
        if let Some(ng) = self.ng_mut() {
            ng.big_endian = big_endian;
            ng.section_base = base;
        }
        Ok(())
    }

    fn interface_description(&mut self, block: &[u8], big_endian: bool) -> BlockResult<()> {
        let parsed = if big_endian {
            parse_interfacedescriptionblock_be(block)
        } else {
            parse_interfacedescriptionblock_le(block)
        };
        let (_, idb) = parsed.map_err(|e| format!("invalid interface description block: {e}"))?;
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(format!("more than {MAX_INTERFACES} interfaces"));
        }
        let index = self.interfaces.len();
        let mut name = None;
        let mut st = IfaceState::default();
        // pcap-parser reads if_tsoffset little-endian whatever the section's
        // byte order, so the options are read here.
        for opt in options_until_end(&idb.options) {
            let Ok(value) = opt.as_bytes() else { continue };
            if opt.code == OptionCode::IfName {
                name = Some(if_name(value));
            } else if opt.code == OptionCode::IfTsresol {
                if let Some(&resol) = value.first() {
                    st.units_per_sec = units_per_sec(resol)
                        .ok_or_else(|| format!("interface {index}: if_tsresol {resol:#x} out of range"))?;
                }
            } else if opt.code == OptionCode::IfTsoffset && value.len() == 8 {
                st.offset_s = u64_from(value, big_endian) as i64;
            }
        }
        self.interfaces.push(InterfaceInfo {
            name: name.unwrap_or_else(|| format!("if{index}")),
            linktype: u32::from(idb.linktype.0 as u16),
            snaplen: idb.snaplen,
            // pcapng has no ifindex option: the if_name is what it says.
            ifindex: None,
            netns: None,
        });
        self.iface_state.push(st);
        Ok(())
    }

    fn interface_statistics(&mut self, block: &[u8], big_endian: bool) -> BlockResult<()> {
        self.stats.skipped_blocks += 1;
        let parsed = if big_endian {
            parse_interfacestatisticsblock_be(block)
        } else {
            parse_interfacestatisticsblock_le(block)
        };
        let (_, isb) = parsed.map_err(|e| format!("invalid interface statistics block: {e}"))?;
        let Some(idx) = self.global_interface(isb.if_id) else {
            return Ok(());
        };
        // pcap-parser reads isb_ifdrop little-endian whatever the byte order.
        let drop = options_until_end(&isb.options)
            .filter(|o| o.code == OptionCode::IsbIfDrop)
            .filter_map(|o| o.as_bytes().ok().filter(|v| v.len() == 8))
            .map(|v| u64_from(v, big_endian))
            .last();
        if let Some(drop) = drop {
            // Statistics blocks repeat running totals: replace, never add.
            let st = &mut self.iface_state[idx];
            let old = st.dropped.replace(drop).unwrap_or(0);
            self.stats.dropped = self.stats.dropped.saturating_sub(old).saturating_add(drop);
        }
        Ok(())
    }

    /// Enhanced Packet Block, decoded by hand to avoid pcap-parser's
    /// per-packet `Vec` of options.
    fn enhanced_packet(&mut self, block: &[u8], big_endian: bool) -> BlockResult<Option<PacketMeta>> {
        self.timed_packet(block, big_endian, false)
    }

    /// Obsolete Packet Block: like an EPB with a 16-bit interface id
    /// followed by a 16-bit drop count.
    fn obsolete_packet(&mut self, block: &[u8], big_endian: bool) -> BlockResult<Option<PacketMeta>> {
        self.timed_packet(block, big_endian, true)
    }

    /// EPB and PB share their layout from offset 12 on. `block` is whole and
    /// at least 32 bytes long (checked by `check_block_len`).
    fn timed_packet(&mut self, block: &[u8], big_endian: bool, obsolete: bool) -> BlockResult<Option<PacketMeta>> {
        let if_id = if obsolete { u32::from(u16_at(block, 8, big_endian)) } else { u32_at(block, 8, big_endian) };
        let ts_raw = (u64::from(u32_at(block, 12, big_endian)) << 32) | u64::from(u32_at(block, 16, big_endian));
        let caplen = u32_at(block, 20, big_endian) as usize;
        let orig_len = u32_at(block, 24, big_endian);
        // Packet data sits between the 28-byte header and the 4-byte trailer.
        if caplen > block.len() - 32 {
            return Err(format!("packet block captured length {caplen} exceeds its block length {}", block.len()));
        }
        let Some(idx) = self.global_interface(if_id) else {
            self.stats.skipped_blocks += 1;
            return Ok(None);
        };
        let meta = PacketMeta {
            ts_ns: self.iface_state[idx].ts_ns(ts_raw),
            interface: idx as u32,
            linktype: self.interfaces[idx].linktype,
            start: 28,
            len: caplen,
            orig_len,
            direction: if obsolete { None } else { epb_direction(block, caplen, big_endian) },
        };
        Ok(Some(self.count_packet(meta)))
    }

    /// Simple Packet Block: interface 0 of the section, no timestamp.
    fn simple_packet(&mut self, block: &[u8], big_endian: bool) -> BlockResult<Option<PacketMeta>> {
        let parsed = if big_endian { parse_simplepacketblock_be(block) } else { parse_simplepacketblock_le(block) };
        let (_, spb) = parsed.map_err(|e| format!("invalid simple packet block: {e}"))?;
        let Some(idx) = self.global_interface(0) else {
            self.stats.skipped_blocks += 1;
            return Ok(None);
        };
        // The block holds min(original length, snaplen) bytes plus padding.
        let snaplen = match self.interfaces[idx].snaplen {
            0 => usize::MAX,
            s => s as usize,
        };
        let len = spb.data.len().min(spb.origlen as usize).min(snaplen);
        let meta = PacketMeta {
            ts_ns: self.last_ts_ns,
            interface: idx as u32,
            linktype: self.interfaces[idx].linktype,
            start: 12,
            len,
            orig_len: spb.origlen,
            direction: None,
        };
        Ok(Some(self.count_packet(meta)))
    }
}

/// `epb_flags` (option 2, 32 bits) of an Enhanced Packet Block: bits 0-1
/// are the direction (1 inbound, 2 outbound, 0 not known). `block` is
/// whole; the options follow the packet data padded to 32 bits. Most
/// files have no options: then this reads nothing.
fn epb_direction(block: &[u8], caplen: usize, big_endian: bool) -> Option<Direction> {
    let mut at = 28 + caplen.div_ceil(4) * 4;
    let end = block.len().checked_sub(4)?;
    while at + 4 <= end {
        let (code, len) = (u16_at(block, at, big_endian), usize::from(u16_at(block, at + 2, big_endian)));
        if code == 0 {
            return None;
        }
        if code == 2 && len == 4 && at + 8 <= end {
            return match u32_at(block, at + 4, big_endian) & 3 {
                1 => Some(Direction::Ingress),
                2 => Some(Direction::Egress),
                _ => None,
            };
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// Options up to `opt_endofopt`; pcap-parser keeps parsing past it.
fn options_until_end<'a, 'b>(options: &'b [PcapNGOption<'a>]) -> impl Iterator<Item = &'b PcapNGOption<'a>> {
    options.iter().take_while(|o| o.code != OptionCode::EndOfOpt)
}

fn if_name(value: &[u8]) -> String {
    // Some writers include the C string terminator.
    let value = value.split(|&b| b == 0).next().unwrap_or_default();
    let mut name = String::from_utf8_lossy(value).into_owned();
    if name.len() > MAX_IF_NAME_LEN {
        let mut cut = MAX_IF_NAME_LEN;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    name
}

/// Units per second for an `if_tsresol` byte: 10^n, or 2^n with the top bit.
fn units_per_sec(resol: u8) -> Option<u128> {
    let exp = u32::from(resol & 0x7f);
    if resol & 0x80 == 0 {
        10u128.checked_pow(exp)
    } else {
        1u128.checked_shl(exp)
    }
}

/// Byte order announced by a section header's byte-order magic (bytes 8..12),
/// `Some(true)` for big-endian.
fn section_byte_order(block: &[u8]) -> Option<bool> {
    match u32_at(block, 8, false) {
        BOM_MAGIC => Some(false),
        m if m == BOM_MAGIC.swap_bytes() => Some(true),
        _ => None,
    }
}

/// Checks a pcapng block length before anything is read for it.
fn check_block_len(block_type: u32, len: usize) -> Result<(), String> {
    let min = match block_type {
        SHB_MAGIC => SHB_MIN_LEN,
        IDB_MAGIC => IDB_MIN_LEN,
        EPB_MAGIC => EPB_MIN_LEN,
        PB_MAGIC => PB_MIN_LEN,
        SPB_MAGIC => SPB_MIN_LEN,
        ISB_MAGIC => ISB_MIN_LEN,
        _ => NG_MIN_LEN,
    };
    if len < min {
        Err(format!("block of type {block_type:#x} has length {len}, below its minimum {min}"))
    } else if !len.is_multiple_of(4) {
        Err(format!("block of type {block_type:#x} has length {len}, not a multiple of 4"))
    } else if len > MAX_RECORD_LEN {
        Err(format!("block of type {block_type:#x} has length {len}, beyond {MAX_RECORD_LEN}"))
    } else {
        Ok(())
    }
}

// Fixed-width reads at offsets the callers have bounds-checked.

fn u16_at(b: &[u8], at: usize, big_endian: bool) -> u16 {
    let v = [b[at], b[at + 1]];
    if big_endian {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

/// `b` is exactly 8 bytes.
fn u64_from(b: &[u8], big_endian: bool) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(b);
    if big_endian {
        u64::from_be_bytes(v)
    } else {
        u64::from_le_bytes(v)
    }
}

/// pcap-parser's reader plus where its buffer starts in the file.
struct Input {
    reader: Box<dyn PcapReaderIterator + Send>,
    /// Size of the reader's buffer (the trait does not expose it).
    capacity: usize,
    /// File offset of the first byte of `reader.data()`.
    offset: u64,
    /// The I/O error behind a pcap-parser `ReadError`.
    error_slot: Arc<Mutex<Option<io::Error>>>,
}

impl Input {
    fn available(&self) -> usize {
        self.reader.data().len()
    }

    fn consume(&mut self, n: usize) {
        if n > 0 {
            // No shift here: `circular` would move half the buffer every
            // time half of it is consumed; `refill` shifts only the tail.
            self.reader.consume_noshift(n);
            self.offset += n as u64;
        }
    }

    /// Reads until `n` bytes are buffered (false if the file ends first).
    ///
    /// The buffer only grows (doubling, up to `MAX_BUFFER`) when it is full
    /// of file data, so a bogus length in a short file costs no memory
    /// beyond the file's own bytes.
    ///
    /// Terminates: `refill` shifts the data to the front, so unless the
    /// buffer is full it has room and each round either adds bytes or marks
    /// the reader exhausted; a full buffer grows, which can happen only a
    /// bounded number of times before it holds `n <= MAX_BUFFER` bytes.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        // Callers validate lengths first; a larger request would be a bug,
        // reported as the end of the file rather than a huge allocation.
        debug_assert!(n <= MAX_BUFFER);
        if n > MAX_BUFFER {
            return Ok(false);
        }
        while self.reader.data().len() < n {
            if self.reader.reader_exhausted() {
                return Ok(false);
            }
            if self.reader.data().len() >= self.capacity {
                let grown = self.capacity.saturating_mul(2).min(MAX_BUFFER);
                self.reader.grow(grown);
                self.capacity = grown;
            }
            if self.reader.refill().is_err() {
                return Err(take_io_error(&self.error_slot));
            }
        }
        Ok(true)
    }
}

/// The I/O error parked by `FileFeed` (pcap-parser only says `ReadError`).
fn take_io_error(slot: &Mutex<Option<io::Error>>) -> io::Error {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or_else(|| io::Error::other("read error"))
}

/// The file as pcap-parser reads it: the peeked prefix first, then the rest.
///
/// Each `read` fills the whole buffer unless the file ends, because
/// pcap-parser takes a short read at open for a short file and a zero read
/// as the end. An error after some bytes is deferred to the next call so no
/// data is lost, and parked in `error_slot` since pcap-parser replaces it
/// with a bare `ReadError`.
struct FileFeed {
    prefix: [u8; 12],
    prefix_len: usize,
    prefix_pos: usize,
    file: File,
    deferred: Option<io::Error>,
    error_slot: Arc<Mutex<Option<io::Error>>>,
}

impl FileFeed {
    fn fail(&mut self, e: io::Error) -> io::Error {
        let kind = e.kind();
        *self.error_slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
        io::Error::from(kind)
    }
}

impl Read for FileFeed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.deferred.take() {
            return Err(self.fail(e));
        }
        let rest = &self.prefix[self.prefix_pos..self.prefix_len];
        let mut n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.prefix_pos += n;
        while n < buf.len() {
            match self.file.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if n > 0 => {
                    self.deferred = Some(e);
                    break;
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(n)
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions() {
        assert_eq!(units_per_sec(6), Some(1_000_000));
        assert_eq!(units_per_sec(0), Some(1));
        assert_eq!(units_per_sec(38), Some(10u128.pow(38)));
        assert_eq!(units_per_sec(39), None);
        assert_eq!(units_per_sec(0x80), Some(1));
        assert_eq!(units_per_sec(0x80 | 10), Some(1024));
        assert_eq!(units_per_sec(0xff), Some(1 << 127));
    }

    #[test]
    fn timestamps_are_exact_or_saturate() {
        let at = |units_per_sec, offset_s, raw| IfaceState { units_per_sec, offset_s, dropped: None }.ts_ns(raw);
        assert_eq!(at(1_000_000, 0, 1_700_000_000_123_456), 1_700_000_000_123_456_000);
        assert_eq!(at(1_000_000_000, -1, 5), -999_999_995);
        assert_eq!(at(100, 0, 1), 10_000_000);
        // 1/1048576 s = 953.67 ns, rounded towards zero.
        assert_eq!(at(1 << 20, 0, 1), 953);
        assert_eq!(at(1 << 127, 0, u64::MAX), 0);
        assert_eq!(at(1, 0, u64::MAX), i64::MAX);
        assert_eq!(at(1, i64::MIN, 0), i64::MIN);
        assert_eq!(at(1_000_000, i64::MAX, u64::MAX), i64::MAX);
    }

    #[test]
    fn block_lengths() {
        assert!(check_block_len(EPB_MAGIC, 32).is_ok());
        assert!(check_block_len(EPB_MAGIC, 28).is_err());
        assert!(check_block_len(0x1234, 12).is_ok());
        assert!(check_block_len(0x1234, 14).is_err());
        assert!(check_block_len(0x1234, 8).is_err());
        assert!(check_block_len(0x1234, MAX_RECORD_LEN).is_ok());
        assert!(check_block_len(0x1234, MAX_RECORD_LEN + 4).is_err());
    }

    #[test]
    fn epb_flags_give_the_direction() {
        // An EPB with 5 bytes of data (padded to 8), then `options`, then
        // the trailing length.
        let epb = |options: &[u8]| {
            let mut b = vec![0u8; 28];
            b[20..24].copy_from_slice(&5u32.to_le_bytes());
            b.extend_from_slice(&[1, 2, 3, 4, 5, 0, 0, 0]);
            b.extend_from_slice(options);
            b.extend_from_slice(&[0; 4]);
            b
        };
        let flags = |v: u32| [&[2u8, 0, 4, 0][..], &v.to_le_bytes()].concat();
        assert_eq!(epb_direction(&epb(&flags(1)), 5, false), Some(Direction::Ingress));
        assert_eq!(epb_direction(&epb(&flags(2 | 0x100)), 5, false), Some(Direction::Egress));
        assert_eq!(epb_direction(&epb(&flags(0)), 5, false), None);
        assert_eq!(epb_direction(&epb(&[]), 5, false), None);
        // After a comment (code 1, 3 bytes padded to 4), before end-of-options.
        let opts = [&[1u8, 0, 3, 0, b'h', b'i', b'!', 0][..], &flags(2), &[0, 0, 0, 0]].concat();
        assert_eq!(epb_direction(&epb(&opts), 5, false), Some(Direction::Egress));
        // End-of-options first: nothing after it counts.
        assert_eq!(epb_direction(&epb(&[&[0u8, 0, 0, 0][..], &flags(1)].concat()), 5, false), None);
        // Big-endian sections.
        let be = [&[0u8, 2, 0, 4][..], &1u32.to_be_bytes()].concat();
        assert_eq!(epb_direction(&epb(&be), 5, true), Some(Direction::Ingress));
    }

    #[test]
    fn interface_names() {
        assert_eq!(if_name(b"eth0\0\0"), "eth0");
        assert_eq!(if_name(b"\xffx"), "\u{fffd}x");
        assert_eq!(if_name("ü".repeat(200).as_bytes()).len(), MAX_IF_NAME_LEN);
    }
}
