//! The pipeline of one `xbuild` run, stage by stage:
//!
//! resolve (`plan`) → provision (`toolchain`) → snapshot (`sandbox::snapshot`)
//! → per target: outputs cache hit, local or shared (`verify`)? → std
//! (`stdlib`) → seal + build (`sealed`, `cargo`; compiled units restored
//! from and published to the store: `units`) → verify (`verify`) →
//! determinism (`determinism`) or tests (`testrun`) → compared with and
//! pushed to the shared store (`shared`) → report and publish (`report`,
//! `publish`). The toolchain is provisioned when a target first needs it.
//!
//! [`run`] reads as that list; each stage lives in its own module.

mod cargo;
pub mod determinism;
mod dist;
mod launcher;
mod prewarm;
pub mod publish;
pub mod report;
pub mod sealed;
mod store;
mod units;
pub mod verify;

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};

use self::publish::Staging;
use self::report::TargetReport;
use self::sealed::{TargetCtx, Variant};
use self::verify::Artifact;
use crate::cache::{Cache, keys, outputs};
use crate::plan::Plan;
use crate::sandbox::{Snapshot, sources};
use crate::targets::Target;
use crate::testrun::{Outcome, Status};
use crate::toolchain;
use crate::{env, stdlib, ui};

/// What a run produced: the verified executables, and per target the test
/// outcomes (empty unless `--test` ran tests) and the determinism verdicts.
#[derive(Default)]
pub struct Outcomes {
    pub artifacts: Vec<Artifact>,
    pub tests: Vec<(String, Vec<Outcome>)>,
    pub determinism: Vec<determinism::Verdict>,
    pub reports: Vec<TargetReport>,
    built_any: bool,
    /// The units the target being built started from (see `units`).
    restored: Option<crate::cache::units::Restored>,
}

/// Run the plan: every target into a staging tree, then publish it whole.
/// The toolchain is provisioned only when a target must be built.
pub fn run(plan: &Plan, cache: &Cache) -> Result<Outcomes> {
    let mut sandbox = Sandboxing::Undecided;
    if plan.workspace_pins.is_some() {
        // before anything of the workspace's toolchain could run (rustc's
        // cfg values): refused without a sandbox
        sandbox.decide(plan, cache)?;
    }
    let tools = provision(plan, cache);
    announce(plan);
    let snapshot = Snapshot::take(cache, &plan.workspace_root)?;
    let epoch = sources::source_date_epoch(&plan.workspace_root);
    let staging = Staging::new(&plan.out_dir, plan.test.is_some())?;
    let mut out = Outcomes::default();
    let mut warned = false;
    for target in &plan.targets {
        if env::interrupted() {
            bail!("interrupted");
        }
        let started = Instant::now();
        let flags = plan.rustflags(&tools, target, &snapshot.root)?;
        let outputs_key =
            |sandboxed| outputs_key(plan, target, &flags.flags, &snapshot, &epoch, sandboxed);
        let dir = staging.dir_for(target)?;
        // what a sandboxed build made is looked for first, before anything
        // decides whether this run can sandbox: a run of cache hits starts
        // no sandbox and installs nothing
        let mut key = outputs_key(true);
        let mut cached = verify::from_cache(plan, cache, target, &key, &dir, staging.path())?;
        let mut sandboxed = true;
        if cached.is_none() {
            sandboxed = sandbox.decide(plan, cache)?;
            if !sandboxed {
                key = outputs_key(false);
                cached = verify::from_cache(plan, cache, target, &key, &dir, staging.path())?;
            }
        }
        let hit = cached.is_some();
        match cached {
            Some(hit) => {
                // only what a sandboxed build made (the first lookup) is
                // ever offered to a store
                if hit.local && sandboxed {
                    let entries = verify::entries(&hit.artifacts, staging.path());
                    let offer = store::Offer::Cached;
                    out.determinism.extend(store::compare_and_push(
                        plan, cache, target, &key, &entries, offer,
                    )?);
                }
                out.artifacts.extend(hit.artifacts);
            }
            None => {
                if !warned {
                    sources::warn_untracked(&plan.workspace_root);
                    warned = true;
                }
                let ctx = TargetCtx {
                    plan,
                    cache,
                    tc: tools.get()?,
                    target,
                    snapshot: &snapshot,
                    epoch: &epoch,
                    key,
                    flags: flags.flags.clone(),
                    sandboxed,
                    empty_kept: plan.rebuild && !out.built_any,
                };
                build_target(&ctx, &dir, &staging, &mut out)?;
            }
        }
        let mut report = TargetReport::new(target, flags, started, hit, sandboxed);
        report.units_restored = out.restored.take();
        out.reports.push(report);
    }
    if let Some(store) = cache.store() {
        store.save_stats(cache);
    }
    if out.artifacts.is_empty() && plan.test.is_none() {
        bail!(
            "cargo built no executables; does the selection ({}) contain binaries?",
            plan.describe_selection()
        );
    }
    report::write(plan, &epoch, &out, staging.path())?;
    if plan.dist {
        let archives = dist::write(&snapshot.root, &epoch, &out.artifacts, staging.path())?;
        ui::status(
            "Archived",
            &format!(
                "{} release archive(s) and SHA256SUMS into {}",
                archives.len(),
                plan.out_dir.join(dist::DIR).display()
            ),
        );
    }
    staging.publish(&plan.out_dir)?;
    if out.built_any {
        // within the cache's bound (this run's mirror is still held)
        crate::cache::bound(cache)?;
    }
    Ok(out)
}

/// Whether this run's builds are sandboxed: decided when the first target
/// must be built, not before.
enum Sandboxing {
    Undecided,
    Decided(bool),
}

