//! Reproducible against the machine (`tests/fixtures/machine-ws`: one binary
//! per factor, each embedding what its build script saw). What the sandbox
//! fixes gives the same bytes whoever builds where; what it cannot fix,
//! `--check-determinism` varies in its second build, and the binaries that
//! depend on it are found. x86_64 only.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::e2e::{fixture, provisioned, report_of, xbuild};
use crate::sandbox::{give, user, xbuild_as};
use crate::support::{ok, run};

const T: &str = "x86_64-unknown-linux-musl";

/// The binaries whose factor the sandbox fixes (`envorder`: cargo sorts
/// what it passes on, so the check's reversed environment never shows).
const FIXED: &[&str] = &[
    "host", "user", "home", "locale", "tz", "umask", "path", "envorder", "make", "cfile", "plain",
];

/// Binary name → sha256, from a build's SHA256SUMS.
fn digests(out: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(out.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (sha, path) = l.split_once("  ")?;
            let name = Path::new(path).file_name()?.to_string_lossy().into_owned();
            Some((name, sha.to_string()))
        })
        .collect()
}

fn fixed_of(d: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    d.iter()
        .filter(|(k, _)| FIXED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The machine as a build could see it, changed in every way the sandbox
/// should hide: another host name (root only: a UTS namespace of its own),
/// locale, time zone and umask, another and deeper path, another user.
#[test]
fn the_fixed_factors_give_the_same_bytes_whoever_builds_where() {
    provisioned();
    let a = fixture("machine-ws");
    let outs = tempfile::tempdir().unwrap();
    let first = outs.path().join("first");
    ok(&run(xbuild(a.path())
        .args(["--target", T, "--rebuild", "--out"])
        .arg(&first)));
    let reference = digests(&first);
    assert_eq!(fixed_of(&reference).len(), FIXED.len(), "{reference:?}");
    // what the build saw of the machine, to make sure it was fixed at all
    let shown = run(&mut Command::new(first.join(T).join("host")));
    assert_eq!(shown.stdout.trim(), "xbuild\n|(none)");

    let b = tempfile::tempdir().unwrap();
    let deeper = b.path().join("another/much/deeper/checkout-path");
    crate::e2e::copy_dir(a.path(), &deeper);
    let second = outs.path().join("second");
    // another host name needs a UTS namespace: root's (the tests run by an
    // ordinary user vary the rest)
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = Command::new(if root { "unshare" } else { "env" });
    if root {
        cmd.arg("--uts");
    } else {
        eprintln!("not root: the host name is not varied");
    }
    cmd.args(["sh", "-c"])
        .arg(if root {
            r#"hostname another-host && umask 077 && exec "$0" "$@""#
        } else {
            r#"umask 077 && exec "$0" "$@""#
        })
        .arg(env!("CARGO_BIN_EXE_xbuild"))
        .args(["--target", T, "--rebuild", "--out"])
        .arg(&second)
        .current_dir(&deeper);
    for (k, v) in xbuild(&deeper).get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("LANG", "de_DE.UTF-8")
        .env("LC_ALL", "de_DE.UTF-8")
        .env("TZ", "Asia/Tokyo");
    ok(&run(&mut cmd));
    assert_eq!(fixed_of(&digests(&second)), fixed_of(&reference));

    let Some(u) = user() else {
        eprintln!("XBUILD_TEST_USER is not set: built as root only");
        return;
    };
    let c = crate::support::dir_until_exit("xbuild-machine-");
    let theirs = c.join("their-checkout");
    crate::e2e::copy_dir(a.path(), &theirs);
    std::fs::create_dir_all(c.join("out")).unwrap();
    give(u, &c);
    let mut cmd = xbuild_as(Some(u), &theirs);
    cmd.args(["--target", T, "--rebuild", "--out"])
        .arg(c.join("out"))
        .env("LANG", "C.UTF-8")
        .env("TZ", "America/New_York");
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o002);
            Ok(())
        });
    }
    ok(&run(&mut cmd));
    assert_eq!(fixed_of(&digests(&c.join("out"))), fixed_of(&reference));
}

