//! xbuild as the C compiler, archiver and linker of a target.
//!
//! cargo, rustc and the `cc` crate call a compiler by path, with no room for a
//! subcommand. So xbuild links itself into the cache under names that say the
//! role and the target (`xbuild-zig-cc--aarch64-unknown-linux-musl`), and
//! `main` checks `argv[0]` before anything else: such a call is translated to
//! `zig cc -target ... [-mcpu=...]` or `zig ar`, with the arguments zig
//! rejects rewritten (`flags`). A link also gets xbuild's small runtime
//! archive (`atomic.c`: the libatomic entry points zig's compiler-rt lacks).

mod cxx;
mod flags;
mod host;
mod rt;

pub use host::host_linker;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use self::cxx::{MARKERS, prelink_args, read_marker};
use self::flags::Flag;
use self::rt::{ensure_rt, rt_archive};
use crate::cache::Cache;
use crate::env;
use crate::process::Cmd;
use crate::targets::{self, Target};

const CC_PREFIX: &str = "xbuild-zig-cc--";
const CXX_PREFIX: &str = "xbuild-zig-c++--";
const AR_PREFIX: &str = "xbuild-zig-ar--";
const RANLIB_PREFIX: &str = "xbuild-zig-ranlib--";
/// zig's lld, for what asks for a linker by itself (libtool's `ld` check).
const LD_PREFIX: &str = "xbuild-zig-ld--";
/// The Rust triple of the machine xbuild runs on: a glibc Linux of xbuild's
/// own CPU (the pins say which CPU they are for, and another is refused).
/// Hosts are x86_64 (the built-in pins) or aarch64 (pins of its own).
#[cfg(not(target_arch = "aarch64"))]
pub const HOST: &str = "x86_64-unknown-linux-gnu";
#[cfg(target_arch = "aarch64")]
pub const HOST: &str = "aarch64-unknown-linux-gnu";
/// xbuild as `RUSTC_WRAPPER` while std is built (see `std_rustc_wrapper`).
const STD_WRAPPER: &str = "xbuild-rustc-wrapper--std";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Cc,
    Cxx,
    Ar,
    Ranlib,
    Ld,
}

/// If this process was started through a wrapper name, run the wrapper and
/// return its exit code.
pub fn dispatch(argv0: &std::ffi::OsStr) -> Option<i32> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    if name == STD_WRAPPER {
        return Some(std_rustc_wrapper(std::env::args_os().skip(1).collect()));
    }
    let (role, triple) = if let Some(t) = name.strip_prefix(CC_PREFIX) {
        (Role::Cc, t)
    } else if let Some(t) = name.strip_prefix(CXX_PREFIX) {
        (Role::Cxx, t)
    } else if let Some(t) = name.strip_prefix(AR_PREFIX) {
        (Role::Ar, t)
    } else if let Some(t) = name.strip_prefix(RANLIB_PREFIX) {
        (Role::Ranlib, t)
    } else if let Some(t) = name.strip_prefix(LD_PREFIX) {
        (Role::Ld, t)
    } else if name.starts_with(host::HOST_CC_PREFIX) {
        (Role::Cc, HOST)
    } else {
        return None;
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if let Some(glibc) = name.strip_prefix(host::HOST_CC_PREFIX) {
        return Some(match host::host_cc(glibc, args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("xbuild (as {name}): {e:#}");
                1
            }
        });
    }
    Some(match run(role, triple, args, argv0) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xbuild (as {name}): {e:#}");
            1
        }
    })
}

fn run(role: Role, triple: &str, args: Vec<OsString>, argv0: &std::ffi::OsStr) -> Result<i32> {
    let target = targets::all()
        .iter()
        .find(|t| t.rust == triple)
        .with_context(|| format!("no target {triple} in the table"))?;
    let (zig, mut cmd) = zig_command()?;
    match role {
        Role::Ar => {
            cmd.arg("ar").args(args);
        }
        Role::Ranlib => {
            cmd.arg("ranlib").args(args);
        }
        Role::Ld => {
            cmd.arg("ld.lld").args(args);
        }
        Role::Cc | Role::Cxx => {
            let mut zig_args = match cc_args(target, args) {
                Ok(a) => a,
                Err(why) => {
                    eprintln!("xbuild (as the C compiler for {triple}): {why}");
                    return Ok(1);
                }
            };
            let mut driver = if role == Role::Cxx { "c++" } else { "cc" };
            if is_link(&zig_args) {
                // A C++ standard library asked for by name (`cc` makes rustc
                // pass -lstdc++ for a crate that compiles C++) is zig's libc++
                // and libc++abi, linked statically by its C++ driver.
                if take_cxx_stdlib(&mut zig_args) {
                    driver = "c++";
                }
                if driver == "c++"
                    && let Some(cache) = env::var_os(env::XBUILD_ZIG_CACHE)
                {
                    cxx::ensure(target, &zig_args, Path::new(&cache), || {
                        zig_command().map(|(_, c)| c)
                    })?;
                }
                let rt = rt_archive(Path::new(&name_dir(argv0)?), target, Path::new(&zig));
                if rt.is_file() {
                    zig_args.push(rt.into());
                }
            }
            cmd.arg(driver).args(zig_args);
        }
    }
    let status = cmd.status()?;
    Ok(status.code().unwrap_or(1))
}

