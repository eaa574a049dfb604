#!/usr/bin/env bash
# The whole test suite once per backend (LINUX_EVENT_BACKEND=...), each run
# naming the backend it used. A backend the kernel refuses (ENOSYS under
# qemu-user or without the feature, EPERM from seccomp or
# kernel.io_uring_disabled) is reported with the kernel's errno and its run
# is left out; at least epoll must run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
cargo build -q --example tour
ran=0
for backend in epoll linux-aio io_uring; do
    # The tour's first line names the backend in use; a refusal is its error.
    first=$(LINUX_EVENT_BACKEND=$backend timeout 30 cargo run -q --example tour 2>&1 | head -n 1 || true)
    if [ "$first" != "backend: $backend" ]; then
        echo "=== backend $backend: refused by this kernel: ${first:-no output}"
        if [ "$backend" = epoll ]; then
            echo "epoll must work everywhere"; exit 1
        fi
        continue
    fi
    echo "=== cargo test on backend $backend (LINUX_EVENT_BACKEND=$backend)"
    LINUX_EVENT_BACKEND=$backend cargo test
    echo "=== backend $backend: all tests passed"
    ran=$((ran + 1))
done
echo "=== $ran backend(s) tested"
