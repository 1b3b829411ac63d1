#!/usr/bin/python3
"""facts.tsv for the story capture sets of pcaps/make_story_pcaps.sh.
Standard library only; tshark for the checks.

  story_facts.py make  MODE DIR [options]   write DIR/facts.tsv (and for
                                            timeout DIR/requests.tsv)
  story_facts.py check MODE DIR             verify DIR/facts.tsv against the
                                            pcaps and the other evidence

MODE s503 (story_503): one row per request, from the proxy's access log
  joined on the request id with the backends' logs; check: every row's
  request is in client.pcap (client port, URI) with a response carrying the
  row's status and X-Request-ID, and in backend.pcap (same id, the row's
  backend and upstream port) with the backend's status.
MODE surge (story_surge): the phases (split at the longest silence in
  server.pcap, which must cover the script's marked pause) and, per phase,
  per resource and SDK version, the requests seen in server.pcap; check:
  the same counts from nginx's access log (by $msec) and from curl's output.
MODE timeout (story_timeout): one row per server, from the clients' own
  curl -w lines (exit code: 0 answered, 56 reset, 28 timed out), plus the
  TCP facts tshark sees in client.pcap; requests.tsv has one row per
  request; check: every reset has the server's RST on that client port,
  every answer a 200 on it, the servers' logs agree.
See pcaps/story/README.md for the columns.
"""
import argparse
import collections
import os
import statistics
import subprocess
import sys


def die(msg):
    print(f"story_facts: {msg}", file=sys.stderr)
    sys.exit(1)


