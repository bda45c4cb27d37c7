//! File operations of xbuild's own (outside any sandbox) in directories a
//! build wrote: its kept target dir, its zig cache, its sealed dir. A build
//! may have planted symbolic links there toward the user's files; nothing
//! here follows one: a planted link fails the operation, saying so.
//! Also [`sync_tree`] and [`sync_file_system`]: files reach the disk before
//! a rename shows them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

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

/// Move the files of the tree `from` that `base` has no file for (by the
/// same relative path) into `to`, at the same relative paths; links are
/// neither followed nor moved. Returns how many files moved.
pub fn move_new_files(from: &Path, base: &Path, to: &Path) -> Result<u64> {
    let mut moved = 0;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let name = entry.file_name();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            moved += move_new_files(&entry.path(), &base.join(&name), &to.join(&name))?;
        } else if kind.is_file() && fs::symlink_metadata(base.join(&name)).is_err() {
            fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
            fs::rename(entry.path(), to.join(&name)).with_context(|| {
                format!("moving {} into {}", entry.path().display(), to.display())
            })?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Move the regular files of the tree `from` (xbuild's own) into `to`, a
/// directory a build may have written, at the same relative paths, where
/// `to` has nothing yet (what is there stays, with its times); never through
/// a link found in `to` (a planted one fails the move). Returns how many
/// files moved.
pub fn move_tree_into(from: &Path, to: &Path) -> Result<u64> {
    ensure_dir_no_links(to)?;
    let mut moved = 0;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let dest = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            moved += move_tree_into(&entry.path(), &dest)?;
        } else if kind.is_file() && fs::symlink_metadata(&dest).is_err() {
            fs::rename(entry.path(), &dest).with_context(|| {
                format!("moving {} to {}", entry.path().display(), dest.display())
            })?;
            moved += 1;
        }
    }
    Ok(moved)
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
    let mut input = open_no_links(root, from)?;
    let mut out = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    io::copy(&mut input, &mut out)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    let mode = input.metadata()?.permissions();
    out.set_permissions(mode)
        .with_context(|| format!("setting the mode of {}", to.display()))?;
    Ok(())
}

/// The regular file `path` (under `root`, a directory a build wrote) open
/// for reading, following no link on the way.
pub fn open_no_links(root: &Path, path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    no_links_below(root, path)?;
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if !f.metadata()?.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    Ok(f)
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

/// Flush the file system holding `dir` to disk (`syncfs`): one call for a
/// tree too large to sync file by file (an unpacked toolchain), before the
/// rename that makes it visible.
pub fn sync_file_system(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    // SAFETY: syncfs takes an open descriptor and touches no memory of ours.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("syncing the file system of {}", dir.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_files_move_in_beside_what_is_there_and_never_through_a_planted_link() {
        let (from, to, outside) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        fs::create_dir_all(from.path().join("release/deps")).unwrap();
        fs::write(from.path().join("release/deps/new.rlib"), "restored").unwrap();
        fs::write(from.path().join("release/deps/old.rlib"), "restored").unwrap();
        fs::create_dir_all(to.path().join("release/deps")).unwrap();
        fs::write(to.path().join("release/deps/old.rlib"), "compiled here").unwrap();
        assert_eq!(move_tree_into(from.path(), to.path()).unwrap(), 1);
        let read = |p: &str| fs::read_to_string(to.path().join(p)).unwrap();
        assert_eq!(read("release/deps/new.rlib"), "restored");
        assert_eq!(read("release/deps/old.rlib"), "compiled here");
        // a build replaced a directory by a link toward the user's files
        fs::create_dir_all(from.path().join("x86_64/release")).unwrap();
        fs::write(from.path().join("x86_64/release/lib.rlib"), "restored").unwrap();
        std::os::unix::fs::symlink(outside.path(), to.path().join("x86_64")).unwrap();
        let e = move_tree_into(from.path(), to.path()).unwrap_err();
        assert!(format!("{e:#}").contains("not a directory"), "{e:#}");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

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
}
