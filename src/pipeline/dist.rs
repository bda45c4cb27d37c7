//! Part of stage "publish", with `--dist`: one reproducible
//! `NAME-VERSION-TRIPLE.tar.xz` per package and target in `<out>/dist/`, its
//! executables with the package's README and license files under one
//! top-level directory, and `dist/SHA256SUMS` over the archives.
//!
//! Reproducible: entries sorted, owner root (0:0), modes 0755 (directory,
//! executables) and 0644, every mtime the run's `SOURCE_DATE_EPOCH` (the
//! commit's time), xz single-threaded at level 6. The README and license
//! files are read from the snapshot (what git tracks), not the work tree.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::verify::Artifact;
use crate::workspace::{self, PackageInfo};

/// The directory of the archives, in the output directory.
pub const DIR: &str = "dist";

/// One file of an archive: where it is read, its name in the archive, its mode.
struct Entry {
    from: PathBuf,
    name: String,
    mode: u32,
}

/// Write the archives of `artifacts` (staged under `staging`) and their
/// SHA256SUMS into `<staging>/dist/`; returns the archives' names.
pub fn write(
    sources: &Path,
    epoch: &str,
    artifacts: &[Artifact],
    staging: &Path,
) -> Result<Vec<String>> {
    let packages = workspace::packages(sources)?;
    let mtime: u64 = epoch.trim().parse().unwrap_or(0);
    let mut groups: BTreeMap<(String, String), Vec<&Artifact>> = BTreeMap::new();
    for a in artifacts.iter().filter(|a| a.kind == "bin") {
        groups
            .entry((a.package.clone(), a.rust_target.clone()))
            .or_default()
            .push(a);
    }
    let dir = staging.join(DIR);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut sums = String::new();
    let mut written = Vec::new();
    for ((package, triple), exes) in &groups {
        let info = packages.iter().find(|p| &p.name == package);
        let version = info.map_or("0.0.0", |p| p.version.as_str());
        let top = format!("{package}-{version}-{triple}");
        let mut entries: Vec<Entry> = exes
            .iter()
            .map(|a| Entry {
                from: staging.join(&a.path),
                name: format!("{top}/{}", a.name),
                mode: 0o755,
            })
            .collect();
        for doc in docs(sources, info) {
            let name = doc.file_name().unwrap_or_default().to_string_lossy();
            let name = format!("{top}/{name}");
            if !entries.iter().any(|e| e.name == name) {
                entries.push(Entry {
                    from: doc,
                    name,
                    mode: 0o644,
                });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let file = format!("{top}.tar.xz");
        let path = dir.join(&file);
        archive(&path, &top, &entries, mtime)?;
        let sum = crate::cache::hash_file(&path)?;
        sums.push_str(&format!("{sum}  {file}\n"));
        written.push(file);
    }
    fs::write(dir.join("SHA256SUMS"), sums)?;
    Ok(written)
}

/// The package's README and license files: `readme` and `license-file`
/// from its manifest, else README*, LICENSE* and COPYING* in its directory;
/// for the license, the workspace root's when the package has none.
fn docs(sources: &Path, info: Option<&PackageInfo>) -> Vec<PathBuf> {
    let pkg_dir = info.map_or_else(|| sources.to_path_buf(), |p| sources.join(&p.dir));
    // a manifest's path stays inside the workspace, and a link is never
    // followed: an archive holds what the repository tracks, nothing else
    let named = |key: Option<&String>| -> Option<PathBuf> {
        let mut p = PathBuf::new();
        for c in pkg_dir.join(key?).components() {
            match c {
                std::path::Component::ParentDir => {
                    p.pop();
                }
                std::path::Component::CurDir => {}
                other => p.push(other),
            }
        }
        Some(p).filter(|p| p.starts_with(sources) && regular(p))
    };
    let matching = |dir: &Path, prefixes: &[&str]| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| {
                let n = e.file_name().to_string_lossy().to_ascii_uppercase();
                prefixes.iter().any(|p| n.starts_with(p))
            })
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    };
    let mut out = Vec::new();
    match named(info.and_then(|p| p.readme.as_ref())) {
        Some(r) => out.push(r),
        None => out.extend(matching(&pkg_dir, &["README"])),
    }
    let mut licenses: Vec<PathBuf> = named(info.and_then(|p| p.license_file.as_ref()))
        .into_iter()
        .collect();
    licenses.extend(matching(&pkg_dir, &["LICENSE", "LICENCE", "COPYING"]));
    if licenses.is_empty() {
        licenses = matching(sources, &["LICENSE", "LICENCE", "COPYING"]);
    }
    out.extend(licenses);
    out.dedup();
    out
}

/// A regular file, not a link to one.
fn regular(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

/// A tar.xz of `entries` under the directory `top`, the same bytes for the
/// same inputs.
fn archive(path: &Path, top: &str, entries: &[Entry], mtime: u64) -> Result<()> {
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let xz = liblzma::write::XzEncoder::new(std::io::BufWriter::new(file), 6);
    let mut tar = tar::Builder::new(xz);
    tar.mode(tar::HeaderMode::Deterministic);
    let header = |size: u64, mode: u32, kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        let _ = h.set_username("root");
        let _ = h.set_groupname("root");
        h.set_mtime(mtime);
        h
    };
    let mut dir = header(0, 0o755, tar::EntryType::Directory);
    tar.append_data(&mut dir, format!("{top}/"), std::io::empty())?;
    for e in entries {
        let bytes = fs::read(&e.from).with_context(|| format!("reading {}", e.from.display()))?;
        let mut h = header(bytes.len() as u64, e.mode, tar::EntryType::Regular);
        tar.append_data(&mut h, &e.name, &bytes[..])
            .with_context(|| format!("archiving {}", e.name))?;
    }
    let xz = tar.into_inner()?;
    let mut out = xz.finish()?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}
