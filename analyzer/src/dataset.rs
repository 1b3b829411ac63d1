//! Reading flowtrail's own output back: the records of one kind under one
//! or more output directories, pruned by hive partition (`date=/hour=`)
//! before any file is opened, as typed records (the same structs the
//! writer wrote, rebuilt by `Columns::from_batch`).
//!
//! Analyst commands (`calls`, `top`, `diagnose`, `path`, `report`) read
//! through this; `nat::read` keeps its own lean projection because
//! correlation must stay fast on millions of flows.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::records::Record;

const HOUR_NS: i64 = 3_600_000_000_000;

/// A half-open time range `[since, until)` in Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub since: i64,
    pub until: i64,
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange { since: i64::MIN, until: i64::MAX }
    }
}

impl TimeRange {
    #[must_use]
    pub fn contains(&self, ns: i64) -> bool {
        ns >= self.since && ns < self.until
    }
    /// Whether the hour partition starting at `hour_ns` can hold records
    /// in the range.
    #[must_use]
    pub fn overlaps_hour(&self, hour_ns: i64) -> bool {
        hour_ns < self.until && hour_ns.saturating_add(HOUR_NS) > self.since
    }
}

/// The Parquet files of `R`'s kind under `dirs` whose partition overlaps
/// `range`, oldest partition first.
#[must_use]
pub fn files<R: Record>(dirs: &[PathBuf], range: TimeRange) -> Vec<PathBuf> {
    crate::nat::read::partitions(dirs, R::KIND, None)
        .into_iter()
        .filter(|(hour, _)| range.overlaps_hour(*hour))
        .flat_map(|(_, f)| f)
        .collect()
}

/// Every record of kind `R` under `dirs` in partitions overlapping
/// `range`, in file order (records outside the range but in an
/// overlapping hour are kept: filter on the field that matters).
pub fn read<R: Record>(dirs: &[PathBuf], range: TimeRange) -> anyhow::Result<Vec<R>> {
    let mut out = Vec::new();
    for f in files::<R>(dirs, range) {
        read_file(&f, &mut out)?;
    }
    Ok(out)
}

/// Appends the records of one file.
pub fn read_file<R: Record>(path: &Path, out: &mut Vec<R>) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("read {}", path.display()))?
        .with_batch_size(8192)
        .build()?;
    for batch in reader {
        R::from_batch(&batch?, out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{CallRecord, FlowRecord};
    use crate::sink::ParquetSink;

    /// What the sink writes, `read` gives back, field for field.
    #[test]
    fn records_round_trip_through_parquet() {
        let dir = std::env::temp_dir().join(format!("ft-dataset-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let t0 = 1_795_000_000_000_000_000;
        let calls: Vec<CallRecord> = (0..3)
            .map(|i| CallRecord {
                flow_id: 7,
                call_id: 100 + i,
                call_index: i as i32,
                start_ns: t0 + i * HOUR_NS,
                end_ns: t0 + i * HOUR_NS + 5,
                request_ns: Some(t0),
                response_code: (i > 0).then_some(404),
                l7_protocol: "http".into(),
                request_resource: Some(format!("/r/{i}")),
                attributes: vec![("http.header.x-sdk".into(), "1.5".into())],
                ..CallRecord::default()
            })
            .collect();
        let flows = vec![FlowRecord { flow_id: 7, start_ns: t0, client_isn: Some(42), ..FlowRecord::default() }];
        let mut s = ParquetSink::<CallRecord>::new(&dir, "t");
        s.write(calls.clone()).unwrap();
        s.close().unwrap();
        let mut s = ParquetSink::<FlowRecord>::new(&dir, "t");
        s.write(flows.clone()).unwrap();
        s.close().unwrap();
        let mut back: Vec<CallRecord> = read(std::slice::from_ref(&dir), TimeRange::default()).unwrap();
        back.sort_by_key(|c| c.call_id);
        assert_eq!(back, calls);
        let back: Vec<FlowRecord> = read(std::slice::from_ref(&dir), TimeRange::default()).unwrap();
        assert_eq!(back, flows);
        // Pruning: only the second hour's partition.
        let range = TimeRange { since: t0 + HOUR_NS, until: t0 + HOUR_NS + 1 };
        let pruned: Vec<CallRecord> = read(std::slice::from_ref(&dir), range).unwrap();
        assert_eq!(pruned.len(), 1);
        assert_eq!(pruned[0].call_id, 101);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
