#!/usr/bin/env bash
# One crate whose build runs perl and make (the `openssl` crate, vendored:
# OpenSSL's perl Configure and its Makefiles), built on this host and in
# another root entered as its own host, by the static xbuild; their
# SHA256SUMS compared (issue 27: the same bytes on every host). Run by people,
# as root (entering a root takes bubblewrap as root); prints a Markdown table.
#
#   bench/root-vs-host.sh ROOT [TARGET]   TARGET: x86_64-unknown-linux-musl
#
#   ROOT     a root to enter: `debootstrap --variant=minbase bullseye ROOT`
#            (glibc 2.31, perl-base only, no bubblewrap), or one holding
#            only busybox (`apt-get download busybox-static`, `dpkg-deb -x`)
#   XBUILD   this host's xbuild (default: target/release/xbuild, built here)
#   UNSANDBOXED=1   also build in the root without a sandbox (the root's own
#            perl and make then run the build, when it has them)
#
# The root gets the static xbuild, the crate (a git repository), CA
# certificates, name resolution, and a cache holding this host's downloads
# and std sysroots (as `xbuild toolchain import` would); it fetches crates
# with the host's network. It is left as it was found.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="$(realpath "${1:?usage: bench/root-vs-host.sh ROOT [TARGET]}")"
target="${2:-x86_64-unknown-linux-musl}"
[ "$(id -u)" = 0 ] || { echo "run as root: the root is entered with bubblewrap as root" >&2; exit 2; }
work="$(mktemp -d /tmp/xbuild-root-vs-host.XXXXXX)"
cleanup() { rm -rf "$work" "$root/work" "$root/var/cache/xbuild-bench" "$root/usr/local/bin/xbuild"; }
trap cleanup EXIT
log() { echo "bench: $*" >&2; }
export XBUILD_CACHE_DIR="${XBUILD_CACHE_DIR:-$HOME/.cache/xbuild}"

if [ -z "${XBUILD:-}" ]; then
  log "building xbuild (release)"
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  XBUILD="$repo/target/release/xbuild"
fi

log "the crate: openssl (vendored), locked by cargo, one git commit"
mkdir -p "$work/crate/src"
cat > "$work/crate/Cargo.toml" <<'EOF'
[package]
name = "sha"
version = "0.1.0"
edition = "2021"

[dependencies]
openssl = { version = "0.10", features = ["vendored"] }
EOF
cat > "$work/crate/src/main.rs" <<'EOF'
fn main() {
    let d = openssl::sha::sha256(b"abc");
    println!("openssl {:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3]);
}
EOF
(cd "$work/crate" && cargo generate-lockfile -q && git init -q && git add -A &&
  GIT_COMMITTER_DATE="1700000000 +0000" GIT_AUTHOR_DATE="1700000000 +0000" \
  git -c user.name=bench -c user.email=bench@localhost commit -qm crate)

why() { # the first line that says why a build failed
  grep -m1 -o "Can.t locate [^ ]*" "$1" || grep -m1 -o "error: [^;]*" "$1" || echo "see the log"
}
seconds() { local s=$SECONDS; "$@" || return; echo $((SECONDS - s)); }

log "this host's build"
host_s=$(seconds bash -c "cd '$work/crate' && '$XBUILD' --target $target --out '$work/host' >&2")
"$work/host/$target/sha" | grep -q '^openssl ba7816bf$'

log "the static xbuild"
(cd "$repo" && "$XBUILD" --release --target x86_64-unknown-linux-musl --out "$work/static" >&2)

log "furnishing $root"
install -D -m 755 "$work/static/x86_64-unknown-linux-musl/xbuild" "$root/usr/local/bin/xbuild"
mkdir -p "$root/work" "$root/var/cache/xbuild-bench/v1" "$root/etc/ssl/certs" "$root/tmp" "$root/root"
cp -a "$work/crate" "$root/work/crate"
for bucket in downloads sysroots; do
  cp -al "$XBUILD_CACHE_DIR/v1/$bucket" "$root/var/cache/xbuild-bench/v1/$bucket" 2>/dev/null ||
    cp -a "$XBUILD_CACHE_DIR/v1/$bucket" "$root/var/cache/xbuild-bench/v1/$bucket"
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
env_cmd=/usr/bin/env
[ -x "$root/usr/bin/env" ] || env_cmd="/bin/busybox env"

enter() { # a script run in the root, as its own host
  bwrap --bind "$root" / --dev /dev --bind /proc /proc --chdir / -- \
    $env_cmd -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin \
    XBUILD_CACHE_DIR=/var/cache/xbuild-bench "$@"
}

log "the root's build (sandboxed: its provisioning is not timed apart)"
root_s=$(seconds enter XBUILD_REQUIRE_SANDBOX=1 sh -c \
  "cd /work/crate && xbuild --target $target --out /work/out >&2 && /work/out/$target/sha >&2")
rows=("| this host ($(. /etc/os-release; echo "$PRETTY_NAME")), sandboxed | ${host_s} | the reference | $(cut -c1-16 "$work/host/SHA256SUMS" | head -1) |")
same() { cmp -s "$work/host/SHA256SUMS" "$1" && echo "same as the host's" || echo "**differs**"; }
os="$(. "$root/etc/os-release" 2>/dev/null && echo "$PRETTY_NAME" || echo busybox)"
rows+=("| $root ($os), sandboxed by the static xbuild | ${root_s} | $(same "$root/work/out/SHA256SUMS") | $(cut -c1-16 "$root/work/out/SHA256SUMS" | head -1) |")
if [ -n "${UNSANDBOXED:-}" ]; then
  log "the root's build without a sandbox"
  if un_s=$(seconds enter XBUILD_BWRAP=/nonexistent sh -c \
      "cd /work/crate && xbuild --target $target --rebuild --out /work/out-un" 2> >(tee "$work/unsandboxed.log" >&2)); then
    rows+=("| $root ($os), not sandboxed | ${un_s} | $(same "$root/work/out-un/SHA256SUMS") | $(cut -c1-16 "$root/work/out-un/SHA256SUMS" | head -1) |")
  else
    rows+=("| $root ($os), not sandboxed | - | **failed**: $(why "$work/unsandboxed.log") | - |")
  fi
fi

echo "| where | seconds | outputs | sha256 of sha (first 16) |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
