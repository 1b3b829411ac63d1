#!/usr/bin/env bash
# Idempotent setup of the toolchain that builds the eBPF capture programs
# (capture-ebpf/): LLVM 22 for bpf-linker, nightly rust-src for
# -Z build-std=core, and bpf-linker itself. Userspace (flowtrail-capture
# with feature `ebpf`) builds on stable without any of this; only the
# kernel-side object needs it. Then: scripts/build-ebpf.sh
#   scripts/setup-ebpf.sh          toolchain only
#   scripts/setup-ebpf.sh --test   + what capture/tests/ebpf.rs uses
#                                  (iproute2, tcpdump, ping, bpftool)
set -euo pipefail
want_test=0
for a in "$@"; do
  case "$a" in
    --test) want_test=1 ;;
    *) echo "setup-ebpf: unknown option $a" >&2; exit 2 ;;
  esac
done
command -v rustup >/dev/null || { echo "setup-ebpf: rustup not found: install Rust with rustup first" >&2; exit 1; }

LLVM_VER=22
LLVM_PREFIX=/usr/lib/llvm-$LLVM_VER

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup-ebpf: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

# LLVM for bpf-linker (it links against libLLVM; polly, zstd and zlib are
# what llvm-config --link-static asks for).
if ! dpkg -s "llvm-$LLVM_VER-dev" "libpolly-$LLVM_VER-dev" libzstd-dev zlib1g-dev >/dev/null 2>&1; then
  $SUDO bash -c "$(declare -f apt_install); apt_install llvm-$LLVM_VER-dev libpolly-$LLVM_VER-dev libzstd-dev zlib1g-dev"
fi
if [ "$want_test" = 1 ]; then
  $SUDO bash -c "$(declare -f apt_install); apt_install iproute2 tcpdump iputils-ping bpftool"
fi

# Nightly with rust-src: the eBPF crate builds core itself (-Z build-std).
# capture-ebpf/rust-toolchain.toml names the channel; install it if absent.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
  rustup component add rust-src --toolchain nightly

# bpf-linker, built against the system LLVM (no prebuilt download).
if ! bpf-linker --version >/dev/null 2>&1; then
  echo "setup-ebpf: cargo install bpf-linker (LLVM $LLVM_VER, takes a minute or two)"
  PATH="$LLVM_PREFIX/bin:$PATH" LLVM_SYS_221_PREFIX="$LLVM_PREFIX" \
    cargo install --locked bpf-linker --no-default-features --features "llvm-$LLVM_VER"
fi
bpf-linker --version
echo "setup-ebpf: ok (next: scripts/build-ebpf.sh)"