/// The zig xbuild set for its wrappers, as a command with the compiler
/// driver's environment (cargo's, already an explicit list) and zig's cache.
fn zig_command() -> Result<(OsString, Cmd)> {
    let zig = env::var_os(env::XBUILD_ZIG).with_context(|| {
        format!(
            "{} is not set; this wrapper runs under xbuild only",
            env::XBUILD_ZIG
        )
    })?;
    let mut cmd = Cmd::new(&zig);
    cmd.envs(env::passthrough_for_compiler());
    if let Some(cache) = env::var_os(env::XBUILD_ZIG_CACHE) {
        cmd.env("ZIG_GLOBAL_CACHE_DIR", &cache)
            .env("ZIG_LOCAL_CACHE_DIR", &cache);
    }
    Ok((zig, cmd))
}

/// The arguments for `zig cc`: the target first, then the caller's, each
/// translated for zig (see `flags`); an error names a flag that cannot be.
fn cc_args(target: &Target, args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut out: Vec<OsString> = vec!["-target".into(), target.cc.zig_target.clone().into()];
    if let Some(cpu) = &target.cc.cpu {
        out.push(format!("-mcpu={cpu}").into());
    }
    out.extend(prefix_map_args(env::var_os(env::XBUILD_PREFIX_MAP)));
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(a) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        // the target is given above; zig reads another as its own query
        if a == "-target" || a == "--target" {
            args.next();
            continue;
        }
        match flags::translate(target, a) {
            Flag::Keep => out.push(arg),
            Flag::Drop => {}
            Flag::Replace(r) => out.extend(r.split(' ').map(OsString::from)),
            Flag::Reject(why) => return Err(why),
        }
    }
    Ok(out)
}

/// `-ffile-prefix-map=FROM=TO` for each pair of `map` (see
/// [`env::XBUILD_PREFIX_MAP`]); before the caller's flags, so a prefix map
/// of its own still applies (clang lets the last matching one win).
fn prefix_map_args(map: Option<OsString>) -> Vec<OsString> {
    let Some(map) = map else {
        return Vec::new();
    };
    map.to_string_lossy()
        .split('\x1f')
        .filter(|p| p.contains('='))
        .map(|p| OsString::from(format!("-ffile-prefix-map={p}")))
        .collect()
}

/// Remove the C++ standard library's `-l` flags (`-lstdc++`, `-lc++`,
/// `-lc++abi`, any spelling `cc` or a build script uses); returns whether
/// there was one.
fn take_cxx_stdlib(args: &mut Vec<OsString>) -> bool {
    const NAMES: &[&str] = &["stdc++", "c++", "c++abi", "supc++"];
    let before = args.len();
    let mut out = Vec::with_capacity(args.len());
    let mut it = std::mem::take(args).into_iter().peekable();
    while let Some(a) = it.next() {
        let s = a.to_str().unwrap_or_default();
        if let Some(name) = s.strip_prefix("-l")
            && NAMES.contains(&name)
        {
            continue;
        }
        if s == "-l"
            && it
                .peek()
                .and_then(|n| n.to_str())
                .is_some_and(|n| NAMES.contains(&n))
        {
            it.next();
            continue;
        }
        out.push(a);
    }
    *args = out;
    args.len() != before
}

/// Whether a `zig cc` call links (rather than compiles, preprocesses or asks).
fn is_link(args: &[OsString]) -> bool {
    let mut has_output = false;
    for a in args {
        match a.to_str() {
            Some("-c" | "-S" | "-E" | "-M" | "-MM" | "-fsyntax-only" | "--version" | "-###") => {
                return false;
            }
            Some("-o") => has_output = true,
            Some(s) if s.starts_with("-o") && s.len() > 2 => has_output = true,
            _ => {}
        }
    }
    has_output
}

fn name_dir(argv0: &std::ffi::OsStr) -> Result<PathBuf> {
    Path::new(argv0)
        .parent()
        .map(Path::to_path_buf)
        .context("the wrapper was started without a directory")
}

