//! Every bundled capture agrees with tshark, run here when installed:
//! packets and bytes per TCP/UDP 5-tuple, and the TCP health counters
//! (`tcp.analysis.retransmission`/`fast_retransmission`,
//! `tcp.analysis.out_of_order`, `tcp.analysis.zero_window`) per 5-tuple.

use flowtrail_tests::{
    bundled_pcaps, compare_totals, conv_totals, flow_tcp_analysis, flow_totals, have_tshark, replay_flows,
    tshark_conversations, tshark_tcp_analysis,
};

#[test]
fn bundled_pcaps_agree_with_tshark_conversations() {
    if !have_tshark() {
        eprintln!("SKIP: tshark not installed (scripts/setup.sh --test installs it)");
        return;
    }
    let mut failures = Vec::new();
    for pcap in bundled_pcaps() {
        let theirs = conv_totals(&tshark_conversations(&pcap));
        let (_, table) = replay_flows(std::slice::from_ref(&pcap), 1);
        let (ours, frag) = flow_totals(&table);
        let (agree, diffs) = compare_totals(&ours, &theirs, &frag);
        println!("{}: {agree}/{} 5-tuples agree", pcap.display(), agree + diffs.len());
        for d in &diffs {
            failures.push(format!("{}: {d}", pcap.display()));
        }
    }
    assert!(failures.is_empty(), "disagreements with tshark:\n{}", failures.join("\n"));
}

#[test]
fn bundled_pcaps_agree_with_tshark_tcp_analysis() {
    if !have_tshark() {
        eprintln!("SKIP: tshark not installed");
        return;
    }
    let mut failures = Vec::new();
    let mut seen = [0u64; 3];
    for pcap in bundled_pcaps() {
        let (_, table) = replay_flows(std::slice::from_ref(&pcap), 1);
        let theirs = tshark_tcp_analysis(&pcap);
        let ours = flow_tcp_analysis(&table);
        for v in theirs.values() {
            for i in 0..3 {
                seen[i] += v[i];
            }
        }
        if theirs != ours {
            failures.push(format!("{}\n    tshark    {theirs:?}\n    flowtrail {ours:?}", pcap.display()));
        }
    }
    println!(
        "tshark flags across pcaps/: retransmissions {}, out-of-order {}, zero-window {}",
        seen[0], seen[1], seen[2]
    );
    assert!(failures.is_empty(), "TCP analysis disagrees with tshark:\n{}", failures.join("\n"));
}
