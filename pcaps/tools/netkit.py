#!/usr/bin/python3
"""Small stand-ins used by pcaps/make_pcaps.sh for kernel features and tools
that the build machine lacks.  Standard library only.

  offload IFACE...     turn off tx checksum / SG / TSO / GSO / GRO with the
                       legacy SIOCETHTOOL ioctls (what `ethtool -K IFACE tx off
                       sg off tso off gso off gro off` does), so that a capture
                       on a veth holds wire-sized frames with real checksums.
  ping [-6] ...        ICMP / ICMPv6 echo client over a raw socket (used only
                       when iputils `ping` is not installed).  The echo replies
                       come from the peer's kernel; large sizes are fragmented
                       by the sending kernel exactly as for iputils ping.
  relay ...            user-space layer-2 relay between two interfaces
                       (AF_PACKET), used where the kernel lacks a feature:
                       --vlan VID  pushes an 802.1Q tag on frames sent on the
                                   B interface and pops it from frames read
                                   there (kernel has no CONFIG_VLAN_8021Q);
                       --loss/--delay/--reorder/--seed impair the B->A
                                   direction like `tc qdisc ... netem`
                                   (kernel has no CONFIG_NET_SCH_NETEM).
Every mode is bounded in time (--timeout).
"""
import argparse
import array
import fcntl
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

# --------------------------------------------------------------------------
# offload
SIOCETHTOOL = 0x8946
ETHTOOL_SET = {  # legacy "set" commands, struct ethtool_value {u32 cmd, data}
    "gro": 0x0000002C,
    "gso": 0x00000024,
    "tso": 0x0000001F,
    "sg": 0x00000019,
    "tx": 0x00000017,
}


def offload(ifaces):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for ifname in ifaces:
        for name, cmd in ETHTOOL_SET.items():
            buf = array.array("B", struct.pack("II", cmd, 0))
            addr, _ = buf.buffer_info()
            ifreq = struct.pack("16sP", ifname.encode(), addr)
            try:
                fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)
            except OSError as e:  # e.g. a feature the driver cannot change
                print(f"offload {ifname} {name}: {e}", file=sys.stderr)
    s.close()


# --------------------------------------------------------------------------
# ping
def inet_csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ping(args):
    v6 = args.six or ":" in args.dest
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    sock = socket.socket(fam, socket.SOCK_RAW, proto)
    dest = socket.getaddrinfo(args.dest, None, fam)[0][4]
    ident = os.getpid() & 0xFFFF
    req_type, rep_type = (128, 129) if v6 else (8, 0)
    # payload like iputils: 16-byte timeval, then bytes counting up from 0x10
    fill = bytes((0x10 + i) & 0xFF for i in range(max(args.size - 16, 0)))
    received = 0
    deadline = time.monotonic() + args.timeout
    print(f"PING {args.dest} {args.size} data bytes (netkit raw socket)")
    for seq in range(1, args.count + 1):
        now = time.time()
        payload = (struct.pack("=qq", int(now), int((now % 1) * 1e6)) + fill)[: args.size]
        hdr = struct.pack("!BBHHH", req_type, 0, 0, ident, seq)
        if v6:  # the kernel fills in the ICMPv6 checksum
            pkt = hdr + payload
        else:
            pkt = struct.pack("!BBHHH", req_type, 0, inet_csum(hdr + payload), ident, seq) + payload
        t0 = time.monotonic()
        sock.sendto(pkt, dest)
        wait_until = min(t0 + args.wait, deadline)
        got = False
        while not got:
            left = wait_until - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([sock], [], [], left)
            if not r:
                break
            data, _ = sock.recvfrom(65535)
            icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
            if len(icmp) >= 8:
                t, _c, _s, i, sq = struct.unpack("!BBHHH", icmp[:8])
                if t == rep_type and i == ident and sq == seq:
                    got = True
                    received += 1
                    ms = (time.monotonic() - t0) * 1000
                    print(f"{len(icmp)} bytes from {args.dest}: icmp_seq={seq} time={ms:.3f} ms")
        if seq < args.count:
            pause = args.interval - (time.monotonic() - t0)
            if pause > 0:
                time.sleep(pause)
        if time.monotonic() >= deadline:
            break
    print(f"{args.count} packets transmitted, {received} received")
    return 0 if received == args.count else 1


# --------------------------------------------------------------------------
# relay
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
AUX = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata


class Crandom:
    """netem's correlated random numbers (get_crandom in sch_netem.c)."""

    def __init__(self, rng, corr):
        self.rng, self.rho, self.last = rng, corr, rng.random()

    def __call__(self):
        v = self.rng.random()
        if self.rho:
            v = v * (1 - self.rho) + self.last * self.rho
            self.last = v
        return v


