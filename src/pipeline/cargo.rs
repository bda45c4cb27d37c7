//! Running cargo: `cargo fetch` before the sealed build, and the sealed
//! `cargo build` / `cargo test --no-run` with its JSON messages read back.

use std::ffi::OsString;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};

use super::launcher;
use crate::cache::Cache;
use crate::cargo_env::CargoEnv;
use crate::env;
use crate::plan::Plan;
use crate::sandbox::Sealed;
use crate::targets::Target;
use crate::toolchain::Toolchain;

/// An executable cargo produced.
pub struct Built {
    pub package: String,
    pub kind: String,
    pub name: String,
    /// As the build saw it.
    pub path: PathBuf,
    pub manifest_dir: PathBuf,
}

/// One sealed cargo run.
pub struct CargoRun<'a> {
    pub plan: &'a Plan,
    pub tc: &'a Toolchain,
    pub env: &'a CargoEnv,
    pub target: &'a Target,
    /// Every flag for rustc: the target's, the remaps, `--sysroot`.
    pub rustflags: &'a [String],
    pub sealed: &'a Sealed,
    /// The manifest, as the build sees it.
    pub manifest: &'a Path,
    /// `--jobs` for this run, over the plan's.
    pub jobs: Option<u32>,
    /// What cargo and everything it runs start with.
    pub inherited: crate::process::Inherited,
    /// Variables set inside the sandbox only (see `Sealed::command`).
    pub inside_env: Vec<(String, std::ffi::OsString)>,
}

/// `cargo build` for the binaries, or `cargo test --no-run` for the test
/// binaries, in the sealed directory with no network.
pub fn build(run: &CargoRun<'_>) -> Result<Vec<Built>> {
    let CargoRun {
        plan,
        tc,
        env,
        target,
        sealed,
        ..
    } = *run;
    let mut cmd = sealed.command(
        tc.cargo().as_os_str(),
        &sealed.view_of("src"),
        &run.inside_env,
    );
    cmd.inherit(run.inherited);
    let testing = plan.test.is_some();
    cmd.envs(env.vars.iter().map(|(k, v)| (k, v)))
        .arg(if testing { "test" } else { "build" })
        .arg("--frozen")
        .arg("--target-dir")
        .arg(sealed.view_of("target"));
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
        for e in &plan.examples {
            cmd.args(["--example", e]);
        }
        if plan.workspace {
            cmd.arg("--workspace");
        }
    }
    for x in &plan.exclude {
        cmd.args(["--exclude", x]);
    }
    if plan.no_default_features {
        cmd.arg("--no-default-features");
    }
    if plan.all_features {
        cmd.arg("--all-features");
    }
    cmd.args(["--message-format=json-render-diagnostics", "--target"])
        .arg(&target.rust)
        .arg("--manifest-path")
        .arg(run.manifest)
        .env("CARGO_ENCODED_RUSTFLAGS", run.rustflags.join("\x1f"));
    cmd.args(["--profile", &plan.profile]);
    for p in &plan.packages {
        cmd.args(["-p", p]);
    }
    if let Some(f) = &plan.features {
        cmd.args(["--features", f]);
    }
    if let Some(j) = run.jobs.or(plan.jobs) {
        cmd.arg(format!("--jobs={j}"));
    }
    tracing::debug!("running {cmd:?}");
    let mut child = cmd.spawn_relayed(true)?;
    let stdout = child.child.stdout.take().expect("piped stdout");
    let mut built = Vec::new();
    let mut helpers = Vec::new();
    // whether cargo got as far as a unit (compiled, ran a build script,
    // said anything of rustc's): then no line it wrote is its refusal to
    // start, whatever a build script or a proc macro's error printed
    let mut started_units = false;
    for message in cargo_metadata::Message::parse_stream(BufReader::new(stdout)) {
        let message = message.context("reading cargo's messages")?;
        started_units |= !matches!(
            message,
            cargo_metadata::Message::TextLine(_) | cargo_metadata::Message::BuildFinished(_)
        );
        if let cargo_metadata::Message::CompilerArtifact(a) = message
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
        let refused = crate::rust_release::refused_by_cargo(child.tail());
        if let Some(choice) = &plan.rust
            && !refused.is_empty()
            && !started_units
        {
            return Err(crate::rust_release::dependencies_need_newer(
                choice, &plan.pins, &refused,
            ));
        }
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
            launcher::install(&sealed.target, &sealed.real(&h.path), &h.path, &runner)?;
        }
    }
    Ok(built)
}

/// `cargo fetch --locked` of the sealed workspace into xbuild's cargo home,
/// before the build: in the sandbox, with network; `tc` as the build sees it.
pub fn fetch_dependencies(
    plan: &Plan,
    cache: &Cache,
    tc: &Toolchain,
    sealed: &Sealed,
) -> Result<()> {
    let home = cache.cargo_home();
    let mut env = CargoEnv::for_fetch(cache, tc, &sealed.seen(&home));
    if sealed.sandboxed() {
        env.in_network_sandbox();
    } else {
        env.outside_sandbox(tc);
    }
    std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let mut cmd = sealed.fetch_command(tc.cargo().as_os_str(), &home);
    cmd.envs(env.vars.iter().map(|(k, v)| (k, v)))
        .args(["fetch", "--locked", "--manifest-path"])
        .arg(sealed.view_of("src").join(plan.rel_manifest()))
        .stdout(Stdio::null());
    if plan.offline {
        cmd.arg("--offline");
    }
    if let Err(e) = cmd.output() {
        let hint = if e.stderr.contains("--locked") || e.stderr.contains("lock file") {
            "\nCargo.lock is out of date with the manifests: run `cargo update -w` (or `cargo generate-lockfile`) and commit it"
        } else {
            ""
        };
        bail!(
            "fetching the locked dependencies failed ({}):\n{}{hint}",
            e.status
                .map_or_else(|| "not started".to_string(), |s| s.to_string()),
            e.stderr.trim_end()
        );
    }
    Ok(())
}

/// How test binaries of `target` run here: directly, or under qemu.
pub fn runner_for(tc: &Toolchain, target: &Target) -> Result<Vec<OsString>> {
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
