//! Stage "share": after a build that ran (or a hit in the local cache of
//! what a sandboxed build made), the outputs are compared with the shared
//! store's signed manifest for the same inputs, and pushed when the store
//! has none. A manifest with other bytes is never replaced: the
//! build is NOT REPRODUCIBLE, diagnosed like `--check-determinism` (which
//! files, which sections, which crate), a warning, or exit 4 under
//! `--check-determinism`.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cache::Cache;
use crate::cache::outputs::Entry;
use crate::cache::store::{self, Pushed, manifest};
use crate::pipeline::determinism::{self, Verdict};
use crate::plan::Plan;
use crate::targets::Target;
use crate::ui;

/// What a run offers the store for one target.
#[derive(Clone, Copy)]
pub enum Offer {
    /// Built by this run; not pushed when it was not deterministic here.
    Built { deterministic: bool },
    /// A sandboxed build's outputs from the local cache: perhaps built
    /// before the store was set up (or before it was trimmed), so offered
    /// too. Quiet when the store holds the same.
    Cached,
}

/// The verdicts against the store (empty when it had nothing to compare).
pub fn compare_and_push(
    plan: &Plan,
    cache: &Cache,
    target: &Target,
    key: &str,
    entries: &[(Entry, PathBuf)],
    offer: Offer,
) -> Result<Vec<Verdict>> {
    let Some(store) = cache.store() else {
        if plan.against_store {
            bail!("--against-store needs a shared store: set XBUILD_CACHE_URL or --cache-url");
        }
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for (e, path) in entries {
        files.push((
            manifest::File {
                path: e.name.clone(),
                sha256: e.sha256.clone(),
                size: std::fs::metadata(path)?.len(),
                package: Some(e.package.clone()),
                kind: Some(e.kind.clone()),
            },
            path.clone(),
        ));
    }
    // a build that was not deterministic here is not offered to others
    let may_write = match offer {
        Offer::Built { deterministic } => deterministic,
        Offer::Cached => true,
    };
    let pushed = store.push(cache, store::OUTPUTS, key, &files, may_write);
    let target = &target.rust;
    let (what, cached) = match offer {
        Offer::Built { .. } => ("this build's outputs", false),
        Offer::Cached => ("the cached outputs", true),
    };
    let theirs = match pushed {
        Pushed::Written => {
            let whence = if cached { " (cached here)" } else { "" };
            ui::status(
                "Pushed",
                &format!("{target} outputs{whence} to {}", store.url),
            );
            return Ok(Vec::new());
        }
        Pushed::Same if cached => return Ok(Vec::new()),
        Pushed::Same => {
            ui::status(
                "Reproduced",
                &format!("{target}: the same bytes as the store's signed outputs for these inputs"),
            );
            return Ok(Vec::new());
        }
        Pushed::Nothing if plan.against_store => bail!(
            "--against-store: {} holds no trusted outputs for these inputs of {target} (key {key}); nothing to compare with",
            store.url,
        ),
        Pushed::Nothing => return Ok(Vec::new()),
        Pushed::Different(theirs) => theirs,
    };
    ui::warn(&format!(
        "NOT REPRODUCIBLE: {target}: {what} differ from the signed outputs in {} for the same inputs (key {key}); the store's are kept",
        store.url
    ));
    let tmp = cache.temp_dir("store-compare")?;
    let fetched = store.fetch(cache, store::OUTPUTS, key, tmp.path());
    let mut verdicts = Vec::new();
    for (f, path) in &files {
        let other = theirs.files.iter().find(|t| t.path == f.path);
        let there = fetched
            .as_ref()
            .and(other)
            .map(|t| tmp.path().join(&t.path));
        let mut v = determinism::compare(target, &f.path, path, there.as_deref(), &[])?;
        if other.is_some() && there.is_none() {
            v.diagnosis = vec!["the store's copy could not be fetched to compare".into()];
        }
        v.against = determinism::STORE;
        determinism::print(&v);
        verdicts.push(v);
    }
    for t in &theirs.files {
        if !files.iter().any(|(f, _)| f.path == t.path) {
            ui::warn(&format!(
                "{target}: the store's outputs have {} which this build did not produce",
                t.path
            ));
        }
    }
    Ok(verdicts)
}
