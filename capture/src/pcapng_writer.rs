//! Keeps the raw packets of a live capture as rotating pcapng files, so any
//! capture can be replayed later (`flowtrail replay`, tshark, Zeek).
//!
//! One file series per writer (one writer per capture thread). Each file
//! is a section header, one interface description block per capture point
//! that has a packet in that file (named after the point, nanosecond
//! timestamps: `if_tsresol` = 9), and enhanced packet blocks. A file is
//! written under a hidden `.NAME.inprogress` name and renamed when it is
//! closed (rotation or the end of the capture), so a file that appears is
//! whole. Rotation happens when a file passes `max_bytes`.
//!
//! Hand-written (the format is four block types, RFC draft
//! draft-ietf-opsawg-pcapng): the `pcap-file` crate's writer allocates a
//! block per packet and wants owned interface lists up front, and nothing
//! else here needs it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_ENDOFOPT: u16 = 0;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

/// Rotating pcapng files of one capture thread.
pub struct PcapngWriter {
    dir: PathBuf,
    prefix: String,
    max_bytes: u64,
    seq: u32,
    file: Option<Open>,
    /// Files closed whole.
    pub files: u64,
    /// Bytes written to closed and open files.
    pub bytes: u64,
    pub packets: u64,
}

struct Open {
    out: BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    size: u64,
    /// Capture point id → interface id in this file.
    ifaces: Vec<Option<u32>>,
    next_iface: u32,
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

impl PcapngWriter {
    /// Files are `DIR/PREFIX-NNNNN.pcapng`.
    pub fn new(dir: &Path, prefix: &str, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(PcapngWriter {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            max_bytes: max_bytes.max(4096),
            seq: 0,
            file: None,
            files: 0,
            bytes: 0,
            packets: 0,
        })
    }

    fn open(&mut self) -> std::io::Result<&mut Open> {
        if self.file.is_none() {
            let name = format!("{}-{:05}.pcapng", self.prefix, self.seq);
            self.seq += 1;
            let tmp = self.dir.join(format!(".{name}.inprogress"));
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
            // Section header: byte-order magic, version 1.0, unknown length.
            let len: u32 = 28;
            out.write_all(&SHB.to_le_bytes())?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(&BYTE_ORDER_MAGIC.to_le_bytes())?;
            out.write_all(&1u16.to_le_bytes())?;
            out.write_all(&0u16.to_le_bytes())?;
            out.write_all(&(-1i64).to_le_bytes())?;
            out.write_all(&len.to_le_bytes())?;
            self.bytes += u64::from(len);
            self.file = Some(Open {
                out,
                tmp,
                path: self.dir.join(name),
                size: u64::from(len),
                ifaces: Vec::new(),
                next_iface: 0,
            });
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Appends one packet of capture point `point` (named `name`, link type
    /// `linktype`), rotating first when the file is full.
    pub fn write(
        &mut self,
        point: u32,
        name: &str,
        linktype: u32,
        ts_ns: i64,
        data: &[u8],
        orig_len: u32,
    ) -> std::io::Result<()> {
        if self.file.as_ref().is_some_and(|f| f.size >= self.max_bytes) {
            self.close_file()?;
        }
        let f = self.open()?;
        let mut added = 0u64;
        let slot = point as usize;
        if f.ifaces.len() <= slot {
            f.ifaces.resize(slot + 1, None);
        }
        let iface = match f.ifaces[slot] {
            Some(i) => i,
            None => {
                let id = f.next_iface;
                f.next_iface += 1;
                f.ifaces[slot] = Some(id);
                let name = &name.as_bytes()[..name.len().min(255)];
                let opts = 4 + name.len() + pad4(name.len()) + 4 + 4 + 4;
                let len = (16 + opts + 4) as u32;
                f.out.write_all(&IDB.to_le_bytes())?;
                f.out.write_all(&len.to_le_bytes())?;
                f.out.write_all(&(linktype as u16).to_le_bytes())?;
                f.out.write_all(&0u16.to_le_bytes())?;
                f.out.write_all(&0u32.to_le_bytes())?; // snaplen: unlimited
                f.out.write_all(&IF_NAME.to_le_bytes())?;
                f.out.write_all(&(name.len() as u16).to_le_bytes())?;
                f.out.write_all(name)?;
                f.out.write_all(&[0u8; 3][..pad4(name.len())])?;
                f.out.write_all(&IF_TSRESOL.to_le_bytes())?;
                f.out.write_all(&1u16.to_le_bytes())?;
                f.out.write_all(&[9u8, 0, 0, 0])?;
                f.out.write_all(&OPT_ENDOFOPT.to_le_bytes())?;
                f.out.write_all(&0u16.to_le_bytes())?;
                f.out.write_all(&len.to_le_bytes())?;
                f.size += u64::from(len);
                added += u64::from(len);
                id
            }
        };
        let ts = ts_ns.max(0) as u64;
        let cap = data.len();
        let len = (28 + cap + pad4(cap) + 4) as u32;
        f.out.write_all(&EPB.to_le_bytes())?;
        f.out.write_all(&len.to_le_bytes())?;
        f.out.write_all(&iface.to_le_bytes())?;
        f.out.write_all(&((ts >> 32) as u32).to_le_bytes())?;
        f.out.write_all(&(ts as u32).to_le_bytes())?;
        f.out.write_all(&(cap as u32).to_le_bytes())?;
        f.out.write_all(&orig_len.to_le_bytes())?;
        f.out.write_all(data)?;
        f.out.write_all(&[0u8; 3][..pad4(cap)])?;
        f.out.write_all(&len.to_le_bytes())?;
        f.size += u64::from(len);
        added += u64::from(len);
        self.bytes += added;
        self.packets += 1;
        Ok(())
    }

    fn close_file(&mut self) -> std::io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.out.flush()?;
            drop(f.out);
            std::fs::rename(&f.tmp, &f.path)?;
            self.files += 1;
        }
        Ok(())
    }

    /// Closes the open file whole (renamed to its final name).
    pub fn finish(mut self) -> std::io::Result<(u64, u64, u64)> {
        self.close_file()?;
        Ok((self.files, self.packets, self.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap_file::PcapFileSource;
    use crate::PacketSource;

    #[test]
    fn files_read_back_with_their_points_and_rotate_whole() {
        let dir = std::env::temp_dir().join(format!("ft-pcapng-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut w = PcapngWriter::new(&dir, "t0", 4096).unwrap();
        let frame: Vec<u8> = (0..61u8).collect();
        for i in 0..200i64 {
            let point = (i % 3) as u32;
            w.write(point, &format!("veth{point}"), 1, 1_795_000_000_123_456_789 + i, &frame, 1500).unwrap();
        }
        let (files, packets, _) = w.finish().unwrap();
        assert_eq!(packets, 200);
        assert!(files >= 3, "rotated: {files} files");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
        names.sort();
        assert_eq!(names.len() as u64, files, "no .inprogress left: {names:?}");
        let mut seen = 0i64;
        for n in &names {
            let mut src = PcapFileSource::open(n).unwrap();
            while let Some(p) = src.next_packet().unwrap() {
                assert_eq!(p.ts_ns, 1_795_000_000_123_456_789 + seen, "nanosecond timestamps");
                assert_eq!((p.data, p.orig_len, p.linktype), (&frame[..], 1500, 1));
                seen += 1;
            }
            let ifaces: Vec<String> = src.interfaces().iter().map(|i| i.name.clone()).collect();
            assert!(!ifaces.is_empty() && ifaces.iter().all(|n| n.starts_with("veth")), "{ifaces:?}");
        }
        assert_eq!(seen, 200);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
