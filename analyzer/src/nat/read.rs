//! Reading flow and call records back from hive-partitioned Parquet, one
//! hour partition at a time, into the observations correlation needs
//! (only the columns it reads are decoded).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::{CallObs, FlowObs, Ip, Linker, Name, NatConfig, NatStats};

/// Shares the strings that repeat across records (capture points,
/// protocol names) instead of allocating one per record.
#[derive(Default)]
pub struct Names(hashbrown::HashSet<Name>);

impl Names {
    pub fn get(&mut self, s: Option<&str>) -> Name {
        let s = s.unwrap_or_default();
        if let Some(n) = self.0.get(s) {
            return n.clone();
        }
        let n: Name = s.into();
        self.0.insert(n.clone());
        n
    }
}
use crate::records::NatPathRecord;
use crate::sink::ParquetSink;

const HOUR_NS: i64 = 3_600_000_000_000;

/// Parquet files of one record kind under several output directories, by
/// the start (ns) of their `date=/hour=` partition. With `run_id`, only
/// that run's files (`part-<run_id>-*.parquet`).
#[must_use]
pub fn partitions(dirs: &[PathBuf], kind: &str, run_id: Option<&str>) -> BTreeMap<i64, Vec<PathBuf>> {
    let mut out: BTreeMap<i64, Vec<PathBuf>> = BTreeMap::new();
    let prefix = run_id.map(|r| format!("part-{r}-"));
    for dir in dirs {
        let Ok(dates) = std::fs::read_dir(dir.join(kind)) else { continue };
        for date in dates.flatten() {
            let name = date.file_name().to_string_lossy().into_owned();
            let Some(day) = name.strip_prefix("date=").and_then(days_from_date) else { continue };
            let Ok(hours) = std::fs::read_dir(date.path()) else { continue };
            for hour in hours.flatten() {
                let hname = hour.file_name().to_string_lossy().into_owned();
                let Some(h) = hname.strip_prefix("hour=").and_then(|h| h.parse::<i64>().ok()) else { continue };
                let Ok(files) = std::fs::read_dir(hour.path()) else { continue };
                for f in files.flatten() {
                    let fname = f.file_name().to_string_lossy().into_owned();
                    if !fname.ends_with(".parquet") || prefix.as_ref().is_some_and(|p| !fname.starts_with(p.as_str())) {
                        continue;
                    }
                    out.entry(day * 86_400 * 1_000_000_000 + h * HOUR_NS).or_default().push(f.path());
                }
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Days since 1970-01-01 of `YYYY-MM-DD` (Howard Hinnant's days_from_civil).
fn days_from_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Rows in the files, from their footers: vectors are sized once instead
/// of doubling (and faulting in fresh pages) as they fill.
fn rows_in(files: &[PathBuf]) -> usize {
    files
        .iter()
        .filter_map(|f| File::open(f).ok())
        .filter_map(|f| ParquetRecordBatchReaderBuilder::try_new(f).ok())
        .map(|b| usize::try_from(b.metadata().file_metadata().num_rows()).unwrap_or(0))
        .sum()
}

/// The batches of a file, only `columns` (all when empty).
fn batches(path: &Path, columns: &[&str]) -> anyhow::Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).with_context(|| format!("read {}", path.display()))?;
    let schema = builder.parquet_schema();
    let indices: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| {
            if columns.is_empty() {
                return true;
            }
            let c = schema.column(i);
            let top = c.path().parts().first().map(String::as_str).unwrap_or_default();
            columns.contains(&top)
        })
        .collect();
    let mask = ProjectionMask::leaves(schema, indices);
    Ok(builder.with_projection(mask).with_batch_size(8192).build()?)
}

/// Typed columns of one batch, looked up once by name (not per value).
struct Cols<'a> {
    batch: &'a RecordBatch,
    i64s: Vec<(&'static str, Option<&'a arrow_array::Int64Array>)>,
    i32s: Vec<(&'static str, Option<&'a arrow_array::Int32Array>)>,
    strs: Vec<(&'static str, Option<&'a arrow_array::StringArray>)>,
}

impl<'a> Cols<'a> {
    fn new(batch: &'a RecordBatch, names: &[&'static str]) -> Self {
        let col = |n: &str| batch.column_by_name(n);
        Cols {
            batch,
            i64s: names.iter().map(|n| (*n, col(n).and_then(|c| c.as_primitive_opt::<Int64Type>()))).collect(),
            i32s: names.iter().map(|n| (*n, col(n).and_then(|c| c.as_primitive_opt::<Int32Type>()))).collect(),
            strs: names.iter().map(|n| (*n, col(n).and_then(|c| c.as_string_opt::<i32>()))).collect(),
        }
    }
    fn i64(&self, name: &str, row: usize) -> Option<i64> {
        let a = self.i64s.iter().find(|(n, _)| *n == name)?.1?;
        (!a.is_null(row)).then(|| a.value(row))
    }
    fn i32(&self, name: &str, row: usize) -> Option<i32> {
        let a = self.i32s.iter().find(|(n, _)| *n == name)?.1?;
        (!a.is_null(row)).then(|| a.value(row))
    }
    /// `(SIDE_seq_first, SIDE_seq_next)` as sequence numbers.
    fn seq_range(&self, side: &str, row: usize) -> Option<(u32, u32)> {
        let (first, next) = match side {
            "client" => ("client_seq_first", "client_seq_next"),
            _ => ("server_seq_first", "server_seq_next"),
        };
        let v = |n| self.i64(n, row).and_then(|x| u32::try_from(x).ok());
        v(first).zip(v(next))
    }
    fn str(&self, name: &str, row: usize) -> Option<String> {
        self.s(name, row).map(str::to_string)
    }
    fn s(&self, name: &str, row: usize) -> Option<&'a str> {
        let a = self.strs.iter().find(|(n, _)| *n == name)?.1?;
        (!a.is_null(row)).then(|| a.value(row))
    }
    fn ip(&self, name: &str, row: usize) -> Ip {
        self.s(name, row).map(Ip::parse).unwrap_or_default()
    }
    /// A value of the `attributes` map.
    fn attr(&self, key: &str, row: usize) -> Option<String> {
        let m = self.batch.column_by_name("attributes")?.as_map_opt()?;
        if m.is_null(row) {
            return None;
        }
        let entries = m.value(row);
        let keys = entries.column(0).as_string_opt::<i32>()?;
        let values = entries.column(1).as_string_opt::<i32>()?;
        (0..keys.len()).find(|&i| keys.value(i) == key).map(|i| values.value(i).to_string())
    }
}

