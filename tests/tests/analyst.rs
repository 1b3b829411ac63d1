//! The analyst commands (`calls`, `top`, `diagnose`) on real captures, with
//! exact rows checked by hand against tshark, and queries/story_*.sql on
//! DuckDB and on Spark against the same output, required to give the same
//! rows as each other and as the Rust command answering the same question.
//!
//! tshark's view of the captures used (by hand, `tshark -r … -T fields`):
//! - pcaps/nat/proxy_404/client.pcap: five 404s, for /api/v2/users/2,
//!   /api/v2/orders/4, /api/v2/items/6, /api/v2/users/8, /api/v2/health, in
//!   that order; truth.tsv (nginx's logs) has backend 10.99.69.22 answer each.
//! - pcaps/http_errors.pcap: /index.html 200, /missing.html 404,
//!   /unavailable 503 on one connection, /api/orders/42 200 and /slow 504
//!   (after 1.004 s) on a second one, all to 10.99.16.20:80 within 1.05 s.
//! - pcaps/tcp_loss_reorder.pcap: 211 packets from the client, 237 from the
//!   server 10.99.7.20 of which 29 are `tcp.analysis.retransmission`.
//! - pcaps/tcp_rst_closed_port.pcap: two SYNs to 10.99.5.20:9999, each
//!   answered by RST-ACK.
//!
//! No bundled capture holds DNS and HTTP for the same name (the DNS
//! captures resolve *.test names no HTTP capture asks for), so `--with-dns`
//! is tested on records written through the sink, in
//! `flowtrail::query::calls`' unit tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flowtrail::nat::NatConfig;
use flowtrail::pipeline::{replay, Input, ReplayOptions};
use flowtrail::query::calls::{calls, CallsQuery, Status};
use flowtrail::query::diagnose::{diagnose, DiagnoseQuery};
use flowtrail::query::top::{top, Compare, TopQuery};
use flowtrail::query::{Endpoint, Filters, Key, Rows, Value};
use flowtrail_tests::{root, Scratch};

/// Replays `files` (point names from `--point`-like pairs) into `out`.
fn run(files: &[(&str, PathBuf)], out: &Path, run_id: &str) {
    let opts = ReplayOptions {
        inputs: files.iter().map(|(name, p)| Input { path: p.clone(), point: Some((*name).to_string()) }).collect(),
        out_dir: out.to_path_buf(),
        workers: 1,
        flow: flowtrail::flow::FlowConfig::default(),
        defrag: flowtrail::defrag::DefragConfig::default(),
        progress: false,
        run_id: run_id.into(),
        nat: Some(NatConfig::default()),
    };
    let s = replay(&opts).expect("replay");
    assert!(s.input_errors.is_empty(), "{:?}", s.input_errors);
}

fn pcap(name: &str) -> PathBuf {
    root().join("pcaps").join(name)
}

/// Runs `sql` on `engine` over `dir`: header and rows as text.
fn run_sql(engine: &str, dir: &Path, sql: &str) -> Vec<BTreeMap<String, String>> {
    let file = dir.join(format!("query-{engine}.sql"));
    std::fs::write(&file, sql).unwrap();
    let out = std::process::Command::new("python3")
        .arg(root().join("tests/scripts/run_sql.py"))
        .arg(engine)
        .arg(dir)
        .arg(&file)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let head: Vec<String> = lines.next().unwrap().split('\t').map(str::to_string).collect();
    lines.map(|l| head.iter().cloned().zip(l.split('\t').map(str::to_string)).collect()).collect()
}

/// The story's rows, the same on DuckDB and on Spark.
fn story(dir: &Path, name: &str, edit: &[(&str, &str)]) -> Vec<BTreeMap<String, String>> {
    let mut sql = std::fs::read_to_string(root().join(format!("queries/{name}"))).unwrap();
    for (from, to) in edit {
        assert!(sql.contains(from), "{name} has {from}");
        sql = sql.replace(from, to);
    }
    let duck = run_sql("duckdb", dir, &sql);
    let pyspark = std::process::Command::new("python3").args(["-c", "import pyspark"]).status();
    assert!(pyspark.is_ok_and(|s| s.success()), "pyspark is missing: scripts/setup.sh --test installs it");
    let spark = run_sql("spark", dir, &sql);
    assert_eq!(duck, spark, "{name}: DuckDB and Spark agree");
    duck
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        v => v.raw_text(),
    }
}

