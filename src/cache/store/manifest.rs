//! The store's manifests: what one key holds, signed. The first line is the
//! body (compact JSON naming its kind, its key and every file with its
//! sha256); each following line is `sig NAME:BASE64`, a signature of the
//! body's bytes. A manifest is trusted only when a trusted key signed it,
//! and only for the kind and key its body names (it cannot be replayed
//! under another key).

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::sign::{PublicKey, SecretKey};

const FORMAT: &str = "xbuild-store-1";

/// Manifests are small; a larger one is refused unread.
pub const MAX_MANIFEST: u64 = 4 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct File {
    /// Relative path (a plain name for outputs; `lib/rustlib/…` for sysroots).
    pub path: String,
    pub sha256: String,
    pub size: u64,
    /// For outputs: the package and the kind of target that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Body {
    pub format: String,
    /// `outputs` or `sysroot`.
    pub kind: String,
    pub key: String,
    pub files: Vec<File>,
}

impl Body {
    pub fn new(kind: &str, key: &str, mut files: Vec<File>) -> Body {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Body {
            format: FORMAT.into(),
            kind: kind.into(),
            key: key.into(),
            files,
        }
    }

    /// The signed text: the body, then the signature.
    pub fn sign(&self, key: &SecretKey) -> Vec<u8> {
        let body = serde_json::to_string(self).expect("a manifest serializes");
        format!("{body}\nsig {}\n", key.sign(body.as_bytes())).into_bytes()
    }

    /// The same files, as far as bytes go.
    pub fn same_files(&self, other: &Body) -> bool {
        let strip = |b: &Body| {
            b.files
                .iter()
                .map(|f| (f.path.clone(), f.sha256.clone()))
                .collect::<Vec<_>>()
        };
        strip(self) == strip(other)
    }
}

/// Where `signer`'s manifest for `kind`/`key` is: one name per signing key,
/// so that a manifest someone without a trusted key wrote never takes the
/// place of a trusted writer's. Layout v2: v1 kept one manifest per key
/// (`outputs/<key>`), which an untrusted writer could occupy first; v1
/// manifests are not read (a miss; their blobs, named by content, are
/// shared with v2 and still used).
pub fn name(kind: &str, key: &str, signer: &PublicKey) -> String {
    let kind = match kind {
        super::OUTPUTS => "outputs",
        super::UNITS => "units",
        _ => "sysroots",
    };
    format!("v2/{kind}/{key}/{}", signer.fingerprint())
}
/// Check `text` as the manifest of `kind`/`key`: signed by a trusted key,
/// for this kind and key, with safe paths and well-formed digests. The error
/// says which check failed.
pub fn verify(text: &[u8], kind: &str, key: &str, trusted: &[PublicKey]) -> Result<Body> {
    let text = std::str::from_utf8(text).map_err(|_| anyhow::anyhow!("it is not UTF-8"))?;
    let mut lines = text.lines();
    let body_text = lines.next().unwrap_or_default();
    let sigs: Vec<(&str, &str)> = lines
        .filter_map(|l| l.strip_prefix("sig "))
        .filter_map(|s| s.trim().split_once(':'))
        .collect();
    if sigs.is_empty() {
        bail!("it is not signed");
    }
    let by = sigs.iter().find_map(|(name, sig)| {
        trusted
            .iter()
            .find(|k| k.name == *name && k.verify(body_text.as_bytes(), sig))
    });
    let Some(by) = by else {
        let names: Vec<&str> = sigs.iter().map(|(n, _)| *n).collect();
        bail!(
            "no trusted key signed it (signed by {}; XBUILD_CACHE_TRUSTED_KEYS names {})",
            names.join(", "),
            if trusted.is_empty() {
                "no key".to_string()
            } else {
                trusted
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    };
    let body: Body = serde_json::from_str(body_text)
        .map_err(|e| anyhow::anyhow!("its body (signed by {}) is not a manifest: {e}", by.name))?;
    if body.format != FORMAT {
        bail!("it is in format `{}`, not {FORMAT}", body.format);
    }
    if body.kind != kind || body.key != key {
        bail!(
            "it is signed for {} {}, not this {kind} {key}",
            body.kind,
            body.key
        );
    }
    for f in &body.files {
        if !safe_path(&f.path) || (kind == super::OUTPUTS && f.path.contains('/')) {
            bail!("it names an unsafe path `{}`", f.path);
        }
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("`{}` has no sha256", f.path);
        }
    }
    Ok(body)
}

/// A relative path of plain names: no `..`, no `.`, no root, no empty part.
pub fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> File {
        File {
            path: path.into(),
            sha256: "a".repeat(64),
            size: 1,
            package: None,
            kind: None,
        }
    }

    #[test]
    fn a_signed_manifest_verifies_only_for_its_key_and_trusted_signers() {
        let k = SecretKey::generate("ci").unwrap();
        let text = Body::new("outputs", "k1", vec![file("app")]).sign(&k);
        let trusted = [k.public()];
        let body = verify(&text, "outputs", "k1", &trusted).unwrap();
        assert_eq!(body.files[0].path, "app");
        let e = verify(&text, "outputs", "k2", &trusted).unwrap_err();
        assert!(e.to_string().contains("not this outputs k2"), "{e}");
        let other = SecretKey::generate("ci").unwrap();
        let e = verify(&text, "outputs", "k1", &[other.public()]).unwrap_err();
        assert!(e.to_string().contains("no trusted key signed it"), "{e}");
        // a body changed after signing
        let forged = String::from_utf8(text.clone())
            .unwrap()
            .replace("\"app\"", "\"evil\"");
        assert!(verify(forged.as_bytes(), "outputs", "k1", &trusted).is_err());
        let unsigned = String::from_utf8(text).unwrap();
        let unsigned = unsigned.lines().next().unwrap();
        let e = verify(unsigned.as_bytes(), "outputs", "k1", &trusted).unwrap_err();
        assert!(e.to_string().contains("not signed"), "{e}");
    }

    #[test]
    fn hostile_paths_are_refused_even_when_signed() {
        let k = SecretKey::generate("ci").unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../b", "a//b", "./a", ""] {
            let text = Body::new("sysroot", "s", vec![file(bad)]).sign(&k);
            assert!(
                verify(&text, "sysroot", "s", &[k.public()]).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(safe_path("lib/rustlib/x/lib/libstd.rlib"));
    }
}
