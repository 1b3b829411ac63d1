//! NAT paths against the kernel's and the servers' ground truth.
//!
//! Each set in pcaps/nat/ was captured at two points at once around a real
//! gateway (iptables DNAT/SNAT, an nginx proxy, a socat relay, a DNS VIP);
//! its truth.tsv was made from `conntrack -E` and the access logs (see
//! pcaps/nat/README.md; `midstream`'s captures were cut with `editcap -A` at
//! two times, so most of its connections have no handshake at one point or
//! both). The test replays every set as one multi-point run,
//! scores the links (precision and recall per kind, printed), runs
//! `correlate` over per-point runs and requires the same links, and runs
//! queries/nat_paths.sql on DuckDB and Spark against `correlate`'s ISN links.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use flowtrail::nat::NatConfig;
use flowtrail::pipeline::{replay, Input, ReplayOptions};
use flowtrail_tests::{read_kind, root, Scratch, Table};

fn sets() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("pcaps/nat"))
        .expect("pcaps/nat")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("truth.tsv").exists())
        .collect();
    v.sort();
    v
}

fn pcaps_of(set: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(set)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

fn run(files: &[PathBuf], out: &Path, nat: bool) {
    let opts = ReplayOptions {
        inputs: files.iter().map(|p| Input { path: p.clone(), point: Some(stem(p)) }).collect(),
        out_dir: out.to_path_buf(),
        workers: 1,
        flow: flowtrail::flow::FlowConfig::default(),
        defrag: flowtrail::defrag::DefragConfig::default(),
        progress: false,
        run_id: "nat".into(),
        nat: nat.then(NatConfig::default),
    };
    let s = replay(&opts).expect("replay");
    assert!(s.input_errors.is_empty(), "{:?}", s.input_errors);
}

fn rows(t: &Table) -> Vec<BTreeMap<String, String>> {
    t.rows.iter().map(|r| t.columns.iter().cloned().zip(r.iter().cloned()).collect()).collect()
}

fn read_tsv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let head: Vec<String> = lines.next().unwrap().split('\t').map(str::to_string).collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| head.iter().cloned().zip(l.split('\t').map(str::to_string)).collect())
        .collect()
}

/// What identifies a link: kind, both points and tuples, and for L7 the
/// resources (requests on one keep-alive connection share its tuple).
fn key(r: &BTreeMap<String, String>, truth: bool) -> String {
    let p = |k: &str| r[k].clone();
    let (ap, bp) = if truth { ("a_point", "b_point") } else { ("a_capture_point", "b_capture_point") };
    let l7 = r["link_kind"] == "l7";
    format!(
        "{} {} {}:{}>{}:{} | {} {}:{}>{}:{}{}",
        r["link_kind"],
        p(ap),
        p("a_client_ip"),
        p("a_client_port"),
        p("a_server_ip"),
        p("a_server_port"),
        p(bp),
        p("b_client_ip"),
        p("b_client_port"),
        p("b_server_ip"),
        p("b_server_port"),
        if l7 { format!(" {} {}", p("a_resource"), p("b_resource")) } else { String::new() }
    )
}

#[derive(Default, Debug, Clone, Copy)]
struct Score {
    truth: usize,
    found: usize,
    correct: usize,
    wrong_translation: usize,
}

