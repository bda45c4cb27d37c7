//! The kept mirror of a workspace's sources, and the stat index that says
//! which of its files are still what the working tree holds.
//!
//! A run must know the digest of exactly the files it builds before it can
//! look up its outputs. Copying every tracked file to learn it makes a
//! no-change run cost as much as the repository is large. Instead each
//! workspace has one mirror in the cache: a copy of its tracked files, and an
//! index (path → size, mtime and ctime in ns, inode, device, mode, and the
//! sha256 of the mirror's copy), as git's index does. A file whose stat is
//! what the index recorded is not read again; a file whose stat changed is
//! copied into the mirror and its *copy* hashed, so the digest is always of
//! the bytes that are built. A file changed within [`RACY_NS`] of the
//! moment the index was taken may have been changed again in the same
//! timestamp tick without a visible stat change ("racily clean", as git calls
//! it): it is copied and hashed again the next time.
//!
//! One run holds a mirror at a time (an exclusive lock, for the whole run):
//! sealed builds mount it read-only as their sources, so nothing changes it
//! while a build reads it. A second run of the same workspace copies its
//! sources into a temp dir instead, as every run did before.
//!
//! Crash safety: the index is removed before the mirror changes and written
//! (through a rename) after, so a mirror without an index is never trusted:
//! it is emptied and filled again.
//!
//! ```text
//! <cache>/v1/mirrors/<key>/lock         held by the run using it
//! <cache>/v1/mirrors/<key>/about.json   the workspace; its mtime is the last use
//! <cache>/v1/mirrors/<key>/index        the stat index (see `Index`)
//! <cache>/v1/mirrors/<key>/src/         the copy of the tracked files
//! ```

mod index;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

pub use self::index::{Content, Source, Stat};
use self::index::{Entry, Index, stat_all, stat_of, still_valid};
use super::{Cache, hash_file, write_atomic};

const INDEX: &str = "index";
const ABOUT: &str = "about.json";

/// A workspace's mirror, held (locked) by this run.
pub struct Mirror {
    dir: PathBuf,
    _lock: fs::File,
    /// The copy of the tracked files: what builds read.
    pub src: PathBuf,
}

/// What [`Mirror::update`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Updated {
    /// Files copied (new, changed, or racily clean).
    pub copied: usize,
    /// Files no longer tracked, removed from the mirror.
    pub removed: usize,
}

/// The index and the current stat of every file it names: the part of an
/// update that needs no file list (see [`Mirror::scan`]).
pub struct Scan {
    taken_ns: i64,
    index: Option<Index>,
    /// Per index entry, the file's stat now (`None`: gone).
    now: Vec<Option<Stat>>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i64
}

