//! Stage "units" of a sealed build with a kept dir: compiled units restored
//! from the store before the build when the kept dir is new, and published
//! after a build that signs (see `cache::units`).

use std::time::Instant;

use anyhow::Result;

use super::sealed::TargetCtx;
use crate::cache::deps::Checkout;
use crate::cache::keys;
use crate::cache::units::{self, Restored};
use crate::ui;

/// The exact key of this build's units, then the fallback one (without the
/// lockfile's digest).
fn keys_for(ctx: &TargetCtx<'_>) -> [String; 2] {
    let plan = ctx.plan;
    let pins = ctx.tc.pins.build_digest();
    let selection = plan.selection_key();
    let manifest = plan.rel_manifest().display().to_string();
    let lockfile = units::lockfile_digest(&ctx.snapshot.root);
    let base = keys::Units {
        pins: &pins,
        target: &ctx.target.rust,
        mode: if plan.test.is_some() { "test" } else { "build" },
        selection: &selection,
        manifest: &manifest,
        flags: &ctx.flags,
        lockfile: Some(&lockfile),
    };
    [
        keys::units(&base),
        keys::units(&keys::Units {
            lockfile: None,
            ..base
        }),
    ]
}

/// Before the build (after `cargo fetch`, so that every crate it unpacked
/// is older than the units): when the kept dir has no units for this
/// target yet (new, or its other targets' only) and a store is configured,
/// its newest units for this build. A store without them is a
/// miss, said by nothing; a bad entry a miss said once (by the store).
pub fn restore(ctx: &TargetCtx<'_>, kept: &Checkout) -> Result<Option<Restored>> {
    let Some(store) = ctx.cache.store() else {
        return Ok(None);
    };
    // this target and profile compiled here before (`plan.profile()` is
    // cargo's directory for the profile)
    let built_here = kept
        .target
        .join(&ctx.target.rust)
        .join(ctx.plan.profile())
        .join(".fingerprint")
        .exists();
    if !ctx.sandboxed || built_here || ctx.plan.rebuild || !store.usable() {
        return Ok(None);
    }
    let Some((restored, sources, at)) =
        units::restore(ctx.cache, store, &kept.target, &keys_for(ctx))?
    else {
        return Ok(None);
    };
    kept.restored(ctx.cache, &sources, at)?;
    ui::status(
        "Restored",
        &format!(
            "{} compiled units for {} from the store{} ({:.1} MiB in {:.1}s)",
            restored.units,
            ctx.target.rust,
            if restored.fallback {
                " (fallback entry: another lockfile)"
            } else {
                ""
            },
            restored.bytes as f64 / 1048576.0,
            restored.secs
        ),
    );
    Ok(Some(restored))
}

/// After a build that may sign: its kept dir's units, to the store.
pub fn publish(ctx: &TargetCtx<'_>, kept: &Checkout) {
    let Some(store) = ctx.cache.store() else {
        return;
    };
    if !ctx.sandboxed || !store.writes() {
        return;
    }
    let started = Instant::now();
    match units::publish(
        ctx.cache,
        store,
        kept.dir(),
        (&kept.target, &ctx.target.rust),
        &kept.sources(),
        &keys_for(ctx),
    ) {
        Ok(Some(p)) => ui::status(
            "Published",
            &format!(
                "{} compiled units for {} to the store ({} packed, {:.1}s)",
                p.units,
                ctx.target.rust,
                p.packed,
                started.elapsed().as_secs_f64()
            ),
        ),
        Ok(None) => {}
        Err(e) => ui::warn(&format!(
            "the compiled units for {} were not published: {e:#}",
            ctx.target.rust
        )),
    }
}
