//! Sealed builds: every build runs in a fresh directory that xbuild creates
//! and removes, holding a copy of the run's source snapshot, a private HOME
//! and TMPDIR, and its own cargo target dir. Nothing of the user's `target/`
//! or `.git` goes in.

pub mod bwrap;
mod gitread;
pub mod order;
pub mod snapshot;
pub mod sources;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use self::bwrap::Sandbox;
pub use self::snapshot::Snapshot;
use crate::cache::mirror::Source;
use crate::process::Cmd;
use crate::ui;

/// Where a sealed directory appears to the build in the sandbox: one fixed
/// path, so that paths the build embeds without remapping
/// (`env!("CARGO_MANIFEST_DIR")` in a build script) do not depend on where the
/// sealed directory really is, and kept target dirs stay valid.
pub const FIXED_VIEW: &str = "/tmp/xbuild-sealed";

/// Where the sandbox's own helpers are found.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a sealed build may see besides its own directory: the toolchain,
/// std, the shims and xbuild itself, the crates, all read-only, each at a
/// fixed path under [`FIXED_INPUTS`] in the sandbox (`<FIXED_INPUTS>/rust`,
/// `…/sysroot`, `…/shims`, `…/cargo-home`): everything cargo fingerprints
/// (`RUSTFLAGS`' `--sysroot` and remaps, the linker's path, the `CC_…`
/// variables build scripts track) is then the same for every cache, user
/// and machine, so compiled units travel. Nothing the cache shares with
/// other builds is writable: a build's zig cache is its own
/// ([`Sealed::bind_in_build`]).
#[derive(Debug, Clone)]
pub struct Inputs {
    /// (real path, where the build sees it)
    read_only: Vec<(PathBuf, PathBuf)>,
    sandboxed: bool,
    /// The system directories: the build root's, or the host's.
    pub system: bwrap::System,
}

/// Where a sealed build's inputs appear in the sandbox (see [`Inputs`]).
pub const FIXED_INPUTS: &str = "/tmp/xbuild-in";

/// Where a sealed build sees zig (`<FIXED_ZIG>/<its directory's name>`) and
/// zig's cache: zig compiles musl, libunwind and compiler_rt with debug
/// information that names both, so a debug build would otherwise depend on
/// where the cache is.
pub const FIXED_ZIG: &str = "/tmp/xbuild-zig";
pub const FIXED_ZIG_CACHE: &str = "/tmp/xbuild-zig-cache";

impl Inputs {
    pub fn new(sandboxed: bool, system: bwrap::System) -> Inputs {
        Inputs {
            read_only: Vec::new(),
            sandboxed,
            system,
        }
    }

    /// The base sandbox of these inputs: their system, and them bound.
    pub fn sandbox(&self, network: bool) -> Sandbox {
        let mut sb = Sandbox::new(&self.system, network);
        self.add_to(&mut sb);
        sb
    }

    /// `real`, read-only, seen at `<FIXED_INPUTS>/<name>` in the sandbox
    /// (at its own path without one).
    pub fn add(&mut self, real: &Path, name: &str) -> &mut Inputs {
        let seen = if self.sandboxed {
            Path::new(FIXED_INPUTS).join(name)
        } else {
            real.to_path_buf()
        };
        self.read_only.push((real.to_path_buf(), seen));
        self
    }

    /// Where the build sees `real` (a path inside an input, or any other).
    pub fn seen(&self, real: &Path) -> PathBuf {
        for (from, to) in &self.read_only {
            if let Ok(rel) = real.strip_prefix(from) {
                return if rel.as_os_str().is_empty() {
                    to.clone()
                } else {
                    to.join(rel)
                };
            }
        }
        real.to_path_buf()
    }

    /// Bind them: a read-only input that does not exist yet has nothing to
    /// show.
    pub fn add_to(&self, sb: &mut Sandbox) {
        for (from, to) in self.read_only.iter().filter(|(p, _)| p.exists()) {
            sb.ro_at(from, to);
        }
    }

    /// Bind `real` (an input) writable where the build sees it.
    fn add_writable(&self, sb: &mut Sandbox, real: &Path) {
        sb.bind(real, &self.seen(real));
    }
}

