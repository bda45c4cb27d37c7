#!/usr/bin/env bash
# What the build root costs (issue 27), run by people (not by CI). The same builds of the
# fixture tests/fixtures/hello-ws with the default pins (the sandbox's system is the build
# root) and with the same pins minus [build-root] (the host's system directories, as before),
# interleaved so that both see the same machine load; medians, and the ratio side by side.
# Prints a Markdown table.
#
#   bench/build-root.sh [TARGET]    default: x86_64-unknown-linux-musl
#
#   REPS=5      runs of each clean build and one-file change (the median is reported)
#   NOOP_REPS=11  runs of the no-change build
#
# Both modes are provisioned and their std built first (untimed); the build root's download
# and unpacked size are reported from the cache.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
reps="${REPS:-5}"
noop_reps="${NOOP_REPS:-11}"
target="${1:-x86_64-unknown-linux-musl}"

work="$(mktemp -d /tmp/xbuild-bench-root.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export XBUILD_CACHE_DIR="${XBUILD_CACHE_DIR:-$work/cache}"
export XBUILD_CACHE_MAX=none
log() { echo "bench: $*" >&2; }

log "building xbuild (release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
xb="$root/target/release/xbuild"

# the default pins without their [build-root] section
awk '/^\[build-root\]/ { skip = 1 } /^\[sources\]/ { skip = 0 } !skip' \
  "$root/toolchains.toml" >"$work/no-root.toml"
modes=(root host)
pins_args() { [ "$1" = root ] || echo "--toolchains $work/no-root.toml"; }

for m in "${modes[@]}"; do
  cp -r "$root/tests/fixtures/hello-ws" "$work/ws-$m"
  git -C "$work/ws-$m" init -q
  git -C "$work/ws-$m" add -A
  git -C "$work/ws-$m" -c user.name=bench -c user.email=bench@localhost commit -qm fixture
  log "warming $m (provisioning, std for $target)"
  # shellcheck disable=SC2046
  (cd "$work/ws-$m" && "$xb" --target "$target" $(pins_args "$m") >/dev/null 2>&1)
done

# seconds of one run of xbuild in mode $1 with the arguments after it
timed() {
  local m="$1"
  shift
  local t0 t1
  t0=$(date +%s.%N)
  # shellcheck disable=SC2046
  (cd "$work/ws-$m" && "$xb" --target "$target" $(pins_args "$m") "$@" >/dev/null 2>&1)
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A samples
add() { samples[$1]+="$2"$'\n'; }
for _ in $(seq "$reps"); do
  for m in "${modes[@]}"; do add "clean-$m" "$(timed "$m" --rebuild)"; done
done
for _ in $(seq "$noop_reps"); do
  for m in "${modes[@]}"; do add "noop-$m" "$(timed "$m")"; done
done
for i in $(seq "$reps"); do
  for m in "${modes[@]}"; do
    echo "// edit $i" >>"$work/ws-$m/app/src/main.rs"
    add "edit-$m" "$(timed "$m")"
  done
done

rootdir="$(ls -d "$XBUILD_CACHE_DIR"/v1/toolchains/build-root-* | head -n 1)"
download=0
for sha in $(grep -A200 '^\[build-root\]' "$root/toolchains.toml" | sed -n '/^artifacts/,/^]/p' \
  | grep -o 'sha256 = "[0-9a-f]*"' | cut -d'"' -f2); do
  download=$((download + $(stat -c %s "$XBUILD_CACHE_DIR/v1/downloads/$sha")))
done

echo "machine: $(nproc) cores, $(uname -r); $(date -u +%Y-%m-%d); target $target; user $(id -un)"
echo "build root: $((download / 1024 / 1024)) MiB downloaded, $(du -sm "$rootdir" | cut -f1) MiB unpacked"
echo
echo "| step | build root (s) | host's system (s) | ratio |"
echo "|---|---|---|---|"
for step in clean noop edit; do
  r=$(printf '%s' "${samples[$step-root]}" | median)
  h=$(printf '%s' "${samples[$step-host]}" | median)
  case $step in
    clean) name="clean build, std cached (median of $reps)" ;;
    noop) name="no change (median of $noop_reps)" ;;
    edit) name="one-file change (median of $reps)" ;;
  esac
  echo "| $name | $r | $h | $(echo "scale=2; $r / $h" | bc) |"
done
