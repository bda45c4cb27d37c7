//! Tests of `workspace`.

use super::*;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const PKG: &str = "[package]\nname = \"p\"\nversion = \"0.1.0\"\n";

#[test]
fn the_workspace_root_is_found_as_cargo_finds_it() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    // an outer workspace that does not list `other`, an inner one that lists `crates/*`
    write(
        r,
        "Cargo.toml",
        "[workspace]\nmembers = [\"ws/crates/a\"]\n",
    );
    write(
        r,
        "ws/Cargo.toml",
        "[workspace]\nmembers = [\"crates/*\"]\nexclude = [\"crates/skip\"]\n",
    );
    write(r, "ws/crates/a/Cargo.toml", PKG);
    write(r, "ws/crates/skip/Cargo.toml", PKG);
    write(r, "ws/other/Cargo.toml", PKG);
    write(
        r,
        "ws/named/Cargo.toml",
        &format!("{PKG}workspace = \"../..\"\n"),
    );
    let root = |rel: &str| find_workspace_root(&r.join(rel).join("Cargo.toml")).unwrap();
    // the nearest enclosing workspace that lists it, not the top-most match
    assert_eq!(root("ws/crates/a"), r.join("ws"));
    assert_eq!(root("ws"), r.join("ws"));
    // excluded, or not a member: its own root
    assert_eq!(root("ws/crates/skip"), r.join("ws/crates/skip"));
    assert_eq!(root("ws/other"), r.join("ws/other"));
    // package.workspace names the root
    assert_eq!(root("ws/named"), r.to_path_buf());
    // a comment that mentions [workspace] is not a workspace
    write(
        r,
        "plain/Cargo.toml",
        "# not a [workspace]\n[package]\nname = \"q\"\n",
    );
    write(r, "plain/sub/Cargo.toml", PKG);
    assert_eq!(root("plain/sub"), r.join("plain/sub"));
}

#[test]
fn globs_match_one_component() {
    assert!(glob_match("crates/*", "crates/a"));
    assert!(!glob_match("crates/*", "crates/a/b"));
    assert!(glob_match("c?t", "cat"));
    assert!(glob_match("app", "app"));
    assert!(!glob_match("app", "apps"));
}

fn needs_of(root: &Path, manifest: &str, sel: &Selection<'_>) -> Vec<(String, String)> {
    rust_versions(root, &root.join(manifest), sel)
        .unwrap()
        .into_iter()
        .map(|n| (n.package, n.rust_version.to_string()))
        .collect()
}

fn pkg(name: &str, rust: &str) -> String {
    format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n{rust}")
}

#[test]
fn the_selected_packages_rust_versions_are_read_as_cargo_selects() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "Cargo.toml",
        "[workspace]\nmembers = [\"crates/*\", \"tool\"]\nexclude = [\"crates/skip\"]\ndefault-members = [\"crates/a\"]\n\n[workspace.package]\nrust-version = \"1.80\"\n",
    );
    write(
        r,
        "crates/a/Cargo.toml",
        &pkg("a", "rust-version = \"1.70\"\n"),
    );
    write(
        r,
        "crates/b/Cargo.toml",
        &pkg("b", "rust-version.workspace = true\n"),
    );
    write(
        r,
        "crates/skip/Cargo.toml",
        &pkg("skip", "rust-version = \"9.0\"\n"),
    );
    write(r, "crates/notes/README", "not a package");
    write(r, "tool/Cargo.toml", &pkg("tool", ""));
    let members: Vec<String> = members(
        r,
        &read_manifest(&r.join("Cargo.toml")).unwrap()["workspace"]
            .as_table()
            .unwrap()
            .clone(),
    )
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    assert_eq!(members, ["crates/a", "crates/b", "tool"]);

    let none: &[String] = &[];
    let default = Selection {
        packages: none,
        workspace: false,
        exclude: none,
    };
    // the root's default-members
    assert_eq!(
        needs_of(r, "Cargo.toml", &default),
        [("a".into(), "1.70".into())]
    );
    // a member's manifest: that package
    assert_eq!(
        needs_of(r, "crates/b/Cargo.toml", &default),
        [("b".into(), "1.80".into())]
    );
    // every member but the excluded; tool says nothing
    let exclude = vec!["a".to_string()];
    let all = Selection {
        packages: none,
        workspace: true,
        exclude: &exclude,
    };
    assert_eq!(
        needs_of(r, "Cargo.toml", &all),
        [("b".into(), "1.80".into())]
    );
    // -p, and a dependency's name left to cargo
    let named = vec!["b".to_string(), "serde".to_string()];
    let p = Selection {
        packages: &named,
        workspace: false,
        exclude: none,
    };
    assert_eq!(needs_of(r, "Cargo.toml", &p), [("b".into(), "1.80".into())]);

    write(
        r,
        "crates/a/Cargo.toml",
        &pkg("a", "rust-version = \"soon\"\n"),
    );
    let e = rust_versions(r, &r.join("Cargo.toml"), &default).unwrap_err();
    assert!(e.chain().any(|c| c.is::<Usage>()), "{e:#}");
}
