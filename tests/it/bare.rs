//! Hosts with next to nothing: the static xbuild (built by xbuild for
//! x86_64-unknown-linux-musl) in a root holding only busybox and CA
//! certificates, and in a Debian 11 minbase root (glibc 2.31, older than
//! the toolchain's). Neither has bubblewrap, python3, pip or git; the
//! busybox root has no glibc or loader at all. xbuild fetches every pin
//! over HTTP from a Debian mirror and a package index (real servers on
//! loopback, fed from this host's cache), sandboxes with the build root's
//! bubblewrap started through the root's loader, reads the workspace's git
//! index itself, and builds this host's bytes. Each root is entered as its
//! own host, with a mount namespace and pivot_root (bubblewrap as root).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::e2e::{cache_dir, copy_dir, provisioned, xbuild};
use crate::support::{ok, repo_root, run};

#[allow(clippy::disallowed_methods)] // the CI's setting, read directly
fn root_from(var: &str) -> Option<PathBuf> {
    let root = std::env::var_os(var).map(PathBuf::from);
    if root.is_none() {
        eprintln!("skipped: {var} is not set (.ci/run sets it)");
    }
    root
}

/// `python3 -m http.server` on loopback, serving `dir`; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("http.server said: {line}"));
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pins' artifacts as (`apt`/`pypi` line fields): Debian pool paths with
/// their suite, PyPI requirements with their file, each with its sha256.
enum Pin {
    Debian {
        pool: String,
        security: bool,
        sha: String,
    },
    Pypi {
        project: String,
        file: String,
        sha: String,
    },
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name} = \""))? + name.len() + 4;
    Some(&line[at..at + line[at..].find('"')?])
}

fn pins() -> Vec<Pin> {
    let text = fs::read_to_string(repo_root().join("toolchains.toml")).unwrap();
    let mut out = Vec::new();
    // the default release's pins: what a build without --rust provisions
    // (the other releases' blocks come after them)
    for line in text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("# BEGIN Rust ") && !l.starts_with("[releases."))
        .filter(|l| l.starts_with("{ "))
    {
        let sha = field(line, "sha256").unwrap().to_string();
        if let (Some(pool), Some(suite)) = (field(line, "pool"), field(line, "suite")) {
            out.push(Pin::Debian {
                pool: pool.to_string(),
                security: suite.ends_with("-security"),
                sha,
            });
        } else if let Some(req) = field(line, "pypi") {
            out.push(Pin::Pypi {
                project: req.split("==").next().unwrap().to_lowercase(),
                file: field(line, "file").unwrap().to_string(),
                sha,
            });
        }
    }
    out
}

/// A Debian mirror (`debian/`, `debian-security/`) and a PEP 503 package
/// index (`simple/`) holding exactly the pins, from this host's cache.
fn mirror_of_the_pins(dir: &Path) {
    let downloads = cache_dir().join("v1/downloads");
    let place = |sha: &str, to: &Path| {
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        if fs::hard_link(downloads.join(sha), to).is_err() {
            fs::copy(downloads.join(sha), to).unwrap();
        }
    };
    let mut pages: std::collections::BTreeMap<String, String> = Default::default();
    for pin in pins() {
        match pin {
            Pin::Debian {
                pool,
                security,
                sha,
            } => {
                let archive = if security {
                    "debian-security"
                } else {
                    "debian"
                };
                let to = dir.join(archive).join(&pool);
                if !to.exists() {
                    place(&sha, &to);
                }
            }
            Pin::Pypi { project, file, sha } => {
                place(&sha, &dir.join("files").join(&file));
                pages.entry(project).or_default().push_str(&format!(
                    "<a href=\"../../files/{file}#sha256={sha}\">{file}</a><br/>\n"
                ));
            }
        }
    }
    for (project, links) in pages {
        let page = dir.join("simple").join(&project).join("index.html");
        fs::create_dir_all(page.parent().unwrap()).unwrap();
        fs::write(
            page,
            format!(
                "<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n{links}</body></html>\n"
            ),
        )
        .unwrap();
    }
}

