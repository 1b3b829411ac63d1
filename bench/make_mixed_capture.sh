#!/usr/bin/env bash
# A mixed L7 capture from the real servers' captures in pcaps/ (HTTP/1,
# HTTP/2, gRPC, TLS, DNS, Redis, MySQL, PostgreSQL, MQTT): each capture is
# shifted to start at the same instant, the set is merged, and the merged
# set is repeated COPIES times, each copy 60 s after the previous one
# (longer than any connection in it, so repeated 5-tuples are new flows).
#
#   bench/make_mixed_capture.sh [COPIES]     (default 1200 -> about 1.17M packets, 170 MB)
# Writes bench/data/mixed-l7.pcap.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$ROOT/bench/data
copies=${1:-1200}
out=$DATA/mixed-l7.pcap
mkdir -p "$DATA"
[ -s "$out" ] && [ "$(cat "$out.copies" 2>/dev/null)" = "$copies" ] && { echo "$out exists"; exit 0; }
work=$(mktemp -d /tmp/ft-mixed.XXXXXX)
trap 'rm -rf "$work"' EXIT
srcs=(http_keepalive http_errors http_upstream http_trace http_pipelined http_chunked dns_udp dns_tcp
      dns_errors tls redis_rich mysql mysql_ssl postgresql mqtt311 mqtt5 http2_h2c grpc)
base=1800000000   # 2027-01-15, an arbitrary common start
parts=()
for s in "${srcs[@]}"; do
    f=$ROOT/pcaps/$s.pcap
    first=$(capinfos -T -r -S -a "$f" | awk -F'\t' 'NR==1{print $2}')
    shift=$(python3 -c "print(f'{$base - float(\"$first\"):.6f}')")
    editcap -F pcap -t "$shift" "$f" "$work/$s.pcap"
    parts+=("$work/$s.pcap")
done
mergecap -F pcap -w "$work/set.pcap" "${parts[@]}"
copies_list=()
for i in $(seq 0 $((copies - 1))); do
    editcap -F pcap -t $((i * 60)) "$work/set.pcap" "$work/c$i.pcap"
    copies_list+=("$work/c$i.pcap")
done
mergecap -F pcap -a -w "$out.partial" "${copies_list[@]}"
mv -f "$out.partial" "$out"
echo "$copies" >"$out.copies"
capinfos -c -s "$out" | tail -2
