#!/usr/bin/env bash
# The flowtrail benchmark: build, make the captures if missing, measure
# flowtrail and its peers, print two Markdown tables and write
# bench/RESULTS.md. See bench/README.md.
#
# Usage (as root, after scripts/setup.sh --bench):
#   bench/run.sh [--runs N] [--skip-peers] [--no-synth] [--force-captures] [--keep-synth]
#
#   --runs N           measured runs per row after one warm-up (default 3; best is shown)
#   --skip-peers       only flowtrail rows (no ndpiReader, argus, tshark)
#   --no-synth         skip the concurrent-flows table
#   --force-captures   rebuild bench/data/* even when present
#   --keep-synth       keep the synthetic pcaps afterwards (default: the 1M-flow
#                      file, ~1.1 GB, is deleted at the end; the others are kept)
#   BENCH_QUIET_WAIT=S   seconds to wait per row for other processes to go idle (default 30)
#   BENCH_QUIET_BUDGET=S total seconds the run may spend waiting so (default 180)
#
# Disk: bench/data/ holds http-1m.pcap (~210 MB) and the synthetic files
# (~0.3 GB each for 1k/10k/100k flows, ~1.1 GB for 1M flows while it runs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DATA=$HERE/data
runs=3; peers=1; synth=1; force=0; keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift ;;
        --skip-peers) peers=0 ;;
        --no-synth) synth=0 ;;
        --force-captures) force=1 ;;
        --keep-synth) keep=1 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

log() { echo "run.sh: $*" >&2; }
PARTIAL=""
on_exit() {
    local rc=$?
    set +e
    [ -n "$PARTIAL" ] && rm -f "$PARTIAL"
    # The synthetic files are 1.1 GB each; regenerating one takes ~10 s.
    [ $keep = 0 ] && rm -f "$DATA"/synth-*.pcap
    exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM

started=$(date +%s)
cd "$ROOT"
log "building (release)"
cargo build --release -q -p flowtrail
cargo build --release -q -p flowtrail-tests --bin gen_flows
FT=$ROOT/target/release/flowtrail
GEN=$ROOT/target/release/gen_flows

mkdir -p "$DATA"
if [ $force = 1 ]; then
    "$HERE/make_http_capture.sh" --force
else
    "$HERE/make_http_capture.sh"
fi

# Synthetic captures: NAME K G. Each is 1M flows of 10 packets (10M
# packets): G generations of K flows open at once, 11 s of capture time
# apart (longer than the closed-flow timeout plus a sweep), so every row
# does the same per-flow work and only the number of open flows differs.
SYNTH=(
    "1k 1000 1000"
    "10k 10000 100"
    "100k 100000 10"
    "1m 1000000 1"
)
SNAP=128
PPF=10
GAP_US=11000000
synth_args=()
if [ $synth = 1 ]; then
    for s in "${SYNTH[@]}"; do
        read -r name k g <<<"$s"
        # The name carries the shape, so a file of another shape is never reused.
        f=$DATA/synth-$name-x$PPF-g$g-gap$((GAP_US / 1000000))s.pcap
        if [ ! -s "$f" ] || [ $force = 1 ]; then
            PARTIAL=$f.partial
            "$GEN" --flows "$k" --generations "$g" --gap-us $GAP_US --packets-per-flow $PPF --snaplen $SNAP \
                --out "$PARTIAL"
            mv -f "$PARTIAL" "$f"
            PARTIAL=""
        fi
        synth_args+=(--synth "$k:$PPF:$g:$f")
    done
fi

peer_args=()
[ $peers = 0 ] && peer_args+=(--skip-peers)
# Mixed L7 capture from pcaps/ (all decoders) and the NAT correlation table.
"$HERE/make_mixed_capture.sh" >/dev/null
"$HERE/nat.sh" --flows "${BENCH_NAT_FLOWS:-1000000}" >"$DATA/nat-table.md"
python3 "$HERE/bench.py" \
    --flowtrail "$FT" \
    --http "$DATA/http-1m.pcap" --http-meta "$DATA/http-1m.txt" \
    "${synth_args[@]}" \
    --synth-note "Made by \`target/release/gen_flows --flows K --generations G --gap-us $GAP_US --packets-per-flow $PPF --snaplen $SNAP\` (tests/src/bin/gen_flows.rs): G generations of K TCP flows to port 9000, each flow a handshake, $((PPF - 5)) data segments of 200 bytes alternating direction, and a FIN from each side; a generation's K flows are interleaved round robin so all K are open at once, 1 µs between packets, and generations are $((GAP_US / 1000000)) s of capture time apart (the table has ended one generation's flows, 5 s after their FINs plus a 5 s sweep, before the next starts); frames stored up to $SNAP bytes (original length kept, like tcpdump -s). Every row is the same 1,000,000 flows and 10,000,000 packets, so the per-flow work (creating a flow, writing its record) is equal and only the number of flows open at once differs." \
    --runs "$runs" --quiet-wait "${BENCH_QUIET_WAIT:-30}" --quiet-budget "${BENCH_QUIET_BUDGET:-180}" \
    "${peer_args[@]}" \
    --mixed "$DATA/mixed-l7.pcap" --nat "$DATA/nat-table.md" \
    --results "$HERE/RESULTS.md"
# Live capture modes against tcpdump (root: namespaces; needs trafgen).
if [ "$(id -u)" = 0 ] && [ "${BENCH_LIVE:-1}" = 1 ]; then
    log "live capture rates (bench/live.sh)"
    if "$HERE/live.sh" >"$DATA/live-table.md"; then
        {
            echo
            echo "## Live capture: highest rate with zero drops (\`bench/live.sh\`)"
            echo
            echo "trafgen (netsniff-ng) in one network namespace sends 64-byte UDP frames (256 flows) over a veth pair at a fixed rate for 2 s per step, doubling from 50k pps; each capturer runs alone on the receiving veth in the other namespace (flowtrail \`capture --mode M\` with its default 2 threads/shards and full flow analysis and Parquet output, or \`tcpdump -w /dev/null\`, which only copies). A step passes when the capturer reports no drops and counted every packet sent (gen0's tx counter). The generator shares the 2 cores with the capturer and tops out near 400k pps on a veth, so every capturer passes every step it reaches; the CPU each capturer spends per packet at its highest step is the figure that tells them apart (user + sys of the capturer process; kernel work done in the sender's softirq context, such as the eBPF programs, is not in it)."
            echo
            cat "$DATA/live-table.md"
        } >>"$HERE/RESULTS.md"
    else
        log "bench/live.sh failed; no live table"
    fi
fi
log "done in $(( $(date +%s) - started )) s; tables in bench/RESULTS.md"
