#!/usr/bin/env bash
# Application-layer (L7) captures for pcaps/: HTTP error statuses and an
# nginx reverse proxy seen on both of its sides, a request that never gets
# an answer, tracing/credential headers, TLS (SNI, ALPN, handshake alerts)
# and DNS failures (NXDOMAIN, REFUSED, SERVFAIL, no answer, truncation).
#
# Run directly (as root) it makes only these captures:
#   pcaps/make_l7_pcaps.sh                    = make_pcaps.sh --only l7
#   pcaps/make_l7_pcaps.sh --only tls,dns_errors
# leaving every other capture and its MANIFEST.tsv / README.md rows as they
# are.  make_pcaps.sh sources this file after its own scenarios (a full run
# makes these too), so everything here uses its helpers (pair, veth, bg,
# cap_start, expect, record, want, ...) and conventions: scenario N uses
# 10.99.N.0/24, client .10 in ftp-c, server .20 in ftp-s.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    if [ $# -eq 0 ]; then exec "$here/make_pcaps.sh" --only l7; fi
    exec "$here/make_pcaps.sh" "$@"
fi

MADE_BY=make_l7_pcaps.sh
UPSTREAM="$HERE/tools/upstream.py"

# nginx_conf NS: start nginx in NS with the server blocks read from stdin
# (same http-level settings as nginx_start).
nginx_conf() {
    local ns=$1 d="$WORK/nginx-$1"
    rm -rf "$d"; mkdir -p "$d"
    {
        cat <<EOF
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 64; }
http {
  access_log $d/access.log;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  types { text/html html; text/plain txt; application/octet-stream bin; application/json json; }
  default_type application/octet-stream;
  keepalive_timeout 30s;
EOF
        cat
        echo '}'
    } >"$d/nginx.conf"
    bg "$ns" "nginx-$ns" nginx -e "$d/error.log" -c "$d/nginx.conf"
}

# cert DIR CN: self-signed ECDSA P-256 certificate DIR/cert.pem, DIR/key.pem
# with CN and subjectAltName DNS:CN (a new key on every run).
cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1/key.pem" -out "$1/cert.pem" -days 3650 -subj "/CN=$2" \
        -addext "subjectAltName=DNS:$2" >"$WORK/log/openssl-req.log" 2>&1 ||
        die "openssl req failed"
}

# A second tcpdump beside the one of cap_start (two interfaces at once):
# xcap_start NS IFACE FILE ... xcap_stop; same checks as cap_stop.
XCAP_PID=""; XCAP_ERR=""
xcap_start() {
    local pid=$CAP_PID err=$CAP_ERR sig=$CAP_SIG
    cap_start "$@"
    XCAP_PID=$CAP_PID; XCAP_ERR=$CAP_ERR; PIDS+=("$XCAP_PID")   # teardown kills it on failure
    CAP_PID=$pid; CAP_ERR=$err; CAP_SIG=$sig
}
xcap_stop() {
    local pid=$CAP_PID err=$CAP_ERR sig=$CAP_SIG
    CAP_PID=$XCAP_PID; CAP_ERR=$XCAP_ERR; CAP_SIG=INT
    cap_stop
    CAP_PID=$pid; CAP_ERR=$err; CAP_SIG=$sig
}

fields() {       # fields FILE 'display filter' FIELD...: tshark -T fields, one line a frame
    local f=$1 y=$2 a=(); shift 2
    for x in "$@"; do a+=(-e "$x"); done
    tshark -r "$WORK/out/$f" -Y "$y" -T fields "${a[@]}" 2>/dev/null
}

expect_n() {     # expect_n FILE 'display filter' N: exactly N matching frames
    local n
    n=$(count "$1" "$2")
    [ "$n" -eq "$3" ] || die "$1: expected exactly $3 frames matching '$2', got $n"
    printf '  ok %-28s %4d = %s\n' "$1" "$n" "$2"
}

