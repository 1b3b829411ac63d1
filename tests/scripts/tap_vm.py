#!/usr/bin/env python3
"""A tiny "VM" behind a TAP device, for tests/tests/live.rs.

Creates TAP device NAME (IFF_TAP | IFF_NO_PI) by opening /dev/net/tun and
holds its fd, as a hypervisor does for a VM's NIC. It answers, for its own
IPv4 address only: ARP requests, ICMP echo requests, and every UDP datagram
(echoed back to its sender, ports swapped). Nothing else is ever sent, so
the packets on the TAP are exactly the test's traffic and these answers.
It exits after LIFETIME seconds (bounded), or on SIGTERM/SIGINT.

usage: tap_vm.py NAME MAC IP LIFETIME
"""

import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def checksum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, ident: int) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
    return h + payload


def answer(frame: bytes, mac: bytes, ip: bytes):
    if len(frame) < 14:
        return None
    dst_mac, src_mac, ethertype = frame[0:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
    body = frame[14:]
    if ethertype == 0x0806 and len(body) >= 28:
        op = struct.unpack("!H", body[6:8])[0]
        sha, spa, tpa = body[8:14], body[14:18], body[24:28]
        if op == 1 and tpa == ip:
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + ip + sha + spa
            return src_mac + mac + b"\x08\x06" + arp
        return None
    if ethertype != 0x0800 or len(body) < 20 or dst_mac != mac:
        return None
    ihl = (body[0] & 0x0F) * 4
    total = struct.unpack("!H", body[2:4])[0]
    ident = struct.unpack("!H", body[4:6])[0]
    proto, src, dst = body[9], body[12:16], body[16:20]
    if dst != ip or struct.unpack("!H", body[6:8])[0] & 0x3FFF:
        return None  # not ours, or a fragment
    l4 = body[ihl:total]
    if proto == 1 and len(l4) >= 8 and l4[0] == 8:
        icmp = b"\x00\x00\x00\x00" + l4[4:]
        icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
        return src_mac + mac + b"\x08\x00" + ipv4(ip, src, 1, icmp, ident)
    if proto == 17 and len(l4) >= 8:
        sport, dport = struct.unpack("!HH", l4[0:4])
        data = l4[8:]
        udp = struct.pack("!HHHH", dport, sport, 8 + len(data), 0) + data
        pseudo = ip + src + struct.pack("!BBH", 0, 17, len(udp))
        csum = checksum(pseudo + udp) or 0xFFFF
        udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
        return src_mac + mac + b"\x08\x00" + ipv4(ip, src, 17, udp, ident)
    return None


def main() -> int:
    name, mac_s, ip_s, lifetime = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    mac = bytes(int(x, 16) for x in mac_s.split(":"))
    ip = socket.inet_aton(ip_s)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("ready", flush=True)
    deadline = time.monotonic() + lifetime
    while not stop and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            frame = os.read(fd, 65536)
        except OSError:
            continue  # the link is down (not yet attached): nothing to read
        reply = answer(frame, mac, ip)
        if reply is not None:
            os.write(fd, reply)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
