//! Compiled units in the store: what a kept target dir compiled, shared
//! with fresh machines, so that a CI runner with an empty cache compiles
//! only what changed.
//!
//! A *unit* is what cargo compiles once and names `<crate>-<16 hex>` (its
//! metadata hash): its files in `deps/` (`lib<name>-<h>.rlib`, `.rmeta`,
//! `.d`, an executable), `.fingerprint/<name>-<h>/` and `build/<name>-<h>/`
//! (a build script, or its run and `OUT_DIR`), in a profile directory of the
//! target dir (`<triple>/release/`, or `release/` for the host's build
//! scripts and proc macros). Each unit is one blob: a tar of its regular
//! files (sorted, no owners, mtime 0; a unit holding anything else, a link
//! say, is not published), zstd-compressed, named by its sha256, so
//! successive commits share unchanged units and an identical blob is
//! uploaded once. The manifest (`kind` units, signed like every manifest)
//! lists the blobs and one more file, `sources.json`: the sha256 of each
//! source file the build saw.
//!
//! A signing build publishes under two keys (`keys::Units`): the exact one
//! (with the lockfile's digest), and the fallback one without it, which the
//! newest build replaces. A build whose outputs missed and whose kept dir is
//! empty restores the exact entry, else the fallback one; signatures and
//! sha256s are checked before anything is unpacked (a bad entry is a miss,
//! said once). Every restored file gets the time of the restore; the
//! sources the entry saw get a time before it, and files that differ the
//! stamping time after it (`deps::Checkout::stamp`), so cargo compiles the
//! changed packages and their dependents, and nothing else, whatever the
//! clocks of the machines that made the units said.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::store::manifest::File;
use super::store::{Store, UNITS};
use super::{Cache, hash_file};

/// The sources record's name in a manifest.
const SOURCES: &str = "sources.json";

/// One cargo unit in a target dir: `id` is `<profile dir>/<name>-<hash>`,
/// `files` its regular files, relative to the target dir, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub id: String,
    pub files: Vec<PathBuf>,
}

