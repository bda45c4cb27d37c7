#!/usr/bin/env bash
# Benchmarks for xbuild, run by people (not by CI). Prints a Markdown table.
#
#   bench/run.sh [TARGET...]        default: x86_64-unknown-linux-musl
#
#   REPS=3          runs of each repeated measurement (the median is reported)
#   BIG_REPS=$REPS  the same for the real workspace (its clean builds take minutes)
#   FIRST_REPS=1    runs of the builds that include std from scratch (slow)
#   BIG=ripgrep@14.1.1   the real workspace, fetched from crates.io with cargo; BIG= skips it
#   BIG_EDIT=crates/core/main.rs    the file the one-file change edits in it
#   CZB=0.24.1      the cargo-zigbuild version installed from crates.io; CZB= skips it
#   STEPS="first repeated tree"   which parts to run (first builds; the repeated builds of the
#                   fixture and BIG; the fixture with and without 10,000 tracked data files)
#   TREE_FILES=10000  the data files the "tree" step adds (16,000 random bytes each)
#
# The "tree" step, per target: the fixture as it is and with TREE_FILES tracked data files
# (a monorepo's test data): a no-change run (median of 11) and a one-file change (median of
# REPS) for xbuild, and the same for plain cargo, side by side.
# For the fixture workspace tests/fixtures/hello-ws and for BIG, per target:
#   - first build with std not cached and zig's cache empty (as on a fresh
#     machine): xbuild, and cargo-zigbuild -Zbuild-std
#   - a clean build of another checkout (std cached for xbuild; cargo-zigbuild
#     and plain cargo build std again: they have no std cache)
#   - a no-change rebuild, and a one-file change (a comment appended to one
#     file), for xbuild, plain `cargo build -Zbuild-std` and cargo-zigbuild,
#     each in its own warm target dir
#   - xbuild's peak memory (its own VmHWM, not rustc's)
#   - `--check-determinism` against a clean build (its second build runs on one CPU)
# Everything uses the same pinned cargo, rustc, std source and zig (from
# `xbuild toolchain env`) and the same RUSTFLAGS. xbuild and plain cargo (which
# gets xbuild's zig wrappers) share xbuild's zig cache; cargo-zigbuild, which
# calls zig with other flags, has its own.
# Cold and warm provisioning are measured once, first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
reps="${REPS:-3}"
big_reps="${BIG_REPS:-$reps}"
first_reps="${FIRST_REPS:-1}"
big="${BIG-ripgrep@14.1.1}"
big_edit="${BIG_EDIT:-crates/core/main.rs}"
czb_version="${CZB-0.24.1}"
steps=" ${STEPS:-first repeated tree} "
tree_files="${TREE_FILES:-10000}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl)

work="$(mktemp -d /tmp/xbuild-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export XBUILD_CACHE_DIR="$work/cache"
log() { echo "bench: $*" >&2; }

log "building xbuild (release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
xb="$root/target/release/xbuild"

# --- the tools and the workspaces, fetched through cargo (before any timing)
czb=""
if [ -n "$czb_version" ]; then
  log "installing cargo-zigbuild $czb_version from crates.io"
  if cargo install --quiet --locked "cargo-zigbuild@$czb_version" --root "$work/czb" >&2; then
    czb="$work/czb/bin/cargo-zigbuild"
  else
    log "cargo-zigbuild did not install; its rows are left out"
  fi
fi

