//! `flowtrail report DIR -o report.html`: one self-contained HTML page
//! (inline CSS, inline SVG, a few lines of inline JS; nothing fetched) with
//! a service map, the top errors, the top resources with surge markers,
//! TCP health per server and a capture summary.
//!
//! This module builds the data ([`Report`]); [`html`] renders it, escaping
//! every string that came from a record.
//!
//! # How it reads
//!
//! Typed scans over the records through [`crate::dataset`], one file at a
//! time, one pass per record kind: `nat_paths` first (small: it decides
//! where calls are drawn), then `calls`, then `flows`. Aggregation keys are
//! interned strings (`u32` ids) looked up by `&str`, so a row allocates only
//! when it brings a name not seen before; per call the scan keeps 16 bytes
//! (resource id and start time, for the surge split once the time range is
//! known) and 8 per latency (for exact percentiles). `flowtrail report`
//! prints the records read and the time taken.
//!
//! Why not DataFusion (as the issue suggests): a clean build of DataFusion
//! on the 2-core CI machine adds well over 10 minutes to every CI run,
//! whose whole suite must stay under about 25 minutes; the report's
//! questions are a handful of group-bys that a typed single-pass scan
//! answers directly.
//!
//! # The service map
//!
//! Nodes are services (`server IP:port`, with the names calls asked for —
//! HTTP Host, SNI, DNS name — and the L7 protocols) and clients (an IP).
//! An edge is the calls from one node to another: count, error rate (client
//! errors, server errors and timeouts), p50/p99 latency. NAT paths are drawn
//! through their gateway: a call on the far side of a link (its `b` call or
//! `b` flow) is drawn from the link's `a` server (the VIP or proxy the client
//! called) to the backend, dashed and labelled with the translation; an
//! address the gateway used as client on the far side (SNAT, proxy) is taken
//! as the gateway's. A call seen again at a second point with the same server
//! (translation `none` or `snat`) is counted once, nearest the client.
//! Layout: clients left, services that call others (gateways, proxies) in
//! the middle by depth, leaf services right; each column sorted by address.

pub mod html;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hashbrown::HashMap;

use crate::dataset::{self, TimeRange};
use crate::pipeline::RunSummary;
use crate::records::{CallRecord, FlowRecord, NatPathRecord};

/// Rows shown in the top errors and top resources tables.
pub const TOP_ROWS: usize = 25;
/// Rows shown in the TCP health table.
pub const TCP_ROWS: usize = 100;
/// A resource is marked as surging when its rate in the last third of the
/// range is more than this many times its rate in the first two thirds…
pub const SURGE_RATIO: f64 = 2.0;
/// …and at least this many of its calls fell in the last third.
pub const SURGE_MIN_CALLS: u64 = 3;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Output directories of flowtrail runs.
    pub dirs: Vec<PathBuf>,
    /// Only records starting in this range.
    pub range: TimeRange,
    /// Page title (default: the directories).
    pub title: Option<String>,
}

/// Kind of a map node; also its column group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// Only ever calls (an IP without port).
    Client,
    /// A service that calls others or fronts a NAT path (VIP, proxy).
    Gateway,
    /// A service that only answers.
    Service,
}

impl NodeKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Client => "client",
            NodeKind::Gateway => "gateway",
            NodeKind::Service => "service",
        }
    }
}

/// One node of the service map.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `IP:port` for services, `IP` for clients (`[v6]:port` for IPv6).
    pub id: String,
    pub kind: NodeKind,
    /// Column, from 0 (clients) to the rightmost (leaf services).
    pub column: usize,
    /// L7 protocols of the calls it answered, sorted.
    pub protocols: Vec<String>,
    /// Names calls asked it for (request_domain), sorted.
    pub names: Vec<String>,
    /// Calls it answered.
    pub calls_in: u64,
    /// Calls it made.
    pub calls_out: u64,
}