/// A sealed directory: `root` is where it is, `view` where the build sees it
/// (the same unless it runs in the sandbox).
pub struct Sealed {
    dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub view: PathBuf,
    /// The snapshot of the workspace root (real path): `root/src`, or the
    /// workspace's mirror, mounted read-only over it.
    pub src: PathBuf,
    /// The source files in the snapshot, relative to `src`, with digests.
    pub files: Vec<Source>,
    /// The cargo target dir (real path): `root/target`, or a kept one from
    /// the dependency cache, mounted at `view/target`.
    pub target: PathBuf,
    inputs: Inputs,
    /// Seen by cargo's builds only (not tests): (real path, view, writable).
    build_only: Vec<(PathBuf, PathBuf, bool)>,
    /// The sources in another directory order, when `src` is that copy.
    _reordered: Option<order::Reordered>,
}

impl Sealed {
    /// Whether the build runs in the sandbox (at the fixed view).
    pub fn sandboxed(&self) -> bool {
        self.view != self.root
    }

    /// A path inside the sealed dir, as the build sees it.
    pub fn view_of(&self, rel: &str) -> PathBuf {
        self.view.join(rel)
    }

    /// Where the build sees `real`, one of its inputs (see [`Inputs`]).
    pub fn seen(&self, real: &Path) -> PathBuf {
        self.inputs.seen(real)
    }

    /// Show `from` at `to` to cargo's builds only (zig, and the build's own
    /// zig cache, writable), not to tests.
    pub fn bind_in_build(&mut self, from: &Path, to: &Path, writable: bool) {
        self.build_only
            .push((from.to_path_buf(), to.to_path_buf(), writable));
    }

    /// Build in `dir` (real path) instead of the empty `root/target`: it is
    /// mounted at the same view path, so the build cannot tell.
    pub fn use_target_dir(&mut self, dir: PathBuf) {
        assert!(self.sandboxed(), "a kept target dir needs the fixed view");
        self.target = dir;
    }

    /// The real path of a path the build reported.
    pub fn real(&self, seen: &Path) -> PathBuf {
        if let Ok(rel) = seen.strip_prefix(self.view.join("target")) {
            return self.target.join(rel);
        }
        if let Ok(rel) = seen.strip_prefix(self.view.join("src")) {
            return self.src.join(rel);
        }
        match seen.strip_prefix(&self.view) {
            Ok(rel) => self.root.join(rel),
            Err(_) => seen.to_path_buf(),
        }
    }

    /// A command that runs `program` in the sandbox with the sealed dir at
    /// its view path, in `cwd` (a view path), without network. Without a
    /// sandbox: in the real sealed dir, unisolated (the caller was told).
    /// `inside` is set in the sandbox's environment only, not in
    /// bubblewrap's own (a library of the build root's to preload means
    /// nothing to the host's bubblewrap); without a sandbox, not at all.
    pub fn command(
        &self,
        program: &std::ffi::OsStr,
        cwd: &Path,
        inside: &[(String, std::ffi::OsString)],
    ) -> Cmd {
        match self.sandbox(cwd, Role::Build) {
            Some(mut sb) => {
                for (k, v) in inside {
                    sb.setenv(k, v);
                }
                sb.command(program)
            }
            None => self.sandboxed_command(program, cwd, Role::Build),
        }
    }

    /// `cargo fetch` of the sealed workspace: the same view, with network and
    /// `cargo_home` (xbuild's) writable. No cargo configuration but the
    /// workspace's and the cargo home's is read.
    pub fn fetch_command(&self, program: &std::ffi::OsStr, cargo_home: &Path) -> Cmd {
        self.sandboxed_command(program, &self.view_of("src"), Role::Fetch { cargo_home })
    }

    fn sandboxed_command(&self, program: &std::ffi::OsStr, cwd: &Path, role: Role<'_>) -> Cmd {
        match self.sandbox(cwd, role) {
            Some(sb) => sb.command(program),
            None => {
                let mut cmd = Cmd::new(program);
                cmd.current_dir(self.real(cwd))
                    .inherit(crate::process::Inherited::BUILD);
                cmd
            }
        }
    }

