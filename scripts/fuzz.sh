#!/usr/bin/env bash
# Fuzzes flowtrail with cargo-fuzz (libFuzzer, nightly): installs cargo-fuzz
# when missing, builds the seed corpora (fuzz/make_seeds.sh) and runs every
# fuzz target for SECONDS each (default 60), one after the other.
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]
#
# A target that crashes stops early and leaves its input in
# fuzz/artifacts/<target>/; minimise it with
#   cargo +nightly fuzz tmin <target> fuzz/artifacts/<target>/<crash-file>
# and save the result under fuzz/regressions/<target>/, where
# tests/tests/fuzz_regressions.rs replays it on stable. Logs go to
# fuzz/artifacts/<target>.log. Exits non-zero if any target failed.
# Idempotent; corpora grow in fuzz/corpus/ (not committed).
#
# FUZZ_SANITIZER overrides the sanitizer (address, none, ...). By default
# every target runs under AddressSanitizer except pcap_reader, which runs
# without: it allocates a 1 MiB read buffer per input, which ASan makes
# about 15 times slower, and the code under test is safe Rust.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing the nightly toolchain" >&2
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

fuzz/make_seeds.sh

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

sanitizer() {
    case "$1" in
        pcap_reader) echo "${FUZZ_SANITIZER:-none}" ;;
        *) echo "${FUZZ_SANITIZER:-address}" ;;
    esac
}

mkdir -p fuzz/artifacts
failed=()
for t in "${targets[@]}"; do
    echo "== $t: ${secs}s, sanitizer $(sanitizer "$t")" >&2
    log="fuzz/artifacts/$t.log"
    # -timeout: an input that runs for 10 s is a hang; -rss_limit_mb: a
    # leak or an unbounded allocation.
    if cargo +nightly fuzz run -s "$(sanitizer "$t")" "$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$t")
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || true)
    echo "$t: $status, ${execs:-?} executions, ${cov:-no coverage line} (log: $log)" >&2
    if [ "$status" = FAILED ]; then
        grep -E 'panicked at|ERROR: libFuzzer|Test unit written to' "$log" | head -5 >&2 || true
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran ${secs}s without a finding" >&2
