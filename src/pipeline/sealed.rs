//! Stages "seal" and "build" for one target: a sealed directory from the
//! run's snapshot, the locked dependencies fetched, cargo run inside it
//! offline, the executables copied out, and (for `--test`) the tests run.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::cargo::{self, CargoRun};
use super::prewarm;
use super::report;
use crate::cache::{Cache, deps, keys};
use crate::cargo_env::CargoEnv;
use crate::plan::Plan;
use crate::process::Inherited;
use crate::sandbox::{self, Sealed, Snapshot};
use crate::targets::Target;
use crate::testrun::{self, Outcome};
use crate::toolchain::Toolchain;
use crate::{ui, zigcc};

/// What every build of one target in this run shares.
pub struct TargetCtx<'a> {
    pub plan: &'a Plan,
    pub cache: &'a Cache,
    pub tc: &'a Toolchain,
    pub target: &'a Target,
    pub snapshot: &'a Snapshot,
    pub epoch: &'a str,
    /// The target's RUSTFLAGS (the table's and the workspace's, or the
    /// user's; and the toolchain's).
    pub flags: Vec<String>,
    /// Whether builds run in the sandbox.
    pub sandboxed: bool,
    /// The outputs key of this target's build.
    pub key: String,
    /// `--rebuild`, and the first build of the run: the kept dir is
    /// emptied (later targets of the run build on this run's host side).
    pub empty_kept: bool,
}

/// What a sealed build changes of the machine it runs on: nothing for the
/// build whose outputs are published; for the builds of
/// `--check-determinism`, the factors no sandbox fixes (`determinism::factors`).
#[derive(Debug, Clone)]
pub struct Variant {
    /// Extra path length of the sealed directory.
    pub pad: usize,
    /// What the build's processes start with (umask, personality, CPUs).
    pub inherited: Inherited,
    pub reverse_env: bool,
    /// The clock a year on (libfaketime preloaded; sandboxed builds in a
    /// build root that has it).
    pub later: bool,
    /// The sources in another directory order (sandboxed builds).
    pub other_order: bool,
    pub jobs: Option<u32>,
    /// Build in the kept target dir of the dependency cache.
    pub reuse_deps: bool,
}

impl Variant {
    /// The build whose outputs are published.
    pub fn primary(plan: &Plan) -> Variant {
        Variant::unvaried(!plan.keep_sealed)
    }

    /// A build that varies nothing of the machine.
    pub fn unvaried(reuse_deps: bool) -> Variant {
        Variant {
            pad: 0,
            inherited: Inherited::BUILD,
            reverse_env: false,
            later: false,
            other_order: false,
            jobs: None,
            reuse_deps,
        }
    }
}

/// One executable a sealed build left in the staging tree.
#[derive(Debug, Clone)]
pub struct Output {
    /// Its stable name in the output directory.
    pub name: String,
    pub package: String,
    pub kind: String,
    /// Where it was copied.
    pub path: PathBuf,
}

/// What one sealed build left.
pub struct SealedOutput {
    pub files: Vec<Output>,
    pub outcomes: Option<Vec<Outcome>>,
    /// The sealed directory's path while it existed (for the diagnosis).
    pub sealed_root: PathBuf,
    /// Compiled units the build started from, restored from the store.
    pub restored: Option<crate::cache::units::Restored>,
}

/// Where a sealed build sees zig and its zig cache: at fixed paths in the
/// sandbox (see `sandbox::FIXED_ZIG`), so that nothing zig builds depends on
/// where the cache is; where they are without one. zig is read-only; the zig
/// cache is the build's own (see `prewarm`).
pub struct ZigView {
    /// zig's directory as the build sees it.
    pub dir: PathBuf,
    /// The zig cache as the build sees it.
    pub cache: PathBuf,
    real_dir: PathBuf,
    real_cache: PathBuf,
}

impl ZigView {
    /// zig, and `zig_cache` (a real path) as the build's zig cache.
    pub fn of(ctx: &TargetCtx<'_>, zig_cache: &Path) -> ZigView {
        let tc = ctx.tc;
        let (real_dir, real_cache) = (tc.zig_dir.clone(), zig_cache.to_path_buf());
        if ctx.sandboxed
            && let Some(name) = tc.zig_dir.file_name()
        {
            return ZigView {
                dir: Path::new(sandbox::FIXED_ZIG).join(name),
                cache: PathBuf::from(sandbox::FIXED_ZIG_CACHE),
                real_dir,
                real_cache,
            };
        }
        ZigView {
            dir: real_dir.clone(),
            cache: real_cache.clone(),
            real_dir,
            real_cache,
        }
    }

    /// Bind zig read-only and the zig cache writable.
    pub fn add_to(&self, sb: &mut sandbox::Sandbox) {
        sb.ro_at(&self.real_dir, &self.dir);
        sb.bind(&self.real_cache, &self.cache);
    }

