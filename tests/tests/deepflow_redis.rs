//! Redis calls against ground truth from other analyzers.
//!
//! - DeepFlow's own captures (`deepflow/redis__*.pcap`) against the
//!   `.upstream.result` beside them: debug-printed `RedisInfo` structs,
//!   one per payload packet, a request (`request_type`, `request` = the
//!   whole command joined by spaces) followed by its response
//!   (`response_result`: `BulkString`, `Integer`, `Array`…). Agreement is
//!   counted per call on request type, resource (DeepFlow's `request`
//!   must be `TYPE resource` followed by the end or a space: flowtrail
//!   keeps the first key only), response code (DeepFlow keeps none for
//!   Redis; neither does flowtrail) and reply type.
//! - The other corpus captures MANIFEST.tsv marks `redis`: nDPI's
//!   `resp.pcap` against tshark's `resp` dissector (command and key of
//!   every request array), Zeek's `pipelining-example.pcap` against its
//!   `redis.log`, and three DeepFlow captures whose `redis` mark is a
//!   false friend (no payload, or MySQL on port 6033): no Redis call.
//!
//! Every disagreement is printed with a one-line explanation, and the
//! exact counts reached are asserted so a regression fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flowtrail_tests::l7::attr;
use flowtrail_tests::{corpus, have_tshark, replay_all, Table};

/// One call as DeepFlow logged it.
#[derive(Debug, Default)]
struct DfCall {
    request_type: String,
    request: String,
    /// `Unknown` when no response line followed.
    result: String,
}

/// One flowtrail Redis call.
#[derive(Debug)]
struct Ours {
    request_type: String,
    resource: String,
    code: String,
    status: String,
    reply_type: String,
}

/// The value of `name: "…"` or `name: Word` in a debug-printed struct.
fn df_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name}: "))? + name.len() + 2;
    let rest = line.get(at..)?;
    if let Some(q) = rest.strip_prefix('"') {
        q.find("\", ").or_else(|| q.find('"')).and_then(|end| q.get(..end))
    } else {
        rest.find([',', ' ', '}']).and_then(|end| rest.get(..end))
    }
}

/// DeepFlow's calls: each request line and the response line after it.
fn deepflow_calls(result: &Path) -> Vec<DfCall> {
    let text = std::fs::read_to_string(result).expect("upstream result");
    let mut calls: Vec<DfCall> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("RedisInfo") && l.ends_with("is_redis: true")) {
        let ty = df_field(line, "request_type").unwrap_or_default();
        let result = df_field(line, "response_result").unwrap_or("Unknown");
        if !ty.is_empty() {
            calls.push(DfCall {
                request_type: ty.to_string(),
                request: df_field(line, "request").unwrap_or_default().to_string(),
                result: "Unknown".into(),
            });
        } else if let Some(last) = calls.last_mut().filter(|c| c.result == "Unknown") {
            last.result = result.to_string();
        } else {
            calls.push(DfCall { result: result.to_string(), ..DfCall::default() });
        }
    }
    calls
}

fn our_calls(calls: &Table) -> Vec<Ours> {
    if calls.rows.is_empty() {
        return Vec::new();
    }
    let c = |n: &str| calls.col(n);
    let (proto, ty, res, code, status, attrs) = (
        c("l7_protocol"),
        c("request_type"),
        c("request_resource"),
        c("response_code"),
        c("response_status"),
        c("attributes"),
    );
    calls
        .rows
        .iter()
        .filter(|r| r[proto] == "redis")
        .map(|r| Ours {
            request_type: r[ty].clone(),
            resource: r[res].clone(),
            code: r[code].clone(),
            status: r[status].clone(),
            reply_type: attr(&r[attrs], "redis.reply_type").unwrap_or_else(|| "-".into()),
        })
        .collect()
}

/// DeepFlow's `response_result` names as `redis.reply_type` values.
fn df_reply_type(result: &str) -> &str {
    match result {
        "BulkString" => "bulk",
        "Integer" => "integer",
        "Array" => "array",
        "SimpleString" | "Status" => "simple",
        "Error" => "error",
        "Unknown" => "-",
        other => other,
    }
}

/// Agreement counts: (type, resource, code, reply type, calls compared).
type Score = [u64; 5];

