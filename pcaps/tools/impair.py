#!/usr/bin/python3
"""A lossy, jittery link for pcaps/make_story_pcaps.sh.  Standard library only.

  impair.py --a IF_A --b IF_B [--loss P] [--loss-corr C] [--jitter MIN-MAX]
            [--seed N] [--timeout S] [--ready FILE]

A user-space layer-2 relay between two interfaces (AF_PACKET, the frame
reading of tools/netkit.py), impairing BOTH directions the way
`tc qdisc add dev X root netem loss P delay D J` on each side would (the
build kernel has no CONFIG_NET_SCH_NETEM, and netkit.py's relay impairs one
direction with a fixed delay only):

  --loss P        each IPv4 frame is dropped with probability P (0..1), with
                  netem's correlation --loss-corr; non-IP frames (ARP) are
                  never dropped, so neighbour resolution does not add
                  1-second stalls that have nothing to do with the story
  --jitter MIN-MAX  each frame that is not dropped is held for a delay drawn
                  uniformly from MIN..MAX ms, but never sent before the frame
                  ahead of it in the same direction (no reordering: a FIFO
                  like netem with a rate or a pfifo child)

Each direction has its own random stream, seeded from --seed, so a run with
the same frames drops the same ones.  Every dropped frame is logged on
stdout ("drop a>b <epoch> <src>:<sport> > <dst>:<dport> flags=.. seq=.. len=..")
and a summary line at the end; the whole relay is bounded by --timeout.
"""
import argparse
import collections
import os
import random
import select
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netkit  # noqa: E402  (open_packet, read_frames, Crandom)

TCP_FLAGS = "FSRPAUEC"


def describe(frame):
    """One-line summary of an Ethernet frame (IPv4 TCP/UDP in detail)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return "non-ip ethertype=0x%s" % frame[12:14].hex()
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    proto = frame[23]
    src = socket.inet_ntoa(frame[26:30])
    dst = socket.inet_ntoa(frame[30:34])
    l4 = frame[14 + ihl:]
    if proto == 6 and len(l4) >= 20:
        sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", l4[:14])
        plen = total - ihl - (off >> 4) * 4
        fl = "".join(c for i, c in enumerate(TCP_FLAGS) if flags & (1 << i)) or "-"
        return f"{src}:{sport} > {dst}:{dport} tcp flags={fl} seq={seq} ack={ack} len={plen}"
    if proto == 17 and len(l4) >= 8:
        sport, dport = struct.unpack("!HH", l4[:4])
        return f"{src}:{sport} > {dst}:{dport} udp len={total - ihl - 8}"
    return f"{src} > {dst} proto={proto}"


class Direction:
    def __init__(self, name, out_sock, seed, args):
        self.name, self.out = name, out_sock
        self.rng = random.Random(seed)
        self.loss = netkit.Crandom(self.rng, args.loss_corr)
        self.p = args.loss
        self.jmin, self.jmax = args.jitter
        self.queue = collections.deque()  # (due, frame), due non-decreasing
        self.last_due = 0.0
        self.frames = self.dropped = self.sent = self.toolong = 0
        self.delay_sum = 0.0

    def push(self, frame, now):
        self.frames += 1
        is_ip = len(frame) >= 14 and frame[12:14] == b"\x08\x00"
        # draw for every frame (IP or not) so the stream does not depend on ARP timing
        u = self.loss()
        d = self.rng.uniform(self.jmin, self.jmax) / 1000.0
        if is_ip and self.p and u < self.p:
            self.dropped += 1
            print(f"drop {self.name} {time.time():.6f} {describe(frame)}", flush=True)
            return
        due = max(now + d, self.last_due)
        self.delay_sum += due - now
        self.last_due = due
        self.queue.append((due, frame))

    def flush(self, now):
        while self.queue and self.queue[0][0] <= now:
            frame = self.queue.popleft()[1]
            try:
                self.out.send(frame)
                self.sent += 1
            except OSError:
                self.toolong += 1

    def next_due(self):
        return self.queue[0][0] if self.queue else None

    def summary(self):
        mean = self.delay_sum / max(self.frames - self.dropped, 1) * 1000
        return (f"{self.name}: frames={self.frames} dropped={self.dropped} sent={self.sent} "
                f"unsendable={self.toolong} mean_delay_ms={mean:.1f}")


def parse_jitter(s):
    lo, _, hi = s.partition("-")
    lo, hi = float(lo), float(hi or lo)
    if lo < 0 or hi < lo:
        raise argparse.ArgumentTypeError("MIN-MAX in ms, 0 <= MIN <= MAX")
    return lo, hi


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="one interface")
    p.add_argument("--b", required=True, help="the other interface")
    p.add_argument("--loss", type=float, default=0.0, help="drop probability of an IPv4 frame, each direction")
    p.add_argument("--loss-corr", type=float, default=0.0, help="netem-style loss correlation (0..1)")
    p.add_argument("--jitter", type=parse_jitter, default=(0.0, 0.0), help="delay range MIN-MAX in ms")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--ready", help="file written once the sockets are bound")
    args = p.parse_args()

    sa, sb = netkit.open_packet(args.a), netkit.open_packet(args.b)
    a2b = Direction("a>b", sb, args.seed * 2, args)
    b2a = Direction("b>a", sa, args.seed * 2 + 1, args)
    print(f"impair {args.a}<->{args.b} loss={args.loss} loss_corr={args.loss_corr} "
          f"jitter={args.jitter[0]:g}-{args.jitter[1]:g}ms seed={args.seed}", flush=True)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("ready\n")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    end = time.monotonic() + args.timeout
    while time.monotonic() < end and not stop:
        now = time.monotonic()
        a2b.flush(now)
        b2a.flush(now)
        dues = [d for d in (a2b.next_due(), b2a.next_due()) if d is not None]
        wait = min([end - now, 1.0] + [d - now for d in dues])
        try:
            r, _, _ = select.select([sa, sb], [], [], max(wait, 0))
        except InterruptedError:
            continue
        now = time.monotonic()
        if sa in r:
            for frame, _vid in netkit.read_frames(sa):
                a2b.push(frame, now)
        if sb in r:
            for frame, _vid in netkit.read_frames(sb):
                b2a.push(frame, now)
    # what is still queued leaves now (late, but not lost)
    a2b.flush(float("inf"))
    b2a.flush(float("inf"))
    print(a2b.summary(), flush=True)
    print(b2a.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
