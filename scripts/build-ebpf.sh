#!/usr/bin/env bash
# Build flowtrail's eBPF capture programs (capture-ebpf/) and print the
# object's path. Needs the toolchain from scripts/setup-ebpf.sh (nightly
# with rust-src, bpf-linker). The object is not embedded in flowtrail: the
# loader (flowtrail_capture::ebpf) finds it at
#   capture-ebpf/target/bpfel-unknown-none/release/flowtrail-capture-ebpf
# or wherever $FLOWTRAIL_EBPF_OBJECT points.
#   scripts/build-ebpf.sh           release build, prints the object's path
#   scripts/build-ebpf.sh --quiet   same, without cargo's progress
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quiet=()
for a in "$@"; do
  case "$a" in
    --quiet|-q) quiet=(--quiet) ;;
    *) echo "build-ebpf: unknown option $a" >&2; exit 2 ;;
  esac
done
command -v bpf-linker >/dev/null ||
  { echo "build-ebpf: bpf-linker not found: run scripts/setup-ebpf.sh first" >&2; exit 1; }
cd "$root/capture-ebpf"
# Its own target dir whatever the caller exported: the loader looks there.
export CARGO_TARGET_DIR="$root/capture-ebpf/target"
# Host RUSTFLAGS (e.g. -C target-cpu=native) mean nothing to the BPF target.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
cargo +nightly build "${quiet[@]}" --locked --release \
  -Z build-std=core --target bpfel-unknown-none >&2
obj="$CARGO_TARGET_DIR/bpfel-unknown-none/release/flowtrail-capture-ebpf"
[ -f "$obj" ] || { echo "build-ebpf: $obj was not produced" >&2; exit 1; }
echo "$obj"