# ---------------------------------------------------------------------------
if want http_errors.pcap http_upstream.pcap; then
log "16 http_errors.pcap, 17 http_upstream.pcap"
# ftp-c 10.99.16.10 --veth-- 10.99.16.20 ftp-s (nginx) 10.99.17.10 --veth-- ftp-u 10.99.17.20 (upstream)
pair 16 v4
ns_new ${PFX}u v4
veth ${PFX}s eth1 "$(mac 17 10)" ${PFX}u eth0 "$(mac 17 20)"
ip -n ${PFX}s addr add 10.99.17.10/24 dev eth1
ip -n ${PFX}u addr add 10.99.17.20/24 dev eth0
bg ${PFX}u upstream "$PY" "$UPSTREAM" --bind 10.99.17.20 --port 8080 --slow 3 --timeout 60
wait_listen ${PFX}u tcp 8080
nginx_conf ${PFX}s <<EOF
  server {
    listen 10.99.16.20:80;
    server_name flowtrail.test;
    root $WWW;
    location /unavailable { return 503; }
    location /api/ {
      proxy_pass http://10.99.17.20:8080;
      proxy_set_header X-Request-ID \$request_id;
      add_header X-Request-ID \$request_id always;
    }
    location /slow {
      proxy_pass http://10.99.17.20:8080;
      proxy_read_timeout 1s;
      proxy_set_header X-Request-ID \$request_id;
      add_header X-Request-ID \$request_id always;
    }
  }
EOF
wait_listen ${PFX}s tcp 80
xcap_start ${PFX}s eth1 http_upstream.pcap
cap_start ${PFX}c eth0 http_errors.pcap
get ${PFX}c http://10.99.16.20/index.html http://10.99.16.20/missing.html http://10.99.16.20/unavailable
get ${PFX}c http://10.99.16.20/api/orders/42 http://10.99.16.20/slow
wait_file "$WORK/log/upstream.log" '^\(sent\|failed\) /slow'   # the upstream's late answer, ~2 s on
cap_stop
xcap_stop
grep -E '^(sent|failed)' "$WORK/log/upstream.log"
expect_n http_errors.pcap 'tcp.flags.syn==1 && tcp.flags.ack==0' 2
expect_n http_errors.pcap 'http.request' 5
expect_n http_errors.pcap 'http.response.code==200' 2
expect_n http_errors.pcap 'http.response.code==404' 1
expect_n http_errors.pcap 'http.response.code==503' 1
expect_n http_errors.pcap 'http.response.code==504' 1
expect_n http_errors.pcap 'http.response && http.response.line contains "X-Request-ID: "' 2
expect_n http_upstream.pcap 'tcp.flags.syn==1 && tcp.flags.ack==0' 2
expect_n http_upstream.pcap 'http.request && tcp.dstport==8080' 2
expect_n http_upstream.pcap 'http.request.line contains "X-Request-ID: "' 2
expect http_upstream.pcap 'http.response.code==200' 1
expect http_upstream.pcap 'tcp.flags.reset==1 && ip.src==10.99.17.10' 1
# the request id nginx put on the 504 is the one the upstream got for /slow
rid_client=$(fields http_errors.pcap 'http.response.code==504' http.response.line | tr ',' '\n' | sed -n 's/^X-Request-ID: \([0-9a-f]*\).*/\1/p')
rid_up=$(fields http_upstream.pcap 'http.request.uri=="/slow"' http.request.line | tr ',' '\n' | sed -n 's/^X-Request-ID: \([0-9a-f]*\).*/\1/p')
[ -n "$rid_client" ] && [ "$rid_client" = "$rid_up" ] || die "X-Request-ID of /slow: client side '$rid_client', upstream side '$rid_up'"
echo "  ok X-Request-ID of /slow on both sides: $rid_client"
teardown
record http_errors.pcap "curl, nginx (proxy), upstream.py" "ipv4,tcp,http1,keep-alive,404,503,504,gateway-timeout,reverse-proxy,x-request-id,fin" \
    "ftp-c 10.99.16.10 --veth-- ftp-s 10.99.16.20 (nginx :80; its eth1 10.99.17.10 --veth-- ftp-u 10.99.17.20, \`tools/upstream.py\` (python3 http.server) :8080). nginx: static root, \`location /unavailable { return 503; }\`, \`location /api/\` and \`location /slow { proxy_read_timeout 1s; }\` both \`proxy_pass http://10.99.17.20:8080\` with \`proxy_set_header X-Request-ID \$request_id; add_header X-Request-ID \$request_id always;\`. Two keep-alive curl runs: /index.html 200, /missing.html 404, /unavailable 503; then /api/orders/42 200 (proxied) and /slow 504 Gateway Time-out (the upstream sleeps 3 s, nginx gives up after 1 s). tcpdump on ftp-c eth0, at the same time as http_upstream.pcap."
