#!/usr/bin/env bash
# Build the benchmark's large REAL capture: bench/data/http-1m.pcap.
#
# nginx in namespace ftb-s serves a small page and a few larger files;
# two wrk instances in namespace ftb-c load it over a veth pair, one with
# keep-alive and one with `Connection: close` (a new TCP connection per
# request, so tens of thousands of flows); tcpdump on the client's veth
# (-s 256: headers plus the start of each payload) stops by itself after
# 1,100,000 packets (-c). Offloads (TSO/GSO/GRO, checksum) are turned off on
# both veth ends, so the capture holds wire-sized frames.
#
# Usage (as root):  bench/make_http_capture.sh [--force]
# Idempotent: does nothing when the file exists, unless --force.
# Bounded: each wrk round lasts 8 s, at most 12 rounds, whole run < 2 min.
# Nothing leaves the namespaces this script creates; they, the servers and
# the capture are removed on any exit (trap EXIT).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DATA=$HERE/data
OUT=$DATA/http-1m.pcap
META=$DATA/http-1m.txt
NETKIT=$ROOT/pcaps/tools/netkit.py
PFX=ftb-
COUNT=1100000          # tcpdump -c
MIN_PACKETS=1000000    # fail below this
SNAPLEN=256
ROUND_SECS=8
MAX_ROUNDS=12
CONNS=32               # per wrk instance

die() { echo "make_http_capture: $*" >&2; exit 1; }
log() { echo "make_http_capture: $*" >&2; }

force=0
for a in "$@"; do
    case "$a" in
        --force) force=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown option $a" ;;
    esac
done
if [ -s "$OUT" ] && [ $force = 0 ]; then
    log "$OUT exists (use --force to rebuild)"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, tcpdump)"
for t in ip nginx wrk tcpdump capinfos python3 ss; do
    command -v "$t" >/dev/null 2>&1 || die "missing $t (run scripts/setup.sh --bench)"
done
[ -f "$NETKIT" ] || die "missing $NETKIT (turns veth offloads off)"