    /// The one place a sealed dir's sandbox is assembled: its inputs, the
    /// sealed dir at the fixed view and the target dir over its `target/`,
    /// as `role` needs them. `None` without a sandbox.
    fn sandbox(&self, cwd: &Path, role: Role<'_>) -> Option<Sandbox> {
        if !self.sandboxed() {
            return None;
        }
        let network = match role {
            Role::Build => false,
            Role::Fetch { .. } => true,
            Role::Test { network, .. } => network,
        };
        let mut sb = self.inputs.sandbox(network);
        let target = self.view.join("target");
        match role {
            Role::Build => {
                self.bind_sealed_dir(&mut sb, true);
                sb.bind(&self.target, &target);
                for (from, to, writable) in &self.build_only {
                    if *writable {
                        sb.bind(from, to);
                    } else {
                        sb.ro_at(from, to);
                    }
                }
            }
            Role::Fetch { cargo_home } => {
                self.inputs.add_writable(&mut sb, cargo_home);
                self.bind_sealed_dir(&mut sb, true);
                sb.bind(&self.target, &target);
            }
            Role::Test {
                scratch,
                target_tmp,
                ..
            } => {
                // the snapshot and what the build made, read-only; its own
                // HOME and TMPDIR, and a scratch dir as CARGO_TARGET_TMPDIR
                self.bind_sealed_dir(&mut sb, false);
                for d in ["home", "tmp"] {
                    sb.bind(&self.root.join(d), &self.view.join(d));
                }
                sb.ro_at(&self.target, &target);
                sb.bind(scratch, &target.join(target_tmp));
            }
        }
        sb.chdir(cwd);
        Some(sb)
    }

    /// The sealed dir at its view, and a mounted snapshot over its `src`,
    /// read-only whatever the role: the next build reads it too.
    fn bind_sealed_dir(&self, sb: &mut Sandbox, writable: bool) {
        if writable {
            sb.bind(&self.root, &self.view);
        } else {
            sb.ro_at(&self.root, &self.view);
        }
        if self.src != self.root.join("src") {
            sb.ro_at(&self.src, &self.view.join("src"));
        }
    }

    /// How test binaries run: the runner prefix (empty without a sandbox)
    /// and the environment the test gets over `env::passthrough_for_tests`.
    /// Sealed like a build: the snapshot and the target dir read-only, a
    /// writable HOME, TMPDIR and `CARGO_TARGET_TMPDIR` (`target/TRIPLE/tmp`
    /// for `triple`), a loopback of their own (the host's network with
    /// `network`), nothing of the host's files beyond what builds see.
    pub fn test_runner(&self, cwd: &Path, network: bool, triple: &str) -> Result<TestRunner> {
        let scratch = self.root.join("test-tmp");
        fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        // cargo made it; it is where the scratch dir is mounted, and a link
        // there would take the mount elsewhere
        let target_tmp = Path::new(triple).join("tmp");
        for dir in [self.target.join(triple), self.target.join(&target_tmp)] {
            crate::safe_fs::ensure_dir_no_links(&dir)?;
        }
        let Some(sb) = self.sandbox(
            cwd,
            Role::Test {
                network,
                scratch: &scratch,
                target_tmp: &target_tmp,
            },
        ) else {
            return Ok(TestRunner {
                prefix: Vec::new(),
                env: Vec::new(),
            });
        };
        Ok(TestRunner {
            prefix: sb.prefix(),
            env: vec![
                ("HOME".into(), self.view_of("home").into()),
                ("TMPDIR".into(), self.view_of("tmp").into()),
                ("PATH".into(), SYSTEM_PATH.into()),
            ],
        })
    }

    /// Keep the directory instead of removing it, with a copy of the
    /// sources the build saw (a mounted snapshot changes with the next
    /// run); returns its path.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        let copy = self.root.join("src");
        if self.src != copy {
            let paths: Vec<PathBuf> = self.files.iter().map(|s| s.path.clone()).collect();
            if let Err(e) = snapshot::copy_files(&self.src, &paths, &copy) {
                ui::warn(&format!(
                    "copying the sources into {}: {e:#}",
                    copy.display()
                ));
            }
        }
        self.root.clone()
    }
}

