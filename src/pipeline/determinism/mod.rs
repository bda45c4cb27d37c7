//! `--check-determinism`: build a target a second time in a sealed directory
//! under every machine factor no sandbox fixes changed (`factors`), compare
//! the outputs (and with the cached outputs of an earlier build of the same
//! inputs) and, when they differ, say where and why as far as the bytes
//! tell, and which factor each differing output depends on.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cache::outputs;
use crate::elf;
use crate::pipeline::publish::Staging;
use crate::pipeline::sealed::{self, SealedOutput, TargetCtx};
use crate::ui;

mod factors;
use factors::{Factor, Jobs};

/// The second build of `ctx`'s target and every comparison; the verdicts
/// are printed as they come.
pub fn check(
    ctx: &TargetCtx<'_>,
    sysroot: &Path,
    primary: &SealedOutput,
    staging: &Staging,
) -> Result<Vec<Verdict>> {
    let other_dir = tempfile::Builder::new()
        .prefix(".xbuild-check-")
        .tempdir_in(staging.path())
        .context("creating the second build's output dir")?;
    let jobs = Jobs::of(ctx);
    let factors = Factor::all(ctx);
    let variant = factors::variant(&factors, jobs);
    let varied: Vec<String> = factors.iter().map(|f| f.describe(jobs)).collect();
    ui::status(
        "Rebuilding",
        &format!(
            "{} in a second sealed directory to check determinism ({})",
            ctx.target.rust,
            varied.join(", ")
        ),
    );
    let started = std::time::Instant::now();
    let second = sealed::build(ctx, sysroot, &variant, other_dir.path(), false)?;
    let took = started.elapsed();
    let mut verdicts = Vec::new();
    for out in &primary.files {
        let other = second
            .files
            .iter()
            .find(|f| f.name == out.name)
            .map(|f| f.path.clone());
        let mut v = compare(
            &ctx.target.rust,
            &out.name,
            &out.path,
            other.as_deref(),
            &[&primary.sealed_root, &second.sealed_root],
        )?;
        v.varied = varied.clone();
        print(&v);
        if !v.identical {
            diffoscope(
                &out.path,
                other.as_deref(),
                &out.path.with_extension("diffoscope.txt"),
            );
        }
        verdicts.push(v);
    }
    let differing: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.identical)
        .map(|v| v.artifact.clone())
        .collect();
    if !differing.is_empty() {
        let causes = factors::attribute(ctx, sysroot, primary, staging, &differing, took)?;
        for (name, cause) in causes {
            ui::warn(&format!(
                "NOT REPRODUCIBLE: {} {name} {}",
                ctx.target.rust,
                cause.describe()
            ));
            if let Some(v) = verdicts.iter_mut().find(|v| v.artifact == name) {
                v.cause = Some(cause.describe());
            }
        }
    }
    // against an earlier build with the same inputs, when the cache has one
    if let Some((dir, entries)) = outputs::lookup(ctx.cache, &ctx.key)? {
        for out in &primary.files {
            if !entries.iter().any(|e| e.name == out.name) {
                continue;
            }
            let mut v = compare(
                &ctx.target.rust,
                &out.name,
                &out.path,
                Some(&dir.join(&out.name)),
                &[],
            )?;
            v.against = CACHED_OUTPUTS;
            print(&v);
            verdicts.push(v);
        }
    }
    Ok(verdicts)
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub rust_target: String,
    pub artifact: String,
    pub identical: bool,
    pub sha256: String,
    pub sha256_second: Option<String>,
    /// What the output was compared with: `second build`, or `cached outputs`
    /// (an earlier build with the same inputs).
    pub against: &'static str,
    /// Human-readable findings, empty when identical.
    pub diagnosis: Vec<String>,
    /// What the other build varied (the second build's factors; empty for
    /// the other comparisons).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub varied: Vec<String>,
    /// When the second build differed: what the output depends on, as
    /// attribution found it (see `factors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

pub const SECOND_BUILD: &str = "second build";
pub const CACHED_OUTPUTS: &str = "cached outputs";
/// The signed outputs in the shared store for the same inputs.
pub const STORE: &str = "the shared store";

