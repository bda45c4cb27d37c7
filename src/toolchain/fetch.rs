//! Getting an artifact's bytes into the cache. Every artifact has several
//! sources, tried in order, each checked against the one sha256 of the pin:
//! the mirrors (`XBUILD_MIRROR`, then `[sources] mirrors`), the artifact's
//! own method (apt-get with the host's sources, then with xbuild's own apt
//! configuration; pip; a URL; a local path), then the durable archive for
//! Debian pins. When every source fails, one error lists each source and why;
//! nothing is kept that does not match the pin.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::apt;
use super::download::{fetch_url, from_fetcher_dir, pip_advice, run_fetcher, store};
use super::manifest::{Artifact, Pins, Source};
use crate::cache::{self, Cache};
use crate::process::Cmd;
use crate::{env, ui};

#[derive(Debug, thiserror::Error)]
#[error(
    "sha256 mismatch for {label} ({file})\n  expected: {expected}\n  computed: {computed}\nnothing was installed from it"
)]
pub struct ChecksumMismatch {
    pub label: String,
    pub file: String,
    pub expected: String,
    pub computed: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot fetch {label}: {reason}")]
pub struct FetchFailed {
    pub label: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Online,
    /// Only the cache and the mirror directories.
    Offline,
}

/// Every source of one artifact failed.
#[derive(Debug, thiserror::Error)]
pub struct AllSourcesFailed {
    pub label: String,
    pub file: String,
    pub sha256: String,
    pub tried: Vec<(String, String)>,
}

impl fmt::Display for AllSourcesFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cannot fetch {} ({}, sha256 {}): every source failed, nothing was installed from them:",
            self.label, self.file, self.sha256
        )?;
        for (i, (source, why)) in self.tried.iter().enumerate() {
            let why = why.trim_end().replace('\n', "\n       ");
            writeln!(f, "  {}. {source}: {why}", i + 1)?;
        }
        write!(
            f,
            "put the file (named by its sha256 or {}) in a directory and set {} to it, or check the network",
            self.file,
            env::XBUILD_MIRROR
        )
    }
}

/// One place an artifact may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Way {
    MirrorDir(PathBuf),
    MirrorUrl(String),
    /// The shared store (`XBUILD_CACHE_URL`), which keeps artifacts by sha256.
    Store(String),
    /// A Debian pin's pool path on the host's Debian mirror (or
    /// `XBUILD_DEBIAN_MIRROR`): one HTTP GET, no apt-get.
    DebianPool(String),
    HostApt(String),
    PrivateApt {
        spec: String,
        suite: String,
    },
    /// The wheel's URL on the package index the user's pip is configured
    /// with (no pip run).
    PypiIndex {
        index: String,
        requirement: String,
    },
    Pip(String),
    Url(String),
    Path(PathBuf),
    DebianArchive(String),
}

impl Way {
    fn kind(&self) -> &'static str {
        match self {
            Way::MirrorDir(_) => "mirror directory",
            Way::MirrorUrl(_) => "mirror URL",
            Way::Store(_) => "shared store",
            Way::DebianPool(_) => "Debian mirror",
            Way::HostApt(_) => "host apt",
            Way::PrivateApt { .. } => "xbuild's apt",
            Way::PypiIndex { .. } => "package index",
            Way::Pip(_) => "pip",
            Way::Url(_) => "url",
            Way::Path(_) => "path",
            Way::DebianArchive(_) => "archive",
        }
    }

    fn describe(&self) -> String {
        match self {
            Way::MirrorDir(d) => format!("mirror {}", d.display()),
            Way::MirrorUrl(u) => format!("mirror {u}"),
            Way::Store(u) => format!("the shared store {u}"),
            Way::DebianPool(u) => format!("the Debian mirror, {u}"),
            Way::HostApt(spec) => format!("apt-get download {spec} (the host's apt sources)"),
            Way::PrivateApt { spec, suite } => {
                format!("apt-get download {spec} (xbuild's apt sources: {suite})")
            }
            Way::PypiIndex { index, requirement } => {
                format!("{requirement} on the package index {index}")
            }
            Way::Pip(req) => format!("pip download {req}"),
            Way::Url(u) => u.clone(),
            Way::Path(p) => p.display().to_string(),
            Way::DebianArchive(u) => format!("the durable archive, {u}"),
        }
    }
}