/// Whether `name` is `<crate>-<16 hex>`.
fn is_unit_name(name: &str) -> bool {
    name.rsplit_once('-').is_some_and(|(c, h)| {
        !c.is_empty() && h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether the file `name` in `deps/` belongs to the unit `unit` (named by
/// its package, `find-msvc-tools-<h>`; its files by the crate, with `_`).
fn in_unit(name: &str, unit: &str) -> bool {
    let krate = unit.replace('-', "_");
    let krate = match unit.rsplit_once('-') {
        Some((package, hash)) => format!("{}-{hash}", package.replace('-', "_")),
        None => krate,
    };
    let of = |n: &str| {
        [unit, krate.as_str()]
            .iter()
            .any(|u| n == *u || n.strip_prefix(u).is_some_and(|r| r.starts_with('.')))
    };
    of(name) || name.strip_prefix("lib").is_some_and(of)
}

/// The profile directories of a target dir that a build for `triple` uses:
/// those holding `.fingerprint/`, the host's (`release/`) and the triple's
/// (`<triple>/release/`), not other targets' (a kept dir holds every target
/// of its workspace).
fn profile_dirs(target: &Path, triple: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(top) = fs::read_dir(target) else {
        return out;
    };
    for e in top.flatten() {
        let p = e.path();
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if p.join(".fingerprint").is_dir() {
            out.push(p);
        } else if e.file_name() != triple {
            continue;
        } else if let Ok(inner) = fs::read_dir(&p) {
            for f in inner.flatten() {
                if f.file_type().is_ok_and(|t| t.is_dir()) && f.path().join(".fingerprint").is_dir()
                {
                    out.push(f.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// The regular files under `dir` (relative to `base`); `Err` names the first
/// entry that is neither a regular file nor a directory.
fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        let t = e.file_type().map_err(|_| p.clone())?;
        if t.is_dir() {
            walk(base, &p, out)?;
        } else if t.is_file() {
            out.push(p.strip_prefix(base).map_err(|_| p.clone())?.to_path_buf());
        } else {
            return Err(p);
        }
    }
    Ok(())
}

/// Every unit of a build for `triple` in the target dir `target` (the
/// host's and the triple's) whose files are all regular files (a unit with
/// a link, a FIFO or a socket in it is left out, and said).
pub fn units_of(target: &Path, triple: &str) -> Vec<Unit> {
    let mut units = Vec::new();
    for dir in profile_dirs(target, triple) {
        let Ok(rel) = dir.strip_prefix(target) else {
            continue;
        };
        let deps: Vec<String> = fs::read_dir(dir.join("deps"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        let mut names: Vec<String> = fs::read_dir(dir.join(".fingerprint"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| is_unit_name(n))
            .collect();
        names.sort();
        for name in names {
            let mut files = Vec::new();
            let walked = walk(target, &dir.join(".fingerprint").join(&name), &mut files)
                .and_then(|()| walk(target, &dir.join("build").join(&name), &mut files));
            if let Err(odd) = walked {
                tracing::info!(
                    "not publishing the unit {name}: {} is not a regular file",
                    odd.display()
                );
                continue;
            }
            files.extend(
                deps.iter()
                    .filter(|d| in_unit(d, &name))
                    .map(|d| rel.join("deps").join(d)),
            );
            files.sort();
            units.push(Unit {
                id: format!("{}/{name}", rel.display()),
                files,
            });
        }
    }
    units
}

/// The blob of a unit: a tar of its files (sorted, mode 644 or 755, no
/// owners, mtime 0), zstd-compressed. The same files give the same bytes.
pub fn pack(target: &Path, unit: &Unit) -> Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    for rel in &unit.files {
        let path = target.join(rel);
        let mut f = crate::safe_fs::open_no_links(target, &path)?;
        let meta = f
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(meta.is_file(), "{} is not a regular file", path.display());
        let mut h = tar::Header::new_gnu();
        h.set_size(meta.len());
        h.set_mode(if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        });
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        (&mut f)
            .take(meta.len())
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(
            bytes.len() as u64 == meta.len(),
            "{} changed while it was packed",
            path.display()
        );
        tar.append_data(&mut h, rel, bytes.as_slice())
            .with_context(|| format!("packing {}", path.display()))?;
    }
    let raw = tar.into_inner().context("finishing a unit's tar")?;
    Ok(ruzstd::encoding::compress_to_vec(
        raw.as_slice(),
        ruzstd::encoding::CompressionLevel::Fastest,
    ))
}

/// What a kept dir remembers of its published units: (the unit's files'
/// sizes and mtimes, hashed) → its blob's sha256 and size, per store.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Memo {
    store: String,
    units: BTreeMap<String, (String, String, u64)>,
}

fn state_of(target: &Path, unit: &Unit) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    for rel in &unit.files {
        h.update(rel.as_os_str().as_encoded_bytes());
        if let Ok(m) = fs::symlink_metadata(target.join(rel)) {
            h.update(format!(
                "\0{}\0{}\0{}\0",
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            ));
        }
    }
    hex::encode(h.finalize())
}

/// What [`publish`] published.
pub struct Published {
    pub units: usize,
    pub packed: usize,
}

/// Publish the units of the kept target dir `target` under `keys` (the
/// exact key, then the fallback one): pack the units the memo in `kept_dir`
/// does not already know, then [`Store::publish`]. `sources` is the
/// kept dir's record of the sources the build saw (path → sha256).
pub fn publish(
    cache: &Cache,
    store: &Store,
    kept_dir: &Path,
    (target, triple): (&Path, &str),
    sources: &BTreeMap<String, String>,
    keys: &[String],
) -> Result<Option<Published>> {
    if !store.writes() {
        return Ok(None);
    }
    let memo_path = kept_dir.join("units-published.json");
    let mut memo: Memo = fs::read(&memo_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|m: &Memo| m.store == store.url)
        .unwrap_or_default();
    memo.store = store.url.clone();
    let work = cache.temp_dir("units")?;
    let mut files = Vec::new();
    let mut packed = 0;
    let units = units_of(target, triple);
    let mut kept = BTreeMap::new();
    for unit in &units {
        let state = state_of(target, unit);
        // published before, unchanged, and still in the store: not packed again
        let known = memo
            .units
            .get(&unit.id)
            .filter(|(s, sha, _)| *s == state && store.has_blob(sha))
            .map(|(_, sha, size)| (sha.clone(), *size));
        let (sha, size) = match known {
            Some(k) => k,
            None => {
                let bytes = pack(target, unit)?;
                let sha = super::hash_bytes(&bytes);
                let p = work.path().join(&sha);
                fs::write(&p, &bytes).with_context(|| format!("writing {}", p.display()))?;
                if !store.push_blob(&sha, &p) {
                    return Ok(None);
                }
                packed += 1;
                (sha, bytes.len() as u64)
            }
        };
        kept.insert(unit.id.clone(), (state, sha.clone(), size));
        files.push(File {
            path: format!("{}.tar.zst", unit.id),
            sha256: sha,
            size,
            package: None,
            kind: None,
        });
    }
    let record = serde_json::to_vec(sources)?;
    let sha = super::hash_bytes(&record);
    let record_path = work.path().join(SOURCES);
    fs::write(&record_path, &record)?;
    if !store.push_blob(&sha, &record_path) {
        return Ok(None);
    }
    files.push(File {
        path: SOURCES.into(),
        sha256: sha,
        size: record.len() as u64,
        package: None,
        kind: None,
    });
    for key in keys {
        if !store.publish_manifest(cache, UNITS, key, &files) {
            return Ok(None);
        }
    }
    memo.units = kept;
    super::write_atomic(cache, &memo_path, &serde_json::to_vec(&memo)?)?;
    Ok(Some(Published {
        units: units.len(),
        packed,
    }))
}

/// What [`restore`] gives: what it restored, the sources record (path →
/// sha256) the entry saw, and the time every restored file got (ns since
/// the epoch).
pub type RestoredEntry = (Restored, BTreeMap<String, String>, u64);

/// What [`restore`] restored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub units: usize,
    /// From the entry without the lockfile's digest.
    pub fallback: bool,
    pub bytes: u64,
    pub secs: f64,
}

/// Restore the newest units for `keys` (tried in order; the second is the
/// fallback) into the empty kept target dir `target`; returns what was
/// restored, and the sources record (path → sha256) the entry saw, with
/// the time every restored file got (ns since the epoch).
pub fn restore(
    cache: &Cache,
    store: &Store,
    target: &Path,
    keys: &[String],
) -> Result<Option<RestoredEntry>> {
    let started = Instant::now();
    for (i, key) in keys.iter().enumerate() {
        let work = cache.temp_dir("units")?;
        let Some(body) = store.fetch(cache, UNITS, key, work.path()) else {
            continue;
        };
        let sources: BTreeMap<String, String> = body
            .files
            .iter()
            .find(|f| f.path == SOURCES)
            .and_then(|_| fs::read(work.path().join(SOURCES)).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut units = 0;
        let mut bytes = 0;
        // unpacked aside, then moved in: the kept dir may hold what builds wrote
        let stage = work.path().join("stage");
        fs::create_dir(&stage).with_context(|| format!("creating {}", stage.display()))?;
        for f in body.files.iter().filter(|f| f.path.ends_with(".tar.zst")) {
            let blob = work.path().join(&f.path);
            crate::unpack::unpack(&blob, &f.path, &stage, 0)
                .with_context(|| format!("unpacking the unit {}", f.path))?;
            units += 1;
            bytes += f.size;
        }
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        set_mtimes(&stage, at)?;
        crate::safe_fs::move_tree_into(&stage, target)?;
        return Ok(Some((
            Restored {
                units,
                fallback: i > 0,
                bytes,
                secs: started.elapsed().as_secs_f64(),
            },
            sources,
            at,
        )));
    }
    Ok(None)
}

/// Give every file under `dir` the mtime `at_ns`.
fn set_mtimes(dir: &Path, at_ns: u64) -> Result<()> {
    let when = UNIX_EPOCH + std::time::Duration::from_nanos(at_ns);
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            set_mtimes(&e.path(), at_ns)?;
        } else if t.is_file() {
            fs::File::options()
                .write(true)
                .open(e.path())
                .and_then(|f| f.set_modified(when))
                .with_context(|| format!("setting the mtime of {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// The sha256 of the lockfile in `root` (a snapshot), or "none".
pub fn lockfile_digest(root: &Path) -> String {
    hash_file(&root.join("Cargo.lock")).unwrap_or_else(|_| "none".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn target_dir() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let h = "0123456789abcdef";
        let p = "x86_64-unknown-linux-musl/release";
        write(r, &format!("{p}/.fingerprint/adder-{h}/lib-adder"), "fp");
        write(r, &format!("{p}/deps/libadder-{h}.rlib"), "rlib");
        write(r, &format!("{p}/deps/adder-{h}.d"), "dep");
        write(r, &format!("{p}/deps/libadder_x-{h}.rlib"), "another crate");
        write(
            r,
            &format!("{p}/build/adder-fedcba9876543210/out/add.o"),
            "obj",
        );
        write(
            r,
            &format!("{p}/.fingerprint/adder-fedcba9876543210/run"),
            "fp",
        );
        write(r, &format!("release/.fingerprint/libc-{h}/lib"), "fp");
        write(r, &format!("release/deps/liblibc-{h}.rlib"), "rlib");
        write(r, &format!("release/deps/libc-{h}.d"), "dep");
        write(
            r,
            &format!("release/.fingerprint/find-msvc-tools-{h}/lib"),
            "fp",
        );
        write(
            r,
            &format!("release/deps/libfind_msvc_tools-{h}.rlib"),
            "rlib",
        );
        write(r, &format!("{p}/app"), "uplifted, not a unit's");
        // another target's unit, in the same kept dir
        write(
            r,
            &format!("aarch64-unknown-linux-musl/release/.fingerprint/adder-{h}/lib-adder"),
            "fp",
        );
        t
    }

    #[test]
    fn units_are_grouped_by_cargos_metadata_hash_in_the_hosts_and_the_triples_profile_dirs() {
        let t = target_dir();
        let units = units_of(t.path(), "x86_64-unknown-linux-musl");
        let ids: Vec<&str> = units.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "release/find-msvc-tools-0123456789abcdef",
                "release/libc-0123456789abcdef",
                "x86_64-unknown-linux-musl/release/adder-0123456789abcdef",
                "x86_64-unknown-linux-musl/release/adder-fedcba9876543210",
            ]
        );
        let files = |i: usize| -> Vec<String> {
            units[i]
                .files
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        // the crate's files are named with `_` where the package has `-`
        assert_eq!(
            files(0),
            ["lib", "libfind_msvc_tools-0123456789abcdef.rlib"]
        );
        assert_eq!(
            files(1),
            [
                "lib",
                "libc-0123456789abcdef.d",
                "liblibc-0123456789abcdef.rlib"
            ]
        );
        assert_eq!(
            files(2),
            [
                "lib-adder",
                "adder-0123456789abcdef.d",
                "libadder-0123456789abcdef.rlib"
            ]
        );
        assert_eq!(files(3), ["run", "add.o"]);
    }

    #[test]
    fn a_unit_with_a_link_is_not_published_and_packing_is_deterministic() {
        let t = target_dir();
        let p = t
            .path()
            .join("x86_64-unknown-linux-musl/release/build/adder-fedcba9876543210/out");
        std::os::unix::fs::symlink("/etc/passwd", p.join("evil")).unwrap();
        let units = units_of(t.path(), "x86_64-unknown-linux-musl");
        assert_eq!(units.len(), 3, "{units:?}");
        let a = pack(t.path(), &units[2]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = pack(t.path(), &units[2]).unwrap();
        assert_eq!(a, b);
        // and it unpacks to the same files, with a tar reader that is not ours
        let blob = t.path().join("unit.tar.zst");
        fs::write(&blob, &a).unwrap();
        let out = tempfile::tempdir().unwrap();
        // (GNU tar and the zstd program: CI installs them)
        crate::process::Cmd::host_tool("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(&blob)
            .arg("-C")
            .arg(out.path())
            .output()
            .expect("GNU tar --zstd unpacks it");
        for f in &units[2].files {
            assert_eq!(
                fs::read(out.path().join(f)).unwrap(),
                fs::read(t.path().join(f)).unwrap()
            );
        }
    }
}