/// Compare the primary build's `a` with the second build's `b`.
/// `sealed_roots` are the two sealed directories, to look for in the bytes.
pub fn compare(
    target: &str,
    name: &str,
    a: &Path,
    b: Option<&Path>,
    sealed_roots: &[&Path],
) -> Result<Verdict> {
    let bytes_a = std::fs::read(a).with_context(|| format!("reading {}", a.display()))?;
    let sha_a = crate::cache::hash_file(a)?;
    let Some(b) = b else {
        return Ok(Verdict {
            rust_target: target.into(),
            artifact: name.into(),
            identical: false,
            sha256: sha_a,
            sha256_second: None,
            against: SECOND_BUILD,
            diagnosis: vec!["the second build did not produce this file".into()],
            varied: Vec::new(),
            cause: None,
        });
    };
    let bytes_b = std::fs::read(b).with_context(|| format!("reading {}", b.display()))?;
    let sha_b = crate::cache::hash_file(b)?;
    let identical = sha_a == sha_b;
    let diagnosis = if identical {
        Vec::new()
    } else {
        diagnose(&bytes_a, &bytes_b, sealed_roots)
    };
    Ok(Verdict {
        rust_target: target.into(),
        artifact: name.into(),
        identical,
        sha256: sha_a,
        sha256_second: Some(sha_b),
        against: SECOND_BUILD,
        diagnosis,
        varied: Vec::new(),
        cause: None,
    })
}

/// What can be said about two differing files.
pub fn diagnose(a: &[u8], b: &[u8], sealed_roots: &[&Path]) -> Vec<String> {
    let mut notes = Vec::new();
    if a.len() != b.len() {
        notes.push(format!(
            "sizes differ: {} vs {} bytes ({:+})",
            a.len(),
            b.len(),
            b.len() as i64 - a.len() as i64
        ));
    }
    // Sections whose bytes differ.
    let sections = elf::sections(a).ok();
    if let (Some(sa), Ok(sb)) = (&sections, elf::sections(b)) {
        let mut differ = Vec::new();
        for s in sa {
            let Some(t) = sb.iter().find(|t| t.name == s.name) else {
                differ.push(format!("{} (only in the first)", s.name));
                continue;
            };
            if slice(a, s.offset, s.size) != slice(b, t.offset, t.size) {
                differ.push(format!("{} ({} vs {} bytes)", s.name, s.size, t.size));
            }
        }
        if !differ.is_empty() {
            notes.push(format!("ELF sections that differ: {}", differ.join(", ")));
        }
    }
    if let Some(at) = first_difference(a, b) {
        let section = sections
            .iter()
            .flatten()
            .find(|s| s.size > 0 && at as u64 >= s.offset && (at as u64) < s.offset + s.size)
            .map_or_else(|| "no section".to_string(), |s| s.name.clone());
        notes.push(format!(
            "first differing byte at offset {at:#x} (in {section}): {} vs {}",
            context(a, at),
            context(b, at)
        ));
        if let Some(krate) = nearby_crate(a, at) {
            notes.push(format!(
                "most likely from crate `{krate}` (its paths are next to the difference)"
            ));
        }
    }
    // Absolute paths of the sealed directories that were not remapped.
    for root in sealed_roots {
        let needle = root.display().to_string();
        let count = |hay: &[u8]| count_occurrences(hay, needle.as_bytes());
        let (na, nb) = (count(a), count(b));
        if na + nb > 0 {
            notes.push(format!(
                "the sealed build path {needle} is embedded {} time(s): an absolute path that was not remapped",
                na + nb
            ));
        }
    }
    let leaked =
        count_occurrences(a, b"/xbuild-sealed-") + count_occurrences(b, b"/xbuild-sealed-");
    if leaked > 0 && !notes.iter().any(|n| n.contains("sealed build path")) {
        notes.push(format!(
            "a sealed build path (`xbuild-sealed-…`) is embedded {leaked} time(s)"
        ));
    }
    notes
}

