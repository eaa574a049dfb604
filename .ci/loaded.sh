#!/usr/bin/env bash
# The x86_64 suite where a test must not depend on an idle machine or on what
# its parent left behind (STYLE.md): once with every core kept busy by CPU
# burners, and once as nohup leaves a process (SIGHUP ignored, stdin
# /dev/null) with 16 test threads, from another cwd and with extra inherited
# fds (3, 7, 9). The burners are always killed, and time out on their own.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
root=$PWD
step() { printf '\n=== %s\n' "$*"; }

# Built first, so that the burners compete with the tests, not with rustc.
cargo test -q --no-run

burners=()
stop_burners() {
    [ ${#burners[@]} -gt 0 ] || return 0
    kill "${burners[@]}" 2>/dev/null || true
    wait "${burners[@]}" 2>/dev/null || true
    burners=()
}
trap stop_burners EXIT
trap 'exit 130' INT TERM HUP

n=$(nproc)
[ "$n" -ge 2 ] || n=2
step "cargo test with all $(nproc) cores busy ($n CPU burners)"
for _ in $(seq "$n"); do
    # `timeout` ends a burner even if this script is killed before its trap runs.
    timeout 900 yes >/dev/null &
    burners+=($!)
done
start=$SECONDS
cargo test
stop_burners
echo "loaded run: $((SECONDS - start)) s"

step "cargo test -- --test-threads=16 with SIGHUP ignored, stdin /dev/null, cwd /, fds 3, 7 and 9 open"
start=$SECONDS
(
    trap '' HUP
    cd /
    exec 3</dev/null 7</dev/null 9</dev/null </dev/null
    exec cargo test --manifest-path "$root/Cargo.toml" -- --test-threads=16
)
echo "nohup-like run: $((SECONDS - start)) s"