/// Fetches artifacts for one provisioning run; keeps xbuild's apt
/// configuration once it is prepared.
pub struct Fetcher<'a> {
    cache: &'a Cache,
    pins: &'a Pins,
    mode: Mode,
    /// What the host's apt and xbuild's apt configuration said about every
    /// Debian pin, asked once per run.
    host_apt: RefCell<Option<Result<apt::Located, String>>>,
    private_apt: RefCell<Option<Result<apt::Located, String>>>,
    debian_mirror: std::cell::OnceCell<apt::DebianMirror>,
    /// The kinds of source whose failure was already said: said once per
    /// run, not once per artifact.
    noted: RefCell<BTreeSet<&'static str>>,
}

impl<'a> Fetcher<'a> {
    pub fn new(cache: &'a Cache, pins: &'a Pins, mode: Mode) -> Fetcher<'a> {
        Fetcher {
            cache,
            pins,
            mode,
            host_apt: RefCell::new(None),
            private_apt: RefCell::new(None),
            debian_mirror: std::cell::OnceCell::new(),
            noted: RefCell::new(BTreeSet::new()),
        }
    }

    /// Make sure the verified archive of `a` is in the cache and return its
    /// path. A cached archive is re-hashed; a bad one is deleted and fetched
    /// again.
    pub fn ensure(&self, a: &Artifact) -> Result<PathBuf> {
        let dest = self.cache.download(&a.sha256);
        if dest.exists() {
            let got = cache::hash_file(&dest)?;
            if got == a.sha256 {
                return Ok(dest);
            }
            ui::warn(&format!(
                "the cached {} is corrupt (sha256 {got}, expected {}); deleting it and fetching it again",
                a.file_name, a.sha256
            ));
            fs::remove_file(&dest).with_context(|| format!("removing {}", dest.display()))?;
        }
        let ways = self.ways(a);
        if self.mode == Mode::Offline && ways.is_empty() {
            bail!(missing_offline(std::slice::from_ref(a)));
        }
        let mut tried: Vec<(Way, anyhow::Error)> = Vec::new();
        for (i, way) in ways.iter().enumerate() {
            match self.fetch_from(a, way) {
                Ok(path) => {
                    // the store serves it to the next machine
                    if let Some(store) = self.cache.store()
                        && !matches!(way, Way::Store(_))
                    {
                        store.push_blob(&a.sha256, &path);
                    }
                    return Ok(path);
                }
                Err(e) => {
                    if env::interrupted() {
                        return Err(e);
                    }
                    let first_time = self.noted.borrow_mut().insert(way.kind());
                    if i + 1 < ways.len()
                        && !matches!(way, Way::MirrorDir(_) | Way::Store(_))
                        && first_time
                    {
                        ui::note(&format!(
                            "{}: {} did not work ({}); trying the next source (said once; later artifacts may do the same)",
                            a.label(),
                            way.describe(),
                            e.to_string().lines().next().unwrap_or_default()
                        ));
                    }
                    tried.push((way.clone(), e));
                }
            }
        }
        if self.mode == Mode::Offline {
            bail!(missing_offline(std::slice::from_ref(a)));
        }
        // One source: its own error says it best.
        if tried.len() == 1 {
            let (_, e) = tried.pop().expect("one");
            if e.is::<FetchFailed>() || e.is::<ChecksumMismatch>() {
                return Err(e);
            }
            return Err(FetchFailed {
                label: a.label(),
                reason: format!("{e:#}"),
            }
            .into());
        }
        Err(AllSourcesFailed {
            label: a.label(),
            file: a.file_name.clone(),
            sha256: a.sha256.clone(),
            tried: tried
                .into_iter()
                .map(|(w, e)| (w.describe(), format!("{e:#}")))
                .collect(),
        }
        .into())
    }

    /// The sources of `a`, in the order they are tried.
    fn ways(&self, a: &Artifact) -> Vec<Way> {
        let mut ways = Vec::new();
        for m in env::mirrors().iter().chain(&self.pins.sources.mirrors) {
            if m.starts_with("http://") || m.starts_with("https://") {
                if self.mode == Mode::Online {
                    ways.push(Way::MirrorUrl(m.trim_end_matches('/').to_string()));
                }
            } else {
                ways.push(Way::MirrorDir(PathBuf::from(m)));
            }
        }
        if self.mode == Mode::Offline {
            return ways;
        }
        if let Some(store) = self.cache.store().filter(|s| s.usable()) {
            ways.push(Way::Store(store.url.clone()));
        }
        match &a.source {
            Source::Apt {
                name,
                version,
                arch,
                suite,
                pool,
                snapshot,
            } => {
                let spec = apt::spec(name, version, arch.as_deref());
                // the pool path on the mirror the host already uses: while
                // the version is current there, no apt-get and no lists
                if let (Some(pool), Some(suite)) = (pool, suite)
                    && let Some(base) = self.debian_mirror().for_suite(suite)
                {
                    ways.push(Way::DebianPool(format!("{base}/{pool}")));
                }
                ways.push(Way::HostApt(spec.clone()));
                if let Some(suite) = suite {
                    ways.push(Way::PrivateApt {
                        spec,
                        suite: suite.clone(),
                    });
                }
                let snapshot = snapshot
                    .as_ref()
                    .or(self.pins.sources.debian_snapshot.as_ref());
                if let (Some(pool), Some(snapshot)) = (pool, snapshot) {
                    let base = env::var(env::XBUILD_DEBIAN_ARCHIVE)
                        .map(|b| b.trim_end_matches('/').to_string())
                        .unwrap_or_else(|| self.pins.sources.debian_archive.clone());
                    let archive = if suite.as_deref().is_some_and(|s| s.ends_with("-security")) {
                        "debian-security"
                    } else {
                        "debian"
                    };
                    ways.push(Way::DebianArchive(format!(
                        "{base}/{archive}/{snapshot}/{pool}"
                    )));
                }
            }
            Source::Pypi { requirement } => {
                // pip's find-links directories and index, read by xbuild
                // itself: no python3 or pip needed where they are set
                if let Some(path) = super::pypi::in_find_links(&a.file_name) {
                    ways.push(Way::Path(path));
                }
                if let Some(index) = super::pypi::index_url() {
                    ways.push(Way::PypiIndex {
                        index,
                        requirement: requirement.clone(),
                    });
                }
                ways.push(Way::Pip(requirement.clone()))
            }
            Source::Url { url } => ways.push(Way::Url(url.clone())),
            Source::Path { path } => ways.push(Way::Path(path.clone())),
        }
        ways
    }

    fn fetch_from(&self, a: &Artifact, way: &Way) -> Result<PathBuf> {
        let cache = self.cache;
        match way {
            Way::MirrorDir(dir) => {
                let found = mirror_names(a)
                    .into_iter()
                    .map(|n| dir.join(n))
                    .find(|p| p.is_file())
                    .ok_or_else(|| {
                        anyhow::anyhow!("holds neither {} nor {}", a.sha256, a.file_name)
                    })?;
                ui::status(
                    "Copying",
                    &format!("{} from the mirror {}", a.file_name, found.display()),
                );
                let mut f =
                    File::open(&found).with_context(|| format!("opening {}", found.display()))?;
                let total = f.metadata().ok().map(|m| m.len());
                store(cache, a, &mut f, total)
            }
            Way::MirrorUrl(base) => {
                let mut last = None;
                for name in mirror_names(a) {
                    match fetch_url(cache, a, &format!("{base}/{name}")) {
                        Ok(p) => return Ok(p),
                        Err(e) if e.to_string().contains("HTTP 404") => last = Some(e),
                        Err(e) => return Err(e),
                    }
                }
                Err(last.expect("at least one name"))
            }
            Way::Store(_) => {
                let from = cache.store().expect("a store way comes from the store");
                let tmp = cache.temp_file(&format!("store-{}", &a.sha256[..12]))?;
                from.artifact(&a.sha256, tmp.path())?;
                ui::status("Copied", &format!("{} from the shared store", a.file_name));
                let mut f = File::open(tmp.path())?;
                let total = f.metadata().ok().map(|m| m.len());
                store(cache, a, &mut f, total)
            }
            Way::HostApt(spec) => {
                if self.host_apt.borrow().is_none() {
                    let said = apt::locate_all(&self.debian_specs(), None);
                    *self.host_apt.borrow_mut() = Some(said.map_err(|e| format!("{e:#}")));
                }
                let uri = lookup(&self.host_apt, spec)?;
                fetch_url(cache, a, &uri.url)
            }
            Way::PrivateApt { spec, suite } => {
                if self.private_apt.borrow().is_none() {
                    let said = self.ask_private_apt(suite);
                    *self.private_apt.borrow_mut() = Some(said.map_err(|e| format!("{e:#}")));
                }
                let uri = lookup(&self.private_apt, spec)?;
                fetch_url(cache, a, &uri.url)
            }
            Way::PypiIndex { index, requirement } => {
                let page_url = super::pypi::project_page(index, requirement);
                let page = super::pypi::get_page(&page_url).map_err(|e| FetchFailed {
                    label: a.label(),
                    reason: format!("{e:#}"),
                })?;
                let url = super::pypi::file_url(&page, &page_url, &a.file_name).map_err(|e| {
                    FetchFailed {
                        label: a.label(),
                        reason: format!("{e:#}"),
                    }
                })?;
                fetch_url(cache, a, &url)
            }
            Way::Pip(requirement) => {
                ui::status(
                    "Fetching",
                    &format!("{} (pip download {requirement})", a.file_name),
                );
                let dir = cache.temp_dir("pip")?;
                let mut cmd = Cmd::new(python());
                cmd.args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--disable-pip-version-check",
                    "-d",
                ])
                .arg(dir.path())
                .arg(requirement);
                run_fetcher(a, cmd, dir.path(), pip_advice)?;
                from_fetcher_dir(cache, a, dir.path())
            }
            Way::Url(url) | Way::DebianArchive(url) | Way::DebianPool(url) => {
                fetch_url(cache, a, url)
            }
            Way::Path(path) => {
                ui::status(
                    "Copying",
                    &format!("{} from {}", a.file_name, path.display()),
                );
                let mut f = File::open(path).map_err(|e| FetchFailed {
                    label: a.label(),
                    reason: format!("cannot open {}: {e}", path.display()),
                })?;
                let total = f.metadata().ok().map(|m| m.len());
                store(cache, a, &mut f, total)
            }
        }
    }

    /// The host's Debian mirror (or `XBUILD_DEBIAN_MIRROR`), read once.
    fn debian_mirror(&self) -> &apt::DebianMirror {
        self.debian_mirror
            .get_or_init(|| apt::DebianMirror::find(Path::new("/etc/apt")))
    }

    /// Every Debian pin, as apt-get takes it, once (two components may pin
    /// the same package).
    fn debian_specs(&self) -> Vec<String> {
        debian_specs(self.pins)
    }

    /// Prepare xbuild's apt configuration for every suite the pins name and
    /// ask it about every Debian pin. Lists kept from an earlier run that miss
    /// a pin are fetched again once.
    fn ask_private_apt(&self, suite: &str) -> Result<apt::Located> {
        let mirror = apt::DebianMirror::find(Path::new("/etc/apt"));
        if mirror.for_suite(suite).is_none() {
            bail!(
                "the host's apt sources name no Debian mirror for {suite} (set {} to one)",
                env::XBUILD_DEBIAN_MIRROR
            );
        }
        let suites: BTreeSet<String> = self
            .pins
            .components
            .iter()
            .flat_map(|c| &c.artifacts)
            .filter_map(|a| match &a.source {
                Source::Apt { suite, .. } => suite.clone(),
                _ => None,
            })
            .collect();
        let specs = self.debian_specs();
        let private = apt::Private::prepare(self.cache, &mirror, &suites, false)?;
        let said = apt::locate_all(&specs, Some(&private));
        let complete = said
            .as_ref()
            .is_ok_and(|m| m.len() == specs.len() && m.values().all(Result::is_ok));
        if complete || private.updated {
            return said;
        }
        tracing::info!("xbuild's apt lists miss some pins: fetching them again");
        let private = apt::Private::prepare(self.cache, &mirror, &suites, true)?;
        apt::locate_all(&specs, Some(&private))
    }
}