#[test]
fn nat_paths_match_the_ground_truth() {
    let mut by_class: BTreeMap<&str, Score> = BTreeMap::new();
    let mut report = String::from("set            truth found correct  methods\n");
    let mut misses = Vec::new();
    for set in sets() {
        let name = stem(&set);
        let out = Scratch::new(&format!("nat-{name}"));
        run(&pcaps_of(&set), &out.0, true);
        let links = rows(&read_kind(&out.0, "nat_paths"));
        let truth = read_tsv(&set.join("truth.tsv"));
        let want: BTreeMap<String, &BTreeMap<String, String>> = truth.iter().map(|r| (key(r, true), r)).collect();
        let got: BTreeMap<String, &BTreeMap<String, String>> = links.iter().map(|r| (key(r, false), r)).collect();
        assert_eq!(want.len(), truth.len(), "{name}: truth rows are unique");
        // Each link is scored in its class: L4, or L7 with or without a
        // request id (only proxy_noid carries none).
        let class_of = |kind: &str| match (kind, name.as_str()) {
            ("l4", _) => "l4",
            (_, "proxy_noid") => "l7 without request id",
            _ => "l7 with request id",
        };
        let mut s = Score { truth: want.len(), found: got.len(), ..Score::default() };
        let mut methods: BTreeMap<String, usize> = BTreeMap::new();
        for k in want.keys() {
            by_class.entry(class_of(&k[..2])).or_default().truth += 1;
        }
        for (k, g) in &got {
            *methods.entry(g["match_method"].clone()).or_default() += 1;
            let c = by_class.entry(class_of(&k[..2])).or_default();
            c.found += 1;
            match want.get(k) {
                Some(w) => {
                    s.correct += 1;
                    c.correct += 1;
                    if w["translation"] != g["translation"] {
                        s.wrong_translation += 1;
                        c.wrong_translation += 1;
                        misses.push(format!(
                            "{name}: translation {} != truth {} for {k}",
                            g["translation"], w["translation"]
                        ));
                    }
                }
                None => misses.push(format!("{name}: false link {k} ({})", g["match_method"])),
            }
        }
        for k in want.keys().filter(|k| !got.contains_key(*k)) {
            misses.push(format!("{name}: missed {k}"));
        }
        report.push_str(&format!("{name:<14} {:>5} {:>5} {:>7}  {methods:?}\n", s.truth, s.found, s.correct));
        if name == "midstream" {
            // Connections whose start one point or both missed: every one
            // linked, by its sequence numbers unless both points saw its SYN.
            for (k, g) in &got {
                report.push_str(&format!(
                    "    {} {:.2} {k}\n",
                    g["match_method"],
                    g["confidence"].parse::<f64>().unwrap()
                ));
            }
            assert_eq!((s.correct, s.found), (s.truth, s.truth), "midstream: 100% precision and recall");
            assert!(methods.get("tcp_seq").copied().unwrap_or(0) >= 6, "midstream: {methods:?}");
        }
    }
    report.push_str("\nclass                  precision  recall\n");
    for (class, s) in &by_class {
        report.push_str(&format!(
            "{class:<22} {:>8.1}%  {:>5.1}%  ({} of {} found links right, {} of {} true links found)\n",
            100.0 * s.correct as f64 / s.found.max(1) as f64,
            100.0 * s.correct as f64 / s.truth.max(1) as f64,
            s.correct,
            s.found,
            s.correct,
            s.truth
        ));
    }
    println!("{report}");
    for m in &misses {
        println!("  {m}");
    }
    assert!(by_class.len() == 3, "every class has a set: {by_class:?}");
    let l4 = by_class["l4"];
    assert_eq!(l4.correct, l4.found, "L4 precision is 100%");
    assert!(l4.correct * 100 >= l4.truth * 99, "L4 recall >= 99%");
    let id = by_class["l7 with request id"];
    assert!(id.correct * 100 >= id.found * 98 && id.correct * 100 >= id.truth * 99, "{id:?}");
    let noid = by_class["l7 without request id"];
    assert!(noid.correct * 100 >= noid.found * 98 && noid.correct * 100 >= noid.truth * 90, "{noid:?}");
    assert_eq!(by_class.values().map(|s| s.wrong_translation).sum::<usize>(), 0, "{misses:?}");
    // Today's exact figures, so that a regression shows.
    assert!(misses.is_empty(), "{misses:#?}");
}

fn link_set(dir: &Path) -> BTreeSet<Vec<String>> {
    let t = read_kind(dir, "nat_paths");
    t.rows.iter().cloned().collect()
}

/// `correlate` over one run per capture point gives exactly the links of
/// the multi-point replay (same flow ids, call ids and path ids).
#[test]
fn correlate_over_separate_runs_equals_one_replay() {
    for set in sets() {
        let files = pcaps_of(&set);
        let together = Scratch::new("nat-together");
        run(&files, &together.0, true);
        let mut dirs = Vec::new();
        let mut scratch = Vec::new();
        for f in &files {
            let s = Scratch::new("nat-point");
            run(std::slice::from_ref(f), &s.0, false);
            dirs.push(s.0.clone());
            scratch.push(s);
        }
        let out = Scratch::new("nat-correlated");
        let (stats, _) = flowtrail::nat::read::correlate_dirs(&dirs, None, &NatConfig::default(), &out.0, "corr")
            .expect("correlate");
        let (a, b) = (link_set(&together.0), link_set(&out.0));
        assert!(!a.is_empty(), "{}", set.display());
        assert_eq!(a, b, "{}: {stats:?}", set.display());
    }
}

