#!/usr/bin/env bash
# The real-crates matrix, run by people (CI runs a fast subset through the
# e2e tests). For each class of native dependency that breaks cross builds, a
# small binary crate that depends on a real crates.io package is written,
# locked with cargo (nothing fetched is committed), built with xbuild for
# every target in the table, and run (under qemu for foreign CPUs, arm1176 for
# armv6l); its output is checked. Prints a Markdown table:
# crate x target -> ok / failed (first error line), with the time.
#
#   bench/real-crates.sh [CRATE...]     default: every crate below
#   TARGETS="a b"                       default: every target of `xbuild targets --json`
#   XBUILD=xbuild                       the xbuild to run
#   RUST=1.85                           a pinned Rust release other than the
#                                       default (passed as --rust); the table
#                                       says which release built each row
#   KEEP=1                              keep the work directory
set -euo pipefail
xbuild="${XBUILD:-xbuild}"
work="$(mktemp -d /tmp/xbuild-real-crates.XXXXXX)"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT

# name @ dependency line @ main.rs body @ expected output
crates() {
  cat <<'EOF'
zstd@zstd = "0.13"@let c = zstd::encode_all(&b"hello hello hello"[..], 3).unwrap(); let d = zstd::decode_all(&c[..]).unwrap(); println!("zstd {}", String::from_utf8(d).unwrap());@zstd hello hello hello
rusqlite@rusqlite = { version = "0.32", features = ["bundled"] }@let c = rusqlite::Connection::open_in_memory().unwrap(); let v: i64 = c.query_row("select 6*7", [], |r| r.get(0)).unwrap(); println!("sqlite {v}");@sqlite 42
ring@ring = "0.17"@let d = ring::digest::digest(&ring::digest::SHA256, b"abc"); println!("ring {:02x}{:02x}{:02x}{:02x}", d.as_ref()[0], d.as_ref()[1], d.as_ref()[2], d.as_ref()[3]);@ring ba7816bf
aws-lc-rs@aws-lc-rs = "1"@let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"abc"); println!("aws-lc {:02x}{:02x}{:02x}{:02x}", d.as_ref()[0], d.as_ref()[1], d.as_ref()[2], d.as_ref()[3]);@aws-lc ba7816bf
openssl@openssl = { version = "0.10", features = ["vendored"] }@let d = openssl::sha::sha256(b"abc"); println!("openssl {:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3]);@openssl ba7816bf
libsodium@libsodium-sys = "0.2"@let r = unsafe { libsodium_sys::sodium_init() }; println!("sodium {}", r >= 0);@sodium true
jemalloc@tikv-jemallocator = "0.6"@let v: Vec<u64> = (1..=1000).collect(); println!("jemalloc {}", v.iter().sum::<u64>());@jemalloc 500500
cxx@(tests/fixtures/native-ws: C++ through cc and CMake)@@native: sum=6 caught=boom rtti=true cmake=49
EOF
}

jemalloc_prelude='#[global_allocator] static A: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;'

table="$("$xbuild" targets --json)"
targets="${TARGETS:-$(printf '%s' "$table" | python3 -c 'import json,sys; print(" ".join(t["nix"] for t in json.load(sys.stdin)))')}"
runner() { # the qemu command line for a target, from the table
  printf '%s' "$table" | python3 -c '
import json, sys
t = next(t for t in json.load(sys.stdin) if sys.argv[1] in (t["nix"], t["rust"]))
r = t["runner"]
print(t["rust"], r.get("qemu") or "", r.get("qemu-cpu") or "")' "$1"
}
eval "$("$xbuild" toolchain env)"   # puts the pinned qemu on PATH

wanted="$*"
rust_flag=(); [ -z "${RUST:-}" ] || rust_flag=(--rust "$RUST")
echo "| crate | target | Rust | result | seconds |"
echo "|---|---|---|---|---|"
while IFS='@' read -r name dep body expect; do
  [ -z "$wanted" ] || [[ " $wanted " == *" $name "* ]] || continue
  dir="$work/$name"
  bin="probe-$name"
  if [ "$name" = cxx ]; then
    # the C++ and CMake fixture the e2e tests build on two targets
    cp -r "$(dirname "$0")/../tests/fixtures/native-ws" "$dir"
    bin=native
  else
    mkdir -p "$dir/src"
    printf '[package]\nname = "probe-%s"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n%s\n' "$name" "$dep" > "$dir/Cargo.toml"
    prelude=""; [ "$name" = jemalloc ] && prelude="$jemalloc_prelude"
    printf '%s\nfn main() { %s }\n' "$prelude" "$body" > "$dir/src/main.rs"
    (cd "$dir" && cargo generate-lockfile -q)
  fi
  for target in $targets; do
    read -r rust qemu cpu <<<"$(runner "$target")"
    started=$SECONDS
    log="$dir/$rust.log"
    if (cd "$dir" && "$xbuild" "${rust_flag[@]}" --release --target "$target" --out "out-$rust") >"$log" 2>&1; then
      exe="$dir/out-$rust/$rust/$bin"
      cmd=("$exe")
      [ -z "$qemu" ] || cmd=("$qemu" ${cpu:+-cpu "$cpu"} "$exe")
      got="$("${cmd[@]}" 2>&1 || true)"
      if [ "$got" = "$expect" ]; then
        result="ok"
      else
        result="failed: printed \`$(printf '%s' "$got" | head -n 1)\`"
      fi
    else
      result="failed: \`$(grep -m 1 -E 'error|undefined|failed' "$log" | cut -c 1-150)\`"
    fi
    release="$(sed -n 's/^ *Rust \([0-9.]*\) .*/\1/p' "$log" | head -n 1)"
    echo "| $name | $rust | ${release:-?} | $result | $((SECONDS - started)) |"
  done
done < <(crates)