/// Every Debian pin of `pins`, as apt-get takes it, once.
pub fn debian_specs(pins: &Pins) -> Vec<String> {
    let specs: BTreeSet<String> = pins
        .components
        .iter()
        .flat_map(|c| &c.artifacts)
        .filter_map(|a| match &a.source {
            Source::Apt {
                name,
                version,
                arch,
                ..
            } => Some(apt::spec(name, version, arch.as_deref())),
            _ => None,
        })
        .collect();
    specs.into_iter().collect()
}

/// What one batch of apt said about `spec`'s package.
fn lookup(said: &RefCell<Option<Result<apt::Located, String>>>, spec: &str) -> Result<apt::Uri> {
    let name = spec.split([':', '=']).next().unwrap_or(spec);
    match said.borrow().as_ref().expect("asked") {
        Err(e) => bail!("{e}"),
        Ok(map) => match map.get(name) {
            Some(Ok(uri)) => Ok(uri.clone()),
            Some(Err(e)) => bail!("{e}"),
            None => bail!("apt-get said nothing about {spec}"),
        },
    }
}

/// Make sure the verified archive of `a` is in the cache (one artifact, its
/// own provisioning run).
pub fn ensure(cache: &Cache, pins: &Pins, a: &Artifact, mode: Mode) -> Result<PathBuf> {
    Fetcher::new(cache, pins, mode).ensure(a)
}

