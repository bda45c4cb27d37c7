//! Provisioning against local fixtures, a loopback server and fake fetchers.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fixtures::{self, Reply, sha256};
use crate::support::{Run, ok, run, xbuild};

struct Env {
    home: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            home: tempfile::tempdir().unwrap(),
        }
    }
    fn dir(&self) -> &Path {
        self.home.path()
    }
    fn cache(&self) -> PathBuf {
        self.dir().join("cache")
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = xbuild(&self.home);
        c.current_dir(self.dir()).args(args);
        c
    }
    fn xb(&self, args: &[&str]) -> Run {
        run(&mut self.cmd(args))
    }
    fn installed(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.cache().join("v1/toolchains"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
    fn downloads(&self) -> usize {
        fs::read_dir(self.cache().join("v1/downloads")).map_or(0, |rd| rd.count())
    }
}

/// `tc.toml` in the test's dir, fetching the three fixtures from `base`.
fn write_url_pins(e: &Env, base: &str, a: &fixtures::Artifacts) {
    let toml = fixtures::toolchains_toml(
        [
            &format!("url = \"{base}/rust.tar.gz\""),
            &format!("url = \"{base}/zig.whl\""),
            &format!("url = \"{base}/qemu.deb\""),
        ],
        [&sha256(&a.rust), &sha256(&a.zig), &sha256(&a.qemu)],
    );
    fs::write(e.dir().join("tc.toml"), toml).unwrap();
}

#[test]
fn path_artifacts_install_and_second_run_is_a_no_op() {
    let e = Env::new();
    let (pins, _) = fixtures::local_pins(e.dir());
    let pins = pins.to_str().unwrap();
    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins]);
    ok(&r);
    assert!(r.stderr.contains("Installed rust"), "{}", r.stderr);
    let installed = e.installed();
    assert_eq!(installed.len(), 3, "{installed:?}");
    let rust = e.cache().join("v1/toolchains").join(&installed[1]);
    assert!(installed[1].starts_with("rust-"));
    // strip = 1 dropped the top directory; the layout's files are there
    assert!(rust.join("usr/bin/rustc").is_file());
    assert!(rust.join(".xbuild-installed").is_file());
    let zig = e
        .cache()
        .join("v1/toolchains")
        .join(&installed[2])
        .join("ziglang/zig");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&zig).unwrap().permissions().mode() & 0o111,
        0o111,
        "wheel modes kept"
    );
    assert!(e.cache().join("CACHEDIR.TAG").is_file());

    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins]);
    ok(&r);
    assert!(
        r.stderr.contains("Fresh rust, zig, qemu already installed"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Copying"));

    let r = e.xb(&["toolchain", "list", "--json", "--toolchains", pins]);
    ok(&r);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    // the fixture's rust archive (`rust.tar.gz`) does not say its release
    assert_eq!(v["rust_release"], serde_json::Value::Null);
    for c in v["components"].as_array().unwrap() {
        assert_eq!(c["installed"], true, "{c}");
        assert!(c["installed_size"].as_u64().unwrap() > 0);
    }
}

#[test]
fn url_artifacts_come_from_a_loopback_server_once() {
    let e = Env::new();
    let a = fixtures::artifacts();
    let server = fixtures::serve(HashMap::from([
        ("/rust.tar.gz".to_string(), Reply::Ok(a.rust.clone())),
        ("/zig.whl".to_string(), Reply::Ok(a.zig.clone())),
        ("/qemu.deb".to_string(), Reply::Ok(a.qemu.clone())),
    ]));
    write_url_pins(&e, &server.base, &a);
    ok(&e.xb(&["toolchain", "fetch", "--toolchains", "tc.toml"]));
    assert_eq!(e.installed().len(), 3);
    ok(&e.xb(&["toolchain", "fetch", "--toolchains", "tc.toml"]));
    assert_eq!(server.served.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn a_404_names_the_artifact_and_the_status() {
    let e = Env::new();
    let a = fixtures::artifacts();
    let server = fixtures::serve(HashMap::new());
    let (pins, _) = fixtures::local_pins(e.dir());
    let text = fs::read_to_string(&pins).unwrap().replace(
        "path = \"rust.tar.gz\"",
        &format!("url = \"{}/gone/rust.tar.gz\"", server.base),
    );
    fs::write(&pins, text).unwrap();
    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins.to_str().unwrap()]);
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr.contains("cannot fetch rust.tar.gz"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("answered HTTP 404"), "{}", r.stderr);
    assert!(e.installed().is_empty());
    let _ = a;
}

#[test]
fn a_tampered_archive_is_rejected_and_nothing_installed() {
    let e = Env::new();
    let (pins, a) = fixtures::local_pins(e.dir());
    let mut tampered = a.zig.clone();
    let last = tampered.len() - 30;
    tampered[last] ^= 0xff;
    fs::write(e.dir().join("zig.whl"), &tampered).unwrap();
    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins.to_str().unwrap()]);
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr.contains("sha256 mismatch for zig.whl (zig.whl)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("expected: {}", sha256(&a.zig))),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("computed: {}", sha256(&tampered))),
        "{}",
        r.stderr
    );
    assert!(
        !e.installed().iter().any(|n| n.starts_with("zig-")),
        "{:?}",
        e.installed()
    );
    assert!(
        !e.cache()
            .join("v1/downloads")
            .join(sha256(&tampered))
            .exists()
    );
    assert!(!e.cache().join("v1/downloads").join(sha256(&a.zig)).exists());
}

