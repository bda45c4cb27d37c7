//! The sandbox, as root (the test process) and as an ordinary user.
//!
//! The ordinary user is the account named by `XBUILD_TEST_USER` (`.ci/run`
//! creates one). It gets its own copy of xbuild, its own HOME and cache, and
//! the provisioned toolchain and std shared read-only: its cache holds hard
//! links to root's files, in directories it owns. Without `XBUILD_TEST_USER`
//! the tests run as root only, and say so.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::e2e::{cache_dir, copy_dir, provisioned, run_binary, xbuild};
use crate::support::{Run, ok, repo_root, run};

const T: &str = "x86_64-unknown-linux-musl";

/// An ordinary account to run xbuild as.
pub(crate) struct User {
    pub(crate) name: String,
    uid: u32,
    gid: u32,
    /// Its private HOME, made for this run.
    pub(crate) home: PathBuf,
    /// xbuild, copied where the user can run it.
    xbuild: PathBuf,
    pub(crate) cache: PathBuf,
}

fn id(flag: &str, name: &str) -> u32 {
    let r = run(Command::new("id").args([flag, name]));
    ok(&r);
    r.stdout.trim().parse().unwrap()
}

#[allow(clippy::disallowed_methods)] // the test reads CI's setting directly
pub(crate) fn user() -> Option<&'static User> {
    static USER: OnceLock<Option<User>> = OnceLock::new();
    USER.get_or_init(|| {
        let name = std::env::var("XBUILD_TEST_USER").ok()?;
        provisioned();
        let (uid, gid) = (id("-u", &name), id("-g", &name));
        // its cache gets a std of its own (gigabytes): gone at exit
        let base = crate::support::dir_until_exit("xbuild-user-");
        let home = base.join("home");
        let cache = home.join(".cache/xbuild");
        fs::create_dir_all(cache.join("v1")).unwrap();
        // toolchain and std shared read-only: root's files, linked
        for bucket in ["toolchains", "sysroots", "downloads"] {
            let from = cache_dir().join("v1").join(bucket);
            if from.is_dir() {
                ok(&run(Command::new("cp")
                    .arg("-al")
                    .arg(&from)
                    .arg(cache.join("v1").join(bucket))));
            }
        }
        let xbuild = base.join("bin/xbuild");
        fs::create_dir_all(xbuild.parent().unwrap()).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_xbuild"), &xbuild).unwrap();
        // the user owns its directories; the shared files stay root's
        ok(&run(Command::new("sh").arg("-c").arg(format!(
            "find '{}' -type d -exec chown {uid}:{gid} {{}} + && chmod 755 '{}'",
            home.display(),
            base.display()
        ))));
        ok(&run(Command::new("chmod").arg("-R").arg("a+rX").arg(&base)));
        Some(User {
            name,
            uid,
            gid,
            home,
            xbuild,
            cache,
        })
    })
    .as_ref()
}

/// A copy of `from` that `user` owns (git refuses repositories owned by
/// someone else).
pub(crate) fn give(user: &User, dir: &Path) {
    ok(&run(Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", user.uid, user.gid))
        .arg(dir)));
}

/// xbuild as `user` (None: as this process), in `cwd`.
pub(crate) fn xbuild_as(user: Option<&User>, cwd: &Path) -> Command {
    let Some(u) = user else {
        return xbuild(cwd);
    };
    let mut c = Command::new("/usr/bin/setpriv");
    c.arg(format!("--reuid={}", u.uid))
        .arg(format!("--regid={}", u.gid))
        .arg("--clear-groups")
        .arg("--")
        .arg(&u.xbuild)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", &u.home)
        .env("USER", &u.name)
        .env("XBUILD_CACHE_DIR", &u.cache)
        .env("XBUILD_CACHE_MAX", "none")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    c
}

/// Who runs the test: root, and the ordinary user when there is one.
pub(crate) fn everyone() -> Vec<Option<&'static User>> {
    match user() {
        Some(u) => vec![None, Some(u)],
        None => {
            eprintln!("XBUILD_TEST_USER is not set: the sandbox is tested as root only");
            vec![None]
        }
    }
}

