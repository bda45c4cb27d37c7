//! Tests of `zigcc`.

use super::*;

fn args(target: &str, given: &[&str]) -> Vec<String> {
    let t = targets::lookup(target).unwrap();
    cc_args(t, given.iter().map(OsString::from).collect())
        .unwrap()
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect()
}

#[test]
fn each_remapped_path_becomes_a_file_prefix_map() {
    assert!(prefix_map_args(None).is_empty());
    let map =
        OsString::from("/tmp/xbuild-sealed/src=/xbuild/src\x1f/c h=/xbuild/cargo-home\x1fjunk");
    assert_eq!(
        prefix_map_args(Some(map)),
        [
            "-ffile-prefix-map=/tmp/xbuild-sealed/src=/xbuild/src",
            "-ffile-prefix-map=/c h=/xbuild/cargo-home"
        ]
        .map(OsString::from)
    );
}

#[test]
fn target_and_cpu_come_first() {
    assert_eq!(
        args("armv6l-unknown-linux-musleabihf", &["-c", "x.c"]),
        [
            "-target",
            "arm-linux-musleabihf",
            "-mcpu=arm1176jzf_s",
            "-c",
            "x.c"
        ]
    );
    assert_eq!(
        args("i686-unknown-linux-musl", &["-O2"]),
        ["-target", "x86-linux-musl", "-O2"]
    );
}

#[test]
fn rejected_flags_are_rewritten() {
    assert_eq!(
        args(
            "x86_64-unknown-linux-musl",
            &[
                "--target=x86_64-unknown-linux-musl",
                "-static-pie",
                "-o",
                "a"
            ]
        ),
        ["-target", "x86_64-linux-musl", "-static", "-pie", "-o", "a"]
    );
    assert_eq!(
        args(
            "i686-unknown-linux-musl",
            &[
                "-Wl,-melf_i386",
                "-target",
                "i686-unknown-linux-musl",
                "x.o"
            ]
        ),
        ["-target", "x86-linux-musl", "x.o"]
    );
}

#[test]
fn links_are_told_from_compiles() {
    let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    assert!(is_link(&a(&["x.o", "-o", "app", "-static"])));
    assert!(is_link(&a(&["conftest.c", "-oconftest"])));
    assert!(!is_link(&a(&["-c", "x.c", "-o", "x.o"])));
    assert!(!is_link(&a(&["-E", "x.c"])));
    assert!(!is_link(&a(&["--version"])));
}

#[test]
fn the_cxx_standard_library_by_any_name_is_taken_out() {
    let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let mut args = a(&["x.o", "-lstdc++", "-l", "c++abi", "-lc", "-lm", "-o", "app"]);
    assert!(take_cxx_stdlib(&mut args));
    assert_eq!(args, a(&["x.o", "-lc", "-lm", "-o", "app"]));
    let mut plain = a(&["x.o", "-lz", "-o", "app"]);
    assert!(!take_cxx_stdlib(&mut plain));
    assert_eq!(plain, a(&["x.o", "-lz", "-o", "app"]));
}

#[test]
fn the_cmake_toolchain_names_the_wrappers_beside_it_and_the_target() {
    let t = targets::lookup("armv6l-unknown-linux-musleabihf").unwrap();
    let shims = Shims {
        cc: "/c/xbuild-zig-cc--arm".into(),
        cxx: "/c/xbuild-zig-c++--arm".into(),
        ar: "/c/xbuild-zig-ar--arm".into(),
        ranlib: "/c/xbuild-zig-ranlib--arm".into(),
        ld: "/c/xbuild-zig-ld--arm".into(),
        cmake_toolchain: "/c/t.cmake".into(),
        config_site: "/c/site.sh".into(),
    };
    let text = cmake_toolchain(t, &shims);
    for line in [
        "set(CMAKE_SYSTEM_NAME Linux)",
        "set(CMAKE_SYSTEM_PROCESSOR armv6l)",
        // beside the file, wherever a sandbox shows it
        "set(CMAKE_CXX_COMPILER \"${CMAKE_CURRENT_LIST_DIR}/xbuild-zig-c++--arm\")",
        "set(CMAKE_RANLIB \"${CMAKE_CURRENT_LIST_DIR}/xbuild-zig-ranlib--arm\" CACHE FILEPATH \"xbuild\")",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    let b = bindgen_args(t, Path::new("/z/zig"));
    assert!(b.starts_with("-nostdlibinc -isystem/z/lib/include "), "{b}");
    assert!(
        b.contains("-isystem/z/lib/libc/include/arm-linux-musl"),
        "{b}"
    );
    let x = bindgen_args(
        targets::lookup("x86_64-unknown-linux-musl").unwrap(),
        Path::new("/z/zig"),
    );
    assert!(x.contains("/libc/include/x86-linux-any"), "{x}");
}

/// What configure's canonical host is after `/bin/sh` sources the site
/// file, with `--host` given as `host_alias`.
fn configured_host(target: &Target, host_alias: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.sh");
    fs::write(&site, config_site(target)).unwrap();
    let out = crate::process::Cmd::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "host_alias='{host_alias}'; . '{}'; printf '%s' \"$ac_cv_host\"",
            site.display()
        ))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn configure_gets_zigs_lld_as_ld_beside_the_site_file_unless_ld_is_set() {
    let t = targets::lookup("riscv64gc-unknown-linux-musl").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.sh");
    fs::write(&site, config_site(t)).unwrap();
    let ld = |preset: &str| {
        let out = crate::process::Cmd::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "{preset} CONFIG_SITE='{}'; . \"$CONFIG_SITE\"; printf '%s' \"$LD\"",
                site.display()
            ))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        ld(""),
        format!(
            "{}/xbuild-zig-ld--riscv64gc-unknown-linux-musl",
            dir.path().display()
        )
    );
    assert_eq!(ld("LD=/my/ld;"), "/my/ld");
    let ar = crate::process::Cmd::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "CONFIG_SITE='{}'; . \"$CONFIG_SITE\"; printf '%s %s' \"$AR\" \"$RANLIB\"",
            site.display()
        ))
        .output()
        .unwrap();
    let d = dir.path().display();
    assert_eq!(
        String::from_utf8(ar.stdout).unwrap(),
        format!(
            "{d}/xbuild-zig-ar--riscv64gc-unknown-linux-musl {d}/xbuild-zig-ranlib--riscv64gc-unknown-linux-musl"
        )
    );
}

#[test]
fn configure_gets_the_gnu_host_for_rusts_name_and_nothing_else() {
    for t in targets::all() {
        let got = configured_host(t, &t.rust);
        if t.rust == t.nix {
            assert_eq!(got, "", "{}", t.rust);
        } else {
            assert_eq!(got, t.nix, "{}", t.rust);
        }
        // configure for the build machine (no --host), or another host
        assert_eq!(configured_host(t, ""), "", "{}", t.rust);
        assert_eq!(configured_host(t, "x86_64-pc-linux-gnu"), "", "{}", t.rust);
    }
    let riscv = targets::lookup("riscv64gc-unknown-linux-musl").unwrap();
    assert_eq!(
        configured_host(riscv, "riscv64gc-unknown-linux-musl"),
        "riscv64-unknown-linux-musl"
    );
}
