#!/usr/bin/env python3
"""Ground truth of a pcaps/nat/<set>/ capture set: make truth.tsv, check it.

  nat_truth.py make conntrack DIR --vip IP:PORT [--proto tcp|udp] [--after EPOCH] --n N
  nat_truth.py make proxy DIR --server IP:PORT --join request_id|uri --n N
  nat_truth.py make socat DIR --server IP:PORT --n N
  nat_truth.py make chain DIR --vip IP:PORT --server IP:PORT --n N
  nat_truth.py check DIR

make reads only the evidence in DIR (never the pcaps):
  conntrack  conntrack.log (`conntrack -E -e NEW,DESTROY -o timestamp` in the
             gateway): one l4 row per NEW event whose original destination is
             the VIP. Side a is the original tuple, side b the reply tuple
             turned around (client = reply dst, server = reply src); the
             translation (dnat, snat, dnat+snat) is what differs between them.
             Resource and response code come from the backend access logs
             (bN.access.log, TCP) or dnsmasq.log (UDP DNS: query name, rcode),
             joined on side b's client address and port.  With --after (the
             midstream set, whose pcaps were cut with `editcap -A`): only the
             connections with a backend request logged at or after EPOCH (the
             later cut), without resource (several requests per connection).
  proxy      proxy.access.log and bN.access.log (nginx): one l7 row per proxied
             request, joined on $request_id (= the backend's X-Request-ID) or,
             with --join uri, on the request URI (unique per request).
  socat      socat.log (`socat -d -d`): the parent's "accepting connection
             from C on S" and "forked off child process P", then P's "opening
             connection to B" and "successfully connected from local address
             G": one l4 row per relayed connection; resource and status from
             b1.access.log on side b's client port.
  chain      three points, client -> proxy_in -> backend (a DNAT+MASQUERADE
             gateway in front of an nginx proxy): the conntrack rows (points
             client, proxy_in; resource and status from proxy.access.log on
             side b's client address and port), then the proxy rows (points
             proxy_in, backend; joined on $request_id). N requests, one
             connection each: 2N rows.
check runs tshark on every <point>.pcap named in truth.tsv and verifies that
every row's tuples are seen (both directions) in the right pcap with the
resource and response code given, that every connection (l4) or request
(l7) in those pcaps has exactly one row, and, for l7 rows where nginx set an
X-Request-ID, that the id on side b's request is the one side a's response
carries (for l4 rows: that both sides' responses carry the same id). With
more than two points, "every connection / request has a row" holds for
each point and kind of row that names that point. In a set with cuts.txt
(captures cut with editcap: connections seen without their SYN), "every
connection" is every client-to-server tuple seen towards a server of the
rows, SYN or not. Standard library only.
"""

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

COLUMNS = [
    "link_kind", "translation",
    "a_point", "a_client_ip", "a_client_port", "a_server_ip", "a_server_port",
    "b_point", "b_client_ip", "b_client_port", "b_server_ip", "b_server_port",
    "a_resource", "b_resource", "a_response_code", "b_response_code", "evidence",
]
A_POINT, B_POINT = "client", "backend"


def fail(msg):
    sys.exit(f"nat_truth: {msg}")


def hostport(s):
    ip, _, port = s.rpartition(":")
    if not ip or not port.isdigit():
        fail(f"not IP:PORT: {s!r}")
    return ip, port


