//! Snapshot tests of the command-line interface.

use crate::support::{render, xb};

#[test]
fn triple_maps_nix_and_rust_names() {
    let r = xb(&[
        "triple",
        "armv6l-unknown-linux-musleabihf",
        "aarch64-linux",
        "x86_64-w64-mingw32",
        "riscv64-unknown-linux-gnu",
        "i686-unknown-linux-musl",
        "thumbv7em-none-eabihf",
    ]);
    insta::assert_snapshot!(render(&r));
}

#[test]
fn triple_errors_go_to_stderr_with_exit_2() {
    let r = xb(&[
        "triple",
        "armv7l-unknown-linux-gnu",
        "x86_64-unknown-linux-mus",
        "aarch64-linux",
        "i686-elf",
        "x86_64-pc-linux",
    ]);
    assert_eq!(r.status, Some(2));
    insta::assert_snapshot!(render(&r));
}

#[test]
fn triple_needs_a_name() {
    let r = xb(&["triple"]);
    assert_eq!(r.status, Some(2));
    insta::assert_snapshot!(render(&r));
}

#[test]
fn targets_lists_the_table() {
    let r = xb(&["targets"]);
    assert_eq!(r.status, Some(0));
    insta::assert_snapshot!(render(&r));
}

#[test]
fn targets_json_is_machine_readable() {
    let r = xb(&["targets", "--json"]);
    assert_eq!(r.status, Some(0));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    let rust: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rust"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        rust,
        [
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-musl",
            "arm-unknown-linux-musleabihf",
            "armv7-unknown-linux-musleabihf",
            "i686-unknown-linux-musl",
            "loongarch64-unknown-linux-musl",
            "powerpc64le-unknown-linux-musl",
            "riscv64gc-unknown-linux-musl",
            "s390x-unknown-linux-musl",
        ]
    );
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn help_teaches_with_examples() {
    let r = xb(&["--help"]);
    assert_eq!(r.status, Some(0));
    insta::assert_snapshot!(r.stdout);
    let r = xb(&["triple", "--help"]);
    insta::assert_snapshot!("triple_help", r.stdout);
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let r = xb(&["targets", "--jsn"]);
    assert_eq!(r.status, Some(2));
    insta::assert_snapshot!(render(&r));
}

/// `xbuild cache list` shows kept dependencies, output sets, source mirrors
/// and the limit; `gc` removes the least recently used first, never a kept
/// dir a build is using, and trims to the configured limit without a size.
#[test]
fn cache_gc_trims_least_recently_used_and_skips_entries_in_use() {
    use std::fs;
    use std::time::{Duration, SystemTime};
    let home = tempfile::tempdir().unwrap();
    let v1 = home.path().join("cache/v1");
    let day = |n: u64| SystemTime::now() - Duration::from_secs(86_400 * (10 - n));
    let set_mtime = |p: &std::path::Path, t| {
        fs::File::open(p).unwrap().set_modified(t).unwrap();
    };
    // three kept target dirs and two output sets of 1 MiB each, used on days 1..5
    let mb = vec![7u8; 1 << 20];
    for (key, used) in [("deps-old", 1), ("deps-busy", 2), ("deps-new", 5)] {
        let d = v1.join("deps").join(key);
        fs::create_dir_all(d.join("target")).unwrap();
        fs::write(d.join("target/lib.rlib"), &mb).unwrap();
        let about = format!(r#"{{"workspace":"/w/{key}","mode":"build"}}"#);
        fs::write(d.join("about.json"), about).unwrap();
        set_mtime(&d.join("about.json"), day(used));
    }
    for (key, used) in [("out-old", 3), ("out-new", 4)] {
        let d = v1.join("outputs").join(key);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("app"), &mb).unwrap();
        set_mtime(&d, day(used));
    }
    // a source mirror, the oldest of all
    let m = v1.join("mirrors/mirror-old");
    fs::create_dir_all(m.join("src")).unwrap();
    fs::write(m.join("src/data.bin"), &mb).unwrap();
    fs::write(m.join("about.json"), r#"{"workspace":"/w/mirrored"}"#).unwrap();
    set_mtime(&m.join("about.json"), day(0));

    let r = crate::support::run(crate::support::xbuild(&home).args(["cache", "list"]));
    crate::support::ok(&r);
    assert!(r.stdout.contains("kept dependencies"), "{}", r.stdout);
    assert!(r.stdout.contains("build of /w/deps-old"), "{}", r.stdout);
    assert!(r.stdout.contains("output set out-new"), "{}", r.stdout);
    assert!(r.stdout.contains("sources    mirror-old"), "{}", r.stdout);
    assert!(r.stdout.contains("/w/mirrored"), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "limit: 20.0 GiB on kept dependencies, cached outputs and source mirrors (the default; "
        ),
        "{}",
        r.stdout
    );
    // a bad limit is a usage error naming the file
    let config = home.path().join("cache/config.toml");
    fs::write(&config, "max-size = \"lots\"\n").unwrap();
    let r = crate::support::run(crate::support::xbuild(&home).args(["cache", "list"]));
    assert_eq!(r.status, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("config.toml") && r.stderr.contains("`lots` is not a size"),
        "{}",
        r.stderr
    );

    // a build holds deps-busy
    fs::create_dir_all(v1.join("deps/deps-busy")).unwrap();
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(v1.join("deps/deps-busy/lock"))
        .unwrap();
    lock.try_lock().unwrap();
    // 6 MiB in all; keep at most 2.5 MiB (the config's limit): mirror-old,
    // deps-old, then deps-busy (skipped), out-old and out-new go, oldest
    // first, until two entries are left
    fs::write(&config, "max-size = \"2600K\"\n").unwrap();
    let r = crate::support::run(crate::support::xbuild(&home).args(["cache", "gc"]));
    crate::support::ok(&r);
    let left = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(v1.join(kind))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(left("deps"), ["deps-busy", "deps-new"]);
    assert_eq!(left("outputs"), Vec::<String>::new());
    assert_eq!(left("mirrors"), Vec::<String>::new());
    assert!(
        r.stderr.contains(
            "Freed 4.0 MiB (1 kept dependency dir, 2 cached output sets, 1 source mirror), least recently used first, to fit in 2.5 MiB"
        ),
        "{}",
        r.stderr
    );
}

