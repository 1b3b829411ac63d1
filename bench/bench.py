#!/usr/bin/env python3
"""Measure flowtrail and its peers; print the Markdown tables and write
bench/RESULTS.md. Called by bench/run.sh (which builds and makes the
captures first); standard library only.

Every command runs once to warm the page cache (and the tool's own
binaries), then RUNS times; the row shows the run with the least wall
time ("best of N"). Each run is started with os.wait4, which also gives
the child's user+sys CPU time and peak RSS (ru_maxrss), and /proc/stat is
read around it to see how busy the rest of the machine was (other
processes' CPU, in cores, during the run).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HZ = os.sysconf("SC_CLK_TCK")


def proc_stat_busy():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    total = sum(v[:8])
    return total - idle, total


def background_load(seconds=1.0):
    """Cores kept busy by other processes over a short sample."""
    b0, _ = proc_stat_busy()
    time.sleep(seconds)
    b1, _ = proc_stat_busy()
    return (b1 - b0) / HZ / seconds


class Run:
    def __init__(self, wall, cpu, maxrss_kb, bg, rc, out_path):
        self.wall, self.cpu, self.maxrss_kb, self.bg, self.rc, self.out_path = wall, cpu, maxrss_kb, bg, rc, out_path


def run_once(cmd, out_path, err_path, cwd=None):
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        b0, _ = proc_stat_busy()
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        t1 = time.perf_counter()
        b1, _ = proc_stat_busy()
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = t1 - t0
    cpu = ru.ru_utime + ru.ru_stime
    others = max(0.0, (b1 - b0) / HZ - cpu)
    return Run(wall, cpu, ru.ru_maxrss, others / wall if wall > 0 else 0.0, p.returncode, out_path)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="ftb-run.")
        self.quiet_wait = args.quiet_wait
        # Total time the whole run may spend waiting for other processes.
        self.wait_budget = args.quiet_budget

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wait_quiet(self, label):
        """Wait (bounded per row and per run) until other processes leave the machine mostly idle."""
        t0 = time.time()
        deadline = t0 + min(self.quiet_wait, max(0.0, self.wait_budget))
        load = background_load(0.5)
        while load > self.args.quiet_cores and time.time() < deadline:
            load = background_load(1.0)
        self.wait_budget -= time.time() - t0
        if load > self.args.quiet_cores:
            log(f"{label}: machine busy ({load:.2f} cores used by other processes); measuring anyway")
        return load

    def measure(self, label, cmd, runs, warm=True, prepare=None, ok_codes=(0,), cwd=None, warm_cmd=None,
                max_extra=None, post=None):
        """post(run) is called after each measured run (e.g. to keep its summary)."""
        """Warm once, run `runs` times, return (best run, all runs)."""
        self.wait_quiet(label)
        slot = os.path.join(self.tmp, re.sub(r"[^A-Za-z0-9]+", "_", label))
        os.makedirs(slot, exist_ok=True)
        if warm:
            if prepare:
                prepare()
            r = run_once(warm_cmd or cmd, f"{slot}/warm.out", f"{slot}/warm.err", cwd)
            if r.rc not in ok_codes:
                raise RuntimeError(f"{label}: exit {r.rc}: {' '.join(cmd)}\n{tail(slot + '/warm.err')}")
        all_runs = []
        for i in range(runs):
            if prepare:
                prepare()
            r = run_once(cmd, f"{slot}/run{i}.out", f"{slot}/run{i}.err", cwd)
            if r.rc not in ok_codes:
                raise RuntimeError(f"{label}: exit {r.rc}: {' '.join(cmd)}\n{tail(f'{slot}/run{i}.err')}")
            r.err_path = f"{slot}/run{i}.err"
            if post:
                post(r)
            all_runs.append(r)
        # A best run disturbed by other processes: wait for a quiet moment
        # and try again (bounded), so contention does not set the number.
        extra = 0
        limit = self.args.max_extra if max_extra is None else max_extra
        while (min(all_runs, key=lambda r: r.wall).bg > self.args.quiet_cores and extra < limit
               and self.wait_budget > 0):
            extra += 1
            self.wait_quiet(label)
            if prepare:
                prepare()
            i = len(all_runs)
            r = run_once(cmd, f"{slot}/run{i}.out", f"{slot}/run{i}.err", cwd)
            if r.rc not in ok_codes:
                raise RuntimeError(f"{label}: exit {r.rc}: {' '.join(cmd)}\n{tail(f'{slot}/run{i}.err')}")
            r.err_path = f"{slot}/run{i}.err"
            if post:
                post(r)
            all_runs.append(r)
        best = min(all_runs, key=lambda r: r.wall)
        best.maxrss_kb = max(r.maxrss_kb for r in all_runs)
        walls = ", ".join(f"{r.wall:.3f}" for r in all_runs)
        log(f"{label}: wall {walls} s; best {best.wall:.3f} s, cpu {best.cpu:.3f} s, "
            f"rss {best.maxrss_kb / 1024:.0f} MiB, others {best.bg:.2f} cores")
        return best, all_runs


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001 - versions are best effort
        return ""


def fmt_int(n):
    return f"{n:,}"


def fmt_rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ------------------------------------------------------------------ rows --
def flows_only_args(ft):
    """`--no-l7` (flows only: no TCP reassembly, no L7) when this build has it."""
    h = subprocess.run([ft, "replay", "--help"], capture_output=True, text=True).stdout
    return ["--no-l7"] if "--no-l7" in h else []


def flowtrail_replay(b, ft, pcap, workers, label, runs, extra=()):
    outdir = os.path.join(b.tmp, "out")
    summ = os.path.join(b.tmp, f"summary-{workers}.json")

    def prepare():
        shutil.rmtree(outdir, ignore_errors=True)

    def post(r):
        with open(summ) as f:
            r.summary = json.load(f)

    # Replay rows measure capture to records; a run with one capture point
    # would also read its records back to look for NAT links (none here),
    # which bench/nat.sh measures in its own table.
    cmd = [ft, "replay", pcap, "-o", outdir, "-w", str(workers), "--no-progress", "--summary-json", summ,
           *b.no_nat, *extra]
    best, _ = b.measure(label, cmd, runs, prepare=prepare, post=post)
    s = best.summary
    shutil.rmtree(outdir, ignore_errors=True)
    flows = sum(s.get(k, 0) for k in ("flows_tcp", "flows_udp", "flows_icmp", "flows_other"))
    return best, s, flows


def floor(b, ft, pcap, dissect, label, runs):
    cmd = [ft, "floor"] + (["--dissect"] if dissect else []) + [pcap]
    best, _ = b.measure(label, cmd, runs)
    with open(best.out_path) as f:
        s = json.loads(f.read().strip().splitlines()[-1])
    return best, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowtrail", required=True)
    ap.add_argument("--http", required=True, help="the real HTTP capture")
    ap.add_argument("--http-meta", help="make_http_capture.sh's notes about the capture")
    ap.add_argument("--synth", action="append", default=[],
                    help="FLOWS:PACKETS_PER_FLOW:GENERATIONS:FILE for the concurrency table (repeatable)")
    ap.add_argument("--synth-note", default="")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--results", required=True, help="RESULTS.md to write")
    ap.add_argument("--quiet-wait", type=float, default=60.0,
                    help="seconds to wait per row for other processes to go idle")
    ap.add_argument("--quiet-cores", type=float, default=0.3)
    ap.add_argument("--quiet-budget", type=float, default=180.0,
                    help="total seconds the whole run may wait for other processes to go idle")
    ap.add_argument("--max-extra", type=int, default=3,
                    help="extra runs when the best run was disturbed by other processes")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--mixed", help="mixed L7 capture (bench/make_mixed_capture.sh)")
    ap.add_argument("--nat", help="output of bench/nat.sh (a Markdown table) to include")
    args = ap.parse_args()

    b = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(b, args)
    finally:
        b.cleanup()


def run(b, args):
    ft = os.path.abspath(args.flowtrail)
    http = os.path.abspath(args.http)
    runs = args.runs
    started = time.time()
    nproc = os.cpu_count()

    # The file's own packet and byte counts (original lengths) are the
    # denominators of every row: floor reads them without dissecting.
    ref = json.loads(subprocess.run([ft, "floor", http], capture_output=True, text=True, check=True)
                     .stdout.strip().splitlines()[-1])
    file_packets, file_bytes = ref["packets"], ref["bytes"]
    log(f"{http}: {file_packets} packets, {file_bytes} bytes (original lengths)")

    rows = []  # (tool, mode, packets, Run, flows, note)
    fo = flows_only_args(ft)
    fo_txt = " --no-l7" if fo else ""
    b.flows_only = fo
    h = subprocess.run([ft, "replay", "--help"], capture_output=True, text=True).stdout
    b.no_nat = ["--no-nat-paths"] if "--no-nat-paths" in h else []

    best, s, flows = flowtrail_replay(b, ft, http, 1, "flowtrail -w 1", runs, fo)
    rows.append(("flowtrail", f"replay -w 1{fo_txt} (flows only, 1 thread)", s["packets"], best, flows,
                 f"internal elapsed {s['elapsed_s']:.3f} s; writes Parquet"))
    best, s, flows = flowtrail_replay(b, ft, http, 2, "flowtrail -w 2", runs, fo)
    rows.append(("flowtrail", f"replay -w 2{fo_txt} (reader + 2 shards)", s["packets"], best, flows,
                 f"internal elapsed {s['elapsed_s']:.3f} s; writes Parquet"))
    if fo:
        best, s, flows = flowtrail_replay(b, ft, http, 1, "flowtrail -w 1 with L7", runs)
        l7 = s.get("l7_detected", {})
        l7txt = ", ".join(f"{k} {v:,}" for k, v in l7.items() if v) or "none"
        rows.append(("flowtrail", "replay -w 1 (default: + TCP reassembly, L7)", s["packets"], best, flows,
                     f"internal elapsed {s['elapsed_s']:.3f} s; L7 flows: {l7txt}; "
                     f"{s.get('call_rows_written', 0):,} call records"))
    best, s = floor(b, ft, http, False, "floor", runs)
    rows.append(("flowtrail floor", "read only", s["packets"], best, "–", "pcap reader only"))
    best, s = floor(b, ft, http, True, "floor --dissect", runs)
    rows.append(("flowtrail floor", "read + dissect L2–L4", s["packets"], best, "–",
                 f"{fmt_int(s['dissected'])} dissected"))

    peer_notes = []
    if not args.skip_peers:
        # ndpiReader: flow table + nDPI protocol detection; prints a ~60-line
        # summary (no per-flow dump without -v), parsed for its counts.
        if shutil.which("ndpiReader"):
            try:
                best, _ = b.measure("ndpiReader", ["ndpiReader", "-i", http], runs)
                out = open(best.out_path, errors="replace").read()
                ip_pk = re.search(r"IP packets:\s+(\d+)\s+of\s+(\d+)", out)
                uniq = re.search(r"Unique flows:\s+(\d+)", out)
                ptime = re.search(r"Packet Processing Time:\s+(\d+)\s*msec", out)
                analysed = int(ip_pk.group(1)) if ip_pk else None
                total = int(ip_pk.group(2)) if ip_pk else file_packets
                note = ""
                if analysed is not None and analysed < total:
                    note = (f"analysed only {fmt_int(analysed)} of {fmt_int(total)} packets: nDPI 4.2's reader "
                            f"discards frames captured shorter than on the wire (snaplen)")
                if ptime:
                    note += f"; self-reported processing time {int(ptime.group(1)) / 1000:.3f} s"
                rows.append(("ndpiReader", "flows + DPI", total, best, int(uniq.group(1)) if uniq else "?", note))
            except Exception as e:  # noqa: BLE001
                peer_notes.append(f"ndpiReader failed: {e}")
                log(f"ndpiReader failed: {e}")
        else:
            peer_notes.append("ndpiReader not installed")
        # argus: flow records written to a file (like flowtrail's Parquet).
        if shutil.which("argus"):
            try:
                aout = os.path.join(b.tmp, "out.argus")

                def prep():
                    if os.path.exists(aout):
                        os.remove(aout)

                best, _ = b.measure("argus", ["argus", "-r", http, "-w", aout], runs, prepare=prep)
                recs = "?"
                if shutil.which("ra"):
                    # Flow records only (not argus's own "man" management records).
                    o = subprocess.run(["ra", "-n", "-r", aout, "-s", "proto", "-", "not man"],
                                       capture_output=True, text=True)
                    recs = sum(1 for ln in o.stdout.splitlines()[1:] if ln.strip())
                size = os.path.getsize(aout) if os.path.exists(aout) else 0
                rows.append(("argus", "flow records (-w file)", file_packets, best, recs,
                             f"wall time includes argus's ~1 s end-of-input wait "
                             f"(a tiny pcap also takes 1.0 s); {size / 1e6:.1f} MB of records"))
                prep()
            except Exception as e:  # noqa: BLE001
                peer_notes.append(f"argus failed: {e}")
                log(f"argus failed: {e}")
        else:
            peer_notes.append("argus not installed")
        # tshark: full dissection of every frame + TCP conversation table.
        # Slow: warmed on a tiny capture (libraries, dissector tables), run once.
        if shutil.which("tshark"):
            try:
                tiny = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pcaps", "http_close.pcap")
                warm_cmd = ["tshark", "-n", "-r", tiny, "-q", "-z", "conv,tcp"] if os.path.exists(tiny) else None
                cmd = ["tshark", "-n", "-r", http, "-q", "-z", "conv,tcp"]
                best, _ = b.measure("tshark", cmd, 1, warm=warm_cmd is not None, warm_cmd=warm_cmd, max_extra=0)
                out = open(best.out_path, errors="replace").read()
                convs = sum(1 for ln in out.splitlines() if "<->" in ln)
                rows.append(("tshark", "full dissection + conv,tcp", file_packets, best, convs,
                             "1 run (after a warm-up on a tiny pcap)"))
            except Exception as e:  # noqa: BLE001
                peer_notes.append(f"tshark failed: {e}")
                log(f"tshark failed: {e}")
        else:
            peer_notes.append("tshark not installed")

    hdr1 = ["tool", "mode", "packets", "seconds", "packets/s", "Gbit/s", "CPU s", "cores used",
            "packets/s per core", "peak RSS", "flows", "others' load", "notes"]
    t1 = []
    for tool, mode, packets, r, flows, note in rows:
        cores_used = r.cpu / r.wall if r.wall > 0 else 0
        t1.append([tool, mode, fmt_int(packets), f"{r.wall:.3f}", fmt_rate(packets / r.wall),
                   f"{file_bytes * 8 / r.wall / 1e9:.2f}", f"{r.cpu:.3f}", f"{cores_used:.2f}",
                   fmt_rate(packets / r.cpu) if r.cpu > 0 else "–", f"{r.maxrss_kb / 1024:.0f} MiB",
                   fmt_int(flows) if isinstance(flows, int) else flows, f"{r.bg:.2f}", note])
    table1 = md_table(hdr1, t1)
    print("\n## HTTP capture\n\n" + table1 + "\n", flush=True)

    # ------------------------------------------------ concurrency table --
    t2 = []
    for spec in args.synth:
        k, p, g, path = spec.split(":", 3)
        k, p, g = int(k), int(p), int(g)
        label = f"synth {k} flows x {p} x {g} generations"
        best, s, flows = flowtrail_replay(b, ft, path, 1, label, runs, b.flows_only)
        fbest, fs = floor(b, ft, path, True, label + " floor --dissect", runs)
        n = s["packets"]
        ns = best.wall / n * 1e9
        fns = fbest.wall / fs["packets"] * 1e9
        t2.append([fmt_int(k), fmt_int(g), fmt_int(p), fmt_int(n), f"{best.wall:.3f}", fmt_rate(n / best.wall),
                   f"{ns:.0f}", f"{best.cpu / n * 1e9:.0f}", f"{fns:.0f}", f"{ns - fns:.0f}",
                   f"{best.maxrss_kb / 1024:.0f} MiB",
                   fmt_int(s.get("max_concurrent_flows", 0)), fmt_int(flows),
                   f"{s['elapsed_s']:.3f}", f"{best.bg:.2f}"])
    hdr2 = ["flows open at once", "generations", "packets/flow", "packets", "seconds", "packets/s", "ns/packet",
            "CPU ns/packet", "floor --dissect ns/packet", "flow table + output ns/packet", "peak RSS",
            "max concurrent (flowtrail)", "flows written", "internal elapsed s", "others' load"]
    table2 = md_table(hdr2, t2) if t2 else ""
    if t2:
        print(f"## flowtrail replay -w 1{' '.join([''] + b.flows_only)} vs concurrent flows (synthetic)\n\n" + table2 + "\n", flush=True)

    args.flows_only = " ".join(b.flows_only)
    table3 = mixed_table(b, ft, args.mixed, runs, args.skip_peers) if args.mixed else ""
    write_results(args, ft, http, file_packets, file_bytes, nproc, table1, table2, peer_notes,
                  time.time() - started)
    with open(args.results, "a") as f:
        if table3:
            f.write("\n## Full L7 replay on a mixed capture from real servers\n\n"
                    "`bench/make_mixed_capture.sh`: the HTTP/1, HTTP/2, gRPC, TLS, DNS, Redis, MySQL, "
                    "PostgreSQL and MQTT captures of pcaps/ (real servers in namespaces), aligned and "
                    "repeated 60 s apart. Every decoder on.\n\n" + table3 + "\n")
        if args.nat and os.path.exists(args.nat):
            f.write("\n## NAT path correlation (`bench/nat.sh`)\n\n"
                    "Synthetic TCP flows seen at two capture points (every flow has one partner); "
                    "`flowtrail correlate` over the two runs' Parquet.\n\n" + open(args.nat).read() + "\n")
    return 0


def mixed_table(b, ft, path, runs, skip_peers):
    """flowtrail with every decoder, ndpiReader and tshark on the mixed capture."""
    path = os.path.abspath(path)
    ref = json.loads(subprocess.run([ft, "floor", path], capture_output=True, text=True, check=True)
                     .stdout.strip().splitlines()[-1])
    n = ref["packets"]
    rows = []
    best, s, flows = flowtrail_replay(b, ft, path, 1, "mixed flowtrail -w 1", runs)
    l7 = ", ".join(f"{k} {v:,}" for k, v in s.get("l7_detected", {}).items() if v)
    rows.append(("flowtrail", "replay -w 1, all decoders", best, f"{s.get('call_rows_written', 0):,} calls; {l7}"))
    if not skip_peers and shutil.which("ndpiReader"):
        best, _ = b.measure("mixed ndpiReader", ["ndpiReader", "-i", path], runs)
        rows.append(("ndpiReader", "flows + DPI", best, ""))
    if not skip_peers and shutil.which("tshark"):
        best, _ = b.measure("mixed tshark", ["tshark", "-n", "-r", path, "-q", "-z", "io,stat,0"], 1)
        rows.append(("tshark", "full dissection (all dissectors)", best, "1 run"))
    hdr = ["tool", "mode", "packets", "seconds", "packets/s", "CPU s", "packets/s per core", "peak RSS",
           "others' load", "notes"]
    t = [[tool, mode, fmt_int(n), f"{r.wall:.3f}", fmt_rate(n / r.wall), f"{r.cpu:.3f}",
          fmt_rate(n / r.cpu) if r.cpu > 0 else "–", f"{r.maxrss_kb / 1024:.0f} MiB", f"{r.bg:.2f}", note]
         for tool, mode, r, note in rows]
    table = md_table(hdr, t)
    print("\n## mixed L7 capture\n\n" + table + "\n", flush=True)
    return table


def versions(ft):
    def dpkg(p):
        return sh(f"dpkg-query -W -f '${{Version}}' {p} 2>/dev/null") or "not installed"

    return [
        ("flowtrail", sh(f"{ft} --version") + f" (git {sh('git -C ' + os.path.dirname(os.path.abspath(__file__)) + ' rev-parse --short HEAD')}"
                                            + (", uncommitted changes" if sh('git -C ' + os.path.dirname(os.path.abspath(__file__)) + ' status --porcelain --untracked-files=no') else "") + ")"),
        ("rustc", sh("rustc --version")),
        ("ndpiReader", "nDPI " + (re.search(r"nDPI ([\d.]+)", sh("ndpiReader -h 2>&1 | head -3")) or [None, "?"])[1]
         + f" (libndpi-bin {dpkg('libndpi-bin')})"),
        ("tshark", sh("tshark --version 2>/dev/null | head -1")),
        ("argus", f"argus-server {dpkg('argus-server')}, argus-client {dpkg('argus-client')}"),
        ("tcpdump", sh("tcpdump --version 2>&1 | head -1") + ", " + sh("tcpdump --version 2>&1 | sed -n 2p")),
        ("nginx", sh("nginx -v 2>&1").replace("nginx version: ", "")),
        ("wrk", sh("wrk -v 2>&1 | head -1 | cut -d' ' -f1-2")),
    ]


def write_results(args, ft, http, file_packets, file_bytes, nproc, table1, table2, peer_notes, took):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for ln in f:
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = ""
    if args.http_meta and os.path.exists(args.http_meta):
        meta = open(args.http_meta).read().strip()
    lines = [
        "# flowtrail benchmark results",
        "",
        f"Generated by `bench/run.sh` on {now} (the run took {took / 60:.1f} min). "
        "See `bench/README.md` for what each row measures.",
        "",
        "## Machine",
        "",
        f"- CPU: {cpu}, nproc = {nproc}; {mem_gib:.0f} GiB RAM; kernel {platform.release()}",
        f"- Best of {args.runs} runs after one warm-up run (page cache warm); tshark: 1 run.",
        "- \"others' load\" = cores kept busy by *other* processes during the best run "
        "(from /proc/stat minus the tool's own CPU time). The machine is shared; rows with a "
        "high value are slowed by contention.",
        "",
        "## Versions",
        "",
    ]
    lines += [f"- {name}: {v}" for name, v in versions(ft)]
    lines += [
        "",
        "## HTTP capture: real nginx ↔ wrk traffic",
        "",
        f"`{os.path.relpath(http, os.path.dirname(os.path.abspath(__file__)))}`: {file_packets:,} packets, "
        f"{file_bytes:,} bytes of original (wire) length; Gbit/s = those bytes × 8 / seconds for every row. "
        "packets/s per core = packets / CPU s (user + sys of the process and its threads), i.e. packets/s "
        "divided by the cores it actually kept busy (\"cores used\" = CPU s / seconds).",
        "",
        table1,
        "",
    ]
    if peer_notes:
        lines += ["Peers that did not run: " + "; ".join(peer_notes), ""]
    if meta:
        lines += ["How the capture was made (bench/data/http-1m.txt):", "", "```", meta, "```", ""]
    lines += [
        "What each peer does (all read the same file from the page cache, all do flow-level accounting):",
        "",
        "- **flowtrail replay**: dissects L2–L4 (tunnels, IP defragmentation), keeps bidirectional flows "
        "with TCP analysis (handshake RTT, retransmissions, close type, Wireshark's rules), writes one "
        "zstd Parquet record per flow. `-w 1` runs the flow table on the reader thread; `-w 2` hashes "
        "flows to 2 worker shards plus the reader thread.",
        "- **flowtrail floor**: only reads the file and iterates packets (`--dissect`: plus L2–L4 "
        "dissection); no flow table, no output. The lower bound for replay.",
        "- **ndpiReader** (nDPI's demo reader): flow table plus deep packet inspection of the first "
        "packets of each flow (protocol detection, risks); prints a summary. It does not split a flow "
        "when a 5-tuple is reused after FIN, so it reports fewer flows. nDPI 4.2's reader skips frames "
        "whose captured length is shorter than the wire length, i.e. the snapped (-s 256) full-size "
        "segments of this capture, so it analyses roughly half the packets.",
        "- **argus** (`-r FILE -w FILE`): bidirectional flow records (argus's own binary format), like "
        "flowtrail's; counted with `ra`. argus waits for its 1-second timer before it exits, so its wall "
        "time is at least 1 s; its CPU s is the fairer number.",
        "- **tshark** (`-n -q -z conv,tcp`): full Wireshark dissection of every frame (all layers, TCP "
        "analysis, HTTP) to build the TCP conversation table; the reference for correctness, not speed. "
        "Conversations split on port reuse like flowtrail's flows.",
        "",
    ]
    if table2:
        lines += [
            f"## flowtrail replay -w 1 {args.flows_only} vs concurrent flows (synthetic)",
            "",
            args.synth_note,
            "",
            table2,
            "",
            "ns/packet = seconds / packets (whole process, including start-up and writing one Parquet "
            "record per flow); CPU ns/packet = CPU s (all threads, incl. the Parquet writer) / packets. "
            "\"floor --dissect ns/packet\" reads and dissects the same file without a "
            "flow table; the difference is the flow table plus the output. Peak RSS is the maximum "
            "resident set of the replay process (getrusage ru_maxrss).",
            "",
        ]
    with open(args.results, "w") as f:
        f.write("\n".join(lines))
    log(f"wrote {args.results}")


if __name__ == "__main__":
    sys.exit(main())
