//! Stage "publish": outputs are staged next to the output directory and
//! replace it as a whole, so it never mixes two builds.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::verify::Artifact;
use crate::targets::Target;

/// The staging tree of a run: `<staging>/<rust-triple>/[tests/]<file>`.
pub struct Staging {
    dir: tempfile::TempDir,
    tests: bool,
}

impl Staging {
    /// A staging dir beside `out` (the same file system, for the rename).
    pub fn new(out: &Path, tests: bool) -> Result<Staging> {
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(".xbuild-staging-")
            .tempdir_in(parent)
            .with_context(|| format!("creating a staging dir in {}", parent.display()))?;
        Ok(Staging { dir, tests })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where a target's files go (created).
    pub fn dir_for(&self, target: &Target) -> Result<PathBuf> {
        let mut d = self.dir.path().join(&target.rust);
        if self.tests {
            d = d.join("tests");
        }
        fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        Ok(d)
    }

    /// Replace `out` by the staged tree: never a mix of old and new files.
    pub fn publish(self, out: &Path) -> Result<()> {
        let staged = self.dir.keep();
        let old = out.with_file_name(format!(
            ".{}.old-{}",
            out.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
            std::process::id()
        ));
        let had_old = out.exists();
        if had_old {
            fs::rename(out, &old)
                .with_context(|| format!("moving the previous {} aside", out.display()))?;
        }
        if let Err(e) = fs::rename(&staged, out) {
            if had_old {
                let _ = fs::rename(&old, out);
            }
            let _ = fs::remove_dir_all(&staged);
            return Err(e).with_context(|| format!("moving the outputs into {}", out.display()));
        }
        if had_old {
            fs::remove_dir_all(&old)
                .with_context(|| format!("removing the previous outputs {}", old.display()))?;
        }
        Ok(())
    }
}

/// `SHA256SUMS` in the format `sha256sum -c` reads, sorted by path.
pub fn write_sums(dir: &Path, artifacts: &[Artifact]) -> Result<()> {
    let sorted: BTreeMap<&str, &str> = artifacts
        .iter()
        .map(|a| (a.path.as_str(), a.sha256.as_str()))
        .collect();
    let text: String = sorted.iter().map(|(p, h)| format!("{h}  {p}\n")).collect();
    fs::write(dir.join("SHA256SUMS"), text).context("writing SHA256SUMS")
}
