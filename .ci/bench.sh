#!/usr/bin/env bash
# Benchmarks (issue 8): installs the C libraries and tools the bench crate
# needs (libev, libevent, strace, valgrind), builds it, and runs the quick
# table. It prints numbers and fails only if something does not build or
# run: timings are never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -f /usr/include/ev.h ] || need+=(libev-dev)
[ -f /usr/include/event2/event.h ] || need+=(libevent-dev)
command -v strace >/dev/null || need+=(strace)
command -v valgrind >/dev/null || need+=(valgrind)
command -v cc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo fmt -p linux-event-bench -- --check
cargo clippy -p linux-event-bench --all-targets -- -D warnings
cargo test -p linux-event-bench
cargo build --release -p linux-event-bench
timeout 300 cargo run --release -p linux-event-bench -- --quick
timeout 120 cargo run --release -p linux-event-bench --bin clock -- --quick
