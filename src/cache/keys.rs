//! The keys of the cache's input-addressed buckets. Every key starts with
//! xbuild's version and [`RECIPE`], so no entry written by another xbuild is
//! ever served.

use sha2::{Digest, Sha256};

/// How xbuild builds, as far as it can change the bytes of an output. Part
/// of every outputs and kept-dependencies key, next to xbuild's version: bump
/// it with any change that can change outputs (flags, environment, remaps), so
/// that no cache entry made by an earlier xbuild of the same version is reused.
/// 2: sealed builds with `CARGO_INCREMENTAL=0`.
/// 3: the workspace's own config rustflags; std with bitcode.
/// 4: zig seen at a fixed path in the sandbox (debug builds named its path).
/// 5: and zig's cache too, in a new bucket.
/// 6: configure scripts get the target's GNU triple through `CONFIG_SITE`.
/// 7: zig's C runtime built first, from a fixed directory (see prewarm).
/// 8: zig's C++ runtime made by a prelink from `/` (see zigcc::cxx).
/// 9: builds in the build root; host code linked by zig; configure gets the
///    target's `ar`, `ranlib` and `ld` through `CONFIG_SITE`.
/// 10: umask 022 in every build; no `TERM`, `CARGO_TERM_COLOR=always`; C
///     compiles get `-ffile-prefix-map` for the remapped paths.
pub const RECIPE: &str = "10";

fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    h.update([0]);
    h.update(RECIPE);
    for p in parts {
        h.update([0]);
        h.update(p);
    }
    hex::encode(h.finalize())[..32].to_string()
}

/// What one target's outputs are for: every input that can change their
/// bytes is a field (a field left out would not compile).
#[derive(Debug, Clone)]
pub struct Outputs<'a> {
    /// The pins' digest (`Pins::digest`).
    pub pins: &'a str,
    pub target: &'a str,
    /// Every rustc flag of the target.
    pub flags: &'a [String],
    /// The profile, packages, features (`Plan::selection_key`).
    pub selection: &'a str,
    /// The manifest, relative to the workspace root.
    pub manifest: &'a str,
    /// `--git-version`.
    pub git_version: Option<&'a str>,
    /// `SOURCE_DATE_EPOCH` as the build gets it.
    pub epoch: &'a str,
    /// The snapshot's digest: every source file's path and content.
    pub snapshot: &'a str,
    /// Whether it was built in the sandbox (outside it, embedded paths
    /// differ).
    pub sandboxed: bool,
}

/// The key of one target's outputs (see [`Outputs`]).
pub fn outputs(o: &Outputs<'_>) -> String {
    let flags = o.flags.join("\x1f");
    digest([
        o.pins,
        o.target,
        &flags,
        o.selection,
        o.manifest,
        o.git_version.unwrap_or(""),
        o.epoch,
        o.snapshot,
        if o.sandboxed {
            "sandboxed"
        } else {
            "unsandboxed"
        },
    ])
}

/// What a std sysroot is built from: every field is part of its key. Not
/// xbuild's version nor [`RECIPE`]: a sysroot outlives the xbuild that built
/// it, and changes only with these.
#[derive(Debug, Clone)]
pub struct Std<'a> {
    /// The std crates built (`stdlib::STD_CRATES`).
    pub crates: &'a str,
    /// How std is built (`stdlib::STD_RECIPE`).
    pub recipe: &'a str,
    /// The pins std's bytes depend on (`Pins::std_digest`).
    pub pins: &'a str,
    pub target: &'a str,
    /// The flags std is compiled with.
    pub flags: &'a [String],
}

/// The key of a std sysroot (see [`Std`]): `<target>-<digest>`, so that a
/// listing of the cache shows the target.
pub fn std(s: &Std<'_>) -> String {
    let mut h = Sha256::new();
    h.update(s.crates);
    h.update([0]);
    h.update(s.recipe);
    h.update([0]);
    h.update(s.pins);
    h.update([0]);
    h.update(s.target);
    for f in s.flags {
        h.update([0]);
        h.update(f);
    }
    format!("{}-{}", s.target, &hex::encode(h.finalize())[..16])
}

