#!/usr/bin/env bash
# Story capture sets for pcaps/story/ (see pcaps/story/README.md).
#
# Each set stages one incident an analyst has to explain with flowtrail's
# commands (calls, top, diagnose, path, report), with real programs (curl,
# nginx with limit_req, a python socket server that resets, a user-space
# lossy/jittery link) in Linux network namespaces, recorded by tcpdump:
#
#   story_503      client -> nginx proxy (X-Request-ID) -> b1, b2 (b2 rate
#                  limited: intermittent 503); client.pcap + backend.pcap
#   story_surge    one nginx, 3 steady clients, then after a pause a new
#                  SDK release hammering /api/cart/sync; server.pcap
#   story_timeout  one client (curl --max-time 1.5), two third parties:
#                  "lossy" behind a 10% loss, 20-80 ms jitter link (both
#                  directions), "resetting" resets every other connection;
#                  client.pcap
#
# Each set becomes pcaps/story/<set>/: one <point>.pcap per capture point,
# the programs' own logs, and facts.tsv, which tools/story_facts.py makes
# from those logs (and, for story_surge, the pcap timestamps) and then checks
# against the pcaps with tshark.
#
# Usage (as root):  pcaps/make_story_pcaps.sh [--only SET[,SET...]]
#   sets: story_503 story_surge story_timeout
#   FTP_PFX=fst- sets the namespace prefix (default ftp-), so several capture
#   makers can run at once; STORY_KEEP=1 keeps the temp dir of a failed run.
#   story_timeout's link, for experiments (the committed set uses the
#   defaults): STORY_LOSS=0.10 STORY_JITTER=20-80 (ms) STORY_MAXTIME=1.5 (s)
#   STORY_SEEDS="1 2 3" (tried in turn until a run has a client timeout and
#   a retransmission at the lossy server).
# Only the directories of the sets made are replaced; nothing else in pcaps/
# is touched.  On any exit (trap EXIT) the servers and clients are killed,
# the namespaces deleted and the temp dir removed.  A full run takes about
# a minute, 3 at most (every client loop is bounded in count and time).
#
# Stand-alone, like make_nat_pcaps.sh and for the same reason: a set is a
# directory of captures plus evidence, which make_pcaps.sh's flat --only
# list, MANIFEST rows and publish step do not handle.  The helpers follow
# make_nat_pcaps.sh's (same names, same behaviour).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE/story
PFX=${FTP_PFX:-ftp-}
PY=/usr/bin/python3
NETKIT="$HERE/tools/netkit.py"
IMPAIR="$HERE/tools/impair.py"
RESETD="$HERE/tools/reset_server.py"
FACTS="$HERE/tools/story_facts.py"
SETS=(story_503 story_surge story_timeout)

die() { echo "make_story_pcaps: $*" >&2; exit 1; }
log() { printf '\n=== %s\n' "$*"; }

