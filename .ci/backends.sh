#!/usr/bin/env bash
# Every test already runs each behaviour on every backend (one named test
# each: `cargo test io_uring`). What is left to check here is the programs'
# own choice of backend: LINUX_EVENT_BACKEND=... makes the tour run on that
# backend, and a refusal (ENOSYS under qemu-user or without the feature,
# EPERM from seccomp or kernel.io_uring_disabled) is the kernel's errno; at
# least epoll must work.
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
    echo "=== the tour runs on $backend"
    ran=$((ran + 1))
done
echo "=== $ran backend(s) ran the tour"
