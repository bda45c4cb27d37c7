//! One artifact of `toolchains.toml`: its fetch method (`apt`, `pypi`,
//! `url`, `path`), file name and sha256, read and checked.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArtifact {
    apt: Option<String>,
    arch: Option<String>,
    pypi: Option<String>,
    url: Option<String>,
    path: Option<String>,
    file: Option<String>,
    /// Debian pins: the suite the version was published in, its pool path
    /// and (optionally) its own snapshot timestamp.
    suite: Option<String>,
    pool: Option<String>,
    snapshot: Option<String>,
    sha256: Spanned<String>,
    #[serde(default)]
    strip: u32,
}

/// How an artifact is fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `apt-get download NAME[:ARCH]=VERSION`, from the host's apt sources or
    /// xbuild's own (the pin's suite on the host's Debian mirror), else the
    /// durable archive (the pool path under a snapshot timestamp).
    Apt {
        name: String,
        version: String,
        arch: Option<String>,
        suite: Option<String>,
        pool: Option<String>,
        snapshot: Option<String>,
    },
    /// `pip download --no-deps --only-binary=:all: NAME==VERSION`, which must give `file`.
    Pypi { requirement: String },
    /// A plain HTTP(S) download.
    Url { url: String },
    /// A local file (relative paths are relative to the toolchains.toml).
    Path { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub source: Source,
    /// The file name, used for mirror look-ups and messages.
    pub file_name: String,
    /// Lower-case hex.
    pub sha256: String,
    /// Leading path components dropped when unpacking a tarball.
    pub strip: u32,
}

impl Artifact {
    /// A short human name: the package and version, or the file name.
    pub fn label(&self) -> String {
        match &self.source {
            Source::Apt { name, version, .. } => format!("{name} {version}"),
            Source::Pypi { requirement } => requirement.clone(),
            _ => self.file_name.clone(),
        }
    }
}

/// `YYYYMMDDTHHMMSSZ`, the form the snapshot archive's URLs use.
pub fn is_snapshot_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

pub(super) fn artifact(a: &RawArtifact, base: &Path) -> Result<Artifact, (Range<usize>, String)> {
    let span = a.sha256.span();
    let sha = a.sha256.get_ref().trim();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((
            span,
            format!("malformed sha256 `{sha}`: expected 64 hexadecimal digits"),
        ));
    }
    let sha256 = sha.to_ascii_lowercase();
    let given: Vec<&str> = [
        a.apt.as_ref().map(|_| "apt"),
        a.pypi.as_ref().map(|_| "pypi"),
        a.url.as_ref().map(|_| "url"),
        a.path.as_ref().map(|_| "path"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() != 1 {
        return Err((
            span,
            format!(
                "an artifact needs exactly one of `apt`, `pypi`, `url` or `path` (found {})",
                if given.is_empty() {
                    "none".to_string()
                } else {
                    given.join(", ")
                }
            ),
        ));
    }
    if a.apt.is_none() {
        for (key, given) in [
            ("arch", &a.arch),
            ("suite", &a.suite),
            ("pool", &a.pool),
            ("snapshot", &a.snapshot),
        ] {
            if given.is_some() {
                return Err((span, format!("`{key}` goes with `apt` only")));
            }
        }
    }
    if let Some(pool) = &a.pool
        && (!pool.starts_with("pool/")
            || pool.split('/').any(|c| c == ".." || c.is_empty())
            || !pool.ends_with(".deb"))
    {
        return Err((
            span,
            format!(
                "`pool = \"{pool}\"` must be a path like pool/main/r/rustc-web/NAME_VERSION_ARCH.deb"
            ),
        ));
    }
    if let Some(ts) = &a.snapshot
        && !is_snapshot_timestamp(ts)
    {
        return Err((
            span,
            format!("`snapshot = \"{ts}\"` must be a timestamp like 20261129T120000Z"),
        ));
    }
    let (source, file_name) = if let Some(spec) = &a.apt {
        let Some((name, version)) = spec.split_once('=') else {
            return Err((span, format!("`apt = \"{spec}\"` must be NAME=VERSION")));
        };
        let arch = a.arch.clone();
        // apt-get download names files NAME_VERSION_ARCH.deb, with the epoch's
        // colon written %3a.
        let file = format!(
            "{name}_{}_{}.deb",
            version.replace(':', "%3a"),
            arch.as_deref().unwrap_or("amd64")
        );
        (
            Source::Apt {
                name: name.to_string(),
                version: version.to_string(),
                arch,
                suite: a.suite.clone(),
                pool: a.pool.clone(),
                snapshot: a.snapshot.clone(),
            },
            a.file.clone().unwrap_or(file),
        )
    } else if let Some(req) = &a.pypi {
        if !req.contains("==") {
            return Err((
                span,
                format!("`pypi = \"{req}\"` must pin an exact version: NAME==VERSION"),
            ));
        }
        let Some(file) = &a.file else {
            return Err((
                span,
                "a `pypi` artifact needs `file`, the wheel's file name".into(),
            ));
        };
        (
            Source::Pypi {
                requirement: req.clone(),
            },
            file.clone(),
        )
    } else if let Some(url) = &a.url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err((
                span,
                format!("`url = \"{url}\"` must start with https:// or http://"),
            ));
        }
        let file = a.file.clone().unwrap_or_else(|| {
            url.rsplit('/')
                .next()
                .unwrap_or("download")
                .split('?')
                .next()
                .unwrap_or("download")
                .to_string()
        });
        (Source::Url { url: url.clone() }, file)
    } else {
        let path = base.join(a.path.as_deref().unwrap_or_default());
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        (Source::Path { path }, a.file.clone().unwrap_or(file))
    };
    if file_name.is_empty() || file_name.contains('/') {
        return Err((span, format!("bad artifact file name `{file_name}`")));
    }
    Ok(Artifact {
        source,
        file_name,
        sha256,
        strip: a.strip,
    })
}
