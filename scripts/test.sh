#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, unit tests, golden
# replays of pcaps/, and the tshark and DuckDB cross-checks (which also
# score against ../shared/corpus when it is present). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
