//! Debian pins through apt: the host's own apt sources, and xbuild's private
//! apt configuration (its own sources list and lists directory in the cache,
//! the suites the pins name, on the Debian mirror the host already uses). apt
//! only says *where* a version is (`--print-uris`); xbuild downloads it
//! itself, with progress, and keeps it only if its sha256 is the pin's.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cache::Cache;
use crate::process::Cmd;
use crate::{env, ui};

/// Where apt says a package version is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub url: String,
    pub size: Option<u64>,
}

/// `NAME[:ARCH]=VERSION`, as apt-get takes it.
pub fn spec(name: &str, version: &str, arch: Option<&str>) -> String {
    match arch {
        Some(arch) if arch != "all" => format!("{name}:{arch}={version}"),
        _ => format!("{name}={version}"),
    }
}

/// What apt said about each package of a batch, by package name.
pub type Located = std::collections::HashMap<String, Result<Uri, String>>;

/// Ask apt (the host's configuration, or `private`) where each of `specs`
/// is, in one run: apt-get prints the URI of every version it has and an
/// error line for each one it has not.
pub fn locate_all(specs: &[String], private: Option<&Private>) -> Result<Located> {
    let mut cmd = Cmd::new("apt-get");
    cmd.envs(env::passthrough_for_fetchers());
    if let Some(p) = private {
        cmd.args(p.options());
    }
    cmd.args(["download", "--print-uris", "-q"]).args(specs);
    let out = cmd.output_unchecked().map_err(|e| {
        anyhow::anyhow!(
            "cannot run apt-get ({}): this host has no apt",
            e.stderr.trim()
        )
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut found = Located::new();
    for uri in parse_print_uris(&stdout) {
        found.insert(uri.0, Ok(uri.1));
    }
    for line in stderr.lines().filter(|l| l.starts_with("E:")) {
        if let Some(name) = failed_package(line) {
            let spec = specs
                .iter()
                .find(|s| s.split([':', '=']).next() == Some(name.as_str()))
                .cloned()
                .unwrap_or_else(|| name.clone());
            found.insert(name, Err(explain(&spec, line)));
        }
    }
    if found.is_empty() {
        bail!(
            "apt-get did not say where the packages are: {}",
            stderr.trim()
        );
    }
    Ok(found)
}

/// The package an `E:` line of apt-get is about.
fn failed_package(line: &str) -> Option<String> {
    if let Some(rest) = line.split("Unable to locate package ").nth(1) {
        return Some(rest.trim().split(':').next()?.to_string());
    }
    // E: Version 'V' for 'NAME' was not found
    let rest = line.split("' for '").nth(1)?;
    Some(rest.split('\'').next()?.to_string())
}

fn explain(spec: &str, said: &str) -> String {
    if said.contains("Unable to locate package") || said.contains("has no installation candidate") {
        format!(
            "these apt sources do not know the package ({said}); their lists may be missing or stale \
             (`apt-get update` as root), or they are not the pin's Debian release"
        )
    } else if said.contains("Can't find a source") || said.contains("was not found") {
        format!(
            "these apt sources do not offer {spec} ({said}): Debian keeps only the newest version of a \
             package in a suite, so an older pin is found through its `suite` and `pool` (xbuild's own apt \
             sources, then the durable archive)"
        )
    } else {
        format!("apt-get did not say where {spec} is: {said}")
    }
}

/// The `'URL' FILE SIZE HASH` lines of `apt-get --print-uris`, by package
/// name (the file is `NAME_VERSION_ARCH.deb`).
fn parse_print_uris(out: &str) -> Vec<(String, Uri)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('\'')?;
            let (url, tail) = rest.split_once('\'')?;
            let mut words = tail.split_whitespace();
            let name = words.next()?.split('_').next()?.to_string();
            let size = words.next().and_then(|s| s.parse().ok());
            Some((
                name,
                Uri {
                    url: url.to_string(),
                    size,
                },
            ))
        })
        .collect()
}

/// The Debian mirror xbuild's own apt configuration asks: the `debian`
/// archive and its `debian-security` counterpart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DebianMirror {
    pub main: Option<String>,
    pub security: Option<String>,
}

