//! What goes into the snapshot (see `snapshot`): the files git tracks (and
//! those of initialized submodules), or without git every file but the
//! ignored ones; the checks on links and submodules; and the other things
//! xbuild asks git (`SOURCE_DATE_EPOCH`, `git describe`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::process::Cmd;

/// git, kept from running anything the repository's config names (a
/// checkout may be someone else's): no fsmonitor, no hooks. It gets the
/// user's HOME (for `safe.directory` in their own config) and PATH, never
/// `GIT_DIR` or `GIT_WORK_TREE`.
fn git(root: &Path) -> Cmd {
    let mut cmd = Cmd::host_tool("git");
    cmd.args([
        "-c",
        "core.fsmonitor=false",
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "diff.external=",
    ])
    .current_dir(root);
    cmd
}

/// Whether the git repository `root` is in tracks `rel` (None: not in a
/// repository, or git could not tell).
pub fn tracks(root: &Path, rel: &str) -> Option<bool> {
    match git(root)
        .args(["ls-files", "--error-unmatch", "--", rel])
        .output()
    {
        Ok(_) => Some(true),
        Err(e) if e.stderr.contains("did not match any file") => Some(false),
        Err(_) => None,
    }
}

/// The workspace's source files, relative to its root, as described above.
pub fn source_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = match git(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--recurse-submodules",
            "--",
            ".",
        ])
        .output()
    {
        Ok(out) => {
            if has_submodules(root) {
                check_submodules(root)?;
            }
            tracks_its_manifest(root, split_z(&out.stdout))?
        }
        Err(e) if e.stderr.contains("not a git repository") => {
            if let Some(dir) = root.ancestors().find(|d| d.join(".git").exists()) {
                bail!(
                    "{} has a .git, but git does not read it as a repository (is it damaged?):\n{}",
                    dir.display(),
                    e.stderr.trim()
                );
            }
            walk(root)?
        }
        Err(e) if e.status.is_none() => match super::gitread::Repo::find(root)? {
            // no git here: its index, read by xbuild
            Some(repo) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    crate::ui::note(&format!(
                        "git cannot be run here ({}): xbuild reads the repository's index itself (the files it tracks, \
                         and HEAD's commit time); files git would call untracked are not named",
                        e.stderr.trim()
                    ))
                });
                tracks_its_manifest(root, repo.tracked(root)?)?
            }
            None => walk(root)?,
        },
        Err(e) => {
            let advice = if e.stderr.contains("dubious ownership") {
                "\nxbuild does not bypass git's ownership check (it protects against repository config that runs programs): \
                 if you trust this repository, mark it safe as git says above, or build as the user who owns it"
            } else {
                ""
            };
            bail!(
                "git cannot list the files of {} (xbuild snapshots exactly what the repository tracks):\n{}{advice}",
                root.display(),
                e.stderr.trim()
            );
        }
    };
    if root.join("Cargo.lock").is_file() && !files.iter().any(|f| f == Path::new("Cargo.lock")) {
        files.push("Cargo.lock".into());
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// A repository that does not track the workspace's manifest tracks nothing
/// yet (`cargo new`): say what to run.
fn tracks_its_manifest(root: &Path, files: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    let manifest = Path::new("Cargo.toml");
    if root.join(manifest).exists() && !files.iter().any(|f| f == manifest) {
        return Err(crate::exit::Usage(format!(
            "git does not track {}: xbuild builds exactly the files the repository tracks (with their \
             working-tree contents), and a new repository, such as `cargo new` makes, tracks nothing yet.\n  \
             run `git add .` in {} (a commit is not needed), then build again",
            root.join("Cargo.toml").display(),
            root.display()
        ))
        .into());
    }
    Ok(files)
}

/// Say which files the build will not see because git does not track them
/// (and does not ignore them either): a new module not yet `git add`ed
/// otherwise fails the build with cargo's "file not found for module". Said
/// when something is built (git walks the whole tree to tell, and a run whose
/// outputs are cached builds nothing that could fail).
pub fn warn_untracked(root: &Path) {
    if let Some(note) = untracked_note(root) {
        crate::ui::warn(&note);
    }
}

fn untracked_note(root: &Path) -> Option<String> {
    let out = git(root)
        .args([
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            "--",
            ".",
        ])
        .output()
        .ok()?;
    // Cargo.lock is built tracked or not (see below)
    let untracked: Vec<PathBuf> = split_z(&out.stdout)
        .into_iter()
        .filter(|f| f != Path::new("Cargo.lock"))
        .collect();
    if untracked.is_empty() {
        return None;
    }
    const SHOWN: usize = 5;
    let mut names: Vec<String> = untracked
        .iter()
        .take(SHOWN)
        .map(|f| f.display().to_string())
        .collect();
    if untracked.len() > SHOWN {
        names.push(format!("and {} more", untracked.len() - SHOWN));
    }
    Some(format!(
        "{} file(s) in {} that git does not track are left out of the build: {}\n  \
         `git add` what the build needs, or list the rest in .gitignore",
        untracked.len(),
        root.display(),
        names.join(", ")
    ))
}

/// NUL-separated names, as bytes.
fn split_z(bytes: &[u8]) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(std::ffi::OsStr::from_bytes(s)))
        .collect()
}

