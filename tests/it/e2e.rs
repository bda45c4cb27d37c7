//! End-to-end: real cross builds of the fixture workspace with the real
//! pinned toolchain, run natively or under qemu.
//!
//! Compiled only with `--features e2e` (CI sets it). The toolchain and the std
//! sysroots are shared by every test of a run through one cache:
//! `XBUILD_CACHE_DIR` if set, else `target/tmp/e2e-cache`.
//!
//! The targets come from `xbuild targets --json`: every target in the table
//! gets the build-and-run smoke test; the full matrix (tests under qemu, the
//! determinism check) runs on [`MATRIX`], so that a new target costs one std
//! build and one smoke test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{Run, ok, repo_root, run};

/// The targets of the full matrix: one native 64-bit, one foreign 64-bit,
/// and the hardest 32-bit one (ARMv6 under an arm1176 qemu).
const MATRIX: [&str; 3] = [
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "armv6l-unknown-linux-musleabihf",
];

/// Every target in the table, as `xbuild targets --json` lists it.
fn table() -> &'static Vec<serde_json::Value> {
    static TABLE: OnceLock<Vec<serde_json::Value>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let r = run(xbuild(&repo_root()).args(["targets", "--json"]));
        ok(&r);
        serde_json::from_str::<serde_json::Value>(&r.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    })
}

/// A target's entry in the table, by its Nix or Rust name.
fn entry(name: &str) -> &'static serde_json::Value {
    table()
        .iter()
        .find(|t| t["nix"] == name || t["rust"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the table"))
}

#[allow(clippy::disallowed_methods)] // a test reads the CI's setting directly
pub(crate) fn cache_dir() -> PathBuf {
    std::env::var_os("XBUILD_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-cache"))
}

pub(crate) fn xbuild(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xbuild"));
    c.current_dir(cwd)
        .env("XBUILD_CACHE_DIR", cache_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("XBUILD_LOG")
        .env_remove("XBUILD_CACHE_URL")
        .env_remove("XBUILD_CACHE_SIGNING_KEY")
        .env_remove("XBUILD_CACHE_TRUSTED_KEYS")
        // tests share the cache: no run trims what another test uses next
        .env("XBUILD_CACHE_MAX", "none");
    c
}

/// A new cache with the shared cache's `buckets` (`toolchains`, `sysroots`,
/// `zig-runtime`) hard-linked in (`cp -al`): what a build reads, not what
/// it writes.
pub(crate) fn linked_cache(buckets: &[&str]) -> tempfile::TempDir {
    provisioned();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("v1")).unwrap();
    for bucket in buckets {
        let from = cache_dir().join("v1").join(bucket);
        if from.is_dir() {
            ok(&run(Command::new("cp")
                .arg("-al")
                .arg(&from)
                .arg(dir.path().join("v1").join(bucket))));
        }
    }
    dir
}

/// A copy of the fixture workspace in a fresh directory.
pub(crate) fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures/hello-ws"), dir.path());
    dir
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "target" {
                copy_dir(&e.path(), &dest);
            }
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The provisioned toolchain's component directories, by kind.
pub(crate) fn provisioned() -> &'static serde_json::Value {
    static LIST: OnceLock<serde_json::Value> = OnceLock::new();
    LIST.get_or_init(|| {
        let root = repo_root();
        // Every run of the tests starts without cached outputs, as CI's fresh
        // cache does: a test that expects a build is never answered by the
        // outputs of an earlier run (toolchains and std stay: they are
        // pinned, and slow to make)
        let outputs = cache_dir().join("v1/outputs");
        if outputs.exists() {
            fs::remove_dir_all(&outputs).unwrap();
        }
        // The real fetch from the registries (apt-get download, pip download).
        ok(&run(xbuild(&root).args(["toolchain", "fetch"])));
        let r = run(xbuild(&root).args(["toolchain", "list", "--json"]));
        ok(&r);
        serde_json::from_str(&r.stdout).unwrap()
    })
}