record http_upstream.pcap "nginx (proxy), upstream.py" "ipv4,tcp,http1,http1.0,reverse-proxy,upstream,x-request-id,late-response,rst,fin" \
    "The upstream side of http_errors.pcap (same run, second tcpdump on ftp-s eth1): nginx 10.99.17.10 -> upstream.py 10.99.17.20:8080, one HTTP/1.0 connection per proxied request, each with the X-Request-ID nginx generated (the same value as in the client-side response). /api/orders/42: 200 at once. /slow: nginx closes the connection (FIN) after 1 s; the upstream answers 200 at 3 s into the closed connection and nginx's kernel answers with RST."
fi

# ---------------------------------------------------------------------------
if want http_timeout.pcap; then
log "18 http_timeout.pcap"
pair 18 v4
# accepts, reads whatever comes, never writes; exits when the client closes
bg ${PFX}s socat-silent socat -u -T 15 TCP4-LISTEN:80,bind=10.99.18.20,reuseaddr OPEN:/dev/null
wait_listen ${PFX}s tcp 80
cap_start ${PFX}c eth0 http_timeout.pcap
rc=0; nsx ${PFX}c curl -sS --max-time 2 -o /dev/null http://10.99.18.20/report || rc=$?
echo "curl exit $rc"
[ $rc -eq 28 ] || die "http_timeout: curl should time out (exit 28), got $rc"
cap_stop
expect_n http_timeout.pcap 'tcp.flags.syn==1 && tcp.flags.ack==0' 1
expect_n http_timeout.pcap 'http.request' 1
expect_n http_timeout.pcap 'http.response' 0
expect_n http_timeout.pcap 'tcp.len>0 && ip.src==10.99.18.20' 0
expect http_timeout.pcap 'tcp.flags.fin==1 && ip.src==10.99.18.10' 1
teardown
record http_timeout.pcap "curl, socat" "ipv4,tcp,http1,no-response,client-timeout,fin" \
    "ftp-c 10.99.18.10 --veth-- ftp-s 10.99.18.20 (\`socat -u TCP4-LISTEN:80 OPEN:/dev/null\`: accepts and reads, never answers). \`curl --max-time 2 http://10.99.18.20/report\`: one GET, ACKed but never answered; after 2 s curl gives up (exit 28) and closes with FIN, socat closes its side. tcpdump on ftp-c eth0."
fi

# ---------------------------------------------------------------------------
if want http_trace.pcap; then
log "19 http_trace.pcap"
pair 19 v4
nginx_conf ${PFX}s <<EOF
  server {
    listen 10.99.19.20:80;
    server_name flowtrail.test;
    root $WWW;
    location /api/ {
      default_type application/json;
      add_header Set-Cookie "s=SECRET-SET-COOKIE; Path=/; HttpOnly";
      return 200 '{"ok":true}\n';
    }
  }
