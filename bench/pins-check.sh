#!/usr/bin/env bash
# Regenerate every Rust release of toolchains.toml from Debian's signed lists
# (`xbuild toolchain pin`) against the real mirror, in a copy, and show what
# would change: nothing, as long as Debian has not replaced a pinned version.
# Run by people (and before renewing the pins), not by CI.
#
#   bench/pins-check.sh                 every release the built-in pins hold
#   XBUILD=xbuild  PINS=toolchains.toml  ALLOW_EXPIRED=1 (an outdated mirror)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
xbuild="${XBUILD:-xbuild}"
pins="${PINS:-$root/toolchains.toml}"
work="$(mktemp -d /tmp/xbuild-pins-check.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp "$pins" "$work/toolchains.toml"
releases="$("$xbuild" toolchain list --json --toolchains "$pins" \
  | python3 -c 'import json,sys; print(" ".join(".".join(r["release"].split(".")[:2]) for r in json.load(sys.stdin)["releases"]))')"
extra=(); [ -z "${ALLOW_EXPIRED:-}" ] || extra=(--allow-expired)
for r in $releases; do
  "$xbuild" toolchain pin --rust "$r" "${extra[@]}" --write "$work/toolchains.toml"
done
if diff -u "$pins" "$work/toolchains.toml"; then
  echo "pins-check: every release regenerates to the same pins ($releases)"
else
  echo "pins-check: the pins above would change; to take them: xbuild toolchain pin --rust X.Y --write $pins" >&2
  exit 1
fi
