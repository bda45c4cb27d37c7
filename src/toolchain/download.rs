//! Downloads: an artifact streamed into the cache while it is hashed and
//! kept under its digest only when the digest is the pinned one, from a
//! reader, a URL, or the directory a fetcher program (pip) wrote.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::fetch::{ChecksumMismatch, FetchFailed};
use super::manifest::Artifact;
use crate::cache::{self, Cache};
use crate::process::Cmd;
use crate::{env, ui};

/// Copy `reader` to a temp file in the cache while hashing; keep it under its
/// digest only if the digest is the pinned one.
pub(super) fn store(
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

/// The HTTP client of downloads: a stalled server is an error that names
/// what was asked, not a hang; statuses are answers, not errors.
pub(super) fn agent() -> ureq::Agent {
    crate::http::config()
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_recv_response(Some(READ_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into()
}

pub(super) fn fetch_url(cache: &Cache, a: &Artifact, url: &str) -> Result<PathBuf> {
    ui::status("Downloading", &format!("{} from {url}", a.file_name));
    let fail = |reason: String| FetchFailed {
        label: a.label(),
        reason,
    };
    let response = agent().get(url).call().map_err(|e| {
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

/// Run pip in `dir`; on failure, keep its output and add advice. On a
/// terminal pip's own progress bar is shown (on stderr).
pub(super) fn run_fetcher(
    a: &Artifact,
    mut cmd: Cmd,
    dir: &Path,
    advice: fn(&str) -> String,
) -> Result<()> {
    let program = cmd
        .shown()
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    cmd.current_dir(dir).envs(env::passthrough_for_fetchers());
    let cannot_run = |e: crate::process::ProcessError| FetchFailed {
        label: a.label(),
        reason: format!(
            "cannot run `{program}`: {}; PyPI artifacts need python3 with pip (`apt-get install python3-pip`)",
            e.stderr
        ),
    };
    if env::stderr_is_terminal() {
        use std::os::fd::AsFd;
        let progress = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating stderr")?;
        cmd.stdout(std::process::Stdio::from(progress));
        let status = cmd.status().map_err(cannot_run)?;
        if status.success() {
            return Ok(());
        }
        return Err(FetchFailed {
            label: a.label(),
            reason: format!("`{program}` failed ({status}); {}", advice("")),
        }
        .into());
    }
    let out = cmd.output_unchecked().map_err(cannot_run)?;
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

pub(super) fn pip_advice(output: &str) -> String {
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
pub(super) fn from_fetcher_dir(cache: &Cache, a: &Artifact, dir: &Path) -> Result<PathBuf> {
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
