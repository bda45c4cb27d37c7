//! Tests of `rust_release`.

use super::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn usage(e: &anyhow::Error) -> String {
    assert!(
        e.chain().any(|c| c.is::<Usage>()),
        "not a usage error: {e:#}"
    );
    format!("{e:#}")
}

#[test]
fn versions_parse_compare_and_match_as_cargo_writes_them() {
    assert_eq!(
        v("1.85"),
        Version {
            major: 1,
            minor: 85,
            patch: None
        }
    );
    assert_eq!(v("1.85.1").to_string(), "1.85.1");
    for bad in [
        "",
        "1",
        "1.",
        "1.x",
        "1.85.1.2",
        "stable",
        "1.85-beta",
        " .1",
    ] {
        assert_eq!(Version::parse(bad), None, "{bad:?}");
    }
    assert!(v("1.96.0") > v("1.85.1"));
    assert!(v("1.96.0") < v("1.99"));
    // a missing patch is .0
    assert!(v("1.96") <= v("1.96.0") && v("1.96") >= v("1.96.0"));
    assert!(v("1.96.1") > v("1.96"));
    assert!(v("1.96.0").is(&v("1.96")));
    assert!(v("1.96.0").is(&v("1.96.0")));
    assert!(!v("1.96.0").is(&v("1.96.1")));
    assert!(!v("1.96.0").is(&v("1.97")));
}

#[test]
fn an_artifact_says_its_release_by_package_version_or_file_name() {
    let file = |name: &str| Artifact {
        source: Source::Path { path: name.into() },
        file_name: name.into(),
        sha256: String::new(),
        strip: 0,
    };
    let apt = |name: &str, version: &str| Artifact {
        source: Source::Apt {
            name: name.into(),
            version: version.into(),
            arch: None,
            suite: None,
            pool: None,
            snapshot: None,
        },
        ..file("x.deb")
    };
    assert_eq!(
        release_of(&file("rust-1.96.0-x86_64-unknown-linux-gnu.tar.xz")),
        Some(v("1.96.0"))
    );
    assert_eq!(
        release_of(&file("rustc-1.85.1-src.tar.gz")),
        Some(v("1.85.1"))
    );
    assert_eq!(release_of(&file("rust.tar.gz")), None);
    assert_eq!(release_of(&file("rust-src-1.96.0.tar.xz")), None);
    assert_eq!(
        release_of(&apt("rustc", "1.85.0+dfsg1-1")),
        Some(v("1.85.0"))
    );
    assert_eq!(
        release_of(&apt("rustc-web", "1:1.96.0+dfsg1-1~deb12u2")),
        Some(v("1.96.0"))
    );
    assert_eq!(
        release_of(&apt("cargo-web", "1.96.0+dfsg1-1~deb12u2")),
        None
    );
    assert_eq!(release_of(&apt("libllvm22", "1:22.1.8-1~deb12u1")), None);
}

#[test]
fn the_built_in_pins_say_their_release() {
    let pins = Pins::builtin();
    let release = pinned(&pins).unwrap();
    assert_eq!((release.major, release.minor), (1, 96), "{release}");
    assert!(release.patch.is_some());
}

