#!/usr/bin/env bash
# Miri over the code that must hold without the kernel: the tables' unit
# tests, and the whole loop on the Sim backend (which makes no syscalls).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup +nightly component add miri rust-src
cargo +nightly miri setup
cargo +nightly miri test --lib table::
cargo +nightly miri test --test sim
