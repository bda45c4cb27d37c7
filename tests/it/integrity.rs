//! No build can change what another build reads, and nothing a build runs
//! reaches the user's terminal or the host: hostile probes, built as root
//! and as the ordinary user (`XBUILD_TEST_USER`), x86_64 only.
//!
//! One probe workspace: its build script tries to write a marker into every
//! directory it can find and to push characters into the terminal (TIOCSTI)
//! and to set its title (an escape sequence in a cargo warning); its test
//! tries the host's files, a server on the host's loopback, the home dirs
//! and writing outside, and serves on a loopback of its own.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::e2e::{cache_dir, provisioned};
use crate::sandbox::{User, everyone, give, host_secret, server, xbuild_as};
use crate::support::{Run, ok, run};

const T: &str = "x86_64-unknown-linux-musl";
const MARKER: &str = "xbuild-probe-marker";
const TITLE: &str = "xbuild-probe-title";

/// The build script: markers everywhere it can write, TIOCSTI on every
/// terminal it can reach, a title escape in a warning. What it did becomes
/// the binary's output. The binary, run with `tiocsti`, does the same push
/// (to show it works outside the sandbox).
const BUILD_RS: &str = r#"use std::path::Path;

fn walk(dir: &Path, depth: usize, seen: &mut usize, wrote: &mut Vec<String>) {
    if ["/proc", "/sys", "/dev"].iter().any(|p| dir == Path::new(p)) || *seen > 200_000 {
        return;
    }
    *seen += 1;
    if std::fs::write(dir.join("xbuild-probe-marker"), b"x").is_ok() {
        wrote.push(dir.display().to_string());
    }
    if depth == 0 {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&e.path(), depth - 1, seen, wrote);
        }
    }
}

include!("src/tty.rs");

fn main() {
    let (mut seen, mut wrote) = (0, Vec::new());
    walk(Path::new("/"), 12, &mut seen, &mut wrote);
    println!("cargo:rustc-env=PROBE_WROTE={}", wrote.join(":"));
    println!("cargo:rustc-env=PROBE_PUSHED={}", push());
    println!("cargo:warning=\x1b]0;xbuild-probe-title\x07title probe");
}
"#;

/// TIOCSTI on stdin, stdout, stderr and /dev/tty: how many bytes went in.
const TTY_RS: &str = r#"extern "C" {
    fn ioctl(fd: i32, request: u64, ...) -> i32;
}

fn push() -> usize {
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty");
    let mut fds = vec![0, 1, 2];
    if let Ok(t) = &tty {
        fds.push(t.as_raw_fd());
    }
    let mut pushed = 0;
    for fd in fds {
        for b in b"echo PWNED\n" {
            // SAFETY: TIOCSTI reads one byte at the pointer.
            if unsafe { ioctl(fd, 0x5412, b as *const u8) } == 0 {
                pushed += 1;
            }
        }
    }
    pushed
}
"#;

const MAIN_RS: &str = r#"include!("tty.rs");

fn main() {
    if std::env::args().nth(1).as_deref() == Some("tiocsti") {
        println!("pushed={}", push());
        return;
    }
    println!("wrote={}", env!("PROBE_WROTE"));
    println!("pushed={}", env!("PROBE_PUSHED"));
}
"#;

/// The test: what it must not reach, and what must keep working.
fn test_rs(port: u16, secret: &Path, caller_home: &Path, cache: &Path) -> String {
    format!(
        r#"use std::io::{{Read, Write}};

#[test]
fn sealed() {{
    // data files beside the manifest, and a scratch dir, still work
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data.txt");
    assert_eq!(std::fs::read_to_string(data).unwrap(), "data\n");
    let scratch = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("scratch");
    std::fs::write(&scratch, "x").expect("CARGO_TARGET_TMPDIR is writable");
    // a server on its own loopback
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("its own loopback");
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {{
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"ok").unwrap();
    }});
    let mut got = String::new();
    std::net::TcpStream::connect(("127.0.0.1", port)).unwrap().read_to_string(&mut got).unwrap();
    t.join().unwrap();
    assert_eq!(got, "ok");
    // nothing of the host
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", {port})).is_err(),
        "reached the host's server on 127.0.0.1:{port}"
    );
    assert!(std::fs::read({secret:?}).is_err(), "read the host's secret file");
    let cache = std::path::Path::new({cache:?});
    for d in ["/root", "/home", {caller:?}] {{
        let n = std::fs::read_dir(d)
            .map(|r| r.flatten().filter(|e| !cache.starts_with(e.path())).count())
            .unwrap_or(0);
        assert_eq!(n, 0, "listed {{n}} entries of {{d}}");
    }}
    // (a caller's HOME under /tmp is in the sandbox's private /tmp: the
    // host side looks for markers there)
    for d in ["/root", "/home", "/var/tmp", "/srv", {caller:?}]
        .into_iter()
        .filter(|d| !d.starts_with("/tmp/"))
    {{
        let f = std::path::Path::new(d).join("xbuild-probe-marker");
        assert!(std::fs::write(&f, "x").is_err(), "wrote {{}}", f.display());
    }}
}}
"#,
        caller = caller_home.display().to_string(),
        cache = cache.display().to_string(),
    )
}

