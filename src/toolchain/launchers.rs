//! The launchers of the pinned rustc, cargo and rustdoc: small `sh` scripts
//! in `<rust component>/xbuild-bin/` that start the real binary through the
//! host's program loader with `--library-path` set to the component's own
//! library directories.
//!
//! This is how the toolchain loads nothing from the host but glibc and its
//! loader, without `LD_LIBRARY_PATH`: that variable would be inherited by
//! everything cargo starts (build scripts, the host's `cmake` or `perl`), and
//! the pinned Debian 12 libraries would then replace a newer host's own
//! (`libstdc++` without the symbol versions a Debian 13 `cmake` needs).
//! `--library-path` applies to the one process. rustc finds its sysroot from
//! its own shared library, not from `/proc/self/exe`, so starting it through
//! the loader changes nothing for it; cargo is told its own path with `CARGO`.
//! The scripts find the component relative to their own path, so a sandbox
//! may mount the component anywhere. In a sandbox with the build root
//! (`root`), the loader and `/bin/sh` they name are the root's. Outside a
//! sandbox, xbuild names the root's loader and libraries in
//! `XBUILD_ROOT_LOADER` and `XBUILD_ROOT_LIBRARY_PATH`, and the launchers use
//! them instead of the host's: the host's glibc may be older than the one the
//! toolchain was linked against, or absent.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::manifest::{RustLayout, ToolsLayout};
use crate::elf;

/// The launchers' directory inside the rust component.
pub const DIR: &str = "xbuild-bin";
/// Part of the component's pin hash: a new launcher is a new install.
pub const VERSION: &str = "launcher-2";

