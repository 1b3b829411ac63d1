#!/usr/bin/env bash
# Database and cache captures for pcaps/: Redis (RESP2 and RESP3, errors,
# a pipelined batch, pub/sub, AUTH), MariaDB (text protocol, errors,
# server-side prepared statements, a TLS upgrade) and PostgreSQL (simple
# query protocol with errors, the extended protocol from pgbench, an
# SSLRequest answered 'S').
#
# Run directly (as root) it makes only these captures:
#   pcaps/make_db_pcaps.sh                          all four of them
#   pcaps/make_db_pcaps.sh --only redis_rich,mysql  only these
# leaving every other capture and its MANIFEST.tsv / README.md rows as they
# are.  make_pcaps.sh sources this file after make_l7_pcaps.sh (a full run
# makes these too), so everything here uses their helpers (pair, bg,
# wait_listen, cap_start, expect, expect_n, fields, record, want, ...) and
# conventions: scenario N uses 10.99.N.0/24 (here 40-43), client .10 in
# ftp-c, server .20 in ftp-s.  Captures are taken at the server's veth.
#
# Packages (installed here when the binary is missing): mariadb-server,
# mariadb-client (Debian), postgresql (server, psql, pgbench), and the
# PyPI package mysql-connector-python (pure-Python driver with
# server-side prepared statements, used with use_pure=True).
DB_CAPTURES=(redis_rich.pcap mysql.pcap mysql_ssl.pcap postgresql.pcap)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    export FTP_EXTRA_CAPTURES="${FTP_EXTRA_CAPTURES:-} ${DB_CAPTURES[*]}"
    if [ $# -eq 0 ]; then exec "$here/make_pcaps.sh" --only "$(IFS=,; echo "${DB_CAPTURES[*]}")"; fi
    exec "$here/make_pcaps.sh" "$@"
fi

MADE_BY=make_db_pcaps.sh

# ------------------------------------------------------------ packages --
db_install() {   # only what the wanted captures need and is not there yet
    local apt=()
    if want mysql.pcap mysql_ssl.pcap; then
        command -v mariadbd >/dev/null 2>&1 || apt+=(mariadb-server)
        command -v mariadb >/dev/null 2>&1 || apt+=(mariadb-client)
    fi
    if want postgresql.pcap; then
        { command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/postgres" ]; } || apt+=(postgresql)
    fi
    if [ ${#apt[@]} -gt 0 ]; then
        log "installing ${apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${apt[@]}" >"$WORK/log/apt.log" 2>&1 ||
            die "apt-get install ${apt[*]} failed"
    fi
    if want mysql.pcap && ! python3 -c 'import mysql.connector' 2>/dev/null; then
        log "installing mysql-connector-python"
        # a Debian python3 refuses plain pip installs (PEP 668)
        { python3 -m pip install -q mysql-connector-python ||
          python3 -m pip install -q --break-system-packages mysql-connector-python; } >"$WORK/log/pip.log" 2>&1 ||
            die "pip install mysql-connector-python failed"
    fi
}
db_install

# resp ARG...: one command in RESP (array of bulk strings), as redis-cli sends it
resp_cmd() { local a; printf '*%d\r\n' $#; for a in "$@"; do printf '$%d\r\n%s\r\n' ${#a} "$a"; done; }

# ---------------------------------------------------------------------------
if want redis_rich.pcap; then
log "40 redis_rich.pcap"
pair 40 v4
RPW=s3cr3t-redis-pw
mkdir -p "$WORK/redis40"
# also on the server's loopback (not captured) for the subscriber check
bg ${PFX}s redis40 redis-server --bind 10.99.40.20 127.0.0.1 --port 6379 --save '' --appendonly no \
    --protected-mode no --daemonize no --dir "$WORK/redis40" --logfile '' --requirepass "$RPW"
wait_listen ${PFX}s tcp 6379
RC=(timeout 10 redis-cli -h 10.99.40.20 -p 6379)
RA=("${RC[@]}" --no-auth-warning -a "$RPW")
# rc40 [redis-cli options and command]: one connection, its answer printed
rc40() { printf '  %-40s -> ' "$*" | sed "s/$RPW/***/"; nsx ${PFX}c "$@" 2>&1 | paste -sd' ' -; }
cap_start ${PFX}s eth0 redis_rich.pcap
rc40 "${RC[@]}" GET user:1                          # -NOAUTH
rc40 "${RC[@]}" --no-auth-warning -a wrong-redis-pw PING   # AUTH -WRONGPASS, PING -NOAUTH
rc40 "${RA[@]}" SET user:1 alice                    # AUTH +OK, +OK
rc40 "${RA[@]}" SET user:2 bob
rc40 "${RA[@]}" GET user:1                          # $5 alice
rc40 "${RA[@]}" GET user:missing                    # $-1
rc40 "${RA[@]}" SET counter 10
rc40 "${RA[@]}" INCR counter                        # :11
rc40 "${RA[@]}" INCR user:1                         # -ERR value is not an integer
rc40 "${RA[@]}" FOOBAR arg1                         # -ERR unknown command
rc40 "${RA[@]}" LPUSH jobs job-a job-b job-c        # :3
rc40 "${RA[@]}" LRANGE jobs 0 -1                    # *3
rc40 "${RC[@]}" -3 --no-auth-warning --user default --pass "$RPW" HSET user:h name alice age 30   # AUTH default, HELLO 3
rc40 "${RC[@]}" -3 --no-auth-warning --user default --pass "$RPW" HGETALL user:h                  # %2 map
# 12 commands in one write on one connection, then QUIT
{ resp_cmd AUTH "$RPW"
  for i in 1 2 3 4 5; do resp_cmd SET "pipe:$i" "value-$i"; done
  resp_cmd MGET pipe:1 pipe:3 pipe:missing
  resp_cmd INCR pipe:n; resp_cmd INCR pipe:n; resp_cmd INCRBY pipe:n 10
  resp_cmd DEL pipe:1 pipe:2
  resp_cmd PING
  resp_cmd QUIT; } >"$WORK/redis40-pipe.resp"
echo "  pipelined batch ($(wc -c <"$WORK/redis40-pipe.resp") bytes, 13 commands incl. QUIT):"
nsx ${PFX}c timeout 10 nc -w 3 10.99.40.20 6379 <"$WORK/redis40-pipe.resp" | tr -d '\r' | paste -sd' ' - | sed 's/^/    /'
# pub/sub: a subscriber, two messages published from other connections
# (ip netns exec execs timeout, so SUB_PID is timeout's pid and TERM reaches redis-cli)
ip netns exec ${PFX}c timeout 20 redis-cli -h 10.99.40.20 -p 6379 --no-auth-warning -a "$RPW" SUBSCRIBE news \
    >"$WORK/log/redis40-sub.log" 2>&1 &
SUB_PID=$!; PIDS+=("$SUB_PID")
for i in $(seq 50); do
    [ "$(nsx ${PFX}s redis-cli -h 127.0.0.1 --no-auth-warning -a "$RPW" PUBSUB NUMSUB news | sed -n 2p)" = 1 ] && break
    sleep 0.1
done
rc40 "${RA[@]}" PUBLISH news "hello subscribers"       # :1
rc40 "${RA[@]}" PUBLISH news "second message"          # :1
sleep 0.3
kill_pid "$SUB_PID"
cap_stop
F=redis_rich.pcap
expect_n $F 'tcp.flags.syn==1 && tcp.flags.ack==0' 18
expect_n $F 'tcp.len>0 && tcp.dstport==6379 && tcp.stream==14' 1
expect_n $F 'resp.error contains "NOAUTH"' 2
expect_n $F 'resp.error contains "WRONGPASS"' 1
expect_n $F 'resp.error contains "not an integer"' 1
expect_n $F 'resp.error contains "unknown command"' 1
expect_n $F 'resp.bulk_string.length == -1' 2          # GET user:missing, MGET pipe:missing
expect $F 'resp.integer == 11' 1
expect_n $F 'tcp.srcport==6379 && tcp.payload contains 25:32:0d:0a' 1      # %2 map (HGETALL)
expect_n $F 'tcp.dstport==6379 && tcp.payload contains "HELLO"' 2
expect_n $F 'tcp.srcport==6379 && tcp.payload contains "message" && tcp.payload contains "hello subscribers"' 1
expect_n $F 'tcp.srcport==6379 && tcp.payload contains "message" && tcp.payload contains "second message"' 1
expect_n $F 'tcp.dstport==6379 && tcp.payload contains "s3cr3t-redis-pw"' 16
expect_n $F 'tcp.flags.fin==1 && ip.src==10.99.40.10' 18                # every connection closed, subscriber too
# the pipelined batch: one client segment with 13 commands, all answered
[ "$(tshark -r "$WORK/out/$F" -Y 'tcp.stream==14 && tcp.dstport==6379 && tcp.len>0' -T fields -e tcp.payload 2>/dev/null |
     xxd -r -p | grep -ac '^\*')" -eq 13 ] || die "$F: the pipelined segment does not hold 13 commands"
echo "  ok $F pipelined segment holds 13 commands"
teardown
record redis_rich.pcap "redis-cli, redis-server (requirepass), nc (netcat-openbsd)" \
    "ipv4,tcp,resp,resp3,redis,auth,noauth,wrongpass,error-reply,nil,integer,array,map,hello,pipeline,pubsub,fin" \
    "ftp-c 10.99.40.10 --veth-- ftp-s 10.99.40.20 (redis-server --requirepass s3cr3t-redis-pw --save ''). 18 connections, one redis-cli command each (plus the AUTH that \`-a\` sends first): GET without AUTH (-NOAUTH); \`-a wrong-redis-pw PING\` (-WRONGPASS, -NOAUTH); SET/GET, GET of a missing key (nil), INCR (:11), INCR on a string and an unknown command (-ERR), LPUSH/LRANGE (array); \`redis-cli -3 --user default --pass\` HSET/HGETALL (AUTH default, HELLO 3, RESP3 map); 13 RESP commands in one write from \`nc\` (AUTH, 5 SET, MGET, INCR x2, INCRBY, DEL, PING, QUIT); SUBSCRIBE news and two PUBLISHes from other connections (pub/sub messages). tcpdump on ftp-s eth0."
fi

# ---------------------------------------------------------------------------
# mariadb_start N [ssl]: a private MariaDB in ftp-s on 10.99.N.20:3306 (TCP;
# its unix socket serves the setup, off the captured link) with user
# app / s3cr3t-mysql-pw; TLS enabled only with "ssl".
MPW=s3cr3t-mysql-pw
mariadb_start() {
    local n=$1 d="$WORK/mysql$1" opts=(--skip-ssl)
    mkdir -p "$d"
    mariadb-install-db --no-defaults --user=root --datadir="$d/data" --auth-root-authentication-method=socket \
        --skip-test-db >"$WORK/log/mariadb-install-$n.log" 2>&1 || die "mariadb-install-db failed"
    if [ "${2:-}" = ssl ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/key.pem" \
            -out "$d/cert.pem" -days 3650 -subj "/CN=db.example.test" >"$WORK/log/openssl-mysql.log" 2>&1 ||
            die "openssl req failed"
        opts=(--ssl-cert="$d/cert.pem" --ssl-key="$d/key.pem")
    fi
    bg ${PFX}s "mariadbd-$n" mariadbd --no-defaults --user=root --datadir="$d/data" --socket="$d/mysql.sock" \
        --pid-file="$d/mariadbd.pid" --bind-address="10.99.$n.20" --port=3306 --skip-name-resolve \
        --innodb-buffer-pool-size=16M --skip-log-bin --log-error="$WORK/log/mariadbd-$n.err" "${opts[@]}"
    wait_listen ${PFX}s tcp 3306
    nsx ${PFX}s mariadb --no-defaults --socket="$d/mysql.sock" -u root \
        -e "CREATE USER 'app'@'%' IDENTIFIED BY '$MPW'; GRANT ALL ON *.* TO 'app'@'%';" ||
        die "mariadb: cannot create user app"
}

if want mysql.pcap; then
log "41 mysql.pcap"
pair 41 v4
mariadb_start 41
cat >"$WORK/mysql41.sql" <<'EOF'
CREATE DATABASE shop;
USE shop;
CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(32) NOT NULL, qty INT NOT NULL);
INSERT INTO items (name, qty) VALUES ('apple', 3), ('pear', 5), ('plum', 7);
SELECT id, name, qty FROM items ORDER BY id;
SELEC 1;
SELECT * FROM missing_table;
UPDATE items SET qty = qty + 1 WHERE qty > 4;
EOF
cat >"$WORK/mysql41.py" <<EOF
import mysql.connector
c = mysql.connector.connect(host="10.99.41.20", port=3306, user="app", password="$MPW",
                            database="shop", use_pure=True, ssl_disabled=True)
cur = c.cursor(prepared=True)
cur.execute("SELECT name, qty FROM items WHERE qty > ? ORDER BY id", (4,))
print("prepared select:", cur.fetchall())
cur.execute("INSERT INTO items (name, qty) VALUES (?, ?)", ("kiwi", 9))
print("prepared insert rowcount:", cur.rowcount)
c.commit()
cur.close()
c.close()
EOF
cap_start ${PFX}s eth0 mysql.pcap
nsx ${PFX}c timeout 20 mariadb --no-defaults --skip-ssl -h 10.99.41.20 -P 3306 -u app -p"$MPW" --force --table \
    <"$WORK/mysql41.sql" 2>&1 | sed 's/^/    /'
nsx ${PFX}c timeout 20 python3 "$WORK/mysql41.py" 2>&1 | sed 's/^/    /'
cap_stop
F=mysql.pcap
expect_n $F 'tcp.flags.syn==1 && tcp.flags.ack==0' 2
expect_n $F 'mysql.command==2' 1                       # COM_INIT_DB (USE shop)
expect_n $F 'mysql.error_code==1064' 1
expect_n $F 'mysql.error_code==1146' 1
expect_n $F 'mysql.command==22' 2                      # COM_STMT_PREPARE
expect_n $F 'mysql.command==23' 2                      # COM_STMT_EXECUTE
expect_n $F 'mysql.command==1' 2                       # COM_QUIT
expect_n $F 'mysql.command==25' 2                      # COM_STMT_CLOSE
expect_n $F 'mysql.command==26' 2                      # COM_STMT_RESET (mysql-connector, before each execute)
expect_n $F 'mysql.command==14' 1                      # COM_PING (mysql-connector)
expect_n $F 'mysql.command==3' 11                      # COM_QUERY: 8 from mariadb (with its SELECT DATABASE() before USE), 3 from python
expect_n $F 'mysql.caps.sl==0 && ip.src==10.99.41.20 && mysql.protocol' 2   # greetings without CLIENT_SSL
expect $F 'mysql.affected_rows==3' 1
expect $F 'mysql.affected_rows==2' 1
expect $F 'mysql.query contains "SELECT id, name, qty FROM items"' 1
expect_n $F 'tls' 0
teardown
record mysql.pcap "mariadb (client), mariadbd, python3 mysql-connector-python" \
    "ipv4,tcp,mysql,mariadb,handshake,mysql-native-password,com-query,com-init-db,resultset,ok-packet,err-packet,1064,1146,prepared-statement,com-stmt-prepare,com-stmt-execute,com-stmt-close,com-quit,fin" \
    "ftp-c 10.99.41.10 --veth-- ftp-s 10.99.41.20 (mariadbd --skip-ssl on :3306, user app / s3cr3t-mysql-pw, mysql_native_password). Connection 1, \`mariadb --skip-ssl --force < script\`: CREATE DATABASE shop, USE shop (COM_INIT_DB), CREATE TABLE items, INSERT 3 rows (affected 3), SELECT 3 rows, \`SELEC 1\` (ERR 1064), SELECT from missing_table (ERR 1146), UPDATE (affected 2), COM_QUIT. Connection 2, python3 mysql-connector-python \`cursor(prepared=True)\`: COM_STMT_PREPARE/EXECUTE of a SELECT with one parameter (2 rows, binary protocol) and an INSERT with two (affected 1), COMMIT, COM_STMT_CLOSE, COM_QUIT. tcpdump on ftp-s eth0."
fi

# ---------------------------------------------------------------------------
if want mysql_ssl.pcap; then
log "42 mysql_ssl.pcap"
pair 42 v4
mariadb_start 42 ssl
cap_start ${PFX}s eth0 mysql_ssl.pcap
nsx ${PFX}c timeout 20 mariadb --no-defaults --ssl --ssl-verify-server-cert=0 -h 10.99.42.20 -P 3306 -u app \
    -p"$MPW" -e "SHOW STATUS LIKE 'Ssl_version'; SELECT 1 AS one;" 2>&1 | sed 's/^/    /'
cap_stop
F=mysql_ssl.pcap
expect_n $F 'tcp.flags.syn==1 && tcp.flags.ack==0' 1
expect_n $F 'mysql.caps.sl==1 && ip.src==10.99.42.20' 1   # the greeting offers CLIENT_SSL
expect_n $F 'mysql.caps.sl==1 && ip.src==10.99.42.10 && tcp.len==36' 1   # SSL request: 4-byte header + 32
expect_n $F 'tls.handshake.type==2 && tls.handshake.extensions.supported_version==0x0304' 1
expect_n $F 'tls.handshake.type==1' 1
expect $F 'tls.app_data' 2
expect_n $F 'mysql.query' 0
teardown
record mysql_ssl.pcap "mariadb (client), mariadbd (ssl)" "ipv4,tcp,mysql,mariadb,handshake,client-ssl,ssl-request,tls,tls1.3,fin" \
    "ftp-c 10.99.42.10 --veth-- ftp-s 10.99.42.20 (mariadbd with a self-signed ECDSA certificate, user app / s3cr3t-mysql-pw). \`mariadb --ssl --ssl-verify-server-cert=0 -e \"SHOW STATUS LIKE 'Ssl_version'; SELECT 1 AS one;\"\`: server greeting in clear (CLIENT_SSL offered), the client's short SSL request packet (sequence 1, CLIENT_SSL set), then a TLS handshake; the login, both queries and COM_QUIT are encrypted. tcpdump on ftp-s eth0."
fi

# ---------------------------------------------------------------------------
if want postgresql.pcap; then
log "43 postgresql.pcap"
pair 43 v4
PGBIN=$(pg_config --bindir)
PGPW=s3cr3t-pg-pw
d="$WORK/pg43"
mkdir -p "$d/sock"
cert "$d" db.example.test
chown -R postgres: "$d"; chmod 600 "$d/key.pem"
PGU=(setpriv --reuid=postgres --regid=postgres --init-groups)
nsx ${PFX}s "${PGU[@]}" "$PGBIN/initdb" -D "$d/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --no-sync >"$WORK/log/initdb.log" 2>&1 || die "initdb failed"
echo "host all all 10.99.43.0/24 scram-sha-256" >>"$d/data/pg_hba.conf"
bg ${PFX}s postgres "${PGU[@]}" "$PGBIN/postgres" -D "$d/data" -c listen_addresses=10.99.43.20 -c port=5432 \
    -c unix_socket_directories="$d/sock" -c fsync=off -c ssl=on -c ssl_cert_file="$d/cert.pem" \
    -c ssl_key_file="$d/key.pem" -c log_min_messages=warning
wait_listen ${PFX}s tcp 5432
# setup over the unix socket (not captured): role, database, pgbench tables
for i in $(seq 50); do nsx ${PFX}s "${PGU[@]}" "$PGBIN/pg_isready" -q -h "$d/sock" && break; sleep 0.1; done
nsx ${PFX}s "${PGU[@]}" "$PGBIN/psql" -q -h "$d/sock" -U postgres -d postgres \
    -c "CREATE ROLE app LOGIN PASSWORD '$PGPW'" -c "CREATE DATABASE appdb OWNER app" || die "psql setup failed"
nsx ${PFX}s "${PGU[@]}" "$PGBIN/pgbench" -i -s 1 -q -h "$d/sock" -U app appdb >"$WORK/log/pgbench-init.log" 2>&1 ||
    die "pgbench -i failed"
cat >"$WORK/pg43.sql" <<'EOF'
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, qty int NOT NULL);
INSERT INTO items (name, qty) VALUES ('apple', 3), ('pear', 5), ('plum', 7);
SELECT id, name, qty FROM items ORDER BY id;
SELECT * FROM missing_table;
SELEC 1;
UPDATE items SET qty = qty + 1 WHERE qty > 4;
EOF
chmod 644 "$WORK/pg43.sql"
PGC="host=10.99.43.20 port=5432 user=app dbname=appdb"
cap_start ${PFX}s eth0 postgresql.pcap
nsx ${PFX}c env PGPASSWORD="$PGPW" timeout 20 "$PGBIN/psql" -X "$PGC sslmode=disable" -f "$WORK/pg43.sql" 2>&1 |
    sed 's/^/    /'
nsx ${PFX}c env PGPASSWORD="$PGPW" PGSSLMODE=disable timeout 30 "$PGBIN/pgbench" -h 10.99.43.20 -U app -M extended -n -t 5 -c 1 appdb \
    2>&1 | grep -E 'transactions|failed|error' | sed 's/^/    /'
nsx ${PFX}c env PGPASSWORD="$PGPW" timeout 20 "$PGBIN/psql" -X "$PGC sslmode=require" -At -c 'SELECT 42' 2>&1 |
    sed 's/^/    /'
cap_stop
F=postgresql.pcap
expect_n $F 'tcp.flags.syn==1 && tcp.flags.ack==0' 4          # psql, pgbench x2, psql (TLS)
expect_n $F 'pgsql.auth.sasl.mech=="SCRAM-SHA-256" && ip.src==10.99.43.20' 3
expect_n $F 'pgsql.type=="Simple query"' 8                     # 6 from psql, 2 from pgbench's check
expect_n $F 'pgsql.code=="42P01"' 1
expect_n $F 'pgsql.code=="42601"' 1
expect $F 'pgsql.tag=="INSERT 0 3"' 1
expect $F 'pgsql.tag=="SELECT 3"' 1
expect $F 'pgsql.tag=="UPDATE 2"' 1
expect $F 'pgsql.type=="Parse"' 35
expect $F 'pgsql.type=="Bind"' 35
expect $F 'pgsql.type=="Execute"' 35
expect $F 'pgsql.type=="Sync"' 35
expect_n $F 'tcp.dstport==5432 && tcp.len==8 && tcp.payload==00:00:00:08:04:d2:16:2f' 1   # SSLRequest
expect_n $F 'tcp.srcport==5432 && tcp.len==1 && tcp.payload==53' 1                        # 'S'
expect_n $F 'tls.handshake.type==1' 2                          # ClientHello, HelloRetryRequest, ClientHello
expect_n $F 'pgsql.type=="Termination"' 3
teardown
record postgresql.pcap "psql, pgbench, postgres (PostgreSQL 15, scram-sha-256, ssl)" \
    "ipv4,tcp,postgresql,pgsql,startup,scram-sha-256,sasl,simple-query,extended-query,parse,bind,execute,sync,error-response,42P01,42601,command-complete,ssl-request,tls,fin" \
    "ftp-c 10.99.43.10 --veth-- ftp-s 10.99.43.20 (postgres 15 on :5432, pg_hba \`host all all 10.99.43.0/24 scram-sha-256\`, ssl=on with a self-signed certificate, role app / s3cr3t-pg-pw, database appdb with the pgbench -i -s 1 tables made before the capture). Connection 1, \`psql sslmode=disable -f script\` (simple query): CREATE TABLE items, INSERT 3 rows (INSERT 0 3), SELECT (SELECT 3), SELECT from missing_table (42P01), \`SELEC 1\` (42601), UPDATE (UPDATE 2). \`PGSSLMODE=disable pgbench -M extended -n -t 5 -c 1\`: connection 2 checks the tables (2 simple queries), connection 3 runs 5 TPC-B transactions, 7 statements each as Parse/Bind/Describe/Execute/Sync in one segment (35 in all). Connection 4, \`psql sslmode=require -c 'SELECT 42'\`: SSLRequest, 'S', TLS 1.3 (with a HelloRetryRequest: the server's ECDH curve is prime256v1). tcpdump on ftp-s eth0."
fi

MADE_BY=make_pcaps.sh
