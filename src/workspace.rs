//! The workspace as its manifests say, read in-process (no cargo exists
//! before provisioning): where its root is, found as cargo finds it, which
//! packages are its members, and which of them a build selects.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::exit::Usage;
use crate::rust_release::{Needs, Version};
use crate::sandbox;

/// The workspace root of the package or workspace whose manifest is
/// `manifest`, found as cargo finds it, without cargo (none may exist before
/// provisioning): a manifest with `[workspace]` is its own root; a package
/// with `package.workspace = "path"` names its root; otherwise the nearest
/// manifest above with `[workspace]` is the root if it lists the package as a
/// member (or does not exclude it, for globs cargo would check), and the
/// package is its own root if none does.
pub fn find_workspace_root(manifest: &Path) -> Result<PathBuf> {
    let dir = manifest
        .parent()
        .context("the manifest path has no parent directory")?;
    let doc = read_manifest(manifest)?;
    if doc.get("workspace").is_some() {
        return Ok(dir.to_path_buf());
    }
    if let Some(ws) = doc
        .get("package")
        .and_then(|p| p.get("workspace"))
        .and_then(|w| w.as_str())
    {
        return Ok(sandbox::sources::normalize(&dir.join(ws)));
    }
    for above in dir.ancestors().skip(1) {
        let candidate = above.join("Cargo.toml");
        if !candidate.is_file() {
            continue;
        }
        let Ok(doc) = read_manifest(&candidate) else {
            continue;
        };
        let Some(ws) = doc.get("workspace") else {
            continue;
        };
        let rel = dir.strip_prefix(above).unwrap_or(dir);
        if lists_member(ws, rel) {
            return Ok(above.to_path_buf());
        }
    }
    Ok(dir.to_path_buf())
}

pub fn read_manifest(path: &Path) -> Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| Usage(format!("{} is not valid TOML: {e}", path.display())).into())
}

/// Whether a `[workspace]` table's `members` (globs with `*`) include `rel`
/// and its `exclude` does not.
fn lists_member(ws: &toml::Value, rel: &Path) -> bool {
    let Some(ws) = ws.as_table() else {
        return false;
    };
    let rel = rel.to_string_lossy();
    !excluded(&patterns(ws, "exclude"), &rel)
        && patterns(ws, "members").iter().any(|p| glob_match(p, &rel))
}

/// A `[workspace]` list of paths or globs (`members`, `exclude`,
/// `default-members`), without trailing slashes.
fn patterns(ws: &toml::Table, key: &str) -> Vec<String> {
    ws.get(key)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str())
                .map(|s| s.trim_end_matches('/').to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `exclude` leaves out `rel`: a match, or a directory above it.
fn excluded(exclude: &[String], rel: &str) -> bool {
    exclude
        .iter()
        .any(|p| glob_match(p, rel) || rel.starts_with(&format!("{p}/")))
}

/// `*` matches within one path component; `?` one character.
fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    p.len() == s.len()
        && p.iter()
            .zip(&s)
            .all(|(p, s)| component_match(p.as_bytes(), s.as_bytes()))
}

fn component_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            component_match(&p[1..], s) || (!s.is_empty() && component_match(p, &s[1..]))
        }
        (Some(b'?'), Some(_)) => component_match(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => component_match(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The member directories of the workspace at `root` (relative paths),
/// as `members` globs (one component per `*`) and `exclude` give them.
/// Path dependencies that cargo makes members without a listing are not
/// among them (cargo checks their `rust-version` itself).
pub fn members(root: &Path, ws: &toml::Table) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for pattern in patterns(ws, "members") {
        let mut dirs = vec![PathBuf::new()];
        for part in pattern.split('/').filter(|p| !p.is_empty() && *p != ".") {
            let mut next = Vec::new();
            for d in &dirs {
                if part.contains(['*', '?']) {
                    let Ok(entries) = std::fs::read_dir(root.join(d)) else {
                        continue;
                    };
                    let mut names: Vec<String> = entries
                        .flatten()
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| component_match(part.as_bytes(), n.as_bytes()))
                        .collect();
                    names.sort();
                    next.extend(names.into_iter().map(|n| d.join(n)));
                } else {
                    next.push(d.join(part));
                }
            }
            dirs = next;
        }
        found.extend(
            dirs.into_iter()
                .filter(|d| root.join(d).join("Cargo.toml").is_file()),
        );
    }
    let exclude = patterns(ws, "exclude");
    found.retain(|d| !excluded(&exclude, &d.to_string_lossy()));
    found.sort();
    found.dedup();
    found
}

/// Which packages cargo builds, as xbuild passes the selection on: `-p`
/// names them; `--workspace` takes every member but `--exclude`; otherwise
/// the package whose manifest is given, or the root's `default-members`,
/// or every member. Packages `-p` names that are not members (a
/// dependency) are left to cargo.
pub struct Selection<'a> {
    pub packages: &'a [String],
    pub workspace: bool,
    pub exclude: &'a [String],
}

