#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time; exits non-zero on a crash.
#
#   FUZZ_SECONDS=60 bash .ci/fuzz.sh            # every target, 60 s each
#   FUZZ_SECONDS=600 bash .ci/fuzz.sh loop_sim  # only the named targets
#
# The committed seeds in fuzz/corpus/<target>/ are read, never written: new
# inputs go to a scratch corpus. A crash, or an input running over 20 s (a
# hang), leaves its reproducer in fuzz/artifacts/<target>/, and the script
# prints the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export CARGO_TERM_COLOR=never

seconds="${FUZZ_SECONDS:-60}"
seed="${FUZZ_SEED:-1}"

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

printf "\n=== build fuzz targets\n"
cargo +nightly fuzz build
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
    printf '\n=== fuzz %s for %ss (seed %s)\n' "$t" "$seconds" "$seed"
    mkdir -p "$scratch/$t" "corpus/$t"
    log="$scratch/$t.log"
    if cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -seed="$seed" -timeout=20 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" || true
    else
        # The panic, libFuzzer's report and the reproducer's path (or, when
        # there is none, say after a build failure, the end of the log).
        pattern='panicked at|ERROR: libFuzzer|ALARM|SUMMARY|Test unit written|failed to build'
        grep -E -A6 "$pattern" "$log" | head -n 80 || tail -n 40 "$log"
        echo "fuzz target $t FAILED; reproducer(s):"
        ls -1 "artifacts/$t/" 2>/dev/null | sed "s|^|  fuzz/artifacts/$t/|" || true
        echo "replay: (cd fuzz && cargo +nightly fuzz run $t artifacts/$t/<file>)"
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]}"
    exit 1
fi
echo "fuzzing passed: ${targets[*]}"
