//! The sources in another directory order, for `--check-determinism`'s
//! second build: the order a directory lists its entries is the file
//! system's (ext4 sorts by a hash seeded per file system, tmpfs lists in
//! creation order since Linux 6.6 and newest first before), so a build that
//! embeds a listing differs between machines. The copy is made on a tmpfs
//! (`/dev/shm`), each directory's entries created in the reverse of the
//! order the snapshot lists them, and then checked: every directory with two
//! entries or more must list them in another order than the snapshot's.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where the copies go: a tmpfs every user may write.
const TMPFS: &str = "/dev/shm";

/// A copy of the sources whose directories list in another order; removed
/// when dropped.
pub struct Reordered {
    _dir: tempfile::TempDir,
    /// The copy's root.
    pub src: PathBuf,
}

/// Whether sources can be reordered here (`/dev/shm` is a tmpfs).
pub fn available() -> bool {
    is_tmpfs(Path::new(TMPFS))
}

fn is_tmpfs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid C string and a zeroed statfs for the call to fill.
    let (ok, kind) = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut st) == 0, st.f_type)
    };
    // glibc's f_type is signed, musl's unsigned (the static xbuild)
    #[allow(clippy::unnecessary_cast)]
    let kind = kind as u64;
    ok && kind == libc::TMPFS_MAGIC as u64
}

/// `from` (a snapshot), copied so that its directories list in another
/// order.
pub fn reordered(from: &Path) -> Result<Reordered> {
    let dir = tempfile::Builder::new()
        .prefix("xbuild-order-")
        .tempdir_in(TMPFS)
        .with_context(|| format!("creating a directory in {TMPFS} for the reordered sources"))?;
    let src = dir.path().join("src");
    // reversed first; a tmpfs that lists newest first lists that as the
    // snapshot does, and then the snapshot's own order is the other one
    for reverse in [true, false] {
        if src.exists() {
            fs::remove_dir_all(&src)?;
        }
        fs::create_dir(&src)?;
        copy(from, &src, reverse)?;
        if lists_otherwise(from, &src)? {
            return Ok(Reordered { _dir: dir, src });
        }
    }
    bail!(
        "{TMPFS} lists the copied sources in the snapshot's order whichever way they are written: the directory order cannot be varied here"
    )
}

/// The names `dir` lists, in its order.
fn listing(dir: &Path) -> Result<Vec<OsString>> {
    fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| Ok(e?.file_name()))
        .collect()
}

fn copy(from: &Path, to: &Path, reverse: bool) -> Result<()> {
    let mut names = listing(from)?;
    if reverse {
        names.reverse();
    }
    for name in names {
        let (src, dst) = (from.join(&name), to.join(&name));
        let meta = fs::symlink_metadata(&src)?;
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if meta.is_dir() {
            fs::create_dir(&dst)?;
            copy(&src, &dst, reverse)?;
        } else if meta.is_file() {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

/// Whether every directory of `a` with two entries or more lists them in
/// another order in `b`.
fn lists_otherwise(a: &Path, b: &Path) -> Result<bool> {
    let ours = listing(a)?;
    if ours.len() >= 2 && listing(b)? == ours {
        return Ok(false);
    }
    for name in ours {
        let p = a.join(&name);
        if fs::symlink_metadata(&p)?.is_dir() && !lists_otherwise(&p, &b.join(&name))? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directory_lists_in_another_order_and_holds_the_same() {
        if !available() {
            eprintln!("{TMPFS} is not a tmpfs: skipped");
            return;
        }
        let from = tempfile::tempdir().unwrap();
        for d in ["", "a", "a/b"] {
            fs::create_dir_all(from.path().join(d)).unwrap();
            for f in ["one", "two", "three", "four", "five"] {
                fs::write(from.path().join(d).join(f), format!("{d}/{f}")).unwrap();
            }
        }
        std::os::unix::fs::symlink("one", from.path().join("link")).unwrap();
        let r = reordered(from.path()).unwrap();
        assert!(is_tmpfs(&r.src));
        for d in ["", "a", "a/b"] {
            let (x, y) = (
                listing(&from.path().join(d)).unwrap(),
                listing(&r.src.join(d)).unwrap(),
            );
            assert_ne!(x, y, "{d}");
            let (mut x, mut y) = (x, y);
            x.sort();
            y.sort();
            assert_eq!(x, y, "{d}");
            for f in ["one", "five"] {
                assert_eq!(
                    fs::read(from.path().join(d).join(f)).unwrap(),
                    fs::read(r.src.join(d).join(f)).unwrap()
                );
            }
        }
        assert_eq!(fs::read_link(r.src.join("link")).unwrap(), Path::new("one"));
        let dir = r.src.clone();
        drop(r);
        assert!(!dir.exists());
    }
}
