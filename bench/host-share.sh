#!/usr/bin/env bash
# How much of a multi-target build is host-side work (proc macros, build scripts and the crates
# they use), which a run of xbuild compiles once per target today. Run by people, not by CI.
#
#   bench/host-share.sh CRATE@VERSION [TARGET...]
#       default targets: the seed's four (x86_64, aarch64, armv6l, i686; musl)
#   XBUILD_CACHE_DIR   the cache to use (default: xbuild's); std for each target is built there
#                      first, by an xbuild run of a one-line workspace
#   PROFILE=release    the cargo profile
#   STEPS="cargo xbuild"  which measurements to run (plain cargo's; xbuild's own)
#
# Plain cargo with xbuild's pinned cargo and rustc, xbuild's std sysroot, per-target flags and
# zig wrappers, in a fresh target dir each time:
#   - each target alone (host and target work, as xbuild does it per target);
#   - all the targets in one cargo invocation (`--target A --target B ...`: host artifacts
#     compiled once, each target's flags through CARGO_TARGET_<TRIPLE>_RUSTFLAGS).
# If the host side costs H and each target T, n singles cost n(H+T) and one invocation H+nT:
# the host share H/(H+T) is (1 - ratio)·n/(n-1), ratio = together / sum of singles.
# Then xbuild itself, sealed: each target alone with --rebuild (its kept dir emptied, so the
# host side compiles again), and all the targets in one run with --rebuild (one kept dir: the
# host side once). Prints a Markdown table.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
crate="${1:?usage: bench/host-share.sh CRATE@VERSION [TARGET...]}"
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv6l-unknown-linux-musleabihf i686-unknown-linux-musl)
profile="${PROFILE:-release}"
steps=" ${STEPS:-cargo xbuild} "
work="$(mktemp -d /tmp/xbuild-host-share.XXXXXX)"
trap 'rm -rf "$work"' EXIT
log() { echo "host-share: $*" >&2; }

log "building xbuild (release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
xb="$root/target/release/xbuild"
cache="${XBUILD_CACHE_DIR:-}"
[ -n "$cache" ] || cache="$("$xb" cache list | sed -n 's/^cache: //p')"
export XBUILD_CACHE_DIR="$cache"

name="${crate%@*}"; version="${crate#*@}"
log "fetching $name $version with cargo"
mkdir -p "$work/probe/src"
printf '[package]\nname = "probe"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' "$name" "$version" >"$work/probe/Cargo.toml"
echo 'fn main() {}' >"$work/probe/src/main.rs"
(cd "$work/probe" && CARGO_HOME="$work/home" cargo fetch --quiet)
src="$(echo "$work"/home/registry/src/*/"$name-$version")"
[ -f "$src/Cargo.lock" ] || { log "$crate has no Cargo.lock"; exit 1; }
cp -r "$src" "$work/ws"
(cd "$work/ws" && CARGO_HOME="$work/home" cargo fetch --locked --quiet)

# std and the zig wrappers for every target: an xbuild run of a one-line workspace
mkdir -p "$work/hello/src"
printf '[package]\nname = "hello"\nversion = "0.1.0"\nedition = "2021"\n' >"$work/hello/Cargo.toml"
printf 'version = 4\n\n[[package]]\nname = "hello"\nversion = "0.1.0"\n' >"$work/hello/Cargo.lock"
echo 'fn main() {}' >"$work/hello/src/main.rs"
triples=()
for t in "${targets[@]}"; do
  triples+=("$("$xb" triple "$t")")
  (cd "$work/hello" && "$xb" --target "$t" --out "$work/hello-out") >/dev/null 2>&1 \
    || { log "xbuild could not build for $t"; exit 1; }
done
eval "$("$xb" toolchain env)"