/// The key of rustc's `--print cfg` answer: the rust component's pins, the
/// target and its flags decide it.
pub fn rustc_cfg(rust_pins: &str, triple: &str, flags: &[String]) -> String {
    let mut parts = vec!["rustc-cfg", rust_pins, triple];
    parts.extend(flags.iter().map(String::as_str));
    digest(parts)
}

/// The key of a workspace's kept source mirror: its absolute path (only
/// this cache's runs of that checkout share it).
pub fn mirror(workspace: &std::path::Path) -> String {
    digest(["mirror", &workspace.display().to_string()])
}

/// The `signer` of kept dirs that builds without a signing key write.
pub const UNSIGNED: &str = "unsigned";

/// What a kept dependency dir is for, shown by `xbuild cache list`: every
/// field is part of its key. Every target of the workspace builds in it
/// (cargo keeps each target's units in `<triple>/`, and the host side,
/// build scripts and proc macros, once for all of them in the profile's
/// directory), whatever its flags: cargo's own fingerprints tell which
/// units a change of flags makes stale.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct About {
    pub workspace: String,
    /// `build` or `test`.
    pub mode: String,
    /// Who may publish what is built in it: the public key of the run's
    /// signing key, or [`UNSIGNED`]. A build without the key never writes
    /// a kept dir that a signing build then reuses.
    #[serde(default)]
    pub signer: String,
}

/// The key of a kept dependency dir: what it is for and the pins' build
/// digest (anything else must not share compiled code).
pub fn deps(about: &About, pins: &str) -> String {
    digest([
        "deps2",
        about.workspace.as_str(),
        &about.mode,
        &about.signer,
        pins,
    ])
}

/// What compiled units in the store are for: every field is part of the
/// key (a field left out would not compile), and none depends on where the
/// checkout, the cache or HOME is.
#[derive(Debug, Clone)]
pub struct Units<'a> {
    /// The pins' build digest (rustc, zig, std's recipe).
    pub pins: &'a str,
    pub target: &'a str,
    /// `build` or `test`.
    pub mode: &'a str,
    /// The profile, packages, features (`Plan::selection_key`).
    pub selection: &'a str,
    /// The manifest, relative to the workspace root.
    pub manifest: &'a str,
    /// Every rustc flag but the fixed remaps and sysroot.
    pub flags: &'a [String],
    /// The lockfile's sha256; `None` for the fallback entry, which the
    /// newest build of the same everything else writes.
    pub lockfile: Option<&'a str>,
}

