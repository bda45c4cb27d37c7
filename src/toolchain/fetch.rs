//! Getting an artifact's bytes into the cache: from the mirror, the cache
//! itself, or its fetch method (apt-get, pip, HTTP, a local path). Nothing is
//! kept unless its sha256 matches the pin.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::manifest::{Artifact, Source};
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
    /// Only the cache and the mirror.
    Offline,
}

/// Make sure the verified archive of `a` is in the cache and return its path.
/// A cached archive is re-hashed; a bad one is deleted and fetched again.
pub fn ensure(cache: &Cache, a: &Artifact, mode: Mode) -> Result<PathBuf> {
    let dest = cache.download(&a.sha256);
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
    if let Some(found) = in_mirror(a) {
        ui::status(
            "Copying",
            &format!("{} from the mirror {}", a.file_name, found.display()),
        );
        let mut f = File::open(&found).with_context(|| format!("opening {}", found.display()))?;
        return store(cache, a, &mut f, None);
    }
    if mode == Mode::Offline {
        bail!(missing_offline(std::slice::from_ref(a)));
    }
    match &a.source {
        Source::Path { path } => {
            ui::status(
                "Copying",
                &format!("{} from {}", a.file_name, path.display()),
            );
            let mut f = File::open(path).map_err(|e| FetchFailed {
                label: a.label(),
                reason: format!("cannot open {}: {e}", path.display()),
            })?;
            store(cache, a, &mut f, None)
        }
        Source::Url { url } => fetch_url(cache, a, url),
        Source::Apt {
            name,
            version,
            arch,
        } => {
            let spec = match arch.as_deref() {
                Some(arch) if arch != "all" => format!("{name}:{arch}={version}"),
                _ => format!("{name}={version}"),
            };
            ui::status(
                "Fetching",
                &format!("{} (apt-get download {spec})", a.file_name),
            );
            let dir = cache.temp_dir("apt")?;
            // apt drops privileges to _apt for downloads; let it write here.
            let _ = set_mode(dir.path(), 0o777);
            let mut cmd = Cmd::new("apt-get");
            cmd.args(["download", "-q", &spec]);
            run_fetcher(a, cmd, dir.path(), apt_advice)?;
            from_fetcher_dir(cache, a, dir.path())
        }
        Source::Pypi { requirement } => {
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
                "--quiet",
                "-d",
            ])
            .arg(dir.path())
            .arg(requirement);
            run_fetcher(a, cmd, dir.path(), pip_advice)?;
            from_fetcher_dir(cache, a, dir.path())
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
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

/// The mirror copy of `a`: `<mirror>/<sha256>` or `<mirror>/<file name>`.
fn in_mirror(a: &Artifact) -> Option<PathBuf> {
    let dir = env::mirror()?;
    [dir.join(&a.sha256), dir.join(&a.file_name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Whether `a` can be had without the network.
pub fn available_offline(cache: &Cache, a: &Artifact) -> bool {
    cache.download(&a.sha256).exists() || in_mirror(a).is_some()
}

/// Copy `reader` to a temp file in the cache while hashing; keep it under its
/// digest only if the digest is the pinned one.
fn store(
    cache: &Cache,
    a: &Artifact,
    reader: &mut dyn std::io::Read,
    total: Option<u64>,
) -> Result<PathBuf> {
    let tmp = cache.temp_file(&format!("dl-{}", &a.sha256[..12]))?;
    let mut meter = ui::Progress::new(&a.file_name, total);
    let computed = cache::copy_hashing(reader, tmp.path(), |n| meter.update(n))?;
    meter.finish();
    if computed != a.sha256 {
        return Err(ChecksumMismatch {
            label: a.label(),
            file: a.file_name.clone(),
            expected: a.sha256.clone(),
            computed,
        }
        .into());
    }
    let dest = cache.download(&a.sha256);
    tmp.persist(&dest)
        .with_context(|| format!("renaming into {}", dest.display()))?;
    Ok(dest)
}

/// How long a download may go without receiving a byte.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn fetch_url(cache: &Cache, a: &Artifact, url: &str) -> Result<PathBuf> {
    ui::status("Downloading", &format!("{} from {url}", a.file_name));
    let fail = |reason: String| FetchFailed {
        label: a.label(),
        reason,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        // a stalled server is an error that names the artifact, not a hang
        .timeout_recv_response(Some(READ_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| {
        fail(format!(
            "{url}: {e}; check the network, the proxy settings (HTTPS_PROXY) or the URL"
        ))
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(format!(
            "{url} answered HTTP {}; the URL may have moved: pin a new one, or put the file in {}",
            status.as_u16(),
            env::XBUILD_MIRROR
        ))
        .into());
    }
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut body = response.into_body();
    let mut reader = body.as_reader();
    let path = store(cache, a, &mut reader, total).map_err(|e| {
        if e.is::<ChecksumMismatch>() {
            e
        } else {
            anyhow::Error::new(fail(format!("{url}: the download broke off: {e:#}")))
        }
    })?;
    Ok(path)
}

/// Run apt-get or pip in `dir`; on failure, keep its output and add advice.
fn run_fetcher(a: &Artifact, mut cmd: Cmd, dir: &Path, advice: fn(&str) -> String) -> Result<()> {
    let program = cmd
        .shown()
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    cmd.current_dir(dir).envs(env::passthrough_for_fetchers());
    let out = cmd.output_unchecked().map_err(|e| FetchFailed {
        label: a.label(),
        reason: format!(
            "cannot run `{program}`: {}; {}",
            e.stderr,
            if program.starts_with("apt") {
                "apt artifacts need Debian's apt-get on PATH"
            } else {
                "PyPI artifacts need python3 with pip (`apt-get install python3-pip`)"
            }
        ),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let output = format!("{stdout}{stderr}");
    Err(FetchFailed {
        label: a.label(),
        reason: format!(
            "`{program}` failed ({})\n{}\n{}",
            out.status,
            output.trim_end(),
            advice(&output)
        ),
    }
    .into())
}

fn apt_advice(output: &str) -> String {
    if output.contains("Unable to locate package")
        || output.contains("has no installation candidate")
    {
        "apt does not know this package: its package lists are missing or stale. Run `apt-get update` (as root) and try again".into()
    } else if output.contains("was not found") || output.contains("Can't find a source") {
        "the pinned version is no longer offered by your apt sources (Debian replaces security updates). \
         Pin the version `apt-cache policy NAME` shows, with the sha256 `apt-cache show NAME=VERSION` gives, \
         or provide the file through XBUILD_MIRROR"
            .into()
    } else {
        "check the network and your apt sources, or provide the file through XBUILD_MIRROR".into()
    }
}

fn pip_advice(output: &str) -> String {
    if output.contains("No module named pip") {
        "pip is missing: install it (`apt-get install python3-pip`)".into()
    } else if output.contains("No matching distribution")
        || output.contains("Could not find a version")
    {
        "the package index does not offer this version as a wheel for this machine; check PIP_INDEX_URL, or provide the file through XBUILD_MIRROR".into()
    } else {
        "check the network and PIP_INDEX_URL, or provide the file through XBUILD_MIRROR".into()
    }
}

/// Take the file an external fetcher wrote, hash it and keep it.
fn from_fetcher_dir(cache: &Cache, a: &Artifact, dir: &Path) -> Result<PathBuf> {
    let files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    let file = files
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == a.file_name.as_str()))
        .or(if files.len() == 1 {
            files.first()
        } else {
            None
        })
        .ok_or_else(|| FetchFailed {
            label: a.label(),
            reason: format!(
                "expected the file {} but the fetcher wrote {:?}",
                a.file_name,
                files
                    .iter()
                    .filter_map(|p| p.file_name())
                    .collect::<Vec<_>>()
            ),
        })?;
    let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    store(cache, a, &mut f, None)
}
