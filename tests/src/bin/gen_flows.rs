//! Writes a synthetic pcap with exactly K concurrent TCP flows, for the
//! benchmark's "cost per packet vs concurrent flows" table (bench/run.sh).
//!
//! ```text
//! gen_flows --flows K --packets-per-flow P --out FILE [--payload N] [--snaplen N] [--generations G] [--gap-us US]
//! ```
//!
//! Every flow is P packets: the three-way handshake (SYN with an MSS
//! option, SYN-ACK, ACK), P-5 data segments of `--payload` bytes (default
//! 200) alternating client → server and server → client, each acknowledging
//! everything the other side sent, then a FIN exchange of two packets (the
//! client's FIN-ACK and the server's FIN-ACK, which acknowledges it).
//! Packets are interleaved round robin: packet j of every flow comes before
//! packet j+1 of any flow, so all K flows are open at once from the K-th
//! packet until the first FIN. `--generations G` (default 1) repeats this
//! G times with new flows (K × G flows in all, K open at once): files with
//! the same K × G and P have the same packets and the same per-flow work
//! and differ only in how many flows are open at once. `--gap-us US`
//! leaves that much capture time between generations, so a flow table has
//! ended one generation's flows (idle after their FINs) before the next
//! many start. Timestamps start at 2026-01-01T00:00:00Z and
//! advance 1 µs per packet. Flow i's client is a distinct address in
//! 10.0.0.0/8 (10.0.0.1 upward, spread by an odd multiplier) with a port
//! in 1024..65535; the 16 servers are 172.16.0.1..16 on port 9000 (not a
//! port any L7 decoder claims, so this measures flow accounting only).
//! IPv4 and TCP checksums are correct. `--snaplen N` stores only the first
//! N bytes of each frame (the record's original length stays the wire
//! length), like `tcpdump -s N`; it keeps the 1M-flow file manageable.
//!
//! The pcap is written by hand (24-byte file header, 16-byte record
//! headers, microsecond timestamps, Ethernet), so no extra dependency.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: gen_flows --flows K --packets-per-flow P --out FILE [--payload BYTES] [--snaplen BYTES] [--generations G] [--gap-us US]";
const START_SECS: u32 = 1_767_225_600; // 2026-01-01T00:00:00Z
const SERVER_PORT: u16 = 9000;
const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];
const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x14];

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

struct Args {
    flows: u32,
    packets_per_flow: u32,
    out: PathBuf,
    payload: usize,
    snaplen: usize,
    generations: u32,
    gap_us: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut flows = None;
    let mut ppf = None;
    let mut out = None;
    let mut payload = 200usize;
    let mut snaplen = 65_535usize;
    let mut generations = 1u64;
    let mut gap_us = 0u64;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "--flows" => flows = Some(parse_num(&val("--flows")?)?),
            "--packets-per-flow" => ppf = Some(parse_num(&val("--packets-per-flow")?)?),
            "--out" => out = Some(PathBuf::from(val("--out")?)),
            "--payload" => payload = parse_num(&val("--payload")?)? as usize,
            "--snaplen" => snaplen = parse_num(&val("--snaplen")?)? as usize,
            "--generations" => generations = parse_num(&val("--generations")?)?,
            "--gap-us" => gap_us = parse_num(&val("--gap-us")?)?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    let flows = u32::try_from(flows.ok_or(USAGE)?).map_err(|_| "--flows too large")?;
    let packets_per_flow = u32::try_from(ppf.ok_or(USAGE)?).map_err(|_| "--packets-per-flow too large")?;
    let out = out.ok_or(USAGE)?;
    if flows == 0 || generations == 0 || u64::from(flows) * generations > 1 << 24 {
        return Err("--flows × --generations must be in 1..=16777216 (one client address each in 10.0.0.0/8)".into());
    }
    let generations = generations as u32;
    if packets_per_flow < 5 {
        return Err("--packets-per-flow must be at least 5 (handshake 3 + FIN exchange 2)".into());
    }
    if payload > 1460 {
        return Err("--payload must be at most 1460".into());
    }
    if snaplen < 54 {
        return Err("--snaplen must be at least 54 (Ethernet + IPv4 + TCP headers)".into());
    }
    Ok(Args { flows, packets_per_flow, out, payload, snaplen, generations, gap_us })
}