/// The second build runs under a 2.6 kernel release, on one CPU, with other
/// `--jobs`, without ASLR and a year later: the binaries that embed those
/// differ (exit 4),
/// the rest are identical, report.json says what was varied, and each
/// difference is named: the factor it depends on, or (a hash map's order)
/// nondeterministic on its own.
#[test]
fn the_check_varies_kernel_cpus_jobs_aslr_and_date_and_names_each() {
    provisioned();
    let ws = fixture("machine-ws");
    let r = run(xbuild(ws.path()).args(["--target", T, "--check-determinism"]));
    assert_eq!(r.status, Some(4), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("CPUs (one), kernel release (uname: 2.6), ASLR (off), environment order, the date (a year later), directory order"),
        "{}",
        r.stderr
    );
    let report = report_of(ws.path());
    let mut causes = BTreeMap::new();
    let mut identical = Vec::new();
    for v in report["determinism"].as_array().unwrap() {
        if v["against"] != "second build" {
            continue;
        }
        let varied = v["varied"].as_array().unwrap();
        assert!(
            varied
                .iter()
                .any(|f| f.as_str().unwrap().starts_with("ASLR"))
        );
        let name = v["artifact"].as_str().unwrap().to_string();
        if v["identical"].as_bool().unwrap() {
            assert!(v.get("cause").is_none(), "{v}");
            identical.push(name);
        } else {
            causes.insert(name, v["cause"].as_str().unwrap_or("none").to_string());
        }
    }
    identical.sort();
    let mut fixed: Vec<_> = FIXED.iter().map(|s| s.to_string()).collect();
    fixed.sort();
    assert_eq!(identical, fixed, "{}", r.stderr);
    let want: BTreeMap<String, String> = [
        ("jobs", "depends on --jobs"),
        ("cpus", "depends on CPUs (one)"),
        ("kernel", "depends on kernel release (uname: 2.6)"),
        ("aslr", "depends on ASLR (off)"),
        ("date", "depends on the date (a year later)"),
        ("dirorder", "depends on directory order"),
        ("hashmap", "is nondeterministic on its own"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        causes.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{}",
        r.stderr
    );
    for (name, cause) in &want {
        assert!(
            causes[name].starts_with(cause.as_str()),
            "{name}: {causes:?}"
        );
        assert!(
            r.stderr
                .contains(&format!("NOT REPRODUCIBLE: {T} {name} {cause}")),
            "{name}: {}",
            r.stderr
        );
    }
}

/// C compiled by a build script names its file by the remapped path, not the
/// sealed directory's: without a sandbox, two checkouts at other paths give
/// the same bytes (`-ffile-prefix-map` from xbuild's C compiler wrapper).
#[test]
fn c_code_names_no_machine_path_even_without_a_sandbox() {
    provisioned();
    let outs = tempfile::tempdir().unwrap();
    let checkouts = tempfile::tempdir().unwrap();
    let fixture = crate::support::repo_root().join("tests/fixtures/machine-ws");
    let mut seen = Vec::new();
    for (i, depth) in ["a", "b/much/deeper/path"].iter().enumerate() {
        let at = checkouts.path().join(depth);
        crate::e2e::copy_dir(&fixture, &at);
        let out = outs.path().join(i.to_string());
        let r = run(xbuild(&at)
            .args(["--target", T, "--bin", "cfile", "--rebuild", "--out"])
            .arg(&out)
            .env("XBUILD_BWRAP", "/nonexistent")
            .env_remove("XBUILD_REQUIRE_SANDBOX"));
        ok(&r);
        assert!(
            r.stderr.contains("not sandboxed") || r.stderr.contains("no sandbox"),
            "{}",
            r.stderr
        );
        let said = run(&mut Command::new(out.join(T).join("cfile")));
        assert_eq!(said.stdout.trim(), "/xbuild/src/cfile.c");
        seen.push(digests(&out)["cfile"].clone());
    }
    assert_eq!(seen[0], seen[1]);
}

/// A workspace that embeds nothing of the machine passes the check (and
/// attribution never starts).
#[test]
fn the_plain_binary_passes_the_check() {
    provisioned();
    let ws = fixture("machine-ws");
    let r = run(xbuild(ws.path()).args(["--target", T, "--check-determinism", "--bin", "plain"]));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("Identical"), "{}", r.stderr);
    assert!(!r.stderr.contains("Attributing"), "{}", r.stderr);
}