# per target: flags, sysroot, linker and C compiler, as cargo's per-target variables
envs=(RUSTC_BOOTSTRAP=1 CARGO_HOME="$work/home" XBUILD_ZIG="$ZIG" XBUILD_ZIG_CACHE="$ZIG_GLOBAL_CACHE_DIR")
for triple in "${triples[@]}"; do
  under="${triple//-/_}"
  upper="$(echo "$under" | tr '[:lower:]' '[:upper:]')"
  flags="$("$xb" targets --json | python3 -c "import json,sys; t=[t for t in json.load(sys.stdin) if t['rust']=='$triple'][0]; print(' '.join(t['rustflags']))")"
  sysroot="$(ls -td "$XBUILD_CACHE_DIR"/v1/sysroots/"$triple"-*/ | head -1)"
  shim="$XBUILD_CACHE_DIR/v1/shims"
  shim="$(ls -td "$shim"/*/ 2>/dev/null | head -1)"
  [ -x "${shim}xbuild-zig-cc--$triple" ] || shim="$XBUILD_CACHE_DIR/v1/shims/"
  envs+=("CARGO_TARGET_${upper}_RUSTFLAGS=$flags --sysroot $sysroot -C link-self-contained=no"
    "CARGO_TARGET_${upper}_LINKER=${shim}xbuild-zig-cc--$triple"
    "CC_${under}=${shim}xbuild-zig-cc--$triple"
    "CXX_${under}=${shim}xbuild-zig-c++--$triple"
    "AR_${under}=${shim}xbuild-zig-ar--$triple")
done

now() { date +%s.%N; }
# timed SECONDS_VAR CMD...: run CMD in the crate's directory, quietly; its seconds into SECONDS_VAR
timed() {
  local -n out=$1; shift
  local t0 t1
  t0=$(now)
  if ! (cd "$work/ws" && "$@") >"$work/last.log" 2>&1; then
    tail -30 "$work/last.log" >&2; log "failed: $*"; exit 1
  fi
  t1=$(now)
  out=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
}
targets_args() { for t in "$@"; do printf -- '--target\n%s\n' "$t"; done; }
cargo_run() { # cargo_run TARGET...: from an empty target dir
  rm -rf "$work/ws/target"
  mapfile -t args < <(targets_args "$@")
  env "${envs[@]}" cargo build --locked --profile "$profile" "${args[@]}"
}
xbuild_run() { # xbuild_run TARGET...: --rebuild (the kept dir emptied first)
  mapfile -t args < <(targets_args "$@")
  [ "$profile" = release ] && args+=(--release)
  "$xb" --rebuild "${args[@]}" --out "$work/xb-out"
}

echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -sr); date: $(date -u +%Y-%m-%d); $crate, profile $profile, $(grep -c '^\[\[package\]\]' "$work/ws/Cargo.lock") packages in Cargo.lock"
echo
echo "| build | time |"
echo "|---|---|"
n=${#triples[@]}
# compare LABEL RUNNER GOAL: each target alone, then all in one, with the ratio and the host share
compare() {
  local label=$1 runner=$2 goal=$3 sum=0 s together ratio
  # once untimed: zig's caches then hold each target's C runtime for every measured build
  log "$label: a warm-up build of the $n targets"
  timed s "$runner" "${triples[@]}"
  for triple in "${triples[@]}"; do
    log "$label: $name for $triple alone"
    timed s "$runner" "$triple"
    echo "| $label, $triple alone | $s s |"
    sum=$(awk -v a="$sum" -v b="$s" 'BEGIN { printf "%.1f", a + b }')
  done
  log "$label: $name for the $n targets at once"
  timed together "$runner" "${triples[@]}"
  ratio=$(awk -v a="$together" -v b="$sum" 'BEGIN { printf "%.2f", a / b }')
  echo "| $label: sum of the $n single-target builds | $sum s |"
  echo "| $label: the $n targets at once | $together s |"
  echo "| $label: ratio at once / singles$goal | ${ratio}× |"
  echo "| $label: host side, share of one target's build | $(awk -v r="$ratio" -v n="$n" 'BEGIN { printf "%.0f", 100 * (1 - r) * n / (n - 1) }') % |"
}
[[ "$steps" != *" cargo "* ]] || compare "plain cargo" cargo_run ""
[[ "$steps" != *" xbuild "* ]] || compare "xbuild (--rebuild)" xbuild_run " (target ≤ 0.8×)"
