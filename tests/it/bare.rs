//! A host with nothing but a kernel: the static xbuild (built by xbuild
//! for x86_64-unknown-linux-musl) in a root holding only busybox and CA
//! certificates. No glibc or loader, no bubblewrap, no python3 or pip, no
//! git, no apt: xbuild fetches every pin over HTTP from a Debian mirror and
//! a package index (real servers on loopback, fed from this host's cache),
//! sandboxes with the build root's bubblewrap started through the root's
//! loader, and builds this host's bytes.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::e2e::{cache_dir, copy_dir, provisioned, xbuild};
use crate::support::{ok, repo_root, run};

#[allow(clippy::disallowed_methods)] // the CI's setting, read directly
fn busybox_root() -> Option<PathBuf> {
    std::env::var_os("XBUILD_TEST_BUSYBOX_ROOT").map(PathBuf::from)
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
    for line in text.lines().map(str::trim).filter(|l| l.starts_with("{ ")) {
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

/// The static xbuild (`xbuild --target x86_64-unknown-linux-musl` of this
/// repository), in the root's cache-free `/usr/local/bin`, and the fixture
/// built there for x86_64 and armv6l from an empty cache: this host's bytes.
#[test]
fn the_static_xbuild_provisions_and_builds_on_a_host_with_only_busybox() {
    let Some(root) = busybox_root() else {
        eprintln!("skipped: XBUILD_TEST_BUSYBOX_ROOT is not set (.ci/run sets it)");
        return;
    };
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "entering a root with bubblewrap needs root"
    );
    assert_bare(&root);
    provisioned();
    // xbuild builds itself, statically
    let started = std::time::Instant::now();
    let built = tempfile::tempdir_in("/var/tmp").unwrap();
    let r = run(xbuild(&repo_root())
        .args(["--target", "x86_64-unknown-linux-musl", "--out"])
        .arg(built.path()));
    ok(&r);
    let exe = built.path().join("x86_64-unknown-linux-musl/xbuild");
    assert!(!has_interp(&exe), "the musl xbuild is static");
    eprintln!(
        "static xbuild built in {:.0}s",
        started.elapsed().as_secs_f64()
    );

    let bin = root.join("usr/local/bin/xbuild");
    fs::create_dir_all(bin.parent().unwrap()).unwrap();
    fs::copy(&exe, &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let work = root.join("work");
    let _ = fs::remove_dir_all(&work);
    copy_dir(
        &repo_root().join("tests/fixtures/hello-ws"),
        &work.join("ws"),
    );
    let cache = root.join("var/cache/xbuild-test");
    let _ = fs::remove_dir_all(&cache);
    fs::create_dir_all(&cache).unwrap();
    // std is not what this test is about: the host's sysroots (keyed by pins
    // and target, no machine path) spare it two std builds
    let sysroots = cache_dir().join("v1/sysroots");
    fs::create_dir_all(cache.join("v1")).unwrap();
    let copy = |how: &str| {
        Command::new("cp")
            .arg(how)
            .arg(&sysroots)
            .arg(cache.join("v1/sysroots"))
            .status()
            .unwrap()
            .success()
    };
    assert!(copy("-al") || copy("-a"));
    for dir in ["root", "tmp", "etc/ssl/certs"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).unwrap();
    fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        root.join("etc/ssl/certs/ca-certificates.crt"),
    )
    .unwrap();

    let served = tempfile::tempdir_in(cache_dir()).unwrap();
    mirror_of_the_pins(served.path());
    let server = Server::start(served.path());
    let base = format!("http://127.0.0.1:{}", server.port);
    let enter = |script: &str| {
        run(Command::new("bwrap")
            .arg("--bind")
            .arg(&root)
            .arg("/")
            .args([
                "--dev", "/dev", "--bind", "/proc", "/proc", "--chdir", "/", "--",
            ])
            .args([
                "/bin/busybox",
                "env",
                "-i",
                "HOME=/root",
                "PATH=/usr/local/bin:/bin",
            ])
            .arg("XBUILD_CACHE_DIR=/var/cache/xbuild-test")
            .arg("XBUILD_REQUIRE_SANDBOX=1")
            .arg(format!(
                "XBUILD_DEBIAN_MIRROR={base}/debian,{base}/debian-security"
            ))
            .arg(format!("PIP_INDEX_URL={base}/simple"))
            .args(["/bin/busybox", "sh", "-c", script]))
    };
    let started = std::time::Instant::now();
    let r = enter(
        "cd /work/ws && xbuild --target x86_64-unknown-linux-musl \
         --target armv6l-unknown-linux-musleabihf --out /work/out",
    );
    eprintln!(
        "busybox root: provision and build in {:.0}s\n{}",
        started.elapsed().as_secs_f64(),
        r.stderr
    );
    ok(&r);
    // the sandbox is the build root's bubblewrap; every pin came over HTTP
    assert!(
        r.stderr.contains("this host has no working bubblewrap"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("{base}/debian/pool/")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("{base}/debian-security/pool/")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("{base}/files/ziglang-")),
        "{}",
        r.stderr
    );
    for not in ["pip download", "apt-get", "did not work", "not sandboxed"] {
        assert!(!r.stderr.contains(not), "`{not}` in {}", r.stderr);
    }
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(work.join("out/report.json")).unwrap()).unwrap();
    for t in report["targets"].as_array().unwrap() {
        assert_eq!(t["sandboxed"], true, "{report}");
    }
    // this host's bytes
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures/hello-ws"), ws.path());
    let out = ws.path().join("out");
    ok(&run(xbuild(ws.path())
        .args([
            "--target",
            "x86_64-unknown-linux-musl",
            "--target",
            "armv6l-unknown-linux-musleabihf",
            "--out",
        ])
        .arg(&out)));
    assert_eq!(
        fs::read_to_string(work.join("out/SHA256SUMS")).unwrap(),
        fs::read_to_string(out.join("SHA256SUMS")).unwrap(),
        "the busybox root and this host build the same bytes"
    );
    // the built program runs there, and so does `toolchain env` and doctor
    let r = enter("/work/out/x86_64-unknown-linux-musl/app");
    ok(&r);
    assert!(r.stdout.starts_with("app: c_add=42"), "{}", r.stdout);
    let r = enter("xbuild toolchain env");
    ok(&r);
    assert!(r.stdout.contains("export "), "{}", r.stdout);
    let r = enter("xbuild toolchain doctor");
    assert!(
        r.stdout.contains("the build root's"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    drop(server);
    let _ = fs::remove_dir_all(&work);
    let _ = fs::remove_dir_all(&cache);
}
