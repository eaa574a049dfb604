#!/usr/bin/env bash
# The libvirt event contract (issue 14): the `virt` companion and its C ABI
# crate (capi/). Installs Debian's libvirt-dev (libvirt 9.0), libvirt-daemon
# (libvirtd, for the test driver behind a Unix socket) and pkg-config, then:
# clippy of the companion alone and of capi, the C contract test on every
# backend and real libvirt (built-in test driver, and through a libvirtd of
# the test's own), the Sim tests under Miri, and a check that the library's
# dependency tree has no libc with the feature on. The Rust tests of the
# companion (tests/virt*.rs) run in the main `cargo test`, on every backend,
# and under qemu-user for aarch64 and riscv64.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { printf '\n=== virt: %s\n' "$*"; }

step "libvirt-dev, libvirt-daemon, pkg-config, a C compiler"
need=()
[ -f /usr/include/libvirt/libvirt.h ] || need+=(libvirt-dev)
command -v libvirtd >/dev/null || [ -x /usr/sbin/libvirtd ] || need+=(libvirt-daemon)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v cc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
pkg-config --modversion libvirt

step "no libc in the library's tree with virt on"
if cargo tree -e normal --no-default-features --features virt --prefix none | grep -E '^libc v'; then
    echo "libc appears with the virt feature"
    exit 1
fi

step "clippy: the companion alone, and the C ABI crate"
cargo clippy --lib --no-default-features --features virt -- -D warnings
cargo clippy -p linux-event-capi --all-targets -- -D warnings

step "C ABI: the contract in C on every backend, real libvirt (test driver, and through libvirtd)"
# This machine class's kernel offers every backend, and libvirt is installed
# above: a refusal or a missing libvirt is a failure here.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
LINUX_EVENT_REQUIRE=all LINUX_EVENT_REQUIRE_LIBVIRT=1 cargo test -p linux-event-capi -- --nocapture >"$log" 2>&1
rc=$?
set -e
# What libvirt called, how often, and each program's verdict.
grep -E '^(backend|libvirt|event latency|--- |[0-9]+ passed|test |NOTE)' "$log" || true
if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    exit "$rc"
fi

step "Miri: the companion on the Sim backend"
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
rustup +nightly component add miri rust-src
cargo +nightly miri setup
cargo +nightly miri test --test virt_sim