impl Mirror {
    /// The mirror of `workspace` (an absolute path), locked for this run;
    /// `None` when another run holds it.
    pub fn open(cache: &Cache, workspace: &Path) -> Result<Option<Mirror>> {
        let key = super::keys::mirror(workspace);
        let dir = cache.mirrors_root().join(key);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // a copy of the workspace: as private as a temp dir, whatever the
        // workspace's own directory lets other users read
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", dir.display()))?;
        let lock = super::lock_file(&dir.join("lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", dir.join("lock").display()));
            }
        }
        let about = dir.join(ABOUT);
        if !about.exists() {
            let text = serde_json::json!({ "workspace": workspace.display().to_string() });
            write_atomic(cache, &about, &serde_json::to_vec_pretty(&text)?)?;
        }
        // its mtime is the mirror's last use
        fs::File::options()
            .write(true)
            .open(&about)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .with_context(|| format!("touching {}", about.display()))?;
        Ok(Some(Mirror {
            src: dir.join("src"),
            dir,
            _lock: lock,
        }))
    }

    /// Read the index and `lstat` every file it names in `workspace`, on
    /// a few threads: run while git lists the files.
    pub fn scan(&self, workspace: &Path) -> Scan {
        let taken_ns = now_ns();
        let bytes = fs::read(self.dir.join(INDEX)).unwrap_or_default();
        let parsed = Index::segments(&bytes).and_then(|(taken, segments)| {
            // each segment parsed and its files stat'ed on a thread of its own
            let parts = std::thread::scope(|s| {
                let threads: Vec<_> = segments
                    .into_iter()
                    .map(|seg| {
                        s.spawn(move || {
                            let entries = Index::parse(seg)?;
                            let now = stat_all(workspace, entries.iter().map(|(p, _)| p.as_path()));
                            Some((entries, now))
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .map(|t| t.join().ok().flatten())
                    .collect::<Option<Vec<_>>>()
            })?;
            let (mut entries, mut now) = (Vec::new(), Vec::new());
            for (e, n) in parts {
                entries.extend(e);
                now.extend(n);
            }
            Some((
                Index {
                    taken_ns: taken,
                    entries,
                },
                now,
            ))
        });
        let (index, now) = match parsed {
            Some((index, now)) => (Some(index), now),
            None => (None, Vec::new()),
        };
        Scan {
            taken_ns,
            index,
            now,
        }
    }

    /// Bring the mirror up to date with `files` (relative to `workspace`,
    /// sorted; a listed file missing from the working tree is left out, as
    /// is anything but a file or a link), from `scan`, taken before the
    /// files were listed. Returns the sources, in order.
    pub fn update(
        &self,
        cache: &Cache,
        workspace: &Path,
        files: Vec<PathBuf>,
        scan: Scan,
    ) -> Result<(Vec<Source>, Updated)> {
        let Scan {
            taken_ns,
            index,
            now,
        } = scan;
        let mut old = match index {
            Some(index) => index,
            None => {
                // no index (new, or interrupted while changing): start empty
                self.empty(cache)?;
                Index::default()
            }
        };
        let mut sources = Vec::with_capacity(files.len());
        let mut stats = Vec::with_capacity(files.len());
        let mut stale = Vec::new();
        let mut listed = vec![false; old.entries.len()];
        let mut j = 0;
        for rel in files {
            while j < old.entries.len() && old.entries[j].0 < rel {
                j += 1;
            }
            let known = (j < old.entries.len() && old.entries[j].0 == rel).then_some(j);
            let current = match known {
                Some(j) => now.get(j).copied().flatten(),
                None => stat_of(&workspace.join(&rel)),
            };
            let Some(stat) = current else {
                continue; // tracked but deleted in the working tree
            };
            let content = match known {
                Some(j) => {
                    listed[j] = true;
                    let e = &mut old.entries[j].1;
                    still_valid(&e.stat, old.taken_ns, &stat)
                        .then(|| std::mem::replace(&mut e.content, Content::File(String::new())))
                }
                None => None,
            };
            let content = content.unwrap_or_else(|| {
                stale.push(sources.len());
                Content::File(String::new())
            });
            sources.push(Source { path: rel, content });
            stats.push(stat);
        }
        let gone: Vec<&Path> = old
            .entries
            .iter()
            .zip(&listed)
            .filter(|(_, listed)| !**listed)
            .map(|((p, _), _)| p.as_path())
            .collect();
        let updated = Updated {
            copied: stale.len(),
            removed: gone.len(),
        };
        let index_path = self.dir.join(INDEX);
        if stale.is_empty() && gone.is_empty() && old.taken_ns != 0 {
            return Ok((sources, updated));
        }
        // changing: the mirror is not trusted until the new index is written
        match fs::remove_file(&index_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", index_path.display())),
        }
        for rel in gone {
            self.remove(rel)?;
        }
        let incoming = self.dir.join("incoming");
        for &i in &stale {
            let rel = &sources[i].path;
            let from = workspace.join(rel);
            let to = self.src.join(rel);
            self.make_parent(rel)?;
            let _ = fs::remove_file(&incoming);
            let content = if stats[i].mode & libc::S_IFMT == libc::S_IFLNK {
                let target = fs::read_link(&from)
                    .with_context(|| format!("reading the link {}", from.display()))?;
                std::os::unix::fs::symlink(&target, &incoming)
                    .with_context(|| format!("linking {}", incoming.display()))?;
                Content::Link(target)
            } else {
                fs::copy(&from, &incoming)
                    .with_context(|| format!("copying {}", from.display()))?;
                // the digest of the copy: what is built is what is keyed
                Content::File(hash_file(&incoming)?)
            };
            if fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(&to).with_context(|| format!("removing {}", to.display()))?;
            }
            fs::rename(&incoming, &to)
                .with_context(|| format!("renaming into {}", to.display()))?;
            sources[i].content = content;
        }
        let index = Index {
            taken_ns,
            entries: sources
                .iter()
                .zip(stats)
                .map(|(s, stat)| {
                    let content = s.content.clone();
                    (s.path.clone(), Entry { stat, content })
                })
                .collect(),
        };
        let encoded = index.encode();
        let size =
            index.entries.iter().map(|(_, e)| e.stat.size).sum::<u64>() + encoded.len() as u64;
        write_atomic(cache, &index_path, &encoded)?;
        write_atomic(
            cache,
            &self.dir.join(super::SIZE),
            size.to_string().as_bytes(),
        )?;
        Ok((sources, updated))
    }

    /// Remove everything in the mirror (it is filled again from nothing).
    fn empty(&self, cache: &Cache) -> Result<()> {
        if fs::symlink_metadata(&self.src).is_ok() {
            let trash = cache.temp_dir("mirror-old")?;
            fs::rename(&self.src, trash.path().join("src"))
                .with_context(|| format!("moving {} aside", self.src.display()))?;
        }
        fs::create_dir_all(&self.src).with_context(|| format!("creating {}", self.src.display()))
    }

    /// Remove `rel` from the mirror, and the directories it leaves empty.
    fn remove(&self, rel: &Path) -> Result<()> {
        let path = self.src.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(_) => Ok(()),
        }
        .with_context(|| format!("removing {}", path.display()))?;
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.src || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    /// Make `rel`'s parent directories in the mirror, replacing a file or a
    /// link that stands where a directory must be (never following one).
    fn make_parent(&self, rel: &Path) -> Result<()> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut at = self.src.clone();
        for c in parent.components() {
            let std::path::Component::Normal(name) = c else {
                bail!("unexpected path {} in the workspace's files", rel.display());
            };
            at.push(name);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    fs::remove_file(&at).with_context(|| format!("removing {}", at.display()))?
                }
                Err(_) => {}
            }
            fs::create_dir(&at).with_context(|| format!("creating {}", at.display()))?;
        }
        Ok(())
    }
}

