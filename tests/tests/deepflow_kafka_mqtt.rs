//! Kafka and MQTT calls against DeepFlow's own captures and expected
//! results (`deepflow/kafka__*`, `deepflow/mqtt__*` with their
//! `.upstream.result`), and the other corpus captures of the two
//! protocols (nDPI `kafka.pcapng`, Zeek `mqtt.pcap`, and the DeepFlow
//! captures without a result) against tshark.
//!
//! DeepFlow prints one struct per message; a call here is a request and
//! its response, so its messages are paired first: Kafka by correlation
//! id, MQTT in order (CONNACK to CONNECT, SUBACK to SUBSCRIBE, PUBACK or
//! PUBCOMP to PUBLISH…). Compared per call:
//! - request type: DeepFlow's `api_key` / `pkt_type` (upper-cased for
//!   MQTT) with `request_type`;
//! - resource: Kafka `topic_name`, else `group_id` (empty is none); MQTT
//!   `publish_topic`, else `endpoint`; with `request_resource`;
//! - response code: the response's `status_code` (Kafka) or `code`
//!   (MQTT) with `response_code`.
//!
//! Every disagreement is printed with its explanation; the counts are
//! asserted exactly so that a change shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flowtrail_decoders::l7::kafka::parser::api_name;
use flowtrail_tests::l7::{agreement, attr, Facts};
use flowtrail_tests::{corpus, have_tshark, replay_all, Table};

/// One call, ours or DeepFlow's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Call {
    /// Kafka correlation id, or the position for MQTT.
    key: String,
    typ: Option<String>,
    resource: Option<String>,
    code: Option<i32>,
}

fn cell(s: &str) -> Option<String> {
    (s != "-").then(|| s.to_string())
}

/// Our calls of one protocol, in request order.
fn ours(calls: &Table, proto: &str) -> Vec<Call> {
    let mut v: Vec<(i64, i64, Call)> = calls
        .maps()
        .iter()
        .filter(|r| r["l7_protocol"] == proto)
        .map(|r| {
            let key = attr(r["attributes"], "kafka.correlation_id").unwrap_or_default();
            let ts = r["request_ns"].parse().or_else(|_| r["start_ns"].parse()).unwrap_or(0);
            let call = Call {
                key,
                typ: cell(r["request_type"]),
                resource: cell(r["request_resource"]),
                code: r["response_code"].parse().ok(),
            };
            (ts, r["call_index"].parse().unwrap_or(0), call)
        })
        .collect();
    v.sort_by_key(|(ts, i, _)| (*ts, *i));
    v.into_iter().map(|(_, _, c)| c).collect()
}

/// The value of `name: …` in a debug-printed struct, up to the next comma
/// outside brackets and quotes.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!(" {name}: ");
    let start = line.find(&pat)? + pat.len();
    let rest = &line[start..];
    let (mut depth, mut quoted) = (0i32, false);
    for (i, ch) in rest.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '(' | '{' | '[' if !quoted => depth += 1,
            ')' | '}' | ']' if !quoted => {
                if depth == 0 {
                    return Some(&rest[..i]);
                }
                depth -= 1;
            }
            ',' if !quoted && depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    Some(rest)
}

/// `"x"` or `Some("x")` to `x`; empty, `None` and `""` to none.
fn text(v: Option<&str>) -> Option<String> {
    let v = v?.trim();
    let v = v.strip_prefix("Some(").and_then(|s| s.strip_suffix(')')).unwrap_or(v);
    let v = v.trim_matches('"');
    (!v.is_empty() && v != "None").then(|| v.to_string())
}

fn number(v: Option<&str>) -> Option<i32> {
    text(v)?.parse().ok()
}

fn kafka_expected(result: &str) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    for line in result.lines().filter(|l| l.starts_with("KafkaInfo {")) {
        let key = number(field(line, "correlation_id")).map(|c| c.to_string()).unwrap_or_default();
        let typ = field(line, "api_key").map(str::to_string);
        match field(line, "msg_type") {
            Some("Request") => calls.push(Call {
                key,
                typ,
                resource: text(field(line, "topic_name")).or_else(|| text(field(line, "group_id"))),
                code: None,
            }),
            _ => {
                let code = number(field(line, "status_code"));
                match calls.iter_mut().find(|c| c.key == key) {
                    Some(c) => c.code = code,
                    None => calls.push(Call { key, typ: None, resource: None, code }),
                }
            }
        }
    }
    calls
}

