//! Resolve: from the command line to a [`Plan`], the build request with
//! everything discovered that can be discovered before any work starts —
//! targets looked up, the workspace root found the way cargo finds it, paths
//! made absolute, `Cargo.lock` checked, the pins loaded. A user mistake found
//! here fails in milliseconds, before a 1 GB toolchain is provisioned.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::BuildArgs;
use crate::exit::Usage;
use crate::rust_release::{self, Choice};
use crate::targets::{self, Target};
use crate::toolchain::fetch::Mode;
use crate::toolchain::manifest::Pins;
use crate::toolchain::{self, Toolchain};
use crate::workspace::{self, find_workspace_root};
use crate::{cargo_config, env, sandbox, ui};

/// Flags the toolchain route itself needs on every target: std is built from
/// source, so there are no Rust-shipped crt objects; zig provides them.
pub const TOOLCHAIN_RUSTFLAGS: &[&str] = &["-C", "link-self-contained=no"];

/// A resolved build request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<&'static Target>,
    pub workspace_root: PathBuf,
    pub manifest_path: PathBuf,
    /// The cargo profile: `dev` (shown as `debug`), `release` or a custom one.
    pub profile: String,
    pub packages: Vec<String>,
    pub bins: Vec<String>,
    pub examples: Vec<String>,
    pub workspace: bool,
    pub exclude: Vec<String>,
    pub features: Option<String>,
    pub no_default_features: bool,
    pub all_features: bool,
    pub out_dir: PathBuf,
    pub git_version: Option<String>,
    pub jobs: Option<u32>,
    pub offline: bool,
    /// The user's RUSTFLAGS, which replace the table's per-target flags.
    pub user_rustflags: Option<String>,
    /// The workspace's own `toolchains.toml`, when its pins are used (not
    /// the built-in ones, not a `--toolchains` file).
    pub workspace_pins: Option<PathBuf>,
    /// `--test`: build (and run) test binaries instead of the binaries.
    pub test: Option<TestOptions>,
    /// Build twice in different sealed directories and compare the outputs.
    pub check_determinism: bool,
    /// Write release archives into `<out>/dist/` (`--dist`).
    pub dist: bool,
    /// Keep the sealed directories.
    pub keep_sealed: bool,
    /// Build even when the cache holds outputs for the same inputs.
    pub rebuild: bool,
    /// `--against-store`: compare one sealed build with the shared store's outputs.
    pub against_store: bool,
    /// `--cache-url` (or `XBUILD_CACHE_URL`): the shared store.
    pub cache_url: Option<String>,
    /// Fail when builds cannot be sandboxed.
    pub require_sandbox: bool,
    pub pins: Pins,
    /// The Rust release, and why it was chosen; `None` when nothing asked
    /// for one and the pins do not say theirs.
    pub rust: Option<Choice>,
    pub mode: Mode,
}

