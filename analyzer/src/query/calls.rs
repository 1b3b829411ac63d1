//! `flowtrail calls`: the calls matching a status, a resource, a domain
//! (and the common filters), newest first, each with its NAT path chain
//! when there is one and, with `--with-dns`, the DNS answers seen for its
//! domain shortly before it; or, with `--by`/`--window`, counts per key
//! and time window with the share that matched `--status`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use super::{scan, CommonArgs, Endpoint, Filters, Interner, Key, Rows, Value};
use crate::dataset::{self, TimeRange};
use crate::nat::path::{chains, Chain};
use crate::records::{CallRecord, NatPathRecord};

const HOUR_NS: i64 = 3_600_000_000_000;

/// `--status`: a response code (`404`, a DNS rcode) or a `response_status`
/// class (`ok`, `client_error`, `server_error`, `timeout`, `unparsed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Code(i32),
    Class(String),
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(c) = s.parse() {
            return Ok(Status::Code(c));
        }
        match s {
            "ok" | "client_error" | "server_error" | "timeout" | "unparsed" => Ok(Status::Class(s.into())),
            _ => Err(format!("--status wants a code or ok, client_error, server_error, timeout, unparsed: {s:?}")),
        }
    }
}

impl Status {
    #[must_use]
    pub fn matches(&self, c: &CallRecord) -> bool {
        match self {
            Status::Code(code) => c.response_code == Some(*code),
            Status::Class(class) => c.response_status == *class,
        }
    }
}

/// What `calls` selects and how it answers.
#[derive(Debug, Clone)]
pub struct CallsQuery {
    pub filters: Filters,
    pub status: Option<Status>,
    /// Substring of `request_resource`.
    pub resource: Option<String>,
    /// Substring of `request_domain`.
    pub domain: Option<String>,
    /// Add the DNS answers seen for each call's domain.
    pub with_dns: bool,
    /// How long before a call a DNS answer still counts for it.
    pub dns_window_ns: i64,
    /// Aggregate per key (with `window_ns`, per key and window).
    pub by: Option<Key>,
    pub window_ns: Option<i64>,
    /// Print at most this many calls (the newest).
    pub limit: Option<usize>,
}

impl Default for CallsQuery {
    fn default() -> Self {
        CallsQuery {
            filters: Filters::default(),
            status: None,
            resource: None,
            domain: None,
            with_dns: false,
            dns_window_ns: 300_000_000_000,
            by: None,
            window_ns: None,
            limit: None,
        }
    }
}

impl CallsQuery {
    /// The filters other than `--status`: the population an error rate is
    /// taken over.
    fn population(&self, c: &CallRecord) -> bool {
        self.filters.call(c)
            && self
                .resource
                .as_ref()
                .is_none_or(|r| c.request_resource.as_deref().is_some_and(|x| x.contains(r.as_str())))
            && self.domain.as_ref().is_none_or(|d| c.request_domain.as_deref().is_some_and(|x| x.contains(d.as_str())))
    }
}

/// `flowtrail calls`.
#[derive(clap::Args, Debug, Clone)]
pub struct CallsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// A response code (404, a DNS rcode) or a class: ok, client_error, server_error, timeout, unparsed.
    #[arg(long)]
    pub status: Option<Status>,
    /// Calls whose request_resource contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub resource: Option<String>,
    /// Calls whose request_domain (HTTP Host, DNS name, TLS SNI) contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub domain: Option<String>,
    /// Server IP or IP:PORT.
    #[arg(long, value_parser = Endpoint::parse)]
    pub server: Option<Endpoint>,
    /// Add the DNS answers seen for each call's domain (DNS calls for the name within --dns-window before it).
    #[arg(long)]
    pub with_dns: bool,
    /// How long before a call a DNS answer counts for it.
    #[arg(long, default_value = "5m", value_parser = super::parse_duration_ns)]
    pub dns_window: i64,
    /// Count per key instead of listing: resource, domain, server, client, user_agent, point, protocol, status, code, attr.NAME.
    #[arg(long)]
    pub by: Option<Key>,
    /// Count per time window of this length (e.g. 1m), aligned to the epoch.
    #[arg(long, value_parser = super::parse_duration_ns)]
    pub window: Option<i64>,
    /// At most this many calls, the newest.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl CallsArgs {
    #[must_use]
    pub fn query(&self) -> CallsQuery {
        CallsQuery {
            filters: self.common.filters(self.server.clone()),
            status: self.status.clone(),
            resource: self.resource.clone(),
            domain: self.domain.clone(),
            with_dns: self.with_dns,
            dns_window_ns: self.dns_window,
            by: self.by.clone(),
            window_ns: self.window,
            limit: self.limit,
        }
    }
}

