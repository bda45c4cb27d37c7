//! The source snapshot: exactly what the repository holds, as of the start
//! of the run.
//!
//! - In a git repository: the files git tracks, with their working-tree
//!   contents, and those of initialized submodules, recursively. An
//!   uninitialized submodule the workspace's manifests point into is an
//!   error that says `git submodule update --init`.
//! - Not in a git repository ("not a git repository" is the only git answer
//!   that leads here): every file, minus what `.gitignore`/`.ignore` files
//!   name, `target/` and VCS directories (ripgrep's `ignore` crate).
//! - Any other git failure (dubious ownership, a damaged repository, git
//!   missing in a repository) is an error with git's own message: the
//!   snapshot never silently becomes "every file".
//! - A tracked symlink is reproduced as a symlink, never followed; one that
//!   points outside the workspace is refused. File names are bytes end to end.
//!
//! The snapshot is the workspace's kept mirror (`cache::mirror`), brought up
//! to date by copying only the files whose stat changed, and held by this
//! run: sandboxed builds mount it read-only as their sources, so nothing is
//! copied per build. When another run holds the mirror, the files are copied
//! into a temp dir instead. Either way the outputs key is the digest of
//! exactly these bytes (and link targets as text), so a file edited while a
//! build runs can neither reach a later target of the run nor be cached
//! under its new key.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::sources::{check_link, source_files};
use crate::cache::mirror::{Content, Mirror, Source};
use crate::cache::{self, Cache};

pub struct Snapshot {
    _hold: Hold,
    /// The copy of the workspace root.
    pub root: PathBuf,
    /// The files in the snapshot, relative to `root`, sorted, with their
    /// digests.
    pub files: Vec<Source>,
    /// sha256 over every file's path and contents (or link target).
    pub digest: String,
}

/// What keeps the copy: the workspace's mirror (locked), or a temp dir.
enum Hold {
    Mirror { _lease: Mirror },
    Temp { _dir: tempfile::TempDir },
}

impl Snapshot {
    /// The workspace's source files as of now, out of `workspace_root`.
    pub fn take(cache: &Cache, workspace_root: &Path) -> Result<Snapshot> {
        let snapshot = match Mirror::open(cache, workspace_root)? {
            Some(mirror) => {
                // the index read and every file it names stat'ed while git
                // lists the files
                let (files, scan) = std::thread::scope(|s| {
                    let files = s.spawn(|| source_files(workspace_root));
                    let scan = mirror.scan(workspace_root);
                    (files.join(), scan)
                });
                let files = files.map_err(|_| anyhow::anyhow!("listing the files panicked"))??;
                let (sources, updated) = mirror.update(cache, workspace_root, files, scan)?;
                tracing::info!(
                    "snapshot of {} files in {} ({} copied, {} removed)",
                    sources.len(),
                    mirror.src.display(),
                    updated.copied,
                    updated.removed
                );
                Snapshot {
                    root: mirror.src.clone(),
                    digest: digest_of(&sources),
                    files: sources,
                    _hold: Hold::Mirror { _lease: mirror },
                }
            }
            None => {
                let files = source_files(workspace_root)?;
                tracing::info!(
                    "another run holds the kept copy of {}: copying its files",
                    workspace_root.display()
                );
                let dir = cache.temp_dir("snapshot")?;
                let root = dir.path().join("src");
                let sources = copy_files(workspace_root, &files, &root)?;
                tracing::info!("snapshot of {} files in {}", sources.len(), root.display());
                Snapshot {
                    root,
                    digest: digest_of(&sources),
                    files: sources,
                    _hold: Hold::Temp { _dir: dir },
                }
            }
        };
        for s in &snapshot.files {
            if let Content::Link(target) = &s.content {
                check_link(&s.path, target)?;
            }
        }
        Ok(snapshot)
    }

    /// Whether the snapshot stays as it is while this run lives (the
    /// workspace's mirror, held by this run): builds may mount it instead
    /// of copying it.
    pub fn is_kept(&self) -> bool {
        matches!(self._hold, Hold::Mirror { .. })
    }

    /// The snapshot's file names.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|s| s.path.as_path())
    }

    /// Copy the snapshot into `dest` (a sealed build's source dir).
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        let paths: Vec<PathBuf> = self.paths().map(Path::to_path_buf).collect();
        copy_files(&self.root, &paths, dest).map(drop)
    }
}

/// sha256 over every file's path and the digest of its bytes (or its link
/// target), in order.
fn digest_of(sources: &[Source]) -> String {
    let mut h = Sha256::new();
    for s in sources {
        h.update(s.path.as_os_str().as_encoded_bytes());
        h.update([0]);
        match &s.content {
            Content::Link(target) => {
                h.update(b"link:");
                h.update(target.as_os_str().as_encoded_bytes());
            }
            Content::File(sha256) => h.update(sha256),
        }
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Copy `files` (relative to `from`) to `to`, links as links; a listed file
/// missing in `from` is left out. Returns what was copied, hashed from the
/// copies.
pub(super) fn copy_files(from: &Path, files: &[PathBuf], to: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::with_capacity(files.len());
    for rel in files {
        let src = from.join(rel);
        let Ok(meta) = fs::symlink_metadata(&src) else {
            continue; // tracked but deleted in the working tree
        };
        let dst = to.join(rel);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let content = if meta.file_type().is_symlink() {
            let target = fs::read_link(&src)
                .with_context(|| format!("reading the link {}", src.display()))?;
            std::os::unix::fs::symlink(&target, &dst)
                .with_context(|| format!("linking {}", dst.display()))?;
            Content::Link(target)
        } else if meta.is_file() {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
            // the digest of the copy: what is built is what is keyed
            Content::File(cache::hash_file(&dst)?)
        } else {
            continue;
        };
        out.push(Source {
            path: rel.clone(),
            content,
        });
    }
    Ok(out)
}
