#!/usr/bin/env bash
# Sets up, builds, and replays the bundled captures in pcaps/ into out/,
# then asks DuckDB for the top talkers. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --run
cargo build --release -p flowtrail
rm -rf out
mapfile -t captures < <(find pcaps -maxdepth 1 \( -name "*.pcap" -o -name "*.pcapng" \) | sort)
./target/release/flowtrail replay "${captures[@]}" -o out --summary-json out-summary.json
mv out-summary.json out/summary.json
python3 - <<'PY'
import duckdb
flows = "read_parquet('out/flows/**/*.parquet', hive_partitioning = true)"
calls = "read_parquet('out/calls/**/*.parquet', hive_partitioning = true)"
print("top flows by bytes (DuckDB over out/flows; period records summed per flow):")
duckdb.sql(f"""select any_value(capture_point) as point, any_value(client_ip) as client, any_value(server_ip) as server,
                      any_value(server_port) as port, any_value(l4_protocol) as l4, any_value(l7_protocol) as l7,
                      sum(client_packets + server_packets) as packets, sum(client_bytes + server_bytes) as bytes,
                      max_by(close_type, end_ns) as close
               from {flows} group by flow_id order by bytes desc limit 10""").show()
print("calls by protocol and status (out/calls):")
duckdb.sql(f"""select l7_protocol, response_status, count(*) as calls, round(median(latency_ns) / 1e3) as median_latency_us
               from {calls} group by all order by l7_protocol, calls desc""").show()
PY