/// One edge of the service map: calls (and NAT links) from one node to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub calls: u64,
    /// Calls with status `client_error`, `server_error` or `timeout`.
    pub errors: u64,
    pub p50_ns: Option<i64>,
    pub p99_ns: Option<i64>,
    /// NAT translations drawn on this edge (`dnat`, `proxy`…), sorted; empty
    /// for a plain call edge.
    pub translations: Vec<String>,
    /// NAT path links with this edge as their `a` server → `b` server.
    pub links: u64,
}

/// One row of the top errors table.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRow {
    pub protocol: String,
    pub code: Option<i32>,
    pub status: String,
    pub exception: Option<String>,
    pub resource: Option<String>,
    pub server: String,
    pub count: u64,
}

/// One row of the top resources table.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRow {
    pub protocol: String,
    pub resource: String,
    pub calls: u64,
    pub errors: u64,
    pub p50_ns: Option<i64>,
    /// Calls in the first two thirds and in the last third of the range.
    pub early: u64,
    pub late: u64,
    /// Rate in the last third over the rate in the first two thirds
    /// (`None` when the first two thirds had none).
    pub ratio: Option<f64>,
    pub surge: bool,
}

/// TCP health of one server (`IP:port`), from its flow records.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpRow {
    pub server: String,
    /// Flows that ended (final records).
    pub flows: u64,
    /// Retransmitted segments, both directions, every record.
    pub retransmits: u64,
    /// Handshake round trip (client side + server side of the capture point).
    pub rtt_p50_ns: Option<i64>,
    pub rtt_p90_ns: Option<i64>,
    /// Flows ended by a RST after the handshake.
    pub resets: u64,
    /// Connections refused (RST answered the SYN).
    pub refused: u64,
    /// SYNs never answered.
    pub no_synack: u64,
}

/// One run's summary, from `DIR/runs/<run_id>.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    pub packets: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub decode_errors: u64,
    pub dropped: u64,
    pub input_errors: u64,
}

/// What the records and the run summaries say about the capture.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CaptureSummary {
    pub runs: Vec<RunRow>,
    pub capture_points: Vec<String>,
    /// Final flow records.
    pub flows: u64,
    /// Flow records of every kind.
    pub flow_records: u64,
    pub calls: u64,
    pub links: u64,
    /// First and last record start in the range.
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
}

impl CaptureSummary {
    /// Totals over the runs (`None` without any run summary).
    #[must_use]
    pub fn packets(&self) -> Option<u64> {
        (!self.runs.is_empty()).then(|| self.runs.iter().map(|r| r.packets).sum())
    }
}

/// The scan's own cost, printed by the command.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ScanStats {
    pub records: u64,
    pub files: u64,
    pub elapsed_s: f64,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub title: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub top_errors: Vec<ErrorRow>,
    pub top_resources: Vec<ResourceRow>,
    pub tcp: Vec<TcpRow>,
    pub summary: CaptureSummary,
    pub scan: ScanStats,
}

/// Builds the report and writes it as HTML to `out`.
pub fn write_report(opts: &ReportOptions, out: &Path) -> anyhow::Result<Report> {
    let report = build(opts)?;
    let page = html::render(&report);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, page)?;
    Ok(report)
}

/// Writes a run's summary to `DIR/runs/<run_id>.json` (the report reads
/// every such file under its directories).
pub fn write_run_summary(out_dir: &Path, run_id: &str, summary: &RunSummary) -> std::io::Result<PathBuf> {
    let dir = out_dir.join("runs");
    std::fs::create_dir_all(&dir)?;
    let name: String = run_id.chars().map(|c| if c == '/' || c == '\\' || c == '\0' { '_' } else { c }).collect();
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, crate::summary::to_json(summary) + "\n")?;
    Ok(path)
}

/// Strings seen in the records, numbered; looked up by `&str` so that only
/// a new string allocates.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_owned());
        self.ids.insert(s.to_owned(), i);
        i
    }
    fn opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.id(s))
    }
    fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }
    fn opt_name(&self, i: u32) -> Option<String> {
        (i != NONE).then(|| self.name(i).to_owned())
    }
}

