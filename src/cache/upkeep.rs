//! Keeping the cache in bounds: `cache gc`'s trim of kept dirs and cached
//! outputs, `toolchain gc`'s removal of the shims no running xbuild uses and
//! of the buckets of earlier recipes.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{Cache, deps, dir_size, exe_id, human_size, mirror, outputs, own_exe_id, write_atomic};

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

/// `500M`, `2G`, `1024`: a size in bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size like 500M, 2G or 1024"))
}

/// The file in a bucket's entry that records its size when its last user
/// let it go (walking a kept dir of a big workspace takes seconds).
pub const SIZE: &str = "size";

/// The size an entry recorded ([`SIZE`]).
pub(super) fn recorded_size(entry: &Path) -> Option<u64> {
    fs::read_to_string(entry.join(SIZE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Record `entry`'s size (walked now) for listing it later.
pub fn record_size(cache: &Cache, entry: &Path) -> Result<()> {
    let _ = fs::remove_file(entry.join(SIZE));
    write_atomic(
        cache,
        &entry.join(SIZE),
        dir_size(entry).to_string().as_bytes(),
    )
}

/// What grows with use, and [`trim`] removes: kept dependency dirs, cached
/// output sets and source mirrors.
pub const GROWING: &str = "kept dependencies, cached outputs and source mirrors";

/// The bound on [`GROWING`] when nothing sets one: room for a few large
/// workspaces on several targets, on a laptop's disk.
pub const DEFAULT_MAX: u64 = 20 << 30;

/// The cache's settings file (`max-size = "20G"` or `"none"`).
pub const CONFIG: &str = "config.toml";

/// An output set used this recently is not trimmed: another run may be
/// copying it (kept dirs and mirrors are locked while used instead).
const OUTPUTS_GRACE: Duration = Duration::from_secs(300);

/// The bound on [`GROWING`], and what set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// `None`: no bound.
    pub bytes: Option<u64>,
    /// `XBUILD_CACHE_MAX`, the config file, or the default.
    pub from: String,
}

impl Limit {
    pub fn describe(&self) -> String {
        let size = self.bytes.map_or_else(|| "none".to_string(), human_size);
        format!("{size} on {GROWING} ({})", self.from)
    }
}

/// Like `500M`, `2G`, `1024` (bytes), or `none`.
fn parse_limit(text: &str) -> Result<Option<u64>, String> {
    match text.trim() {
        "none" | "off" => Ok(None),
        s => super::parse_size(s).map(Some),
    }
}

/// The bound: `XBUILD_CACHE_MAX`, else `max-size` in the cache's
/// `config.toml`, else [`DEFAULT_MAX`]. A bad value is an error that names
/// where it is.
pub fn limit(cache: &Cache) -> Result<Limit> {
    if let Some(v) = crate::env::var(crate::env::XBUILD_CACHE_MAX) {
        let bytes = parse_limit(&v)
            .map_err(|e| crate::exit::Usage(format!("{}: {e}", crate::env::XBUILD_CACHE_MAX)))?;
        return Ok(Limit {
            bytes,
            from: crate::env::XBUILD_CACHE_MAX.to_string(),
        });
    }
    let file = cache.root.join(CONFIG);
    if let Ok(text) = fs::read_to_string(&file) {
        let table: toml::Table = text.parse().map_err(|e| {
            crate::exit::Usage(format!("{} is not valid TOML: {e}", file.display()))
        })?;
        if let Some(v) = table.get("max-size") {
            let bytes = v
                .as_str()
                .ok_or_else(|| "a string".to_string())
                .and_then(parse_limit)
                .map_err(|e| {
                    crate::exit::Usage(format!(
                        "max-size in {}: {e} (write it as max-size = \"20G\" or \"none\")",
                        file.display()
                    ))
                })?;
            return Ok(Limit {
                bytes,
                from: format!("max-size in {}", file.display()),
            });
        }
    }
    Ok(Limit {
        bytes: Some(DEFAULT_MAX),
        from: format!(
            "the default; {} or max-size in {} sets it",
            crate::env::XBUILD_CACHE_MAX,
            file.display()
        ),
    })
}

/// What a trim removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub bytes: u64,
    pub deps: usize,
    pub outputs: usize,
    pub mirrors: usize,
}

impl Trimmed {
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.deps, "kept dependency dir"),
            (self.outputs, "cached output set"),
            (self.mirrors, "source mirror"),
        ] {
            match n {
                0 => {}
                1 => parts.push(format!("1 {what}")),
                n => parts.push(format!("{n} {what}s")),
            }
        }
        if parts.is_empty() {
            return "nothing".to_string();
        }
        format!("{} ({})", human_size(self.bytes), parts.join(", "))
    }
}

/// The total size of [`GROWING`].
pub fn growing_size(cache: &Cache) -> u64 {
    outputs::list(cache).iter().map(|l| l.size).sum::<u64>()
        + deps::list(cache).iter().map(|l| l.entry.size).sum::<u64>()
        + mirror::list(cache).iter().map(|l| l.size).sum::<u64>()
}

/// At the end of a run that built something: trim to the [`limit`], and
/// say in one line what went.
pub fn bound(cache: &Cache) -> Result<()> {
    let limit = limit(cache)?;
    let Some(max) = limit.bytes else {
        return Ok(());
    };
    let trimmed = trim(cache, max)?;
    if trimmed.bytes > 0 {
        crate::ui::status(
            "Freed",
            &format!(
                "{}, least recently used, to keep the cache within {}",
                trimmed.describe(),
                limit.describe()
            ),
        );
    }
    Ok(())
}

/// Trim [`GROWING`], least recently used first, until together they fit
/// in `max` bytes. What a run holds (a kept dir or a mirror in use, an
/// output set used in the last minutes) is skipped; toolchains, std and
/// zig's runtimes are never touched.
pub fn trim(cache: &Cache, max: u64) -> Result<Trimmed> {
    enum Item {
        Outputs(String),
        Deps(String),
        Mirror(String),
    }
    let mut items: Vec<(Item, u64, std::time::SystemTime)> = outputs::list(cache)
        .into_iter()
        .map(|l| (Item::Outputs(l.key), l.size, l.last_used))
        .chain(
            deps::list(cache)
                .into_iter()
                .map(|l| (Item::Deps(l.entry.key), l.entry.size, l.entry.last_used)),
        )
        .chain(
            mirror::list(cache)
                .into_iter()
                .map(|l| (Item::Mirror(l.key), l.size, l.last_used)),
        )
        .collect();
    items.sort_by_key(|(_, _, t)| *t);
    let mut total: u64 = items.iter().map(|(_, s, _)| s).sum();
    let mut trimmed = Trimmed::default();
    for (item, size, used) in items {
        if total <= max {
            break;
        }
        let removed = match &item {
            Item::Outputs(key) => {
                let recent = used.elapsed().map_or(true, |age| age < OUTPUTS_GRACE);
                !recent && outputs::remove(cache, key)?
            }
            Item::Deps(key) => deps::remove(cache, key)?,
            Item::Mirror(key) => mirror::remove(cache, key)?,
        };
        if removed {
            total -= size;
            trimmed.bytes += size;
            match item {
                Item::Outputs(_) => trimmed.outputs += 1,
                Item::Deps(_) => trimmed.deps += 1,
                Item::Mirror(_) => trimmed.mirrors += 1,
            }
        }
    }
    Ok(trimmed)
}
