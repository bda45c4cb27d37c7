//! Stage "verify": every executable is read as ELF against the target's
//! policy (no interpreter, no shared libraries, the right type and machine)
//! and hashed. Also the outputs-cache hit, whose files are verified the same.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::sealed::Output;
use crate::cache::{self, Cache, outputs, store};
use crate::elf::{self, ElfInfo};
use crate::plan::Plan;
use crate::targets::Target;
use crate::ui;

/// One verified executable.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub nix_target: String,
    pub rust_target: String,
    pub package: String,
    pub name: String,
    /// `bin`, or for test binaries the kind of target they test (`lib`, `bin`, `test`).
    pub kind: String,
    /// Relative to the output directory.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub elf: ElfInfo,
    pub linkage: &'static str,
}

fn artifact(target: &Target, out: &Output, staging: &Path, sha256: String) -> Result<Artifact> {
    let info = elf::verify(&out.path, &target.elf)?;
    Ok(Artifact {
        nix_target: target.nix.clone(),
        rust_target: target.rust.clone(),
        package: out.package.clone(),
        name: out.name.clone(),
        kind: out.kind.clone(),
        path: out
            .path
            .strip_prefix(staging)
            .unwrap_or(&out.path)
            .display()
            .to_string(),
        sha256,
        size: fs::metadata(&out.path)
            .with_context(|| format!("reading {}", out.path.display()))?
            .len(),
        elf: info,
        linkage: "static",
    })
}

/// Outputs fetched from the store, each checked as an executable for
/// `target` before anything becomes a local entry: one that fails is a miss
/// (the store's warning says which and why, and its numbers count it),
/// never a failed run.
fn elf_checked(
    store: &store::Store,
    target: &Target,
    key: &str,
    body: store::manifest::Body,
    dir: &Path,
) -> Option<store::manifest::Body> {
    for f in &body.files {
        if let Err(e) = elf::verify(&dir.join(&f.path), &target.elf) {
            store.reject(&format!(
                "the outputs {key} are not used: {} is signed but not a valid executable for {}: {e:#}; building locally",
                f.path, target.rust
            ));
            return None;
        }
    }
    Some(body)
}

/// Verify and hash what a build left in the staging tree.
pub fn outputs(target: &Target, files: &[Output], staging: &Path) -> Result<Vec<Artifact>> {
    files
        .iter()
        .map(|f| artifact(target, f, staging, cache::hash_file(&f.path)?))
        .collect()
}

/// The cache entries of verified artifacts (paths in the staging tree).
pub fn entries(artifacts: &[Artifact], staging: &Path) -> Vec<(outputs::Entry, PathBuf)> {
    artifacts
        .iter()
        .map(|a| {
            (
                outputs::Entry {
                    name: a.name.clone(),
                    package: a.package.clone(),
                    kind: a.kind.clone(),
                    sha256: a.sha256.clone(),
                },
                staging.join(&a.path),
            )
        })
        .collect()
}

/// Outputs a run did not build: where they came from, verified.
pub struct Hit {
    pub artifacts: Vec<Artifact>,
    /// From the local cache (not fetched from the shared store this run).
    pub local: bool,
}

/// The cached outputs of exactly these inputs, from the local cache or else
/// the shared store (kept locally first), copied into `dir` and verified;
/// `None` when there are none or the run must build.
pub fn from_cache(
    plan: &Plan,
    cache: &Cache,
    target: &Target,
    key: &str,
    dir: &Path,
    staging: &Path,
) -> Result<Option<Hit>> {
    let cacheable =
        plan.test.is_none() && !plan.check_determinism && !plan.rebuild && !plan.keep_sealed;
    if !cacheable {
        return Ok(None);
    }
    let mut from = "the cache";
    let mut found = outputs::lookup(cache, key)?;
    if found.is_none()
        && let Some(store) = cache.store()
    {
        let tmp = cache.temp_dir("from-store")?;
        if let Some(body) = store.fetch(cache, store::OUTPUTS, key, tmp.path())
            && let Some(body) = elf_checked(store, target, key, body, tmp.path())
        {
            let entries: Vec<_> = body
                .files
                .iter()
                .map(|f| {
                    let entry = outputs::Entry {
                        name: f.path.clone(),
                        package: f.package.clone().unwrap_or_default(),
                        kind: f.kind.clone().unwrap_or_else(|| "bin".into()),
                        sha256: f.sha256.clone(),
                    };
                    (entry, tmp.path().join(&f.path))
                })
                .collect();
            outputs::save(cache, key, &entries)?;
            found = outputs::lookup(cache, key)?;
            from = "the shared store";
        }
    }
    let Some((cached, entries)) = found else {
        return Ok(None);
    };
    let mut artifacts = Vec::new();
    for e in entries {
        let dest = dir.join(&e.name);
        fs::copy(cached.join(&e.name), &dest)
            .with_context(|| format!("copying the cached {}", e.name))?;
        let out = Output {
            name: e.name,
            package: e.package,
            kind: e.kind,
            path: dest,
        };
        artifacts.push(artifact(target, &out, staging, e.sha256)?);
    }
    let whence = match cache.store() {
        Some(r) if from == "the shared store" => format!("{from} {}", r.url),
        _ => from.to_string(),
    };
    ui::status(
        "Fresh",
        &format!(
            "{}: inputs unchanged, outputs from {whence} (sha256 re-checked; --rebuild to build)",
            target.rust
        ),
    );
    Ok(Some(Hit {
        artifacts,
        local: from == "the cache",
    }))
}
