//! xbuild as the C compiler, archiver and linker of a target.
//!
//! cargo, rustc and the `cc` crate call a compiler by path, with no room for a
//! subcommand. So xbuild links itself into the cache under names that say the
//! role and the target (`xbuild-zig-cc--aarch64-unknown-linux-musl`), and
//! `main` checks `argv[0]` before anything else: such a call is translated to
//! `zig cc -target ... [-mcpu=...]` or `zig ar`, with the arguments zig
//! rejects rewritten.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::env;
use crate::targets::{self, Target};

const CC_PREFIX: &str = "xbuild-zig-cc--";
const AR_PREFIX: &str = "xbuild-zig-ar--";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Cc,
    Ar,
}

/// If this process was started through a wrapper name, run the wrapper and
/// return its exit code.
pub fn dispatch(argv0: &std::ffi::OsStr) -> Option<i32> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    let (role, triple) = if let Some(t) = name.strip_prefix(CC_PREFIX) {
        (Role::Cc, t)
    } else if let Some(t) = name.strip_prefix(AR_PREFIX) {
        (Role::Ar, t)
    } else {
        return None;
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    Some(match run(role, triple, args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xbuild (as {name}): {e:#}");
            1
        }
    })
}

fn run(role: Role, triple: &str, args: Vec<OsString>) -> Result<i32> {
    let target = targets::all()
        .iter()
        .find(|t| t.rust == triple)
        .with_context(|| format!("no target {triple} in the table"))?;
    let zig = env::var_os(env::XBUILD_ZIG).with_context(|| {
        format!(
            "{} is not set; this wrapper runs under xbuild only",
            env::XBUILD_ZIG
        )
    })?;
    let mut cmd = crate::process::Cmd::new(zig);
    // zig gets what the compiler driver needs from the caller's environment
    // (cargo's, already an explicit list), not less
    cmd.envs(env::passthrough_for_compiler());
    if let Some(cache) = env::var_os(env::XBUILD_ZIG_CACHE) {
        cmd.env("ZIG_GLOBAL_CACHE_DIR", &cache)
            .env("ZIG_LOCAL_CACHE_DIR", &cache);
    }
    match role {
        Role::Ar => {
            cmd.arg("ar").args(args);
        }
        Role::Cc => {
            cmd.arg("cc").args(cc_args(target, args));
        }
    }
    let status = cmd.status()?;
    Ok(status.code().unwrap_or(1))
}

/// The arguments for `zig cc`: the target first, then the caller's, rewritten
/// where zig would reject or misread them.
fn cc_args(target: &Target, args: Vec<OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec!["-target".into(), target.cc.zig_target.clone().into()];
    if let Some(cpu) = &target.cc.cpu {
        out.push(format!("-mcpu={cpu}").into());
    }
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            // The cc crate adds an LLVM triple; zig reads it as its own target
            // query and fails. The target is given by -target above.
            Some(a) if a.starts_with("--target=") => {}
            Some("-target") | Some("--target") => {
                args.next();
            }
            // zig ignores -static-pie (and makes an EXEC); -static -pie gives
            // a static-pie.
            Some("-static-pie") => {
                out.push("-static".into());
                out.push("-pie".into());
            }
            // target-specific arguments zig rejects (the target file says which)
            Some(a) if target.cc.drop_args.iter().any(|d| d == a) => {}
            _ => out.push(arg),
        }
    }
    out
}

/// The wrapper paths for a target, creating the links if needed.
pub struct Shims {
    pub cc: PathBuf,
    pub ar: PathBuf,
}

pub fn install_shims(dir: &Path, target: &Target) -> Result<Shims> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe().context("finding xbuild's own executable")?;
    let link = |prefix: &str| -> Result<PathBuf> {
        let path = dir.join(format!("{prefix}{}", target.rust));
        if fs::read_link(&path).ok().as_deref() != Some(exe.as_path()) {
            let tmp = dir.join(format!(".{prefix}{}.{}", target.rust, std::process::id()));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&exe, &tmp)
                .with_context(|| format!("linking {}", tmp.display()))?;
            fs::rename(&tmp, &path).with_context(|| format!("renaming into {}", path.display()))?;
        }
        Ok(path)
    };
    Ok(Shims {
        cc: link(CC_PREFIX)?,
        ar: link(AR_PREFIX)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(target: &str, given: &[&str]) -> Vec<String> {
        let t = targets::lookup(target).unwrap();
        cc_args(t, given.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn target_and_cpu_come_first() {
        assert_eq!(
            args("armv6l-unknown-linux-musleabihf", &["-c", "x.c"]),
            [
                "-target",
                "arm-linux-musleabihf",
                "-mcpu=arm1176jzf_s",
                "-c",
                "x.c"
            ]
        );
        assert_eq!(
            args("i686-unknown-linux-musl", &["-O2"]),
            ["-target", "x86-linux-musl", "-O2"]
        );
    }

    #[test]
    fn rejected_flags_are_rewritten() {
        assert_eq!(
            args(
                "x86_64-unknown-linux-musl",
                &[
                    "--target=x86_64-unknown-linux-musl",
                    "-static-pie",
                    "-o",
                    "a"
                ]
            ),
            ["-target", "x86_64-linux-musl", "-static", "-pie", "-o", "a"]
        );
        assert_eq!(
            args(
                "i686-unknown-linux-musl",
                &[
                    "-Wl,-melf_i386",
                    "-target",
                    "i686-unknown-linux-musl",
                    "x.o"
                ]
            ),
            ["-target", "x86-linux-musl", "x.o"]
        );
    }
}
