//! The pinned toolchain: which pins apply, and provisioning them into the
//! cache (fetch, verify, unpack, rename into place).

pub mod apt;
mod artifact;
pub mod debian;
mod download;
pub mod fetch;
pub mod glibc;
pub mod launchers;
mod layout;
pub mod manifest;
pub mod pypi;
pub mod root;
pub mod rustdist;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use self::fetch::Mode;
use self::manifest::{Component, ComponentKind, Pins};
use crate::cache::{self, Cache};
use crate::targets::Target;
use crate::{ui, unpack};

/// Where the pins come from: `--toolchains FILE`, else a `toolchains.toml` at
/// the workspace root, else the built-in copy.
pub fn load_pins(explicit: Option<&Path>, workspace_root: Option<&Path>) -> Result<Pins> {
    if let Some(path) = explicit {
        return Ok(Pins::load(path)?);
    }
    if let Some(root) = workspace_root {
        let candidate = root.join("toolchains.toml");
        if candidate.is_file() {
            tracing::info!("using the pins of {}", candidate.display());
            let mut pins = Pins::load(&candidate)?;
            pins.from_workspace = true;
            return Ok(pins);
        }
    }
    Ok(Pins::builtin())
}

/// The components that building and running for `targets` needs.
pub fn components_for(targets: &[&Target]) -> Vec<ComponentKind> {
    let mut kinds = vec![ComponentKind::Rust, ComponentKind::Zig];
    if targets.iter().any(|t| t.runner.qemu.is_some()) {
        kinds.push(ComponentKind::Qemu);
    }
    kinds
}

/// A provisioned toolchain: absolute paths into the cache.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub pins: Pins,
    pub rust_dir: PathBuf,
    pub zig_dir: PathBuf,
    pub qemu_dir: Option<PathBuf>,
    /// The build tools (CMake, Ninja, libclang), when pinned.
    pub tools_dir: Option<PathBuf>,
    /// The build root, when pinned (see [`root`]).
    pub root_dir: Option<PathBuf>,
    /// Shared locks on the directories above, held while this toolchain is
    /// in use: `toolchain gc` leaves them alone meanwhile.
    #[allow(dead_code)] // held, never read
    pub in_use: std::sync::Arc<Vec<std::fs::File>>,
}

impl Toolchain {
    /// The same toolchain where a sealed build sees it: its directories
    /// through `seen` (zig's is another view's, see `ZigView`).
    pub fn seen_through(&self, seen: impl Fn(&Path) -> PathBuf) -> Toolchain {
        Toolchain {
            rust_dir: seen(&self.rust_dir),
            qemu_dir: self.qemu_dir.as_deref().map(&seen),
            tools_dir: self.tools_dir.as_deref().map(&seen),
            ..self.clone()
        }
    }

    /// The launcher of the pinned rustc (see [`launchers`]): what cargo, build
    /// scripts and people run.
    pub fn rustc(&self) -> PathBuf {
        self.rust_dir.join(launchers::DIR).join("rustc")
    }
    pub fn cargo(&self) -> PathBuf {
        self.rust_dir.join(launchers::DIR).join("cargo")
    }
    pub fn rust_src(&self) -> PathBuf {
        self.rust_dir.join(&self.pins.rust_layout.rust_src)
    }
    pub fn zig(&self) -> PathBuf {
        self.zig_dir.join(&self.pins.zig_layout.zig)
    }
    /// The system directories its sandboxes get: the build root when the
    /// pins have one, else the host's.
    pub fn system(&self) -> crate::sandbox::bwrap::System {
        match &self.root_dir {
            Some(dir) => crate::sandbox::bwrap::System::Root(dir.clone()),
            None => crate::sandbox::bwrap::System::Host,
        }
    }

    /// libfaketime as a sandboxed build sees it (the root's `/usr` is its
    /// `/usr`), when the build root has it.
    pub fn faketime_in_sandbox(&self) -> Option<std::path::PathBuf> {
        self.root_dir.as_ref()?;
        let rel = self.pins.root_layout.as_ref()?.faketime.as_deref()?;
        Some(std::path::Path::new("/").join(root::inside(rel).ok()?))
    }

    /// The glibc version build scripts and proc macros are linked against
    /// (by zig) when the build root gives them theirs.
    pub fn root_glibc(&self) -> Option<&str> {
        self.root_dir.as_ref()?;
        self.pins.root_layout.as_ref().map(|l| l.glibc.as_str())
    }

