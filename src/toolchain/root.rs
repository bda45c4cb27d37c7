//! The build root: the pinned userland sandboxed builds see instead of the
//! host's (`[build-root]` in toolchains.toml). Its packages are unpacked as
//! one merged-/usr file system (`unpack::unpack_root`); no maintainer
//! script runs, so [`finish`] does what theirs would have done for a build:
//! the top-level links of a merged `/usr`, the alternatives and diversions
//! the pins list as `links`, and a small generated `/etc` (users, groups,
//! hosts, name service). [`check`] then runs every program the pins list.
//!
//! The sandbox binds its `usr` and `etc` read-only and recreates its links
//! (`sandbox::bwrap::System::Root`); nothing else of it, and nothing of the
//! host's system directories, is seen.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path};

use anyhow::{Context, Result, bail, ensure};

use super::manifest::RootLayout;
use crate::unpack::MERGED;

/// Part of the component's pin hash: what [`finish`] writes is part of
/// what gets installed.
pub const VERSION: &str = "root-1";

/// What `/etc` holds besides what the packages unpacked: file, contents.
const ETC: &[(&str, &str)] = &[
    (
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\n\
         build:x:1000:1000:xbuild:/tmp:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    ),
    ("group", "root:x:0:\nbuild:x:1000:\nnogroup:x:65534:\n"),
    (
        "hosts",
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    ),
    (
        "nsswitch.conf",
        "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n\
         networks: files\nprotocols: files\nservices: files\n",
    ),
    ("hostname", "xbuild\n"),
    // mount points for what a sandbox with network gets of the host's
    ("resolv.conf", ""),
    ("gai.conf", ""),
    ("ca-certificates.conf", ""),
];

/// Directories of `/etc` the host's are mounted over (with network).
const ETC_DIRS: &[&str] = &["ssl", "pki", "ca-certificates"];

/// Make the unpacked root at `dir` whole (see the module's doc).
pub fn finish(layout: &RootLayout, dir: &Path) -> Result<()> {
    for top in MERGED {
        let merged = dir.join("usr").join(top);
        let at = dir.join(top);
        if merged.is_dir() && fs::symlink_metadata(&at).is_err() {
            symlink(Path::new("usr").join(top), &at)
                .with_context(|| format!("linking {}", at.display()))?;
        }
    }
    for (path, target) in &layout.links {
        let rel = inside(path)?;
        let at = dir.join(crate::unpack::merged_usr(rel));
        ensure!(
            !Path::new(target).is_absolute(),
            "[build-root] links: `{path}` -> `{target}`: the target must be relative"
        );
        if let Ok(m) = fs::symlink_metadata(&at) {
            ensure!(
                !m.is_dir(),
                "[build-root] links: `{path}` is a directory in the root"
            );
            fs::remove_file(&at).with_context(|| format!("replacing {}", at.display()))?;
        }
        let resolved = at.parent().unwrap_or(dir).join(target);
        if !resolved.exists() {
            bail!(
                "[build-root] links: `{path}` -> `{target}` names nothing the root's packages hold"
            );
        }
        symlink(target, &at).with_context(|| format!("linking {}", at.display()))?;
    }
    let etc = dir.join("etc");
    fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
    for (name, text) in ETC {
        let path = etc.join(name);
        let _ = fs::remove_file(&path);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    for name in ETC_DIRS {
        let path = etc.join(name);
        if fs::symlink_metadata(&path).is_err() {
            fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        }
    }
    Ok(())
}

/// `path` as a relative path inside the root, refusing `..`.
pub(super) fn inside(path: &str) -> Result<&Path> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.as_os_str().is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!("[build-root] links: `{path}` is not a path inside the root");
    }
    Ok(rel)
}

/// The root's bubblewrap and how to start it (through the root's loader),
/// when the pins name them; `dir` is the installed root.
pub fn pinned_bwrap(layout: &RootLayout, dir: &Path) -> Option<crate::sandbox::bwrap::PinnedBwrap> {
    let loader = dir.join(inside(layout.loader.as_deref()?).ok()?);
    let bwrap = dir.join(inside(layout.bwrap.as_deref()?).ok()?);
    let library_path = layout
        .library_path
        .iter()
        .filter_map(|p| inside(p).ok().map(|p| dir.join(p)))
        .collect();
    Some(crate::sandbox::bwrap::PinnedBwrap {
        loader,
        library_path,
        bwrap,
        root: dir.to_path_buf(),
    })
}