fn parse_num(s: &str) -> Result<u64, String> {
    let s = s.replace('_', "");
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1_000),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1_000_000),
        _ => (&s[..], 1),
    };
    digits.parse::<u64>().map(|v| v * mult).map_err(|_| format!("not a number: {s:?}"))
}

/// Per-flow TCP state: next sequence numbers of both sides.
#[derive(Clone, Copy)]
struct Flow {
    client_seq: u32,
    server_seq: u32,
}

/// Cheap deterministic mixing for initial sequence numbers.
fn mix(mut x: u64) -> u32 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x as u32
}

fn client_ip(i: u32) -> [u8; 4] {
    // An odd multiplier is a bijection on 24 bits: distinct addresses,
    // spread over 10.0.0.0/8 instead of counting up in the last octet.
    let host = (i.wrapping_mul(0x9E_3779) & 0x00FF_FFFF) ^ 1; // never 10.0.0.0 for i = 0
    let v = 0x0A00_0000 | host;
    v.to_be_bytes()
}

fn client_port(i: u32) -> u16 {
    1024 + (i.wrapping_mul(7919) % 64_511) as u16
}

fn server_ip(i: u32) -> [u8; 4] {
    [172, 16, 0, 1 + (i % 16) as u8]
}

fn csum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds one Ethernet/IPv4/TCP frame into `buf` (cleared first).
#[allow(clippy::too_many_arguments)]
fn build_frame(
    buf: &mut Vec<u8>,
    payload_sum: u32,
    payload: &[u8],
    from_client: bool,
    i: u32,
    seq: u32,
    ack: u32,
    flags: u8,
    ip_id: u16,
) {
    let (cip, sip) = (client_ip(i), server_ip(i));
    let (cport, sport) = (client_port(i), SERVER_PORT);
    let (src, dst, sp, dp) = if from_client { (cip, sip, cport, sport) } else { (sip, cip, sport, cport) };
    let (smac, dmac) = if from_client { (CLIENT_MAC, SERVER_MAC) } else { (SERVER_MAC, CLIENT_MAC) };
    let syn = flags & SYN != 0;
    let tcp_hdr_len = if syn { 24 } else { 20 };
    let tcp_len = tcp_hdr_len + payload.len();
    let ip_total = 20 + tcp_len;

    buf.clear();
    buf.extend_from_slice(&dmac);
    buf.extend_from_slice(&smac);
    buf.extend_from_slice(&[0x08, 0x00]);

    let ip_start = buf.len();
    buf.extend_from_slice(&[0x45, 0x00]);
    buf.extend_from_slice(&(ip_total as u16).to_be_bytes());
    buf.extend_from_slice(&ip_id.to_be_bytes());
    buf.extend_from_slice(&[0x40, 0x00, 64, 6, 0, 0]); // DF, TTL 64, TCP, checksum
    buf.extend_from_slice(&src);
    buf.extend_from_slice(&dst);
    let ip_ck = csum_fold(csum_add(0, &buf[ip_start..ip_start + 20]));
    buf[ip_start + 10..ip_start + 12].copy_from_slice(&ip_ck.to_be_bytes());

    let tcp_start = buf.len();
    buf.extend_from_slice(&sp.to_be_bytes());
    buf.extend_from_slice(&dp.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
    buf.push(((tcp_hdr_len / 4) as u8) << 4);
    buf.push(flags);
    buf.extend_from_slice(&64_240u16.to_be_bytes()); // window
    buf.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    if syn {
        buf.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    }
    // Pseudo-header + TCP header; the payload's sum is precomputed (it is
    // the same bytes in every segment and starts at an even offset).
    let mut sum = csum_add(0, &src);
    sum = csum_add(sum, &dst);
    sum += 6 + tcp_len as u32;
    sum = csum_add(sum, &buf[tcp_start..]);
    if !payload.is_empty() {
        sum += payload_sum;
    }
    let tcp_ck = csum_fold(sum);
    buf[tcp_start + 16..tcp_start + 18].copy_from_slice(&tcp_ck.to_be_bytes());
    buf.extend_from_slice(payload);
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen_flows: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_flows: {}: {e}", a.out.display());
            ExitCode::from(1)
        }
    }
}