/// Write the launchers into the unpacked component at `root`.
pub fn write(layout: &RustLayout, root: &Path) -> Result<()> {
    // Without `library-path` the launchers only exec the program.
    let loader = if layout.library_path.is_empty() {
        None
    } else {
        let rustc = root.join(&layout.rustc);
        let bytes = fs::read(&rustc).with_context(|| format!("reading {}", rustc.display()))?;
        let info = elf::inspect(&bytes).with_context(|| format!("reading {}", rustc.display()))?;
        let Some(loader) = info.interpreter else {
            bail!(
                "{} has no program interpreter: a statically linked rustc needs no `library-path`",
                layout.rustc
            );
        };
        Some(loader)
    };
    let dir = root.join(DIR);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let rustdoc = Path::new(&layout.rustc).with_file_name("rustdoc");
    let programs = [
        ("rustc", layout.rustc.clone()),
        ("cargo", layout.cargo.clone()),
        ("rustdoc", rustdoc.to_string_lossy().into_owned()),
    ];
    for (name, rel) in programs {
        if !root.join(&rel).is_file() {
            continue;
        }
        let path = dir.join(name);
        fs::write(&path, script(loader.as_deref(), &layout.library_path, &rel))
            .with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

/// Launchers for every program in the build tools' `bin-dirs`. They give
/// the program its real path as `argv[0]` (CMake finds its modules from it).
pub fn write_tools(layout: &ToolsLayout, root: &Path) -> Result<()> {
    let dir = root.join(DIR);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for bin in &layout.bin_dirs {
        let entries = fs::read_dir(root.join(bin))
            .with_context(|| format!("reading {}", root.join(bin).display()))?;
        for e in entries.flatten() {
            let path = e.path();
            let is_exe = e.file_type().is_ok_and(|t| t.is_file())
                && e.metadata()
                    .is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
            let Ok(bytes) = fs::read(&path) else { continue };
            if !is_exe || !bytes.starts_with(b"\x7fELF") {
                continue;
            }
            let loader = if layout.library_path.is_empty() {
                None
            } else {
                elf::inspect(&bytes)
                    .with_context(|| format!("reading {}", path.display()))?
                    .interpreter
            };
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{bin}/{name}");
            let text = script(loader.as_deref(), &layout.library_path, &rel).replace(
                "--argv0 \"$0\"",
                &format!("--argv0 \"$d/{}\"", quote_inner(&rel)),
            );
            let launcher = dir.join(&name);
            fs::write(&launcher, text)
                .with_context(|| format!("writing {}", launcher.display()))?;
            fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

fn script(loader: Option<&str>, library_path: &[String], program: &str) -> String {
    let Some(loader) = loader else {
        return format!(
            "#!/bin/sh\n# Written by xbuild: the pinned {program}.\nd=\"${{0%/*}}/..\"\nexec \"$d/{}\" \"$@\"\n",
            quote_inner(program)
        );
    };
    let libs: Vec<String> = library_path
        .iter()
        .map(|p| format!("$d/{}", quote_inner(p)))
        .collect();
    format!(
        "#!/bin/sh\n\
         # Written by xbuild: the pinned {program} with the toolchain's own shared\n\
         # libraries, through the system's loader (nothing it starts inherits them):\n\
         # the build root's where xbuild names it, else the one at {loader}.\n\
         d=\"${{0%/*}}/..\"\n\
         exec \"${{{env_loader}:-{loader_inner}}}\" --library-path \"{libs}${{{env_libs}:+:${env_libs}}}\" --argv0 \"$0\" \"$d/{prog}\" \"$@\"\n",
        loader = quote_word(loader),
        loader_inner = quote_inner(loader),
        env_loader = crate::env::XBUILD_ROOT_LOADER,
        env_libs = crate::env::XBUILD_ROOT_LIBRARY_PATH,
        libs = libs.join(":"),
        prog = quote_inner(program),
    )
}

/// Inside double quotes: escape what the shell would expand.
fn quote_inner(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '"' | '\\' | '$' | '`' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

fn quote_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_the_loader_the_libraries_and_the_program() {
        let s = script(
            Some("/lib64/ld-linux-x86-64.so.2"),
            &[
                "usr/lib/x86_64-linux-gnu".into(),
                "lib/x86_64-linux-gnu".into(),
            ],
            "usr/bin/rustc",
        );
        assert!(s.starts_with("#!/bin/sh\n"), "{s}");
        assert!(
            s.contains(
                "exec \"${XBUILD_ROOT_LOADER:-/lib64/ld-linux-x86-64.so.2}\" --library-path \"$d/usr/lib/x86_64-linux-gnu:$d/lib/x86_64-linux-gnu${XBUILD_ROOT_LIBRARY_PATH:+:$XBUILD_ROOT_LIBRARY_PATH}\" --argv0 \"$0\" \"$d/usr/bin/rustc\" \"$@\""
            ),
            "{s}"
        );
        assert!(script(Some("/l"), &["a$b".into()], "p`q").contains("--library-path \"$d/a\\$b${"));
        assert!(script(None, &[], "usr/bin/cargo").contains("exec \"$d/usr/bin/cargo\" \"$@\""));
    }

    /// The launcher starts its program through the loader it was written
    /// with, or through the build root's when xbuild names one, with the
    /// root's libraries after the component's.
    #[test]
    fn the_launcher_uses_the_roots_loader_where_xbuild_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let loader = |name: &str| {
            let path = dir.path().join(name);
            fs::write(&path, format!("#!/bin/sh\necho {name} \"$@\"\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            path.display().to_string()
        };
        let host = loader("host-ld");
        let root = loader("root ld");
        let bin = dir.path().join("c/xbuild-bin");
        fs::create_dir_all(&bin).unwrap();
        let launcher = bin.join("rustc");
        fs::write(&launcher, script(Some(&host), &["lib".into()], "bin/rustc")).unwrap();
        fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755)).unwrap();
        let run = |env: &[(&str, &str)]| {
            // (an empty environment, but what the test gives)
            let out = crate::process::Cmd::new(&launcher)
                .arg("-vV")
                .envs(env.iter().copied())
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        let d = format!("{}/..", bin.display());
        assert_eq!(
            run(&[]),
            format!(
                "host-ld --library-path {d}/lib --argv0 {} {d}/bin/rustc -vV\n",
                launcher.display()
            )
        );
        assert_eq!(
            run(&[
                (crate::env::XBUILD_ROOT_LOADER, &root),
                (crate::env::XBUILD_ROOT_LIBRARY_PATH, "/r/usr/lib:/r/lib"),
            ]),
            format!(
                "root ld --library-path {d}/lib:/r/usr/lib:/r/lib --argv0 {} {d}/bin/rustc -vV\n",
                launcher.display()
            )
        );
    }
}
