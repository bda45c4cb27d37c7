//! `xbuild toolchain ...`: fetch, list, verify, gc, bundle, import, env.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cache::{self, Cache};
use crate::toolchain::fetch::{self, Mode};
use crate::toolchain::manifest::{ComponentKind, Pins};
use crate::toolchain::{Toolchain, installed_dir, is_installed, provision};
use crate::ui;

pub fn fetch(cache: &Cache, pins: &Pins, kinds: &[ComponentKind], mode: Mode) -> Result<Toolchain> {
    let already: Vec<_> = kinds
        .iter()
        .filter(|k| is_installed(cache, pins.component(**k)))
        .collect();
    let tc = provision(cache, pins, kinds, mode)?;
    if already.len() == kinds.len() {
        ui::status(
            "Fresh",
            &format!(
                "{} already installed in {}",
                kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                cache.root.display()
            ),
        );
    }
    Ok(tc)
}

pub fn list(cache: &Cache, pins: &Pins, json: bool, out: &mut dyn Write) -> Result<()> {
    let mut rows = Vec::new();
    for c in &pins.components {
        let dir = installed_dir(cache, c);
        let installed = is_installed(cache, c);
        let artifacts: Vec<_> = c
            .artifacts
            .iter()
            .map(|a| {
                let p = cache.download(&a.sha256);
                serde_json::json!({
                    "label": a.label(),
                    "file": a.file_name,
                    "sha256": a.sha256,
                    "source": a.source,
                    "cached": p.exists(),
                    "size": p.metadata().map(|m| m.len()).ok(),
                })
            })
            .collect();
        rows.push(serde_json::json!({
            "component": c.kind.name(),
            "pin_hash": c.pin_hash(),
            "installed": installed,
            "path": dir,
            "installed_size": if installed { Some(cache::dir_size(&dir)) } else { None },
            "artifacts": artifacts,
        }));
    }
    let release = crate::rust_release::pinned(pins).map(|r| r.to_string());
    let releases = releases(pins);
    if json {
        let doc = serde_json::json!({
            "pins": pins.origin,
            "rust_release": release,
            "releases": releases,
            "cache": cache.root,
            "components": rows,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "pins:  {}", pins.origin)?;
    writeln!(
        out,
        "Rust:  {}",
        release
            .as_deref()
            .unwrap_or("(the pins do not say which release)")
    )?;
    if releases.len() > 1 {
        let all: Vec<String> = releases
            .iter()
            .map(|r| {
                format!(
                    "{}{}{}",
                    r["release"].as_str().unwrap_or("?"),
                    r["suite"]
                        .as_str()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default(),
                    if r["moving"] == true {
                        " [moving suite: its versions leave the mirror]"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        writeln!(
            out,
            "Pinned: {} (`--rust VERSION` or rust-toolchain.toml)",
            all.join(", ")
        )?;
    }
    writeln!(out, "cache: {}", cache.root.display())?;
    for row in &rows {
        let state = match row["installed_size"].as_u64() {
            Some(size) => format!("installed, {}", cache::human_size(size)),
            None => "not installed".to_string(),
        };
        writeln!(
            out,
            "{} ({}): {state}",
            row["component"].as_str().unwrap_or(""),
            row["pin_hash"].as_str().unwrap_or("")
        )?;
        for a in row["artifacts"].as_array().into_iter().flatten() {
            let cached = match a["size"].as_u64() {
                Some(size) => format!("cached, {}", cache::human_size(size)),
                None => "not cached".to_string(),
            };
            writeln!(
                out,
                "  {:<48} {}  {cached}",
                a["label"].as_str().unwrap_or(""),
                &a["sha256"].as_str().unwrap_or("")[..12],
            )?;
        }
    }
    Ok(())
}

/// Every release the pins hold: the version, the Debian suite it was pinned
/// from, whether that suite moves on (and its versions leave the mirror).
fn releases(pins: &Pins) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for v in crate::rust_release::all_pinned(pins) {
        let p = crate::rust_release::select(pins, v);
        let suite = p.provenance.suite.clone().or_else(|| rustc_suite(&p));
        all.push(serde_json::json!({
            "release": v.to_string(),
            "suite": suite,
            "moving": p.provenance.moving,
            "rust_pin_hash": p.component(ComponentKind::Rust).pin_hash(),
        }));
    }
    all
}

/// The suite of the rustc package pinned, where it says.
fn rustc_suite(pins: &Pins) -> Option<String> {
    pins.component(ComponentKind::Rust)
        .artifacts
        .iter()
        .find_map(|a| match &a.source {
            crate::toolchain::manifest::Source::Apt { name, suite, .. }
                if name == "rustc" || name == "rustc-web" =>
            {
                suite.clone()
            }
            _ => None,
        })
}

/// Re-hash every cached archive of the pins. Returns whether all cached ones are good.
pub fn verify(cache: &Cache, pins: &Pins, out: &mut dyn Write) -> Result<bool> {
    let mut good = true;
    for c in &pins.components {
        for a in &c.artifacts {
            let p = cache.download(&a.sha256);
            let verdict = if !p.exists() {
                "missing".to_string()
            } else {
                let got = cache::hash_file(&p)?;
                if got == a.sha256 {
                    "ok".to_string()
                } else {
                    good = false;
                    format!("CORRUPT (computed {got})")
                }
            };
            writeln!(out, "{:<5} {:<48} {}", c.kind.name(), a.label(), verdict)?;
        }
    }
    Ok(good)
}

/// Remove installed components and archives that the pins no longer name,
/// the shims of xbuild executables that no longer run, and buckets no xbuild
/// of this version reads (see cache).
pub fn gc(cache: &Cache, pins: &Pins) -> Result<u64> {
    let _lock = cache.lock("collecting garbage")?;
    // every release pinned stays: removing one is unpinning it
    let keep_dirs: BTreeSet<String> = pins.all_components().map(|c| c.install_name()).collect();
    let keep_files: BTreeSet<&str> = pins
        .all_components()
        .flat_map(|c| c.artifacts.iter().map(|a| a.sha256.as_str()))
        .chain(
            pins.sources
                .debian_keyring
                .iter()
                .map(|a| a.sha256.as_str()),
        )
        .collect();
    let mut freed = 0;
    for entry in fs::read_dir(cache.toolchains())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep_dirs.contains(&name) {
            // a running build (with other pins) holds it shared
            let lock = cache::lock_file(&cache.toolchain_lock(&name))?;
            if lock.try_lock().is_err() {
                ui::note(&format!("kept {name}: a running build uses it"));
                continue;
            }
            let size = cache::dir_size(&entry.path());
            fs::remove_dir_all(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
            ui::status("Removed", &format!("{name} ({})", cache::human_size(size)));
            freed += size;
        }
    }
    for entry in fs::read_dir(cache.downloads())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep_files.contains(name.as_str()) {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
            ui::status(
                "Removed",
                &format!("download {name} ({})", cache::human_size(size)),
            );
            freed += size;
        }
    }
    let (buckets, size) = cache::gc_shims(cache)?;
    if buckets > 0 {
        ui::status(
            "Removed",
            &format!(
                "the wrappers of {buckets} xbuild executable(s) no longer running ({})",
                cache::human_size(size)
            ),
        );
        freed += size;
    }
    freed += cache::remove_retired(cache)?;
    cache::clean_tmp(cache)?;
    Ok(freed)
}

const BUNDLE_MANIFEST: &str = "xbuild-bundle.json";

/// Write every pinned artifact (fetched first if needed) into one tar file.
pub fn bundle(cache: &Cache, pins: &Pins, file: &Path, mode: Mode) -> Result<()> {
    let mut artifacts = Vec::new();
    {
        let _lock = cache.lock("bundling")?;
        for c in &pins.components {
            for a in &c.artifacts {
                artifacts.push((a.clone(), fetch::ensure(cache, pins, a, mode)?));
            }
        }
    }
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    {
        let mut tar = tar::Builder::new(tmp.as_file());
        let manifest: Vec<_> = artifacts
            .iter()
            .map(|(a, _)| serde_json::json!({"sha256": a.sha256, "file": a.file_name, "label": a.label()}))
            .collect();
        let bytes = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, BUNDLE_MANIFEST, bytes.as_slice())?;
        for (a, path) in &artifacts {
            ui::status("Bundling", &a.file_name);
            tar.append_path_with_name(path, format!("artifacts/{}", a.sha256))
                .with_context(|| format!("adding {}", path.display()))?;
        }
        tar.finish()?;
    }
    tmp.persist(file)
        .with_context(|| format!("writing {}", file.display()))?;
    ui::status(
        "Wrote",
        &format!("{} ({} artifacts)", file.display(), artifacts.len()),
    );
    Ok(())
}

/// Import a bundle: every archive is hashed and kept only under its own digest.
pub fn import(cache: &Cache, file: &Path) -> Result<usize> {
    let _lock = cache.lock("importing a bundle")?;
    let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut tar = tar::Archive::new(f);
    let mut count = 0;
    let mut saw_manifest = false;
    for entry in tar
        .entries()
        .with_context(|| format!("{}: not a bundle", file.display()))?
    {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let name = path.to_string_lossy().into_owned();
        if name == BUNDLE_MANIFEST {
            saw_manifest = true;
            continue;
        }
        let Some(sha) = name.strip_prefix("artifacts/") else {
            bail!(
                "{}: unexpected entry `{name}`; not an xbuild bundle",
                file.display()
            );
        };
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "{}: entry `{name}` is not named by a sha256",
                file.display()
            );
        }
        let tmp = tempfile::NamedTempFile::new_in(cache.tmp())?;
        let computed = cache::copy_hashing(&mut entry, tmp.path(), |_| {})?;
        if computed != sha {
            bail!(
                "{}: entry {sha} does not match its digest (computed {computed}); the bundle is damaged and nothing more was imported",
                file.display()
            );
        }
        tmp.persist(cache.download(sha))?;
        count += 1;
    }
    if !saw_manifest {
        bail!(
            "{}: no {BUNDLE_MANIFEST}; not an xbuild bundle",
            file.display()
        );
    }
    ui::status(
        "Imported",
        &format!("{count} artifact(s) from {}", file.display()),
    );
    Ok(count)
}

/// Shell lines that let a person run the provisioned tools by hand.
pub fn print_env(tc: &Toolchain, cache: &Cache, out: &mut dyn Write) -> Result<()> {
    let q = |p: &Path| shell_quote(&p.display().to_string());
    writeln!(out, "# xbuild's provisioned toolchain ({})", tc.pins.origin)?;
    let rust_bin = tc
        .rustc()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let zig_dir = tc.zig().parent().map(Path::to_path_buf).unwrap_or_default();
    let mut path = format!("{}:{}", q(&rust_bin), q(&zig_dir));
    if let Some(dir) = &tc.qemu_dir {
        path.push(':');
        path.push_str(&q(&dir.join(&tc.pins.qemu_layout.bin_dir)));
    }
    writeln!(out, "export PATH={path}:\"$PATH\"")?;
    writeln!(out, "export RUSTC={}", q(&tc.rustc()))?;
    writeln!(out, "export CARGO={}", q(&tc.cargo()))?;
    writeln!(out, "export ZIG={}", q(&tc.zig()))?;
    writeln!(out, "export ZIG_GLOBAL_CACHE_DIR={}", q(&cache.zig_cache()))?;
    writeln!(
        out,
        "# std's source, found by -Zbuild-std through rustc's sysroot: {}",
        tc.rust_src().display()
    )?;
    writeln!(out, "export RUSTC_BOOTSTRAP=1")?;
    let outside = tc.outside_env();
    if !outside.is_empty() {
        writeln!(
            out,
            "# rustc, cargo and the build tools run on the build root's loader and libraries,\n\
             # not this host's glibc"
        )?;
    }
    for (k, v) in outside {
        writeln!(out, "export {k}={}", shell_quote(&v.to_string_lossy()))?;
    }
    Ok(())
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+%:=".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
