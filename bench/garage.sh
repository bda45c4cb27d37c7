#!/usr/bin/env bash
# Garage (the seed's own project: an S3 store, 525 crates with libsodium,
# bundled SQLite, LMDB and zstd) built by xbuild for every target, from its
# published crate and Cargo.lock, without Nix. Run by people, not by CI (an
# hour or more on 2 cores). Prints a Markdown table:
# target -> built, `garage --version` runs, reproducible, seconds, size.
#
#   bench/garage.sh                 every target of `xbuild targets --json`
#   TARGETS="x86_64-unknown-linux-musl" bench/garage.sh
#   CHECK="a b"                     targets checked with --check-determinism
#                                   (default: the seed's four, x86_64, aarch64,
#                                   armv6l and i686; CHECK= for none)
#   PROFILE=garage|cargo            Garage's own [profile.release] (the default;
#                                   the published crate carries none, so it is
#                                   added to its Cargo.toml) or cargo's default
#   XBUILD=xbuild  KEEP=1           the xbuild to run; keep the work directory
#
# The sha256 of every binary is printed, and compared with the one recorded in
# bench/garage.sha256 for the same profile, if any: "another machine" is this
# script run in another root, as another user, or on another host.
set -euo pipefail
xbuild="${XBUILD:-xbuild}"
version=2.5.0
work="$(mktemp -d /tmp/xbuild-garage.XXXXXX)"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT

# The published crate, with the Cargo.lock it was released with: cargo fetches
# it into a private CARGO_HOME; nothing is committed.
mkdir -p "$work/get/src"
printf '[package]\nname = "get"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ngarage = "=%s"\n' "$version" >"$work/get/Cargo.toml"
echo 'fn main() {}' >"$work/get/src/main.rs"
(cd "$work/get" && CARGO_HOME="$work/cargo-home" cargo fetch -q)
cp -r "$work"/cargo-home/registry/src/*/garage-"$version" "$work/garage"
profile="${PROFILE:-garage}"
case "$profile" in
  # Garage's workspace sets this release profile; a published crate keeps no
  # profiles, so it is written back here, by hand, as docs/GARAGE.md says
  garage)
    if grep -q '^\[profile.release\]' "$work/garage/Cargo.toml"; then
      echo "the published crate has a [profile.release] of its own now: PROFILE=cargo uses it" >&2; exit 2
    fi
    printf '\n[profile.release]\nlto = true\ncodegen-units = 1\nopt-level = "s"\nstrip = true\n' >>"$work/garage/Cargo.toml" ;;
  cargo) ;;
  *) echo "PROFILE is garage or cargo, not $profile" >&2; exit 2 ;;
esac
recorded="$(cd "$(dirname "$0")" && pwd)/garage.sha256"
echo "garage $version: $(grep -c '^name = ' "$work/garage/Cargo.lock") packages in its Cargo.lock" >&2

table="$("$xbuild" targets --json)"
targets="${TARGETS:-$(printf '%s' "$table" | python3 -c 'import json,sys; print(" ".join(t["rust"] for t in json.load(sys.stdin)))')}"
check="${CHECK-x86_64-unknown-linux-musl aarch64-unknown-linux-musl arm-unknown-linux-musleabihf i686-unknown-linux-musl}"   # CHECK= checks none
runner() {
  printf '%s' "$table" | python3 -c '
import json, sys
t = next(t for t in json.load(sys.stdin) if sys.argv[1] in (t["nix"], t["rust"]))
r = t["runner"]
print(r.get("qemu") or "", r.get("qemu-cpu") or "")' "$1"
}
eval "$("$xbuild" toolchain env)"

echo "profile: $profile; xbuild: $("$xbuild" --version 2>/dev/null || echo unknown)" >&2
echo "| target | built | \`garage --version\` | reproducible | seconds | size | sha256 | as recorded |"
echo "|---|---|---|---|---|---|---|---|"
for target in $targets; do
  read -r qemu cpu <<<"$(runner "$target")"
  started=$SECONDS
  args=(--release --target "$target" --git-version "v$version-xbuild" --out "$work/out")
  repro="not checked"
  [[ " $check " == *" $target "* ]] && args+=(--check-determinism)
  if (cd "$work/garage" && "$xbuild" "${args[@]}") >"$work/$target.log" 2>&1; then
    built=ok
    [[ " $check " == *" $target "* ]] && repro="yes"
  else
    built="failed: \`$(grep -m 1 -E '^error|DIFFERENT' "$work/$target.log" | cut -c 1-120)\`"
    grep -q 'DIFFERENT' "$work/$target.log" && repro="no"
  fi
  exe="$work/out/$target/garage"
  runs="-"
  size="-"
  sha="-"
  same="-"
  if [ -x "$exe" ]; then
    size="$(du -h "$exe" | cut -f1)"
    sha="$(sha256sum "$exe" | cut -d' ' -f1)"
    # bench/garage.sha256: "<sha256>  <profile>/<target>" lines
    want="$(awk -v k="$profile/$target" '$2 == k { print $1 }' "$recorded" 2>/dev/null || true)"
    if [ -z "$want" ]; then same="nothing recorded"
    elif [ "$want" = "$sha" ]; then same="yes"
    else same="**no** (recorded ${want:0:16}…)"; fi
    cmd=("$exe")
    [ -z "$qemu" ] || cmd=("$qemu" ${cpu:+-cpu "$cpu"} "$exe")
    line="$("${cmd[@]}" --version 2>&1 | head -n 1 || true)"
    if [[ "$line" == *"v$version-xbuild"* ]]; then runs="ok: \`$line\`"; else runs="failed: \`$line\`"; fi
  fi
  echo "| $target | $built | $runs | $repro | $((SECONDS - started)) | $size | \`$sha\` | $same |"
done
