//! Unpacking `.deb`, wheels and zips, and tarballs (`.tar`, `.tar.gz`,
//! `.tar.xz`, `.tar.zst`), in Rust. Every entry is checked first: an entry
//! that would land outside the destination (`..`, an absolute path, a link
//! pointing out) is refused and the whole unpack fails. No entry is ever
//! written through a link: each parent of its path is checked against the
//! real tree as it is at that moment (a chain `l -> .`, `l/x -> ..`, `l/x/f`
//! passes every textual check, and would write `f` outside). A link's target
//! is resolved against the links already unpacked (`d/y -> ..` then
//! `d/x -> y/../..` is refused). Only regular files, directories, hard links
//! and symbolic links are unpacked (no FIFOs, no devices), with no setuid,
//! setgid or sticky bit, and an archive past [`MAX_ENTRIES`] entries or
//! [`MAX_BYTES`] unpacked bytes is refused.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

#[derive(Debug, thiserror::Error)]
#[error("{archive}: entry `{entry}` {why}; refusing to unpack")]
pub struct UnsafeEntry {
    pub archive: String,
    pub entry: String,
    pub why: &'static str,
}

/// The most entries one archive may unpack (the largest pinned one has
/// about 30,000).
pub const MAX_ENTRIES: u64 = 500_000;
/// The most bytes one archive may unpack (the largest pinned one unpacks
/// to about 700 MB).
pub const MAX_BYTES: u64 = 16 << 30;

/// Counts what an archive unpacked against the limits.
struct Budget<'a> {
    name: &'a str,
    entries: u64,
    bytes: u64,
    max_entries: u64,
    max_bytes: u64,
}

impl Budget<'_> {
    fn new(name: &str) -> Budget<'_> {
        Budget {
            name,
            entries: 0,
            bytes: 0,
            max_entries: MAX_ENTRIES,
            max_bytes: MAX_BYTES,
        }
    }

    fn take(&mut self, size: u64) -> Result<()> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(size);
        if self.entries > self.max_entries {
            bail!(
                "{}: more than {} entries; refusing to unpack (no pinned archive has so many: check the pin)",
                self.name,
                self.max_entries
            );
        }
        if self.bytes > self.max_bytes {
            bail!(
                "{}: more than {} bytes unpacked; refusing to unpack (no pinned archive is so large: check the pin)",
                self.name,
                self.max_bytes
            );
        }
        Ok(())
    }
}

/// Unpack `archive` (named `file_name`, which decides the format) into `dest`,
/// dropping `strip` leading components of tarball paths.
pub fn unpack(archive: &Path, file_name: &str, dest: &Path, strip: u32) -> Result<()> {
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let open = || File::open(archive).with_context(|| format!("opening {}", archive.display()));
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".deb") {
        unpack_deb(open()?, file_name, dest, strip)
    } else if lower.ends_with(".whl") || lower.ends_with(".zip") {
        unpack_zip(open()?, file_name, dest)
    } else if let Some(kind) = tar_compression(&lower) {
        unpack_tar(
            decompress(kind, BufReader::new(open()?))?,
            file_name,
            dest,
            strip,
        )
    } else {
        bail!(
            "{file_name}: unknown archive format (xbuild unpacks .deb, .whl, .zip, .tar, .tar.gz, .tar.xz and .tar.zst)"
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

fn tar_compression(name: &str) -> Option<Compression> {
    if name.ends_with(".tar") {
        Some(Compression::None)
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some(Compression::Gzip)
    } else if name.ends_with(".tar.xz") || name.ends_with(".txz") {
        Some(Compression::Xz)
    } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
        Some(Compression::Zstd)
    } else {
        None
    }
}

fn decompress<'a>(kind: Compression, r: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    Ok(match kind {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(r)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new(r)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(r)
                .map_err(|e| anyhow::anyhow!("zstd stream: {e}"))?,
        ),
    })
}