EOF
wait_listen ${PFX}s tcp 80
cap_start ${PFX}c eth0 http_trace.pcap
# two requests on one keep-alive connection (--next keeps curl's connection cache)
nsx ${PFX}c curl -sS --max-time 10 -w '%{http_code} %{url_effective}\n' -o /dev/null \
    -A 'demo-app/2.3.1' \
    -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
    -H 'b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90' \
    -H 'X-Request-ID: req-1234' \
    -H 'Authorization: Bearer SECRET-TOKEN' \
    -H 'Cookie: session=SECRET-COOKIE' \
    -H 'X-Client-Version: 2.3.1' \
    http://10.99.19.20/api/orders \
    --next -sS --max-time 10 -w '%{http_code} %{url_effective}\n' -o /dev/null \
    -H 'sw8: 1-MTIzNDU2Nzg5MA==-NTY3OA==-0-c2VydmljZQ==-aW5zdGFuY2U=-L2FwaQ==-MTAuMC4wLjE6ODA4MA==' \
    -H 'X-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124' \
    -H 'X-B3-SpanId: a2fb4a1d1a96d312' \
    http://10.99.19.20/api/users
cap_stop
expect_n http_trace.pcap 'tcp.flags.syn==1 && tcp.flags.ack==0' 1
expect_n http_trace.pcap 'http.request' 2
expect_n http_trace.pcap 'http.response.code==200' 2
expect_n http_trace.pcap 'http.request.line contains "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"' 1
expect_n http_trace.pcap 'http.request.line contains "b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"' 1
expect_n http_trace.pcap 'http.request.line contains "X-Request-ID: req-1234"' 1
expect_n http_trace.pcap 'http.authorization == "Bearer SECRET-TOKEN"' 1
expect_n http_trace.pcap 'http.cookie == "session=SECRET-COOKIE"' 1
expect_n http_trace.pcap 'http.request.line contains "X-Client-Version: 2.3.1"' 1
expect_n http_trace.pcap 'http.user_agent == "demo-app/2.3.1"' 1
expect_n http_trace.pcap 'http.set_cookie contains "s=SECRET-SET-COOKIE"' 2
expect_n http_trace.pcap 'http.request.line contains "sw8: 1-MTIzNDU2Nzg5MA==-NTY3OA==-0-c2VydmljZQ==-aW5zdGFuY2U=-L2FwaQ==-MTAuMC4wLjE6ODA4MA=="' 1
expect_n http_trace.pcap 'http.request.line contains "X-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124"' 1
expect_n http_trace.pcap 'http.request.line contains "X-B3-SpanId: a2fb4a1d1a96d312"' 1
teardown
record http_trace.pcap "curl, nginx" "ipv4,tcp,http1,keep-alive,traceparent,b3,sw8,x-b3,x-request-id,authorization,cookie,set-cookie,user-agent,fin" \
    "ftp-c 10.99.19.10 --veth-- ftp-s 10.99.19.20 (nginx; \`location /api/ { add_header Set-Cookie \"s=SECRET-SET-COOKIE; Path=/; HttpOnly\"; return 200 '{\"ok\":true}'; }\`). One curl, two requests on one keep-alive connection (\`--next\`): GET /api/orders with User-Agent demo-app/2.3.1, \`traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\`, \`b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90\`, \`X-Request-ID: req-1234\`, \`Authorization: Bearer SECRET-TOKEN\`, \`Cookie: session=SECRET-COOKIE\`, \`X-Client-Version: 2.3.1\`; then GET /api/users (User-Agent curl) with \`sw8: 1-MTIzNDU2Nzg5MA==-NTY3OA==-0-c2VydmljZQ==-aW5zdGFuY2U=-L2FwaQ==-MTAuMC4wLjE6ODA4MA==\`, \`X-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124\`, \`X-B3-SpanId: a2fb4a1d1a96d312\`. Both answers 200 with the Set-Cookie. tcpdump on ftp-c eth0."
fi