#[test]
fn a_truncated_download_is_an_error_and_leaves_nothing() {
    let e = Env::new();
    let a = fixtures::artifacts();
    let server = fixtures::serve(HashMap::from([(
        "/zig.whl".to_string(),
        Reply::Truncate(a.zig.clone(), a.zig.len() / 2),
    )]));
    let (pins, _) = fixtures::local_pins(e.dir());
    let text = fs::read_to_string(&pins).unwrap().replace(
        "path = \"zig.whl\"",
        &format!("url = \"{}/zig.whl\"", server.base),
    );
    fs::write(&pins, text).unwrap();
    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins.to_str().unwrap()]);
    assert_eq!(r.status, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("zig.whl"), "{}", r.stderr);
    assert!(!e.installed().iter().any(|n| n.starts_with("zig-")));
    assert!(!e.cache().join("v1/downloads").join(sha256(&a.zig)).exists());
}

fn pins_with_rust_archive(e: &Env, rust: &[u8]) -> PathBuf {
    let (pins, _) = fixtures::local_pins(e.dir());
    fs::write(e.dir().join("rust.tar.gz"), rust).unwrap();
    let a = fixtures::artifacts();
    let text = fs::read_to_string(&pins)
        .unwrap()
        .replace(&sha256(&a.rust), &sha256(rust));
    fs::write(&pins, text).unwrap();
    pins
}

#[test]
fn archives_escaping_the_destination_are_refused() {
    for (name, link, why) in [
        ("../evil", None, "climbs out with `..`"),
        ("a/../../evil", None, "climbs out with `..`"),
        ("/tmp/evil", None, "has an absolute path"),
        (
            "rust-1.0/usr/link",
            Some("../../../../etc/passwd"),
            "link pointing outside",
        ),
        (
            "rust-1.0/usr/abs",
            Some("/etc/passwd"),
            "link pointing outside",
        ),
    ] {
        let e = Env::new();
        let pins = pins_with_rust_archive(&e, &fixtures::tar_gz_raw_name(name, link));
        let r = e.xb(&["toolchain", "fetch", "--toolchains", pins.to_str().unwrap()]);
        assert_eq!(r.status, Some(1), "{name}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains("refusing to unpack"),
            "{name}: {}",
            r.stderr
        );
        assert!(e.installed().is_empty(), "{name}");
        assert!(!e.dir().join("evil").exists() && !Path::new("/tmp/evil").exists());
    }
}

#[test]
fn a_layout_file_missing_from_the_archives_is_reported() {
    let e = Env::new();
    let rust = fixtures::tar_gz(&[("rust-1.0/usr/bin/rustc", b"x", 0o755)]);
    let pins = pins_with_rust_archive(&e, &rust);
    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins.to_str().unwrap()]);
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr.contains("do not contain `usr/bin/cargo`"),
        "{}",
        r.stderr
    );
    assert!(e.installed().is_empty());
}

