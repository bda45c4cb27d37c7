//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The xbuild binary under test, with a private HOME and cache dir so that a
/// test never touches the developer's files, and no ambient logging filter.
pub fn xbuild(home: &tempfile::TempDir) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xbuild"));
    cmd.env("HOME", home.path())
        .env("XBUILD_CACHE_DIR", home.path().join("cache"))
        .env_remove("XBUILD_LOG")
        .env_remove("XBUILD_CACHE_URL")
        .env_remove("XBUILD_CACHE_SIGNING_KEY")
        .env_remove("XBUILD_CACHE_TRUSTED_KEYS")
        .env_remove("XBUILD_CACHE_MAX")
        .env_remove("RUST_LOG")
        .env_remove("RUSTFLAGS")
        .env("COLUMNS", "100");
    cmd
}

pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let started = std::time::Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("xbuild runs");
    record_time(cmd, started.elapsed());
    Run {
        status: status.code(),
        stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
    }
}

/// Where each command a test runs adds a line: test, seconds, command.
/// `.ci/run` sums it per test to show where the run's time goes.
pub const TIMES: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/test-times.tsv");

fn record_time(cmd: &Command, took: std::time::Duration) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("(a thread a test started)")
        .replace('\t', " ");
    let program = std::path::Path::new(cmd.get_program())
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let args: Vec<String> = cmd
        .get_args()
        .take(4)
        .map(|a| a.to_string_lossy().replace(['\t', '\n'], " "))
        .collect();
    let line = format!(
        "{test}\t{:.1}\t{program} {}\n",
        took.as_secs_f64(),
        args.join(" ")
    );
    // one write per line, appended: whole lines from concurrent tests
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(TIMES)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Assert a run exited 0, showing its output if not.
pub fn ok(r: &Run) {
    assert_eq!(
        r.status,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
}

/// Run xbuild with `args` in a fresh home.
pub fn xb(args: &[&str]) -> Run {
    let home = tempfile::tempdir().expect("temp dir");
    run(xbuild(&home).args(args))
}

/// A snapshot of a run: exit status, stdout and stderr.
pub fn render(r: &Run) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}--- stderr\n{}",
        r.status, r.stdout, r.stderr
    )
}

#[allow(dead_code)]
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A new directory in the temp dir, kept for the whole test process (shared
/// by its tests through a static) and removed when the process exits.
#[cfg(feature = "e2e")]
pub fn dir_until_exit(prefix: &str) -> std::path::PathBuf {
    static DIRS: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    extern "C" fn remove_dirs() {
        if let Ok(dirs) = DIRS.lock() {
            for d in dirs.iter() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir")
        .keep();
    let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if dirs.is_empty() {
        // SAFETY: registers a plain function to be called at exit
        unsafe { libc::atexit(remove_dirs) };
    }
    dirs.push(dir.clone());
    dir
}

/// A workspace of one package `name` with no dependencies in `dir`: its
/// `Cargo.toml` and `Cargo.lock`, and an empty `src/`.
pub fn one_package(dir: &std::path::Path, name: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("Cargo.lock"),
        format!("version = 4\n\n[[package]]\nname = \"{name}\"\nversion = \"0.1.0\"\n"),
    )
    .unwrap();
}

/// A one-package workspace (`one_package`) whose build script runs the
/// rustc cargo gives it, and whose binary prints what that rustc said of
/// its version: which Rust built it.
pub fn prints_its_rustc(dir: &std::path::Path, name: &str) {
    one_package(dir, name);
    std::fs::write(
        dir.join("build.rs"),
        "fn main() {\n    let rustc = std::env::var(\"RUSTC\").unwrap();\n    \
         let out = std::process::Command::new(rustc).arg(\"--version\").output().unwrap();\n    \
         println!(\"cargo:rustc-env=SEEN={}\", String::from_utf8_lossy(&out.stdout).trim());\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() { println!(\"{}\", env!(\"SEEN\")); }\n",
    )
    .unwrap();
}