mkdir -p "$DATA"
WORK=$(mktemp -d /tmp/ftb-http.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/www" "$WORK/log" "$WORK/tmp"
PIDS=()
CAP_PID=""
TMP_OUT=$DATA/.http-1m.pcap.partial

kill_pid() {     # TERM, wait up to 3 s, then KILL
    local p=$1 i
    kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PFX}" || true; }

teardown() {
    local p ns
    [ -n "$CAP_PID" ] && kill_pid "$CAP_PID"
    CAP_PID=""
    for p in "${PIDS[@]}"; do kill_pid "$p"; done
    PIDS=()
    for ns in $(our_netns); do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

on_exit() {
    local rc=$?
    set +e
    if [ $rc -ne 0 ]; then
        echo "make_http_capture: FAILED (exit $rc); logs:" >&2
        for f in "$WORK"/log/*; do
            [ -s "$f" ] || continue
            echo "--- $f" >&2; tail -n 15 "$f" >&2
        done
    fi
    teardown
    rm -f "$TMP_OUT"
    rm -rf "$WORK"
    exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM

teardown   # leftovers of an interrupted earlier run

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ------------------------------------------------------------- network ----
for ns in ${PFX}c ${PFX}s; do
    ip netns add "$ns"
    nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
done
ip -n ${PFX}c link add eth0 address 02:77:00:00:00:10 type veth peer name eth0 address 02:77:00:00:00:20 netns ${PFX}s
nsx ${PFX}c python3 "$NETKIT" offload eth0
nsx ${PFX}s python3 "$NETKIT" offload eth0
ip -n ${PFX}c addr add 10.77.0.10/24 dev eth0
ip -n ${PFX}s addr add 10.77.0.20/24 dev eth0
ip -n ${PFX}c link set eth0 up
ip -n ${PFX}s link set eth0 up
# Many short connections: a wide ephemeral range on the client, deep
# accept queues on the server (nginx closes first, so TIME_WAIT is there).
nsx ${PFX}c sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
nsx ${PFX}s sysctl -qw net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192

# -------------------------------------------------------------- server ----
# The small page (~600 bytes, like nginx's default index.html) and a few sizes.
python3 - "$WORK/www" <<'EOF'
import sys, os
d = sys.argv[1]
page = ("<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to flowtrail bench</title>\n"
        "<style>html { color-scheme: light dark; } body { width: 35em; margin: 0 auto;\n"
        "font-family: Tahoma, Verdana, Arial, sans-serif; }</style>\n</head>\n<body>\n"
        "<h1>Welcome!</h1>\n<p>If you see this page, the web server is successfully installed and\n"
        "working. Further configuration is required.</p>\n\n<p>For online documentation and support please refer to\n"
        "<a href=\"http://nginx.org/\">nginx.org</a>.<br/>\n</p>\n\n<p><em>Thank you.</em></p>\n</body>\n</html>\n")
open(os.path.join(d, "index.html"), "w").write(page)
for name, size in (("2k.html", 2048), ("8k.html", 8192), ("32k.html", 32768)):
    line = "lorem ipsum dolor sit amet, consectetur adipiscing elit\n"
    open(os.path.join(d, name), "w").write((line * (size // len(line) + 1))[:size])
EOF
cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/log/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    default_type text/html;
    keepalive_requests 100000;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen 10.77.0.20:80 backlog=8192 reuseport;
        root $WORK/www;
    }
}
EOF
nsx ${PFX}s nginx -c "$WORK/nginx.conf" >"$WORK/log/nginx.log" 2>&1 &
PIDS+=($!)
for i in $(seq 50); do
    [ -n "$(nsx ${PFX}s ss -Hltn 'sport = :80')" ] && break
    sleep 0.1
done
[ -n "$(nsx ${PFX}s ss -Hltn 'sport = :80')" ] || die "nginx does not listen"
nsx ${PFX}c curl -fsS -o /dev/null http://10.77.0.20/ || die "curl to nginx failed"

# 12 of 16 requests fetch the small page, the rest 2k, 8k and 32k.
cat >"$WORK/mix.lua" <<'EOF'
local paths = { "/", "/", "/", "/", "/", "/", "/2k.html", "/", "/", "/", "/", "/", "/8k.html", "/", "/2k.html", "/32k.html" }
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, paths[(i % #paths) + 1])
end
EOF

# ------------------------------------------------------------- capture ----
rm -f "$TMP_OUT"
nsx ${PFX}c tcpdump -i eth0 -n -s $SNAPLEN -B 131072 -c $COUNT -Z root -w "$TMP_OUT" >"$WORK/log/tcpdump.log" 2>&1 &
CAP_PID=$!
for i in $(seq 50); do grep -q "listening on" "$WORK/log/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$WORK/log/tcpdump.log" || die "tcpdump did not start"
sleep 0.3

started=$(date +%s)
round=0
while kill -0 "$CAP_PID" 2>/dev/null && [ $round -lt $MAX_ROUNDS ]; do
    round=$((round + 1))
    log "round $round: wrk keep-alive -c$CONNS and wrk Connection: close -c$CONNS for ${ROUND_SECS}s"
    nsx ${PFX}c wrk -t1 -c$CONNS -d${ROUND_SECS}s --timeout 5s -s "$WORK/mix.lua" \
        http://10.77.0.20/ >"$WORK/log/wrk-keepalive-$round.log" 2>&1 &
    w1=$!
    nsx ${PFX}c wrk -t1 -c$CONNS -d${ROUND_SECS}s --timeout 5s -s "$WORK/mix.lua" -H 'Connection: close' \
        http://10.77.0.20/ >"$WORK/log/wrk-close-$round.log" 2>&1 &
    w2=$!
    PIDS+=($w1 $w2)
    # A round is short: once tcpdump has its packets, the load ends within
    # ROUND_SECS (and wrk still prints its statistics).
    wait $w1 2>/dev/null || true
    wait $w2 2>/dev/null || true
    PIDS=("${PIDS[@]:0:1}")   # keep nginx only
done
if kill -0 "$CAP_PID" 2>/dev/null; then
    sleep 0.5
    kill -INT "$CAP_PID"
    for i in $(seq 100); do kill -0 "$CAP_PID" 2>/dev/null || break; sleep 0.1; done
fi
wait "$CAP_PID" || true
CAP_PID=""
elapsed=$(( $(date +%s) - started ))

captured=$(capinfos -c -M "$TMP_OUT" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
[ -n "$captured" ] || die "capinfos could not read the capture"
[ "$captured" -ge $MIN_PACKETS ] || die "only $captured packets captured (want >= $MIN_PACKETS)"
mv -f "$TMP_OUT" "$OUT"

{
    echo "# bench/data/http-1m.pcap, made by bench/make_http_capture.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "packets: $captured (tcpdump -s $SNAPLEN -c $COUNT on the client veth), load time ${elapsed}s, $round round(s)"
    echo "tcpdump: $(grep -E 'captured|received|dropped' "$WORK/log/tcpdump.log" | tr '\n' ';')"
    echo "nginx $(nginx -v 2>&1 | sed 's/.*version: //'), worker_processes 1; $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
    for f in "$WORK"/log/wrk-*.log; do
        echo "--- $(basename "$f" .log)"
        grep -E 'requests in|Requests/sec|Socket errors|Non-2xx' "$f" || true
    done
    echo "--- capinfos"
    capinfos -M "$OUT" 2>/dev/null | grep -E 'File size|Number of packets|Data size|Capture duration|Packet size limit|Average packet size' || true
} >"$META"
cat "$META" >&2
log "wrote $OUT"
