//! Tests of `triple`.

use super::*;

/// `Ok(rust)` for a name that resolves, `Err(fragment)` for one that must be
/// rejected with a message containing `fragment`.
fn check(input: &str, expected: Result<&str, &str>) {
    match (resolve(input), expected) {
        (Ok(r), Ok(want)) => assert_eq!(r.rust, want, "{input}"),
        (Err(e), Err(fragment)) => {
            let msg = e.to_string();
            assert!(
                msg.contains(fragment),
                "{input}: `{msg}` lacks `{fragment}`"
            );
        }
        (got, want) => panic!("{input}: got {got:?}, wanted {want:?}"),
    }
}

#[test]
fn nix_config_triples() {
    check(
        "armv6l-unknown-linux-musleabihf",
        Ok("arm-unknown-linux-musleabihf"),
    );
    check(
        "armv6l-unknown-linux-gnueabihf",
        Ok("arm-unknown-linux-gnueabihf"),
    );
    check(
        "armv7l-unknown-linux-gnueabihf",
        Ok("armv7-unknown-linux-gnueabihf"),
    );
    check(
        "armv7a-unknown-linux-gnueabihf",
        Ok("armv7-unknown-linux-gnueabihf"),
    );
    check(
        "armv7l-unknown-linux-musleabihf",
        Ok("armv7-unknown-linux-musleabihf"),
    );
    check(
        "armv5tel-unknown-linux-gnueabi",
        Ok("armv5te-unknown-linux-gnueabi"),
    );
    check(
        "armv5tel-unknown-linux-musleabi",
        Ok("armv5te-unknown-linux-musleabi"),
    );
    check(
        "riscv64-unknown-linux-gnu",
        Ok("riscv64gc-unknown-linux-gnu"),
    );
    check(
        "riscv64-unknown-linux-musl",
        Ok("riscv64gc-unknown-linux-musl"),
    );
    check(
        "riscv32-unknown-linux-gnu",
        Ok("riscv32gc-unknown-linux-gnu"),
    );
    check("x86_64-w64-mingw32", Ok("x86_64-pc-windows-gnu"));
    check("i686-w64-mingw32", Ok("i686-pc-windows-gnu"));
    check("aarch64-w64-mingw32", Err("`aarch64-pc-windows-gnu`"));
    check(
        "powerpc64-unknown-linux-gnuabielfv2",
        Ok("powerpc64-unknown-linux-gnu"),
    );
    check(
        "mips64el-unknown-linux-gnuabi64",
        Ok("mips64el-unknown-linux-gnuabi64"),
    );
    check("x86_64-unknown-freebsd", Ok("x86_64-unknown-freebsd"));
    check("x86_64-unknown-netbsd", Ok("x86_64-unknown-netbsd"));
    check("x86_64-unknown-openbsd", Ok("x86_64-unknown-openbsd"));
    check("x86_64-unknown-redox", Ok("x86_64-unknown-redox"));
    check("aarch64-apple-darwin", Ok("aarch64-apple-darwin"));
    check("wasm32-unknown-wasi", Ok("wasm32-wasip1"));
    check("x86_64-pc-cygwin", Ok("x86_64-pc-cygwin"));
    check("aarch64-unknown-linux-android", Ok("aarch64-linux-android"));
    check(
        "armv7a-unknown-linux-androideabi",
        Ok("armv7-linux-androideabi"),
    );
}

#[test]
fn nix_three_part_triples() {
    check("x86_64-linux-musl", Ok("x86_64-unknown-linux-musl"));
    check("aarch64-linux-gnu", Ok("aarch64-unknown-linux-gnu"));
    check(
        "armv6l-linux-musleabihf",
        Ok("arm-unknown-linux-musleabihf"),
    );
    check("x86_64-apple-darwin", Ok("x86_64-apple-darwin"));
    check("aarch64-apple-ios", Ok("aarch64-apple-ios"));
    check(
        "arm-none-eabi",
        Err("maps to the Rust target `arm-unknown-none-eabi`"),
    );
    check(
        "x86_64-unknown-linux",
        Err("with 3 component(s) is ambiguous"),
    );
    check("x86_64-pc-linux", Err("with 3 component(s) is ambiguous"));
}