impl DebianMirror {
    /// `XBUILD_DEBIAN_MIRROR`, else the first Debian archive the host's apt
    /// sources name (under `etc_apt`, normally `/etc/apt`).
    pub fn find(etc_apt: &Path) -> DebianMirror {
        if let Some(v) = env::var(env::XBUILD_DEBIAN_MIRROR) {
            let mut parts = v.split(',').map(|s| s.trim().trim_end_matches('/'));
            let main = parts.next().unwrap_or_default().to_string();
            let security = parts.next().map(String::from).unwrap_or_else(|| {
                if main.ends_with("/debian") {
                    format!("{main}-security")
                } else {
                    main.clone()
                }
            });
            return DebianMirror {
                main: Some(main),
                security: Some(security),
            };
        }
        let mut found = DebianMirror::default();
        for (uri, suite) in host_sources(etc_apt) {
            let uri = uri.trim_end_matches('/').to_string();
            if suite.ends_with("-security") || uri.ends_with("/debian-security") {
                found.security.get_or_insert(uri);
            } else if uri.ends_with("/debian") || is_debian_suite(&suite) {
                found.main.get_or_insert(uri);
            }
        }
        // A host without a security entry (a fresh debootstrap root): Debian's
        // mirrors serve `debian-security` beside `debian`.
        if found.security.is_none()
            && let Some(main) = &found.main
            && main.ends_with("/debian")
        {
            found.security = Some(format!("{main}-security"));
        }
        found
    }

    /// The mirror for `suite`.
    pub fn for_suite(&self, suite: &str) -> Option<&str> {
        if suite.ends_with("-security") {
            self.security.as_deref()
        } else {
            self.main.as_deref()
        }
    }
}

fn is_debian_suite(suite: &str) -> bool {
    const NAMES: &[&str] = &[
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "sid",
        "stable",
        "oldstable",
        "testing",
        "unstable",
    ];
    let base = suite.split('-').next().unwrap_or(suite);
    NAMES.contains(&base)
}

/// Every `(URI, suite)` of a `deb` entry in the host's sources, one-line
/// (`sources.list`, `*.list`) and deb822 (`*.sources`) alike.
fn host_sources(etc_apt: &Path) -> Vec<(String, String)> {
    let mut files = vec![etc_apt.join("sources.list")];
    if let Ok(dir) = fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        let name = f.to_string_lossy();
        if name.ends_with(".sources") {
            out.extend(deb822_entries(&text));
        } else if name.ends_with(".list") {
            out.extend(one_line_entries(&text));
        }
    }
    out
}

fn one_line_entries(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut rest: Vec<&str> = words.collect();
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            let end = rest.iter().position(|w| w.ends_with(']')).unwrap_or(0);
            rest.drain(..=end);
        }
        if let [uri, suite, ..] = rest[..] {
            out.push((uri.to_string(), suite.to_string()));
        }
    }
    out
}

fn deb822_entries(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| -> Option<String> {
            stanza
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
        };
        let types = field("Types").unwrap_or_default();
        if !types.split_whitespace().any(|t| t == "deb")
            || field("Enabled").is_some_and(|e| e.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
            continue;
        };
        for uri in uris.split_whitespace() {
            for suite in suites.split_whitespace() {
                out.push((uri.to_string(), suite.to_string()));
            }
        }
    }
    out
}

/// xbuild's own apt configuration: a sources list with the pins' suites on
/// the host's Debian mirror, and its own lists, in the cache. The host's apt
/// (its sources, lists and status) is not touched.
pub struct Private {
    dir: PathBuf,
    /// Whether this run fetched the lists (else they are from an earlier run).
    pub updated: bool,
}

