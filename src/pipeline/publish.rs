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
        repair(out, parent)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{STAGING}{}.", std::process::id()))
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
    /// Its files reach the disk before the renames; a run killed between
    /// them is repaired by the next one ([`repair`]).
    pub fn publish(self, out: &Path) -> Result<()> {
        crate::safe_fs::sync_tree(self.dir.path())?;
        let staged = self.dir.keep();
        let old = out.with_file_name(format!("{}{}", old_prefix(out), std::process::id()));
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

/// Staging dirs are `.xbuild-staging.<pid>.<random>` beside the output dir.
const STAGING: &str = ".xbuild-staging.";

/// The previous output dir, moved aside while the new one is renamed in:
/// `.<name>.old-<pid>`.
fn old_prefix(out: &Path) -> String {
    format!(
        ".{}.old-",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    )
}

/// What a run killed while publishing left beside `out` (in `parent`): the
/// previous outputs moved aside come back when no output dir replaced them,
/// and are removed when one did; its staging dirs are removed. Only what
/// dead processes left is touched.
fn repair(out: &Path, parent: &Path) -> Result<()> {
    let old = old_prefix(out);
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(());
    };
    let dead = |pid: &str| {
        pid.parse::<libc::pid_t>()
            .is_ok_and(|p| !crate::cache::pid_alive(p))
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if let Some(pid) = name.strip_prefix(&old)
            && dead(pid)
        {
            if fs::symlink_metadata(out).is_err() {
                fs::rename(&path, out).with_context(|| {
                    format!("restoring {} to {}", path.display(), out.display())
                })?;
                crate::ui::note(&format!(
                    "restored the previous outputs in {}: an xbuild was killed while replacing them",
                    out.display()
                ));
            } else {
                fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        } else if let Some(rest) = name.strip_prefix(STAGING)
            && rest.split('.').next().is_some_and(dead)
        {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has now: one that ran and ended.
    fn dead_pid() -> u32 {
        let mut c = crate::process::Cmd::new("/bin/true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    #[test]
    fn a_run_killed_between_the_renames_is_repaired_by_the_next() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("xbuild");
        let pid = dead_pid();
        // killed after moving the previous outputs aside: they come back
        let aside = root.path().join(format!(".xbuild.old-{pid}"));
        fs::create_dir_all(&aside).unwrap();
        fs::write(aside.join("SHA256SUMS"), "previous").unwrap();
        let orphan = root.path().join(format!("{STAGING}{pid}.abc"));
        fs::create_dir_all(&orphan).unwrap();
        // a live run's are left alone
        let live = root
            .path()
            .join(format!("{STAGING}{}.live", std::process::id()));
        fs::create_dir_all(&live).unwrap();
        let staging = Staging::new(&out, false).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("SHA256SUMS")).unwrap(),
            "previous"
        );
        assert!(!aside.exists() && !orphan.exists() && live.exists());
        // killed after the new outputs were in place: the old copy goes
        fs::write(staging.path().join("SHA256SUMS"), "new").unwrap();
        staging.publish(&out).unwrap();
        fs::create_dir_all(&aside).unwrap();
        let _again = Staging::new(&out, false).unwrap();
        assert_eq!(fs::read_to_string(out.join("SHA256SUMS")).unwrap(), "new");
        assert!(!aside.exists());
    }
}
