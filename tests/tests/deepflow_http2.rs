//! HTTP/2 and gRPC calls against DeepFlow's own captures and expected
//! results (`deepflow/http__*.pcap` with `.upstream.result`), and against
//! tshark's HTTP/2 dissector on the other corpus captures with HTTP/2.
//!
//! DeepFlow's results are debug-printed `HttpInfo` structs, one per parsed
//! message (request headers, data, response headers, trailers). They are
//! folded into one expected call per stream id: the request's method and
//! path, and the response code as flowtrail defines it (`:status` for
//! HTTP/2, `grpc-status` for gRPC). DeepFlow prints gRPC request methods as
//! its marker `_RequestHeader`; its flow log shows `POST` (gRPC is always
//! POST), so the marker reads as `POST`. A field that is empty or `None`
//! on both sides agrees (e.g. a `:path` behind an unknown HPACK index).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flowtrail_tests::l7::attr;
use flowtrail_tests::{corpus, have_tshark, replay_all, Table};

/// The captures, and the exact agreement reached on (request type,
/// resource, response code) per capture: a regression fails the test.
const DEEPFLOW: [(&str, [u32; 3]); 6] = [
    ("http__grpc-segmented", [1, 1, 1]),
    ("http__grpc-server-stream", [1, 1, 1]),
    ("http__grpc-service-name", [1, 1, 1]),
    ("http__grpc-unknown", [1, 1, 1]),
    ("http__h2c_ascii", [1, 1, 1]),
    ("http__httpv2-stream-id", [1, 1, 1]),
];

/// One expected or observed call: type, resource, code (text, `-` for none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fact {
    protocol: String,
    request_type: String,
    resource: String,
    code: String,
}

/// The text of `key: value` in a debug-printed struct (`Some("x")` -> x,
/// `Some(5)` -> 5, `None` or `""` -> `-`).
fn field(line: &str, key: &str) -> String {
    let pat = format!(" {key}: ");
    let Some(i) = line.find(&pat) else { return "-".into() };
    let rest = &line[i + pat.len()..];
    let v = if let Some(r) = rest.strip_prefix("Some(") {
        &r[..r.find(')').unwrap_or(r.len())]
    } else {
        &rest[..rest.find([',', ' ']).unwrap_or(rest.len())]
    };
    let v = v.trim_matches('"');
    if v.is_empty() || v == "None" {
        "-".into()
    } else {
        v.to_string()
    }
}

