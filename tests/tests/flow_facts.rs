//! Facts about each bundled capture, checked by hand against the capture
//! (tshark -V) and written down as assertions: who is the client, how the
//! connection closed, what the tunnel/VLAN/fragment fields say. Golden
//! files pin every column; these say which values matter and why.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flowtrail_tests::{replay_flows, root, Scratch, Table};

fn finals(name: &str) -> Vec<BTreeMap<String, String>> {
    let (_, t) = replay_flows(&[root().join("pcaps").join(name)], 1);
    rows(&t).into_iter().filter(|r| r["record_kind"] == "final").collect()
}

fn rows(t: &Table) -> Vec<BTreeMap<String, String>> {
    t.rows.iter().map(|r| t.columns.iter().cloned().zip(r.iter().cloned()).collect()).collect()
}

fn tcp(rows: &[BTreeMap<String, String>]) -> Vec<&BTreeMap<String, String>> {
    rows.iter().filter(|r| r["l4_protocol"] == "tcp").collect()
}

#[test]
fn closed_port_is_refused() {
    let f = finals("tcp_rst_closed_port.pcap");
    let t = tcp(&f);
    assert_eq!(t.len(), 2, "two connection attempts");
    for r in t {
        assert_eq!(r["close_type"], "refused");
        assert_eq!(r["client_by"], "syn");
        assert_eq!(r["server_port"], "9999");
        assert_eq!(r["server_isn"], "-", "no SYN-ACK, so no server ISN");
    }
}

#[test]
fn unanswered_syn_is_no_synack_with_retransmissions() {
    let f = finals("tcp_no_synack.pcap");
    let t = tcp(&f);
    assert_eq!(t.len(), 1);
    let r = t[0];
    assert_eq!(r["close_type"], "no_synack");
    assert_eq!((r["client_packets"].as_str(), r["server_packets"].as_str()), ("4", "0"));
    assert_eq!(r["syn_count"], "4");
    assert_eq!(r["client_retransmissions"], "3", "three SYN retransmissions");
    assert_eq!(r["rtt_server_ns"], "-");
}

#[test]
fn keepalive_http_closes_with_fin_and_has_handshake_facts() {
    let f = finals("http_keepalive.pcap");
    let t = tcp(&f);
    assert_eq!(t.len(), 1);
    let r = t[0];
    assert_eq!(r["close_type"], "fin");
    assert_eq!(r["client_by"], "syn");
    assert_eq!(r["server_port"], "80");
    for k in [
        "rtt_client_ns",
        "rtt_server_ns",
        "client_isn",
        "server_isn",
        "syn_mss",
        "syn_wscale",
        "syn_tsval",
        "syn_ip_id",
    ] {
        assert_ne!(r[k], "-", "{k} known after a full handshake");
    }
    assert_eq!(r["syn_mss"], "1460");
    assert_eq!(r["client_fin_count"], "1");
    assert_eq!(r["server_fin_count"], "1");
}

#[test]
fn loss_and_reordering_are_counted_on_the_server_side() {
    let f = finals("tcp_loss_reorder.pcap");
    let r = tcp(&f)[0];
    // The impairment was applied to server→client traffic only.
    assert_eq!(r["client_retransmissions"], "0");
    assert_ne!(r["server_retransmissions"], "0");
    assert_ne!(r["server_out_of_order"], "0");
}

#[test]
fn vlan_and_vxlan_fields() {
    let v = finals("vlan.pcap");
    assert!(v.iter().filter(|r| r["l4_protocol"] != "udp").all(|r| r["vlan_outer"] == "100" && r["vlan_inner"] == "-"));
    let x = finals("vxlan.pcap");
    let inner: Vec<_> = x.iter().filter(|r| r["tunnel_type"] == "vxlan").collect();
    assert!(inner.len() >= 2, "inner TCP and ICMP flows");
    for r in inner {
        assert_eq!(r["tunnel_id"], "42");
        assert_eq!(r["tunnel_depth"], "1");
        assert!(r["client_ip"].starts_with("10.99.110."), "inner address {}", r["client_ip"]);
        assert!(r["tunnel_outer_src"].starts_with("10.99.10."), "outer address {}", r["tunnel_outer_src"]);
    }
}

#[test]
fn fragments_are_reassembled_into_their_flows() {
    for name in ["fragments.pcap", "fragments_v6.pcap"] {
        let (s, t) = replay_flows(&[root().join("pcaps").join(name)], 1);
        assert!(s.defrag.reassembled >= 4, "{name}: {:?}", s.defrag);
        assert_eq!(s.defrag.timed_out, 0, "{name}: every datagram completes");
        let frags: i64 = rows(&t)
            .iter()
            .map(|r| r["client_fragments"].parse::<i64>().unwrap() + r["server_fragments"].parse::<i64>().unwrap())
            .sum();
        assert_eq!(frags as u64, s.defrag.fragments, "{name}: every fragment counted in a flow");
    }
}