fn mqtt_expected(result: &str) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    // Open requests: (kind, QoS, index in calls).
    let mut open: Vec<(String, String, usize)> = Vec::new();
    for line in result.lines().filter(|l| l.starts_with("MqttInfo {")) {
        let pkt = field(line, "pkt_type").unwrap_or_default();
        let kind = pkt.split(' ').next().unwrap_or_default().to_uppercase();
        let qos = pkt.split("qos: ").nth(1).and_then(|s| s.split(',').next()).unwrap_or_default().to_string();
        let code = number(field(line, "code"));
        let wants = match kind.as_str() {
            "CONNACK" => Some(("CONNECT", "")),
            "SUBACK" => Some(("SUBSCRIBE", "")),
            "UNSUBACK" => Some(("UNSUBSCRIBE", "")),
            "PINGRESP" => Some(("PINGREQ", "")),
            "PUBACK" => Some(("PUBLISH", "AtLeastOnce")),
            "PUBCOMP" => Some(("PUBLISH", "ExactlyOnce")),
            "PUBREC" | "PUBREL" => continue,
            _ => None,
        };
        match wants {
            Some((req, q)) => {
                if let Some(i) = open.iter().position(|(k, oq, _)| k == req && (q.is_empty() || oq == q)) {
                    let (_, _, at) = open.remove(i);
                    calls[at].code = code;
                }
            }
            None => {
                let resource = text(field(line, "publish_topic")).or_else(|| text(field(line, "endpoint")));
                calls.push(Call { key: calls.len().to_string(), typ: Some(kind.clone()), resource, code });
                if kind != "DISCONNECT" && !(kind == "PUBLISH" && qos == "AtMostOnce") {
                    open.push((kind, qos, calls.len() - 1));
                }
            }
        }
    }
    calls
}

/// Why flowtrail and DeepFlow differ on a field, where the difference is
/// understood.
fn explain(proto: &str, what: &str, call: &Call, theirs: &Option<String>, mine: &Option<String>) -> &'static str {
    match (proto, what, call.typ.as_deref()) {
        ("kafka", "code", _) if theirs.as_deref() == Some("-2") => {
            "DeepFlow's -2 means it read no code; flowtrail reads the response's error_code"
        }
        ("kafka", "resource", Some("OffsetCommit" | "Heartbeat")) if theirs.is_none() => {
            "DeepFlow reads the group id of JoinGroup/LeaveGroup only; flowtrail of every group API"
        }
        ("mqtt", "resource", Some("SUBSCRIBE" | "UNSUBSCRIBE"))
            if theirs.as_deref().is_some_and(|t| t.contains(',')) =>
        {
            "DeepFlow joins every filter; flowtrail keeps the first (and mqtt.topic_count)"
        }
        ("mqtt", "code", Some("SUBSCRIBE")) if theirs.is_none() && mine.is_some() => {
            "DeepFlow reads no SUBACK code; flowtrail the first return code"
        }
        _ => "UNEXPLAINED",
    }
}

/// Agreement counts: (type, resource, code) agreeing, and calls compared.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Score {
    calls: u32,
    typ: u32,
    resource: u32,
    code: u32,
}