def tshark(pcap, dfilter, fields):
    """Rows of tshark -T fields; multi-valued fields joined with '\x1f'.  Out-of-order
    segments are reassembled (off by default in tshark 4.0): behind the lossy
    link a response's first segment is often retransmitted after the rest."""
    cmd = ["tshark", "-o", "tcp.reassemble_out_of_order:TRUE", "-r", pcap, "-Y", dfilter, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=\x1f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split("\t")
        parts += [""] * (len(fields) - len(parts))
        rows.append(dict(zip(fields, parts)))
    return rows


def header(lines, name):
    """Value of header NAME in an http.*.line aggregate, or ''."""
    want = name.lower() + ":"
    for ln in lines.split("\x1f"):
        ln = ln.replace("\\r\\n", "").replace("\r\n", "").strip()
        if ln.lower().startswith(want):
            return ln[len(want):].strip()
    return ""


def write_tsv(path, cols, rows):
    with open(path, "w") as f:
        f.write("\t".join(cols) + "\n")
        for r in rows:
            f.write("\t".join(str(r.get(c, "-")) if r.get(c, "") != "" else "-" for c in cols) + "\n")


def read_tsv(path):
    with open(path) as f:
        cols = f.readline().rstrip("\n").split("\t")
        return [dict(zip(cols, ln.rstrip("\n").split("\t"))) for ln in f if ln.strip()]


def http_pairs(pcap):
    """Requests of a pcap with their responses (by http.request_in)."""
    reqs = tshark(pcap, "http.request", ["frame.number", "frame.time_epoch", "ip.src", "tcp.srcport",
                                         "ip.dst", "tcp.dstport", "http.request.uri", "http.request.line",
                                         "http.user_agent"])
    resps = tshark(pcap, "http.response", ["http.request_in", "http.response.code", "http.response.line"])
    by_req = {r["http.request_in"]: r for r in resps}
    for q in reqs:
        r = by_req.get(q["frame.number"], {})
        q["code"] = r.get("http.response.code", "")
        q["resp_lines"] = r.get("http.response.line", "")
    return reqs


# ------------------------------------------------------------------ s503 --
S503_COLS = ["request_id", "client_port", "resource", "proxy_status", "backend_addr", "backend_status",
             "client_ip", "backend", "backend_client_port", "proxy_msec"]


def make_s503(d, args):
    backends = {}  # request_id -> (name, fields)
    for name in ("b1", "b2"):
        with open(os.path.join(d, f"{name}.access.log")) as f:
            for ln in f:
                addr, port, rid, uri, status, msec = ln.split()
                if rid in backends:
                    die(f"request id {rid} in two backend logs")
                backends[rid] = (name, dict(addr=addr, port=port, uri=uri, status=status, msec=msec))
    addr_of = {"b1": "10.99.81.21:80", "b2": "10.99.81.22:80"}
    rows = []
    with open(os.path.join(d, "proxy.access.log")) as f:
        for ln in f:
            addr, port, rid, uri, status, up, upstatus, msec, _rtime = ln.split()
            if rid not in backends:
                die(f"proxy request {rid} {uri} is in no backend log")
            name, b = backends.pop(rid)
            if addr_of[name] != up:
                die(f"{rid}: proxy says upstream {up}, the request is in {name}'s log")
            if b["uri"] != uri or b["status"] != upstatus:
                die(f"{rid}: proxy {uri} upstream_status {upstatus}, {name} {b['uri']} {b['status']}")
            rows.append(dict(request_id=rid, client_port=port, resource=uri, proxy_status=status,
                             backend_addr=up, backend_status=b["status"], client_ip=addr, backend=name,
                             backend_client_port=b["port"], proxy_msec=msec))
    if backends:
        die(f"{len(backends)} backend log lines have no proxy line")
    if len(rows) != args.n:
        die(f"{len(rows)} requests in proxy.access.log, expected {args.n}")
    write_tsv(os.path.join(d, "facts.tsv"), S503_COLS, rows)
    c = collections.Counter((r["backend"], r["backend_status"]) for r in rows)
    print("  facts.tsv: %d rows; %s" % (len(rows), ", ".join(f"{b} {s}: {n}" for (b, s), n in sorted(c.items()))))


def check_s503(d):
    rows = read_tsv(os.path.join(d, "facts.tsv"))
    client = http_pairs(os.path.join(d, "client.pcap"))
    backend = http_pairs(os.path.join(d, "backend.pcap"))
    if len(client) != len(rows) or len(backend) != len(rows):
        die(f"{len(rows)} rows, {len(client)} requests in client.pcap, {len(backend)} in backend.pcap")
    cl = {(q["tcp.srcport"], q["http.request.uri"]): q for q in client}
    be = {header(q["http.request.line"], "X-Request-ID"): q for q in backend}
    for r in rows:
        q = cl.get((r["client_port"], r["resource"]))
        if not q:
            die(f"client.pcap: no request {r['resource']} from port {r['client_port']}")
        if q["code"] != r["proxy_status"] or header(q["resp_lines"], "X-Request-ID") != r["request_id"]:
            die(f"client.pcap: {r['resource']}: response {q['code']} id "
                f"{header(q['resp_lines'], 'X-Request-ID')!r}, facts {r['proxy_status']} {r['request_id']}")
        b = be.get(r["request_id"])
        if not b:
            die(f"backend.pcap: no request with X-Request-ID {r['request_id']}")
        if (f"{b['ip.dst']}:{b['tcp.dstport']}" != r["backend_addr"] or b["tcp.srcport"] != r["backend_client_port"]
                or b["http.request.uri"] != r["resource"] or b["code"] != r["backend_status"]):
            die(f"backend.pcap: {r['request_id']}: {b['ip.dst']}:{b['tcp.dstport']} from port {b['tcp.srcport']} "
                f"{b['http.request.uri']} -> {b['code']}; facts {r['backend_addr']} {r['backend_client_port']} "
                f"{r['resource']} -> {r['backend_status']}")
    # the clients' own view: curl -w "CODE LOCAL_PORT X-REQUEST-ID URL"
    by_port = {r["client_port"]: r for r in rows}
    with open(os.path.join(d, "curl.log")) as f:
        seen = 0
        for ln in f:
            code, port, rid, url = ln.split()
            r = by_port.get(port)
            if not r or (code, rid, "/" + url.split("/", 3)[3]) != (r["proxy_status"], r["request_id"], r["resource"]):
                die(f"curl.log: {ln.strip()} does not match facts.tsv")
            seen += 1
    if seen != len(rows):
        die(f"curl.log: {seen} lines for {len(rows)} rows")
    bad = [r for r in rows if r["proxy_status"] == "503" and r["backend"] != "b2"]
    if bad:
        die(f"a 503 that does not come from b2: {bad[0]}")
    if not any(r["backend"] == "b2" and r["backend_status"] == "503" for r in rows):
        die("b2 never answered 503")
    if not any(r["backend"] == "b2" and r["backend_status"] == "200" for r in rows):
        die("b2 never answered 200 (the 503s should be intermittent)")
    if any(r["backend"] == "b1" and r["backend_status"] != "200" for r in rows):
        die("b1 answered something other than 200")
    print(f"  check: {len(rows)} rows agree with client.pcap, backend.pcap (status, X-Request-ID, backend) "
          "and curl.log")


# ----------------------------------------------------------------- surge --
SURGE_COLS = ["phase", "first_ts", "last_ts", "resource", "sdk_version", "clients", "connections",
              "requests", "responses_200"]


def read_marks(d):
    marks = {}
    with open(os.path.join(d, "phases.log")) as f:
        for ln in f:
            k, v = ln.split()
            marks[k] = float(v)
    return marks


def surge_split(d, min_pause):
    pcap = os.path.join(d, "server.pcap")
    times = [float(r["frame.time_epoch"]) for r in tshark(pcap, "frame", ["frame.time_epoch"])]
    if len(times) < 2:
        die("server.pcap: too few frames")
    gap, i = max((times[k + 1] - times[k], k) for k in range(len(times) - 1))
    if gap < min_pause:
        die(f"server.pcap: longest silence {gap:.3f} s < {min_pause} s")
    a_end, b_start = times[i], times[i + 1]
    m = read_marks(d)
    if not (a_end <= m["phase_b_start"] and b_start >= m["phase_a_end"]):
        die(f"the silence {a_end:.6f}..{b_start:.6f} in server.pcap is not the marked pause "
            f"{m['phase_a_end']:.6f}..{m['phase_b_start']:.6f}")
    return times, a_end, b_start


def make_surge(d, args):
    times, a_end, b_start = surge_split(d, args.min_pause)
    reqs = http_pairs(os.path.join(d, "server.pcap"))
    rows = [
        dict(phase="A", first_ts=f"{times[0]:.6f}", last_ts=f"{a_end:.6f}"),
        dict(phase="pause", first_ts=f"{a_end:.6f}", last_ts=f"{b_start:.6f}", resource="*",
             sdk_version="*", clients="", connections=0, requests=0, responses_200=0),
        dict(phase="B", first_ts=f"{b_start:.6f}", last_ts=f"{times[-1]:.6f}"),
    ]
    groups = collections.defaultdict(list)
    for q in reqs:
        t = float(q["frame.time_epoch"])
        ph = "A" if t <= a_end else "B"
        q["phase"] = ph
        q["sdk"] = header(q["http.request.line"], "X-SDK-Version") or "-"
        groups[(ph, q["http.request.uri"], q["sdk"])].append(q)

    def summary(qs):
        return dict(clients=",".join(sorted({q["ip.src"] for q in qs}, key=lambda a: tuple(map(int, a.split("."))))),
                    connections=len({(q["ip.src"], q["tcp.srcport"]) for q in qs}), requests=len(qs),
                    responses_200=sum(q["code"] == "200" for q in qs))

    for r in rows:
        if r["phase"] in ("A", "B"):
            r.update(resource="*", sdk_version="*", **summary([q for q in reqs if q["phase"] == r["phase"]]))
    for (ph, uri, sdk), qs in sorted(groups.items()):
        ts = sorted(float(q["frame.time_epoch"]) for q in qs)
        rows.append(dict(phase=ph, first_ts=f"{ts[0]:.6f}", last_ts=f"{ts[-1]:.6f}", resource=uri,
                         sdk_version=sdk, **summary(qs)))
    write_tsv(os.path.join(d, "facts.tsv"), SURGE_COLS, rows)
    for r in rows:
        print(f"  {r['phase']:5} {r['resource']:14} {r['sdk_version']:6} {r['requests']:>4} requests "
              f"{r['connections']:>3} conns  {float(r['last_ts']) - float(r['first_ts']):6.3f} s")


def check_surge(d):
    rows = read_tsv(os.path.join(d, "facts.tsv"))
    pause = next(r for r in rows if r["phase"] == "pause")
    a_end, b_start = float(pause["first_ts"]), float(pause["last_ts"])
    want = {(r["phase"], r["resource"], r["sdk_version"]): int(r["requests"])
            for r in rows if r["resource"] != "*"}
    # nginx access log: $remote_addr $remote_port $request_uri $status "$sdk" "$ua" $msec
    got = collections.Counter()
    with open(os.path.join(d, "server.access.log")) as f:
        for ln in f:
            p = ln.split()
            uri, status, sdk, msec = p[2], p[3], p[4].strip('"'), float(p[-1])
            if status != "200":
                die(f"server.access.log: {ln.strip()}")
            # $msec has millisecond resolution (truncated, from nginx's cached clock)
            if a_end + 0.005 < msec < b_start - 0.005:
                die(f"server.access.log: a request logged in the pause: {ln.strip()}")
            got[("A" if msec < (a_end + b_start) / 2 else "B", uri, sdk or "-")] += 1
    if dict(got) != want:
        die(f"access log counts {dict(got)} != facts {want}")
    # curl -w lines: PHASE CODE LOCAL_IP LOCAL_PORT URL
    got = collections.Counter()
    with open(os.path.join(d, "curl.log")) as f:
        for ln in f:
            ph, code, ip, _port, url = ln.split()
            sdk = "1.5.0" if ip == "10.99.84.15" else "1.4.2"
            got[(ph, "/" + url.split("/", 3)[3], sdk)] += code == "200"
    if dict(got) != want:
        die(f"curl.log counts {dict(got)} != facts {want}")
    print(f"  check: {sum(want.values())} requests in {len(want)} groups agree with server.pcap, "
          f"server.access.log and curl.log; pause {b_start - a_end:.3f} s")


# --------------------------------------------------------------- timeout --
TIMEOUT_COLS = ["server", "server_addr", "requests", "answered", "reset", "timed_out", "other_failed",
                "answered_slow", "max_answer_s", "median_answer_s", "server_logged_200", "pcap_syn",
                "pcap_retransmissions", "pcap_rst_from_server"]
REQ_COLS = ["server", "server_addr", "seq", "client_port", "outcome", "curl_exit", "http_code",
            "time_connect_s", "time_total_s", "error"]
OUTCOME = {"0": "answered", "56": "reset", "28": "timed_out"}


def server_log_200(d):
    """200s the servers themselves logged: lossy's nginx access log
    ($remote_addr $remote_port $http_x_request_id $request_uri $status $msec)
    and reset_server.py's "conn N ... -> 200" lines."""
    out = {}
    with open(os.path.join(d, "lossy.access.log")) as f:
        out["lossy"] = sum(1 for ln in f if ln.split()[4] == "200")
    with open(os.path.join(d, "resetting.log")) as f:
        out["resetting"] = sum(1 for ln in f if ln.startswith("conn ") and ln.split()[-1] == "200")
    return out


def make_timeout(d, args):
    addrs = dict(a.split("=", 1) for a in args.server)
    reqs = []
    with open(os.path.join(d, "curl.log")) as f:
        for ln in f:
            p = ln.rstrip("\n").split(" ", 7)
            name, seq, port, rc, code, tconn, ttotal = p[:7]
            outcome = OUTCOME.get(rc, "failed")
            if outcome == "answered" and code != "200":
                outcome = "failed"
            reqs.append(dict(server=name, server_addr=addrs[name], seq=seq,
                             client_port=port if port != "0" else "", outcome=outcome, curl_exit=rc,
                             http_code=code, time_connect_s=tconn, time_total_s=ttotal,
                             error=(p[7] if len(p) > 7 else "").strip()))
    write_tsv(os.path.join(d, "requests.tsv"), REQ_COLS, reqs)
    pcap = os.path.join(d, "client.pcap")
    logged = server_log_200(d)
    rows = []
    for name, addr in addrs.items():
        ip, port = addr.rsplit(":", 1)
        qs = [q for q in reqs if q["server"] == name]
        ans = [float(q["time_total_s"]) for q in qs if q["outcome"] == "answered"]
        srv = f"ip.addr=={ip} && tcp.port=={port}"
        rows.append(dict(
            server=name, server_addr=addr, requests=len(qs),
            answered=len(ans), reset=sum(q["outcome"] == "reset" for q in qs),
            timed_out=sum(q["outcome"] == "timed_out" for q in qs),
            other_failed=sum(q["outcome"] == "failed" for q in qs),
            answered_slow=sum(t >= args.slow for t in ans),
            max_answer_s=f"{max(ans):.3f}" if ans else "",
            median_answer_s=f"{statistics.median(ans):.3f}" if ans else "",
            server_logged_200=logged.get(name, ""),
            pcap_syn=len(tshark(pcap, f"{srv} && tcp.flags.syn==1 && tcp.flags.ack==0", ["frame.number"])),
            pcap_retransmissions=len(tshark(pcap, f"{srv} && tcp.analysis.retransmission", ["frame.number"])),
            pcap_rst_from_server=len(tshark(pcap, f"ip.src=={ip} && tcp.srcport=={port} && tcp.flags.reset==1",
                                            ["frame.number"]))))
    write_tsv(os.path.join(d, "facts.tsv"), TIMEOUT_COLS, rows)
    for r in rows:
        print("  " + " ".join(f"{c}={r[c]}" for c in TIMEOUT_COLS))


def check_timeout(d):
    rows = {r["server"]: r for r in read_tsv(os.path.join(d, "facts.tsv"))}
    reqs = read_tsv(os.path.join(d, "requests.tsv"))
    pcap = os.path.join(d, "client.pcap")
    syns = tshark(pcap, "tcp.flags.syn==1 && tcp.flags.ack==0", ["ip.dst", "tcp.srcport"])
    rsts = tshark(pcap, "tcp.flags.reset==1", ["ip.src", "tcp.dstport"])
    answers = tshark(pcap, "http.response.code==200", ["ip.src", "tcp.dstport"])
    syn_set = {(s["ip.dst"], s["tcp.srcport"]) for s in syns}
    rst_set = {(s["ip.src"], s["tcp.dstport"]) for s in rsts}
    ans_set = {(s["ip.src"], s["tcp.dstport"]) for s in answers}
    for q in reqs:
        ip = q["server_addr"].rsplit(":", 1)[0]
        port = q["client_port"]
        if port == "-":
            continue  # curl never learnt its port (no connection): nothing to tie to the pcap
        key = (ip, port)
        if key not in syn_set:
            die(f"client.pcap: no SYN from port {port} to {ip} ({q['server']} #{q['seq']})")
        if q["outcome"] == "reset" and key not in rst_set:
            die(f"client.pcap: {q['server']} #{q['seq']} reset, but no RST from {ip} to port {port}")
        if q["outcome"] == "answered" and key not in ans_set:
            die(f"client.pcap: {q['server']} #{q['seq']} answered, but no 200 from {ip} to port {port}")
    # the servers' own logs
    with open(os.path.join(d, "resetting.log")) as f:
        acts = collections.Counter(ln.split()[-1] for ln in f if ln.startswith("conn "))
    r = rows["resetting"]
    if acts["reset"] != int(r["reset"]) or acts["200"] != int(r["answered"]):
        die(f"resetting.log {dict(acts)} != facts reset={r['reset']} answered={r['answered']}")
    served = server_log_200(d)["lossy"]
    r = rows["lossy"]
    if served < int(r["answered"]) or str(served) != r["server_logged_200"]:
        die(f"lossy.access.log: {served} answers; facts: answered {r['answered']}, logged {r['server_logged_200']}")
    for name, r in rows.items():
        if int(r["requests"]) != sum(q["server"] == name for q in reqs):
            die(f"{name}: requests {r['requests']} != rows of requests.tsv")
    print(f"  check: {len(reqs)} requests agree with client.pcap (SYN, RST, 200 per client port) "
          f"and the servers' logs")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("mode", choices=["s503", "surge", "timeout"])
    mk.add_argument("dir")
    mk.add_argument("--server", action="append", default=[],
                    help="s503/surge: the listen address; timeout: NAME=ADDR:PORT (repeatable)")
    mk.add_argument("--n", type=int, default=0, help="s503: expected number of requests")
    mk.add_argument("--min-pause", type=float, default=2.0, help="surge: shortest pause between phases (s)")
    mk.add_argument("--slow", type=float, default=1.0, help="timeout: an answer this slow (s) counts as slow")
    ck = sub.add_parser("check")
    ck.add_argument("mode", choices=["s503", "surge", "timeout"])
    ck.add_argument("dir")
    args = p.parse_args()
    if args.cmd == "make":
        {"s503": make_s503, "surge": make_surge, "timeout": make_timeout}[args.mode](args.dir, args)
    else:
        {"s503": check_s503, "surge": check_surge, "timeout": check_timeout}[args.mode](args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