# ---------------------------------------------------------------------------
if want tls.pcap; then
log "20 tls.pcap"
pair 20 v4
mkdir -p "$WORK/tls20"
cert "$WORK/tls20" www.example.test
nginx_conf ${PFX}s <<EOF
  server {
    listen 10.99.20.20:443 ssl http2;
    server_name www.example.test;
    ssl_certificate $WORK/tls20/cert.pem;
    ssl_certificate_key $WORK/tls20/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $WWW;
  }
EOF
wait_listen ${PFX}s tcp 443
TCURL=(curl -sS -k --max-time 10 -o /dev/null -w '%{http_code} %{http_version} %{url_effective}\n'
       --resolve www.example.test:443:10.99.20.20)
cap_start ${PFX}c eth0 tls.pcap
nsx ${PFX}c "${TCURL[@]}" --http2 https://www.example.test/index.html
nsx ${PFX}c "${TCURL[@]}" --http1.1 https://www.example.test/small.txt
nsx ${PFX}c timeout 10 openssl s_client -connect 10.99.20.20:443 -servername api.example.test \
    -alpn h2,http/1.1 </dev/null 2>&1 | grep -aE '^(Protocol|ALPN|New,|Verif)|^ *Protocol *:' || true
nsx ${PFX}c "${TCURL[@]}" --http2 --tlsv1.2 --tls-max 1.2 https://www.example.test/small.txt
cap_stop
expect_n tls.pcap 'tcp.flags.syn==1 && tcp.flags.ack==0' 4
expect_n tls.pcap 'tls.handshake.type==1' 4
expect_n tls.pcap 'tls.handshake.type==1 && tls.handshake.extensions_server_name=="www.example.test"' 3
expect_n tls.pcap 'tls.handshake.type==1 && tls.handshake.extensions_server_name=="api.example.test"' 1
expect_n tls.pcap 'tls.handshake.type==1 && tls.handshake.extensions_alpn_str=="h2"' 3
expect_n tls.pcap 'tls.handshake.type==1 && tls.handshake.extensions_alpn_str=="http/1.1" && !(tls.handshake.extensions_alpn_str=="h2")' 1
expect_n tls.pcap 'tls.handshake.type==2 && tls.handshake.extensions.supported_version==0x0304' 3
expect_n tls.pcap 'tls.handshake.type==2 && !tls.handshake.extensions.supported_version && tls.handshake.extensions_alpn_str=="h2"' 1
expect tls.pcap 'tls.handshake.type==11 && x509ce.dNSName=="www.example.test"' 1
expect_n tls.pcap 'tls.alert_message' 0
teardown
record tls.pcap "curl, openssl s_client, nginx (ssl, http2)" "ipv4,tcp,tls,tls1.3,tls1.2,sni,alpn,h2,http1,certificate,fin" \
    "ftp-c 10.99.20.10 --veth-- ftp-s 10.99.20.20 (nginx \`listen 443 ssl http2; ssl_protocols TLSv1.2 TLSv1.3;\`, self-signed ECDSA P-256 certificate CN/SAN www.example.test made by \`openssl req -x509\` at build time). Four connections: \`curl -k --resolve www.example.test:443:10.99.20.20 --http2 https://www.example.test/index.html\` (TLS 1.3, ALPN h2,http/1.1 offered, h2 used); the same with \`--http1.1\` /small.txt (ALPN http/1.1 only); \`openssl s_client -connect 10.99.20.20:443 -servername api.example.test -alpn h2,http/1.1 </dev/null\` (TLS 1.3); \`curl --http2 --tlsv1.2 --tls-max 1.2\` /small.txt (TLS 1.2: the ServerHello's ALPN h2 and the Certificate are in clear). In TLS 1.3 the server's ALPN choice and certificate are encrypted. tcpdump on ftp-c eth0."
fi

# ---------------------------------------------------------------------------
if want tls_failure.pcap; then
log "21 tls_failure.pcap"
pair 21 v4
mkdir -p "$WORK/tls21"
cert "$WORK/tls21" www.example.test
nginx_conf ${PFX}s <<EOF
  server {
    listen 10.99.21.20:443 ssl;
    server_name www.example.test;
    ssl_certificate $WORK/tls21/cert.pem;
    ssl_certificate_key $WORK/tls21/key.pem;
    ssl_protocols TLSv1.3;
    root $WWW;
  }
