#!/usr/bin/env bash
# Two xbuild commits side by side on the fixture workspace, in one run, run by
# people (not by CI). Prints a Markdown table of medians and their ratio.
#
#   bench/versus.sh BASE [NEW]      commits (NEW: the working tree's HEAD)
#
#   REPS=5          runs of each step (the median is reported)
#   TARGET=x86_64-unknown-linux-musl
#   AS=USER         run the builds as this ordinary account (root runs the script)
#
# Each commit is built in release mode from a `git worktree` and gets a cache
# of its own (provisioned first, std and zig's runtime built by a first build
# that is not timed). Then, alternating between the two, REPS times each:
#   - no-change: a build whose inputs did not change (served from the cache);
#   - one-file change: a comment appended to app/src/main.rs;
#   - --rebuild: the whole workspace from scratch (std and zig's runtime cached);
#   - --check-determinism: a build and a second one from scratch, compared.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
base="${1:?usage: bench/versus.sh BASE [NEW]}"
new="${2:-HEAD}"
reps="${REPS:-5}"
target="${TARGET:-x86_64-unknown-linux-musl}"
as="${AS:-}"

work="$(mktemp -d /var/tmp/xbuild-versus.XXXXXX)"
chmod 755 "$work"
cleanup() {
  git -C "$root" worktree remove --force "$work/src-base" 2>/dev/null || true
  git -C "$root" worktree remove --force "$work/src-new" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "versus: $*" >&2; }

run_as() {
  if [ -n "$as" ]; then
    setpriv --reuid="$(id -u "$as")" --regid="$(id -g "$as")" --clear-groups -- \
      env -i HOME="$work/home" PATH=/usr/local/bin:/usr/bin:/bin "$@"
  else
    "$@"
  fi
}

mkdir -p "$work/home"
for side in base new; do
  rev="$base"
  [ "$side" = new ] && rev="$new"
  log "building $side ($rev) in release mode"
  git -C "$root" worktree add --quiet --detach "$work/src-$side" "$rev"
  cargo build --release --quiet --manifest-path "$work/src-$side/Cargo.toml" \
    --target-dir "$work/target-$side"
  cp "$work/target-$side/release/xbuild" "$work/xbuild-$side"
  mkdir -p "$work/cache-$side" "$work/ws-$side"
  cp -r "$root/tests/fixtures/hello-ws/." "$work/ws-$side/"
  git -C "$work/ws-$side" init --quiet
  git -C "$work/ws-$side" add -A
  git -C "$work/ws-$side" -c user.name=bench -c user.email=bench@localhost commit --quiet -m fixture
done
[ -z "$as" ] || chown -R "$as" "$work/home" "$work"/cache-* "$work"/ws-*

xb() { # side, args...
  local side="$1"
  shift
  (cd "$work/ws-$side" && run_as env XBUILD_CACHE_DIR="$work/cache-$side" "$work/xbuild-$side" "$@")
}

for side in base new; do
  log "$side: provisioning and the first build (std, zig's runtime), not timed"
  xb "$side" toolchain fetch --target "$target" >/dev/null 2>&1
  xb "$side" --target "$target" >/dev/null 2>&1
done

seconds() { # side, args... -> seconds on stdout
  local start end
  start=$(date +%s.%N)
  xb "$@" >/dev/null 2>"$work/last.log" || { cat "$work/last.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
edit() {
  echo "// edit $RANDOM$RANDOM" >>"$work/ws-$1/app/src/main.rs"
  (cd "$work/ws-$1" && run_as git -c user.name=bench -c user.email=bench@localhost commit --quiet -am edit)
}

declare -A times
for step in no-change one-file rebuild determinism; do
  for i in $(seq "$reps"); do
    for side in base new; do
      case "$step" in
        no-change) t=$(seconds "$side" --target "$target") ;;
        one-file) edit "$side"; t=$(seconds "$side" --target "$target") ;;
        rebuild) t=$(seconds "$side" --target "$target" --rebuild) ;;
        determinism) edit "$side"; t=$(seconds "$side" --target "$target" --check-determinism) ;;
      esac
      times[$step-$side]+="$t "
      log "$step $side run $i: ${t}s"
    done
  done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
echo "| step ($target, median of $reps) | $base | $new | new / base |"
echo "|---|---|---|---|"
for step in no-change one-file rebuild determinism; do
  b=$(echo "${times[$step-base]}" | median)
  n=$(echo "${times[$step-new]}" | median)
  printf '| %s | %.2f s | %.2f s | %.2f |\n' "$step" "$b" "$n" "$(echo "$n / $b" | bc -l)"
done