const NONE: u32 = u32::MAX;
/// Port of a client node (an address without port).
const CLIENT: i32 = -1;

/// A node: interned address and port (`CLIENT` for a client).
type Ep = (u32, i32);

/// Where the calls of a far-side flow or call are drawn from.
#[derive(Clone, Copy)]
enum Via {
    /// From this gateway front, with this translation.
    Gateway(Ep, u32),
    /// The same calls seen again: counted at the near side only.
    Duplicate,
}

#[derive(Default)]
struct EdgeAgg {
    calls: u64,
    errors: u64,
    latencies: Vec<i64>,
    translations: BTreeSet<u32>,
    links: u64,
}

#[derive(Default)]
struct NodeAgg {
    protocols: BTreeSet<u32>,
    names: BTreeSet<u32>,
    calls_in: u64,
}

#[derive(Default)]
struct ResourceAgg {
    calls: u64,
    errors: u64,
    latencies: Vec<i64>,
    early: u64,
    late: u64,
}

#[derive(Default)]
struct TcpAgg {
    flows: u64,
    retransmits: u64,
    rtts: Vec<i64>,
    resets: u64,
    refused: u64,
    no_synack: u64,
}

/// Error table key: protocol, code, status, exception, resource, server.
type ErrorKey = (u32, Option<i32>, u32, u32, u32, Ep);

#[derive(Default)]
struct Builder {
    s: Interner,
    via_call: HashMap<i64, Via>,
    via_flow: HashMap<i64, Via>,
    /// Far-side client addresses of translating links: the gateway fronts they belong to.
    alias: HashMap<u32, BTreeSet<Ep>>,
    gateways: BTreeSet<Ep>,
    edges: HashMap<(Ep, Ep), EdgeAgg>,
    nodes: HashMap<Ep, NodeAgg>,
    errors: HashMap<ErrorKey, u64>,
    resources: HashMap<(u32, u32), u32>,
    resource_aggs: Vec<ResourceAgg>,
    /// (resource index, start) of every counted call with a resource.
    resource_times: Vec<(u32, i64)>,
    tcp: HashMap<Ep, TcpAgg>,
    points: BTreeSet<u32>,
    summary: CaptureSummary,
    scan: ScanStats,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
}

fn is_error(status: &str) -> bool {
    matches!(status, "client_error" | "server_error" | "timeout")
}

/// Nearest-rank quantile of `v` (reordered).
fn quantile(v: &mut [i64], q: f64) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    let i = (((v.len() - 1) as f64) * q).round() as usize;
    Some(*v.select_nth_unstable(i).1)
}

impl Builder {
    fn ep(&mut self, ip: &str, port: i32) -> Ep {
        (self.s.id(ip), port)
    }

    fn seen(&mut self, ns: i64) {
        self.first_ns = Some(self.first_ns.map_or(ns, |f| f.min(ns)));
        self.last_ns = Some(self.last_ns.map_or(ns, |l| l.max(ns)));
    }

    fn links(&mut self, links: &[NatPathRecord]) {
        for l in links {
            let a = self.ep(&l.a_server_ip, l.a_server_port);
            let b = self.ep(&l.b_server_ip, l.b_server_port);
            let via = if a == b {
                Via::Duplicate
            } else {
                let t = self.s.id(&l.translation);
                self.gateways.insert(a);
                let e = self.edges.entry((a, b)).or_default();
                e.links += 1;
                e.translations.insert(t);
                self.nodes.entry(a).or_default();
                self.nodes.entry(b).or_default();
                if l.translation.contains("snat") || l.translation == "proxy" {
                    let c = self.s.id(&l.b_client_ip);
                    self.alias.entry(c).or_default().insert(a);
                }
                Via::Gateway(a, t)
            };
            if let Some(c) = l.b_call_id {
                self.via_call.insert(c, via);
            }
            // An l7 link's far flow may carry requests of several client
            // connections; l4 links say what the whole flow is.
            if l.link_kind != "l7" || !self.via_flow.contains_key(&l.b_flow_id) {
                self.via_flow.insert(l.b_flow_id, via);
            }
        }
    }