#[test]
fn nix_system_doubles() {
    check("aarch64-linux", Ok("aarch64-unknown-linux-gnu"));
    check("x86_64-linux", Ok("x86_64-unknown-linux-gnu"));
    check("i686-linux", Ok("i686-unknown-linux-gnu"));
    check("armv6l-linux", Ok("arm-unknown-linux-gnueabihf"));
    check("armv7l-linux", Ok("armv7-unknown-linux-gnueabihf"));
    check("armv5tel-linux", Ok("armv5te-unknown-linux-gnueabi"));
    check("riscv64-linux", Ok("riscv64gc-unknown-linux-gnu"));
    check("powerpc64le-linux", Ok("powerpc64le-unknown-linux-gnu"));
    check("powerpc64-linux", Ok("powerpc64-unknown-linux-gnu"));
    check("s390x-linux", Ok("s390x-unknown-linux-gnu"));
    check("loongarch64-linux", Ok("loongarch64-unknown-linux-gnu"));
    check("x86_64-darwin", Ok("x86_64-apple-darwin"));
    check("aarch64-darwin", Ok("aarch64-apple-darwin"));
    check("arm64-darwin", Ok("aarch64-apple-darwin"));
    check("x86_64-windows", Ok("x86_64-pc-windows-msvc"));
    check("x86_64-cygwin", Ok("x86_64-pc-cygwin"));
    check("x86_64-freebsd", Ok("x86_64-unknown-freebsd"));
    check("wasm32-wasi", Ok("wasm32-wasip1"));
    check("i686-elf", Err("rustc does not know that target"));
    check("avr", Err("`avr-unknown-none`"));
    check("mips64el-linux", Err("`mips64el-unknown-linux-gnu`"));
}

#[test]
fn rust_triples_unchanged() {
    for t in [
        "armv7-unknown-linux-gnueabihf",
        "riscv64gc-unknown-linux-gnu",
        "thumbv7em-none-eabihf",
        "i686-unknown-linux-musl",
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "arm-unknown-linux-musleabihf",
        "aarch64-linux-android",
        "wasm32-unknown-unknown",
        "x86_64-pc-windows-msvc",
        "avr-none",
    ] {
        check(t, Ok(t));
        assert_eq!(resolve(t).unwrap().origin, Origin::Rust);
    }
    assert_eq!(
        resolve("armv6l-unknown-linux-musleabihf").unwrap().origin,
        Origin::Nix {
            config: "armv6l-unknown-linux-musleabihf".into()
        }
    );
}

#[test]
fn rejected_like_nixpkgs() {
    check(
        "armv7l-unknown-linux-gnu",
        Err("use \"gnueabi\" (soft-float) or \"gnueabihf\""),
    );
    check("armv6l-unknown-linux-gnu", Err("ambiguous on 32-bit ARM"));
    check("arm-linux-gnu", Err("ambiguous on 32-bit ARM"));
    check(
        "armv7a-unknown-linux-android",
        Err("use \"androideabi\" instead"),
    );
    check(
        "powerpc64-linux-gnu",
        Err("use \"gnuabielfv2\" or \"gnuabielfv1\""),
    );
    check("armv9-unknown-linux-gnu", Err("unknown CPU type `armv9`"));
    check("x86-64-linux", Err("is ambiguous"));
    check("amd64-linux", Err("unknown CPU type `amd64`"));
    check("x86_64-acme-linux-gnu", Err("unknown vendor `acme`"));
    check("x86_64-unknown-linx-gnu", Err("unknown kernel `linx`"));
    check("x86_64-unknown-linux-gnux", Err("unknown ABI `gnux`"));
    check("x86_64-unknown-linux-muslx", Err("unknown ABI `muslx`"));
    check("x86_64", Err("with 1 component(s) is ambiguous"));
    check("linux", Err("with 1 component(s) is ambiguous"));
    check("", Err("with 1 component(s) is ambiguous"));
    check("a-b-c-d-e", Err("has 5 dash-separated parts"));
    check(
        "x86_64-unknown-linux-gnu-extra",
        Err("has 5 dash-separated"),
    );
    check(
        "x86_64-unknown-linux-uclibc",
        Err("`x86_64-unknown-linux-uclibc`, but rustc does not know"),
    );
    check(
        "aarch64-unknown-linux-gnueabihf",
        Err("rustc does not know that target"),
    );
}

#[test]
fn unknown_names_get_closest_known_names() {
    check(
        "aarch64-unknown-linux-mus",
        Err("closest known names: musl"),
    );
    check("x86_64-unknown-linx-gnu", Err("closest known names: linux"));
    check("armv6-linux", Err("closest known names: armv6l"));
    let err = resolve("x86_64-unknown-linux-muls")
        .unwrap_err()
        .to_string();
    assert!(err.contains("musl"), "{err}");
    let err = resolve("thumbv7em-none-eabihff").unwrap_err().to_string();
    assert!(err.contains("thumbv7em-none-eabihf"), "{err}");
}

#[test]
fn closest_orders_by_similarity() {
    let c = closest("musleabhf", ABIS.iter().copied());
    assert_eq!(c.first().map(String::as_str), Some("musleabihf"));
    assert!(closest("zzzzzz", ABIS.iter().copied()).is_empty());
}

#[test]
fn target_list_is_loaded() {
    assert!(rustc_targets().count() > 200);
    assert!(rustc_targets().all(|t| !t.contains(' ')));
}