/// Runs `flowtrail calls`.
pub fn run(args: &CallsArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let rows = calls(&args.common.dirs, &args.query())?;
    super::print(&rows, args.common.format, out)
}

/// The answer to `q` over `dirs`.
pub fn calls(dirs: &[PathBuf], q: &CallsQuery) -> anyhow::Result<Rows> {
    if q.by.is_some() || q.window_ns.is_some() {
        aggregate(dirs, q)
    } else {
        list(dirs, q)
    }
}

/// A call as `list` found it, with what was joined to it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub call: CallRecord,
    pub path: Option<PathSummary>,
    /// Distinct answers, in the order seen (`--with-dns`).
    pub dns_answers: Vec<String>,
}

/// The NAT path chain of a call, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct PathSummary {
    pub path_id: i64,
    /// The innermost server: the hop that answered (the last link with a
    /// response code), else the last link's server, as `IP:PORT`.
    pub server: String,
    /// The chain as one line: `point client->server =translation=> point client->server code …`.
    pub text: String,
}

fn endpoint(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn summarise(c: &Chain) -> PathSummary {
    // An l7 chain reads as the request's hops; its l4 links (the
    // connections it used) are in `flowtrail path`.
    let l7: Vec<&NatPathRecord> = c.links.iter().filter(|l| l.link_kind == "l7").collect();
    let links: Vec<&NatPathRecord> = if l7.is_empty() { c.links.iter().collect() } else { l7 };
    let mut text = String::new();
    let mut prev: Option<(&str, String, String)> = None;
    for l in &links {
        let a = (
            l.a_capture_point.as_str(),
            endpoint(&l.a_client_ip, l.a_client_port),
            endpoint(&l.a_server_ip, l.a_server_port),
        );
        if prev.as_ref() != Some(&a) {
            if !text.is_empty() {
                text.push_str(" ; ");
            }
            text.push_str(&format!("{} {}->{}", a.0, a.1, a.2));
            if let Some(code) = l.a_response_code {
                text.push_str(&format!(" {code}"));
            }
        }
        let b = (
            l.b_capture_point.as_str(),
            endpoint(&l.b_client_ip, l.b_client_port),
            endpoint(&l.b_server_ip, l.b_server_port),
        );
        text.push_str(&format!(" ={}=> {} {}->{}", l.translation, b.0, b.1, b.2));
        if let Some(code) = l.b_response_code {
            text.push_str(&format!(" {code}"));
        }
        prev = Some(b);
    }
    let last = links.iter().rev().find(|l| l.b_response_code.is_some()).or(links.last()).expect("a chain has links");
    PathSummary { path_id: last.path_id, server: endpoint(&last.b_server_ip, last.b_server_port), text }
}

/// A DNS answer kept for `--with-dns`.
struct DnsSeen {
    name: String,
    start_ns: i64,
    answers: String,
}

/// A domain as DNS names it: no port, no trailing dot, lower case; `None`
/// for an address literal.
fn dns_name(domain: &str) -> Option<String> {
    let host = if domain.starts_with('[') {
        return None;
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
            _ => domain,
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty() && host.parse::<std::net::IpAddr>().is_err()).then_some(host)
}

/// The matching calls, newest first, with their NAT chains and DNS answers.
pub fn select(dirs: &[PathBuf], q: &CallsQuery) -> anyhow::Result<Vec<Hit>> {
    let mut range = q.filters.range;
    if q.with_dns {
        range.since = range.since.saturating_sub(q.dns_window_ns);
    }
    let mut found: Vec<CallRecord> = Vec::new();
    let mut dns: Vec<DnsSeen> = Vec::new();
    scan::<CallRecord>(dirs, range, |c| {
        if q.population(c) && q.status.as_ref().is_none_or(|s| s.matches(c)) {
            found.push(c.clone());
        }
        if q.with_dns && c.l7_protocol == "dns" {
            if let (Some(name), Some((_, answers))) =
                (c.request_resource.as_deref(), c.attributes.iter().find(|(k, _)| k == "dns.answers"))
            {
                if let Some(name) = dns_name(name) {
                    dns.push(DnsSeen { name, start_ns: c.start_ns, answers: answers.clone() });
                }
            }
        }
    })?;
    found.sort_by(|a, b| b.start_ns.cmp(&a.start_ns).then(a.call_id.cmp(&b.call_id)));
    if let Some(n) = q.limit {
        found.truncate(n);
    }
    let paths = nat_chains(dirs, &found)?;
    Ok(found
        .into_iter()
        .map(|call| {
            let path = paths
                .by_call
                .get(&call.call_id)
                .or_else(|| paths.by_flow.get(&call.flow_id))
                .map(|&i| paths.summaries[i].clone());
            let dns_answers = if q.with_dns { answers_for(&call, &dns, q.dns_window_ns) } else { Vec::new() };
            Hit { call, path, dns_answers }
        })
        .collect())
}

/// The distinct answers of DNS calls for `call`'s domain that started
/// within `window_ns` before it (or during it).
fn answers_for(call: &CallRecord, dns: &[DnsSeen], window_ns: i64) -> Vec<String> {
    let Some(name) = call.request_domain.as_deref().and_then(dns_name) else { return Vec::new() };
    if call.l7_protocol == "dns" {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let mut seen: Vec<&DnsSeen> = dns
        .iter()
        .filter(|d| {
            d.name == name && d.start_ns <= call.end_ns && d.start_ns >= call.start_ns.saturating_sub(window_ns)
        })
        .collect();
    seen.sort_by_key(|d| d.start_ns);
    for d in seen {
        for a in d.answers.split(',') {
            if !a.is_empty() && !out.iter().any(|x| x == a) {
                out.push(a.to_string());
            }
        }
    }
    out
}

struct Paths {
    summaries: Vec<PathSummary>,
    by_call: HashMap<i64, usize>,
    by_flow: HashMap<i64, usize>,
}

/// The NAT chains touching `calls` (by call id for request links, by flow
/// id for connection links).
fn nat_chains(dirs: &[PathBuf], calls: &[CallRecord]) -> anyhow::Result<Paths> {
    let mut p = Paths { summaries: Vec::new(), by_call: HashMap::new(), by_flow: HashMap::new() };
    let (Some(lo), Some(hi)) = (calls.iter().map(|c| c.start_ns).min(), calls.iter().map(|c| c.end_ns).max()) else {
        return Ok(p);
    };
    // A link is filed under its `a` side's time: an hour either way covers
    // any matching window.
    let range = TimeRange { since: lo.saturating_sub(HOUR_NS), until: hi.saturating_add(HOUR_NS) };
    let call_ids: std::collections::HashSet<i64> = calls.iter().map(|c| c.call_id).collect();
    let flow_ids: std::collections::HashSet<i64> = calls.iter().map(|c| c.flow_id).collect();
    let links: Vec<NatPathRecord> = dataset::read(dirs, range)?;
    for c in chains(links) {
        let idx = p.summaries.len();
        let mut used = false;
        for l in &c.links {
            for id in [l.a_call_id, l.b_call_id].into_iter().flatten() {
                if call_ids.contains(&id) {
                    p.by_call.entry(id).or_insert(idx);
                    used = true;
                }
            }
            if l.link_kind == "l4" {
                for f in [l.a_flow_id, l.b_flow_id] {
                    if flow_ids.contains(&f) {
                        p.by_flow.entry(f).or_insert(idx);
                        used = true;
                    }
                }
            }
        }
        if used {
            p.summaries.push(summarise(&c));
        }
    }
    Ok(p)
}

fn list(dirs: &[PathBuf], q: &CallsQuery) -> anyhow::Result<Rows> {
    let hits = select(dirs, q)?;
    let mut cols = vec![
        "start_ns",
        "capture_point",
        "client_ip",
        "client_port",
        "server_ip",
        "server_port",
        "l7_protocol",
        "request_type",
        "request_domain",
        "request_resource",
        "response_code",
        "response_status",
        "latency_ns",
        "first_byte_ns",
        "flow_id",
        "call_id",
        "path_id",
        "path_server",
        "nat_path",
    ];
    if q.with_dns {
        cols.push("dns_answers");
    }
    let mut rows = Rows::new(&cols);
    for h in hits {
        let c = &h.call;
        let mut r = vec![
            Value::Time(c.start_ns),
            Value::Str(c.capture_point.clone()),
            Value::Str(c.client_ip.clone()),
            Value::Int(i64::from(c.client_port)),
            Value::Str(c.server_ip.clone()),
            Value::Int(i64::from(c.server_port)),
            Value::Str(c.l7_protocol.clone()),
            Value::opt_str(c.request_type.as_deref()),
            Value::opt_str(c.request_domain.as_deref()),
            Value::opt_str(c.request_resource.as_deref()),
            Value::opt_int(c.response_code.map(i64::from)),
            Value::Str(c.response_status.clone()),
            Value::opt_dur(c.latency_ns),
            Value::opt_dur(c.first_byte_ns),
            Value::Int(c.flow_id),
            Value::Int(c.call_id),
            Value::opt_int(h.path.as_ref().map(|p| p.path_id)),
            Value::opt_str(h.path.as_ref().map(|p| p.server.as_str())),
            Value::opt_str(h.path.as_ref().map(|p| p.text.as_str())),
        ];
        if q.with_dns {
            r.push(if h.dns_answers.is_empty() { Value::Null } else { Value::Str(h.dns_answers.join(",")) });
        }
        rows.rows.push(r);
    }
    Ok(rows)
}

/// Counts per (window, key): all calls passing the filters, and those
/// matching `--status`; groups without a match are left out when a status
/// is given.
fn aggregate(dirs: &[PathBuf], q: &CallsQuery) -> anyhow::Result<Rows> {
    let mut keys = Interner::default();
    let mut counts: HashMap<(i64, u32), (i64, i64), foldhash::fast::RandomState> = HashMap::default();
    let mut buf = String::new();
    scan::<CallRecord>(dirs, q.filters.range, |c| {
        if !q.population(c) {
            return;
        }
        let id = match &q.by {
            Some(k) => {
                if !k.write(c, &mut buf) {
                    return;
                }
                keys.id(&buf)
            }
            None => 0,
        };
        let w = q.window_ns.map_or(0, |w| c.start_ns - c.start_ns.rem_euclid(w));
        let e = counts.entry((w, id)).or_default();
        e.0 += 1;
        e.1 += i64::from(q.status.as_ref().is_none_or(|s| s.matches(c)));
    })?;
    let mut groups: Vec<((i64, u32), (i64, i64))> = counts.into_iter().filter(|(_, (_, m))| *m > 0).collect();
    let name = |id: u32| keys.names.get(id as usize).map_or("", String::as_str);
    groups.sort_by(|((wa, ka), (_, ma)), ((wb, kb), (_, mb))| {
        wa.cmp(wb).then(mb.cmp(ma)).then_with(|| name(*ka).cmp(name(*kb)))
    });
    let mut cols: Vec<String> = Vec::new();
    if q.window_ns.is_some() {
        cols.push("window_start_ns".into());
    }
    if let Some(k) = &q.by {
        cols.push(k.column());
    }
    cols.extend(["calls", "matched", "rate"].map(String::from));
    let mut rows = Rows { columns: cols, ..Rows::default() };
    for ((w, id), (n, m)) in groups {
        let mut r = Vec::new();
        if q.window_ns.is_some() {
            r.push(Value::Time(w));
        }
        if q.by.is_some() {
            r.push(Value::Str(name(id).to_string()));
        }
        r.extend([Value::Int(n), Value::Int(m), Value::Float(m as f64 / n as f64)]);
        rows.rows.push(r);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::ParquetSink;

    fn call(id: i64, t: i64, l7: &str, domain: &str, resource: &str) -> CallRecord {
        CallRecord {
            flow_id: id,
            call_id: id,
            start_ns: t,
            end_ns: t + 1_000_000,
            capture_point: "p".into(),
            client_ip: "10.0.0.1".into(),
            client_port: 40000,
            server_ip: "10.0.0.2".into(),
            server_port: if l7 == "dns" { 53 } else { 80 },
            l4_protocol: "tcp".into(),
            l7_protocol: l7.into(),
            request_domain: Some(domain.into()),
            request_resource: Some(resource.into()),
            response_status: "ok".into(),
            ..CallRecord::default()
        }
    }

    /// No bundled capture holds DNS and HTTP for the same name, so the
    /// `--with-dns` join is checked on records written through the sink.
    #[test]
    fn with_dns_joins_answers_for_the_domain_in_the_window() {
        let dir = std::env::temp_dir().join(format!("ft-query-dns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let t0 = 1_795_600_800_000_000_000;
        let s = 1_000_000_000;
        let dns = |id, t, name: &str, answers: &str| {
            let mut c = call(id, t, "dns", name, name);
            c.attributes = vec![("dns.answers".into(), answers.into())];
            c
        };
        let mut http = call(10, t0 + 60 * s, "http", "API.example.test:8080", "/api/v2/x");
        http.response_code = Some(404);
        let records = vec![
            dns(1, t0 - 400 * s, "api.example.test", "10.9.9.9"), // too early (window 300 s)
            dns(2, t0, "api.example.test.", "10.1.1.1,10.1.1.2"), // in the window
            dns(3, t0 + 30 * s, "api.example.test", "10.1.1.2,10.1.1.3"),
            dns(4, t0 + 30 * s, "other.test", "10.7.7.7"), // another name
            dns(5, t0 + 90 * s, "api.example.test", "10.8.8.8"), // after the call
            http,
        ];
        let mut sink = ParquetSink::<CallRecord>::new(&dir, "t");
        sink.write(records).unwrap();
        sink.close().unwrap();
        let q = CallsQuery { status: Some(Status::Code(404)), with_dns: true, ..CallsQuery::default() };
        let hits = select(std::slice::from_ref(&dir), &q).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].call.call_id, 10);
        assert_eq!(hits[0].dns_answers, ["10.1.1.1", "10.1.1.2", "10.1.1.3"]);
        // --since after the DNS answers still sees them (the scan reaches back a window).
        let q = CallsQuery {
            filters: Filters { range: TimeRange { since: t0 + 59 * s, until: i64::MAX }, ..Filters::default() },
            ..q
        };
        let rows = calls(std::slice::from_ref(&dir), &q).unwrap();
        assert_eq!(rows.rows.len(), 1);
        assert_eq!(rows.rows[0][rows.col("dns_answers")], Value::Str("10.1.1.1,10.1.1.2,10.1.1.3".into()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dns_names() {
        assert_eq!(dns_name("Api.Example.test:8080").as_deref(), Some("api.example.test"));
        assert_eq!(dns_name("www.test.").as_deref(), Some("www.test"));
        assert_eq!(dns_name("10.0.0.1:80"), None);
        assert_eq!(dns_name("[fd00::1]:80"), None);
        assert_eq!(dns_name("fd00::1"), None);
    }
}
