#!/usr/bin/env bash
# NAT and proxy capture sets for pcaps/nat/ (see pcaps/nat/README.md).
#
# Each set is one run of real programs (curl, nginx, dig, dnsmasq, socat,
# iptables DNAT/MASQUERADE, conntrack) in Linux network namespaces, captured
# by two tcpdumps at the same time on the two sides of a gateway:
#
#   ftp-c 10.99.N.10 --veth-- eth0 10.99.N.1 [ftp-gw] br0 10.99.M.1 --+-- ftp-b1 10.99.M.21
#                              (client.pcap)         (backend.pcap)  +-- ftp-b2 10.99.M.22
#
# (M = N+1; br0 is a Linux bridge in ftp-gw with one veth port per backend).
# The set vip_proxy has a chain instead, and three capture points:
#
#   ftp-c 10.99.74.10 -- eth0 [ftp-gw] eth1 -- eth0 10.99.75.10 [ftp-px] eth1 10.99.76.1 -- ftp-b1 10.99.76.21
#       (client.pcap)   DNAT+MASQUERADE       (proxy_in.pcap)   nginx   (backend.pcap)
#
# Each set becomes pcaps/nat/<set>/ holding client.pcap, backend.pcap (and
# proxy_in.pcap in vip_proxy), the raw
# evidence (conntrack.log, access logs, socat/dnsmasq logs) and truth.tsv,
# which tools/nat_truth.py makes from that evidence and then checks against
# its pcaps with tshark.
#
# Usage (as root):  pcaps/make_nat_pcaps.sh [--only SET[,SET...]]
#   sets: dnat_vip dnat_only proxy_reqid proxy_noid proxy_404 dns_vip socat_relay vip_proxy midstream
#   FTP_PFX=fnat- sets the namespace prefix (default ftp-), so several
#   capture makers can run at once; NAT_KEEP=1 keeps the temp dir of a failed run.
# Only the directories of the sets made are replaced; nothing else in pcaps/
# is touched.  On any exit (trap EXIT) the servers are killed, the namespaces
# deleted and the temp dir removed.
#
# Stand-alone rather than sourced by make_pcaps.sh: that script's --only list,
# record and publish steps work on flat file names in pcaps/ (its MANIFEST
# rows and the tests that enumerate pcaps/*.pcap), while a NAT set is a
# directory of several captures plus evidence.  The helpers below follow
# make_pcaps.sh's (same names, same behaviour).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE/nat
PFX=${FTP_PFX:-ftp-}
PY=/usr/bin/python3
NETKIT="$HERE/tools/netkit.py"
TRUTH="$HERE/tools/nat_truth.py"
SETS=(dnat_vip dnat_only proxy_reqid proxy_noid proxy_404 dns_vip socat_relay vip_proxy midstream)

die() { echo "make_nat_pcaps: $*" >&2; exit 1; }
log() { printf '\n=== %s\n' "$*"; }

ONLY=()
while [ $# -gt 0 ]; do
    case $1 in
        --only) [ $# -ge 2 ] || die "--only needs a list of sets"
                IFS=, read -ra names <<<"$2"; shift 2
                for n in "${names[@]}"; do
                    n=${n%/}; n=${n#nat/}
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

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, tcpdump, iptables)"
# conntrack (package conntrack) is the only tool here that make_pcaps.sh does not need
if ! command -v conntrack >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends conntrack >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends conntrack >/dev/null; } ||
        die "cannot install conntrack"
fi
missing=()
for t in ip iptables conntrack tcpdump tshark nginx dnsmasq dig curl socat ss "$PY"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]}"
exec 9<"$0"      # one run at a time
flock -n 9 || die "another make_nat_pcaps.sh is running"

