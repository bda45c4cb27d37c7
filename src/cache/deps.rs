//! Kept dependencies: one cargo target dir per (workspace, rust and zig
//! pins, build or test, signer), kept in the cache between sealed builds, so
//! that a build after a one-file change compiles what plain cargo would and
//! no more. Every target builds in it: cargo keeps each target's units
//! under `<triple>/` and the host side (build scripts, proc macros and what
//! they use) once, so a run of several targets compiles it once.
//!
//! Cargo decides what is stale by comparing source mtimes with its own
//! records. A sealed snapshot is new every time, so xbuild gives its files
//! mtimes from content instead: a file whose sha256 is what the entry last
//! saw gets the mtime it had then; a new or changed file gets the time of
//! this checkout, newer than anything cargo recorded. The record is written
//! before cargo starts, so an interrupted build can only cause more
//! rebuilding, never less.
//!
//! An entry is used by one build at a time (an exclusive lock on its `lock`
//! file); a concurrent build of the same key builds from scratch in its own
//! sealed target dir instead of waiting.
//!
//! ```text
//! <cache>/v1/deps/<key>/lock           held while a build uses the entry
//! <cache>/v1/deps/<key>/about.json     workspace, mode, signer; its mtime is the last use
//! <cache>/v1/deps/<key>/sources.json   path -> sha256 and the mtime given
//! <cache>/v1/deps/<key>/target/        cargo's target dir, mounted at the sealed view's target/
//! <cache>/v1/deps/<key>/zig-cache/     zig's cache of these builds: copies of zig's runtime, and their C objects
//! ```
//!
//! Everything in an entry may have been written by the workspace's code
//! (build scripts, proc macros): an entry is used only by builds of the same
//! workspace, pins, mode and signer (see `keys::About`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::keys::About;
use super::mirror::Source;
use super::{self as cache, Cache};

const SOURCES: &str = "sources.json";
const ABOUT: &str = "about.json";

/// A source file's content and the mtime the snapshot gave it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    sha256: String,
    mtime_ns: u64,
}

fn root(cache: &Cache) -> PathBuf {
    cache.deps_root()
}

/// An entry in use by this process. Dropped, it records its size (for the
/// cache's bound) and lets the entry go.
pub struct Checkout {
    dir: PathBuf,
    cache: Cache,
    _lock: fs::File,
    /// The kept cargo target dir.
    pub target: PathBuf,
    /// The builds' own zig cache (see `pipeline::prewarm`).
    pub zig_cache: PathBuf,
}

/// Take the entry for `key`: `None` when another process is using it.
/// `fresh` empties its target dir first (`--rebuild`).
pub fn checkout(cache: &Cache, key: &str, about: &About, fresh: bool) -> Result<Option<Checkout>> {
    let dir = root(cache).join(key);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let Some(lock) = try_lock(&dir)? else {
        return Ok(None);
    };
    let (target, zig_cache) = (dir.join("target"), dir.join("zig-cache"));
    if fresh {
        let old = cache.temp_dir("deps-old")?;
        for d in [&target, &zig_cache] {
            if fs::symlink_metadata(d).is_ok() {
                let aside = old.path().join(d.file_name().unwrap_or_default());
                fs::rename(d, &aside).with_context(|| format!("moving {} aside", d.display()))?;
            }
        }
        drop(old);
        let _ = fs::remove_file(dir.join(SOURCES));
    }
    fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    // written every time: its mtime is the entry's last use
    cache::write_atomic(cache, &dir.join(ABOUT), &serde_json::to_vec_pretty(about)?)?;
    Ok(Some(Checkout {
        dir,
        cache: cache.clone(),
        _lock: lock,
        target,
        zig_cache,
    }))
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Err(e) = cache::record_size(&self.cache, &self.dir) {
            tracing::debug!("recording the size of {}: {e:#}", self.dir.display());
        }
    }
}

impl Checkout {
    /// The entry's directory (its records; the target dir is below it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sources the last build saw: path → sha256.
    pub fn sources(&self) -> BTreeMap<String, String> {
        fs::read(self.dir.join(SOURCES))
            .ok()
            .and_then(|b| serde_json::from_slice::<BTreeMap<String, Stamp>>(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.sha256))
            .collect()
    }

