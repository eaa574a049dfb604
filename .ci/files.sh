#!/usr/bin/env bash
# The file-operations companion (issue 13), beyond `cargo test`: the library
# with only `files` (and with `rt`) builds clean, and every request made in a
# pass reaches the kernel with one io_uring_enter (counted with strace
# between the marker calls close(-100) and close(-101) of examples/files_batch).
# Installs what it needs; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { printf '\n=== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v strace >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }

step "files: clippy of the library with only the files feature (and with rt)"
cargo clippy --lib --no-default-features --features files -- -D warnings
cargo clippy --lib --no-default-features --features files,rt -- -D warnings

step "files: one io_uring_enter per pass, whatever the number of submissions"
cargo build -q --release --example files_batch
bin=target/release/examples/files_batch
batches=200
for depth in 1 32 200; do
    for engine in io_uring workers; do
        log=$(mktemp)
        out=$(strace -f -o "$log" "$bin" "$batches" "$depth" "$engine" 2>&1 || true)
        counts=$(awk '/close\(-100\)/{on=1; next} /close\(-101\)/{on=0} on' "$log" |
            sed -E 's/^[0-9]+ +//; s/\(.*//' | sort | uniq -c)
        rm -f "$log"
        echo "$engine depth $depth: $out: $(echo "$counts" | tr -s ' \n' ' ')"
        enters=$(echo "$counts" | awk '$2 == "io_uring_enter" {print $1}')
        case $out in
            io_uring:*)
                [ "${enters:-0}" = "$batches" ] ||
                    fail "$batches passes of $depth requests made ${enters:-0} io_uring_enter calls"
                ;;
            workers:*)
                [ -z "$enters" ] || fail "the workers entered an io_uring"
                [ "$engine" = workers ] || echo "io_uring refused here: $out"
                ;;
            *) fail "files_batch: $out" ;;
        esac
    done
done
step "files checks passed"
