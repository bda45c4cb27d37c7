//! zig as the host's C compiler and linker: what links build scripts and
//! proc macros, against the build root's glibc (or, without a build root,
//! the host's, where the host has no `cc`).

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{link_to_self, zig_command};
use crate::cache::Cache;
use crate::env;

/// The wrapper's name; the suffix is the glibc version to link against.
pub(super) const HOST_CC_PREFIX: &str = "xbuild-zig-host-cc--";

/// `zig cc` for the host: glibc `version` (the build root's, or this
/// machine's), so that build scripts and proc macros link without a host C
/// toolchain. Outside a sandbox, where xbuild names the build root's loader,
/// what it links asks for that loader and the root's libraries: a build
/// script then runs on the glibc it was linked against, whatever the host's.
pub(super) fn host_cc(version: &str, args: Vec<OsString>) -> Result<i32> {
    let (_, mut cmd) = zig_command()?;
    let link = super::is_link(&args);
    // zig's name for the host: `x86_64-linux-gnu`
    let zig_host = super::HOST.replace("-unknown", "");
    cmd.args(["cc", "-target", &format!("{zig_host}.{version}")])
        .args(super::prefix_map_args(env::var_os(env::XBUILD_PREFIX_MAP)))
        .args(args);
    if link {
        cmd.args(root_link_args(
            env::var_os(env::XBUILD_ROOT_LOADER),
            env::var_os(env::XBUILD_ROOT_LIBRARY_PATH),
        ));
    }
    Ok(cmd.status()?.code().unwrap_or(1))
}

/// The linker arguments that make a host program use the build root's
/// `loader` and `libs` (`:`-separated) instead of the host's.
fn root_link_args(loader: Option<OsString>, libs: Option<OsString>) -> Vec<OsString> {
    let Some(loader) = loader else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut arg = OsString::from("-Wl,--dynamic-linker=");
    arg.push(loader);
    out.push(arg);
    for dir in libs.iter().flat_map(|l| std::env::split_paths(l)) {
        let mut arg = OsString::from("-Wl,-rpath,");
        arg.push(dir);
        out.push(arg);
    }
    out
}

/// zig as the host's linker and C compiler, linking against glibc `root`
/// (the build root's): the link to xbuild that runs it. Without a build
/// root, only when the host has no C compiler (`cc` on PATH), against the
/// host's glibc; `None` when it has one (it stays the host's, as cargo
/// expects).
pub fn host_linker(cache: &Cache, root: Option<&str>) -> Result<Option<PathBuf>> {
    let version = match root {
        Some(v) => v.to_string(),
        None if which::which("cc").is_ok() => return Ok(None),
        None => match crate::toolchain::glibc::host_version() {
            Some(v) => v,
            None => return Ok(None),
        },
    };
    let version: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let dir = cache.shims();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    link_to_self(cache, &dir.join(format!("{HOST_CC_PREFIX}{version}"))).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_links_ask_for_the_roots_loader_only_when_xbuild_names_it() {
        assert!(root_link_args(None, Some("/r/lib".into())).is_empty());
        assert_eq!(
            root_link_args(Some("/r/ld.so".into()), Some("/r/usr/lib:/r/lib".into())),
            [
                "-Wl,--dynamic-linker=/r/ld.so",
                "-Wl,-rpath,/r/usr/lib",
                "-Wl,-rpath,/r/lib"
            ]
            .map(OsString::from)
        );
    }
}