EOF
wait_listen ${PFX}s tcp 443
cap_start ${PFX}c eth0 tls_failure.pcap
# 1: the client offers at most TLS 1.2 -> alert protocol_version (70)
nsx ${PFX}c timeout 10 openssl s_client -connect 10.99.21.20:443 -servername www.example.test \
    -tls1_2 </dev/null 2>&1 | grep -E 'alert|error' | head -3 || true
# 2: TLS 1.3 with a cipher suite the server does not enable -> handshake_failure (40)
nsx ${PFX}c timeout 10 openssl s_client -connect 10.99.21.20:443 -servername www.example.test \
    -tls1_3 -ciphersuites TLS_AES_128_CCM_SHA256 </dev/null 2>&1 | grep -E 'alert|error' | head -3 || true
cap_stop
expect_n tls_failure.pcap 'tcp.flags.syn==1 && tcp.flags.ack==0' 2
expect_n tls_failure.pcap 'tls.handshake.type==1' 2
expect_n tls_failure.pcap 'tls.handshake.type==2' 0
expect_n tls_failure.pcap 'tls.alert_message.desc==70 && ip.src==10.99.21.20' 1
expect_n tls_failure.pcap 'tls.alert_message.desc==40 && ip.src==10.99.21.20' 1
teardown
record tls_failure.pcap "openssl s_client, nginx (ssl)" "ipv4,tcp,tls,tls-alert,protocol-version,handshake-failure,sni,fin" \
    "ftp-c 10.99.21.10 --veth-- ftp-s 10.99.21.20 (nginx \`listen 443 ssl; ssl_protocols TLSv1.3;\`, self-signed certificate www.example.test). \`openssl s_client -servername www.example.test -tls1_2 </dev/null\`: the server answers the ClientHello with a fatal alert protocol_version (70); \`openssl s_client -tls1_3 -ciphersuites TLS_AES_128_CCM_SHA256\` (a suite OpenSSL servers do not enable by default): fatal alert handshake_failure (40). No ServerHello in either connection. tcpdump on ftp-c eth0."
fi

# ---------------------------------------------------------------------------
if want dns_errors.pcap; then
log "22 dns_errors.pcap"
pair 22 v4
# a second address in ftp-s where no DNS server answers: packets dropped silently
ip -n ${PFX}s addr add 10.99.22.21/24 dev eth0
nsx ${PFX}s iptables -A INPUT -d 10.99.22.21 -p udp --dport 53 -j DROP
# dead.test's upstream: an address the kernel has no route to
ip -n ${PFX}s route add unreachable 10.99.122.99/32
# broken.test's upstream: a second dnsmasq (loopback of ftp-s, not on the
# captured link) that answers without DNSSEC signatures
bg ${PFX}s dnsmasq-up dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=127.0.0.2 --pid-file="$WORK/dnsmasq-up.pid" \
    --log-queries --log-facility=- --local=/test/ --host-record=broken.test,10.99.0.66
TXT=()
for c in a b c; do TXT+=(--txt-record="big.test,flowtrail $c $(printf "$c%.0s" $(seq 190))"); done
bg ${PFX}s dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=10.99.22.20 --pid-file="$WORK/dnsmasq.pid" \
    --log-queries=extra --log-facility=- \
    --local=/test/ \
    --host-record=www.test,10.99.0.80,fd00:99::80 \
    --cname=alias.test,www.test --cname=chain.test,alias.test \
    "${TXT[@]}" \
    --server=/dead.test/10.99.122.99 \
    --server=/broken.test/127.0.0.2 \
    --dnssec --trust-anchor=.,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D \
    --trust-anchor=broken.test,12345,13,2,0000000000000000000000000000000000000000000000000000000000000000
