//! Tests of `sources`.

use super::*;
use crate::cache::Cache;
use crate::sandbox::Snapshot;

fn git(dir: &Path, args: &[&str]) {
    Cmd::host_tool("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
}

#[test]
fn tracks_tells_tracked_untracked_and_no_repository_apart() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Cargo.toml"), "").unwrap();
    assert_eq!(tracks(dir.path(), "Cargo.toml"), None);
    git(dir.path(), &["init", "-q"]);
    assert_eq!(tracks(dir.path(), "Cargo.toml"), Some(false));
    git(dir.path(), &["add", "Cargo.toml"]);
    assert_eq!(tracks(dir.path(), "Cargo.toml"), Some(true));
}

#[test]
fn a_repository_that_tracks_no_manifest_is_told_to_git_add() {
    let ws = tempfile::tempdir().unwrap();
    fs::write(ws.path().join("Cargo.toml"), "[package]\nname = \"a\"\n").unwrap();
    fs::create_dir(ws.path().join("src")).unwrap();
    fs::write(ws.path().join("src/main.rs"), "fn main() {}").unwrap();
    git(ws.path(), &["init", "-q"]);
    let e = source_files(ws.path()).unwrap_err();
    assert!(e.chain().any(|c| c.is::<crate::exit::Usage>()), "{e:#}");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("git does not track") && msg.contains("git add ."),
        "{msg}"
    );
    git(ws.path(), &["add", "."]);
    let expect: Vec<PathBuf> = vec!["Cargo.toml".into(), "src/main.rs".into()];
    assert_eq!(source_files(ws.path()).unwrap(), expect);
}

#[test]
fn files_git_does_not_track_are_named_and_ignored_ones_are_not() {
    let ws = tempfile::tempdir().unwrap();
    fs::write(ws.path().join("Cargo.toml"), "").unwrap();
    fs::write(ws.path().join("Cargo.lock"), "").unwrap();
    fs::write(ws.path().join(".gitignore"), "*.log\n").unwrap();
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "Cargo.toml", ".gitignore"]);
    assert_eq!(
        untracked_note(ws.path()),
        None,
        "Cargo.lock is built anyway"
    );
    fs::write(ws.path().join("build.log"), "").unwrap();
    fs::create_dir(ws.path().join("src")).unwrap();
    for i in 0..7 {
        fs::write(ws.path().join(format!("src/m{i}.rs")), "").unwrap();
    }
    let note = untracked_note(ws.path()).unwrap();
    assert!(note.starts_with("7 file(s) in "), "{note}");
    assert!(
        note.contains(": src/m0.rs, src/m1.rs, src/m2.rs, src/m3.rs, src/m4.rs, and 2 more\n"),
        "{note}"
    );
    assert!(!note.contains("build.log"), "{note}");
}

#[test]
fn git_dir_in_the_environment_does_not_change_the_snapshot() {
    let ws = tempfile::tempdir().unwrap();
    fs::write(ws.path().join("tracked.rs"), "fn main() {}").unwrap();
    fs::write(ws.path().join("untracked.env"), "SECRET=1").unwrap();
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "tracked.rs"]);
    // another repository, named by GIT_DIR/GIT_WORK_TREE in the user's shell
    let other = tempfile::tempdir().unwrap();
    fs::write(other.path().join("elsewhere.rs"), "").unwrap();
    git(other.path(), &["init", "-q"]);
    git(other.path(), &["add", "elsewhere.rs"]);
    let expect: Vec<PathBuf> = vec!["tracked.rs".into()];
    assert_eq!(source_files(ws.path()).unwrap(), expect);
    // The test process itself gets the variables; children must not.
    let out = Cmd::new(std::env::current_exe().unwrap())
        .args([
            "sandbox::sources::tests::list_files_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env("XB_TEST_LIST", ws.path())
        .env("GIT_DIR", other.path().join(".git"))
        .env("GIT_WORK_TREE", other.path())
        .env("PATH", crate::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FILES: [\"tracked.rs\"]"), "{text}");
    assert!(!text.contains("elsewhere"), "{text}");
}

/// Run by the test above with GIT_DIR set: prints what it lists.
#[test]
#[ignore = "a helper run by git_dir_in_the_environment_does_not_change_the_snapshot"]
fn list_files_helper() {
    let Some(dir) = crate::env::var_os("XB_TEST_LIST") else {
        return;
    };
    let files = source_files(Path::new(&dir)).unwrap();
    println!("FILES: {files:?}");
}

#[test]
fn the_digest_is_of_the_snapshot_not_of_later_edits() {
    let ws = tempfile::tempdir().unwrap();
    fs::write(ws.path().join("a.rs"), "one").unwrap();
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path().join("c")).unwrap();
    let snap = Snapshot::take(&cache, ws.path()).unwrap();
    fs::write(ws.path().join("a.rs"), "two").unwrap();
    let dest = tempfile::tempdir().unwrap();
    snap.copy_to(dest.path()).unwrap();
    assert_eq!(fs::read_to_string(dest.path().join("a.rs")).unwrap(), "one");
    let again = Snapshot::take(&cache, ws.path()).unwrap();
    assert_ne!(snap.digest, again.digest);
}

fn ws_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = ws.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    ws
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|f| f.display().to_string()).collect()
}

#[test]
fn a_git_repository_gives_tracked_files_only() {
    let ws = ws_with(&[
        ("src/main.rs", ""),
        (".env", "SECRET=1"),
        ("Cargo.toml", ""),
    ]);
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "src/main.rs", "Cargo.toml"]);
    assert_eq!(
        names(&source_files(ws.path()).unwrap()),
        ["Cargo.toml", "src/main.rs"]
    );
}

