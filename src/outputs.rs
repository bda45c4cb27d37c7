//! Input-addressed outputs: verified executables kept in the cache under a
//! digest of everything that can change them, so that a build whose inputs
//! did not change publishes the cached files without running cargo.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::toolchain::cache::{self, Cache};
use crate::ui;
use crate::{depcache, seal};

/// One cached executable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub package: String,
    pub kind: String,
    pub sha256: String,
}

/// A digest of the workspace's source as a sealed build would see it: every
/// file's path and contents.
pub fn source_digest(root: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for rel in seal::source_files(root)? {
        let path = root.join(&rel);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        if meta.file_type().is_symlink() {
            h.update(b"link:");
            h.update(fs::read_link(&path)?.to_string_lossy().as_bytes());
        } else if meta.is_file() {
            h.update(cache::hash_file(&path)?);
        }
        h.update([0]);
    }
    Ok(hex::encode(h.finalize()))
}

/// How xbuild builds, as far as it can change the bytes of an output. Part
/// of every outputs and kept-dependencies key, next to xbuild's version: bump
/// it with any change that can change outputs (flags, environment, remaps), so
/// that no cache entry made by an earlier xbuild of the same version is reused.
/// 2: sealed builds with `CARGO_INCREMENTAL=0`.
pub const RECIPE: &str = "2";

/// The key of one target's outputs: `parts` are every other input (pins,
/// target, flags, profile, selection, git version, xbuild's version, ...).
pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    h.update([0]);
    h.update(RECIPE);
    for p in parts {
        h.update([0]);
        h.update(p);
    }
    hex::encode(h.finalize())[..32].to_string()
}

fn dir(cache: &Cache, key: &str) -> PathBuf {
    cache.root.join("v1/outputs").join(key)
}

const INDEX: &str = "outputs.json";

/// The cached outputs for `key`, each re-hashed; `None` on a miss. A corrupt
/// entry is removed (with a warning) and counts as a miss.
pub fn lookup(cache: &Cache, key: &str) -> Result<Option<(PathBuf, Vec<Entry>)>> {
    let d = dir(cache, key);
    let Ok(text) = fs::read(d.join(INDEX)) else {
        return Ok(None);
    };
    let entries: Vec<Entry> = match serde_json::from_slice(&text) {
        Ok(e) => e,
        Err(_) => {
            discard(&d, "its index is unreadable");
            return Ok(None);
        }
    };
    for e in &entries {
        let got = cache::hash_file(&d.join(&e.name)).unwrap_or_default();
        if got != e.sha256 {
            discard(&d, &format!("{} does not match its sha256", e.name));
            return Ok(None);
        }
    }
    Ok(Some((d, entries)))
}

fn discard(d: &Path, why: &str) {
    ui::warn(&format!(
        "the cached outputs in {} are corrupt ({why}); building again",
        d.display()
    ));
    let _ = fs::remove_dir_all(d);
}

/// Keep verified outputs under `key`: written into a temp dir next to the
/// entry and renamed into place (a concurrent writer of the same key wins
/// harmlessly: its files are the same).
pub fn store(cache: &Cache, key: &str, files: &[(Entry, PathBuf)]) -> Result<()> {
    let parent = cache.root.join("v1/outputs");
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&parent)
        .context("creating a temp dir for cached outputs")?;
    let mut entries = Vec::new();
    for (entry, path) in files {
        fs::copy(path, tmp.path().join(&entry.name))
            .with_context(|| format!("caching {}", path.display()))?;
        entries.push(entry.clone());
    }
    fs::write(tmp.path().join(INDEX), serde_json::to_vec_pretty(&entries)?)?;
    let dest = dir(cache, key);
    let staged = tmp.keep();
    if fs::rename(&staged, &dest).is_err() {
        // another process stored the same key first
        let _ = fs::remove_dir_all(&staged);
    }
    Ok(())
}

/// Every cached output set with its size, for `xbuild cache list`.
pub fn list(cache: &Cache) -> Vec<(String, u64, std::time::SystemTime)> {
    let parent = cache.root.join("v1/outputs");
    let mut out: Vec<_> = fs::read_dir(&parent)
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| {
                    let modified = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        cache::dir_size(&e.path()),
                        modified,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|(_, _, m)| std::cmp::Reverse(*m));
    out
}

/// Remove the least recently used output sets and kept dependency dirs
/// until together they fit in `max` bytes. A kept dir in use by a build is
/// skipped. Returns the bytes freed.
pub fn trim(cache: &Cache, max: u64) -> Result<u64> {
    enum Item {
        Outputs(String),
        Deps(String),
    }
    let mut items: Vec<(Item, u64, std::time::SystemTime)> = list(cache)
        .into_iter()
        .map(|(k, size, t)| (Item::Outputs(k), size, t))
        .chain(
            depcache::list(cache)
                .into_iter()
                .map(|l| (Item::Deps(l.key), l.size, l.last_used)),
        )
        .collect();
    items.sort_by_key(|(_, _, t)| *t);
    let mut total: u64 = items.iter().map(|(_, s, _)| s).sum();
    let mut freed = 0;
    for (item, size, _) in items {
        if total <= max {
            break;
        }
        let removed = match item {
            Item::Outputs(name) => {
                fs::remove_dir_all(cache.root.join("v1/outputs").join(&name))?;
                true
            }
            Item::Deps(key) => depcache::remove(cache, &key)?,
        };
        if removed {
            total -= size;
            freed += size;
        }
    }
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, bytes: &[u8], dir: &Path) -> (Entry, PathBuf) {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        (
            Entry {
                name: name.into(),
                package: "p".into(),
                kind: "bin".into(),
                sha256: cache::hash_file(&path).unwrap(),
            },
            path,
        )
    }

    #[test]
    fn keys_change_with_any_input() {
        let base = key(&["pins", "x86_64", "flags", "release", "src"]);
        assert_eq!(base, key(&["pins", "x86_64", "flags", "release", "src"]));
        assert_ne!(base, key(&["pins2", "x86_64", "flags", "release", "src"]));
        assert_ne!(base, key(&["pins", "x86_64", "flags", "debug", "src"]));
        assert_ne!(base, key(&["pins", "x86_64", "flags", "release", "src2"]));
        // parts are separated: moving a character between parts changes the key
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
    }

    #[test]
    fn store_lookup_and_corruption() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path().join("c")).unwrap();
        let files = tempfile::tempdir().unwrap();
        let a = entry("app", b"\x7fELF app", files.path());
        assert!(lookup(&cache, "k1").unwrap().is_none());
        store(&cache, "k1", std::slice::from_ref(&a)).unwrap();
        let (dir, entries) = lookup(&cache, "k1").unwrap().expect("a hit");
        assert_eq!(entries[0].sha256, a.0.sha256);
        fs::write(dir.join("app"), b"rotten").unwrap();
        assert!(
            lookup(&cache, "k1").unwrap().is_none(),
            "a corrupt entry is a miss"
        );
        assert!(!dir.exists(), "and is removed");
    }

    #[test]
    fn concurrent_writers_of_one_key_both_succeed() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path().join("c")).unwrap();
        let files = tempfile::tempdir().unwrap();
        let a = entry("app", b"same bytes", files.path());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| store(&cache, "k", std::slice::from_ref(&a)).unwrap());
            }
        });
        let (_, entries) = lookup(&cache, "k").unwrap().expect("a hit");
        assert_eq!(entries.len(), 1);
        let leftovers = fs::read_dir(cache.root.join("v1/outputs"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .count();
        assert_eq!(leftovers, 0);
    }
}
