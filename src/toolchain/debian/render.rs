//! The pins `xbuild toolchain pin` writes: a `[releases."X.Y"]` block, or
//! the artifacts of the default release's `[rust]` and `[build-root]`.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde::Serialize;

use super::Release;
use super::resolve::Candidate;
use crate::toolchain::manifest::{ComponentKind, Pins, RootLayout, RustLayout};

/// The pins of one release, resolved.
pub struct Pinned<'a> {
    /// `1.97.1`
    pub release: String,
    /// `major.minor`, the key of `[releases]`.
    pub key: String,
    /// The suite the release was found in.
    pub suite: &'a Release,
    pub rust: Vec<&'a Candidate>,
    /// The glibc of the suite: the floor of rustc and cargo, the build root's.
    pub glibc: String,
    pub root: Vec<&'a Candidate>,
}

/// The newest glibc the pinned zig links against: a build root with a newer
/// one has its build scripts linked against this (glibc runs programs
/// linked against older versions).
pub const ZIG_NEWEST_GLIBC: (u32, u32) = (2, 41);

fn begin(key: &str) -> String {
    format!("# BEGIN Rust {key}")
}

fn end(key: &str) -> String {
    format!("# END Rust {key}")
}

/// One artifact line, as the file writes them.
fn artifact(c: &Candidate) -> String {
    format!(
        "    {{ apt = \"{}={}\", arch = \"{}\", suite = \"{}\", pool = \"{}\", sha256 = \"{}\" }},\n",
        c.name(),
        c.version(),
        c.arch(),
        c.suite,
        c.pool(),
        c.sha256()
    )
}

/// The artifacts, in the order of their `apt = "NAME=VERSION"` text (as the
/// file has always been sorted: `perl-base` before `perl`).
fn artifacts(list: &[&Candidate]) -> String {
    let mut sorted = list.to_vec();
    sorted.sort_by_key(|c| format!("{}={}", c.name(), c.version()));
    let mut s = String::from("artifacts = [\n");
    for c in sorted {
        s.push_str(&artifact(c));
    }
    s.push_str("]\n");
    s
}

/// A layout's keys, one per line, values inline.
fn keys<T: Serialize>(layout: &T) -> String {
    let table = toml::Table::try_from(layout).expect("a layout serializes");
    let mut s = String::new();
    for (k, v) in table {
        let _ = writeln!(s, "{k} = {v}");
    }
    s
}

/// The build root's glibc for linking: the root's, at most zig's newest.
fn link_glibc(glibc: &str) -> String {
    let mut parts = glibc.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let v = v.min(ZIG_NEWEST_GLIBC);
    format!("{}.{}", v.0, v.1)
}

fn rust_layout(pins: &Pins, p: &Pinned) -> RustLayout {
    RustLayout {
        glibc: Some(p.glibc.clone()),
        ..pins.rust_layout.clone()
    }
}

fn root_layout(layout: &RootLayout, p: &Pinned) -> RootLayout {
    RootLayout {
        glibc: link_glibc(&p.glibc),
        ..layout.clone()
    }
}

/// Whether the release's build root is the default's (same packages).
fn same_root(pins: &Pins, p: &Pinned) -> bool {
    let set = |it: &mut dyn Iterator<Item = &str>| -> std::collections::BTreeSet<String> {
        it.map(String::from).collect()
    };
    pins.has(ComponentKind::Root)
        && set(&mut pins
            .component(ComponentKind::Root)
            .artifacts
            .iter()
            .map(|a| a.sha256.as_str()))
            == set(&mut p.root.iter().map(|c| c.sha256()))
}