#[test]
fn a_process_killed_mid_download_leaves_nothing_and_the_next_run_recovers() {
    let e = Env::new();
    let a = fixtures::artifacts();
    let stall = fixtures::serve(HashMap::from([(
        "/zig.whl".to_string(),
        Reply::Stall(a.zig.clone(), a.zig.len() / 2),
    )]));
    let (pins, _) = fixtures::local_pins(e.dir());
    let good = fs::read_to_string(&pins).unwrap();
    fs::write(
        &pins,
        good.replace(
            "path = \"zig.whl\"",
            &format!("url = \"{}/zig.whl\"", stall.base),
        ),
    )
    .unwrap();
    let mut child = e
        .cmd(&["toolchain", "fetch", "--toolchains", pins.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // wait for the partial download to appear in the cache's temp area
    let tmp = e.cache().join("v1/tmp");
    let start = Instant::now();
    while !fs::read_dir(&tmp).is_ok_and(|mut rd| {
        rd.any(|f| f.is_ok_and(|f| f.file_name().to_string_lossy().starts_with("dl-")))
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no partial download appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!e.installed().iter().any(|n| n.starts_with("zig-")));
    assert!(!e.cache().join("v1/downloads").join(sha256(&a.zig)).exists());
    // a stale staging dir as if a process died while unpacking
    fs::create_dir_all(tmp.join("zig-0000.dead/ziglang")).unwrap();

    fs::write(&pins, good).unwrap();
    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins.to_str().unwrap()]);
    ok(&r);
    assert_eq!(e.installed().len(), 3);
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "leftovers cleaned");
}