/// One column of the Rust answer as text (`-` for null, as run_sql.py).
fn col(rows: &Rows, name: &str) -> Vec<String> {
    rows.column(name).into_iter().map(text).collect()
}

fn sql_col(rows: &[BTreeMap<String, String>], name: &str) -> Vec<String> {
    rows.iter().map(|r| r[name].clone()).collect()
}

/// Story 1: `calls --status 404 --resource /api/v2 --point client` on the
/// wrong-backend proxy capture.
#[test]
fn calls_404_show_the_backend_that_answered() {
    let set = root().join("pcaps/nat/proxy_404");
    let out = Scratch::new("analyst-404");
    run(&[("backend", set.join("backend.pcap")), ("client", set.join("client.pcap"))], &out.0, "p404");
    let q = CallsQuery {
        filters: Filters { point: Some("client".into()), ..Filters::default() },
        status: Some(Status::Code(404)),
        resource: Some("/api/v2".into()),
        ..CallsQuery::default()
    };
    let rows = calls(std::slice::from_ref(&out.0), &q).expect("calls");
    assert_eq!(
        col(&rows, "request_resource"),
        ["/api/v2/health", "/api/v2/users/8", "/api/v2/items/6", "/api/v2/orders/4", "/api/v2/users/2"],
        "newest first"
    );
    assert_eq!(col(&rows, "capture_point"), ["client"; 5]);
    assert_eq!(col(&rows, "client_ip"), ["10.99.68.10"; 5]);
    assert_eq!(col(&rows, "server_ip"), ["10.99.68.1"; 5], "the proxy, as the client saw it");
    assert_eq!(col(&rows, "response_code"), ["404"; 5]);
    assert_eq!(col(&rows, "path_server"), ["10.99.69.22:80"; 5], "answered by backend 2");
    assert_eq!(col(&rows, "client_port"), ["58208", "58208", "58196", "58196", "58192"]);
    for (i, p) in col(&rows, "nat_path").iter().enumerate() {
        let want = format!("client 10.99.68.10:{}->10.99.68.1:80 404 =proxy=> backend ", col(&rows, "client_port")[i]);
        assert!(p.starts_with(&want) && p.ends_with("->10.99.69.22:80 404"), "{p}");
    }
    // Without --point, the same five calls are also seen at the backend.
    let all = calls(std::slice::from_ref(&out.0), &CallsQuery { filters: Filters::default(), ..q.clone() }).unwrap();
    assert_eq!(all.rows.len(), 10);
    let json = {
        let mut v = Vec::new();
        flowtrail::query::print(&rows, flowtrail::query::Format::Json, &mut v).unwrap();
        String::from_utf8(v).unwrap()
    };
    assert_eq!(json.lines().count(), 5);
    assert!(json.lines().all(|l| l.contains("\"path_server\":\"10.99.69.22:80\"")), "{json}");

    let sql = story(&out.0, "story_404.sql", &[]);
    assert_eq!(sql_col(&sql, "start_ns"), col(&rows, "start_ns"));
    assert_eq!(sql_col(&sql, "call_id"), col(&rows, "call_id"));
    assert_eq!(sql_col(&sql, "latency_ns"), col(&rows, "latency_ns"));
    let sql_server: Vec<String> =
        sql.iter().map(|r| format!("{}:{}", r["path_server_ip"], r["path_server_port"])).collect();
    assert_eq!(sql_server, col(&rows, "path_server"));
}

