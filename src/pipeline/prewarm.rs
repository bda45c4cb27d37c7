//! zig's C runtime for a target (its crt files, musl's libc, compiler_rt,
//! libunwind), built into zig's cache before the workspace's first link
//! (while std compiles, when it must), in a fixed place.
//!
//! zig builds that runtime on the first link for a target and caches it by
//! everything the link asks for (target, CPU, PIE, whether it strips), but
//! not by the directory it runs in, which its debug info names
//! (`DW_AT_comp_dir`, zig#23821): whichever link builds it first decides
//! those bytes for every later build. So xbuild builds it first, once per
//! kind of link in a cache (a marker in zig's cache says so), with a link
//! of the same kind: rustc links an empty `no_core` program through the
//! target's linker wrapper, with the target's flags and the profile's strip
//! setting, in the sandbox view a sealed build has, from the directory a
//! sealed workspace sits in (`FIXED_VIEW/src`). A debug build then does not
//! depend on which cache it ran in, nor on what that cache linked before.
//! std's build leaves a core idle for most of its length (core, alloc and
//! std compile one after another); the warm-up fills it then. When it
//! fails, the link builds the runtime itself, as it would have anyway.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::sealed::{self, TargetCtx, ZigView};
use crate::cargo_env::CargoEnv;
use crate::process::Cmd;
use crate::sandbox::{self, Sandbox};
use crate::ui;
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

/// Start the warm-up in the background, unless this cache has zig's
/// runtime for this kind of link; join it before the sealed build starts.
/// It builds into a zig cache of its own, which becomes the runtime bucket
/// by one rename when the link succeeded: nothing but this step, which runs
/// no workspace code, writes it.
pub fn start(ctx: &TargetCtx<'_>) -> Result<Option<JoinHandle<()>>> {
    let (cache, tc, target) = (ctx.cache, ctx.tc, ctx.target);
    let runtime = runtime(ctx);
    if runtime.is_dir() {
        return Ok(None);
    }
    let shims = zigcc::install_shims(cache, target, &tc.zig(), &tc.system())?;
    let work = cache.temp_dir("zig-warm-up")?;
    let zig_cache = work.path().join("zig-cache");
    let src_dir = work.path().join("src");
    for d in [&zig_cache, &src_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let zig = ZigView::of(ctx, &zig_cache);
    // the directory the link runs in, as it sees it: a sealed workspace's
    let here = if ctx.sandboxed {
        Path::new(sandbox::FIXED_VIEW).join("src")
    } else {
        src_dir.clone()
    };
    let src = src_dir.join("empty.rs");
    std::fs::write(&src, PROGRAM).with_context(|| format!("writing {}", src.display()))?;
    let inputs = sealed::inputs(ctx, None);
    let seen = zig.toolchain(&tc.seen_through(|p| inputs.seen(p)));
    let mut env = CargoEnv::sealed(
        &seen,
        &inputs.seen(&cache.cargo_home()),
        &zig.cache,
        &here,
        &here,
        ctx.epoch,
    );
    env.add_target(cache, &seen, target, &|p| inputs.seen(p))?;
    env.set("RUSTC_BOOTSTRAP", "1");
    // rustc in the view a sealed build has, with its environment
    let rustc = || {
        let mut c = if ctx.sandboxed {
            let mut sb = inputs.sandbox(false);
            zig.add_to(&mut sb);
            sb.bind(&src_dir, &here);
            sb.chdir(&here);
            sb.command(seen.rustc().as_os_str())
        } else {
            let mut c = Cmd::new(tc.rustc());
            c.envs(tc.outside_env());
            c
        };
        c.envs(env.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(&src_dir)
            .args(["--edition", "2021"]);
        c
    };
    let mut cmd = rustc();
    cmd.args(["--crate-type", "bin", "--target"])
        .arg(&target.rust)
        .arg("-C")
        .arg(format!("linker={}", inputs.seen(&shims.cc).display()))
        .args(&ctx.flags)
        // what std's libc and unwind crates ask the linker for
        .args(["-C", "link-arg=-lunwind", "-C", "link-arg=-lc"]);
    if strips_for(ctx) {
        cmd.args(["-C", "strip=debuginfo"]);
    }
    cmd.arg("-o")
        .arg(here.join("empty"))
        .arg(here.join("empty.rs"));
    // and the host's kind of links (build scripts, proc macros), when zig
    // makes them: against the build root's glibc, stripped as cargo strips
    // them; each build's zig cache would otherwise compile that runtime
    let mut host_cmds = Vec::new();
    if let Some(host_linker) = zigcc::host_linker(cache, tc.root_glibc())? {
        std::fs::write(src_dir.join("host.rs"), "fn main() {}\n")
            .and_then(|()| std::fs::write(src_dir.join("host_macro.rs"), ""))
            .with_context(|| format!("writing into {}", src_dir.display()))?;
        for (kind, file, strip) in [
            ("bin", "host", "strip=debuginfo"),
            ("bin", "host", "strip=none"),
            ("proc-macro", "host_macro", "strip=debuginfo"),
        ] {
            let mut c = rustc();
            c.args(["--crate-type", kind, "--target", zigcc::HOST])
                .args(["-C", strip, "-C"])
                .arg(format!("linker={}", inputs.seen(&host_linker).display()))
                .arg("--out-dir")
                .arg(&here)
                .arg(here.join(format!("{file}.rs")));
            host_cmds.push(c);
        }
    }
    let rust = target.rust.clone();
    Ok(Some(std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let linked = cmd
            .output()
            .and_then(|_| host_cmds.iter_mut().try_for_each(|c| c.output().map(drop)));
        match linked {
            Ok(()) => {
                // zig's scratch, and its ZIR cache (`z/`, half the size,
                // read only when something is compiled again, never on a hit)
                for scratch in ["tmp", "z"] {
                    let _ = std::fs::remove_dir_all(zig_cache.join(scratch));
                }
                if let Some(dir) = runtime.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                // lost to another xbuild that made the same: as good
                let _ = std::fs::rename(&zig_cache, &runtime);
                tracing::info!(
                    "zig's runtime for {rust} ready in {:.1}s",
                    started.elapsed().as_secs_f64()
                );
            }
            Err(e) => tracing::info!(
                "warming zig's cache for {rust} failed (the link will build what it needs): {e}"
            ),
        }
        drop(work);
    })))
}