fn slice(bytes: &[u8], offset: u64, size: u64) -> &[u8] {
    let start = (offset as usize).min(bytes.len());
    let end = (offset.saturating_add(size) as usize).min(bytes.len());
    &bytes[start..end]
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// The bytes around `at`: back to the start of the printable run it is in
/// (at most 40 bytes), and 24 bytes on; printable as text where they are.
fn context(bytes: &[u8], at: usize) -> String {
    let printable = |b: &u8| b.is_ascii_graphic() || *b == b' ';
    let mut start = at.min(bytes.len());
    while start > 0 && at - start < 40 && printable(&bytes[start - 1]) {
        start -= 1;
    }
    let end = (at + 24).min(bytes.len());
    let chunk = &bytes[start..end];
    let text: String = chunk
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                *b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("`{text}`")
}

fn count_occurrences(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// A crate named in the strings around `at`: a registry path
/// (`…/registry/src/<index>/<name>-<version>/`) or a workspace path
/// (`/xbuild/src/<member>/`).
fn nearby_crate(bytes: &[u8], at: usize) -> Option<String> {
    // Only a name right next to the difference says anything.
    let lo = at.saturating_sub(512);
    let hi = (at + 512).min(bytes.len());
    let window = String::from_utf8_lossy(&bytes[lo..hi]).into_owned();
    let mut best: Option<(usize, String)> = None;
    let centre = at - lo;
    let mut consider = |pos: usize, name: String| {
        let d = pos.abs_diff(centre);
        if best.as_ref().is_none_or(|(bd, _)| d < *bd) {
            best = Some((d, name));
        }
    };
    for (pos, _) in window.match_indices("/registry/src/") {
        let rest = &window[pos + "/registry/src/".len()..];
        if let Some(after_index) = rest.split_once('/').map(|(_, r)| r)
            && let Some(dir) = after_index.split('/').next()
        {
            // name-1.2.3 -> name
            if let Some((name, _)) = dir.rsplit_once('-') {
                consider(pos, name.to_string());
            }
        }
    }
    for (pos, _) in window.match_indices("/xbuild/src/") {
        let rest = &window[pos + "/xbuild/src/".len()..];
        if let Some(member) = rest
            .split('/')
            .next()
            .filter(|m| !m.is_empty() && !m.contains('.'))
        {
            consider(pos, member.to_string());
        }
    }
    best.map(|(_, n)| n)
}

pub fn print(v: &Verdict) {
    let with = match v.against {
        CACHED_OUTPUTS => " to the cached outputs",
        STORE => " to the shared store's outputs",
        _ => "",
    };
    if v.identical {
        ui::status(
            "Identical",
            &format!(
                "{} {}{with} ({})",
                v.rust_target,
                v.artifact,
                &v.sha256[..16]
            ),
        );
    } else {
        ui::status(
            "DIFFERENT",
            &format!("{} {}{with}", v.rust_target, v.artifact),
        );
        for d in &v.diagnosis {
            eprintln!("{:>12} - {d}", "");
        }
    }
}

/// Save diffoscope's report next to the output, when diffoscope is installed.
pub fn diffoscope(a: &Path, b: Option<&Path>, report: &Path) {
    let Some(b) = b else { return };
    if which::which("diffoscope").is_err() {
        return;
    }
    let out = crate::process::Cmd::host_tool("diffoscope")
        .arg("--text")
        .arg(report)
        .arg(a)
        .arg(b)
        .output();
    if out.is_ok() {
        ui::note(&format!("diffoscope's report: {}", report.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnosis_names_size_offset_and_leaked_paths() {
        let root = Path::new("/tmp/xbuild-sealed-abc/vvvv");
        let a = b"hello 2026-11-25 12:00 /tmp/xbuild-sealed-abc/vvvv/src/main.rs".to_vec();
        let b = b"hello 2026-11-25 12:01 /tmp/xbuild-sealed-abc/vvvv/src/main.rs!".to_vec();
        let notes = diagnose(&a, &b, &[root]);
        let all = notes.join("\n");
        assert!(all.contains("sizes differ: 62 vs 63 bytes (+1)"), "{all}");
        assert!(all.contains("first differing byte at offset 0x15"), "{all}");
        assert!(
            all.contains("`hello 2026-11-25 12:00 /tmp/xbuild-sealed-abc`"),
            "{all}"
        );
        assert!(all.contains("is embedded 2 time(s)"), "{all}");
    }

    #[test]
    fn nearby_registry_crate_is_named() {
        let mut bytes =
            b"xx/cargo-home/registry/src/index.crates.io-1949cf8c6b5b557f/chrono-0.4.38/src/lib.rs"
                .to_vec();
        let at = bytes.len();
        bytes.extend(b"12:00:01");
        assert_eq!(nearby_crate(&bytes, at).as_deref(), Some("chrono"));
        let bytes = b"/xbuild/src/clock/src/main.rs TIME".to_vec();
        assert_eq!(nearby_crate(&bytes, 30).as_deref(), Some("clock"));
    }
}
