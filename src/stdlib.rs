//! Stage "std": the standard library, built once per (toolchain, target,
//! flags) from the pinned source and kept in the cache as a sysroot (the
//! approach of xargo and cargo-xbuild). Every later build for that target
//! passes `--sysroot` instead of building std again.
//!
//! Like the official std, it carries LLVM bitcode next to the machine code
//! (`-C embed-bitcode=yes`), so that a workspace whose profile asks for LTO
//! (`lto = true`, `"fat"`, `"thin"`) can link it; and `panic_abort` is built
//! beside it for `panic = "abort"` profiles.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::cache::{self, Cache, remote};
use crate::targets::Target;
use crate::toolchain::Toolchain;
use crate::toolchain::cargo_env::CargoEnv;
use crate::{ui, zigcc};

/// What `-Zbuild-std` builds: std, and libtest for `xbuild --test`.
const STD_CRATES: &str = "std,panic_abort,test";

/// How std is built, beyond its flags; part of the sysroot's key.
/// `panic_abort` is compiled with `-C panic=abort` (through xbuild as
/// `RUSTC_WRAPPER`, as Rust's bootstrap does), so `panic = "abort"` links.
/// Its paths are remapped to `/xbuild/…` (not part of the key: the key
/// holds nothing specific to this machine, so a sysroot can be shared).
const STD_RECIPE: &str = "panic_abort aborts; remapped to /xbuild";

/// Flags std is compiled with on top of the target's: bitcode for LTO, as
/// the official std has (cargo passes `-C embed-bitcode=no` to a non-LTO
/// release build; a later flag wins).
const STD_RUSTFLAGS: &[&str] = &["-C", "embed-bitcode=yes"];

/// The sysroot's cache key: the rust and zig pins, the target and the flags std
/// is compiled with.
pub fn key(tc: &Toolchain, target: &Target, rustflags: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(STD_CRATES);
    h.update([0]);
    h.update(STD_RECIPE);
    h.update([0]);
    h.update(tc.pins.std_digest());
    h.update([0]);
    h.update(&target.rust);
    for f in rustflags {
        h.update([0]);
        h.update(f);
    }
    format!("{}-{}", target.rust, &hex::encode(h.finalize())[..16])
}

