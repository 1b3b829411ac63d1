//! Linker tests on hand-made observations: each key, the cases that must
//! never link, and chunking.

use super::*;

const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;

fn flow(id: i64, point: &str, t: i64, c: (&str, i32), s: (&str, i32), isn: Option<(i64, i64)>) -> FlowObs {
    FlowObs {
        flow_id: id,
        point: point.into(),
        start_ns: t,
        l4: "tcp".into(),
        client_ip: Ip::parse(c.0),
        client_port: c.1,
        server_ip: Ip::parse(s.0),
        server_port: s.1,
        client_isn: isn.map(|x| x.0),
        server_isn: isn.map(|x| x.1),
        syn_ip_id: Some(7),
        ..FlowObs::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn call(id: i64, flow_id: i64, point: &str, t: i64, end: i64, c: (&str, i32), s: (&str, i32), res: &str) -> CallObs {
    CallObs {
        call_id: id,
        flow_id,
        point: point.into(),
        start_ns: t,
        end_ns: Some(end),
        has_request: true,
        l4: "tcp".into(),
        l7: "http".into(),
        client_ip: Ip::parse(c.0),
        client_port: c.1,
        server_ip: Ip::parse(s.0),
        server_port: s.1,
        request_type: Some("GET".into()),
        resource: Some(res.into()),
        response_code: Some(200),
        ..CallObs::default()
    }
}

fn run(flows: &mut [FlowObs], calls: &mut [CallObs]) -> (Vec<NatPathRecord>, NatStats) {
    let mut l = Linker::new(NatConfig::default());
    let mut out = Vec::new();
    l.link(flows, calls, i64::MIN, &mut out);
    out.sort_by_key(|r| (r.a_start_ns, r.b_start_ns));
    (out, l.stats)
}

fn summary(r: &NatPathRecord) -> (i64, i64, &str, &str, &str) {
    (r.a_flow_id, r.b_flow_id, r.link_kind.as_str(), r.translation.as_str(), r.match_method.as_str())
}

#[test]
fn dnat_and_snat_link_by_isn() {
    let mut f = vec![
        flow(1, "client", 0, ("10.0.0.10", 40000), ("10.96.0.10", 80), Some((111, 222))),
        flow(2, "backend", MS, ("10.1.0.1", 50000), ("10.1.0.21", 8080), Some((111, 222))),
        flow(3, "backend", 2 * MS, ("10.1.0.1", 50001), ("10.1.0.22", 8080), Some((333, 444))),
    ];
    let (out, _) = run(&mut f, &mut []);
    assert_eq!(out.iter().map(summary).collect::<Vec<_>>(), [(1, 2, "l4", "dnat+snat", "tcp_isn")]);
    assert_eq!(out[0].hop_latency_ns, MS);
    assert!((out[0].confidence - 1.0).abs() < 1e-9);
}

#[test]
fn a_rewritten_server_isn_or_far_apart_syns_never_link() {
    let mut f = vec![
        // SYN proxy: same client ISN, the server side answers with another ISN.
        flow(1, "client", 0, ("10.0.0.10", 40000), ("10.96.0.10", 80), Some((111, 222))),
        flow(2, "backend", MS, ("10.1.0.1", 50000), ("10.1.0.21", 80), Some((111, 999))),
        // Port reuse with the same ISN a minute later.
        flow(3, "client", 60 * S, ("10.0.0.10", 40000), ("10.96.0.10", 80), Some((555, 1))),
        flow(4, "backend", 120 * S, ("10.1.0.1", 50000), ("10.1.0.21", 80), Some((555, 1))),
    ];
    let (out, stats) = run(&mut f, &mut []);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(stats.isn_conflicts, 1);
}

#[test]
fn same_tuple_at_three_points_is_a_chain() {
    let t = (("10.0.0.10", 40000), ("10.0.0.20", 80));
    let mut f = vec![
        flow(1, "p1", 0, t.0, t.1, Some((1, 2))),
        flow(2, "p2", MS, t.0, t.1, Some((1, 2))),
        flow(3, "p3", 2 * MS, t.0, t.1, Some((1, 2))),
    ];
    let (out, _) = run(&mut f, &mut []);
    assert_eq!(
        out.iter().map(summary).collect::<Vec<_>>(),
        [(1, 2, "l4", "none", "tcp_isn"), (2, 3, "l4", "none", "tcp_isn")]
    );
    assert_eq!(out[0].path_id, out[1].path_id);
}

#[test]
fn a_tcp_relay_links_by_payload_only_when_unambiguous() {
    let mut down = flow(1, "client", 0, ("10.0.0.10", 40000), ("10.0.0.1", 80), Some((1, 2)));
    let mut up = flow(2, "backend", MS, ("10.1.0.1", 50000), ("10.1.0.21", 80), Some((3, 4)));
    down.client_hash = Some(42);
    up.client_hash = Some(42);
    down.server_hash = Some(43);
    up.server_hash = Some(43);
    let (out, _) = run(&mut [down.clone(), up.clone()], &mut []);
    assert_eq!(out.iter().map(summary).collect::<Vec<_>>(), [(1, 2, "l4", "proxy", "payload_hash")]);
    // A second downstream flow with the same first bytes: ambiguous.
    let mut other = down.clone();
    other.flow_id = 5;
    other.client_port = 40001;
    other.client_isn = Some(9);
    let (out, stats) = run(&mut [down, other, up], &mut []);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(stats.ambiguous, 1);
}

#[test]
fn proxy_calls_link_by_request_id_and_echoed_id() {
    let (c, p, b) = (("10.0.0.10", 40000), ("10.0.0.1", 80), ("10.1.0.21", 80));
    let up_c = ("10.1.0.1", 50000);
    let mut down = call(10, 1, "client", 0, 10 * MS, c, p, "/a");
    let mut up = call(20, 2, "backend", MS, 9 * MS, up_c, b, "/a");
    down.request_id = Some("abc".into()); // from the response: the proxy echoed it
    up.request_id = Some("abc".into());
    let (out, _) = run(&mut [], &mut [down, up]);
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!(
        (r.a_call_id, r.b_call_id, r.link_kind.as_str(), r.match_method.as_str()),
        (Some(10), Some(20), "l7", "x_request_id")
    );
    assert_eq!((r.translation.as_str(), r.hop_latency_ns), ("proxy", MS));
}

#[test]
fn timing_links_the_innermost_container_and_skips_ties() {
    let (c, p, p2, b) = (("10.0.0.10", 1), ("10.0.0.1", 80), ("10.2.0.1", 80), ("10.1.0.21", 80));
    // client -> proxy1 -> proxy2 -> backend, nested in time.
    let mut calls = vec![
        call(1, 1, "x", 0, 100 * MS, c, p, "/r"),
        call(2, 2, "x", 10 * MS, 90 * MS, ("10.0.0.1", 2), p2, "/r"),
        call(3, 3, "x", 20 * MS, 80 * MS, ("10.2.0.1", 3), b, "/r"),
    ];
    let (out, _) = run(&mut [], &mut calls);
    let pairs: Vec<_> =
        out.iter().map(|r| (r.a_call_id.unwrap(), r.b_call_id.unwrap(), r.match_method.clone())).collect();
    assert_eq!(pairs, [(1, 2, "timing".to_string()), (2, 3, "timing".to_string())]);
    assert_eq!(out[0].path_id, out[1].path_id);
    // Two concurrent identical downstream requests, one upstream: ambiguous.
    let mut calls = vec![
        call(1, 1, "x", 0, 100 * MS, c, p, "/r"),
        call(2, 4, "x", MS, 101 * MS, ("10.0.0.11", 1), p, "/r"),
        call(3, 3, "x", 20 * MS, 80 * MS, ("10.2.0.1", 3), b, "/r"),
    ];
    let (out, stats) = run(&mut [], &mut calls);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(stats.ambiguous, 1);
}

#[test]
fn calls_on_one_connection_seen_twice_are_not_a_proxy_hop() {
    let t = (("10.0.0.10", 40000), ("10.0.0.20", 80));
    let mut f = vec![flow(1, "p1", 0, t.0, t.1, Some((1, 2))), flow(2, "p2", MS, t.0, t.1, Some((1, 2)))];
    let mut c =
        vec![call(10, 1, "p1", 5 * MS, 50 * MS, t.0, t.1, "/x"), call(20, 2, "p2", 6 * MS, 49 * MS, t.0, t.1, "/x")];
    let (out, _) = run(&mut f, &mut c);
    assert_eq!(out.iter().map(summary).collect::<Vec<_>>(), [(1, 2, "l4", "none", "tcp_isn")]);
}

#[test]
fn dns_through_a_vip_links_by_id_and_name() {
    let mut f = vec![
        FlowObs { l4: "udp".into(), ..flow(1, "client", 0, ("10.0.0.10", 5000), ("10.96.0.53", 53), None) },
        FlowObs { l4: "udp".into(), ..flow(2, "backend", MS, ("10.1.0.1", 6000), ("10.1.0.21", 53), None) },
    ];
    let dns = |id, fid, point: &str, t, c, s| CallObs {
        l4: "udp".into(),
        l7: "dns".into(),
        request_type: Some("A".into()),
        dns_id: Some(77),
        ..call(id, fid, point, t, t + MS, c, s, "www.example.test")
    };
    let mut c = vec![
        dns(10, 1, "client", 0, ("10.0.0.10", 5000), ("10.96.0.53", 53)),
        dns(20, 2, "backend", MS, ("10.1.0.1", 6000), ("10.1.0.21", 53)),
    ];
    let (out, _) = run(&mut f, &mut c);
    assert_eq!(out.iter().map(summary).collect::<Vec<_>>(), [(1, 2, "l4", "dnat+snat", "dns_id")]);
    assert_eq!((out[0].a_call_id, out[0].b_call_id), (Some(10), Some(20)));
}

#[test]
fn chunked_linking_gives_the_same_links() {
    // Connections every 10 minutes across 3 hours, each seen at two points.
    let mut flows = Vec::new();
    for i in 0..18 {
        let t = i * 600 * S + 3599 * S; // some straddle hour boundaries
        flows.push(flow(2 * i, "client", t, ("10.0.0.10", 1000 + i as i32), ("10.96.0.10", 80), Some((i, i + 100))));
        flows.push(flow(
            2 * i + 1,
            "backend",
            t + 2 * S,
            ("10.1.0.1", 2000 + i as i32),
            ("10.1.0.21", 80),
            Some((i, i + 100)),
        ));
    }
    let (whole, _) = run(&mut flows.clone(), &mut []);
    assert_eq!(whole.len(), 18);
    assert_eq!(link_by_hour(&flows, 5), whole);
}

#[test]
fn toa_links_a_fullnat_connection_to_its_real_client() {
    // IPVS FULLNAT: new sequence numbers and both addresses rewritten; the
    // real client address rides in the TOA option.
    let mut f = vec![
        flow(1, "client", 0, ("10.0.0.10", 40000), ("10.96.0.10", 80), Some((1, 2))),
        FlowObs {
            toa: Some((Ip::parse("10.0.0.10"), 40000)),
            ..flow(2, "backend", MS, ("10.1.0.1", 50000), ("10.1.0.21", 80), Some((7, 8)))
        },
        // Another client's connection at the same time: no TOA match.
        flow(3, "client", MS / 2, ("10.0.0.11", 40000), ("10.96.0.10", 80), Some((5, 6))),
    ];
    let (out, _) = run(&mut f, &mut []);
    assert_eq!(out.iter().map(summary).collect::<Vec<_>>(), [(1, 2, "l4", "dnat+snat", "toa")]);
}

#[test]
fn icmp_echo_through_nat_links_by_payload() {
    let icmp = |id, point: &str, t, c: (&str, i32), s: (&str, i32), h| FlowObs {
        l4: "icmp".into(),
        client_hash: Some(h),
        server_hash: Some(h),
        ..flow(id, point, t, c, s, None)
    };
    let mut f = vec![
        icmp(1, "client", 0, ("10.0.0.10", 77), ("10.96.0.10", 77), 1111),
        icmp(2, "backend", MS, ("10.1.0.1", 77), ("10.1.0.21", 77), 1111),
        // A second ping (another payload: ping's timestamp differs).
        icmp(3, "client", S, ("10.0.0.10", 78), ("10.96.0.10", 78), 2222),
        icmp(4, "backend", S + MS, ("10.1.0.1", 78), ("10.1.0.21", 78), 2222),
    ];
    let (out, _) = run(&mut f, &mut []);
    assert_eq!(
        out.iter().map(summary).collect::<Vec<_>>(),
        [(1, 2, "l4", "dnat+snat", "payload_hash"), (3, 4, "l4", "dnat+snat", "payload_hash")]
    );
}

#[test]
fn the_same_request_from_many_clients_never_links_by_payload() {
    // A health check every client sends: identical first bytes on 200
    // connections to 16 servers, 1 ms apart. None is a relay of another.
    let mut f: Vec<FlowObs> = (0..200)
        .map(|i| FlowObs {
            client_hash: Some(7),
            server_hash: Some(8),
            ..flow(i, "p", i * MS, ("10.0.0.10", 1000 + i as i32), (&format!("10.1.0.{}", i % 16), 80), Some((i, i)))
        })
        .collect();
    let (out, stats) = run(&mut f, &mut []);
    assert!(out.is_empty(), "{} false links", out.len());
    assert!(stats.ambiguous > 0);
}

/// A TCP flow whose handshake was not captured: sequence ranges only.
fn mid(id: i64, point: &str, t: i64, c: (&str, i32), s: (&str, i32), cseq: (u32, u32), sseq: (u32, u32)) -> FlowObs {
    FlowObs {
        end_ns: t + 10 * S,
        client_seq: Some(cseq),
        server_seq: Some(sseq),
        syn_ip_id: None,
        ..flow(id, point, t, c, s, None)
    }
}

#[test]
fn seq_overlap_on_the_circle() {
    assert_eq!(seq_overlap((100, 200), (150, 300)), 50);
    assert_eq!(seq_overlap((150, 300), (100, 200)), 50);
    assert_eq!(seq_overlap((100, 200), (120, 130)), 10);
    assert_eq!(seq_overlap((100, 200), (200, 300)), 0);
    assert_eq!(seq_overlap((100, 100), (50, 150)), 0, "an empty range overlaps nothing");
    // Ranges across the wrap: [2^32 - 100, 50) and [2^32 - 10, 200).
    let w = |x: i64| (x.rem_euclid(1 << 32)) as u32;
    assert_eq!(seq_overlap((w(-100), 50), (w(-10), 200)), 60);
    assert_eq!(seq_overlap((w(-10), 200), (w(-100), 50)), 60);
    assert_eq!(seq_overlap((w(-100), w(-50)), (10, 20)), 0);
    assert_eq!(seq_overlap((10, 20), (w(-100), 15)), 5);
    // Buckets: a range across the wrap files under the last and the first.
    assert_eq!(seq_buckets((w(-100), 50)).collect::<Vec<_>>(), [4095, 0]);
    assert_eq!(seq_buckets((5, 5)).collect::<Vec<_>>(), [0]);
    assert_eq!(seq_buckets((0, 0)).count(), 1);
    assert_eq!(seq_buckets((0, u32::MAX)).count(), 4096);
}

#[test]
fn midstream_connections_link_by_seq_ranges_at_different_bytes() {
    // The client point saw bytes 1000.. of the request stream, the backend
    // point (capture started later) 1500..; both saw the tail.
    let mut f = vec![
        mid(1, "client", 0, ("10.0.0.10", 40000), ("10.96.0.10", 80), (1000, 5000), (70_000, 90_000)),
        mid(2, "backend", 300 * MS, ("10.1.0.1", 40000), ("10.1.0.21", 80), (1500, 5000), (80_000, 90_000)),
        // Another connection at the same time, other sequence numbers.
        mid(3, "client", MS, ("10.0.0.10", 40001), ("10.96.0.10", 80), (9_000_000, 9_001_000), (7, 900)),
        mid(4, "backend", 301 * MS, ("10.1.0.1", 40001), ("10.1.0.22", 80), (9_000_500, 9_001_000), (500, 900)),
    ];
    let (out, stats) = run(&mut f, &mut []);
    assert_eq!(
        out.iter().map(summary).collect::<Vec<_>>(),
        [(1, 2, "l4", "dnat+snat", "tcp_seq"), (3, 4, "l4", "dnat+snat", "tcp_seq")]
    );
    assert!((out[0].confidence - 0.95).abs() < 1e-9);
    assert_eq!(stats.ambiguous, 0);
    // Only one side captured the SYN: still linked; across the wrap too.
    let top = u32::MAX - 99;
    let mut f = vec![
        FlowObs {
            client_isn: Some(i64::from(top) - 1),
            ..mid(1, "client", 0, ("10.0.0.10", 40000), ("10.96.0.10", 80), (top - 1, 40), (5, 20))
        },
        mid(2, "backend", MS, ("10.1.0.1", 40000), ("10.1.0.21", 80), (top + 50, 40), (10, 20)),
    ];
    let (out, _) = run(&mut f, &mut []);
    assert_eq!(out.iter().map(summary).collect::<Vec<_>>(), [(1, 2, "l4", "dnat+snat", "tcp_seq")]);
    assert!((out[0].confidence - 0.8).abs() < 1e-9, "10 server bytes in common");
}

#[test]
fn seq_ranges_that_are_no_evidence_never_link() {
    let (c, v, bk) = (("10.0.0.10", 40000), ("10.96.0.10", 80), ("10.1.0.21", 80));
    let g = ("10.1.0.1", 40000);
    // Pure ACKs (empty ranges), a keep-alive probe, too few bytes in common.
    for (ca, sa, cb, sb) in [
        ((100, 100), (500, 600), (100, 100), (500, 600)),
        ((99, 100), (500, 600), (99, 100), (500, 600)),
        ((100, 200), (500, 600), (195, 300), (500, 600)),
        ((100, 200), (500, 600), (100, 200), (599, 700)),
    ] {
        let mut f = vec![mid(1, "client", 0, c, v, ca, sa), mid(2, "backend", MS, g, bk, cb, sb)];
        let (out, _) = run(&mut f, &mut []);
        assert!(out.is_empty(), "{ca:?} {sa:?} / {cb:?} {sb:?}: {out:?}");
    }
    // Both with a SYN: that is tcp_isn's call (here the ISNs differ).
    let mut f = vec![
        FlowObs { client_isn: Some(99), ..mid(1, "client", 0, c, v, (99, 200), (500, 600)) },
        FlowObs { client_isn: Some(98), ..mid(2, "backend", MS, g, bk, (99, 200), (500, 600)) },
    ];
    let (out, _) = run(&mut f, &mut []);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_relay_or_syn_proxy_with_new_seq_spaces_never_links_by_seq() {
    let (c, v, bk) = (("10.0.0.10", 40000), ("10.0.0.1", 80), ("10.1.0.21", 80));
    let g = ("10.1.0.1", 50000);
    let mut f = vec![
        // socat-like relay: both directions renumbered.
        mid(1, "client", 0, c, v, (1000, 2000), (50_000, 60_000)),
        mid(2, "backend", MS, g, bk, (7_000_000, 7_001_000), (3_000_000, 3_010_000)),
        // SYN proxy: the client's numbers kept, the server's shifted.
        mid(3, "client", 2 * MS, ("10.0.0.11", 40000), v, (80_000, 81_000), (900_000, 910_000)),
        mid(4, "backend", 3 * MS, ("10.1.0.1", 50001), bk, (80_000, 81_000), (123_456_789, 123_466_789)),
    ];
    let (out, _) = run(&mut f, &mut []);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn seq_port_reuse_far_apart_never_links_and_ties_are_ambiguous() {
    let (c, v, bk) = (("10.0.0.10", 40000), ("10.96.0.10", 80), ("10.1.0.21", 80));
    let g = ("10.1.0.1", 40000);
    // The same tuple and sequence numbers 40 s later (its first record
    // ended after 10 s): time ranges do not overlap.
    let mut f = vec![
        mid(1, "client", 0, c, v, (1000, 2000), (5000, 6000)),
        mid(2, "backend", 40 * S, g, bk, (1000, 2000), (5000, 6000)),
    ];
    let (out, _) = run(&mut f, &mut []);
    assert!(out.is_empty(), "{out:?}");
    // Two client-side flows (barely touching each other: 10 and 5 bytes)
    // whose ranges both overlap one backend flow: ambiguous, never linked.
    let mut f = vec![
        mid(1, "client", 0, c, v, (1000, 2000), (5000, 6000)),
        mid(2, "client", MS, ("10.0.0.11", 40000), ("10.96.0.11", 80), (1990, 3000), (5995, 7000)),
        mid(3, "backend", 2 * MS, g, bk, (1200, 2200), (5200, 6200)),
    ];
    let (out, stats) = run(&mut f, &mut []);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(stats.ambiguous, 1);
}

#[test]
fn one_midstream_connection_at_three_points_is_a_chain() {
    let t = (("10.0.0.10", 40000), ("10.0.0.20", 80));
    let mut f = vec![
        mid(1, "p1", 0, t.0, t.1, (1000, 9000), (50_000, 90_000)),
        mid(2, "p2", MS, t.0, t.1, (2000, 9000), (60_000, 90_000)),
        mid(3, "p3", 2 * MS, t.0, t.1, (3000, 9000), (70_000, 90_000)),
    ];
    let (out, _) = run(&mut f, &mut []);
    assert_eq!(
        out.iter().map(summary).collect::<Vec<_>>(),
        [(1, 2, "l4", "none", "tcp_seq"), (2, 3, "l4", "none", "tcp_seq")]
    );
    assert_eq!(out[0].path_id, out[1].path_id);
}

#[test]
fn many_midstream_flows_in_one_bucket_stay_cheap_and_never_link_wrongly() {
    // 20k midstream flows whose client ranges all sit in one 1 MiB bucket,
    // 1 ms apart, two points: the scan is bounded (crowded: ambiguous).
    let mut f: Vec<FlowObs> = (0..20_000)
        .map(|i| {
            let p = if i % 2 == 0 { "client" } else { "backend" };
            let x = 1000 + (i as u32 % 64) * 16;
            mid(i, p, i * MS, ("10.0.0.10", 1000 + (i / 2) as i32), ("10.1.0.9", 80), (x, x + 12), (x, x + 12))
        })
        .collect();
    let (out, stats) = run(&mut f, &mut []);
    assert!(out.iter().all(|r| r.match_method == "tcp_seq"));
    assert!(stats.ambiguous > 0);
    // Pairs found are same-client-port pairs only (siblings never link).
    assert!(out.iter().all(|r| r.a_client_port == r.b_client_port), "{:?}", &out[..out.len().min(3)]);
}

#[test]
fn chunked_seq_linking_gives_the_same_links() {
    // Midstream connections every 10 minutes across 3 hours, some
    // straddling hour boundaries, the backend point 5 s behind.
    let mut flows = Vec::new();
    for i in 0..18i64 {
        let t = i * 600 * S + 3598 * S;
        let x = (i as u32) << 24;
        let c = ("10.0.0.10", 1000 + i as i32);
        flows.push(mid(2 * i, "client", t, c, ("10.96.0.10", 80), (x, x + 5000), (x + 7, x + 9000)));
        let b = ("10.1.0.1", 2000 + i as i32);
        flows.push(mid(2 * i + 1, "backend", t + 5 * S, b, ("10.1.0.21", 80), (x + 100, x + 6000), (x + 50, x + 9500)));
    }
    let (whole, _) = run(&mut flows.clone(), &mut []);
    assert_eq!(whole.len(), 18);
    assert!(whole.iter().all(|r| r.match_method == "tcp_seq" && r.b_flow_id == r.a_flow_id + 1));
    assert_eq!(link_by_hour(&flows, 5), whole);
}

/// Links `flows` one hour at a time (hours 0..`hours`), each chunk with the
/// previous one's tail, as `correlate` reads them; links sorted by time.
fn link_by_hour(flows: &[FlowObs], hours: i64) -> Vec<NatPathRecord> {
    let hour = 3600 * S;
    let cfg = NatConfig { l7_window_ns: 10 * S, ..NatConfig::default() };
    let mut l = Linker::new(cfg.clone());
    let mut chunked = Vec::new();
    let mut tail: Vec<FlowObs> = Vec::new();
    for h in 0..hours {
        let from = h * hour;
        let mut chunk: Vec<FlowObs> = tail.clone();
        chunk.extend(flows.iter().filter(|f| f.start_ns >= from && f.start_ns < from + hour).cloned());
        l.link(&mut chunk, &mut [], from, &mut chunked);
        tail = chunk.into_iter().filter(|f| f.start_ns >= from + hour - cfg.tail_ns()).collect();
    }
    chunked.sort_by_key(|r| (r.a_start_ns, r.b_start_ns));
    chunked
}