/// The `[releases."X.Y"]` block, between its BEGIN and END lines.
pub fn block(p: &Pinned, pins: &Pins) -> String {
    let key = &p.key;
    let moving = p.suite.moving();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: written by `xbuild toolchain pin --rust {key}` from Debian {} ({}{}), lists dated {}.",
        begin(key),
        p.suite.name,
        p.suite.suite,
        if moving {
            ": a moving suite, whose versions leave the mirror when it moves on"
        } else {
            ""
        },
        p.suite.date
    );
    s.push_str("# Running it again replaces everything down to the END line.\n");
    if p.suite.expired {
        s.push_str(
            "# The lists had passed their Valid-Until (an outdated mirror): pinned with \
             --allow-expired.\n",
        );
    }
    let _ = writeln!(s, "[releases.\"{key}\"]");
    let _ = writeln!(s, "suite = \"{}\"", p.suite.name);
    let _ = writeln!(s, "moving = {moving}");
    let _ = writeln!(s, "\n[releases.\"{key}\".rust]");
    s.push_str(&keys(&rust_layout(pins, p)));
    s.push_str(&artifacts(&p.rust));
    match &pins.root_layout {
        Some(layout) if !same_root(pins, p) => {
            let _ = writeln!(s, "\n[releases.\"{key}\".build-root]");
            s.push_str(&keys(&root_layout(layout, p)));
            s.push_str(&artifacts(&p.root));
        }
        _ => s.push_str("# the build root: the default's, the same packages\n"),
    }
    let _ = writeln!(s, "{}", end(key));
    s
}

/// `text` with the release's block replaced, or added at the end.
pub fn replace_block(text: &str, block: &str) -> String {
    let key = block
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# BEGIN Rust "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_default()
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(&format!("{}:", begin(&key))));
    let stop = start.and_then(|s| {
        lines[s..]
            .iter()
            .position(|l| l.trim_end() == end(&key))
            .map(|e| s + e)
    });
    match (start, stop) {
        (Some(a), Some(b)) => {
            let mut out = lines[..a].join("\n");
            out.push('\n');
            out.push_str(block);
            for l in &lines[b + 1..] {
                out.push_str(l);
                out.push('\n');
            }
            out
        }
        _ => {
            let mut out = text.trim_end().to_string();
            out.push_str("\n\n");
            out.push_str(block);
            out
        }
    }
}

/// `text` with the artifacts of its top-level `[rust]` and `[build-root]`
/// replaced: the pins of its default release, renewed.
pub fn replace_default(text: &str, p: &Pinned) -> Result<String> {
    let mut out = replace_artifacts(text, "[rust]", &p.rust)?;
    if text.lines().any(|l| l.trim() == "[build-root]") {
        out = replace_artifacts(&out, "[build-root]", &p.root)?;
    }
    Ok(out)
}

fn replace_artifacts(text: &str, section: &str, list: &[&Candidate]) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(head) = lines.iter().position(|l| l.trim() == section) else {
        bail!("no {section} in the file");
    };
    let Some(open) = lines[head..]
        .iter()
        .position(|l| l.trim_start().starts_with("artifacts = ["))
        .map(|i| head + i)
    else {
        bail!("no `artifacts = [` under {section}");
    };
    let Some(close) = lines[open..]
        .iter()
        .position(|l| l.trim() == "]")
        .map(|i| open + i)
    else {
        bail!("the artifacts of {section} do not end with a line `]`");
    };
    let mut out = String::new();
    for l in &lines[..open] {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&artifacts(list));
    for l in &lines[close + 1..] {
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

/// The `[releases."X.Y"]` block of a release from the official Rust
/// distribution: its tarballs, each with the sha256 its channel manifest
/// gives, unpacked into one prefix (`strip = 2`: the archive's directory
/// and the component's).
pub fn dist_block(
    key: &str,
    release: &str,
    date: &str,
    dist: &str,
    tarballs: &[crate::toolchain::rustdist::Tarball],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: written by `xbuild toolchain pin --rust {key} --rust-dist {dist}` from the channel \
         manifest of Rust {release}, dated {date}.",
        begin(key)
    );
    s.push_str("# Running it again replaces everything down to the END line.\n");
    let _ = writeln!(s, "[releases.\"{key}\"]");
    let _ = writeln!(s, "\n[releases.\"{key}\".rust]");
    s.push_str(&keys(&RustLayout {
        rustc: "bin/rustc".into(),
        cargo: "bin/cargo".into(),
        library_path: vec!["lib".into()],
        glibc: None,
        rust_src: "lib/rustlib/src/rust".into(),
    }));
    s.push_str("artifacts = [\n");
    for t in tarballs {
        let _ = writeln!(
            s,
            "    {{ url = \"{}\", sha256 = \"{}\", strip = 2 }},",
            t.url, t.sha256
        );
    }
    s.push_str("]\n# the build root: the default's\n");
    let _ = writeln!(s, "{}", end(key));
    s
}
