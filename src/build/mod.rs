//! The main job: build a workspace's binaries for each target with the pinned
//! toolchain, verify them as ELF, hash them, and publish them atomically.

pub mod sysroot;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::elf::{self, ElfInfo};
use crate::targets::Target;
use crate::testrun::{self, Outcome, Status};
use crate::toolchain::Toolchain;
use crate::toolchain::cache::{self, Cache};
use crate::{depcache, determinism, env, outputs, seal, ui, zigcc};

/// Flags the toolchain route itself needs on every target: std is built from
/// source, so there are no Rust-shipped crt objects; zig provides them.
const TOOLCHAIN_RUSTFLAGS: &[&str] = &["-C", "link-self-contained=no"];

/// A resolved build request: targets looked up, paths made absolute.
#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<&'static Target>,
    pub workspace_root: PathBuf,
    pub manifest_path: PathBuf,
    pub release: bool,
    pub packages: Vec<String>,
    pub bins: Vec<String>,
    pub features: Option<String>,
    pub out_dir: PathBuf,
    pub git_version: Option<String>,
    pub jobs: Option<u32>,
    pub offline: bool,
    /// The user's RUSTFLAGS, which replace the table's per-target flags.
    pub user_rustflags: Option<String>,
    /// `--test`: build (and run) test binaries instead of the binaries.
    pub test: Option<TestOptions>,
    /// Build twice in different sealed directories and compare the outputs.
    pub check_determinism: bool,
    /// Keep the sealed directories.
    pub keep_sealed: bool,
    /// Build even when the cache holds outputs for the same inputs.
    pub rebuild: bool,
}

#[derive(Debug, Clone)]
pub struct TestOptions {
    pub no_run: bool,
    pub timeout: Duration,
    /// Given to every test binary.
    pub args: Vec<String>,
    /// Test binaries run at once.
    pub parallel: usize,
}

impl Plan {
    pub fn profile(&self) -> &'static str {
        if self.release { "release" } else { "debug" }
    }

    /// The per-target flags, or the user's; then what the toolchain needs.
    pub fn rustflags(&self, target: &Target) -> Vec<String> {
        let mut flags: Vec<String> = match &self.user_rustflags {
            Some(user) => user.split_whitespace().map(String::from).collect(),
            None => target.rustflags.clone(),
        };
        flags.extend(TOOLCHAIN_RUSTFLAGS.iter().map(|s| s.to_string()));
        flags
    }
}

/// The environment of cargo children: an allow-list from the user's
/// environment plus what xbuild sets.
pub struct Env {
    pub vars: Vec<(String, OsString)>,
}

impl Env {
    /// What every cargo child gets: the pinned toolchain and xbuild's cargo home.
    fn toolchain(cache: &Cache, tc: &Toolchain, path_tail: OsString) -> Env {
        let mut path = OsString::new();
        if let Some(dir) = tc.rustc().parent() {
            path.push(dir);
            path.push(":");
        }
        path.push(path_tail);
        let mut vars: Vec<(String, OsString)> = vec![
            ("PATH".into(), path),
            ("RUSTC".into(), tc.rustc().into()),
            ("CARGO_HOME".into(), cache.cargo_home().into()),
            (env::XBUILD_ZIG.into(), tc.zig().into()),
            (env::XBUILD_ZIG_CACHE.into(), cache.zig_cache().into()),
        ];
        if let Some(lib) = tc.library_path() {
            vars.push(("LD_LIBRARY_PATH".into(), lib.into()));
        }
        vars.extend(env::display_for_cargo());
        Env { vars }
    }

    /// For work that needs the network (`cargo fetch`, std's dependencies):
    /// the user's PATH, HOME and proxy settings.
    pub fn for_fetch(cache: &Cache, tc: &Toolchain) -> Env {
        let user = env::passthrough_for_fetchers();
        let path = user
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or_else(|| OsString::from("/usr/bin:/bin"), |(_, v)| v.clone());
        let mut e = Env::toolchain(cache, tc, path);
        let have: Vec<String> = e.vars.iter().map(|(k, _)| k.clone()).collect();
        e.vars
            .extend(user.into_iter().filter(|(k, _)| !have.contains(k)));
        e
    }

