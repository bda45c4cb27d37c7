//! Launchers for integration tests under qemu.
//!
//! Integration tests start the package's binaries by path
//! (`CARGO_BIN_EXE_<name>`). Under qemu-user such an exec would ask the host
//! kernel to run a foreign binary, so the binary at that path is replaced by
//! a script that runs the real one (kept in `.xbuild-real/` next to it, under
//! its own name) under the same qemu.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::safe_fs;

const LAUNCHER_TAG: &str = "# xbuild launcher";

/// Replace the binary at `path` (under `root`, the target dir the build
/// wrote; seen by the build as `seen_as`) by a launcher that runs it with
/// `runner`. Nothing is read or written through a link the build planted:
/// such a link fails the install.
pub fn install(root: &Path, path: &Path, seen_as: &Path, runner: &[OsString]) -> Result<()> {
    // The real binary keeps its file name (programs print their argv[0]),
    // in a directory of its own next to the launcher.
    let name = path
        .file_name()
        .context("a binary path without a file name")?;
    let beside = |p: &Path| p.with_file_name(".xbuild-real").join(name);
    let (real, real_seen) = (beside(path), beside(seen_as));
    safe_fs::no_links_below(root, path)?;
    let current = read_no_links(path)?;
    if current.starts_with(b"\x7fELF") {
        let dir = real.parent().context("a launcher path without a parent")?;
        safe_fs::ensure_dir_no_links(dir)?;
        let tmp = real.with_extension("xbuild-tmp");
        write_new(&tmp, &current)?;
        fs::rename(&tmp, &real).with_context(|| format!("replacing {}", real.display()))?;
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
    write_new(&tmp, script.as_bytes())?;
    // rename replaces a link planted at `path` itself, never writes through it
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

fn read_no_links(path: &Path) -> Result<Vec<u8>> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// A new executable file: whatever is at `path` (a file or link the build
/// left) is removed first, and the new one is created without following links.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o755)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launcher_replaces_the_binary_and_never_writes_through_planted_links() {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("debug");
        fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("app");
        fs::write(&exe, b"\x7fELF fake").unwrap();
        let runner = vec![OsString::from("/q/qemu-aarch64")];
        install(root.path(), &exe, Path::new("/v/debug/app"), &runner).unwrap();
        let script = fs::read_to_string(&exe).unwrap();
        assert!(
            script.contains("exec '/q/qemu-aarch64' '/v/debug/.xbuild-real/app' \"$@\""),
            "{script}"
        );
        assert_eq!(
            fs::read(bin.join(".xbuild-real/app")).unwrap(),
            b"\x7fELF fake"
        );
        // a build that planted `.xbuild-real` toward another directory
        let victim = tempfile::tempdir().unwrap();
        let other = bin.join("tool");
        fs::write(&other, b"\x7fELF tool").unwrap();
        fs::remove_dir_all(bin.join(".xbuild-real")).unwrap();
        std::os::unix::fs::symlink(victim.path(), bin.join(".xbuild-real")).unwrap();
        let e = install(root.path(), &other, Path::new("/v/debug/tool"), &runner).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e:#}");
        assert_eq!(fs::read_dir(victim.path()).unwrap().count(), 0);
        // a binary path through a planted directory link
        std::os::unix::fs::symlink(&bin, root.path().join("linked")).unwrap();
        let e = install(
            root.path(),
            &root.path().join("linked/tool"),
            Path::new("/v/linked/tool"),
            &runner,
        )
        .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e:#}");
    }
}