WORK=$(mktemp -d /tmp/ftp-natpcaps.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/out" "$WORK/log" "$WORK/empty"
PIDS=()          # background processes (servers, conntrack -E)
CAPS=()          # running captures: PID:LOGFILE

KEEP_WORK=${NAT_KEEP:-}
# shellcheck source=lib_sets.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_sets.sh"
trap on_exit EXIT
trap 'exit 130' INT TERM

teardown         # leftovers of an interrupted earlier run

# gateway N: the topology of the header, client net 10.99.N.0/24, backend
# net 10.99.(N+1).0/24; ftp-gw forwards, ftp-c and the backends route via it.
gateway() {
    local n=$1 m=$(($1 + 1)) b h
    ns_new ${PFX}c; ns_new ${PFX}gw; ns_new ${PFX}b1; ns_new ${PFX}b2
    veth ${PFX}c eth0 "$(mac "$n" 10)" ${PFX}gw eth0 "$(mac "$n" 01)"
    ip -n ${PFX}gw link add br0 address "$(mac "$m" 01)" type bridge mcast_snooping 0   # no IGMP (MRD) of its own
    nsx ${PFX}gw "$PY" "$NETKIT" offload br0 2>/dev/null || true
    for b in 1 2; do
        h=2$b
        veth ${PFX}b$b eth0 "$(mac "$m" "$h")" ${PFX}gw p$b "$(mac "$m" "a$b")"
        ip -n ${PFX}gw link set p$b master br0
        ip -n ${PFX}b$b addr add "10.99.$m.$h/24" dev eth0
        ip -n ${PFX}b$b route add default via "10.99.$m.1"
    done
    ip -n ${PFX}gw link set br0 up
    ip -n ${PFX}c addr add "10.99.$n.10/24" dev eth0
    ip -n ${PFX}c route add default via "10.99.$n.1"
    ip -n ${PFX}gw addr add "10.99.$n.1/24" dev eth0
    ip -n ${PFX}gw addr add "10.99.$m.1/24" dev br0
    nsx ${PFX}gw sysctl -qw net.ipv4.ip_forward=1
    # br_netfilter (loaded on this host) would run iptables/conntrack on the
    # bridge ports, before br0's capture tap: backend.pcap would then show
    # replies already half un-NATed.  Off in ftp-gw: NAT happens at the IP
    # layer only, so backend.pcap is what the backends send and receive.
    if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
        nsx ${PFX}gw sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
            net.bridge.bridge-nf-call-arptables=0
    fi
}


get() {          # get NS URL...: one curl run (one connection, keep-alive), status printed
    local ns=$1 u args=(); shift
    for u in "$@"; do args+=(-o /dev/null "$u"); done
    nsx "$ns" curl -sS --max-time 10 -w '%{http_code} %{local_port} %{url_effective}\n' "${args[@]}"
}

# nginx_run NS NAME: nginx in NS with the server blocks read from stdin; logs
# in $WORK/nginx-NAME/ (access.log in the formats "proxy" or "backend").
nginx_run() {
    local ns=$1 d="$WORK/nginx-$2"
    rm -rf "$d"; mkdir -p "$d"
    {
        cat <<EOF
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 64; }
http {
  log_format proxy '\$remote_addr \$remote_port \$request_id \$request_uri \$status \$upstream_addr \$msec';
  log_format backend '\$remote_addr \$remote_port \$http_x_request_id \$request_uri \$status \$msec';
  access_log $d/access.log backend;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  default_type text/plain;
  keepalive_timeout 30s;
EOF
        cat
        echo '}'
    } >"$d/nginx.conf"
    bg "$ns" "nginx-$2" nginx -e "$d/error.log" -c "$d/nginx.conf"
}

# backends M: nginx on ftp-b1 10.99.M.21 and ftp-b2 10.99.M.22 answering any
# path with 200 "bN <uri>".
backends() {
    local m=$1 b
    for b in 1 2; do
        nginx_run ${PFX}b$b b$b <<EOF
  server {
    listen 10.99.$m.2$b:80;
    location / { return 200 "b$b \$request_uri\n"; }
  }
EOF
    done
    wait_listen ${PFX}b1 tcp "10.99.$m.21:80"
    wait_listen ${PFX}b2 tcp "10.99.$m.22:80"
}

# conntrack_start: NEW and DESTROY events of ftp-gw's conntrack table, with
# timestamps and (nf_conntrack_acct) packet/byte counters.  TIME_WAIT and
# UDP timeouts are shortened so the DESTROY events come within seconds.
conntrack_start() {
    nsx ${PFX}gw sysctl -qw net.netfilter.nf_conntrack_acct=1 \
        net.netfilter.nf_conntrack_tcp_timeout_time_wait=1 \
        net.netfilter.nf_conntrack_udp_timeout=2 net.netfilter.nf_conntrack_udp_timeout_stream=2
    ip netns exec ${PFX}gw conntrack -E -e NEW,DESTROY -o timestamp \
        >"$WORK/out/$SET/conntrack.log" 2>"$WORK/log/conntrack-$SET.log" &
    CT_PID=$!
    PIDS+=("$CT_PID")
    sleep 0.3
}

# conntrack_stop N: wait (<= 6 s) for N DESTROY events (expiry after the
# shortened timeouts, when the kernel's conntrack GC gets to them), flush the
# table (DESTROY events for the rest), stop.
conntrack_stop() {
    local i
    for i in $(seq 60); do
        [ "$(grep -c '\[DESTROY\]' "$WORK/out/$SET/conntrack.log" || true)" -ge "$1" ] && break
        sleep 0.1
    done
    nsx ${PFX}gw conntrack -F 2>/dev/null || true
    sleep 0.3
    kill_pid "$CT_PID" INT
    echo "  conntrack.log: $(grep -c '\[NEW\]' "$WORK/out/$SET/conntrack.log" || true) NEW," \
        "$(grep -c '\[DESTROY\]' "$WORK/out/$SET/conntrack.log" || true) DESTROY"
}

truth() {        # truth MODE ARGS...: make truth.tsv from the evidence, check it against the pcaps
    "$PY" "$TRUTH" make "$1" "$WORK/out/$SET" "${@:2}"
    "$PY" "$TRUTH" check "$WORK/out/$SET"
}

MADE=()
set_end() {
    chmod 644 "$WORK/out/$SET"/*
    MADE+=("$SET")
    teardown
}

# ============================================================ the sets =====

if want dnat_vip; then
set_begin dnat_vip
gateway 60
backends 61
# kube-proxy style Service VIP: every 2nd new connection to b1, the rest to
# b2, then masquerade so the backends see the gateway's address.
nsx ${PFX}gw iptables -t nat -A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 \
    -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.99.61.21:80
nsx ${PFX}gw iptables -t nat -A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.99.61.22:80
nsx ${PFX}gw iptables -t nat -A POSTROUTING -o br0 -j MASQUERADE
conntrack_start
cap_start ${PFX}gw eth0 client
cap_start ${PFX}gw br0 backend
for i in $(seq 20); do get ${PFX}c "http://10.96.0.10/r/$i"; done
caps_stop
conntrack_stop 20
cp "$WORK/nginx-b1/access.log" "$WORK/out/$SET/b1.access.log"
cp "$WORK/nginx-b2/access.log" "$WORK/out/$SET/b2.access.log"
expect_n client 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.dst==10.96.0.10' 20
expect_n client 'http.request' 20
expect_n client 'http.response.code==200 && ip.src==10.96.0.10' 20
expect_n client 'ip.addr==10.99.61.0/24' 0
expect_n backend 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.99.61.1 && ip.dst==10.99.61.21' 10
expect_n backend 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.99.61.1 && ip.dst==10.99.61.22' 10
expect_n backend 'http.response.code==200' 20
expect_n backend 'ip.addr==10.99.60.10 || ip.addr==10.96.0.10' 0
truth conntrack --vip 10.96.0.10:80 --n 20
set_end
fi

if want dnat_only; then
set_begin dnat_only
gateway 62
backends 63
nsx ${PFX}gw iptables -t nat -A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 \
    -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.99.63.21:80
nsx ${PFX}gw iptables -t nat -A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.99.63.22:80
conntrack_start
cap_start ${PFX}gw eth0 client
cap_start ${PFX}gw br0 backend
for i in $(seq 10); do get ${PFX}c "http://10.96.0.10/d/$i"; done
caps_stop
conntrack_stop 10
cp "$WORK/nginx-b1/access.log" "$WORK/out/$SET/b1.access.log"
cp "$WORK/nginx-b2/access.log" "$WORK/out/$SET/b2.access.log"
expect_n client 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.dst==10.96.0.10' 10
expect_n client 'http.response.code==200 && ip.src==10.96.0.10' 10
expect_n backend 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.99.62.10 && ip.dst==10.99.63.21' 5
expect_n backend 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.99.62.10 && ip.dst==10.99.63.22' 5
expect_n backend 'http.response.code==200' 10
expect_n backend 'ip.addr==10.96.0.10' 0
truth conntrack --vip 10.96.0.10:80 --n 10
set_end
fi

# proxy_conf N UPSTREAM_BLOCK LOCATIONS: nginx reverse proxy in ftp-gw on 10.99.N.1:80
proxy_conf() {
    nginx_run ${PFX}gw proxy <<EOF
$2
  server {
    listen 10.99.$1.1:80;
    access_log $WORK/nginx-proxy/access.log proxy;
$3
  }
EOF
    wait_listen ${PFX}gw tcp "10.99.$1.1:80"
}

if want proxy_reqid; then
set_begin proxy_reqid
gateway 64
backends 65
proxy_conf 64 "  upstream backends { server 10.99.65.21:80; server 10.99.65.22:80; keepalive 4; }" "
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header X-Request-ID \$request_id;
      add_header X-Request-ID \$request_id always;
    }"
cap_start ${PFX}gw eth0 client
cap_start ${PFX}gw br0 backend
# 4 keep-alive connections, 5 requests each, one after the other
for k in 1 2 3 4; do
    urls=(); for i in 1 2 3 4 5; do urls+=("http://10.99.64.1/p/$k-$i"); done
    get ${PFX}c "${urls[@]}"
done
caps_stop
cp "$WORK/nginx-proxy/access.log" "$WORK/out/$SET/proxy.access.log"
cp "$WORK/nginx-b1/access.log" "$WORK/out/$SET/b1.access.log"
cp "$WORK/nginx-b2/access.log" "$WORK/out/$SET/b2.access.log"
expect_n client 'tcp.flags.syn==1 && tcp.flags.ack==0' 4
expect_n client 'http.request' 20
expect_n client 'http.response.code==200 && http.response.line contains "X-Request-ID: "' 20
expect_n backend 'http.request && http.request.line contains "X-Request-ID: "' 20
expect_n backend 'http.response.code==200' 20
expect backend 'tcp.flags.syn==1 && tcp.flags.ack==0' 2
n=$(count backend 'tcp.flags.syn==1 && tcp.flags.ack==0')
[ "$n" -le 8 ] || die "proxy_reqid: $n upstream connections, keepalive to the upstream does not work"
truth proxy --server 10.99.64.1:80 --join request_id --n 20
set_end
fi

if want proxy_noid; then
set_begin proxy_noid
gateway 66
backends 67
proxy_conf 66 "  upstream backends { server 10.99.67.21:80; server 10.99.67.22:80; keepalive 4; }" "
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }"
cap_start ${PFX}gw eth0 client
cap_start ${PFX}gw br0 backend
# 4 curl processes at once, 5 keep-alive requests each (bounded: --max-time, wait)
cpids=()
for k in 1 2 3 4; do
    urls=(); for i in 1 2 3 4 5; do urls+=("http://10.99.66.1/q/$k-$i"); done
    get ${PFX}c "${urls[@]}" >"$WORK/log/curl-noid-$k.log" 2>&1 &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || die "proxy_noid: a curl failed"; done
cat "$WORK"/log/curl-noid-*.log
caps_stop
cp "$WORK/nginx-proxy/access.log" "$WORK/out/$SET/proxy.access.log"
cp "$WORK/nginx-b1/access.log" "$WORK/out/$SET/b1.access.log"
cp "$WORK/nginx-b2/access.log" "$WORK/out/$SET/b2.access.log"
expect_n client 'tcp.flags.syn==1 && tcp.flags.ack==0' 4
expect_n client 'http.request' 20
expect_n client 'http.response.code==200' 20
expect_n backend 'http.request' 20
expect_n backend 'http.response.code==200' 20
expect_n client 'http contains "X-Request-ID"' 0
expect_n backend 'http contains "X-Request-ID"' 0
truth proxy --server 10.99.66.1:80 --join uri --n 20
set_end
fi

if want proxy_404; then
set_begin proxy_404
gateway 68
# b1 serves /api/ (200); b2 only has an empty docroot, so /api/v2/... is 404
nginx_run ${PFX}b1 b1 <<EOF
  server {
    listen 10.99.69.21:80;
    location /api/ { return 200 "b1 \$request_uri\n"; }
  }
EOF
nginx_run ${PFX}b2 b2 <<EOF
  server {
    listen 10.99.69.22:80;
    root $WORK/empty;
  }
EOF
wait_listen ${PFX}b1 tcp 10.99.69.21:80
wait_listen ${PFX}b2 tcp 10.99.69.22:80
proxy_conf 68 "" "
    proxy_set_header X-Request-ID \$request_id;
    add_header X-Request-ID \$request_id always;
    location /api/ { proxy_pass http://10.99.69.21:80; }
    location /api/v2/ { proxy_pass http://10.99.69.22:80; }"
cap_start ${PFX}gw eth0 client
cap_start ${PFX}gw br0 backend
get ${PFX}c http://10.99.68.1/api/users/1 http://10.99.68.1/api/v2/users/2 http://10.99.68.1/api/orders/3
get ${PFX}c http://10.99.68.1/api/v2/orders/4 http://10.99.68.1/api/items/5 http://10.99.68.1/api/v2/items/6 \
    http://10.99.68.1/api/users/7
get ${PFX}c http://10.99.68.1/api/v2/users/8 http://10.99.68.1/api/orders/9 http://10.99.68.1/api/v2/health
caps_stop
cp "$WORK/nginx-proxy/access.log" "$WORK/out/$SET/proxy.access.log"
cp "$WORK/nginx-b1/access.log" "$WORK/out/$SET/b1.access.log"
cp "$WORK/nginx-b2/access.log" "$WORK/out/$SET/b2.access.log"
expect_n client 'http.request' 10
expect_n client 'http.response.code==200' 5
expect_n client 'http.response.code==404' 5
expect_n backend 'http.request && ip.dst==10.99.69.21 && http.request.uri contains "/api/v2/"' 0
expect_n backend 'http.response.code==404 && ip.src==10.99.69.22' 5
expect_n backend 'http.response.code==200 && ip.src==10.99.69.21' 5
expect_n backend 'tcp.flags.syn==1 && tcp.flags.ack==0' 10
truth proxy --server 10.99.68.1:80 --join request_id --n 10
set_end
fi

if want dns_vip; then
set_begin dns_vip
gateway 70
# DNS Service VIP 10.96.0.53:53/udp -> dnsmasq on ftp-b1 (DNAT only; the
# backends route their answers back through ftp-gw)
bg ${PFX}b1 dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=10.99.71.21 --pid-file="$WORK/dnsmasq.pid" \
    --log-queries=extra --log-facility=- --local=/svc.test/ \
    --host-record=web.svc.test,10.96.0.10 --host-record=db.svc.test,10.99.71.22 \
    --host-record=cache.svc.test,10.99.71.23 --txt-record=web.svc.test,"flowtrail"
wait_listen ${PFX}b1 udp 10.99.71.21:53
nsx ${PFX}gw iptables -t nat -A PREROUTING -d 10.96.0.53/32 -p udp --dport 53 -j DNAT --to-destination 10.99.71.21:53
conntrack_start
cap_start ${PFX}gw eth0 client
cap_start ${PFX}gw br0 backend
for q in "web.svc.test A" "db.svc.test A" "nope1.svc.test A" "cache.svc.test A" "web.svc.test TXT" \
         "nope2.svc.test A" "db.svc.test AAAA" "nope3.svc.test AAAA" "web.svc.test MX" "nope4.svc.test TXT"; do
    # shellcheck disable=SC2086
    printf '  %-20s %s\n' "$q" "$(nsx ${PFX}c dig @10.96.0.53 +tries=1 +time=2 $q | grep -o 'status: [A-Z]*')"
done
caps_stop
conntrack_stop 10
grep -E ' (query\[[A-Z0-9]+\]|reply|config|cached) ' "$WORK/log/dnsmasq.log" >"$WORK/out/$SET/dnsmasq.log" || true
expect_n client 'dns.flags.response==0 && ip.dst==10.96.0.53' 10
expect_n client 'dns.flags.response==1 && ip.src==10.96.0.53' 10
expect_n client 'dns.flags.response==1 && dns.flags.rcode==3' 4
expect_n backend 'dns.flags.response==0 && ip.src==10.99.70.10 && ip.dst==10.99.71.21' 10
expect_n backend 'dns.flags.response==1 && ip.src==10.99.71.21' 10
expect_n backend 'ip.addr==10.96.0.53' 0
truth conntrack --vip 10.96.0.53:53 --proto udp --n 10
set_end
fi

if want socat_relay; then
set_begin socat_relay
gateway 72
backends 73
# a TCP relay: every downstream connection gets a new upstream connection to b1
bg ${PFX}gw socat socat -d -d TCP4-LISTEN:80,bind=10.99.72.1,fork,reuseaddr TCP4:10.99.73.21:80
wait_listen ${PFX}gw tcp 10.99.72.1:80
cap_start ${PFX}gw eth0 client
cap_start ${PFX}gw br0 backend
for i in $(seq 10); do get ${PFX}c "http://10.99.72.1/s/$i"; sleep 0.1; done
caps_stop
kill_pid "${PIDS[-1]}"
cp "$WORK/log/socat.log" "$WORK/out/$SET/socat.log"
cp "$WORK/nginx-b1/access.log" "$WORK/out/$SET/b1.access.log"
expect_n client 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.dst==10.99.72.1' 10
expect_n client 'http.response.code==200' 10
expect_n backend 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.99.73.1 && ip.dst==10.99.73.21' 10
expect_n backend 'http.response.code==200' 10
truth socat --server 10.99.72.1:80 --n 10
set_end
fi

# chain: the topology of vip_proxy (see the header): client net 10.99.74.0/24,
# gateway -> proxy net 10.99.75.0/24, proxy -> backend net 10.99.76.0/24.
# Only ftp-gw forwards; the proxy ends TCP (nginx) and forwards nothing.
chain() {
    ns_new ${PFX}c; ns_new ${PFX}gw; ns_new ${PFX}px; ns_new ${PFX}b1
    veth ${PFX}c eth0 "$(mac 74 10)" ${PFX}gw eth0 "$(mac 74 01)"
    veth ${PFX}gw eth1 "$(mac 75 01)" ${PFX}px eth0 "$(mac 75 10)"
    veth ${PFX}px eth1 "$(mac 76 01)" ${PFX}b1 eth0 "$(mac 76 21)"
    ip -n ${PFX}c addr add 10.99.74.10/24 dev eth0
    ip -n ${PFX}c route add default via 10.99.74.1
    ip -n ${PFX}gw addr add 10.99.74.1/24 dev eth0
    ip -n ${PFX}gw addr add 10.99.75.1/24 dev eth1
    nsx ${PFX}gw sysctl -qw net.ipv4.ip_forward=1
    ip -n ${PFX}px addr add 10.99.75.10/24 dev eth0
    ip -n ${PFX}px addr add 10.99.76.1/24 dev eth1
    ip -n ${PFX}px route add default via 10.99.75.1
    ip -n ${PFX}b1 addr add 10.99.76.21/24 dev eth0
    ip -n ${PFX}b1 route add default via 10.99.76.1
}

if want vip_proxy; then
set_begin vip_proxy
chain
# backend: /chain/<even> exists (200), anything else 404 from an empty docroot
nginx_run ${PFX}b1 b1 <<EOF
  server {
    listen 10.99.76.21:80;
    location ~ "^/chain/[0-9]*[02468]\$" { return 200 "b1 \$request_uri\n"; }
    location / { root $WORK/empty; }
  }
EOF
wait_listen ${PFX}b1 tcp 10.99.76.21:80
nginx_run ${PFX}px proxy <<EOF
  upstream backend { server 10.99.76.21:80; keepalive 4; }
  server {
    listen 10.99.75.10:80;
    access_log $WORK/nginx-proxy/access.log proxy;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Request-ID \$request_id;
      add_header X-Request-ID \$request_id always;
    }
  }
EOF
wait_listen ${PFX}px tcp 10.99.75.10:80
# Service VIP in front of the proxy: DNAT, and MASQUERADE towards the proxy
nsx ${PFX}gw iptables -t nat -A PREROUTING -d 10.96.0.80/32 -p tcp --dport 80 -j DNAT --to-destination 10.99.75.10:80
nsx ${PFX}gw iptables -t nat -A POSTROUTING -o eth1 -j MASQUERADE
conntrack_start
cap_start ${PFX}gw eth0 client
cap_start ${PFX}px eth0 proxy_in
cap_start ${PFX}px eth1 backend
for i in $(seq 10); do get ${PFX}c "http://10.96.0.80/chain/$i"; done
caps_stop
conntrack_stop 10
cp "$WORK/nginx-proxy/access.log" "$WORK/out/$SET/proxy.access.log"
cp "$WORK/nginx-b1/access.log" "$WORK/out/$SET/b1.access.log"
expect_n client 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.99.74.10 && ip.dst==10.96.0.80' 10
expect_n client 'http.request' 10
expect_n client 'http.response.code==200 && ip.src==10.96.0.80 && http.response.line contains "X-Request-ID: "' 5
expect_n client 'http.response.code==404 && ip.src==10.96.0.80 && http.response.line contains "X-Request-ID: "' 5
expect_n client 'ip.addr==10.99.75.0/24 || ip.addr==10.99.76.0/24' 0
expect_n proxy_in 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.99.75.1 && ip.dst==10.99.75.10' 10
expect_n proxy_in 'http.request' 10
expect_n proxy_in 'http.response.code==200 && ip.src==10.99.75.10' 5
expect_n proxy_in 'http.response.code==404 && ip.src==10.99.75.10' 5
expect_n proxy_in 'ip.addr==10.99.74.10 || ip.addr==10.96.0.80' 0
expect_n backend 'http.request && ip.src==10.99.76.1 && http.request.line contains "X-Request-ID: "' 10
expect_n backend 'http.response.code==200 && ip.src==10.99.76.21' 5
expect_n backend 'http.response.code==404 && ip.src==10.99.76.21' 5
expect_n backend 'ip.addr==10.99.74.0/24 || ip.addr==10.99.75.0/24 || ip.addr==10.96.0.80' 0
expect backend 'tcp.flags.syn==1 && tcp.flags.ack==0' 1
n=$(count backend 'tcp.flags.syn==1 && tcp.flags.ack==0')
[ "$n" -le 2 ] || die "vip_proxy: $n upstream connections for 10 sequential requests, keepalive to the upstream does not work"
truth chain --vip 10.96.0.80:80 --server 10.99.75.10:80 --n 10
set_end
fi

# midstream: the DNAT VIP of dnat_vip with long keep-alive sessions, and the
# two captures cut afterwards with `editcap -A` at different times (client
# point 1.5 s into the traffic, backend point 1.8 s), as if each capture had
# been started while the connections were open: those open at the cuts are
# seen without their handshake, from different bytes at each point.  The
# packets are tcpdump's; editcap only drops the ones before the cut.
# The schedule (seconds after the driver's t0; no connection opens, sends
# its last request or closes within 0.15 s of a cut):
#   k1-k4  keep-alive sessions 0.10-0.40 .. 3.0, a request every 0.2 s
#   k5     opens at 1.65 (between the cuts: SYN at client only) .. 3.0
#   k6     opens at 0.50, one request, idle, a request at 2.50, closes
#   s1-s3  one request each at 0.60, 0.80, 1.00 (before both cuts: not in the cut pcaps)
#   s4-s6  one request each at 2.20, 2.40, 2.60 (after both cuts: SYN at both)
MID_DRIVER='
import http.client, sys, threading, time
vip = sys.argv[1]
t0 = time.time() + 0.2
print(f"t0 {t0:.6f}", flush=True)
lock = threading.Lock()
def say(*a):
    with lock:
        print(*a, flush=True)
def at(t):
    d = t0 + t - time.time()
    if d > 0:
        time.sleep(d)
def session(name, start, times):
    at(start)
    c = http.client.HTTPConnection(vip, 80, timeout=10)
    c.connect()
    port = c.sock.getsockname()[1]
    say(f"open {name} {port} {time.time() - t0:.3f}")
    for i, t in enumerate(times):
        at(t)
        c.request("GET", f"/m/{name}-{i}")
        r = c.getresponse()
        r.read()
        say(f"req {name} {port} /m/{name}-{i} {r.status} {time.time() - t0:.3f}")
    c.close()
    say(f"close {name} {port} {time.time() - t0:.3f}")
def steps(a, b):
    n = round((b - a) / 0.2)
    return [round(a + 0.2 * i, 2) for i in range(n + 1)]
plan = [(f"k{k}", 0.1 * k, steps(0.1 * k, 2.9 + 0.02 * k)) for k in (1, 2, 3, 4)]
plan += [("k5", 1.65, steps(1.65, 2.85)), ("k6", 0.5, [0.5, 2.5])]
plan += [(f"s{i}", t, [t]) for i, t in enumerate((0.6, 0.8, 1.0, 2.2, 2.4, 2.6), 1)]
th = [threading.Thread(target=session, args=p) for p in plan]
for t in th:
    t.start()
for t in th:
    t.join(timeout=15)
'

if want midstream; then
set_begin midstream
gateway 78
backends 79
nsx ${PFX}gw iptables -t nat -A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 \
    -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.99.79.21:80
nsx ${PFX}gw iptables -t nat -A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.99.79.22:80
nsx ${PFX}gw iptables -t nat -A POSTROUTING -o br0 -j MASQUERADE
conntrack_start
cap_start ${PFX}gw eth0 client
cap_start ${PFX}gw br0 backend
nsx ${PFX}c timeout 30 "$PY" -c "$MID_DRIVER" 10.96.0.10 >"$WORK/out/$SET/driver.log"
cat "$WORK/out/$SET/driver.log"
[ "$(grep -c '^close ' "$WORK/out/$SET/driver.log")" -eq 12 ] || die "midstream: a session did not finish"
caps_stop
conntrack_stop 12
cp "$WORK/nginx-b1/access.log" "$WORK/out/$SET/b1.access.log"
cp "$WORK/nginx-b2/access.log" "$WORK/out/$SET/b2.access.log"
t0=$(awk '$1 == "t0" {print $2}' "$WORK/out/$SET/driver.log")
cut_client=$("$PY" -c "print(f'{$t0 + 1.5:.6f}')")
cut_backend=$("$PY" -c "print(f'{$t0 + 1.8:.6f}')")
echo "$cut_client $cut_backend" >"$WORK/out/$SET/cuts.txt"
for p in client:$cut_client backend:$cut_backend; do
    editcap -A "${p#*:}" "$WORK/out/$SET/${p%%:*}.pcap" "$WORK/out/$SET/${p%%:*}.cut.pcap"
    mv "$WORK/out/$SET/${p%%:*}.cut.pcap" "$WORK/out/$SET/${p%%:*}.pcap"
done
# after the cuts: k5 and s4-s6 open at the client point, s4-s6 at the backend
expect_n client 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.dst==10.96.0.10' 4
expect_n backend 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.99.79.1' 3
expect_n client 'ip.addr==10.99.79.0/24' 0
expect_n backend 'ip.addr==10.99.78.10 || ip.addr==10.96.0.10' 0
expect client 'http.request' 30
truth conntrack --vip 10.96.0.10:80 --after "$cut_backend" --n 9
set_end
fi

# ========================================================== publish ========
log "publish"
[ ${#MADE[@]} -gt 0 ] || die "no set was made"
mkdir -p "$OUT"
for s in "${MADE[@]}"; do
    rm -rf "${OUT:?}/$s"
    mv "$WORK/out/$s" "$OUT/$s"
    chmod 755 "$OUT/$s"
    printf '  %-12s %s\n' "$s" "$(cd "$OUT/$s" && for f in *.pcap; do printf '%s=%s pkts ' "$f" "$(capinfos -M -c -T -r "$f" | cut -f2)"; done)$(du -sh "$OUT/$s" | cut -f1)"
done
echo "make_nat_pcaps: OK (${MADE[*]})"