/// The key of compiled units in the store (see [`Units`]).
pub fn units(u: &Units<'_>) -> String {
    let flags = u.flags.join("\x1f");
    digest([
        "units",
        u.pins,
        u.target,
        u.mode,
        u.selection,
        u.manifest,
        &flags,
        u.lockfile.unwrap_or("any lockfile"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_keys_change_with_any_input() {
        let flags = vec!["-Ctarget-cpu=x".to_string()];
        let other_flags = vec!["-Ctarget-cpu=y".to_string()];
        let base = Outputs {
            pins: "p",
            target: "x86_64-unknown-linux-musl",
            flags: &flags,
            selection: "profile=release",
            manifest: "Cargo.toml",
            git_version: None,
            epoch: "1",
            snapshot: "s",
            sandboxed: true,
        };
        let key = outputs(&base);
        assert_eq!(key, outputs(&base.clone()));
        for changed in [
            Outputs {
                pins: "q",
                ..base.clone()
            },
            Outputs {
                target: "aarch64-unknown-linux-musl",
                ..base.clone()
            },
            Outputs {
                flags: &other_flags,
                ..base.clone()
            },
            Outputs {
                selection: "profile=dev",
                ..base.clone()
            },
            Outputs {
                manifest: "app/Cargo.toml",
                ..base.clone()
            },
            Outputs {
                git_version: Some("v1"),
                ..base.clone()
            },
            Outputs {
                epoch: "2",
                ..base.clone()
            },
            Outputs {
                snapshot: "t",
                ..base.clone()
            },
            Outputs {
                sandboxed: false,
                ..base.clone()
            },
        ] {
            assert_ne!(key, outputs(&changed), "{changed:?}");
        }
        // parts are separated: moving a character between parts changes the key
        assert_ne!(
            outputs(&Outputs {
                pins: "ab",
                target: "c",
                ..base.clone()
            }),
            outputs(&Outputs {
                pins: "a",
                target: "bc",
                ..base.clone()
            })
        );
    }

    #[test]
    fn std_keys_change_with_any_input_and_name_the_target() {
        let flags = vec!["-Cembed-bitcode=yes".to_string()];
        let other_flags = vec!["-Cembed-bitcode=no".to_string()];
        let base = Std {
            crates: "std",
            recipe: "1",
            pins: "p",
            target: "x86_64-unknown-linux-musl",
            flags: &flags,
        };
        let key = std(&base);
        assert!(key.starts_with("x86_64-unknown-linux-musl-"), "{key}");
        assert_eq!(key, std(&base.clone()));
        for changed in [
            Std {
                crates: "std,test",
                ..base.clone()
            },
            Std {
                recipe: "2",
                ..base.clone()
            },
            Std {
                pins: "q",
                ..base.clone()
            },
            Std {
                target: "aarch64-unknown-linux-musl",
                ..base.clone()
            },
            Std {
                flags: &other_flags,
                ..base.clone()
            },
        ] {
            assert_ne!(key, std(&changed), "{changed:?}");
        }
    }

    fn about() -> About {
        About {
            workspace: "/w".into(),
            mode: "build".into(),
            signer: UNSIGNED.into(),
        }
    }

    #[test]
    fn units_keys_separate_every_input_and_the_fallback() {
        let flags = vec!["-Ctarget-cpu=x".to_string()];
        let base = Units {
            pins: "p",
            target: "x86_64-unknown-linux-musl",
            mode: "build",
            selection: "profile=release",
            manifest: "Cargo.toml",
            flags: &flags,
            lockfile: Some("abc"),
        };
        let key = units(&base);
        assert_eq!(key, units(&base.clone()));
        let other_flags = vec!["-Ctarget-cpu=y".to_string()];
        for changed in [
            Units {
                pins: "q",
                ..base.clone()
            },
            Units {
                target: "aarch64-unknown-linux-musl",
                ..base.clone()
            },
            Units {
                mode: "test",
                ..base.clone()
            },
            Units {
                selection: "profile=dev",
                ..base.clone()
            },
            Units {
                manifest: "app/Cargo.toml",
                ..base.clone()
            },
            Units {
                flags: &other_flags,
                ..base.clone()
            },
            Units {
                lockfile: Some("abd"),
                ..base.clone()
            },
            Units {
                lockfile: None,
                ..base.clone()
            },
        ] {
            assert_ne!(key, units(&changed), "{changed:?}");
        }
    }

    #[test]
    fn deps_keys_separate_workspaces_modes_signers_and_pins() {
        let a = about();
        let base = deps(&a, "pins");
        assert_eq!(base, deps(&a, "pins"));
        assert_ne!(base, deps(&a, "pins2"));
        for changed in [
            About {
                workspace: "/v".into(),
                ..a.clone()
            },
            About {
                mode: "test".into(),
                ..a.clone()
            },
            About {
                signer: "ci:AAAA".into(),
                ..a.clone()
            },
        ] {
            assert_ne!(base, deps(&changed, "pins"));
        }
    }
}
