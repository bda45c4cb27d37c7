//! The table of supported targets, one TOML file per target under `targets/`,
//! compiled into the binary so that an installed xbuild needs no data files.
//!
//! Everything xbuild knows about a target lives in that table: its Nix and
//! Rust names, the RUSTFLAGS of the seed, the ELF form its executables must
//! have, how zig compiles C for it and how to run its binaries. Code asks the
//! table; it does not match on target names.

use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::triple;

/// The built-in table: (file name, contents).
const BUILTIN: &[(&str, &str)] = &[
    (
        "x86_64-unknown-linux-musl.toml",
        include_str!("../targets/x86_64-unknown-linux-musl.toml"),
    ),
    (
        "aarch64-unknown-linux-musl.toml",
        include_str!("../targets/aarch64-unknown-linux-musl.toml"),
    ),
    (
        "armv6l-unknown-linux-musleabihf.toml",
        include_str!("../targets/armv6l-unknown-linux-musleabihf.toml"),
    ),
    (
        "i686-unknown-linux-musl.toml",
        include_str!("../targets/i686-unknown-linux-musl.toml"),
    ),
];

/// The target a build uses when none is given, as in the seed.
pub const DEFAULT_TARGET: &str = "x86_64-unknown-linux-musl";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Target {
    /// The Rust target triple, as rustc and cargo name it.
    pub rust: String,
    /// The Nix config triple, as the seed names it.
    pub nix: String,
    pub summary: String,
    /// RUSTFLAGS for this target, unless the user sets RUSTFLAGS.
    pub rustflags: Vec<String>,
    pub elf: ElfPolicy,
    pub cc: CcSpec,
    pub runner: Runner,
}

/// The form every executable built for the target must have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ElfPolicy {
    /// 32 or 64.
    pub class: u8,
    /// `x86_64`, `aarch64`, `arm` or `i386`.
    pub machine: String,
    pub kind: ElfKind,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ElfKind {
    /// ELF type EXEC, no interpreter, no shared libraries.
    Exec,
    /// ELF type DYN, no interpreter, no shared libraries.
    StaticPie,
}

/// How zig compiles and links C for the target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CcSpec {
    /// zig's `-target` value.
    pub zig_target: String,
    /// zig's `-mcpu` value, when the default CPU of `zig_target` is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
}

/// How binaries for the target run on an x86_64 Linux host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Runner {
    /// The host runs them directly.
    #[serde(default)]
    pub native: bool,
    /// The qemu-user binary that runs them otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu: Option<String>,
    /// The CPU qemu emulates (`-cpu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu_cpu: Option<String>,
}

impl Target {
    /// The target's name in cargo's environment variables (`CARGO_TARGET_<T>_LINKER`).
    pub fn cargo_env_name(&self) -> String {
        self.rust.to_uppercase().replace(['-', '.'], "_")
    }
}

fn parse(file: &str, text: &str) -> Result<Target> {
    let t: Target = toml::from_str(text).with_context(|| format!("invalid target file {file}"))?;
    if !triple::is_rustc_target(&t.rust) {
        bail!("{file}: `{}` is not a target rustc knows", t.rust);
    }
    let from_nix = triple::resolve(&t.nix).with_context(|| format!("{file}: nix name"))?;
    if from_nix.rust != t.rust {
        bail!(
            "{file}: nix name `{}` maps to `{}`, not `{}`",
            t.nix,
            from_nix.rust,
            t.rust
        );
    }
    if t.runner.native == t.runner.qemu.is_some() {
        bail!("{file}: [runner] needs exactly one of `native = true` or `qemu`");
    }
    Ok(t)
}

/// The built-in target table, in a fixed order.
pub fn all() -> &'static [Target] {
    static TABLE: OnceLock<Vec<Target>> = OnceLock::new();
    TABLE.get_or_init(|| {
        BUILTIN
            .iter()
            .map(|(file, text)| parse(file, text).expect("the built-in target table is valid"))
            .collect()
    })
}

