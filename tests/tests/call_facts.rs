//! Facts about the call records of the bundled L7 captures, checked by hand
//! against the captures (tshark -V) and the way they were made
//! (pcaps/README.md): status mapping, timeouts, trace context, redaction.

use std::collections::BTreeMap;

use flowtrail::pipeline::{replay, Input, ReplayOptions};
use flowtrail_tests::{read_kind, replay_all, root, Scratch, Table};

fn rows(t: &Table) -> Vec<BTreeMap<String, String>> {
    t.rows.iter().map(|r| t.columns.iter().cloned().zip(r.iter().cloned()).collect()).collect()
}

fn calls(name: &str) -> Vec<BTreeMap<String, String>> {
    let (_, _, c) = replay_all(&[root().join("pcaps").join(name)], 1);
    rows(&c)
}

#[test]
fn http_statuses_map_to_response_status() {
    let c = calls("http_errors.pcap");
    let by_path: BTreeMap<&str, (&str, &str)> = c
        .iter()
        .map(|r| (r["request_resource"].as_str(), (r["response_code"].as_str(), r["response_status"].as_str())))
        .collect();
    assert_eq!(by_path["/index.html"], ("200", "ok"));
    assert_eq!(by_path["/missing.html"], ("404", "client_error"));
    assert_eq!(by_path["/unavailable"], ("503", "server_error"));
    assert_eq!(by_path["/slow"], ("504", "server_error"));
    let slow = c.iter().find(|r| r["request_resource"] == "/slow").unwrap();
    let latency: i64 = slow["latency_ns"].parse().unwrap();
    assert!((1_000_000_000..1_200_000_000).contains(&latency), "nginx gave up after 1 s: {latency}");
    assert_eq!(slow["response_exception"], "Gateway Time-out");
    assert_ne!(slow["x_request_id_response"], "-", "nginx echoes its request id");
}

#[test]
fn unanswered_request_is_a_call_without_response() {
    let c = calls("http_timeout.pcap");
    assert_eq!(c.len(), 1);
    let r = &c[0];
    assert_eq!((r["request_type"].as_str(), r["request_resource"].as_str()), ("GET", "/report"));
    assert_eq!(r["response_code"], "-");
    assert_eq!(r["response_start_ns"], "-");
    assert_eq!(r["latency_ns"], "-");
    assert!(["timeout", "unparsed"].contains(&r["response_status"].as_str()), "{}", r["response_status"]);
}

#[test]
fn dns_errors_and_unanswered_queries() {
    let c = calls("dns_errors.pcap");
    let status = |name: &str| -> Vec<(String, String)> {
        c.iter()
            .filter(|r| r["request_domain"] == name)
            .map(|r| (r["response_code"].clone(), r["response_status"].clone()))
            .collect()
    };
    assert_eq!(status("nope.test"), vec![("3".into(), "client_error".into())]);
    assert_eq!(status("dead.test"), vec![("5".into(), "client_error".into())]);
    assert_eq!(status("broken.test"), vec![("2".into(), "server_error".into())]);
    assert_eq!(status("silent.test"), vec![("-".into(), "timeout".into()); 2], "two unanswered queries");
    let nx = c.iter().find(|r| r["request_domain"] == "nope.test").unwrap();
    assert_eq!(nx["response_exception"], "NXDOMAIN");
}

#[test]
fn tls_handshakes_and_alerts() {
    let ok = calls("tls.pcap");
    assert_eq!(ok.len(), 4);
    assert_eq!(ok.iter().filter(|r| r["request_domain"] == "www.example.test").count(), 3);
    assert!(ok.iter().all(|r| r["response_status"] == "ok" && r["attributes"].contains("tls.ja4")));
    let fail = calls("tls_failure.pcap");
    let codes: Vec<&str> = fail.iter().map(|r| r["response_code"].as_str()).collect();
    assert_eq!(codes, vec!["70", "40"]);
    assert!(fail.iter().all(|r| r["response_status"] == "server_error"));
    assert_eq!(fail[0]["response_exception"], "protocol_version");
}

#[test]
fn trace_context_is_read_and_secrets_never_stored() {
    let dir = Scratch::new("redact");
    let mut flow = flowtrail::flow::FlowConfig::default();
    // Even when asked for, credentials are not kept.
    flow.l7.as_mut().unwrap().session.attr_headers =
        vec!["authorization".into(), "cookie".into(), "x-client-version".into(), "set-cookie".into()];
    replay(&ReplayOptions {
        inputs: vec![Input { path: root().join("pcaps/http_trace.pcap"), point: None }],
        out_dir: dir.0.clone(),
        workers: 1,
        flow,
        defrag: Default::default(),
        progress: false,
        run_id: "redact".into(),
        nat: None,
    })
    .unwrap();
    let c = rows(&read_kind(&dir.0, "calls"));
    assert_eq!(c.len(), 2);
    assert_eq!(c[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(c[0]["span_id"], "00f067aa0ba902b7");
    assert_eq!(c[0]["x_request_id"], "req-1234");
    assert_eq!(c[0]["user_agent"], "demo-app/2.3.1");
    assert!(c[0]["attributes"].contains("http.header.x-client-version: 2.3.1"), "{}", c[0]["attributes"]);
    assert_eq!(c[1]["trace_id"], "463ac35c9f6413ad48485a3953bb6124", "B3 multi-header on the second request");
    // No secret anywhere: not in any column, not in any byte of any file.
    for r in &c {
        for v in r.values() {
            assert!(!v.contains("SECRET"), "secret stored: {v}");
        }
    }
    let mut stack = vec![dir.0.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                let bytes = std::fs::read(e.path()).unwrap();
                assert!(!bytes.windows(6).any(|w| w == b"SECRET"), "secret bytes in {}", e.path().display());
            }
        }
    }
}