fn compare_deepflow(pcap: &Path, result: &Path) -> Score {
    let theirs = deepflow_calls(result);
    let (_, _, calls) = replay_all(&[pcap.to_path_buf()], 1);
    let ours = our_calls(&calls);
    let name = pcap.file_name().unwrap().to_string_lossy().into_owned();
    let mut s = [0u64; 5];
    println!("{name}: flowtrail {} calls, DeepFlow {}", ours.len(), theirs.len());
    println!("  {:<4} {:<32} {:<44} {:<10} verdict", "#", "flowtrail type/resource", "DeepFlow request", "reply");
    for i in 0..ours.len().max(theirs.len()) {
        let (o, t) = (ours.get(i), theirs.get(i));
        let (Some(o), Some(t)) = (o, t) else {
            println!("  {i:<4} {o:?} / {t:?}: DISAGREE: only one side has this call");
            continue;
        };
        s[4] += 1;
        let ty_ok = o.request_type == t.request_type;
        let res_ok = {
            let want = format!("{} {}", t.request_type, o.resource);
            t.request.strip_prefix(&want).is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
                || (o.resource == "-" && t.request == t.request_type)
        };
        // DeepFlow keeps no response code for Redis.
        let code_ok = o.code == "-";
        let reply_ok = o.reply_type == df_reply_type(&t.result);
        s[0] += u64::from(ty_ok);
        s[1] += u64::from(res_ok);
        s[2] += u64::from(code_ok);
        s[3] += u64::from(reply_ok);
        let mut why = Vec::new();
        if !ty_ok {
            why.push("request type differs");
        }
        if !res_ok {
            why.push("DeepFlow's request does not start with type + first key");
        }
        if !code_ok {
            why.push("flowtrail has a response code, DeepFlow none");
        }
        if !reply_ok {
            why.push("reply type differs");
        }
        let verdict = if why.is_empty() { "agree".to_string() } else { format!("DISAGREE: {}", why.join("; ")) };
        println!(
            "  {i:<4} {:<32} {:<44} {:<10} {verdict}",
            format!("{} {}", o.request_type, o.resource),
            t.request,
            format!("{}/{}", o.reply_type, t.result),
        );
        assert_eq!(o.status, "ok", "{name} call {i}: {o:?}");
    }
    println!(
        "  {name}: type {}/{n}, resource {}/{n}, code {}/{n}, reply type {}/{n}",
        s[0],
        s[1],
        s[2],
        s[3],
        n = s[4]
    );
    s
}

#[test]
fn deepflow_redis_captures_agree_with_upstream_results() {
    let Some(c) = corpus() else {
        println!("SKIP: corpus not found (../shared/corpus)");
        return;
    };
    let mut total = [0u64; 5];
    let mut per_capture = BTreeMap::new();
    for stem in ["redis__redis", "redis__redis-debug"] {
        let pcap = c.join(format!("deepflow/{stem}.pcap"));
        let result = c.join(format!("deepflow/{stem}.upstream.result"));
        let s = compare_deepflow(&pcap, &result);
        for (t, v) in total.iter_mut().zip(s) {
            *t += v;
        }
        per_capture.insert(stem, s);
    }
    let n = total[4];
    println!(
        "DeepFlow total: type {}/{n}, resource {}/{n}, code {}/{n}, reply type {}/{n}",
        total[0], total[1], total[2], total[3]
    );
    // Exact counts reached: every call agrees on every field.
    assert_eq!(per_capture["redis__redis"], [10, 10, 10, 10, 10]);
    assert_eq!(per_capture["redis__redis-debug"], [1, 1, 1, 1, 1]);
}

