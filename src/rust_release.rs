//! Which Rust release builds the workspace, decided before anything is
//! fetched: what `--rust` or the workspace's `rust-toolchain.toml` (or
//! `rust-toolchain`) asks for, matched against the pinned releases and never
//! silently replaced by another; then the `rust-version` of the packages
//! cargo will build, checked against the release chosen. Either failing is a
//! usage error (exit 2) that names both versions and the pinned releases.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::exit::Usage;
use crate::toolchain::manifest::{Artifact, ComponentKind, Pins, Source};

/// A Rust version as `rust-version` and toolchain files write it: `1.85`
/// or `1.85.1` (a missing patch is `.0` when compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: Option<u64>,
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.trim().split('.');
        let number = |p: Option<&str>| -> Option<u64> {
            let p = p?;
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let patch = match parts.next() {
            Some(p) => Some(number(Some(p))?),
            None => None,
        };
        parts.next().is_none().then_some(Version {
            major,
            minor,
            patch,
        })
    }

    fn triple(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch.unwrap_or(0))
    }

    /// Whether `self` (a release) is what `asked` names: the same
    /// `major.minor`, and the same patch when it gives one.
    pub fn is(&self, asked: &Version) -> bool {
        (self.major, self.minor) == (asked.major, asked.minor)
            && asked.patch.is_none_or(|p| Some(p) == self.patch)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.triple().cmp(&other.triple()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(p) = self.patch {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

/// The Rust release a set of pins holds: the version of its rustc package
/// (Debian's `rustc` or `rustc-web`) or archive (`rustc-1.96.0-…`, `rust-…`).
pub fn pinned(pins: &Pins) -> Option<Version> {
    let rust = pins.component(ComponentKind::Rust);
    rust.artifacts.iter().find_map(release_of)
}

/// Every release the pins hold: the default first, then each of
/// `[releases]` that says its version.
pub fn all_pinned(pins: &Pins) -> Vec<Version> {
    let mut all: Vec<Version> = pinned(pins).into_iter().collect();
    for r in &pins.releases {
        if let Some(v) = r.rust.0.artifacts.iter().find_map(release_of)
            && !all.contains(&v)
        {
            all.push(v);
        }
    }
    all
}

/// The pins of `release`: the default's, or the default's with the
/// release's rust component and build root put in.
pub fn select(pins: &Pins, release: Version) -> Pins {
    if pinned(pins) == Some(release) {
        return pins.clone();
    }
    let Some(r) = pins
        .releases
        .iter()
        .find(|r| r.rust.0.artifacts.iter().find_map(release_of) == Some(release))
    else {
        return pins.clone();
    };
    let mut out = pins.clone();
    // the default stays a release the selected pins know of (listed, kept
    // by gc, named when a release is too old, selected back)
    if let Some(default) = pinned(pins)
        && !out
            .releases
            .iter()
            .any(|x| x.rust.0.artifacts.iter().find_map(release_of) == Some(default))
    {
        out.releases.insert(
            0,
            crate::toolchain::manifest::Release {
                key: format!("{}.{}", default.major, default.minor),
                provenance: pins.provenance.clone(),
                rust: (
                    pins.component(ComponentKind::Rust).clone(),
                    pins.rust_layout.clone(),
                ),
                root: pins
                    .root_layout
                    .clone()
                    .map(|l| (pins.component(ComponentKind::Root).clone(), l)),
            },
        );
    }
    for c in &mut out.components {
        match (c.kind, &r.root) {
            (ComponentKind::Rust, _) => *c = r.rust.0.clone(),
            (ComponentKind::Root, Some(root)) => *c = root.0.clone(),
            _ => {}
        }
    }
    out.rust_layout = r.rust.1.clone();
    if let Some(root) = &r.root {
        out.root_layout = Some(root.1.clone());
    }
    out.provenance = r.provenance.clone();
    out
}

/// The Rust release an artifact of the rust component is, when it says.
fn release_of(a: &Artifact) -> Option<Version> {
    match &a.source {
        Source::Apt { name, version, .. } if name == "rustc" || name.starts_with("rustc-") => {
            let upstream = version
                .split([':', '+', '~', '-'])
                .find(|p| p.contains('.'))?;
            Version::parse(upstream)
        }
        Source::Apt { .. } => None,
        _ => ["rustc-", "rust-"].iter().find_map(|prefix| {
            let rest = a.file_name.strip_prefix(prefix)?;
            let v: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            Version::parse(v.trim_end_matches('.'))
        }),
    }
}

/// What was asked for, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    channel: String,
    /// `--rust`, or the file that said it.
    by: String,
}

/// The release chosen, and why (the build's first line, report.json).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub release: Version,
    pub why: String,
    /// What the workspace's toolchain file asks for that xbuild does not do.
    pub notes: Vec<String>,
}

/// The release for this build: `--rust` over the workspace's toolchain
/// file over the pins' own. `None` when nothing asks and the pins do not
/// say which release they are (a workspace's own pins may not).
pub fn choose(pins: &Pins, cli: Option<&str>, root: &Path) -> Result<Option<Choice>> {
    let file = toolchain_file(root)?;
    let request = match (cli, &file) {
        (Some(c), _) => Some(Request {
            channel: c.trim().to_string(),
            by: "--rust".into(),
        }),
        (None, Some(f)) => Some(f.request.clone()),
        (None, None) => None,
    };
    // said after the release, by the caller
    let notes: Vec<String> = match (cli, &file) {
        (None, Some(f)) if !f.ignored.is_empty() => vec![format!(
            "{} also lists {}: xbuild builds with the pinned toolchain and std built from \
             source for the targets given with --target, and uses neither",
            f.request.by,
            f.ignored.join(", ")
        )],
        _ => Vec::new(),
    };
    let release = pinned(pins);
    let all = all_pinned(pins);
    let pinned_list = || list(&all);
    let Some(request) = request else {
        return Ok(release.map(|r| Choice {
            release: r,
            why: format!("the pins' release: {}", pins.origin),
            notes,
        }));
    };
    let refuse = |what: &str| -> anyhow::Error {
        let instead =
            release.map_or_else(|| "VERSION".into(), |r| format!("{}.{}", r.major, r.minor));
        Usage(format!(
            "{} asks for Rust {:?}{what}; the pins ({}) hold {}. {}, or pin that release in \
             a toolchains.toml (docs/TOOLCHAINS.md)",
            request.by,
            request.channel,
            pins.origin,
            pinned_list(),
            if request.by == "--rust" {
                format!("Pass a pinned release (`--rust {instead}`)")
            } else {
                format!(
                    "Change the channel in {} to a pinned release, or override it with \
                     `--rust {instead}`",
                    request.by
                )
            },
        ))
        .into()
    };
    let Some(release) = release else {
        return Err(refuse(", and these pins do not say which release they are"));
    };
    let channel = request.channel.as_str();
    if channel == "stable" {
        let newest = all
            .iter()
            .copied()
            .fold(release, |a, b| if b > a { b } else { a });
        return Ok(Some(Choice {
            release: newest,
            why: format!("{} asks for \"stable\": the newest pinned", request.by),
            notes,
        }));
    }
    match Version::parse(channel) {
        Some(asked) if all.iter().any(|r| r.is(&asked)) => Ok(Some(Choice {
            release: *all.iter().find(|r| r.is(&asked)).expect("just found"),
            why: format!("{} asks for {asked}", request.by),
            notes,
        })),
        Some(_) => Err(refuse(", which is not pinned")),
        None => Err(refuse(
            " (only \"stable\" and release numbers can be pinned: no nightly or beta)",
        )),
    }
}

/// The workspace's toolchain file, read.
struct ToolchainFile {
    request: Request,
    /// Components and targets it lists that xbuild does not use.
    ignored: Vec<String>,
}

fn toolchain_file(root: &Path) -> Result<Option<ToolchainFile>> {
    let mut found = Vec::new();
    for name in ["rust-toolchain.toml", "rust-toolchain"] {
        let path = root.join(name);
        if path.is_file() {
            found.push(read_toolchain_file(&path, name)?);
        }
    }
    match found.len() {
        2 if found[0].request.channel != found[1].request.channel => Err(Usage(format!(
            "rust-toolchain.toml asks for {:?} and rust-toolchain for {:?}: keep one of them",
            found[0].request.channel, found[1].request.channel
        ))
        .into()),
        _ => Ok(found.into_iter().next()),
    }
}

fn read_toolchain_file(path: &Path, name: &str) -> Result<ToolchainFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let by = name.to_string();
    // the legacy file is one line, a channel; both may be TOML
    let legacy = !name.ends_with(".toml")
        && !text.contains('[')
        && text.lines().filter(|l| !l.trim().is_empty()).count() == 1;
    if legacy {
        return Ok(ToolchainFile {
            request: Request {
                channel: text.trim().to_string(),
                by,
            },
            ignored: Vec::new(),
        });
    }
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| Usage(format!("{} is not valid TOML: {e}", path.display())))?;
    let table = doc.get("toolchain").and_then(|t| t.as_table());
    let Some(channel) = table
        .and_then(|t| t.get("channel"))
        .and_then(|c| c.as_str())
    else {
        let path_key = table.is_some_and(|t| t.contains_key("path"));
        return Err(Usage(format!(
            "{} names {}: xbuild builds with pinned releases only; give `[toolchain] channel` \
             a release number or \"stable\"",
            path.display(),
            if path_key {
                "a local toolchain (`path`)"
            } else {
                "no `[toolchain] channel`"
            }
        ))
        .into());
    };
    let list = |key: &str| -> Vec<String> {
        table
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    // std's source is the one component a build uses
                    .filter(|s| *s != "rust-src")
                    .map(|s| format!("{key} {s}"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut ignored = list("components");
    ignored.extend(list("targets"));
    Ok(ToolchainFile {
        request: Request {
            channel: channel.trim().to_string(),
            by,
        },
        ignored,
    })
}

/// A package cargo will build and the Rust it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    pub package: String,
    pub manifest: PathBuf,
    pub rust_version: Version,
}

/// Refuse `choice` when a selected package's `rust-version` is newer.
pub fn check(choice: &Choice, pins: &Pins, needs: &[Needs], root: &Path) -> Result<()> {
    let Some(newest) = needs
        .iter()
        .filter(|n| n.rust_version > choice.release)
        .max_by(|a, b| {
            a.rust_version
                .partial_cmp(&b.rust_version)
                .unwrap_or(Ordering::Equal)
        })
    else {
        return Ok(());
    };
    let manifest = newest
        .manifest
        .strip_prefix(root)
        .unwrap_or(&newest.manifest);
    let enough: Vec<Version> = all_pinned(pins)
        .into_iter()
        .filter(|v| *v >= newest.rust_version)
        .collect();
    Err(Usage(format!(
        "package `{}` needs Rust {} (`rust-version` in {}), and this build would use {} ({}). {}",
        newest.package,
        newest.rust_version,
        manifest.display(),
        choice.release,
        choice.why,
        would_do(pins, &enough),
    ))
    .into())
}

/// What to do when the chosen release is too old: the pinned releases new
/// enough, or that none is.
fn would_do(pins: &Pins, enough: &[Version]) -> String {
    if enough.is_empty() {
        format!(
            "No pinned release is new enough (the pins, {}, hold {}): pin a newer one in a \
             toolchains.toml (`xbuild toolchain pin`, docs/TOOLCHAINS.md), or build another \
             selection (-p)",
            pins.origin,
            list(&all_pinned(pins)),
        )
    } else {
        format!(
            "Pinned and new enough: {}; build with `--rust {}.{}` (or name it in \
             rust-toolchain.toml)",
            list(enough),
            enough[0].major,
            enough[0].minor
        )
    }
}

fn list(all: &[Version]) -> String {
    if all.is_empty() {
        "no release that says its version".into()
    } else {
        all.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The packages cargo refused to build because they need a newer Rust
/// (its "is not supported by the following package(s)" error), from the
/// last lines cargo wrote: (`name@version`, the Rust it needs).
pub fn refused_by_cargo(said: &[String]) -> Vec<(String, Version)> {
    // cargo's own line, at the start (what build scripts print is indented)
    let Some(at) = said.iter().position(|l| {
        l.starts_with("error: rustc ") && l.contains(" is not supported by the following package")
    }) else {
        return Vec::new();
    };
    said[at + 1..]
        .iter()
        .map_while(|l| {
            let (package, needs) = l.trim().split_once(" requires rustc ")?;
            Some((package.to_string(), Version::parse(needs)?))
        })
        .collect()
}

/// The usage error for dependencies cargo refused (see [`refused_by_cargo`]).
pub fn dependencies_need_newer(
    choice: &Choice,
    pins: &Pins,
    refused: &[(String, Version)],
) -> anyhow::Error {
    let list: Vec<String> = refused
        .iter()
        .map(|(p, v)| format!("{p} needs Rust {v}"))
        .collect();
    let needed = refused
        .iter()
        .map(|(_, v)| *v)
        .fold(choice.release, |a, b| if b > a { b } else { a });
    let enough: Vec<Version> = all_pinned(pins)
        .into_iter()
        .filter(|v| *v >= needed)
        .collect();
    let advice = if enough.is_empty() {
        format!(
            "{}, or lock older versions of them (`cargo update NAME --precise VERSION`, as cargo \
             says above)",
            would_do(pins, &enough).trim_end_matches(", or build another selection (-p)")
        )
    } else {
        would_do(pins, &enough)
    };
    Usage(format!(
        "dependencies need a newer Rust than {} ({}): {}. {advice}",
        choice.release,
        choice.why,
        list.join(", "),
    ))
    .into()
}

#[cfg(test)]
#[path = "rust_release_tests.rs"]
mod tests;