#[test]
fn without_git_ignored_files_target_and_vcs_dirs_are_left_out() {
    let ws = ws_with(&[
        (".gitignore", "secret.txt\n*.log\n"),
        ("secret.txt", "x"),
        ("build.log", "x"),
        ("src/lib.rs", ""),
        (".cargo/config.toml", ""),
        ("target/debug/x", ""),
        (".hg/store", ""),
        ("sub/target/kept.rs", ""),
    ]);
    assert_eq!(
        names(&source_files(ws.path()).unwrap()),
        [
            ".cargo/config.toml",
            ".gitignore",
            "src/lib.rs",
            "sub/target/kept.rs"
        ]
    );
}

#[test]
fn links_inside_are_kept_as_links_and_links_outside_are_refused() {
    let ws = ws_with(&[("data/real.txt", "inside"), ("src/lib.rs", "")]);
    std::os::unix::fs::symlink("../data/real.txt", ws.path().join("src/inside.txt")).unwrap();
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "."]);
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path().join("c")).unwrap();
    let snap = Snapshot::take(&cache, ws.path()).unwrap();
    let link = snap.root.join("src/inside.txt");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&link).unwrap(), "inside");

    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "do not read").unwrap();
    for (name, target) in [
        ("abs.txt", outside.path().join("secret")),
        (
            "up.txt",
            PathBuf::from("../../../../../../../../etc/passwd"),
        ),
    ] {
        std::os::unix::fs::symlink(&target, ws.path().join(name)).unwrap();
        git(ws.path(), &["add", name]);
        let e = format!("{:#}", Snapshot::take(&cache, ws.path()).err().unwrap());
        assert!(
            e.contains(name) && e.contains("points outside the workspace"),
            "{e}"
        );
        git(ws.path(), &["rm", "-q", "--cached", name]);
        fs::remove_file(ws.path().join(name)).unwrap();
    }
}

#[test]
fn non_utf8_file_names_round_trip() {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    for with_git in [false, true] {
        let ws = ws_with(&[("Cargo.toml", "")]);
        fs::write(ws.path().join(name), "latin-1").unwrap();
        if with_git {
            git(ws.path(), &["init", "-q"]);
            git(ws.path(), &["add", "."]);
        }
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path().join("c")).unwrap();
        let snap = Snapshot::take(&cache, ws.path()).unwrap();
        assert!(
            snap.files.iter().any(|f| f.path.as_os_str() == name),
            "git: {with_git}"
        );
        assert_eq!(fs::read_to_string(snap.root.join(name)).unwrap(), "latin-1");
    }
}

#[test]
fn the_repositorys_fsmonitor_is_not_run() {
    let ws = ws_with(&[("src/lib.rs", "")]);
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "."]);
    git(ws.path(), &["commit", "-qm", "one"]);
    let marker = ws.path().join("ran");
    let hook = ws.path().join("monitor.sh");
    fs::write(&hook, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    git(
        ws.path(),
        &["config", "core.fsmonitor", hook.to_str().unwrap()],
    );
    source_files(ws.path()).unwrap();
    source_date_epoch(ws.path());
    git_describe(ws.path()).unwrap();
    assert!(!marker.exists(), "the repository's fsmonitor ran");
}

#[test]
fn git_failures_other_than_not_a_repository_are_errors() {
    let ws = ws_with(&[("src/lib.rs", "")]);
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "."]);
    // a damaged repository
    fs::write(ws.path().join(".git/HEAD"), "garbage").unwrap();
    let e = format!("{:#}", source_files(ws.path()).unwrap_err());
    assert!(e.contains("is it damaged"), "{e}");
}

#[test]
fn a_repository_owned_by_another_user_fails_with_gits_message() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can give a repository to another user here");
        return;
    }
    let ws = ws_with(&[("src/lib.rs", "")]);
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "."]);
    Cmd::new("/bin/chown")
        .args(["-R", "65534:65534"])
        .arg(ws.path())
        .output()
        .unwrap();
    let e = format!("{:#}", source_files(ws.path()).unwrap_err());
    assert!(e.contains("dubious ownership"), "{e}");
    assert!(e.contains("safe.directory"), "{e}");
}

#[test]
fn an_uninitialized_submodule_the_workspace_needs_is_named() {
    let sub = ws_with(&[
        ("Cargo.toml", "[package]\nname = \"sublib\"\n"),
        ("src/lib.rs", ""),
    ]);
    git(sub.path(), &["init", "-q"]);
    git(sub.path(), &["add", "."]);
    git(sub.path(), &["commit", "-qm", "sub"]);
    let ws = ws_with(&[(
        "Cargo.toml",
        "[package]\nname = \"app\"\n[dependencies]\nsublib = { path = \"vendor/sublib\" }\n",
    )]);
    git(ws.path(), &["init", "-q"]);
    git(
        ws.path(),
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            sub.path().to_str().unwrap(),
            "vendor/sublib",
        ],
    );
    git(ws.path(), &["add", "."]);
    // initialized: its files are in the snapshot
    let files = names(&source_files(ws.path()).unwrap());
    assert!(
        files.contains(&"vendor/sublib/src/lib.rs".to_string()),
        "{files:?}"
    );
    // uninitialized: an error naming it and the command
    git(
        ws.path(),
        &["submodule", "deinit", "-q", "-f", "vendor/sublib"],
    );
    let e = format!("{:#}", source_files(ws.path()).unwrap_err());
    assert!(
        e.contains("vendor/sublib") && e.contains("git submodule update --init"),
        "{e}"
    );
}