git_snapshot() { (cd "$1" && rm -rf target && git init -q && git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm snapshot); }
declare -A ws_src ws_edit
ws_names=(fixture)
ws_src[fixture]="$work/src-fixture"
ws_edit[fixture]="app/src/main.rs"
cp -r "$root/tests/fixtures/hello-ws" "${ws_src[fixture]}"
git_snapshot "${ws_src[fixture]}"
if [ -n "$big" ]; then
  name="${big%@*}"; version="${big#*@}"
  log "fetching $name $version with cargo"
  mkdir -p "$work/probe/src"
  printf '[package]\nname = "probe"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' "$name" "$version" >"$work/probe/Cargo.toml"
  echo 'fn main() {}' >"$work/probe/src/main.rs"
  (cd "$work/probe" && CARGO_HOME="$work/probe-home" cargo fetch --quiet)
  src="$(echo "$work"/probe-home/registry/src/*/"$name-$version")"
  [ -f "$src/Cargo.lock" ] || { log "$big has no Cargo.lock"; exit 1; }
  ws_names+=("$name")
  ws_src[$name]="$work/src-$name"
  ws_edit[$name]="$big_edit"
  cp -r "$src" "${ws_src[$name]}"
  git_snapshot "${ws_src[$name]}"
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# met VALUE OP LIMIT: "met" or "NOT met"
met() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == "<=") ? (v <= l) : (v >= l); print ok ? "met" : "**NOT met**" }'; }
# timed OUTVAR DIR CMD...: run CMD in DIR, quietly (its output goes to $work/last.log), append the seconds to OUTVAR
timed() {
  local -n out=$1; local dir=$2; shift 2
  local t0 t1; t0=$(now)
  if ! (cd "$dir" && "$@") >"$work/last.log" 2>&1; then
    log "failed in $dir: $*"; tail -30 "$work/last.log" >&2; exit 1
  fi
  t1=$(now); out+=("$(secs "$t0" "$t1")")
}
copy_ws() { rm -rf "$2"; cp -r "$1" "$2"; }
link_shims() { ln -sfn "$(ls -td "$XBUILD_CACHE_DIR"/v1/shims/*/ | head -1)" "$work/shims"; }
edit() { echo "// bench edit $2" >>"$1/$3"; }
peak_of_last() { grep -o 'peak memory of xbuild itself: [0-9]* MiB' "$work/last.log" | grep -o '[0-9]*' | tail -1; }

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }
# against_czb WHAT RATIO_LABEL LIMIT XBUILD_SECS CZB_SECS...: cargo-zigbuild's median and the ratio
# row (for the current $ws and $triple)
against_czb() {
  local what=$1 label=$2 limit=$3 x=$4 z r; shift 4
  z="$(median "$@")"
  row "$what: cargo-zigbuild -Zbuild-std" "$ws" "$triple" "$z s (runs: $*)"
  r="$(ratio "$x" "$z")"
  row "ratio xbuild / cargo-zigbuild, $label" "$ws" "$triple" "${r}× $(met "$r" "<=" "$limit")"
}

# --- provisioning
t0=$(now); "$xb" toolchain fetch >/dev/null 2>&1; t1=$(now)
row "cold provisioning (rust, zig, qemu from the registries), 1 run" - all "$(secs "$t0" "$t1") s"
warm=()
for _ in 1 2 3 4 5; do timed warm "$root" "$xb" toolchain fetch; done
w="$(median "${warm[@]}")"
row "warm provisioning (no-op), median of 5" - all "$w s $(met "$w" "<=" 0.1) (< 0.1 s)"

eval "$("$xb" toolchain env)"
peak=0
note_peak() { local p; p="$(peak_of_last)"; [ -n "$p" ] && [ "$p" -gt "$peak" ] && peak="$p"; return 0; }