fn run_sql(engine: &str, dir: &Path) -> BTreeSet<(String, String, String)> {
    let out = std::process::Command::new("python3")
        .arg(root().join("tests/scripts/run_sql.py"))
        .arg(engine)
        .arg(dir)
        .arg(root().join("queries/nat_paths.sql"))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let (a, b, t) = (col("a_flow_id"), col("b_flow_id"), col("translation"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[a].to_string(), f[b].to_string(), f[t].to_string())
        })
        .collect()
}

/// queries/nat_paths.sql, on DuckDB and on Spark, finds the `tcp_isn`
/// links `flowtrail` finds, over every set at once.
#[test]
fn nat_paths_sql_agrees_on_duckdb_and_spark() {
    let out = Scratch::new("nat-sql");
    for (i, set) in sets().iter().enumerate() {
        // Separate runs in one directory: distinct point names per set.
        let opts = ReplayOptions {
            inputs: pcaps_of(set)
                .iter()
                .map(|p| Input { path: p.clone(), point: Some(format!("{}/{}", stem(set), stem(p))) })
                .collect(),
            out_dir: out.0.clone(),
            workers: 1,
            flow: flowtrail::flow::FlowConfig::default(),
            defrag: flowtrail::defrag::DefragConfig::default(),
            progress: false,
            run_id: format!("set{i}"),
            nat: Some(NatConfig::default()),
        };
        replay(&opts).expect("replay");
    }
    let t = read_kind(&out.0, "nat_paths");
    let (m, a, b, tr) = (t.col("match_method"), t.col("a_flow_id"), t.col("b_flow_id"), t.col("translation"));
    let ours: BTreeSet<(String, String, String)> =
        t.rows.iter().filter(|r| r[m] == "tcp_isn").map(|r| (r[a].clone(), r[b].clone(), r[tr].clone())).collect();
    assert!(ours.len() >= 30, "the DNAT sets give ISN links: {}", ours.len());
    assert_eq!(run_sql("duckdb", &out.0), ours, "DuckDB");
    if std::process::Command::new("python3").args(["-c", "import pyspark"]).status().is_ok_and(|s| s.success()) {
        assert_eq!(run_sql("spark", &out.0), ours, "Spark");
    } else {
        panic!("pyspark is missing: scripts/setup.sh --test installs it");
    }
}

/// `flowtrail path --status 404` on the wrong-backend capture names the
/// backend that really answered, for each 404 the client got.
#[test]
fn path_names_the_backend_that_answered_404() {
    let set = root().join("pcaps/nat/proxy_404");
    let out = Scratch::new("nat-path");
    run(&pcaps_of(&set), &out.0, true);
    let q = flowtrail::nat::path::PathQuery { status: Some(404), ..Default::default() };
    let chains = flowtrail::nat::path::select(&out.0, &q).expect("select");
    let truth = read_tsv(&set.join("truth.tsv"));
    let want: BTreeSet<(String, String)> = truth
        .iter()
        .filter(|r| r["b_response_code"] == "404")
        .map(|r| (r["a_resource"].clone(), format!("{}:{}", r["b_server_ip"], r["b_server_port"])))
        .collect();
    assert_eq!(want.len(), 5, "the capture has five 404s");
    let got: BTreeSet<(String, String)> = chains
        .iter()
        .map(|c| {
            let l = c.links.last().unwrap();
            (l.a_resource.clone().unwrap(), format!("{}:{}", l.b_server_ip, l.b_server_port))
        })
        .collect();
    assert_eq!(got, want);
    let mut text = Vec::new();
    flowtrail::nat::path::print_paths(&out.0, &q, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    println!("{text}");
    let answered: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("answered by")).collect();
    assert_eq!(answered.len(), 5);
    assert!(answered.iter().all(|l| l.ends_with("with 404") && l.contains("backend")), "{answered:?}");
}