impl Sandboxing {
    /// Decide once: offer the build root's bubblewrap (installing the root
    /// first on a host without one), probe, warn or fail as the run asks, and
    /// refuse what only a sandbox makes safe.
    fn decide(&mut self, plan: &Plan, cache: &Cache) -> Result<bool> {
        if let Sandboxing::Decided(sandboxed) = *self {
            return Ok(sandboxed);
        }
        toolchain::prepare_sandbox(cache, &plan.pins, plan.mode)?;
        let sandboxed = crate::sandbox::check(plan.require_sandbox)?;
        crate::sandbox::refuse_workspace_pins(sandboxed, plan.workspace_pins.as_deref())?;
        if !sandboxed && let Some(store) = cache.store() {
            store.stop_writing(
                "builds are not sandboxed here, and what an unsandboxed build made cannot be vouched for (reading the store goes on)",
            );
        }
        *self = Sandboxing::Decided(sandboxed);
        Ok(sandboxed)
    }
}

/// One target, when the cache had nothing: std, the sealed build, verify,
/// then the determinism check or the tests, and the outputs cached.
fn build_target(
    ctx: &TargetCtx<'_>,
    dir: &Path,
    staging: &Staging,
    out: &mut Outcomes,
) -> Result<()> {
    let (plan, target, started) = (ctx.plan, ctx.target, Instant::now());
    let std_flags = plan.std_rustflags(target);
    let std = stdlib::Std::new(ctx.cache, ctx.tc, target, &std_flags, plan.test.is_some());
    // zig's C runtime for the target before the first link (while std
    // compiles, when it must): built in a fixed place, see prewarm
    let warming = prewarm::start(ctx)
        .inspect_err(|e| tracing::info!("not warming zig's cache: {e:#}"))
        .ok()
        .flatten();
    if warming.is_some() && std.ready() {
        // nothing else runs meanwhile: say what the wait is
        ui::status(
            "Building",
            &format!(
                "zig's C runtime for {} (musl, crt, compiler_rt, libunwind; once per kind of link)",
                target.rust
            ),
        );
    }
    let sysroot = std.ensure(ctx.sandboxed);
    if let Some(w) = warming {
        let _ = w.join();
    }
    let sysroot = sysroot?;
    let primary = sealed::build(ctx, &sysroot, &Variant::primary(plan), dir, true)?;
    let artifacts = verify::outputs(target, &primary.files, staging.path())?;
    out.built_any = true;
    out.restored = primary.restored.clone();
    if let Some(tests) = primary.outcomes.clone() {
        out.tests.push((target.rust.clone(), tests));
    }
    let mut deterministic = true;
    // --against-store: the store's outputs are the other build
    if plan.check_determinism && !plan.against_store {
        let verdicts = determinism::check(ctx, &sysroot, &primary, staging)?;
        deterministic = verdicts.iter().all(|v| v.identical);
        out.determinism.extend(verdicts);
    }
    if plan.test.is_none() {
        let entries = verify::entries(&artifacts, staging.path());
        if deterministic {
            outputs::save(ctx.cache, &ctx.key, &entries)?;
        }
        // the shared store: compared with what it holds, given what it lacks
        let offer = store::Offer::Built { deterministic };
        out.determinism.extend(store::compare_and_push(
            plan, ctx.cache, target, &ctx.key, &entries, offer,
        )?);
    }
    out.artifacts.extend(artifacts);
    let secs = started.elapsed().as_secs_f64();
    ui::status("Finished", &format!("{} in {secs:.1}s", target.rust));
    Ok(())
}

/// Stage "provision": the pinned toolchain, with qemu only when tests run;
/// provisioned when first needed.
fn provision<'a>(plan: &'a Plan, cache: &'a Cache) -> toolchain::Lazy<'a> {
    use crate::toolchain::manifest::ComponentKind;
    let kinds = match &plan.test {
        Some(t) if !t.no_run => toolchain::components_for(&plan.targets),
        _ => vec![ComponentKind::Rust, ComponentKind::Zig],
    };
    toolchain::Lazy::new(cache, &plan.pins, kinds, plan.mode)
}

/// What the user should know before the run starts.
fn announce(plan: &Plan) {
    if let Some(user) = &plan.user_rustflags {
        ui::warn(&format!(
            "RUSTFLAGS is set (`{user}`): xbuild's per-target flags are not applied, only the toolchain's own `{}`",
            crate::plan::TOOLCHAIN_RUSTFLAGS.join(" ")
        ));
    }
    if plan.test.is_some() {
        ui::note(
            "doctests are not built or run by `xbuild --test` (rustdoc cannot run them under qemu); run `cargo test --doc` on the host",
        );
    }
}

/// The outputs key of one target: every input that can change its bytes,
/// the snapshot's digest among them.
fn outputs_key(
    plan: &Plan,
    target: &Target,
    flags: &[String],
    snapshot: &Snapshot,
    epoch: &str,
    sandboxed: bool,
) -> String {
    keys::outputs(&keys::Outputs {
        pins: &plan.pins.digest(),
        target: &target.rust,
        flags,
        selection: &plan.selection_key(),
        manifest: &plan.rel_manifest().display().to_string(),
        git_version: plan.git_version.as_deref(),
        epoch,
        snapshot: &snapshot.digest,
        sandboxed,
    })
}

impl Outcomes {
    /// Whether the determinism check (if asked) found every output identical.
    pub fn deterministic(&self) -> bool {
        self.determinism.iter().all(|v| v.identical)
    }

    /// Whether every test binary passed.
    pub fn tests_passed(&self) -> bool {
        self.tests
            .iter()
            .all(|(_, o)| o.iter().all(|o| o.status == Status::Pass))
    }
}
