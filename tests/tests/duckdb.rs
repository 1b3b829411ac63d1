//! DuckDB (the real one, through its Python package) reads what flowtrail
//! writes and answers an analyst's questions.

use std::process::Command;

use flowtrail::pipeline::{replay, Input, ReplayOptions};
use std::collections::BTreeMap;

use flowtrail_tests::{bundled_pcaps, read_kind, Scratch};

/// Replays files with two workers into `out`.
fn replay_into(files: &[std::path::PathBuf], out: &std::path::Path) -> flowtrail::pipeline::RunSummary {
    replay(&ReplayOptions {
        inputs: files.iter().map(|p| Input { path: p.clone(), point: None }).collect(),
        out_dir: out.to_path_buf(),
        workers: 2,
        flow: Default::default(),
        defrag: Default::default(),
        progress: false,
        run_id: "duck".into(),
        nat: None,
    })
    .expect("replay")
}

fn duckdb(sql: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys, duckdb\nfor row in duckdb.sql(sys.argv[1]).fetchall(): print('\\t'.join('' if v is None else str(v) for v in row))", sql])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "duckdb failed (scripts/setup.sh --test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn duckdb_answers_top_talkers_and_reads_partitions() {
    let out = Scratch::new("duckdb");
    let summary = replay_into(&bundled_pcaps(), &out.0);
    let glob = format!("read_parquet('{}/flows/**/*.parquet', hive_partitioning=true)", out.0.display());

    // Every row flowtrail wrote is there, with its partition columns.
    let n = duckdb(&format!("select count(*), count(distinct date), min(hour) >= '00' from {glob}"));
    let fields: Vec<&str> = n.trim().split('\t').collect();
    assert_eq!(fields[0].parse::<u64>().unwrap(), summary.sink.rows);
    assert_eq!(fields[2], "True");

    // Top talkers by bytes: DuckDB's answer must equal the one computed
    // here from the same files read by the parquet crate.
    let top = duckdb(&format!(
        "select client_ip, sum(client_bytes + server_bytes) as b from {glob} group by 1 order by b desc, client_ip limit 5"
    ));
    let t = read_kind(&out.0, "flows");
    let (ip, cb, sb) = (t.col("client_ip"), t.col("client_bytes"), t.col("server_bytes"));
    let mut by_client: BTreeMap<String, u64> = BTreeMap::new();
    for r in &t.rows {
        *by_client.entry(r[ip].clone()).or_insert(0) += r[cb].parse::<u64>().unwrap() + r[sb].parse::<u64>().unwrap();
    }
    let mut ranked: Vec<(String, u64)> = by_client.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let expected: String = ranked.iter().take(5).map(|(ip, b)| format!("{ip}\t{b}\n")).collect();
    assert_eq!(top, expected, "DuckDB's top talkers differ from the parquet crate's");
    let total: u64 = duckdb(&format!("select sum(client_bytes + server_bytes) from {glob}")).trim().parse().unwrap();
    // Every IP frame's bytes land in a flow: the input minus non-IP frames.
    assert!(total <= summary.bytes && total > summary.bytes / 2, "flows hold {total} of {} input bytes", summary.bytes);

    // The schema version is in every file's metadata.
    let meta = duckdb(&format!(
        "select distinct decode(value) from parquet_kv_metadata('{}/flows/**/*.parquet') where decode(key) = 'flowtrail.schema_version'",
        out.0.display()
    ));
    assert_eq!(meta.trim(), flowtrail::records::SCHEMA_VERSION);
}

/// The 404 story: given a URL, find the calls that got 404 and which server
/// answered them, joined to their flows for the client side.
#[test]
fn duckdb_answers_which_server_returned_404() {
    let out = Scratch::new("duck404");
    let root = flowtrail_tests::root();
    replay_into(&[root.join("pcaps/http_errors.pcap"), root.join("pcaps/http_keepalive.pcap")], &out.0);
    let d = out.0.display();
    let answer = duckdb(&format!(
        "select c.capture_point, c.server_ip, c.server_port, c.response_code, f.client_ip, f.close_type \
         from read_parquet('{d}/calls/**/*.parquet', hive_partitioning=true) c \
         join read_parquet('{d}/flows/**/*.parquet', hive_partitioning=true) f using (flow_id) \
         where c.request_resource = '/missing.html' and c.response_code = 404 and f.record_kind = 'final' \
         order by c.capture_point"
    ));
    assert_eq!(
        answer,
        "http_errors.pcap\t10.99.16.20\t80\t404\t10.99.16.10\tfin\nhttp_keepalive.pcap\t10.99.1.20\t80\t404\t10.99.1.10\tfin\n"
    );
}