#[test]
fn two_concurrent_provisioners_both_succeed_and_download_once() {
    let e = Env::new();
    let a = fixtures::artifacts();
    let server = fixtures::serve(HashMap::from([
        (
            "/rust.tar.gz".to_string(),
            Reply::Slow(a.rust.clone(), Duration::from_millis(300)),
        ),
        (
            "/zig.whl".to_string(),
            Reply::Slow(a.zig.clone(), Duration::from_millis(300)),
        ),
        ("/qemu.deb".to_string(), Reply::Ok(a.qemu.clone())),
    ]));
    write_url_pins(&e, &server.base, &a);
    let spawn = || {
        e.cmd(&["toolchain", "fetch", "--toolchains", "tc.toml"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (c1, c2) = (spawn(), spawn());
    for c in [c1, c2] {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let hits = server.hits.lock().unwrap().clone();
    assert_eq!(hits.values().sum::<usize>(), 3, "{hits:?}");
    assert_eq!(e.installed().len(), 3);
}

#[test]
fn offline_lists_every_missing_artifact_and_works_from_a_complete_cache() {
    let e = Env::new();
    let (pins, a) = fixtures::local_pins(e.dir());
    let pins = pins.to_str().unwrap();
    let r = e.xb(&["toolchain", "fetch", "--offline", "--toolchains", pins]);
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr
            .contains("offline: 3 pinned artifact(s) are neither in the cache nor in the mirror"),
        "{}",
        r.stderr
    );
    for (file, bytes) in [
        ("rust.tar.gz", &a.rust),
        ("zig.whl", &a.zig),
        ("qemu.deb", &a.qemu),
    ] {
        assert!(
            r.stderr
                .contains(&format!("({file}, sha256 {})", sha256(bytes))),
            "{}",
            r.stderr
        );
    }
    assert!(e.installed().is_empty());

    ok(&e.xb(&["toolchain", "fetch", "--toolchains", pins]));
    fs::remove_dir_all(e.cache().join("v1/toolchains")).unwrap();
    fs::remove_file(e.dir().join("zig.whl")).unwrap();
    let r = e.xb(&["toolchain", "fetch", "--offline", "--toolchains", pins]);
    ok(&r);
    assert_eq!(e.installed().len(), 3);
}

#[test]
fn the_mirror_is_consulted_first_by_file_name_or_digest() {
    let e = Env::new();
    let (pins, a) = fixtures::local_pins(e.dir());
    let mirror = e.dir().join("mirror");
    fs::create_dir(&mirror).unwrap();
    fs::rename(e.dir().join("rust.tar.gz"), mirror.join("rust.tar.gz")).unwrap();
    fs::rename(e.dir().join("zig.whl"), mirror.join(sha256(&a.zig))).unwrap();
    fs::rename(e.dir().join("qemu.deb"), mirror.join("qemu.deb")).unwrap();
    let r = run(e
        .cmd(&[
            "toolchain",
            "fetch",
            "--offline",
            "--toolchains",
            pins.to_str().unwrap(),
        ])
        .env("XBUILD_MIRROR", &mirror));
    ok(&r);
    assert!(r.stderr.contains("from the mirror"), "{}", r.stderr);
    assert_eq!(e.installed().len(), 3);
}

#[test]
fn a_corrupt_cached_archive_is_deleted_and_fetched_again() {
    let e = Env::new();
    let (pins, a) = fixtures::local_pins(e.dir());
    let pins = pins.to_str().unwrap();
    ok(&e.xb(&["toolchain", "fetch", "--toolchains", pins]));
    let cached = e.cache().join("v1/downloads").join(sha256(&a.rust));
    fs::write(&cached, b"rotten").unwrap();
    let r = e.xb(&["toolchain", "verify", "--toolchains", pins]);
    assert_eq!(r.status, Some(1));
    assert!(r.stdout.contains("CORRUPT (computed"), "{}", r.stdout);
    fs::remove_dir_all(e.cache().join("v1/toolchains")).unwrap();
    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins]);
    ok(&r);
    assert!(r.stderr.contains("is corrupt"), "{}", r.stderr);
    assert_eq!(fs::read(&cached).unwrap(), a.rust);
    let r = e.xb(&["toolchain", "verify", "--toolchains", pins]);
    ok(&r);
    assert_eq!(r.stdout.matches(" ok").count(), 3, "{}", r.stdout);
}

#[test]
fn bundle_and_import_round_trip() {
    let src = Env::new();
    let (pins, _) = fixtures::local_pins(src.dir());
    let bundle = src.dir().join("toolchain.tar");
    ok(&src.xb(&[
        "toolchain",
        "bundle",
        bundle.to_str().unwrap(),
        "--toolchains",
        pins.to_str().unwrap(),
    ]));

    let dst = Env::new();
    let pins_copy = dst.dir().join("toolchains.toml");
    fs::copy(&pins, &pins_copy).unwrap();
    let r = dst.xb(&["toolchain", "import", bundle.to_str().unwrap()]);
    ok(&r);
    assert!(r.stderr.contains("Imported 3 artifact(s)"), "{}", r.stderr);
    // the sources are not reachable from here: only the imported archives can serve
    let r = dst.xb(&[
        "toolchain",
        "fetch",
        "--offline",
        "--toolchains",
        pins_copy.to_str().unwrap(),
    ]);
    ok(&r);
    assert_eq!(dst.installed().len(), 3);

    // a damaged bundle is refused
    let mut bytes = fs::read(&bundle).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    fs::write(&bundle, &bytes).unwrap();
    let other = Env::new();
    let r = other.xb(&["toolchain", "import", bundle.to_str().unwrap()]);
    assert_eq!(r.status, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("does not match its digest") || r.stderr.contains("not"),
        "{}",
        r.stderr
    );
}

#[test]
fn gc_removes_what_the_pins_no_longer_name() {
    let e = Env::new();
    let (pins, _) = fixtures::local_pins(e.dir());
    let pins = pins.to_str().unwrap();
    ok(&e.xb(&["toolchain", "fetch", "--toolchains", pins]));
    let new_qemu = fixtures::deb(&[("./usr/bin/qemu-arm-static", b"x", 0o755)]);
    fs::write(e.dir().join("qemu.deb"), &new_qemu).unwrap();
    let old_qemu = sha256(&fixtures::artifacts().qemu);
    let text = fs::read_to_string(pins)
        .unwrap()
        .replace(&old_qemu, &sha256(&new_qemu));
    fs::write(pins, text).unwrap();
    ok(&e.xb(&["toolchain", "fetch", "--toolchains", pins]));
    assert_eq!(e.installed().len(), 4);
    assert_eq!(e.downloads(), 4);
    // while a build uses every toolchain dir (a shared lock on each), gc
    // removes none of them
    let locks: Vec<fs::File> = e
        .installed()
        .iter()
        .map(|name| {
            let path = e
                .cache()
                .join("v1/toolchain-locks")
                .join(format!("{name}.lock"));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let f = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap();
            f.lock_shared().unwrap();
            f
        })
        .collect();
    let r = e.xb(&["toolchain", "gc", "--toolchains", pins]);
    ok(&r);
    assert!(r.stderr.contains("a running build uses it"), "{}", r.stderr);
    assert_eq!(e.installed().len(), 4);
    drop(locks);
    let r = e.xb(&["toolchain", "gc", "--toolchains", pins]);
    ok(&r);
    assert_eq!(e.installed().len(), 3);
    assert_eq!(e.downloads(), 3);
    assert!(!e.cache().join("v1/downloads").join(&old_qemu).exists());
}

/// A directory with fake `apt-get` and `python3` that behave like the real
/// clients: write the requested file, or fail the way they do.
fn fake_fetchers(e: &Env, apt_script: &str, py_script: &str) -> String {
    let bin = e.dir().join("bin");
    fs::create_dir_all(&bin).unwrap();
    for (name, body) in [("apt-get", apt_script), ("python3", py_script)] {
        let p = bin.join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("{}:/usr/bin:/bin", bin.display())
}

#[test]
fn apt_and_pip_artifacts_use_the_clients() {
    let e = Env::new();
    let a = fixtures::artifacts();
    // apt says where the version is; xbuild downloads it itself
    let server = fixtures::serve(HashMap::from([(
        "/debian/pool/main/q/qemu/q.deb".to_string(),
        Reply::Ok(a.qemu.clone()),
    )]));
    fs::write(e.dir().join("z.whl"), &a.zig).unwrap();
    fs::write(e.dir().join("rust.tar.gz"), &a.rust).unwrap();
    let d = e.dir().display();
    let path = fake_fetchers(
        &e,
        &format!(
            "echo \"$@\" >> {d}/apt.args; echo \"'{}/debian/pool/main/q/qemu/q.deb' qemu-user-static_1%3a7.2_amd64.deb {} SHA256:00\"",
            server.base,
            a.qemu.len()
        ),
        &format!(
            "echo \"$@\" >> {d}/pip.args; while [ \"$1\" != -d ]; do shift; done; cp {d}/z.whl \"$2/ziglang-0.14.1-py3-none-any.whl\""
        ),
    );
    let toml = fixtures::toolchains_toml(
        [
            "path = \"rust.tar.gz\"",
            "pypi = \"ziglang==0.14.1\", file = \"ziglang-0.14.1-py3-none-any.whl\"",
            "apt = \"qemu-user-static=1:7.2\", arch = \"amd64\"",
        ],
        [&sha256(&a.rust), &sha256(&a.zig), &sha256(&a.qemu)],
    );
    fs::write(e.dir().join("tc.toml"), toml).unwrap();
    let r = run(e
        .cmd(&["toolchain", "fetch", "--toolchains", "tc.toml"])
        .env("PATH", &path));
    ok(&r);
    assert_eq!(e.installed().len(), 3);
    assert_eq!(
        fs::read_to_string(e.dir().join("apt.args")).unwrap().trim(),
        "download --print-uris -q qemu-user-static:amd64=1:7.2"
    );
    assert_eq!(server.served.load(std::sync::atomic::Ordering::SeqCst), 1);
    let pip = fs::read_to_string(e.dir().join("pip.args")).unwrap();
    assert!(
        pip.starts_with("-m pip download --no-deps --only-binary=:all:"),
        "{pip}"
    );
    assert!(pip.trim().ends_with("ziglang==0.14.1"), "{pip}");
}

#[test]
fn fetcher_failures_say_what_to_do() {
    let e = Env::new();
    let a = fixtures::artifacts();
    fs::write(e.dir().join("rust.tar.gz"), &a.rust).unwrap();
    let toml = fixtures::toolchains_toml(
        [
            "path = \"rust.tar.gz\"",
            "pypi = \"ziglang==0.14.1\", file = \"z.whl\"",
            "apt = \"qemu-user-static=1:7.2\"",
        ],
        [&sha256(&a.rust), &sha256(&a.zig), &sha256(&a.qemu)],
    );
    fs::write(e.dir().join("tc.toml"), toml).unwrap();

    let path = fake_fetchers(
        &e,
        "echo 'E: Unable to locate package qemu-user-static' >&2; exit 100",
        "exit 0",
    );
    let r = run(e
        .cmd(&[
            "toolchain",
            "fetch",
            "--toolchains",
            "tc.toml",
            "--target",
            "aarch64-unknown-linux-musl",
        ])
        .env("PATH", &path));
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr.contains("cannot fetch z.whl")
            || r.stderr.contains("cannot fetch ziglang==0.14.1"),
        "{}",
        r.stderr
    );

    let path = fake_fetchers(
        &e,
        "echo \"E: Version '1:7.2' for 'qemu-user-static' was not found\" >&2; exit 100",
        &format!("cp {}/z.whl \"$8\" 2>/dev/null; exit 0", e.dir().display()),
    );
    fs::write(e.dir().join("z.whl"), &a.zig).unwrap();
    let r = run(e
        .cmd(&["toolchain", "fetch", "--toolchains", "tc.toml"])
        .env("PATH", &path));
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr.contains("cannot fetch qemu-user-static 1:7.2"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Debian keeps only the newest version"),
        "{}",
        r.stderr
    );

    let path = fake_fetchers(
        &e,
        "echo 'E: Unable to locate package qemu-user-static' >&2; exit 100",
        "exit 0",
    );
    let r = run(e
        .cmd(&["toolchain", "fetch", "--toolchains", "tc.toml"])
        .env("PATH", &path));
    assert!(
        r.stderr.contains("`apt-get update` as root"),
        "{}",
        r.stderr
    );

    let path = fake_fetchers(
        &e,
        "exit 0",
        "echo '/usr/bin/python3: No module named pip' >&2; exit 1",
    );
    fs::remove_dir_all(e.cache()).unwrap();
    let r = run(e
        .cmd(&["toolchain", "fetch", "--toolchains", "tc.toml"])
        .env("PATH", &path));
    assert_eq!(r.status, Some(1));
    assert!(r.stderr.contains("pip is missing"), "{}", r.stderr);
}

/// A Debian pin the host's apt does not offer, with no mirror set: xbuild
/// tries its pool path on the Debian mirror (here a loopback one that no
/// longer has it), the host's apt, then its own apt configuration (the same
/// mirror, without lists), then the durable archive, served by a loopback
/// server with the archive's URL layout. A tampered file there is refused,
/// and when every source fails the error lists each one.
#[test]
fn a_pin_no_apt_source_offers_comes_from_the_durable_archive() {
    let e = Env::new();
    let a = fixtures::artifacts();
    fs::write(e.dir().join("rust.tar.gz"), &a.rust).unwrap();
    fs::write(e.dir().join("z.whl"), &a.zig).unwrap();
    let pool = "pool/updates/main/x/xbuild-test-qemu/xbuild-test-qemu_7.2-1~deb12u9_amd64.deb";
    let route = format!("/archive/debian-security/20261129T120000Z/{pool}");
    let pins = |sha: &str| {
        fixtures::toolchains_toml(
            [
                "path = \"rust.tar.gz\"",
                "path = \"z.whl\"",
                &format!(
                    "apt = \"xbuild-test-qemu=7.2-1~deb12u9\", arch = \"amd64\", suite = \"bookworm-security\", pool = \"{pool}\", snapshot = \"20261129T120000Z\""
                ),
            ],
            [&sha256(&a.rust), &sha256(&a.zig), sha],
        )
    };
    fs::write(e.dir().join("tc.toml"), pins(&sha256(&a.qemu))).unwrap();

    let tampered = {
        let mut b = a.qemu.clone();
        b.extend_from_slice(b"evil");
        b
    };
    let server = fixtures::serve(HashMap::from([(route.clone(), Reply::Ok(tampered))]));
    let fetch = |server: &fixtures::Server| {
        run(e
            .cmd(&[
                "toolchain",
                "fetch",
                "--toolchains",
                "tc.toml",
                "--target",
                "aarch64-unknown-linux-musl",
            ])
            .env("XBUILD_DEBIAN_MIRROR", format!("{}/debian", server.base))
            .env("XBUILD_DEBIAN_ARCHIVE", format!("{}/archive", server.base)))
    };
    let r = fetch(&server);
    assert_eq!(r.status, Some(1), "{}", r.stderr);
    for part in [
        "every source failed, nothing was installed",
        &format!(
            "1. the Debian mirror, {}/debian-security/{pool}: ",
            server.base
        ),
        "2. apt-get download xbuild-test-qemu:amd64=7.2-1~deb12u9 (the host's apt sources)",
        "3. apt-get download xbuild-test-qemu:amd64=7.2-1~deb12u9 (xbuild's apt sources: bookworm-security)",
        &format!(
            "4. the durable archive, {}{route}: sha256 mismatch",
            server.base
        ),
    ] {
        assert!(
            r.stderr.contains(part),
            "missing `{part}` in:\n{}",
            r.stderr
        );
    }
    assert!(
        !e.installed().iter().any(|n| n.starts_with("qemu-")),
        "{:?}",
        e.installed()
    );
    assert_eq!(e.downloads(), 2, "only rust and zig are kept");
    // xbuild's apt configuration lives in its cache, not in /etc/apt
    let apt_dir = e.cache().join("v1/apt");
    let list = fs::read_dir(&apt_dir)
        .unwrap()
        .flatten()
        .map(|d| fs::read_to_string(d.path().join("sources.list")).unwrap())
        .next()
        .unwrap();
    assert!(
        list.contains(&format!(
            "{}/debian-security bookworm-security main",
            server.base
        )),
        "{list}"
    );

    let server = fixtures::serve(HashMap::from([(route, Reply::Ok(a.qemu.clone()))]));
    let r = fetch(&server);
    ok(&r);
    assert!(r.stderr.contains("trying the next source"), "{}", r.stderr);
    assert!(
        e.installed().iter().any(|n| n.starts_with("qemu-")),
        "{:?}",
        e.installed()
    );
}

#[test]
fn bad_toolchains_files_are_rejected_with_position() {
    let e = Env::new();
    fs::write(e.dir().join("tc.toml"), "version = 1\n[rust\n").unwrap();
    let r = e.xb(&["toolchain", "list", "--toolchains", "tc.toml"]);
    // a user mistake: exit 2
    assert_eq!(r.status, Some(2));
    assert!(r.stderr.contains("tc.toml:2:6"), "{}", r.stderr);
    let (pins, _) = fixtures::local_pins(e.dir());
    let text = fs::read_to_string(&pins).unwrap();
    fs::write(
        &pins,
        text.replace("rustc = \"usr/bin/rustc\"", "rustc = 5"),
    )
    .unwrap();
    let r = e.xb(&["toolchain", "list", "--toolchains", pins.to_str().unwrap()]);
    assert_eq!(r.status, Some(2));
    assert!(r.stderr.contains("toolchains.toml:2:1"), "{}", r.stderr);
    assert!(r.stderr.contains("invalid type"), "{}", r.stderr);
    let text = fs::read_to_string(&pins).unwrap();
    fs::write(
        &pins,
        text.replace("strip = 1", "strip = 1, sha512 = \"x\""),
    )
    .unwrap();
    let r = e.xb(&["toolchain", "list", "--toolchains", pins.to_str().unwrap()]);
    assert!(r.stderr.contains("toolchains.toml:6:"), "{}", r.stderr);
    assert!(r.stderr.contains("unknown field `sha512`"), "{}", r.stderr);
    let r = e.xb(&["toolchain", "list", "--toolchains", "missing.toml"]);
    assert!(
        r.stderr.contains("cannot read missing.toml"),
        "{}",
        r.stderr
    );
}

/// A host glibc below the toolchain's floor is refused before anything is
/// fetched, with both versions named. (The floor is raised above any real
/// glibc to simulate an old host.)
#[test]
fn a_host_glibc_below_the_floor_is_refused_before_fetching() {
    let e = Env::new();
    let (pins, _) = fixtures::local_pins(e.dir());
    let text = fs::read_to_string(&pins).unwrap().replace(
        "rust-src = \"usr/lib/rustlib/src/rust\"",
        "rust-src = \"usr/lib/rustlib/src/rust\"\nglibc = \"99.1\"",
    );
    fs::write(&pins, text).unwrap();
    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins.to_str().unwrap()]);
    assert_eq!(r.status, Some(1), "{}", r.stderr);
    let host = String::from_utf8(
        Command::new("getconf")
            .arg("GNU_LIBC_VERSION")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let host = host.trim().trim_start_matches("glibc ");
    assert!(
        r.stderr.contains(&format!(
            "this host's glibc is {host}, but the pinned toolchain"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("needs glibc 99.1 or newer"),
        "{}",
        r.stderr
    );
    assert_eq!(e.downloads(), 0, "nothing is fetched");
    assert!(e.installed().is_empty());
}

/// Pins for another CPU's hosts are refused before anything is fetched,
/// naming both CPUs.
#[test]
fn pins_for_another_host_cpu_are_refused_before_fetching() {
    let e = Env::new();
    let (pins, _) = fixtures::local_pins(e.dir());
    let text = fs::read_to_string(&pins).unwrap();
    let other = if std::env::consts::ARCH == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    };
    fs::write(&pins, format!("host = \"{other}\"\n{text}")).unwrap();
    let r = e.xb(&["toolchain", "fetch", "--toolchains", pins.to_str().unwrap()]);
    assert_eq!(r.status, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "are for {other} hosts, and this host is {}",
            std::env::consts::ARCH
        )),
        "{}",
        r.stderr
    );
    assert_eq!(e.downloads(), 0, "nothing is fetched");
    assert!(e.installed().is_empty());
}

