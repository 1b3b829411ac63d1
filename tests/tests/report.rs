//! `flowtrail report`: the HTML page built from known captures.
//!
//! The service map's SVG carries `data-node` / `data-edge` attributes; the
//! tests parse the page (a small tag tokenizer below, quotes respected,
//! entities decoded) and require the exact sets of nodes and edges the
//! captures hold (pcaps/nat/proxy_404/truth.tsv, pcaps/README.md). Strings
//! from records must come out escaped. Then headless Chromium (Debian
//! `chromium`, scripts/setup.sh --test) renders the page: no console
//! errors, and a screenshot kept as target/test-artifacts/report.png.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use flowtrail::dataset::TimeRange;
use flowtrail::nat::NatConfig;
use flowtrail::pipeline::{replay, Input, ReplayOptions};
use flowtrail::records::{CallRecord, FlowRecord};
use flowtrail::report::{write_report, write_run_summary, ReportOptions};
use flowtrail::sink::ParquetSink;
use flowtrail_tests::{root, Scratch};

fn run(files: &[PathBuf], out: &Path) {
    let opts = ReplayOptions {
        inputs: files
            .iter()
            .map(|p| Input { path: p.clone(), point: Some(p.file_stem().unwrap().to_string_lossy().into_owned()) })
            .collect(),
        out_dir: out.to_path_buf(),
        workers: 1,
        flow: flowtrail::flow::FlowConfig::default(),
        defrag: flowtrail::defrag::DefragConfig::default(),
        progress: false,
        run_id: "report".into(),
        nat: Some(NatConfig::default()),
    };
    let s = replay(&opts).expect("replay");
    assert!(s.input_errors.is_empty(), "{:?}", s.input_errors);
    // What `flowtrail replay` does after the run (main.rs `conclude`).
    write_run_summary(out, &opts.run_id, &s).expect("runs/report.json");
}

fn report(dir: &Path) -> (flowtrail::report::Report, String) {
    let out = dir.join("report.html");
    let opts = ReportOptions { dirs: vec![dir.to_path_buf()], range: TimeRange::default(), title: None };
    let r = write_report(&opts, &out).expect("report");
    (r, std::fs::read_to_string(&out).expect("report.html"))
}

/// One start tag: name and attributes (values entity-decoded).
#[derive(Debug)]
struct Tag {
    name: String,
    attrs: BTreeMap<String, String>,
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// Start tags of an HTML page, in order. Quoted attribute values may hold
/// `>`; comments, end tags and the contents of `<script>`/`<style>` are skipped.
fn tags(html: &str) -> Vec<Tag> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        i += off + 1;
        if html[i..].starts_with("!--") {
            i += html[i..].find("-->").expect("comment closed") + 3;
            continue;
        }
        if i >= b.len() || !b[i].is_ascii_alphabetic() {
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
            i += 1;
        }
        let name = html[start..i].to_ascii_lowercase();
        let mut attrs = BTreeMap::new();
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            assert!(i < b.len(), "tag <{name}> not closed");
            if b[i] == b'>' {
                i += 1;
                break;
            }
            let s = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
                i += 1;
            }
            let key = html[s..i].to_ascii_lowercase();
            let mut value = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                let q = b[i];
                assert!(q == b'"' || q == b'\'', "unquoted attribute {key} in <{name}>");
                let end = html[i + 1..].find(q as char).expect("quote closed") + i + 1;
                value = decode(&html[i + 1..end]);
                i = end + 1;
            }
            attrs.insert(key, value);
        }
        if name == "script" || name == "style" {
            i += html[i..].find(&format!("</{name}>")).expect("raw text element closed");
        }
        out.push(Tag { name, attrs });
    }
    out
}

/// The map as parsed from the page: node id → kind, edge → (calls, errors, translation).
type Nodes = BTreeMap<String, String>;
type Edges = BTreeMap<String, (u64, u64, String)>;