def open_packet(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    try:
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except OSError:
        pass
    s.setblocking(False)
    return s


def read_frames(sock):
    """Yield (frame, vlan_id or None) for every incoming frame queued on sock."""
    while True:
        try:
            data, anc, _flags, addr = sock.recvmsg(65600, socket.CMSG_SPACE(AUX.size))
        except BlockingIOError:
            return
        if addr[2] == PACKET_OUTGOING:
            continue
        vid = None
        for level, typ, cdata in anc:
            if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= AUX.size:
                st, _l, _sl, _m, _n, tci, _tpid = AUX.unpack(cdata[: AUX.size])
                if st & TP_STATUS_VLAN_VALID:
                    vid = tci & 0x0FFF
        if vid is None and len(data) >= 18 and data[12:14] == b"\x81\x00":
            vid = struct.unpack("!H", data[14:16])[0] & 0x0FFF
            data = data[:12] + data[16:]
        yield data, vid


def relay(args):
    a, b = open_packet(args.a), open_packet(args.b)
    rng = random.Random(args.seed)
    loss = Crandom(rng, args.loss_corr)
    reorder = Crandom(rng, args.reorder_corr)
    stats = dict(a2b=0, b2a=0, dropped=0, reordered=0, delayed=0, wrongvlan=0, toolong=0)
    pending = []  # heap of (due, seq, frame) for B->A
    order = 0
    with open(args.ready, "w") if args.ready else open(os.devnull, "w") as f:
        f.write("ready\n")
    end = time.monotonic() + args.timeout
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    def send(sock, frame):
        try:
            sock.send(frame)
        except OSError:
            stats["toolong"] += 1

    while time.monotonic() < end and not stop:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            send(a, heapq.heappop(pending)[2])
        wait = min(end - now, pending[0][0] - now if pending else 1.0)
        try:
            r, _, _ = select.select([a, b], [], [], max(wait, 0))
        except InterruptedError:
            continue
        if a in r:
            for frame, _vid in read_frames(a):
                if args.vlan is not None:
                    frame = frame[:12] + struct.pack("!HH", 0x8100, args.vlan) + frame[12:]
                stats["a2b"] += 1
                send(b, frame)
        if b in r:
            for frame, vid in read_frames(b):
                if args.vlan is not None and vid != args.vlan:
                    stats["wrongvlan"] += 1
                    continue
                stats["b2a"] += 1
                if args.loss and loss() < args.loss:
                    stats["dropped"] += 1
                    continue
                if args.delay and not (args.reorder and reorder() < args.reorder):
                    stats["delayed"] += 1
                    order += 1
                    heapq.heappush(pending, (time.monotonic() + args.delay / 1000.0, order, frame))
                    continue
                if args.delay:
                    stats["reordered"] += 1
                send(a, frame)
    for _due, _o, frame in sorted(pending):
        send(a, frame)
    print(" ".join(f"{k}={v}" for k, v in stats.items()), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("offload")
    o.add_argument("ifaces", nargs="+")
    g = sub.add_parser("ping")
    g.add_argument("-6", dest="six", action="store_true")
    g.add_argument("-c", dest="count", type=int, default=2)
    g.add_argument("-s", dest="size", type=int, default=56)
    g.add_argument("-i", dest="interval", type=float, default=0.2)
    g.add_argument("-W", dest="wait", type=float, default=1.0)
    g.add_argument("-w", dest="timeout", type=float, default=10.0)
    g.add_argument("dest")
    r = sub.add_parser("relay")
    r.add_argument("--a", required=True, help="access side interface")
    r.add_argument("--b", required=True, help="trunk / impaired side interface")
    r.add_argument("--vlan", type=int, help="802.1Q VID pushed towards B, popped from B")
    r.add_argument("--loss", type=float, default=0.0, help="B->A loss probability (0..1)")
    r.add_argument("--loss-corr", type=float, default=0.0)
    r.add_argument("--delay", type=float, default=0.0, help="B->A delay in ms")
    r.add_argument("--reorder", type=float, default=0.0, help="B->A share sent without the delay")
    r.add_argument("--reorder-corr", type=float, default=0.0)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--timeout", type=float, default=60.0)
    r.add_argument("--ready", help="file written once the sockets are bound")
    args = p.parse_args()
    if args.cmd == "offload":
        offload(args.ifaces)
        return 0
    if args.cmd == "ping":
        return ping(args)
    return relay(args)


if __name__ == "__main__":
    sys.exit(main())
