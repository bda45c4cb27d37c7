//! Each component's layout keys in `toolchains.toml`: where things are once
//! its artifacts are unpacked (and, for the build root, what finishes it).

use serde::{Deserialize, Serialize};

/// Where things are inside the installed rust component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RustLayout {
    pub rustc: String,
    pub cargo: String,
    /// Where rustc and cargo load their shared libraries from (only they
    /// do: they are started through the host's loader with these
    /// directories, nothing else inherits them).
    #[serde(default, deserialize_with = "one_or_many")]
    pub library_path: Vec<String>,
    /// The oldest host glibc the binaries run with (`2.36`), checked before
    /// anything is fetched.
    #[serde(default)]
    pub glibc: Option<String>,
    /// The standard library's source (`library/std` is below it).
    pub rust_src: String,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ZigLayout {
    pub zig: String,
}

/// Native tools build scripts run (CMake, Ninja) and libclang for bindgen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ToolsLayout {
    /// Directories whose programs go on the build's PATH, ahead of the host's
    /// (each through a launcher, see `launchers`).
    pub bin_dirs: Vec<String>,
    /// The directory holding `libclang.so` (`LIBCLANG_PATH`).
    #[serde(default)]
    pub libclang_dir: Option<String>,
    /// Where the programs load their shared libraries from.
    #[serde(default, deserialize_with = "one_or_many")]
    pub library_path: Vec<String>,
}

/// The build root: a minimal userland (shell, coreutils, make, perl, ...)
/// that sandboxed builds see as their system directories instead of the
/// host's. Debian packages, unpacked as a merged-/usr root (see `root`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RootLayout {
    /// The root's glibc (`2.36`): what build scripts and proc macros are
    /// linked against (by zig), and the newest an xbuild running in the
    /// root as the targets' compiler may need.
    pub glibc: String,
    /// Links that packages' maintainer scripts would make (alternatives,
    /// diversions): path in the root -> target, as `ln -s` takes them.
    #[serde(default)]
    pub links: std::collections::BTreeMap<String, String>,
    /// Command lines (split at spaces) that must run in the root: checked
    /// once, when it is installed, and by the tests.
    pub programs: Vec<String>,
    /// The root's dynamic loader, its library directories and bubblewrap,
    /// paths in the root: the sandbox of a host without bubblewrap (or
    /// glibc) starts the root's bubblewrap through the root's loader.
    #[serde(default)]
    pub loader: Option<String>,
    #[serde(default)]
    pub library_path: Vec<String>,
    #[serde(default)]
    pub bwrap: Option<String>,
    /// libfaketime (the thread-safe one), path in the root: preloaded into
    /// the determinism check's second build to move its clock a year on.
    #[serde(default)]
    pub faketime: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QemuLayout {
    /// The directory holding `qemu-<arch>-static`.
    pub bin_dir: String,
}