fn map_of(html: &str) -> (Nodes, Edges) {
    let (mut nodes, mut edges) = (BTreeMap::new(), BTreeMap::new());
    for t in tags(html) {
        if let Some(id) = t.attrs.get("data-node") {
            assert_eq!(t.name, "g");
            assert!(nodes.insert(id.clone(), t.attrs["data-kind"].clone()).is_none(), "node {id} twice");
        }
        if let Some(e) = t.attrs.get("data-edge") {
            assert_eq!(e, &format!("{}->{}", t.attrs["data-from"], t.attrs["data-to"]));
            let calls = t.attrs["data-calls"].parse().unwrap();
            let errors = t.attrs["data-errors"].parse().unwrap();
            let v = (calls, errors, t.attrs["data-translation"].clone());
            assert!(edges.insert(e.clone(), v).is_none(), "edge {e} twice");
        }
    }
    for e in edges.keys() {
        let (a, b) = e.split_once("->").unwrap();
        assert!(nodes.contains_key(a) && nodes.contains_key(b), "edge {e} between drawn nodes");
    }
    (nodes, edges)
}

fn owned<const N: usize, V: Clone>(v: [(&str, V); N]) -> BTreeMap<String, V> {
    v.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Client 10.99.68.10 calls the nginx proxy 10.99.68.1:80 ten times; the
/// proxy (10.99.69.1 on the backend side) sends five requests to each
/// backend (truth.tsv). The proxy's upstream calls are drawn from its front,
/// dashed as `proxy`; 10.99.69.1 is no node of its own.
#[test]
fn proxy_404_map_shows_the_proxy_and_both_backends() {
    let set = root().join("pcaps/nat/proxy_404");
    let out = Scratch::new("report-proxy");
    run(&[set.join("backend.pcap"), set.join("client.pcap")], &out.0);
    let (r, html) = report(&out.0);
    let (nodes, edges) = map_of(&html);
    println!("nodes {nodes:?}\nedges {edges:?}");
    assert_eq!(
        nodes,
        owned([
            ("10.99.68.10", "client".to_string()),
            ("10.99.68.1:80", "gateway".to_string()),
            ("10.99.69.21:80", "service".to_string()),
            ("10.99.69.22:80", "service".to_string()),
        ])
    );
    assert_eq!(
        edges,
        owned([
            ("10.99.68.10->10.99.68.1:80", (10, 5, String::new())),
            ("10.99.68.1:80->10.99.69.21:80", (5, 0, "proxy".to_string())),
            ("10.99.68.1:80->10.99.69.22:80", (5, 5, "proxy".to_string())),
        ])
    );
    // Columns: client, proxy, backends.
    let cols: BTreeMap<&str, usize> = r.nodes.iter().map(|n| (n.id.as_str(), n.column)).collect();
    assert_eq!(cols["10.99.68.10"], 0);
    assert_eq!(cols["10.99.68.1:80"], 1);
    assert_eq!((cols["10.99.69.21:80"], cols["10.99.69.22:80"]), (2, 2));
    // Every 404 (five at the proxy, the same five at backend 2), by resource.
    let errors: BTreeSet<(String, Option<i32>, String, u64)> = r
        .top_errors
        .iter()
        .map(|e| (e.server.clone(), e.code, e.resource.clone().unwrap_or_default(), e.count))
        .collect();
    let mut want = BTreeSet::new();
    for res in ["/api/v2/users/2", "/api/v2/orders/4", "/api/v2/items/6", "/api/v2/users/8", "/api/v2/health"] {
        want.insert(("10.99.68.1:80".to_string(), Some(404), res.to_string(), 1));
        want.insert(("10.99.69.22:80".to_string(), Some(404), res.to_string(), 1));
    }
    assert_eq!(errors, want);
    let s = &r.summary;
    assert_eq!((s.calls, s.links), (20, 10));
    assert_eq!(s.capture_points, ["backend", "client"]);
    assert_eq!(s.runs.len(), 1);
    assert!(s.packets().unwrap() > 0);
    for id in ["10.99.69.21:80", "10.99.69.22:80", "10.99.68.1:80"] {
        assert!(r.tcp.iter().any(|t| t.server == id && t.flows > 0 && t.rtt_p50_ns.is_some()), "tcp row {id}");
    }
    assert!(html.contains(&format!("data-summary=\"packets\">{}<", s.packets().unwrap())));
    chromium_renders(&out.0.join("report.html"), "report.png");
}

/// http_errors.pcap: one client, nginx on :80, five requests on two
/// keep-alive connections answered 200, 404, 503, 200, 504.
#[test]
fn http_errors_map_is_one_client_and_nginx() {
    let out = Scratch::new("report-errors");
    run(&[root().join("pcaps/http_errors.pcap")], &out.0);
    let (r, html) = report(&out.0);
    let (nodes, edges) = map_of(&html);
    println!("nodes {nodes:?}\nedges {edges:?}");
    assert_eq!(nodes, owned([("10.99.16.10", "client".to_string()), ("10.99.16.20:80", "service".to_string())]));
    assert_eq!(edges, owned([("10.99.16.10->10.99.16.20:80", (5, 3, String::new()))]));
    let codes: BTreeSet<(Option<i32>, String)> =
        r.top_errors.iter().map(|e| (e.code, e.resource.clone().unwrap_or_default())).collect();
    assert_eq!(
        codes,
        BTreeSet::from([
            (Some(404), "/missing.html".to_string()),
            (Some(503), "/unavailable".to_string()),
            (Some(504), "/slow".to_string())
        ])
    );
    assert_eq!(r.top_resources.len(), 5);
    // --since/--until: a range that ends before the capture keeps nothing,
    // one that starts at its first call keeps all five calls.
    let build = |range| {
        flowtrail::report::build(&ReportOptions { dirs: vec![out.0.clone()], range, title: None }).expect("build")
    };
    let first = r.nodes.len();
    assert!(first > 0);
    let none = build(TimeRange { since: i64::MIN, until: 1_000_000_000 });
    assert!(none.edges.is_empty() && none.nodes.is_empty());
    let all = build(TimeRange::default());
    assert_eq!(all.edges.len(), 1);
}

fn call(i: i64, server: &str, resource: &str, domain: &str, status: &str) -> CallRecord {
    let t0 = 1_795_000_000_000_000_000;
    CallRecord {
        flow_id: 1000 + i,
        call_id: i,
        start_ns: t0 + i * 1_000_000,
        end_ns: t0 + i * 1_000_000 + 500,
        latency_ns: Some(500 + i),
        capture_point: "p<1>".into(),
        client_ip: "10.0.0.1".into(),
        client_port: 40000,
        server_ip: server.into(),
        server_port: 80,
        l4_protocol: "tcp".into(),
        l7_protocol: "http".into(),
        request_domain: Some(domain.into()),
        request_resource: Some(resource.into()),
        response_code: Some(if status == "ok" { 200 } else { 500 }),
        response_status: status.into(),
        response_exception: Some("<i>boom</i>".into()),
        ..CallRecord::default()
    }
}

/// Captured strings are data, never markup: a resource with `<script>`, a
/// Host header that closes an attribute, a server address with a tag.
#[test]
fn hostile_strings_from_records_are_escaped() {
    let dir = Scratch::new("report-xss");
    let calls = vec![
        call(1, "10.0.0.2", "/<script>alert(1)</script>", "\"><img src=x onerror=alert(2)>", "server_error"),
        call(2, "10.0.0.2", "/ok?a=1&b='2'", "evil.example'onmouseover='alert(3)", "ok"),
        call(3, "<svg onload=alert(4)>", "/x</td></tr></table><script>alert(5)</script>", "x", "server_error"),
    ];
    let mut s = ParquetSink::<CallRecord>::new(&dir.0, "t");
    s.write(calls).unwrap();
    s.close().unwrap();
    let (_, html) = report(&dir.0);
    assert_eq!(html.matches("<script").count(), 1, "only the page's own script");
    for bad in ["<img", "<svg onload", "<i>", "</td></tr></table><script", "'onmouseover='"] {
        assert!(!html.contains(bad), "{bad:?} reached the page raw");
    }
    assert!(html.contains("/&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;svg onload=alert(4)&gt;:80"));
    // Parsed back, the hostile strings are attribute values and text only.
    let (nodes, edges) = map_of(&html);
    assert!(nodes.contains_key("<svg onload=alert(4)>:80"), "{nodes:?}");
    assert_eq!(edges["10.0.0.1-><svg onload=alert(4)>:80"].0, 1);
    let t = tags(&html);
    assert_eq!(t.iter().filter(|t| t.name == "script").count(), 1);
    assert!(t.iter().all(|t| t.attrs.keys().all(|k| !k.starts_with("on"))), "no event handler attribute");
    chromium_renders(&dir.0.join("report.html"), "report-escaping.png");
}

/// Surge markers: `/hot` has 1 call in the first two thirds of the range
/// and 6 in the last third (rate ratio 2·6/1 = 12); `/flat` is even
/// (6 early, 4 late from 600 ms on: ratio 1.33); `/late` has 2 calls, both late (too few to mark).
#[test]
fn surging_resources_are_marked() {
    let dir = Scratch::new("report-surge");
    let mut calls = Vec::new();
    let mut i = 0;
    let mut at = |ms: i64, res: &str| {
        i += 1;
        let mut c = call(i, "10.0.0.2", res, "svc", "ok");
        c.start_ns = 1_795_000_000_000_000_000 + ms * 1_000_000;
        calls.push(c);
    };
    for ms in (0..=900).step_by(100) {
        at(ms, "/flat");
    }
    at(10, "/hot");
    for ms in [700, 750, 800, 850, 880, 890] {
        at(ms, "/hot");
    }
    at(800, "/late");
    at(810, "/late");
    let mut s = ParquetSink::<CallRecord>::new(&dir.0, "t");
    s.write(calls).unwrap();
    s.close().unwrap();
    let (r, html) = report(&dir.0);
    let rows: BTreeMap<&str, (u64, u64, bool)> =
        r.top_resources.iter().map(|x| (x.resource.as_str(), (x.early, x.late, x.surge))).collect();
    // Range 0..900 ms: the last third starts at 600 ms.
    assert_eq!(rows["/hot"], (1, 6, true));
    assert_eq!(rows["/flat"], (6, 4, false));
    assert_eq!(rows["/late"], (0, 2, false));
    assert_eq!(html.matches("data-surge=\"1\"").count(), 1);
}

/// Many services: the scan's cost, printed (not asserted), and the map
/// keeps every service readable (one node each; edge labels on hover).
#[test]
fn report_of_many_records_prints_its_cost() {
    let dir = Scratch::new("report-many");
    let (services, clients, n) = (48i64, 12i64, 60_000i64);
    let t0 = 1_795_000_000_000_000_000;
    let mut calls = Vec::with_capacity(n as usize);
    let mut flows = Vec::with_capacity(n as usize / 4);
    for i in 0..n {
        let svc = i % services;
        let flow_id = i / 4;
        let status = if i % 17 == 0 { "server_error" } else { "ok" };
        calls.push(CallRecord {
            flow_id,
            call_id: i,
            start_ns: t0 + i * 10_000_000,
            end_ns: t0 + i * 10_000_000 + 1_000_000,
            latency_ns: Some(1_000_000 + (i % 1000) * 1000),
            capture_point: "p".into(),
            client_ip: format!("10.1.0.{}", flow_id % clients),
            client_port: 30000 + (flow_id % 20000) as i32,
            server_ip: format!("10.2.0.{svc}"),
            server_port: 8080,
            l4_protocol: "tcp".into(),
            l7_protocol: "http".into(),
            request_domain: Some(format!("svc{svc}.example")),
            request_resource: Some(format!("/api/{}/{}", svc, i % 40)),
            response_code: Some(if status == "ok" { 200 } else { 503 }),
            response_status: status.into(),
            ..CallRecord::default()
        });
        if i % 4 == 0 {
            flows.push(FlowRecord {
                flow_id,
                record_kind: "final".into(),
                start_ns: t0 + i * 10_000_000,
                flow_start_ns: t0 + i * 10_000_000,
                end_ns: t0 + i * 10_000_000 + 50_000_000,
                capture_point: "p".into(),
                l4_protocol: "tcp".into(),
                client_ip: format!("10.1.0.{}", flow_id % clients),
                server_ip: format!("10.2.0.{}", (i / 4) % services),
                server_port: 8080,
                rtt_client_ns: Some(100_000),
                rtt_server_ns: Some(200_000 + (i % 7) * 1000),
                client_retransmissions: Some(i % 3),
                close_type: if i % 50 == 0 { "server_rst" } else { "fin" }.into(),
                ..FlowRecord::default()
            });
        }
    }
    let mut s = ParquetSink::<CallRecord>::new(&dir.0, "t");
    s.write(calls).unwrap();
    s.close().unwrap();
    let mut s = ParquetSink::<FlowRecord>::new(&dir.0, "t");
    s.write(flows).unwrap();
    s.close().unwrap();
    let (r, html) = report(&dir.0);
    println!(
        "report scan: {} records from {} files in {:.3} s = {:.0} records/s (debug build of flowtrail; page {} bytes)",
        r.scan.records,
        r.scan.files,
        r.scan.elapsed_s,
        r.scan.records as f64 / r.scan.elapsed_s.max(1e-9),
        html.len()
    );
    let (nodes, edges) = map_of(&html);
    assert_eq!(nodes.values().filter(|k| *k == "service").count(), services as usize);
    assert_eq!(nodes.values().filter(|k| *k == "client").count(), clients as usize);
    assert_eq!(edges.values().map(|e| e.0).sum::<u64>(), n as u64);
    assert_eq!(r.summary.calls, n as u64);
    assert_eq!(r.tcp.len(), services as usize);
    assert!(html.contains("<svg id=\"map\" class=\"many\""), "labels on hover only");
    chromium_renders(&dir.0.join("report.html"), "report-many.png");
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let d = target.join("test-artifacts");
    std::fs::create_dir_all(&d).expect("test-artifacts dir");
    d
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// Console messages in Chromium's log (`INFO:CONSOLE:1] "Uncaught …"`; the
/// log line does not say the level, and the page logs nothing of its own,
/// so every console message counts: exceptions, CSP violations) and failed loads.
fn console_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("net::ERR_"))
        .map(str::to_string)
        .collect()
}

