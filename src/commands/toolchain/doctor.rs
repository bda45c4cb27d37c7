//! `xbuild toolchain doctor`: one screen that says, for this host, what
//! provisioning and sealed builds need and whether it is there, each with
//! the fix.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::cache::{self, Cache};
use crate::process::Cmd;
use crate::toolchain::manifest::{Pins, Source};
use crate::toolchain::{apt, glibc, is_installed};
use crate::{env, sandbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ok,
    /// Works, but something that may be needed is missing.
    Warn,
    /// Provisioning or builds cannot work until it is fixed.
    Fail,
}

struct Check {
    state: State,
    what: String,
    fix: Option<String>,
}

fn check(state: State, what: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        state,
        what: what.into(),
        fix: fix.map(String::from),
    }
}

/// About what an install of the default pins takes on disk (unpacked
/// toolchain, its archives, one std sysroot per target).
const NEEDED_BYTES: u64 = 1_600 * 1024 * 1024;

/// Run every check and print them; returns whether nothing failed.
pub fn run(cache: &Cache, pins: &Pins, out: &mut dyn Write) -> Result<bool> {
    crate::toolchain::offer_root_bwrap(cache, pins);
    let installed = pins.components.iter().all(|c| is_installed(cache, c));
    let mut checks = vec![glibc_check(pins)];
    let debian = crate::toolchain::fetch::debian_specs(pins);
    let mut sources = Vec::new();
    sources.push(mirror_check());
    if !debian.is_empty() {
        sources.push(host_apt_check(&debian));
        sources.push(debian_mirror_check());
        sources.push(archive_check(pins));
    }
    let any_source = sources.iter().any(|c| c.state == State::Ok);
    if !installed && !any_source {
        // no way to get the Debian pins: that is a failure, not a warning
        for c in &mut sources {
            c.state = State::Fail;
        }
    }
    checks.extend(sources);
    checks.push(pip_check(pins, installed));
    checks.push(ca_check());
    checks.push(sandbox_check());
    checks.push(disk_check(cache, installed));
    checks.push(installed_check(cache, pins));

    writeln!(
        out,
        "What this host needs for the pins of {} (cache {}):",
        pins.origin,
        cache.root.display()
    )?;
    for c in &checks {
        let tag = match c.state {
            State::Ok => "ok  ",
            State::Warn => "warn",
            State::Fail => "FAIL",
        };
        writeln!(out, "  {tag}  {}", c.what)?;
        if c.state != State::Ok
            && let Some(fix) = &c.fix
        {
            writeln!(out, "        fix: {fix}")?;
        }
    }
    let ok = checks.iter().all(|c| c.state != State::Fail);
    writeln!(
        out,
        "{}",
        if ok {
            "xbuild can provision and build here."
        } else {
            "xbuild cannot work here until the FAIL lines are fixed."
        }
    )?;
    Ok(ok)
}

fn glibc_check(pins: &Pins) -> Check {
    if let Some(root) = &pins.root_layout
        && crate::sandbox::bwrap::available().is_ok()
    {
        return match crate::toolchain::root::check_xbuild_runs_in(root) {
            Ok(()) => check(
                State::Ok,
                format!(
                    "glibc: the host's is not used (the toolchain runs in the build root, glibc {})",
                    root.glibc
                ),
                None,
            ),
            Err(e) => check(
                State::Fail,
                format!("{e:#}"),
                Some("install the static xbuild, or build xbuild on an older host"),
            ),
        };
    }
    if let Some(root) = &pins.root_layout
        && root.loader.is_some()
    {
        return check(
            State::Ok,
            format!(
                "glibc: the host's is not used (no sandbox here: the toolchain runs on the build root's loader and glibc {})",
                root.glibc
            ),
            None,
        );
    }
    let Some(floor) = &pins.rust_layout.glibc else {
        return check(State::Ok, "glibc: the pins name no floor", None);
    };
    let host = glibc::host_version();
    match glibc::check(host.as_deref(), floor, &pins.origin) {
        Ok(()) => check(
            State::Ok,
            format!(
                "glibc {} (the toolchain needs {floor} or newer)",
                host.unwrap_or_default()
            ),
            None,
        ),
        Err(e) => check(
            State::Fail,
            e.to_string(),
            Some("use a newer host or container"),
        ),
    }
}