/// Resolve a user-given name (Nix or Rust) to a supported target.
pub fn lookup(name: &str) -> Result<&'static Target, LookupError> {
    let resolved = triple::resolve(name).map_err(LookupError::Triple)?;
    all()
        .iter()
        .find(|t| t.rust == resolved.rust)
        .ok_or_else(|| LookupError::Unsupported {
            name: name.to_string(),
            rust: resolved.rust,
        })
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Triple(triple::TripleError),
    #[error(
        "`{name}` is the Rust target `{rust}`, which xbuild does not build yet\n  supported targets: {}",
        supported()
    )]
    Unsupported { name: String, rust: String },
}

fn supported() -> String {
    all()
        .iter()
        .map(|t| t.rust.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_has_the_four_targets() {
        let names: Vec<_> = all().iter().map(|t| t.rust.as_str()).collect();
        assert_eq!(
            names,
            [
                "x86_64-unknown-linux-musl",
                "aarch64-unknown-linux-musl",
                "arm-unknown-linux-musleabihf",
                "i686-unknown-linux-musl"
            ]
        );
    }

    #[test]
    fn rustflags_follow_the_seed() {
        for t in all() {
            let flags = t.rustflags.join(" ");
            assert!(flags.contains("-C target-feature=+crt-static"), "{flags}");
            let pie = flags.contains("link-arg=-static-pie");
            assert_eq!(pie, t.rust.starts_with("x86_64"), "{}: {flags}", t.rust);
            assert_eq!(pie, t.elf.kind == ElfKind::StaticPie, "{}", t.rust);
            if !pie {
                assert!(flags.contains("-C link-arg=-static"), "{flags}");
                assert!(flags.contains("-C relocation-model=static"), "{flags}");
            }
        }
    }

    #[test]
    fn lookup_accepts_nix_and_rust_names() {
        let arm = lookup("armv6l-unknown-linux-musleabihf").unwrap();
        assert_eq!(arm.rust, "arm-unknown-linux-musleabihf");
        assert_eq!(arm.cc.cpu.as_deref(), Some("arm1176jzf_s"));
        assert_eq!(arm.runner.qemu_cpu.as_deref(), Some("arm1176"));
        assert_eq!(lookup("arm-unknown-linux-musleabihf").unwrap(), arm);
        assert_eq!(
            lookup("x86_64-linux-musl").unwrap().rust,
            "x86_64-unknown-linux-musl"
        );
        assert_eq!(
            lookup("aarch64-unknown-linux-musl")
                .unwrap()
                .cargo_env_name(),
            "AARCH64_UNKNOWN_LINUX_MUSL"
        );
    }

    #[test]
    fn lookup_rejects_unsupported_and_unknown() {
        let e = lookup("aarch64-linux").unwrap_err().to_string();
        assert!(e.contains("`aarch64-unknown-linux-gnu`, which xbuild does not build yet"));
        assert!(e.contains("supported targets: x86_64-unknown-linux-musl"));
        let e = lookup("armv7l-unknown-linux-gnu").unwrap_err().to_string();
        assert!(e.contains("gnueabihf"), "{e}");
    }

    #[test]
    fn bad_target_files_are_rejected() {
        let (_, good) = BUILTIN[1];
        let e = parse(
            "t.toml",
            &good.replace("rust = \"aarch64", "rust = \"aarch65"),
        );
        assert!(format!("{:#}", e.unwrap_err()).contains("not a target rustc knows"));
        let e = parse("t.toml", &format!("{good}\nextra = 1\n"));
        assert!(format!("{:#}", e.unwrap_err()).contains("unknown field"));
        let e = parse(
            "t.toml",
            &good.replace(
                "nix = \"aarch64-unknown-linux-musl\"",
                "nix = \"aarch64-linux\"",
            ),
        );
        assert!(format!("{:#}", e.unwrap_err()).contains("maps to `aarch64-unknown-linux-gnu`"));
        let e = parse("t.toml", &format!("{good}native = true\n"));
        assert!(format!("{:#}", e.unwrap_err()).contains("exactly one of"));
    }
}
