//! Signing keys for the store's manifests, in Nix's spelling: a key has a
//! name, the public key is written `NAME:BASE64` (what
//! `XBUILD_CACHE_TRUSTED_KEYS` lists), the secret key file holds
//! `NAME:BASE64` of the 32-byte Ed25519 seed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// A secret key, read from `XBUILD_CACHE_SIGNING_KEY`'s file.
pub struct SecretKey {
    pub name: String,
    key: SigningKey,
}

/// A public key the reader trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub name: String,
    key: VerifyingKey,
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!(
            "`{name}` is not a key name: use letters, digits, `-`, `_` and `.` (like ci.example.org-1)"
        );
    }
    Ok(())
}

impl SecretKey {
    /// A new key from the system's random source.
    pub fn generate(name: &str) -> Result<SecretKey> {
        check_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("reading random bytes: {e}"))?;
        Ok(SecretKey {
            name: name.into(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn parse(text: &str) -> Result<SecretKey> {
        let (name, b64) = text
            .trim()
            .split_once(':')
            .context("a secret key is NAME:BASE64 (as `xbuild cache keygen` writes it)")?;
        check_name(name)?;
        let seed: [u8; 32] = B64
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .context("the secret key is not 32 bytes of base64")?;
        Ok(SecretKey {
            name: name.into(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The key in `path`, which only its owner may read (as ssh insists):
    /// a key others can read is refused, saying how to fix it.
    pub fn load(path: &Path) -> Result<SecretKey> {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .with_context(|| format!("reading the signing key {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "the signing key {} can be read by others (mode {:o}): anyone who can read it can sign                  what your store's readers trust; run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading the signing key {}", path.display()))?;
        SecretKey::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Write the key to a new file only its owner can read; never overwrite.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| {
                format!(
                    "creating {} (an existing key file is never overwritten)",
                    path.display()
                )
            })?;
        writeln!(f, "{}:{}", self.name, B64.encode(self.key.to_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// `NAME:BASE64` of the signature of `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        format!(
            "{}:{}",
            self.name,
            B64.encode(self.key.sign(body).to_bytes())
        )
    }
}

impl PublicKey {
    pub fn parse(text: &str) -> Result<PublicKey> {
        let (name, b64) = text
            .trim()
            .split_once(':')
            .with_context(|| format!("`{text}` is not a public key (NAME:BASE64)"))?;
        check_name(name)?;
        let bytes: [u8; 32] = B64
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("`{text}`: the key is not 32 bytes of base64"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("`{text}` is not an Ed25519 public key: {e}"))?;
        Ok(PublicKey {
            name: name.into(),
            key,
        })
    }

    /// `XBUILD_CACHE_TRUSTED_KEYS`: keys separated by spaces or commas.
    pub fn parse_list(text: &str) -> Result<Vec<PublicKey>> {
        text.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(PublicKey::parse)
            .collect()
    }

    pub fn verify(&self, body: &[u8], sig_b64: &str) -> bool {
        let Some(sig) = B64
            .decode(sig_b64)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
        else {
            return false;
        };
        self.key.verify_strict(body, &sig).is_ok()
    }
}

impl PublicKey {
    /// 16 hex digits of the sha256 of `NAME:BASE64`: names this key's
    /// manifests in the store.
    pub fn fingerprint(&self) -> String {
        crate::cache::hash_bytes(self.to_string().as_bytes())[..16].to_string()
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, B64.encode(self.key.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_and_signs_what_only_it_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.secret");
        let k = SecretKey::generate("ci-1").unwrap();
        k.write_new(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(k.write_new(&path).is_err(), "never overwritten");
        let back = SecretKey::load(&path).unwrap();
        let public = PublicKey::parse(&back.public().to_string()).unwrap();
        assert_eq!(public, k.public());
        let sig = k.sign(b"body");
        let (name, b64) = sig.split_once(':').unwrap();
        assert_eq!(name, "ci-1");
        assert!(public.verify(b"body", b64));
        assert!(!public.verify(b"bodY", b64), "another body");
        let other = SecretKey::generate("ci-1").unwrap().public();
        assert!(!other.verify(b"body", b64), "another key of the same name");
        assert!(!public.verify(b"body", "not base64!"));
        // readable by the group or others: refused, with the fix
        for mode in [0o640, 0o604, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let e = SecretKey::load(&path).err().unwrap().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        SecretKey::load(&path).unwrap();
    }

    #[test]
    fn bad_keys_and_names_are_refused_with_the_form() {
        assert!(SecretKey::generate("has space").is_err());
        assert!(PublicKey::parse("nocolon").is_err());
        assert!(PublicKey::parse("a:AAAA").is_err());
        let k = SecretKey::generate("a").unwrap().public().to_string();
        let list = PublicKey::parse_list(&format!(" {k}, {k}\n")).unwrap();
        assert_eq!(list.len(), 2);
    }
}
