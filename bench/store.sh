#!/usr/bin/env bash
# The shared store's benchmark, run by people (not CI). Prints a Markdown table.
#
#   bench/store.sh [TARGET] [WORKSPACE]   default: aarch64-unknown-linux-musl, the fixture
#   S3S_FS=path/to/s3s-fs                 default: s3s-fs on PATH
#   XBUILD=xbuild                         the xbuild to run
#   EDIT=app/src/main.rs                  the file edited (relative to the workspace)
#   AS=USER                               run every build as this ordinary account (root runs the script)
#   CRATE=NAME@VERSION                    the workspace: a published crate with its Cargo.lock
#                                         (fetched by cargo into the benchmark's dir; nothing committed)
#   REPS=3
#
# On the workspace (tests/fixtures/hello-ws unless given; a git checkout is
# copied with its tracked files), in one run:
#   1. cold: an empty cache, no store: provision, std, build (a fresh CI
#      runner today); it is also the writer that fills the store (s3s-fs on
#      loopback), outputs, std and compiled units;
#   2. warm store, empty cache, same inputs;
#   3. warm store, empty cache, EDIT edited: toolchain artifacts, std and the
#      compiled units from the store, then cargo compiles what changed;
#   4. warm local cache (the writer's), the same edit.
# 2 to 4 run REPS times (a new edit each time; medians). For 3 and 4 the
# table also gives cargo's own time (its `Finished … in` line): the compile
# part, which the goal compares (3 at most 1.5 times 4), and what 3 spent
# restoring units.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${1:-aarch64-unknown-linux-musl}"
src="${2:-$root/tests/fixtures/hello-ws}"
xbuild="$(command -v "${XBUILD:-xbuild}")"
edit_file="${EDIT:-app/src/main.rs}"
reps="${REPS:-3}"
as="${AS:-}"
s3s="${S3S_FS:-$(command -v s3s-fs || true)}"
[ -x "$s3s" ] || { echo "needs s3s-fs: cargo install s3s-fs --version 0.14.1 --features binary --locked" >&2; exit 2; }
work="$(mktemp -d /var/tmp/xbuild-store-bench.XXXXXX)"
chmod 755 "$work"
server=""
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
log() { echo "store-bench: $*" >&2; }

mkdir -p "$work/s3/bench" "$work/home" "$work/out"
port=$((20000 + RANDOM % 20000))
"$s3s" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret "$work/s3" >/dev/null 2>&1 &
server=$!
sleep 1
url="s3://bench/xbuild"
cp "$xbuild" "$work/xbuild"
public="$("$work/xbuild" cache keygen bench --out "$work/bench.secret" 2>/dev/null)"

if [ -n "${CRATE:-}" ]; then
  name="${CRATE%@*}" version="${CRATE#*@}"
  mkdir -p "$work/get/src"
  printf '[package]\nname = "get"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' "$name" "$version" >"$work/get/Cargo.toml"
  echo 'fn main() {}' >"$work/get/src/main.rs"
  (cd "$work/get" && CARGO_HOME="$work/get-home" cargo fetch -q)
  src="$work/get-home/registry/src/$(ls "$work/get-home/registry/src")/$name-$version"
  [ -f "$src/Cargo.lock" ] || { echo "$CRATE was published without a Cargo.lock" >&2; exit 2; }
fi
if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$src" && pwd -P)" ]; then
  git clone --quiet "$src" "$work/ws"
else
  cp -r "$src" "$work/ws"
  rm -rf "$work/ws/target"
  git -C "$work/ws" init --quiet
  git -C "$work/ws" add -A
  git -C "$work/ws" -c user.name=bench -c user.email=bench@localhost commit --quiet -m workspace
fi
if [ -n "$as" ]; then
  chown -R "$as" "$work/home" "$work/ws" "$work/bench.secret" "$work/out"
  chmod 755 "$work/s3"
fi