/// Refuse a tracked symlink (`rel`, pointing to `target`) that points
/// outside the workspace: the snapshot must not hand a build the user's
/// other files.
pub fn check_link(rel: &Path, target: &Path) -> Result<()> {
    let mut inside = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut escapes = target.is_absolute();
    for c in target.components() {
        match c {
            std::path::Component::ParentDir => escapes |= !inside.pop(),
            std::path::Component::Normal(n) => inside.push(n),
            _ => {}
        }
    }
    if escapes {
        bail!(
            "the tracked symlink {} points outside the workspace ({}); xbuild does not give a build files from outside \
             the repository: replace the link by the file, or point it inside the workspace",
            rel.display(),
            target.display()
        );
    }
    Ok(())
}

/// Whether the repository `root` is in declares submodules (a
/// `.gitmodules` at its top): `git submodule status` costs a few tens of
/// milliseconds, a no-change run not much more.
fn has_submodules(root: &Path) -> bool {
    root.ancestors()
        .find(|d| d.join(".git").exists())
        .is_some_and(|top| top.join(".gitmodules").exists())
}

/// An uninitialized submodule that a manifest of the workspace points into
/// (a path dependency, a workspace member) is an error that says what to run.
fn check_submodules(root: &Path) -> Result<()> {
    let Ok(out) = git(root)
        .args(["submodule", "status", "--recursive"])
        .output()
    else {
        return Ok(()); // not fatal: ls-files already listed what is there
    };
    let uninitialized: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(PathBuf::from)
        .collect();
    if uninitialized.is_empty() {
        return Ok(());
    }
    for manifest in manifests(root) {
        let Ok(doc) = fs::read_to_string(&manifest).map(|t| t.parse::<toml::Table>()) else {
            continue;
        };
        let Ok(doc) = doc else { continue };
        let dir = manifest.parent().unwrap_or(root);
        let mut paths = Vec::new();
        collect_paths(&toml::Value::Table(doc), &mut paths);
        for p in paths {
            let wanted = normalize(&dir.join(p));
            for sub in &uninitialized {
                if wanted.starts_with(root.join(sub)) {
                    bail!(
                        "{} needs the git submodule {}, which is not initialized: run `git submodule update --init --recursive`",
                        manifest.strip_prefix(root).unwrap_or(&manifest).display(),
                        sub.display()
                    );
                }
            }
        }
    }
    Ok(())
}

/// The workspace's manifests that git tracks (outside submodules).
fn manifests(root: &Path) -> Vec<PathBuf> {
    git(root)
        .args(["ls-files", "-z", "--", "Cargo.toml", "*/Cargo.toml"])
        .output()
        .map(|o| {
            split_z(&o.stdout)
                .into_iter()
                .map(|p| root.join(p))
                .collect()
        })
        .unwrap_or_default()
}

/// Every `path = "..."` string and `members` entry in a manifest.
fn collect_paths(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match (k.as_str(), v) {
                    ("path", toml::Value::String(s)) => out.push(s.clone()),
                    ("members", toml::Value::Array(a)) => out.extend(
                        a.iter()
                            .filter_map(|m| m.as_str())
                            .map(|m| m.trim_end_matches("/*").to_string()),
                    ),
                    _ => collect_paths(v, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| collect_paths(v, out)),
        _ => {}
    }
}

/// `a/b/../c` → `a/c`, without touching the file system.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Without git: every file but what `.gitignore`/`.ignore` files name,
/// `target/` at the root and VCS directories.
fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let top_target = root.join("target");
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .require_git(false)
        .git_global(false)
        .git_exclude(false)
        .filter_entry(move |e| {
            let name = e.file_name();
            !(name == ".git" || name == ".hg" || name == ".svn" || e.path() == top_target)
        })
        .build();
    for entry in walker {
        let entry = entry.with_context(|| format!("listing the files of {}", root.display()))?;
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        if !is_dir && let Ok(rel) = entry.path().strip_prefix(root) {
            files.push(rel.to_path_buf());
        }
    }
    Ok(files)
}

/// `SOURCE_DATE_EPOCH`: the user's, else the last commit's time, else 1.
pub fn source_date_epoch(root: &Path) -> String {
    if let Some(v) = crate::env::var("SOURCE_DATE_EPOCH") {
        return v;
    }
    match git(root).args(["log", "-1", "--format=%ct"]).output() {
        Ok(o) => Some(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        // no git here: HEAD's commit, read by xbuild
        Err(e) if e.status.is_none() => super::gitread::Repo::find(root)
            .ok()
            .flatten()
            .and_then(|r| r.head_time().ok().flatten())
            .map(|t| t.to_string()),
        Err(_) => None,
    }
    .filter(|s| !s.is_empty())
    .unwrap_or_else(|| "1".to_string())
}

/// `git describe --tags --always --dirty` of the workspace.
pub fn git_describe(root: &Path) -> Result<String> {
    match git(root)
        .args(["describe", "--tags", "--always", "--dirty"])
        .output()
    {
        Ok(out) => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        Err(e) => bail!(
            "--git-version auto: `git describe` failed in {} (is git installed, and is this a git repository?): {}",
            root.display(),
            e.stderr.trim()
        ),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(crate::exit::code_of(&e), crate::exit::USAGE);
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
}