/// `tshark -Y FILTER -T fields -e …` rows, fields split on tabs.
fn tshark_rows(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap).args(["-Y", filter, "-T", "fields", "-E", "separator=/t", "-E", "aggregator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

fn unhex(h: &str) -> String {
    let bytes: Vec<u8> =
        (0..h.len() / 2).filter_map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// tshark's requests: `COMMAND key` for every array sent to port 6379
/// (`-` for a command without argument).
fn tshark_requests(pcap: &Path) -> BTreeMap<String, u64> {
    let rows = tshark_rows(pcap, "resp and tcp.dstport == 6379", &["resp.array.length", "resp.bulk_string.value"]);
    let mut facts = BTreeMap::new();
    for r in rows {
        let lens: Vec<usize> = r[0].split('|').filter_map(|n| n.parse().ok()).collect();
        let values: Vec<&str> = r.get(1).map(|v| v.split('|').collect()).unwrap_or_default();
        let mut at = 0;
        for n in lens {
            let args = values.get(at..at + n).unwrap_or_default();
            at += n;
            let Some(cmd) = args.first() else { continue };
            let key = args.get(1).map_or_else(|| "-".to_string(), |k| unhex(k));
            *facts.entry(format!("{} {key}", unhex(cmd).to_ascii_uppercase())).or_insert(0) += 1;
        }
    }
    facts
}

fn manifest_redis_captures(c: &Path) -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(c.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let redis = f.get(7)?.split(',').any(|x| x == "redis");
            let tcp = f.get(7)?.split(',').any(|x| x == "tcp");
            (redis && tcp && !f[0].starts_with("deepflow/redis__")).then(|| c.join(f[0]))
        })
        .collect()
}

#[test]
fn other_corpus_redis_captures() {
    let Some(c) = corpus() else {
        println!("SKIP: corpus not found (../shared/corpus)");
        return;
    };
    let files = manifest_redis_captures(&c);
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "client-no-response.pcap",
            "mysql__large-response.pcap",
            "server-no-response.pcap",
            "resp.pcap",
            "redis__pipelining-example.pcap"
        ]
    );
    for f in &files {
        let (_, _, calls) = replay_all(std::slice::from_ref(f), 1);
        let ours = our_calls(&calls);
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        println!("{name}: {} redis calls", ours.len());
        for o in &ours {
            println!("  {} {} -> {} {} {}", o.request_type, o.resource, o.status, o.reply_type, o.code);
        }
        match name.as_str() {
            // No payload at all (SYN/RST only), or MySQL on port 6033:
            // the corpus' `redis` mark comes from the file name or a
            // heuristic; no Redis call must come out.
            "client-no-response.pcap" | "server-no-response.pcap" | "mysql__large-response.pcap" => {
                assert!(ours.is_empty(), "{name}: {ours:?}");
            }
            "resp.pcap" => {
                let mut mine = BTreeMap::new();
                for o in &ours {
                    *mine.entry(format!("{} {}", o.request_type, o.resource)).or_insert(0u64) += 1;
                }
                if have_tshark() {
                    let theirs = tshark_requests(f);
                    println!("  tshark: {theirs:?}");
                    for (k, v) in theirs.iter() {
                        let m = mine.get(k).copied().unwrap_or(0);
                        let verdict = if m == *v { "agree" } else { "DISAGREE: count differs" };
                        println!("  {k:<20} flowtrail {m} tshark {v} {verdict}");
                    }
                    assert_eq!(mine, theirs, "{name}: flowtrail and tshark requests");
                } else {
                    println!("  SKIP tshark comparison: tshark not installed");
                }
                // Replies, read by hand from the capture: COMMAND's 240-entry
                // array over 11 segments, +PONG, +OK, the bulk "Hello world!".
                let replies: Vec<&str> = ours.iter().map(|o| o.reply_type.as_str()).collect();
                assert_eq!(replies, ["array", "simple", "simple", "bulk"]);
                assert!(ours.iter().all(|o| o.status == "ok"));
            }
            "redis__pipelining-example.pcap" => {
                // Zeek's redis.log: three PING, success T, reply PONG.
                let log = std::fs::read_to_string(c.join("zeek/redis__pipelining-example.redis.log")).unwrap();
                let zeek: Vec<Vec<&str>> =
                    log.lines().filter(|l| !l.starts_with('#')).map(|l| l.split('\t').collect()).collect();
                assert_eq!(zeek.len(), 3);
                assert_eq!(ours.len(), zeek.len());
                for (o, z) in ours.iter().zip(&zeek) {
                    println!("  zeek {} success {} reply {}", z[6], z[9], z[10]);
                    assert_eq!(o.request_type, z[6]);
                    assert_eq!(o.resource, "-");
                    assert_eq!((o.status.as_str(), z[9]), ("ok", "T"));
                    assert_eq!((o.reply_type.as_str(), z[10]), ("simple", "PONG"));
                }
            }
            other => panic!("unexpected capture {other}"),
        }
    }
}
