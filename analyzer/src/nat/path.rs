//! `flowtrail path`: NAT paths printed as chains, hops ordered from the
//! client. An `l7` chain (one request through proxies) is shown with the
//! `l4` links of the connections it used (joined by flow id), so a client →
//! VIP (DNAT) → proxy → backend chain reads whole.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use super::read::{read_all_calls, read_nat_paths};
use crate::records::NatPathRecord;

/// Which chains to print (all filters must hold; none given prints all).
#[derive(Debug, Clone, Default)]
pub struct PathQuery {
    /// `IP` or `IP:PORT` of the client of the chain's first hop.
    pub client: Option<String>,
    /// `X-Request-ID` carried by a call of the chain.
    pub request_id: Option<String>,
    /// Substring of a hop's resource.
    pub resource: Option<String>,
    /// A hop answered this response code.
    pub status: Option<i32>,
}

/// One printed chain: its links, ordered from the client.
#[derive(Debug, Clone)]
pub struct Chain {
    pub links: Vec<NatPathRecord>,
}

/// Groups links into chains: each `l7` path with the `l4` paths sharing a
/// flow with it; `l4` paths no request used stand alone.
#[must_use]
pub fn chains(links: Vec<NatPathRecord>) -> Vec<Chain> {
    let mut by_path: BTreeMap<(bool, i64), Vec<NatPathRecord>> = BTreeMap::new();
    for l in links {
        by_path.entry((l.link_kind == "l7", l.path_id)).or_default().push(l);
    }
    let mut flow_to_l4: BTreeMap<i64, i64> = BTreeMap::new();
    for ((l7, pid), ls) in &by_path {
        if !*l7 {
            for l in ls {
                flow_to_l4.insert(l.a_flow_id, *pid);
                flow_to_l4.insert(l.b_flow_id, *pid);
            }
        }
    }
    let mut used_l4 = BTreeSet::new();
    let mut out = Vec::new();
    for ((l7, _), ls) in &by_path {
        if !*l7 {
            continue;
        }
        let mut links = ls.clone();
        let l4: BTreeSet<i64> =
            ls.iter().flat_map(|l| [l.a_flow_id, l.b_flow_id]).filter_map(|f| flow_to_l4.get(&f).copied()).collect();
        for pid in l4 {
            used_l4.insert(pid);
            links.extend(by_path[&(false, pid)].iter().cloned());
        }
        out.push(Chain { links });
    }
    for ((l7, pid), ls) in by_path {
        if !l7 && !used_l4.contains(&pid) {
            out.push(Chain { links: ls });
        }
    }
    for c in &mut out {
        c.links.sort_by_key(|l| (l.a_start_ns, l.link_kind == "l7", l.b_start_ns));
    }
    out.sort_by_key(|c| c.links.first().map(|l| l.a_start_ns));
    out
}

fn endpoint(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn client_matches(filter: &str, l: &NatPathRecord) -> bool {
    if let Ok(sa) = filter.parse::<std::net::SocketAddr>() {
        sa.ip().to_string() == l.a_client_ip && i32::from(sa.port()) == l.a_client_port
    } else {
        filter.trim_matches(['[', ']']) == l.a_client_ip
    }
}

/// The chains matching `q`, read from `dir`.
pub fn select(dir: &Path, q: &PathQuery) -> anyhow::Result<Vec<Chain>> {
    let all = chains(read_nat_paths(dir)?);
    let call_ids: Option<BTreeSet<i64>> = match &q.request_id {
        Some(id) => Some(
            read_all_calls(dir)?
                .into_iter()
                .filter(|c| c.request_id.as_deref() == Some(id.as_str()))
                .map(|c| c.call_id)
                .collect(),
        ),
        None => None,
    };
    Ok(all
        .into_iter()
        .filter(|c| {
            let first = &c.links[0];
            q.client.as_ref().is_none_or(|f| client_matches(f, first))
                && call_ids.as_ref().is_none_or(|ids| {
                    c.links.iter().any(|l| {
                        l.a_call_id.is_some_and(|x| ids.contains(&x)) || l.b_call_id.is_some_and(|x| ids.contains(&x))
                    })
                })
                && q.resource.as_ref().is_none_or(|r| {
                    c.links.iter().any(|l| {
                        l.a_resource.as_deref().is_some_and(|x| x.contains(r.as_str()))
                            || l.b_resource.as_deref().is_some_and(|x| x.contains(r.as_str()))
                    })
                })
                && q.status.is_none_or(|s| {
                    c.links.iter().any(|l| l.a_response_code == Some(s) || l.b_response_code == Some(s))
                })
        })
        .collect())
}

/// Prints the chains matching `q`.
pub fn print_paths(dir: &Path, q: &PathQuery, out: &mut impl Write) -> anyhow::Result<()> {
    let chains = select(dir, q)?;
    if chains.is_empty() {
        writeln!(out, "no matching NAT paths under {}", dir.display())?;
    }
    for c in &chains {
        write!(out, "{}", render(c))?;
    }
    Ok(())
}

/// A chain as text: one line per hop, then the hop that answered last.
#[must_use]
pub fn render(c: &Chain) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let first = &c.links[0];
    let _ = writeln!(
        s,
        "path {:016x}  {} hops  from {} at {}",
        first.path_id as u64,
        c.links.len(),
        endpoint(&first.a_client_ip, first.a_client_port),
        first.a_capture_point
    );
    for l in &c.links {
        let code = |x: Option<i32>| x.map(|v| format!(" {v}")).unwrap_or_default();
        let res = |x: &Option<String>| x.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<2} {:<9} {:<12} {:.2}  {} {} -> {}{}{}  =>  {} {} -> {}{}{}  (+{:.3} ms)",
            l.link_kind,
            l.translation,
            l.match_method,
            l.confidence,
            l.a_capture_point,
            endpoint(&l.a_client_ip, l.a_client_port),
            endpoint(&l.a_server_ip, l.a_server_port),
            res(&l.a_resource),
            code(l.a_response_code),
            l.b_capture_point,
            endpoint(&l.b_client_ip, l.b_client_port),
            endpoint(&l.b_server_ip, l.b_server_port),
            res(&l.b_resource),
            code(l.b_response_code),
            l.hop_latency_ns as f64 / 1e6,
        );
    }
    // The innermost hop with a response answered first: the origin of the code.
    if let Some(l) = c.links.iter().rev().find(|l| l.b_response_code.is_some()) {
        let _ = writeln!(
            s,
            "  answered by {} at {} with {}",
            endpoint(&l.b_server_ip, l.b_server_port),
            l.b_capture_point,
            l.b_response_code.unwrap_or_default()
        );
    }
    s
}
