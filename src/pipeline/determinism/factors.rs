//! What no sandbox fixes, one factor at a time. The check's second build
//! varies every [`Factor`] at once; when outputs differ, a control build with
//! nothing varied tells "nondeterministic on its own" (hash-map order,
//! threads, the clock) from "depends on the machine", and then one build per
//! factor names the factor, stopping once every differing binary is named.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::pipeline::publish::Staging;
use crate::pipeline::sealed::{self, SealedOutput, TargetCtx, Variant};
use crate::ui;

/// One thing about the machine that a sandbox cannot hide from a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// The number of jobs cargo runs (build scripts see it as `NUM_JOBS`).
    Jobs,
    /// The CPUs the build may use (affinity: one), at the primary's jobs.
    Cpus,
    /// The kernel release `uname` reports (2.6: personality `UNAME26`).
    Kernel,
    /// Address space layout randomisation (off).
    Aslr,
    /// The order of cargo's environment.
    EnvOrder,
    /// The date: a year later, for the programs libfaketime reaches.
    Date,
    /// The order directories list their entries (the sources on a tmpfs,
    /// written in another order).
    DirOrder,
    /// The sealed directory's path and its length, HOME and TMPDIR: fixed in
    /// the sandbox, so varied only without one.
    Path,
}

/// How many jobs the two kinds of build run.
#[derive(Debug, Clone, Copy)]
pub struct Jobs {
    /// The primary build's (`--jobs`, else cargo's default: the CPUs).
    pub primary: u32,
    /// The second build's: more than the CPUs.
    pub varied: u32,
}

impl Jobs {
    pub fn of(ctx: &TargetCtx<'_>) -> Jobs {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        Jobs {
            primary: ctx.plan.jobs.unwrap_or(cpus),
            varied: cpus + 2,
        }
    }
}

impl Factor {
    /// Every factor the builds of `ctx` can vary, in the order attribution
    /// tries them (jobs before CPUs: one CPU alone would change cargo's
    /// default jobs, so CPUs are varied at the primary's).
    pub fn all(ctx: &TargetCtx<'_>) -> Vec<Factor> {
        let mut all = vec![
            Factor::Jobs,
            Factor::Cpus,
            Factor::Kernel,
            Factor::Aslr,
            Factor::EnvOrder,
        ];
        if ctx.sandboxed && ctx.tc.faketime_in_sandbox().is_some() {
            all.push(Factor::Date);
        }
        if ctx.sandboxed && crate::sandbox::order::available() {
            all.push(Factor::DirOrder);
        }
        if !ctx.sandboxed {
            all.push(Factor::Path);
        }
        all
    }

    /// What is said and reported.
    pub fn describe(self, jobs: Jobs) -> String {
        match self {
            Factor::Jobs => format!("--jobs {}", jobs.varied),
            Factor::Cpus => "CPUs (one)".into(),
            Factor::Kernel => "kernel release (uname: 2.6)".into(),
            Factor::Aslr => "ASLR (off)".into(),
            Factor::EnvOrder => "environment order".into(),
            Factor::Date => "the date (a year later)".into(),
            Factor::DirOrder => "directory order (the sources on a tmpfs)".into(),
            Factor::Path => "path, HOME and TMPDIR (no sandbox fixes them)".into(),
        }
    }

    fn apply(self, v: &mut Variant, jobs: Jobs) {
        match self {
            Factor::Jobs => v.jobs = Some(jobs.varied),
            Factor::Cpus => {
                v.inherited.one_cpu = true;
                v.jobs = v.jobs.or(Some(jobs.primary));
            }
            Factor::Kernel => v.inherited.old_kernel = true,
            Factor::Aslr => v.inherited.no_aslr = true,
            Factor::EnvOrder => v.reverse_env = true,
            Factor::Date => v.later = true,
            Factor::DirOrder => v.other_order = true,
            Factor::Path => v.pad = 40,
        }
    }
}

/// A build from scratch that varies `factors` (none: the control build).
pub fn variant(factors: &[Factor], jobs: Jobs) -> Variant {
    let mut v = Variant::unvaried(false);
    for f in factors {
        f.apply(&mut v, jobs);
    }
    v
}

/// Why a binary differed between the two builds of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A build with nothing varied differs too.
    OnItsOwn,
    /// Varying this factor alone makes it differ.
    Factor(String),
    /// No factor alone: only some together.
    Combined,
}

impl Cause {
    pub fn describe(&self) -> String {
        match self {
            Cause::OnItsOwn => {
                "is nondeterministic on its own (a build with nothing varied differs too: hash-map order, threads, the clock)".into()
            }
            Cause::Factor(f) => format!("depends on {f}"),
            Cause::Combined => "depends on the varied factors together, on none alone".into(),
        }
    }
}

/// Find what each of `differing` (names of the primary's outputs) depends
/// on: a control build, then one build per factor until each is named.
/// `took` is how long the second build took (what each of these may take).
pub fn attribute(
    ctx: &TargetCtx<'_>,
    sysroot: &Path,
    primary: &SealedOutput,
    staging: &Staging,
    differing: &[String],
    took: Duration,
) -> Result<Vec<(String, Cause)>> {
    let jobs = Jobs::of(ctx);
    let factors = Factor::all(ctx);
    ui::status(
        "Attributing",
        &format!(
            "{} {}: a build with nothing varied, then one build per factor until each is explained (up to {} builds, about {:.0}s each)",
            differing.join(", "),
            if differing.len() == 1 {
                "differs"
            } else {
                "differ"
            },
            factors.len() + 1,
            took.as_secs_f64()
        ),
    );
    let mut left: Vec<String> = differing.to_vec();
    let mut found = Vec::new();
    let mut steps: Vec<(Cause, Vec<Factor>)> = vec![(Cause::OnItsOwn, Vec::new())];
    for f in &factors {
        steps.push((Cause::Factor(f.describe(jobs)), vec![*f]));
    }
    for (cause, varied) in steps {
        if left.is_empty() {
            break;
        }
        let started = Instant::now();
        let differ = differing_after(
            ctx,
            sysroot,
            primary,
            staging,
            &left,
            &variant(&varied, jobs),
        )?;
        tracing::info!(
            "attribution build varying {varied:?}: {} differ, {:.1}s",
            differ.len(),
            started.elapsed().as_secs_f64()
        );
        for name in differ {
            left.retain(|l| *l != name);
            found.push((name, cause.clone()));
        }
    }
    found.extend(left.into_iter().map(|name| (name, Cause::Combined)));
    Ok(found)
}

/// Which of `names` a build of `variant` makes differently from `primary`.
fn differing_after(
    ctx: &TargetCtx<'_>,
    sysroot: &Path,
    primary: &SealedOutput,
    staging: &Staging,
    names: &[String],
    variant: &Variant,
) -> Result<Vec<String>> {
    let dir = tempfile::Builder::new()
        .prefix(".xbuild-attribute-")
        .tempdir_in(staging.path())
        .context("creating an attribution build's output dir")?;
    let built = sealed::build(ctx, sysroot, variant, dir.path(), false)?;
    let mut differ = Vec::new();
    for name in names {
        let ours = primary.files.iter().find(|f| f.name == *name);
        let theirs = built.files.iter().find(|f| f.name == *name);
        let same = match (ours, theirs) {
            (Some(a), Some(b)) => {
                crate::cache::hash_file(&a.path)? == crate::cache::hash_file(&b.path)?
            }
            _ => false,
        };
        if !same {
            differ.push(name.clone());
        }
    }
    Ok(differ)
}