    /// What a toolchain program started outside a sandbox needs in its
    /// environment to run on the build root's loader and libraries rather
    /// than the host's (see [`launchers`]; the host linker makes build
    /// scripts ask for them too). Empty without a build root, or one whose
    /// layout names no loader: then the host's glibc runs it.
    pub fn outside_env(&self) -> Vec<(String, std::ffi::OsString)> {
        let (Some(dir), Some(layout)) = (&self.root_dir, &self.pins.root_layout) else {
            return Vec::new();
        };
        let Some(loader) = &layout.loader else {
            return Vec::new();
        };
        let libs: Vec<String> = layout
            .library_path
            .iter()
            .map(|l| dir.join(l).display().to_string())
            .collect();
        vec![
            (
                crate::env::XBUILD_ROOT_LOADER.into(),
                dir.join(loader).into(),
            ),
            (
                crate::env::XBUILD_ROOT_LIBRARY_PATH.into(),
                libs.join(":").into(),
            ),
        ]
    }

    /// The launchers of the build tools: what goes on a build's PATH first.
    pub fn tools_bin(&self) -> Option<PathBuf> {
        self.tools_dir.as_ref().map(|d| d.join(launchers::DIR))
    }
    /// The directory of `libclang.so`, for bindgen (`LIBCLANG_PATH`).
    pub fn libclang_dir(&self) -> Option<PathBuf> {
        let dir = self.tools_dir.as_ref()?;
        let rel = self.pins.tools_layout.as_ref()?.libclang_dir.as_ref()?;
        Some(dir.join(rel))
    }
}

/// The toolchain of a run, provisioned the first time something needs it:
/// a run whose every target comes from the cache (local or shared)
/// provisions nothing.
pub struct Lazy<'a> {
    cache: &'a Cache,
    pins: &'a Pins,
    kinds: Vec<ComponentKind>,
    mode: Mode,
    tc: std::cell::OnceCell<Toolchain>,
}

impl<'a> Lazy<'a> {
    pub fn new(cache: &'a Cache, pins: &'a Pins, kinds: Vec<ComponentKind>, mode: Mode) -> Self {
        Lazy {
            cache,
            pins,
            kinds,
            mode,
            tc: std::cell::OnceCell::new(),
        }
    }

    pub fn cache(&self) -> &'a Cache {
        self.cache
    }

    pub fn pins(&self) -> &'a Pins {
        self.pins
    }

    pub fn get(&self) -> Result<&Toolchain> {
        if let Some(tc) = self.tc.get() {
            return Ok(tc);
        }
        let tc = provision(self.cache, self.pins, &self.kinds, self.mode)?;
        Ok(self.tc.get_or_init(|| tc))
    }
}

pub(crate) fn installed_dir(cache: &Cache, c: &Component) -> PathBuf {
    cache.toolchains().join(c.install_name())
}

/// Whether the component is installed and complete (its marker exists).
pub fn is_installed(cache: &Cache, c: &Component) -> bool {
    installed_dir(cache, c).join(cache::MARKER).is_file()
}