/// What a sealed dir's sandbox is for.
#[derive(Clone, Copy)]
enum Role<'a> {
    /// cargo building: the sealed dir and the target dir writable.
    Build,
    /// `cargo fetch`: the same, with network and the cargo home writable.
    Fetch { cargo_home: &'a Path },
    /// Test binaries running.
    Test {
        network: bool,
        scratch: &'a Path,
        /// `CARGO_TARGET_TMPDIR`, relative to the target dir.
        target_tmp: &'a Path,
    },
}

/// How test binaries run (see [`Sealed::test_runner`]).
pub struct TestRunner {
    pub prefix: Vec<OsString>,
    pub env: Vec<(String, OsString)>,
}

/// A pinned tool (rustc, zig) run for xbuild itself, outside any build:
/// in the sandbox when one can be had (without network; `read_only` and
/// `writable` bound at their real paths), else directly with `outside_env`
/// (then only the built-in pins run: see [`refuse_workspace_pins`]).
pub fn tool_command(
    system: &bwrap::System,
    program: &Path,
    read_only: &[&Path],
    writable: &[&Path],
    outside_env: &[(String, std::ffi::OsString)],
) -> Cmd {
    if bwrap::available().is_err() {
        let mut cmd = Cmd::new(program);
        cmd.envs(outside_env.iter().map(|(k, v)| (k, v)));
        return cmd;
    }
    let mut sb = Sandbox::new(system, false);
    for p in read_only.iter().filter(|p| p.exists()) {
        sb.ro(p);
    }
    for p in writable {
        sb.rw(p);
    }
    sb.command(program.as_os_str())
}

/// Without a sandbox, the programs of a workspace's own `toolchains.toml`
/// would start on the host with the user's rights (a pull request could pin
/// anything): refused, saying why (exit 5). The built-in pins, and a file
/// the user names with `--toolchains`, still work.
pub fn refuse_workspace_pins(sandboxed: bool, workspace_pins: Option<&Path>) -> Result<()> {
    match workspace_pins {
        Some(file) if !sandboxed => Err(crate::exit::NoSandbox(format!(
            "the workspace pins its own toolchain ({}), and without a sandbox its programs would run \
             on this host with your rights\n  install bubblewrap (Debian and Ubuntu: `apt-get install \
             bubblewrap`), or use a kernel that allows user namespaces, so that builds are sandboxed; \
             or pass `--toolchains FILE` to choose pins you trust",
            file.display()
        ))
        .into()),
        _ => Ok(()),
    }
}

/// Whether builds run sandboxed; when not, say once what is lost and how to
/// get it back, or fail when the sandbox is required.
pub fn check(required: bool) -> Result<bool> {
    match bwrap::available() {
        Ok(()) => Ok(true),
        Err(why) if required => Err(crate::exit::NoSandbox(format!(
            "the sandbox is required (--require-sandbox or {}) but cannot be had: {why}",
            crate::env::XBUILD_REQUIRE_SANDBOX
        ))
        .into()),
        Err(why) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                ui::warn(&format!(
                    "builds are not sandboxed: {why}\n  without the sandbox a build can use the network and read every file you can, \
                     and compiled dependencies are not kept between builds (each build starts from scratch); \
                     --require-sandbox makes this an error"
                ))
            });
            Ok(false)
        }
    }
}

/// Cargo reads `.cargo/config.toml` (and `.cargo/config`) in every
/// directory above the one it runs in. In the sandbox those directories are
/// xbuild's own; without it they are the real ones, and `/tmp`, where the
/// build directories are, lets any local user create `/tmp/.cargo`: a
/// `rustc-wrapper` there would run as the caller. So an unsandboxed build
/// refuses to start under any such file, and says which and what to do.
pub fn refuse_configs_above(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let found: Vec<String> = dir
        .ancestors()
        .flat_map(|d| [d.join(".cargo/config.toml"), d.join(".cargo/config")])
        .filter_map(|p| {
            let m = fs::metadata(&p).ok()?;
            Some(format!("{} (owned by uid {})", p.display(), m.uid()))
        })
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(crate::exit::NoSandbox(format!(
        "cargo would read {} above the unsandboxed build directory {}: without the sandbox \
         xbuild cannot keep a cargo configuration outside the workspace from the build \
         (another user may have put it there)\n  remove it, set TMPDIR to a directory \
         with no `.cargo` above it, or install bubblewrap (Debian and Ubuntu: \
         `apt-get install bubblewrap`) so that builds are sandboxed",
        found.join(" and "),
        dir.display()
    ))
    .into())
}

