//! Detection table: the first payload of every TCP connection direction in
//! pcaps/ and in the corpus captures of the decoded protocols, fed to every
//! protocol's probe. tshark names the protocol (it dissects by port and
//! heuristics; connections it cannot name are skipped). Only the right
//! probe may match: DeepFlow's users saw HTTPS taken for MQTT, HTTP/2 for
//! PostgreSQL and MySQL for HTTP/2.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flowtrail_decoders::l7::{self, Direction, L7Protocol, Probe, Transport};
use flowtrail_tests::l7::tshark_fields;
use flowtrail_tests::{bundled_pcaps, corpus, have_tshark};

/// tshark's protocol name in `frame.protocols` → ours.
fn ours(tshark: &str) -> Option<L7Protocol> {
    let last: Vec<&str> = tshark.split(':').collect();
    let has = |p: &str| last.contains(&p);
    Some(if has("http2") || has("grpc") {
        L7Protocol::Http2
    } else if has("mysql") {
        L7Protocol::Mysql
    } else if has("pgsql") {
        L7Protocol::Postgresql
    } else if has("resp") {
        L7Protocol::Redis
    } else if has("kafka") {
        L7Protocol::Kafka
    } else if has("mqtt") {
        L7Protocol::Mqtt
    } else if has("tls") {
        L7Protocol::Tls
    } else if has("dns") {
        L7Protocol::Dns
    } else if has("http") {
        L7Protocol::Http1
    } else {
        return None;
    })
}

fn probe(p: L7Protocol, data: &[u8], dir: Direction) -> Probe {
    match p {
        L7Protocol::Http1 => l7::http1::probe(data, dir, Transport::Tcp),
        L7Protocol::Tls => l7::tls::probe(data, dir, Transport::Tcp),
        L7Protocol::Dns => l7::dns::probe(data, dir, Transport::Tcp),
        L7Protocol::Http2 | L7Protocol::Grpc => l7::http2::probe(data, dir, Transport::Tcp),
        L7Protocol::Mysql => l7::mysql::probe(data, dir, Transport::Tcp),
        L7Protocol::Postgresql => l7::postgresql::probe(data, dir, Transport::Tcp),
        L7Protocol::Redis => l7::redis::probe(data, dir, Transport::Tcp),
        L7Protocol::Kafka => l7::kafka::probe(data, dir, Transport::Tcp),
        L7Protocol::Mqtt => l7::mqtt::probe(data, dir, Transport::Tcp),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

#[test]
fn only_the_right_probe_matches_real_first_bytes() {
    if !have_tshark() {
        eprintln!("SKIP: tshark not installed");
        return;
    }
    let mut files: Vec<PathBuf> = bundled_pcaps();
    if let Some(c) = corpus() {
        let manifest = std::fs::read_to_string(c.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
        let mut lines = manifest.lines();
        let head: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        let col = head.iter().position(|h| *h == "features").expect("features column");
        let want = ["http2", "grpc", "mysql", "pgsql", "redis", "kafka", "mqtt", "tls", "http1"];
        for line in lines {
            let f: Vec<&str> = line.split('\t').collect();
            let features = f.get(col).copied().unwrap_or_default();
            if features.split(',').any(|x| want.contains(&x)) {
                files.push(c.join(f[0]));
            }
        }
    }
    // expected protocol -> (openings, matched by the right probe, wrong matches)
    let mut table: BTreeMap<&str, (u32, u32, u32)> = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in &files {
        let rows = tshark_fields(
            file,
            "tcp.len > 0",
            &["tcp.stream", "tcp.srcport", "tcp.dstport", "frame.protocols", "tcp.payload", "tcp.seq"],
        );
        let mut seen = std::collections::BTreeSet::new();
        for r in rows {
            if r.len() < 5 || !seen.insert((r[0].clone(), r[1].clone())) {
                continue; // only the first payload of each direction
            }
            let Some(expected) = ours(&r[3]) else { continue };
            let (sport, dport): (u16, u16) = (r[1].parse().unwrap_or(0), r[2].parse().unwrap_or(0));
            let ports = expected.default_ports();
            let to_server =
                if ports.contains(&dport) != ports.contains(&sport) { ports.contains(&dport) } else { dport < sport };
            let dir = if to_server { Direction::ToServer } else { Direction::ToClient };
            let data = unhex(&r[4]);
            if data.is_empty() {
                continue;
            }
            let row = table.entry(expected.as_str()).or_default();
            row.0 += 1;
            for p in L7Protocol::ALL {
                if probe(p, &data, dir) == Probe::Match {
                    if p.index() == expected.index() {
                        row.1 += 1;
                    } else {
                        row.2 += 1;
                        wrong.push(format!(
                            "{} stream {} {:?}: {} matched {} bytes tshark calls {}",
                            file.display(),
                            r[0],
                            dir,
                            p.as_str(),
                            data.len(),
                            expected.as_str()
                        ));
                    }
                }
            }
        }
    }
    println!("protocol     openings  right-probe-matches  wrong-probe-matches");
    for (p, (n, ok, bad)) in &table {
        println!("{p:<12} {n:>8} {ok:>20} {bad:>20}");
    }
    for w in &wrong {
        println!("  WRONG {w}");
    }
    assert!(table.len() >= 8, "every decoded protocol has openings: {table:?}");
    assert!(wrong.is_empty(), "{} openings matched a foreign probe", wrong.len());
}
