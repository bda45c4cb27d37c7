#!/usr/bin/env bash
# Benchmarks for xbuild, run by people (not by CI). Prints a Markdown table.
#
#   bench/run.sh [TARGET...]      default: x86_64-unknown-linux-musl
#   REPS=3 bench/run.sh           repetitions for the repeated measurements (median reported)
#
# Measures, for the fixture workspace tests/fixtures/hello-ws:
#   1. cold provisioning of the toolchain into a fresh cache (from the registries)
#   2. warm provisioning (everything installed: a no-op)
#   3. first build per target, std not cached (one run: it fills the cache)
#   4. build of another copy of the workspace, std cached (median of REPS, each from a clean target dir)
#   5. the same build with plain `cargo build -Zbuild-std`, the same pinned cargo, rustc, std
#      source and zig linker, from a clean target dir (median of REPS)
#   6. a no-change rebuild: inputs unchanged, outputs from xbuild's cache (median of REPS)
#   7. `--check-determinism` (two sealed builds and the comparison), next to 4 (median of REPS)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
reps="${REPS:-3}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl)

work="$(mktemp -d /tmp/xbuild-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export XBUILD_CACHE_DIR="$work/cache"

echo "building xbuild (release)..." >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
xb="$root/target/release/xbuild"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m }'; }
fresh_ws() { rm -rf "$1"; mkdir -p "$1"; cp -r "$root/tests/fixtures/hello-ws/." "$1"; rm -rf "$1/target"; }

rows=()
t0=$(now); "$xb" toolchain fetch >/dev/null 2>&1; t1=$(now)
rows+=("| cold provisioning (rust, zig, qemu from the registries) | all | $(secs "$t0" "$t1") s |")
warm=()
for _ in 1 2 3 4 5; do t0=$(now); "$xb" toolchain fetch >/dev/null 2>&1; t1=$(now); warm+=("$(secs "$t0" "$t1")"); done
rows+=("| warm provisioning (no-op), median of 5 | all | $(median "${warm[@]}") s |")

eval "$("$xb" toolchain env)"
for target in "${targets[@]}"; do
  triple="$("$xb" triple "$target")"
  fresh_ws "$work/first"
  t0=$(now); (cd "$work/first" && "$xb" --release --target "$target" >/dev/null 2>&1); t1=$(now)
  first="$(secs "$t0" "$t1")"
  cached=()
  plain=()
  nochange=()
  check=()
  for i in $(seq "$reps"); do
    fresh_ws "$work/ws$i"
    t0=$(now); (cd "$work/ws$i" && "$xb" --release --rebuild --target "$target" >/dev/null 2>&1); t1=$(now)
    cached+=("$(secs "$t0" "$t1")")
    t0=$(now); (cd "$work/ws$i" && "$xb" --release --target "$target" >/dev/null 2>&1); t1=$(now)
    nochange+=("$(secs "$t0" "$t1")")
    t0=$(now); (cd "$work/ws$i" && "$xb" --release --check-determinism --target "$target" >/dev/null 2>&1); t1=$(now)
    check+=("$(secs "$t0" "$t1")")
    fresh_ws "$work/plain$i"
    under="${triple//-/_}"
    upper="$(echo "$under" | tr '[:lower:]' '[:upper:]')"
    flags="$(XBUILD_LOG=off "$xb" targets --json | python3 -c "import json,sys; t=[t for t in json.load(sys.stdin) if t['rust']=='$triple'][0]; print(' '.join(t['rustflags']))")"
    t0=$(now)
    (cd "$work/plain$i" && env \
      RUSTC_BOOTSTRAP=1 \
      XBUILD_ZIG="$ZIG" XBUILD_ZIG_CACHE="$ZIG_GLOBAL_CACHE_DIR" \
      "CARGO_TARGET_${upper}_LINKER=$XBUILD_CACHE_DIR/v1/shims/xbuild-zig-cc--$triple" \
      "CC_${under}=$XBUILD_CACHE_DIR/v1/shims/xbuild-zig-cc--$triple" \
      "AR_${under}=$XBUILD_CACHE_DIR/v1/shims/xbuild-zig-ar--$triple" \
      RUSTFLAGS="$flags -C link-self-contained=no" \
      cargo build --release -Zbuild-std=std,panic_abort --target "$triple" --bins >/dev/null 2>&1)
    t1=$(now)
    plain+=("$(secs "$t0" "$t1")")
  done
  c="$(median "${cached[@]}")"; p="$(median "${plain[@]}")"
  rows+=("| first build, std not cached | $target | $first s |")
  rows+=("| another workspace, std cached, median of $reps | $target | $c s |")
  rows+=("| plain \`cargo build -Zbuild-std\`, same toolchain, median of $reps | $target | $p s |")
  rows+=("| ratio plain / xbuild with std cached (target: ≥ 3×) | $target | $(awk -v p="$p" -v c="$c" 'BEGIN { printf "%.1f×", p / c }') |")
  n="$(median "${nochange[@]}")"; k="$(median "${check[@]}")"
  rows+=("| no-change rebuild (outputs from the cache), median of $reps | $target | $n s |")
  rows+=("| \`--check-determinism\`, median of $reps | $target | $k s |")
  rows+=("| ratio check / single build (target: ≤ 2.2×) | $target | $(awk -v k="$k" -v c="$c" 'BEGIN { printf "%.2f×", k / c }') |")
done

echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -sr); date: $(date -u +%Y-%m-%d)"
echo
echo "| measurement | target | time |"
echo "|---|---|---|"
printf '%s\n' "${rows[@]}"
