//! The official Rust distribution as a source of pins: a release's channel
//! manifest (`dist/channel-rust-X.Y[.Z].toml`), its detached OpenPGP
//! signature checked against a keyring the user gives, and the components
//! xbuild needs (rustc, cargo, the host's std, std's source) with the sha256
//! the manifest gives for each.

use anyhow::{Context, Result, bail};
use pgp::composed::{Deserializable, DetachedSignature};
use serde::Deserialize;

use super::debian::Keyring;

/// What the manifest says of one component for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tarball {
    pub component: String,
    pub url: String,
    pub sha256: String,
}

/// A release's manifest, read.
#[derive(Debug)]
pub struct Channel {
    /// `1.97.0`, from rustc's version string.
    pub version: String,
    pub date: String,
    manifest: Manifest,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(rename = "manifest-version")]
    manifest_version: String,
    #[serde(default)]
    date: String,
    pkg: std::collections::BTreeMap<String, Package>,
}

#[derive(Debug, Deserialize)]
struct Package {
    #[serde(default)]
    version: String,
    target: std::collections::BTreeMap<String, Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    available: bool,
    url: Option<String>,
    hash: Option<String>,
    xz_url: Option<String>,
    xz_hash: Option<String>,
}

/// The components of a toolchain for `host`: rustc, cargo, the host's std
/// (build scripts and proc macros link against it) and std's source (built
/// for each target, as with Debian's pins).
pub const COMPONENTS: &[&str] = &["rustc", "cargo", "rust-std", "rust-src"];

impl Channel {
    /// Fetch `<dist>/dist/channel-rust-<release>.toml` and its `.asc`, check
    /// the signature, parse.
    pub fn fetch(
        agent: &ureq::Agent,
        dist: &str,
        release: &str,
        keyring: &Keyring,
    ) -> Result<Channel> {
        let url = format!(
            "{}/dist/channel-rust-{release}.toml",
            dist.trim_end_matches('/')
        );
        let text = get(agent, &url)?;
        let signature = get(agent, &format!("{url}.asc"))?;
        let (sig, _) = DetachedSignature::from_string(&signature)
            .map_err(|e| anyhow::anyhow!("{url}.asc is not an armored OpenPGP signature: {e}"))?;
        if !keyring.verifies(&sig, text.as_bytes()) {
            bail!(
                "{url}: its signature ({url}.asc) is by no key of {}: the server or the file may \
                 not be the Rust project's",
                keyring.origin
            );
        }
        Channel::parse(&text).with_context(|| format!("reading {url}"))
    }

    pub fn parse(text: &str) -> Result<Channel> {
        let manifest: Manifest = toml::from_str(text)?;
        if manifest.manifest_version != "2" {
            bail!(
                "manifest-version {:?}: this xbuild reads version 2",
                manifest.manifest_version
            );
        }
        let version = manifest
            .pkg
            .get("rustc")
            .map(|p| {
                p.version
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .filter(|v| !v.is_empty())
            .context("the manifest names no rustc version")?;
        Ok(Channel {
            version,
            date: manifest.date.clone(),
            manifest,
        })
    }

    /// One component's tarball for `target` (`*` for rust-src), the xz one
    /// where there is one.
    pub fn tarball(&self, component: &str, target: &str) -> Result<Tarball> {
        let pkg = self
            .manifest
            .pkg
            .get(component)
            .with_context(|| format!("the manifest has no {component}"))?;
        let t = pkg
            .target
            .get(target)
            .or_else(|| pkg.target.get("*"))
            .filter(|t| t.available)
            .with_context(|| format!("the manifest has no {component} for {target}"))?;
        let (url, hash) = match (&t.xz_url, &t.xz_hash, &t.url, &t.hash) {
            (Some(u), Some(h), _, _) | (_, _, Some(u), Some(h)) => (u.clone(), h.clone()),
            _ => bail!("{component} for {target}: no URL with a hash"),
        };
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{component} for {target}: hash {hash:?} is not a sha256");
        }
        Ok(Tarball {
            component: component.to_string(),
            url,
            sha256: hash.to_ascii_lowercase(),
        })
    }

    /// The toolchain's tarballs for a host triple, in unpacking order.
    pub fn toolchain(&self, host: &str) -> Result<Vec<Tarball>> {
        COMPONENTS.iter().map(|c| self.tarball(c, host)).collect()
    }
}

fn get(agent: &ureq::Agent, url: &str) -> Result<String> {
    String::from_utf8(crate::http::get_body(agent, url)?)
        .with_context(|| format!("{url} is not text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_manifest_gives_each_components_xz_tarball_and_refuses_what_it_lacks() {
        let text = r#"
manifest-version = "2"
date = "2026-07-14"
[pkg.rustc]
version = "1.97.0 (8bab26f4f 2026-07-14)"
[pkg.rustc.target.x86_64-unknown-linux-gnu]
available = true
url = "https://dist.test/rustc.tar.gz"
hash = "1111111111111111111111111111111111111111111111111111111111111111"
xz_url = "https://dist.test/rustc.tar.xz"
xz_hash = "2222222222222222222222222222222222222222222222222222222222222222"
[pkg.rust-src]
version = "1.97.0 (8bab26f4f 2026-07-14)"
[pkg.rust-src.target."*"]
available = true
url = "https://dist.test/rust-src.tar.gz"
hash = "3333333333333333333333333333333333333333333333333333333333333333"
[pkg.cargo]
version = "0.98.0"
[pkg.cargo.target.x86_64-unknown-linux-gnu]
available = false
"#;
        let c = Channel::parse(text).unwrap();
        assert_eq!(c.version, "1.97.0");
        let t = c.tarball("rustc", "x86_64-unknown-linux-gnu").unwrap();
        assert_eq!(t.url, "https://dist.test/rustc.tar.xz");
        assert_eq!(t.sha256, "2".repeat(64));
        let src = c.tarball("rust-src", "x86_64-unknown-linux-gnu").unwrap();
        assert_eq!(src.url, "https://dist.test/rust-src.tar.gz");
        let err = c.toolchain("x86_64-unknown-linux-gnu").unwrap_err();
        assert!(err.to_string().contains("no cargo for x86_64"), "{err}");
        assert!(Channel::parse("manifest-version = \"1\"\npkg = {}\n").is_err());
    }
}
