#!/usr/bin/env bash
# NAT path correlation benchmark: K synthetic TCP flows seen at two capture
# points (the same connections replayed under two point names, so every
# flow has one partner), correlated by `flowtrail correlate` from the two
# runs' Parquet. Prints a Markdown row: flows, links, wall time, time per
# million flows and peak RSS (GNU time).
#
#   bench/nat.sh [--flows K]        (default 1000000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$ROOT/bench/data
flows=1000000
while [ $# -gt 0 ]; do
    case $1 in
        --flows) flows=$2; shift ;;
        *) echo "usage: bench/nat.sh [--flows K]" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$DATA"
cargo build --release -q -p flowtrail -p flowtrail-tests --bin flowtrail --bin gen_flows
FT=$ROOT/target/release/flowtrail
pcap=$DATA/nat-$flows.pcap
[ -s "$pcap" ] || "$ROOT/target/release/gen_flows" --flows "$flows" --packets-per-flow 5 --out "$pcap" --snaplen 96 >/dev/null
ln -sf "$pcap" "$DATA/nat-$flows-b.pcap"
work=$(mktemp -d /tmp/ft-natbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$FT" replay "$pcap" --point client="$pcap" -o "$work/a" --no-l7 --no-nat-paths --no-progress 2>/dev/null
"$FT" replay "$DATA/nat-$flows-b.pcap" --point backend="$DATA/nat-$flows-b.pcap" -o "$work/b" --no-l7 --no-nat-paths --no-progress 2>/dev/null
/usr/bin/time -f '%e %M' -o "$work/time" "$FT" correlate "$work/a" "$work/b" -o "$work/c" 2>"$work/log"
read -r secs rss_kb <"$work/time"
links=$(python3 -c "import duckdb,sys; print(duckdb.sql(\"select count(*) from read_parquet('$work/c/nat_paths/**/*.parquet')\").fetchall()[0][0])")
echo "| flows per point | links | correlate wall s | s per 1M flows | peak RSS MB |"
echo "|---|---|---|---|---|"
python3 -c "print(f'| $flows | $links | {$secs:.2f} | {$secs/($flows/1e6):.2f} | {$rss_kb/1024:.0f} |')"
grep -o 'flowtrail correlate:.*' "$work/log" >&2 || true