fn run(a: &Args) -> std::io::Result<()> {
    let file = File::create(&a.out)?;
    let mut w = BufWriter::with_capacity(4 << 20, file);
    // pcap global header: magic (µs), v2.4, thiszone 0, sigfigs 0, snaplen, Ethernet.
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&(a.snaplen.min(262_144) as u32).to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;

    // The payload: printable, not any protocol's greeting.
    let payload: Vec<u8> = (0..a.payload).map(|k| b'a' + (k % 26) as u8).collect();
    let payload_sum = csum_add(0, &payload);

    let k = a.flows;
    let p = a.packets_per_flow;
    let data_segments = p - 5;
    let mut flows: Vec<Flow> = Vec::with_capacity(k as usize);
    let mut buf = Vec::with_capacity(1600);
    let mut ts_us: u64 = 0;
    let (mut packets, mut bytes, mut stored) = (0u64, 0u64, 0u64);

    for g in 0..a.generations {
        if g > 0 {
            ts_us += a.gap_us;
        }
        let base = g * k;
        flows.clear();
        flows.extend(
            (base..base + k)
                .map(|i| Flow { client_seq: mix(u64::from(i) * 2 + 1), server_seq: mix(u64::from(i) * 2 + 2) }),
        );
        for j in 0..p {
            for n in 0..k {
                let i = base + n;
                let f = &mut flows[n as usize];
                let ip_id = (j as u16).wrapping_add(i as u16);
                // (from_client, seq, ack, flags, payload)
                let (from_client, seq, ack, flags, data): (bool, u32, u32, u8, &[u8]) = if j == 0 {
                    let s = f.client_seq;
                    f.client_seq = s.wrapping_add(1);
                    (true, s, 0, SYN, &[])
                } else if j == 1 {
                    let s = f.server_seq;
                    f.server_seq = s.wrapping_add(1);
                    (false, s, f.client_seq, SYN | ACK, &[])
                } else if j == 2 {
                    (true, f.client_seq, f.server_seq, ACK, &[])
                } else if j < 3 + data_segments {
                    let d = j - 3;
                    if d % 2 == 0 {
                        let s = f.client_seq;
                        f.client_seq = s.wrapping_add(payload.len() as u32);
                        (true, s, f.server_seq, PSH | ACK, &payload[..])
                    } else {
                        let s = f.server_seq;
                        f.server_seq = s.wrapping_add(payload.len() as u32);
                        (false, s, f.client_seq, PSH | ACK, &payload[..])
                    }
                } else if j == 3 + data_segments {
                    let s = f.client_seq;
                    f.client_seq = s.wrapping_add(1);
                    (true, s, f.server_seq, FIN | ACK, &[])
                } else {
                    let s = f.server_seq;
                    f.server_seq = s.wrapping_add(1);
                    (false, s, f.client_seq, FIN | ACK, &[])
                };
                build_frame(&mut buf, payload_sum, data, from_client, i, seq, ack, flags, ip_id);
                let secs = START_SECS + (ts_us / 1_000_000) as u32;
                let usecs = (ts_us % 1_000_000) as u32;
                let incl = buf.len().min(a.snaplen);
                w.write_all(&secs.to_le_bytes())?;
                w.write_all(&usecs.to_le_bytes())?;
                w.write_all(&(incl as u32).to_le_bytes())?;
                w.write_all(&(buf.len() as u32).to_le_bytes())?;
                w.write_all(&buf[..incl])?;
                ts_us += 1;
                packets += 1;
                bytes += buf.len() as u64;
                stored += 16 + incl as u64;
            }
        }
    }
    w.flush()?;
    eprintln!(
        "gen_flows: {}: {} generation(s) of {k} flows x {p} packets = {packets} packets, {bytes} wire bytes, {:.1} MB on disk, {:.3} s of capture time",
        a.out.display(),
        a.generations,
        (stored + 24) as f64 / 1e6,
        ts_us as f64 / 1e6
    );
    Ok(())
}