fn mirror_check() -> Check {
    let mirrors = env::mirrors();
    if mirrors.is_empty() {
        return check(
            State::Ok,
            format!(
                "mirrors: none ({} is unset; optional: directories or URLs of artifacts)",
                env::XBUILD_MIRROR
            ),
            None,
        );
    }
    let missing: Vec<&String> = mirrors
        .iter()
        .filter(|m| !m.starts_with("http") && !Path::new(m).is_dir())
        .collect();
    if missing.is_empty() {
        check(State::Ok, format!("mirrors: {}", mirrors.join(", ")), None)
    } else {
        check(
            State::Warn,
            format!(
                "mirrors: {} (not a directory: {})",
                mirrors.join(", "),
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some("fix XBUILD_MIRROR"),
        )
    }
}

fn host_apt_check(specs: &[String]) -> Check {
    if which::which("apt-get").is_err() {
        return check(
            State::Warn,
            "apt-get: not installed (not a Debian-family host)",
            Some("nothing to do: the Debian pins come from the durable archive"),
        );
    }
    let offered = apt::locate_all(specs, None)
        .map(|m| m.values().filter(|r| r.is_ok()).count())
        .unwrap_or(0);
    let state = if offered == specs.len() {
        State::Ok
    } else {
        State::Warn
    };
    check(
        state,
        format!(
            "apt-get: the host's sources offer {offered} of the {} Debian pins",
            specs.len()
        ),
        Some(
            "nothing to do if a source below works; on a Debian 12 host, `apt-get update` as root",
        ),
    )
}

fn debian_mirror_check() -> Check {
    let m = apt::DebianMirror::find(Path::new("/etc/apt"));
    match (&m.main, &m.security) {
        (Some(main), security) => check(
            State::Ok,
            format!(
                "xbuild's apt sources would use {main}{}",
                security
                    .as_ref()
                    .map(|s| format!(" and {s}"))
                    .unwrap_or_default()
            ),
            None,
        ),
        _ => check(
            State::Warn,
            "xbuild's apt sources: the host's apt names no Debian mirror",
            Some(&format!(
                "nothing to do if the durable archive is reachable; else set {} to a Debian mirror (http://HOST/debian)",
                env::XBUILD_DEBIAN_MIRROR
            )),
        ),
    }
}

fn archive_check(pins: &Pins) -> Check {
    let base = env::var(env::XBUILD_DEBIAN_ARCHIVE)
        .map(|b| b.trim_end_matches('/').to_string())
        .unwrap_or_else(|| pins.sources.debian_archive.clone());
    let url = match &pins.sources.debian_snapshot {
        Some(ts) => format!("{base}/debian/{ts}/"),
        None => format!("{base}/"),
    };
    let agent: ureq::Agent = crate::http::config()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    match agent.head(&url).call() {
        Ok(r) if r.status().as_u16() < 400 => {
            check(State::Ok, format!("durable archive: {base} answers"), None)
        }
        Ok(r) => check(
            State::Warn,
            format!(
                "durable archive: {url} answered HTTP {}",
                r.status().as_u16()
            ),
            Some("check [sources] debian-archive / XBUILD_DEBIAN_ARCHIVE"),
        ),
        Err(e) => check(
            State::Warn,
            format!("durable archive: {base} is not reachable ({e})"),
            Some(
                "nothing to do if apt or a mirror works; else allow HTTPS to it (HTTPS_PROXY) or set XBUILD_MIRROR",
            ),
        ),
    }
}

fn pip_check(pins: &Pins, installed: bool) -> Check {
    let needs_pip = pins
        .components
        .iter()
        .flat_map(|c| &c.artifacts)
        .any(|a| matches!(a.source, Source::Pypi { .. }));
    if !needs_pip {
        return check(State::Ok, "pip: no PyPI pins", None);
    }
    let python = if which::which("python3").is_ok() {
        "python3"
    } else {
        "python"
    };
    let mut cmd = Cmd::new(python);
    cmd.envs(env::passthrough_for_fetchers())
        .args(["-m", "pip", "--version"]);
    match cmd.output() {
        Ok(o) => check(
            State::Ok,
            format!(
                "pip: {}",
                String::from_utf8_lossy(&o.stdout)
                    .split(" from ")
                    .next()
                    .unwrap_or_default()
                    .trim()
            ),
            None,
        ),
        Err(_) => check(
            if installed { State::Warn } else { State::Fail },
            format!("pip: `{python} -m pip` does not run (zig is a PyPI wheel)"),
            Some("install python3 with pip (`apt-get install python3-pip`), or set XBUILD_MIRROR"),
        ),
    }
}

/// cargo (the pinned OpenSSL) needs the system's CA certificates to fetch
/// crates over HTTPS.
fn ca_check() -> Check {
    match crate::http::ca_bundle() {
        Some(p) => check(State::Ok, format!("CA certificates: {}", p.display()), None),
        None => check(
            State::Fail,
            "CA certificates: none found; cargo cannot fetch crates over HTTPS",
            Some(
                "install them (`apt-get install ca-certificates`, `dnf install ca-certificates`), or set SSL_CERT_FILE",
            ),
        ),
    }
}

fn sandbox_check() -> Check {
    match sandbox::bwrap::available() {
        Ok(()) => check(
            State::Ok,
            format!(
                "sandbox: bubblewrap works (user, mount and network namespaces): {}",
                sandbox::bwrap::which()
            ),
            None,
        ),
        // the reason already says what to do
        Err(why) => check(
            State::Warn,
            format!("sandbox: builds would run unsandboxed: {why}"),
            None,
        ),
    }
}

/// The nearest existing directory at or above `p`.
fn existing(p: &Path) -> PathBuf {
    let mut p = p.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
    p
}

fn disk_check(cache: &Cache, installed: bool) -> Check {
    let at = existing(&cache.root);
    let free = free_bytes(&at);
    let need = if installed { 0 } else { NEEDED_BYTES };
    match free {
        Some(free) if free >= need.max(256 * 1024 * 1024) => check(
            State::Ok,
            format!(
                "disk: {} free at {} (an install takes about {})",
                cache::human_size(free),
                at.display(),
                cache::human_size(NEEDED_BYTES)
            ),
            None,
        ),
        Some(free) => check(
            State::Fail,
            format!(
                "disk: only {} free at {}, an install takes about {}",
                cache::human_size(free),
                at.display(),
                cache::human_size(NEEDED_BYTES)
            ),
            Some("free space, or point XBUILD_CACHE_DIR at a larger disk"),
        ),
        None => check(
            State::Warn,
            format!("disk: cannot tell the free space at {}", at.display()),
            None,
        ),
    }
}

fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid NUL-terminated path and a zeroed statvfs to fill.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

fn installed_check(cache: &Cache, pins: &Pins) -> Check {
    let (have, missing): (Vec<_>, Vec<_>) =
        pins.components.iter().partition(|c| is_installed(cache, c));
    let names = |v: &[&crate::toolchain::manifest::Component]| {
        v.iter()
            .map(|c| c.kind.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if missing.is_empty() {
        check(State::Ok, format!("installed: {}", names(&have)), None)
    } else {
        check(
            State::Warn,
            format!(
                "installed: {}; not yet: {}",
                if have.is_empty() {
                    "nothing".to_string()
                } else {
                    names(&have)
                },
                names(&missing)
            ),
            Some("`xbuild toolchain fetch` (or the first build) installs them"),
        )
    }
}
