#!/usr/bin/env bash
# Miri over the code that must hold without the kernel: the tables' unit
# tests, building a loop in place, and the whole loop on the Sim backend
# (which makes no syscalls) with its simulated signals, children and waker.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup +nightly component add miri rust-src
cargo +nightly miri setup
cargo +nightly miri test --lib table::
cargo +nightly miri test --lib event_loop::place
cargo +nightly miri test --test sim
cargo +nightly miri test --test sim_sources
