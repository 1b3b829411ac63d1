//! `flowtrail top`: the top N keys (`--by resource|domain|server|client|
//! user_agent|point|protocol|status|code|attr.NAME`) by number of calls;
//! per time window with `--window`; or, with `--compare`, ranked by calls
//! in the AFTER range with the rate change from the BEFORE range (a surge
//! after a release).
//!
//! `--compare` takes two ranges, `BEFORE,AFTER`, each `SINCE..UNTIL`; or
//! one instant `T` (the release): BEFORE is `[T - window, T)` and AFTER
//! `[T, T + window)` with `--window`, else BEFORE is `[--since, T)` and
//! AFTER `[T, --until)` (an open end is the first or last call seen).
//! Rates are calls per minute of the range; `change` is
//! `after_per_min / before_per_min - 1` (null when nothing came before).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use super::calls::Status;
use super::{scan, CommonArgs, Endpoint, Filters, Interner, Key, Rows, Value};
use crate::dataset::TimeRange;
use crate::records::CallRecord;

const MIN_NS: f64 = 60e9;

/// `--compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Ranges { before: TimeRange, after: TimeRange },
    At(i64),
}

impl std::str::FromStr for Compare {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some((b, a)) = s.split_once(',') {
            return Ok(Compare::Ranges { before: super::parse_range(b)?, after: super::parse_range(a)? });
        }
        if s.contains("..") {
            return Err(format!("--compare wants BEFORE,AFTER (each SINCE..UNTIL) or one instant, got {s:?}"));
        }
        Ok(Compare::At(super::parse_time(s)?))
    }
}

#[derive(Debug, Clone)]
pub struct TopQuery {
    pub filters: Filters,
    /// Count only calls with this status (e.g. the 5xx per server).
    pub status: Option<Status>,
    pub by: Key,
    pub window_ns: Option<i64>,
    pub compare: Option<Compare>,
    pub limit: usize,
}

/// `flowtrail top`.
#[derive(clap::Args, Debug, Clone)]
pub struct TopArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// resource, domain, server, client, user_agent, point, protocol, status, code or attr.NAME
    /// (a call attribute, e.g. attr.http.header.x-sdk-version).
    #[arg(long)]
    pub by: Key,
    /// Top N per window of this length (e.g. 1m); with a --compare instant, the length of BEFORE and AFTER.
    #[arg(long, value_parser = super::parse_duration_ns)]
    pub window: Option<i64>,
    /// BEFORE,AFTER as two SINCE..UNTIL ranges, or one instant T (BEFORE ends and AFTER starts at T).
    #[arg(long, value_name = "BEFORE,AFTER|T")]
    pub compare: Option<Compare>,
    /// How many keys.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Count only calls with this code or class.
    #[arg(long)]
    pub status: Option<Status>,
    /// Server IP or IP:PORT.
    #[arg(long, value_parser = Endpoint::parse)]
    pub server: Option<Endpoint>,
}

impl TopArgs {
    #[must_use]
    pub fn query(&self) -> TopQuery {
        TopQuery {
            filters: self.common.filters(self.server.clone()),
            status: self.status.clone(),
            by: self.by.clone(),
            window_ns: self.window,
            compare: self.compare,
            limit: self.limit,
        }
    }
}

/// Runs `flowtrail top`.
pub fn run(args: &TopArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let rows = top(&args.common.dirs, &args.query())?;
    super::print(&rows, args.common.format, out)
}

fn intersect(a: TimeRange, b: TimeRange) -> TimeRange {
    TimeRange { since: a.since.max(b.since), until: a.until.min(b.until) }
}

/// The answer to `q` over `dirs`.
pub fn top(dirs: &[PathBuf], q: &TopQuery) -> anyhow::Result<Rows> {
    match q.compare {
        Some(c) => compare(dirs, q, c),
        None => ranked(dirs, q),
    }
}

fn selected(q: &TopQuery, c: &CallRecord) -> bool {
    q.filters.call(c) && q.status.as_ref().is_none_or(|s| s.matches(c))
}