/// One target's RUSTFLAGS and where they came from (for report.json).
#[derive(Debug, Clone)]
pub struct RustFlags {
    pub flags: Vec<String>,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct TestOptions {
    pub no_run: bool,
    pub timeout: Duration,
    /// Given to every test binary.
    pub args: Vec<String>,
    /// Test binaries run at once.
    pub parallel: usize,
    /// `--test-network`: the host's network instead of a loopback of their own.
    pub network: bool,
}

impl Plan {
    /// Everything `xbuild [options]` asks for, checked.
    pub fn resolve(args: BuildArgs) -> Result<Plan> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let manifest_path = match &args.manifest_path {
            Some(p) => cwd.join(p),
            None => cwd.join("Cargo.toml"),
        };
        if !manifest_path.is_file() {
            return Err(Usage(format!(
                "no Cargo.toml at {}; run xbuild in a Cargo workspace or pass --manifest-path",
                manifest_path.display()
            ))
            .into());
        }
        let workspace_root = find_workspace_root(&manifest_path)?;
        if !workspace_root.join("Cargo.lock").is_file() {
            // a repository `cargo new` made tracks nothing yet: say both steps
            let untracked =
                crate::sandbox::sources::tracks(&workspace_root, "Cargo.toml") == Some(false);
            return Err(Usage(format!(
                "no Cargo.lock at the workspace root {}: xbuild builds only locked dependency graphs. \
                 {}",
                workspace_root.display(),
                if untracked {
                    "Git does not track Cargo.toml either, and xbuild builds the files git tracks: \
                     run `cargo generate-lockfile && git add .` there (a commit is not needed)"
                } else {
                    "Run `cargo generate-lockfile` and commit Cargo.lock"
                }
            ))
            .into());
        }
        let names = if args.targets.is_empty() {
            vec![targets::DEFAULT_TARGET.to_string()]
        } else {
            args.targets.clone()
        };
        let mut table = Vec::new();
        for name in &names {
            let t = targets::lookup(name).map_err(|e| Usage(e.to_string()))?;
            if !table.contains(&t) {
                table.push(t);
            }
        }
        let git_version = match args.git_version.as_deref() {
            Some("auto") => Some(sandbox::sources::git_describe(&workspace_root)?),
            other => other.map(String::from),
        };
        let pins = toolchain::load_pins(args.pins.toolchains.as_deref(), Some(&workspace_root))?;
        let workspace_pins = Some(workspace_root.join("toolchains.toml"))
            .filter(|f| args.pins.toolchains.is_none() && f.is_file());
        let rust = rust_release::choose(&pins, args.rust.as_deref(), &workspace_root)?;
        if let Some(choice) = &rust {
            let selection = workspace::Selection {
                packages: &args.packages,
                workspace: args.workspace,
                exclude: &args.exclude,
            };
            let needs = workspace::rust_versions(&workspace_root, &manifest_path, &selection)?;
            rust_release::check(choice, &pins, &needs, &workspace_root)?;
        }
        // the chosen release's rust component and build root
        let pins = match &rust {
            Some(choice) => rust_release::select(&pins, choice.release),
            None => pins,
        };
        Ok(Plan {
            workspace_pins,
            targets: table,
            out_dir: match &args.out {
                Some(o) => cwd.join(o),
                None => workspace_root.join("target").join("xbuild"),
            },
            workspace_root,
            manifest_path,
            profile: profile_of(&args),
            packages: args.packages,
            bins: args.bins,
            examples: args.examples,
            workspace: args.workspace,
            exclude: args.exclude,
            features: args.features,
            no_default_features: args.no_default_features,
            all_features: args.all_features,
            git_version,
            jobs: args.jobs,
            offline: args.pins.offline,
            user_rustflags: env::user_rustflags(),
            test: args.test.then(|| TestOptions {
                no_run: args.no_run,
                timeout: Duration::from_secs(args.test_timeout),
                args: args.test_args.clone(),
                network: args.test_network,
                parallel: args.jobs.map_or_else(
                    || std::thread::available_parallelism().map_or(1, |n| n.get()),
                    |j| j as usize,
                ),
            }),
            check_determinism: args.check_determinism,
            dist: args.dist,
            keep_sealed: args.keep_sealed,
            rebuild: args.rebuild,
            against_store: args.against_store,
            cache_url: args.cache_url.clone(),
            require_sandbox: args.require_sandbox,
            pins,
            rust,
            mode: if args.pins.offline {
                Mode::Offline
            } else {
                Mode::Online
            },
        })
    }

    /// The profile's name as people know it (`debug` for cargo's `dev`).
    pub fn profile(&self) -> &str {
        if self.profile == "dev" {
            "debug"
        } else {
            &self.profile
        }
    }

    /// Everything that selects what cargo builds, as one key part.
    pub fn selection_key(&self) -> String {
        format!(
            "profile={} packages={} bins={} examples={} workspace={} exclude={} features={} no-default={} all={}",
            self.profile,
            self.packages.join(","),
            self.bins.join(","),
            self.examples.join(","),
            self.workspace,
            self.exclude.join(","),
            self.features.as_deref().unwrap_or(""),
            self.no_default_features,
            self.all_features
        )
    }

    /// The flags std is built with: the table's (or the user's `RUSTFLAGS`)
    /// and the toolchain's, never the workspace's configuration, so that one
    /// sysroot serves every workspace (as the official std does).
    pub fn std_rustflags(&self, target: &Target) -> Vec<String> {
        let mut flags: Vec<String> = match &self.user_rustflags {
            Some(user) => user.split_whitespace().map(String::from).collect(),
            None => target.rustflags.clone(),
        };
        flags.extend(TOOLCHAIN_RUSTFLAGS.iter().map(|s| s.to_string()));
        flags
    }

    /// The flags of `target`'s build, in this order: the table's (or, when
    /// set, only the user's `RUSTFLAGS`), the workspace's own
    /// `.cargo/config.toml` rustflags as cargo would pick them (read from the
    /// snapshot at `src`), then what the toolchain needs. Settings of the
    /// workspace that xbuild overrides are said once, here.
    pub fn rustflags(
        &self,
        tools: &toolchain::Lazy<'_>,
        target: &Target,
        src: &Path,
    ) -> Result<RustFlags> {
        if self.user_rustflags.is_some() {
            return Ok(RustFlags {
                flags: self.std_rustflags(target),
                source: "RUSTFLAGS".into(),
            });
        }
        let cfg = if src.join(".cargo").is_dir() {
            // `target.'cfg(…)'.rustflags` needs rustc's answer
            rustc_cfg(tools, target)?
        } else {
            Vec::new()
        };
        let ws = cargo_config::read(src, &target.rust, &cfg)?;
        for said in &ws.overridden {
            ui::warn(said);
        }
        let mut flags = target.rustflags.clone();
        flags.extend(ws.flags);
        let mut source = String::from("target table");
        for s in ws.sources {
            source.push_str(" + .cargo/config.toml ");
            source.push_str(&s);
        }
        flags.extend(TOOLCHAIN_RUSTFLAGS.iter().map(|s| s.to_string()));
        Ok(RustFlags { flags, source })
    }