#[test]
fn pcapng_interfaces_are_capture_points() {
    let f = finals("pcapng_two_ifaces.pcapng");
    let points: std::collections::BTreeSet<&str> = f.iter().map(|r| r["capture_point"].as_str()).collect();
    assert_eq!(
        points.into_iter().collect::<Vec<_>>(),
        vec!["pcapng_two_ifaces.pcapng/any", "pcapng_two_ifaces.pcapng/eth0"]
    );
}

/// Writes a pcap of one TCP connection whose packets are spread over
/// `minutes` minutes (one data segment every 10 s), then idle.
fn long_flow(minutes: u32) -> (Scratch, PathBuf) {
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let dir = Scratch::new("long");
    let path = dir.0.join("long.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    let t0 = 1_700_000_000u64; // a minute boundary plus 20 s
    let mut push = |secs: u64, from_client: bool, seq: u32, ack: u32, syn: bool, fin: bool, data: &[u8]| {
        let (s, d, sp, dp) = if from_client {
            ([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80)
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000)
        };
        let mut b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4(s, d, 64).tcp(sp, dp, seq, 65000);
        if syn {
            b = b.syn();
        }
        if !syn || !from_client {
            b = b.ack(ack);
        }
        if fin {
            b = b.fin();
        }
        let mut v = Vec::new();
        b.write(&mut v, data).unwrap();
        w.write_packet(&PcapPacket::new(std::time::Duration::from_secs(t0 + secs), v.len() as u32, &v)).unwrap();
    };
    push(0, true, 100, 0, true, false, b"");
    push(0, false, 500, 101, true, false, b"");
    let mut seq = 101;
    for i in 0..(minutes * 6) {
        push(u64::from(i) * 10 + 1, true, seq, 501, false, false, b"hello");
        seq += 5;
    }
    push(u64::from(minutes) * 60 + 1, true, seq, 501, false, true, b"");
    push(u64::from(minutes) * 60 + 1, false, 501, seq + 1, false, true, b"");
    drop(w);
    (dir, path)
}

#[test]
fn long_flows_write_period_records_that_add_up() {
    let (_dir, path) = long_flow(3);
    let (_, t) = replay_flows(&[path], 1);
    let r = rows(&t);
    let periods = r.iter().filter(|x| x["record_kind"] == "period").count();
    let finals = r.iter().filter(|x| x["record_kind"] == "final").count();
    assert_eq!(finals, 1);
    assert_eq!(periods, 3, "minute boundaries crossed: {r:#?}");
    let ids: std::collections::BTreeSet<&str> = r.iter().map(|x| x["flow_id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one flow id for all its records");
    let total: i64 = r
        .iter()
        .map(|x| x["client_packets"].parse::<i64>().unwrap() + x["server_packets"].parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 2 + 18 + 2, "every packet in exactly one record");
    for x in &r {
        assert!(x["start_ns"] <= x["end_ns"]);
        // No record spans a minute boundary.
        let (s, e): (i64, i64) = (x["start_ns"].parse().unwrap(), x["end_ns"].parse().unwrap());
        assert_eq!(s / 60_000_000_000, e / 60_000_000_000, "{x:?}");
    }
    assert_eq!(r.last().unwrap()["close_type"], "fin");
}

/// A file cut in the middle of a packet: every record built before the cut
/// is written, and the run reports where the file ends (the CLI exits 1).
#[test]
fn truncated_file_keeps_records_and_says_where() {
    let dir = Scratch::new("trunc");
    let full = std::fs::read(root().join("pcaps/http_keepalive.pcap")).unwrap();
    let cut = dir.0.join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 20]).unwrap();
    let (s, t) = replay_flows(&[cut], 1);
    assert_eq!(s.input_errors.len(), 1, "{:?}", s.input_errors);
    let e = &s.input_errors[0];
    assert!(e.contains("truncated at byte offset") && e.contains("cut.pcap"), "{e}");
    assert_eq!(s.packets, 15, "all packets before the cut");
    let r = rows(&t);
    assert_eq!(r.len(), 1, "the flow is still written");
    let packets: u64 = r
        .iter()
        .map(|x| x["client_packets"].parse::<u64>().unwrap() + x["server_packets"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(packets, 15 - s.non_ip, "every IP packet before the cut is in the flow");
}