fn compare(proto: &str, name: &str, expected: &[Call], mine: &[Call], table: &mut Vec<String>) -> Score {
    let mut s = Score::default();
    let mut used = vec![false; mine.len()];
    for (i, e) in expected.iter().enumerate() {
        s.calls += 1;
        let found = match proto {
            "kafka" => mine.iter().enumerate().position(|(j, m)| !used[j] && m.key == e.key),
            _ => (i < mine.len() && !used[i]).then_some(i),
        };
        let Some(j) = found else {
            table.push(format!(
                "{name:<44} {:<12} {:<9} deepflow {:?} flowtrail (no call)  UNEXPLAINED",
                e.key, "call", e.typ
            ));
            continue;
        };
        used[j] = true;
        let m = &mine[j];
        let fields = [
            ("type", e.typ.clone(), m.typ.clone()),
            ("resource", e.resource.clone(), m.resource.clone()),
            ("code", e.code.map(|c| c.to_string()), m.code.map(|c| c.to_string())),
        ];
        for (what, theirs, ours) in fields {
            if theirs == ours {
                match what {
                    "type" => s.typ += 1,
                    "resource" => s.resource += 1,
                    _ => s.code += 1,
                }
            } else {
                let why = explain(proto, what, e, &theirs, &ours);
                table.push(format!(
                    "{name:<44} {:<12} {what:<9} deepflow {theirs:<28} flowtrail {ours:<22} {why}",
                    e.typ.clone().unwrap_or_default(),
                    theirs = format!("{theirs:?}"),
                    ours = format!("{ours:?}"),
                ));
            }
        }
    }
    for (j, m) in mine.iter().enumerate().filter(|(j, _)| !used[*j]) {
        table.push(format!(
            "{name:<44} {:<12} {:<9} deepflow (no call)  flowtrail {:?} #{j}  UNEXPLAINED",
            m.key, "call", m.typ
        ));
    }
    s
}

fn deepflow_captures(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("deepflow"))
        .expect("deepflow dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            (n.starts_with("kafka__") || n.starts_with("mqtt__")) && n.ends_with(".pcap")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn deepflow_kafka_and_mqtt_results_agree() {
    let Some(corpus) = corpus() else {
        println!("SKIP: no corpus (../shared/corpus)");
        return;
    };
    let mut table = Vec::new();
    let mut totals: BTreeMap<&str, Score> = BTreeMap::new();
    println!("{:<44} {:>5} {:>5} {:>8} {:>5}", "capture", "calls", "type", "resource", "code");
    for pcap in deepflow_captures(&corpus) {
        let result = pcap.with_extension("upstream.result");
        let Ok(text) = std::fs::read_to_string(&result) else { continue };
        let name = pcap.file_name().unwrap().to_string_lossy().into_owned();
        let proto = if name.starts_with("kafka") { "kafka" } else { "mqtt" };
        let expected = if proto == "kafka" { kafka_expected(&text) } else { mqtt_expected(&text) };
        let (_, _, calls) = replay_all(std::slice::from_ref(&pcap), 1);
        let mine = ours(&calls, proto);
        let s = compare(proto, &name, &expected, &mine, &mut table);
        println!("{name:<44} {:>5} {:>5} {:>8} {:>5}", s.calls, s.typ, s.resource, s.code);
        let t = totals.entry(proto).or_default();
        t.calls += s.calls;
        t.typ += s.typ;
        t.resource += s.resource;
        t.code += s.code;
    }
    for (proto, t) in &totals {
        println!("TOTAL {proto:<38} {:>5} {:>5} {:>8} {:>5}", t.calls, t.typ, t.resource, t.code);
    }
    println!("\ndisagreements ({}):", table.len());
    for row in &table {
        println!("  {row}");
    }
    assert!(table.iter().all(|r| !r.ends_with("UNEXPLAINED")), "unexplained disagreements");
    assert_eq!(totals.get("kafka").copied(), Some(Score { calls: 10, typ: 10, resource: 8, code: 8 }));
    assert_eq!(totals.get("mqtt").copied(), Some(Score { calls: 20, typ: 20, resource: 19, code: 18 }));
}

