#!/usr/bin/env bash
# Live capture benchmark: the highest packet rate each capture mode takes
# with zero drops on this machine, beside tcpdump on the same interface.
#
# Two network namespaces joined by a veth pair: trafgen (netsniff-ng) in
# `ftlb-gen` sends 64-byte UDP frames (256 flows) out of gen0 at a fixed
# rate; they arrive on cap0 in `ftlb-cap`, addressed to cap0's MAC but to
# an IP nobody has, so the kernel drops them after the capture hooks and
# nothing answers (cap0 sees exactly what trafgen sent, ingress only).
# For each capturer and each offered rate (doubling), N = rate x SECS
# packets are offered; what was sent is gen0's tx counter. A step passes
# when the capturer reports no drops and counted every packet sent. The
# steps stop at the first failure, or once the generator no longer reaches
# 80% of the offered rate (it shares the 2 cores with the capturer). The
# table gives each capturer's highest passing rate as achieved, and its
# CPU time per packet at that step (user + sys of the capturer process,
# so in-kernel work done in the capturer's context counts; softirq work
# done on the sender's CPU does not).
#
#   bench/live.sh [--secs S] [--max-pps R] [--modes "afpacket tc xdp tcpdump"]
#
# Root. Prints a Markdown table on stdout (run.sh appends it to
# RESULTS.md); progress on stderr. Namespaces are removed on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
secs=2
max_pps=3200000
modes="tcpdump afpacket tc xdp"
while [ $# -gt 0 ]; do
    case $1 in
        --secs) secs=$2; shift ;;
        --max-pps) max_pps=$2; shift ;;
        --modes) modes=$2; shift ;;
        *) echo "usage: bench/live.sh [--secs S] [--max-pps R] [--modes LIST]" >&2; exit 2 ;;
    esac
    shift
done
log() { echo "live.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root (network namespaces)"; exit 2; }
command -v trafgen >/dev/null || { log "trafgen missing: scripts/setup.sh --bench installs netsniff-ng"; exit 2; }
FT=$ROOT/target/release/flowtrail
[ -x "$FT" ] || cargo build --release -q -p flowtrail
obj=${FLOWTRAIL_EBPF_OBJECT:-$ROOT/capture-ebpf/target/bpfel-unknown-none/release/flowtrail-capture-ebpf}