fn method_text(m: &str) -> String {
    match m {
        "_RequestHeader" => "POST".into(),
        "-" | "None" | "_ResponseHeader" | "_RequestData" | "_ResponseData" => "-".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// DeepFlow's messages folded per stream id.
fn expected(result: &Path) -> BTreeMap<String, Fact> {
    let text = std::fs::read_to_string(result).expect("read upstream result");
    let mut out: BTreeMap<String, Fact> = BTreeMap::new();
    for line in text.lines().filter(|l| l.ends_with("is_http: true")) {
        let stream = field(line, "stream_id");
        let f = out.entry(stream).or_insert_with(|| Fact {
            protocol: "-".into(),
            request_type: "-".into(),
            resource: "-".into(),
            code: "-".into(),
        });
        let proto = field(line, "proto");
        if proto == "Grpc" || f.protocol == "-" {
            f.protocol = if proto == "Grpc" { "grpc".into() } else { "http2".into() };
        }
        let m = method_text(&field(line, "method"));
        if m != "-" {
            f.request_type = m;
        }
        let path = field(line, "path");
        if path != "-" {
            f.resource = path;
        }
        let code = if f.protocol == "grpc" { field(line, "grpc_status_code") } else { field(line, "status_code") };
        if code != "-" {
            f.code = code;
        }
    }
    out
}

/// Our calls per stream id.
fn observed(calls: &Table) -> BTreeMap<String, Fact> {
    let mut out = BTreeMap::new();
    for r in calls.maps() {
        if !matches!(r["l7_protocol"], "http2" | "grpc") {
            continue;
        }
        let stream = attr(r["attributes"], "http2.stream_id").unwrap_or_else(|| "-".into());
        out.insert(
            stream,
            Fact {
                protocol: r["l7_protocol"].to_string(),
                request_type: r["request_type"].to_string(),
                resource: r["request_resource"].to_string(),
                code: r["response_code"].to_string(),
            },
        );
    }
    out
}

/// Why a field may differ, for the disagreement table.
fn explain(field: &str, ours: &str, theirs: &str) -> &'static str {
    match (field, ours, theirs) {
        (_, "-", _) => "missing in ours: header behind an HPACK index or message not seen",
        (_, _, "-") => "DeepFlow leaves it empty (message it does not pair or parse)",
        ("code", _, _) => "different response code",
        _ => "different value",
    }
}

#[test]
fn deepflow_http2_and_grpc_captures() {
    let Some(root) = corpus() else {
        println!("SKIP: no corpus (shared/corpus not found)");
        return;
    };
    let mut totals = [0u32; 3];
    let mut total_calls = 0u32;
    let mut empty_totals = [0u32; 3];
    println!("{:<28} {:>5} {:>5} {:>5} {:>5}", "capture", "calls", "type", "rsrc", "code");
    let mut disagreements = Vec::new();
    for (name, expect_counts) in DEEPFLOW {
        let pcap = root.join("deepflow").join(format!("{name}.pcap"));
        let want = expected(&root.join("deepflow").join(format!("{name}.upstream.result")));
        let (_, _, calls) = replay_all(&[pcap], 1);
        let got = observed(&calls);
        let mut agree = [0u32; 3];
        let mut both_empty = [0u32; 3];
        for (stream, w) in &want {
            let empty = Fact { protocol: "-".into(), ..Fact::default() };
            let g = got.get(stream).unwrap_or(&empty);
            for (i, (label, o, t)) in [
                ("type", &g.request_type, &w.request_type),
                ("resource", &g.resource, &w.resource),
                ("code", &g.code, &w.code),
            ]
            .into_iter()
            .enumerate()
            {
                if o == t {
                    agree[i] += 1;
                    if o == "-" {
                        both_empty[i] += 1;
                    }
                } else {
                    disagreements.push(format!(
                        "{name} stream {stream} {label}: ours {o} deepflow {t} ({})",
                        explain(label, o, t)
                    ));
                }
            }
            if g.protocol != "-" && g.protocol != w.protocol {
                disagreements
                    .push(format!("{name} stream {stream} protocol: ours {} deepflow {}", g.protocol, w.protocol));
            }
        }
        for stream in got.keys().filter(|s| !want.contains_key(*s)) {
            disagreements.push(format!("{name} stream {stream}: a call DeepFlow does not report"));
        }
        println!(
            "{name:<28} {:>5} {:>5} {:>5} {:>5}   (of which both empty: {:?})",
            want.len(),
            agree[0],
            agree[1],
            agree[2],
            both_empty
        );
        empty_totals.iter_mut().zip(both_empty).for_each(|(t, e)| *t += e);
        total_calls += want.len() as u32;
        for i in 0..3 {
            totals[i] += agree[i];
        }
        assert_eq!(agree, expect_counts, "{name}: agreement changed (type, resource, code)");
    }
    println!("{:<28} {:>5} {:>5} {:>5} {:>5}", "total", total_calls, totals[0], totals[1], totals[2]);
    println!("disagreements: {}", disagreements.len());
    for d in &disagreements {
        println!("  {d}");
    }
    assert_eq!(total_calls, 6);
    assert_eq!(totals, [6, 6, 6]);
    // grpc-unknown and httpv2-stream-id start mid-connection: `:path` is
    // behind an HPACK index neither side saw; grpc-segmented and
    // httpv2-stream-id hold no response, grpc-unknown no grpc-status.
    assert_eq!(empty_totals, [0, 2, 3]);
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

/// Other corpus captures with HTTP/2, and the port tshark must decode as
/// HTTP/2 (`None`: its heuristics find it).
const OTHERS: [(&str, Option<u16>); 4] = [
    ("ndpi/http2.pcapng", Some(29518)),
    ("suricata-verify/dns-over-http2.pcap", None),
    ("suricata-verify/http2-continuation.pcap", None),
    ("suricata-verify/http2-range.pcap", None),
];

/// (method path) of each request HEADERS and the `:status` of each
/// response HEADERS, as tshark dissects them, sorted.
fn tshark_facts(pcap: &Path, port: Option<u16>) -> (Vec<String>, Vec<String>) {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-Y", "http2.type == 1", "-T", "fields", "-E", "separator=|"]);
    if let Some(p) = port {
        cmd.args(["-d", &format!("tcp.port=={p},http2")]);
    }
    cmd.args(["-e", "http2.headers.method", "-e", "http2.headers.path", "-e", "http2.headers.status"]);
    let out = cmd.output().expect("run tshark");
    let mut requests = Vec::new();
    let mut statuses = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut cols = line.split('|');
        let (m, p, s) = (cols.next().unwrap_or(""), cols.next().unwrap_or(""), cols.next().unwrap_or(""));
        for (m, p) in m.split(',').zip(p.split(',')).filter(|(m, _)| !m.is_empty()) {
            requests.push(format!("{m} {p}"));
        }
        statuses.extend(s.split(',').filter(|s| !s.is_empty() && !s.starts_with('1')).map(str::to_string));
    }
    requests.sort();
    statuses.sort();
    (requests, statuses)
}

fn our_facts(calls: &Table) -> (Vec<String>, Vec<String>) {
    let mut requests = Vec::new();
    let mut statuses = Vec::new();
    for r in calls.maps() {
        if !matches!(r["l7_protocol"], "http2" | "grpc") {
            continue;
        }
        if r["request_type"] != "-" {
            requests.push(format!("{} {}", r["request_type"], r["request_resource"]));
        }
        let status = if r["l7_protocol"] == "grpc" {
            attr(r["attributes"], "http.status").unwrap_or_else(|| "-".into())
        } else {
            r["response_code"].to_string()
        };
        if status != "-" {
            statuses.push(status);
        }
    }
    requests.sort();
    statuses.sort();
    (requests, statuses)
}

#[test]
fn other_corpus_http2_captures_agree_with_tshark() {
    let Some(root) = corpus() else {
        println!("SKIP: no corpus (shared/corpus not found)");
        return;
    };
    if !have_tshark() {
        println!("SKIP: tshark not installed");
        return;
    }
    println!("{:<42} {:>13} {:>13}", "capture", "requests", "statuses");
    let mut rows = Vec::new();
    for (file, port) in OTHERS {
        let pcap: PathBuf = root.join(file);
        let (_, _, calls) = replay_all(std::slice::from_ref(&pcap), 1);
        let (our_req, our_st) = our_facts(&calls);
        let (ts_req, ts_st) = tshark_facts(&pcap, port);
        println!("{file:<42} {:>6}/{:<6} {:>6}/{:<6}", our_req.len(), ts_req.len(), our_st.len(), ts_st.len());
        if our_req != ts_req || our_st != ts_st {
            println!("  ours:   {our_req:?} {our_st:?}");
            println!("  tshark: {ts_req:?} {ts_st:?}");
        }
        rows.push((file, our_req == ts_req, our_st == ts_st, our_req.len(), ts_req.len()));
    }
    // http2-range upgrades from HTTP/1 (`Upgrade: h2c`): the analyzer
    // detects HTTP/2 again after the 101, so the streams that follow are
    // calls (the upgrading request itself is HTTP/1 for tshark and us).
    let expect = [
        ("ndpi/http2.pcapng", true, true),
        // Stream 7 is reset by the client (CANCEL) and its 200 crosses the
        // reset: the call ends as CANCEL, the late response is dropped.
        ("suricata-verify/dns-over-http2.pcap", true, false),
        ("suricata-verify/http2-continuation.pcap", true, true),
        ("suricata-verify/http2-range.pcap", true, true),
    ];
    for ((file, req, st, _, _), (efile, ereq, est)) in rows.iter().zip(expect) {
        assert_eq!((*file, *req, *st), (efile, ereq, est), "agreement with tshark changed");
    }
}