/// A workspace whose build script probes what it can reach; the binary
/// prints what the build script found. `cache` is the cache the build uses:
/// its buckets are seen at fixed paths (`/tmp/xbuild-in/…`), so not even the
/// directories leading to it (under HOME for the ordinary user) show.
fn probe(dir: &Path, port: u16, secret: &Path, caller_home: &Path, cache: &Path) {
    crate::support::one_package(dir, "probe");
    fs::write(
        dir.join("build.rs"),
        format!(
            r#"fn main() {{
    let net = std::net::TcpStream::connect(("127.0.0.1", {port})).is_ok();
    // entries of a directory; xbuild's own cache ({cache:?}) is not there
    // either: its buckets are seen at fixed paths
    let count = |d: &str| {{
        std::fs::read_dir(d).map(|r| r.flatten().count()).unwrap_or(0)
    }};
    let secret = std::fs::read_to_string({secret:?}).is_ok()
        || std::fs::read_to_string(concat!({caller:?}, "/.ssh/id_test")).is_ok();
    println!(
        "cargo:rustc-env=PROBE=net={{net}} root={{}} home={{}} caller={{}} secret={{secret}}",
        count("/root"),
        count("/home"),
        count({caller:?})
    );
    // the programs a build script finds, and the system it runs on
    let tools = std::process::Command::new("sh")
        .args(["-c", {TOOLS:?}])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("no sh: {{e}}"));
    println!("cargo:rustc-env=TOOLS={{tools}}");
}}
"#,
            caller = caller_home.display().to_string(),
            cache = cache.display().to_string(),
        ),
    )
    .unwrap();
    fs::write(
        dir.join("src/main.rs"),
        "fn main() {\n    println!(\"{}\\n{}\", env!(\"PROBE\"), env!(\"TOOLS\"));\n}\n",
    )
    .unwrap();
}

/// What the probe's build script runs: the digests of the perl, make, sh
/// and awk it finds and of its libc, whether it finds a `cc` and a
/// `python3`, its glibc, user and host name.
const TOOLS: &str = "for p in perl make sh awk; do sha256sum \"$(command -v $p)\" | cut -c1-16; done; \
     command -v cc || echo no-cc; command -v python3 || echo no-python3; getconf GNU_LIBC_VERSION; \
     sha256sum /lib/x86_64-linux-gnu/libc.so.6 | cut -c1-16; id -un; uname -n";

/// What the probe must report: the build root's programs, whatever the
/// host has (this one has perl, make, a cc and python3 of its own).
fn build_root_tools() -> String {
    let root = crate::e2e::component_dir("build-root");
    let digest = |rel: &str| {
        use sha2::Digest;
        let bytes = fs::read(root.join(rel)).unwrap();
        hex::encode(sha2::Sha256::digest(&bytes))[..16].to_string()
    };
    let mut words: Vec<String> = [
        "usr/bin/perl",
        "usr/bin/make",
        "usr/bin/dash",
        "usr/bin/gawk",
    ]
    .iter()
    .map(|p| digest(p))
    .collect();
    words.extend(["no-cc", "no-python3", "glibc", "2.36"].map(String::from));
    words.push(digest("usr/lib/x86_64-linux-gnu/libc.so.6"));
    words.extend(["build", "xbuild"].map(String::from));
    words.join(" ")
}

/// A file outside every input, readable by everyone: under /srv where this
/// account may write there (root), else under /var/tmp. (Its dir, its path.)
pub(crate) fn host_secret() -> (tempfile::TempDir, PathBuf) {
    let srv = ["/srv", "/var/tmp"]
        .iter()
        .find_map(|d| {
            tempfile::Builder::new()
                .prefix("xbuild-test-")
                .tempdir_in(d)
                .ok()
        })
        .unwrap();
    let secret = srv.path().join("secret");
    fs::write(&secret, "do not read").unwrap();
    fs::set_permissions(srv.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    (srv, secret)
}

/// A server on the host's loopback that answers anyone who connects.
pub(crate) fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(b"hello");
            let mut b = [0u8; 1];
            let _ = s.read(&mut b);
        }
    });
    port
}

