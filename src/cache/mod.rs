//! The one owner of xbuild's cache directory: its layout, its lock, its
//! temp area, its keys, and atomic writes into it.
//!
//! ```text
//! <root>/CACHEDIR.TAG
//! <root>/v1/downloads/<sha256>        verified archives, named by digest
//! <root>/v1/toolchains/<kind>-<pins>/ installed components (marker written last)
//! <root>/v1/toolchain-locks/<name>.lock held shared by the builds using that toolchain dir
//! <root>/v1/sysroots/<target>-<key>/  std built per target (see stdlib), libtest layered on
//! <root>/v1/std-trees/<key>/          cargo's target dir of a std build, until libtest is added
//! <root>/v1/shims/<exe>/              xbuild itself and links to it named as a target's cc/ar (see zigcc), per xbuild executable; `toolchain gc` drops those no process runs
//! <root>/v1/cargo-home/               the crates builds depend on (cargo fetch)
//! <root>/v1/zig3/                     zig's own cache for std builds; `toolchain gc` drops earlier ones
//! <root>/v1/zig-runtime/<key>/        zig's C runtime for one kind of link, made by the warm-up, copied into each build's private zig cache
//! <root>/v1/deps/<key>/               kept cargo target dirs, one per workspace for all its targets (see deps)
//! <root>/v1/outputs/<key>/            verified outputs by input digest (see outputs)
//! <root>/v1/mirrors/<key>/            each workspace's tracked files and their stat index (see mirror)
//! <root>/config.toml                  the cache's settings: `max-size` (see upkeep)
//! <root>/v1/tmp/<what>.<pid>.<rand>   temp files and dirs, on the same file system
//! <root>/v1/lock                      held while provisioning and building std
//! <root>/v1/store-last-run.json       what the last run got from the shared store
//! ```
//! Behind it, optionally, the shared store ([`store`]): asked on a local
//! miss for outputs, std sysroots and toolchain artifacts, and given what a
//! run built.
//! Callers ask for a bucket (a method of [`Cache`]) and never join a path
//! under the root themselves. Every temp dir is made by [`Cache::temp_dir`]
//! inside `v1/tmp`, so what a killed process leaves is removed by the next
//! [`clean_tmp`].

pub mod deps;
pub mod keys;
pub mod mirror;
pub mod outputs;
pub mod store;
pub mod units;
mod upkeep;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::env;
pub use upkeep::{
    SIZE, bound, gc_shims, growing_size, limit, parse_size, record_size, remove_retired, trim,
};

/// Written last inside an installed component; its presence means "complete".
pub const MARKER: &str = ".xbuild-installed";

#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
    /// The shared store, when one is configured: the second tier, asked on a
    /// local miss (see [`store`]).
    store: Option<std::sync::Arc<store::Store>>,
}

impl Cache {
    /// The cache at `XBUILD_CACHE_DIR` or the user's cache directory.
    pub fn from_env() -> Result<Cache> {
        let root = env::cache_root().context(
            "cannot find a cache directory: set XBUILD_CACHE_DIR (or HOME or XDG_CACHE_HOME)",
        )?;
        Cache::at(root)
    }

    pub fn at(root: PathBuf) -> Result<Cache> {
        let cache = Cache { root, store: None };
        for dir in [cache.downloads(), cache.toolchains(), cache.tmp()] {
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tag = cache.root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic(
                &cache,
                &tag,
                b"Signature: 8a477f597d28d172789f06886806bc55\n# This directory is xbuild's cache; see `xbuild toolchain list`.\n",
            )?;
        }
        Ok(cache)
    }

    /// This cache with a shared store behind it.
    pub fn with_store(mut self, store: Option<store::Store>) -> Cache {
        self.store = store.map(std::sync::Arc::new);
        self
    }

    pub fn store(&self) -> Option<&store::Store> {
        self.store.as_deref()
    }

    fn v1(&self) -> PathBuf {
        self.root.join("v1")
    }
    pub fn downloads(&self) -> PathBuf {
        self.v1().join("downloads")
    }
    pub fn download(&self, sha256: &str) -> PathBuf {
        self.downloads().join(sha256)
    }
    /// rustc's `--print cfg` answers, by [`keys::rustc_cfg`]: a workspace
    /// with `.cargo/` needs one on every run, and a cache hit must not have
    /// to provision rustc for it.
    pub fn rustc_cfg(&self, key: &str) -> PathBuf {
        self.v1().join("rustc-cfg").join(key)
    }