/// Unpack a `.deb` into `dest` as part of a root file system with a merged
/// `/usr` (see [`merged_usr`]): what `/bin`, `/lib`... hold lands in
/// `usr/bin`, `usr/lib`..., and a link's absolute target is taken relative
/// to the root (then written relative, so the root works wherever it is).
pub fn unpack_root(archive: &Path, file_name: &str, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    if !file_name.to_ascii_lowercase().ends_with(".deb") {
        bail!("{file_name}: a build root is made of Debian packages (.deb) only");
    }
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    unpack_deb_as(file, file_name, dest, 0, true)
}

/// The top-level directories a merged `/usr` replaces by links into `usr/`
/// (in a build root as [`unpack_root`] writes it, and as a sandbox on it
/// shows them).
pub const MERGED: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// `rel` (relative to the root) in a root with a merged `/usr`.
pub fn merged_usr(rel: &Path) -> PathBuf {
    match rel.components().next() {
        Some(Component::Normal(first)) if MERGED.iter().any(|m| first == *m) => {
            Path::new("usr").join(rel)
        }
        _ => rel.to_path_buf(),
    }
}

/// The target a link at `rel` (as the archive has it) gets in a merged-/usr
/// root: the path it names, from the root, merged, then written relative
/// to where the link lands. `None` when it climbs above the root.
fn root_link_target(rel: &Path, target: &Path) -> Option<PathBuf> {
    let mut abs: Vec<std::ffi::OsString> = Vec::new();
    if !target.is_absolute() {
        abs.extend(rel.parent()?.iter().map(|c| c.to_os_string()));
    }
    for c in target.components() {
        match c {
            Component::Normal(p) => abs.push(p.to_os_string()),
            Component::ParentDir => {
                abs.pop()?;
            }
            Component::CurDir | Component::RootDir => {}
            Component::Prefix(_) => return None,
        }
    }
    let to = merged_usr(&abs.iter().collect::<PathBuf>());
    let from = merged_usr(rel);
    let from: Vec<_> = from.parent()?.iter().collect();
    let to_parts: Vec<_> = to.iter().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for p in &to_parts[common..] {
        out.push(p);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Some(out)
}

/// A `.deb` is an `ar` archive; its files are in `data.tar.{xz,zst,gz}`.
fn unpack_deb(file: File, name: &str, dest: &Path, strip: u32) -> Result<()> {
    unpack_deb_as(file, name, dest, strip, false)
}

fn unpack_deb_as(file: File, name: &str, dest: &Path, strip: u32, root: bool) -> Result<()> {
    let mut ar = ar::Archive::new(BufReader::new(file));
    while let Some(entry) = ar.next_entry() {
        let entry = entry.with_context(|| format!("{name}: reading the ar archive"))?;
        let member = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        if let Some(suffix) = member.strip_prefix("data.tar") {
            let kind = tar_compression(&format!(".tar{suffix}"))
                .with_context(|| format!("{name}: unknown data member `{member}`"))?;
            return unpack_tar_as(decompress(kind, entry)?, name, dest, strip, root);
        }
    }
    bail!("{name}: not a Debian package (no data.tar member)")
}

/// The path an entry unpacks to, relative to the destination, or why not.
fn safe_relative(raw: &Path, strip: u32) -> Result<Option<PathBuf>, &'static str> {
    let mut out = PathBuf::new();
    let mut skipped = 0;
    for c in raw.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(part) => {
                if skipped < strip {
                    skipped += 1;
                } else {
                    out.push(part);
                }
            }
            Component::ParentDir => return Err("climbs out with `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("has an absolute path"),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

/// Whether a link at `rel` (relative to the destination) pointing to `target`
/// stays inside the destination.
fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

fn unpack_tar(reader: impl Read, name: &str, dest: &Path, strip: u32) -> Result<()> {
    unpack_tar_as(reader, name, dest, strip, false)
}

/// `root`: the destination is a root file system with a merged `/usr`.
fn unpack_tar_as(reader: impl Read, name: &str, dest: &Path, strip: u32, root: bool) -> Result<()> {
    let refuse = |entry: &Path, why| UnsafeEntry {
        archive: name.to_string(),
        entry: entry.display().to_string(),
        why,
    };
    let mut archive = tar::Archive::new(reader);
    // modes masked with 0o777: no setuid, setgid or sticky bit
    archive.set_preserve_permissions(false);
    let mut budget = Budget::new(name);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    for entry in archive
        .entries()
        .with_context(|| format!("{name}: reading the tar stream"))?
    {
        let mut entry = entry.with_context(|| format!("{name}: reading the tar stream"))?;
        let raw = entry
            .path()
            .with_context(|| format!("{name}: bad entry path"))?
            .into_owned();
        let archived = match safe_relative(&raw, strip) {
            Ok(Some(rel)) => rel,
            Ok(None) => continue,
            Err(why) => return Err(refuse(&raw, why).into()),
        };
        let rel = if root {
            merged_usr(&archived)
        } else {
            archived.clone()
        };
        let kind = entry.header().entry_type();
        use tar::EntryType as E;
        match kind {
            E::Regular | E::Continuous | E::Directory | E::Symlink | E::Link => {}
            E::XGlobalHeader | E::XHeader | E::GNULongName | E::GNULongLink => continue,
            _ => {
                return Err(refuse(
                    &raw,
                    "is neither a file, a directory nor a link (a FIFO or a device)",
                )
                .into());
            }
        }
        budget.take(entry.header().size().unwrap_or(0))?;
        if let Some(link) = through_link(dest, &rel, kind.is_dir()) {
            return Err(UnsafeEntry {
                archive: name.to_string(),
                entry: raw.display().to_string(),
                why: link,
            }
            .into());
        }
        if kind.is_symlink() {
            // a merged-/usr package's own `bin -> usr/bin` (Debian 13's
            // base-files): the root has those links already
            if root
                && archived.components().count() == 1
                && MERGED.iter().any(|m| archived.as_os_str() == *m)
            {
                continue;
            }
            let mut target = entry
                .link_name()?
                .with_context(|| format!("{name}: link without target"))?
                .into_owned();
            if root {
                target = root_link_target(&archived, &target)
                    .ok_or_else(|| refuse(&raw, "is a link pointing above the root"))?;
            }
            if !link_stays_inside(&rel, &target) || !resolves_inside(dest, &rel, &target) {
                return Err(refuse(&raw, "is a link pointing outside the destination").into());
            }
            if root {
                let at = dest.join(&rel);
                create_parent(&at)?;
                if fs::symlink_metadata(&at).is_ok_and(|m| !m.is_dir()) {
                    fs::remove_file(&at).with_context(|| format!("replacing {}", at.display()))?;
                }
                std::os::unix::fs::symlink(&target, &at)
                    .with_context(|| format!("{name}: linking {}", at.display()))?;
                continue;
            }
        } else if kind.is_hard_link() {
            let mut target = entry
                .link_name()?
                .with_context(|| format!("{name}: link without target"))?
                .into_owned();
            if root {
                let parts: PathBuf = target
                    .components()
                    .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
                    .collect();
                target = merged_usr(&parts);
            }
            match safe_relative(&target, strip) {
                Ok(Some(t)) if through_link(dest, &t, true).is_none() => {
                    // tar resolves hard link targets against the destination itself
                    let to = dest.join(t);
                    let at = dest.join(&rel);
                    create_parent(&at)?;
                    let _ = fs::remove_file(&at);
                    fs::hard_link(&to, &at).with_context(|| {
                        format!("{name}: linking {} to {}", at.display(), to.display())
                    })?;
                    continue;
                }
                _ => {
                    return Err(
                        refuse(&raw, "is a hard link pointing outside the destination").into(),
                    );
                }
            }
        }
        let at = dest.join(&rel);
        create_parent(&at)?;
        // A later package may replace a file an earlier one unpacked.
        if !kind.is_dir() && fs::symlink_metadata(&at).is_ok_and(|m| !m.is_dir()) {
            fs::remove_file(&at).with_context(|| format!("replacing {}", at.display()))?;
        }
        entry
            .unpack(&at)
            .with_context(|| format!("{name}: unpacking {}", rel.display()))?;
    }
    Ok(())
}

/// Whether a link at `rel` pointing to `target` stays inside `dest` once the
/// links already in the tree are followed (`d/y -> ..` makes `d/x ->
/// y/../..` point out, which no textual check of `d/x` sees).
fn resolves_inside(dest: &Path, rel: &Path, target: &Path) -> bool {
    // the components below `dest` of where we are, and what is left to walk
    let mut at: Vec<std::ffi::OsString> = rel
        .parent()
        .map(|p| p.iter().map(|c| c.to_os_string()).collect())
        .unwrap_or_default();
    let mut todo: Vec<std::ffi::OsString> = target.iter().rev().map(|c| c.to_os_string()).collect();
    let mut expansions = 0;
    while let Some(part) = todo.pop() {
        match part.to_str() {
            Some(".") => continue,
            Some("..") => {
                if at.pop().is_none() {
                    return false;
                }
                continue;
            }
            Some("/") => return false,
            _ => {}
        }
        at.push(part);
        let here: PathBuf = at.iter().collect();
        if let Ok(next) = fs::read_link(dest.join(&here)) {
            expansions += 1;
            if expansions > 40 || next.is_absolute() {
                return false;
            }
            at.pop();
            todo.extend(next.iter().rev().map(|c| c.to_os_string()));
        }
    }
    true
}

/// Whether writing `rel` under `dest` would go through a symlink that is
/// in the tree now: `Some(why)` if a parent is one (or, with `last`, the
/// path itself).
fn through_link(dest: &Path, rel: &Path, last: bool) -> Option<&'static str> {
    let mut at = dest.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        at.push(c);
        let is_last = i + 1 == parts.len();
        if is_last && !last {
            break;
        }
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Some("would be written through a symbolic link");
            }
            Ok(_) => {}
            Err(_) => break, // nothing further exists yet
        }
    }
    None
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