    /// After compiled units were restored into the target dir, every
    /// restored file given the time `at_ns`: record the sources they were
    /// built from (path → sha256) a second before it, so that the stamping
    /// gives those files that time and every other (changed) file a later
    /// one, later than `at_ns` too (an entry no file has carries it). A
    /// source the record already has with the same sha256 keeps its time:
    /// what was compiled here before (the host side, other targets) stays
    /// as fresh or stale as it was.
    pub fn restored(
        &self,
        cache: &Cache,
        sources: &BTreeMap<String, String>,
        at_ns: u64,
    ) -> Result<()> {
        let before = at_ns.saturating_sub(1_000_000_000);
        let old: BTreeMap<String, Stamp> = fs::read(self.dir.join(SOURCES))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut record: BTreeMap<String, Stamp> = sources
            .iter()
            .map(|(k, sha256)| {
                let stamp = match old.get(k) {
                    Some(s) if s.sha256 == *sha256 => s.clone(),
                    _ => Stamp {
                        sha256: sha256.clone(),
                        mtime_ns: before,
                    },
                };
                (k.clone(), stamp)
            })
            .collect();
        record.insert(
            String::new(),
            Stamp {
                sha256: String::new(),
                mtime_ns: at_ns,
            },
        );
        cache::write_atomic(
            cache,
            &self.dir.join(SOURCES),
            &serde_json::to_vec(&record)?,
        )
    }