    fn call(&mut self, c: &CallRecord) {
        self.summary.calls += 1;
        let point = self.s.id(&c.capture_point);
        self.points.insert(point);
        let via = self.via_call.get(&c.call_id).or_else(|| self.via_flow.get(&c.flow_id)).copied();
        let (from, translation) = match via {
            Some(Via::Duplicate) => return,
            Some(Via::Gateway(g, t)) => (g, Some(t)),
            None => {
                let ip = self.s.id(&c.client_ip);
                match self.alias.get(&ip) {
                    Some(set) if set.len() == 1 => (*set.first().expect("one"), None),
                    _ => ((ip, CLIENT), None),
                }
            }
        };
        self.seen(c.start_ns);
        let to = self.ep(&c.server_ip, c.server_port);
        let err = is_error(&c.response_status);
        let e = self.edges.entry((from, to)).or_default();
        e.calls += 1;
        e.errors += u64::from(err);
        if let Some(l) = c.latency_ns {
            e.latencies.push(l);
        }
        if let Some(t) = translation {
            e.translations.insert(t);
        }
        let proto = self.s.id(&c.l7_protocol);
        let name = self.s.opt(c.request_domain.as_deref());
        let n = self.nodes.entry(to).or_default();
        n.calls_in += 1;
        n.protocols.insert(proto);
        if name != NONE {
            n.names.insert(name);
        }
        self.nodes.entry(from).or_default();
        let resource = self.s.opt(c.request_resource.as_deref());
        if err {
            let status = self.s.id(&c.response_status);
            let exception = self.s.opt(c.response_exception.as_deref());
            *self.errors.entry((proto, c.response_code, status, exception, resource, to)).or_default() += 1;
        }
        if resource != NONE {
            let next = self.resource_aggs.len() as u32;
            let idx = *self.resources.entry((proto, resource)).or_insert(next);
            if idx == next {
                self.resource_aggs.push(ResourceAgg::default());
            }
            let r = &mut self.resource_aggs[idx as usize];
            r.calls += 1;
            r.errors += u64::from(err);
            if let Some(l) = c.latency_ns {
                r.latencies.push(l);
            }
            self.resource_times.push((idx, c.start_ns));
        }
    }

    fn flow(&mut self, f: &FlowRecord) {
        self.summary.flow_records += 1;
        let fin = f.record_kind == "final";
        self.summary.flows += u64::from(fin);
        let point = self.s.id(&f.capture_point);
        self.points.insert(point);
        if self.summary.calls == 0 {
            self.seen(f.start_ns);
        }
        if f.l4_protocol != "tcp" {
            return;
        }
        let server = self.ep(&f.server_ip, f.server_port);
        let t = self.tcp.entry(server).or_default();
        let retrans = f.client_retransmissions.unwrap_or(0) + f.server_retransmissions.unwrap_or(0);
        t.retransmits += retrans.max(0) as u64;
        if f.start_ns == f.flow_start_ns {
            let rtt = match (f.rtt_client_ns, f.rtt_server_ns) {
                (Some(c), Some(s)) => Some(c + s),
                (c, s) => c.or(s),
            };
            if let Some(r) = rtt {
                t.rtts.push(r);
            }
        }
        if fin {
            t.flows += 1;
            match f.close_type.as_str() {
                "client_rst" | "server_rst" => t.resets += 1,
                "refused" => t.refused += 1,
                "no_synack" => t.no_synack += 1,
                _ => {}
            }
        }
    }

    fn endpoint(&self, ep: Ep) -> String {
        endpoint(self.s.name(ep.0), ep.1)
    }