/// Provision `kinds` of `pins` into `cache` and return the toolchain. A warm
/// call (everything installed) only checks for the markers.
pub fn provision(
    cache: &Cache,
    pins: &Pins,
    kinds: &[ComponentKind],
    mode: Mode,
) -> Result<Toolchain> {
    // with a build root, the toolchain runs in it (sandboxed): the host's
    // glibc does not matter, but xbuild's own does
    ensure!(
        pins.host == std::env::consts::ARCH,
        "the pins ({}) are for {} hosts, and this host is {}: a host of another CPU needs pins of its own \
         (`host = \"{}\"` in a toolchains.toml of its packages; docs/TOOLCHAINS.md)",
        pins.origin,
        pins.host,
        std::env::consts::ARCH,
        std::env::consts::ARCH
    );
    // (the root's own bubblewrap, once installed, is the sandbox of a host
    // without one)
    offer_root_bwrap(cache, pins);
    let in_root = pins.has(ComponentKind::Root)
        && (crate::sandbox::bwrap::available().is_ok()
            || pins.root_layout.as_ref().is_some_and(|l| l.bwrap.is_some()));
    let check_glibc = |in_root: bool| -> Result<()> {
        match (&pins.root_layout, &pins.rust_layout.glibc) {
            (Some(root), _) if in_root => root::check_xbuild_runs_in(root),
            // outside the sandbox the toolchain runs on the root's loader
            // and libraries (`Toolchain::outside_env`)
            (Some(root), _) if root.loader.is_some() => Ok(()),
            (_, Some(floor)) => Ok(glibc::check(
                glibc::host_version().as_deref(),
                floor,
                &pins.origin,
            )?),
            _ => Ok(()),
        }
    };
    if kinds.contains(&ComponentKind::Rust) {
        check_glibc(in_root)?;
    }
    // builds get the pinned build tools (CMake, Ninja, libclang) whenever
    // they are pinned
    let mut kinds = kinds.to_vec();
    if kinds.contains(&ComponentKind::Rust) && pins.has(ComponentKind::Tools) {
        kinds.push(ComponentKind::Tools);
    }
    // and the build root, when pinned: it is their system in the sandbox
    if kinds.contains(&ComponentKind::Rust) && pins.has(ComponentKind::Root) {
        kinds.push(ComponentKind::Root);
    }
    let kinds = &kinds[..];
    let wanted: Vec<&Component> = kinds.iter().map(|k| pins.component(*k)).collect();
    // before looking: a gc that removes one of them finishes first
    let mut in_use = Vec::new();
    for c in &wanted {
        let path = cache.toolchain_lock(&c.install_name());
        let lock = cache::lock_file(&path)?;
        lock.lock_shared()
            .with_context(|| format!("locking {}", path.display()))?;
        in_use.push(lock);
    }
    if !wanted.iter().all(|c| is_installed(cache, c)) {
        let _lock = cache.lock("provisioning the toolchain")?;
        cache::clean_tmp(cache)?;
        let todo: Vec<&Component> = wanted
            .iter()
            .copied()
            .filter(|c| !is_installed(cache, c))
            .collect();
        if mode == Mode::Offline {
            let missing: Vec<_> = todo
                .iter()
                .flat_map(|c| c.artifacts.iter())
                .filter(|a| !fetch::available_offline(cache, pins, a))
                .cloned()
                .collect();
            if !missing.is_empty() {
                bail!(fetch::missing_offline(&missing));
            }
        }
        let fetcher = fetch::Fetcher::new(cache, pins, mode);
        for c in todo {
            install(cache, pins, c, &fetcher)?;
        }
    }
    offer_root_bwrap(cache, pins);
    // the root was counted on for its bubblewrap, which does not work here
    // either: the toolchain runs on the host after all
    if in_root
        && kinds.contains(&ComponentKind::Rust)
        && crate::sandbox::bwrap::available().is_err()
    {
        check_glibc(false)?;
    }
    let dir = |k| installed_dir(cache, pins.component(k));
    Ok(Toolchain {
        pins: pins.clone(),
        rust_dir: dir(ComponentKind::Rust),
        zig_dir: dir(ComponentKind::Zig),
        qemu_dir: kinds
            .contains(&ComponentKind::Qemu)
            .then(|| dir(ComponentKind::Qemu)),
        tools_dir: kinds
            .contains(&ComponentKind::Tools)
            .then(|| dir(ComponentKind::Tools)),
        root_dir: kinds
            .contains(&ComponentKind::Root)
            .then(|| dir(ComponentKind::Root)),
        in_use: std::sync::Arc::new(in_use),
    })
}

/// Before a run decides whether it is sandboxed: offer the build root's
/// bubblewrap, installing the root first when the host has no working
/// bubblewrap of its own (a host with nothing but a kernel). Pins from the
/// workspace never bring the program that makes the sandbox.
pub fn prepare_sandbox(cache: &Cache, pins: &Pins, mode: Mode) -> Result<()> {
    offer_root_bwrap(cache, pins);
    let Some(layout) = &pins.root_layout else {
        return Ok(());
    };
    let root = pins.component(ComponentKind::Root);
    if pins.from_workspace
        || layout.bwrap.is_none()
        || is_installed(cache, root)
        || crate::sandbox::bwrap::available().is_ok()
    {
        return Ok(());
    }
    ui::status(
        "Sandbox",
        "this host has no working bubblewrap: installing the build root, whose bubblewrap xbuild then uses",
    );
    let path = cache.toolchain_lock(&root.install_name());
    let lock = cache::lock_file(&path)?;
    lock.lock_shared()
        .with_context(|| format!("locking {}", path.display()))?;
    let _lock = cache.lock("provisioning the toolchain")?;
    if !is_installed(cache, root) {
        cache::clean_tmp(cache)?;
        let fetcher = fetch::Fetcher::new(cache, pins, mode);
        install(cache, pins, root, &fetcher)?;
    }
    offer_root_bwrap(cache, pins);
    Ok(())
}

/// Offer the installed build root's bubblewrap to the sandbox (see
/// `sandbox::bwrap::offer_pinned`).
pub(crate) fn offer_root_bwrap(cache: &Cache, pins: &Pins) {
    let Some(layout) = &pins.root_layout else {
        return;
    };
    if pins.from_workspace {
        return;
    }
    let c = pins.component(ComponentKind::Root);
    if is_installed(cache, c)
        && let Some(pinned) = root::pinned_bwrap(layout, &installed_dir(cache, c))
    {
        crate::sandbox::bwrap::offer_pinned(pinned);
    }
}

