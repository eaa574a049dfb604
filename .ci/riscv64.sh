#!/usr/bin/env bash
# The whole test suite for riscv64 under qemu-user, as `cargo test --target
# aarch64-unknown-linux-musl` is for aarch64. rustup has no riscv64 musl target
# for stable, so this is riscv64gc-unknown-linux-gnu: Debian's cross gcc links
# against its riscv64 glibc, and qemu-riscv64-static runs the tests with that
# sysroot (.cargo/config.toml). Installs what it needs; run from anywhere.
#
# A test target listed in `known` below is allowed to fail here, loudly, for
# the cause written next to it; any other failure fails the step, and a known
# one that passes is reported so that it can come off the list.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
target=riscv64gc-unknown-linux-gnu

declare -A known=()

printf '\n=== riscv64: rustup target, cross gcc and glibc, qemu-user\n'
rustup target add "$target"
need=()
command -v qemu-riscv64-static >/dev/null || need+=(qemu-user-static)
command -v riscv64-linux-gnu-gcc >/dev/null || need+=(gcc-riscv64-linux-gnu)
[ -e /usr/riscv64-linux-gnu/lib/libc.so ] || need+=(libc6-dev-riscv64-cross)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
qemu-riscv64-static --version | head -n 1

printf '\n=== cargo test --target %s (qemu-user)\n' "$target"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --target "$target" --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# With --no-fail-fast cargo names each failed target: "... to rerun pass `--test init`".
mapfile -t failed < <(sed -n 's/^error: test failed, to rerun pass `\(.*\)`$/\1/p' "$log" | sed 's/^--test //')
passed=$(grep -E '^test result: |^[a-z_]+: [0-9]+ passed' "$log" | grep -oE '[0-9]+ passed' | awk '{s += $1} END {print s + 0}')
printf '\n=== riscv64: %s tests passed; failed targets: %s\n' "$passed" "${failed[*]:-none}"
if [ "$status" != 0 ] && [ ${#failed[@]} -eq 0 ]; then
    echo "cargo test failed before running the tests (build or runner)"; exit 1
fi
bad=()
for t in "${failed[@]}"; do
    if [ -n "${known[$t]:-}" ]; then
        echo "KNOWN FAILURE on riscv64, not fixed here: $t: ${known[$t]}"
    else
        bad+=("$t")
    fi
done
for t in "${!known[@]}"; do
    if ! printf '%s\n' "${failed[@]}" | grep -qx "$t"; then
        echo "NOTE: $t is listed as failing on riscv64 but passed: take it off the list in $0"
    fi
done
if [ ${#bad[@]} -gt 0 ]; then
    echo "riscv64 test failures: ${bad[*]}"; exit 1
fi
echo "=== riscv64 suite passed (apart from the known failures above)"