fn probe_ws(dir: &Path, port: u16, secret: &Path, caller_home: &Path, cache: &Path) {
    crate::support::one_package(dir, "probe");
    fs::create_dir_all(dir.join("tests")).unwrap();
    fs::write(dir.join("build.rs"), BUILD_RS).unwrap();
    fs::write(dir.join("src/tty.rs"), TTY_RS).unwrap();
    fs::write(dir.join("src/main.rs"), MAIN_RS).unwrap();
    fs::write(dir.join("data.txt"), "data\n").unwrap();
    fs::write(
        dir.join("tests/sealed.rs"),
        test_rs(port, secret, caller_home, cache),
    )
    .unwrap();
}

/// `cmd` with a new pseudo-terminal as its controlling terminal and stdio:
/// what it printed there, and what was left in the terminal's input queue
/// (characters pushed with TIOCSTI) when it ended.
fn on_a_terminal(mut cmd: Command) -> (Run, String) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two file descriptors.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both are open and ours.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    cmd.stdin(io(&slave)).stdout(io(&slave)).stderr(io(&slave));
    // SAFETY: setsid and TIOCSCTTY are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let reader = {
        let master = fs::File::from(master.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut master = master;
            // EIO once no one holds the terminal any more
            let _ = master.read_to_end(&mut out);
            out
        })
    };
    let status = child.wait().unwrap();
    // what was pushed waits in the input queue: read it, without waiting
    let pushed = {
        // SAFETY: plain fcntl and termios calls on our own descriptor.
        unsafe {
            let fd = slave.as_raw_fd();
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(fd, &mut t);
            t.c_lflag &= !libc::ICANON;
            t.c_cc[libc::VMIN] = 0;
            t.c_cc[libc::VTIME] = 0;
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
        let mut buf = [0u8; 4096];
        let mut f = fs::File::from(slave);
        let n = f.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    drop(cmd);
    let out = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    (
        Run {
            status: status.code(),
            stdout: String::new(),
            stderr: out,
        },
        pushed,
    )
}

/// Every marker the probe left on the host under `roots` (each searched to
/// `depth`), removed once found.
fn markers(roots: &[(&Path, u32)]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for (root, depth) in roots {
        if !root.exists() {
            continue;
        }
        let r = run(Command::new("find").arg(root).args([
            "-xdev",
            "-maxdepth",
            &depth.to_string(),
            "-name",
            MARKER,
        ]));
        found.extend(r.stdout.lines().map(PathBuf::from));
    }
    for f in &found {
        let _ = fs::remove_file(f);
    }
    found
}

fn who_name(who: Option<&User>) -> &str {
    who.map_or("root", |u| u.name.as_str())
}

#[test]
fn hostile_build_scripts_and_tests_reach_nothing_shared_no_terminal_no_host() {
    provisioned();
    let port = server();
    let (_srv, secret) = host_secret();
    for who in everyone() {
        let name = who_name(who);
        let ws = tempfile::tempdir().unwrap();
        let home = who.map_or_else(|| PathBuf::from("/root"), |u| u.home.clone());
        let cache = who.map_or_else(cache_dir, |u| u.cache.clone());
        probe_ws(ws.path(), port, &secret, &home, &cache);
        if let Some(u) = who {
            give(u, ws.path());
        }
        fs::set_permissions(ws.path(), fs::Permissions::from_mode(0o755)).unwrap();

        // the build, on a terminal
        let mut build = xbuild_as(who, ws.path());
        build.args(["--target", T, "--require-sandbox", "--rebuild"]);
        let (r, pushed) = on_a_terminal(build);
        ok(&r);
        assert!(r.stderr.contains("title probe"), "as {name}: {}", r.stderr);
        assert!(
            !r.stderr.contains(TITLE) && !r.stderr.contains("\x1b]"),
            "as {name}: an escape sequence reached the terminal: {:?}",
            r.stderr
        );
        assert_eq!(
            pushed, "",
            "as {name}: the build pushed input into the terminal"
        );
        let exe = ws.path().join("target/xbuild").join(T).join("probe");
        let p = run(&mut Command::new(&exe));
        ok(&p);
        assert!(
            p.stdout.contains("pushed=0\n"),
            "as {name}: TIOCSTI worked in the sandbox: {}",
            p.stdout
        );
        // only its private /tmp (its sealed dir, its own zig cache) took markers
        let wrote = p
            .stdout
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("wrote=");
        for dir in wrote.split(':').filter(|d| !d.is_empty()) {
            assert!(
                dir == "/tmp" || dir.starts_with("/tmp/"),
                "as {name}: the build script wrote into {dir}"
            );
        }
        // and on the host, none outside the kept dirs (its own)
        let found = markers(&[
            (&cache, 12),
            (Path::new("/tmp"), 3),
            (Path::new("/var/tmp"), 3),
            (Path::new("/root"), 3),
            (Path::new("/home"), 4),
            (Path::new("/srv"), 3),
            (&home, 3),
        ]);
        let deps = cache.join("v1/deps");
        let outside: Vec<_> = found.iter().filter(|f| !f.starts_with(&deps)).collect();
        assert!(
            outside.is_empty(),
            "as {name}: the build script wrote {outside:?}"
        );

        // the same push, outside the sandbox: the probe can succeed here
        let mut outside = Command::new(&exe);
        outside.arg("tiocsti");
        let (outside_run, outside_pushed) = on_a_terminal(outside);
        ok(&outside_run);
        if outside_pushed.contains("echo PWNED") {
            assert!(!outside_run.stderr.contains("pushed=0"));
        } else {
            eprintln!(
                "TIOCSTI does not work outside the sandbox on this kernel either: the terminal probe proved nothing"
            );
        }

        // the tests: sealed; with --test-network the host's server is reached
        let t = run(xbuild_as(who, ws.path()).args(["--test", "--target", T, "--require-sandbox"]));
        ok(&t);
        assert!(t.stderr.contains("1 passed"), "as {name}: {}", t.stderr);
        assert!(
            t.stderr.contains("sealed, with a loopback of their own"),
            "{}",
            t.stderr
        );
        let n = run(xbuild_as(who, ws.path()).args([
            "--test",
            "--target",
            T,
            "--require-sandbox",
            "--test-network",
        ]));
        assert_eq!(n.status, Some(3), "as {name}: {}", n.stderr);
        assert!(
            n.stderr.contains("reached the host's server"),
            "as {name}: {}",
            n.stderr
        );
        let found = markers(&[
            (Path::new("/root"), 2),
            (Path::new("/var/tmp"), 2),
            (&home, 2),
        ]);
        assert!(found.is_empty(), "as {name}: the tests wrote {found:?}");
    }
}

/// Ctrl-C (SIGINT to the terminal's foreground process group) stops the
/// whole run within a second though the build runs in a session of its
/// own, and leaves no process behind.
#[test]
fn ctrl_c_stops_a_build_whose_processes_have_no_terminal() {
    provisioned();
    let ws = tempfile::tempdir().unwrap();
    let dir = ws.path();
    crate::support::one_package(dir, "sleeper");
    fs::write(
        dir.join("build.rs"),
        "fn main() {\n    let _ = std::process::Command::new(\"sleep\").arg(\"313.5\").status();\n}\n",
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    let sleeping = || {
        run(Command::new("pgrep").args(["-f", "sleep 313.5"]))
            .stdout
            .lines()
            .count()
    };
    assert_eq!(sleeping(), 0, "a sleeper from an earlier run is left");
    let mut c = crate::e2e::xbuild(dir);
    c.args(["--target", T, "--rebuild"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = c.spawn().unwrap();
    let started = std::time::Instant::now();
    while sleeping() == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "the build script never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pgid = child.id() as i32;
    // SAFETY: a signal to the process group xbuild leads.
    assert_eq!(unsafe { libc::kill(-pgid, libc::SIGINT) }, 0);
    let signalled = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            signalled.elapsed() < std::time::Duration::from_secs(5),
            "xbuild still runs 5 s after Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(sleeping(), 0, "the build script's process outlived the run");
}