fn unpack_zip(file: File, name: &str, dest: &Path) -> Result<()> {
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .with_context(|| format!("{name}: not a zip archive"))?;
    let mut budget = Budget::new(name);
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("{name}: entry {i}"))?;
        budget.take(entry.size())?;
        let entry_name = entry
            .name()
            .map(|n| n.into_owned())
            .with_context(|| format!("{name}: entry {i} has a bad name"))?;
        let raw = PathBuf::from(&entry_name);
        let rel = match safe_relative(&raw, 0) {
            Ok(Some(rel)) => rel,
            Ok(None) => continue,
            Err(why) => {
                return Err(UnsafeEntry {
                    archive: name.to_string(),
                    entry: entry_name.clone(),
                    why,
                }
                .into());
            }
        };
        if entry.is_symlink() {
            return Err(UnsafeEntry {
                archive: name.to_string(),
                entry: entry_name.clone(),
                why: "is a symbolic link (not allowed in wheels)",
            }
            .into());
        }
        if let Some(why) = through_link(dest, &rel, true) {
            return Err(UnsafeEntry {
                archive: name.to_string(),
                entry: entry_name.clone(),
                why,
            }
            .into());
        }
        let at = dest.join(&rel);
        if entry.is_dir() {
            fs::create_dir_all(&at).with_context(|| format!("creating {}", at.display()))?;
            continue;
        }
        create_parent(&at)?;
        let mut out = File::create(&at).with_context(|| format!("creating {}", at.display()))?;
        io::copy(&mut entry, &mut out)
            .with_context(|| format!("{name}: unpacking {}", rel.display()))?;
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&at, fs::Permissions::from_mode(mode & 0o777))
                .with_context(|| format!("setting the mode of {}", at.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
