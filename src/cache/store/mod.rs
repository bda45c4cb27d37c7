//! The shared store: the cache's second tier, which a team or CI shares
//! (`XBUILD_CACHE_URL`: `s3://BUCKET/PREFIX`, `file:///DIR`, or a read-only
//! `https://…`). It holds, all content-addressed or input-addressed:
//!
//! ```text
//! blobs/<sha256>            file contents: outputs, std's libraries, toolchain artifacts
//! outputs/<outputs key>     signed manifest of a verified output set
//! sysroots/<std key>        signed manifest of a std sysroot
//! ```
//! Blobs are uploaded first and the manifest last, with a conditional
//! create, as the commit marker: an upload killed half-way leaves no
//! manifest, and a manifest is never overwritten. A reader trusts a manifest
//! only when a key of `XBUILD_CACHE_TRUSTED_KEYS` (or its own signing key)
//! signed it, and re-hashes every blob before anything is used; every
//! failure is a miss with a warning, never a wrong output.
//!
//! A store that does not answer, or rejects the credentials, is said once,
//! loudly, with the server's answer, and the run goes on without it.

pub mod backend;
pub mod gc;
pub mod manifest;
mod stats;
pub use stats::{Stats, last_run};
pub mod sign;
mod write;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use self::backend::{Backend, S3Settings, StoreError, Timeouts};
use self::manifest::{Body, File};
use self::sign::{PublicKey, SecretKey};
use super::{Cache, hash_file};
use crate::{env, ui};

/// The largest blob a reader accepts (a hostile store cannot fill the disk).
const MAX_BLOB: u64 = 8 << 30;

#[derive(Default)]
struct State {
    /// Why the store is no longer used in this run.
    off: Option<String>,
    /// Why this run does not write to the store, though it has the key.
    no_writes: Option<String>,
    stats: Stats,
}

pub struct Store {
    pub url: String,
    backend: Backend,
    signer: Option<SecretKey>,
    trusted: Vec<PublicKey>,
    timeouts: Timeouts,
    state: Mutex<State>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.url)
    }
}

/// What became of pushing a manifest.
#[derive(Debug)]
pub enum Pushed {
    /// Written now (the blobs it names were uploaded first).
    Written,
    /// The store already had a trusted manifest with the same files.
    Same,
    /// The store has a trusted manifest for the key with other bytes; it was
    /// left alone.
    Different(Body),
    /// Nothing to compare with and nothing written (read-only, no signing
    /// key, an untrusted manifest in the way, or the store failed).
    Nothing,
}

impl Store {
    /// The store the environment (or `--cache-url`) configures, if any.
    /// Bad settings are errors that say what to set.
    pub fn from_env(url: Option<&str>) -> Result<Option<Store>> {
        let Some(url) = url
            .map(String::from)
            .or_else(|| env::var(env::XBUILD_CACHE_URL))
        else {
            return Ok(None);
        };
        // what is shown and saved: never credentials in the URL
        let shown = backend::redact(&url);
        let backend = Backend::parse(
            &url,
            S3Settings {
                endpoint: env::var("AWS_ENDPOINT_URL_S3").or_else(|| env::var("AWS_ENDPOINT_URL")),
                region: env::var("AWS_REGION").or_else(|| env::var("AWS_DEFAULT_REGION")),
                key_id: env::var("AWS_ACCESS_KEY_ID"),
                secret: env::var("AWS_SECRET_ACCESS_KEY"),
                session_token: env::var("AWS_SESSION_TOKEN"),
            },
        )
        .map_err(|e| anyhow::anyhow!("{}: {}", env::XBUILD_CACHE_URL, e.replace(&url, &shown)))?;
        let url = shown;
        let signer = match env::var_os(env::XBUILD_CACHE_SIGNING_KEY) {
            Some(p) => Some(SecretKey::load(Path::new(&p)).with_context(|| {
                format!(
                    "{} names a key file xbuild cannot use (make one with `xbuild cache keygen NAME --out FILE`)",
                    env::XBUILD_CACHE_SIGNING_KEY
                )
            })?),
            None => None,
        };
        let mut trusted = match env::var(env::XBUILD_CACHE_TRUSTED_KEYS) {
            Some(list) => PublicKey::parse_list(&list)
                .with_context(|| format!("in {}", env::XBUILD_CACHE_TRUSTED_KEYS))?,
            None => Vec::new(),
        };
        // a writer trusts what it signed itself
        if let Some(s) = &signer
            && !trusted.contains(&s.public())
        {
            trusted.push(s.public());
        }
        if trusted.is_empty() {
            ui::warn(&format!(
                "{url}: no trusted keys ({} is empty), so nothing in the store can be used; set it to the `NAME:KEY` that `xbuild cache keygen` printed for the store's writer",
                env::XBUILD_CACHE_TRUSTED_KEYS
            ));
        }
        if signer.is_some() && !backend.writable() {
            bail!(
                "{url} is read-only (https://): unset {} or use an s3:// or file:// store",
                env::XBUILD_CACHE_SIGNING_KEY
            );
        }
        if backend.signed() == Some(false) && signer.is_some() {
            ui::warn(&format!(
                "{url}: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set: requests are unsigned, and most stores refuse unsigned writes"
            ));
        }
        let seconds = |var: &str, default: u64| -> Result<u64> {
            Ok(env::var(var)
                .map(|s| {
                    s.parse::<u64>().map_err(|_| {
                        anyhow::anyhow!("{var} must be a number of seconds, not `{s}`")
                    })
                })
                .transpose()?
                .unwrap_or(default))
        };
        let secs = seconds(env::XBUILD_CACHE_TIMEOUT, 30)?;
        let deadline = seconds(env::XBUILD_CACHE_DEADLINE, 600)?;
        Ok(Some(Store {
            state: Mutex::new(State {
                stats: Stats {
                    store: url.clone(),
                    ..Stats::default()
                },
                ..State::default()
            }),
            url,
            backend,
            signer,
            trusted,
            timeouts: Timeouts {
                connect: Duration::from_secs(secs.clamp(1, 10)),
                response: Duration::from_secs(secs.max(1)),
                object: Duration::from_secs(deadline.max(1)),
            },
        }))
    }

