# Helpers shared by the capture-set makers (make_nat_pcaps.sh,
# make_story_pcaps.sh): cleanup of their namespaces and processes, namespace
# and veth set-up, background servers, readiness waits, one tcpdump per
# capture point of the set being made, and tshark expectations on its pcaps.
# Sourced after the maker has defined die, log, PFX, PY, NETKIT, WORK, PIDS,
# CAPS and KEEP_WORK (non-empty: keep $WORK after a failure); the maker then
# installs on_exit as its EXIT trap.
# shellcheck shell=bash disable=SC2034  # loop counters (for i in $(seq N))

# ---------------------------------------------------------------- cleanup --
kill_pid() {     # kill_pid PID [SIGNAL]: SIGNAL (TERM), wait up to 3 s, then KILL
    local p=$1 sig=${2:-TERM} i
    kill -0 "$p" 2>/dev/null || return 0
    kill -"$sig" "$p" 2>/dev/null || true
    for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PFX}" || true; }

teardown() {
    local p ns c
    for c in "${CAPS[@]}"; do kill_pid "${c%%:*}" INT; done
    CAPS=()
    for p in "${PIDS[@]}"; do kill_pid "$p"; done
    PIDS=()
    for ns in $(our_netns); do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

on_exit() {       # the EXIT trap: logs on failure, teardown, $WORK removed unless KEEP_WORK
    local rc=$? f
    set +e
    if [ $rc -ne 0 ]; then
        echo "$(basename "$0" .sh): FAILED (exit $rc); last lines of the logs in $WORK/log:" >&2
        for f in "$WORK"/log/*; do
            [ -s "$f" ] || continue
            echo "--- $f" >&2; tail -n 15 "$f" >&2
        done
    fi
    teardown
    if [ $rc -ne 0 ] && [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit $rc
}
# ---------------------------------------------------------------- helpers --
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

ns_new() {       # ns_new NAME: IPv4-only namespace (no IPv6 chatter in captures)
    ip netns add "$1"
    nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$1" link set lo up
}

veth() {         # veth NS1 IF1 MAC1 NS2 IF2 MAC2 (offloads off: wire-sized frames, good checksums)
    ip -n "$1" link add "$2" address "$3" type veth peer name "$5" address "$6" netns "$4"
    nsx "$1" "$PY" "$NETKIT" offload "$2"
    nsx "$4" "$PY" "$NETKIT" offload "$5"
    ip -n "$1" link set "$2" up
    ip -n "$4" link set "$5" up
}

mac() { printf '02:99:00:%02d:00:%s' "$1" "$2"; }   # mac NET HOST

bg() {           # bg NS LOGNAME CMD...: start a server in NS, remember its pid
    local ns=$1 name=$2; shift 2
    ip netns exec "$ns" "$@" >"$WORK/log/$name.log" 2>&1 &
    PIDS+=($!)
}

wait_listen() {  # wait_listen NS tcp|udp ADDR:PORT
    local opt=-Hltn i
    [ "$2" = udp ] && opt=-Hlun
    for i in $(seq 50); do
        [ -n "$(nsx "$1" ss $opt "src $3")" ] && return 0
        sleep 0.1
    done
    die "nothing listens on $2 $3 in $1"
}

wait_file() {    # wait_file FILE PATTERN
    local i
    for i in $(seq 50); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "timeout waiting for '$2' in $1"
}

SET=""           # the set being made; its files go to $WORK/out/$SET/
set_begin() { SET=$1; mkdir -p "$WORK/out/$SET"; log "$SET"; }

cap_start() {    # cap_start NS IFACE POINT: tcpdump -w POINT.pcap, running until caps_stop
    local ns=$1 ifc=$2 err="$WORK/log/tcpdump-$SET-$3.log"
    ip netns exec "$ns" tcpdump -i "$ifc" -n -U --immediate-mode -Z root \
        -w "$WORK/out/$SET/$3.pcap" >"$err" 2>&1 &
    CAPS+=("$!:$err")
    wait_file "$err" "listening on"
}

caps_stop() {    # let the last packets arrive, stop every capture (SIGINT), check them
    local c p err i
    sleep 0.7
    for c in "${CAPS[@]}"; do kill -INT "${c%%:*}" 2>/dev/null || true; done
    for c in "${CAPS[@]}"; do
        p=${c%%:*}; err=${c#*:}
        for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && die "capture did not stop on SIGINT: $err"
        wait "$p" || true
        grep -q 'captured' "$err" || die "capture did not finish: $err"
        grep -Eq '^[1-9][0-9]* packets dropped by kernel' "$err" && die "kernel dropped packets: $err"
        printf '  %s: %s\n' "$(basename "$err" .log)" "$(grep -E 'captured|dropped' "$err" | tr '\n' ';')"
    done
    CAPS=()
}

count() { tshark -r "$WORK/out/$SET/$1.pcap" -Y "$2" 2>/dev/null | wc -l; }

expect() {       # expect POINT 'display filter' MIN: at least MIN matching frames
    local n
    n=$(count "$1" "$2")
    [ "$n" -ge "$3" ] || die "$SET/$1.pcap: expected >= $3 frames matching '$2', got $n"
    printf '  ok %-26s %4d x %s\n' "$SET/$1" "$n" "$2"
}

expect_n() {     # expect_n POINT 'display filter' N: exactly N matching frames
    local n
    n=$(count "$1" "$2")
    [ "$n" -eq "$3" ] || die "$SET/$1.pcap: expected exactly $3 frames matching '$2', got $n"
    printf '  ok %-26s %4d = %s\n' "$SET/$1" "$n" "$2"
}