    /// Give the snapshot's files (`files`, relative to `src`, with their
    /// digests) their mtimes by content, and record them. Returns how many
    /// files are new or changed. A file that has its mtime already (the
    /// workspace's mirror, stamped by the last build) is not touched.
    pub fn stamp(&self, cache: &Cache, src: &Path, files: &[Source]) -> Result<usize> {
        let record_path = self.dir.join(SOURCES);
        let old: BTreeMap<String, Stamp> = fs::read(&record_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        // strictly newer than every mtime given before, whatever the clock did
        let now = old.values().map(|s| s.mtime_ns + 1).fold(now, u64::max);
        let mut record = BTreeMap::new();
        let mut changed = 0;
        for file in files {
            let Some(sha256) = file.sha256() else {
                continue; // a link: cargo looks at its target's mtime
            };
            let path = src.join(&file.path);
            let name = file.path.to_string_lossy().into_owned();
            let stamp = match old.get(&name) {
                Some(s) if s.sha256 == sha256 => s.clone(),
                _ => {
                    changed += 1;
                    Stamp {
                        sha256: sha256.to_string(),
                        mtime_ns: now,
                    }
                }
            };
            let at = UNIX_EPOCH + Duration::from_nanos(stamp.mtime_ns);
            if fs::symlink_metadata(&path).and_then(|m| m.modified()).ok() != Some(at) {
                fs::File::open(&path)
                    .and_then(|f| f.set_modified(at))
                    .with_context(|| format!("setting the mtime of {}", path.display()))?;
            }
            record.insert(name, stamp);
        }
        cache::write_atomic(cache, &record_path, &serde_json::to_vec(&record)?)?;
        Ok(changed)
    }
}

/// A kept target dir, for `xbuild cache list` and `gc`.
pub struct Listed {
    pub entry: cache::Listed,
    pub about: Option<About>,
}

/// Every entry, most recently used first.
pub fn list(cache: &Cache) -> Vec<Listed> {
    cache::list_bucket(&root(cache), ABOUT)
        .into_iter()
        .map(|entry| Listed {
            about: fs::read(entry.dir.join(ABOUT))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
            entry,
        })
        .collect()
}

/// The entry's lock, held by this process; `None` when another one holds it.
fn try_lock(dir: &Path) -> Result<Option<fs::File>> {
    let path = dir.join("lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Whether an entry exists for `key`.
pub fn exists(cache: &Cache, key: &str) -> bool {
    root(cache).join(key).join("target").is_dir()
}

/// Remove an entry unless a build is using it; returns whether it was removed.
pub fn remove(cache: &Cache, key: &str) -> Result<bool> {
    let dir = root(cache).join(key);
    let Some(lock) = try_lock(&dir)? else {
        return Ok(false);
    };
    // out of sight first, so that no one takes the half-removed entry
    let trash = cache.temp_dir("deps-trash")?;
    fs::rename(&dir, trash.path().join(key))
        .with_context(|| format!("moving {} aside", dir.display()))?;
    drop(lock);
    drop(trash);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about() -> About {
        About {
            workspace: "/w".into(),
            mode: "build".into(),
            signer: crate::cache::keys::UNSIGNED.into(),
        }
    }

    fn mtime(p: &Path) -> SystemTime {
        fs::metadata(p).unwrap().modified().unwrap()
    }

    /// A new snapshot of the same files, as each sealed build makes, and
    /// its sources with their digests.
    fn snapshot(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<Source>) {
        let d = tempfile::tempdir().unwrap();
        let mut sources = Vec::new();
        for (name, text) in files {
            fs::write(d.path().join(name), text).unwrap();
            sources.push(Source {
                path: name.into(),
                content: super::super::mirror::Content::File(cache::hash_bytes(text.as_bytes())),
            });
        }
        (d, sources)
    }

    #[test]
    fn unchanged_files_keep_their_mtime_and_changed_ones_get_a_newer_one() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path().join("c")).unwrap();
        let c = checkout(&cache, "k", &about(), false).unwrap().unwrap();
        let (one, files) = snapshot(&[("a.rs", "a1"), ("b.rs", "b1")]);
        assert_eq!(c.stamp(&cache, one.path(), &files).unwrap(), 2);
        let (a1, b1) = (
            mtime(&one.path().join("a.rs")),
            mtime(&one.path().join("b.rs")),
        );
        drop(c);

        let c = checkout(&cache, "k", &about(), false).unwrap().unwrap();
        let (two, files) = snapshot(&[("a.rs", "a1"), ("b.rs", "b2")]);
        assert_eq!(c.stamp(&cache, two.path(), &files).unwrap(), 1);
        assert_eq!(
            mtime(&two.path().join("a.rs")),
            a1,
            "unchanged: the old mtime"
        );
        let b2 = mtime(&two.path().join("b.rs"));
        assert!(b2 > b1, "changed: newer than before");
        drop(c);

        // back to the first content: a change again, not the old mtime
        let c = checkout(&cache, "k", &about(), false).unwrap().unwrap();
        let (three, files) = snapshot(&[("a.rs", "a1"), ("b.rs", "b1")]);
        assert_eq!(c.stamp(&cache, three.path(), &files).unwrap(), 1);
        assert!(mtime(&three.path().join("b.rs")) > b2);
    }

    #[test]
    fn restored_units_keep_the_times_of_sources_compiled_here_before() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path().join("c")).unwrap();
        let c = checkout(&cache, "k", &about(), false).unwrap().unwrap();
        let (one, files) = snapshot(&[("a.rs", "a1"), ("b.rs", "b1")]);
        c.stamp(&cache, one.path(), &files).unwrap();
        let a1 = mtime(&one.path().join("a.rs"));
        // another target's units restored: they saw a.rs as it is and b.rs
        // otherwise
        let entry: BTreeMap<String, String> = [
            ("a.rs".to_string(), cache::hash_bytes(b"a1")),
            ("b.rs".to_string(), cache::hash_bytes(b"b0")),
        ]
        .into();
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        c.restored(&cache, &entry, at).unwrap();
        let (two, files) = snapshot(&[("a.rs", "a1"), ("b.rs", "b1")]);
        assert_eq!(c.stamp(&cache, two.path(), &files).unwrap(), 1);
        assert_eq!(
            mtime(&two.path().join("a.rs")),
            a1,
            "what was compiled here stays fresh"
        );
        let b = mtime(&two.path().join("b.rs"));
        assert!(
            b > UNIX_EPOCH + Duration::from_nanos(at),
            "a file the units did not see is newer than they are"
        );
    }

    #[test]
    fn an_entry_in_use_is_not_handed_out_or_removed() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path().join("c")).unwrap();
        let held = checkout(&cache, "k", &about(), false).unwrap().unwrap();
        fs::write(held.target.join("dep.rlib"), b"compiled").unwrap();
        assert!(checkout(&cache, "k", &about(), false).unwrap().is_none());
        assert!(!remove(&cache, "k").unwrap());
        assert!(held.target.join("dep.rlib").is_file());
        drop(held);

        let listed = list(&cache);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].about.as_ref(), Some(&about()));
        assert!(listed[0].entry.size >= 8);

        // --rebuild: the same entry, emptied
        let fresh = checkout(&cache, "k", &about(), true).unwrap().unwrap();
        assert!(!fresh.target.join("dep.rlib").exists());
        drop(fresh);
        assert!(remove(&cache, "k").unwrap());
        assert!(list(&cache).is_empty());
    }
}