fn ranked(dirs: &[PathBuf], q: &TopQuery) -> anyhow::Result<Rows> {
    let mut keys = Interner::default();
    let mut counts: HashMap<(i64, u32), i64, foldhash::fast::RandomState> = HashMap::default();
    let mut totals: HashMap<i64, i64> = HashMap::new();
    let mut buf = String::new();
    scan::<CallRecord>(dirs, q.filters.range, |c| {
        if !selected(q, c) || !q.by.write(c, &mut buf) {
            return;
        }
        let w = q.window_ns.map_or(0, |w| c.start_ns - c.start_ns.rem_euclid(w));
        *counts.entry((w, keys.id(&buf))).or_default() += 1;
        *totals.entry(w).or_default() += 1;
    })?;
    let name = |id: u32| keys.names[id as usize].as_str();
    let mut groups: Vec<((i64, u32), i64)> = counts.into_iter().collect();
    groups.sort_by(|((wa, ka), na), ((wb, kb), nb)| wa.cmp(wb).then(nb.cmp(na)).then_with(|| name(*ka).cmp(name(*kb))));
    let key_col = q.by.column();
    let mut rows = match q.window_ns {
        Some(_) => Rows::new(&["window_start_ns", "rank", &key_col, "calls", "per_min"]),
        None => Rows::new(&["rank", &key_col, "calls", "share"]),
    };
    let (mut cur, mut rank) = (None, 0);
    for ((w, id), n) in groups {
        if cur != Some(w) {
            (cur, rank) = (Some(w), 0);
        }
        rank += 1;
        if rank > q.limit {
            continue;
        }
        rows.rows.push(match q.window_ns {
            Some(len) => vec![
                Value::Time(w),
                Value::Int(rank as i64),
                Value::Str(name(id).into()),
                Value::Int(n),
                Value::Float(n as f64 * MIN_NS / len as f64),
            ],
            None => vec![
                Value::Int(rank as i64),
                Value::Str(name(id).into()),
                Value::Int(n),
                Value::Float(n as f64 / totals[&w] as f64),
            ],
        });
    }
    Ok(rows)
}

fn compare(dirs: &[PathBuf], q: &TopQuery, c: Compare) -> anyhow::Result<Rows> {
    let all = TimeRange::default();
    let (before, after) = match c {
        Compare::Ranges { before, after } => {
            anyhow::ensure!(q.window_ns.is_none(), "--window goes with a --compare instant, not with two ranges");
            (before, after)
        }
        Compare::At(t) => match q.window_ns {
            Some(w) => (TimeRange { since: t - w, until: t }, TimeRange { since: t, until: t + w }),
            None => (TimeRange { since: all.since, until: t }, TimeRange { since: t, until: all.until }),
        },
    };
    let (before, after) = (intersect(before, q.filters.range), intersect(after, q.filters.range));
    let hull = TimeRange { since: before.since.min(after.since), until: before.until.max(after.until) };
    let mut keys = Interner::default();
    let mut counts: HashMap<u32, (i64, i64), foldhash::fast::RandomState> = HashMap::default();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    let mut buf = String::new();
    scan::<CallRecord>(dirs, hull, |c| {
        let (b, a) = (before.contains(c.start_ns), after.contains(c.start_ns));
        if !(b || a) || !selected(q, c) || !q.by.write(c, &mut buf) {
            return;
        }
        (first, last) = (first.min(c.start_ns), last.max(c.start_ns));
        let e = counts.entry(keys.id(&buf)).or_default();
        e.0 += i64::from(b);
        e.1 += i64::from(a);
    })?;
    // Open ends: the first or last call seen.
    let span = |r: TimeRange| {
        let since = if r.since == i64::MIN { first } else { r.since };
        let until = if r.until == i64::MAX { last.saturating_add(1) } else { r.until };
        (until.saturating_sub(since)).max(1) as f64 / MIN_NS
    };
    let (bmin, amin) = (span(before), span(after));
    let name = |id: u32| keys.names[id as usize].as_str();
    let mut groups: Vec<(u32, (i64, i64))> = counts.into_iter().collect();
    groups.sort_by(|(ka, (ba, aa)), (kb, (bb, ab))| ab.cmp(aa).then(bb.cmp(ba)).then_with(|| name(*ka).cmp(name(*kb))));
    let key_col = q.by.column();
    let mut rows =
        Rows::new(&["rank", &key_col, "calls_before", "calls_after", "before_per_min", "after_per_min", "change"]);
    for (i, (id, (b, a))) in groups.into_iter().take(q.limit).enumerate() {
        let (br, ar) = (b as f64 / bmin, a as f64 / amin);
        rows.rows.push(vec![
            Value::Int(i as i64 + 1),
            Value::Str(name(id).into()),
            Value::Int(b),
            Value::Int(a),
            Value::Float(br),
            Value::Float(ar),
            Value::opt_float((b > 0).then(|| ar / br - 1.0)),
        ]);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_parses() {
        let t = "2026-11-25T10:00:00Z";
        assert_eq!(t.parse::<Compare>(), Ok(Compare::At(super::super::parse_time(t).unwrap())));
        let c: Compare =
            "2026-11-25T09:55:00Z..2026-11-25T10:00:00Z,2026-11-25T10:00:00Z..2026-11-25T10:05:00Z".parse().unwrap();
        let Compare::Ranges { before, after } = c else { panic!() };
        assert_eq!(before.until, after.since);
        assert!("2026-11-25T09:55:00Z..2026-11-25T10:00:00Z".parse::<Compare>().is_err());
    }
}
