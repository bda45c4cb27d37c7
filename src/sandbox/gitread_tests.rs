//! Tests of `gitread`: what it reads is compared with what git says.

use super::*;
use crate::process::Cmd;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Cmd::host_tool("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(["-c", "protocol.file.allow=always"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// What git itself lists, in `dir`.
fn git_lists(dir: &Path) -> Vec<PathBuf> {
    git(
        dir,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--recurse-submodules",
            "--",
            ".",
        ],
    )
    .split('\0')
    .filter(|s| !s.is_empty())
    .map(PathBuf::from)
    .collect()
}

fn write(dir: &Path, files: &[&str]) {
    for f in files {
        let p = dir.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, format!("{f}\n")).unwrap();
    }
}

/// The index read without git lists what git lists: index versions 2, 3
/// (an intent-to-add entry has the extended flags) and 4 (compressed
/// names), from the top and from a member's directory, with an
/// initialized submodule's files.
#[test]
fn the_index_lists_what_git_lists_in_every_version() {
    let top = tempfile::tempdir().unwrap();
    let sub_src = tempfile::tempdir().unwrap();
    write(sub_src.path(), &["lib.rs", "deep/er/x.c"]);
    git(sub_src.path(), &["init", "-q"]);
    git(sub_src.path(), &["add", "."]);
    git(sub_src.path(), &["commit", "-qm", "s"]);
    let t = top.path();
    write(
        t,
        &[
            "Cargo.toml",
            "a/src/main.rs",
            "a/src/main2.rs",
            "a/Cargo.toml",
            "b/x.txt",
            "zz",
            "a/src/m/n.rs",
        ],
    );
    git(t, &["init", "-q"]);
    git(t, &["add", "."]);
    git(
        t,
        &[
            "submodule",
            "-q",
            "add",
            sub_src.path().to_str().unwrap(),
            "a/vendor/sub",
        ],
    );
    write(t, &["a/new.rs"]);
    git(t, &["add", "-N", "a/new.rs"]);
    for version in ["2", "3", "4"] {
        git(t, &["update-index", "--index-version", version]);
        let repo = Repo::find(t).unwrap().unwrap();
        for dir in [t.to_path_buf(), t.join("a")] {
            let mut ours = repo.tracked(&dir).unwrap();
            ours.sort();
            let mut theirs = git_lists(&dir);
            theirs.sort();
            assert_eq!(
                ours,
                theirs,
                "index version {version}, in {}",
                dir.display()
            );
            assert!(ours.iter().any(|p| p.ends_with("deep/er/x.c")), "{ours:?}");
        }
    }
    // nothing added yet: nothing tracked
    let empty = tempfile::tempdir().unwrap();
    git(empty.path(), &["init", "-q"]);
    assert!(
        Repo::find(empty.path())
            .unwrap()
            .unwrap()
            .tracked(empty.path())
            .unwrap()
            .is_empty()
    );
    assert!(
        Repo::find(empty.path())
            .unwrap()
            .unwrap()
            .head_time()
            .unwrap()
            .is_none()
    );
}

/// HEAD's commit time read without git is git's `%ct`: from a loose
/// object, from a pack (after gc), through packed refs, detached, and
/// from a linked worktree.
#[test]
fn heads_commit_time_is_gits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, &["f"]);
    git(d, &["init", "-q"]);
    git(d, &["add", "."]);
    let commit = |when: &str| {
        Cmd::host_tool("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                when,
            ])
            .env("GIT_COMMITTER_DATE", when)
            .current_dir(d)
            .output()
            .unwrap();
    };
    commit("1700000000 +0100");
    let ct = |d: &Path| {
        git(d, &["log", "-1", "--format=%ct"])
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    let ours = |d: &Path| {
        Repo::find(d)
            .unwrap()
            .unwrap()
            .head_time()
            .unwrap()
            .unwrap()
    };
    assert_eq!(ours(d), 1700000000);
    assert_eq!(ours(d), ct(d));
    for i in 0..30 {
        write(d, &[&format!("more/{i}")]);
        git(d, &["add", "."]);
        commit(&format!("{} +0000", 1700000100 + i));
    }
    git(d, &["gc", "-q", "--aggressive"]);
    assert!(
        fs::read_dir(d.join(".git/objects"))
            .unwrap()
            .flatten()
            .all(|e| {
                let n = e.file_name();
                n == "pack" || n == "info"
            }),
        "gc packed every object"
    );
    assert_eq!(ours(d), ct(d));
    git(d, &["checkout", "-q", "--detach", "HEAD~3"]);
    assert_eq!(ours(d), ct(d));
    let wt = tempfile::tempdir().unwrap();
    let wt_dir = wt.path().join("w");
    git(
        d,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            wt_dir.to_str().unwrap(),
            "HEAD~7",
        ],
    );
    assert_eq!(ours(&wt_dir), ct(&wt_dir));
    assert_eq!(
        Repo::find(&wt_dir)
            .unwrap()
            .unwrap()
            .tracked(&wt_dir)
            .unwrap(),
        git_lists(&wt_dir)
    );
}

#[test]
fn a_sparse_index_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, &["a/x", "b/y", "top"]);
    git(d, &["init", "-q"]);
    git(d, &["add", "."]);
    git(d, &["commit", "-qm", "c"]);
    git(d, &["sparse-checkout", "set", "--sparse-index", "a"]);
    let e = format!(
        "{:#}",
        Repo::find(d).unwrap().unwrap().tracked(d).unwrap_err()
    );
    assert!(e.contains("install git") && e.contains("sparse"), "{e}");
}

#[test]
fn deltas_apply_as_git_defines_them() {
    let base = b"hello, world\n";
    // sizes 13 and 19; copy 7 bytes from 0; insert "there "; copy 6 from 7
    let delta = [
        13,
        19,
        0x80 | 0x10,
        7,
        6,
        b't',
        b'h',
        b'e',
        b'r',
        b'e',
        b' ',
        0x80 | 0x01 | 0x10,
        7,
        6,
    ];
    assert_eq!(apply_delta(base, &delta).unwrap(), b"hello, there world\n");
    assert!(
        apply_delta(base, &[14, 1, 1, b'x']).is_err(),
        "another base"
    );
}
