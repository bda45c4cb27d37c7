//! zig's C++ runtime (libc++, libc++abi), made the same way whichever link
//! needs it first.
//!
//! zig builds libc++ on the first C++ link of a kind (target, CPU,
//! optimisation, strip, PIC…) and its debug info names the directory that
//! link ran in (`DW_AT_comp_dir`): with CMake, its compiler-identification
//! link's `…/CMakeFiles/…/CompilerIdCXX`. So before a C++ link, the wrapper
//! makes sure the runtime of that kind was made by a *prelink*: an empty C++
//! program linked with the link's runtime-relevant flags only, from `/`.
//! Its bytes then depend on the kind and the zig cache's path (fixed in a
//! sealed build), never on which link came first.
//!
//! A marker in the zig cache (`xbuild-seeded/cxx-<digest>`, holding the
//! flags) says a kind was prelinked. After a build, xbuild makes the same
//! prelink, in a step that runs no workspace code, into a runtime bucket
//! of its own, which later builds are seeded with (`pipeline::prewarm`).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::targets::Target;

/// The directory of markers in a zig cache.
pub const MARKERS: &str = "xbuild-seeded";
/// The prefix of a C++ runtime marker's name.
pub const PREFIX: &str = "cxx-";
/// The source of the prelink: it uses the library, so that it is linked.
const PROGRAM: &str = "#include <string>\nint main(int c, char **) { return std::string(c, 'x').size() == 1 ? 0 : 1; }\n";

/// The flags of a link (as zig gets them, after the target's) that decide
/// which C++ runtime zig links, in their order; nothing that names a file.
pub fn kind_flags(args: &[OsString]) -> Vec<String> {
    const EXACT: &[&str] = &[
        "-s",
        "-static",
        "-static-pie",
        "-pie",
        "-no-pie",
        "-rdynamic",
        "-fPIC",
        "-fpic",
        "-fPIE",
        "-fpie",
        "-fno-PIC",
        "-fno-pic",
        "-fno-PIE",
        "-fno-pie",
    ];
    const PREFIXES: &[&str] = &[
        "-O",
        "-g",
        "-m",
        "-flto",
        "-fno-lto",
        "-fexceptions",
        "-fno-exceptions",
        "-frtti",
        "-fno-rtti",
        "-fsanitize",
        "-fno-sanitize",
        "-funwind-tables",
        "-fno-unwind-tables",
        "-fasynchronous-unwind-tables",
        "-fno-asynchronous-unwind-tables",
        "-fomit-frame-pointer",
        "-fno-omit-frame-pointer",
        "-fstack-protector",
        "-fno-stack-protector",
        "-fsingle-threaded",
        "-fno-single-threaded",
    ];
    const LINKER: &[&str] = &[
        "-s",
        "--strip-all",
        "-S",
        "--strip-debug",
        "-pie",
        "--no-pie",
    ];
    let mut out = Vec::new();
    let mut it = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        if a == "-mllvm" {
            it.next();
        } else if a == "-target" {
            if let Some(t) = it.next() {
                out.extend(["-target".to_string(), t.to_string()]);
            }
        } else if let Some(list) = a.strip_prefix("-Wl,") {
            out.extend(
                list.split(',')
                    .filter(|f| LINKER.contains(f))
                    .map(|f| format!("-Wl,{f}")),
            );
        } else if EXACT.contains(&a)
            || (PREFIXES.iter().any(|p| a.starts_with(p)) && !a.contains('/'))
        {
            out.push(a.to_string());
        }
    }
    out
}

/// The marker's name for a kind of link.
pub fn marker_name(target: &Target, flags: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(target.rust.as_bytes());
    for f in flags {
        h.update([0]);
        h.update(f.as_bytes());
    }
    format!("{PREFIX}{}", &hex::encode(h.finalize())[..16])
}

/// The flags a marker written by [`prelink`] records, when they are what
/// its name says and nothing but the flags [`kind_flags`] keeps: a marker
/// comes from a build's zig cache, which the build could write.
pub fn read_marker(target: &Target, path: &Path) -> Option<Vec<String>> {
    use std::io::Read;
    let name = path.file_name()?.to_str()?;
    let mut text = String::new();
    fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let flags: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let as_args: Vec<OsString> = flags.iter().map(OsString::from).collect();
    (kind_flags(&as_args) == flags && marker_name(target, &flags) == name).then_some(flags)
}