    fn finish(mut self, title: String) -> Report {
        // Surge split, now that the range is known.
        if let (Some(t0), Some(t1)) = (self.first_ns, self.last_ns) {
            let cut = t0 + (t1 - t0) / 3 * 2;
            if t1 > t0 {
                for &(i, ns) in &self.resource_times {
                    let r = &mut self.resource_aggs[i as usize];
                    if ns >= cut {
                        r.late += 1;
                    } else {
                        r.early += 1;
                    }
                }
            }
        }
        self.summary.first_ns = self.first_ns;
        self.summary.last_ns = self.last_ns;
        self.summary.capture_points = self.points.iter().map(|&p| self.s.name(p).to_owned()).collect();
        self.summary.capture_points.sort();

        // Nodes, kinds and columns.
        let mut out_calls: HashMap<Ep, u64> = HashMap::new();
        let mut callers: HashMap<Ep, Vec<Ep>> = HashMap::new();
        for (&(from, to), e) in &self.edges {
            *out_calls.entry(from).or_default() += e.calls;
            callers.entry(to).or_default().push(from);
        }
        let kind = |ep: &Ep| {
            if ep.1 == CLIENT {
                NodeKind::Client
            } else if self.gateways.contains(ep) || out_calls.contains_key(ep) {
                NodeKind::Gateway
            } else {
                NodeKind::Service
            }
        };
        // Gateways by depth: 1 + the deepest gateway calling them (cycles cut off).
        let gw: Vec<Ep> = self.nodes.keys().filter(|e| kind(e) == NodeKind::Gateway).copied().collect();
        let mut depth: HashMap<Ep, usize> = gw.iter().map(|&g| (g, 1)).collect();
        for _ in 0..gw.len().min(8) {
            let mut changed = false;
            for g in &gw {
                let d = callers.get(g).into_iter().flatten().filter_map(|c| depth.get(c)).max().map_or(1, |d| d + 1);
                let d = d.min(gw.len());
                if depth[g] < d {
                    depth.insert(*g, d);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let last_col = depth.values().max().map_or(1, |d| d + 1);
        let mut nodes: Vec<(Ep, Node)> = self
            .nodes
            .iter()
            .map(|(&ep, n)| {
                let k = kind(&ep);
                let column = match k {
                    NodeKind::Client => 0,
                    NodeKind::Gateway => depth[&ep],
                    NodeKind::Service => last_col,
                };
                let id = if ep.1 == CLIENT { self.s.name(ep.0).to_owned() } else { self.endpoint(ep) };
                let mut protocols: Vec<String> = n.protocols.iter().map(|&p| self.s.name(p).to_owned()).collect();
                protocols.sort();
                let mut names: Vec<String> = n.names.iter().map(|&p| self.s.name(p).to_owned()).collect();
                names.sort();
                let node = Node {
                    id,
                    kind: k,
                    column,
                    protocols,
                    names,
                    calls_in: n.calls_in,
                    calls_out: out_calls.get(&ep).copied().unwrap_or(0),
                };
                (ep, node)
            })
            .collect();
        nodes.sort_by(|a, b| {
            (a.1.column, addr_key(self.s.name(a.0 .0)), a.0 .1, &a.1.id).cmp(&(
                b.1.column,
                addr_key(self.s.name(b.0 .0)),
                b.0 .1,
                &b.1.id,
            ))
        });
        let node_id: HashMap<Ep, String> = nodes.iter().map(|(ep, n)| (*ep, n.id.clone())).collect();
        let order: HashMap<Ep, usize> = nodes.iter().enumerate().map(|(i, (ep, _))| (*ep, i)).collect();
        let mut edges: Vec<((usize, usize), Edge)> = self
            .edges
            .iter_mut()
            .map(|(&(from, to), e)| {
                let edge = Edge {
                    from: node_id[&from].clone(),
                    to: node_id[&to].clone(),
                    calls: e.calls,
                    errors: e.errors,
                    p50_ns: quantile(&mut e.latencies, 0.5),
                    p99_ns: quantile(&mut e.latencies, 0.99),
                    translations: e.translations.iter().map(|&t| self.s.name(t).to_owned()).collect(),
                    links: e.links,
                };
                ((order[&from], order[&to]), edge)
            })
            .collect();
        edges.sort_by_key(|(k, _)| *k);

        // Top errors.
        let mut top_errors: Vec<ErrorRow> = self
            .errors
            .iter()
            .map(|(&(proto, code, status, exc, res, server), &count)| ErrorRow {
                protocol: self.s.name(proto).to_owned(),
                code,
                status: self.s.name(status).to_owned(),
                exception: self.s.opt_name(exc),
                resource: self.s.opt_name(res),
                server: self.endpoint(server),
                count,
            })
            .collect();
        top_errors.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| {
                (&a.server, a.code, &a.resource, &a.protocol, &a.status, &a.exception).cmp(&(
                    &b.server,
                    b.code,
                    &b.resource,
                    &b.protocol,
                    &b.status,
                    &b.exception,
                ))
            })
        });
        top_errors.truncate(TOP_ROWS);

        // Top resources.
        let mut top_resources: Vec<ResourceRow> = self
            .resources
            .iter()
            .map(|(&(proto, res), &i)| {
                let r = &mut self.resource_aggs[i as usize];
                // Rates: late over a third of the range, early over two thirds.
                let ratio = (r.early > 0).then(|| 2.0 * r.late as f64 / r.early as f64);
                let surge = r.late >= SURGE_MIN_CALLS && ratio.is_none_or(|x| x > SURGE_RATIO);
                ResourceRow {
                    protocol: self.s.name(proto).to_owned(),
                    resource: self.s.name(res).to_owned(),
                    calls: r.calls,
                    errors: r.errors,
                    p50_ns: quantile(&mut r.latencies, 0.5),
                    early: r.early,
                    late: r.late,
                    ratio,
                    surge,
                }
            })
            .collect();
        top_resources.sort_by(|a, b| {
            b.calls.cmp(&a.calls).then_with(|| (&a.resource, &a.protocol).cmp(&(&b.resource, &b.protocol)))
        });
        top_resources.truncate(TOP_ROWS);

        // TCP health.
        let mut tcp: Vec<(Ep, TcpRow)> = self
            .tcp
            .iter_mut()
            .map(|(&ep, t)| {
                let row = TcpRow {
                    server: endpoint(self.s.name(ep.0), ep.1),
                    flows: t.flows,
                    retransmits: t.retransmits,
                    rtt_p50_ns: quantile(&mut t.rtts, 0.5),
                    rtt_p90_ns: quantile(&mut t.rtts, 0.9),
                    resets: t.resets,
                    refused: t.refused,
                    no_synack: t.no_synack,
                };
                (ep, row)
            })
            .collect();
        tcp.sort_by(|(ea, a), (eb, b)| {
            let bad = |r: &TcpRow| r.retransmits + r.resets + r.refused + r.no_synack;
            bad(b)
                .cmp(&bad(a))
                .then(b.flows.cmp(&a.flows))
                .then_with(|| (addr_key(self.s.name(ea.0)), ea.1).cmp(&(addr_key(self.s.name(eb.0)), eb.1)))
        });
        tcp.truncate(TCP_ROWS);

        Report {
            title,
            nodes: nodes.into_iter().map(|(_, n)| n).collect(),
            edges: edges.into_iter().map(|(_, e)| e).collect(),
            top_errors,
            top_resources,
            tcp: tcp.into_iter().map(|(_, r)| r).collect(),
            summary: self.summary,
            scan: self.scan,
        }
    }
}

