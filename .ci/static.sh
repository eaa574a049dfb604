#!/usr/bin/env bash
# Static no-libc examples (examples/nolibc_*.rs): build them with `cargo static-examples`
# for x86_64 and aarch64 (and riscv64 when its target installs), check that each is a
# static executable with no libc in it, run them (aarch64/riscv64 under qemu-user), and
# hold nolibc_loop and the init to their size budgets and the init to its idle RSS
# budget. Installs what it needs; run from anywhere.
#
# STATIC_RISCV64=skip leaves riscv64 out; SIZE_LIMIT overrides the size ceiling (bytes).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { printf '\n=== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# The size budget for nolibc_loop on x86_64 (stripped), met since issue 16, and the
# ceiling this script enforces (the budget unless SIZE_LIMIT says otherwise; README,
# "Building a static binary", says where the bytes go).
BUDGET=16384
SIZE_LIMIT=${SIZE_LIMIT:-$BUDGET}

step "static examples: targets, qemu-user, binutils"
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v file >/dev/null || need+=(file)
command -v nm >/dev/null && command -v objdump >/dev/null && command -v readelf >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# riscv64: rustup's riscv64gc-unknown-linux-musl download returns 404 for current stable
# (1.95); the -gnu target installs, and a program with no libc links the same on either.
triples=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
riscv=""
if [ "${STATIC_RISCV64:-}" != skip ] && command -v qemu-riscv64-static >/dev/null; then
    for t in riscv64gc-unknown-linux-musl riscv64gc-unknown-linux-gnu; do
        if rustup target add "$t" >/dev/null 2>&1; then riscv=$t; break; fi
        echo "riscv64: rustup target add $t failed"
    done
fi
extra=()
if [ -n "$riscv" ]; then
    triples+=("$riscv")
    extra=(--target "$riscv")
else
    echo "riscv64: left out (no installable target, no qemu-riscv64-static, or STATIC_RISCV64=skip)"
fi

step "cargo static-examples ${extra[*]}"
cargo static-examples "${extra[@]}"

runner() {
    case $1 in
        x86_64-*) echo "" ;;
        aarch64-*) echo qemu-aarch64-static ;;
        riscv64*) echo qemu-riscv64-static ;;
    esac
}

# The only global symbols a program may define: the entry, the mem functions the runtime
# provides, and riscv's linker-made global pointer. Anything else would be a C library's.
allowed='^(_start|memcpy|memmove|memset|memcmp|bcmp|__global_pointer\$)$'

sysroot=$(rustc --print sysroot)
objcopy="$sysroot/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-objcopy"
stripped_size() { # the size of a --strip-all copy (rust-objcopy handles every arch)
    LD_LIBRARY_PATH="$sysroot/lib" "$objcopy" --strip-all "$1" "$1.stripped"
    stat -c %s "$1.stripped"
}

