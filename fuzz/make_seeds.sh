#!/usr/bin/env bash
# Builds the fuzz seed corpora in fuzz/corpus/<target>/ from real captures:
# pcaps/*.pcap* of this repository and, when present, the shared corpus
# (../shared/corpus/**, read only). Captures are never copied whole: each
# seed is one frame, the first records of a capture, or a few packets
# re-framed into the chunk format of fuzz/harness.rs (defrag, flow_table).
# Also adds a few synthetic seeds (fragments in and out of order, overlaps,
# IPv6 fragment headers). Idempotent: seeds are named by their SHA-1, so a
# re-run adds nothing new. Python 3 standard library only.
#
# Usage: fuzz/make_seeds.sh [CAPTURE_OR_DIR...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
    set -- pcaps
    for d in ../shared/corpus /work/shared/corpus; do
        if [ -d "$d" ]; then
            set -- "$@" "$d"
            break
        fi
    done
fi

python3 - fuzz/corpus "$@" <<'PY'
import hashlib
import os
import struct
import sys

OUT = sys.argv[1]
INPUTS = sys.argv[2:]

# LINKTYPE_* -> index into harness::LINKS
LINK_INDEX = {1: 0, 113: 1, 276: 2, 101: 3, 12: 3, 14: 3, 228: 4, 229: 5, 0: 6, 108: 7, 9: 8, 50: 8, 51: 9, 239: 10}

counts = {}