def write(d, rows, n):
    if len(rows) != n:
        fail(f"{d.name}: {len(rows)} links found in the evidence, expected {n}")
    with open(d / "truth.tsv", "w", encoding="ascii") as f:
        f.write("\t".join(COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join(str(r.get(c, "-")) for c in COLUMNS) + "\n")
    print(f"  truth.tsv: {len(rows)} rows")


def backend_logs(d):
    """bN.access.log lines (nginx log_format backend) with the file's backend."""
    out = []
    for p in sorted(d.glob("b*.access.log")):
        for line in p.read_text().splitlines():
            f = line.split()
            if len(f) != 6:
                fail(f"{p.name}: unexpected line {line!r}")
            addr, port, rid, uri, status, msec = f
            out.append({"backend": p.name.split(".")[0], "addr": addr, "port": port, "rid": rid,
                        "uri": uri, "status": status, "msec": float(msec)})
    return out


def by_client(entries):
    """(client addr, client port) -> entry; must be unique."""
    m = {}
    for e in entries:
        k = (e["addr"], e["port"])
        if k in m:
            fail(f"two backend requests from {k}")
        m[k] = e
    return m


CT_RE = re.compile(r"^\[(\d+\.\d+)\]\s+\[(NEW|DESTROY)\]\s+(\w+)\s+\d+\s+(.*)$")


def make_conntrack(d, a):
    if a.after is None:
        write(d, conntrack_rows(d, a, A_POINT, B_POINT, by_client(backend_logs(d))), a.n)
        return
    late = {(e["addr"], e["port"]) for e in backend_logs(d) if e["msec"] >= a.after}
    rows = conntrack_rows(d, a, A_POINT, B_POINT, {})
    write(d, [r for r in rows if (r["b_client_ip"], r["b_client_port"]) in late], a.n)


def conntrack_rows(d, a, a_point, b_point, http):
    """l4 rows from conntrack.log; http: (client addr, port) -> access log entry
    of the server behind the NAT (entries of a backend log carry "backend")."""
    vip_ip, vip_port = hostport(a.vip)
    # dnsmasq --log-queries=extra: "<serial> <addr>/<port> query[A] name from addr",
    # answered by "<serial> <addr>/<port> config|reply|cached name is X"
    dns = {}
    if (d / "dnsmasq.log").exists():
        for line in (d / "dnsmasq.log").read_text().splitlines():
            m = re.search(r" (\d+) ([\d.]+)/(\d+) (query\[\w+\]|config|reply|cached) (\S+) (?:from|is) (\S+)", line)
            if not m:
                continue
            k = (m.group(2), m.group(3))
            e = dns.setdefault(k, {"name": None, "rcode": None})
            if m.group(4).startswith("query"):
                e["name"] = m.group(5)
            elif e["rcode"] is None:
                e["rcode"] = 3 if m.group(6) == "NXDOMAIN" else 0
    rows = []
    for line in (d / "conntrack.log").read_text().splitlines():
        m = CT_RE.match(line.strip())
        if not m or m.group(2) != "NEW" or m.group(3) != a.proto:
            continue
        kv = re.findall(r"(src|dst|sport|dport)=(\S+)", m.group(4))
        if len(kv) != 8:
            fail(f"conntrack.log: cannot read {line!r}")
        o, r = dict(kv[:4]), dict(kv[4:])
        if (o["dst"], o["dport"]) != (vip_ip, vip_port):
            continue
        dnat = (r["src"], r["sport"]) != (o["dst"], o["dport"])
        snat = (r["dst"], r["dport"]) != (o["src"], o["sport"])
        row = {
            "link_kind": "l4",
            "translation": "+".join(t for t, on in (("dnat", dnat), ("snat", snat)) if on) or "none",
            "a_point": a_point, "a_client_ip": o["src"], "a_client_port": o["sport"],
            "a_server_ip": o["dst"], "a_server_port": o["dport"],
            "b_point": b_point, "b_client_ip": r["dst"], "b_client_port": r["dport"],
            "b_server_ip": r["src"], "b_server_port": r["sport"],
            "evidence": "conntrack",
        }
        bkey = (r["dst"], r["dport"])
        if a.proto == "udp" and bkey in dns and dns[bkey]["name"]:
            q = dns[bkey]
            row.update(a_resource=q["name"], b_resource=q["name"],
                       a_response_code=q["rcode"] if q["rcode"] is not None else "-",
                       b_response_code=q["rcode"] if q["rcode"] is not None else "-")
        elif a.proto == "tcp" and bkey in http:
            e = http[bkey]
            if "backend" in e and not r["src"].endswith("." + "2" + e["backend"][1:]):
                fail(f"{e['backend']}.access.log has a request for {r['src']}")
            row.update(a_resource=e["uri"], b_resource=e["uri"],
                       a_response_code=e["status"], b_response_code=e["status"])
        rows.append(row)
    return rows


def make_proxy(d, a):
    write(d, proxy_rows(d, a, A_POINT, B_POINT), a.n)


def proxy_log(d):
    """proxy.access.log lines (nginx log_format proxy)."""
    out = []
    for line in (d / "proxy.access.log").read_text().splitlines():
        f = line.split()
        if len(f) != 7:
            fail(f"proxy.access.log: unexpected line {line!r}")
        out.append(dict(zip(("addr", "port", "rid", "uri", "status", "up", "msec"), f)))
    return out


def proxy_rows(d, a, a_point, b_point):
    srv_ip, srv_port = hostport(a.server)
    key = "rid" if a.join == "request_id" else "uri"
    backend = {}
    for e in backend_logs(d):
        if e[key] == "-" or e[key] in backend:
            fail(f"backend {key} {e[key]!r} missing or not unique")
        backend[e[key]] = e
    rows = []
    for p in proxy_log(d):
        addr, port, rid, uri, status, up = p["addr"], p["port"], p["rid"], p["uri"], p["status"], p["up"]
        e = backend.pop(rid if key == "rid" else uri, None)
        if e is None:
            fail(f"proxy request {uri} ({rid}) has no backend request")
        up_ip, up_port = hostport(up)   # one upstream address: no retry happened
        if not up_ip.endswith("." + "2" + e["backend"][1:]) or e["uri"] != uri:
            fail(f"proxy request {uri} went to {up}, but {e['backend']} logged {e['uri']}")
        rows.append({
            "link_kind": "l7", "translation": "proxy",
            "a_point": a_point, "a_client_ip": addr, "a_client_port": port,
            "a_server_ip": srv_ip, "a_server_port": srv_port,
            "b_point": b_point, "b_client_ip": e["addr"], "b_client_port": e["port"],
            "b_server_ip": up_ip, "b_server_port": up_port,
            "a_resource": uri, "b_resource": e["uri"], "a_response_code": status,
            "b_response_code": e["status"], "evidence": "access_log",
        })
    if backend:
        fail(f"backend requests without a proxy request: {sorted(backend)}")
    return rows


def make_chain(d, a):
    """client -> (DNAT+MASQUERADE gateway) -> proxy_in -> (nginx) -> backend."""
    down = by_client(proxy_log(d))
    l4 = conntrack_rows(d, a, "client", "proxy_in", down)
    if len(l4) != a.n or any(r.get("a_resource", "-") == "-" for r in l4):
        fail(f"{d.name}: {len(l4)} conntrack links, expected {a.n}, each with a proxy request")
    l7 = proxy_rows(d, a, "proxy_in", "backend")
    write(d, l4 + l7, 2 * a.n)


SOCAT_RE = re.compile(r"socat\[(\d+)\] \w (.*)$")
AF_RE = r"AF=2 ([\d.]+):(\d+)"


def make_socat(d, a):
    srv_ip, srv_port = hostport(a.server)
    http = by_client(backend_logs(d))
    pending = None       # downstream tuple accepted, child not forked yet
    conns = {}           # child pid -> {down, up_server, up_client}
    order = []
    for line in (d / "socat.log").read_text().splitlines():
        m = SOCAT_RE.search(line)
        if not m:
            continue
        pid, msg = m.groups()
        if mm := re.match(rf"accepting connection from {AF_RE} on {AF_RE}", msg):
            pending = mm.groups()
        elif mm := re.match(r"forked off child process (\d+)", msg):
            if pending is None:
                fail(f"socat.log: fork without accept: {line!r}")
            conns.setdefault(mm.group(1), {})["down"] = pending   # the child may have logged first
            order.append(mm.group(1))
            pending = None
        elif mm := re.match(rf"opening connection to {AF_RE}", msg):
            conns.setdefault(pid, {})["up_server"] = mm.groups()
        elif mm := re.match(rf"successfully connected from local address {AF_RE}", msg):
            conns.setdefault(pid, {})["up_client"] = mm.groups()
    rows = []
    for pid in order:
        c = conns[pid]
        if "down" not in c or "up_server" not in c or "up_client" not in c:
            lines = [ln for ln in (d / "socat.log").read_text().splitlines() if f"[{pid}]" in ln or pid in ln]
            fail(f"socat.log: child {pid} has no upstream connection:\n" + "\n".join(lines))
        (ca, cp, sa, sp), (ba, bp), (ga, gp) = c["down"], c["up_server"], c["up_client"]
        if (sa, sp) != (srv_ip, srv_port):
            fail(f"socat accepted on {sa}:{sp}, expected {a.server}")
        row = {
            "link_kind": "l4", "translation": "proxy",
            "a_point": A_POINT, "a_client_ip": ca, "a_client_port": cp, "a_server_ip": sa, "a_server_port": sp,
            "b_point": B_POINT, "b_client_ip": ga, "b_client_port": gp, "b_server_ip": ba, "b_server_port": bp,
            "evidence": "access_log",
        }
        if (ga, gp) in http:
            e = http[(ga, gp)]
            row.update(a_resource=e["uri"], b_resource=e["uri"],
                       a_response_code=e["status"], b_response_code=e["status"])
        rows.append(row)
    write(d, rows, a.n)


# ------------------------------------------------------------------ check --
FIELDS = ["ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
          "tcp.flags.syn", "tcp.flags.ack", "http.request.uri", "http.response.code",
          "dns.flags.response", "dns.qry.name", "dns.flags.rcode",
          "http.request.line", "http.response.line", "http.response_for.uri"]
RID_RE = re.compile(r"X-Request-ID: ([0-9A-Za-z-]+)")


class Point:
    """What one pcap holds, by directed 4-tuple (src, sport, dst, dport)."""

    def __init__(self, path):
        cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "aggregator=\x1f"]
        for f in FIELDS:
            cmd += ["-e", f]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        self.seen = set()
        self.opens = set()                       # TCP SYN (no ACK) or DNS query tuples
        self.requests = collections.Counter()    # (tuple, uri or qname)
        self.responses = collections.defaultdict(list)   # reply tuple -> codes
        self.rid = {}    # ("req", tuple, uri) / ("resp", reply tuple, uri) -> X-Request-ID
        for line in out.splitlines():
            v = dict(zip(FIELDS, line.split("\t")))
            if not v.get("ip.src"):
                continue
            sport = v["tcp.srcport"] or v["udp.srcport"]
            dport = v["tcp.dstport"] or v["udp.dstport"]
            if not sport:
                continue
            t = (v["ip.src"], sport, v["ip.dst"], dport)
            self.seen.add(t)
            if v["tcp.flags.syn"] in ("1", "True") and v["tcp.flags.ack"] in ("0", "False"):
                self.opens.add(t)
            uris = [u for u in v["http.request.uri"].split("\x1f") if u]
            for u in uris:
                self.requests[(t, u)] += 1
            for c in v["http.response.code"].split("\x1f"):
                if c:
                    self.responses[t].append(c)
            if (m := RID_RE.search(v["http.request.line"])) and len(uris) == 1:
                self.rid[("req", t, uris[0])] = m.group(1)
            if (m := RID_RE.search(v["http.response.line"])) and v["http.response_for.uri"]:
                # response_for.uri is absolute (http://host/path): keep the path
                u = re.sub(r"^[a-z]+://[^/]*", "", v["http.response_for.uri"].split("\x1f")[0])
                self.rid[("resp", t, u)] = m.group(1)
            if v["dns.flags.response"] in ("0", "False") and v["dns.qry.name"]:
                self.opens.add(t)
                self.requests[(t, v["dns.qry.name"])] += 1
            if v["dns.flags.response"] in ("1", "True"):
                self.responses[t].append(v["dns.flags.rcode"])


