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
//! <root>/v1/deps/<key>/               kept cargo target dirs (see deps)
//! <root>/v1/outputs/<key>/            verified outputs by input digest (see outputs)
//! <root>/v1/tmp/<what>.<pid>.<rand>   temp files and dirs, on the same file system
//! <root>/v1/lock                      held while provisioning and building std
//! <root>/v1/store-last-run.json       what the last run got from the shared store
//! ```
//! Behind it, optionally, the shared store ([`remote`]): asked on a local
//! miss for outputs, std sysroots and toolchain artifacts, and given what a
//! run built.
//! Callers ask for a bucket (a method of [`Cache`]) and never join a path
//! under the root themselves. Every temp dir is made by [`Cache::temp_dir`]
//! inside `v1/tmp`, so what a killed process leaves is removed by the next
//! [`clean_tmp`].

pub mod deps;
pub mod keys;
pub mod outputs;
pub mod remote;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::env;

/// Written last inside an installed component; its presence means "complete".
pub const MARKER: &str = ".xbuild-installed";

#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
    /// The shared store, when one is configured: the second tier, asked on a
    /// local miss (see [`remote`]).
    remote: Option<std::sync::Arc<remote::Remote>>,
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
        let cache = Cache { root, remote: None };
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
    pub fn with_remote(mut self, remote: Option<remote::Remote>) -> Cache {
        self.remote = remote.map(std::sync::Arc::new);
        self
    }

    pub fn remote(&self) -> Option<&remote::Remote> {
        self.remote.as_deref()
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
    /// (see `pipeline::prewarm`). Earlier ones are [`RETIRED`].
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
        ]
        .into_iter()
        .map(|(what, path)| (what, dir_size(&path)))
        .collect()
    }

    /// The size of what grows with every new source and flag set.
    pub fn growing_size(&self) -> u64 {
        dir_size(&self.deps_root()) + dir_size(&self.outputs_root())
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

/// Copy the regular files and directories of `from` (a bucket xbuild wrote)
/// into `to`, a directory a build may have written: never hard links (they
/// would share the inode, so the build could write through them into the
/// bucket), never through a link found in `to` (a planted one fails the
/// copy), and nothing that `to` already has is replaced. Returns the bytes
/// copied.
pub fn copy_tree_into(from: &Path, to: &Path) -> Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    ensure_dir_no_links(to)?;
    let mut bytes = 0;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            bytes += copy_tree_into(&src, &dest)?;
        } else if kind.is_file() {
            let mode = entry.metadata()?.permissions().mode() & 0o755;
            let mut out = match open_new_no_links(&dest, mode) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", dest.display())),
            };
            let mut input =
                File::open(&src).with_context(|| format!("opening {}", src.display()))?;
            bytes += io::copy(&mut input, &mut out)
                .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
        }
    }
    Ok(bytes)
}

/// `dir` as a directory, made when missing (its parent must exist): what is
/// there already must be a directory, not a link (a build may have put one).
pub fn ensure_dir_no_links(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!(
            "{} is not a directory (a build replaced it): refusing to write through it",
            dir.display()
        ),
        Err(_) => fs::create_dir(dir).with_context(|| format!("creating {}", dir.display())),
    }
}

/// `path`, which lies under `root` (a directory a build wrote), when no
/// component of it below `root` is a symbolic link: a build may plant links
/// there toward the host's files, and xbuild's own copies out of it (and
/// writes into it) must never follow one.
pub fn no_links_below(root: &Path, path: &Path) -> Result<()> {
    let rel = path.strip_prefix(root).with_context(|| {
        format!(
            "{} is not inside the build's directory {}",
            path.display(),
            root.display()
        )
    })?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        let m = fs::symlink_metadata(&at).with_context(|| format!("reading {}", at.display()))?;
        if m.file_type().is_symlink() {
            bail!(
                "{} is a symbolic link that the build made: refusing to follow it (a build script may point one at your files)",
                at.display()
            );
        }
    }
    Ok(())
}

/// Copy the regular file `from` (under `root`, a directory a build wrote)
/// to `to`, following no link on the way.
pub fn copy_out_no_links(root: &Path, from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    no_links_below(root, from)?;
    let mut input = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(from)
        .with_context(|| format!("opening {}", from.display()))?;
    if !input.metadata()?.is_file() {
        bail!("{} is not a regular file", from.display());
    }
    let mut out = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    io::copy(&mut input, &mut out)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    let mode = input.metadata()?.permissions();
    out.set_permissions(mode)
        .with_context(|| format!("setting the mode of {}", to.display()))?;
    Ok(())
}

/// A new file, never through a link (`O_CREAT | O_EXCL | O_NOFOLLOW`).
fn open_new_no_links(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode)
        .open(path)
}