/// tshark's fields of the frames matching `filter` (`-d` decode-as rules
/// first), one row per frame.
fn tshark(pcap: &Path, decode_as: &[String], filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap);
    for d in decode_as {
        cmd.args(["-d", d]);
    }
    cmd.args(["-Y", filter, "-T", "fields", "-E", "separator=/t", "-E", "aggregator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

const MQTT_TYPES: [(&str, &str); 6] = [
    ("1", "CONNECT"),
    ("3", "PUBLISH"),
    ("8", "SUBSCRIBE"),
    ("10", "UNSUBSCRIBE"),
    ("12", "PINGREQ"),
    ("14", "DISCONNECT"),
];

/// MQTT requests as tshark sees them (`TYPE first-topic`, several packets
/// of one frame split), and CONNACK codes (`CONNACK code`).
fn tshark_mqtt(pcap: &Path) -> Facts {
    let mut f = Facts::new();
    for r in tshark(pcap, &[], "mqtt", &["mqtt.msgtype", "mqtt.topic", "mqtt.conack.val"]) {
        let types: Vec<&str> = r[0].split('|').collect();
        let mut topics = r.get(1).map(|t| t.split('|').collect::<Vec<_>>()).unwrap_or_default().into_iter();
        for t in types {
            if t == "2" {
                *f.entry(format!("CONNACK {}", r.get(2).cloned().unwrap_or_default())).or_insert(0) += 1;
            }
            let Some((_, name)) = MQTT_TYPES.iter().find(|(n, _)| *n == t) else { continue };
            let topic = if matches!(t, "3" | "8" | "10") {
                topics.next().unwrap_or_default().split(',').next().unwrap_or_default()
            } else {
                ""
            };
            *f.entry(format!("{name} {topic}")).or_insert(0) += 1;
        }
    }
    f
}

fn flowtrail_mqtt(calls: &Table) -> Facts {
    let mut f = Facts::new();
    for r in calls.maps().iter().filter(|r| r["l7_protocol"] == "mqtt") {
        let topic = if r["request_resource"] == "-" { "" } else { r["request_resource"] };
        *f.entry(format!("{} {topic}", r["request_type"])).or_insert(0) += 1;
        if r["request_type"] == "CONNECT" && r["response_code"] != "-" {
            *f.entry(format!("CONNACK {}", r["response_code"])).or_insert(0) += 1;
        }
    }
    f
}

/// Kafka facts as tshark sees them: `NAME corr` per request, `corr code`
/// per response with an error code (the first), `corr topic` per request
/// where tshark names a topic.
fn tshark_kafka(pcap: &Path, port: u16) -> (Facts, Facts, Facts) {
    let rows = tshark(
        pcap,
        &[format!("tcp.port=={port},kafka")],
        "kafka",
        &["kafka.request_key", "kafka.correlation_id", "kafka.error", "kafka.topic_name", "kafka.response_frame"],
    );
    let (mut types, mut codes, mut topics) = (Facts::new(), Facts::new(), Facts::new());
    for r in rows {
        let corr = r.get(1).cloned().unwrap_or_default();
        if !r[0].is_empty() {
            let key: i16 = r[0].parse().unwrap_or(-1);
            *types.entry(format!("{} {corr}", api_name(key).unwrap_or("?"))).or_insert(0) += 1;
            let topic = r.get(3).map(|t| t.split('|').next().unwrap_or_default().to_string()).unwrap_or_default();
            if !topic.is_empty() && topic != "[ Null ]" {
                *topics.entry(format!("{corr} {topic}")).or_insert(0) += 1;
            }
        } else if let Some(code) = r.get(2).and_then(|e| e.split(['|', ',']).next()).filter(|e| !e.is_empty()) {
            *codes.entry(format!("{corr} {code}")).or_insert(0) += 1;
        }
    }
    (types, codes, topics)
}

fn flowtrail_kafka(calls: &Table, their_topics: &Facts) -> (Facts, Facts, Facts) {
    let (mut types, mut codes, mut topics) = (Facts::new(), Facts::new(), Facts::new());
    for r in calls.maps().iter().filter(|r| r["l7_protocol"] == "kafka") {
        let corr = attr(r["attributes"], "kafka.correlation_id").unwrap_or_default();
        if r["request_type"] != "-" {
            *types.entry(format!("{} {corr}", r["request_type"])).or_insert(0) += 1;
        }
        if r["response_code"] != "-" {
            *codes.entry(format!("{corr} {}", r["response_code"])).or_insert(0) += 1;
        }
        let fact = format!("{corr} {}", r["request_resource"]);
        if r["request_resource"] != "-" && their_topics.keys().any(|k| k.starts_with(&format!("{corr} "))) {
            *topics.entry(fact).or_insert(0) += 1;
        }
    }
    (types, codes, topics)
}

/// Why a Kafka fact differs from tshark's, where understood.
fn explain_tshark(diff: &str, calls: &Table) -> &'static str {
    let corr = diff.split(' ').next().unwrap_or_default();
    let typ = calls
        .maps()
        .iter()
        .find(|r| attr(r["attributes"], "kafka.correlation_id").as_deref() == Some(corr))
        .map(|r| (r["request_type"].to_string(), r["version"].to_string()));
    match typ.as_ref().map(|(t, v)| (t.as_str(), v.as_str())) {
        Some(("Metadata", _)) if diff.ends_with("flowtrail 0, tshark 1") => {
            "Metadata errors are per topic: flowtrail reads no code for Metadata"
        }
        Some(("Fetch", "12") | ("Produce", "9")) if diff.ends_with("flowtrail 1, tshark 0") => {
            "tshark 4.0 shows no error code for this flexible version"
        }
        _ => "UNEXPLAINED",
    }
}

#[test]
fn other_kafka_and_mqtt_captures_agree_with_tshark() {
    let Some(corpus) = corpus() else {
        println!("SKIP: no corpus (../shared/corpus)");
        return;
    };
    if !have_tshark() {
        println!("SKIP: tshark not installed");
        return;
    }
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut files: Vec<(PathBuf, bool)> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let feats = cols.get(7)?;
            let kafka = feats.split(',').any(|f| f == "kafka");
            let mqtt = feats.split(',').any(|f| f == "mqtt");
            // DeepFlow captures with a result are the other test's.
            let has_result = cols.get(8).is_some_and(|e| *e != "-");
            let deepflow = cols[0].starts_with("deepflow/");
            ((kafka || mqtt) && !(deepflow && has_result)).then(|| (corpus.join(cols[0]), kafka))
        })
        .collect();
    files.sort();
    let mut summary = Vec::new();
    let mut unexplained = 0;
    for (pcap, kafka) in &files {
        let name = pcap.strip_prefix(&corpus).unwrap().display().to_string();
        let (_, _, calls) = replay_all(std::slice::from_ref(pcap), 1);
        if *kafka {
            let ports: std::collections::BTreeSet<u16> =
                calls.maps().iter().filter_map(|r| r["server_port"].parse().ok()).collect();
            let port = ports.iter().next().copied().unwrap_or(9092);
            let theirs = tshark_kafka(pcap, port);
            let mine = flowtrail_kafka(&calls, &theirs.2);
            for (what, o, t) in
                [("type", &mine.0, &theirs.0), ("code", &mine.1, &theirs.1), ("topic", &mine.2, &theirs.2)]
            {
                let (common, total, diffs) = agreement(o, t);
                println!("{name:<40} kafka {what:<6} {common}/{total}");
                for d in diffs {
                    let why = explain_tshark(&d, &calls);
                    unexplained += usize::from(why == "UNEXPLAINED");
                    println!("    {d:<40} {why}");
                }
                summary.push((name.clone(), what, common, total));
            }
        } else {
            let (common, total, diffs) = agreement(&flowtrail_mqtt(&calls), &tshark_mqtt(pcap));
            println!("{name:<40} mqtt  calls  {common}/{total}");
            for d in diffs {
                unexplained += 1;
                println!("    {d}  UNEXPLAINED");
            }
            summary.push((name.clone(), "calls", common, total));
        }
    }
    assert_eq!(unexplained, 0, "unexplained differences with tshark");
    let got: Vec<(&str, &str, u64, u64)> = summary.iter().map(|(n, w, c, t)| (n.as_str(), *w, *c, *t)).collect();
    assert_eq!(
        got,
        [
            ("deepflow/kafka__01-fetch-v12-perf.pcap", "type", 1, 1),
            ("deepflow/kafka__01-fetch-v12-perf.pcap", "code", 0, 1),
            ("deepflow/kafka__01-fetch-v12-perf.pcap", "topic", 0, 0),
            ("deepflow/mqtt__mqtt_sub.pcap", "calls", 1, 1),
            ("ndpi/kafka.pcapng", "type", 14, 14),
            ("ndpi/kafka.pcapng", "code", 6, 10),
            ("ndpi/kafka.pcapng", "topic", 6, 6),
            ("zeek/mqtt.pcap", "calls", 14, 14),
        ]
    );
}