/// Whether an ELF file asks for a program interpreter (is dynamic).
fn has_interp(path: &Path) -> bool {
    let b = fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF");
    let u = |o: usize, n: usize| -> u64 {
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&b[o..o + n]);
        u64::from_le_bytes(v)
    };
    let (phoff, phentsize, phnum) = (
        u(0x20, 8) as usize,
        u(0x36, 2) as usize,
        u(0x38, 2) as usize,
    );
    (0..phnum).any(|i| u(phoff + i * phentsize, 4) == 3)
}

/// The root holds busybox (and what the test put there), nothing else.
fn assert_bare(root: &Path) {
    assert!(root.join("bin/busybox").is_file(), "the root has busybox");
    for absent in [
        "lib64/ld-linux-x86-64.so.2",
        "usr/lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "usr/lib/x86_64-linux-gnu/libc.so.6",
        "usr/bin/bwrap",
        "usr/bin/python3",
        "usr/bin/git",
        "usr/bin/apt-get",
        "usr/bin/perl",
    ] {
        assert!(!root.join(absent).exists(), "the root has {absent}");
    }
}

/// The fixture as a git repository (one commit, at a fixed time), made once.
fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bare-fixture");
        let _ = fs::remove_dir_all(&dir);
        copy_dir(&repo_root().join("tests/fixtures/hello-ws"), &dir);
        for args in [
            &["init", "-q"][..],
            &["add", "."],
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "fixture",
            ],
        ] {
            let st = Command::new("git")
                .args(args)
                .current_dir(&dir)
                .env("GIT_COMMITTER_DATE", "1700000000 +0000")
                .env("GIT_AUTHOR_DATE", "1700000000 +0000")
                .status()
                .unwrap();
            assert!(st.success(), "git {args:?}");
        }
        dir
    })
}

const TARGETS: [&str; 4] = [
    "--target",
    "x86_64-unknown-linux-musl",
    "--target",
    "armv6l-unknown-linux-musleabihf",
];

/// xbuild built by xbuild, statically, once; and this host's SHA256SUMS of
/// the fixture for both targets.
fn static_xbuild_and_host_sums() -> &'static (PathBuf, String) {
    static BUILT: OnceLock<(PathBuf, String)> = OnceLock::new();
    BUILT.get_or_init(|| {
        provisioned();
        let started = std::time::Instant::now();
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("static-xbuild");
        let r = run(xbuild(&repo_root())
            .args(["--target", "x86_64-unknown-linux-musl", "--out"])
            .arg(&out));
        ok(&r);
        let exe = out.join("x86_64-unknown-linux-musl/xbuild");
        assert!(!has_interp(&exe), "the musl xbuild is static");
        eprintln!(
            "static xbuild built in {:.0}s",
            started.elapsed().as_secs_f64()
        );
        let ws = tempfile::tempdir().unwrap();
        copy_dir(fixture(), ws.path());
        let sums = ws.path().join("out");
        ok(&run(xbuild(ws.path())
            .args(TARGETS)
            .arg("--out")
            .arg(&sums)));
        (exe, fs::read_to_string(sums.join("SHA256SUMS")).unwrap())
    })
}

/// Put the static xbuild, the fixture (with its .git), CA certificates and
/// name resolution into `root`, and a cache holding this host's std
/// sysroots (std is not what these tests are about; their keys hold no
/// machine path) and, with `downloads`, its downloaded pins (as `xbuild
/// toolchain import` would). Returns the cache's path in the root.
fn furnish(root: &Path, downloads: bool) -> &'static str {
    let (exe, _) = static_xbuild_and_host_sums();
    let bin = root.join("usr/local/bin/xbuild");
    fs::create_dir_all(bin.parent().unwrap()).unwrap();
    fs::copy(exe, &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let work = root.join("work");
    let _ = fs::remove_dir_all(&work);
    copy_dir(fixture(), &work.join("ws"));
    let cache = root.join("var/cache/xbuild-test");
    let _ = fs::remove_dir_all(&cache);
    fs::create_dir_all(cache.join("v1")).unwrap();
    let mut buckets = vec!["sysroots"];
    if downloads {
        buckets.push("downloads");
    }
    for bucket in buckets {
        let copy = |how: &str| {
            Command::new("cp")
                .arg(how)
                .arg(cache_dir().join("v1").join(bucket))
                .arg(cache.join("v1").join(bucket))
                .status()
                .unwrap()
                .success()
        };
        assert!(copy("-al") || copy("-a"), "copying {bucket}");
    }
    for dir in ["root", "tmp", "etc/ssl/certs"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).unwrap();
    fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        root.join("etc/ssl/certs/ca-certificates.crt"),
    )
    .unwrap();
    "/var/cache/xbuild-test"
}

