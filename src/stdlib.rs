//! Stage "std": the standard library, built once per (toolchain, target,
//! flags) from the pinned source and kept in the cache as a sysroot (the
//! approach of xargo and cargo-xbuild). Every later build for that target
//! passes `--sysroot` instead of building std again.
//!
//! Like the official std, it carries LLVM bitcode next to the machine code
//! (`-C embed-bitcode=yes`), so that a workspace whose profile asks for LTO
//! (`lto = true`, `"fat"`, `"thin"`) can link it; and `panic_abort` is built
//! beside it for `panic = "abort"` profiles.
//!
//! libtest is a layer on top, built only when `xbuild --test` first needs
//! it: cargo's target dir of the std build is kept next to the sysroot (its
//! libraries hard-linked, not copied) until then, so that adding libtest
//! compiles libtest and its two dependencies and nothing of std again.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cache::{self, Cache, keys, store};
use crate::cargo_env::CargoEnv;
use crate::targets::Target;
use crate::toolchain::Toolchain;
use crate::{ui, zigcc};

/// What `-Zbuild-std` builds for every build: std, and `panic_abort`.
const STD_CRATES: &str = "std,panic_abort";
/// What it builds when tests need libtest too (the layer).
const STD_AND_TEST_CRATES: &str = "std,panic_abort,test";

/// How std is built, beyond its flags; part of the sysroot's key.
/// `panic_abort` is compiled with `-C panic=abort` (through xbuild as
/// `RUSTC_WRAPPER`, as Rust's bootstrap does), so `panic = "abort"` links.
/// Its paths are remapped to `/xbuild/…` (not part of the key: the key
/// holds nothing specific to this machine, so a sysroot can be shared).
const STD_RECIPE: &str = "panic_abort aborts; remapped to /xbuild; libtest a layer";

/// Flags std is compiled with on top of the target's: bitcode for LTO, as
/// the official std has (cargo passes `-C embed-bitcode=no` to a non-LTO
/// release build; a later flag wins).
const STD_RUSTFLAGS: &[&str] = &["-C", "embed-bitcode=yes"];

/// Written into a sysroot once libtest's layer is complete in it.
const TEST_MARKER: &str = ".xbuild-test";

/// The sysroot's cache key: the rust and zig pins, the target and the flags std
/// is compiled with.
pub fn key(tc: &Toolchain, target: &Target, rustflags: &[String]) -> String {
    keys::std(&keys::Std {
        crates: STD_CRATES,
        recipe: STD_RECIPE,
        pins: &tc.pins.std_digest(),
        target: &target.rust,
        flags: rustflags,
    })
}

/// The std sysroot of one target, with libtest's layer when `test`.
pub struct Std<'a> {
    cache: &'a Cache,
    tc: &'a Toolchain,
    target: &'a Target,
    /// The flags std is compiled with (the key's), then the remaps.
    rustflags: Vec<String>,
    key: String,
    dir: PathBuf,
    test: bool,
}

