//! zig's C runtime for a target (its crt files, musl's libc, compiler_rt,
//! libunwind), built into zig's cache while std compiles, so that the
//! workspace's first link finds it there instead of building it then.
//!
//! zig builds that runtime on the first link for a target and caches it by
//! everything the link asks for (target, CPU, PIE, whether it strips). So
//! the warm-up is a link of the same kind: rustc links an empty `no_core`
//! program through the target's linker wrapper, with the target's flags and
//! the profile's strip setting, in the sandbox view a sealed build has.
//! std's build leaves a core idle for most of its length (core, alloc and
//! std compile one after another); this fills it. It is best effort: when
//! it fails, or misses what the real link asks for, the link builds the
//! runtime itself, as it would have anyway.

use std::path::Path;
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::sealed::{TargetCtx, ZigView};
use crate::process::Cmd;
use crate::sandbox::Sandbox;
use crate::toolchain::cargo_env::CargoEnv;
use crate::zigcc;

/// An empty program that needs nothing from std (which is not built yet).
const PROGRAM: &str = r#"#![feature(no_core, lang_items)]
#![no_core]
#![no_main]
#[lang = "pointee_sized"]
pub trait PointeeSized {}
#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}
#[lang = "sized"]
pub trait Sized: MetaSized {}
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    0
}
"#;

/// Start the warm-up in the background; join it to wait for it.
pub fn start(ctx: &TargetCtx<'_>) -> Result<JoinHandle<()>> {
    let (cache, tc, target) = (ctx.cache, ctx.tc, ctx.target);
    let shims = zigcc::install_shims(cache, target, &tc.zig())?;
    let work = cache.temp_dir("zig-warm-up")?;
    let src = work.path().join("empty.rs");
    std::fs::write(&src, PROGRAM).with_context(|| format!("writing {}", src.display()))?;
    let zig = ZigView::of(ctx);
    let seen = zig.toolchain(tc);
    let mut env = CargoEnv::sealed(cache, &seen, work.path(), work.path(), ctx.epoch);
    env.add_target(cache, &seen, target)?;
    env.set(
        crate::env::XBUILD_ZIG_CACHE,
        zig.cache.display().to_string(),
    );
    env.set("RUSTC_BOOTSTRAP", "1");
    let mut cmd = if ctx.sandboxed {
        let mut sb = Sandbox::new(false);
        for p in [&tc.rust_dir, &cache.shims()] {
            sb.ro(p);
        }
        sb.ro(&cache.own_exe()?);
        for p in &zig.read_only {
            sb.ro(p);
        }
        for p in &zig.writable {
            sb.rw(p);
        }
        for (from, to) in &zig.mapped {
            sb.ro_at(from, to);
        }
        for (from, to) in &zig.writable_mapped {
            sb.bind(from, to);
        }
        sb.rw(work.path());
        sb.chdir(work.path());
        sb.command(tc.rustc().as_os_str())
    } else {
        Cmd::new(tc.rustc())
    };
    cmd.envs(env.vars.iter().map(|(k, v)| (k, v)))
        .current_dir(work.path())
        .args(["--edition", "2021", "--crate-type", "bin", "--target"])
        .arg(&target.rust)
        .arg("-C")
        .arg(format!("linker={}", shims.cc.display()))
        .args(&ctx.flags)
        // what std's libc and unwind crates ask the linker for
        .args(["-C", "link-arg=-lunwind", "-C", "link-arg=-lc"]);
    if strips(&ctx.snapshot.root.join("Cargo.toml"), &ctx.plan.profile) {
        cmd.args(["-C", "strip=debuginfo"]);
    }
    cmd.arg("-o").arg(work.path().join("empty")).arg(&src);
    let rust = target.rust.clone();
    Ok(std::thread::spawn(move || {
        let started = std::time::Instant::now();
        match cmd.output() {
            Ok(_) => tracing::info!(
                "zig's runtime for {rust} ready in {:.1}s",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => tracing::info!(
                "warming zig's cache for {rust} failed (the link will build what it needs): {e}"
            ),
        }
        drop(work);
    }))
}

/// Whether cargo's `profile` strips the executables it links (it passes
/// `-C strip=debuginfo`), read from the workspace's `Cargo.toml` as cargo
/// resolves it: `strip` if set, else when the profile has no debug info.
fn strips(manifest: &Path, profile: &str) -> bool {
    let doc: toml::Table = std::fs::read_to_string(manifest)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    let profiles = doc.get("profile").and_then(|p| p.as_table());
    let mut name = profile.to_string();
    let (mut strip, mut debug) = (None, None);
    // a custom profile's chain of `inherits` ends at dev or release
    for _ in 0..16 {
        let table = profiles
            .and_then(|p| p.get(&name))
            .and_then(|t| t.as_table());
        if let Some(t) = table {
            strip = strip.or_else(|| {
                t.get("strip")
                    .map(|v| !matches!(v.as_str(), Some("none")) && v.as_bool() != Some(false))
            });
            debug = debug.or_else(|| {
                t.get("debug").map(|v| {
                    !(v.as_bool() == Some(false)
                        || v.as_integer() == Some(0)
                        || v.as_str() == Some("none"))
                })
            });
        }
        name = match name.as_str() {
            "dev" => break,
            "release" => break,
            "test" => "dev".into(),
            "bench" => "release".into(),
            _ => match table
                .and_then(|t| t.get("inherits"))
                .and_then(|v| v.as_str())
            {
                Some(parent) => parent.to_string(),
                None => break,
            },
        };
    }
    let debug = debug.unwrap_or(name == "dev");
    strip.unwrap_or(!debug)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strips_with(manifest: &str, profile: &str) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Cargo.toml");
        std::fs::write(&path, manifest).unwrap();
        strips(&path, profile)
    }

    #[test]
    fn cargo_strips_release_and_not_dev_by_default() {
        assert!(strips_with("[package]\nname = \"a\"\n", "release"));
        assert!(!strips_with("[package]\nname = \"a\"\n", "dev"));
        assert!(!strips_with("", "test"));
        assert!(strips_with("", "bench"));
    }

    #[test]
    fn the_profile_and_its_parents_decide() {
        let m = "[profile.release]\ndebug = true\n[profile.dist]\ninherits = \"release\"\n[profile.small]\ninherits = \"release\"\nstrip = true\n[profile.dev]\ndebug = 0\n[profile.lean]\ninherits = \"dev\"\nstrip = \"none\"\n";
        assert!(!strips_with(m, "release"));
        assert!(!strips_with(m, "dist"));
        assert!(strips_with(m, "small"));
        assert!(strips_with(m, "dev"));
        assert!(!strips_with(m, "lean"));
        assert!(strips_with(
            "[profile.release]\ndebug = \"none\"\n",
            "release"
        ));
    }
}
