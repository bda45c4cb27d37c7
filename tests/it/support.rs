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
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("xbuild runs");
    Run {
        status: status.code(),
        stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
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