/// Sort key of an address: numeric for IPs (v4 before v6), text otherwise.
fn addr_key(s: &str) -> (u8, u128, &str) {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => (0, u128::from(u32::from(a)), s),
        Ok(IpAddr::V6(a)) => (1, u128::from(a), s),
        Err(_) => (2, 0, s),
    }
}

/// `IP:port`, `[v6]:port`.
#[must_use]
pub fn endpoint(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Reads every run summary under `dirs/runs/`, sorted by run id.
#[must_use]
pub fn read_runs(dirs: &[PathBuf]) -> Vec<RunRow> {
    let mut runs = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(d.join("runs")) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                tracing::warn!("report: {} is not a run summary", p.display());
                continue;
            };
            let u = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            let decode_errors = v
                .get("decode_errors")
                .and_then(serde_json::Value::as_object)
                .map_or(0, |m| m.values().filter_map(serde_json::Value::as_u64).sum());
            runs.push(RunRow {
                run_id: p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                packets: u("packets"),
                bytes: u("bytes"),
                elapsed_s: v.get("elapsed_s").and_then(serde_json::Value::as_f64).unwrap_or(0.0),
                decode_errors,
                dropped: u("capture_dropped"),
                input_errors: v.get("input_errors").and_then(serde_json::Value::as_array).map_or(0, |a| a.len() as u64),
            });
        }
    }
    runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    runs
}