def check(d):
    lines = (d / "truth.tsv").read_text().splitlines()
    if not lines or lines[0].split("\t") != COLUMNS:
        fail(f"{d}/truth.tsv: bad header")
    rows = [dict(zip(COLUMNS, ln.split("\t"))) for ln in lines[1:]]
    points = {}
    want_opens = collections.defaultdict(set)
    want_requests = collections.defaultdict(collections.Counter)
    kinds = collections.defaultdict(set)    # point -> kinds of the rows that name it
    rids = 0
    for i, r in enumerate(rows, 2):
        for s in "ab":
            name = r[f"{s}_point"]
            kinds[name].add(r["link_kind"])
            if name not in points:
                points[name] = Point(d / f"{name}.pcap")
            p = points[name]
            fwd = (r[f"{s}_client_ip"], r[f"{s}_client_port"], r[f"{s}_server_ip"], r[f"{s}_server_port"])
            rev = (fwd[2], fwd[3], fwd[0], fwd[1])
            where = f"truth.tsv line {i}, {name}.pcap"
            if fwd not in p.seen or rev not in p.seen:
                fail(f"{where}: tuple {fwd} not seen in both directions")
            res, code = r[f"{s}_resource"], r[f"{s}_response_code"]
            if res != "-" and p.requests[(fwd, res)] < 1:
                fail(f"{where}: no request for {res} on {fwd}")
            if code != "-" and code not in p.responses[rev]:
                fail(f"{where}: no response {code} on {rev} (saw {p.responses[rev]})")
            if r["link_kind"] == "l4":
                want_opens[name].add(fwd)
            else:
                want_requests[name][(fwd, res)] += 1
        # a proxy's X-Request-ID: the one the backend got is the one the client got back
        if r["link_kind"] == "l7":
            pa, pb = points[r["a_point"]], points[r["b_point"]]
            arev = (r["a_server_ip"], r["a_server_port"], r["a_client_ip"], r["a_client_port"])
            bfwd = (r["b_client_ip"], r["b_client_port"], r["b_server_ip"], r["b_server_port"])
            got = pa.rid.get(("resp", arev, r["a_resource"]))
            sent = pb.rid.get(("req", bfwd, r["b_resource"]))
            if got != sent:
                fail(f"truth.tsv line {i}: X-Request-ID to the backend {sent}, back to the client {got}")
            rids += got is not None
        # a NAT does not touch the payload: an X-Request-ID on side a's response is on side b's too
        elif r["a_resource"] != "-":
            pa, pb = points[r["a_point"]], points[r["b_point"]]
            arev = (r["a_server_ip"], r["a_server_port"], r["a_client_ip"], r["a_client_port"])
            brev = (r["b_server_ip"], r["b_server_port"], r["b_client_ip"], r["b_client_port"])
            got = pa.rid.get(("resp", arev, r["a_resource"]))
            sent = pb.rid.get(("resp", brev, r["b_resource"]))
            if got != sent:
                fail(f"truth.tsv line {i}: X-Request-ID {got} on side a's response, {sent} on side b's")
            rids += got is not None
    # every connection / request in the pcaps has its row
    cut = (d / "cuts.txt").exists()
    for name, p in points.items():
        if "l4" in kinds[name] and cut:
            servers = {(r[f"{s}_server_ip"], r[f"{s}_server_port"]) for r in rows for s in "ab"
                       if r[f"{s}_point"] == name}
            conns = {t for t in p.seen if (t[2], t[3]) in servers}
            if conns != want_opens[name]:
                fail(f"{name}.pcap: connections without a row {sorted(conns - want_opens[name])}, "
                     f"rows without a connection {sorted(want_opens[name] - conns)}")
        elif "l4" in kinds[name] and p.opens != want_opens[name]:
            fail(f"{name}.pcap: connections without a row {sorted(p.opens - want_opens[name])}, "
                 f"rows without a connection {sorted(want_opens[name] - p.opens)}")
        if "l7" in kinds[name] and +p.requests != +want_requests[name]:
            fail(f"{name}.pcap: requests and l7 rows differ: {p.requests - want_requests[name]} / "
                 f"{want_requests[name] - p.requests}")
    print(f"  truth.tsv checked against {', '.join(sorted(points))}.pcap: {len(rows)} rows, every tuple seen"
          + (f", {rids} X-Request-IDs equal on both sides" if rids else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("mode", choices=["conntrack", "proxy", "socat", "chain"])
    mk.add_argument("dir", type=Path)
    mk.add_argument("--vip")
    mk.add_argument("--proto", default="tcp", choices=["tcp", "udp"])
    mk.add_argument("--after", type=float)
    mk.add_argument("--server")
    mk.add_argument("--join", default="request_id", choices=["request_id", "uri"])
    mk.add_argument("--n", type=int, required=True)
    ck = sub.add_parser("check")
    ck.add_argument("dir", type=Path)
    a = ap.parse_args()
    if a.cmd == "check":
        check(a.dir)
    elif a.mode == "conntrack":
        if not a.vip:
            fail("conntrack needs --vip")
        make_conntrack(a.dir, a)
    elif a.mode == "proxy":
        make_proxy(a.dir, a)
    elif a.mode == "chain":
        if not a.vip or not a.server:
            fail("chain needs --vip and --server")
        make_chain(a.dir, a)
    else:
        make_socat(a.dir, a)


if __name__ == "__main__":
    main()
