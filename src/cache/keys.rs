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
pub const RECIPE: &str = "7";

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

/// The key of one target's outputs: `parts` are every other input (pins,
/// target, flags, profile, selection, git version, the snapshot's digest, ...).
pub fn outputs(parts: &[&str]) -> String {
    digest(parts.iter().copied())
}

/// What a kept dependency dir is for, shown by `xbuild cache list`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct About {
    pub workspace: String,
    pub target: String,
    /// `build` or `test`.
    pub mode: String,
}

/// The key of a kept dependency dir: `parts` are the pins' build digest, the
/// flags and anything else that must not share compiled code.
pub fn deps(about: &About, parts: &[&str]) -> String {
    digest(
        [&about.workspace, &about.target, &about.mode]
            .into_iter()
            .map(String::as_str)
            .chain(parts.iter().copied()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_keys_change_with_any_input() {
        let base = outputs(&["pins", "x86_64", "flags", "release", "src"]);
        assert_eq!(
            base,
            outputs(&["pins", "x86_64", "flags", "release", "src"])
        );
        assert_ne!(
            base,
            outputs(&["pins2", "x86_64", "flags", "release", "src"])
        );
        assert_ne!(base, outputs(&["pins", "x86_64", "flags", "debug", "src"]));
        assert_ne!(
            base,
            outputs(&["pins", "x86_64", "flags", "release", "src2"])
        );
        // parts are separated: moving a character between parts changes the key
        assert_ne!(outputs(&["ab", "c"]), outputs(&["a", "bc"]));
    }

    fn about() -> About {
        About {
            workspace: "/w".into(),
            target: "x86_64-unknown-linux-musl".into(),
            mode: "build".into(),
        }
    }

    #[test]
    fn deps_keys_separate_workspaces_targets_modes_and_flags() {
        let a = about();
        let base = deps(&a, &["pins", "flags"]);
        assert_eq!(base, deps(&a, &["pins", "flags"]));
        assert_ne!(base, deps(&a, &["pins", "flags2"]));
        assert_ne!(base, deps(&a, &["pins2", "flags"]));
        for changed in [
            About {
                workspace: "/v".into(),
                ..a.clone()
            },
            About {
                target: "i686-unknown-linux-musl".into(),
                ..a.clone()
            },
            About {
                mode: "test".into(),
                ..a.clone()
            },
        ] {
            assert_ne!(base, deps(&changed, &["pins", "flags"]));
        }
    }
}