fn ws(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

#[test]
fn the_workspace_or_rust_chooses_and_an_unpinned_release_is_refused() {
    let pins = Pins::builtin();
    let release = pinned(&pins).unwrap();
    let minor = format!("{}.{}", release.major, release.minor);

    // nothing asks: the pins' own
    let d = ws(&[]);
    let c = choose(&pins, None, d.path()).unwrap().unwrap();
    assert_eq!(c.release, release);
    assert!(c.why.contains("the pins' release"), "{}", c.why);

    for (file, text) in [
        (
            "rust-toolchain.toml",
            format!("[toolchain]\nchannel = \"{minor}\"\n"),
        ),
        (
            "rust-toolchain.toml",
            format!("[toolchain]\nchannel = \"{release}\"\n"),
        ),
        ("rust-toolchain", format!("{minor}\n")),
        (
            "rust-toolchain",
            format!("[toolchain]\nchannel = \"{minor}\"\n"),
        ),
    ] {
        let d = ws(&[(file, &text)]);
        let c = choose(&pins, None, d.path()).unwrap().unwrap();
        assert_eq!(c.release, release);
        assert!(c.why.starts_with(&format!("{file} asks for")), "{}", c.why);
    }

    let d = ws(&[("rust-toolchain.toml", "[toolchain]\nchannel = \"stable\"\n")]);
    let c = choose(&pins, None, d.path()).unwrap().unwrap();
    assert!(c.why.contains("the newest pinned"), "{}", c.why);
    let newest = all_pinned(&pins)
        .into_iter()
        .fold(release, |a, b| if b > a { b } else { a });
    assert_eq!(c.release, newest);

    for channel in ["1.84", "1.80.1", "nightly", "nightly-2026-01-01", "beta"] {
        let d = ws(&[(
            "rust-toolchain.toml",
            &format!("[toolchain]\nchannel = \"{channel}\"\n"),
        )]);
        let msg = usage(&choose(&pins, None, d.path()).unwrap_err());
        assert!(
            msg.contains(&format!("rust-toolchain.toml asks for Rust \"{channel}\"")),
            "{msg}"
        );
        assert!(msg.contains(&release.to_string()), "{msg}");
        assert!(
            msg.contains(&format!("override it with `--rust {minor}`")),
            "{msg}"
        );
    }

    // --rust over the workspace's file, both ways
    let d = ws(&[("rust-toolchain.toml", "[toolchain]\nchannel = \"1.84\"\n")]);
    let c = choose(&pins, Some(&minor), d.path()).unwrap().unwrap();
    assert_eq!(c.why, format!("--rust asks for {minor}"));
    let d = ws(&[]);
    let msg = usage(&choose(&pins, Some("1.99"), d.path()).unwrap_err());
    assert!(msg.contains("--rust asks for Rust \"1.99\""), "{msg}");
    assert!(
        msg.contains(&format!("Pass a pinned release (`--rust {minor}`)")),
        "{msg}"
    );
}

#[test]
fn toolchain_files_that_disagree_or_name_no_channel_are_refused() {
    let pins = Pins::builtin();
    let d = ws(&[
        ("rust-toolchain.toml", "[toolchain]\nchannel = \"1.96\"\n"),
        ("rust-toolchain", "1.85\n"),
    ]);
    let msg = usage(&choose(&pins, None, d.path()).unwrap_err());
    assert!(msg.contains("keep one of them"), "{msg}");
    let d = ws(&[("rust-toolchain.toml", "[toolchain]\npath = \"/opt/rust\"\n")]);
    let msg = usage(&choose(&pins, None, d.path()).unwrap_err());
    assert!(msg.contains("a local toolchain"), "{msg}");
    let d = ws(&[("rust-toolchain.toml", "[toolchain\n")]);
    let msg = usage(&choose(&pins, None, d.path()).unwrap_err());
    assert!(msg.contains("not valid TOML"), "{msg}");
}

#[test]
fn components_and_targets_xbuild_does_not_use_are_named() {
    let d = ws(&[(
        "rust-toolchain.toml",
        "[toolchain]\nchannel = \"stable\"\ncomponents = [\"clippy\", \"rust-src\"]\ntargets = [\"wasm32-unknown-unknown\"]\n",
    )]);
    let f = toolchain_file(d.path()).unwrap().unwrap();
    assert_eq!(
        f.ignored,
        ["components clippy", "targets wasm32-unknown-unknown"]
    );
}

#[test]
fn a_rust_version_above_the_release_is_refused_naming_both() {
    let pins = Pins::builtin();
    let release = pinned(&pins).unwrap();
    let choice = Choice {
        release,
        why: "the pins' release".into(),
        notes: Vec::new(),
    };
    let root = Path::new("/w");
    let need = |package: &str, version: &str| Needs {
        package: package.into(),
        manifest: root.join(package).join("Cargo.toml"),
        rust_version: v(version),
    };
    check(
        &choice,
        &pins,
        &[need("old", "1.70"), need("same", &release.to_string())],
        root,
    )
    .unwrap();
    let e = check(
        &choice,
        &pins,
        &[
            need("old", "1.70"),
            need("new", "1.99"),
            need("newer", "1.99.5"),
        ],
        root,
    )
    .unwrap_err();
    let msg = usage(&e);
    assert!(
        msg.contains("package `newer` needs Rust 1.99.5 (`rust-version` in newer/Cargo.toml)"),
        "{msg}"
    );
    assert!(msg.contains(&format!("would use {release}")), "{msg}");
}

#[test]
fn cargos_refusal_of_a_dependency_is_read_from_its_last_lines() {
    let said: Vec<String> = [
        "   Compiling nothing yet",
        "error: rustc 1.96.0 is not supported by the following packages:",
        "  needs-new@0.1.0 requires rustc 1.99",
        "  other@2.0.0 requires rustc 1.98.1",
        "Either upgrade rustc or select compatible dependency versions with",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let refused = refused_by_cargo(&said);
    assert_eq!(
        refused,
        [
            ("needs-new@0.1.0".to_string(), v("1.99")),
            ("other@2.0.0".to_string(), v("1.98.1"))
        ]
    );
    assert!(refused_by_cargo(&said[..1]).is_empty());
    // what a build script prints, cargo shows indented
    let indented: Vec<String> = said.iter().map(|l| format!("  {l}")).collect();
    assert!(refused_by_cargo(&indented).is_empty());
    let pins = Pins::builtin();
    let choice = Choice {
        release: pinned(&pins).unwrap(),
        why: "the pins' release".into(),
        notes: Vec::new(),
    };
    let msg = usage(&dependencies_need_newer(&choice, &pins, &refused));
    assert!(
        msg.contains("needs-new@0.1.0 needs Rust 1.99, other@2.0.0 needs Rust 1.98.1"),
        "{msg}"
    );
}

#[test]
fn every_pinned_release_is_chosen_by_its_number_and_keyed_apart() {
    let pins = Pins::builtin();
    let all = all_pinned(&pins);
    assert!(
        all.len() >= 3,
        "the built-in pins hold several releases: {all:?}"
    );
    let d = ws(&[]);
    let mut digests = std::collections::BTreeSet::new();
    for v in &all {
        let minor = format!("{}.{}", v.major, v.minor);
        let c = choose(&pins, Some(&minor), d.path()).unwrap().unwrap();
        assert_eq!(c.release, *v);
        let selected = select(&pins, c.release);
        assert_eq!(pinned(&selected), Some(*v), "the selected pins hold {v}");
        // and still know every release: listed, kept by gc, selected back
        let mut known = all_pinned(&selected);
        known.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut every = all.clone();
        every.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(known, every, "{v}");
        assert_eq!(
            select(&selected, all[0]).digest(),
            pins.digest(),
            "{v}: back to the default"
        );
        assert_eq!(
            selected.all_components().count(),
            pins.all_components().count() + usize::from(*v != all[0]) * 2,
            "{v}: the default's rust and root are still among the components gc keeps"
        );
        // two releases never share a toolchain, a std or a kept dir
        assert!(digests.insert(selected.digest()), "{v}: digest shared");
        assert!(
            digests.insert(selected.std_digest()),
            "{v}: std digest shared"
        );
        assert!(
            digests.insert(selected.build_digest()),
            "{v}: build digest shared"
        );
    }
    // the default is the pins as they are; a release from a moving suite says so
    assert_eq!(select(&pins, all[0]), pins);
    let moving: Vec<_> = pins
        .releases
        .iter()
        .filter(|r| r.provenance.moving)
        .collect();
    assert!(
        moving.iter().all(|r| r.root.is_some()),
        "a release from testing or unstable brings its own build root"
    );
}