/// User mistakes exit 2 with a message that says what to do, and are found
/// before anything is provisioned (the cache stays empty).
#[test]
fn user_mistakes_exit_2_before_anything_is_provisioned() {
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"w\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(ws.join("src/main.rs"), "fn main() {}\n").unwrap();
    let xb_in = |args: &[&str]| {
        crate::support::run(crate::support::xbuild(&home).current_dir(&ws).args(args))
    };
    let check = |args: &[&str], says: &str| {
        let r = xb_in(args);
        assert_eq!(r.status, Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    };
    // no Cargo.lock: found before a 1 GB toolchain is fetched
    check(&[], "Run `cargo generate-lockfile` and commit Cargo.lock");
    // ... in a repository that tracks nothing yet (`cargo new`): both steps
    let git = |args: &[&str]| {
        crate::support::ok(&crate::support::run(
            std::process::Command::new("git")
                .current_dir(&ws)
                .args(args),
        ))
    };
    git(&["init", "-q"]);
    check(&[], "run `cargo generate-lockfile && git add .` there");
    git(&["add", "Cargo.toml"]);
    check(&[], "Run `cargo generate-lockfile` and commit Cargo.lock");
    std::fs::remove_dir_all(ws.join(".git")).unwrap();
    std::fs::write(ws.join("Cargo.lock"), "version = 3\n").unwrap();
    check(
        &["--target", "aarch64-linux"],
        "which xbuild does not build yet",
    );
    check(&["--bogus-flag"], "unexpected argument '--bogus-flag'");
    check(
        &["--manifest-path", "nowhere/Cargo.toml"],
        "no Cargo.toml at",
    );
    // a Rust release with no pin, asked for by the workspace or --rust; a
    // package that needs a newer Rust than the one chosen
    std::fs::write(
        ws.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"1.84\"\n",
    )
    .unwrap();
    check(
        &[],
        "rust-toolchain.toml asks for Rust \"1.84\", which is not pinned",
    );
    check(&["--rust", "nightly"], "--rust asks for Rust \"nightly\"");
    std::fs::remove_file(ws.join("rust-toolchain.toml")).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"w\"\nversion = \"0.1.0\"\nedition = \"2021\"\nrust-version = \"1.99\"\n",
    )
    .unwrap();
    check(
        &[],
        "package `w` needs Rust 1.99 (`rust-version` in Cargo.toml)",
    );
    // a newer release is pinned: the message names it and how to ask for it
    std::fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"w\"\nversion = \"0.1.0\"\nedition = \"2021\"\nrust-version = \"1.97\"\n",
    )
    .unwrap();
    check(
        &[],
        "Pinned and new enough: 1.97.1; build with `--rust 1.97`",
    );
    std::fs::write(ws.join("toolchains.toml"), "version = 1\n[rust\n").unwrap();
    check(&[], "toolchains.toml:2");
    let cache = home.path().join("cache/v1/toolchains");
    let installed = std::fs::read_dir(&cache).map_or(0, |d| d.count());
    assert_eq!(installed, 0, "nothing was provisioned");
}

