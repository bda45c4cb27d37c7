//! `xbuild toolchain pin --rust X.Y`: a Rust release's pins, read from
//! Debian's signed package lists (`toolchain::debian`), printed or written
//! into a toolchains.toml.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cache::Cache;
use crate::exit::Usage;
use crate::rust_release::{self, Version};
use crate::toolchain::debian::render::{self, Pinned};
use crate::toolchain::debian::resolve::{Candidate, Index};
use crate::toolchain::debian::{Archive, Keyring, Release};
use crate::toolchain::fetch::{self, Mode};
use crate::toolchain::manifest::{self, Pins};
use crate::toolchain::{apt, rustdist};
use crate::ui;

pub struct Ask<'a> {
    pub rust: &'a str,
    pub suites: &'a [String],
    pub keyring: Option<&'a Path>,
    pub write: Option<&'a Path>,
    /// The official Rust distribution's server, instead of Debian.
    pub dist: Option<&'a str>,
    /// Take Release files past their Valid-Until.
    pub allow_expired: bool,
}

/// Debian's releases, oldest first: the first that has the release asked for
/// gives its pins (the oldest glibc, the longest-lived versions).
const CODENAMES: &[&str] = &["bookworm", "trixie", "forky", "sid"];

/// The packages the build root starts from (docs/TOOLCHAINS.md says why
/// each); the root is these and the closure of their dependencies.
pub const ROOT_PACKAGES: &[&str] = &[
    "base-files",
    "bash",
    "bubblewrap",
    "bzip2",
    "coreutils",
    "dash",
    "debianutils",
    "diffutils",
    "file",
    "findutils",
    "gawk",
    "grep",
    "gzip",
    "libc-bin",
    "libc6",
    "libfaketime",
    "libstdc++6",
    "m4",
    "make",
    "patch",
    "perl",
    "pkgconf",
    "sed",
    "tar",
    "xz-utils",
];

