#!/usr/bin/env bash
# Invariant 8: an idle pass with a pending timer whose deadline did not
# change makes exactly one syscall (the wait). Counted with strace between
# two marker syscalls the example makes around its passes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --example idle_passes
bin=target/release/examples/idle_passes
passes=1000
for mode in timerfd pwait2; do
    log=$(mktemp)
    strace -f -o "$log" "$bin" "$passes" "$mode"
    counts=$(awk '/close\(-100\)/{on=1; next} /close\(-101\)/{on=0} on' "$log" \
        | sed -E 's/^[0-9]+ +//; s/\(.*//' | sort | uniq -c)
    rm -f "$log"
    echo "$mode: $(echo "$counts" | tr -s ' \n' ' ')"
    total=$(echo "$counts" | awk '{s += $1} END {print s + 0}')
    if [ "$total" != "$passes" ]; then
        echo "expected exactly $passes syscalls for $passes idle passes, got $total"; exit 1
    fi
done
