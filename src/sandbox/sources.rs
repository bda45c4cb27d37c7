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
#[path = "sources_tests.rs"]
mod tests;