    /// The same, for the builds of a sealed dir.
    fn add_to_sealed(&self, sealed: &mut Sealed) {
        sealed.bind_in_build(&self.real_dir, &self.dir, false);
        sealed.bind_in_build(&self.real_cache, &self.cache, true);
    }

    /// The toolchain as the build sees it.
    pub fn toolchain(&self, tc: &Toolchain) -> Toolchain {
        Toolchain {
            zig_dir: self.dir.clone(),
            ..tc.clone()
        }
    }
}

/// What a sealed build (or the warm-up, which links as one does) sees
/// besides its own directory, each input at its fixed place (see
/// [`sandbox::Inputs`]): the toolchain, std (`sysroot`), the shims and
/// xbuild, the cargo home.
pub fn inputs(ctx: &TargetCtx<'_>, sysroot: Option<&Path>) -> sandbox::Inputs {
    let (cache, tc) = (ctx.cache, ctx.tc);
    let mut inputs = sandbox::Inputs::new(ctx.sandboxed, tc.system());
    inputs
        .add(&tc.rust_dir, "rust")
        .add(&cache.shims(), "shims")
        .add(&cache.cargo_home(), "cargo-home");
    if let Some(s) = sysroot {
        inputs.add(s, "sysroot");
    }
    if let Some(d) = &tc.qemu_dir {
        inputs.add(d, "qemu");
    }
    if let Some(d) = &tc.tools_dir {
        inputs.add(d, "tools");
    }
    inputs
}

/// Copy the snapshot into a sealed directory, fetch its dependencies into
/// xbuild's cargo home, build there offline, copy the executables into
/// `dest`, and (for the primary build with --test) run the tests.
pub fn build(
    ctx: &TargetCtx<'_>,
    sysroot: &Path,
    variant: &Variant,
    dest: &Path,
    primary: bool,
) -> Result<SealedOutput> {
    let TargetCtx {
        plan,
        cache,
        tc,
        target,
        ..
    } = *ctx;
    zigcc::install_shims(cache, target, &tc.zig(), &tc.system())?;
    // the kept dir first: it holds this build's zig cache too
    let kept = if variant.reuse_deps {
        kept_target_dir(ctx)?
    } else {
        None
    };
    let inputs = inputs(ctx, Some(sysroot));
    let mut sealed = sandbox::create(
        ctx.snapshot,
        variant.pad,
        inputs,
        ctx.sandboxed,
        variant.other_order,
    )?;
    let zig_cache = kept
        .as_ref()
        .map_or_else(|| sealed.root.join("zig-cache"), |k| k.zig_cache.clone());
    prewarm::seed(ctx, &zig_cache)?;
    let zig = ZigView::of(ctx, &zig_cache);
    zig.add_to_sealed(&mut sealed);
    // the toolchain, cargo home, std and shims where the build sees them
    let seen = zig.toolchain(&tc.seen_through(|p| sealed.seen(p)));
    let cargo_home = sealed.seen(&cache.cargo_home());
    // fetched first: every crate cargo unpacks is older than restored units
    cargo::fetch_dependencies(plan, cache, &seen, &sealed)?;
    let mut restored = None;
    if let Some(kept) = &kept {
        restored = super::units::restore(ctx, kept)?;
        let changed = kept.stamp(cache, &sealed.src, &sealed.files)?;
        tracing::info!(
            "reusing compiled dependencies in {} ({changed} of {} source files new or changed)",
            kept.target.display(),
            sealed.files.len()
        );
        sealed.use_target_dir(kept.target.clone());
    }

    let mut env = CargoEnv::sealed(
        &seen,
        &cargo_home,
        &zig.cache,
        &sealed.view_of("home"),
        &sealed.view_of("tmp"),
        ctx.epoch,
    );
    env.add_target(cache, &seen, target, &|p| sealed.seen(p))?;
    if !sealed.sandboxed() {
        env.outside_sandbox(tc);
    }
    if let Some(v) = &plan.git_version {
        env.set("GIT_VERSION", v);
    }
    let mut inside_env: Vec<(String, std::ffi::OsString)> = Vec::new();
    if variant.later
        && ctx.sandboxed
        && let Some(lib) = ctx.tc.faketime_in_sandbox()
    {
        inside_env.push(("LD_PRELOAD".into(), lib.into()));
        inside_env.push(("FAKETIME".into(), "+365d".into()));
        // timeouts and cargo's timings keep real time
        inside_env.push(("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()));
    }
    // the paths a build could embed, remapped for rustc and the C compilers
    let remaps = [
        (sealed.view_of("src"), "/xbuild/src"),
        (sealed.view_of("target"), "/xbuild/target"),
        (cargo_home.clone(), "/xbuild/cargo-home"),
        (seen.rust_dir.clone(), "/xbuild/toolchain"),
    ];
    let mut flags = ctx.flags.clone();
    let mut prefix_map = Vec::new();
    for (from, to) in &remaps {
        flags.push(format!("--remap-path-prefix={}={to}", from.display()));
        prefix_map.push(format!("{}={to}", from.display()));
    }
    env.set(crate::env::XBUILD_PREFIX_MAP, prefix_map.join("\x1f"));
    if variant.reverse_env {
        env.vars.reverse();
    }
    flags.push("--sysroot".into());
    flags.push(sealed.seen(sysroot).display().to_string());
    if primary {
        ui::status(
            "Compiling",
            &format!(
                "{} for {} ({}, sealed in {})",
                plan.describe_selection(),
                target.rust,
                plan.profile(),
                sealed.root.display()
            ),
        );
    }
    let built = cargo::build(&CargoRun {
        plan,
        tc: &seen,
        env: &env,
        target,
        rustflags: &flags,
        sealed: &sealed,
        manifest: &sealed.view_of("src").join(plan.rel_manifest()),
        jobs: variant.jobs,
        inherited: variant.inherited,
        inside_env,
    });
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            if plan.keep_sealed {
                ui::note(&format!(
                    "kept the sealed directory {}",
                    sealed.keep().display()
                ));
            }
            return Err(e);
        }
    };
    prewarm::learn_cxx(ctx, &zig_cache)?;
    if let Some(kept) = &kept {
        super::units::publish(ctx, kept);
    }
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut files = Vec::new();
    let mut jobs = Vec::new();
    for b in built {
        let name = if plan.test.is_some() {
            format!("{}-{}-{}", b.package, b.kind, b.name)
        } else {
            b.name.clone()
        };
        let to = dest.join(&name);
        let real = sealed.real(&b.path);
        crate::safe_fs::copy_out_no_links(&sealed.target, &real, &to)?;
        if plan.test.is_some() {
            let network = plan.test.as_ref().is_some_and(|t| t.network);
            let runner = sealed.test_runner(&b.manifest_dir, network, &target.rust)?;
            jobs.push(testrun::Job {
                name: name.clone(),
                exe: b.path,
                runner: runner.prefix,
                env: runner.env,
                cwd: sealed.real(&b.manifest_dir),
                manifest_dir: b.manifest_dir,
            });
        }
        files.push(Output {
            name,
            package: b.package,
            kind: b.kind,
            path: to,
        });
    }
    let mut outcomes = None;
    if primary
        && let Some(opts) = &plan.test
        && !opts.no_run
    {
        let runner = cargo::runner_for(&seen, target)?;
        for job in &mut jobs {
            job.runner.extend(runner.iter().cloned());
        }
        ui::status(
            "Running",
            &format!(
                "{} test binaries for {}{}",
                jobs.len(),
                target.rust,
                if opts.network {
                    " (with the host's network: --test-network)"
                } else {
                    " (sealed, with a loopback of their own)"
                }
            ),
        );
        outcomes = Some(testrun::run_all(
            &jobs,
            &opts.args,
            opts.parallel,
            opts.timeout,
            &report::print_outcome,
        ));
    }
    let sealed_root = sealed.root.clone();
    if plan.keep_sealed {
        ui::note(&format!(
            "kept the sealed directory {}",
            sealed.keep().display()
        ));
    }
    Ok(SealedOutput {
        files,
        outcomes,
        sealed_root,
        restored,
    })
}

