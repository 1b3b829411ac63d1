//! Cross-check against tshark on the public captures in `../shared/corpus`:
//! packets and bytes per TCP/UDP 5-tuple must agree with the tshark tables
//! `expect.sh` made. Disagreements are printed with their 5-tuple; the
//! ones understood are listed in `KNOWN` with the reason.

use flowtrail_tests::{compare_totals, conv_totals, corpus, flow_totals, is_capture, read_conv_tsv, replay_flows};

/// Captures where flowtrail and tshark count differently, and why.
const KNOWN: &[(&str, &str)] = &[
    (
        "ndpi/capwap_data.pcapng",
        "CAPWAP data (UDP 5247, 802.11 frames inside) is not decapsulated: flowtrail reports the outer UDP flow, tshark the inner TCP one",
    ),
    (
        "zeek/ipv6-mobility-dst-opts.pcap",
        "Destination Options that tshark marks malformed: tshark counts 1 of the 3 frames, flowtrail decodes 2 and counts the third as truncated_ipv6",
    ),
];

/// Below this share of agreeing 5-tuples the test fails even if every
/// disagreement is listed above.
const MIN_AGREEMENT_PCT: f64 = 99.5;

#[test]
fn corpus_conversations_agree_with_tshark() {
    let Some(corpus) = corpus() else {
        eprintln!("SKIP: ../shared/corpus not present");
        return;
    };
    let mut files = Vec::new();
    for src in ["deepflow", "ndpi", "suricata-verify", "zeek"] {
        let Ok(rd) = std::fs::read_dir(corpus.join(src)) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if is_capture(&p) {
                files.push((src, p));
            }
        }
    }
    files.sort();
    let (mut agree, mut total, mut checked) = (0usize, 0usize, 0usize);
    let mut unexplained = Vec::new();
    for (src, pcap) in &files {
        let name = pcap.file_name().unwrap().to_string_lossy().into_owned();
        let conv = corpus.join("expected").join(src).join(format!("{name}.conv.tsv"));
        if !conv.exists() {
            continue;
        }
        checked += 1;
        let theirs = conv_totals(&read_conv_tsv(&conv));
        let (_, table) = replay_flows(std::slice::from_ref(pcap), 1);
        let (ours, frag) = if table.rows.is_empty() { (Default::default(), Vec::new()) } else { flow_totals(&table) };
        let (a, diffs) = compare_totals(&ours, &theirs, &frag);
        agree += a;
        total += a + diffs.len();
        if !diffs.is_empty() {
            let rel = format!("{src}/{name}");
            let known = KNOWN.iter().find(|(f, _)| *f == rel);
            println!("{} {rel}: {} of {} 5-tuples differ{}", if known.is_some() { "KNOWN" } else { "DIFF " }, diffs.len(), a + diffs.len(), known.map(|k| format!(" ({})", k.1)).unwrap_or_default());
            for d in diffs.iter().take(5) {
                println!("      {d}");
            }
            if known.is_none() {
                unexplained.push(rel);
            }
        }
    }
    let pct = 100.0 * agree as f64 / total.max(1) as f64;
    println!("corpus: {checked} captures, {agree}/{total} TCP/UDP 5-tuples agree with tshark ({pct:.2}%)");
    assert!(checked > 100, "expected the corpus tables, found {checked}");
    assert!(unexplained.is_empty(), "unexplained disagreements in: {unexplained:?}");
    assert!(pct >= MIN_AGREEMENT_PCT, "agreement {pct:.2}% below {MIN_AGREEMENT_PCT}%");
}
