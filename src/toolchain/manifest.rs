//! `toolchains.toml`: the pins. Parsing and validation only; nothing here
//! touches the network or the cache.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

pub use super::artifact::{Artifact, Source, is_snapshot_timestamp};
use super::artifact::{RawArtifact, artifact};
pub use super::layout::{QemuLayout, RootLayout, RustLayout, ToolsLayout, ZigLayout};

/// The repository's `toolchains.toml`, the default pins.
pub const DEFAULT_TEXT: &str = include_str!("../../toolchains.toml");
pub const DEFAULT_NAME: &str = "<built-in toolchains.toml>";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: Spanned<u32>,
    /// The CPU the pins' programs run on (`std::env::consts::ARCH`'s name).
    #[serde(default)]
    host: Option<Spanned<String>>,
    rust: RawComponent<RustLayout>,
    zig: RawComponent<ZigLayout>,
    qemu: RawComponent<QemuLayout>,
    #[serde(rename = "build-tools")]
    build_tools: Option<RawComponent<ToolsLayout>>,
    #[serde(rename = "build-root")]
    build_root: Option<RawComponent<RootLayout>>,
    #[serde(default)]
    sources: RawSources,
    /// More Rust releases, each with its own rust component (and build
    /// root, when it needs another one).
    #[serde(default)]
    releases: std::collections::BTreeMap<String, RawRelease>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    /// The Debian suite it was pinned from, for `toolchain list`.
    suite: Option<String>,
    /// Pinned from a suite that replaces its versions (testing, unstable).
    #[serde(default)]
    moving: bool,
    rust: RawComponent<RustLayout>,
    #[serde(rename = "build-root")]
    build_root: Option<RawComponent<RootLayout>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSources {
    #[serde(default)]
    mirrors: Vec<String>,
    debian_archive: Option<String>,
    debian_snapshot: Option<String>,
    /// The Debian archive keyring `xbuild toolchain pin` checks the indices
    /// against (a `debian-archive-keyring` package).
    debian_keyring: Option<Spanned<RawArtifact>>,
}

/// Where artifacts may come from besides their own method (`[sources]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// Tried first, after `XBUILD_MIRROR`: directories or http(s) URLs
    /// holding files named by their sha256 or their file name.
    pub mirrors: Vec<String>,
    /// The durable archive of every Debian package version ever published:
    /// `<archive>/debian/<snapshot>/<pool path>` (and `debian-security`).
    pub debian_archive: String,
    /// The archive's timestamp for pins that do not name their own.
    pub debian_snapshot: Option<String>,
    /// The pinned Debian archive keyring (`debian-keyring`).
    pub debian_keyring: Option<Artifact>,
}

/// Debian's permanent snapshot archive.
pub const DEBIAN_ARCHIVE: &str = "https://snapshot.debian.org/archive";

#[derive(Debug, Clone, Deserialize)]
struct RawComponent<L> {
    #[serde(flatten)]
    layout: L,
    artifacts: Spanned<Vec<RawArtifact>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentKind {
    Rust,
    Zig,
    Qemu,
    #[serde(rename = "build-tools")]
    Tools,
    #[serde(rename = "build-root")]
    Root,
}

impl ComponentKind {
    pub fn name(self) -> &'static str {
        match self {
            ComponentKind::Rust => "rust",
            ComponentKind::Zig => "zig",
            ComponentKind::Qemu => "qemu",
            ComponentKind::Tools => "build-tools",
            ComponentKind::Root => "build-root",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    pub kind: ComponentKind,
    pub artifacts: Vec<Artifact>,
    /// The layout, as TOML text, part of the component's identity.
    pub layout: String,
}

impl Component {
    /// A digest of everything that decides what gets installed: the cache
    /// directory of the component is keyed by it.
    pub fn pin_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.kind.name());
        h.update([0]);
        h.update(&self.layout);
        match self.kind {
            // the launchers are part of what gets installed
            ComponentKind::Rust => h.update(super::launchers::VERSION),
            // and what finishing the build root writes
            ComponentKind::Root => h.update(super::root::VERSION),
            _ => {}
        }
        for a in &self.artifacts {
            h.update([0]);
            h.update(&a.sha256);
            h.update(a.strip.to_le_bytes());
        }
        hex::encode(h.finalize())[..16].to_string()
    }

