//! Hive-partitioned zstd Parquet: `DIR/<kind>/date=YYYY-MM-DD/hour=HH/part-*.parquet`.
//!
//! Guarantees:
//! - a file appears whole or not at all: it is written under a hidden
//!   temporary name in its partition and renamed when closed;
//! - rows inside a file are sorted by the record's sort key in chunks of
//!   `SORT_CHUNK` rows, so files are stable for a given input order;
//! - memory is bounded: a partition's writer is closed once records are an
//!   hour past it (a late record then opens a new file there), and each
//!   writer holds at most one row group (`ROW_GROUP_ROWS`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::records::{Record, SCHEMA_VERSION};

/// Record vectors go back to the shards once written, so the large
/// allocations of a batch are reused instead of freed on this thread and
/// made afresh (page faults on zeroed huge pages) on the other.
pub trait Recycle: Sized {
    fn recycle(batch: Vec<Self>);
}

/// About 128k rows per row group, as analysts' engines like them.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows buffered per partition before they are sorted and written.
const SORT_CHUNK: usize = 16 * 1024;
const HOUR_NS: i64 = 3_600_000_000_000;

#[derive(Debug, Clone, Default)]
pub struct SinkStats {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// A partition: its open file, and the batches of rows waiting for it, as
/// they came (records are hundreds of bytes: they are never moved again,
/// only referenced in sorted order when written).
struct Slot<R> {
    part: Option<Part>,
    batches: Vec<Vec<R>>,
    rows: usize,
}

impl<R> Default for Slot<R> {
    fn default() -> Self {
        Slot { part: None, batches: Vec::new(), rows: 0 }
    }
}

struct Part {
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
}

/// What a sink calls with each file it closed.
type OnClose = Box<dyn FnMut(&Path)>;

/// Writes one record kind.
pub struct ParquetSink<R: Record> {
    root: PathBuf,
    run_id: String,
    next_file: u32,
    /// Open writers and rows not yet written, by hour (ns of its start).
    parts: BTreeMap<i64, Slot<R>>,
    newest_hour: i64,
    pub stats: SinkStats,
    /// Told of every file once it is closed and renamed (object storage).
    on_close: Option<OnClose>,
}

/// `(date, hour)` of a Unix nanosecond time, in UTC.
#[must_use]
pub fn date_hour(ns: i64) -> (String, u32) {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let hour = (secs.rem_euclid(86_400) / 3600) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (format!("{y:04}-{m:02}-{d:02}"), hour)
}

impl<R: Record + Recycle> ParquetSink<R> {
    /// `out_dir` is the run's output directory; files go below `out_dir/<kind>/`.
    /// `run_id` keeps file names of separate runs apart.
    #[must_use]
    pub fn new(out_dir: &Path, run_id: &str) -> Self {
        ParquetSink {
            root: out_dir.join(R::KIND),
            run_id: run_id.to_string(),
            next_file: 0,
            parts: BTreeMap::new(),
            newest_hour: i64::MIN,
            stats: SinkStats::default(),
            on_close: None,
        }
    }

    /// Calls `f` with the path of every file this sink closes, after its
    /// rename: the file is whole (the uploader of `-o s3://…` takes it on).
    pub fn set_on_close(&mut self, f: impl FnMut(&Path) + 'static) {
        self.on_close = Some(Box::new(f));
    }

    pub fn write(&mut self, mut records: Vec<R>) -> anyhow::Result<()> {
        let hour_of = |r: &R| r.partition_ns().div_euclid(HOUR_NS) * HOUR_NS;
        while let Some(first) = records.first() {
            // Usually a whole batch is one hour: keep it as it is.
            let hour = hour_of(first);
            let batch = if records.iter().all(|r| hour_of(r) == hour) {
                std::mem::take(&mut records)
            } else {
                let (same, rest): (Vec<R>, Vec<R>) = records.into_iter().partition(|r| hour_of(r) == hour);
                records = rest;
                same
            };
            self.newest_hour = self.newest_hour.max(hour);
            let slot = self.parts.entry(hour).or_default();
            slot.rows += batch.len();
            slot.batches.push(batch);
            if slot.rows >= SORT_CHUNK {
                self.write_chunk(hour)?;
            }
        }
        // Partitions more than an hour behind the newest are done.
        let stale: Vec<i64> = self.parts.range(..self.newest_hour.saturating_sub(HOUR_NS)).map(|(h, _)| *h).collect();
        for h in stale {
            self.write_chunk(h)?;
            if let Some(Slot { part: Some(part), .. }) = self.parts.remove(&h) {
                self.close_part(part)?;
            }
        }
        Ok(())
    }

    fn write_chunk(&mut self, hour: i64) -> anyhow::Result<()> {
        let Some(slot) = self.parts.get_mut(&hour) else { return Ok(()) };
        if slot.rows == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut slot.batches);
        slot.rows = 0;
        let mut rows: Vec<&R> = batches.iter().flatten().collect();
        rows.sort_by_key(|r| r.sort_key());
        if slot.part.is_none() {
            let (date, h) = date_hour(hour);
            let dir = self.root.join(format!("date={date}")).join(format!("hour={h:02}"));
            std::fs::create_dir_all(&dir)?;
            let name = format!("part-{}-{:05}.parquet", self.run_id, self.next_file);
            self.next_file += 1;
            let tmp = dir.join(format!(".{name}.inprogress"));
            let file = File::create(&tmp)?;
            let writer = ArrowWriter::try_new(file, R::schema(), Some(writer_properties::<R>()))?;
            slot.part = Some(Part { tmp, path: dir.join(name), writer });
        }
        let part = slot.part.as_mut().expect("opened above");
        for chunk in rows.chunks(SORT_CHUNK) {
            part.writer.write(&R::to_batch(chunk))?;
        }
        self.stats.rows += rows.len() as u64;
        drop(rows);
        for mut b in batches {
            b.clear();
            R::recycle(b);
        }
        Ok(())
    }

    fn close_part(&mut self, part: Part) -> anyhow::Result<()> {
        part.writer.close()?;
        std::fs::rename(&part.tmp, &part.path)?;
        self.stats.files += 1;
        self.stats.bytes += std::fs::metadata(&part.path).map(|m| m.len()).unwrap_or(0);
        if let Some(f) = &mut self.on_close {
            f(&part.path);
        }
        Ok(())
    }

    /// Writes everything buffered and closes every file.
    pub fn close(mut self) -> anyhow::Result<SinkStats> {
        let hours: Vec<i64> = self.parts.keys().copied().collect();
        for h in hours {
            self.write_chunk(h)?;
            if let Some(Slot { part: Some(part), .. }) = self.parts.remove(&h) {
                self.close_part(part)?;
            }
        }
        Ok(self.stats)
    }
}

fn writer_properties<R: Record>() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("3 is a valid zstd level")))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("flowtrail {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![
            KeyValue::new("flowtrail.schema_version".to_string(), SCHEMA_VERSION.to_string()),
            KeyValue::new("flowtrail.record_kind".to_string(), R::KIND.to_string()),
        ]))
        .build()
}

#[cfg(test)]
mod tests {
    use super::date_hour;

    #[test]
    fn civil_dates() {
        assert_eq!(date_hour(0), ("1970-01-01".to_string(), 0));
        // 2024-02-29 13:05:00 UTC
        assert_eq!(date_hour(1_709_211_900 * 1_000_000_000), ("2024-02-29".to_string(), 13));
        assert_eq!(date_hour(-1), ("1969-12-31".to_string(), 23));
    }
}
