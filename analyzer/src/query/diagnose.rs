//! `flowtrail diagnose --server IP[:PORT]`: is the trouble with a server
//! the network's, the server's or the client's? One pass over the
//! server's flows and one over its calls gather the evidence; the verdict
//! is the side with the most evidence.
//!
//! The rule (the same in `queries/story_diagnose.sql`):
//!
//! | side | evidence | threshold |
//! |---|---|---|
//! | network | retransmissions client→server | ≥ 1% of the client's packets |
//! | network | retransmissions server→client | ≥ 1% of the server's packets |
//! | network | SYN never answered (`close_type = no_synack`) | ≥ 1 flow |
//! | network | RTT jitter: p90 − p10 of `rtt_server_ns` over flows | ≥ 3 flows, ≥ 20 ms and ≥ the median |
//! | server | connection refused (`refused`) | ≥ 1 flow |
//! | server | server reset an established connection (`server_rst`) | ≥ 1 flow |
//! | server | server advertised a zero window | ≥ 1 segment |
//! | server | slow after ACK: median time to first response byte | ≥ 100 ms and ≥ 10 × median RTT |
//! | server | answers of class `server_error` (5xx, SERVFAIL…) | ≥ 1 call |
//! | server | calls without response (`timeout`) while the network shows no evidence | ≥ 1 call |
//! | client | client reset the connection (`client_rst`) | ≥ 1 flow |
//! | client | client advertised a zero window | ≥ 1 segment |
//!
//! Counters are summed over every record of the server's flows (period
//! records count their own interval); close types come from `final`
//! records; RTTs from each flow's first record. Percentiles are nearest
//! rank (`percentile_disc`). The verdict is the side with the most items
//! of evidence, ties going network, then server, then client; `none` when
//! there is no evidence at all.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use super::{percentile, scan, CommonArgs, Endpoint, Filters, Rows, Value};
use crate::records::{CallRecord, FlowRecord};

/// Retransmissions above this share of a direction's packets (percent).
pub const RETX_PCT: i64 = 1;
/// RTT spread (p90 − p10) counted as jitter, and the flows it needs.
pub const JITTER_NS: i64 = 20_000_000;
pub const JITTER_MIN_FLOWS: usize = 3;
/// Median time to first byte counted as slow, and its ratio to the median RTT.
pub const SLOW_FIRST_BYTE_NS: i64 = 100_000_000;
pub const SLOW_RTT_FACTOR: i64 = 10;
/// Failed calls and resets listed under a table.
const LISTED: usize = 20;

#[derive(Debug, Clone)]
pub struct DiagnoseQuery {
    /// `filters.server` is the server diagnosed.
    pub filters: Filters,
}

/// `flowtrail diagnose`.
#[derive(clap::Args, Debug, Clone)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The server: IP or IP:PORT.
    #[arg(long, value_parser = Endpoint::parse)]
    pub server: Endpoint,
}

/// What was found about one server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnosis {
    pub server: String,
    pub flows: i64,
    pub records: i64,
    pub client_packets: i64,
    pub server_packets: i64,
    pub client_retransmissions: i64,
    pub server_retransmissions: i64,
    pub client_zero_window: i64,
    pub server_zero_window: i64,
    pub refused: i64,
    pub no_synack: i64,
    pub client_rst: i64,
    pub server_rst: i64,
    /// Flows with a server-side handshake RTT.
    pub rtt_flows: i64,
    pub rtt_p10_ns: Option<i64>,
    pub rtt_p50_ns: Option<i64>,
    pub rtt_p90_ns: Option<i64>,
    pub calls: i64,
    pub timeouts: i64,
    pub server_errors: i64,
    pub first_byte_p50_ns: Option<i64>,
    pub first_byte_p90_ns: Option<i64>,
    /// `(side, text)` for each item of evidence.
    pub evidence: Vec<(&'static str, String)>,
    /// `network`, `server`, `client` or `none`.
    pub verdict: &'static str,
    /// Resets and refusals: `(time, who, client)`.
    pub resets: Vec<(i64, String, String)>,
    /// Calls that timed out or failed: `(time, resource, status)`.
    pub failed: Vec<(i64, String, String)>,
}

