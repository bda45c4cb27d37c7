//! Other hosts: what the pinned toolchain takes from the machine it runs on
//! (glibc and its loader, nothing else), and provisioning plus a build in a
//! Debian 13 root whose own apt sources are Debian 13's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::e2e::{cache_dir, component_dir, copy_dir};
use crate::support::{ok, repo_root, run};

/// glibc's own libraries: what the toolchain may load from the host.
const GLIBC: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libresolv.so.2",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
];

fn is_elf(p: &Path) -> bool {
    fs::read(p).is_ok_and(|b| b.starts_with(b"\x7fELF"))
}

/// The floor `toolchains.toml` declares.
fn declared_floor() -> String {
    let text = fs::read_to_string(repo_root().join("toolchains.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("glibc = "))
        .expect("[rust] glibc is pinned");
    line.trim_start_matches("glibc = ")
        .trim_matches('"')
        .to_string()
}

/// rustc, cargo, rustdoc and every shared library of the rust component,
/// resolved by the host's loader with the launchers' library path: each one
/// is the component's own, or glibc's. And the glibc floor the pins declare
/// is the newest glibc symbol version any of them needs.
#[test]
fn the_pinned_toolchain_loads_only_glibc_from_the_host() {
    let rust = component_dir("rust");
    let libdirs = [
        rust.join("usr/lib/x86_64-linux-gnu"),
        rust.join("lib/x86_64-linux-gnu"),
    ];
    let mut files: Vec<PathBuf> = ["rustc", "cargo", "rustdoc"]
        .iter()
        .map(|b| rust.join("usr/bin").join(b))
        .collect();
    for d in &libdirs {
        for e in fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_file()
                && p.file_name().unwrap().to_string_lossy().contains(".so")
                && is_elf(&p)
            {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 40, "{files:?}");
    let library_path = libdirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let mut newest = (2u32, 0u32);
    for f in &files {
        let out = Command::new("/lib64/ld-linux-x86-64.so.2")
            .args(["--library-path", &library_path, "--list"])
            .arg(f)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {text}", f.display());
        for line in text.lines().filter(|l| l.contains("=>")) {
            let (name, rest) = line.trim().split_once(" => ").unwrap();
            assert!(!rest.contains("not found"), "{}: {line}", f.display());
            let path = rest.split(" (").next().unwrap();
            assert!(
                path.starts_with(rust.to_str().unwrap()) || GLIBC.contains(&name),
                "{} loads {name} from the host ({path})",
                f.display()
            );
        }
        // the symbol versions it needs from glibc
        let bytes = fs::read(f).unwrap();
        for w in bytes
            .windows(8)
            .enumerate()
            .filter(|(_, w)| w == b"GLIBC_2.")
        {
            let digits: String = bytes[w.0 + 8..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|&b| b as char)
                .collect();
            if let Ok(minor) = digits.parse() {
                newest = newest.max((2, minor));
            }
        }
    }
    assert_eq!(
        format!("{}.{}", newest.0, newest.1),
        declared_floor(),
        "the glibc floor in toolchains.toml is the newest version the toolchain needs"
    );
    // the launchers run the toolchain with it
    let out = Command::new(rust.join("xbuild-bin/cargo"))
        .arg("-V")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("cargo 1."),
        "{out:?}"
    );
}

#[allow(clippy::disallowed_methods)] // the CI's setting, read directly
fn debian13_root() -> Option<PathBuf> {
    std::env::var_os("XBUILD_TEST_DEBIAN13_ROOT").map(PathBuf::from)
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// A Debian 13 root made with `debootstrap --variant=minbase
/// --include=ca-certificates,bubblewrap` (`.ci/run` makes one and sets
/// XBUILD_TEST_DEBIAN13_ROOT; cargo needs CA certificates to fetch crates):
/// its apt sources are Debian 13's, and it has neither the libcurl nor the
/// libssh2 that cargo needs, nor make or a C compiler. It is entered
/// as another host would be, with a mount namespace and pivot_root
/// (bubblewrap, as root: the kernel refuses user namespaces to a chrooted
/// process), so xbuild's sandbox works inside it. xbuild provisions the
/// default pins there by their pool paths on the Debian mirror the root's
/// apt names (its apt does not offer Debian 12's versions; no apt-get
/// runs), builds the fixture (a C build script included) for armv6l in its
/// sandbox on the build root, and gets the bytes this host's build gets; the
/// executable runs under the provisioned qemu. The root has no pip: the PyPI
/// wheels are put into the root's cache from the host's, as `xbuild
/// toolchain import` would. The host's std sysroots are shared (their keys
/// hold no machine paths).
#[test]
fn a_debian_13_root_provisions_from_its_mirror_and_builds_the_hosts_bytes_in_its_sandbox() {
    let Some(root) = debian13_root() else {
        eprintln!("skipped: XBUILD_TEST_DEBIAN13_ROOT is not set (.ci/run sets it)");
        return;
    };
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "entering a root with bubblewrap without a user namespace needs root"
    );
    let os = fs::read_to_string(root.join("etc/os-release")).unwrap();
    assert!(os.contains("VERSION_CODENAME=trixie"), "{os}");
    // (Debian 13's minbase has libsqlite3 and libssl, which its apt uses; the toolchain
    // loads its own all the same, as the test above shows.)
    assert!(
        root.join("etc/ssl/certs/ca-certificates.crt").is_file(),
        "cargo needs CA certificates: debootstrap --include=ca-certificates"
    );
    for lib in ["libcurl.so.4", "libssh2.so.1"] {
        for dir in ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"] {
            assert!(!root.join(dir).join(lib).exists(), "the root has {lib}");
        }
    }
    // (minbase has perl-base: the build sees the build root's perl all the same)
    for program in ["make", "cc", "gcc"] {
        assert!(
            !root.join("usr/bin").join(program).exists(),
            "the root has {program}"
        );
    }
    assert!(
        root.join("usr/bin/bwrap").is_file(),
        "debootstrap --include=bubblewrap"
    );
    // xbuild, the workspace, and a cache holding only zig's wheel and the
    // host's std sysroots
    let bin = root.join("usr/local/bin/xbuild");
    fs::copy(env!("CARGO_BIN_EXE_xbuild"), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let work = root.join("work");
    let _ = fs::remove_dir_all(&work);
    copy_dir(
        &repo_root().join("tests/fixtures/hello-ws"),
        &work.join("ws"),
    );
    let cache = root.join("var/cache/xbuild-test");
    let _ = fs::remove_dir_all(&cache);
    fs::create_dir_all(cache.join("v1/downloads")).unwrap();
    // the PyPI wheels (zig, CMake, Ninja, libclang), as `xbuild toolchain
    // import` would put them there: the root has no pip
    let _ = component_dir("zig"); // the host's cache has them
    let text = fs::read_to_string(repo_root().join("toolchains.toml")).unwrap();
    for line in text.lines().filter(|l| l.contains("{ pypi = ")) {
        let sha = &line.split("sha256 = \"").nth(1).unwrap()[..64];
        fs::copy(
            cache_dir().join("v1/downloads").join(sha),
            cache.join("v1/downloads").join(sha),
        )
        .unwrap();
    }
    let sysroots = cache_dir().join("v1/sysroots");
    if sysroots.is_dir() {
        sh(&format!(
            "cp -a '{}' '{}'",
            sysroots.display(),
            cache.join("v1/sysroots").display()
        ));
    }
    fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).unwrap();
    // the root trusts what this machine trusts (a network may intercept TLS
    // with its own CA, which the host has and a fresh root has not)
    fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        root.join("etc/ssl/certs/ca-certificates.crt"),
    )
    .unwrap();
    // the root entered as its own host: `/` is the root, with its own /dev,
    // the host's network and /proc (a fresh `--proc` has bubblewrap's
    // read-only submounts, and the kernel then refuses the sandbox inside a
    // new proc: "Can't mount proc on /proc")
    let enter = |script: &str| {
        run(Command::new("bwrap")
            .arg("--bind")
            .arg(&root)
            .arg("/")
            .args([
                "--dev", "/dev", "--bind", "/proc", "/proc", "--chdir", "/", "--",
            ])
            .args([
                "/usr/bin/env",
                "-i",
                "HOME=/root",
                "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "XBUILD_CACHE_DIR=/var/cache/xbuild-test",
                "XBUILD_REQUIRE_SANDBOX=1",
                "/bin/sh",
                "-c",
                script,
            ]))
    };
    let started = std::time::Instant::now();
    let r = enter("cd /work/ws && xbuild --target armv6l-unknown-linux-musleabihf --out /work/out");
    eprintln!(
        "Debian 13 root: provision and build in {:.0}s\n{}",
        started.elapsed().as_secs_f64(),
        r.stderr
    );
    ok(&r);
    // every Debian pin comes by its pool path from the mirror the root's apt
    // names: no apt-get, no lists (the root's apt offers none of the pins)
    assert!(r.stderr.contains("/debian/pool/main/"), "{}", r.stderr);
    for not in [
        "Updating xbuild's apt lists",
        "did not work",
        "the durable archive,",
    ] {
        assert!(!r.stderr.contains(not), "`{not}` in {}", r.stderr);
    }
    // built in the root's sandbox, on the build root: this host's bytes
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(work.join("out/report.json")).unwrap()).unwrap();
    assert_eq!(report["targets"][0]["sandboxed"], true, "{report}");
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures/hello-ws"), ws.path());
    let out = ws.path().join("out");
    ok(&run(crate::e2e::xbuild(ws.path())
        .args(["--target", "armv6l-unknown-linux-musleabihf", "--out"])
        .arg(&out)));
    assert_eq!(
        fs::read_to_string(work.join("out/SHA256SUMS")).unwrap(),
        fs::read_to_string(out.join("SHA256SUMS")).unwrap(),
        "the Debian 13 root and this host build the same bytes"
    );
    // qemu too comes from the mirror
    let r = enter("xbuild toolchain fetch --target armv6l-unknown-linux-musleabihf");
    ok(&r);
    let qemu = fs::read_dir(cache.join("v1/toolchains"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("qemu-"))
        .unwrap()
        .path()
        .join("usr/bin/qemu-arm");
    let inside = Path::new("/").join(qemu.strip_prefix(&root).unwrap());
    let r = enter(&format!(
        "{} -cpu arm1176 /work/out/arm-unknown-linux-musleabihf/app",
        inside.display()
    ));
    ok(&r);
    assert_eq!(
        r.stdout.trim(),
        "app: c_add=42 arch=arm version=none",
        "{}",
        r.stderr
    );
}
