//! Sealed builds: every build runs in a fresh directory that xbuild creates
//! and removes, holding a copy of the run's source snapshot, a private HOME
//! and TMPDIR, and its own cargo target dir. Nothing of the user's `target/`
//! or `.git` goes in.

pub mod snapshot;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use self::snapshot::Snapshot;
use crate::process::Cmd;
use crate::ui;

/// Where a sealed directory appears to the build when xbuild can give the
/// build its own mount namespace: one fixed path, so that paths the build
/// embeds without remapping (`env!("CARGO_MANIFEST_DIR")` in a build script)
/// do not depend on where the sealed directory really is.
pub const FIXED_VIEW: &str = "/tmp/xbuild-sealed";

/// Where the sandbox's own helpers (`unshare`, `mount`, `sh`) are found.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bind-mount `$0` on `$1` and `$2` on `$1/target`, change to `$3`, run the rest.
const MOUNT_SCRIPT: &str =
    r#"mount --bind "$0" "$1" && mount --bind "$2" "$1/target" && cd "$3" && shift 3 && exec "$@""#;

/// A sealed directory: `root` is where it is, `view` where the build sees it
/// (the same unless it runs in its own mount namespace).
pub struct Sealed {
    dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub view: PathBuf,
    /// The snapshot of the workspace root (real path).
    pub src: PathBuf,
    /// The source files in the snapshot, relative to `src`.
    pub files: Vec<PathBuf>,
    /// The cargo target dir (real path): `root/target`, or a kept one from
    /// the dependency cache, mounted at `view/target`.
    pub target: PathBuf,
}

impl Sealed {
    pub fn namespaced(&self) -> bool {
        self.view != self.root
    }

    /// A path inside the sealed dir, as the build sees it.
    pub fn view_of(&self, rel: &str) -> PathBuf {
        self.view.join(rel)
    }

    /// Build in `dir` (real path) instead of the empty `root/target`: it is
    /// mounted at the same view path, so the build cannot tell.
    pub fn use_target_dir(&mut self, dir: PathBuf) {
        assert!(self.namespaced(), "a kept target dir needs the fixed view");
        self.target = dir;
    }

    /// The real path of a path the build reported.
    pub fn real(&self, seen: &Path) -> PathBuf {
        if let Ok(rel) = seen.strip_prefix(self.view.join("target")) {
            return self.target.join(rel);
        }
        match seen.strip_prefix(&self.view) {
            Ok(rel) => self.root.join(rel),
            Err(_) => seen.to_path_buf(),
        }
    }

    /// A command that runs `program` with the sealed dir at its view path,
    /// in `cwd` (a view path), without network when `no_network`.
    pub fn command(&self, program: &std::ffi::OsStr, cwd: &Path, no_network: bool) -> Cmd {
        if !self.namespaced() {
            let mut cmd = if no_network && network_isolation() {
                let mut c = Cmd::new("unshare");
                c.arg("--net").arg("--").arg(program);
                c
            } else {
                Cmd::new(program)
            };
            cmd.current_dir(cwd);
            return cmd;
        }
        let mut cmd = Cmd::new("unshare");
        cmd.arg("--mount").arg("--propagation").arg("private");
        if no_network {
            cmd.arg("--net");
        }
        cmd.args(["--", "/bin/sh", "-c", MOUNT_SCRIPT])
            .arg(&self.root)
            .arg(&self.view)
            .arg(&self.target)
            .arg(cwd)
            .arg(program);
        cmd
    }

    /// The runner prefix for test binaries: the same mount, network left on.
    pub fn runner_prefix(&self, cwd: &Path) -> Vec<std::ffi::OsString> {
        if !self.namespaced() {
            return Vec::new();
        }
        let mut v: Vec<std::ffi::OsString> = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            MOUNT_SCRIPT,
        ]
        .iter()
        .map(Into::into)
        .collect();
        v.push(self.root.clone().into());
        v.push(self.view.clone().into());
        v.push(self.target.clone().into());
        v.push(cwd.into());
        v
    }

    /// Keep the directory instead of removing it; returns its path.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.root.clone()
    }
}

/// A new sealed directory holding a copy of `snapshot`: `pad` lengthens its
/// path, so that two sealed builds differ in the absolute path and its length.
pub fn create(snapshot: &Snapshot, pad: usize) -> Result<Sealed> {
    let dir = tempfile::Builder::new()
        .prefix("xbuild-sealed-")
        .tempdir()
        .context("creating the sealed build directory")?;
    let mut root = dir.path().to_path_buf();
    if pad > 0 {
        root = root.join("v".repeat(pad));
    }
    let src = root.join("src");
    for d in ["src", "home", "tmp", "target"] {
        let d = root.join(d);
        fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let view = if mount_namespaces() {
        PathBuf::from(FIXED_VIEW)
    } else {
        root.clone()
    };
    snapshot.copy_to(&src)?;
    tracing::info!(
        "sealed {} files into {}",
        snapshot.files.len(),
        src.display()
    );
    Ok(Sealed {
        dir: Some(dir),
        target: root.join("target"),
        root,
        view,
        src,
        files: snapshot.files.clone(),
    })
}

/// Whether builds can get their own mount namespace (root, or unprivileged
/// user namespaces): then the sealed dir is bind-mounted at FIXED_VIEW.
pub fn mount_namespaces() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        if fs::create_dir_all(FIXED_VIEW).is_err() {
            return false;
        }
        let probe = tempfile::tempdir();
        let ok = probe.is_ok_and(|p| {
            let target = p.path().join("target");
            fs::create_dir_all(&target).is_ok()
                && Cmd::new("unshare")
                    .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c", MOUNT_SCRIPT])
                    .arg(p.path())
                    .arg(FIXED_VIEW)
                    .arg(&target)
                    .arg("/")
                    .arg("true")
                    .env("PATH", SYSTEM_PATH)
                    .output()
                    .is_ok()
        });
        if !ok {
            ui::note(&format!(
                "no mount namespace for the build (needs root or user namespaces): paths a build embeds without remapping, like env!(\"CARGO_MANIFEST_DIR\"), will name the sealed directory instead of {FIXED_VIEW}"
            ));
        }
        ok
    })
}

/// Whether cargo can run without network (a new network namespace).
pub fn network_isolation() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        let ok = Cmd::new("unshare")
            .args(["--net", "true"])
            .env("PATH", SYSTEM_PATH)
            .output()
            .is_ok();
        if !ok {
            ui::note(
                "this kernel does not let xbuild start the build without network (unshare --net); it runs with cargo --offline --frozen only",
            );
        }
        ok
    })
}