/// Write `bytes` into a new file at `path` in a directory a build may have
/// written: an existing file (or a link) there is left alone.
pub fn create_new_no_links(path: &Path, bytes: &[u8]) -> Result<()> {
    match open_new_no_links(path, 0o644) {
        Ok(mut f) => f
            .write_all(bytes)
            .with_context(|| format!("writing {}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
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
const SHIMS_GRACE: Duration = Duration::from_secs(600);

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
                    size: dir_size(&e.path()),
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

/// Flush every regular file below `path` to disk, so that a rename that
/// makes them visible never shows a file the disk does not hold yet.
pub fn sync_tree(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        for e in fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
            sync_tree(&e?.path())?;
        }
    } else if meta.is_file() {
        File::open(path)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", path.display()))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_out_of_a_build_dir_refuse_planted_links() {
        let root = tempfile::tempdir().unwrap();
        let secret = tempfile::NamedTempFile::new().unwrap();
        fs::write(secret.path(), "secret").unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("real/bin")).unwrap();
        fs::write(r.join("real/bin/app"), "elf").unwrap();
        std::os::unix::fs::symlink(secret.path(), r.join("real/bin/link")).unwrap();
        std::os::unix::fs::symlink(r.join("real"), r.join("dirlink")).unwrap();
        let out = r.join("copied");
        copy_out_no_links(r, &r.join("real/bin/app"), &out).unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "elf");
        for planted in ["real/bin/link", "dirlink/bin/app"] {
            let e = copy_out_no_links(r, &r.join(planted), &r.join("x")).unwrap_err();
            assert!(e.to_string().contains("symbolic link"), "{e:#}");
            assert!(!r.join("x").exists());
        }
        assert!(copy_out_no_links(r, Path::new("/etc/passwd"), &r.join("x")).is_err());
    }

    #[test]
    fn remove_retired_drops_earlier_zig_caches_and_keeps_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().to_path_buf()).unwrap();
        for d in [
            cache.v1().join("zig/o"),
            cache.v1().join("zig2/o"),
            cache.zig_cache(),
        ] {
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("libc.a"), b"1234").unwrap();
        }
        assert_eq!(remove_retired(&cache).unwrap(), 8);
        assert!(!cache.v1().join("zig").exists());
        assert!(!cache.v1().join("zig2").exists());
        assert!(cache.zig_cache().join("libc.a").is_file());
        assert_eq!(remove_retired(&cache).unwrap(), 0, "nothing left to remove");
    }

    #[test]
    fn gc_shims_removes_the_wrappers_of_executables_no_process_runs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().to_path_buf()).unwrap();
        let shims = cache.v1().join("shims");
        let own = cache.own_exe().unwrap();
        // a bucket named for another running program, and two nobody runs
        let mut child = crate::process::Cmd::new("sleep").arg("60").spawn().unwrap();
        let other = exe_id(&fs::metadata(format!("/proc/{}/exe", child.id())).unwrap());
        let old_long_ago = shims.join("0123456789ab");
        let old_just_now = shims.join("ba9876543210");
        for d in [
            shims.join(&other),
            old_long_ago.clone(),
            old_just_now.clone(),
        ] {
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("xbuild"), b"12345").unwrap();
        }
        fs::hard_link(old_long_ago.join("xbuild"), dir.path().join("elsewhere")).unwrap();
        fs::write(old_long_ago.join("only-here"), b"123").unwrap();
        let back = std::time::SystemTime::now() - SHIMS_GRACE - Duration::from_secs(60);
        for d in [shims.join(&other), old_long_ago.clone()] {
            File::open(&d).unwrap().set_modified(back).unwrap();
        }

        let (removed, freed) = gc_shims(&cache).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();

        assert_eq!(
            (removed, freed),
            (1, 3),
            "only the unlinked file counts as freed"
        );
        assert!(!old_long_ago.exists());
        assert!(old_just_now.exists(), "changed in the grace period");
        assert!(shims.join(&other).exists(), "its executable runs");
        assert!(own.exists(), "the running xbuild's own");
    }

    #[test]
    fn clean_tmp_removes_what_dead_processes_left_and_keeps_the_living() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path().join("c")).unwrap();
        let mine = cache.temp_dir("outputs").unwrap();
        // a process that has exited: its pid is not running any more
        let mut child = crate::process::Cmd::new("/bin/true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let left = cache.tmp().join(format!("outputs.{dead}.abc"));
        fs::create_dir_all(left.join("inner")).unwrap();
        let unnamed = cache.tmp().join("stray");
        fs::write(&unnamed, b"x").unwrap();
        clean_tmp(&cache).unwrap();
        assert!(mine.path().is_dir(), "a live process's temp dir stays");
        assert!(!left.exists(), "a dead process's temp dir goes");
        assert!(!unnamed.exists());
    }
}