/// The names a mirror may hold `a` under: its sha256, its file name, and the
/// pool's file name (without apt's `%3a` for an epoch).
fn mirror_names(a: &Artifact) -> Vec<String> {
    let mut names = vec![a.sha256.clone(), a.file_name.clone()];
    if let Source::Apt {
        pool: Some(pool), ..
    } = &a.source
        && let Some(base) = pool.rsplit('/').next()
        && !names.iter().any(|n| n == base)
    {
        names.push(base.to_string());
    }
    names
}

fn python() -> &'static str {
    if which::which("python3").is_ok() {
        "python3"
    } else {
        "python"
    }
}

/// The list of artifacts that `--offline` could not find.
pub fn missing_offline(missing: &[Artifact]) -> String {
    let mut s = format!(
        "offline: {} pinned artifact(s) are neither in the cache nor in the mirror:",
        missing.len()
    );
    for a in missing {
        s.push_str(&format!(
            "\n  {} ({}, sha256 {})",
            a.label(),
            a.file_name,
            a.sha256
        ));
    }
    s.push_str(&format!(
        "\nrun `xbuild toolchain fetch` with network access, `xbuild toolchain import BUNDLE`, or set {} to a directory holding them",
        env::XBUILD_MIRROR
    ));
    s
}

/// Whether `a` can be had without the network.
pub fn available_offline(cache: &Cache, pins: &Pins, a: &Artifact) -> bool {
    cache.download(&a.sha256).exists()
        || env::mirrors()
            .iter()
            .chain(&pins.sources.mirrors)
            .filter(|m| !m.starts_with("http://") && !m.starts_with("https://"))
            .any(|m| {
                mirror_names(a)
                    .iter()
                    .any(|n| Path::new(m).join(n).is_file())
            })
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
