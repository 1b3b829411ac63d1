//! DuckDB (the real one, through its Python package) reads what flowtrail
//! writes and answers an analyst's questions.

use std::process::Command;

use flowtrail::pipeline::{replay, Input, ReplayOptions};
use flowtrail_tests::{bundled_pcaps, Scratch};

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
    let files = bundled_pcaps();
    let opts = ReplayOptions {
        inputs: files.iter().map(|p| Input { path: p.clone(), point: None }).collect(),
        out_dir: out.0.clone(),
        workers: 2,
        flow: Default::default(),
        defrag: Default::default(),
        progress: false,
        run_id: "duck".into(),
    };
    let summary = replay(&opts).expect("replay");
    let glob = format!("read_parquet('{}/flows/**/*.parquet', hive_partitioning=true)", out.0.display());

    // Every row flowtrail wrote is there, with its partition columns.
    let n = duckdb(&format!("select count(*), count(distinct date), min(hour) >= 0 from {glob}"));
    let fields: Vec<&str> = n.trim().split('\t').collect();
    assert_eq!(fields[0].parse::<u64>().unwrap(), summary.sink.rows);
    assert_eq!(fields[2], "True");

    // Top talkers by bytes: DuckDB's sum must equal ours.
    let top = duckdb(&format!(
        "select client_ip, sum(client_bytes + server_bytes) as b from {glob} group by 1 order by b desc, client_ip limit 3"
    ));
    assert!(!top.trim().is_empty());
    let total: u64 = duckdb(&format!("select sum(client_bytes + server_bytes) from {glob}")).trim().parse().unwrap();
    // Decoded flows carry every byte of the input except undecodable frames.
    assert!(total <= summary.bytes, "flows hold more bytes than the input");

    // The schema version is in every file's metadata.
    let meta = duckdb(&format!(
        "select distinct decode(value) from parquet_kv_metadata('{}/flows/**/*.parquet') where decode(key) = 'flowtrail.schema_version'",
        out.0.display()
    ));
    assert_eq!(meta.trim(), flowtrail::records::SCHEMA_VERSION);
}