/// Golden `nat_paths` per capture set: every column of every link, so a
/// change in ids, latencies or confidences shows in review
/// (`tests/expected/nat/<set>.nat_paths.tsv`; `BLESS=1` rewrites them).
#[test]
fn nat_paths_match_their_golden_records() {
    let bless = std::env::var_os("BLESS").is_some();
    let dir = root().join("tests/expected/nat");
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for set in sets() {
        let name = stem(&set);
        let out = Scratch::new(&format!("nat-golden-{name}"));
        run(&pcaps_of(&set), &out.0, true);
        let got = read_kind(&out.0, "nat_paths").to_tsv();
        let path = dir.join(format!("{name}.nat_paths.tsv"));
        if bless {
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != got {
            failures.push(format!("{name}: differs from {}", path.display()));
        }
    }
    assert!(failures.is_empty(), "golden mismatches (BLESS=1 to accept):\n{}", failures.join("\n"));
}

/// One direction of a TCP connection: source address and port, destination
/// address and port.
type Dir = (String, String, String, String);

/// The flows' sequence ranges (`client_seq_first` .. `server_seq_next`)
/// are tshark's: the lowest raw sequence number of each side's non-RST
/// segments, and the highest `seq + len (+1 for SYN/FIN)`, on the cut
/// midstream captures (no handshake for most connections).
#[test]
fn seq_ranges_match_tshark_on_the_midstream_captures() {
    let set = root().join("pcaps/nat/midstream");
    let out = Scratch::new("nat-seq");
    run(&pcaps_of(&set), &out.0, false);
    let flows = rows(&read_kind(&out.0, "flows"));
    let mut checked = 0;
    let lt = |a: u32, b: u32| (a.wrapping_sub(b) as i32) < 0;
    for pcap in pcaps_of(&set) {
        let fields = ["ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.seq_raw", "tcp.len", "tcp.flags"];
        let mut cmd = std::process::Command::new("tshark");
        cmd.arg("-r").arg(&pcap).args(["-Y", "tcp", "-T", "fields"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let text = String::from_utf8(cmd.output().expect("tshark").stdout).unwrap();
        // (src, sport, dst, dport) -> (first, next) of that direction, wrapping.
        let mut want: BTreeMap<Dir, (u32, u32)> = BTreeMap::new();
        for line in text.lines() {
            let v: Vec<&str> = line.split('\t').collect();
            let flags = u32::from_str_radix(v[6].trim_start_matches("0x"), 16).unwrap();
            if flags & 4 != 0 {
                continue; // RST
            }
            let seq: u32 = v[4].parse().unwrap();
            let end = seq.wrapping_add(v[5].parse::<u32>().unwrap()).wrapping_add(u32::from(flags & 3 != 0));
            let k = (v[0].to_string(), v[1].to_string(), v[2].to_string(), v[3].to_string());
            let r = want.entry(k).or_insert((seq, end));
            if lt(seq, r.0) {
                r.0 = seq;
            }
            if lt(r.1, end) {
                r.1 = end;
            }
        }
        // A flow's records (the committed run crosses a minute boundary:
        // period records) together cover what tshark saw.
        let mut got: BTreeMap<Dir, [(u32, u32); 2]> = BTreeMap::new();
        for f in flows.iter().filter(|f| f["capture_point"] == stem(&pcap) && f["l4_protocol"] == "tcp") {
            let k =
                (f["client_ip"].clone(), f["client_port"].clone(), f["server_ip"].clone(), f["server_port"].clone());
            let range = |side: &str| -> (u32, u32) {
                (f[&format!("{side}_seq_first")].parse().unwrap(), f[&format!("{side}_seq_next")].parse().unwrap())
            };
            let r = [range("client"), range("server")];
            let e = got.entry(k).or_insert(r);
            for (m, x) in e.iter_mut().zip(r) {
                if lt(x.0, m.0) {
                    m.0 = x.0;
                }
                if lt(m.1, x.1) {
                    m.1 = x.1;
                }
            }
        }
        for ((c, cp, s, sp), [up, down]) in got {
            assert_eq!(up, want[&(c.clone(), cp.clone(), s.clone(), sp.clone())], "{c}:{cp} client side");
            assert_eq!(down, want[&(s.clone(), sp.clone(), c.clone(), cp.clone())], "{c}:{cp} server side");
            checked += 1;
        }
    }
    assert_eq!(checked, 18, "9 connections at each point");
}
