#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, unit tests, golden
# replays of pcaps/, the tshark and DuckDB cross-checks (which also score
# against ../shared/corpus when it is present), and live capture in
# network namespaces (AF_PACKET, TC and XDP; root only). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# The eBPF toolchain and object, so live TC/XDP tests run instead of skipping.
scripts/setup-ebpf.sh
scripts/build-ebpf.sh -q
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# The live tests run the binary itself (SIGTERM mid-capture).
cargo build -p flowtrail
cargo test --workspace