/// The sysroot for `target`, building std first if the cache has none.
/// It is built in the sandbox (with network, for std's own dependencies),
/// where no cargo configuration but xbuild's cargo home's can reach it.
pub fn ensure(
    cache: &Cache,
    tc: &Toolchain,
    target: &Target,
    flags: &[String],
    sandboxed: bool,
) -> Result<PathBuf> {
    let mut rustflags = flags.to_vec();
    rustflags.extend(STD_RUSTFLAGS.iter().map(|s| s.to_string()));
    let sysroot_key = key(tc, target, &rustflags);
    let dir = cache.sysroot(&sysroot_key);
    // std's own paths are remapped like the workspace's, so that no build
    // depends on where the cache is.
    for (from, to) in [
        (cache.cargo_home(), "/xbuild/cargo-home"),
        (tc.rust_dir.clone(), "/xbuild/toolchain"),
    ] {
        rustflags.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    if dir.join(cache::MARKER).is_file() {
        // a sysroot built before the store was set up is offered to it too
        push_shared(cache, &dir, &sysroot_key);
        return Ok(dir);
    }
    let _lock = cache.lock("building std")?;
    if dir.join(cache::MARKER).is_file() {
        return Ok(dir);
    }
    if fetch_shared(cache, target, &sysroot_key, &dir)? {
        return Ok(dir);
    }
    let started = Instant::now();
    ui::status(
        "Building",
        &format!(
            "std for {} from the pinned source (once; cached for every later build)",
            target.rust
        ),
    );
    let work = cache.temp_dir("std")?;
    let project = work.path().join("project");
    fs::create_dir_all(project.join("src"))?;
    fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"xbuild-sysroot\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[lib]\npath = \"src/lib.rs\"\n\n[profile.release]\ndebug = 0\n",
    )?;
    fs::write(project.join("src/lib.rs"), "")?;
    let target_dir = work.path().join("target");
    let mut env = CargoEnv::for_fetch(cache, tc);
    env.add_target(cache, tc, target)?;
    let mut cmd = if sandboxed {
        let mut sb = crate::sandbox::Sandbox::new(true);
        for p in [work.path(), &cache.cargo_home(), &cache.zig_cache()] {
            fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
            sb.rw(p);
        }
        for p in [&tc.rust_dir, &tc.zig_dir, &cache.shims()] {
            sb.ro(p);
        }
        sb.ro(&std::env::current_exe().context("finding xbuild's own executable")?);
        sb.chdir(&project);
        let mut cmd = sb.command(tc.cargo().as_os_str());
        cmd.envs(env.vars.iter().map(|(k, v)| (k, v)));
        cmd
    } else {
        env.cargo_command(tc)
    };
    cmd.current_dir(&project)
        .args(["build", "--release"])
        .arg(format!("-Zbuild-std={STD_CRATES}"))
        .arg("--target")
        .arg(&target.rust)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC_WRAPPER", zigcc::install_std_wrapper(cache)?)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"));
    if let Err(e) = cmd.run() {
        bail!(
            "building std for {} failed ({}); cargo's output is above",
            target.rust,
            e.status.map_or_else(|| e.stderr.clone(), |s| s.to_string())
        );
    }
    let deps = target_dir.join(&target.rust).join("release").join("deps");
    let staged = work.path().join("sysroot");
    let lib = staged.join("lib/rustlib").join(&target.rust).join("lib");
    fs::create_dir_all(&lib)?;
    let mut count = 0;
    for entry in fs::read_dir(&deps).with_context(|| format!("reading {}", deps.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".rlib") && !name.starts_with("libxbuild_sysroot") {
            fs::copy(&path, lib.join(name))
                .with_context(|| format!("copying {}", path.display()))?;
            count += 1;
        }
    }
    if count == 0 {
        bail!(
            "building std for {} produced no libraries in {}",
            target.rust,
            deps.display()
        );
    }
    push_shared(cache, &staged, &sysroot_key);
    fs::write(staged.join(cache::MARKER), format!("{}\n", target.rust))?;
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(cache.sysroots())
        .with_context(|| format!("creating {}", cache.sysroots().display()))?;
    fs::rename(&staged, &dir)
        .with_context(|| format!("moving the sysroot into {}", dir.display()))?;
    ui::status(
        "Cached",
        &format!(
            "std for {} in {:.0}s ({count} libraries)",
            target.rust,
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(dir)
}

/// The sysroot from the shared store, when it has a trusted one for this
/// key (its key holds nothing machine-specific): fetched, every library
/// checked against its sha256, then moved into place like a built one.
fn fetch_shared(cache: &Cache, target: &Target, key: &str, dir: &Path) -> Result<bool> {
    let Some(store) = cache.remote() else {
        return Ok(false);
    };
    let work = cache.temp_dir("std-from-store")?;
    let staged = work.path().join("sysroot");
    if store.fetch(cache, remote::SYSROOT, key, &staged).is_none() {
        return Ok(false);
    }
    fs::write(staged.join(cache::MARKER), format!("{}\n", target.rust))?;
    fs::create_dir_all(cache.sysroots())
        .with_context(|| format!("creating {}", cache.sysroots().display()))?;
    fs::rename(&staged, dir)
        .with_context(|| format!("moving the sysroot into {}", dir.display()))?;
    ui::status(
        "Fetched",
        &format!(
            "std for {} from the shared store {} (not built)",
            target.rust, store.url
        ),
    );
    Ok(true)
}

/// Offer a sysroot just built to the shared store (best effort: a failure
/// is a warning from the store).
fn push_shared(cache: &Cache, staged: &Path, key: &str) {
    let Some(store) = cache.remote().filter(|s| s.writes()) else {
        return;
    };
    if store.has(remote::SYSROOT, key) {
        return;
    }
    let mut paths = Vec::new();
    let lib = walk_files(staged, &mut paths);
    match lib.and_then(|()| remote::files_of(staged, &paths)) {
        Ok(files) => {
            if let remote::Pushed::Written = store.push(cache, remote::SYSROOT, key, &files, true) {
                ui::status("Pushed", &format!("std ({key}) to {}", store.url));
            }
        }
        Err(e) => tracing::warn!("not pushing std: {e:#}"),
    }
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk_files(&path, out)?;
        } else if path.file_name() != Some(cache::MARKER.as_ref()) {
            out.push(path);
        }
    }
    Ok(())
}