/// Run every program the pins list in a sandbox whose system is the root at
/// `dir`; an error names the first that fails and what it printed.
pub fn check(layout: &RootLayout, dir: &Path) -> Result<()> {
    let system = crate::sandbox::bwrap::System::Root(dir.to_path_buf());
    for line in &layout.programs {
        let mut words = line.split_whitespace();
        let Some(program) = words.next() else {
            continue;
        };
        let mut cmd = crate::sandbox::Sandbox::new(&system, false).command(program.as_ref());
        cmd.env("PATH", crate::sandbox::SYSTEM_PATH)
            .env("LC_ALL", "C")
            .args(words);
        cmd.output().with_context(|| {
            format!(
                "the build root's `{line}` does not run: check [build-root]'s artifacts and links"
            )
        })?;
    }
    Ok(())
}

/// xbuild runs in the root as the targets' compiler and linker: refuse,
/// before anything is built, an xbuild linked against a newer glibc than
/// the root's (built on a newer host), whose every C compile would fail.
pub fn check_xbuild_runs_in(layout: &RootLayout) -> Result<()> {
    let exe = Path::new("/proc/self/exe");
    let Ok(bytes) = fs::read(exe) else {
        return Ok(());
    };
    let Some(needed) = crate::elf::glibc_needed(&bytes)? else {
        return Ok(());
    };
    let root = super::glibc::parse(&layout.glibc)
        .with_context(|| format!("[build-root] glibc = \"{}\" is not a version", layout.glibc))?;
    ensure!(
        needed <= root,
        "this xbuild needs glibc {}.{} (it was built on a host with a newer glibc than the build \
         root's {}), and it runs in the root as the targets' C compiler and linker. Install the \
         static xbuild (build xbuild with `xbuild --release`, target x86_64-unknown-linux-musl), \
         or build xbuild where glibc is {} or older",
        needed.0,
        needed.1,
        layout.glibc,
        layout.glibc
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(links: &[(&str, &str)]) -> RootLayout {
        RootLayout {
            glibc: "2.36".into(),
            links: links
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            programs: vec![],
            loader: None,
            library_path: vec![],
            bwrap: None,
            faketime: None,
        }
    }

    #[test]
    fn finishing_links_the_merged_usr_the_alternatives_and_writes_etc() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["usr/bin", "usr/lib", "usr/lib64", "etc"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("usr/bin/gawk"), "").unwrap();
        // an alternative a package shipped as a file is replaced
        fs::write(root.join("usr/bin/awk"), "old").unwrap();
        finish(
            &layout(&[("/usr/bin/awk", "gawk"), ("bin/nawk", "gawk")]),
            root,
        )
        .unwrap();
        assert_eq!(
            fs::read_link(root.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert_eq!(
            fs::read_link(root.join("lib64")).unwrap(),
            Path::new("usr/lib64")
        );
        assert!(
            fs::symlink_metadata(root.join("sbin")).is_err(),
            "no usr/sbin, no link"
        );
        assert_eq!(
            fs::read_link(root.join("usr/bin/awk")).unwrap(),
            Path::new("gawk")
        );
        // `bin/...` is where the merged /usr puts it
        assert_eq!(
            fs::read_link(root.join("usr/bin/nawk")).unwrap(),
            Path::new("gawk")
        );
        let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
        let uid = crate::sandbox::bwrap::BUILD_UID;
        assert!(passwd.contains(&format!("build:x:{uid}:{uid}:")));
        assert!(root.join("etc/resolv.conf").is_file() && root.join("etc/ssl").is_dir());
    }

    #[test]
    fn links_that_leave_the_root_or_name_nothing_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        for (path, target, says) in [
            ("../x", "y", "not a path inside the root"),
            ("usr/bin/awk", "/usr/bin/gawk", "must be relative"),
            ("usr/bin/awk", "gawk", "names nothing"),
        ] {
            let err = finish(&layout(&[(path, target)]), dir.path()).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{path}: {err:#}");
        }
    }
}