impl Private {
    /// Write the configuration for `suites` and fetch its package lists (once
    /// per configuration; `refresh` fetches them again).
    pub fn prepare(
        cache: &Cache,
        mirror: &DebianMirror,
        suites: &BTreeSet<String>,
        refresh: bool,
    ) -> Result<Private> {
        let mut list = String::new();
        let keyring = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
        // Signatures are checked where the host has Debian's keyring; where it
        // has not, the lists are taken unchecked: every file is still checked
        // against its pinned sha256 before it is kept.
        let options = if keyring.is_file() {
            format!("[signed-by={}]", keyring.display())
        } else {
            "[trusted=yes]".to_string()
        };
        let mut missing = Vec::new();
        for suite in suites {
            match mirror.for_suite(suite) {
                Some(uri) => list.push_str(&format!("deb {options} {uri} {suite} main\n")),
                None => missing.push(suite.as_str()),
            }
        }
        if list.is_empty() {
            bail!(
                "the host's apt sources name no Debian mirror for {}; set {} to one (e.g. http://HOST/debian)",
                missing.join(", "),
                env::XBUILD_DEBIAN_MIRROR
            );
        }
        let id = &crate::cache::hash_bytes(list.as_bytes())[..16];
        let dir = cache.apt().join(id);
        let mut private = Private {
            dir,
            updated: false,
        };
        let lists = private.dir.join("lists");
        if refresh || !lists.join("ready").is_file() {
            private.updated = true;
            for d in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
                fs::create_dir_all(private.dir.join(d))
                    .with_context(|| format!("creating {}", private.dir.join(d).display()))?;
            }
            fs::write(private.dir.join("sources.list"), &list)?;
            fs::write(private.dir.join("status"), "")?;
            let _ = fs::remove_file(lists.join("ready"));
            ui::status(
                "Updating",
                &format!(
                    "xbuild's apt lists ({}) in {}",
                    list.lines()
                        .map(|l| l
                            .split_whitespace()
                            .skip(2)
                            .take(2)
                            .collect::<Vec<_>>()
                            .join(" "))
                        .collect::<Vec<_>>()
                        .join(", "),
                    private.dir.display()
                ),
            );
            let mut cmd = Cmd::new("apt-get");
            cmd.envs(env::passthrough_for_fetchers())
                .args(private.options())
                .args(["update", "-q"]);
            let out = cmd
                .output_unchecked()
                .map_err(|e| anyhow::anyhow!("cannot run apt-get: {}", e.stderr.trim()))?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let errors: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with("E:") || l.starts_with("W:") || l.starts_with("Err"))
                .collect();
            if !out.status.success() || stderr.lines().any(|l| l.starts_with("E:")) {
                bail!(
                    "`apt-get update` with xbuild's sources failed:\n{}",
                    if errors.is_empty() {
                        stderr.trim().to_string()
                    } else {
                        errors.join("\n")
                    }
                );
            }
            fs::write(lists.join("ready"), "")?;
        }
        Ok(private)
    }

    /// The `-o` options that make apt-get use this configuration only.
    fn options(&self) -> Vec<String> {
        let d = self.dir.display();
        let mut o = vec![
            format!("Dir::Etc::SourceList={d}/sources.list"),
            format!("Dir::Etc::SourceParts={d}/sources.list.d"),
            format!("Dir::Etc::Preferences={d}/preferences"),
            format!("Dir::Etc::PreferencesParts={d}/sources.list.d"),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::State::status={d}/status"),
            format!("Dir::Cache={d}/cache"),
            format!("APT::Architecture={}", debian_arch()),
            format!("APT::Architectures={}", debian_arch()),
            "Acquire::Languages=none".to_string(),
            "Debug::NoLocking=true".to_string(),
        ];
        // as root, apt would hand the download to the `_apt` user, who cannot
        // write into a private cache
        if nix_is_root() {
            o.push("APT::Sandbox::User=root".to_string());
        }
        o.into_iter().flat_map(|v| ["-o".to_string(), v]).collect()
    }
}

/// Debian's name for this host's CPU: the architecture xbuild's private apt
/// configuration asks its mirrors' indexes for.
pub fn debian_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_uris_gives_the_url_and_size() {
        let out = "'http://m/debian-security/pool/updates/main/r/rustc-web/rustc-web_1.96.0%2bdfsg1-1%7edeb12u2_amd64.deb' rustc-web_1.96.0+dfsg1-1~deb12u2_amd64.deb 3211264 SHA256:8fef\n";
        assert_eq!(
            parse_print_uris(out),
            vec![(
                "rustc-web".to_string(),
                Uri {
                    url: "http://m/debian-security/pool/updates/main/r/rustc-web/rustc-web_1.96.0%2bdfsg1-1%7edeb12u2_amd64.deb".into(),
                    size: Some(3211264)
                }
            )]
        );
        assert!(parse_print_uris("").is_empty());
        assert_eq!(
            failed_package("E: Version '9.9' for 'hello' was not found").as_deref(),
            Some("hello")
        );
        assert_eq!(
            failed_package("E: Unable to locate package libfoo1:amd64").as_deref(),
            Some("libfoo1")
        );
    }

    #[test]
    fn the_hosts_debian_mirror_is_found_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sources.list.d")).unwrap();
        fs::write(
            dir.path().join("sources.list.d/debian.sources"),
            "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: trixie trixie-updates\nComponents: main\n\n\
             Types: deb deb-src\nURIs: http://mirror.example/debian-security/\nSuites: trixie-security\nComponents: main\n\n\
             Types: deb\nURIs: http://disabled.example/debian\nSuites: sid\nEnabled: no\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("sources.list.d/other.list"),
            "deb [arch=amd64] https://vendor.example/apt stable main\n",
        )
        .unwrap();
        let m = DebianMirror::find(dir.path());
        assert_eq!(m.main.as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(
            m.for_suite("bookworm-security"),
            Some("http://mirror.example/debian-security")
        );

        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("sources.list"),
            "deb http://ftp.example/ubuntu noble main\n# deb http://x/debian bookworm main\ndeb [signed-by=/k.gpg] http://local.example/deb bookworm main contrib\n",
        )
        .unwrap();
        let m = DebianMirror::find(dir.path());
        assert_eq!(m.main.as_deref(), Some("http://local.example/deb"));
        assert_eq!(m.security, None);
        let none = DebianMirror::find(&dir.path().join("nothing"));
        assert_eq!(none, DebianMirror::default());
    }
}