/// Install one component. The caller holds the cache lock.
fn install(cache: &Cache, pins: &Pins, c: &Component, fetcher: &fetch::Fetcher) -> Result<()> {
    let name = c.install_name();
    let archives = c
        .artifacts
        .iter()
        .map(|a| fetcher.ensure(a).map(|p| (a, p)))
        .collect::<Result<Vec<_>>>()?;
    let staging = cache.temp_dir(&name)?;
    let started = std::time::Instant::now();
    let sizes: Vec<u64> = archives
        .iter()
        .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .collect();
    let total: u64 = sizes.iter().sum();
    ui::status(
        "Unpacking",
        &format!(
            "{} ({} archive(s), {})",
            c.kind.name(),
            archives.len(),
            cache::human_size(total)
        ),
    );
    let mut meter = ui::Progress::new(&format!("unpacking {}", c.kind.name()), Some(total));
    let mut done = 0;
    for ((a, path), size) in archives.iter().zip(&sizes) {
        // Re-check the digest just before unpacking: the file may have changed
        // since it was verified.
        let got = cache::hash_file(path)?;
        if got != a.sha256 {
            fs::remove_file(path).ok();
            return Err(fetch::ChecksumMismatch {
                label: a.label(),
                file: a.file_name.clone(),
                expected: a.sha256.clone(),
                computed: got,
            }
            .into());
        }
        if c.kind == ComponentKind::Root {
            unpack::unpack_root(path, &a.file_name, staging.path())
        } else {
            unpack::unpack(path, &a.file_name, staging.path(), a.strip)
        }
        .with_context(|| format!("unpacking {}", a.label()))?;
        done += size;
        meter.update(done);
    }
    meter.finish();
    check_layout(pins, c, staging.path())?;
    match (c.kind, &pins.tools_layout, &pins.root_layout) {
        (ComponentKind::Rust, _, _) => launchers::write(&pins.rust_layout, staging.path())?,
        (ComponentKind::Tools, Some(layout), _) => launchers::write_tools(layout, staging.path())?,
        (ComponentKind::Root, _, Some(layout)) => {
            root::finish(layout, staging.path())?;
            if let Some(pinned) = root::pinned_bwrap(layout, staging.path()) {
                crate::sandbox::bwrap::offer_pinned(pinned);
            }
            if crate::sandbox::bwrap::available().is_ok() {
                root::check(layout, staging.path())?;
            }
        }
        _ => {}
    }
    let marker = serde_json::json!({
        "component": c.kind.name(),
        "pins": c.artifacts,
        "xbuild": env!("CARGO_PKG_VERSION"),
    });
    fs::write(
        staging.path().join(cache::MARKER),
        serde_json::to_vec_pretty(&marker)?,
    )
    .context("writing the install marker")?;
    let dest = installed_dir(cache, c);
    if dest.exists() {
        // Only an incomplete install can be here (we hold the lock and the
        // marker was missing): replace it.
        fs::remove_dir_all(&dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    // on disk before the rename shows it: a crash never leaves a marked
    // install with files the disk does not hold
    crate::safe_fs::sync_file_system(staging.path())?;
    let staged = staging.keep();
    fs::rename(&staged, &dest)
        .with_context(|| format!("moving {} into {}", staged.display(), dest.display()))?;
    ui::status(
        "Installed",
        &format!(
            "{} in {:.1}s ({})",
            c.kind.name(),
            started.elapsed().as_secs_f64(),
            dest.display()
        ),
    );
    Ok(())
}

/// The files the layout names must exist once unpacked.
fn check_layout(pins: &Pins, c: &Component, root: &Path) -> Result<()> {
    let required: Vec<&str> = match c.kind {
        ComponentKind::Rust => vec![
            &pins.rust_layout.rustc,
            &pins.rust_layout.cargo,
            &pins.rust_layout.rust_src,
        ],
        ComponentKind::Zig => vec![&pins.zig_layout.zig],
        ComponentKind::Qemu => vec![&pins.qemu_layout.bin_dir],
        ComponentKind::Root => vec!["usr/bin", "etc"],
        ComponentKind::Tools => pins
            .tools_layout
            .iter()
            .flat_map(|l| l.bin_dirs.iter().chain(&l.libclang_dir))
            .map(String::as_str)
            .collect(),
    };
    for rel in required {
        if !root.join(rel).exists() {
            bail!(
                "the {} component's artifacts do not contain `{rel}` ({}); check the layout keys of [{}]",
                c.kind.name(),
                pins.origin,
                c.kind.name()
            );
        }
    }
    Ok(())
}
