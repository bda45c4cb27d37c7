//! Stage "share": after a build that ran, what it produced is compared with
//! the shared store's signed manifest for the same inputs, and pushed when
//! the store has none. A manifest with other bytes is never replaced: the
//! build is NOT REPRODUCIBLE, diagnosed like `--check-determinism` (which
//! files, which sections, which crate), a warning, or exit 4 under
//! `--check-determinism`.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::sealed::TargetCtx;
use crate::cache::outputs::Entry;
use crate::cache::remote::{self, Pushed, manifest};
use crate::determinism::{self, Verdict};
use crate::ui;

/// The verdicts against the store (empty when it had nothing to compare).
pub fn compare_and_push(
    ctx: &TargetCtx<'_>,
    entries: &[(Entry, PathBuf)],
    deterministic: bool,
) -> Result<Vec<Verdict>> {
    let Some(store) = ctx.cache.remote() else {
        if ctx.plan.against_store {
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
    let pushed = store.push(ctx.cache, remote::OUTPUTS, &ctx.key, &files, deterministic);
    let target = &ctx.target.rust;
    let theirs = match pushed {
        Pushed::Written => {
            ui::status("Pushed", &format!("{target} outputs to {}", store.url));
            return Ok(Vec::new());
        }
        Pushed::Same => {
            ui::status(
                "Reproduced",
                &format!("{target}: the same bytes as the store's signed outputs for these inputs"),
            );
            return Ok(Vec::new());
        }
        Pushed::Nothing if ctx.plan.against_store => bail!(
            "--against-store: {} holds no trusted outputs for these inputs of {target} (key {}); nothing to compare with",
            store.url,
            ctx.key
        ),
        Pushed::Nothing => return Ok(Vec::new()),
        Pushed::Different(theirs) => theirs,
    };
    ui::warn(&format!(
        "NOT REPRODUCIBLE: {target}: this build's outputs differ from the signed outputs in {} for the same inputs (key {}); the store's are kept",
        store.url, ctx.key
    ));
    let tmp = ctx.cache.temp_dir("store-compare")?;
    let fetched = store.fetch(ctx.cache, remote::OUTPUTS, &ctx.key, tmp.path());
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
