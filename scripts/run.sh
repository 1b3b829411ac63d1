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
q = """select client_ip, server_ip, server_port, l4_protocol, close_type,
          client_packets + server_packets as packets, client_bytes + server_bytes as bytes
       from read_parquet('out/flows/**/*.parquet', hive_partitioning = true)
       order by bytes desc limit 10"""
print("top flows by bytes (DuckDB over out/flows):")
duckdb.sql(q).show()
PY
