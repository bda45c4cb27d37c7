//! The workspace's own cargo configuration (`.cargo/config.toml` at its
//! root, as tracked in the snapshot), as far as xbuild must combine it with
//! its own settings.
//!
//! xbuild passes its per-target flags in `CARGO_ENCODED_RUSTFLAGS`, which
//! makes cargo ignore every `rustflags` of configuration. So xbuild reads
//! them itself, with cargo's precedence: every matching
//! `[target.<triple>] rustflags` and `[target.'cfg(...)'] rustflags`, joined,
//! else `[build] rustflags`. They come after the table's flags (a later
//! flag wins in rustc), except those that would undo what xbuild must control
//! (the linker, `crt-static`, the relocation model, self-contained linking):
//! those are dropped with a warning. A user's `RUSTFLAGS` replaces all of it,
//! as it does for cargo.

use std::path::Path;

use anyhow::{Context, Result};

/// The rustflags the workspace's configuration gives `triple`, and what of
/// the configuration xbuild overrides (to say so).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WorkspaceFlags {
    pub flags: Vec<String>,
    /// Where they came from (`build.rustflags`, `target.<triple>.rustflags`, ...).
    pub sources: Vec<String>,
    /// Messages about settings xbuild overrides.
    pub overridden: Vec<String>,
}

/// Read `<root>/.cargo/config.toml` (or `.cargo/config`) for `triple`, whose
/// `cfg` values (`rustc --print cfg`) are `cfg`.
pub fn read(root: &Path, triple: &str, cfg: &[String]) -> Result<WorkspaceFlags> {
    let Some(path) = [".cargo/config.toml", ".cargo/config"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.is_file())
    else {
        return Ok(WorkspaceFlags::default());
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| crate::exit::Usage(format!("{} is not valid TOML: {e}", path.display())))?;
    Ok(from_table(&doc, triple, cfg))
}

fn from_table(doc: &toml::Table, triple: &str, cfg: &[String]) -> WorkspaceFlags {
    let mut out = WorkspaceFlags::default();
    if let Some(targets) = doc.get("target").and_then(|t| t.as_table()) {
        for (key, value) in targets {
            let matches =
                if let Some(expr) = key.strip_prefix("cfg(").and_then(|k| k.strip_suffix(')')) {
                    eval(expr, cfg)
                } else {
                    key == triple
                };
            if !matches {
                continue;
            }
            if let Some(flags) = value.get("rustflags") {
                out.flags.extend(flag_list(flags));
                out.sources.push(format!("target.{key}.rustflags"));
            }
            for (setting, what) in [
                ("linker", "xbuild's zig wrapper links"),
                (
                    "runner",
                    "xbuild runs tests itself, natively or under its pinned qemu",
                ),
            ] {
                if value.get(setting).is_some() {
                    out.overridden.push(format!(
                        "target.{key}.{setting} in .cargo/config.toml is not used: {what}"
                    ));
                }
            }
        }
    }
    if out.sources.is_empty()
        && let Some(flags) = doc.get("build").and_then(|b| b.get("rustflags"))
    {
        out.flags = flag_list(flags);
        out.sources.push("build.rustflags".into());
    }
    let (kept, dropped) = split_conflicts(&out.flags);
    for d in dropped {
        out.overridden.push(format!(
            "`{d}` from .cargo/config.toml is not used: xbuild sets it for a static build"
        ));
    }
    out.flags = kept;
    out
}