const FLOW_COLUMNS: &[&str] = &[
    "flow_id",
    "start_ns",
    "end_ns",
    "flow_start_ns",
    "capture_point",
    "l4_protocol",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "client_isn",
    "server_isn",
    "client_seq_first",
    "client_seq_next",
    "server_seq_first",
    "server_seq_next",
    "syn_ip_id",
    "syn_tsval",
    "toa_client_ip",
    "toa_client_port",
    "client_payload_hash",
    "server_payload_hash",
];

/// The first record of each flow in `files` (later period records repeat it).
pub fn read_flows(files: &[PathBuf], names: &mut Names, out: &mut Vec<FlowObs>) -> anyhow::Result<()> {
    out.reserve_exact(rows_in(files));
    for f in files {
        for b in batches(f, FLOW_COLUMNS)? {
            let b = b?;
            let c = Cols::new(&b, FLOW_COLUMNS);
            for r in 0..b.num_rows() {
                let start = c.i64("start_ns", r).unwrap_or_default();
                if c.i64("flow_start_ns", r) != Some(start) {
                    continue;
                }
                out.push(FlowObs {
                    flow_id: c.i64("flow_id", r).unwrap_or_default(),
                    point: names.get(c.s("capture_point", r)),
                    start_ns: start,
                    end_ns: c.i64("end_ns", r).unwrap_or(start),
                    l4: names.get(c.s("l4_protocol", r)),
                    client_ip: c.ip("client_ip", r),
                    client_port: c.i32("client_port", r).unwrap_or_default(),
                    server_ip: c.ip("server_ip", r),
                    server_port: c.i32("server_port", r).unwrap_or_default(),
                    client_isn: c.i64("client_isn", r),
                    server_isn: c.i64("server_isn", r),
                    syn_ip_id: c.i32("syn_ip_id", r),
                    syn_tsval: c.i64("syn_tsval", r),
                    toa: c.s("toa_client_ip", r).map(Ip::parse).zip(c.i32("toa_client_port", r)),
                    client_hash: c.i64("client_payload_hash", r),
                    server_hash: c.i64("server_payload_hash", r),
                    client_seq: c.seq_range("client", r),
                    server_seq: c.seq_range("server", r),
                });
            }
        }
    }
    Ok(())
}

