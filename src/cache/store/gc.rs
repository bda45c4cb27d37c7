//! Trimming a `file://` store (`xbuild cache gc --store`): compiled units
//! entries that no build has replaced for a while go, with the blobs only
//! they named. Outputs and std manifests, and blobs no manifest names
//! (toolchain artifacts: the store is a mirror too), are left alone. An S3
//! store is trimmed by the service's lifecycle rules (docs/STORE.md).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use super::manifest::Body;

/// What a trim removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub manifests: usize,
    pub blobs: usize,
    pub bytes: u64,
}

/// The manifest files under `dir` (`<kind>/<key>/<signer>`, any depth).
fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => manifests(&e.path(), out),
            Ok(t) if t.is_file() => out.push(e.path()),
            _ => {}
        }
    }
}

/// The blobs a manifest file names (its body, unverified: a manifest kept
/// for nothing only keeps its blobs).
fn blobs_of(path: &Path) -> BTreeSet<String> {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .and_then(|l| serde_json::from_str::<Body>(l).ok())
        })
        .map(|b| b.files.into_iter().map(|f| f.sha256).collect())
        .unwrap_or_default()
}

/// Remove the units manifests of the store in `root` not written for
/// `older_than`, and the blobs that only they named.
pub fn trim_file_store(root: &Path, older_than: Duration) -> Result<Trimmed> {
    let cutoff = SystemTime::now()
        .checked_sub(older_than)
        .context("--older-than is too long")?;
    let mut units = Vec::new();
    manifests(&root.join("v2/units"), &mut units);
    let mut gone = BTreeSet::new();
    let mut trimmed = Trimmed::default();
    for m in units {
        let old = fs::metadata(&m)
            .and_then(|md| md.modified())
            .is_ok_and(|t| t < cutoff);
        if old {
            gone.extend(blobs_of(&m));
            fs::remove_file(&m).with_context(|| format!("removing {}", m.display()))?;
            if let Some(dir) = m.parent() {
                let _ = fs::remove_dir(dir); // when it was the key's last manifest
            }
            trimmed.manifests += 1;
        }
    }
    // what any remaining manifest names stays (v2, and v1's `outputs/`, `sysroots/`)
    let mut remaining = Vec::new();
    for dir in ["v2", "outputs", "sysroots"] {
        manifests(&root.join(dir), &mut remaining);
    }
    for m in remaining {
        for sha in blobs_of(&m) {
            gone.remove(&sha);
        }
    }
    for sha in gone {
        let blob = root.join("blobs").join(&sha);
        if let Ok(md) = fs::symlink_metadata(&blob) {
            fs::remove_file(&blob).with_context(|| format!("removing {}", blob.display()))?;
            trimmed.blobs += 1;
            trimmed.bytes += md.len();
        }
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::store::manifest::File;
    use crate::cache::store::sign::SecretKey;

    fn manifest(root: &Path, rel: &str, kind: &str, blobs: &[&str], age: Duration) {
        let files = blobs
            .iter()
            .map(|b| File {
                path: format!("{b}.tar.zst"),
                sha256: b.to_string(),
                size: 1,
                package: None,
                kind: None,
            })
            .collect();
        let key = SecretKey::generate("t").unwrap();
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, Body::new(kind, "k", files).sign(&key)).unwrap();
        let f = fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
        for b in blobs {
            fs::create_dir_all(root.join("blobs")).unwrap();
            fs::write(root.join("blobs").join(b), b).unwrap();
        }
    }

    #[test]
    fn old_units_entries_go_with_the_blobs_only_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let day = Duration::from_secs(86400);
        let (a, b, c, d) = (
            "a".repeat(64),
            "b".repeat(64),
            "c".repeat(64),
            "d".repeat(64),
        );
        manifest(r, "v2/units/old/s1", "units", &[&a, &b], 40 * day);
        manifest(r, "v2/units/new/s1", "units", &[&b, &c], day);
        manifest(r, "v2/outputs/o/s1", "outputs", &[&a], 400 * day);
        // a toolchain artifact: no manifest names it
        fs::write(r.join("blobs").join(&d), "artifact").unwrap();
        let t = trim_file_store(r, 30 * day).unwrap();
        assert_eq!(t.manifests, 1);
        assert!(!r.join("v2/units/old").exists());
        assert!(r.join("v2/units/new/s1").exists());
        assert!(r.join("v2/outputs/o/s1").exists());
        // a: named by outputs; b: by the newer entry; c, d: untouched
        for kept in [&a, &b, &c, &d] {
            assert!(r.join("blobs").join(kept).exists(), "{kept}");
        }
        assert_eq!(t.blobs, 0);
        // and once the newer entry is old too, its blobs go, outputs' stay
        let t = trim_file_store(r, Duration::from_secs(3600)).unwrap();
        assert_eq!(
            t,
            Trimmed {
                manifests: 1,
                blobs: 2,
                bytes: 128
            }
        );
        assert!(r.join("blobs").join(&a).exists());
        assert!(!r.join("blobs").join(&b).exists() && !r.join("blobs").join(&c).exists());
        assert!(r.join("blobs").join(&d).exists());
    }
}