/// The selected packages that say which Rust they need (`rust-version`,
/// their own or the workspace's `[workspace.package]` one).
/// The directories of the workspace's packages (relative; the root's own
/// package as the empty path, first).
fn package_dirs(root: &Path, root_doc: &toml::Table) -> Vec<PathBuf> {
    let ws = root_doc.get("workspace").and_then(|w| w.as_table());
    let mut dirs = ws.map(|w| members(root, w)).unwrap_or_default();
    if root_doc.contains_key("package") && !dirs.iter().any(|d| d.as_os_str().is_empty()) {
        dirs.insert(0, PathBuf::new());
    }
    dirs
}

/// What a release archive says of a package: its manifest's keys, with
/// `key.workspace = true` taken from `[workspace.package]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// Relative to the workspace root.
    pub dir: PathBuf,
    pub name: String,
    pub version: String,
    pub license_file: Option<String>,
    pub readme: Option<String>,
}

/// Every package of the workspace at `root`, as [`PackageInfo`].
pub fn packages(root: &Path) -> Result<Vec<PackageInfo>> {
    let root_doc = read_manifest(&root.join("Cargo.toml"))?;
    let inherited = root_doc
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.as_table())
        .cloned()
        .unwrap_or_default();
    let mut all = Vec::new();
    for dir in package_dirs(root, &root_doc) {
        let doc = read_manifest(&root.join(&dir).join("Cargo.toml"))?;
        let Some(package) = doc.get("package").and_then(|p| p.as_table()) else {
            continue;
        };
        let key = |k: &str| -> Option<String> {
            match package.get(k) {
                Some(toml::Value::String(s)) => Some(s.clone()),
                Some(toml::Value::Table(t))
                    if t.get("workspace").and_then(|w| w.as_bool()) == Some(true) =>
                {
                    inherited.get(k).and_then(|v| v.as_str()).map(String::from)
                }
                _ => None,
            }
        };
        all.push(PackageInfo {
            name: key("name").unwrap_or_default(),
            // cargo's default when a manifest has none
            version: key("version").unwrap_or_else(|| "0.0.0".into()),
            license_file: key("license-file"),
            readme: key("readme"),
            dir,
        });
    }
    Ok(all)
}

pub fn rust_versions(root: &Path, manifest: &Path, sel: &Selection<'_>) -> Result<Vec<Needs>> {
    let root_doc = read_manifest(&root.join("Cargo.toml"))?;
    let ws = root_doc.get("workspace").and_then(|w| w.as_table());
    let inherited = ws
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("rust-version"))
        .and_then(|v| v.as_str())
        .map(String::from);
    let mut all = Vec::new();
    let dirs = package_dirs(root, &root_doc);
    for dir in &dirs {
        let path = root.join(dir).join("Cargo.toml");
        let doc = read_manifest(&path)?;
        let Some(package) = doc.get("package").and_then(|p| p.as_table()) else {
            continue;
        };
        let name = package
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string();
        let said = match package.get("rust-version") {
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(toml::Value::Table(t))
                if t.get("workspace").and_then(|w| w.as_bool()) == Some(true) =>
            {
                inherited.clone()
            }
            _ => None,
        };
        let version = match said {
            Some(s) => Some(Version::parse(&s).ok_or_else(|| {
                Usage(format!(
                    "{}: rust-version {s:?} is not a Rust version (like \"1.85\")",
                    path.display()
                ))
            })?),
            None => None,
        };
        all.push((dir.clone(), name, path, version));
    }
    let default_members: Option<Vec<String>> = ws
        .filter(|w| w.contains_key("default-members"))
        .map(|w| patterns(w, "default-members"));
    let given = manifest
        .parent()
        .and_then(|d| d.strip_prefix(root).ok())
        .map(Path::to_path_buf);
    let selected = |dir: &PathBuf, name: &str| -> bool {
        if !sel.packages.is_empty() {
            return sel
                .packages
                .iter()
                .any(|p| p == name || p.split('@').next() == Some(name));
        }
        if sel.workspace {
            return !sel.exclude.iter().any(|e| e == name);
        }
        match (&given, &default_members) {
            // a member's manifest, or the root package's
            (Some(g), _) if all.iter().any(|(d, ..)| d == g) => dir == g,
            (_, Some(defaults)) => defaults
                .iter()
                .any(|d| glob_match(d, &dir.to_string_lossy())),
            _ => true,
        }
    };
    Ok(all
        .iter()
        .filter(|(dir, name, ..)| selected(dir, name))
        .filter_map(|(_, name, path, version)| {
            version.map(|v| Needs {
                package: name.clone(),
                manifest: path.clone(),
                rust_version: v,
            })
        })
        .collect())
}

#[cfg(test)]
#[path = "workspace_tests.rs"]
mod tests;