/// Take the dependency cache's target dir for this workspace (all its
/// targets), mode and signer (the caller stamps the snapshot's files into it). `None` (a build
/// from scratch) when there is no fixed view to mount it at, or when another
/// xbuild is using it.
fn kept_target_dir(ctx: &TargetCtx<'_>) -> Result<Option<deps::Checkout>> {
    let TargetCtx {
        plan,
        cache,
        tc,
        target,
        ..
    } = *ctx;
    if !ctx.sandboxed {
        tracing::info!("no sandbox, so no fixed view: compiled dependencies are not kept");
        return Ok(None);
    }
    let signer = cache.store().and_then(|r| r.signer());
    let about = keys::About {
        workspace: plan.workspace_root.display().to_string(),
        mode: if plan.test.is_some() { "test" } else { "build" }.into(),
        signer: signer.clone().unwrap_or_else(|| keys::UNSIGNED.into()),
    };
    let pins = tc.pins.build_digest();
    let key = keys::deps(&about, &pins);
    if signer.is_some() {
        // what builds without the key kept is theirs: say it is not used
        let unsigned = keys::About {
            signer: keys::UNSIGNED.into(),
            ..about.clone()
        };
        if deps::exists(cache, &keys::deps(&unsigned, &pins)) {
            ui::note(
                "not reusing the compiled dependencies that unsigned builds kept for this workspace: a signing build keeps its own",
            );
        }
    }
    let Some(kept) = deps::checkout(cache, &key, &about, ctx.empty_kept)? else {
        ui::note(&format!(
            "another xbuild is using the compiled dependencies kept for this workspace; building {} from scratch",
            target.rust
        ));
        return Ok(None);
    };
    Ok(Some(kept))
}