pub fn run(cache: &Cache, pins: &Pins, ask: &Ask, mode: Mode, out: &mut dyn Write) -> Result<()> {
    let Some(want) = Version::parse(ask.rust.trim()) else {
        return Err(Usage(format!(
            "--rust {:?}: give a release number, 1.97 or 1.85.1",
            ask.rust
        ))
        .into());
    };
    if mode == Mode::Offline {
        return Err(Usage(
            "`toolchain pin` reads Debian's current package lists: it cannot run --offline".into(),
        )
        .into());
    }
    if let Some(dist) = ask.dist {
        return from_dist(dist, want, ask, out);
    }
    let keyring = keyring(cache, pins, ask.keyring)?;
    let mirror = apt::DebianMirror::find(Path::new("/etc/apt"));
    let Some(main) = mirror.main.clone() else {
        return Err(Usage(format!(
            "no Debian mirror: the host's apt sources name none; set {}=URL (the `debian` \
             archive; `debian-security` is taken beside it)",
            crate::env::XBUILD_DEBIAN_MIRROR
        ))
        .into());
    };
    let security = mirror.security.clone().unwrap_or_else(|| main.clone());
    let codenames: Vec<String> = if ask.suites.is_empty() {
        CODENAMES.iter().map(|s| s.to_string()).collect()
    } else {
        ask.suites.to_vec()
    };
    let agent = agent();
    let archive = |base: &str| Archive {
        base: base.to_string(),
        keyring: &keyring,
        agent: agent.clone(),
        allow_expired: ask.allow_expired,
    };
    let arch = apt::debian_arch();
    let mut seen = Vec::new();
    for codename in &codenames {
        ui::status(
            "Reading",
            &format!("Debian {codename}'s package lists ({arch})"),
        );
        let mut releases: Vec<Release> = Vec::new();
        let mut index = Index::default();
        for (suite, base) in [
            (codename.clone(), main.as_str()),
            (format!("{codename}-security"), security.as_str()),
        ] {
            let a = archive(base);
            let release = match a.release(&suite) {
                Ok(r) => r,
                // sid and forky have no security suite
                Err(e) if suite.ends_with("-security") && e.to_string().contains("HTTP 404") => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            index.add(&suite, a.packages(&release, "main", arch)?);
            releases.push(release);
        }
        let rustc = ["rustc-web", "rustc"]
            .iter()
            .flat_map(|n| index.versions(n))
            .filter(|c| upstream(c.version()).is_some_and(|v| v.is(&want)))
            .max_by(|a, b| {
                crate::toolchain::debian::control::compare_versions(a.version(), b.version())
            });
        let Some(rustc) = rustc else {
            for n in ["rustc-web", "rustc"] {
                for c in index.versions(n) {
                    seen.push(format!("{} {} ({})", c.name(), c.version(), c.suite));
                }
            }
            continue;
        };
        let pinned = pin_release(&index, rustc, &releases[0], want)?;
        return emit(pins, &pinned, ask, out);
    }
    bail!(
        "Rust {want} is in none of {}: they have {}",
        codenames.join(", "),
        if seen.is_empty() {
            "no rustc".to_string()
        } else {
            seen.join(", ")
        }
    )
}

/// The pins of a release of the official Rust distribution.
fn from_dist(dist: &str, want: Version, ask: &Ask, out: &mut dyn Write) -> Result<()> {
    let Some(path) = ask.keyring else {
        return Err(Usage(
            "--rust-dist needs --keyring FILE: the Rust project's release key (rust-key.gpg.ascii, \
             published beside the distribution; check its fingerprint yourself), to check the \
             channel manifest's signature"
                .into(),
        )
        .into());
    };
    let keyring = keyring_file(path)?;
    let agent = agent();
    ui::status(
        "Reading",
        &format!("the channel manifest of Rust {want} from {dist}"),
    );
    let channel = rustdist::Channel::fetch(&agent, dist, &want.to_string(), &keyring)?;
    let found = Version::parse(&channel.version)
        .with_context(|| format!("the manifest's rustc version {:?}", channel.version))?;
    if !found.is(&want) {
        bail!("the manifest of Rust {want} is of Rust {found}");
    }
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let tarballs = channel.toolchain(&host)?;
    let key = format!("{}.{}", found.major, found.minor);
    let block = render::dist_block(&key, &found.to_string(), &channel.date, dist, &tarballs);
    let count = format!("Rust {found} from {dist}: {} tarballs", tarballs.len());
    write_block(&block, &count, ask, out)
}

/// Print the block, or write it into `--write FILE` (checked to parse first).
fn write_block(block: &str, count: &str, ask: &Ask, out: &mut dyn Write) -> Result<()> {
    let Some(path) = ask.write else {
        ui::status("Pinned", count);
        out.write_all(block.as_bytes())?;
        return Ok(());
    };
    let before =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let current = manifest::parse(&before, &path.display().to_string(), Path::new("."))?;
    if let Some(v) = rust_release::pinned(&current)
        && block.starts_with(&format!("# BEGIN Rust {}.{}:", v.major, v.minor))
    {
        return Err(Usage(format!(
            "Rust {v} is the default release of {} ([rust]); the official distribution's pins \
             of the same release would be a second one: print them (without --write) and put \
             them in [rust] yourself, or pin another release",
            path.display()
        ))
        .into());
    }
    let after = render::replace_block(&before, block);
    save(path, &before, &after, count)
}

/// Replace `path` with `after` when it parses; say whether anything changed.
fn save(path: &Path, before: &str, after: &str, count: &str) -> Result<()> {
    // never write pins xbuild cannot read
    manifest::parse(after, &path.display().to_string(), Path::new("."))
        .context("the pins written would not parse (nothing was written)")?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(after.as_bytes())?;
    // the file keeps its mode (a temp file's is 0600)
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    ui::status(
        if before == after {
            "Unchanged"
        } else {
            "Wrote"
        },
        &format!("{count} into {}", path.display()),
    );
    Ok(())
}

/// The upstream release of a Debian version (`1.96.0+dfsg1-1~deb12u2` → 1.96.0).
fn upstream(version: &str) -> Option<Version> {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    Version::parse(v.split(['+', '~', '-']).next()?)
}

/// The HTTP client of the index and manifest reads: a list of 10 MB on a
/// slow link may take minutes, never forever.
fn agent() -> ureq::Agent {
    crate::http::config()
        .timeout_global(Some(std::time::Duration::from_secs(300)))
        .build()
        .into()
}

/// A keyring the user names.
fn keyring_file(path: &Path) -> Result<Keyring> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Keyring::read(&bytes, &path.display().to_string())
}