    /// The directory name of the installed component.
    pub fn install_name(&self) -> String {
        format!("{}-{}", self.kind.name(), self.pin_hash())
    }
}

/// The parsed pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    /// Where they came from, for messages.
    pub origin: String,
    /// The CPU their programs run on (`x86_64`): another host's are a set
    /// of pins of their own.
    pub host: String,
    /// Read from the workspace's own toolchains.toml: nothing of them may
    /// run outside the sandbox (its bubblewrap, for one).
    pub from_workspace: bool,
    pub rust_layout: RustLayout,
    pub zig_layout: ZigLayout,
    pub qemu_layout: QemuLayout,
    /// `[build-tools]`, when pinned.
    pub tools_layout: Option<ToolsLayout>,
    /// `[build-root]`, when pinned.
    pub root_layout: Option<RootLayout>,
    pub components: Vec<Component>,
    pub sources: Sources,
    /// Where the rust component was pinned from (`suite`, `moving`).
    pub provenance: Provenance,
    /// The other Rust releases pinned (`[releases."X.Y"]`), by key.
    pub releases: Vec<Release>,
}

/// Where a release's pins came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub suite: Option<String>,
    /// From a suite that replaces its versions: they leave the mirror.
    pub moving: bool,
}

/// One more Rust release: a rust component, and a build root when it needs
/// its own (the default's otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub key: String,
    pub provenance: Provenance,
    pub rust: (Component, RustLayout),
    pub root: Option<(Component, RootLayout)>,
}

impl Pins {
    pub fn component(&self, kind: ComponentKind) -> &Component {
        self.components
            .iter()
            .find(|c| c.kind == kind)
            .expect("the component kind is pinned")
    }

    /// Every component of every release pinned: the default's and each of
    /// `[releases]`' rust component and build root.
    pub fn all_components(&self) -> impl Iterator<Item = &Component> {
        self.components.iter().chain(
            self.releases
                .iter()
                .flat_map(|r| std::iter::once(&r.rust.0).chain(r.root.as_ref().map(|r| &r.0))),
        )
    }

    pub fn has(&self, kind: ComponentKind) -> bool {
        self.components.iter().any(|c| c.kind == kind)
    }

    /// A digest of every pin, for cache keys built on top of the toolchain.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for c in &self.components {
            h.update(c.pin_hash());
        }
        hex::encode(h.finalize())[..16].to_string()
    }

    /// A digest of the pins that can change compiled code (rust, zig and the
    /// build tools): what kept dependencies are keyed on. qemu only runs
    /// tests, so a new qemu rebuilds nothing.
    pub fn build_digest(&self) -> String {
        self.digest_of(|k| k != ComponentKind::Qemu)
    }

    /// A digest of the pins std is compiled with (rust, zig and the build
    /// root its build scripts run in): what the std sysroots are keyed on.
    pub fn std_digest(&self) -> String {
        self.digest_of(|k| {
            matches!(
                k,
                ComponentKind::Rust | ComponentKind::Zig | ComponentKind::Root
            )
        })
    }

    fn digest_of(&self, which: impl Fn(ComponentKind) -> bool) -> String {
        let mut h = Sha256::new();
        for c in &self.components {
            if which(c.kind) {
                h.update(c.pin_hash());
            }
        }
        hex::encode(h.finalize())[..16].to_string()
    }

    pub fn builtin() -> Pins {
        parse(DEFAULT_TEXT, DEFAULT_NAME, Path::new("."))
            .expect("the built-in toolchains.toml is valid")
    }

    pub fn load(path: &Path) -> Result<Pins, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        parse(&text, &path.display().to_string(), base)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// The host CPUs pins may be for (Rust's names for them).
const KNOWN_HOSTS: &[&str] = &[
    "x86_64",
    "aarch64",
    "riscv64",
    "powerpc64",
    "s390x",
    "loongarch64",
];

