//! The source snapshot: exactly what the repository holds, copied once per
//! run into the cache's temp area.
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
//! Every sealed build of the run copies from this snapshot, and the outputs
//! key is the digest of exactly these bytes (and link targets as text), so a
//! file edited while a build runs can neither reach a later target of the run
//! nor be cached under its new key.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::sources::source_files;
use crate::cache::{self, Cache};

pub struct Snapshot {
    _dir: tempfile::TempDir,
    /// The copy of the workspace root.
    pub root: PathBuf,
    /// The files in the snapshot, relative to `root`, sorted.
    pub files: Vec<PathBuf>,
    /// sha256 over every file's path and contents (or link target).
    pub digest: String,
}

impl Snapshot {
    /// Copy the workspace's source files out of `workspace_root`.
    pub fn take(cache: &Cache, workspace_root: &Path) -> Result<Snapshot> {
        let dir = cache.temp_dir("snapshot")?;
        let root = dir.path().join("src");
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let mut h = Sha256::new();
        let mut files = Vec::new();
        for rel in source_files(workspace_root)? {
            let from = workspace_root.join(&rel);
            let Ok(meta) = fs::symlink_metadata(&from) else {
                continue; // tracked but deleted in the working tree
            };
            let to = root.join(&rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            h.update(rel.as_os_str().as_encoded_bytes());
            h.update([0]);
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&from)
                    .with_context(|| format!("reading the link {}", from.display()))?;
                std::os::unix::fs::symlink(&target, &to)
                    .with_context(|| format!("linking {}", to.display()))?;
                h.update(b"link:");
                h.update(target.as_os_str().as_encoded_bytes());
            } else if meta.is_file() {
                fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
                // the digest of the copy: what is built is what is keyed
                h.update(cache::hash_file(&to)?);
            } else {
                continue;
            }
            h.update([0]);
            files.push(rel);
        }
        tracing::info!("snapshot of {} files in {}", files.len(), root.display());
        Ok(Snapshot {
            _dir: dir,
            root,
            files,
            digest: hex::encode(h.finalize()),
        })
    }

    /// Copy the snapshot into `dest` (a sealed build's source dir).
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        for rel in &self.files {
            let from = self.root.join(rel);
            let to = dest.join(rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let meta = fs::symlink_metadata(&from)
                .with_context(|| format!("reading {}", from.display()))?;
            if meta.file_type().is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from)?, &to)
                    .with_context(|| format!("linking {}", to.display()))?;
            } else {
                fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
            }
        }
        Ok(())
    }
}
