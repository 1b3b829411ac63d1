//! Golden flow and call records for every capture in pcaps/.
//!
//! `tests/expected/<capture>.flows.tsv` holds every column of every flow
//! record, sorted by (start_ns, flow_id, record_kind);
//! `<capture>.calls.tsv` every call record, when the capture has calls. Packets and bytes in them are
//! checked against tshark by `pcaps_tshark.rs`; close types, client choice
//! and TCP health were checked by hand against the captures' README and
//! tshark's `tcp.analysis` flags. `BLESS=1` rewrites the files after an
//! intended change; review the diff.

use flowtrail_tests::{bundled_pcaps, replay_all, root};

#[test]
fn every_bundled_pcap_matches_its_golden_records() {
    let pcaps = bundled_pcaps();
    assert!(!pcaps.is_empty(), "pcaps/ holds no captures");
    let bless = std::env::var_os("BLESS").is_some();
    let dir = root().join("tests/expected");
    std::fs::create_dir_all(&dir).expect("tests/expected");
    let mut failures = Vec::new();
    for pcap in &pcaps {
        let name = pcap.file_name().unwrap().to_string_lossy().into_owned();
        let (summary, table, calls) = replay_all(std::slice::from_ref(pcap), 1);
        assert!(summary.input_errors.is_empty(), "{name}: {:?}", summary.input_errors);
        assert!(!table.rows.is_empty(), "{name}: no flow records");
        let mut outputs = vec![(format!("{name}.flows.tsv"), table.to_tsv())];
        if !calls.rows.is_empty() {
            outputs.push((format!("{name}.calls.tsv"), calls.to_tsv()));
        }
        for (file, got) in outputs {
            let path = dir.join(&file);
            if bless {
                std::fs::write(&path, &got).expect("write golden");
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            if want != got {
                let diff: Vec<String> = want
                    .lines()
                    .zip(got.lines())
                    .enumerate()
                    .filter(|(_, (a, b))| a != b)
                    .take(3)
                    .map(|(i, (a, b))| format!("  line {}:\n    want {a}\n    got  {b}", i + 1))
                    .collect();
                failures.push(format!(
                    "{file}: {} lines expected, {} got\n{}",
                    want.lines().count(),
                    got.lines().count(),
                    diff.join("\n")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "golden mismatches (BLESS=1 to accept):\n{}", failures.join("\n"));
}