tdir=${CARGO_TARGET_DIR:-target}
for t in "${triples[@]}"; do
    dir=$tdir/$t/release/examples
    run=$(runner "$t")
    for bin in "$dir"/nolibc_* "$dir"/init; do
        name=$(basename "$bin")
        # Skip cargo's hashed copies and dep files, and this script's stripped copies.
        case $name in *.d | *.stripped | *-*) continue ;; esac
        step "$t $name"
        info=$(file "$bin")
        echo "$info"
        grep -q "statically linked" <<<"$info" || fail "$bin: not statically linked"
        readelf -lW "$bin" | grep -q INTERP && fail "$bin: has a program interpreter"
        readelf -d "$bin" | grep -q "no dynamic section" || fail "$bin: has a dynamic section"
        undefined=$(nm -u "$bin")
        [ -z "$undefined" ] || fail "$bin: undefined symbols: $undefined"
        globals=$(nm -g --defined-only "$bin" | awk '{print $3}')
        echo "global symbols: $(echo "$globals" | tr '\n' ' ')"
        foreign=$(echo "$globals" | grep -Ev "$allowed" || true)
        [ -z "$foreign" ] || fail "$bin: symbols that are not ours: $foreign"
        if [[ $t == x86_64-* ]]; then
            # The mem functions must not have been turned back into calls to themselves.
            objdump -d --no-show-raw-insn "$bin" |
                awk '/^[0-9a-f]+ <(memcpy|memmove|memset|memcmp|bcmp|.*rt3mem.*)>:/ {p=1; next} /^$/ {p=0} p' |
                grep -E '(call|jmp) .*<(memcpy|memmove|memset|memcmp|bcmp)>' &&
                fail "$bin: a mem function calls a mem function"
        fi
        echo "size: $(stat -c %s "$bin") bytes, stripped $(stripped_size "$bin")"

        case $name in
            nolibc_hello)
                out=$($run "$bin" one "two words")
                echo "$out"
                grep -qx 'argv\[2\] = "two words"' <<<"$out" || fail "$name: arguments not passed"
                grep -q "page size [1-9]" <<<"$out" || fail "$name: no AT_PAGESZ in the auxv"
                if [[ $t == x86_64-* ]]; then
                    grep -q "auxv names the vDSO" <<<"$out" || fail "$name: no AT_SYSINFO_EHDR on x86_64"
                fi
                set +e
                err=$($run "$bin" panic 2>&1 >/dev/null)
                code=$?
                set -e
                echo "$err"
                [ "$code" = 101 ] || fail "$name panic: exit status $code, want 101"
                grep -q "^panicked at examples/nolibc_hello.rs:" <<<"$err" || fail "$name: no panic location"
                grep -qx "asked to panic" <<<"$err" || fail "$name: no panic message"
                ;;
            nolibc_loop)
                out=$(timeout 60 $run "$bin")
                echo "$out"
                tail -n1 <<<"$out" | grep -q ': ok$' || fail "$name: did not add up"
                ;;
            init)
                # Without -s: qemu-user refuses PR_SET_CHILD_SUBREAPER.
                set +e
                timeout 60 $run "$bin" -- sh -c 'exit 3' 2>/dev/null
                code=$?
                timeout 60 $run "$bin" -- /definitely/not/here 2>/dev/null
                missing=$?
                set -e
                echo "init: child's exit 3 -> $code, missing program -> $missing"
                [ "$code" = 3 ] || fail "init: exit status $code, want 3"
                [ "$missing" = 127 ] || fail "init: missing program gave $missing, want 127"
                ;;
            *)
                timeout 60 $run "$bin"
                ;;
        esac
    done
done

step "size budget: nolibc_loop, x86_64, stripped"
for t in "${triples[@]}"; do
    echo "$t: $(stat -c %s "$tdir/$t/release/examples/nolibc_loop.stripped") bytes"
done
bin=$tdir/x86_64-unknown-linux-musl/release/examples/nolibc_loop
size=$(stat -c %s "$bin.stripped")
if [ "$size" -gt "$BUDGET" ]; then
    echo "over the $BUDGET-byte budget by $((size - BUDGET)) bytes; the largest symbols:"
    nm --size-sort -S -C "$bin" | tail -n 12
    size -A "$bin"
fi
[ "$size" -le "$SIZE_LIMIT" ] || fail "nolibc_loop is $size bytes stripped, more than the $SIZE_LIMIT-byte ceiling"

step "size: init, stripped (budget 32 KiB; tini-static is 708 KB)"
for t in "${triples[@]}"; do
    echo "$t: $(stat -c %s "$tdir/$t/release/examples/init.stripped") bytes"
done
size=$(stat -c %s "$tdir/x86_64-unknown-linux-musl/release/examples/init.stripped")
[ "$size" -le 32768 ] || fail "init is $size bytes stripped, more than its 32 KiB budget"

# The init's idle resident memory as PID 1 of a new PID namespace (needs the
# privilege to make one; skipped without it): what a container pays for it.
step "idle RSS: init as PID 1, x86_64 (budget 64 KiB)"
bin=$tdir/x86_64-unknown-linux-musl/release/examples/init.stripped
if unshare -pf --mount-proc true 2>/dev/null; then
    unshare -pf --mount-proc "$bin" -- sleep 10 &
    outer=$!
    sleep 1
    init=$(cat "/proc/$outer/task/$outer/children" 2>/dev/null | awk '{print $1}')
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$init/status" 2>/dev/null || true)
    grep -E '^(VmRSS|RssAnon|RssFile):' "/proc/$init/status" | tr -s ' \t' ' ' | tr '\n' ' '
    echo
    kill -TERM "$init" 2>/dev/null || true
    wait "$outer" || true
    [ -n "$rss" ] || fail "init: could not read its VmRSS"
    [ "$rss" -le 64 ] || fail "init: idle RSS $rss kB, more than its 64 KiB budget"
else
    echo "skipped: cannot make a PID namespace here"
fi

step "static no-libc examples passed"