/// The prelink of a kind: `zig c++ FLAGS program.cpp -o program`, run from
/// `/` by the caller, in `work` (a directory of its own).
pub fn prelink_args(flags: &[String], work: &Path) -> Result<Vec<OsString>> {
    let src = work.join("xbuild-cxx-runtime.cpp");
    fs::write(&src, PROGRAM).with_context(|| format!("writing {}", src.display()))?;
    let mut args: Vec<OsString> = vec!["c++".into()];
    args.extend(flags.iter().map(OsString::from));
    args.extend([
        src.into(),
        "-o".into(),
        work.join("xbuild-cxx-runtime").into(),
    ]);
    Ok(args)
}

/// Before a C++ link (its zig arguments `zig_args`) in the zig cache
/// `zig_cache`: prelink its kind unless the cache has it, then write the
/// marker. A failed prelink is said and left to the link.
pub fn ensure(
    target: &Target,
    zig_args: &[OsString],
    zig_cache: &Path,
    zig: impl Fn() -> Result<crate::process::Cmd>,
) -> Result<()> {
    let flags = kind_flags(zig_args);
    let markers = zig_cache.join(MARKERS);
    let marker: PathBuf = markers.join(marker_name(target, &flags));
    if fs::symlink_metadata(&marker).is_ok() {
        return Ok(());
    }
    let work = tempfile::Builder::new()
        .prefix("xbuild-cxx-runtime")
        .tempdir()
        .context("making a directory for the C++ runtime's prelink")?;
    let mut cmd = zig()?;
    cmd.args(prelink_args(&flags, work.path())?)
        .current_dir("/");
    let out = cmd.output();
    match out {
        Ok(o) if o.status.success() => {
            fs::create_dir_all(&markers)
                .with_context(|| format!("creating {}", markers.display()))?;
            let mut text = flags.join("\n");
            text.push('\n');
            match crate::safe_fs::create_new_no_links(&marker, text.as_bytes()) {
                Ok(()) => {}
                // another link of the same kind prelinked at the same time
                Err(_) if fs::symlink_metadata(&marker).is_ok() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(o) => eprintln!(
            "xbuild: prelinking zig's C++ runtime for {} failed; the link builds it: {}",
            target.rust,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!(
            "xbuild: prelinking zig's C++ runtime for {} failed; the link builds it: {e:#}",
            target.rust
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_links_kind_keeps_its_runtime_flags_and_drops_its_files() {
        let args = a(&[
            "-target",
            "x86_64-linux-musl",
            "-mcpu=baseline",
            "main.o",
            "-L",
            "/x/lib",
            "-Wl,--as-needed,--strip-debug",
            "-Wl,-Map=/tmp/m",
            "-O2",
            "-o",
            "app",
            "-fPIC",
            "-mllvm=/etc/passwd",
            "-mllvm",
            "-O3",
            "-nodefaultlibs",
        ]);
        assert_eq!(
            kind_flags(&args),
            [
                "-target",
                "x86_64-linux-musl",
                "-mcpu=baseline",
                "-Wl,--strip-debug",
                "-O2",
                "-fPIC"
            ]
        );
    }

    #[test]
    fn a_marker_is_believed_only_when_it_says_what_its_name_says() {
        let target = crate::targets::all()
            .iter()
            .find(|t| t.rust == "x86_64-unknown-linux-musl")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let flags = vec!["-target".to_string(), "x86_64-linux-musl".to_string()];
        let good = dir.path().join(marker_name(target, &flags));
        fs::write(&good, "-target\nx86_64-linux-musl\n").unwrap();
        assert_eq!(read_marker(target, &good), Some(flags));
        // a name that does not match the content
        let other = dir.path().join(marker_name(target, &["-O2".to_string()]));
        fs::write(&other, "-target\nx86_64-linux-musl\n").unwrap();
        assert_eq!(read_marker(target, &other), None);
        // a flag the kind never has, with a matching name
        let bad_flags = vec!["-Wl,-T,/etc/passwd".to_string()];
        let bad = dir.path().join(marker_name(target, &bad_flags));
        fs::write(&bad, "-Wl,-T,/etc/passwd\n").unwrap();
        assert_eq!(read_marker(target, &bad), None);
    }
}