/// Without a sandbox, a workspace's own toolchains.toml would run its
/// programs on the host: refused (exit 5) before anything is fetched.
#[test]
fn a_workspaces_own_pins_are_refused_without_a_sandbox() {
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    crate::support::one_package(&ws, "w");
    std::fs::write(ws.join("src/main.rs"), "fn main() {}\n").unwrap();
    let pins = crate::support::repo_root().join("toolchains.toml");
    std::fs::copy(&pins, ws.join("toolchains.toml")).unwrap();
    let unsandboxed = |args: &[&str]| {
        crate::support::run(
            crate::support::xbuild(&home)
                .current_dir(&ws)
                .args(args)
                .env("XBUILD_BWRAP", "/nonexistent/bwrap")
                .env_remove("XBUILD_REQUIRE_SANDBOX"),
        )
    };
    let r = unsandboxed(&[]);
    assert_eq!(r.status, Some(5), "{}", r.stderr);
    assert!(
        r.stderr.contains("the workspace pins its own toolchain")
            && r.stderr.contains("--toolchains FILE"),
        "{}",
        r.stderr
    );
    let installed =
        std::fs::read_dir(home.path().join("cache/v1/toolchains")).map_or(0, |d| d.count());
    assert_eq!(installed, 0, "nothing was provisioned");
}

/// `xbuild cache keygen`: the public key on stdout, the secret key in a new
/// file only its owner reads, never overwritten; a bad store setting is a
/// usage error (exit 2) before anything is provisioned.
#[test]
fn cache_keygen_and_store_settings() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("ci.secret");
    let r = crate::support::run(
        crate::support::xbuild(&home)
            .args(["cache", "keygen", "ci-1", "--out"])
            .arg(&file),
    );
    crate::support::ok(&r);
    let public = r.stdout.trim();
    let (name, key) = public.split_once(':').expect("NAME:KEY");
    assert_eq!(name, "ci-1");
    assert_eq!(key.len(), 44, "32 bytes of base64: {key}");
    let secret = std::fs::read_to_string(&file).unwrap();
    assert!(secret.starts_with("ci-1:") && !secret.contains(key));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = crate::support::run(
        crate::support::xbuild(&home)
            .args(["cache", "keygen", "ci-1", "--out"])
            .arg(&file),
    );
    assert_ne!(again.status, Some(0));
    assert!(
        again.stderr.contains("never overwritten"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret);

    let ws = home.path().join("ws");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"w\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(ws.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(ws.join("Cargo.lock"), "version = 3\n").unwrap();
    let bad = crate::support::run(
        crate::support::xbuild(&home)
            .current_dir(&ws)
            .args(["--cache-url", "ftp://host/x"]),
    );
    assert_eq!(bad.status, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("s3://BUCKET/PREFIX"), "{}", bad.stderr);
    let wrong_key = crate::support::run(
        crate::support::xbuild(&home)
            .current_dir(&ws)
            .args(["--cache-url", "file:///tmp/nowhere"])
            .env("XBUILD_CACHE_TRUSTED_KEYS", "ci-1:short"),
    );
    assert_eq!(wrong_key.status, Some(2), "{}", wrong_key.stderr);
    assert!(
        wrong_key.stderr.contains("XBUILD_CACHE_TRUSTED_KEYS"),
        "{}",
        wrong_key.stderr
    );
    let cache = home.path().join("cache/v1/toolchains");
    assert_eq!(std::fs::read_dir(&cache).map_or(0, |d| d.count()), 0);
}

/// Every target in the table is reachable by its Nix name.
#[test]
fn triple_maps_every_tables_nix_name() {
    let r = xb(&["targets", "--json"]);
    crate::support::ok(&r);
    let table: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    for t in table.as_array().unwrap() {
        let m = xb(&["triple", t["nix"].as_str().unwrap()]);
        crate::support::ok(&m);
        assert_eq!(m.stdout.trim(), t["rust"].as_str().unwrap(), "{}", t["nix"]);
    }
}
