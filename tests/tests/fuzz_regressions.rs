//! Replays fuzz findings on stable, in the normal test suite.
//!
//! Every file under `fuzz/regressions/<target>/` is an input that once made
//! the fuzz target `<target>` panic (or break an invariant, or hang). Each is
//! run through the same body as the fuzz target (`fuzz/harness.rs`, shared
//! with `fuzz/fuzz_targets/`), so a fixed bug stays fixed without nightly or
//! libFuzzer. A few hand-made inputs per target check that the harness
//! itself still reaches the code it is meant to exercise.
//!
//! To add a finding: `cargo +nightly fuzz tmin <target> <artifact>`, then
//! copy the minimised input to `fuzz/regressions/<target>/<short-name>`.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use harness::{push_chunk, DefragOutcome, FlowOutcome, PcapOutcome, WireOutcome};

type Body = fn(&[u8]);

const TARGETS: [(&str, Body); 14] = [
    ("wire_dissect", |d| {
        let _ = harness::wire_dissect(d);
    }),
    ("pcap_reader", |d| {
        let _ = harness::pcap_reader(d);
    }),
    ("defrag", |d| {
        let _ = harness::defrag(d);
    }),
    ("flow_table", |d| {
        let _ = harness::flow_table(d);
    }),
    ("l7_http1", |d| {
        let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Http1), d);
    }),
    ("l7_dns", |d| {
        let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Dns), d);
    }),
    ("l7_tls", |d| {
        let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Tls), d);
    }),
    ("l7_http2", |d| {
        let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Http2), d);
    }),
    ("l7_mysql", |d| {
        let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Mysql), d);
    }),
    ("l7_postgresql", |d| {
        let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Postgresql), d);
    }),
    ("l7_redis", |d| {
        let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Redis), d);
    }),
    ("l7_kafka", |d| {
        let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Kafka), d);
    }),
    ("l7_mqtt", |d| {
        let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Mqtt), d);
    }),
    ("l7_stream", |d| {
        let _ = harness::l7_session(None, d);
    }),
];

/// The L7 harness reaches each decoder: a request and its answer give a call.
#[test]
fn l7_harness_makes_calls() {
    let http = b"\x00\x00GET / HTTP/1.1\r\nHost: a\r\n\r\nFTSEP\x01HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    let o = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Http1), http);
    assert_eq!((o.calls, o.errors), (1, 0));
}

/// A hang counts as a failure; the fuzz targets run with `-timeout=10`.
const TIME_LIMIT: Duration = Duration::from_secs(60);

thread_local! {
    /// Where the last panic on this thread happened.
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Keeps the default panic output and also records the panic's location,
/// so a failing regression names the line that broke.
fn record_panic_locations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
            PANIC_AT.with(|p| *p.borrow_mut() = at);
            default(info);
        }));
    });
}

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// Runs `body` on `input` in its own thread; the panic message or a
/// timeout on failure.
fn run(body: Body, input: Vec<u8>) -> Result<(), String> {
    record_panic_locations();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| body(&input)).map_err(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "panic".to_string());
            let at = PANIC_AT.with(|p| p.borrow_mut().take()).unwrap_or_default();
            format!("{msg} (at {at})")
        });
        let _ = tx.send(r);
    });
    rx.recv_timeout(TIME_LIMIT).unwrap_or_else(|_| Err(format!("no result within {TIME_LIMIT:?}")))
}

