//! The analyst commands: `flowtrail calls`, `top` and `diagnose` (issue
//! #8), answering the four stories (a 404 on the front end, an
//! intermittent 503, a surge after a release, a third-party timeout) from
//! the records of one or more output directories.
//!
//! Each command is one typed scan over the records (`dataset::read_file`,
//! one file at a time, partitions outside `--since/--until` never opened):
//! single pass, the aggregation keys interned so that a row whose key was
//! already seen allocates nothing. Why not DataFusion, as the issue
//! suggests: a clean build of DataFusion on the 2-core CI machine adds well
//! over 10 minutes to every CI run (the suite must stay under ~25 min), and
//! these questions are a filter and a group-by each; the same stories as
//! SQL for a lake (DuckDB, Spark) are in `queries/story_*.sql`.
//!
//! Every command shares [`Filters`] (`--since/--until`, `--protocol`,
//! `--server`, `--client`, `--point`) and [`Format`] (`--format
//! table|json|csv`; json is one object per line with the records' column
//! names). Times are RFC 3339 (`2026-11-25T10:00:00Z`,
//! `2026-11-25T10:00:00.5+01:00`) or integer Unix nanoseconds.

pub mod calls;
pub mod diagnose;
pub mod output;
pub mod top;

use std::io::Write;
use std::path::PathBuf;

use crate::dataset::{self, TimeRange};
use crate::records::{CallRecord, Record};

pub use calls::{CallsArgs, CallsQuery};
pub use diagnose::{DiagnoseArgs, DiagnoseQuery, Diagnosis};
pub use output::{Format, Rows, Value};
pub use top::{TopArgs, TopQuery};

const SEC_NS: i64 = 1_000_000_000;

/// `IP` or `IP:PORT` (`[v6]:PORT` for IPv6 with a port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: String,
    pub port: Option<i32>,
}

impl Endpoint {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
            return Ok(Endpoint { ip: sa.ip().to_string(), port: Some(i32::from(sa.port())) });
        }
        let bare = s.trim_matches(['[', ']']);
        match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(Endpoint { ip: ip.to_string(), port: None }),
            Err(_) => anyhow::bail!("not IP or IP:PORT: {s:?}"),
        }
    }

    #[must_use]
    pub fn matches(&self, ip: &str, port: i32) -> bool {
        self.ip == ip && self.port.is_none_or(|p| p == port)
    }
}

/// The filters every command takes.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// `--since/--until`: records starting in `[since, until)`.
    pub range: TimeRange,
    /// `--protocol`: the L7 (`http`, `dns`…) or L4 (`tcp`, `udp`) protocol.
    pub protocol: Option<String>,
    pub server: Option<Endpoint>,
    pub client: Option<Endpoint>,
    /// `--point`: the capture point, or its prefix before `/interface`.
    pub point: Option<String>,
}

fn point_matches(want: &str, point: &str) -> bool {
    point == want || point.strip_prefix(want).is_some_and(|rest| rest.starts_with('/'))
}

impl Filters {
    #[must_use]
    pub fn call(&self, c: &CallRecord) -> bool {
        self.range.contains(c.start_ns)
            && self
                .protocol
                .as_ref()
                .is_none_or(|p| c.l7_protocol.eq_ignore_ascii_case(p) || c.l4_protocol.eq_ignore_ascii_case(p))
            && self.server.as_ref().is_none_or(|e| e.matches(&c.server_ip, c.server_port))
            && self.client.as_ref().is_none_or(|e| e.matches(&c.client_ip, c.client_port))
            && self.point.as_ref().is_none_or(|p| point_matches(p, &c.capture_point))
    }
}

/// The common command-line flags, flattened into each command's.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Output directories of flowtrail runs.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output: an aligned table, JSON (one object per line) or CSV.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Records starting at or after TIME (RFC 3339 or Unix nanoseconds).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<i64>,
    /// Records starting before TIME.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<i64>,
    /// L7 (`http`, `dns`, `tls`…) or L4 (`tcp`, `udp`) protocol.
    #[arg(long)]
    pub protocol: Option<String>,
    /// Client IP or IP:PORT.
    #[arg(long, value_parser = Endpoint::parse)]
    pub client: Option<Endpoint>,
    /// Capture point (its name, or the name before `/interface`).
    #[arg(long)]
    pub point: Option<String>,
}