G=ftlb-gen
C=ftlb-cap
work=$(mktemp -d /tmp/ft-livebench.XXXXXX)
cleanup() {
    set +e
    pkill -f "trafgen --dev gen0" 2>/dev/null
    ip netns del $G 2>/dev/null
    ip netns del $C 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup 2>/dev/null || true
work=$(mktemp -d /tmp/ft-livebench.XXXXXX)

ip netns add $G
ip netns add $C
ip link add gen0 netns $G type veth peer name cap0 netns $C
ip -n $G link set gen0 up
ip -n $C link set cap0 up
ip -n $G link set lo up
ip -n $C link set lo up
ip -n $C addr add 10.88.0.2/24 dev cap0
ip -n $G addr add 10.88.0.1/24 dev gen0
# IPv6 off: no router solicitations or DAD on the wire being counted.
ip netns exec $G sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec $C sysctl -qw net.ipv6.conf.all.disable_ipv6=1
mac_gen=$(ip netns exec $G cat /sys/class/net/gen0/address)
mac_cap=$(ip netns exec $C cat /sys/class/net/cap0/address)
hex() { echo "0x${1//:/, 0x}"; }

# 14 + 20 + 8 + 18 = 60 bytes (64 on the wire with FCS). Source port counts
# up over 256 values: 256 flows.
cat >"$work/udp.cfg" <<EOF
{
  $(hex "$mac_cap"),
  $(hex "$mac_gen"),
  0x08, 0x00,
  0x45, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, csumip(14, 33),
  10, 88, 0, 1,
  10, 88, 0, 99,
  0x30, dinc(0, 255, 1), 0x00, 0x09, 0x00, 0x1a, 0x00, 0x00,
  fill(0x61, 18),
}
EOF

txp() { ip netns exec $G cat /sys/class/net/gen0/statistics/tx_packets; }

# Offers N packets at RATE pps (killed after 3 x SECS s); prints "sent elapsed_s".
send() {
    local n=$1 rate=$2 t0 t1 tx0 tx1
    tx0=$(txp)
    t0=$(date +%s.%N)
    ip netns exec $G timeout -s INT $((secs * 3)) trafgen --dev gen0 --conf "$work/udp.cfg" --cpus 1 \
        --num "$n" --rate "${rate}pps" --no-sock-mem >"$work/trafgen.log" 2>&1 || true
    t1=$(date +%s.%N)
    tx1=$(txp)
    python3 -c "print($tx1 - $tx0, $t1 - $t0)"
}

# One step for capturer $1 at rate $2: prints
# "captured dropped sent achieved_pps cpu_ns_per_packet".
step() {
    local mode=$1 rate=$2 n=$((rate * secs)) pid captured dropped sent el
    rm -rf "$work/out" "$work/s.json"
    case $mode in
        tcpdump)
            ip netns exec $C /usr/bin/time -f '%U %S' -o "$work/cpu" tcpdump -i cap0 -n -w /dev/null \
                2>"$work/cap.log" &
            pid=$! ;;
        *)
            local extra=()
            [ "$mode" != afpacket ] && extra+=(--ebpf-object "$obj")
            ip netns exec $C /usr/bin/time -f '%U %S' -o "$work/cpu" \
                "$FT" capture -i cap0 --mode "$mode" "${extra[@]}" -o "$work/out" \
                --no-nat-paths --summary-json "$work/s.json" >"$work/cap.log" 2>&1 &
            pid=$! ;;
    esac
    sleep 2
    read -r sent el < <(send "$n" "$rate")
    sleep 1
    # /usr/bin/time passes SIGINT on to the capturer and waits for it.
    pkill -INT -P $pid 2>/dev/null || true
    sleep 0.2
    pkill -INT -f "^(tcpdump -i cap0|$FT capture -i cap0)" 2>/dev/null || true
    wait $pid 2>/dev/null || true
    if [ "$mode" = tcpdump ]; then
        captured=$(grep -oE '^[0-9]+ packets captured' "$work/cap.log" | grep -oE '^[0-9]+' || echo 0)
        dropped=$(grep -oE '^[0-9]+ packets dropped by kernel' "$work/cap.log" | grep -oE '^[0-9]+' || echo 0)
    else
        read -r captured dropped < <(python3 - "$work/s.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
pts = [p for p in s.get("points", []) if p.get("interface") == "cap0" or p.get("name", "").endswith("cap0")]
cap = sum(p["packets"] for p in pts)
drop = sum(p.get("dropped", 0) for p in pts)
print(cap, drop)
PY
        )
    fi
    read -r u sy <"$work/cpu"
    python3 -c "print($captured, $dropped, $sent, round($sent / $el), round(($u + $sy) / max($sent, 1) * 1e9))"
}

rows=()
for mode in $modes; do
    if [ "$mode" = tc ] || [ "$mode" = xdp ]; then
        [ -s "$obj" ] || { log "$mode: no eBPF object ($obj); scripts/build-ebpf.sh"; rows+=("| $mode | – | – | – | no eBPF object |"); continue; }
    fi
    best_ach=0; best_ns="–"; fail=""
    rate=50000
    while [ $rate -le $max_pps ]; do
        read -r cap drop sent ach ns < <(step "$mode" $rate)
        log "$mode: offered $rate pps, sent $sent at $ach pps: captured $cap, dropped $drop; capturer CPU $ns ns/packet"
        if [ "$drop" != 0 ] || [ "$cap" != "$sent" ]; then
            fail="lost packets at $ach pps: captured $cap of $sent, $drop reported dropped"
            break
        fi
        best_ach=$ach; best_ns=$ns
        if [ $((ach * 10)) -lt $((rate * 8)) ]; then
            fail="none: the generator reached only $ach of $rate pps offered"
            break
        fi
        rate=$((rate * 2))
    done
    [ -z "$fail" ] && fail="none up to $max_pps pps offered"
    rows+=("| $mode | $best_ach | $best_ns | $secs | $fail |")
done
echo "| capturer | highest rate with zero loss (pps, as sent) | capturer CPU ns/packet at that rate | seconds per step | where it stopped |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