/// zig's runtime for this kind of link: a bucket keyed by what zig keys it
/// by, as far as xbuild asks (the target, its flags, whether the profile
/// strips, sealed or not). It may not exist (the warm-up failed).
pub fn runtime(ctx: &TargetCtx<'_>) -> PathBuf {
    let strip = strips_for(ctx);
    let mut parts = vec![ctx.target.rust.as_str(), if strip { "strip" } else { "" }];
    parts.extend(ctx.flags.iter().map(String::as_str));
    parts.push(if ctx.sandboxed { "sealed" } else { "" });
    // the host's links it holds too (see `start`)
    parts.push(ctx.tc.root_glibc().unwrap_or_default());
    let key = crate::cache::hash_bytes(parts.join("\0").as_bytes());
    ctx.cache.zig_runtime(&key[..32])
}

/// Give a build's own zig cache (`zig_cache`, a real path) zig's runtime for
/// its kind of link, and the C++ runtimes learned for it (see
/// [`learn_cxx`]): copies, never links, of the files of each bucket it
/// lacks; once per bucket and kept dir (a marker there names each).
/// Without a runtime (the warm-up failed), the build's links make it.
pub fn seed(ctx: &TargetCtx<'_>, zig_cache: &Path) -> Result<()> {
    let runtime = runtime(ctx);
    crate::safe_fs::ensure_dir_no_links(zig_cache)?;
    let Some(name) = bucket_name(&runtime) else {
        return Ok(());
    };
    let seeded = zig_cache.join(zigcc::MARKERS);
    let mut buckets = vec![(runtime.clone(), name.to_string())];
    let cxx_prefix = format!("{name}-");
    if let Some(dir) = runtime.parent()
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for e in entries.flatten() {
            let file_name = e.file_name();
            if let Some(marker) = file_name.to_str().and_then(|n| n.strip_prefix(&cxx_prefix)) {
                buckets.push((e.path(), marker.to_string()));
            }
        }
    }
    for (bucket, marker) in buckets {
        let marker = seeded.join(marker);
        if std::fs::symlink_metadata(&marker).is_ok() {
            continue;
        }
        let started = std::time::Instant::now();
        let bytes = crate::safe_fs::copy_tree_into(&bucket, zig_cache)?;
        crate::safe_fs::ensure_dir_no_links(&seeded)?;
        // a C++ bucket brings its own marker (the prelink's flags)
        if std::fs::symlink_metadata(&marker).is_err() {
            crate::safe_fs::create_new_no_links(&marker, ctx.target.rust.as_bytes())?;
        }
        tracing::info!(
            "copied {} into {} ({:.1} MiB in {:.2}s)",
            bucket.display(),
            zig_cache.display(),
            bytes as f64 / 1048576.0,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// After a build: the kinds of C++ runtime its links prelinked (markers in
/// its zig cache, which it could write: each is checked to be a kind and
/// no more than four are taken) that have no bucket yet are made again
/// here, by the same prelink, seeded with the same runtime, from the same
/// directory and with the zig cache at the same place as the build saw:
/// the same bytes, in a step that runs no workspace code. Each becomes a
/// bucket of its own (`<runtime>-cxx-<digest>`: the files the prelink
/// added) by one rename; later builds are seeded with it.
pub fn learn_cxx(ctx: &TargetCtx<'_>, zig_cache: &Path) -> Result<()> {
    let runtime = runtime(ctx);
    let Some(name) = bucket_name(&runtime) else {
        return Ok(());
    };
    let Ok(entries) = std::fs::read_dir(zig_cache.join(zigcc::MARKERS)) else {
        return Ok(());
    };
    let mut kinds = Vec::new();
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(marker) = file_name.to_str() else {
            continue;
        };
        let bucket = runtime.with_file_name(format!("{name}-{marker}"));
        if !marker.starts_with("cxx-") || bucket.exists() {
            continue;
        }
        if let Some(flags) = zigcc::read_marker(ctx.target, &e.path()) {
            kinds.push((marker.to_string(), flags, bucket));
        }
    }
    for (marker, flags, bucket) in kinds.into_iter().take(4) {
        ui::status(
            "Warming",
            &format!(
                "zig's C++ runtime for {} (once per cache, for later builds)",
                ctx.target.rust
            ),
        );
        let started = std::time::Instant::now();
        if let Err(e) = prelink_into_bucket(ctx, &runtime, &marker, &flags, &bucket) {
            ui::note(&format!(
                "could not keep zig's C++ runtime for {} (later builds make their own): {e:#}",
                ctx.target.rust
            ));
            continue;
        }
        tracing::info!(
            "zig's C++ runtime for {} ready in {:.1}s",
            ctx.target.rust,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn prelink_into_bucket(
    ctx: &TargetCtx<'_>,
    runtime: &Path,
    marker: &str,
    flags: &[String],
    bucket: &Path,
) -> Result<()> {
    let work = ctx.cache.temp_dir("zig-cxx-warm-up")?;
    let (zig_cache, src, out) = (
        work.path().join("zig-cache"),
        work.path().join("src"),
        work.path().join("bucket"),
    );
    crate::safe_fs::copy_tree_into(runtime, &zig_cache)?;
    std::fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
    let zig = ZigView::of(ctx, &zig_cache);
    let zig_exe = zig.toolchain(ctx.tc).zig();
    let mut cmd = if ctx.sandboxed {
        let mut sb = Sandbox::new(&ctx.tc.system(), false);
        zig.add_to(&mut sb);
        sb.bind(&src, &src);
        sb.chdir(Path::new("/"));
        sb.command(zig_exe.as_os_str())
    } else {
        Cmd::new(&zig_exe)
    };
    cmd.envs(crate::env::passthrough_for_compiler())
        .env("ZIG_GLOBAL_CACHE_DIR", &zig.cache)
        .env("ZIG_LOCAL_CACHE_DIR", &zig.cache)
        .current_dir("/")
        .args(zigcc::prelink_args(flags, &src)?);
    cmd.output()
        .with_context(|| format!("prelinking zig's C++ runtime for {}", ctx.target.rust))?;
    for scratch in ["tmp", "z"] {
        let _ = std::fs::remove_dir_all(zig_cache.join(scratch));
    }
    // the bucket: what the prelink added to the runtime, and the marker
    let added = crate::safe_fs::move_new_files(&zig_cache, runtime, &out)?;
    anyhow::ensure!(added > 0, "the prelink added nothing to zig's cache");
    let markers = out.join(zigcc::MARKERS);
    std::fs::create_dir_all(&markers).with_context(|| format!("creating {}", markers.display()))?;
    let mut text = flags.join("\n");
    text.push('\n');
    std::fs::write(markers.join(marker), text)
        .with_context(|| format!("writing the marker in {}", markers.display()))?;
    crate::safe_fs::sync_tree(&out)?;
    // lost to another xbuild that made the same: as good
    let _ = std::fs::rename(&out, bucket);
    Ok(())
}

/// The runtime bucket's name, when the warm-up made it.
fn bucket_name(runtime: &Path) -> Option<&str> {
    runtime
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|_| runtime.is_dir())
}

fn strips_for(ctx: &TargetCtx<'_>) -> bool {
    strips(&ctx.snapshot.root.join("Cargo.toml"), &ctx.plan.profile)
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