#[cfg(feature = "e2e")]
/// A program of python3's, started with `args`, that prints a port first:
/// killed when dropped.
struct Python {
    child: std::process::Child,
    port: u16,
}

#[cfg(feature = "e2e")]
impl Python {
    fn start(script: &str, args: &[&Path]) -> Python {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("{line:?}"));
        Python { child, port }
    }
}

#[cfg(feature = "e2e")]
impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "e2e")]
/// python3's file server behind TLS: the directory, certificate and key.
const HTTPS_SERVER: &str = r#"
import functools, http.server, ssl, sys
d, cert, key = sys.argv[1:4]
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
    functools.partial(http.server.SimpleHTTPRequestHandler, directory=d))
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(cert, key)
s.socket = c.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[cfg(feature = "e2e")]
/// An HTTP proxy that only tunnels (CONNECT), logging each request line.
const CONNECT_PROXY: &str = r#"
import socket, sys, threading
log = open(sys.argv[1], "a")
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(16)
print(l.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass
def handle(c):
    req = b""
    while b"\r\n\r\n" not in req:
        d = c.recv(4096)
        if not d:
            return
        req += d
    line = req.split(b"\r\n")[0].decode()
    log.write(line + "\n")
    log.flush()
    host, port = line.split()[1].rsplit(":", 1)
    u = socket.create_connection((host, int(port)))
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    pipe(c, u)
while True:
    c, _ = l.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

#[cfg(feature = "e2e")]
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// xbuild's own downloads trust the CA certificates the host names
/// (`SSL_CERT_FILE` here), as curl and pip do, not only the roots built
/// into it, and go through the proxy the environment names: a server whose
/// certificate a private CA signed serves the pins through a CONNECT proxy
/// once that CA is named, and is refused, saying why, while it is not.
// (with the e2e tests: it needs python3 and openssl on the host)
#[cfg(feature = "e2e")]
#[test]
fn https_downloads_trust_the_hosts_ca_bundle_and_use_the_proxy() {
    let e = Env::new();
    let a = fixtures::artifacts();
    let www = e.dir().join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("rust.tar.gz"), &a.rust).unwrap();
    fs::write(www.join("zig.whl"), &a.zig).unwrap();
    fs::write(www.join("qemu.deb"), &a.qemu).unwrap();
    let pki = e.dir().join("pki");
    fs::create_dir_all(&pki).unwrap();
    openssl(
        &pki,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=xbuild test CA",
        ],
    );
    openssl(
        &pki,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    fs::write(
        pki.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &pki,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
    let server = Python::start(
        HTTPS_SERVER,
        &[&www, &pki.join("server.pem"), &pki.join("server.key")],
    );
    let tunnels = e.dir().join("tunnels.log");
    let proxy = Python::start(CONNECT_PROXY, &[&tunnels]);
    write_url_pins(&e, &format!("https://127.0.0.1:{}", server.port), &a);
    let fetch = |ca: Option<&Path>| {
        let mut cmd = e.cmd(&["toolchain", "fetch", "--toolchains", "tc.toml"]);
        for var in [
            "ALL_PROXY",
            "all_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HTTPS_PROXY", format!("http://127.0.0.1:{}", proxy.port));
        match ca {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        run(&mut cmd)
    };
    // the system's bundle does not hold the test's CA
    let r = fetch(None);
    assert_ne!(r.status, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "{}",
        r.stderr
    );
    assert!(e.installed().is_empty());
    let r = fetch(Some(&pki.join("ca.pem")));
    ok(&r);
    assert_eq!(e.installed().len(), 3, "{}", r.stderr);
    let log = fs::read_to_string(&tunnels).unwrap();
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{} ", server.port)),
        "{log}"
    );
}
