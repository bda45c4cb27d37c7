//! Launchers for integration tests under qemu.
//!
//! Integration tests start the package's binaries by path
//! (`CARGO_BIN_EXE_<name>`). Under qemu-user such an exec would ask the host
//! kernel to run a foreign binary, so the binary at that path is replaced by
//! a script that runs the real one (kept in `.xbuild-real/` next to it, under
//! its own name) under the same qemu.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

const LAUNCHER_TAG: &str = "# xbuild launcher";

/// Replace the binary at `path` (seen by the build as `seen_as`) by a
/// launcher that runs it with `runner`.
pub fn install(path: &Path, seen_as: &Path, runner: &[OsString]) -> Result<()> {
    // The real binary keeps its file name (programs print their argv[0]),
    // in a directory of its own next to the launcher.
    let name = path
        .file_name()
        .context("a binary path without a file name")?;
    let beside = |p: &Path| p.with_file_name(".xbuild-real").join(name);
    let (real, real_seen) = (beside(path), beside(seen_as));
    let current = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if current.starts_with(b"\x7fELF") {
        if let Some(dir) = real.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(&real, &current).with_context(|| format!("writing {}", real.display()))?;
        fs::set_permissions(&real, fs::Permissions::from_mode(0o755))?;
    }
    let quote = |s: &OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let mut line = String::from("exec");
    for part in runner {
        line.push(' ');
        line.push_str(&quote(part));
    }
    line.push(' ');
    line.push_str(&quote(real_seen.as_os_str()));
    let script = format!("#!/bin/sh\n{LAUNCHER_TAG}\n{line} \"$@\"\n");
    let tmp = path.with_extension("xbuild-launcher.tmp");
    fs::write(&tmp, script).with_context(|| format!("writing {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