def save(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1


# --- capture reading -------------------------------------------------------


def read_capture(buf):
    """Returns (records, ends): records are (ts_ns, linktype, data, orig_len),
    ends[i] the file offset just after the record/block of packet i."""
    if len(buf) < 24:
        return [], []
    magic = buf[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(buf)
    le = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\xc3\xd4": (">", 1000), b"\xa1\xb2\x3c\x4d": (">", 1)}
    if magic not in le:
        return [], []
    e, mult = le[magic]
    linktype = struct.unpack(e + "I", buf[20:24])[0] & 0xFFFF
    off, recs, ends = 24, [], []
    while off + 16 <= len(buf):
        sec, frac, cap, orig = struct.unpack(e + "IIII", buf[off : off + 16])
        if off + 16 + cap > len(buf):
            break
        recs.append((sec * 1_000_000_000 + frac * mult, linktype, buf[off + 16 : off + 16 + cap], orig))
        off += 16 + cap
        ends.append(off)
    return recs, ends


def read_pcapng(buf):
    off, recs, ends = 0, [], []
    e = "<"
    ifaces = []  # (linktype, units_per_sec)
    while off + 12 <= len(buf):
        btype = struct.unpack(e + "I", buf[off : off + 4])[0]
        if buf[off : off + 4] == b"\x0a\x0d\x0d\x0a":
            bom = buf[off + 8 : off + 12]
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            btype = 0x0A0D0D0A
            ifaces = []
        blen = struct.unpack(e + "I", buf[off + 4 : off + 8])[0]
        if blen < 12 or off + blen > len(buf):
            break
        body = buf[off + 8 : off + blen - 4]
        if btype == 1 and len(body) >= 8:
            lt = struct.unpack(e + "H", body[0:2])[0]
            ups = 1_000_000
            o = 8
            while o + 4 <= len(body):
                code, olen = struct.unpack(e + "HH", body[o : o + 4])
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    r = body[o + 4]
                    ups = (2 ** (r & 0x7F)) if r & 0x80 else (10 ** r)
                o += 4 + ((olen + 3) & ~3)
            ifaces.append((lt, ups))
        elif btype == 6 and len(body) >= 20:
            ifid, hi, lo, cap, orig = struct.unpack(e + "IIIII", body[:20])
            if ifid < len(ifaces) and 20 + cap <= len(body):
                lt, ups = ifaces[ifid]
                recs.append((((hi << 32) | lo) * 1_000_000_000 // ups, lt, body[20 : 20 + cap], orig))
                ends.append(off + blen)
        elif btype == 3 and len(body) >= 4 and ifaces:
            orig = struct.unpack(e + "I", body[:4])[0]
            ts = recs[-1][0] if recs else 0
            recs.append((ts, ifaces[0][0], body[4 : 4 + orig], orig))
            ends.append(off + blen)
        off += blen
    return recs, ends


# --- link layer to IP --------------------------------------------------------


def ip_of(linktype, data):
    """The IP packet inside a frame, or None."""
    try:
        if linktype in (101, 12, 14, 228, 229):
            ip = data
        elif linktype == 1:
            et, o = struct.unpack(">H", data[12:14])[0], 14
            while et in (0x8100, 0x88A8, 0x9100):
                et, o = struct.unpack(">H", data[o + 2 : o + 4])[0], o + 4
            if et == 0x8864:  # PPPoE session
                ppp = struct.unpack(">H", data[o + 6 : o + 8])[0]
                et, o = {0x21: 0x0800, 0x57: 0x86DD}.get(ppp, 0), o + 8
            if et == 0x8847:  # MPLS
                while not data[o + 2] & 1:
                    o += 4
                et, o = 0x0800, o + 4
            if et not in (0x0800, 0x86DD):
                return None
            ip = data[o:]
        elif linktype == 113:
            ip = data[16:]
        elif linktype == 276:
            ip = data[20:]
        elif linktype in (0, 108):
            ip = data[4:]
        elif linktype in (9, 50):
            ip = data[4:] if data[:2] == b"\xff\x03" else data[2:]
        else:
            return None
    except (IndexError, struct.error):
        return None
    if len(ip) < 20 or ip[0] >> 4 not in (4, 6):
        return None
    return ip


def ip_info(ip):
    """(version, src, dst, proto, frag_id or None, ports)."""
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        field = struct.unpack(">H", ip[6:8])[0]
        frag = struct.unpack(">H", ip[4:6])[0] if field & 0x3FFF else None
        proto, l4 = ip[9], ip[ihl:]
        src, dst = ip[12:16], ip[16:20]
    else:
        if len(ip) < 40:
            return None
        src, dst, nxt, o, frag = ip[8:24], ip[24:40], ip[6], 40, None
        for _ in range(8):
            if nxt in (0, 43, 60) and o + 2 <= len(ip):
                nxt, o = ip[o], o + (ip[o + 1] + 1) * 8
            elif nxt == 44 and o + 8 <= len(ip):
                field = struct.unpack(">H", ip[o + 2 : o + 4])[0]
                if field & 0xFFF9:
                    frag = struct.unpack(">I", ip[o + 4 : o + 8])[0]
                nxt, o = ip[o], o + 8
            else:
                break
        proto, l4 = nxt, ip[o:]
    ports = struct.unpack(">HH", l4[:4]) if proto in (6, 17) and len(l4) >= 4 and frag is None else (0, 0)
    return ip[0] >> 4, bytes(src), bytes(dst), proto, frag, ports


# --- harness formats ---------------------------------------------------------


def chunk(dt_us, extra, point, frame):
    frame = frame[:65535]
    dt_us = max(-(2**31), min(2**31 - 1, dt_us))
    return struct.pack("<HiIB", len(frame), dt_us, max(0, min(extra, 2**32 - 1)), point & 1) + frame


def chunks_of(pkts, limit):
    """pkts: (ts_ns, ip, extra). Chunks up to about `limit` bytes."""
    out, prev = b"", pkts[0][0]
    for ts, ip, extra in pkts:
        out += chunk((ts - prev) // 1000, extra, 0, ip)
        prev = ts
        if len(out) >= limit:
            break
    return out


def clamp_i64(v):
    return max(-(2**63), min(2**63 - 1, v))


def defrag_seed(pkts, d0=0xFF, d1=0xFF):
    return struct.pack("<qBB", clamp_i64(pkts[0][0]), d0, d1) + chunks_of(pkts, 12000)


def flow_seed(pkts, cfg=(0xFF, 0xFF, 0xFF, 0x3F)):
    return struct.pack("<q4B", clamp_i64(pkts[0][0]), *cfg) + chunks_of(pkts, 12000)


# --- per capture -------------------------------------------------------------


def from_capture(path):
    with open(path, "rb") as f:
        buf = f.read()
    recs, ends = read_capture(buf)
    if not recs:
        return
    # pcap_reader: the file cut after its first records.
    n = 0
    while n < len(ends) and (n < 1 or ends[n] <= 6000) and n < 8:
        n += 1
    if ends[n - 1] <= 64 * 1024:
        save("pcap_reader", buf[: ends[n - 1]])
    if len(ends) > 1 and ends[0] <= 64 * 1024:
        save("pcap_reader", buf[: ends[0]])
    # wire_dissect: the first frames and a spread of later ones.
    picks = list(range(min(4, len(recs)))) + list(range(4, len(recs), max(1, len(recs) // 8)))
    for i in picks[:12]:
        _, lt, data, orig = recs[i]
        if lt in LINK_INDEX:
            data = data[:2048]
            save("wire_dissect", bytes([LINK_INDEX[lt]]) + struct.pack("<H", max(0, min(orig - len(data), 65535))) + data)
    # defrag, flow_table: IP packets with their times.
    ips = []
    for ts, lt, data, orig in recs:
        ip = ip_of(lt, data)
        if ip is None:
            continue
        info = ip_info(ip)
        if info is None:
            continue
        extra = max(0, orig - len(data))
        ips.append((ts, ip[:1600], extra + max(0, len(ip) - 1600), info))
    if not ips:
        return
    frags = {}
    for ts, ip, extra, (v, src, dst, proto, fid, _) in ips:
        if fid is not None:
            frags.setdefault((v, src, dst, proto, fid), []).append((ts, ip, extra))
    groups = list(frags.values())
    for g in groups[:6]:
        save("defrag", defrag_seed(g))
        save("defrag", defrag_seed(list(reversed(g))))
    if len(groups) >= 2:
        mixed = [p for pair in zip(groups[0], groups[1]) for p in pair]
        save("defrag", defrag_seed(mixed, 0x10, 0x0A))
    plain = [(ts, ip, extra) for ts, ip, extra, _ in ips]
    save("flow_table", flow_seed(plain[:64]))
    flows = {}
    for ts, ip, extra, (v, src, dst, proto, fid, ports) in ips:
        a, b = (src, ports[0]), (dst, ports[1])
        flows.setdefault((proto,) + tuple(sorted([a, b])), []).append((ts, ip, extra))
    for pkts in sorted(flows.values(), key=len, reverse=True)[:4]:
        save("flow_table", flow_seed(pkts[:48]))
    if frags:
        with_frags = [p for p in plain if any(p[1] is q[1] for g in groups[:2] for q in g)]
        save("flow_table", flow_seed(plain[:8] + with_frags[:8]))


# --- synthetic seeds ---------------------------------------------------------


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(payload, proto, ident=0x1234, off8=0, more=False, src=b"\x0a\0\0\x01", dst=b"\x0a\0\0\x02"):
    field = off8 | (0x2000 if more else 0)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, field, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ipv6_frag(payload, proto, ident, off, more):
    fh = struct.pack("!BBHI", proto, 0, off | (1 if more else 0), ident)
    src, dst = bytes(15) + b"\x01", bytes(15) + b"\x02"
    return struct.pack("!IHBB16s16s", 0x60000000, 8 + len(payload), 44, 64, src, dst) + fh + payload


def udp(sport, dport, body):
    return struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body


def dns_query():
    q = b"".join(bytes([len(x)]) + x for x in [b"www", b"example", b"com"]) + b"\0"
    return struct.pack("!HHHHHH", 0xABCD, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)


def synthetic():
    base = 1_700_000_000 * 10**9
    data = udp(12345, 53, bytes(i & 0xFF for i in range(3000)))
    v4 = [ipv4(data[o : o + 1480], 17, off8=o // 8, more=o + 1480 < len(data)) for o in range(0, len(data), 1480)]
    v6 = [ipv6_frag(data[o : o + 1448], 17, 0xBEEF, o, o + 1448 < len(data)) for o in range(0, len(data), 1448)]
    for frags in (v4, v6):
        for order in ([0, 1, 2], [2, 0, 1], [1, 1, 2, 0, 2], [0, 2]):
            pkts = [(base + k * 1000, frags[i], 0) for k, i in enumerate(order)]
            save("defrag", defrag_seed(pkts))
            save("defrag", defrag_seed(pkts, 0x00, 0x00))
            save("flow_table", flow_seed(pkts))
    # overlapping fragments and a fragment snapped by the capture
    ov = [ipv4(data[0:800], 17, off8=0, more=True), ipv4(data[400:1600], 17, off8=50, more=False)]
    save("defrag", defrag_seed([(base, ov[0], 0), (base + 1, ov[1][:300], 900)]))
    save("defrag", defrag_seed([(base, ov[1], 0), (base + 5 * 10**9, ov[0], 0)], 0x01, 0x3F))
    # a TCP handshake with an HTTP request, and a DNS exchange
    def tcp(sport, dport, seq, ack, flags, body=b"", src=b"\x0a\0\0\x01", dst=b"\x0a\0\0\x02"):
        seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + body
        return ipv4(seg, 6, src=src, dst=dst)
    c, s = b"\x0a\0\0\x01", b"\x0a\0\0\x02"
    req = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: fuzz\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    conv = [
        tcp(40000, 80, 100, 0, 0x02, src=c, dst=s),
        tcp(80, 40000, 500, 101, 0x12, src=s, dst=c),
        tcp(40000, 80, 101, 501, 0x10, src=c, dst=s),
        tcp(40000, 80, 101, 501, 0x18, req, src=c, dst=s),
        tcp(80, 40000, 501, 101 + len(req), 0x18, resp, src=s, dst=c),
        tcp(40000, 80, 101 + len(req), 506, 0x11, src=c, dst=s),
        tcp(80, 40000, 506, 102 + len(req), 0x11, src=s, dst=c),
        ipv4(udp(5353, 53, dns_query()), 17, src=c, dst=s),
        ipv4(udp(53, 5353, dns_query()[:2] + b"\x81\x80" + dns_query()[4:]), 17, src=s, dst=c),
    ]
    pkts = [(base + k * 2_000_000, p, 0) for k, p in enumerate(conv)]
    save("flow_table", flow_seed(pkts))
    save("flow_table", flow_seed(pkts, (0, 0, 0, 0)))
    save("flow_table", flow_seed(pkts, (0, 0, 0, 0x80)))
    for p in conv[:5]:
        save("wire_dissect", b"\x03\0\0" + p)
    # pcap_reader: a legacy pcap and a pcapng with the handshake
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    recs = b"".join(struct.pack("<IIII", 1_700_000_000, k, len(p), len(p)) + p for k, p in enumerate(conv[:3]))
    save("pcap_reader", hdr + recs)
    opt = lambda code, v: struct.pack("<HH", code, len(v)) + v + bytes(-len(v) % 4)
    def block(t, body):
        return struct.pack("<II", t, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 101, 0, 65535) + opt(2, b"eth0") + opt(9, b"\x09") + opt(0, b""))
    epbs = b"".join(
        block(6, struct.pack("<IIIII", 0, 0, k, len(p), len(p)) + p + bytes(-len(p) % 4)) for k, p in enumerate(conv[:3])
    )
    isb = block(5, struct.pack("<III", 0, 0, 0) + opt(5, struct.pack("<Q", 7)) + opt(0, b""))
    spb = block(3, struct.pack("<I", len(conv[3])) + conv[3] + bytes(-len(conv[3]) % 4))
    save("pcap_reader", shb + idb + epbs + isb + spb)


def walk(p):
    if os.path.isdir(p):
        for root, _, files in sorted(os.walk(p)):
            for f in sorted(files):
                if ".pcap" in f:
                    yield os.path.join(root, f)
    elif os.path.exists(p):
        yield p


synthetic()
for inp in INPUTS:
    for path in walk(inp):
        try:
            from_capture(path)
        except Exception as e:  # a capture this reader does not get is skipped
            print(f"make_seeds: skipped {path}: {e}", file=sys.stderr)

for t in ("wire_dissect", "pcap_reader", "defrag", "flow_table"):
    d = os.path.join(OUT, t)
    total = len(os.listdir(d)) if os.path.isdir(d) else 0
    print(f"make_seeds: {t}: {counts.get(t, 0)} new, {total} in {d}")
PY

# L7 targets (harness.rs `l7_session`): one request/response exchange per
# protocol in the harness's chunk format.
python3 - "$(dirname "$0")/corpus" <<'PY'
import os, sys
out = sys.argv[1]
def put(t, name, data):
    os.makedirs(os.path.join(out, t), exist_ok=True)
    open(os.path.join(out, t, name), "wb").write(data)
http = (b"\x00\x00GET /a?b=1 HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"FTSEP\x01HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
q = bytes.fromhex("123401000001000000000000076578616d706c650474657374000001000 1".replace(" ", ""))
r = bytes.fromhex("123481800001000100000000076578616d706c650474657374000001000 1c00c000100010000003c00040a000001".replace(" ", ""))
put("l7_http1", "seed_http", http)
put("l7_dns", "seed_udp", b"\x01\x00" + q + b"FTSEP\x01" + r)
put("l7_dns", "seed_tcp", b"\x00\x00" + len(q).to_bytes(2, "big") + q + b"FTSEP\x01" + len(r).to_bytes(2, "big") + r)
put("l7_stream", "seed_http", http)
put("l7_stream", "seed_dns", b"\x05\x00" + q + b"FTSEP\x01" + r)
# A TLS 1.2 ClientHello record (minimal, SNI example.test).
sni = b"example.test"
ext = b"\x00\x00" + (len(sni) + 5).to_bytes(2, "big") + (len(sni) + 3).to_bytes(2, "big") + b"\x00" + len(sni).to_bytes(2, "big") + sni
body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + len(ext).to_bytes(2, "big") + ext
hs = b"\x01" + len(body).to_bytes(3, "big") + body
rec = b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs
put("l7_tls", "seed_ch", b"\x00\x00" + rec)
put("l7_stream", "seed_tls", b"\x02\x00" + rec)
print("make_seeds: l7 seeds written")
PY
