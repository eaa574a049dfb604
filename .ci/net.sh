#!/usr/bin/env bash
# The net companions (issue 15) against real peers: installs Debian's curl,
# socat, wrk and nginx, runs the in-process tests on every backend and the
# peer tests (curl, socat, the slow reader, the EMFILE storm) with the tools
# required, checks the static servers (size budget, answers), and runs a
# short, bounded wrk load on loopback. Timings are printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { printf '\n=== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "net: curl, socat, wrk, nginx"
need=()
for t in curl socat wrk; do command -v "$t" >/dev/null || need+=("$t"); done
[ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's package starts a daemon on :80 where it can; this script needs none.
command -v systemctl >/dev/null && systemctl disable --now nginx >/dev/null 2>&1 || true

step "net: tests on every backend, and against real peers (tools required)"
cargo build -q --example echo --example http_hello --example echo_client
LINUX_EVENT_REQUIRE=all LINUX_EVENT_NET_TOOLS=require timeout 900 cargo test -q --test net --test net_peers

step "net: static no-libc servers (budget 48 KiB for http_hello, stripped)"
cargo static-examples
sysroot=$(rustc --print sysroot)
objcopy="$sysroot/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-objcopy"
dir=target/x86_64-unknown-linux-musl/release/examples
for ex in http_hello echo; do
    LD_LIBRARY_PATH="$sysroot/lib" "$objcopy" --strip-all "$dir/$ex" "$dir/$ex.stripped"
    echo "$ex: $(stat -c %s "$dir/$ex.stripped") bytes stripped"
done
[ "$(stat -c %s "$dir/http_hello.stripped")" -le 49152 ] || fail "static http_hello is over 48 KiB stripped"
out=$(mktemp)
"$dir/http_hello" 127.0.0.1:0 >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.05; done
addr=$(sed -n 's/^listening on //p' "$out")
[ "$(curl -s --max-time 10 "http://$addr/")" = "Hello, world!" ] || fail "static http_hello did not answer"

step "net: wrk against the static http_hello (2 s, loopback)"
timeout 30 wrk -t1 -c100 -d2s "http://$addr/" | grep -E 'Requests/sec|Non-2xx|errors' || true
kill $pid 2>/dev/null || true

step "net passed"