/// Scans the records under `opts.dirs` into a [`Report`].
pub fn build(opts: &ReportOptions) -> anyhow::Result<Report> {
    let started = Instant::now();
    let range = opts.range;
    let mut b = Builder::default();

    let mut links: Vec<NatPathRecord> = Vec::new();
    for f in dataset::files::<NatPathRecord>(&opts.dirs, range) {
        b.scan.files += 1;
        dataset::read_file(&f, &mut links)?;
    }
    links.retain(|l| range.contains(l.a_start_ns));
    links.sort_by_key(|l| (l.a_start_ns, l.path_id, l.b_start_ns));
    b.summary.links = links.len() as u64;
    b.scan.records += links.len() as u64;
    b.links(&links);
    drop(links);

    let mut calls: Vec<CallRecord> = Vec::new();
    for f in dataset::files::<CallRecord>(&opts.dirs, range) {
        b.scan.files += 1;
        calls.clear();
        dataset::read_file(&f, &mut calls)?;
        b.scan.records += calls.len() as u64;
        for c in calls.iter().filter(|c| range.contains(c.start_ns)) {
            b.call(c);
        }
    }
    drop(calls);

    let mut flows: Vec<FlowRecord> = Vec::new();
    for f in dataset::files::<FlowRecord>(&opts.dirs, range) {
        b.scan.files += 1;
        flows.clear();
        dataset::read_file(&f, &mut flows)?;
        b.scan.records += flows.len() as u64;
        for fl in flows.iter().filter(|fl| range.contains(fl.start_ns)) {
            b.flow(fl);
        }
    }
    drop(flows);

    b.summary.runs = read_runs(&opts.dirs);
    b.scan.elapsed_s = started.elapsed().as_secs_f64();
    let title = opts.title.clone().unwrap_or_else(|| {
        let dirs: Vec<String> = opts.dirs.iter().map(|d| d.display().to_string()).collect();
        format!("flowtrail report: {}", dirs.join(", "))
    });
    let mut report = b.finish(title);
    report.scan.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Formats nanoseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
#[must_use]
pub fn format_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let ms = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03} UTC", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// A duration in ns as `1.23 ms` (`-` for none).
#[must_use]
pub fn format_ms(ns: Option<i64>) -> String {
    match ns {
        None => "-".into(),
        Some(v) if v.abs() >= 1_000_000_000 => format!("{:.2} s", v as f64 / 1e9),
        Some(v) if v.abs() < 1_000_000 => format!("{:.1} µs", v as f64 / 1e3),
        Some(v) => format!("{:.2} ms", v as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_quantiles() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(format_time(1_795_000_000_123_000_000), "2026-11-18 11:06:40.123 UTC");
        let mut v = vec![5, 1, 4, 2, 3];
        assert_eq!(quantile(&mut v, 0.5), Some(3));
        assert_eq!(quantile(&mut v, 0.99), Some(5));
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(endpoint("::1", 80), "[::1]:80");
        assert_eq!(
            (format_ms(Some(500)), format_ms(Some(1_500_000)), format_ms(None)),
            ("0.5 µs".into(), "1.50 ms".into(), "-".into())
        );
    }
}