/// A mirror, for `xbuild cache list` and the trim.
pub fn list(cache: &Cache) -> Vec<super::Listed> {
    super::list_bucket(&cache.mirrors_root(), ABOUT)
}

/// Remove a mirror unless a run holds it; returns whether it was removed.
pub fn remove(cache: &Cache, key: &str) -> Result<bool> {
    let dir = cache.mirrors_root().join(key);
    let lock = super::lock_file(&dir.join("lock"))?;
    if lock.try_lock().is_err() {
        return Ok(false);
    }
    let trash = cache.temp_dir("mirror-trash")?;
    fs::rename(&dir, trash.path().join(key))
        .with_context(|| format!("moving {} aside", dir.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(
        m: &Mirror,
        cache: &Cache,
        ws: &Path,
        files: &[PathBuf],
    ) -> Result<(Vec<Source>, Updated)> {
        m.update(cache, ws, files.to_vec(), m.scan(ws))
    }

    fn setup() -> (tempfile::TempDir, Cache, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path().join("cache")).unwrap();
        let ws = root.path().join("ws");
        fs::create_dir_all(ws.join("d")).unwrap();
        (root, cache, ws)
    }

    /// Back-date a file's mtime, so its entry is not racily clean.
    fn age(path: &Path) {
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    #[test]
    fn only_files_whose_stat_changed_are_copied_and_the_index_survives_nothing_half_done() {
        let (_root, cache, ws) = setup();
        let files: Vec<PathBuf> = vec!["a.rs".into(), "d/b.rs".into()];
        fs::write(ws.join("a.rs"), "one").unwrap();
        fs::write(ws.join("d/b.rs"), "two").unwrap();
        let m = Mirror::open(&cache, &ws).unwrap().unwrap();
        let (s1, u) = up(&m, &cache, &ws, &files).unwrap();
        assert_eq!(u.copied, 2);
        assert_eq!(
            s1[0].sha256(),
            Some(super::super::hash_bytes(b"one").as_str())
        );
        // just written: racily clean, so copied again
        let (_, u) = up(&m, &cache, &ws, &files).unwrap();
        assert_eq!(u.copied, 2);
        age(&ws.join("a.rs"));
        age(&ws.join("d/b.rs"));
        up(&m, &cache, &ws, &files).unwrap();
        // the index was taken after the change: nothing is read again, now
        // rewrite the index as if it had been taken an hour later
        let idx = m.dir.join(INDEX);
        let bytes = fs::read(&idx).unwrap();
        let (taken_ns, segments) = Index::segments(&bytes).unwrap();
        let entries = segments
            .into_iter()
            .flat_map(|s| Index::parse(s).unwrap())
            .collect();
        let mut index = Index { taken_ns, entries };
        index.taken_ns += 3_600_000_000_000;
        fs::write(&idx, index.encode()).unwrap();
        let (s2, u) = up(&m, &cache, &ws, &files).unwrap();
        assert_eq!(u, Updated::default());
        assert_eq!(s1, s2);
        // an edit changes the stat: only that file is copied
        fs::write(ws.join("d/b.rs"), "three").unwrap();
        let (s3, u) = up(&m, &cache, &ws, &files).unwrap();
        assert_eq!(
            u,
            Updated {
                copied: 1,
                removed: 0
            }
        );
        assert_eq!(fs::read_to_string(m.src.join("d/b.rs")).unwrap(), "three");
        assert_ne!(s3[1], s2[1]);
        // untracked: removed, with its empty directory
        let (s4, u) = up(&m, &cache, &ws, &files[..1]).unwrap();
        assert_eq!(u.removed, 1);
        assert_eq!(s4.len(), 1);
        assert!(!m.src.join("d").exists());
        // a lost index (a run interrupted while changing) empties the mirror
        fs::write(m.src.join("stray.rs"), "junk").unwrap();
        fs::remove_file(&idx).unwrap();
        let (_, u) = up(&m, &cache, &ws, &files[..1]).unwrap();
        assert_eq!(u.copied, 1);
        assert!(!m.src.join("stray.rs").exists());
    }

    #[test]
    fn a_racily_clean_edit_of_the_same_size_in_the_same_tick_is_seen() {
        let (_root, cache, ws) = setup();
        let files: Vec<PathBuf> = vec!["a.rs".into()];
        let f = ws.join("a.rs");
        fs::write(&f, "one").unwrap();
        let m = Mirror::open(&cache, &ws).unwrap().unwrap();
        up(&m, &cache, &ws, &files).unwrap();
        // the same size, and the old mtime put back: only the ctime could
        // tell, and on a coarse clock it may not
        let before = fs::metadata(&f).unwrap().modified().unwrap();
        fs::write(&f, "two").unwrap();
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(before)
            .unwrap();
        let (s, _) = up(&m, &cache, &ws, &files).unwrap();
        assert_eq!(
            s[0].sha256(),
            Some(super::super::hash_bytes(b"two").as_str())
        );
        assert_eq!(fs::read_to_string(m.src.join("a.rs")).unwrap(), "two");
    }

    #[test]
    fn a_mirror_is_held_by_one_run_and_kinds_can_swap() {
        let (_root, cache, ws) = setup();
        let m = Mirror::open(&cache, &ws).unwrap().unwrap();
        assert!(Mirror::open(&cache, &ws).unwrap().is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&m.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "other users cannot read the copy");
        // a file becomes a directory, a link becomes a file
        fs::write(ws.join("x"), "file").unwrap();
        std::os::unix::fs::symlink("x", ws.join("l")).unwrap();
        up(&m, &cache, &ws, &["l".into(), "x".into()]).unwrap();
        assert_eq!(fs::read_link(m.src.join("l")).unwrap(), Path::new("x"));
        fs::remove_file(ws.join("x")).unwrap();
        fs::remove_file(ws.join("l")).unwrap();
        fs::create_dir(ws.join("x")).unwrap();
        fs::write(ws.join("x/in.rs"), "inside").unwrap();
        fs::write(ws.join("l"), "now a file").unwrap();
        let (s, _) = up(&m, &cache, &ws, &["l".into(), "x/in.rs".into()]).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(fs::read_to_string(m.src.join("x/in.rs")).unwrap(), "inside");
        assert_eq!(fs::read_to_string(m.src.join("l")).unwrap(), "now a file");
        drop(m);
        assert!(Mirror::open(&cache, &ws).unwrap().is_some());
    }
}
