//! Keeping the cache in bounds: `cache gc`'s trim of kept dirs and cached
//! outputs, `toolchain gc`'s removal of the shims no running xbuild uses and
//! of the buckets of earlier recipes.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{Cache, deps, dir_size, exe_id, human_size, outputs, own_exe_id};

/// The shims bucket names of every executable a process runs now, of those
/// processes whose executable this user may look at (its own, or all for root).
fn running_exe_ids() -> std::collections::BTreeSet<String> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Default::default();
    };
    procs
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| fs::metadata(e.path().join("exe")).ok())
        .map(|m| exe_id(&m))
        .collect()
}

/// How long a shims bucket nobody runs is kept after it last changed.
pub(super) const SHIMS_GRACE: Duration = Duration::from_secs(600);

/// Remove the shims buckets of xbuild executables no process runs any more.
/// Each bucket holds one xbuild (a hard link or a copy) and its wrappers, so
/// every upgrade leaves one behind. A bucket whose executable still runs (a
/// build started before the upgrade) is kept, so is one changed in the last
/// ten minutes (a build may be starting), and every bucket when the running
/// processes cannot be listed. Returns how many buckets went
/// and the bytes freed (files that had no other link). Call with the lock held.
pub fn gc_shims(cache: &Cache) -> Result<(usize, u64)> {
    use std::os::unix::fs::MetadataExt;
    let root = cache.v1().join("shims");
    let Ok(buckets) = fs::read_dir(&root) else {
        return Ok((0, 0));
    };
    let running = running_exe_ids();
    if !running.contains(own_exe_id()) {
        tracing::warn!(
            "cannot tell which xbuild executables run (no /proc?); keeping every shims bucket"
        );
        return Ok((0, 0));
    }
    let (mut removed, mut freed) = (0, 0);
    for bucket in buckets.flatten() {
        let name = bucket.file_name().to_string_lossy().into_owned();
        let fresh = bucket
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < SHIMS_GRACE));
        if fresh || running.contains(&name) {
            continue;
        }
        let size: u64 = fs::read_dir(bucket.path())
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.path().symlink_metadata().ok())
                    .filter(|m| m.is_file() && m.nlink() == 1)
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        fs::remove_dir_all(bucket.path())
            .with_context(|| format!("removing {}", bucket.path().display()))?;
        removed += 1;
        freed += size;
    }
    Ok((removed, freed))
}

/// Buckets no xbuild of this version reads (zig's caches of earlier
/// recipes), removed by `toolchain gc`.
pub const RETIRED: &[&str] = &["zig", "zig2"];

/// Remove the [`RETIRED`] buckets; returns the bytes freed.
pub fn remove_retired(cache: &Cache) -> Result<u64> {
    let mut freed = 0;
    for name in RETIRED {
        let path = cache.v1().join(name);
        if path.is_dir() {
            let size = dir_size(&path);
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
            crate::ui::status(
                "Removed",
                &format!(
                    "{name}, zig's cache of an earlier xbuild ({})",
                    human_size(size)
                ),
            );
            freed += size;
        }
    }
    Ok(freed)
}

/// Trim the kept dependency dirs and cached output sets, least recently used
/// first, until together they fit in `max` bytes. A kept dir in use by a
/// build is skipped. Returns the bytes freed.
pub fn trim(cache: &Cache, max: u64) -> Result<u64> {
    enum Item {
        Outputs(String),
        Deps(String),
    }
    let mut items: Vec<(Item, u64, std::time::SystemTime)> = outputs::list(cache)
        .into_iter()
        .map(|l| (Item::Outputs(l.key), l.size, l.last_used))
        .chain(
            deps::list(cache)
                .into_iter()
                .map(|l| (Item::Deps(l.entry.key), l.entry.size, l.entry.last_used)),
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
            Item::Outputs(key) => outputs::remove(cache, &key)?,
            Item::Deps(key) => deps::remove(cache, &key)?,
        };
        if removed {
            total -= size;
            freed += size;
        }
    }
    Ok(freed)
}