/// Screenshot of `page` into target/test-artifacts/`png`; stderr back.
fn screenshot(page: &Path, png: &Path) -> String {
    let bin = chromium().expect("chromium");
    let profile = Scratch::new("chromium-profile");
    let _ = std::fs::remove_file(png);
    let out = Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args([
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed ({}):\n{stderr}", out.status);
    stderr
}

/// Renders `page` in headless Chromium: no console errors, a screenshot of
/// some substance. Without Chromium (scripts/setup.sh --test installs it)
/// this says so and checks nothing.
fn chromium_renders(page: &Path, png_name: &str) {
    if chromium().is_none() {
        eprintln!("SKIP chromium: not installed (scripts/setup.sh --test installs Debian's chromium)");
        return;
    }
    let dir = artifacts();
    let png = dir.join(png_name);
    let stderr = screenshot(page, &png);
    let errors = console_errors(&stderr);
    assert!(errors.is_empty(), "console errors rendering {}:\n{}", page.display(), errors.join("\n"));
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    println!("screenshot {} ({size} bytes)", png.display());
    assert!(size > 20_000, "screenshot {} is {size} bytes", png.display());
    let head = std::fs::read(&png).unwrap();
    assert_eq!(&head[..8], b"\x89PNG\r\n\x1a\n");
}

/// The console check itself: a page that throws is caught.
#[test]
fn chromium_log_shows_a_thrown_error() {
    if chromium().is_none() {
        eprintln!("SKIP chromium: not installed (scripts/setup.sh --test installs Debian's chromium)");
        return;
    }
    let bad = Scratch::new("report-bad-page");
    let page = bad.0.join("bad.html");
    std::fs::write(&page, "<!DOCTYPE html><html><body><p>x</p><script>no_such_function();</script></body></html>")
        .unwrap();
    let stderr = screenshot(&page, &bad.0.join("bad.png"));
    assert!(!console_errors(&stderr).is_empty(), "a thrown error is seen in chromium's log:\n{stderr}");
}