pub(crate) fn component_dir(kind: &str) -> PathBuf {
    let list = provisioned();
    let c = list["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == kind)
        .unwrap();
    PathBuf::from(c["path"].as_str().unwrap())
}

/// An independent reading of the ELF header: (class, e_type, e_machine, has PT_INTERP).
fn elf_form(path: &Path) -> (u8, u16, u16, bool) {
    let b = fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{}", path.display());
    let wide = b[4] == 2;
    // s390x is big-endian
    let big = b[5] == 2;
    let u16at = |o: usize| {
        let v = [b[o], b[o + 1]];
        if big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    };
    let u32at = |o: usize| {
        let v = b[o..o + 4].try_into().unwrap();
        if big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    };
    let u64at = |o: usize| {
        let v = b[o..o + 8].try_into().unwrap();
        if big {
            u64::from_be_bytes(v)
        } else {
            u64::from_le_bytes(v)
        }
    };
    let (phoff, phentsize, phnum) = if wide {
        (u64at(32) as usize, u16at(54) as usize, u16at(56) as usize)
    } else {
        (u32at(28) as usize, u16at(42) as usize, u16at(44) as usize)
    };
    let interp = (0..phnum).any(|i| u32at(phoff + i * phentsize) == 3);
    (if wide { 64 } else { 32 }, u16at(16), u16at(18), interp)
}

/// How to run a binary of `target` on this host, as the table says.
fn runner(target: &str) -> Vec<String> {
    let r = &entry(target)["runner"];
    let Some(qemu) = r["qemu"].as_str() else {
        return vec![];
    };
    let mut argv = vec![
        component_dir("qemu")
            .join("usr/bin")
            .join(qemu)
            .display()
            .to_string(),
    ];
    if let Some(cpu) = r["qemu-cpu"].as_str() {
        argv.extend(["-cpu".to_string(), cpu.to_string()]);
    }
    argv
}

/// `cfg!(target_arch)` of a Rust triple, as the fixture's app prints it.
fn rust_arch(triple: &str) -> &str {
    match triple.split('-').next().unwrap() {
        "i686" | "i586" => "x86",
        "armv7" => "arm",
        "riscv64gc" => "riscv64",
        "powerpc64le" => "powerpc64",
        arch => arch,
    }
}

pub(crate) fn run_binary(target: &str, exe: &Path, args: &[&str]) -> Run {
    let mut argv = runner(target);
    argv.push(exe.display().to_string());
    argv.extend(args.iter().map(|s| s.to_string()));
    run(Command::new(&argv[0]).args(&argv[1..]).env_clear())
}

#[test]
fn every_target_in_the_table_builds_static_verified_and_runs() {
    provisioned();
    let ws = workspace();
    let out = ws.path().join("dist");
    let mut args = vec!["--release", "--git-version", "v9.9.9", "--out", "dist"];
    for t in table() {
        args.extend(["--target", t["nix"].as_str().unwrap()]);
    }
    let r = run(xbuild(ws.path()).args(&args));
    ok(&r);
    // the first line names the Rust release and why it was chosen
    let first = r.stderr.lines().next().unwrap_or("");
    assert!(
        first.trim_start().starts_with("Rust 1.") && first.contains("(the pins' release"),
        "{}",
        r.stderr
    );

    for t in table() {
        let (rust, nix) = (t["rust"].as_str().unwrap(), t["nix"].as_str().unwrap());
        // ET_DYN for static-pie, ET_EXEC otherwise; the table's machine
        let e_type = if t["elf"]["kind"] == "static-pie" {
            3
        } else {
            2
        };
        let class = t["elf"]["class"].as_u64().unwrap() as u8;
        let machine = t["elf"]["e-machine"].as_u64().unwrap() as u16;
        for bin in ["app", "tool"] {
            let exe = out.join(rust).join(bin);
            assert_eq!(
                elf_form(&exe),
                (class, e_type, machine, false),
                "{}",
                exe.display()
            );
        }
        let app = run_binary(nix, &out.join(rust).join("app"), &[]);
        ok(&app);
        assert_eq!(
            app.stdout.trim(),
            format!("app: c_add=42 arch={} version=v9.9.9", rust_arch(rust))
        );
        let tool = run_binary(nix, &out.join(rust).join("tool"), &["a", "b"]);
        ok(&tool);
        assert_eq!(tool.stdout.trim(), "tool: 2 args, c_mul=42");
    }
    let binaries = 2 * table().len();

    let sums = run(Command::new("sha256sum")
        .arg("-c")
        .arg("SHA256SUMS")
        .current_dir(&out));
    ok(&sums);
    assert_eq!(
        sums.stdout.matches(": OK").count(),
        binaries,
        "{}",
        sums.stdout
    );
    let text = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let paths: Vec<&str> = text
        .lines()
        .map(|l| l.split_once("  ").unwrap().1)
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);

    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    let artifacts = report["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), binaries);
    assert_eq!(report["git_version"], "v9.9.9");
    let release = report["rust"]["release"].as_str().unwrap();
    assert!(first.contains(&format!("Rust {release} ")), "{first}");
    assert!(
        report["rust"]["chosen_by"]
            .as_str()
            .unwrap()
            .starts_with("the pins' release"),
        "{}",
        report["rust"]
    );
    for a in artifacts {
        assert_eq!(a["elf"]["interpreter"], serde_json::Value::Null);
        assert_eq!(a["elf"]["needed"], 0);
        assert_eq!(a["linkage"], "static");
        let bytes = fs::read(out.join(a["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            a["sha256"].as_str().unwrap(),
            crate::fixtures::sha256(&bytes)
        );
    }
    let arm = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["nix_target"] == "armv6l-unknown-linux-musleabihf")
        .unwrap();
    assert_eq!(arm["rust_target"], "arm-unknown-linux-musleabihf");
    let flags = arm["rustflags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flags.contains(
            "-C target-feature=+crt-static -C link-arg=-static -C relocation-model=static"
        ),
        "{flags}"
    );

    // A second workspace for a target already built reuses the cached std.
    let other = workspace();
    let r =
        run(xbuild(other.path()).args(["--target", "aarch64-unknown-linux-musl", "-p", "tool"]));
    ok(&r);
    assert!(!r.stderr.contains("Building std"), "{}", r.stderr);
    assert!(
        other
            .path()
            .join("target/xbuild/aarch64-unknown-linux-musl/tool")
            .is_file()
    );
    assert!(
        !other
            .path()
            .join("target/xbuild/aarch64-unknown-linux-musl/app")
            .exists()
    );
}

/// The armv6l runner really is an ARMv6 CPU: code for zig's default ARM CPU
/// (ARMv7, Thumb-2) dies under it, so an ARMv7 instruction in our output
/// would fail the test above.
#[test]
fn the_arm1176_runner_rejects_armv7_code() {
    provisioned();
    let zig = component_dir("zig").join("ziglang/zig");
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("v.c"),
        "int main(void) { volatile int x = 7; return x / 7 - 1; }\n",
    )
    .unwrap();
    let zig_cache = cache_dir().join("v1/zig");
    let build = |extra: &[&str], out: &str| {
        let r = run(Command::new(&zig)
            .args([
                "cc",
                "-target",
                "arm-linux-musleabihf",
                "-static",
                "-O2",
                "-o",
                out,
                "v.c",
            ])
            .args(extra)
            .env("ZIG_GLOBAL_CACHE_DIR", &zig_cache)
            .env("ZIG_LOCAL_CACHE_DIR", &zig_cache)
            .current_dir(dir.path()));
        ok(&r);
        dir.path().join(out)
    };
    let v6 = build(&["-mcpu=arm1176jzf_s"], "v6");
    let v7 = build(&["-mcpu=cortex_a7", "-mthumb"], "v7");
    ok(&run_binary("armv6l-unknown-linux-musleabihf", &v6, &[]));
    let r = run_binary("armv6l-unknown-linux-musleabihf", &v7, &[]);
    assert_ne!(
        r.status,
        Some(0),
        "ARMv7 code ran on the ARM1176 runner: {}",
        r.stderr
    );
}

/// `cargo install` renames a new xbuild over the installed one, maybe while a
/// build runs; the running build's compiler wrappers must still run the
/// xbuild that started it. They ran the installed path: a second build (the
/// determinism check of a long Garage build) found "<path> (deleted)" and
/// every C compile failed, and a wrapper started after the rename would run
/// the new file. Here the new file is a program that fails, renamed over the
/// old one as soon as `spawn` returns (the old file is executing by then);
/// `--rebuild`, so that the C code compiles through the wrappers.
#[test]
fn a_build_survives_its_executable_being_replaced() {
    provisioned();
    let ws = workspace();
    let bin = tempfile::tempdir().unwrap();
    let exe = bin.path().join("xbuild");
    fs::copy(env!("CARGO_BIN_EXE_xbuild"), &exe).unwrap();
    let next = bin.path().join("xbuild.new");
    fs::write(
        &next,
        "#!/bin/sh\necho 'not the xbuild that started' >&2\nexit 97\n",
    )
    .unwrap();
    fs::set_permissions(&next, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let base = xbuild(ws.path());
    let mut cmd = Command::new(&exe);
    cmd.current_dir(ws.path());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let child = cmd
        .args(["-p", "app", "--rebuild"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    fs::rename(&next, &exe).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Compiling cmath"), "{stderr}");
    let app = run(&mut Command::new(
        ws.path()
            .join("target/xbuild/x86_64-unknown-linux-musl/app"),
    ));
    ok(&app);
}

#[test]
fn a_build_error_keeps_cargo_output_and_the_previous_outputs() {
    provisioned();
    let ws = workspace();
    ok(&run(xbuild(ws.path()).args(["-p", "tool"])));
    let exe = ws
        .path()
        .join("target/xbuild/x86_64-unknown-linux-musl/tool");
    let before = fs::read(&exe).unwrap();
    fs::write(
        ws.path().join("tool/src/main.rs"),
        "fn main() { let x: u32 = \"no\"; }\n",
    )
    .unwrap();
    let r = run(xbuild(ws.path()).args(["-p", "tool"]));
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr.contains("error[E0308]: mismatched types"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("cargo build for x86_64-unknown-linux-musl failed"),
        "{}",
        r.stderr
    );
    assert_eq!(
        fs::read(&exe).unwrap(),
        before,
        "the previous outputs are untouched"
    );
    let leftovers: Vec<_> = fs::read_dir(ws.path().join("target"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".xbuild-staging")
        })
        .collect();
    assert!(leftovers.is_empty());
}

pub(crate) fn fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures").join(name), dir.path());
    dir
}

#[test]
fn xbuild_test_runs_every_members_tests_on_every_target() {
    provisioned();
    let ws = workspace();
    let mut args = vec!["--test"];
    for t in table() {
        args.extend(["--target", t["nix"].as_str().unwrap()]);
    }
    let r = run(xbuild(ws.path()).args(&args));
    ok(&r);
    assert!(
        r.stderr.contains("doctests are not built or run"),
        "{}",
        r.stderr
    );
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(ws.path().join("target/xbuild/report.json")).unwrap())
            .unwrap();
    let per_target = report["tests"].as_array().unwrap();
    assert_eq!(per_target.len(), table().len());
    for t in per_target {
        let triple = t["rust_target"].as_str().unwrap();
        assert!(
            r.stderr.contains(&format!(
                "{triple}: 4 passed, 0 failed (test binaries; 4 tests passed inside them)"
            )),
            "{}",
            r.stderr
        );
        let mut names: Vec<&str> = t["binaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                assert_eq!(b["status"], "pass", "{b}");
                b["name"].as_str().unwrap()
            })
            .collect();
        names.sort();
        // unit tests of both binaries and the library, and the integration
        // test that runs the app binary through CARGO_BIN_EXE_app
        assert_eq!(
            names,
            [
                "app-bin-app",
                "app-test-cli",
                "cmath-lib-cmath",
                "tool-bin-tool"
            ]
        );
        for n in names {
            assert!(
                ws.path()
                    .join("target/xbuild")
                    .join(triple)
                    .join("tests")
                    .join(n)
                    .is_file()
            );
        }
    }
    for a in report["artifacts"].as_array().unwrap() {
        assert_eq!(a["elf"]["interpreter"], serde_json::Value::Null, "{a}");
        assert_eq!(a["elf"]["needed"], 0, "{a}");
    }

    // again after an edit, in the kept target dir: cargo recompiles the app
    // only, and the integration test still reaches the binary under qemu
    // (cargo put the real binary back where xbuild's launcher was)
    let main = ws.path().join("app/src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{source}\n// edited\n")).unwrap();
    let again = run(xbuild(ws.path()).args(["--test", "--target", "aarch64-unknown-linux-musl"]));
    ok(&again);
    assert!(again.stderr.contains("Compiling app"), "{}", again.stderr);
    assert!(
        !again.stderr.contains("Compiling cmath"),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains(
            "aarch64-unknown-linux-musl: 4 passed, 0 failed (test binaries; 4 tests passed inside them)"
        ),
        "{}",
        again.stderr
    );
}