impl CommonArgs {
    #[must_use]
    pub fn filters(&self, server: Option<Endpoint>) -> Filters {
        Filters {
            range: TimeRange { since: self.since.unwrap_or(i64::MIN), until: self.until.unwrap_or(i64::MAX) },
            protocol: self.protocol.clone(),
            server,
            client: self.client.clone(),
            point: self.point.clone(),
        }
    }
}

/// Calls every record of kind `R` in the partitions overlapping `range`,
/// one file at a time (a day of records is never held at once).
pub fn scan<R: Record>(dirs: &[PathBuf], range: TimeRange, mut f: impl FnMut(&R)) -> anyhow::Result<u64> {
    let mut buf: Vec<R> = Vec::new();
    let mut n = 0u64;
    for file in dataset::files::<R>(dirs, range) {
        buf.clear();
        dataset::read_file(&file, &mut buf)?;
        n += buf.len() as u64;
        buf.iter().for_each(&mut f);
    }
    Ok(n)
}

/// Parses a time: RFC 3339 (`2026-11-25T10:00:00Z`, fraction and offset
/// optional parts) or integer Unix nanoseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ns) = s.parse::<i64>() {
        return Ok(ns);
    }
    let err = || format!("not an RFC 3339 time or Unix nanoseconds: {s:?}");
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok()).ok_or_else(err);
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(err());
    }
    let mut rest = &s[19..];
    let mut frac_ns = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        for (i, c) in r[..digits].bytes().take(9).enumerate() {
            frac_ns += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
        }
        rest = &r[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let part = |r: std::ops::Range<usize>| rest.get(r).and_then(|x| x.parse::<i64>().ok()).ok_or_else(err);
            let v = part(1..3)? * 3600 + part(4..6)? * 60;
            if rest.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return Err(err()),
    };
    let days = days_from_civil(y, mo, d);
    Ok((days * 86_400 + h * 3600 + mi * 60 + sec - offset_s) * SEC_NS + frac_ns)
}

/// `SINCE..UNTIL`, each a time for [`parse_time`].
pub fn parse_range(s: &str) -> Result<TimeRange, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("a range is SINCE..UNTIL, got {s:?}"))?;
    let r = TimeRange { since: parse_time(a)?, until: parse_time(b)? };
    if r.until <= r.since {
        return Err(format!("empty range {s:?}"));
    }
    Ok(r)
}

// Howard Hinnant's days_from_civil.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 in UTC with microseconds: `2026-11-25T10:00:00.123456Z`.
#[must_use]
pub fn format_time(ns: i64) -> String {
    let (date, hour) = crate::sink::parquet::date_hour(ns);
    let secs = ns.div_euclid(SEC_NS);
    let sub = ns.rem_euclid(SEC_NS);
    let (m, s) = ((secs.rem_euclid(3600)) / 60, secs.rem_euclid(60));
    format!("{date}T{hour:02}:{m:02}:{s:02}.{:06}Z", sub / 1000)
}

/// The `p`-th percentile by nearest rank (`percentile_disc(p/100)` in SQL)
/// of sorted values.
#[must_use]
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// Parses `300s`, `5m`, `250ms`, `1h`, or plain seconds, into nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let scale = match unit {
        "" | "s" => 1e9,
        "ms" => 1e6,
        "us" => 1e3,
        "ns" => 1.0,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        _ => return Err(format!("unknown unit in {s:?} (use ns, us, ms, s, m, h, d)")),
    };
    let ns = v * scale;
    if !(1.0..9.0e18).contains(&ns) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(ns as i64)
}

/// What calls are grouped by (`--by`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// `request_resource`.
    Resource,
    /// `request_domain`.
    Domain,
    /// `server_ip:server_port`.
    Server,
    /// `client_ip` (client ports are ephemeral).
    Client,
    UserAgent,
    /// `capture_point`.
    Point,
    /// `l7_protocol`.
    Protocol,
    /// `response_status`.
    Status,
    /// `response_code`.
    Code,
    /// A call attribute: `attr.http.header.x-sdk-version`.
    Attr(String),
}