/// `/tmp/.cargo/config.toml` planted for as long as it lives, removed even
/// when the test fails. It holds a lock on a file in `/tmp` meanwhile, so
/// that the tests planting it take turns, in this process and in any other
/// test run on this machine. One found there while the lock is held was left
/// by a killed run when it is ours (then it is removed too), and is kept
/// when it is not.
struct Planted {
    ours: bool,
    _lock: fs::File,
}

const HOSTILE: &str = "[build]\nrustc-wrapper = \"/nonexistent/xbuild-test-wrapper\"\n";

/// The turn of a test that plants `/tmp/.cargo/config.toml` or needs it
/// absent: a lock on a file in `/tmp`, held for as long as the file lives.
fn tmp_config_turn() -> fs::File {
    let path = Path::new("/tmp/xbuild-tests-tmp-cargo-config.lock");
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .or_else(|_| fs::File::open(path))
        .unwrap();
    lock.lock().unwrap();
    lock
}

const TMP_CONFIG: &str = "/tmp/.cargo/config.toml";

impl Planted {
    fn new() -> Planted {
        let lock = tmp_config_turn();
        let ours = match fs::read_to_string(TMP_CONFIG) {
            Ok(text) => text == HOSTILE,
            Err(_) => {
                hostile_config(Path::new("/tmp"));
                fs::set_permissions("/tmp/.cargo", fs::Permissions::from_mode(0o755)).unwrap();
                true
            }
        };
        Planted { ours, _lock: lock }
    }

    /// `/tmp` without a cargo config, for as long as the lock lives: one a
    /// killed run of ours left is removed; a foreign one fails the test.
    fn absent() -> fs::File {
        let lock = tmp_config_turn();
        if let Ok(text) = fs::read_to_string(TMP_CONFIG) {
            assert_eq!(
                text, HOSTILE,
                "{TMP_CONFIG} is not ours: remove it to run this test"
            );
            fs::remove_dir_all("/tmp/.cargo").unwrap();
        }
        lock
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        if self.ours {
            let _ = fs::remove_dir_all("/tmp/.cargo");
        }
    }
}

/// A cargo config with a `rustc-wrapper` that fails the build if used.
fn hostile_config(dir: &Path) {
    fs::create_dir_all(dir.join(".cargo")).unwrap();
    fs::write(dir.join(".cargo/config.toml"), HOSTILE).unwrap();
}

#[test]
fn a_build_script_sees_no_network_no_homes_no_files_outside_its_inputs() {
    provisioned();
    let port = server();
    // the server is reachable from outside the sandbox
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let (_srv, secret) = host_secret();
    // a cargo config any local user could leave in /tmp
    let _planted = Planted::new();
    for who in everyone() {
        let ws = tempfile::tempdir().unwrap();
        let home = who.map_or_else(|| PathBuf::from("/root"), |u| u.home.clone());
        let cache = who.map_or_else(cache_dir, |u| u.cache.clone());
        probe(ws.path(), port, &secret, &home, &cache);
        if let Some(u) = who {
            hostile_config(&u.home);
            // a key in the caller's HOME, readable by the caller
            fs::create_dir_all(u.home.join(".ssh")).unwrap();
            fs::write(u.home.join(".ssh/id_test"), "private key").unwrap();
            give(u, &u.home.join(".ssh"));
            give(u, &u.home.join(".cargo"));
            give(u, ws.path());
            fs::set_permissions(ws.path(), fs::Permissions::from_mode(0o755)).unwrap();
        }
        let r = run(xbuild_as(who, ws.path()).args(["--target", T, "--require-sandbox"]));
        ok(&r);
        assert_probe_reached_nothing(ws.path(), who);
    }
}

