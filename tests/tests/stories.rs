//! The seed's stories end to end, on the captures in pcaps/story/ that
//! stage them with real servers (pcaps/story/README.md), each answered by
//! the analyst commands and checked against the set's facts.tsv (made from
//! the servers' and clients' own logs, checked against the pcaps with
//! tshark when the set was made).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flowtrail::flow::FlowConfig;
use flowtrail::nat::NatConfig;
use flowtrail::pipeline::{replay, Input, ReplayOptions};
use flowtrail::query::calls::{calls, CallsQuery, Status};
use flowtrail::query::diagnose::{diagnose, DiagnoseQuery};
use flowtrail::query::top::{top, Compare, TopQuery};
use flowtrail::query::{Endpoint, Filters, Key, Rows, Value};
use flowtrail_tests::{root, Scratch};

fn set(name: &str) -> PathBuf {
    root().join("pcaps/story").join(name)
}

/// Replays every pcap of a set (point = file stem), keeping `X-SDK-Version`.
fn replay_set(dir: &Path, out: &Path) {
    let mut inputs: Vec<Input> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .map(|p| Input { point: Some(p.file_stem().unwrap().to_string_lossy().into_owned()), path: p })
        .collect();
    inputs.sort_by(|a, b| a.path.cmp(&b.path));
    let mut flow = FlowConfig::default();
    if let Some(l7) = flow.l7.as_mut() {
        l7.session.attr_headers = vec!["x-sdk-version".into()];
    }
    let opts = ReplayOptions {
        inputs,
        out_dir: out.to_path_buf(),
        workers: 1,
        flow,
        defrag: flowtrail::defrag::DefragConfig::default(),
        progress: false,
        run_id: "story".into(),
        nat: Some(NatConfig::default()),
    };
    let s = replay(&opts).expect("replay");
    assert!(s.input_errors.is_empty(), "{:?}", s.input_errors);
}