const CALL_COLUMNS: &[&str] = &[
    "call_id",
    "flow_id",
    "capture_point",
    "start_ns",
    "request_ns",
    "response_end_ns",
    "l4_protocol",
    "l7_protocol",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "request_type",
    "request_resource",
    "response_code",
    "x_request_id",
    "x_request_id_response",
    "trace_id",
    "span_id",
    "attributes",
];

pub fn read_calls(files: &[PathBuf], names: &mut Names, out: &mut Vec<CallObs>) -> anyhow::Result<()> {
    out.reserve_exact(rows_in(files));
    for f in files {
        for b in batches(f, CALL_COLUMNS)? {
            let b = b?;
            let c = Cols::new(&b, CALL_COLUMNS);
            for r in 0..b.num_rows() {
                let l7 = names.get(c.s("l7_protocol", r));
                let dns_id = if &*l7 == "dns" { c.attr("dns.id", r).and_then(|v| v.parse().ok()) } else { None };
                out.push(CallObs {
                    call_id: c.i64("call_id", r).unwrap_or_default(),
                    flow_id: c.i64("flow_id", r).unwrap_or_default(),
                    point: names.get(c.s("capture_point", r)),
                    start_ns: c.i64("start_ns", r).unwrap_or_default(),
                    end_ns: c.i64("response_end_ns", r),
                    has_request: c.i64("request_ns", r).is_some(),
                    l4: names.get(c.s("l4_protocol", r)),
                    l7,
                    client_ip: c.ip("client_ip", r),
                    client_port: c.i32("client_port", r).unwrap_or_default(),
                    server_ip: c.ip("server_ip", r),
                    server_port: c.i32("server_port", r).unwrap_or_default(),
                    request_type: c.str("request_type", r),
                    resource: c.str("request_resource", r),
                    response_code: c.i32("response_code", r),
                    request_id: c.str("x_request_id", r).or_else(|| c.str("x_request_id_response", r)),
                    trace: c.str("trace_id", r).zip(c.str("span_id", r)),
                    dns_id,
                });
            }
        }
    }
    Ok(())
}

