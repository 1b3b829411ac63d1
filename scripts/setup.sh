#!/usr/bin/env bash
# Idempotent machine setup for flowtrail: what replay and the tests need.
#   scripts/setup.sh          build deps only (nothing: the Rust toolchain is enough)
#   scripts/setup.sh --run    + DuckDB (Python) to query the output
#   scripts/setup.sh --test   + tshark, tcpdump, real servers for pcaps/, DuckDB (Python)
#   scripts/setup.sh --bench  + peers for the benchmark table (ndpiReader, argus, wrk)
# The eBPF toolchain for live XDP/TC capture is scripts/setup-ebpf.sh.
set -euo pipefail
want_run=0; want_test=0; want_bench=0
for a in "$@"; do
  case "$a" in
    --run) want_run=1 ;;
    --test) want_run=1; want_test=1 ;;
    --bench) want_run=1; want_test=1; want_bench=1 ;;
    *) echo "setup: unknown option $a" >&2; exit 2 ;;
  esac
done
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust with rustup first" >&2; exit 1; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer once, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "$want_test" = 1 ]; then
  apt_install tshark tcpdump iproute2 iptables nginx-light dnsmasq-base \
    bind9-dnsutils redis-server redis-tools curl socat netcat-openbsd python3-scapy \
    iputils-ping ethtool \
    chromium
fi
if [ "$want_run" = 1 ]; then
  python3 -c 'import duckdb' 2>/dev/null || pip install -q duckdb
fi
if [ "$want_test" = 1 ]; then
  # queries/*.sql are tested on Spark SQL too (local mode, on the installed Java 17).
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  python3 -c 'import pyspark' 2>/dev/null || pip install -q pyspark
fi
if [ "$want_test" = 1 ]; then
  # tests/tests/object_store.rs: an S3 server on loopback and pyarrow to read
  # the objects back (DuckDB's httpfs extension cannot be fetched offline).
  # s3s-fs, not Garage or RustFS: see the test's doc. Built once into
  # ~/.cargo/bin in a throwaway target dir (a few minutes).
  python3 -c 'import pyarrow' 2>/dev/null || pip install -q pyarrow
  if ! [ -x "$HOME/.cargo/bin/s3s-fs" ]; then
    echo "setup: cargo install s3s-fs (S3 server for the object storage test)"
    env -u CARGO_TARGET_DIR cargo install -q --locked s3s-fs --version 0.14.1 --features binary
  fi
fi
if [ "$want_bench" = 1 ]; then
  apt_install argus-server argus-client wrk libndpi-bin hyperfine
  # bench/live.sh: trafgen, the packet generator.
  command -v trafgen >/dev/null || apt_install netsniff-ng
fi
echo "setup: ok"