    pub fn toolchains(&self) -> PathBuf {
        self.v1().join("toolchains")
    }
    /// The lock a build holds shared on each toolchain directory it uses,
    /// for as long as it runs; `toolchain gc` removes a directory only when
    /// it can take its lock exclusively.
    pub fn toolchain_lock(&self, install_name: &str) -> PathBuf {
        self.v1()
            .join("toolchain-locks")
            .join(format!("{install_name}.lock"))
    }
    pub fn sysroots(&self) -> PathBuf {
        self.v1().join("sysroots")
    }
    /// xbuild's own CARGO_HOME: the crates builds depend on, fetched before
    /// the sealed build.
    pub fn cargo_home(&self) -> PathBuf {
        self.v1().join("cargo-home")
    }
    /// zig's own cache. zig's keys hold neither the paths nor the directory
    /// a link runs in, which its debug info names, so every change of those
    /// starts a new bucket: `zig2` since sealed builds see it (and zig) at
    /// fixed paths, `zig3` since its C runtime is built first by the warm-up
    /// (see `pipeline::prewarm`). Earlier ones are `upkeep::RETIRED`.
    pub fn zig_cache(&self) -> PathBuf {
        self.v1().join("zig3")
    }
    /// zig's C runtime for one kind of link (target, flags, strip),
    /// written once by the warm-up, a step that runs no workspace code, and
    /// never changed after: builds get a private copy of it as their zig
    /// cache (see `pipeline::prewarm`), so none writes what another reads.
    pub fn zig_runtime(&self, key: &str) -> PathBuf {
        self.v1().join("zig-runtime").join(key)
    }
    pub fn tmp(&self) -> PathBuf {
        self.v1().join("tmp")
    }
    /// xbuild's own apt configurations and package lists, by configuration.
    pub fn apt(&self) -> PathBuf {
        self.v1().join("apt")
    }
    /// The links through which xbuild runs as a target's C compiler and
    /// archiver, and the executable they run: one directory per xbuild
    /// executable (by its file's identity, see [`own_exe_id`]), so that two
    /// xbuilds sharing the cache (another version, a fresh `cargo install`)
    /// never re-point the links a running build uses.
    pub fn shims(&self) -> PathBuf {
        self.v1().join("shims").join(own_exe_id())
    }

    /// The running xbuild, at a path in the shims bucket that stays what this
    /// process is for as long as it runs: a hard link to its file where
    /// possible, else a copy. The installed file can be replaced while a
    /// build runs (`cargo install` renames a new one over it; the kernel
    /// then names the old one `… (deleted)`), and a wrapper that ran the
    /// installed path would run another xbuild, or nothing.
    pub fn own_exe(&self) -> Result<PathBuf> {
        let dest = self.shims().join("xbuild");
        let running = Path::new("/proc/self/exe");
        let Ok(meta) = fs::metadata(running) else {
            // no procfs: the installed path is all there is
            return std::env::current_exe().context("finding xbuild's own executable");
        };
        if fs::metadata(&dest).is_ok_and(|d| d.len() == meta.len()) {
            return Ok(dest);
        }
        fs::create_dir_all(self.shims())
            .with_context(|| format!("creating {}", self.shims().display()))?;
        let work = self.temp_dir("exe")?;
        let tmp = work.path().join("xbuild");
        let same_file = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(p).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
        };
        let installed = std::env::current_exe().ok().filter(|p| same_file(p));
        if installed.is_none_or(|p| fs::hard_link(&p, &tmp).is_err()) {
            fs::copy(running, &tmp)
                .with_context(|| format!("copying xbuild's own executable to {}", tmp.display()))?;
        }
        fs::rename(&tmp, &dest).with_context(|| format!("renaming into {}", dest.display()))?;
        Ok(dest)
    }

    /// Where cargo's target dir of one sysroot's std build is kept, until
    /// libtest is layered on it (see stdlib).
    pub fn std_tree(&self, key: &str) -> PathBuf {
        self.v1().join("std-trees").join(key)
    }

    /// One std sysroot, by its key.
    pub fn sysroot(&self, key: &str) -> PathBuf {
        self.sysroots().join(key)
    }
    fn deps_root(&self) -> PathBuf {
        self.v1().join("deps")
    }
    fn outputs_root(&self) -> PathBuf {
        self.v1().join("outputs")
    }
    fn mirrors_root(&self) -> PathBuf {
        self.v1().join("mirrors")
    }

    /// A new temp dir inside the cache (same file system as its final place),
    /// named with this process's id so that [`clean_tmp`] leaves it alone
    /// while this process lives.
    pub fn temp_dir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        fs::create_dir_all(self.tmp())
            .with_context(|| format!("creating {}", self.tmp().display()))?;
        tempfile::Builder::new()
            .prefix(&format!("{prefix}.{}.", std::process::id()))
            .tempdir_in(self.tmp())
            .with_context(|| format!("creating a temp dir in {}", self.tmp().display()))
    }

    /// A new temp file inside the cache, named like [`Cache::temp_dir`]'s dirs.
    pub fn temp_file(&self, prefix: &str) -> Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(&format!("{prefix}.{}.", std::process::id()))
            .tempfile_in(self.tmp())
            .with_context(|| format!("creating a temp file in {}", self.tmp().display()))
    }

    /// The sizes of the buckets, for `xbuild cache list`.
    pub fn bucket_sizes(&self) -> Vec<(&'static str, u64)> {
        [
            ("downloads", self.downloads()),
            ("apt lists", self.apt()),
            ("toolchains", self.toolchains()),
            ("std sysroots", self.sysroots()),
            (
                "std build trees (until --test)",
                self.v1().join("std-trees"),
            ),
            ("zig's cache (std builds)", self.zig_cache()),
            ("zig's C runtimes", self.v1().join("zig-runtime")),
            ("crates (cargo home)", self.cargo_home()),
            ("kept dependencies", self.deps_root()),
            ("cached outputs", self.outputs_root()),
            ("source mirrors", self.mirrors_root()),
        ]
        .into_iter()
        .map(|(what, path)| (what, dir_size(&path)))
        .collect()
    }

    /// Take the cache-wide lock, waiting at most `XBUILD_LOCK_TIMEOUT` seconds.
    pub fn lock(&self, what: &str) -> Result<Lock> {
        let path = self.v1().join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let timeout = env::var(env::XBUILD_LOCK_TIMEOUT)
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(600), Duration::from_secs);
        let start = Instant::now();
        let mut said = false;
        loop {
            if env::interrupted() {
                bail!(
                    "interrupted while waiting for the lock on {} ({what})",
                    path.display()
                );
            }
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {
                    if !said {
                        crate::ui::status(
                            "Waiting",
                            &format!(
                                "for another xbuild using the cache at {}",
                                self.root.display()
                            ),
                        );
                        said = true;
                    }
                    if start.elapsed() >= timeout {
                        bail!(
                            "timed out after {}s waiting for the lock on {} ({what}); another xbuild process is using this cache. \
                             Wait for it to finish, stop it, or raise {} (seconds)",
                            timeout.as_secs(),
                            path.display(),
                            env::XBUILD_LOCK_TIMEOUT
                        );
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
        }
    }
}