/// Correlates the flows and calls under `dirs` (only run `run_id`'s files
/// when given) and writes `out_dir/nat_paths`. Hour partitions are read in
/// order; each is linked with the tail of the one before, so memory holds
/// one hour of observations plus the widest window.
pub fn correlate_dirs(
    dirs: &[PathBuf],
    run_id: Option<&str>,
    cfg: &NatConfig,
    out_dir: &Path,
    out_run_id: &str,
) -> anyhow::Result<(NatStats, crate::sink::SinkStats)> {
    let flow_parts = partitions(dirs, "flows", run_id);
    let call_parts = partitions(dirs, "calls", run_id);
    let mut hours: Vec<i64> = flow_parts.keys().chain(call_parts.keys()).copied().collect();
    hours.sort_unstable();
    hours.dedup();
    let mut linker = Linker::new(cfg.clone());
    let mut sink = ParquetSink::<NatPathRecord>::new(out_dir, out_run_id);
    let tail = cfg.tail_ns();
    let (mut flows, mut calls) = (Vec::new(), Vec::new());
    let mut names = Names::default();
    for (i, &h) in hours.iter().enumerate() {
        if let Some(files) = flow_parts.get(&h) {
            read_flows(files, &mut names, &mut flows)?;
        }
        if let Some(files) = call_parts.get(&h) {
            read_calls(files, &mut names, &mut calls)?;
        }
        let mut failed = None;
        linker.link_into(&mut flows, &mut calls, h, &mut |batch| {
            if failed.is_none() {
                failed = sink.write(std::mem::take(batch)).err();
            }
            batch.clear();
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let keep_from = hours.get(i + 1).map_or(i64::MAX, |next| next - tail);
        flows.retain(|f| f.start_ns >= keep_from);
        calls.retain(|c| c.start_ns >= keep_from);
    }
    let stats = sink.close()?;
    Ok((linker.stats, stats))
}

const NAT_COLUMNS: &[&str] = &[
    "path_id",
    "link_kind",
    "translation",
    "match_method",
    "a_capture_point",
    "a_flow_id",
    "a_call_id",
    "a_client_ip",
    "a_client_port",
    "a_server_ip",
    "a_server_port",
    "a_start_ns",
    "a_resource",
    "b_capture_point",
    "b_flow_id",
    "b_call_id",
    "b_client_ip",
    "b_client_port",
    "b_server_ip",
    "b_server_port",
    "b_start_ns",
    "b_resource",
    "l4_protocol",
    "hop_latency_ns",
    "a_response_code",
    "b_response_code",
];

/// Every NAT path record under `dir`.
pub fn read_nat_paths(dir: &Path) -> anyhow::Result<Vec<NatPathRecord>> {
    let mut out = Vec::new();
    for files in partitions(&[dir.to_path_buf()], "nat_paths", None).values() {
        for f in files {
            for b in batches(f, &[])? {
                let b = b?;
                let c = Cols::new(&b, NAT_COLUMNS);
                for r in 0..b.num_rows() {
                    let s = |n: &str| c.str(n, r).unwrap_or_default();
                    let confidence = b
                        .column_by_name("confidence")
                        .and_then(|a| a.as_primitive_opt::<arrow_array::types::Float64Type>().map(|a| a.value(r)))
                        .unwrap_or_default();
                    out.push(NatPathRecord {
                        path_id: c.i64("path_id", r).unwrap_or_default(),
                        link_kind: s("link_kind"),
                        translation: s("translation"),
                        match_method: s("match_method"),
                        confidence,
                        a_capture_point: s("a_capture_point"),
                        a_flow_id: c.i64("a_flow_id", r).unwrap_or_default(),
                        a_call_id: c.i64("a_call_id", r),
                        a_client_ip: s("a_client_ip"),
                        a_client_port: c.i32("a_client_port", r).unwrap_or_default(),
                        a_server_ip: s("a_server_ip"),
                        a_server_port: c.i32("a_server_port", r).unwrap_or_default(),
                        a_start_ns: c.i64("a_start_ns", r).unwrap_or_default(),
                        a_resource: c.str("a_resource", r),
                        b_capture_point: s("b_capture_point"),
                        b_flow_id: c.i64("b_flow_id", r).unwrap_or_default(),
                        b_call_id: c.i64("b_call_id", r),
                        b_client_ip: s("b_client_ip"),
                        b_client_port: c.i32("b_client_port", r).unwrap_or_default(),
                        b_server_ip: s("b_server_ip"),
                        b_server_port: c.i32("b_server_port", r).unwrap_or_default(),
                        b_start_ns: c.i64("b_start_ns", r).unwrap_or_default(),
                        b_resource: c.str("b_resource", r),
                        l4_protocol: s("l4_protocol"),
                        hop_latency_ns: c.i64("hop_latency_ns", r).unwrap_or_default(),
                        a_response_code: c.i32("a_response_code", r),
                        b_response_code: c.i32("b_response_code", r),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Every call under `dir` (for lookups by request id).
pub fn read_all_calls(dir: &Path) -> anyhow::Result<Vec<CallObs>> {
    let mut out = Vec::new();
    let mut names = Names::default();
    for files in partitions(&[dir.to_path_buf()], "calls", None).values() {
        read_calls(files, &mut names, &mut out)?;
    }
    Ok(out)
}