/// Story 2: statuses on http_errors.pcap, listed and per server and minute.
#[test]
fn calls_by_status_and_server_window() {
    let out = Scratch::new("analyst-503");
    run(&[("http_errors.pcap", pcap("http_errors.pcap"))], &out.0, "e");
    let dirs = std::slice::from_ref(&out.0);
    let list = |status: &str| {
        let q = CallsQuery { status: Some(status.parse().unwrap()), ..CallsQuery::default() };
        let rows = calls(dirs, &q).unwrap();
        col(&rows, "request_resource").into_iter().zip(col(&rows, "response_code")).collect::<Vec<_>>()
    };
    let pair = |r: &str, c: &str| (r.to_string(), c.to_string());
    assert_eq!(list("404"), [pair("/missing.html", "404")]);
    assert_eq!(list("503"), [pair("/unavailable", "503")]);
    assert_eq!(list("server_error"), [pair("/slow", "504"), pair("/unavailable", "503")]);
    assert_eq!(list("ok"), [pair("/api/orders/42", "200"), pair("/index.html", "200")]);
    let slow = calls(dirs, &CallsQuery { status: Some(Status::Code(504)), ..CallsQuery::default() }).unwrap();
    assert_eq!(col(&slow, "latency_ns"), ["1004120000"], "tshark: 1795592490.843571 - request at .839451");
    assert_eq!(col(&slow, "nat_path"), ["-"], "one capture point: no NAT path");

    let q = CallsQuery {
        status: Some(Status::Class("server_error".into())),
        by: Some(Key::Server),
        window_ns: Some(60_000_000_000),
        ..CallsQuery::default()
    };
    let agg = calls(dirs, &q).unwrap();
    assert_eq!(agg.columns, ["window_start_ns", "server", "calls", "matched", "rate"]);
    assert_eq!(
        agg.rows,
        [vec![
            Value::Time(1_795_592_460_000_000_000),
            Value::Str("10.99.16.20:80".into()),
            Value::Int(5),
            Value::Int(2),
            Value::Float(0.4)
        ]]
    );
    let sql = story(&out.0, "story_503.sql", &[]);
    assert_eq!(sql.len(), 1);
    for c in ["window_start_ns", "server", "calls", "matched", "rate"] {
        assert_eq!(sql_col(&sql, c), col(&agg, c), "{c}");
    }
    // Per 100 ms (calls count at their request): the 503 among the first
    // connection's three calls, the 504 among the second's two.
    let fine = calls(dirs, &CallsQuery { window_ns: Some(100_000_000), ..q }).unwrap();
    assert_eq!(col(&fine, "window_start_ns"), ["1795592489700000000", "1795592489800000000"]);
    assert_eq!(col(&fine, "calls"), ["3", "2"]);
    assert_eq!(col(&fine, "matched"), ["1", "1"]);
}

/// Story 3: `top --by resource` on http_errors.pcap, plain and compared
/// before and after 1795592489.8 (between the two connections).
#[test]
fn top_by_resource_and_compare() {
    let out = Scratch::new("analyst-top");
    run(&[("http_errors.pcap", pcap("http_errors.pcap"))], &out.0, "e");
    let dirs = std::slice::from_ref(&out.0);
    let q = TopQuery {
        filters: Filters::default(),
        status: None,
        by: Key::Resource,
        window_ns: None,
        compare: None,
        limit: 3,
    };
    let rows = top(dirs, &q).unwrap();
    assert_eq!(col(&rows, "request_resource"), ["/api/orders/42", "/index.html", "/missing.html"]);
    assert_eq!(col(&rows, "calls"), ["1", "1", "1"]);
    assert_eq!(col(&rows, "share"), ["0.2", "0.2", "0.2"]);
    let by_server = top(dirs, &TopQuery { by: Key::Server, ..q.clone() }).unwrap();
    assert_eq!(col(&by_server, "server"), ["10.99.16.20:80"]);
    assert_eq!(col(&by_server, "calls"), ["5"]);

    let (b0, t, a1) = (1_795_592_489_000_000_000, 1_795_592_489_800_000_000, 1_795_592_491_000_000_000);
    let ranges = Compare::Ranges {
        before: flowtrail::dataset::TimeRange { since: b0, until: t },
        after: flowtrail::dataset::TimeRange { since: t, until: a1 },
    };
    let cmp = top(dirs, &TopQuery { compare: Some(ranges), limit: 10, ..q.clone() }).unwrap();
    assert_eq!(
        col(&cmp, "request_resource"),
        ["/api/orders/42", "/slow", "/index.html", "/missing.html", "/unavailable"]
    );
    assert_eq!(col(&cmp, "calls_before"), ["0", "0", "1", "1", "1"]);
    assert_eq!(col(&cmp, "calls_after"), ["1", "1", "0", "0", "0"]);
    assert_eq!(col(&cmp, "after_per_min"), ["50", "50", "0", "0", "0"], "1 call in 1.2 s");
    assert_eq!(col(&cmp, "change"), ["-", "-", "-1", "-1", "-1"]);
    // The story's parameters are these ranges.
    let sql = story(&out.0, "story_surge.sql", &[]);
    for c in ["rank", "request_resource", "calls_before", "calls_after"] {
        assert_eq!(sql_col(&sql, c), col(&cmp, c), "{c}");
    }
    // One instant: the same counts.
    let at = top(dirs, &TopQuery { compare: Some(Compare::At(t)), limit: 10, ..q }).unwrap();
    assert_eq!(col(&at, "calls_before"), col(&cmp, "calls_before"));
    assert_eq!(col(&at, "calls_after"), col(&cmp, "calls_after"));
}