/// `path`'s lock file, opened (created when missing), unlocked.
pub fn lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Held while alive; the OS releases it when the process dies.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Copy `reader` into a new file at `path`, returning the sha256 of the bytes.
pub fn copy_hashing(
    reader: &mut dyn Read,
    path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<String> {
    let mut out = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the download"),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .with_context(|| format!("writing {}", path.display()))?;
        total += n as u64;
        progress(total);
    }
    out.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Which xbuild executable this process runs, by the identity of the file
/// the kernel loaded (device, inode, size, modification time), read once:
/// it names the shims directory. Not the path: a new xbuild installed at the
/// same path must not share the old one's links.
fn own_exe_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| match fs::metadata("/proc/self/exe") {
        Ok(m) => exe_id(&m),
        Err(_) => hash_bytes(
            std::env::current_exe()
                .unwrap_or_default()
                .display()
                .to_string()
                .as_bytes(),
        )[..12]
            .to_string(),
    })
}

/// The shims bucket name of the executable file with metadata `m`.
fn exe_id(m: &fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let id = format!(
        "{}:{}:{}:{}.{}",
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec()
    );
    hash_bytes(id.as_bytes())[..12].to_string()
}

/// The sha256 of bytes, in hex.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The sha256 of a file.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Write `bytes` to `path` through a temp file and a rename.
pub fn write_atomic(cache: &Cache, path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(&cache.root);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// The total size of the files below `path` (links not followed).
pub fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Remove what a killed process left in the temp area: every entry but
/// those of processes still running. Call with the lock held.
pub fn clean_tmp(cache: &Cache) -> Result<()> {
    for entry in
        fs::read_dir(cache.tmp()).with_context(|| format!("reading {}", cache.tmp().display()))?
    {
        let entry = entry?;
        if owner_alive(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if let Err(e) = removed {
            tracing::warn!("could not remove the leftover {}: {e}", path.display());
        } else {
            tracing::debug!("removed the leftover {}", path.display());
        }
    }
    Ok(())
}

/// One entry of a keyed bucket (`v1/deps`, `v1/outputs`).
pub struct Listed {
    pub key: String,
    pub dir: PathBuf,
    pub size: u64,
    /// The mtime of the entry's `stamp` file: its last use.
    pub last_used: std::time::SystemTime,
}

/// Every entry of the bucket `root`, most recently used first; `stamp` is
/// the file in each entry whose mtime is its last use.
fn list_bucket(root: &Path, stamp: &str) -> Vec<Listed> {
    let mut out: Vec<Listed> = fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| Listed {
                    key: e.file_name().to_string_lossy().into_owned(),
                    size: upkeep::recorded_size(&e.path()).unwrap_or_else(|| dir_size(&e.path())),
                    last_used: fs::metadata(e.path().join(stamp))
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH),
                    dir: e.path(),
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|l| std::cmp::Reverse(l.last_used));
    out
}

/// Whether the process named in a temp entry's name (`what.<pid>.rand`) runs.
fn owner_alive(name: &str) -> bool {
    let Some(pid) = name
        .split('.')
        .nth(1)
        .and_then(|p| p.parse::<libc::pid_t>().ok())
    else {
        return false;
    };
    pid_alive(pid)
}

/// Whether the process `pid` runs (this one included).
pub fn pid_alive(pid: libc::pid_t) -> bool {
    if pid == std::process::id() as libc::pid_t {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
