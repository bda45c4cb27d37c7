//! xbuild's small runtime archive per target (`atomic.c`: the libatomic
//! entry points zig's compiler-rt lacks), compiled once into the shims
//! bucket and linked last by every link through the wrapper.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::env;
use crate::targets::Target;

/// xbuild's runtime additions, compiled for each target and linked last.
const RT_SOURCE: &str = include_str!("atomic.c");

/// Where the runtime archive of `target` for this zig lives: next to the
/// wrappers, named by the source and the zig it was compiled with (its
/// installed directory's name, which holds the pin's digest, and not where
/// it is: a sealed build sees zig at another path).
pub(super) fn rt_archive(shims: &Path, target: &Target, zig: &Path) -> PathBuf {
    let mut h = Sha256::new();
    h.update(RT_SOURCE);
    let tail: Vec<_> = zig.components().rev().take(3).collect();
    for c in tail {
        h.update([0]);
        h.update(c.as_os_str().as_encoded_bytes());
    }
    let digest = &hex::encode(h.finalize())[..16];
    shims.join(format!("xbuild-rt--{}--{digest}.a", target.rust))
}

/// Compile the runtime archive for `target` if the cache has none.
pub(super) fn ensure_rt(
    cache: &Cache,
    target: &Target,
    zig: &Path,
    system: &crate::sandbox::bwrap::System,
) -> Result<()> {
    let dest = rt_archive(&cache.shims(), target, zig);
    if dest.is_file() {
        return Ok(());
    }
    let work = cache.temp_dir("rt")?;
    let src = work.path().join("xbuild_rt.c");
    fs::write(&src, RT_SOURCE).with_context(|| format!("writing {}", src.display()))?;
    let obj = work.path().join("xbuild_rt.o");
    let lib = work.path().join("rt.a");
    let zig_dir = zig.parent().unwrap_or(zig);
    let zig_cache = cache.zig_cache();
    fs::create_dir_all(&zig_cache).with_context(|| format!("creating {}", zig_cache.display()))?;
    let zig_cmd = |args: &[&std::ffi::OsStr]| {
        let mut c =
            crate::sandbox::tool_command(system, zig, &[zig_dir], &[work.path(), &zig_cache], &[]);
        c.envs(env::passthrough_for_compiler())
            .env("ZIG_GLOBAL_CACHE_DIR", cache.zig_cache())
            .env("ZIG_LOCAL_CACHE_DIR", cache.zig_cache())
            .args(args);
        c
    };
    let mut cc: Vec<OsString> = vec![
        "cc".into(),
        "-target".into(),
        target.cc.zig_target.clone().into(),
    ];
    if let Some(cpu) = &target.cc.cpu {
        cc.push(format!("-mcpu={cpu}").into());
    }
    cc.extend([
        "-O2".into(),
        "-c".into(),
        src.clone().into(),
        "-o".into(),
        obj.clone().into(),
    ]);
    let refs: Vec<&std::ffi::OsStr> = cc.iter().map(|a| a.as_os_str()).collect();
    zig_cmd(&refs)
        .output()
        .with_context(|| format!("compiling xbuild's runtime for {}", target.rust))?;
    zig_cmd(&[
        "ar".as_ref(),
        "rcs".as_ref(),
        lib.as_os_str(),
        obj.as_os_str(),
    ])
    .output()
    .with_context(|| format!("archiving xbuild's runtime for {}", target.rust))?;
    fs::rename(&lib, &dest).with_context(|| format!("moving into {}", dest.display()))?;
    Ok(())
}
