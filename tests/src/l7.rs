//! tshark's view of HTTP, DNS and TLS, and flowtrail's calls in the same
//! shape, so the two can be compared as multisets.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::Table;

/// One comparable fact about a call: protocol and a few fields joined.
pub type Fact = String;

/// Counts of facts (a multiset).
pub type Facts = BTreeMap<Fact, u64>;

fn add(m: &mut Facts, f: Fact) {
    *m.entry(f).or_insert(0) += 1;
}

pub fn tshark_fields(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-2", "-r"]).arg(pcap).args([
        "-Y",
        filter,
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "aggregator=|",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

/// HTTP/1 requests as tshark pairs them: `http method host uri -> code`
/// (`-` when tshark found no response). Several requests in one frame are
/// joined with `|` by tshark and split here.
#[must_use]
pub fn tshark_http(pcap: &Path) -> Facts {
    let rows = tshark_fields(
        pcap,
        "http.request or http.response",
        &[
            "frame.number",
            "http.request.method",
            "http.host",
            "http.request.uri",
            "http.response.code",
            "http.response_in",
        ],
    );
    let mut code_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &rows {
        if !r[4].is_empty() {
            code_of.insert(r[0].clone(), r[4].split('|').map(str::to_string).collect());
        }
    }
    let mut m = Facts::new();
    for r in &rows {
        if r[1].is_empty() {
            continue;
        }
        let methods: Vec<&str> = r[1].split('|').collect();
        let hosts: Vec<&str> = r[2].split('|').collect();
        let uris: Vec<&str> = r[3].split('|').collect();
        let resp: Vec<&str> = r[5].split('|').collect();
        for (i, method) in methods.iter().enumerate() {
            let code = resp
                .get(i)
                .and_then(|f| code_of.get(*f))
                .and_then(|codes| codes.first().cloned())
                .unwrap_or_else(|| "-".into());
            let host = hosts.get(i).copied().unwrap_or("").to_ascii_lowercase();
            add(&mut m, format!("http {method} {host} {} -> {code}", uris.get(i).copied().unwrap_or("")));
        }
    }
    m
}

/// DNS responses as tshark reads them: `dns qname qtype -> rcode`, plus
/// queries without response as `-> -`.
#[must_use]
pub fn tshark_dns(pcap: &Path) -> Facts {
    let rows = tshark_fields(
        pcap,
        "dns and not mdns and not llmnr",
        &["dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.flags.rcode", "dns.response_in"],
    );
    let mut m = Facts::new();
    for r in &rows {
        let names: Vec<&str> = r[1].split('|').collect();
        let types: Vec<&str> = r[2].split('|').collect();
        let responses: Vec<&str> = r[0].split('|').collect();
        let rcodes: Vec<&str> = r[3].split('|').collect();
        for (i, resp) in responses.iter().enumerate() {
            let name = names.get(i).copied().unwrap_or("").to_ascii_lowercase();
            let qtype = types.get(i).copied().unwrap_or("");
            if *resp == "1" || *resp == "True" {
                add(&mut m, format!("dns {name} {qtype} -> {}", rcodes.get(i).copied().unwrap_or("")));
            } else if r[4].is_empty() {
                add(&mut m, format!("dns {name} {qtype} -> -"));
            }
        }
    }
    m
}

/// TLS handshakes as tshark reads them: `tls sni ja3` per ClientHello.
#[must_use]
pub fn tshark_tls(pcap: &Path) -> Facts {
    let rows = tshark_fields(
        pcap,
        "tls.handshake.type == 1",
        &["tls.handshake.extensions_server_name", "tls.handshake.ja3", "tcp.stream"],
    );
    let mut m = Facts::new();
    // One call per handshake: the second ClientHello that answers a TLS 1.3
    // HelloRetryRequest on the same connection belongs to the first's call.
    let mut streams = std::collections::BTreeSet::new();
    for r in &rows {
        if streams.insert(r[2].clone()) {
            add(&mut m, format!("tls {} {}", r[0].to_ascii_lowercase(), r[1]));
        }
    }
    m
}

/// DNS type names flowtrail writes, as the numbers tshark prints.
fn qtype_number(name: &str) -> String {
    let n = match name {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "HINFO" => 13,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "NAPTR" => 35,
        "OPT" => 41,
        "DS" => 43,
        "RRSIG" => 46,
        "DNSKEY" => 48,
        "SVCB" => 64,
        "HTTPS" => 65,
        "ANY" => 255,
        other => return other.strip_prefix("TYPE").unwrap_or(other).to_string(),
    };
    n.to_string()
}

/// flowtrail's calls in the same shapes.
#[must_use]
pub fn flowtrail_facts(calls: &Table) -> (Facts, Facts, Facts) {
    let (mut http, mut dns, mut tls) = (Facts::new(), Facts::new(), Facts::new());
    if calls.rows.is_empty() {
        return (http, dns, tls);
    }
    let c = |n: &str| calls.col(n);
    let (proto, ty, dom, res, code, attrs) = (
        c("l7_protocol"),
        c("request_type"),
        c("request_domain"),
        c("request_resource"),
        c("response_code"),
        c("attributes"),
    );
    let (status, resp_ns) = (c("response_status"), c("response_start_ns"));
    for r in &calls.rows {
        let dash = |s: &str| if s == "-" { String::new() } else { s.to_string() };
        let answered = r[resp_ns] != "-";
        match r[proto].as_str() {
            "http" if r[ty] != "-" => {
                let code = if answered && r[code] != "-" { r[code].clone() } else { "-".into() };
                add(&mut http, format!("http {} {} {} -> {code}", r[ty], dash(&r[dom]), dash(&r[res])));
            }
            "dns" if r[ty] != "-" => {
                let rc = if answered && r[status] != "timeout" { r[code].clone() } else { "-".into() };
                add(&mut dns, format!("dns {} {} -> {rc}", dash(&r[res]), qtype_number(&r[ty])));
            }
            "tls" if r[ty] != "-" => {
                let ja3 = attr(&r[attrs], "tls.ja3").unwrap_or_default();
                add(&mut tls, format!("tls {} {ja3}", attr(&r[attrs], "tls.sni").unwrap_or_default()));
            }
            _ => {}
        }
    }
    (http, dns, tls)
}

/// Reads one key of an attributes map as arrow-cast prints it (`{k: v, …}`).
#[must_use]
pub fn attr(cell: &str, key: &str) -> Option<String> {
    let inner = cell.strip_prefix('{')?.strip_suffix('}')?;
    inner.split(", ").find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix(": ")).map(str::to_string))
}

/// Agreement of two multisets: (common, max size), and the differences.
#[must_use]
pub fn agreement(ours: &Facts, theirs: &Facts) -> (u64, u64, Vec<String>) {
    let mut common = 0;
    let mut diffs = Vec::new();
    let keys: std::collections::BTreeSet<&Fact> = ours.keys().chain(theirs.keys()).collect();
    for k in keys {
        let (o, t) = (ours.get(k).copied().unwrap_or(0), theirs.get(k).copied().unwrap_or(0));
        common += o.min(t);
        if o != t {
            diffs.push(format!("{k}: flowtrail {o}, tshark {t}"));
        }
    }
    let total = ours.values().sum::<u64>().max(theirs.values().sum::<u64>());
    (common, total, diffs)
}