/// Run rustc for one crate of std, as Rust's own bootstrap does: std is
/// compiled with `panic=unwind`, except `panic_abort`, which must itself have
/// the `abort` strategy so that `panic = "abort"` profiles can link it.
fn std_rustc_wrapper(args: Vec<OsString>) -> i32 {
    let Some((rustc, rest)) = args.split_first() else {
        eprintln!("xbuild (as {STD_WRAPPER}): no rustc given");
        return 1;
    };
    let panic_abort = rest
        .windows(2)
        .any(|w| w[0] == "--crate-name" && w[1] == "panic_abort");
    let mut cmd = Cmd::new(rustc);
    // transparent: rustc gets exactly the environment cargo gave the wrapper
    cmd.envs(env::all_for_wrapped_rustc()).args(rest);
    if panic_abort {
        cmd.args(["-C", "panic=abort"]);
    }
    match cmd.status() {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("xbuild (as {STD_WRAPPER}): {e}");
            1
        }
    }
}

/// The `RUSTC_WRAPPER` for building std (a link to xbuild in the shims bucket).
pub fn install_std_wrapper(cache: &Cache) -> Result<PathBuf> {
    let dir = cache.shims();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    link_to_self(cache, &dir.join(STD_WRAPPER))
}

/// `path` as a link to this xbuild, replaced atomically when it is not one:
/// a relative link to the copy beside it ([`Cache::own_exe`]), so that the
/// shims directory works wherever a sandbox shows it.
fn link_to_self(cache: &Cache, path: &Path) -> Result<PathBuf> {
    let exe = cache.own_exe()?;
    // (without procfs, xbuild's installed path, wherever it is)
    let name = match exe.file_name() {
        Some(n) if exe.parent() == path.parent() => PathBuf::from(n),
        _ => exe.clone(),
    };
    if fs::read_link(path).ok().as_deref() != Some(name.as_path()) {
        let work = cache.temp_dir("shim")?;
        let tmp = work.path().join("link");
        std::os::unix::fs::symlink(&name, &tmp)
            .with_context(|| format!("linking {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    }
    Ok(path.to_path_buf())
}

/// The wrapper paths for a target, creating the links if needed.
#[derive(Clone)]
pub struct Shims {
    pub cc: PathBuf,
    pub cxx: PathBuf,
    pub ar: PathBuf,
    pub ranlib: PathBuf,
    pub ld: PathBuf,
    /// The CMake toolchain file for the target.
    pub cmake_toolchain: PathBuf,
    /// The autoconf site file for the target (`CONFIG_SITE`).
    pub config_site: PathBuf,
}

impl Shims {
    /// The same paths where a build sees them (`seen`).
    pub fn seen_through(self, seen: &dyn Fn(&Path) -> PathBuf) -> Shims {
        Shims {
            cc: seen(&self.cc),
            cxx: seen(&self.cxx),
            ar: seen(&self.ar),
            ranlib: seen(&self.ranlib),
            ld: seen(&self.ld),
            cmake_toolchain: seen(&self.cmake_toolchain),
            config_site: seen(&self.config_site),
        }
    }
}

/// The wrappers for `target` (links to xbuild in the cache's shims bucket)
/// and its runtime archive compiled with `zig`.
pub fn install_shims(
    cache: &Cache,
    target: &Target,
    zig: &Path,
    system: &crate::sandbox::bwrap::System,
) -> Result<Shims> {
    let dir = cache.shims();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    ensure_rt(cache, target, zig, system)?;
    let link = |prefix: &str| link_to_self(cache, &dir.join(format!("{prefix}{}", target.rust)));
    let shims = Shims {
        cc: link(CC_PREFIX)?,
        cxx: link(CXX_PREFIX)?,
        ar: link(AR_PREFIX)?,
        ranlib: link(RANLIB_PREFIX)?,
        ld: link(LD_PREFIX)?,
        cmake_toolchain: dir.join(format!("xbuild-cmake--{}.cmake", target.rust)),
        config_site: dir.join(format!("xbuild-config-site--{}.sh", target.rust)),
    };
    for (path, text) in [
        (&shims.cmake_toolchain, cmake_toolchain(target, &shims)),
        (&shims.config_site, config_site(target)),
    ] {
        if fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
            crate::cache::write_atomic(cache, path, text.as_bytes())?;
        }
    }
    Ok(shims)
}

/// An autoconf site file for `target`, which every `configure` sources before
/// it works out the host system. Build scripts (libsodium-sys, for one) pass
/// Rust's triple as `--host`, and the `config.sub` that autotools packages ship
/// rejects some of them (`riscv64gc-unknown-linux-musl`: "machine
/// `riscv64gc-unknown' not recognized"). Where Rust's name differs from the
/// GNU one, the site file presets configure's canonical host (`ac_cv_host`,
/// its documented cache variable) to the target's Nix name, which is the GNU
/// triple: configure then sees the host the seed's Nix build gave it. It does
/// so only for a `--host` that is exactly the target's Rust name, so a
/// configure run for the build machine is untouched. The file also stands in
/// for the host's own site files, which a sealed build must not read.
///
/// configure looks for `ar` and `ranlib` on `PATH` (`<host>-ar`, then `ar`)
/// when a build script names none, and libtool's for a linker named `ld`
/// (only to ask whether it is GNU's: it links through `$CC`); the build root
/// has none of them. `AR`, `RANLIB` and `LD`, unless set, are the target's
/// wrappers, in the site file's own directory.
fn config_site(target: &Target) -> String {
    let mut text = format!(
        "# Written by xbuild for {rust}: autoconf's configure sources this (CONFIG_SITE).\n\
         # The build root has no ar, ranlib or ld: the target's (libtool only asks ld\n\
         # whether it is GNU's; it links through $CC).\n",
        rust = target.rust
    );
    for (var, prefix) in [
        ("AR", AR_PREFIX),
        ("RANLIB", RANLIB_PREFIX),
        ("LD", LD_PREFIX),
    ] {
        text.push_str(&format!(
            "if test -z \"${var}\"; then\n\
             \x20 {var}=\"${{CONFIG_SITE%/*}}/{prefix}{rust}\"\n\
             fi\n",
            rust = target.rust
        ));
    }
    if target.rust != target.nix {
        text.push_str(&format!(
            "# Rust's name for the target is not one config.sub is sure to know; the GNU one is.\n\
             if test \"x$host_alias\" = \"x{rust}\"; then\n\
             \x20 ac_cv_host={nix}\n\
             fi\n",
            rust = target.rust,
            nix = target.nix,
        ));
    }
    text
}

/// A CMake toolchain file that cross-compiles for `target` with the zig
/// wrappers, statically, finding nothing of the host's libraries or headers
/// (the `cmake` crate passes it through `CMAKE_TOOLCHAIN_FILE_<target>`).
fn cmake_toolchain(target: &Target, shims: &Shims) -> String {
    let processor = target.nix.split('-').next().unwrap_or("unknown");
    // beside the wrappers: named from its own directory, wherever it is seen
    let q = |p: &Path| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        format!("${{CMAKE_CURRENT_LIST_DIR}}/{}", name.replace('"', "\\\""))
    };
    format!(
        "# Written by xbuild for {rust}: cross-compiling with zig, statically.\n\
         set(CMAKE_SYSTEM_NAME Linux)\n\
         set(CMAKE_SYSTEM_PROCESSOR {processor})\n\
         set(CMAKE_C_COMPILER \"{cc}\")\n\
         set(CMAKE_CXX_COMPILER \"{cxx}\")\n\
         set(CMAKE_ASM_COMPILER \"{cc}\")\n\
         set(CMAKE_AR \"{ar}\" CACHE FILEPATH \"xbuild\")\n\
         set(CMAKE_RANLIB \"{ranlib}\" CACHE FILEPATH \"xbuild\")\n\
         set(CMAKE_EXE_LINKER_FLAGS_INIT \"-static\")\n\
         set(BUILD_SHARED_LIBS OFF CACHE BOOL \"xbuild: static\")\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)\n",
        rust = target.rust,
        cc = q(&shims.cc),
        cxx = q(&shims.cxx),
        ar = q(&shims.ar),
        ranlib = q(&shims.ranlib),
    )
}

/// The clang arguments bindgen needs for `target`: the target's musl headers
/// and clang's own, both from zig, and none of the host's.
pub fn bindgen_args(target: &Target, zig: &Path) -> String {
    let lib = zig.parent().unwrap_or(Path::new("/")).join("lib");
    let arch = target.cc.zig_target.split('-').next().unwrap_or("");
    let any_arch = if arch == "x86_64" { "x86" } else { arch };
    let mut args = vec!["-nostdlibinc".to_string()];
    let dirs = [
        lib.join("include"),
        lib.join(format!("libc/include/{arch}-linux-musl")),
        lib.join("libc/include/generic-musl"),
        lib.join(format!("libc/include/{any_arch}-linux-any")),
        lib.join("libc/include/any-linux-any"),
    ];
    for d in dirs {
        args.push(format!("-isystem{}", d.display()));
    }
    args.join(" ")
}

#[cfg(test)]
#[path = "zigcc_tests.rs"]
mod tests;