    /// A sealed build's environment: nothing from the user's but how to show progress.
    pub fn sealed(cache: &Cache, tc: &Toolchain, sealed: &seal::Sealed, epoch: &str) -> Env {
        let mut e = Env::toolchain(cache, tc, "/usr/local/bin:/usr/bin:/bin".into());
        e.vars.extend([
            ("HOME".to_string(), sealed.view_of("home").into_os_string()),
            ("TMPDIR".to_string(), sealed.view_of("tmp").into_os_string()),
            ("TZ".to_string(), "UTC".into()),
            ("LC_ALL".to_string(), "C".into()),
            ("SOURCE_DATE_EPOCH".to_string(), epoch.into()),
            // incremental state is not byte-for-byte reproducible, and the
            // kept target dirs already give reuse
            ("CARGO_INCREMENTAL".to_string(), "0".into()),
        ]);
        e
    }

    pub fn cargo_command(&self, tc: &Toolchain) -> Command {
        let mut cmd = Command::new(tc.cargo());
        cmd.env_clear().envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Make `target`'s C compiler, archiver and linker the zig wrappers.
    pub fn add_target(&mut self, cache: &Cache, target: &Target) -> Result<()> {
        let shims = zigcc::install_shims(&cache.root.join("v1/shims"), target)?;
        let under = target.rust.replace('-', "_");
        let t = target.cargo_env_name();
        self.vars
            .push((format!("CARGO_TARGET_{t}_LINKER"), shims.cc.clone().into()));
        self.vars.push((format!("CC_{under}"), shims.cc.into()));
        self.vars.push((format!("AR_{under}"), shims.ar.into()));
        Ok(())
    }
}

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

#[derive(Debug, Serialize)]
struct TargetReport {
    nix_target: String,
    rust_target: String,
    rustflags: Vec<String>,
    rustflags_source: &'static str,
    duration_secs: f64,
    /// The outputs came from the cache: the inputs had not changed.
    cached: bool,
}

impl TargetReport {
    fn new(plan: &Plan, target: &Target, rustflags: Vec<String>, secs: f64, cached: bool) -> Self {
        TargetReport {
            nix_target: target.nix.clone(),
            rust_target: target.rust.clone(),
            rustflags,
            rustflags_source: if plan.user_rustflags.is_some() {
                "RUSTFLAGS"
            } else {
                "target table"
            },
            duration_secs: secs,
            cached,
        }
    }
}

/// What differs between the two builds of `--check-determinism`: everything
/// that should not matter.
#[derive(Debug, Clone, Default)]
struct Variant {
    /// Extra path length of the sealed directory.
    pad: usize,
    umask: Option<u32>,
    reverse_env: bool,
    jobs: Option<u32>,
    /// Build in the kept target dir of the dependency cache.
    reuse_deps: bool,
}

/// Run the plan: build every target into a staging tree, then publish it.
pub fn run(plan: &Plan, cache: &Cache, tc: &Toolchain) -> Result<Outcomes> {
    if let Some(user) = &plan.user_rustflags {
        ui::warn(&format!(
            "RUSTFLAGS is set (`{user}`): xbuild's per-target flags are not applied, only the toolchain's own `{}`",
            TOOLCHAIN_RUSTFLAGS.join(" ")
        ));
    }
    let parent = plan
        .out_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".xbuild-staging-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a staging dir in {}", parent.display()))?;

    let mut artifacts = Vec::new();
    let mut reports = Vec::new();
    let mut tests: Vec<(String, Vec<Outcome>)> = Vec::new();
    let mut verdicts: Vec<determinism::Verdict> = Vec::new();
    let mut built_any = false;
    if plan.test.is_some() {
        ui::note(
            "doctests are not built or run by `xbuild --test` (rustdoc cannot run them under qemu); run `cargo test --doc` on the host",
        );
    }
    let epoch = seal::source_date_epoch(&plan.workspace_root);
    let cacheable =
        plan.test.is_none() && !plan.check_determinism && !plan.rebuild && !plan.keep_sealed;
    let source = if plan.test.is_none() {
        outputs::source_digest(&plan.workspace_root)?
    } else {
        String::new()
    };
    for target in &plan.targets {
        if env::interrupted() {
            bail!("interrupted");
        }
        let started = Instant::now();
        let flags = plan.rustflags(target);
        let sub = if plan.test.is_some() { "tests" } else { "" };
        let dir = staging.path().join(&target.rust).join(sub);
        let out_key = outputs::key(&[
            &tc.pins.digest(),
            &target.rust,
            &flags.join("\x1f"),
            plan.profile(),
            plan.features.as_deref().unwrap_or(""),
            &plan.packages.join(","),
            &plan.bins.join(","),
            &plan
                .manifest_path
                .strip_prefix(&plan.workspace_root)
                .unwrap_or(&plan.manifest_path)
                .display()
                .to_string(),
            plan.git_version.as_deref().unwrap_or(""),
            &epoch,
            &source,
        ]);
        if cacheable && let Some((cached, entries)) = outputs::lookup(cache, &out_key)? {
            fs::create_dir_all(&dir)?;
            for e in entries {
                let dest = dir.join(&e.name);
                fs::copy(cached.join(&e.name), &dest)
                    .with_context(|| format!("copying the cached {}", e.name))?;
                let info = elf::verify(&dest, &target.elf)?;
                artifacts.push(Artifact {
                    nix_target: target.nix.clone(),
                    rust_target: target.rust.clone(),
                    package: e.package,
                    path: format!("{}/{}", target.rust, e.name),
                    name: e.name,
                    kind: e.kind,
                    sha256: e.sha256,
                    size: fs::metadata(&dest)?.len(),
                    elf: info,
                    linkage: "static",
                });
            }
            ui::status(
                "Fresh",
                &format!(
                    "{}: inputs unchanged, outputs from the cache (sha256 re-checked; --rebuild to build)",
                    target.rust
                ),
            );
            reports.push(TargetReport::new(
                plan,
                target,
                flags,
                started.elapsed().as_secs_f64(),
                true,
            ));
            continue;
        }
        let sysroot = sysroot::ensure(cache, tc, target, &flags)?;
        let ctx = TargetCtx {
            plan,
            cache,
            tc,
            target,
            sysroot: &sysroot,
            epoch: &epoch,
        };
        let primary_variant = Variant {
            reuse_deps: !plan.keep_sealed,
            ..Variant::default()
        };
        let primary = sealed_build(&ctx, &primary_variant, &dir, true)?;
        let mut to_cache = Vec::new();
        for (name, package, kind, dest) in &primary.files {
            let info = elf::verify(dest, &target.elf)?;
            let sha256 = cache::hash_file(dest)?;
            to_cache.push((
                outputs::Entry {
                    name: name.clone(),
                    package: package.clone(),
                    kind: kind.clone(),
                    sha256: sha256.clone(),
                },
                dest.clone(),
            ));
            let rel = dest
                .strip_prefix(staging.path())
                .expect("inside staging")
                .display()
                .to_string();
            artifacts.push(Artifact {
                nix_target: target.nix.clone(),
                rust_target: target.rust.clone(),
                package: package.clone(),
                name: name.clone(),
                kind: kind.clone(),
                path: rel,
                sha256,
                size: fs::metadata(dest)?.len(),
                elf: info,
                linkage: "static",
            });
        }
        if plan.test.is_none() && !plan.check_determinism {
            outputs::store(cache, &out_key, &to_cache)?;
        }
        built_any = true;
        if let Some(outcomes) = primary.outcomes {
            tests.push((target.rust.clone(), outcomes));
        }
        if plan.check_determinism {
            let other_dir = tempfile::Builder::new()
                .prefix(".xbuild-check-")
                .tempdir_in(staging.path())?;
            let jobs = std::thread::available_parallelism().map_or(2, |n| n.get() as u32 + 2);
            let variant = Variant {
                pad: 40,
                umask: Some(0o077),
                reverse_env: true,
                jobs: Some(jobs),
                reuse_deps: false,
            };
            ui::status(
                "Rebuilding",
                &format!(
                    "{} in a second sealed directory to check determinism (other path, HOME, TMPDIR, umask, env order, --jobs {jobs})",
                    target.rust
                ),
            );
            let second = sealed_build(&ctx, &variant, other_dir.path(), false)?;
            for (name, _, _, dest) in &primary.files {
                let other = second
                    .files
                    .iter()
                    .find(|f| &f.0 == name)
                    .map(|f| f.3.clone());
                let v = determinism::compare(
                    &target.rust,
                    name,
                    dest,
                    other.as_deref(),
                    &[&primary.sealed_root, &second.sealed_root],
                )?;
                determinism::print(&v);
                if !v.identical {
                    determinism::diffoscope(
                        dest,
                        other.as_deref(),
                        &dest.with_extension("diffoscope.txt"),
                    );
                }
                verdicts.push(v);
            }
            let of_target = verdicts.len() - primary.files.len();
            compare_with_cached(cache, &out_key, target, &primary.files, &mut verdicts)?;
            if plan.test.is_none() && verdicts[of_target..].iter().all(|v| v.identical) {
                outputs::store(cache, &out_key, &to_cache)?;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        ui::status("Finished", &format!("{} in {secs:.1}s", target.rust));
        reports.push(TargetReport::new(plan, target, flags, secs, false));
    }
    if artifacts.is_empty() && plan.test.is_none() {
        bail!(
            "cargo built no executables; does the selection ({}) contain binaries?",
            describe_selection(plan)
        );
    }
    write_sums(staging.path(), &artifacts)?;
    let report = serde_json::json!({
        "xbuild": env!("CARGO_PKG_VERSION"),
        "git_version": plan.git_version,
        "source_date_epoch": epoch,
        "profile": plan.profile(),
        "toolchain": {
            "pins": tc.pins.origin,
            "digest": tc.pins.digest(),
            "components": tc.pins.components.iter().map(|c| serde_json::json!({
                "component": c.kind.name(),
                "pin_hash": c.pin_hash(),
                "artifacts": c.artifacts.iter().map(|a| serde_json::json!({"label": a.label(), "sha256": a.sha256})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        },
        "targets": reports,
        "artifacts": artifacts,
        "tests": tests.iter().map(|(t, o)| serde_json::json!({"rust_target": t, "binaries": o})).collect::<Vec<_>>(),
        "determinism": verdicts,
    });
    fs::write(
        staging.path().join("report.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    publish(staging, &plan.out_dir)?;
    if built_any {
        report_cache_size(cache);
    }
    Ok(Outcomes {
        artifacts,
        tests,
        determinism: verdicts,
    })
}

/// Above this, kept dependencies and cached outputs are worth a note.
const CACHE_NOTE_SIZE: u64 = 8 << 30;

/// The parts of the cache that grow with every new source and flag set:
/// say how big they are, so that the cache never grows unnoticed.
fn report_cache_size(cache: &Cache) {
    let size = cache::dir_size(&cache.root.join("v1/deps"))
        + cache::dir_size(&cache.root.join("v1/outputs"));
    tracing::info!(
        "kept dependencies and cached outputs: {}",
        cache::human_size(size)
    );
    if size > CACHE_NOTE_SIZE {
        ui::note(&format!(
            "kept dependencies and cached outputs take {} in {}; `xbuild cache gc --max-size 4G` trims them, least recently used first",
            cache::human_size(size),
            cache.root.display()
        ));
    }
}

/// `--check-determinism`: compare with the outputs an earlier build with the
/// same inputs left in the cache, when there are any.
fn compare_with_cached(
    cache: &Cache,
    key: &str,
    target: &Target,
    files: &[(String, String, String, PathBuf)],
    verdicts: &mut Vec<determinism::Verdict>,
) -> Result<()> {
    let Some((dir, entries)) = outputs::lookup(cache, key)? else {
        return Ok(());
    };
    for (name, _, _, dest) in files {
        if !entries.iter().any(|e| &e.name == name) {
            continue;
        }
        let mut v = determinism::compare(&target.rust, name, dest, Some(&dir.join(name)), &[])?;
        v.against = determinism::CACHED_OUTPUTS;
        determinism::print(&v);
        verdicts.push(v);
    }
    Ok(())
}

/// What every sealed build of one target shares.
struct TargetCtx<'a> {
    plan: &'a Plan,
    cache: &'a Cache,
    tc: &'a Toolchain,
    target: &'a Target,
    sysroot: &'a Path,
    epoch: &'a str,
}

/// What one sealed build left: (stable name, package, kind, copied file) per
/// executable, and the test outcomes when it ran tests.
struct SealedOutput {
    files: Vec<(String, String, String, PathBuf)>,
    outcomes: Option<Vec<Outcome>>,
    /// The sealed directory's path while it existed (for the diagnosis).
    sealed_root: PathBuf,
}

/// Snapshot the workspace into a sealed directory, fetch its dependencies
/// into xbuild's cargo home, build there offline, copy the executables into
/// `dest`, and (for the primary build with --test) run the tests.
fn sealed_build(
    ctx: &TargetCtx<'_>,
    variant: &Variant,
    dest: &Path,
    primary: bool,
) -> Result<SealedOutput> {
    let TargetCtx {
        plan,
        cache,
        tc,
        target,
        sysroot,
        epoch,
    } = *ctx;
    let mut sealed = seal::create(&plan.workspace_root, variant.pad)?;
    let _kept = if variant.reuse_deps {
        kept_target_dir(ctx, &mut sealed)?
    } else {
        None
    };
    let rel_manifest = plan
        .manifest_path
        .strip_prefix(&plan.workspace_root)
        .unwrap_or(Path::new("Cargo.toml"));
    seal::check_lock_file(&sealed.src)?;
    fetch_dependencies(plan, cache, tc, &sealed.src.join(rel_manifest))?;
    let manifest = sealed.view_of("src").join(rel_manifest);

    let mut env = Env::sealed(cache, tc, &sealed, epoch);
    env.add_target(cache, target)?;
    if let Some(v) = &plan.git_version {
        env.vars.push(("GIT_VERSION".into(), v.into()));
    }
    if variant.reverse_env {
        env.vars.reverse();
    }
    let mut flags = plan.rustflags(target);
    for (from, to) in [
        (sealed.view_of("src"), "/xbuild/src"),
        (sealed.view_of("target"), "/xbuild/target"),
        (cache.cargo_home(), "/xbuild/cargo-home"),
        (tc.rust_dir.clone(), "/xbuild/toolchain"),
    ] {
        flags.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    if primary {
        ui::status(
            "Compiling",
            &format!(
                "{} for {} ({}, sealed in {})",
                describe_selection(plan),
                target.rust,
                plan.profile(),
                sealed.root.display()
            ),
        );
    }
    let old_umask = variant.umask.map(set_umask);
    let built = cargo_build(
        plan,
        tc,
        &env,
        target,
        &flags,
        sysroot,
        &sealed,
        &manifest,
        variant.jobs,
    );
    if let Some(old) = old_umask {
        set_umask(old);
    }
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
    fs::create_dir_all(dest)?;
    let mut files = Vec::new();
    let mut jobs = Vec::new();
    for b in built {
        let file = if plan.test.is_some() {
            format!("{}-{}-{}", b.package, b.kind, b.name)
        } else {
            b.name.clone()
        };
        let to = dest.join(&file);
        let real = sealed.real(&b.path);
        fs::copy(&real, &to)
            .with_context(|| format!("copying {} to {}", real.display(), to.display()))?;
        jobs.push(testrun::Job {
            name: file.clone(),
            exe: b.path,
            runner: sealed.runner_prefix(&b.manifest_dir),
            cwd: sealed.real(&b.manifest_dir),
            manifest_dir: b.manifest_dir,
        });
        files.push((file, b.package, b.kind, to));
    }
    let mut outcomes = None;
    if primary
        && let Some(opts) = &plan.test
        && !opts.no_run
    {
        let runner = runner_for(tc, target)?;
        for job in &mut jobs {
            job.runner.extend(runner.iter().cloned());
        }
        ui::status(
            "Running",
            &format!("{} test binaries for {}", jobs.len(), target.rust),
        );
        outcomes = Some(testrun::run_all(
            &jobs,
            &opts.args,
            opts.parallel,
            opts.timeout,
            &|o| print_outcome(o),
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
    })
}

/// Take the dependency cache's target dir for this workspace and target, and
/// stamp the snapshot's files so that cargo sees what changed since it was last
/// used. `None` (a build from scratch) when there is no fixed view to mount it
/// at, or when another xbuild is using it.
fn kept_target_dir(
    ctx: &TargetCtx<'_>,
    sealed: &mut seal::Sealed,
) -> Result<Option<depcache::Checkout>> {
    let TargetCtx {
        plan,
        cache,
        tc,
        target,
        ..
    } = *ctx;
    if !sealed.namespaced() {
        tracing::info!("no fixed view for the build: compiled dependencies are not kept");
        return Ok(None);
    }
    let about = depcache::About {
        workspace: plan.workspace_root.display().to_string(),
        target: target.rust.clone(),
        mode: if plan.test.is_some() { "test" } else { "build" }.into(),
    };
    let key = depcache::key(
        &about,
        &[
            &tc.pins.build_digest(),
            &plan.rustflags(target).join("\x1f"),
        ],
    );
    let Some(kept) = depcache::checkout(cache, &key, &about, plan.rebuild)? else {
        ui::note(&format!(
            "another xbuild is using the compiled dependencies kept for {} of this workspace; building from scratch",
            target.rust
        ));
        return Ok(None);
    };
    let changed = kept.stamp(cache, &sealed.src, &sealed.files)?;
    tracing::info!(
        "reusing compiled dependencies in {} ({changed} of {} source files new or changed)",
        kept.target.display(),
        sealed.files.len()
    );
    sealed.use_target_dir(kept.target.clone());
    Ok(Some(kept))
}

/// Set the process umask, returning the previous one.
fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask only swaps a process attribute and cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// `cargo fetch --locked`, outside the sealed build, into xbuild's cargo home.
fn fetch_dependencies(plan: &Plan, cache: &Cache, tc: &Toolchain, manifest: &Path) -> Result<()> {
    let env = Env::for_fetch(cache, tc);
    let mut cmd = env.cargo_command(tc);
    cmd.args(["fetch", "--locked", "--manifest-path"])
        .arg(manifest);
    if plan.offline {
        cmd.arg("--offline");
    }
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running cargo fetch")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("--locked") || stderr.contains("lock file") {
            "\nCargo.lock is out of date with the manifests: run `cargo update -w` (or `cargo generate-lockfile`) and commit it"
        } else {
            ""
        };
        bail!(
            "fetching the locked dependencies failed ({}):\n{}{hint}",
            out.status,
            stderr.trim_end()
        );
    }
    Ok(())
}

/// What a run produced: the verified executables, and per target the test
/// outcomes (empty unless `--test` ran tests).
pub struct Outcomes {
    pub artifacts: Vec<Artifact>,
    pub tests: Vec<(String, Vec<Outcome>)>,
    pub determinism: Vec<determinism::Verdict>,
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

    /// Per target: `N passed, M failed` counting test binaries.
    pub fn test_summary(&self) -> String {
        let mut s = String::new();
        for (target, outcomes) in &self.tests {
            let count = |st| outcomes.iter().filter(|o| o.status == st).count();
            let (passed, timed_out) = (count(Status::Pass), count(Status::Timeout));
            let tests: u64 = outcomes
                .iter()
                .filter_map(|o| o.counts)
                .map(|c| c.passed)
                .sum();
            let timeouts = if timed_out > 0 {
                format!(", {timed_out} of them timed out")
            } else {
                String::new()
            };
            s.push_str(&format!(
                "{target}: {passed} passed, {} failed (test binaries{timeouts}; {tests} tests passed inside them)\n",
                outcomes.len() - passed
            ));
        }
        s
    }
}

/// How test binaries of `target` run here: directly, or under qemu.
fn runner_for(tc: &Toolchain, target: &Target) -> Result<Vec<OsString>> {
    let Some(qemu) = &target.runner.qemu else {
        return Ok(Vec::new());
    };
    let dir = tc
        .qemu_dir
        .as_ref()
        .context("qemu was not provisioned for this run")?;
    let mut r: Vec<OsString> = vec![dir.join(&tc.pins.qemu_layout.bin_dir).join(qemu).into()];
    if let Some(cpu) = &target.runner.qemu_cpu {
        r.push("-cpu".into());
        r.push(cpu.into());
    }
    Ok(r)
}

fn print_outcome(o: &Outcome) {
    let counts = o.counts.map_or(String::new(), |c| {
        format!(
            " ({} passed; {} failed; {} ignored)",
            c.passed, c.failed, c.ignored
        )
    });
    let verdict = match o.status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Timeout => "TIMEOUT",
    };
    eprintln!(
        "{verdict:>12} {}{counts} in {:.1}s",
        o.name, o.duration_secs
    );
    if o.status != Status::Pass {
        eprintln!("---- output of {} ----", o.name);
        eprint!("{}", o.output);
        if o.status == Status::Timeout {
            eprintln!("(killed after the --test-timeout)");
        }
        eprintln!("---- end of {} ----", o.name);
    }
}

fn describe_selection(plan: &Plan) -> String {
    let mut parts = Vec::new();
    if !plan.packages.is_empty() {
        parts.push(format!("package(s) {}", plan.packages.join(", ")));
    }
    if !plan.bins.is_empty() {
        parts.push(format!("bin(s) {}", plan.bins.join(", ")));
    }
    if parts.is_empty() && plan.test.is_some() {
        "the workspace's tests".into()
    } else if parts.is_empty() {
        "the workspace's binaries".into()
    } else {
        parts.join(", ")
    }
}

/// `SHA256SUMS` in the format `sha256sum -c` reads, sorted by path.
fn write_sums(dir: &Path, artifacts: &[Artifact]) -> Result<()> {
    let sorted: BTreeMap<&str, &str> = artifacts
        .iter()
        .map(|a| (a.path.as_str(), a.sha256.as_str()))
        .collect();
    let text: String = sorted.iter().map(|(p, h)| format!("{h}  {p}\n")).collect();
    fs::write(dir.join("SHA256SUMS"), text).context("writing SHA256SUMS")
}

/// Replace `out` by the staged tree: never a mix of old and new files.
fn publish(staging: tempfile::TempDir, out: &Path) -> Result<()> {
    let staged = staging.keep();
    let old = out.with_file_name(format!(
        ".{}.old-{}",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let had_old = out.exists();
    if had_old {
        fs::rename(out, &old)
            .with_context(|| format!("moving the previous {} aside", out.display()))?;
    }
    if let Err(e) = fs::rename(&staged, out) {
        if had_old {
            let _ = fs::rename(&old, out);
        }
        let _ = fs::remove_dir_all(&staged);
        return Err(e).with_context(|| format!("moving the outputs into {}", out.display()));
    }
    if had_old {
        fs::remove_dir_all(&old)
            .with_context(|| format!("removing the previous outputs {}", old.display()))?;
    }
    Ok(())
}

/// An executable cargo produced.
struct Built {
    package: String,
    kind: String,
    name: String,
    path: PathBuf,
    manifest_dir: PathBuf,
}

/// Run cargo for one target: `cargo build` for the binaries, or
/// `cargo test --no-run` for the test binaries.
#[allow(clippy::too_many_arguments)]
fn cargo_build(
    plan: &Plan,
    tc: &Toolchain,
    env: &Env,
    target: &Target,
    flags: &[String],
    sysroot: &Path,
    sealed: &seal::Sealed,
    manifest: &Path,
    jobs: Option<u32>,
) -> Result<Vec<Built>> {
    let mut rustflags = flags.to_vec();
    rustflags.push("--sysroot".into());
    rustflags.push(sysroot.display().to_string());
    // the pinned cargo, with the sealed dir at its view path and no network
    let mut cmd = sealed.command(tc.cargo().as_os_str(), &sealed.view_of("src"), true);
    if sealed.namespaced() {
        cmd.current_dir(&sealed.root);
    }
    cmd.env_clear()
        .envs(env.vars.iter().map(|(k, v)| (k, v)))
        .arg(if plan.test.is_some() { "test" } else { "build" })
        .arg("--frozen")
        .arg("--target-dir")
        .arg(sealed.view_of("target"));
    let testing = plan.test.is_some();
    if testing {
        cmd.arg("--no-run");
        if plan.packages.is_empty() {
            cmd.arg("--workspace");
        }
    } else {
        if plan.bins.is_empty() {
            cmd.arg("--bins");
        }
        for b in &plan.bins {
            cmd.args(["--bin", b]);
        }
    }
    cmd.args(["--message-format=json-render-diagnostics", "--target"])
        .arg(&target.rust)
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"));
    if plan.release {
        cmd.arg("--release");
    }
    for p in &plan.packages {
        cmd.args(["-p", p]);
    }
    if let Some(f) = &plan.features {
        cmd.args(["--features", f]);
    }
    if let Some(j) = jobs.or(plan.jobs) {
        cmd.arg(format!("--jobs={j}"));
    }
    tracing::debug!("running {cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("running {}", tc.cargo().display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut built = Vec::new();
    let mut helpers = Vec::new();
    for message in cargo_metadata::Message::parse_stream(BufReader::new(stdout)) {
        if let cargo_metadata::Message::CompilerArtifact(a) =
            message.context("reading cargo's messages")?
            && let Some(exe) = a.executable
        {
            let b = Built {
                package: package_name(&a.package_id.repr),
                kind: a
                    .target
                    .kind
                    .first()
                    .map_or_else(|| "bin".to_string(), |k| k.to_string()),
                name: a.target.name.clone(),
                path: exe.into_std_path_buf(),
                manifest_dir: a
                    .manifest_path
                    .parent()
                    .map(|p| p.as_std_path().to_path_buf())
                    .unwrap_or_else(|| plan.workspace_root.clone()),
            };
            if testing && !a.profile.test {
                // a binary built for the integration tests
                helpers.push(b);
            } else {
                built.push(b);
            }
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if env::interrupted() {
        bail!("cargo was interrupted");
    }
    if !status.success() {
        bail!(
            "cargo {} for {} failed ({status}); its errors are above",
            if testing { "test --no-run" } else { "build" },
            target.rust
        );
    }
    if let Some(opts) = &plan.test
        && !opts.no_run
        && target.runner.qemu.is_some()
    {
        let runner = runner_for(tc, target)?;
        for h in &helpers {
            install_launcher(&sealed.real(&h.path), &h.path, &runner)?;
        }
    }
    Ok(built)
}

const LAUNCHER_TAG: &str = "# xbuild launcher";

/// Integration tests start the package's binaries by path
/// (`CARGO_BIN_EXE_<name>`). Under qemu-user such an exec would ask the host
/// kernel to run a foreign binary, so the binary at that path is replaced by a
/// script that runs the real one (kept in `.xbuild-real/` next to it, under its own name) under the same qemu.
fn install_launcher(path: &Path, seen_as: &Path, runner: &[OsString]) -> Result<()> {
    // The real binary keeps its file name (programs print their argv[0]),
    // in a directory of its own next to the launcher.
    let name = path
        .file_name()
        .context("a binary path without a file name")?;
    let beside = |p: &Path| p.with_file_name(".xbuild-real").join(name);
    let (real, real_seen) = (beside(path), beside(seen_as));
    let current = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if current.starts_with(b"\x7fELF") {
        if let Some(dir) = real.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(&real, &current).with_context(|| format!("writing {}", real.display()))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&real, fs::Permissions::from_mode(0o755))?;
    }
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let mut line = String::from("exec");
    for part in runner {
        line.push(' ');
        line.push_str(&quote(part));
    }
    line.push(' ');
    line.push_str(&quote(real_seen.as_os_str()));
    let script = format!("#!/bin/sh\n{LAUNCHER_TAG}\n{line} \"$@\"\n");
    let tmp = path.with_extension("xbuild-launcher.tmp");
    fs::write(&tmp, script).with_context(|| format!("writing {}", tmp.display()))?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The package name out of a cargo package id (`path+file:///x/a#0.1.0`,
/// `path+file:///x/a#name@0.1.0`, or the older `name 0.1.0 (...)`).
fn package_name(id: &str) -> String {
    if let Some((_, frag)) = id.rsplit_once('#') {
        if let Some((name, _)) = frag.split_once('@') {
            return name.to_string();
        }
        let path = id.split('#').next().unwrap_or(id);
        return path.rsplit('/').next().unwrap_or(path).to_string();
    }
    id.split_whitespace().next().unwrap_or(id).to_string()
}

/// `git describe --tags --always --dirty` of the workspace.
pub fn git_describe(root: &Path) -> Result<String> {
    let out = Command::new("git")
        .args(["describe", "--tags", "--always", "--dirty"])
        .current_dir(root)
        .output()
        .context("running git describe (is git installed?)")?;
    if !out.status.success() {
        bail!(
            "--git-version auto: `git describe` failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The table printed after a build of several targets.
pub fn summary(artifacts: &[Artifact]) -> String {
    let mut s = String::new();
    for a in artifacts {
        s.push_str(&format!(
            "{:<32} {:<20} {:>10}  {}  {}\n",
            a.rust_target,
            a.name,
            cache::human_size(a.size),
            a.elf.elf_type,
            &a.sha256[..16]
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_from_ids() {
        assert_eq!(package_name("path+file:///w/app#0.1.0"), "app");
        assert_eq!(package_name("path+file:///w/crates/x#hello@0.1.0"), "hello");
        assert_eq!(package_name("registry+https://r/index#itoa@1.0.0"), "itoa");
        assert_eq!(package_name("app 0.1.0 (path+file:///w/app)"), "app");
    }
}