/// A `rustflags` value: an array of strings, or one string split on spaces.
fn flag_list(v: &toml::Value) -> Vec<String> {
    match v {
        toml::Value::String(s) => s.split_whitespace().map(String::from).collect(),
        toml::Value::Array(a) => a
            .iter()
            .filter_map(|f| f.as_str())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// Split off the `-C` settings xbuild controls. `-C x` and `-Cx` forms.
fn split_conflicts(flags: &[String]) -> (Vec<String>, Vec<String>) {
    const CONTROLLED: &[&str] = &["linker=", "relocation-model=", "link-self-contained="];
    let conflicts = |value: &str| {
        CONTROLLED.iter().any(|c| value.starts_with(c))
            || (value.starts_with("target-feature=") && value.contains("crt-static"))
    };
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < flags.len() {
        let f = &flags[i];
        if f == "-C" && i + 1 < flags.len() {
            if conflicts(&flags[i + 1]) {
                dropped.push(format!("-C {}", flags[i + 1]));
            } else {
                kept.extend([f.clone(), flags[i + 1].clone()]);
            }
            i += 2;
            continue;
        }
        match f.strip_prefix("-C") {
            Some(v) if conflicts(v) => dropped.push(f.clone()),
            _ => kept.push(f.clone()),
        }
        i += 1;
    }
    (kept, dropped)
}

/// Evaluate a `cfg(...)` predicate's inside against `rustc --print cfg` lines
/// (`unix`, `target_arch="x86_64"`).
fn eval(expr: &str, cfg: &[String]) -> bool {
    let expr = expr.trim();
    for (op, all) in [("all(", true), ("any(", false)] {
        if let Some(inner) = expr.strip_prefix(op).and_then(|e| e.strip_suffix(')')) {
            let parts = split_top(inner);
            return if all {
                parts.iter().all(|p| eval(p, cfg))
            } else {
                parts.iter().any(|p| eval(p, cfg))
            };
        }
    }
    if let Some(inner) = expr.strip_prefix("not(").and_then(|e| e.strip_suffix(')')) {
        return !eval(inner, cfg);
    }
    let normalized = match expr.split_once('=') {
        Some((k, v)) => format!("{}={}", k.trim(), v.trim()),
        None => expr.to_string(),
    };
    cfg.contains(&normalized)
}

/// Split `a, b(c, d), e` at top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start, mut quoted) = (Vec::new(), 0, 0, false);
    for (i, ch) in s.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = s[start..].trim();
    if !last.is_empty() {
        parts.push(last);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Vec<String> {
        [
            "unix",
            "target_arch=\"aarch64\"",
            "target_os=\"linux\"",
            "target_env=\"musl\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn flags(config: &str, triple: &str) -> WorkspaceFlags {
        from_table(&toml::from_str(config).unwrap(), triple, &cfg())
    }

    const T: &str = "aarch64-unknown-linux-musl";

    #[test]
    fn build_rustflags_apply_when_no_target_section_matches() {
        let f = flags("[build]\nrustflags = [\"--cfg\", \"xb_probe\"]\n", T);
        assert_eq!(f.flags, ["--cfg", "xb_probe"]);
        assert_eq!(f.sources, ["build.rustflags"]);
        let f = flags("[build]\nrustflags = \"--cfg tokio_unstable\"\n", T);
        assert_eq!(f.flags, ["--cfg", "tokio_unstable"]);
    }

    #[test]
    fn target_sections_win_over_build_and_join_in_order() {
        let f = flags(
            "[build]\nrustflags = [\"--cfg\", \"from_build\"]\n\
             [target.aarch64-unknown-linux-musl]\nrustflags = [\"--cfg\", \"from_triple\"]\n\
             [target.'cfg(all(unix, target_arch = \"aarch64\"))']\nrustflags = [\"--cfg\", \"from_cfg\"]\n\
             [target.'cfg(target_arch = \"x86_64\")']\nrustflags = [\"--cfg\", \"not_me\"]\n\
             [target.x86_64-unknown-linux-musl]\nrustflags = [\"--cfg\", \"nor_me\"]\n",
            T,
        );
        assert!(f.flags.contains(&"from_triple".to_string()), "{f:?}");
        assert!(f.flags.contains(&"from_cfg".to_string()), "{f:?}");
        assert!(
            !f.flags
                .iter()
                .any(|x| x == "from_build" || x == "not_me" || x == "nor_me")
        );
        assert_eq!(f.sources.len(), 2);
    }

    #[test]
    fn settings_xbuild_controls_are_dropped_and_said() {
        let f = flags(
            "[target.aarch64-unknown-linux-musl]\nlinker = \"aarch64-linux-gnu-gcc\"\n\
             rustflags = [\"-C\", \"target-feature=-crt-static\", \"-Clinker=cc\", \"-C\", \"target-cpu=cortex-a72\"]\n",
            T,
        );
        assert_eq!(f.flags, ["-C", "target-cpu=cortex-a72"]);
        let said = f.overridden.join("\n");
        assert!(
            said.contains("target.aarch64-unknown-linux-musl.linker"),
            "{said}"
        );
        assert!(said.contains("-C target-feature=-crt-static"), "{said}");
        assert!(said.contains("-Clinker=cc"), "{said}");
    }

    #[test]
    fn cfg_expressions() {
        let c = cfg();
        assert!(eval("unix", &c));
        assert!(!eval("windows", &c));
        assert!(eval("target_arch = \"aarch64\"", &c));
        assert!(eval("any(windows, target_env=\"musl\")", &c));
        assert!(eval("not(target_os = \"macos\")", &c));
        assert!(!eval("all(unix, not(target_arch = \"aarch64\"))", &c));
    }
}