    /// The manifest, relative to the workspace root.
    pub fn rel_manifest(&self) -> &Path {
        self.manifest_path
            .strip_prefix(&self.workspace_root)
            .unwrap_or(Path::new("Cargo.toml"))
    }

    /// What the selection builds, for messages.
    pub fn describe_selection(&self) -> String {
        let mut parts = Vec::new();
        if !self.packages.is_empty() {
            parts.push(format!("package(s) {}", self.packages.join(", ")));
        }
        if !self.bins.is_empty() {
            parts.push(format!("bin(s) {}", self.bins.join(", ")));
        }
        if !self.examples.is_empty() {
            parts.push(format!("example(s) {}", self.examples.join(", ")));
        }
        if self.workspace && self.packages.is_empty() {
            parts.push("every workspace member".into());
        }
        if parts.is_empty() && self.test.is_some() {
            "the workspace's tests".into()
        } else if parts.is_empty() {
            "the workspace's binaries".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The cargo profile `--profile`/`--release` ask for (`dev` by default).
fn profile_of(args: &BuildArgs) -> String {
    match (&args.profile, args.release) {
        (Some(p), _) => p.clone(),
        (None, true) => "release".into(),
        (None, false) => "dev".into(),
    }
}

/// `rustc --print cfg` for `target` with its table flags (`crt-static` is a
/// `target_feature`), as `[target.'cfg(...)']` sections are matched. Asked
/// once per rust pins, target and flags, then read from the cache: a run
/// whose outputs are cached provisions nothing for it.
fn rustc_cfg(tools: &toolchain::Lazy<'_>, target: &Target) -> Result<Vec<String>> {
    let rust = tools
        .pins()
        .component(toolchain::manifest::ComponentKind::Rust);
    let key = crate::cache::keys::rustc_cfg(&rust.pin_hash(), &target.rust, &target.rustflags);
    let path = tools.cache().rustc_cfg(&key);
    let lines = |text: &str| text.lines().map(String::from).collect();
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(lines(&text));
    }
    let tc: &Toolchain = tools.get()?;
    let mut cmd = crate::sandbox::tool_command(
        &tc.system(),
        &tc.rustc(),
        &[&tc.rust_dir],
        &[],
        &tc.outside_env(),
    );
    let out = cmd
        .args(["--print", "cfg", "--target", &target.rust])
        .args(&target.rustflags)
        .output()
        .with_context(|| format!("asking rustc for the cfg values of {}", target.rust))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::cache::write_atomic(tools.cache(), &path, text.as_bytes())?;
    Ok(lines(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_selection_flag_is_part_of_the_key() {
        let args = |extra: &[&str]| {
            use clap::Parser;
            let mut argv = vec!["xbuild"];
            argv.extend(extra);
            crate::cli::Cli::parse_from(argv).build
        };
        let key = |extra: &[&str]| {
            let a = args(extra);
            Plan {
                targets: vec![],
                workspace_pins: None,
                workspace_root: "/w".into(),
                manifest_path: "/w/Cargo.toml".into(),
                profile: profile_of(&a),
                packages: a.packages,
                bins: a.bins,
                examples: a.examples,
                workspace: a.workspace,
                exclude: a.exclude,
                features: a.features,
                no_default_features: a.no_default_features,
                all_features: a.all_features,
                out_dir: "/o".into(),
                git_version: None,
                jobs: None,
                offline: false,
                user_rustflags: None,
                test: None,
                check_determinism: false,
                dist: false,
                keep_sealed: false,
                rebuild: false,
                against_store: false,
                cache_url: None,
                require_sandbox: false,
                pins: Pins::builtin(),
                rust: None,
                mode: Mode::Online,
            }
            .selection_key()
        };
        let base = key(&[]);
        let mut seen = vec![base.clone()];
        for extra in [
            &["--release"][..],
            &["--profile", "dist"],
            &["-p", "app"],
            &["--bin", "app"],
            &["--example", "ex"],
            &["--workspace"],
            &["--workspace", "--exclude", "tool"],
            &["--features", "b"],
            &["--no-default-features"],
            &["--all-features"],
        ] {
            let k = key(extra);
            assert!(!seen.contains(&k), "{extra:?} does not change the key");
            seen.push(k);
        }
    }
}