    /// What `xbuild cache list` says of the settings.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!("store: {}", self.url)];
        lines.push(match &self.signer {
            Some(s) => format!(
                "  writes: yes, manifests signed by {} ({})",
                s.name,
                env::XBUILD_CACHE_SIGNING_KEY
            ),
            None if self.backend.writable() => format!(
                "  writes: no ({} is not set: reads only)",
                env::XBUILD_CACHE_SIGNING_KEY
            ),
            None => "  writes: no (an https:// store is read-only)".into(),
        });
        let names: Vec<String> = self.trusted.iter().map(|k| k.name.clone()).collect();
        lines.push(format!(
            "  trusts: {}",
            if names.is_empty() {
                "no key: nothing can be used".into()
            } else {
                names.join(", ")
            }
        ));
        if let Some(signed) = self.backend.signed() {
            lines.push(format!(
                "  credentials: {}",
                if signed {
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                } else {
                    "none (unsigned requests)"
                }
            ));
        }
        lines
    }

    /// Whether the store is still used in this run (it did not fail).
    pub fn usable(&self) -> bool {
        self.state.lock().expect("store state").off.is_none()
    }

    fn stats(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.state.lock().expect("store state").stats);
    }

    /// Outputs the store gave that failed a check after download (their
    /// executables' ELF check): a miss, said once and counted.
    pub fn reject(&self, why: &str) {
        self.stats(|s| {
            s.rejected += 1;
            s.output_hits = s.output_hits.saturating_sub(1);
            s.output_misses += 1;
        });
        self.warn(format!("the cache store {}: {why}", self.url));
    }

    /// Say a warning once and keep it for `xbuild cache list`.
    fn warn(&self, message: String) {
        let mut st = self.state.lock().expect("store state");
        if !st.stats.warnings.contains(&message) {
            ui::warn(&message);
            st.stats.warnings.push(message);
        }
    }

    /// A failed request: a store that does not answer or rejects the
    /// credentials is dropped for the rest of the run, said once and loudly.
    fn failed(&self, what: &str, e: StoreError) {
        match &e {
            StoreError::Unreachable(_) | StoreError::Denied { .. } => {
                let advice = match &e {
                    StoreError::Denied { .. } => {
                        "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions"
                    }
                    _ => "check the URL, AWS_ENDPOINT_URL and the network",
                };
                let message = format!(
                    "the cache store {} failed ({what}): {e}; {advice}. The store is not used for the rest of this run; building locally",
                    self.url
                );
                let mut st = self.state.lock().expect("store state");
                if st.off.is_none() {
                    st.off = Some(e.to_string());
                    drop(st);
                    self.warn(message);
                }
            }
            StoreError::Other(_) => {
                self.warn(format!("the cache store {}: {what}: {e}", self.url));
            }
        }
    }

    /// The trusted manifest of `kind`/`key`. `Ok(None)`: none there (or the
    /// store is off); `Err`: one is there but cannot be used, and why.
    fn manifest(&self, cache: &Cache, kind: &str, key: &str) -> Result<Option<Body>, String> {
        let mut untrusted = None;
        for signer in &self.trusted {
            match self.manifest_of(cache, kind, key, signer) {
                Ok(Some(body)) => return Ok(Some(body)),
                Ok(None) => {}
                Err(why) => untrusted = Some(why),
            }
        }
        untrusted.map_or(Ok(None), Err)
    }

    /// The manifest `signer` would have written for `kind`/`key`, verified
    /// with that key alone.
    fn manifest_of(
        &self,
        cache: &Cache,
        kind: &str,
        key: &str,
        signer: &PublicKey,
    ) -> Result<Option<Body>, String> {
        if !self.usable() {
            return Ok(None);
        }
        let tmp = cache.temp_file("manifest").map_err(|e| format!("{e:#}"))?;
        let name = manifest::name(kind, key, signer);
        match self
            .backend
            .get(&self.timeouts, &name, tmp.path(), manifest::MAX_MANIFEST)
        {
            Ok(None) => Ok(None),
            Ok(Some(_)) => {
                let text = fs::read(tmp.path()).map_err(|e| e.to_string())?;
                manifest::verify(&text, kind, key, std::slice::from_ref(signer))
                    .map(Some)
                    .map_err(|e| format!("{e:#}"))
            }
            Err(e) => {
                self.failed(&format!("reading {name}"), e);
                Ok(None)
            }
        }
    }

    /// Fetch every file the trusted manifest of `kind`/`key` names into
    /// `dest`, each checked against its sha256. `None` is a miss: nothing
    /// there, or (with a warning naming the key and the reason) a manifest
    /// or blob that cannot be trusted. `dest` may hold a part on a miss.
    pub fn fetch(&self, cache: &Cache, kind: &str, key: &str, dest: &Path) -> Option<Body> {
        let miss = |this: &Self| {
            this.stats(|s| match kind {
                OUTPUTS => s.output_misses += 1,
                UNITS => s.units_misses += 1,
                _ => s.std_misses += 1,
            });
            None
        };
        let body = match self.manifest(cache, kind, key) {
            Ok(Some(b)) => b,
            Ok(None) => return miss(self),
            Err(why) => {
                self.warn(format!(
                    "the cache store {}: the {kind} manifest {key} is not used: {why}; building locally",
                    self.url
                ));
                return miss(self);
            }
        };
        let mut bytes = 0;
        for f in &body.files {
            let to = dest.join(&f.path);
            if let Some(parent) = to.parent()
                && let Err(e) = fs::create_dir_all(parent)
            {
                self.warn(format!("creating {}: {e}", parent.display()));
                return miss(self);
            }
            match self.blob(&f.sha256, &to, f.size) {
                Ok(()) => bytes += f.size,
                Err(why) => {
                    self.warn(format!(
                        "the cache store {}: the {kind} {key} is not used: {} ({}): {why}; building locally",
                        self.url, f.path, f.sha256
                    ));
                    return miss(self);
                }
            }
        }
        self.stats(|s| {
            s.bytes_down += bytes;
            match kind {
                OUTPUTS => s.output_hits += 1,
                UNITS => s.units_hits += 1,
                _ => s.std_hits += 1,
            }
        });
        Some(body)
    }

    /// The blob `sha256` into `to`, checked: never more than `size` bytes
    /// (what its manifest says) are read.
    fn blob(&self, sha256: &str, to: &Path, size: u64) -> Result<(), String> {
        if !self.usable() {
            return Err("the store is not used any more in this run".into());
        }
        let name = format!("blobs/{sha256}");
        match self
            .backend
            .get(&self.timeouts, &name, to, size.min(MAX_BLOB))
        {
            Ok(Some(_)) => {}
            Ok(None) => return Err("the blob is missing".into()),
            Err(e) => {
                let said = e.to_string();
                self.failed(&format!("reading {name}"), e);
                return Err(said);
            }
        }
        let got = hash_file(to).map_err(|e| format!("{e:#}"))?;
        if got != sha256 {
            return Err(format!(
                "its content has sha256 {got}: it was tampered with or truncated"
            ));
        }
        Ok(())
    }

    /// A toolchain artifact by its sha256, for the fetcher (the store as a
    /// mirror). The caller checks the digest again as it stores it.
    pub fn artifact(&self, sha256: &str, to: &Path) -> Result<()> {
        self.blob(sha256, to, MAX_BLOB)
            .map_err(|e| anyhow::anyhow!(e))?;
        self.stats(|s| s.artifact_hits += 1);
        Ok(())
    }

    /// Whether the store has a manifest for `kind`/`key` (trusted or not).
    pub fn has(&self, kind: &str, key: &str) -> bool {
        for signer in &self.trusted {
            if !self.usable() {
                return false;
            }
            let name = manifest::name(kind, key, signer);
            match self.backend.exists(&self.timeouts, &name) {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    self.failed("checking for a manifest", e);
                    return false;
                }
            }
        }
        false
    }

    /// Keep this run's numbers for `xbuild cache list`.
    pub fn save_stats(&self, cache: &Cache) {
        let stats = self.state.lock().expect("store state").stats.clone();
        if let Ok(json) = serde_json::to_vec_pretty(&stats) {
            let _ = super::write_atomic(cache, &stats::file(cache), &json);
        }
    }
}

/// What a manifest holds: outputs by their key, or a std sysroot by its key.
pub const OUTPUTS: &str = "outputs";
pub const SYSROOT: &str = "sysroot";
/// Compiled units of a kept target dir (see `cache::units`).
pub const UNITS: &str = "units";

/// The manifest entries of files on disk, hashed now.
pub fn files_of(root: &Path, paths: &[PathBuf]) -> Result<Vec<(File, PathBuf)>> {
    paths
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .with_context(|| format!("{} is not under {}", p.display(), root.display()))?;
            Ok((
                File {
                    path: rel.to_string_lossy().into_owned(),
                    sha256: hash_file(p)?,
                    size: fs::metadata(p)?.len(),
                    package: None,
                    kind: None,
                },
                p.clone(),
            ))
        })
        .collect()
}