wait_listen ${PFX}s udp 53
wait_listen ${PFX}s tcp 53
for i in $(seq 50); do [ -n "$(nsx ${PFX}s ss -Hlun 'src 127.0.0.2:53')" ] && break; sleep 0.1; done
# qdig DIG-ARGS...: one dig in ftp-c (exit 9 when no answer), the lines that matter
qdig() {
    { nsx ${PFX}c dig "$@" 2>&1 || true; } |
        { grep -E 'status:|EDE:|Truncated|timed out|no servers' || true; } | sed 's/^/    /'
}
cap_start ${PFX}c eth0 dns_errors.pcap
for q in "nope.test A" "dead.test A" "broken.test A"; do
    echo "  $q"
    # shellcheck disable=SC2086
    qdig @10.99.22.20 +tries=1 +time=2 $q
done
echo "  silent.test A @10.99.22.21"
qdig @10.99.22.21 +time=1 +tries=2 silent.test A
echo "  +noedns big.test TXT"
qdig @10.99.22.20 +tries=1 +time=2 +noedns big.test TXT
echo "  chain.test AAAA"
qdig @10.99.22.20 +tries=1 +time=2 chain.test AAAA
cap_stop
expect_n dns_errors.pcap 'dns.flags.response==1 && dns.flags.rcode==3' 1
expect_n dns_errors.pcap 'dns.flags.response==1 && dns.flags.rcode==5 && dns.opt.ext_error.info_code==23' 1
expect_n dns_errors.pcap 'dns.flags.response==1 && dns.flags.rcode==2 && dns.opt.ext_error.info_code==6' 1
expect_n dns_errors.pcap 'dns.flags.response==0 && ip.dst==10.99.22.21' 2
expect_n dns_errors.pcap 'ip.src==10.99.22.21' 0
[ "$(fields dns_errors.pcap 'ip.dst==10.99.22.21 && dns' dns.id | sort -u | wc -l)" -eq 1 ] ||
    die "dns_errors.pcap: the two unanswered queries do not share one DNS id"
expect_n dns_errors.pcap 'udp && dns.flags.response==1 && dns.flags.truncated==1' 1
expect_n dns_errors.pcap 'tcp && dns.flags.response==1 && dns.qry.type==16 && dns.count.answers==3' 1
expect_n dns_errors.pcap 'dns.flags.response==1 && dns.qry.type==28 && dns.resp.type==5 && dns.resp.type==28' 1
teardown
record dns_errors.pcap "dig, dnsmasq, iptables" "ipv4,udp,tcp,dns,nxdomain,refused,servfail,ede,no-response,dns-retransmission,truncated,dns-over-tcp,cname-chain,aaaa,txt" \
    "ftp-c 10.99.22.10 --veth-- ftp-s 10.99.22.20 (dnsmasq --no-resolv --local=/test/ with www.test A+AAAA, CNAMEs chain.test -> alias.test -> www.test, three ~200-byte TXT records for big.test; \`--server=/dead.test/10.99.122.99\` with \`ip route add unreachable 10.99.122.99\`; \`--server=/broken.test/127.0.0.2\`, a second dnsmasq that answers unsigned, with \`--dnssec\` and a trust anchor for broken.test) and 10.99.22.21 on ftp-s with \`iptables -A INPUT -d 10.99.22.21 -p udp --dport 53 -j DROP\`. \`dig\` queries: nope.test (NXDOMAIN), dead.test (REFUSED, EDE 23 network error), broken.test (SERVFAIL, EDE 6 DNSSEC bogus), \`dig @10.99.22.21 +time=1 +tries=2 silent.test\` (two queries with the same id and port, no answer), \`dig +noedns big.test TXT\` (UDP answer with TC set holding the 2 TXT records that fit in 512 bytes, then dig asks again over TCP, new id: all 3 TXT records, about 670 bytes), chain.test AAAA (CNAME, CNAME, AAAA). tcpdump on ftp-c eth0."
fi

MADE_BY=make_pcaps.sh
