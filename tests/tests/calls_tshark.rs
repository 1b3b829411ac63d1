//! Call records against tshark's HTTP, DNS and TLS dissection: requests
//! with their response codes, DNS questions with their rcodes, and TLS
//! ClientHellos with SNI and JA3, compared as multisets per capture.
//! Agreement must be at least 98% on pcaps/; on the public corpus it is
//! reported (and kept above a floor).

use std::path::PathBuf;

use flowtrail_tests::l7::{agreement, flowtrail_facts, tshark_dns, tshark_http, tshark_tls, Facts};
use flowtrail_tests::{bundled_pcaps, corpus, have_tshark, replay_all};

/// (common, total) per protocol for a set of captures, printing differences.
fn score(files: &[PathBuf], verbose: bool) -> [(u64, u64); 3] {
    let mut acc = [(0, 0); 3];
    for f in files {
        let (_, _, calls) = replay_all(std::slice::from_ref(f), 1);
        let (h, d, t) = flowtrail_facts(&calls);
        let theirs: [Facts; 3] = [tshark_http(f), tshark_dns(f), tshark_tls(f)];
        for (i, (ours, theirs)) in [h, d, t].iter().zip(theirs.iter()).enumerate() {
            let (common, total, diffs) = agreement(ours, theirs);
            acc[i].0 += common;
            acc[i].1 += total;
            if verbose && !diffs.is_empty() {
                println!("DIFF {}:", f.display());
                for d in diffs.iter().take(6) {
                    println!("      {d}");
                }
            }
        }
    }
    acc
}

fn report(label: &str, acc: [(u64, u64); 3]) -> f64 {
    let names = ["http", "dns", "tls"];
    let (mut c, mut t) = (0, 0);
    for (i, (common, total)) in acc.iter().enumerate() {
        println!("{label} {}: {common}/{total} agree", names[i]);
        c += common;
        t += total;
    }
    let pct = 100.0 * c as f64 / t.max(1) as f64;
    println!("{label} overall: {c}/{t} ({pct:.1}%)");
    pct
}

#[test]
fn bundled_pcaps_calls_agree_with_tshark() {
    if !have_tshark() {
        eprintln!("SKIP: tshark not installed");
        return;
    }
    let acc = score(&bundled_pcaps(), true);
    assert!(acc.iter().map(|a| a.1).sum::<u64>() > 20, "too few calls to compare: {acc:?}");
    let pct = report("pcaps/", acc);
    assert!(pct >= 98.0, "agreement with tshark {pct:.1}% < 98%");
}

/// The corpus floor: raise it as decoders improve, never lower it.
const CORPUS_FLOOR_PCT: f64 = 90.0;

#[test]
fn corpus_calls_agree_with_tshark() {
    let (Some(c), true) = (corpus(), have_tshark()) else {
        eprintln!("SKIP: corpus or tshark missing");
        return;
    };
    let manifest = std::fs::read_to_string(c.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let files: Vec<PathBuf> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let feats = f.get(7)?;
            let wanted = feats.split(',').any(|x| matches!(x, "http1" | "dns" | "tls"));
            let misdetect = feats.split(',').any(|x| x == "misdetection");
            (wanted && !misdetect).then(|| c.join(f[0]))
        })
        .collect();
    let acc = score(&files, true);
    let pct = report("corpus", acc);
    assert!(pct >= CORPUS_FLOOR_PCT, "corpus agreement {pct:.1}% < {CORPUS_FLOOR_PCT}%");
}