/// The probe built in `ws` (as `who`) reached nothing, ran the build root's
/// programs, and was built sandboxed.
fn assert_probe_reached_nothing(ws: &Path, who: Option<&User>) {
    let exe = ws.join("target/xbuild").join(T).join("probe");
    let p = run_binary(T, &exe, &[]);
    ok(&p);
    let who_name = who.map_or("this process's user", |u| u.name.as_str());
    let mut lines = p.stdout.lines();
    assert_eq!(
        lines.next().unwrap_or_default(),
        "net=false root=0 home=0 caller=0 secret=false",
        "as {who_name}"
    );
    assert_eq!(
        lines.next().unwrap_or_default(),
        build_root_tools(),
        "as {who_name}: the build script ran the build root's programs"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(ws.join("target/xbuild/report.json")).unwrap()).unwrap();
    assert_eq!(report["targets"][0]["sandboxed"], true);
}

/// On a host without bubblewrap (none on PATH), the build root's, started
/// through the root's loader, makes the same sandbox: as root and as the
/// ordinary user, the probe's build script reaches nothing and runs the
/// build root's programs, and the doctor names which bubblewrap it is.
#[test]
fn without_the_hosts_bubblewrap_the_build_roots_makes_the_sandbox() {
    provisioned();
    let port = server();
    let (_srv, secret) = host_secret();
    // a PATH with git and nothing else, which anyone may read
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/usr/bin/git", bin.path().join("git")).unwrap();
    fs::set_permissions(bin.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for who in everyone() {
        let ws = tempfile::tempdir().unwrap();
        let home = who.map_or_else(|| PathBuf::from("/root"), |u| u.home.clone());
        let cache = who.map_or_else(cache_dir, |u| u.cache.clone());
        probe(ws.path(), port, &secret, &home, &cache);
        if let Some(u) = who {
            give(u, ws.path());
            fs::set_permissions(ws.path(), fs::Permissions::from_mode(0o755)).unwrap();
        }
        let r = run(xbuild_as(who, ws.path())
            .args(["--target", T, "--require-sandbox"])
            .env("PATH", bin.path()));
        ok(&r);
        assert!(!r.stderr.contains("not sandboxed"), "{}", r.stderr);
        assert_probe_reached_nothing(ws.path(), who);
        let who_name = who.map_or("this process's user", |u| u.name.as_str());
        let d = run(xbuild_as(who, ws.path())
            .args(["toolchain", "doctor"])
            .env("PATH", bin.path()));
        assert!(
            d.stdout.contains("sandbox: bubblewrap works") && d.stdout.contains("the build root's"),
            "as {who_name}: {}",
            d.stdout
        );
    }
}

/// A std build (forced by RUSTFLAGS, which gives std a key of its own) does
/// not read `~/.cargo/config.toml` or `/tmp/.cargo/config.toml` either, as
/// root and as the ordinary user (whose cache is its own); root's names its
/// CA bundle through a link the sandbox does not have. It warms zig's
/// cache meanwhile, leaves libtest out, and `--test` layers libtest on it.
#[test]
fn the_std_build_ignores_the_callers_and_tmps_cargo_config() {
    provisioned();
    let _planted = Planted::new();
    for who in everyone() {
        let ws = tempfile::tempdir().unwrap();
        let none = Path::new("/nonexistent");
        probe(ws.path(), 9, none, none, none);
        if let Some(u) = who {
            hostile_config(&u.home);
            give(u, &u.home.join(".cargo"));
            give(u, ws.path());
        }
        // root's own HOME is not touched: a private one with the config,
        // and a cache of its own (the toolchain linked in) without std
        // (removed when the test ends: it gets a std of its own)
        let root_home = who.is_none().then(|| {
            let h = tempfile::tempdir().unwrap();
            hostile_config(h.path());
            // the CA bundle named through a link outside /etc, as rustup's
            // cargo names it to its children (SSL_CERT_FILE=/usr/lib/ssl/cert.pem):
            // the sandbox has neither the link nor the host's /usr
            std::os::unix::fs::symlink(
                "/etc/ssl/certs/ca-certificates.crt",
                h.path().join("cert.pem"),
            )
            .unwrap();
            fs::create_dir_all(h.path().join("cache/v1")).unwrap();
            ok(&run(Command::new("cp")
                .arg("-al")
                .arg(cache_dir().join("v1/toolchains"))
                .arg(h.path().join("cache/v1/toolchains"))));
            h
        });
        let cache = root_home
            .as_ref()
            .map_or_else(|| who.unwrap().cache.clone(), |h| h.path().join("cache"));
        let xbuild_here = |args: &[&str]| {
            let mut cmd = xbuild_as(who, ws.path());
            if let Some(h) = &root_home {
                cmd.env("HOME", h.path())
                    .env("XBUILD_CACHE_DIR", h.path().join("cache"))
                    .env("SSL_CERT_FILE", h.path().join("cert.pem"))
                    .env_remove("CARGO_HTTP_CAINFO");
            }
            let flags =
                "-C target-feature=+crt-static -C link-arg=-static-pie --cfg xbuild_std_probe";
            run(cmd
                .args(args)
                .args(["--target", T, "--require-sandbox"])
                .env("RUSTFLAGS", flags))
        };
        let r = xbuild_here(&["-v"]);
        ok(&r);
        assert!(r.stderr.contains("Building std"), "{}", r.stderr);
        // zig's runtime was built while std compiled, in the sealed view
        assert!(
            r.stderr.contains(&format!("zig's runtime for {T} ready")),
            "{}",
            r.stderr
        );
        // std without libtest; cargo's tree kept for it
        let libs = |name: &str| {
            let mut found = Vec::new();
            // this run's sysroot: not one the user's cache got from root's
            let shared = cache_dir().join("v1/sysroots");
            for s in fs::read_dir(cache.join("v1/sysroots")).unwrap().flatten() {
                if shared.join(s.file_name()).exists() {
                    continue;
                }
                let lib = s.path().join("lib/rustlib").join(T).join("lib");
                for f in fs::read_dir(lib).into_iter().flatten().flatten() {
                    let n = f.file_name().to_string_lossy().into_owned();
                    if n.starts_with(&format!("lib{name}-")) {
                        found.push(fs::read(f.path()).unwrap());
                    }
                }
            }
            found
        };
        let std_before = libs("std");
        assert_eq!(std_before.len(), 1);
        assert!(libs("test").is_empty(), "libtest was built for a build");
        let trees = || {
            fs::read_dir(cache.join("v1/std-trees"))
                .map(|d| d.count())
                .unwrap_or(0)
        };
        assert_eq!(trees(), 1);
        // --test adds libtest on top, without building std again
        let t = xbuild_here(&["--test"]);
        ok(&t);
        assert!(t.stderr.contains("Building libtest"), "{}", t.stderr);
        assert!(!t.stderr.contains("Building std"), "{}", t.stderr);
        assert_eq!(libs("test").len(), 1);
        assert_eq!(libs("std"), std_before, "std changed under libtest");
        assert_eq!(trees(), 0, "the tree outlived its use");
    }
}

/// As an ordinary user, with the sandbox's fixed view: a one-file change
/// compiles one crate, and the outputs equal a build from scratch.
#[test]
fn an_ordinary_user_gets_kept_dependencies() {
    let Some(u) = user() else {
        eprintln!("XBUILD_TEST_USER is not set: skipped");
        return;
    };
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures/hello-ws"), ws.path());
    give(u, ws.path());
    fs::set_permissions(ws.path(), fs::Permissions::from_mode(0o755)).unwrap();
    ok(&run(xbuild_as(Some(u), ws.path()).args(["--target", T])));
    let main = ws.path().join("app/src/main.rs");
    let text = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{text}\n// edited\n")).unwrap();
    let r = run(xbuild_as(Some(u), ws.path()).args(["--target", T]));
    ok(&r);
    assert!(r.stderr.contains("Compiling app"), "{}", r.stderr);
    assert!(!r.stderr.contains("Compiling cmath"), "{}", r.stderr);
    assert!(!r.stderr.contains("Compiling itoa"), "{}", r.stderr);
    let sums = |dir: &Path| fs::read_to_string(dir.join("target/xbuild/SHA256SUMS")).unwrap();
    let incremental = sums(ws.path());
    ok(&run(xbuild_as(Some(u), ws.path()).args([
        "--target",
        T,
        "--rebuild",
    ])));
    assert_eq!(incremental, sums(ws.path()));
}

/// The ordinary user without a sandbox, under a cargo configuration another
/// account (here root) put above its TMPDIR: refused, named; built once it
/// is gone.
#[test]
fn an_ordinary_user_without_a_sandbox_is_refused_under_another_accounts_cargo_config() {
    let Some(u) = user() else {
        eprintln!("XBUILD_TEST_USER is not set: skipped");
        return;
    };
    let ws = tempfile::tempdir().unwrap();
    let none = Path::new("/nonexistent");
    probe(ws.path(), 9, none, none, none);
    give(u, ws.path());
    // beside the user's HOME, not in it (other tests put a config there),
    // with no config in /tmp meanwhile
    let _turn = Planted::absent();
    let private = tempfile::tempdir_in(u.home.parent().unwrap()).unwrap();
    let tmp = private.path().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    give(u, private.path());
    hostile_config(private.path());
    let unsandboxed = || {
        run(xbuild_as(Some(u), ws.path())
            .args(["--target", T, "--rebuild"])
            .env("TMPDIR", &tmp)
            .env("XBUILD_BWRAP", "/nonexistent/bwrap"))
    };
    refused_under(&unsandboxed(), private.path(), &tmp, 0);
    let r = unsandboxed();
    ok(&r);
    assert!(
        r.stderr.contains("builds are not sandboxed"),
        "{}",
        r.stderr
    );
}

/// An unsandboxed run refused (exit 5) for the config `hostile_config`
/// planted in `dir`, owned by `uid`, with no sealed dir left in `tmp`; the
/// config is removed after.
fn refused_under(r: &Run, dir: &Path, tmp: &Path, uid: u32) {
    assert_eq!(r.status, Some(5), "{}", r.stderr);
    let planted = dir.join(".cargo/config.toml");
    assert!(
        r.stderr.contains(&format!(
            "cargo would read {} (owned by uid {uid}) above the unsandboxed build directory",
            planted.display()
        )),
        "{}",
        r.stderr
    );
    assert_eq!(
        fs::read_dir(tmp).unwrap().count(),
        0,
        "a sealed dir was left"
    );
    fs::remove_dir_all(dir.join(".cargo")).unwrap();
}

/// Where no sandbox can be had: one precise warning, `sandboxed: false` in
/// the report, and `--require-sandbox` exits 5.
#[test]
fn without_a_sandbox_xbuild_says_so_and_require_sandbox_fails() {
    provisioned();
    let ws = tempfile::tempdir().unwrap();
    let none = Path::new("/nonexistent");
    probe(ws.path(), 9, none, none, none);
    // unsandboxed, cargo reads every `.cargo/config.toml` above the build
    // directory: a TMPDIR of the test's own, not `/tmp` (which anyone may
    // give one, and which other tests here do)
    let private = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // (a clone in /tmp has /tmp above it: none there meanwhile)
    let _turn = private.path().starts_with("/tmp").then(Planted::absent);
    let tmp = private.path().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let unsandboxed = || {
        run(xbuild(ws.path())
            .args(["--target", T, "--rebuild"])
            .env("TMPDIR", &tmp)
            .env_remove("XBUILD_REQUIRE_SANDBOX")
            .env("XBUILD_BWRAP", "/nonexistent/bwrap"))
    };
    // ... and refuses to build under one it did not make
    hostile_config(private.path());
    let r = unsandboxed();
    let planted = private.path().join(".cargo/config.toml");
    let uid = std::os::unix::fs::MetadataExt::uid(&fs::metadata(&planted).unwrap());
    refused_under(&r, private.path(), &tmp, uid);
    assert!(r.stderr.contains("set TMPDIR"), "{}", r.stderr);
    assert!(!ws.path().join("target/xbuild/report.json").exists());
    let r = unsandboxed();
    ok(&r);
    assert!(
        r.stderr
            .contains("builds are not sandboxed: bubblewrap (`/nonexistent/bwrap`) cannot be run"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("apt-get install bubblewrap"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("builds are not sandboxed").count(), 1);
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(ws.path().join("target/xbuild/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["targets"][0]["sandboxed"], false);
    // bwrap exists but cannot make a namespace (here: always fails)
    // (--rebuild: what must be built; sandboxed outputs in the cache would
    // be served, see the next test)
    let r = run(xbuild(ws.path())
        .args(["--target", T, "--require-sandbox", "--rebuild"])
        .env("XBUILD_BWRAP", "/bin/false"));
    assert_eq!(r.status, Some(5), "{}", r.stderr);
    assert!(r.stderr.contains("the sandbox is required"), "{}", r.stderr);
    let r = run(xbuild(ws.path())
        .args(["--target", T, "--rebuild"])
        .env("XBUILD_REQUIRE_SANDBOX", "1")
        .env("XBUILD_BWRAP", "/nonexistent/bwrap"));
    assert_eq!(r.status, Some(5), "{}", r.stderr);
    assert!(r.stderr.contains("the sandbox is required"), "{}", r.stderr);
}

/// A run whose every target is in the cache starts no sandbox, not even
/// bubblewrap's probe; and where none can be had, what a sandboxed build
/// made is still served, `--require-sandbox` or not.
#[test]
fn a_run_of_cache_hits_starts_no_sandbox() {
    provisioned();
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures/hello-ws"), ws.path());
    // inputs of this test's own: the first run builds
    let main = ws.path().join("app/src/main.rs");
    let text = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{text}\n// {}\n", ws.path().display())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let bwrap = dir.path().join("bwrap");
    let host_bwrap = Path::new("/usr/bin/bwrap");
    fs::write(
        &bwrap,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            started.display(),
            host_bwrap.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&bwrap, fs::Permissions::from_mode(0o755)).unwrap();
    let build = |extra: &[&str], bwrap: &Path| {
        run(xbuild(ws.path())
            .args(["--target", T])
            .args(extra)
            .env("XBUILD_BWRAP", bwrap))
    };
    let report = || -> serde_json::Value {
        serde_json::from_slice(&fs::read(ws.path().join("target/xbuild/report.json")).unwrap())
            .unwrap()
    };
    let r = build(&[], &bwrap);
    ok(&r);
    assert!(r.stderr.contains("Compiling app"), "{}", r.stderr);
    assert!(
        started.is_file(),
        "the build was sandboxed through {}",
        bwrap.display()
    );
    assert_eq!(report()["targets"][0]["sandboxed"], true);
    fs::remove_file(&started).unwrap();
    let r = build(&[], &bwrap);
    ok(&r);
    assert!(r.stderr.contains("inputs unchanged"), "{}", r.stderr);
    assert!(
        !started.exists(),
        "a run of cache hits started bubblewrap: {}",
        fs::read_to_string(&started).unwrap_or_default()
    );
    for (extra, bwrap) in [
        (&["--require-sandbox"][..], Path::new("/bin/false")),
        (&[][..], Path::new("/nonexistent/bwrap")),
    ] {
        let r = build(extra, bwrap);
        ok(&r);
        assert!(r.stderr.contains("inputs unchanged"), "{}", r.stderr);
        assert!(!r.stderr.contains("not sandboxed"), "{}", r.stderr);
        assert_eq!(report()["targets"][0]["sandboxed"], true);
    }
}
