#!/usr/bin/env bash
# The shared store's benchmark, run by people (not CI). Prints a Markdown table.
#
#   bench/store.sh [TARGET]            default: aarch64-unknown-linux-musl
#   S3S_FS=path/to/s3s-fs              default: s3s-fs on PATH
#   XBUILD=xbuild                      the xbuild to run
#
# On the fixture workspace (tests/fixtures/hello-ws), in one run:
#   1. cold: an empty cache, no store: provision, std, build (what a fresh
#      CI runner or laptop pays today);
#   2. the same cache as a writer pushes to a store (s3s-fs on loopback);
#   3. warm store, empty cache: the first build of the same inputs;
#   4. warm store, empty cache, one file edited (an outputs miss): toolchain
#      artifacts and std from the store, then cargo.
# Each of 3 and 4 is repeated REPS times (median); 1 runs once (it is minutes).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${1:-aarch64-unknown-linux-musl}"
xbuild="${XBUILD:-xbuild}"
reps="${REPS:-3}"
s3s="${S3S_FS:-$(command -v s3s-fs || true)}"
[ -x "$s3s" ] || { echo "needs s3s-fs: cargo install s3s-fs --version 0.14.1 --features binary --locked" >&2; exit 2; }
work="$(mktemp -d /tmp/xbuild-store-bench.XXXXXX)"
server=""
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/s3/bench"
port=$((20000 + RANDOM % 20000))
"$s3s" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret "$work/s3" >/dev/null 2>&1 &
server=$!
sleep 1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
public="$("$xbuild" cache keygen bench --out "$work/bench.secret" 2>/dev/null)"
url="s3://bench/xbuild"

cp -r "$root/tests/fixtures/hello-ws" "$work/ws"
rm -rf "$work/ws/target"
secs() { local s=$SECONDS; "$@" >"$work/last.log" 2>&1 || { tail -n 20 "$work/last.log" >&2; exit 1; }; echo $((SECONDS - s)); }
msecs() {
  local s e
  s=$(date +%s%N)
  "$@" >"$work/last.log" 2>&1 || { tail -n 20 "$work/last.log" >&2; exit 1; }
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cd "$work/ws"
# 1 + 2: the cold build is also the writer's: it pushes to the store
cold=$(secs env XBUILD_CACHE_DIR="$work/writer" XBUILD_CACHE_URL="$url" XBUILD_CACHE_SIGNING_KEY="$work/bench.secret" \
  "$xbuild" --target "$target" --out "$work/out-cold")
grep -q "Pushed" "$work/last.log" || { echo "the writer pushed nothing" >&2; cat "$work/last.log" >&2; exit 1; }

hits=()
misses=()
for i in $(seq "$reps"); do
  hits+=("$(msecs env XBUILD_CACHE_DIR="$work/hit-$i" XBUILD_CACHE_URL="$url" XBUILD_CACHE_TRUSTED_KEYS="$public" \
    "$xbuild" --target "$target" --out "$work/out-hit")")
  cmp "$work/out-cold/SHA256SUMS" "$work/out-hit/SHA256SUMS"
  rm -rf "$work/hit-$i"
done
echo "// edited for the benchmark" >>app/src/main.rs
for i in $(seq "$reps"); do
  misses+=("$(msecs env XBUILD_CACHE_DIR="$work/miss-$i" XBUILD_CACHE_URL="$url" XBUILD_CACHE_TRUSTED_KEYS="$public" \
    "$xbuild" --target "$target" --out "$work/out-miss")")
  grep -q "Fetched std" "$work/last.log" || { echo "std was not fetched from the store" >&2; exit 1; }
  rm -rf "$work/miss-$i"
done
hit=$(median "${hits[@]}")
miss=$(median "${misses[@]}")
echo "| first build of the fixture for $target, empty local cache | seconds | vs. cold |"
echo "|---|---|---|"
echo "| cold: no store (provision, std, build) | $cold | 1.00 |"
awk -v c="$cold" -v h="$hit" -v m="$miss" -v n="$reps" 'BEGIN {
  printf "| warm store, same inputs (median of %d) | %.2f | %.4f |\n", n, h / 1000, h / 1000 / c
  printf "| warm store, one file edited: toolchain and std from the store, cargo builds (median of %d) | %.1f | %.2f |\n", n, m / 1000, m / 1000 / c
}'