impl std::str::FromStr for Key {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "resource" => Key::Resource,
            "domain" => Key::Domain,
            "server" => Key::Server,
            "client" => Key::Client,
            "user_agent" => Key::UserAgent,
            "point" => Key::Point,
            "protocol" => Key::Protocol,
            "status" => Key::Status,
            "code" => Key::Code,
            _ => match s.strip_prefix("attr.") {
                Some(name) if !name.is_empty() => Key::Attr(name.to_string()),
                _ => {
                    return Err(format!(
                        "--by wants resource, domain, server, client, user_agent, point, protocol, status, \
                         code or attr.NAME, got {s:?}"
                    ))
                }
            },
        })
    }
}

impl Key {
    /// The output column holding the key.
    #[must_use]
    pub fn column(&self) -> String {
        match self {
            Key::Resource => "request_resource".into(),
            Key::Domain => "request_domain".into(),
            Key::Server => "server".into(),
            Key::Client => "client_ip".into(),
            Key::UserAgent => "user_agent".into(),
            Key::Point => "capture_point".into(),
            Key::Protocol => "l7_protocol".into(),
            Key::Status => "response_status".into(),
            Key::Code => "response_code".into(),
            Key::Attr(n) => format!("attr.{n}"),
        }
    }

    /// Writes the call's key into `buf` (cleared first); false when the
    /// call has none (a null column, a missing attribute).
    pub fn write(&self, c: &CallRecord, buf: &mut String) -> bool {
        use std::fmt::Write as _;
        buf.clear();
        let s = match self {
            Key::Resource => c.request_resource.as_deref(),
            Key::Domain => c.request_domain.as_deref(),
            Key::UserAgent => c.user_agent.as_deref(),
            Key::Client => Some(c.client_ip.as_str()),
            Key::Point => Some(c.capture_point.as_str()),
            Key::Protocol => Some(c.l7_protocol.as_str()),
            Key::Status => Some(c.response_status.as_str()),
            Key::Attr(n) => c.attributes.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()),
            Key::Server => {
                let _ = if c.server_ip.contains(':') {
                    write!(buf, "[{}]:{}", c.server_ip, c.server_port)
                } else {
                    write!(buf, "{}:{}", c.server_ip, c.server_port)
                };
                return true;
            }
            Key::Code => {
                let Some(code) = c.response_code else { return false };
                let _ = write!(buf, "{code}");
                return true;
            }
        };
        match s {
            Some(s) => {
                buf.push_str(s);
                true
            }
            None => false,
        }
    }
}

/// Keys interned to small ids: a row whose key was seen allocates nothing.
#[derive(Default)]
pub struct Interner {
    ids: std::collections::HashMap<String, u32, foldhash::fast::RandomState>,
    pub names: Vec<String>,
}

impl Interner {
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }
}

/// Writes `rows` in `format` to `out`.
pub fn print(rows: &Rows, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    output::write(rows, format, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_format() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2026-11-25T10:00:00Z"), Ok(1_795_600_800 * SEC_NS));
        assert_eq!(parse_time("2026-11-25T11:00:00.5+01:00"), Ok(1_795_600_800 * SEC_NS + 500_000_000));
        assert_eq!(parse_time("1795600800000000000"), Ok(1_795_600_800 * SEC_NS));
        assert!(parse_time("2026-11-25").is_err());
        assert_eq!(format_time(1_795_600_800 * SEC_NS + 1_234_567), "2026-11-25T10:00:00.001234Z");
        let r = parse_range("2026-11-25T10:00:00Z..2026-11-25T10:05:00Z").unwrap();
        assert_eq!(r.until - r.since, 300 * SEC_NS);
        assert!(parse_range("2026-11-25T10:05:00Z..2026-11-25T10:00:00Z").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 10), Some(1));
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn endpoints() {
        assert_eq!(Endpoint::parse("10.0.0.1:80").unwrap(), Endpoint { ip: "10.0.0.1".into(), port: Some(80) });
        assert_eq!(Endpoint::parse("[fd00::1]").unwrap(), Endpoint { ip: "fd00::1".into(), port: None });
        assert!(Endpoint::parse("host:80").is_err());
        assert!(point_matches("a", "a/eth0") && point_matches("a", "a") && !point_matches("a", "ab"));
    }
}