#[test]
fn saved_fuzz_findings_stay_fixed() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (target, body) in TARGETS {
        let dir = regressions_dir().join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = entries.map(|e| e.expect("read fuzz/regressions").path()).collect();
        files.sort();
        for path in files.into_iter().filter(|p| p.is_file()) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') || name.ends_with(".md") {
                continue;
            }
            let input = std::fs::read(&path).expect("read a regression input");
            ran += 1;
            if let Err(msg) = run(body, input) {
                failures.push(format!("{target}/{name}: {msg}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {ran} fuzz regressions fail:\n  {}", failures.len(), failures.join("\n  "));
}

#[test]
fn fuzz_targets_take_any_bytes() {
    let inputs: [&[u8]; 6] = [b"", b"\0", &[0xff; 3], &[0; 64], &[0xff; 300], b"\x03\x00\x00\x45\x00\x00\x14"];
    for (target, body) in TARGETS {
        for input in inputs {
            if let Err(msg) = run(body, input.to_vec()) {
                panic!("{target} on {input:02x?}: {msg}");
            }
        }
    }
}

// Hand-made packets -----------------------------------------------------------

fn ipv4(proto: u8, ident: u16, frag_field: u16, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ident.to_be_bytes());
    ip[6..8].copy_from_slice(&frag_field.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

fn udp(sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(body);
    u
}

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(body);
    t
}

/// A 3008-byte UDP datagram cut into three IPv4 fragments.
fn fragments() -> Vec<Vec<u8>> {
    let body: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let dgram = udp(12345, 53, &body);
    dgram
        .chunks(1480)
        .enumerate()
        .map(|(i, part)| {
            let more = (i + 1) * 1480 < dgram.len();
            ipv4(17, 0x1234, (i * 1480 / 8) as u16 | if more { 0x2000 } else { 0 }, part)
        })
        .collect()
}

const T0: i64 = 1_700_000_000_000_000_000;

#[test]
fn wire_dissect_decodes_a_frame_and_a_fragment() {
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    eth.extend(ipv4(17, 1, 0, &udp(1000, 53, b"hello")));
    let mut input = vec![0, 0, 0]; // Ethernet, nothing uncaptured
    input.extend(&eth);
    assert_eq!(
        harness::wire_dissect(&input),
        WireOutcome { decoded: true, fragment: false, fragment_transport: false }
    );
    let mut input = vec![3, 0, 0]; // raw IP: the first fragment carries the UDP header
    input.extend(&fragments()[0]);
    assert_eq!(harness::wire_dissect(&input), WireOutcome { decoded: true, fragment: true, fragment_transport: true });
}

#[test]
fn pcap_reader_reads_a_legacy_pcap_and_stops_at_a_truncation() {
    let frame = ipv4(17, 1, 0, &udp(1000, 53, b"hello"));
    let mut file = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 101] {
        file.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..3u32 {
        for v in [1_700_000_000, i, frame.len() as u32, frame.len() as u32] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        file.extend_from_slice(&frame);
    }
    assert_eq!(harness::pcap_reader(&file), PcapOutcome { opened: true, packets: 3, error: false });
    file.truncate(file.len() - 1);
    assert_eq!(harness::pcap_reader(&file), PcapOutcome { opened: true, packets: 2, error: true });
}

#[test]
fn defrag_reassembles_in_any_order_and_delivers_partial_datagrams() {
    let f = fragments();
    let input = |order: &[usize]| {
        let mut d = T0.to_le_bytes().to_vec();
        d.extend_from_slice(&[0xff, 0xff]); // loose limits
        for &i in order {
            push_chunk(&mut d, 1000, 0, 0, &f[i]);
        }
        d
    };
    let full = DefragOutcome { fragments: 3, reassembled: 1, partial: 0, transport_ok: 1 };
    assert_eq!(harness::defrag(&input(&[0, 1, 2])), full);
    assert_eq!(harness::defrag(&input(&[2, 0, 1])), full);
    let partial = DefragOutcome { fragments: 2, reassembled: 0, partial: 1, transport_ok: 1 };
    assert_eq!(harness::defrag(&input(&[0, 1])), partial);
}

#[test]
fn flow_table_accounts_a_tcp_conversation_and_a_reassembled_datagram() {
    let req = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let c2s = |seq, ack, flags, body: &[u8]| ipv4(6, 0, 0, &tcp(40000, 80, seq, ack, flags, body));
    let s2c = |seq, ack, flags, body: &[u8]| {
        let mut ip = ipv4(6, 0, 0, &tcp(80, 40000, seq, ack, flags, body));
        ip[12..20].copy_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1]);
        ip
    };
    let req_end = 101 + req.len() as u32;
    let packets = [
        c2s(100, 0, 0x02, b""),
        s2c(500, 101, 0x12, b""),
        c2s(101, 501, 0x10, b""),
        c2s(101, 501, 0x18, req),
        s2c(501, req_end, 0x18, resp),
        c2s(req_end, 501 + resp.len() as u32, 0x11, b""),
        s2c(501 + resp.len() as u32, req_end + 1, 0x11, b""),
    ];
    let mut input = T0.to_le_bytes().to_vec();
    input.extend_from_slice(&[0xff, 0xff, 0xff, 0x3f]); // long timeouts, 64 flows, L7 on
    for p in &packets {
        push_chunk(&mut input, 2000, 0, 0, p);
    }
    for f in fragments() {
        push_chunk(&mut input, 100, 0, 0, &f);
    }
    // A DNS query for a.example and its answer.
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
    let mut answer = query.clone();
    answer[2..4].copy_from_slice(&[0x81, 0x80]);
    push_chunk(&mut input, 100, 0, 0, &ipv4(17, 2, 0, &udp(40001, 53, &query)));
    let mut reply = ipv4(17, 3, 0, &udp(53, 40001, &answer));
    reply[12..20].copy_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1]);
    push_chunk(&mut input, 300, 0, 0, &reply);
    let out: FlowOutcome = harness::flow_table(&input);
    assert_eq!(out.processed, 10, "7 TCP segments, one reassembled datagram, a DNS exchange: {out:?}");
    assert_eq!(out.flows, 3, "{out:?}");
    assert_eq!(out.records, 3, "{out:?}");
    assert!(out.calls >= 1, "the DNS exchange makes a call record: {out:?}");
}
