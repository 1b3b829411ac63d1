//! Flow and call records do not depend on the number of worker shards.

use flowtrail_tests::{bundled_pcaps, corpus, is_capture, replay_all, replay_flows};

fn corpus_sample() -> Vec<std::path::PathBuf> {
    let Some(c) = corpus() else { return Vec::new() };
    let mut v = Vec::new();
    for src in ["deepflow", "zeek", "suricata-verify", "ndpi"] {
        if let Ok(rd) = std::fs::read_dir(c.join(src)) {
            v.extend(rd.flatten().map(|e| e.path()).filter(|p| is_capture(p)));
        }
    }
    v.sort();
    v
}

#[test]
fn output_is_the_same_with_1_2_and_3_workers() {
    let mut files = bundled_pcaps();
    files.extend(corpus_sample());
    assert!(!files.is_empty());
    for f in &files {
        let (_, one, one_calls) = replay_all(std::slice::from_ref(f), 1);
        for n in [2, 3] {
            let (_, many, many_calls) = replay_all(std::slice::from_ref(f), n);
            assert_eq!(one, many, "{}: flow records differ between 1 and {n} workers", f.display());
            assert_eq!(one_calls, many_calls, "{}: call records differ between 1 and {n} workers", f.display());
        }
    }
}

/// Several files in one run are merged by time, each its own capture
/// point: every flow keeps its id and its packet and byte counts. (How an
/// open flow ends can differ: the merged input ends later, so a flow of the
/// earlier file may end idle instead of open at the end of the input.)
#[test]
fn several_files_merge_into_one_run_with_a_point_each() {
    let files = bundled_pcaps();
    if files.len() < 2 {
        return;
    }
    let pair = &files[..2];
    let (_, merged) = replay_flows(pair, 2);
    let (_, a) = replay_flows(&pair[..1], 1);
    let (_, b) = replay_flows(&pair[1..], 1);
    let totals = |t: &flowtrail_tests::Table, rows: &[Vec<String>]| {
        let cols = ["client_packets", "server_packets", "client_bytes", "server_bytes"].map(|c| t.col(c));
        let (id, point) = (t.col("flow_id"), t.col("capture_point"));
        let mut m = std::collections::BTreeMap::new();
        for r in rows {
            let e = m.entry((r[id].clone(), r[point].clone())).or_insert([0u64; 4]);
            for (i, c) in cols.iter().enumerate() {
                e[i] += r[*c].parse::<u64>().unwrap();
            }
        }
        m
    };
    let mut separate = totals(&a, &a.rows);
    separate.extend(totals(&b, &b.rows));
    assert_eq!(totals(&merged, &merged.rows), separate, "merging two files changes their flows");
}