/// Run `script` in `root` entered as its own host (`/` is the root, with its
/// own /dev, this host's /proc and network), with only `env`.
fn enter(root: &Path, shell: &str, env: &[String], script: &str) -> crate::support::Run {
    run(Command::new("bwrap")
        .arg("--bind")
        .arg(root)
        .arg("/")
        .args([
            "--dev", "/dev", "--bind", "/proc", "/proc", "--chdir", "/", "--",
        ])
        .args([
            shell,
            "env",
            "-i",
            "HOME=/root",
            "PATH=/usr/local/bin:/usr/bin:/bin",
        ])
        .args(env)
        .args([shell, "sh", "-c", script]))
}

/// Build the fixture in `root` for both targets: sandboxed (the build root's
/// bubblewrap), this host's bytes, the workspace's files from its git index
/// read by xbuild. Returns what xbuild printed.
fn build_there(root: &Path, shell: &str, env: &[String]) -> String {
    let (_, host_sums) = static_xbuild_and_host_sums();
    let started = std::time::Instant::now();
    let r = enter(
        root,
        shell,
        env,
        &format!(
            "cd /work/ws && xbuild {} --out /work/out",
            TARGETS.join(" ")
        ),
    );
    eprintln!(
        "{}: provision and build in {:.0}s\n{}",
        root.display(),
        started.elapsed().as_secs_f64(),
        r.stderr
    );
    ok(&r);
    let said = r.stderr.clone();
    assert!(
        r.stderr.contains("this host has no working bubblewrap"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("xbuild reads the repository's index itself"),
        "{}",
        r.stderr
    );
    for not in ["pip download", "apt-get", "did not work", "not sandboxed"] {
        assert!(!r.stderr.contains(not), "`{not}` in {}", r.stderr);
    }
    let out = root.join("work/out");
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    for t in report["targets"].as_array().unwrap() {
        assert_eq!(t["sandboxed"], true, "{report}");
    }
    assert_eq!(
        &fs::read_to_string(out.join("SHA256SUMS")).unwrap(),
        host_sums,
        "{} and this host build the same bytes",
        root.display()
    );
    let r = enter(root, shell, env, "/work/out/x86_64-unknown-linux-musl/app");
    ok(&r);
    assert!(r.stdout.starts_with("app: c_add=42"), "{}", r.stdout);
    let r = enter(root, shell, env, "xbuild toolchain doctor");
    assert!(
        r.stdout.contains("the build root's"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    said
}

/// The busybox root, from an empty cache: every pin over HTTP from the
/// loopback mirror and index.
#[test]
fn the_static_xbuild_provisions_and_builds_on_a_host_with_only_busybox() {
    let Some(root) = root_from("XBUILD_TEST_BUSYBOX_ROOT") else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "entering a root with bubblewrap needs root"
    );
    assert_bare(&root);
    let cache = furnish(&root, false);
    let served = tempfile::tempdir_in(cache_dir()).unwrap();
    mirror_of_the_pins(served.path());
    let server = Server::start(served.path());
    let base = format!("http://127.0.0.1:{}", server.port);
    let env = [
        format!("XBUILD_CACHE_DIR={cache}"),
        "XBUILD_REQUIRE_SANDBOX=1".to_string(),
        format!("XBUILD_DEBIAN_MIRROR={base}/debian,{base}/debian-security"),
        format!("PIP_INDEX_URL={base}/simple"),
    ];
    let said = build_there(&root, "/bin/busybox", &env);
    assert!(said.contains(&format!("{base}/debian/pool/")), "{said}");
    assert!(
        said.contains(&format!("{base}/debian-security/pool/")),
        "{said}"
    );
    assert!(said.contains(&format!("{base}/files/ziglang-")), "{said}");
    let r = enter(&root, "/bin/busybox", &env, "xbuild toolchain env");
    ok(&r);
    assert!(r.stdout.contains("export "), "{}", r.stdout);
    drop(server);
    let _ = fs::remove_dir_all(root.join("work"));
    let _ = fs::remove_dir_all(root.join(cache.trim_start_matches('/')));
}

/// A Debian 11 minbase root (glibc 2.31, no bubblewrap, python3 or git),
/// with the pins' downloads imported: no network but cargo's. Sandboxed by
/// the build root's bubblewrap, then without a sandbox on the root's loader,
/// then sandboxed as an ordinary user.
#[test]
fn the_static_xbuild_builds_in_a_debian_11_root() {
    let Some(root) = root_from("XBUILD_TEST_DEBIAN11_ROOT") else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "entering a root with bubblewrap needs root"
    );
    let os = fs::read_to_string(root.join("etc/os-release")).unwrap();
    assert!(os.contains("VERSION_CODENAME=bullseye"), "{os}");
    for absent in ["usr/bin/bwrap", "usr/bin/python3", "usr/bin/git"] {
        assert!(!root.join(absent).exists(), "the root has {absent}");
    }
    let cache = furnish(&root, true);
    let env = [
        format!("XBUILD_CACHE_DIR={cache}"),
        "XBUILD_REQUIRE_SANDBOX=1".to_string(),
    ];
    let said = build_there(&root, "/usr/bin/env", &env);
    assert!(!said.contains("Downloading"), "{said}");
    // without a sandbox the toolchain runs on the host, whose glibc (2.31)
    // is older than the one it was linked against: it starts on the build
    // root's loader and libraries, and so do the build scripts it links
    assert!(root.join("lib/x86_64-linux-gnu/libc-2.31.so").is_file());
    let r = enter(
        &root,
        "/usr/bin/env",
        &env,
        "unset XBUILD_REQUIRE_SANDBOX; cd /work/ws && XBUILD_BWRAP=/nonexistent \
         xbuild --target x86_64-unknown-linux-musl --rebuild --out /work/out-host \
         && /work/out-host/x86_64-unknown-linux-musl/app",
    );
    ok(&r);
    assert!(r.stderr.contains("not sandboxed"), "{}", r.stderr);
    assert!(r.stdout.starts_with("app: c_add=42"), "{}", r.stdout);
    let report = fs::read_to_string(root.join("work/out-host/report.json")).unwrap();
    assert!(report.contains("\"sandboxed\": false"), "{report}");
    let r = enter(
        &root,
        "/usr/bin/env",
        &env,
        "eval \"$(XBUILD_BWRAP=/nonexistent xbuild toolchain env)\" && rustc -vV && cargo -V",
    );
    ok(&r);
    assert!(
        r.stdout.contains("host: x86_64-unknown-linux-gnu"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\ncargo 1."), "{}", r.stdout);
    let r = enter(
        &root,
        "/usr/bin/env",
        &env,
        "XBUILD_BWRAP=/nonexistent xbuild toolchain doctor",
    );
    assert!(r.stdout.contains("build root's loader"), "{}", r.stdout);
    // an ordinary user of that host (uid 1001, with the cache made its
    // own) builds the same bytes, sandboxed by the root's bubblewrap
    let r = enter(
        &root,
        "/usr/bin/env",
        &env,
        &format!(
            "mkdir -p /work/home && chown -R 1001:1001 /work {cache} && \
             setpriv --reuid=1001 --regid=1001 --clear-groups env HOME=/work/home \
             sh -c 'cd /work/ws && xbuild {} --rebuild --out /work/out-user'",
            TARGETS.join(" ")
        ),
    );
    ok(&r);
    let user_sums = fs::read_to_string(root.join("work/out-user/SHA256SUMS")).unwrap();
    assert_eq!(
        &user_sums,
        &static_xbuild_and_host_sums().1,
        "an ordinary user in the Debian 11 root builds this host's bytes"
    );
    let report = fs::read_to_string(root.join("work/out-user/report.json")).unwrap();
    assert!(!report.contains("\"sandboxed\": false"), "{report}");
    let _ = fs::remove_dir_all(root.join("work"));
    let _ = fs::remove_dir_all(root.join(cache.trim_start_matches('/')));
}