fn facts(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("facts.tsv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<String> = lines.next().unwrap().split('\t').map(str::to_string).collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| head.iter().cloned().zip(l.split('\t').map(str::to_string)).collect())
        .collect()
}

fn col(rows: &Rows, name: &str) -> Vec<String> {
    rows.column(name)
        .into_iter()
        .map(|v| match v {
            Value::Null => "-".into(),
            v => v.raw_text(),
        })
        .collect()
}

/// "Where does the intermittent 503 start?" Every 503 the client got was
/// answered by b2 behind the proxy: `calls --status 503 --point client`
/// follows each one's NAT path to the server that really answered.
#[test]
fn intermittent_503_starts_at_b2() {
    let dir = set("story_503");
    let out = Scratch::new("story-503");
    replay_set(&dir, &out.0);
    let f = facts(&dir);
    let want_503: Vec<&BTreeMap<String, String>> = f.iter().filter(|r| r["proxy_status"] == "503").collect();
    assert!(!want_503.is_empty());
    let q = CallsQuery {
        filters: Filters { point: Some("client".into()), ..Filters::default() },
        status: Some(Status::Code(503)),
        ..CallsQuery::default()
    };
    let rows = calls(std::slice::from_ref(&out.0), &q).unwrap();
    assert_eq!(rows.rows.len(), want_503.len(), "one row per 503 the client got");
    let mut got: Vec<(String, String)> =
        col(&rows, "request_resource").into_iter().zip(col(&rows, "path_server")).collect();
    got.sort();
    let mut want: Vec<(String, String)> =
        want_503.iter().map(|r| (r["resource"].clone(), r["backend_addr"].clone())).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(want.iter().all(|(_, b)| b == "10.99.81.22:80"), "every 503 came from b2");
    // And the cluster view: 503s by server, seen at the backend side.
    let by = CallsQuery {
        filters: Filters { point: Some("backend".into()), ..Filters::default() },
        status: Some(Status::Code(503)),
        by: Some(Key::Server),
        ..CallsQuery::default()
    };
    let agg = calls(std::slice::from_ref(&out.0), &by).unwrap();
    println!("{:?}\n{:?}", agg.columns, agg.rows);
    let servers = col(&agg, "server");
    let matched = col(&agg, "matched");
    let b2 = servers.iter().position(|s| s == "10.99.81.22:80").expect("b2 row");
    assert_eq!(matched[b2], want_503.len().to_string());
    if let Some(b1) = servers.iter().position(|s| s == "10.99.81.21:80") {
        assert_eq!(matched[b1], "0", "b1 never answered 503");
    }
}

/// "Which URI surged after the release, from which client version?"
/// Comparing the phase before the pause with the one after it ranks
/// /api/cart/sync first, all of it from SDK 1.5.0.
#[test]
fn surge_is_cart_sync_from_sdk_1_5_0() {
    let dir = set("story_surge");
    let out = Scratch::new("story-surge");
    replay_set(&dir, &out.0);
    let f = facts(&dir);
    let pause = f.iter().find(|r| r["phase"] == "pause").expect("pause row");
    let mid = |s: &str| (s.parse::<f64>().unwrap() * 1e9) as i64;
    let at = (mid(&pause["first_ts"]) + mid(&pause["last_ts"])) / 2;
    let sync: i64 = f
        .iter()
        .filter(|r| r["phase"] == "B" && r["resource"] == "/api/cart/sync")
        .map(|r| r["requests"].parse::<i64>().unwrap())
        .sum();
    assert!(sync > 0);
    let dirs = std::slice::from_ref(&out.0);
    let q = TopQuery {
        filters: Filters::default(),
        status: None,
        by: Key::Resource,
        window_ns: None,
        compare: Some(Compare::At(at)),
        limit: 5,
    };
    let by_res = top(dirs, &q).unwrap();
    assert_eq!(col(&by_res, "request_resource")[0], "/api/cart/sync");
    assert_eq!(
        (col(&by_res, "calls_before")[0].as_str(), col(&by_res, "calls_after")[0].clone()),
        ("0", sync.to_string())
    );
    let by_sdk = top(dirs, &TopQuery { by: Key::Attr("http.header.x-sdk-version".into()), ..q }).unwrap();
    println!("{:?}\n{:?}", by_sdk.columns, by_sdk.rows);
    let keys = col(&by_sdk, &by_sdk.columns[1].clone());
    assert_eq!(keys[0], "1.5.0", "the surge comes from the new release");
    assert_eq!(col(&by_sdk, "calls_before")[0], "0");
    assert_eq!(col(&by_sdk, "calls_after")[0], sync.to_string());
}

/// "Is the third-party timeout the network or the server?" The lossy
/// server's flows show retransmissions (network); the other one resets
/// its connections (server).
#[test]
fn timeout_is_network_for_one_server_and_resets_for_the_other() {
    let dir = set("story_timeout");
    let out = Scratch::new("story-timeout");
    replay_set(&dir, &out.0);
    let f = facts(&dir);
    let fact = |name: &str| f.iter().find(|r| r["server"] == name).expect("server row").clone();
    let dirs = std::slice::from_ref(&out.0);
    let q = |s: &str| DiagnoseQuery {
        filters: Filters { server: Some(Endpoint::parse(s).unwrap()), ..Filters::default() },
    };
    let lossy = fact("lossy");
    let d = diagnose(dirs, &q(&lossy["server_addr"])).unwrap();
    println!("lossy: {} {:?}", d.verdict, d.evidence);
    assert_eq!(d.verdict, "network");
    assert!(d.client_retransmissions + d.server_retransmissions > 0);
    assert_eq!(d.server_rst, 0);
    let resetting = fact("resetting");
    let d = diagnose(dirs, &q(&resetting["server_addr"])).unwrap();
    println!("resetting: {} {:?}", d.verdict, d.evidence);
    assert_eq!(d.verdict, "server");
    assert_eq!(d.server_rst.to_string(), resetting["reset"], "one server reset per reset connection");
    assert_eq!(d.client_retransmissions + d.server_retransmissions, 0);
}