/// Parse `toolchains.toml` text. `base` resolves relative `path = ` sources.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Pins, ManifestError> {
    let err = |span: Option<Range<usize>>, message: String| {
        let (line, column) = line_col(text, span.map_or(0, |s| s.start));
        ManifestError::Invalid {
            file: file.to_string(),
            line,
            column,
            message,
        }
    };
    let raw: Raw =
        toml::from_str(text).map_err(|e| err(e.span(), e.message().trim().to_string()))?;
    if *raw.version.get_ref() != 1 {
        return Err(err(
            Some(raw.version.span()),
            format!(
                "unsupported toolchains.toml version {}; this xbuild reads version 1",
                raw.version.get_ref()
            ),
        ));
    }

    let host = match &raw.host {
        Some(h) if KNOWN_HOSTS.contains(&h.get_ref().as_str()) => h.get_ref().clone(),
        Some(h) => {
            return Err(err(
                Some(h.span()),
                format!(
                    "unknown host CPU `{}`: one of {}",
                    h.get_ref(),
                    KNOWN_HOSTS.join(", ")
                ),
            ));
        }
        None => "x86_64".to_string(),
    };

    let artifacts = |list: &Spanned<Vec<RawArtifact>>| -> Result<Vec<Artifact>, ManifestError> {
        if list.get_ref().is_empty() {
            return Err(err(
                Some(list.span()),
                "a component needs at least one artifact".into(),
            ));
        }
        list.get_ref()
            .iter()
            .map(|a| artifact(a, base).map_err(|(span, m)| err(Some(span), m)))
            .collect()
    };
    if let Some(ts) = &raw.sources.debian_snapshot
        && !is_snapshot_timestamp(ts)
    {
        return Err(err(
            None,
            format!(
                "[sources] debian-snapshot = \"{ts}\" must be a timestamp like 20261129T120000Z"
            ),
        ));
    }
    let sources = Sources {
        mirrors: raw.sources.mirrors.clone(),
        debian_archive: raw
            .sources
            .debian_archive
            .clone()
            .unwrap_or_else(|| DEBIAN_ARCHIVE.to_string())
            .trim_end_matches('/')
            .to_string(),
        debian_snapshot: raw.sources.debian_snapshot.clone(),
        debian_keyring: match &raw.sources.debian_keyring {
            Some(k) => Some(artifact(k.get_ref(), base).map_err(|(span, m)| err(Some(span), m))?),
            None => None,
        },
    };
    let mut releases = Vec::new();
    for (key, r) in &raw.releases {
        releases.push(Release {
            key: key.clone(),
            provenance: Provenance {
                suite: r.suite.clone(),
                moving: r.moving,
            },
            rust: (
                Component {
                    kind: ComponentKind::Rust,
                    artifacts: artifacts(&r.rust.artifacts)?,
                    layout: layout(&r.rust.layout),
                },
                r.rust.layout.clone(),
            ),
            root: match &r.build_root {
                Some(root) => Some((
                    Component {
                        kind: ComponentKind::Root,
                        artifacts: artifacts(&root.artifacts)?,
                        layout: layout(&root.layout),
                    },
                    root.layout.clone(),
                )),
                None => None,
            },
        });
    }
    let mut components = vec![
        Component {
            kind: ComponentKind::Rust,
            artifacts: artifacts(&raw.rust.artifacts)?,
            layout: layout(&raw.rust.layout),
        },
        Component {
            kind: ComponentKind::Zig,
            artifacts: artifacts(&raw.zig.artifacts)?,
            layout: layout(&raw.zig.layout),
        },
        Component {
            kind: ComponentKind::Qemu,
            artifacts: artifacts(&raw.qemu.artifacts)?,
            layout: layout(&raw.qemu.layout),
        },
    ];
    if let Some(tools) = &raw.build_tools {
        components.push(Component {
            kind: ComponentKind::Tools,
            artifacts: artifacts(&tools.artifacts)?,
            layout: layout(&tools.layout),
        });
    }
    if let Some(root) = &raw.build_root {
        components.push(Component {
            kind: ComponentKind::Root,
            artifacts: artifacts(&root.artifacts)?,
            layout: layout(&root.layout),
        });
    }
    Ok(Pins {
        origin: file.to_string(),
        host,
        from_workspace: false,
        rust_layout: raw.rust.layout,
        zig_layout: raw.zig.layout,
        qemu_layout: raw.qemu.layout,
        tools_layout: raw.build_tools.map(|t| t.layout),
        root_layout: raw.build_root.map(|t| t.layout),
        components,
        sources,
        provenance: Provenance::default(),
        releases,
    })
}

fn layout<T: Serialize>(l: &T) -> String {
    toml::to_string(l).expect("a layout serializes")
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