impl Diagnosis {
    #[must_use]
    pub fn count(&self, side: &str) -> i64 {
        self.evidence.iter().filter(|(s, _)| *s == side).count() as i64
    }
}

/// Runs `flowtrail diagnose`.
pub fn run(args: &DiagnoseArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let q = DiagnoseQuery { filters: args.common.filters(Some(args.server.clone())) };
    let d = diagnose(&args.common.dirs, &q)?;
    let r = rows(&d);
    let r = if args.common.format == super::Format::Table { vertical(&r) } else { r };
    super::print(&r, args.common.format, out)
}

fn flow_selected(f: &Filters, r: &FlowRecord) -> bool {
    f.range.contains(r.start_ns)
        && f.protocol.as_ref().is_none_or(|p| {
            r.l4_protocol.eq_ignore_ascii_case(p) || r.l7_protocol.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(p))
        })
        && f.server.as_ref().is_none_or(|e| e.matches(&r.server_ip, r.server_port))
        && f.client.as_ref().is_none_or(|e| e.matches(&r.client_ip, r.client_port))
        && f.point.as_ref().is_none_or(|p| super::point_matches(p, &r.capture_point))
}

fn ms(ns: i64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

/// The diagnosis of `q.filters.server` over `dirs`.
pub fn diagnose(dirs: &[PathBuf], q: &DiagnoseQuery) -> anyhow::Result<Diagnosis> {
    let f = &q.filters;
    let mut d = Diagnosis {
        server: f.server.as_ref().map_or_else(String::new, |e| match e.port {
            Some(p) => format!("{}:{p}", e.ip),
            None => e.ip.clone(),
        }),
        ..Diagnosis::default()
    };
    let mut flows = HashSet::new();
    let mut rtts = Vec::new();
    scan::<FlowRecord>(dirs, f.range, |r| {
        if !flow_selected(f, r) {
            return;
        }
        flows.insert(r.flow_id);
        d.records += 1;
        d.client_packets += r.client_packets;
        d.server_packets += r.server_packets;
        d.client_retransmissions += r.client_retransmissions.unwrap_or(0);
        d.server_retransmissions += r.server_retransmissions.unwrap_or(0);
        d.client_zero_window += r.client_zero_window.unwrap_or(0);
        d.server_zero_window += r.server_zero_window.unwrap_or(0);
        if r.start_ns == r.flow_start_ns {
            if let Some(rtt) = r.rtt_server_ns {
                rtts.push(rtt);
            }
        }
        if r.record_kind == "final" {
            let who = match r.close_type.as_str() {
                "refused" => Some(&mut d.refused),
                "no_synack" => Some(&mut d.no_synack),
                "client_rst" => Some(&mut d.client_rst),
                "server_rst" => Some(&mut d.server_rst),
                _ => None,
            };
            if let Some(n) = who {
                *n += 1;
                if r.close_type != "no_synack" {
                    d.resets.push((r.end_ns, r.close_type.clone(), format!("{}:{}", r.client_ip, r.client_port)));
                }
            }
        }
    })?;
    d.flows = flows.len() as i64;
    rtts.sort_unstable();
    d.rtt_flows = rtts.len() as i64;
    (d.rtt_p10_ns, d.rtt_p50_ns, d.rtt_p90_ns) = (percentile(&rtts, 10), percentile(&rtts, 50), percentile(&rtts, 90));
    let mut first_bytes = Vec::new();
    scan::<CallRecord>(dirs, f.range, |c| {
        if !f.call(c) {
            return;
        }
        d.calls += 1;
        let failed = match c.response_status.as_str() {
            "timeout" => {
                d.timeouts += 1;
                true
            }
            "server_error" => {
                d.server_errors += 1;
                true
            }
            _ => false,
        };
        if failed {
            let what =
                c.response_code.map_or_else(|| c.response_status.clone(), |x| format!("{} {x}", c.response_status));
            d.failed.push((c.start_ns, c.request_resource.clone().unwrap_or_default(), what));
        }
        if let Some(fb) = c.first_byte_ns {
            first_bytes.push(fb);
        }
    })?;
    first_bytes.sort_unstable();
    (d.first_byte_p50_ns, d.first_byte_p90_ns) = (percentile(&first_bytes, 50), percentile(&first_bytes, 90));
    d.resets.sort();
    d.failed.sort();
    weigh(&mut d);
    Ok(d)
}

/// Applies the rule of the module docs.
fn weigh(d: &mut Diagnosis) {
    let mut ev: Vec<(&'static str, String)> = Vec::new();
    let pct = |n: i64, of: i64| 100.0 * n as f64 / of.max(1) as f64;
    for (dir, n, of) in [
        ("client→server", d.client_retransmissions, d.client_packets),
        ("server→client", d.server_retransmissions, d.server_packets),
    ] {
        if n > 0 && n * 100 >= of * RETX_PCT {
            ev.push(("network", format!("{dir} retransmissions: {n} of {of} packets ({:.1}%)", pct(n, of))));
        }
    }
    if d.no_synack > 0 {
        ev.push(("network", format!("{} handshakes never answered (SYN lost or dropped)", d.no_synack)));
    }
    if let (Some(p10), Some(p50), Some(p90)) = (d.rtt_p10_ns, d.rtt_p50_ns, d.rtt_p90_ns) {
        let spread = p90 - p10;
        if d.rtt_flows >= JITTER_MIN_FLOWS as i64 && spread >= JITTER_NS && spread >= p50 {
            ev.push((
                "network",
                format!("RTT jitter: p90-p10 {} over {} flows (median {})", ms(spread), d.rtt_flows, ms(p50)),
            ));
        }
    }
    let network = !ev.is_empty();
    if d.refused > 0 {
        ev.push(("server", format!("{} connections refused (RST to the SYN)", d.refused)));
    }
    if d.server_rst > 0 {
        ev.push(("server", format!("{} connections reset by the server", d.server_rst)));
    }
    if d.server_zero_window > 0 {
        ev.push(("server", format!("server advertised a zero window {} times", d.server_zero_window)));
    }
    if let Some(fb) = d.first_byte_p50_ns {
        if fb >= SLOW_FIRST_BYTE_NS && d.rtt_p50_ns.is_none_or(|r| fb >= SLOW_RTT_FACTOR * r) {
            let rtt = d.rtt_p50_ns.map_or_else(|| "unknown".into(), ms);
            ev.push(("server", format!("slow after ACK: median first byte {} (median RTT {rtt})", ms(fb))));
        }
    }
    if d.server_errors > 0 {
        ev.push(("server", format!("{} server errors of {} calls", d.server_errors, d.calls)));
    }
    if d.timeouts > 0 && !network {
        ev.push(("server", format!("{} calls never answered on a clean network", d.timeouts)));
    }
    if d.client_rst > 0 {
        ev.push(("client", format!("{} connections reset by the client", d.client_rst)));
    }
    if d.client_zero_window > 0 {
        ev.push(("client", format!("client advertised a zero window {} times", d.client_zero_window)));
    }
    d.evidence = ev;
    let (n, s, c) = (d.count("network"), d.count("server"), d.count("client"));
    d.verdict = if n + s + c == 0 {
        "none"
    } else if n >= s && n >= c {
        "network"
    } else if s >= c {
        "server"
    } else {
        "client"
    };
}

/// The diagnosis as one row (JSON, CSV) or a row with the evidence,
/// resets and failed calls under it (table).
#[must_use]
pub fn rows(d: &Diagnosis) -> Rows {
    let mut r = Rows::new(&[
        "server",
        "verdict",
        "flows",
        "records",
        "client_packets",
        "server_packets",
        "client_retransmissions",
        "server_retransmissions",
        "client_zero_window",
        "server_zero_window",
        "refused",
        "no_synack",
        "client_rst",
        "server_rst",
        "rtt_flows",
        "rtt_p10_ns",
        "rtt_p50_ns",
        "rtt_p90_ns",
        "calls",
        "timeouts",
        "server_errors",
        "first_byte_p50_ns",
        "first_byte_p90_ns",
        "network_evidence",
        "server_evidence",
        "client_evidence",
        "evidence",
    ]);
    let i = Value::Int;
    r.rows.push(vec![
        Value::Str(d.server.clone()),
        Value::Str(d.verdict.into()),
        i(d.flows),
        i(d.records),
        i(d.client_packets),
        i(d.server_packets),
        i(d.client_retransmissions),
        i(d.server_retransmissions),
        i(d.client_zero_window),
        i(d.server_zero_window),
        i(d.refused),
        i(d.no_synack),
        i(d.client_rst),
        i(d.server_rst),
        i(d.rtt_flows),
        Value::opt_dur(d.rtt_p10_ns),
        Value::opt_dur(d.rtt_p50_ns),
        Value::opt_dur(d.rtt_p90_ns),
        i(d.calls),
        i(d.timeouts),
        i(d.server_errors),
        Value::opt_dur(d.first_byte_p50_ns),
        Value::opt_dur(d.first_byte_p90_ns),
        i(d.count("network")),
        i(d.count("server")),
        i(d.count("client")),
        Value::Str(d.evidence.iter().map(|(s, t)| format!("{s}: {t}")).collect::<Vec<_>>().join("; ")),
    ]);
    // A table reads better vertically: one line per column.
    let mut notes = vec![format!("verdict: {} ({})", d.verdict, d.server)];
    for (side, text) in &d.evidence {
        notes.push(format!("  {side:<8} {text}"));
    }
    for (t, who, client) in d.resets.iter().take(LISTED) {
        notes.push(format!("  {who:<10} at {} (client {client})", super::format_time(*t)));
    }
    for (t, res, what) in d.failed.iter().take(LISTED) {
        notes.push(format!("  failed call at {}: {res} ({what})", super::format_time(*t)));
    }
    let more = d.resets.len().saturating_sub(LISTED) + d.failed.len().saturating_sub(LISTED);
    if more > 0 {
        notes.push(format!("  … {more} more resets and failed calls (use --format json with `calls`)"));
    }
    r.notes = notes;
    r
}

/// A vertical rendering for `--format table`: `column  value` lines.
#[must_use]
pub fn vertical(rows: &Rows) -> Rows {
    let mut v = Rows::new(&["column", "value"]);
    if let Some(row) = rows.rows.first() {
        for (c, x) in rows.columns.iter().zip(row) {
            if c != "evidence" {
                v.rows.push(vec![Value::Str(c.clone()), Value::Str(x.table_text())]);
            }
        }
    }
    v.notes.clone_from(&rows.notes);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Diagnosis {
        Diagnosis { client_packets: 100, server_packets: 100, ..Diagnosis::default() }
    }

    #[test]
    fn the_rule() {
        let mut d = base();
        weigh(&mut d);
        assert_eq!(d.verdict, "none");
        let mut d = Diagnosis { server_retransmissions: 1, ..base() };
        weigh(&mut d);
        assert_eq!((d.verdict, d.count("network")), ("network", 1));
        // A timeout on a lossy network is not held against the server.
        let mut d = Diagnosis { server_retransmissions: 5, timeouts: 2, ..base() };
        weigh(&mut d);
        assert_eq!((d.verdict, d.count("server")), ("network", 0));
        let mut d = Diagnosis { timeouts: 2, ..base() };
        weigh(&mut d);
        assert_eq!(d.verdict, "server");
        let mut d = Diagnosis { first_byte_p50_ns: Some(150_000_000), rtt_p50_ns: Some(1_000_000), ..base() };
        weigh(&mut d);
        assert_eq!(d.verdict, "server");
        let mut d = Diagnosis { first_byte_p50_ns: Some(150_000_000), rtt_p50_ns: Some(20_000_000), ..base() };
        weigh(&mut d);
        assert_eq!(d.verdict, "none", "slow, but no slower than ten round trips");
        let mut d = Diagnosis { client_rst: 2, client_zero_window: 1, server_rst: 1, ..base() };
        weigh(&mut d);
        assert_eq!(d.verdict, "client");
        let mut d = Diagnosis {
            rtt_flows: 3,
            rtt_p10_ns: Some(5_000_000),
            rtt_p50_ns: Some(10_000_000),
            rtt_p90_ns: Some(40_000_000),
            ..base()
        };
        weigh(&mut d);
        assert_eq!(d.verdict, "network");
    }
}