#[test]
fn xbuild_test_reports_a_failing_test_and_its_message() {
    provisioned();
    let ws = fixture("bad-tests-ws");
    let r = run(xbuild(ws.path()).args(["--test", "--", "fails"]));
    assert_eq!(r.status, Some(3), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("FAIL bad-lib-bad (0 passed; 1 failed; 0 ignored)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("arithmetic is broken on purpose"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("x86_64-unknown-linux-musl: 0 passed, 1 failed (test binaries"),
        "{}",
        r.stderr
    );
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(ws.path().join("target/xbuild/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["tests"][0]["binaries"][0]["status"], "fail");
    assert_eq!(report["tests"][0]["binaries"][0]["counts"]["failed"], 1);
}

#[test]
fn xbuild_test_kills_a_hanging_test_and_goes_on() {
    provisioned();
    let ws = fixture("bad-tests-ws");
    let started = std::time::Instant::now();
    let r = run(xbuild(ws.path()).args(["--test", "--test-timeout", "3", "--", "hangs"]));
    assert_eq!(r.status, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("TIMEOUT bad-lib-bad"), "{}", r.stderr);
    assert!(
        r.stderr.contains("killed after the --test-timeout"),
        "{}",
        r.stderr
    );
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(ws.path().join("target/xbuild/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["tests"][0]["binaries"][0]["status"], "timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(600));
}

#[test]
fn xbuild_test_no_run_only_builds_and_gathers() {
    provisioned();
    let ws = fixture("bad-tests-ws");
    let r = run(xbuild(ws.path()).args([
        "--test",
        "--no-run",
        "--target",
        "aarch64-unknown-linux-musl",
    ]));
    ok(&r);
    assert!(!r.stderr.contains("Running"), "{}", r.stderr);
    let exe = ws
        .path()
        .join("target/xbuild/aarch64-unknown-linux-musl/tests/bad-lib-bad");
    assert_eq!(elf_form(&exe), (64, 2, 183, false));
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(ws.path().join("target/xbuild/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["tests"].as_array().unwrap().len(), 0);
    let sums = run(Command::new("sha256sum")
        .arg("-c")
        .arg("SHA256SUMS")
        .current_dir(ws.path().join("target/xbuild")));
    ok(&sums);
}

pub(crate) fn report_of(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dir.join("target/xbuild/report.json")).unwrap()).unwrap()
}

#[test]
fn the_fixture_is_byte_identical_across_two_sealed_builds_on_the_matrix_targets() {
    provisioned();
    let ws = workspace();
    let mut args = vec!["--release", "--check-determinism"];
    for t in MATRIX {
        args.extend(["--target", t]);
    }
    let r = run(xbuild(ws.path()).args(&args));
    ok(&r);
    let binaries = 2 * MATRIX.len();
    assert!(
        r.stderr
            .contains(&format!("determinism: {binaries} identical, 0 different")),
        "{}",
        r.stderr
    );
    let report = report_of(ws.path());
    let verdicts = report["determinism"].as_array().unwrap();
    let two_builds = verdicts
        .iter()
        .filter(|v| v["against"] == "second build")
        .count();
    assert_eq!(two_builds, binaries);
    // other tests may have left outputs for the same inputs in the shared
    // cache: those are compared too, and must be identical as well
    for v in verdicts {
        assert_eq!(v["identical"], true, "{v}");
        assert_eq!(v["sha256"], v["sha256_second"]);
    }
}

#[test]
fn a_build_script_embedding_the_clock_is_reported_as_different() {
    provisioned();
    let ws = fixture("clock-ws");
    // an earlier build leaves its outputs in the cache; with --rebuild (both
    // builds from scratch) the check compares with them too
    ok(&run(xbuild(ws.path()).args(["--release"])));
    let r = run(xbuild(ws.path()).args(["--release", "--check-determinism", "--rebuild"]));
    assert_eq!(r.status, Some(4), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "determinism: 0 identical, 1 different (against the cached outputs of an earlier build"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("DIFFERENT x86_64-unknown-linux-musl clock"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("determinism: 0 identical, 1 different"),
        "{}",
        r.stderr
    );
    let v = &report_of(ws.path())["determinism"][0];
    assert_eq!(v["identical"], false);
    let diagnosis = v["diagnosis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    // the diagnosis shows the differing bytes: the embedded time stamp
    assert!(
        diagnosis.contains("ELF sections that differ: .rodata"),
        "{diagnosis}"
    );
    assert!(
        diagnosis.contains("(in .rodata): `built at "),
        "{diagnosis}"
    );
}

#[test]
fn embedded_paths_are_remapped_and_the_environment_is_sealed() {
    provisioned();
    let ws = fixture("paths-ws");
    let r = run(xbuild(ws.path())
        .env("XBUILD_TEST_SECRET", "hunter2")
        .args(["--release", "--check-determinism"]));
    ok(&r);
    assert!(
        r.stderr.contains("determinism: 1 identical, 0 different"),
        "{}",
        r.stderr
    );
    let out = run(&mut Command::new(
        ws.path()
            .join("target/xbuild/x86_64-unknown-linux-musl/paths"),
    ));
    ok(&out);
    assert!(
        !out.stdout.contains(&ws.path().display().to_string()),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("tz=UTC"), "{}", out.stdout);
    assert!(out.stdout.contains("home_is_sealed=true"), "{}", out.stdout);
    let bytes = fs::read(
        ws.path()
            .join("target/xbuild/x86_64-unknown-linux-musl/paths"),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("xbuild-sealed-"),
        "a real sealed path leaked"
    );
    assert!(
        !text.contains(&cache_dir().display().to_string()),
        "the cache path leaked"
    );
}

#[test]
fn keep_sealed_keeps_the_directory_and_says_where() {
    provisioned();
    let ws = fixture("paths-ws");
    let r = run(xbuild(ws.path()).args(["--keep-sealed"]));
    ok(&r);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("kept the sealed directory"))
        .expect("a note");
    let dir = PathBuf::from(line.rsplit(' ').next().unwrap());
    assert!(dir.join("src/Cargo.toml").is_file(), "{}", dir.display());
    assert!(!dir.join("src/target").exists());
    assert!(
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("xbuild-sealed-"),
        "{}",
        dir.display()
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unchanged_inputs_publish_cached_outputs_without_cargo() {
    provisioned();
    let ws = fixture("paths-ws");
    let exe = ws
        .path()
        .join("target/xbuild/x86_64-unknown-linux-musl/paths");
    let first = run(xbuild(ws.path()).args(["--git-version", "cache-test"]));
    ok(&first);
    let bytes = fs::read(&exe).unwrap();

    let again = run(xbuild(ws.path()).args(["--git-version", "cache-test"]));
    ok(&again);
    assert!(
        again
            .stderr
            .contains("inputs unchanged, outputs from the cache"),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("Compiling"), "{}", again.stderr);
    assert_eq!(fs::read(&exe).unwrap(), bytes);

    // --rebuild --check-determinism: two builds from scratch, compared with
    // each other and with the cached outputs
    let checked = run(xbuild(ws.path()).args([
        "--git-version",
        "cache-test",
        "--check-determinism",
        "--rebuild",
    ]));
    ok(&checked);
    assert!(
        checked.stderr.contains(
            "determinism: 1 identical, 0 different (against the cached outputs of an earlier build"
        ),
        "{}",
        checked.stderr
    );

    // an edit is a miss
    let main = ws.path().join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(&main, source.replace("source file:", "source file is:")).unwrap();
    let edited = run(xbuild(ws.path()).args(["--git-version", "cache-test"]));
    ok(&edited);
    assert!(edited.stderr.contains("Compiling"), "{}", edited.stderr);
    assert_ne!(fs::read(&exe).unwrap(), bytes);

    // a corrupt cache entry is detected and rebuilt
    fs::write(&main, &source).unwrap();
    for entry in fs::read_dir(cache_dir().join("v1/outputs"))
        .unwrap()
        .flatten()
    {
        let cached = entry.path().join("paths");
        if cached.is_file() {
            fs::write(&cached, b"rotten").unwrap();
        }
    }
    let repaired = run(xbuild(ws.path()).args(["--git-version", "cache-test"]));
    ok(&repaired);
    assert!(
        repaired.stderr.contains("are corrupt"),
        "{}",
        repaired.stderr
    );
    assert!(repaired.stderr.contains("Compiling"), "{}", repaired.stderr);
    assert_eq!(
        fs::read(&exe).unwrap(),
        bytes,
        "the rebuilt output equals the first build"
    );
}

/// At the end of a run that built, the cache trims itself to its bound:
/// the least recently used kept dirs, output sets and source mirrors go, in
/// that order of age; toolchains and std stay; one line says what was freed.
#[test]
fn the_cache_limit_trims_the_least_recently_used_and_keeps_toolchains() {
    use std::time::{Duration, SystemTime};
    let cache = linked_cache(&["toolchains", "sysroots", "zig-runtime"]);
    let v1 = cache.path().join("v1");
    let workspace = |name: &str| {
        let d = tempfile::tempdir().unwrap();
        crate::support::one_package(d.path(), name);
        fs::write(
            d.path().join("src/main.rs"),
            format!("fn main() {{ println!(\"{name}\"); }}\n"),
        )
        .unwrap();
        d
    };
    let (old, new) = (workspace("old"), workspace("new"));
    let build = |ws: &Path, max: &str| {
        run(xbuild(ws)
            .env("XBUILD_CACHE_DIR", cache.path())
            .env("XBUILD_CACHE_MAX", max))
    };
    let entries = |bucket: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(v1.join(bucket))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let installed = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = ["toolchains", "sysroots"]
            .iter()
            .flat_map(|b| entries(b))
            .filter(|d| d.join(".xbuild-installed").exists())
            .collect();
        v.sort();
        v
    };
    let toolchains = installed();
    assert!(!toolchains.is_empty());
    ok(&build(old.path(), "none"));
    let (deps, outputs, mirrors) = (entries("deps"), entries("outputs"), entries("mirrors"));
    assert_eq!((deps.len(), outputs.len(), mirrors.len()), (1, 1, 1));
    let du = |p: &Path| -> u64 {
        let r = run(Command::new("du").args(["-sb"]).arg(p));
        r.stdout.split_whitespace().next().unwrap().parse().unwrap()
    };
    let one_build = du(&deps[0]) + du(&outputs[0]) + du(&mirrors[0]);
    // the old workspace's entries were used days ago, its outputs first
    let days_ago = |n: u64| SystemTime::now() - Duration::from_secs(86_400 * n);
    for (stamp, days) in [
        (outputs[0].join("outputs.json"), 3),
        (mirrors[0].join("about.json"), 2),
        (deps[0].join("about.json"), 1),
    ] {
        fs::File::options()
            .write(true)
            .open(&stamp)
            .unwrap()
            .set_modified(days_ago(days))
            .unwrap();
    }
    // room for one build and a half: the old one's entries must go, all of them
    let max = (one_build * 3 / 2).to_string();
    let r = build(new.path(), &max);
    ok(&r);
    assert!(
        r.stderr.contains("Freed")
            && r.stderr
                .contains("1 kept dependency dir, 1 cached output set, 1 source mirror")
            && r.stderr.contains("least recently used")
            && r.stderr.contains("(XBUILD_CACHE_MAX)"),
        "{}",
        r.stderr
    );
    for gone in [&deps[0], &outputs[0], &mirrors[0]] {
        assert!(!gone.exists(), "{} is left", gone.display());
    }
    assert_eq!(
        (
            entries("deps").len(),
            entries("outputs").len(),
            entries("mirrors").len()
        ),
        (1, 1, 1),
        "the new workspace's entries stay"
    );
    assert_eq!(
        installed(),
        toolchains,
        "toolchains and std are never trimmed"
    );
    // within the bound now: nothing more goes, and the outputs still serve
    let again = build(new.path(), &max);
    ok(&again);
    assert!(
        again.stderr.contains("inputs unchanged"),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("Freed"), "{}", again.stderr);
    let list = run(xbuild(new.path())
        .env("XBUILD_CACHE_DIR", cache.path())
        .env("XBUILD_CACHE_MAX", &max)
        .args(["cache", "list"]));
    ok(&list);
    assert!(
        list.stdout.contains("limit: ") && list.stdout.contains("(XBUILD_CACHE_MAX)"),
        "{}",
        list.stdout
    );
}

/// The binaries' digests of a build, from its `SHA256SUMS`.
pub(crate) fn sums(out: &Path) -> String {
    fs::read_to_string(out.join("SHA256SUMS")).unwrap()
}

#[test]
fn a_one_file_change_rebuilds_only_its_crate_and_matches_a_build_from_scratch() {
    provisioned();
    let ws = workspace();
    let target = "aarch64-unknown-linux-musl";
    // --rebuild: other tests may have cached outputs for the same inputs
    let first = run(xbuild(ws.path()).args(["--release", "--target", target, "--rebuild"]));
    ok(&first);
    assert!(first.stderr.contains("Compiling cmath"), "{}", first.stderr);

    let main = ws.path().join("app/src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    // an edit no earlier run cached outputs for
    let edited_text = format!("app edited {}: c_add", std::process::id());
    fs::write(&main, source.replace("app: c_add", &edited_text)).unwrap();
    let edited = run(xbuild(ws.path()).args(["--release", "--target", target]));
    ok(&edited);
    // cargo compiled the edited crate, and nothing it does not depend on
    assert!(
        edited.stderr.contains("Compiling app v0.1.0"),
        "{}",
        edited.stderr
    );
    for kept in [
        "Compiling cmath",
        "Compiling tool",
        "Compiling cc ",
        "Compiling itoa",
    ] {
        assert!(!edited.stderr.contains(kept), "{kept}:\n{}", edited.stderr);
    }
    let exe = ws.path().join("target/xbuild").join(target).join("app");
    let out = run_binary(target, &exe, &[]);
    ok(&out);
    assert!(
        out.stdout.starts_with(&format!("{edited_text}=42")),
        "{}",
        out.stdout
    );

    // the same bytes as a sealed build from scratch
    let scratch = ws.path().join("target/scratch");
    let rebuilt = run(xbuild(ws.path())
        .args(["--release", "--target", target, "--rebuild", "--out"])
        .arg(&scratch));
    ok(&rebuilt);
    assert!(
        rebuilt.stderr.contains("Compiling cmath"),
        "{}",
        rebuilt.stderr
    );
    assert_eq!(sums(&ws.path().join("target/xbuild")), sums(&scratch));
}

/// Several targets in one run build in one kept dir: the host side (the
/// build scripts, and `cc`, a build dependency) compiles once, and every
/// target's outputs are byte for byte those of a build of it alone.
#[test]
fn several_targets_compile_the_host_side_once_and_match_single_target_builds() {
    provisioned();
    let ws = workspace();
    // its own inputs: no other test's cached outputs answer for it, nor its for them
    let main = ws.path().join("app/src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{source}\n// several targets\n")).unwrap();
    let targets = ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];
    let both = run(xbuild(ws.path()).args([
        "--release",
        "--rebuild",
        "--target",
        targets[0],
        "--target",
        targets[1],
        "--out",
        "target/both",
    ]));
    ok(&both);
    for host_unit in ["Compiling cc ", "Compiling shlex "] {
        assert_eq!(
            both.stderr.matches(host_unit).count(),
            1,
            "{host_unit}once for both targets:\n{}",
            both.stderr
        );
    }
    assert_eq!(
        both.stderr.matches("Compiling itoa ").count(),
        2,
        "{}",
        both.stderr
    );
    let lines = |out: &str, t: &str| -> Vec<String> {
        sums(&ws.path().join(out))
            .lines()
            .filter(|l| l.contains(t))
            .map(str::to_string)
            .collect()
    };
    for t in targets {
        let alone = format!("target/alone-{t}");
        ok(&run(xbuild(ws.path())
            .args(["--release", "--rebuild", "--target", t, "--out"])
            .arg(&alone)));
        let got = lines("target/both", t);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got,
            lines(&alone, t),
            "{t}: built with another target, built alone"
        );
    }
}

#[test]
fn concurrent_builds_of_one_workspace_both_succeed_and_agree() {
    provisioned();
    let ws = workspace();
    let spawn = |out: &str| {
        xbuild(ws.path())
            .args(["--rebuild", "--out", out])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("target/out-a"), spawn("target/out-b"));
    let finish = |c: std::process::Child| {
        let o = c.wait_with_output().unwrap();
        let r = Run {
            status: o.status.code(),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        };
        ok(&r);
        r
    };
    let (a, b) = (finish(a), finish(b));
    assert_eq!(
        sums(&ws.path().join("target/out-a")),
        sums(&ws.path().join("target/out-b"))
    );
    // one of them had the kept dependencies; the other built from scratch
    let busy = [&a, &b]
        .iter()
        .filter(|r| {
            r.stderr
                .contains("another xbuild is using the compiled dependencies")
        })
        .count();
    assert_eq!(busy, 1, "{}\n---\n{}", a.stderr, b.stderr);

    // both stored the same outputs; the cache entry is whole
    let again = run(xbuild(ws.path()).args(["--out", "target/out-c"]));
    ok(&again);
    assert!(
        again.stderr.contains("inputs unchanged"),
        "{}",
        again.stderr
    );
    assert_eq!(
        sums(&ws.path().join("target/out-a")),
        sums(&ws.path().join("target/out-c"))
    );
    // and the kept dependencies are usable: an edit compiles one crate
    let main = ws.path().join("tool/src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{source}\n// edited\n")).unwrap();
    let edited = run(xbuild(ws.path()).args(["--out", "target/out-d"]));
    ok(&edited);
    assert!(
        edited.stderr.contains("Compiling tool"),
        "{}",
        edited.stderr
    );
    assert!(
        !edited.stderr.contains("Compiling cmath"),
        "{}",
        edited.stderr
    );
}

#[test]
fn a_pin_change_is_a_miss_and_a_new_qemu_reuses_std_and_dependencies() {
    provisioned();
    let ws = workspace();
    let first = run(xbuild(ws.path()).args(["--out", "target/out-a", "--rebuild"]));
    ok(&first);

    // the same pins but another qemu: a build does not need qemu, so it is not
    // fetched, but the pins' digest is part of the outputs' key
    let pins_dir = tempfile::tempdir().unwrap();
    let qemu = pins_dir.path().join("qemu.tar.gz");
    fs::write(&qemu, b"another qemu").unwrap();
    let text = fs::read_to_string(repo_root().join("toolchains.toml")).unwrap();
    let at = text.find("{ apt = \"qemu-user=").unwrap();
    let end = at + text[at..].find('}').unwrap() + 1;
    let other = text.replace(
        &text[at..end],
        &format!(
            "{{ path = \"qemu.tar.gz\", sha256 = \"{}\" }}",
            crate::fixtures::sha256(b"another qemu")
        ),
    );
    let pins = pins_dir.path().join("toolchains.toml");
    fs::write(&pins, other).unwrap();

    let changed = run(xbuild(ws.path())
        .args(["--out", "target/out-b", "--toolchains"])
        .arg(&pins));
    ok(&changed);
    assert!(
        !changed.stderr.contains("inputs unchanged"),
        "{}",
        changed.stderr
    );
    assert!(
        changed
            .stderr
            .contains("Compiling the workspace's binaries"),
        "a sealed build ran:\n{}",
        changed.stderr
    );
    assert!(
        !changed.stderr.contains("Building std"),
        "{}",
        changed.stderr
    );
    assert!(
        !changed.stderr.contains("Compiling cmath"),
        "{}",
        changed.stderr
    );
    assert_eq!(
        sums(&ws.path().join("target/out-a")),
        sums(&ws.path().join("target/out-b"))
    );
    let digest = |out: &str| {
        let r: serde_json::Value =
            serde_json::from_slice(&fs::read(ws.path().join(out).join("report.json")).unwrap())
                .unwrap();
        r["toolchain"]["digest"].as_str().unwrap().to_string()
    };
    assert_ne!(digest("target/out-a"), digest("target/out-b"));

    // with the new pins again: a hit
    let again = run(xbuild(ws.path())
        .args(["--out", "target/out-c", "--toolchains"])
        .arg(&pins));
    ok(&again);
    assert!(
        again.stderr.contains("inputs unchanged"),
        "{}",
        again.stderr
    );
}

/// All targets of one run build one snapshot, and the outputs key is that
/// snapshot's digest: a file edited while the run builds reaches neither a
/// later target of the run nor the cache under its new content's key.
#[test]
fn a_file_edited_during_a_build_is_not_built_or_cached_under_its_new_content() {
    use std::io::BufRead;
    provisioned();
    let ws = workspace();
    let main = ws.path().join("app/src/main.rs");
    let original = fs::read_to_string(&main).unwrap();
    let edited = original.replace("\"app: ", "\"edited app: ");
    let (first, second) = ("x86_64-unknown-linux-musl", "i686-unknown-linux-musl");
    let mut child = xbuild(ws.path())
        .args(["--release", "--target", first, "--target", second])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    let mut edited_at_all = false;
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if !edited_at_all && line.contains("Compiling") && line.contains(first) {
            // the first target is building: edit before the second starts
            fs::write(&main, &edited).unwrap();
            edited_at_all = true;
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{stderr}");
    assert!(edited_at_all, "{stderr}");
    let out = ws.path().join("target/xbuild");
    for t in [first, second] {
        let app = run_binary(t, &out.join(t).join("app"), &[]);
        assert!(app.stdout.starts_with("app: "), "{t}: {}", app.stdout);
    }
    // the edited content is new input: built, not served from the cache
    let r = run(xbuild(ws.path()).args(["--release", "--target", second]));
    ok(&r);
    assert!(!r.stderr.contains("Fresh"), "{}", r.stderr);
    let app = run_binary(second, &out.join(second).join("app"), &[]);
    assert!(app.stdout.starts_with("edited app: "), "{}", app.stdout);
    // and the snapshot's content is still served as what it was
    fs::write(&main, &original).unwrap();
    let r = run(xbuild(ws.path()).args(["--release", "--target", second]));
    ok(&r);
    assert!(r.stderr.contains("Fresh"), "{}", r.stderr);
    let app = run_binary(second, &out.join(second).join("app"), &[]);
    assert!(app.stdout.starts_with("app: "), "{}", app.stdout);
}

/// A one-crate workspace written by the test: `Cargo.toml` (with `extra`
/// appended), a main that prints `text` and what `cfg`s it was built with,
/// and a lockfile. No dependencies: quick to build on every target.
fn probe_workspace(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::create_dir_all(p.join("src")).unwrap();
    fs::write(
        p.join("Cargo.toml"),
        format!(
            "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [lints.rust]\nunexpected_cfgs = {{ level = \"allow\" }}\n\n{extra}"
        ),
    )
    .unwrap();
    fs::write(
        p.join("src/main.rs"),
        r#"fn main() {
    let caught = std::panic::catch_unwind(|| 1).unwrap_or(0);
    let v: Vec<u64> = (1..=10).collect();
    println!(
        "probe: sum={} caught={caught} xb_probe={} xb_triple={}",
        v.iter().sum::<u64>(),
        cfg!(xb_probe),
        cfg!(xb_triple)
    );
}
"#,
    )
    .unwrap();
    fs::write(
        p.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"probe\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    dir
}

/// The workspace's own `.cargo/config.toml` rustflags reach the build with
/// cargo's precedence ([target.<triple>] over [build]); a linker setting
/// there is not used, and xbuild says so.
#[test]
fn the_workspaces_cargo_config_rustflags_reach_the_build() {
    provisioned();
    let ws = probe_workspace("");
    fs::create_dir_all(ws.path().join(".cargo")).unwrap();
    fs::write(
        ws.path().join(".cargo/config.toml"),
        "[build]\nrustflags = [\"--cfg\", \"xb_probe\"]\n\n\
         [target.aarch64-unknown-linux-musl]\nrustflags = [\"--cfg\", \"xb_triple\"]\n\n\
         [target.x86_64-unknown-linux-musl]\nlinker = \"gcc\"\n",
    )
    .unwrap();
    let (x86, arm) = ("x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl");
    let r = run(xbuild(ws.path()).args(["--release", "--target", x86, "--target", arm]));
    ok(&r);
    assert!(
        r.stderr
            .contains("target.x86_64-unknown-linux-musl.linker in .cargo/config.toml is not used"),
        "{}",
        r.stderr
    );
    let out = ws.path().join("target/xbuild");
    let x = run_binary(x86, &out.join(x86).join("probe"), &[]);
    assert_eq!(
        x.stdout.trim(),
        "probe: sum=55 caught=1 xb_probe=true xb_triple=false"
    );
    let a = run_binary(arm, &out.join(arm).join("probe"), &[]);
    assert_eq!(
        a.stdout.trim(),
        "probe: sum=55 caught=1 xb_probe=false xb_triple=true"
    );
    let report = report_of(ws.path());
    let of = |t: &str| {
        report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rust_target"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(
        of(x86)["rustflags_source"],
        "target table + .cargo/config.toml build.rustflags"
    );
    let flags = of(arm)["rustflags"].to_string();
    assert!(
        flags.contains("xb_triple") && flags.contains("+crt-static"),
        "{flags}"
    );
    // rustc's answers are kept, so that a run served from the cache need
    // not provision rustc to ask again
    let answers: Vec<String> = fs::read_dir(cache_dir().join("v1/rustc-cfg"))
        .unwrap()
        .flatten()
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    for arch in ["x86_64", "aarch64"] {
        assert!(
            answers
                .iter()
                .any(|a| a.lines().any(|l| l == format!("target_arch=\"{arch}\""))),
            "{answers:?}"
        );
    }
}

/// The release profiles real projects use link with the cached std (which
/// carries bitcode, and a panic_abort built to abort) and run; the first,
/// the one with the most whole-program work (fat LTO, one codegen unit),
/// builds byte-identically twice (the check's second build runs on one CPU:
/// once is enough for CI's time).
#[test]
fn release_profiles_with_lto_panic_abort_and_strip_build_run_and_are_deterministic() {
    provisioned();
    for (i, profile) in [
        "lto = \"fat\"\ncodegen-units = 1\npanic = \"abort\"\nopt-level = \"z\"\nstrip = true\n",
        "lto = \"thin\"\nopt-level = \"s\"\nstrip = \"debuginfo\"\n",
        "lto = true\npanic = \"abort\"\n",
    ]
    .iter()
    .enumerate()
    {
        let ws = probe_workspace(&format!("[profile.release]\n{profile}"));
        let checked = i == 0;
        let mut args = vec!["--release"];
        if checked {
            args.push("--check-determinism");
        }
        for t in &MATRIX[..2] {
            args.extend(["--target", t]);
        }
        let r = run(xbuild(ws.path()).args(&args));
        ok(&r);
        assert_eq!(
            r.stderr.contains("determinism: 2 identical, 0 different"),
            checked,
            "{profile}: {}",
            r.stderr
        );
        for t in &MATRIX[..2] {
            let exe = ws
                .path()
                .join("target/xbuild")
                .join(entry(t)["rust"].as_str().unwrap())
                .join("probe");
            let p = run_binary(t, &exe, &[]);
            ok(&p);
            assert_eq!(
                p.stdout.trim(),
                "probe: sum=55 caught=1 xb_probe=false xb_triple=false",
                "{profile}"
            );
        }
    }
}

/// A real lockfile pinning cc 1.0.83, which passes `-march=armv6 -marm
/// -mfpu=vfp` for armv6l: the C code builds for the Pi 1 and runs under an
/// arm1176 qemu.
#[test]
fn a_lockfile_with_an_old_cc_builds_and_runs_on_armv6l() {
    provisioned();
    let ws = fixture("oldcc-ws");
    let t = "armv6l-unknown-linux-musleabihf";
    let r = run(xbuild(ws.path()).args(["--release", "--target", t]));
    ok(&r);
    let exe = ws
        .path()
        .join("target/xbuild/arm-unknown-linux-musleabihf/oldcc");
    let p = run_binary(t, &exe, &[]);
    ok(&p);
    assert_eq!(p.stdout.trim(), "oldcc: square=49");
}

/// C++ and CMake on every target in the table: a build script compiling C++
/// (containers, strings, exceptions, RTTI) with the `cc` crate's defaults,
/// and a -sys crate built by the pinned CMake and Ninja through the `cmake`
/// crate. The fixture fails to compile unless the C++ is zig's (libc++) and
/// CMake is the pinned one with Ninja, so a pass shows the pinned tools were
/// the ones called (this machine has the host's g++ and make, and no cmake).
/// Each binary is static (checked by xbuild) and prints the right answer.
/// zig's C++ runtime is made by a prelink from a fixed directory, whichever
/// link needs it first (here CMake's compiler identification), and learned
/// into a bucket after the first build: a `--rebuild` of one target, seeded
/// from that bucket, gives the bytes of the first build, which (in CI's
/// fresh cache) prelinked the runtime itself.
#[test]
fn cxx_and_cmake_build_and_run_on_x86_64_and_armv6l() {
    // zig builds libc++ once per target and kind of link (5 to 10 minutes
    // each on CI's 2 loaded cores): the native target and the hardest
    // 32-bit one in CI; every target by hand (docs/REAL-CRATES.md)
    const CXX: [&str; 2] = [MATRIX[0], MATRIX[2]];
    provisioned();
    let ws = fixture("native-ws");
    // (--rebuild: an earlier run may have cached these outputs)
    let mut args = vec!["--release", "--rebuild", "--out", "dist"];
    for t in CXX {
        args.extend(["--target", t]);
    }
    let r = run(xbuild(ws.path()).args(&args));
    ok(&r);
    // a learned C++ runtime per target, for the compiler identification's
    // link and for the binary's (which strips)
    let learned: Vec<String> = fs::read_dir(cache_dir().join("v1/zig-runtime"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-cxx-"))
        .collect();
    assert!(learned.len() >= 2 * CXX.len(), "{learned:?}");
    let again = run(xbuild(ws.path()).args([
        "--release",
        "--rebuild",
        "--out",
        "dist-again",
        "--target",
        CXX[0],
    ]));
    ok(&again);
    assert!(!again.stderr.contains("Warming"), "{}", again.stderr);
    let rust0 = entry(CXX[0])["rust"].as_str().unwrap();
    assert_eq!(
        fs::read(ws.path().join("dist").join(rust0).join("native")).unwrap(),
        fs::read(ws.path().join("dist-again").join(rust0).join("native")).unwrap(),
        "the seeded C++ runtime gives the first build's bytes"
    );
    for nix in CXX {
        let rust = entry(nix)["rust"].as_str().unwrap();
        let exe = ws.path().join("dist").join(rust).join("native");
        let (_, _, _, interp) = elf_form(&exe);
        assert!(!interp, "{rust}: no program interpreter");
        let p = run_binary(nix, &exe, &[]);
        ok(&p);
        assert_eq!(
            p.stdout.trim(),
            "native: sum=6 caught=boom rtti=true cmake=49",
            "{rust}"
        );
    }
}

/// An autotools `-sys` crate from crates.io (libsodium-sys runs libsodium's
/// `./configure` and make with the target's C compiler) on armv6l, the
/// real-crates matrix's class most likely to regress (`bench/real-crates.sh`
/// runs every class on every target), and on riscv64, whose Rust name
/// (`riscv64gc-…`, which libsodium-sys passes as `--host`) libsodium's
/// `config.sub` rejects: xbuild's site file gives configure the GNU name.
/// Locked when the test runs: nothing fetched is committed.
#[test]
fn an_autotools_crate_builds_and_runs_on_armv6l_and_riscv64() {
    provisioned();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("src")).unwrap();
    fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"probe-sodium\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nlibsodium-sys = \"0.2\"\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("src/main.rs"),
        "fn main() { let r = unsafe { libsodium_sys::sodium_init() }; println!(\"sodium {}\", r >= 0); }\n",
    )
    .unwrap();
    ok(&run(Command::new("cargo")
        .args(["generate-lockfile", "-q"])
        .current_dir(dir.path())));
    let targets = [
        (
            "armv6l-unknown-linux-musleabihf",
            "arm-unknown-linux-musleabihf",
        ),
        ("riscv64-unknown-linux-musl", "riscv64gc-unknown-linux-musl"),
    ];
    let mut cmd = xbuild(dir.path());
    cmd.arg("--release");
    for (nix, _) in targets {
        cmd.args(["--target", nix]);
    }
    let r = run(&mut cmd);
    ok(&r);
    for (nix, rust) in targets {
        let exe = dir
            .path()
            .join(format!("target/xbuild/{rust}/probe-sodium"));
        let p = run_binary(nix, &exe, &[]);
        ok(&p);
        assert_eq!(p.stdout.trim(), "sodium true", "{rust}");
    }
}

fn git(dir: &Path, args: &[&str]) {
    ok(&run(Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)));
}

/// A dependency that needs a newer Rust than the one chosen is refused with
/// exit 2 before anything compiles, naming it and the Rust it needs (cargo
/// finds it: a dependency's manifest is read once fetched; a member's own
/// `rust-version` is refused before anything is fetched, see the cli tests).
#[test]
fn a_dependency_needing_a_newer_rust_is_refused_before_anything_compiles() {
    provisioned();
    let ws = tempfile::tempdir().unwrap();
    let dir = ws.path();
    crate::support::one_package(dir, "app");
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!("{manifest}\n[dependencies]\nneeds-new = {{ path = \"vendor/needs-new\" }}\n"),
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::create_dir_all(dir.join("vendor/needs-new/src")).unwrap();
    fs::write(
        dir.join("vendor/needs-new/Cargo.toml"),
        "[package]\nname = \"needs-new\"\nversion = \"0.1.0\"\nedition = \"2021\"\nrust-version = \"1.99\"\n",
    )
    .unwrap();
    fs::write(dir.join("vendor/needs-new/src/lib.rs"), "").unwrap();
    ok(&run(Command::new("cargo")
        .args(["generate-lockfile", "-q", "--offline"])
        .current_dir(dir)));
    let r = run(xbuild(dir).args(["--target", "x86_64-unknown-linux-musl"]));
    assert_eq!(r.status, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("needs-new@0.1.0 needs Rust 1.99")
            && r.stderr
                .contains("dependencies need a newer Rust than 1.96"),
        "{}",
        r.stderr
    );
    // cargo compiled nothing
    assert!(!r.stderr.contains("Compiling app"), "{}", r.stderr);
    assert!(!r.stderr.contains("Compiling needs-new"), "{}", r.stderr);
}

/// `rust-toolchain.toml` asks for another pinned release (1.85, Debian 12's
/// rustc-web): it builds for x86_64 and armv6l, its build script runs that
/// rustc, and nothing of the default release's is used (its own toolchain
/// directory and std; outputs under another key).
#[test]
fn rust_toolchain_toml_asking_for_1_85_builds_with_1_85_on_x86_64_and_armv6l() {
    provisioned();
    let ws = tempfile::tempdir().unwrap();
    let dir = ws.path();
    crate::support::prints_its_rustc(dir, "seen");
    fs::write(
        dir.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"1.85\"\ncomponents = [\"clippy\"]\n",
    )
    .unwrap();
    let targets = [
        "x86_64-unknown-linux-musl",
        "armv6l-unknown-linux-musleabihf",
    ];
    let r = run(xbuild(dir).args(["--target", targets[0], "--target", targets[1]]));
    ok(&r);
    let first = r
        .stderr
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert_eq!(
        first, "Rust 1.85.0 (rust-toolchain.toml asks for 1.85)",
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("also lists components clippy"),
        "{}",
        r.stderr
    );
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("target/xbuild/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["rust"]["release"], "1.85.0");
    for target in targets {
        let triple = entry(target)["rust"].as_str().unwrap().to_string();
        let exe = dir.join("target/xbuild").join(&triple).join("seen");
        let out = run_binary(target, &exe, &[]);
        ok(&out);
        assert!(
            out.stdout.starts_with("rustc 1.85.0 "),
            "{target}: {}",
            out.stdout
        );
    }
    // the default release's toolchain is another directory
    let default_rust = component_dir("rust");
    let r = run(xbuild(dir).args(["toolchain", "list", "--json"]));
    ok(&r);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        list["rust_release"], "1.85.0",
        "toolchain list follows the workspace"
    );
    let rust_185 = list["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "rust")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(Path::new(&rust_185), default_rust);
}

/// A path dependency that lives in a git submodule is in the snapshot, and
/// a `.env` the repository does not track is not (and the run names it).
#[test]
fn a_path_dependency_in_a_submodule_builds_and_runs() {
    provisioned();
    let sub = tempfile::tempdir().unwrap();
    fs::create_dir_all(sub.path().join("src")).unwrap();
    fs::write(
        sub.path().join("Cargo.toml"),
        "[package]\nname = \"sublib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(
        sub.path().join("src/lib.rs"),
        "pub fn answer() -> u32 { 42 }\n",
    )
    .unwrap();
    git(sub.path(), &["init", "-q"]);
    git(sub.path(), &["add", "."]);
    git(sub.path(), &["commit", "-qm", "sublib"]);

    let ws = tempfile::tempdir().unwrap();
    let p = ws.path();
    fs::create_dir_all(p.join("src")).unwrap();
    fs::write(
        p.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nsublib = { path = \"vendor/sublib\" }\n",
    )
    .unwrap();
    fs::write(
        p.join("src/main.rs"),
        "fn main() {\n    println!(\"app: answer={} env={}\", sublib::answer(), env!(\"HAS_ENV\"));\n}\n",
    )
    .unwrap();
    // the build script says whether it can see the untracked .env
    fs::write(
        p.join("build.rs"),
        "fn main() {\n    println!(\"cargo:rustc-env=HAS_ENV={}\", std::path::Path::new(\".env\").exists());\n}\n",
    )
    .unwrap();
    fs::write(
        p.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"sublib\",\n]\n\n\
         [[package]]\nname = \"sublib\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    fs::write(p.join(".env"), "SECRET=1\n").unwrap();
    git(p, &["init", "-q"]);
    git(
        p,
        &[
            "submodule",
            "add",
            "-q",
            sub.path().to_str().unwrap(),
            "vendor/sublib",
        ],
    );
    git(
        p,
        &["add", "Cargo.toml", "Cargo.lock", "src/main.rs", "build.rs"],
    );
    let t = "x86_64-unknown-linux-musl";
    let r = run(xbuild(p).args(["--target", t]));
    ok(&r);
    assert!(
        r.stderr.contains("1 file(s) in ") && r.stderr.contains("left out of the build: .env\n"),
        "the untracked file is named: {}",
        r.stderr
    );
    let app = run_binary(t, &p.join("target/xbuild").join(t).join("app"), &[]);
    assert_eq!(app.stdout.trim(), "app: answer=42 env=false");
}

/// The selection flags release pipelines use reach cargo, and each is part
/// of the outputs key (a cached set of one selection never serves another).
#[test]
fn profile_features_examples_and_workspace_selection() {
    provisioned();
    let ws = probe_workspace(
        "[features]\ndefault = [\"a\"]\na = []\nb = []\n\n\
         [profile.dist]\ninherits = \"release\"\nlto = \"thin\"\n",
    );
    let main = ws.path().join("src/main.rs");
    fs::write(
        &main,
        "fn main() { println!(\"a={} b={}\", cfg!(feature = \"a\"), cfg!(feature = \"b\")); }\n",
    )
    .unwrap();
    fs::create_dir_all(ws.path().join("examples")).unwrap();
    fs::write(
        ws.path().join("examples/ex.rs"),
        "fn main() { println!(\"example\"); }\n",
    )
    .unwrap();
    let t = "x86_64-unknown-linux-musl";
    let out = ws.path().join("target/xbuild").join(t);
    let probe_says = |args: &[&str]| {
        let r = run(xbuild(ws.path()).args(["--target", t]).args(args));
        ok(&r);
        (
            run_binary(t, &out.join("probe"), &[])
                .stdout
                .trim()
                .to_string(),
            r.stderr,
        )
    };
    assert_eq!(probe_says(&[]).0, "a=true b=false");
    let (said, stderr) = probe_says(&["--no-default-features"]);
    assert_eq!(said, "a=false b=false", "{stderr}");
    assert!(
        !stderr.contains("Fresh"),
        "a new selection is not a cache hit: {stderr}"
    );
    assert_eq!(probe_says(&["--all-features"]).0, "a=true b=true");
    assert_eq!(probe_says(&["--features", "b"]).0, "a=true b=true");
    let (_, stderr) = probe_says(&["--profile", "dist", "--example", "ex"]);
    assert!(stderr.contains("(dist, sealed in"), "{stderr}");
    assert_eq!(report_of(ws.path())["profile"], "dist");
    let ex = run_binary(t, &out.join("ex"), &[]);
    assert_eq!(ex.stdout.trim(), "example");
    // the default selection again: served from the cache, as it was
    let (said, stderr) = probe_says(&[]);
    assert_eq!(said, "a=true b=false");
    assert!(stderr.contains("Fresh"), "{stderr}");

    let hello = workspace();
    let r = run(xbuild(hello.path()).args(["--target", t, "--workspace", "--exclude", "tool"]));
    ok(&r);
    let out = hello.path().join("target/xbuild").join(t);
    assert!(out.join("app").is_file() && !out.join("tool").exists());
}
