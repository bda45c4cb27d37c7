//! How xbuild's own HTTP(S) requests are made (pinned downloads, the store,
//! the doctor's checks): proxies from the environment (`ALL_PROXY`,
//! `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, read by ureq), and servers
//! trusted by the host's CA certificates (`SSL_CERT_FILE`, else the system
//! bundle), as curl, apt and pip trust them: a proxy that re-signs HTTPS
//! with a company CA works once that CA is in the bundle. Without a bundle,
//! Mozilla's roots built into xbuild.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ureq::config::ConfigBuilder;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::env;

/// The host's CA certificate bundle: `SSL_CERT_FILE`, else where Debian,
/// Fedora/RHEL, Arch or Alpine keep it.
pub fn ca_bundle() -> Option<PathBuf> {
    if let Some(f) = env::var_os("SSL_CERT_FILE") {
        return Some(f.into());
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.is_file())
    .map(Path::to_path_buf)
}

/// Where a sandbox with network shows cargo the CA bundle: the file itself,
/// bound read-only. The path the host names may be a link (rustup's cargo
/// gives its children `SSL_CERT_FILE=/usr/lib/ssl/cert.pem`, a link into
/// `/etc/ssl`) or lie where the sandbox shows nothing of the host's (the
/// build root's `/usr`, a home directory).
pub const CA_IN_SANDBOX: &str = "/run/xbuild/ca-certificates.crt";

/// The CA bundle cargo is told to use (`CARGO_HTTP_CAINFO`, else
/// [`ca_bundle`]), as the file it resolves to.
pub fn cargo_ca_bundle() -> Option<PathBuf> {
    env::var_os("CARGO_HTTP_CAINFO")
        .map(PathBuf::from)
        .or_else(ca_bundle)?
        .canonicalize()
        .ok()
}

/// An agent's configuration, to add timeouts to: the proxies of the
/// environment and the host's CA certificates.
pub fn config() -> ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder().tls_config(tls().clone())
}

fn tls() -> &'static TlsConfig {
    static TLS: OnceLock<TlsConfig> = OnceLock::new();
    TLS.get_or_init(|| {
        let bundle = ca_bundle();
        match bundle.as_deref().map(roots_from) {
            Some(Ok(roots)) => TlsConfig::builder().root_certs(roots).build(),
            Some(Err(why)) => {
                crate::ui::warn(&format!(
                    "not using the CA certificates in {}: {why}; HTTPS servers are checked against \
                     the roots built into xbuild (set SSL_CERT_FILE to a PEM bundle)",
                    bundle.unwrap_or_default().display()
                ));
                TlsConfig::default()
            }
            None => TlsConfig::default(),
        }
    })
}

/// The certificates of a PEM bundle, as the roots HTTPS servers are
/// checked against.
fn roots_from(bundle: &Path) -> Result<RootCerts, String> {
    let pem = std::fs::read(bundle).map_err(|e| e.to_string())?;
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("it is not a PEM bundle ({e})")),
        }
    }
    if certs.is_empty() {
        return Err("it holds no certificate".into());
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// The body of a GET that must answer 2xx, read whole (package lists and
/// manifests, small enough for memory); any other status is an error that
/// names the URL.
pub fn get_body(agent: &ureq::Agent, url: &str) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::io::Read;
    let response = agent
        .get(url)
        .call()
        .with_context(|| format!("fetching {url}"))?;
    if !response.status().is_success() {
        anyhow::bail!("{url} answered HTTP {}", response.status().as_u16());
    }
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .read_to_end(&mut body)
        .with_context(|| format!("reading {url}"))?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_gives_its_certificates_and_anything_else_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
        if bundle.is_file() {
            let RootCerts::Specific(certs) = roots_from(bundle).unwrap() else {
                panic!("specific roots");
            };
            assert!(certs.len() > 10, "{}", certs.len());
        }
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert_eq!(roots_from(&empty).err().unwrap(), "it holds no certificate");
        assert!(roots_from(&dir.path().join("missing.pem")).is_err());
    }
}