ONLY=()
while [ $# -gt 0 ]; do
    case $1 in
        --only) [ $# -ge 2 ] || die "--only needs a list of sets"
                IFS=, read -ra names <<<"$2"; shift 2
                for n in "${names[@]}"; do
                    n=${n%/}; n=${n#story/}
                    [ -z "$n" ] && continue
                    [[ " ${SETS[*]} " == *" $n "* ]] || die "--only: unknown set $n (known: ${SETS[*]})"
                    ONLY+=("$n")
                done
                [ ${#ONLY[@]} -gt 0 ] || die "--only: empty list" ;;
        --only=*) set -- --only "${1#--only=}" "${@:2}" ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

want() {         # want SET: does this run make this set?
    local n
    [ ${#ONLY[@]} -eq 0 ] && return 0
    for n in "${ONLY[@]}"; do [ "$1" = "$n" ] && return 0; done
    return 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, tcpdump)"
missing=()
for t in ip tcpdump tshark capinfos nginx curl ss "$PY"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]}"
exec 9<"$0"      # one run at a time
flock -n 9 || die "another make_story_pcaps.sh is running"

WORK=$(mktemp -d /tmp/ftp-storypcaps.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/out" "$WORK/log" "$WORK/www"
PIDS=()          # background processes (servers, relays, client loops)
CAPS=()          # running captures: PID:LOGFILE

KEEP_WORK=${STORY_KEEP:-}
# shellcheck source=lib_sets.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_sets.sh"
trap on_exit EXIT
trap 'exit 130' INT TERM

teardown         # leftovers of an interrupted earlier run


# nginx_run NS NAME: nginx in NS with the server blocks read from stdin; logs
# in $WORK/nginx-NAME/ (access_log formats "proxy", "backend", "server").
nginx_run() {
    local ns=$1 d="$WORK/nginx-$2"
    rm -rf "$d"; mkdir -p "$d"
    {
        cat <<EOF
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 128; }
http {
  log_format proxy '\$remote_addr \$remote_port \$request_id \$request_uri \$status \$upstream_addr \$upstream_status \$msec \$request_time';
  log_format backend '\$remote_addr \$remote_port \$http_x_request_id \$request_uri \$status \$msec';
  log_format server '\$remote_addr \$remote_port \$request_uri \$status "\$http_x_sdk_version" "\$http_user_agent" \$msec';
  access_log $d/access.log backend;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  default_type application/json;
  keepalive_timeout 30s;
EOF
        cat
        echo '}'
    } >"$d/nginx.conf"
    bg "$ns" "nginx-$2" nginx -e "$d/error.log" -c "$d/nginx.conf"
}

# loops_wait NAME PID...: wait for client loops (each bounded by curl
# --max-time and its count); a loop still running after 60 s is killed.
loops_wait() {
    local name=$1 p i; shift
    for i in $(seq 600); do
        for p in "$@"; do kill -0 "$p" 2>/dev/null && break; p=""; done
        [ -z "$p" ] && break
        sleep 0.1
    done
    for p in "$@"; do
        if kill -0 "$p" 2>/dev/null; then kill_pid "$p"; die "$name: a client loop ran over 60 s"; fi
        wait "$p" || die "$name: a client loop failed (pid $p)"
    done
}

facts() {        # facts MODE ARGS...: make facts.tsv from the evidence, check it against the pcaps
    "$PY" "$FACTS" make "$1" "$WORK/out/$SET" "${@:2}"
    "$PY" "$FACTS" check "$1" "$WORK/out/$SET"
}

MADE=()
set_end() {
    chmod 644 "$WORK/out/$SET"/*
    MADE+=("$SET")
    teardown
}

# ============================================================ the sets =====

# ------------------------------------------------------------- story_503 --
# fst-c 10.99.80.10 --veth-- eth0 10.99.80.1 [fst-gw: nginx proxy] br0 10.99.81.1 --+-- fst-b1 10.99.81.21
#                            (client.pcap)                        (backend.pcap)   +-- fst-b2 10.99.81.22
if want story_503; then
set_begin story_503
ns_new ${PFX}c; ns_new ${PFX}gw; ns_new ${PFX}b1; ns_new ${PFX}b2
veth ${PFX}c eth0 "$(mac 80 10)" ${PFX}gw eth0 "$(mac 80 01)"
ip -n ${PFX}gw link add br0 address "$(mac 81 01)" type bridge mcast_snooping 0
nsx ${PFX}gw "$PY" "$NETKIT" offload br0 2>/dev/null || true
for b in 1 2; do
    veth ${PFX}b$b eth0 "$(mac 81 2$b)" ${PFX}gw p$b "$(mac 81 a$b)"
    ip -n ${PFX}gw link set p$b master br0
    ip -n ${PFX}b$b addr add "10.99.81.2$b/24" dev eth0
done
ip -n ${PFX}gw link set br0 up
ip -n ${PFX}c addr add 10.99.80.10/24 dev eth0
ip -n ${PFX}gw addr add 10.99.80.1/24 dev eth0
ip -n ${PFX}gw addr add 10.99.81.1/24 dev br0

printf 'b1 ok\n' >"$WORK/www/b1.txt"
printf 'b2 ok\n' >"$WORK/www/b2.txt"
chmod 644 "$WORK"/www/*
# b1: answers every request 200.  b2: the same, behind limit_req at 10 r/s
# with no burst: a request less than 100 ms after the last one it let
# through gets 503 (limit_req_status default).  try_files (not return,
# which runs before limit_req's preaccess phase) serves a static file for
# any URI.
nginx_run ${PFX}b1 b1 <<EOF
  server {
    listen 10.99.81.21:80;
    root $WORK/www;
    location / { try_files /b1.txt =404; }
  }
EOF
nginx_run ${PFX}b2 b2 <<EOF
  limit_req_zone \$server_name zone=b2:1m rate=10r/s;
  server {
    listen 10.99.81.22:80;
    server_name b2.story.test;
    root $WORK/www;
    location / {
      limit_req zone=b2;
      try_files /b2.txt =404;
    }
  }
EOF
nginx_run ${PFX}gw proxy <<EOF
  upstream backends { server 10.99.81.21:80; server 10.99.81.22:80; keepalive 8; }
  server {
    listen 10.99.80.1:80;
    access_log $WORK/nginx-proxy/access.log proxy;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Request-ID \$request_id;
      add_header X-Request-ID \$request_id always;
    }
  }
EOF
wait_listen ${PFX}b1 tcp 10.99.81.21:80
wait_listen ${PFX}b2 tcp 10.99.81.22:80
wait_listen ${PFX}gw tcp 10.99.80.1:80
cap_start ${PFX}gw eth0 client
cap_start ${PFX}gw br0 backend
# 6 client loops at once, 10 requests each, 0.1 s apart, a new connection
# per request (curl --max-time 5 each: a loop ends within 60 s whatever happens)
loop503() {
    local k=$1 i rc
    for i in $(seq 10); do
        rc=0
        nsx ${PFX}c curl -sS --max-time 5 -o /dev/null \
            -w "%{http_code} %{local_port} %header{x-request-id} %{url_effective}\n" \
            "http://10.99.80.1/api/orders/$k-$i" || rc=$?
        [ $rc -eq 0 ] || echo "curl exit $rc /api/orders/$k-$i"
        sleep 0.1
    done
}
lp=()
for k in 1 2 3 4 5 6; do loop503 $k >"$WORK/log/curl-503-$k.log" 2>&1 & lp+=($!); done
PIDS+=("${lp[@]}")
loops_wait story_503 "${lp[@]}"
caps_stop
cat "$WORK"/log/curl-503-*.log >"$WORK/out/$SET/curl.log"
grep -q '^curl exit' "$WORK/out/$SET/curl.log" && die "story_503: a curl failed: $(grep '^curl exit' "$WORK/out/$SET/curl.log" | head -1)"
cp "$WORK/nginx-proxy/access.log" "$WORK/out/$SET/proxy.access.log"
cp "$WORK/nginx-b1/access.log" "$WORK/out/$SET/b1.access.log"
cp "$WORK/nginx-b2/access.log" "$WORK/out/$SET/b2.access.log"
grep 'limiting requests' "$WORK/nginx-b2/error.log" >"$WORK/out/$SET/b2.error.log" || true
printf '  curl: %s x 200, %s x 503\n' "$(grep -c '^200 ' "$WORK/out/$SET/curl.log" || true)" \
    "$(grep -c '^503 ' "$WORK/out/$SET/curl.log" || true)"
expect_n client 'tcp.flags.syn==1 && tcp.flags.ack==0' 60
expect_n client 'http.request' 60
expect_n client 'http.response && http.response.line contains "X-Request-ID: "' 60
expect client 'http.response.code==503' 1
expect client 'http.response.code==200' 1
expect_n backend 'http.request && http.request.line contains "X-Request-ID: "' 60
expect_n backend 'http.response.code==503 && ip.src==10.99.81.21' 0
expect backend 'http.response.code==503 && ip.src==10.99.81.22' 1
expect backend 'http.response.code==200 && ip.src==10.99.81.22' 1
expect backend 'http.response.code==200 && ip.src==10.99.81.21' 25
facts s503 --server 10.99.80.1:80 --n 60
set_end
fi

# ----------------------------------------------------------- story_surge --
# fst-c 10.99.84.11/.12/.13 (steady clients, SDK 1.4.2), .15 (SDK 1.5.0)
#   --veth-- fst-s 10.99.84.20 (nginx; server.pcap on its eth0)
if want story_surge; then
set_begin story_surge
ns_new ${PFX}c; ns_new ${PFX}s
veth ${PFX}c eth0 "$(mac 84 10)" ${PFX}s eth0 "$(mac 84 20)"
for h in 11 12 13 15; do ip -n ${PFX}c addr add "10.99.84.$h/24" dev eth0; done
ip -n ${PFX}s addr add 10.99.84.20/24 dev eth0
nginx_run ${PFX}s server <<EOF
  server {
    listen 10.99.84.20:80;
    access_log $WORK/nginx-server/access.log server;
    location = /api/items     { return 200 '{"items":[{"id":1,"name":"mug"},{"id":2,"name":"pen"}]}\n'; }
    location = /api/users     { return 200 '{"user":{"id":7,"name":"ada"}}\n'; }
    location = /api/cart      { return 200 '{"cart":{"lines":2,"total":"12.40"}}\n'; }
    location = /api/cart/sync { return 200 '{"synced":true}\n'; }
  }
EOF
wait_listen ${PFX}s tcp 10.99.84.20:80
RES=(/api/items /api/users /api/cart)
# steady K PHASE: client 10.99.84.1K, 5 requests 0.25 s apart, a new
# connection each, resources in turn (client K starts at resource K).
steady() {
    local k=$1 ph=$2 i r rc
    for i in 0 1 2 3 4; do
        r=${RES[$(( (k + i) % 3 ))]}
        rc=0
        nsx ${PFX}c curl -sS --max-time 5 -o /dev/null --interface "10.99.84.1$k" \
            -A 'shopapp/1.4.2' -H 'X-SDK-Version: 1.4.2' \
            -w "$ph %{http_code} %{local_ip} %{local_port} %{url_effective}\n" "http://10.99.84.20$r" || rc=$?
        [ $rc -eq 0 ] || echo "curl exit $rc $r"
        sleep 0.25
    done
}
# release: the 1.5.0 SDK's sync bug, 80 requests to /api/cart/sync as fast as
# they go: 8 curl runs of 10 requests (keep-alive) one after the other.
release() {
    local _ i urls rc
    for _ in $(seq 8); do
        urls=(); for i in $(seq 10); do urls+=(-o /dev/null "http://10.99.84.20/api/cart/sync"); done
        rc=0
        nsx ${PFX}c curl -sS --max-time 5 --interface 10.99.84.15 \
            -A 'shopapp/1.5.0' -H 'X-SDK-Version: 1.5.0' \
            -w "B %{http_code} %{local_ip} %{local_port} %{url_effective}\n" "${urls[@]}" || rc=$?
        [ $rc -eq 0 ] || echo "curl exit $rc /api/cart/sync"
    done
}
marks="$WORK/out/$SET/phases.log"
cap_start ${PFX}s eth0 server
echo "phase_a_start $(date +%s.%6N)" >"$marks"
lp=(); for k in 1 2 3; do steady $k A >"$WORK/log/curl-surge-A$k.log" 2>&1 & lp+=($!); done
PIDS+=("${lp[@]}")
loops_wait story_surge "${lp[@]}"
echo "phase_a_end $(date +%s.%6N)" >>"$marks"
sleep 2.5        # the marked pause: no packet on the link
echo "phase_b_start $(date +%s.%6N)" >>"$marks"
lp=(); for k in 1 2 3; do steady $k B >"$WORK/log/curl-surge-B$k.log" 2>&1 & lp+=($!); done
sleep 0.3
release >"$WORK/log/curl-surge-release.log" 2>&1 & lp+=($!)
PIDS+=("${lp[@]}")
loops_wait story_surge "${lp[@]}"
echo "phase_b_end $(date +%s.%6N)" >>"$marks"
caps_stop
cat "$WORK"/log/curl-surge-*.log >"$WORK/out/$SET/curl.log"
grep -q 'curl exit' "$WORK/out/$SET/curl.log" && die "story_surge: a curl failed"
cp "$WORK/nginx-server/access.log" "$WORK/out/$SET/server.access.log"
expect_n server 'http.request' 110
expect_n server 'http.response.code==200' 110
expect_n server 'http.request && http.request.line contains "X-SDK-Version: 1.5.0"' 80
expect_n server 'http.request && http.request.line contains "X-SDK-Version: 1.4.2"' 30
expect_n server 'http.request.uri=="/api/cart/sync"' 80
expect_n server 'http.request.uri=="/api/cart/sync" && ip.src!=10.99.84.15' 0
expect_n server 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.99.84.15' 8
expect_n server 'tcp.flags.syn==1 && tcp.flags.ack==0' 38
facts surge --server 10.99.84.20:80 --min-pause 2.0
set_end
fi

# --------------------------------------------------------- story_timeout --
# fst-c 10.99.86.10 --veth-- eth0 10.99.86.1 [fst-gw] eth1 10.99.87.1 --veth-- fst-r 10.99.87.20 (resetting)
#  (client.pcap on              eth2 10.99.88.1 --veth-- c0 [fst-sw: impair.py] s0 --veth-- fst-l 10.99.88.20 (lossy, nginx)
#   fst-c eth0)
STORY_LOSS=${STORY_LOSS:-0.10}
STORY_JITTER=${STORY_JITTER:-20-80}
STORY_MAXTIME=${STORY_MAXTIME:-1.5}
if want story_timeout; then
# The loss is random (seeded); if a run shows no client timeout or no
# retransmission, it is repeated with the next seed (at most 3 runs).
read -ra seeds <<<"${STORY_SEEDS:-1 2 3}"
for seed in "${seeds[@]}"; do
set_begin story_timeout
rm -f "$WORK/out/$SET"/*
ns_new ${PFX}c; ns_new ${PFX}gw; ns_new ${PFX}r; ns_new ${PFX}l; ns_new ${PFX}sw
veth ${PFX}c eth0 "$(mac 86 10)" ${PFX}gw eth0 "$(mac 86 01)"
veth ${PFX}gw eth1 "$(mac 87 01)" ${PFX}r eth0 "$(mac 87 20)"
veth ${PFX}gw eth2 "$(mac 88 01)" ${PFX}sw c0 "$(mac 88 c0)"
veth ${PFX}l eth0 "$(mac 88 20)" ${PFX}sw s0 "$(mac 88 50)"
ip -n ${PFX}sw link set c0 promisc on
ip -n ${PFX}sw link set s0 promisc on
ip -n ${PFX}c addr add 10.99.86.10/24 dev eth0
ip -n ${PFX}c route add default via 10.99.86.1
ip -n ${PFX}gw addr add 10.99.86.1/24 dev eth0
ip -n ${PFX}gw addr add 10.99.87.1/24 dev eth1
ip -n ${PFX}gw addr add 10.99.88.1/24 dev eth2
nsx ${PFX}gw sysctl -qw net.ipv4.ip_forward=1
ip -n ${PFX}r addr add 10.99.87.20/24 dev eth0
ip -n ${PFX}r route add default via 10.99.87.1
ip -n ${PFX}l addr add 10.99.88.20/24 dev eth0
ip -n ${PFX}l route add default via 10.99.88.1

"$PY" -c 'import json,sys; q=[{"sku":"SKU-%04d"%i,"price":round(1+i*0.37,2),"currency":"EUR","stock":i*7%50} for i in range(80)]; sys.stdout.write(json.dumps({"quotes":q})+"\n")' \
    >"$WORK/www/quote.json"
chmod 644 "$WORK/www/quote.json"
nginx_run ${PFX}l lossy <<EOF
  server {
    listen 10.99.88.20:80;
    access_log $WORK/nginx-lossy/access.log backend;
    root $WORK/www;
    location = /v1/quote { try_files /quote.json =404; }
  }
EOF
bg ${PFX}r resetting "$PY" "$RESETD" --bind 10.99.87.20 --port 80 --every 2 --timeout 90
RESETD_PID=${PIDS[-1]}
bg ${PFX}sw impair "$PY" "$IMPAIR" --a c0 --b s0 --loss "$STORY_LOSS" --jitter "$STORY_JITTER" \
    --seed "$seed" --timeout 90 --ready "$WORK/impair.ready"
IMPAIR_PID=${PIDS[-1]}
wait_file "$WORK/impair.ready" ready
rm -f "$WORK/impair.ready"
wait_listen ${PFX}l tcp 10.99.88.20:80
wait_listen ${PFX}r tcp 10.99.87.20:80
cap_start ${PFX}c eth0 client
# to_server NAME URL: 20 requests, one after the other (0.1 s apart), a new
# connection each, curl --max-time $STORY_MAXTIME (1.5 s): one line per request (curl -w)
to_server() {
    local name=$1 url=$2 i
    for i in $(seq 20); do
        nsx ${PFX}c curl -sS --max-time "$STORY_MAXTIME" -o /dev/null \
            -w "$name $i %{local_port} %{exitcode} %{http_code} %{time_connect} %{time_total} %{errormsg}\n" \
            "$url" 2>/dev/null || true
        sleep 0.1
    done
}
lp=()
to_server lossy http://10.99.88.20/v1/quote >"$WORK/log/curl-lossy.log" 2>&1 & lp+=($!)
to_server resetting http://10.99.87.20/v1/charge >"$WORK/log/curl-resetting.log" 2>&1 & lp+=($!)
PIDS+=("${lp[@]}")
loops_wait story_timeout "${lp[@]}"
caps_stop
kill_pid "$IMPAIR_PID" INT
kill_pid "$RESETD_PID" INT
cat "$WORK/log/curl-lossy.log" "$WORK/log/curl-resetting.log" >"$WORK/out/$SET/curl.log"
grep -E '^(impair|drop|a>b|b>a)' "$WORK/log/impair.log" >"$WORK/out/$SET/impair.log" || true
grep -E '^(listening|conn|done)' "$WORK/log/resetting.log" >"$WORK/out/$SET/resetting.log" || true
cp "$WORK/nginx-lossy/access.log" "$WORK/out/$SET/lossy.access.log"
echo "  impair (seed $seed): $(grep -E '^(a>b|b>a)' "$WORK/out/$SET/impair.log" | tr '\n' ';')"
n_to=$(grep -c '^lossy [0-9]* [0-9]* 28 ' "$WORK/out/$SET/curl.log" || true)
n_rx=$(count client 'ip.addr==10.99.88.20 && tcp.analysis.retransmission')
echo "  lossy: $n_to timed out, $n_rx retransmissions"
teardown
if [ "$n_to" -ge 1 ] && [ "$n_rx" -ge 1 ]; then break; fi
[ "$seed" != "${seeds[-1]}" ] || die "story_timeout: no timeout or no retransmission at the lossy server with seeds ${seeds[*]}"
echo "no timeout/retransmission with seed $seed, again"
done
expect_n client 'ip.addr==10.99.87.20 && tcp.flags.syn==1 && tcp.flags.ack==0' 20
expect_n client 'ip.src==10.99.87.20 && tcp.flags.reset==1' 10
expect_n client 'ip.src==10.99.87.20 && http.response.code==200' 10
expect_n client 'ip.addr==10.99.87.20 && tcp.analysis.retransmission' 0
expect client 'ip.addr==10.99.88.20 && tcp.flags.syn==1 && tcp.flags.ack==0' 20
expect client 'ip.addr==10.99.88.20 && tcp.analysis.retransmission' 1
expect client 'ip.src==10.99.88.20 && http.response.code==200' 1
expect_n client 'ip.src==10.99.88.20 && tcp.flags.reset==1' 0
facts timeout --server lossy=10.99.88.20:80 --server resetting=10.99.87.20:80 --slow 1.0
MADE+=("$SET")
chmod 644 "$WORK/out/$SET"/*
fi

# ========================================================== publish ========
log "publish"
[ ${#MADE[@]} -gt 0 ] || die "no set was made"
mkdir -p "$OUT"
for s in "${MADE[@]}"; do
    rm -rf "${OUT:?}/$s"
    mv "$WORK/out/$s" "$OUT/$s"
    chmod 755 "$OUT/$s"
    printf '  %-14s %s\n' "$s" "$(cd "$OUT/$s" && for f in *.pcap; do printf '%s=%s pkts ' "$f" "$(capinfos -M -c -T -r "$f" | cut -f2)"; done)$(du -sh "$OUT/$s" | cut -f1)"
done
echo "make_story_pcaps: OK (${MADE[*]})"