for target in "${targets[@]}"; do
  triple="$("$xb" triple "$target")"
  under="${triple//-/_}"
  upper="$(echo "$under" | tr '[:lower:]' '[:upper:]')"
  flags="$("$xb" targets --json | python3 -c "import json,sys; t=[t for t in json.load(sys.stdin) if t['rust']=='$triple'][0]; print(' '.join(t['rustflags']))")"
  # plain cargo gets xbuild's zig wrappers (they exist once xbuild has built for the target,
  # in the shims bucket of the xbuild that ran: link_shims points $work/shims at it)
  plain_env=(env RUSTC_BOOTSTRAP=1 XBUILD_ZIG="$ZIG" XBUILD_ZIG_CACHE="$ZIG_GLOBAL_CACHE_DIR"
    "CARGO_TARGET_${upper}_LINKER=$work/shims/xbuild-zig-cc--$triple"
    "CC_${under}=$work/shims/xbuild-zig-cc--$triple"
    "AR_${under}=$work/shims/xbuild-zig-ar--$triple"
    RUSTFLAGS="$flags -C link-self-contained=no")
  plain_build=("${plain_env[@]}" cargo build --release -Zbuild-std=std,panic_abort --target "$triple" --bins)
  czb_build=(env RUSTC_BOOTSTRAP=1 ZIG_GLOBAL_CACHE_DIR="$work/zig-czb" RUSTFLAGS="$flags -C link-self-contained=no" "$czb" zigbuild --release -Zbuild-std=std,panic_abort --target "$triple" --bins)
  xb_build=(env XBUILD_LOG=info "$xb" --release --target "$triple")

  if [[ "$steps" == *" tree "* ]]; then
    log "the fixture with and without $tree_files data files, for $triple"
    for size in small big; do
      copy_ws "${ws_src[fixture]}" "$work/tree-$size"; rm -rf "$work/tree-$size/.git"
      if [ "$size" = big ]; then
        for i in $(seq 0 $((tree_files - 1))); do
          d="$work/tree-$size/data/$((i / 100))"; [ -d "$d" ] || mkdir -p "$d"
          head -c 16000 /dev/urandom >"$d/f$i.bin"
        done
      fi
      git_snapshot "$work/tree-$size"
      cp -r "$work/tree-$size" "$work/ptree-$size"
    done
    declare -A tnop tchange pnop pchange_t
    for size in small big; do
      # two runs first: the first copies every file, the second re-reads those written within
      # two seconds of it (racily clean); from the third on, a no-change run reads no file
      for _ in 1 2; do (cd "$work/tree-$size" && "${xb_build[@]}") >/dev/null 2>&1; done
      sleep 2; (cd "$work/tree-$size" && "${xb_build[@]}") >/dev/null 2>&1
      link_shims
      (cd "$work/ptree-$size" && "${plain_build[@]}") >/dev/null 2>&1
      nop=(); for _ in $(seq 11); do timed nop "$work/tree-$size" "${xb_build[@]}"; done
      tnop[$size]="$(median "${nop[@]}")"
      nop=(); for _ in $(seq 11); do timed nop "$work/ptree-$size" "${plain_build[@]}"; done
      pnop[$size]="$(median "${nop[@]}")"
      ch=(); pch=()
      for i in $(seq "$reps"); do
        edit "$work/tree-$size" "tree $i" "${ws_edit[fixture]}"
        timed ch "$work/tree-$size" "${xb_build[@]}"
        edit "$work/ptree-$size" "tree $i" "${ws_edit[fixture]}"
        timed pch "$work/ptree-$size" "${plain_build[@]}"
      done
      tchange[$size]="$(median "${ch[@]}")"; pchange_t[$size]="$(median "${pch[@]}")"
    done
    label="fixture + $tree_files data files"
    row "no-change run, median of 11: xbuild" fixture "$triple" "${tnop[small]} s"
    row "no-change run, median of 11: xbuild" "$label" "$triple" "${tnop[big]} s $(met "${tnop[big]}" "<=" 0.1) (< 0.1 s)"
    r="$(ratio "${tnop[big]}" "${tnop[small]}")"
    row "ratio xbuild no-change, with data / without (target ≤ 2×)" "$label" "$triple" "${r}× $(met "$r" "<=" 2)"
    row "no-change run, median of 11: plain \`cargo build\`" fixture "$triple" "${pnop[small]} s"
    row "no-change run, median of 11: plain \`cargo build\`" "$label" "$triple" "${pnop[big]} s"
    row "one-file change (${ws_edit[fixture]}), median of $reps: xbuild" fixture "$triple" "${tchange[small]} s"
    row "one-file change (${ws_edit[fixture]}), median of $reps: xbuild" "$label" "$triple" "${tchange[big]} s"
    r="$(ratio "${tchange[big]}" "${tchange[small]}")"
    row "ratio xbuild one-file change, with data / without (target ≤ 1.5×)" "$label" "$triple" "${r}× $(met "$r" "<=" 1.5)"
    row "one-file change, median of $reps: plain \`cargo build\`" fixture "$triple" "${pchange_t[small]} s"
    row "one-file change, median of $reps: plain \`cargo build\`" "$label" "$triple" "${pchange_t[big]} s"
    rm -rf "$work"/tree-* "$work"/ptree-*
  fi

  for ws in "${ws_names[@]}"; do
    src="${ws_src[$ws]}"; file="${ws_edit[$ws]}"
    reps=$([ "$ws" = fixture ] && echo "${REPS:-3}" || echo "$big_reps")
    log "$ws for $triple"
    # 1. first build: std not cached, the tool's zig cache empty (each tool has its own)
    first=(); zfirst=()
    [[ "$steps" == *" first "* ]] || first_reps=0
    for i in $(seq "$first_reps"); do
      rm -rf "$XBUILD_CACHE_DIR/v1/sysroots" "$XBUILD_CACHE_DIR/v1/std-trees" "$XBUILD_CACHE_DIR/v1/deps" "$XBUILD_CACHE_DIR/v1/outputs" "$ZIG_GLOBAL_CACHE_DIR"
      rm -rf "$work/zig-czb"
      copy_ws "$src" "$work/first-$ws"
      timed first "$work/first-$ws" "${xb_build[@]}"; note_peak
      if [ -n "$czb" ]; then
        copy_ws "$src" "$work/zfirst-$ws"
        timed zfirst "$work/zfirst-$ws" "${czb_build[@]}"
      fi
      rm -rf "$work/first-$ws" "$work/zfirst-$ws"
    done
    if [ "$first_reps" -gt 0 ]; then
      f="$(median "${first[@]}")"
      row "first build, std not cached, median of $first_reps: xbuild" "$ws" "$triple" "$f s (runs: ${first[*]})"
      [ -z "$czb" ] || against_czb "first build" "first build (target ≤ 1.0×)" 1.0 "$f" "${zfirst[@]}"
    fi
    [[ "$steps" == *" repeated "* ]] || continue

    # 2. clean build of another checkout; 3. no-change; 4. one-file change
    clean=(); pclean=(); zclean=(); nochange=(); znochange=(); change=(); pchange=(); zchange=()
    for i in $(seq "$reps"); do
      copy_ws "$src" "$work/x$i-$ws"
      timed clean "$work/x$i-$ws" "${xb_build[@]}" --rebuild; note_peak
      timed nochange "$work/x$i-$ws" "${xb_build[@]}"
      edit "$work/x$i-$ws" "$i" "$file"
      timed change "$work/x$i-$ws" "${xb_build[@]}"; note_peak
      copy_ws "$src" "$work/p$i-$ws"
      link_shims
      timed pclean "$work/p$i-$ws" "${plain_build[@]}"
      edit "$work/p$i-$ws" "$i" "$file"
      timed pchange "$work/p$i-$ws" "${plain_build[@]}"
      if [ -n "$czb" ]; then
        copy_ws "$src" "$work/z$i-$ws"
        timed zclean "$work/z$i-$ws" "${czb_build[@]}"
        timed znochange "$work/z$i-$ws" "${czb_build[@]}"
        edit "$work/z$i-$ws" "$i" "$file"
        timed zchange "$work/z$i-$ws" "${czb_build[@]}"
      fi
      rm -rf "$work/p$i-$ws" "$work/z$i-$ws"
    done
    c="$(median "${clean[@]}")"; p="$(median "${pclean[@]}")"
    row "clean build of another checkout, std cached, median of $reps: xbuild" "$ws" "$triple" "$c s"
    row "clean build: plain \`cargo build -Zbuild-std\`" "$ws" "$triple" "$p s"
    [ -z "$czb" ] || against_czb "clean build" "clean build with std cached (target < 1×)" 0.999 "$c" "${zclean[@]}"
    n="$(median "${nochange[@]}")"
    row "no-change rebuild, median of $reps: xbuild" "$ws" "$triple" "$n s $(met "$n" "<=" 1) (< 1 s)"
    if [ -n "$czb" ]; then
      z="$(median "${znochange[@]}")"
      row "no-change rebuild: cargo-zigbuild" "$ws" "$triple" "$z s"
    fi
    x="$(median "${change[@]}")"; p="$(median "${pchange[@]}")"
    row "one-file change ($file), median of $reps: xbuild" "$ws" "$triple" "$x s"
    row "one-file change: plain \`cargo build\`" "$ws" "$triple" "$p s"
    r="$(ratio "$x" "$p")"
    row "ratio xbuild / plain cargo, one-file change (target ≤ 1.5×)" "$ws" "$triple" "${r}× $(met "$r" "<=" 1.5)"
    if [ -n "$czb" ]; then
      z="$(median "${zchange[@]}")"
      row "one-file change: cargo-zigbuild" "$ws" "$triple" "$z s"
    fi

    # 5. --check-determinism against a single sealed build: the first build in the kept target
    #    dir, the second from scratch with every machine factor varied (one CPU among them)
    check=()
    for i in $(seq "$reps"); do timed check "$work/x$i-$ws" "${xb_build[@]}" --check-determinism; note_peak; done
    k="$(median "${check[@]}")"
    r="$(ratio "$k" "$c")"
    row "\`--check-determinism\` (a build in the kept target dir, a second one from scratch), median of $reps" "$ws" "$triple" "$k s"
    row "ratio check / clean build (target ≤ 2.2×)" "$ws" "$triple" "${r}× $(met "$r" "<=" 2.2)"
    for i in $(seq "$reps"); do rm -rf "$work/x$i-$ws"; done
  done
done
[ "$peak" -eq 0 ] || row "peak memory of xbuild itself (VmHWM, largest of the xbuild runs above)" all all "$peak MiB"

echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -sr); date: $(date -u +%Y-%m-%d)"
for ws in "${ws_names[@]}"; do
  echo "Workspace $ws: $(grep -c '^\[\[package\]\]' "${ws_src[$ws]}/Cargo.lock") packages in Cargo.lock"
done
echo
echo "| measurement | workspace | target | result |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