/// Story 4: `diagnose` on a lossy transfer (network) and on a closed port
/// (server), both in one output directory.
#[test]
fn diagnose_network_and_server() {
    let out = Scratch::new("analyst-diag");
    run(
        &[
            ("tcp_loss_reorder.pcap", pcap("tcp_loss_reorder.pcap")),
            ("tcp_rst_closed_port.pcap", pcap("tcp_rst_closed_port.pcap")),
        ],
        &out.0,
        "d",
    );
    let dirs = std::slice::from_ref(&out.0);
    let q = |s: &str| DiagnoseQuery {
        filters: Filters { server: Some(Endpoint::parse(s).unwrap()), ..Filters::default() },
    };
    let loss = diagnose(dirs, &q("10.99.7.20")).unwrap();
    assert_eq!(loss.verdict, "network");
    assert_eq!(
        (
            loss.flows,
            loss.client_packets,
            loss.server_packets,
            loss.client_retransmissions,
            loss.server_retransmissions
        ),
        (1, 211, 237, 0, 29)
    );
    assert_eq!(loss.evidence, [("network", "server→client retransmissions: 29 of 237 packets (12.2%)".to_string())]);
    assert_eq!((loss.refused, loss.server_rst, loss.client_rst, loss.calls, loss.timeouts), (0, 0, 0, 1, 0));
    assert_eq!(loss.rtt_p50_ns, Some(5_159_000));

    let closed = diagnose(dirs, &q("10.99.5.20:9999")).unwrap();
    assert_eq!(closed.verdict, "server");
    assert_eq!((closed.flows, closed.refused, closed.calls), (2, 2, 0));
    assert_eq!(closed.evidence, [("server", "2 connections refused (RST to the SYN)".to_string())]);
    assert_eq!(closed.resets.len(), 2);
    assert!(closed.resets.iter().all(|(_, who, _)| who == "refused"));

    let nobody = diagnose(dirs, &q("10.99.5.20:80")).unwrap();
    assert_eq!((nobody.verdict, nobody.flows), ("none", 0));

    // The SQL's rule gives the same numbers and verdicts.
    for (d, edit) in [
        (&loss, vec![]),
        (
            &closed,
            vec![
                ("cast('10.99.7.20' as string)", "cast('10.99.5.20' as string)"),
                ("cast(null as int) as server_port", "cast(9999 as int) as server_port"),
            ],
        ),
    ] {
        let sql = story(&out.0, "story_diagnose.sql", &edit);
        assert_eq!(sql.len(), 1);
        let r = &sql[0];
        let ours = flowtrail::query::diagnose::rows(d);
        for (i, c) in ours.columns.iter().enumerate() {
            if c == "server" || c == "evidence" {
                continue;
            }
            assert_eq!(r[c.as_str()], text(&ours.rows[0][i]), "{}: {c}", d.server);
        }
    }
}

