# Helpers shared by the capture-set makers (make_nat_pcaps.sh,
# make_story_pcaps.sh): background servers, readiness waits, one tcpdump per
# capture point of the set being made, and tshark expectations on its pcaps.
# Sourced after the maker has defined die, log, nsx, WORK, PIDS and CAPS.
# shellcheck shell=bash disable=SC2034  # loop counters (for i in $(seq N))

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