/// The keyring: `--keyring FILE`, else the pinned `debian-archive-keyring`.
fn keyring(cache: &Cache, pins: &Pins, explicit: Option<&Path>) -> Result<Keyring> {
    if let Some(path) = explicit {
        return keyring_file(path);
    }
    let Some(artifact) = &pins.sources.debian_keyring else {
        return Err(Usage(format!(
            "the pins ({}) name no Debian archive keyring ([sources] debian-keyring): pass \
             --keyring FILE (Debian keeps it in /usr/share/keyrings/debian-archive-keyring.gpg)",
            pins.origin
        ))
        .into());
    };
    let deb = fetch::ensure(cache, pins, artifact, Mode::Online)?;
    let dir = cache.temp_dir("keyring")?;
    crate::unpack::unpack(&deb, &artifact.file_name, dir.path(), 0)?;
    let file = dir
        .path()
        .join("usr/share/keyrings/debian-archive-keyring.gpg");
    let bytes = std::fs::read(&file)
        .with_context(|| format!("{} holds no {}", artifact.label(), file.display()))?;
    Keyring::read(&bytes, &artifact.label())
}

fn pin_release<'a>(
    index: &'a Index,
    rustc: &'a Candidate,
    release: &'a Release,
    want: Version,
) -> Result<Pinned<'a>> {
    let web = rustc.name() == "rustc-web";
    let full = upstream(rustc.version()).unwrap_or(want);
    let names: [String; 4] = if web {
        [
            "rustc-web".into(),
            "cargo-web".into(),
            "rust-web-src".into(),
            "libstd-rust-web-dev".into(),
        ]
    } else {
        [
            "rustc".into(),
            "cargo".into(),
            "rust-src".into(),
            "libstd-rust-dev".into(),
        ]
    };
    let mut roots = vec![rustc];
    for name in &names[1..] {
        // the same source version as rustc, not the newest of the name
        let Some(c) = index
            .versions(name)
            .into_iter()
            .find(|c| c.version() == rustc.version())
        else {
            bail!(
                "{} {} is listed, but no {name} of the same version: the mirror may be in the \
                 middle of an update",
                rustc.name(),
                rustc.version()
            );
        };
        roots.push(c);
    }
    // the libraries rustc and cargo load, not what they run (gcc, binutils:
    // zig is the C compiler and linker) and not glibc (the build root's)
    let rust = index.closure_of(&roots, &["libc6", "libc6-dev"], |c| c.section() == "libs")?;
    let root = index.closure(ROOT_PACKAGES, &["dpkg"], |_| true)?;
    let glibc = index
        .newest("libc6")
        .and_then(|c| upstream(c.version()))
        .map(|v| format!("{}.{}", v.major, v.minor))
        .context("the lists have no libc6")?;
    Ok(Pinned {
        release: full.to_string(),
        key: format!("{}.{}", full.major, full.minor),
        suite: release,
        rust,
        glibc,
        root,
    })
}

fn emit(pins: &Pins, pinned: &Pinned, ask: &Ask, out: &mut dyn Write) -> Result<()> {
    let count = format!(
        "Rust {} from Debian {} ({}{}): {} rust artifacts, {} build-root artifacts",
        pinned.release,
        pinned.suite.name,
        pinned.suite.suite,
        if pinned.suite.moving() {
            ", moving"
        } else {
            ""
        },
        pinned.rust.len(),
        pinned.root.len()
    );
    let Some(path) = ask.write else {
        ui::status("Pinned", &count);
        out.write_all(render::block(pinned, pins).as_bytes())?;
        return Ok(());
    };
    let before =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let current = manifest::parse(&before, &path.display().to_string(), Path::new("."))?;
    let default = rust_release::pinned(&current);
    let after = if default.is_some_and(|v| format!("{}.{}", v.major, v.minor) == pinned.key) {
        render::replace_default(&before, pinned)?
    } else {
        render::replace_block(&before, &render::block(pinned, &current))
    };
    save(path, &before, &after, &count)
}