/// Not a test: writes a day-like dataset of synthetic calls (one million
/// over 24 hours, 200 resources, 20 servers, 3% 5xx) through the sink to
/// `$FLOWTRAIL_ANALYST_DATA` (default: a scratch dir, removed) and prints how
/// fast `calls --by server --window 1m` and `top --by resource` scan it.
/// Run: `cargo test -p flowtrail-tests --test analyst -- --ignored --nocapture day_like`;
/// then time the release binary on the kept directory.
#[test]
#[ignore = "a speed figure, not a check"]
fn day_like_dataset_speed() {
    use flowtrail::records::CallRecord;
    use flowtrail::sink::ParquetSink;
    let scratch = Scratch::new("analyst-day");
    let dir = std::env::var_os("FLOWTRAIL_ANALYST_DATA").map_or_else(|| scratch.0.clone(), PathBuf::from);
    let t0: i64 = 1_795_564_800_000_000_000; // 2026-11-25T00:00:00Z
    let n: i64 = 1_000_000;
    let step = 86_400_000_000_000 / n;
    let mut sink = ParquetSink::<CallRecord>::new(&dir, "day");
    let mut batch = Vec::with_capacity(50_000);
    for i in 0..n {
        let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as i64) as u64;
        let code = if x % 100 < 3 { 503 } else { 200 };
        batch.push(CallRecord {
            flow_id: i / 4,
            call_id: i,
            call_index: (i % 4) as i32,
            start_ns: t0 + i * step,
            end_ns: t0 + i * step + 2_000_000,
            request_ns: Some(t0 + i * step),
            response_start_ns: Some(t0 + i * step + 1_000_000),
            response_end_ns: Some(t0 + i * step + 2_000_000),
            latency_ns: Some(2_000_000),
            first_byte_ns: Some(1_000_000),
            capture_point: "edge".into(),
            client_ip: format!("10.1.{}.{}", (x >> 8) % 200, x % 250),
            client_port: 30_000 + (i % 30_000) as i32,
            server_ip: format!("10.2.0.{}", (x >> 16) % 20),
            server_port: 443,
            l4_protocol: "tcp".into(),
            l7_protocol: "http".into(),
            version: Some("HTTP/1.1".into()),
            request_type: Some("GET".into()),
            request_domain: Some("api.example.test".into()),
            request_resource: Some(format!("/api/v1/items/{}", (x >> 24) % 200)),
            response_code: Some(code),
            response_status: if code == 503 { "server_error" } else { "ok" }.into(),
            request_bytes: 120,
            response_bytes: 800,
            user_agent: Some(format!("sdk/{}", (x >> 32) % 5)),
            attributes: vec![("http.header.x-sdk-version".into(), format!("1.{}", (x >> 40) % 5))],
            ..CallRecord::default()
        });
        if batch.len() == 50_000 {
            sink.write(std::mem::take(&mut batch)).unwrap();
        }
    }
    sink.write(batch).unwrap();
    sink.close().unwrap();
    let dirs = std::slice::from_ref(&dir);
    let started = std::time::Instant::now();
    let q = CallsQuery {
        status: Some(Status::Class("server_error".into())),
        by: Some(Key::Server),
        window_ns: Some(60_000_000_000),
        ..CallsQuery::default()
    };
    let agg = calls(dirs, &q).unwrap();
    let s1 = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let t = TopQuery {
        filters: Filters::default(),
        status: None,
        by: Key::Attr("http.header.x-sdk-version".into()),
        window_ns: None,
        compare: None,
        limit: 10,
    };
    let rows = top(dirs, &t).unwrap();
    let s2 = started.elapsed().as_secs_f64();
    assert_eq!(rows.rows.len(), 5);
    assert!(!agg.rows.is_empty());
    println!(
        "day-like dataset {}: {n} calls; calls --by server --window 1m: {} rows in {s1:.2} s ({:.0} calls/s); \
         top --by attr: {s2:.2} s ({:.0} calls/s) [this build's opt-level]",
        dir.display(),
        agg.rows.len(),
        n as f64 / s1,
        n as f64 / s2
    );
}
