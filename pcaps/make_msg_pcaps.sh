#!/usr/bin/env bash
# Messaging and HTTP/2 captures for pcaps/: MQTT 3.1.1 and MQTT 5 (mosquitto
# broker and clients: QoS 0/1/2, a refused password, PINGREQ), HTTP/2 over
# cleartext with prior knowledge (nginx + curl, one sequential and one
# multiplexed connection) and gRPC (grpcio server and client in Python,
# unary OK / NOT_FOUND / INTERNAL, server streaming, client streaming).
#
# Run directly (as root) it makes only these captures:
#   pcaps/make_msg_pcaps.sh                          all four
#   pcaps/make_msg_pcaps.sh --only grpc,http2_h2c    only the named ones
# leaving every other capture and its MANIFEST.tsv / README.md rows as they
# are.  make_pcaps.sh sources this file after make_l7_pcaps.sh (a full run
# makes these too), so everything here uses its helpers (pair, bg, cap_start,
# expect, record, want, ...) and those of make_l7_pcaps.sh (nginx_conf,
# expect_n, fields).  Scenarios 50-53 use 10.99.50.0/24 ... 10.99.53.0/24,
# client .10 in ftp-c, server .20 in ftp-s; tcpdump runs on the server's
# veth (ftp-s eth0).
#
# make_pcaps.sh checks --only names against its own lists before it sources
# this file, so a direct run passes the names this file makes in
# FTP_MORE_CAPTURES (read by that check).
MSG_CAPTURES=(mqtt311.pcap mqtt5.pcap http2_h2c.pcap grpc.pcap)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    export FTP_MORE_CAPTURES="${FTP_MORE_CAPTURES:+$FTP_MORE_CAPTURES }${MSG_CAPTURES[*]}"
    if [ $# -eq 0 ]; then
        exec "$here/make_pcaps.sh" --only "$(IFS=,; echo "${MSG_CAPTURES[*]}")"
    fi
    exec "$here/make_pcaps.sh" "$@"
fi

MADE_BY=make_msg_pcaps.sh
GRPC_ECHO="$HERE/tools/grpc_echo.py"

# Packages: installed only when a wanted capture needs them and they are missing.
if want mqtt311.pcap mqtt5.pcap &&
   { ! command -v mosquitto >/dev/null 2>&1 || ! command -v mosquitto_pub >/dev/null 2>&1; }; then
    log "installing mosquitto mosquitto-clients"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o DPkg::Lock::Timeout=300 mosquitto mosquitto-clients >"$WORK/log/apt-mosquitto.log" 2>&1 ||
        die "apt-get install mosquitto mosquitto-clients failed"
fi
if want grpc.pcap && ! "$PY" -c 'import grpc' 2>/dev/null; then
    log "installing python3-grpcio"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o DPkg::Lock::Timeout=300 python3-grpcio >"$WORK/log/apt-grpcio.log" 2>&1 ||
        die "apt-get install python3-grpcio failed"
fi

# expect_frames FILE [tshark -d args] FILTER N: exactly N matching packets.
expect_frames() {
    local f=$1 targs=() c; shift
    while [ "$1" = -d ]; do targs+=("$1" "$2"); shift 2; done
    c=$(tshark -r "$WORK/out/$f" "${targs[@]}" -Y "$1" 2>/dev/null | wc -l)
    [ "$c" -eq "$2" ] || die "$f: expected exactly $2 frames matching '$1', got $c"
    printf '  ok %-28s %4d = %s\n' "$f" "$c" "$1"
}

# expect_vals FILE [tshark -d args] FIELD VALUE N: VALUE occurs exactly N
# times in FIELD over all frames (several HTTP/2 frames or headers can share
# one packet, so packets are not counted).
expect_vals() {
    local f=$1 targs=() c; shift
    while [ "$1" = -d ]; do targs+=("$1" "$2"); shift 2; done
    c=$(tshark -r "$WORK/out/$f" "${targs[@]}" -Y "$1" -T fields -E 'aggregator=|' -e "$1" 2>/dev/null |
        tr '|' '\n' | grep -cxF -- "$2" || true)
    [ "$c" -eq "$3" ] || die "$f: expected $3 x $1 == '$2', got $c"
    printf '  ok %-28s %4d = %s == %s\n' "$f" "$c" "$1" "$2"
}

# expect_hdr FILE PORT 'name: value' N: exactly N HTTP/2 header fields
# (decoded by tshark's HPACK, on TCP port PORT) are "name: value".
expect_hdr() {
    local c
    c=$(tshark -r "$WORK/out/$1" -d "tcp.port==$2,http2" -Y http2.header -T fields -E 'aggregator=|' \
            -e http2.header.name -e http2.header.value 2>/dev/null |
        while IFS=$'\t' read -r n v; do paste -d'\t' <(tr '|' '\n' <<<"$n") <(tr '|' '\n' <<<"$v"); done |
        sed 's/\t/: /' | grep -cxF -- "$3" || true)
    [ "$c" -eq "$4" ] || die "$1: expected $4 HTTP/2 headers '$3', got $c"
    printf '  ok %-28s %4d = header %s\n' "$1" "$c" "$3"
}

wait_gone() {    # wait_gone PID SECONDS: wait for a background client to exit
    local i
    for i in $(seq $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    die "process $1 still running after $2 s"
}

# ---------------------------------------------------------------------------
# mqtt_scenario NET VERSION FILE: mosquitto on ftp-s :1883, clients in ftp-c.
MQTT_PW=s3cr3t-mqtt-pw
mqtt_scenario() {
    local n=$1 v=$2 f=$3 dir="$WORK/mqtt$1" s=10.99.$1.20 M sub rc=0 extra=()
    pair "$n" v4
    mkdir -p "$dir"
    mosquitto_passwd -b -c "$dir/passwd" sensor "$MQTT_PW" >"$WORK/log/mosquitto_passwd.log" 2>&1 ||
        die "mosquitto_passwd failed"
    cat >"$dir/mosquitto.conf" <<EOF
user root
persistence false
log_dest file $dir/mosquitto.log
log_type all
connection_messages true
listener 1883 $s
allow_anonymous true
password_file $dir/passwd
EOF
    bg ${PFX}s "mosquitto-$n" mosquitto -c "$dir/mosquitto.conf"
    wait_listen ${PFX}s tcp 1883
    M=(-V "$v" -h "$s" -p 1883)
    cap_start ${PFX}s eth0 "$f"
    # subscriber (the one authenticated connection): keepalive 5 s, gets 3 messages
    bg ${PFX}c "mosquitto_sub-$n" timeout 30 mosquitto_sub "${M[@]}" -i ft-sub -u sensor -P "$MQTT_PW" \
        -k 5 -q 2 -t 'sensors/#' -C 3 -W 25 -v
    sub=${PIDS[-1]}
    wait_file "$dir/mosquitto.log" 'ft-sub 2 sensors/#'      # SUBSCRIBE handled
    wait_file "$dir/mosquitto.log" 'Received PINGREQ from ft-sub'
    sleep 0.3
    nsx ${PFX}c timeout 10 mosquitto_pub "${M[@]}" -i ft-pub-q0 -q 0 -t sensors/temp -m 21.5
    [ "$v" = mqttv5 ] && extra=(-D publish user-property trace-id ft-0001)
    nsx ${PFX}c timeout 10 mosquitto_pub "${M[@]}" -i ft-pub-q1 -q 1 -t sensors/humidity -m 40 "${extra[@]}"
    nsx ${PFX}c timeout 10 mosquitto_pub "${M[@]}" -i ft-pub-q2 -q 2 -t sensors/door -m open
    nsx ${PFX}c timeout 10 mosquitto_pub "${M[@]}" -i ft-bad -u sensor -P wrong-password -q 0 -t sensors/temp \
        -m 99 >"$WORK/log/mosquitto_pub-bad-$n.log" 2>&1 || rc=$?
    echo "bad password: mosquitto_pub exit $rc: $(head -1 "$WORK/log/mosquitto_pub-bad-$n.log")"
    [ $rc -ne 0 ] || die "$f: CONNECT with a wrong password was accepted"
    wait_gone "$sub" 15
    cat "$WORK/log/mosquitto_sub-$n.log"
    [ "$(grep -c '^sensors/' "$WORK/log/mosquitto_sub-$n.log")" -eq 3 ] || die "$f: subscriber did not get 3 messages"
    cap_stop
}

mqtt_expect() {  # mqtt_expect FILE VERSION(4|5)
    local f=$1 v=$2
    expect_n "$f" 'tcp.flags.syn==1 && tcp.flags.ack==0' 5
    expect_n "$f" "mqtt.msgtype==1 && mqtt.ver==$v" 5                       # CONNECT
    expect_n "$f" 'mqtt.msgtype==1 && mqtt.username=="sensor"' 2
    expect_n "$f" 'mqtt.msgtype==2' 5                                          # CONNACK
    expect_n "$f" 'mqtt.msgtype==8 && mqtt.topic=="sensors/#"' 1               # SUBSCRIBE
    expect_n "$f" 'mqtt.msgtype==9' 1                                          # SUBACK
    expect_n "$f" 'mqtt.msgtype==3 && mqtt.qos==0' 2                           # PUBLISH q0 in + out
    expect_n "$f" 'mqtt.msgtype==3 && mqtt.qos==1' 2
    expect_n "$f" 'mqtt.msgtype==3 && mqtt.qos==2' 2
    expect_n "$f" 'mqtt.msgtype==4' 2                                          # PUBACK
    expect_n "$f" 'mqtt.msgtype==5' 2                                          # PUBREC
    expect_n "$f" 'mqtt.msgtype==6' 2                                          # PUBREL
    expect_n "$f" 'mqtt.msgtype==7' 2                                          # PUBCOMP
    expect "$f" 'mqtt.msgtype==12' 1                                           # PINGREQ
    expect "$f" 'mqtt.msgtype==13' 1                                           # PINGRESP
    expect_n "$f" 'mqtt.msgtype==14' 4                                         # DISCONNECT
}

if want mqtt311.pcap; then
log "50 mqtt311.pcap"
mqtt_scenario 50 mqttv311 mqtt311.pcap
mqtt_expect mqtt311.pcap 4
expect_n mqtt311.pcap 'mqtt.msgtype==2 && mqtt.conack.val==0' 4
expect_n mqtt311.pcap 'mqtt.msgtype==2 && mqtt.conack.val==5' 1
teardown
record mqtt311.pcap "mosquitto, mosquitto_sub, mosquitto_pub" \
    "ipv4,tcp,mqtt,mqtt3.1.1,connect,connack-refused,subscribe,publish,qos0,qos1,qos2,puback,pubrec,pubrel,pubcomp,pingreq,disconnect,password,fin" \
    "ftp-c 10.99.50.10 --veth-- ftp-s 10.99.50.20 (\`mosquitto\` :1883, allow_anonymous true, password_file with user sensor). All clients \`-V mqttv311\`: \`mosquitto_sub -i ft-sub -u sensor -P s3cr3t-mqtt-pw -k 5 -q 2 -t 'sensors/#' -C 3\` (waits for one PINGREQ), then \`mosquitto_pub\` -q 0 sensors/temp 21.5, -q 1 sensors/humidity 40, -q 2 sensors/door open (anonymous, one connection each), then \`-u sensor -P wrong-password\` (CONNACK 5 not authorised). The subscriber gets the 3 messages at QoS 0/1/2 and disconnects. tcpdump on ftp-s eth0."
fi

if want mqtt5.pcap; then
log "51 mqtt5.pcap"
mqtt_scenario 51 mqttv5 mqtt5.pcap
mqtt_expect mqtt5.pcap 5
expect_n mqtt5.pcap 'mqtt.msgtype==2 && mqtt.connack.reason_code==0' 4
expect_n mqtt5.pcap 'mqtt.msgtype==2 && mqtt.connack.reason_code==0x87' 1
expect_n mqtt5.pcap 'mqtt.msgtype==3 && mqtt.prop_key=="trace-id" && mqtt.prop_value=="ft-0001"' 2
teardown
record mqtt5.pcap "mosquitto, mosquitto_sub, mosquitto_pub" \
    "ipv4,tcp,mqtt,mqtt5,connect,connack-refused,subscribe,publish,qos0,qos1,qos2,puback,pubrec,pubrel,pubcomp,pingreq,disconnect,user-property,password,fin" \
    "ftp-c 10.99.51.10 --veth-- ftp-s 10.99.51.20 (\`mosquitto\` :1883, as for mqtt311.pcap). The same client runs with \`-V mqttv5\`; the QoS 1 publish carries \`-D publish user-property trace-id ft-0001\` (forwarded to the subscriber). The wrong password gets CONNACK reason code 0x87 (135, not authorized; mosquitto's choice, not 0x86). tcpdump on ftp-s eth0."
fi

# ---------------------------------------------------------------------------
if want http2_h2c.pcap; then
log "52 http2_h2c.pcap"
pair 52 v4
nginx_conf ${PFX}s <<EOF
  server {
    listen 10.99.52.20:8080 http2;
    server_name flowtrail.test;
    root $WWW;
    location = /api/items {
      default_type application/json;
      return 201 '{"id":7}\n';
    }
  }
EOF
wait_listen ${PFX}s tcp 8080
cap_start ${PFX}s eth0 http2_h2c.pcap
# connection 1: nghttp (prior knowledge for http:// URIs), four GETs sent at
# once as concurrent streams, each with the tracing and credential headers.
nsx ${PFX}c timeout 10 nghttp -n -v \
    -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' \
    -H 'x-request-id: h2-req-0001' \
    -H 'authorization: Bearer s3cr3t-h2-token' \
    http://10.99.52.20:8080/index.html http://10.99.52.20:8080/missing.html \
    http://10.99.52.20:8080/small.txt http://10.99.52.20:8080/page.txt >"$WORK/log/nghttp.log" 2>&1 ||
    die "nghttp failed"
grep -E 'recv HEADERS|:status|:path' "$WORK/log/nghttp.log" | grep -E ':status|:path' | tr -s ' ' | paste -sd' ' -
# connection 2: one POST with a JSON body
printf '{"name":"widget","qty":3}' >"$WORK/h2-post.json"
nsx ${PFX}c timeout 10 nghttp -n -v --no-dep -H 'content-type: application/json' -d "$WORK/h2-post.json" \
    http://10.99.52.20:8080/api/items >"$WORK/log/nghttp-post.log" 2>&1 || die "nghttp POST failed"
grep -E ':status|RST_STREAM|GOAWAY' "$WORK/log/nghttp-post.log" | tr -s ' ' | paste -sd' ' -
cap_stop
D=(-d 'tcp.port==8080,http2')
expect_n http2_h2c.pcap 'tcp.flags.syn==1 && tcp.flags.ack==0' 2
expect_frames http2_h2c.pcap "${D[@]}" http2.magic 2
expect_vals http2_h2c.pcap "${D[@]}" http2.headers.method GET 4
expect_vals http2_h2c.pcap "${D[@]}" http2.headers.method POST 1
expect_vals http2_h2c.pcap "${D[@]}" http2.headers.path /api/items 1
expect_vals http2_h2c.pcap "${D[@]}" http2.headers.status 200 3
expect_vals http2_h2c.pcap "${D[@]}" http2.headers.status 404 1
expect_vals http2_h2c.pcap "${D[@]}" http2.headers.status 201 1
expect_hdr http2_h2c.pcap 8080 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' 4
expect_hdr http2_h2c.pcap 8080 'x-request-id: h2-req-0001' 4
expect_hdr http2_h2c.pcap 8080 'authorization: Bearer s3cr3t-h2-token' 4
expect_hdr http2_h2c.pcap 8080 'content-type: application/json' 2
expect_vals http2_h2c.pcap "${D[@]}" http2.type 2 5                        # PRIORITY (anchors 3-11)
expect_vals http2_h2c.pcap "${D[@]}" http2.type 3 1                        # RST_STREAM after the 201
expect_vals http2_h2c.pcap "${D[@]}" http2.streamid 19 5                   # HEADERS + 3 DATA + 1 in frame 6
expect_frames http2_h2c.pcap "${D[@]}" 'http2.data.data contains "widget" && ip.src==10.99.52.10' 1
expect_frames http2_h2c.pcap "${D[@]}" 'http2.data.data contains "{\"id\":7}" && ip.src==10.99.52.20' 1
teardown
record http2_h2c.pcap "nghttp (nghttp2-client), nginx (http2)" \
    "ipv4,tcp,http2,h2c,prior-knowledge,hpack,multiplexing,priority,404,post,201,rst-stream,goaway,traceparent,x-request-id,authorization,fin" \
    "ftp-c 10.99.52.10 --veth-- ftp-s 10.99.52.20 (nginx \`listen 8080 http2;\` without TLS: h2c with prior knowledge; \`location = /api/items { return 201 '{\"id\":7}'; }\`). Connection 1: \`nghttp -n -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' -H 'x-request-id: h2-req-0001' -H 'authorization: Bearer s3cr3t-h2-token'\` with four URIs at once: PRIORITY frames for idle anchor streams 3-11, then GET /index.html 200, /missing.html 404, /small.txt 200, /page.txt 200 (18893 bytes) on streams 13, 15, 17, 19; GOAWAY from the client. Connection 2: \`nghttp --no-dep -H 'content-type: application/json' -d body\` POST /api/items with \`{\"name\":\"widget\",\"qty\":3}\` on stream 1: 201 with \`{\"id\":7}\`, then nginx's RST_STREAM(NO_ERROR) and the client's GOAWAY. tcpdump on ftp-s eth0."
fi

# ---------------------------------------------------------------------------
if want grpc.pcap; then
log "53 grpc.pcap"
pair 53 v4
bg ${PFX}s grpc-server "$PY" "$GRPC_ECHO" server --bind 10.99.53.20 --port 50051 --timeout 60
wait_listen ${PFX}s tcp 50051
cap_start ${PFX}s eth0 grpc.pcap
nsx ${PFX}c timeout 20 "$PY" "$GRPC_ECHO" client --target 10.99.53.20:50051 || die "grpc client failed"
cap_stop
D=(-d 'tcp.port==50051,http2')
expect_n grpc.pcap 'tcp.flags.syn==1 && tcp.flags.ack==0' 1
expect_frames grpc.pcap "${D[@]}" http2.magic 1
for m in Say Missing Fail Stream Collect; do expect_hdr grpc.pcap 50051 ":path: /flowtrail.test.Echo/$m" 1; done
expect_hdr grpc.pcap 50051 ':method: POST' 5
expect_hdr grpc.pcap 50051 'content-type: application/grpc' 10
expect_hdr grpc.pcap 50051 ':status: 200' 5
expect_hdr grpc.pcap 50051 'grpc-status: 0' 3
expect_hdr grpc.pcap 50051 'grpc-status: 5' 1
expect_hdr grpc.pcap 50051 'grpc-status: 13' 1
expect_hdr grpc.pcap 50051 'grpc-message: no such item: item-42' 1
expect_hdr grpc.pcap 50051 'grpc-message: backend exploded' 1
expect_hdr grpc.pcap 50051 'x-request-id: grpc-req-0001' 1
n=$(tshark -r "$WORK/out/grpc.pcap" "${D[@]}" -Y 'grpc.message_length' -T fields -e grpc.message_length 2>/dev/null |
    tr ',' '\n' | grep -c . || true)
[ "$n" -eq 11 ] || die "grpc.pcap: expected 11 gRPC messages (6 requests, 5 responses), got $n"
echo "  ok grpc.pcap                     $n gRPC length-prefixed messages"
teardown
record grpc.pcap "grpc_echo.py (python3-grpcio)" \
    "ipv4,tcp,http2,h2c,grpc,unary,server-streaming,client-streaming,grpc-status,not-found,internal,trailers,x-request-id,fin" \
    "ftp-c 10.99.53.10 --veth-- ftp-s 10.99.53.20 (\`tools/grpc_echo.py server\`, grpcio, insecure :50051, generic handlers for service flowtrail.test.Echo). \`tools/grpc_echo.py client\` on one channel (one h2c connection): Say (unary, OK), Missing (NOT_FOUND, grpc-status 5, grpc-message \"no such item: item-42\"), Fail (INTERNAL, 13, \"backend exploded\"), Stream (server streaming, 3 replies, OK), Collect (client streaming, 2 requests, OK). tcpdump on ftp-s eth0."
fi

MADE_BY=make_pcaps.sh