impl<'a> Std<'a> {
    /// The sysroot `target` builds with, given the target's flags for std;
    /// `test` when the run compiles tests (libtest).
    pub fn new(
        cache: &'a Cache,
        tc: &'a Toolchain,
        target: &'a Target,
        flags: &[String],
        test: bool,
    ) -> Std<'a> {
        let mut rustflags = flags.to_vec();
        rustflags.extend(STD_RUSTFLAGS.iter().map(|s| s.to_string()));
        let key = key(tc, target, &rustflags);
        // std's own paths are remapped like the workspace's, so that no build
        // depends on where the cache is.
        for (from, to) in [
            (cache.cargo_home(), "/xbuild/cargo-home"),
            (tc.rust_dir.clone(), "/xbuild/toolchain"),
        ] {
            rustflags.push(format!("--remap-path-prefix={}={to}", from.display()));
        }
        let dir = cache.sysroot(&key);
        Std {
            cache,
            tc,
            target,
            rustflags,
            key,
            dir,
            test,
        }
    }

    /// Whether the cache holds everything this run needs.
    pub fn ready(&self) -> bool {
        self.dir.join(cache::MARKER).is_file() && (!self.test || self.has_test())
    }

    fn has_test(&self) -> bool {
        self.dir.join(TEST_MARKER).is_file()
    }

    fn test_key(&self) -> String {
        format!("{}-test", self.key)
    }

    /// Where cargo's target dir of the std build is kept for libtest's layer.
    fn tree(&self) -> PathBuf {
        self.cache.std_tree(&self.key)
    }

    fn lib(&self, root: &Path) -> PathBuf {
        root.join("lib/rustlib").join(&self.target.rust).join("lib")
    }

    /// The sysroot, built (or fetched from the shared store) first when the
    /// cache lacks it or, for tests, libtest's layer. std is built in the
    /// sandbox (with network, for std's own dependencies), where no cargo
    /// configuration but xbuild's cargo home's can reach it.
    pub fn ensure(&self, sandboxed: bool) -> Result<PathBuf> {
        if self.ready() {
            // what was built before the store was set up is offered to it too
            if self.cache.store().is_some_and(|s| s.writes()) {
                let layer = if self.has_test() {
                    self.layer_files()?
                } else {
                    Vec::new()
                };
                let mut base = Vec::new();
                walk_files(&self.dir, &mut base)?;
                base.retain(|p| !layer.iter().any(|l| p.ends_with(l)));
                let base: Vec<PathBuf> = base
                    .iter()
                    .filter_map(|p| p.strip_prefix(&self.dir).ok().map(Path::to_path_buf))
                    .collect();
                self.push_to_store(&self.dir, &self.key, Some(&base));
                if self.test {
                    self.push_to_store(&self.dir, &self.test_key(), Some(&layer));
                }
            }
            return Ok(self.dir.clone());
        }
        let _lock = self.cache.lock("building std")?;
        if !self.dir.join(cache::MARKER).is_file() && !self.fetch_base()? {
            self.build_base(sandboxed)?;
        }
        if self.test && !self.has_test() && !self.fetch_test()? {
            self.build_test(sandboxed)?;
        }
        Ok(self.dir.clone())
    }

    /// Build std (without libtest) in the kept tree and move the sysroot
    /// into place.
    fn build_base(&self, sandboxed: bool) -> Result<()> {
        let started = Instant::now();
        ui::status(
            "Building",
            &format!(
                "std for {} from the pinned source (once; cached for every later build)",
                self.target.rust
            ),
        );
        let tree = self.tree();
        // a tree a killed build left is cargo's own target dir: it goes on
        let deps = self.cargo_build(&tree, STD_CRATES, sandboxed)?;
        let work = self.cache.temp_dir("std")?;
        let staged = work.path().join("sysroot");
        let lib = self.lib(&staged);
        fs::create_dir_all(&lib)?;
        let mut count = 0;
        for (name, path) in rlibs(&deps)? {
            // the tree keeps its own name for the same file: cargo replaces
            // a library by renaming a new one over it, never by writing into it
            if fs::hard_link(&path, lib.join(&name)).is_err() {
                fs::copy(&path, lib.join(&name))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
            count += 1;
        }
        if count == 0 {
            bail!(
                "building std for {} produced no libraries in {}",
                self.target.rust,
                deps.display()
            );
        }
        self.push_to_store(&staged, &self.key, None);
        self.install(&staged)?;
        ui::status(
            "Cached",
            &format!(
                "std for {} in {:.0}s ({count} libraries)",
                self.target.rust,
                started.elapsed().as_secs_f64()
            ),
        );
        Ok(())
    }

    /// Add libtest's layer: in the kept tree, cargo compiles libtest and
    /// its dependencies only; without one (std came from the store), all of
    /// std again, which must come out identical to the sysroot's.
    fn build_test(&self, sandboxed: bool) -> Result<()> {
        let started = Instant::now();
        let tree = self.tree();
        let kept = tree.join("target").is_dir();
        let work = self.cache.temp_dir("std-test")?;
        let at = if kept {
            tree.clone()
        } else {
            work.path().join("tree")
        };
        ui::status(
            "Building",
            &format!(
                "libtest for {} (once, for --test{})",
                self.target.rust,
                if kept {
                    ""
                } else {
                    "; std again, as the cache has no build tree"
                }
            ),
        );
        let deps = self.cargo_build(&at, STD_AND_TEST_CRATES, sandboxed)?;
        let lib = self.lib(&self.dir);
        let mut layer = Vec::new();
        for (name, path) in rlibs(&deps)? {
            let have = lib.join(&name);
            if have.is_file() {
                // in the kept tree, the same file (hard-linked); else compared
                if !same_inode(&have, &path) && cache::hash_file(&have)? != cache::hash_file(&path)?
                {
                    bail!(
                        "std built again for libtest differs from the cached std ({name}): std is not reproducible with this toolchain; remove {} and build again",
                        self.dir.display()
                    );
                }
                continue;
            }
            // staged beside, so that the sysroot only ever gains whole files
            let part = work.path().join(&name);
            fs::copy(&path, &part).with_context(|| format!("copying {}", path.display()))?;
            fs::rename(&part, &have).with_context(|| format!("moving {}", have.display()))?;
            layer.push(name);
        }
        if layer.is_empty() {
            bail!(
                "building libtest for {} produced no new libraries in {}",
                self.target.rust,
                deps.display()
            );
        }
        cache::write_atomic(
            self.cache,
            &self.dir.join(TEST_MARKER),
            layer.join("\n").as_bytes(),
        )?;
        self.push_to_store(&self.dir, &self.test_key(), Some(&self.layer_files()?));
        // the tree served its one purpose
        if tree.exists() {
            fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
        }
        ui::status(
            "Cached",
            &format!(
                "libtest for {} in {:.0}s ({} libraries)",
                self.target.rust,
                started.elapsed().as_secs_f64(),
                layer.len()
            ),
        );
        Ok(())
    }

    /// The layer's files, relative to the sysroot, as its marker lists them.
    fn layer_files(&self) -> Result<Vec<PathBuf>> {
        let marker = self.dir.join(TEST_MARKER);
        let text =
            fs::read_to_string(&marker).with_context(|| format!("reading {}", marker.display()))?;
        let lib = self.lib(Path::new(""));
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| lib.join(l))
            .collect())
    }

    /// `cargo build -Zbuild-std=<crates>` of an empty library in `tree`
    /// (`tree/project`, `tree/target`); returns the dir of the libraries.
    fn cargo_build(&self, tree: &Path, crates: &str, sandboxed: bool) -> Result<PathBuf> {
        let (cache, tc, target) = (self.cache, self.tc, self.target);
        let project = tree.join("project");
        fs::create_dir_all(project.join("src"))
            .with_context(|| format!("creating {}", project.display()))?;
        fs::write(
            project.join("Cargo.toml"),
            "[package]\nname = \"xbuild-sysroot\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[lib]\npath = \"src/lib.rs\"\n\n[profile.release]\ndebug = 0\n",
        )?;
        fs::write(project.join("src/lib.rs"), "")?;
        let target_dir = tree.join("target");
        let mut env = CargoEnv::for_fetch(cache, tc, &cache.cargo_home());
        env.add_target(cache, tc, target, &|p| p.to_path_buf())?;
        let mut cmd = if sandboxed {
            let mut sb = crate::sandbox::Sandbox::new(&tc.system(), true);
            for p in [tree, &cache.cargo_home(), &cache.zig_cache()] {
                fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
                sb.rw(p);
            }
            for p in [&tc.rust_dir, &tc.zig_dir, &cache.shims()] {
                sb.ro(p);
            }
            sb.ro(&cache.own_exe()?);
            sb.chdir(&project);
            let mut cmd = sb.command(tc.cargo().as_os_str());
            env.in_network_sandbox();
            cmd.envs(env.vars.iter().map(|(k, v)| (k, v)));
            cmd
        } else {
            crate::sandbox::refuse_configs_above(tree)?;
            env.outside_sandbox(tc);
            env.cargo_command(tc)
        };
        cmd.current_dir(&project)
            .args(["build", "--release"])
            .arg(format!("-Zbuild-std={crates}"))
            .arg("--target")
            .arg(&target.rust)
            .arg("--target-dir")
            .arg(&target_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTC_WRAPPER", zigcc::install_std_wrapper(cache)?)
            .env("CARGO_ENCODED_RUSTFLAGS", self.rustflags.join("\x1f"));
        if let Err(e) = cmd.run_relayed() {
            bail!(
                "building std for {} failed ({}); cargo's output is above",
                target.rust,
                e.status.map_or_else(|| e.stderr.clone(), |s| s.to_string())
            );
        }
        Ok(target_dir.join(&target.rust).join("release").join("deps"))
    }

    /// std from the shared store, when it has a trusted sysroot for this key
    /// (its key holds nothing machine-specific): fetched, every library
    /// checked against its sha256, then moved into place like a built one.
    fn fetch_base(&self) -> Result<bool> {
        let Some(store) = self.cache.store() else {
            return Ok(false);
        };
        let work = self.cache.temp_dir("std-from-store")?;
        let staged = work.path().join("sysroot");
        if store
            .fetch(self.cache, store::SYSROOT, &self.key, &staged)
            .is_none()
        {
            return Ok(false);
        }
        self.install(&staged)?;
        ui::status(
            "Fetched",
            &format!(
                "std for {} from the shared store {} (not built)",
                self.target.rust, store.url
            ),
        );
        Ok(true)
    }

    /// Mark a staged sysroot complete and move it into place (replacing
    /// an incomplete one).
    fn install(&self, staged: &Path) -> Result<()> {
        fs::write(
            staged.join(cache::MARKER),
            format!("{}\n", self.target.rust),
        )?;
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)?;
        }
        fs::create_dir_all(self.cache.sysroots())
            .with_context(|| format!("creating {}", self.cache.sysroots().display()))?;
        fs::rename(staged, &self.dir)
            .with_context(|| format!("moving the sysroot into {}", self.dir.display()))
    }

    /// libtest's layer from the shared store, added to the sysroot.
    fn fetch_test(&self) -> Result<bool> {
        let Some(store) = self.cache.store() else {
            return Ok(false);
        };
        let work = self.cache.temp_dir("std-from-store")?;
        let staged = work.path().join("layer");
        let Some(body) = store.fetch(self.cache, store::SYSROOT, &self.test_key(), &staged) else {
            return Ok(false);
        };
        let lib = self.lib(&self.dir);
        let mut layer = Vec::new();
        for f in &body.files {
            let from = staged.join(&f.path);
            let name = match from.file_name().and_then(|n| n.to_str()) {
                Some(n) if n.ends_with(".rlib") && !n.starts_with('.') => n.to_string(),
                _ => continue,
            };
            let to = lib.join(&name);
            if !to.exists() {
                fs::rename(&from, &to).with_context(|| format!("moving {}", to.display()))?;
            }
            layer.push(name);
        }
        if layer.is_empty() {
            return Ok(false);
        }
        cache::write_atomic(
            self.cache,
            &self.dir.join(TEST_MARKER),
            layer.join("\n").as_bytes(),
        )?;
        ui::status(
            "Fetched",
            &format!(
                "libtest for {} from the shared store {} (not built)",
                self.target.rust, store.url
            ),
        );
        Ok(true)
    }

    /// Offer what was just built to the shared store (best effort: a
    /// failure is a warning from the store): the files under `root`, or
    /// only `only` (relative to it).
    fn push_to_store(&self, root: &Path, key: &str, only: Option<&[PathBuf]>) {
        let Some(store) = self.cache.store().filter(|s| s.writes()) else {
            return;
        };
        if store.has(store::SYSROOT, key) {
            return;
        }
        let mut paths = Vec::new();
        let listed = match only {
            Some(files) => {
                paths.extend(files.iter().map(|f| root.join(f)));
                Ok(())
            }
            None => walk_files(root, &mut paths),
        };
        match listed.and_then(|()| store::files_of(root, &paths)) {
            Ok(files) => {
                if let store::Pushed::Written =
                    store.push(self.cache, store::SYSROOT, key, &files, true)
                {
                    ui::status("Pushed", &format!("std ({key}) to {}", store.url));
                }
            }
            Err(e) => tracing::warn!("not pushing std: {e:#}"),
        }
    }
}

/// The libraries cargo left in `deps`, by file name (not the empty crate's).
fn rlibs(deps: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(deps).with_context(|| format!("reading {}", deps.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with(".rlib") && !name.starts_with("libxbuild_sysroot") {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Every file under `dir` but the markers, for the store.
fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let markers: BTreeSet<&str> = [cache::MARKER, TEST_MARKER].into();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk_files(&path, out)?;
        } else if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| markers.contains(n))
        {
            out.push(path);
        }
    }
    Ok(())
}