/// A new sealed directory with `snapshot` as its sources: in the sandbox a
/// kept snapshot (the workspace's mirror) is mounted read-only, otherwise it
/// is copied. `pad` lengthens the directory's path, so that two unsandboxed
/// builds differ in the absolute path and its length.
pub fn create(
    snapshot: &Snapshot,
    pad: usize,
    inputs: Inputs,
    sandboxed: bool,
    other_order: bool,
) -> Result<Sealed> {
    let dir = tempfile::Builder::new()
        .prefix("xbuild-sealed-")
        .tempdir()
        .context("creating the sealed build directory")?;
    let mut root = dir.path().to_path_buf();
    if pad > 0 {
        root = root.join("v".repeat(pad));
    }
    if !sandboxed {
        refuse_configs_above(&root)?;
    }
    for d in ["src", "home", "tmp", "target"] {
        let d = root.join(d);
        fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let view = if sandboxed {
        PathBuf::from(FIXED_VIEW)
    } else {
        root.clone()
    };
    let mut reordered = None;
    let src = if sandboxed && other_order {
        let r = order::reordered(&snapshot.root)?;
        tracing::info!(
            "sealed {} files: copied into {} in another directory order",
            snapshot.files.len(),
            r.src.display()
        );
        let src = r.src.clone();
        reordered = Some(r);
        src
    } else if sandboxed && snapshot.is_kept() {
        tracing::info!(
            "sealed {} files: {} mounted read-only",
            snapshot.files.len(),
            snapshot.root.display()
        );
        snapshot.root.clone()
    } else {
        let src = root.join("src");
        snapshot.copy_to(&src)?;
        tracing::info!(
            "sealed {} files into {}",
            snapshot.files.len(),
            src.display()
        );
        src
    };
    Ok(Sealed {
        dir: Some(dir),
        target: root.join("target"),
        root,
        view,
        src,
        files: snapshot.files.clone(),
        inputs,
        build_only: Vec::new(),
        _reordered: reordered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unsandboxed_runs_with_a_workspaces_pins_are_refused() {
        let file = Path::new("/w/toolchains.toml");
        refuse_workspace_pins(true, Some(file)).unwrap();
        refuse_workspace_pins(false, None).unwrap();
        let e = refuse_workspace_pins(false, Some(file)).unwrap_err();
        assert!(e.chain().any(|c| c.is::<crate::exit::NoSandbox>()), "{e:#}");
        assert!(e.to_string().contains("/w/toolchains.toml"), "{e}");
    }

    #[test]
    fn a_cargo_config_above_an_unsandboxed_build_is_refused_and_named() {
        // under the repository's target dir: no `.cargo` above it
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        fs::create_dir_all(&base).unwrap();
        let top = tempfile::tempdir_in(&base).unwrap();
        let build = top.path().join("tmp/xbuild-sealed-x/vvv");
        fs::create_dir_all(&build).unwrap();
        refuse_configs_above(&build).unwrap();
        for name in ["config.toml", "config"] {
            let cargo = top.path().join("tmp/.cargo");
            fs::create_dir_all(&cargo).unwrap();
            fs::write(cargo.join(name), "[build]\nrustc-wrapper = \"/x\"\n").unwrap();
            let e = refuse_configs_above(&build).unwrap_err();
            assert!(e.chain().any(|c| c.is::<crate::exit::NoSandbox>()), "{e:#}");
            let msg = e.to_string();
            assert!(
                msg.contains(&cargo.join(name).display().to_string()),
                "{msg}"
            );
            assert!(msg.contains("set TMPDIR"), "{msg}");
            fs::remove_dir_all(&cargo).unwrap();
        }
    }
}