xb() { # cache dir, store mode (write|read|none), args...
  local cache="$1" mode="$2"
  shift 2
  local env=(HOME="$work/home" PATH=/usr/local/bin:/usr/bin:/bin XBUILD_CACHE_DIR="$cache"
    AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret)
  case "$mode" in
    write) env+=(XBUILD_CACHE_URL="$url" XBUILD_CACHE_SIGNING_KEY="$work/bench.secret") ;;
    read) env+=(XBUILD_CACHE_URL="$url" XBUILD_CACHE_TRUSTED_KEYS="$public") ;;
  esac
  mkdir -p "$cache"
  if [ -n "$as" ]; then
    chown "$as" "$cache"
    (cd "$work/ws" && setpriv --reuid="$(id -u "$as")" --regid="$(id -g "$as")" --clear-groups -- \
      env -i "${env[@]}" "$work/xbuild" "$@")
  else
    (cd "$work/ws" && env -i "${env[@]}" "$work/xbuild" "$@")
  fi
}
msecs() { # args of xb -> milliseconds on stdout, the log in $work/last.log
  local s e
  s=$(date +%s%N)
  xb "$@" >"$work/last.log" 2>&1 || { tail -n 30 "$work/last.log" >&2; exit 1; }
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
cargo_secs() { # cargo's own `Finished … in` of the last run, in seconds
  sed -n 's/.*Finished `[a-z]*` profile.* in \(.*\)$/\1/p' "$work/last.log" | tail -n 1 |
    awk '{ t = 0; n = split($0, p, " "); for (i = 1; i <= n; i++) { if (p[i] ~ /m$/) t += 60 * p[i]; else t += p[i] } print t + 0 }'
}
restore_secs() {
  sed -n 's/.*Restored .* in \([0-9.]*\)s).*/\1/p' "$work/last.log" | tail -n 1
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
edit() {
  echo "// edited for the benchmark, $1" >>"$work/ws/$edit_file"
}

log "1. cold (the writer)"
cold=$(msecs "$work/writer" write --target "$target" --out "$work/out/cold")
grep -q "Published" "$work/last.log" || { echo "the writer published no compiled units" >&2; cat "$work/last.log" >&2; exit 1; }
cold_units=$(sed -n 's/.*Published \([0-9]*\) compiled units.*/\1/p' "$work/last.log" | tail -n 1)

hits=() store=() store_cargo=() store_restore=() local=() local_cargo=()
for i in $(seq "$reps"); do
  log "2. warm store, same inputs ($i)"
  hits+=("$(msecs "$work/hit-$i" read --target "$target" --out "$work/out/hit")")
  cmp "$work/out/cold/SHA256SUMS" "$work/out/hit/SHA256SUMS"
  rm -rf "$work/hit-$i"
  edit "$i"
  log "3. warm store, empty cache, one edit ($i)"
  store+=("$(msecs "$work/miss-$i" read --target "$target" --out "$work/out/miss")")
  grep -q "Restored" "$work/last.log" || { echo "no compiled units were restored" >&2; cat "$work/last.log" >&2; exit 1; }
  store_cargo+=("$(cargo_secs)")
  store_restore+=("$(restore_secs)")
  compiled_store=$(grep -c "^ *Compiling .* v[0-9]" "$work/last.log" || true)
  rm -rf "$work/miss-$i"
  log "4. warm local cache, the same edit ($i)"
  local+=("$(msecs "$work/writer" write --target "$target" --out "$work/out/local")")
  local_cargo+=("$(cargo_secs)")
  compiled_local=$(grep -c "^ *Compiling .* v[0-9]" "$work/last.log" || true)
  cmp "$work/out/miss/SHA256SUMS" "$work/out/local/SHA256SUMS"
done

c=$(echo "$cold / 1000" | bc -l)
h=$(echo "$(median "${hits[@]}") / 1000" | bc -l)
s=$(echo "$(median "${store[@]}") / 1000" | bc -l)
l=$(echo "$(median "${local[@]}") / 1000" | bc -l)
sc=$(median "${store_cargo[@]}")
sr=$(median "${store_restore[@]}")
lc=$(median "${local_cargo[@]}")
name="${CRATE:-$(basename "$src")}"
echo "| $name for $target${as:+, as $as} (median of $reps) | seconds | vs. cold | cargo's own seconds | units restored | other fixed costs | crates compiled |"
echo "|---|---|---|---|---|---|---|"
printf '| 1. cold: empty cache, no store (provision, std, build; publishes %s units) | %.1f | 1.00 | | | | all |\n' "$cold_units" "$c"
printf '| 2. warm store, empty cache, same inputs | %.2f | %.4f | | | | 0 |\n' "$h" "$(echo "$h / $c" | bc -l)"
printf '| 3. warm store, empty cache, one edit | %.1f | %.2f | %.2f | %.1f s | %.1f s | %s |\n' "$s" "$(echo "$s / $c" | bc -l)" "$sc" "$sr" "$(echo "$s - $sc - $sr" | bc -l)" "$compiled_store"
printf '| 4. warm local cache, the same edit | %.1f | %.2f | %.2f | | | %s |\n' "$l" "$(echo "$l / $c" | bc -l)" "$lc" "$compiled_local"
printf '\ncompile part, 3 / 4: %.2f (goal: at most 1.5)\n' "$(echo "$sc / $lc" | bc -l)"
