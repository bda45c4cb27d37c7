//! Tests of `manifest`: the pins and their parsing.

use super::*;

fn parse_str(text: &str) -> Result<Pins, String> {
    parse(text, "t.toml", Path::new("/base")).map_err(|e| e.to_string())
}

const SHA: &str = "6eb9d4d759b292c83810dbee2e9e8e3fbfbf01d864e6e9811bae711fd74e1c2f";

fn with_zig(artifact: &str) -> String {
    DEFAULT_TEXT.replace(
        &DEFAULT_TEXT
            [DEFAULT_TEXT.find("    { pypi").unwrap()..DEFAULT_TEXT.find("\n]\n\n# qemu").unwrap()],
        &format!("    {artifact},"),
    )
}

#[test]
fn builtin_pins_parse() {
    let p = Pins::builtin();
    assert_eq!(p.components.len(), 5);
    assert!(p.has(ComponentKind::Tools) && p.has(ComponentKind::Root));
    let root = p.root_layout.as_ref().unwrap();
    assert_eq!(root.glibc, "2.36");
    // every program the issue names for build scripts is checked
    for tool in [
        "sh",
        "bash",
        "sed",
        "grep",
        "awk",
        "find",
        "diff",
        "patch",
        "make",
        "perl",
        "m4",
        "pkg-config",
        "tar",
        "gzip",
        "xz",
        "bzip2",
        "file",
    ] {
        assert!(
            root.programs
                .iter()
                .any(|l| l.split(' ').next() == Some(tool)),
            "{tool}"
        );
    }
    // the root's pins are the Debian release its glibc names
    let libc = p.component(ComponentKind::Root).artifacts.iter();
    assert!(libc.clone().any(|a| a.label().starts_with("libc6 2.36-")));
    assert_ne!(
        p.std_digest(),
        p.digest_of(|k| matches!(k, ComponentKind::Rust | ComponentKind::Zig)),
        "std's build scripts run in the build root"
    );
    assert_ne!(
        p.build_digest(),
        p.std_digest(),
        "the build tools are not std's"
    );
    let rust = p.component(ComponentKind::Rust);
    assert_eq!(rust.artifacts.len(), 52);
    // every Debian pin can be found without the host's apt sources: its
    // suite and its pool path, whose file is the pinned version
    for a in p.components.iter().flat_map(|c| &c.artifacts) {
        if let Source::Apt {
            name,
            version,
            suite,
            pool,
            ..
        } = &a.source
        {
            let pool = pool.as_deref().unwrap_or_else(|| panic!("{name}: no pool"));
            let suite = suite
                .as_deref()
                .unwrap_or_else(|| panic!("{name}: no suite"));
            let upstream = version.split_once(':').map_or(version.as_str(), |v| v.1);
            assert!(
                pool.rsplit('/')
                    .next()
                    .unwrap()
                    .starts_with(&format!("{name}_{upstream}_")),
                "{pool}"
            );
            assert_eq!(
                pool.starts_with("pool/updates/"),
                suite.ends_with("-security"),
                "{name}: {suite} {pool}"
            );
        }
    }
    assert!(is_snapshot_timestamp(
        p.sources.debian_snapshot.as_deref().unwrap()
    ));
    assert_eq!(p.rust_layout.glibc.as_deref(), Some("2.36"));
    for file in [
        "libllvm22_1%3a22.1.8-1~deb12u1_amd64.deb",
        "rust-web-src_1.96.0+dfsg1-1~deb12u2_all.deb",
    ] {
        assert!(rust.artifacts.iter().any(|a| a.file_name == file), "{file}");
    }
    assert_eq!(p.rust_layout.rustc, "usr/bin/rustc");
    assert_eq!(p.component(ComponentKind::Zig).artifacts[0].sha256, SHA);
    assert_eq!(rust.pin_hash().len(), 16);
    assert_ne!(rust.pin_hash(), p.component(ComponentKind::Zig).pin_hash());
}

#[test]
fn pin_hash_changes_with_pins() {
    let a = parse_str(&with_zig(&format!(
        "{{ url = \"https://x/z.tar.xz\", sha256 = \"{SHA}\" }}"
    )))
    .unwrap();
    let b = parse_str(&with_zig(&format!(
        "{{ url = \"https://x/z.tar.xz\", sha256 = \"{SHA}\", strip = 1 }}"
    )))
    .unwrap();
    let za = a.component(ComponentKind::Zig);
    let zb = b.component(ComponentKind::Zig);
    assert_ne!(za.pin_hash(), zb.pin_hash());
    assert_eq!(
        a.component(ComponentKind::Rust),
        b.component(ComponentKind::Rust)
    );
    assert_ne!(a.digest(), b.digest());
    assert_ne!(a.build_digest(), b.build_digest(), "zig compiles code");
}

#[test]
fn a_new_qemu_changes_the_digest_but_not_the_build_digest() {
    let base = Pins::builtin();
    let at = DEFAULT_TEXT.find("{ apt = \"qemu-user=").unwrap();
    let end = at + DEFAULT_TEXT[at..].find('}').unwrap() + 1;
    let other = DEFAULT_TEXT.replace(
        &DEFAULT_TEXT[at..end],
        &format!("{{ url = \"https://x/q.tar.gz\", sha256 = \"{SHA}\" }}"),
    );
    let q = parse_str(&other).unwrap();
    assert_ne!(base.digest(), q.digest());
    assert_eq!(base.build_digest(), q.build_digest());
}

#[test]
fn sources_parse() {
    let p = parse_str(&with_zig(&format!(
        "{{ path = \"art/zig.tar.gz\", sha256 = \"{}\" }}",
        SHA.to_uppercase()
    )))
    .unwrap();
    let z = &p.component(ComponentKind::Zig).artifacts[0];
    assert_eq!(
        z.source,
        Source::Path {
            path: PathBuf::from("/base/art/zig.tar.gz")
        }
    );
    assert_eq!(z.file_name, "zig.tar.gz");
    assert_eq!(z.sha256, SHA, "digests are normalised to lower case");
    let p = parse_str(&with_zig(&format!(
        "{{ url = \"https://example.invalid/dl/zig-0.14.tar.xz?x=1\", sha256 = \"{SHA}\" }}"
    )))
    .unwrap();
    assert_eq!(
        p.component(ComponentKind::Zig).artifacts[0].file_name,
        "zig-0.14.tar.xz"
    );
}

#[test]
fn errors_name_file_line_and_column() {
    let e = parse_str("version = 1\n[rust\n").unwrap_err();
    assert!(e.starts_with("t.toml:2:"), "{e}");

    let e = parse_str(&with_zig(&format!(
        "{{ pypi = \"ziglang==0.14.1\", file = \"z.whl\", sha256 = \"{SHA}\", colour = 1 }}"
    )))
    .unwrap_err();
    assert!(e.contains("unknown field `colour`"), "{e}");
    let zig_line = DEFAULT_TEXT
        .lines()
        .position(|l| l.contains("{ pypi"))
        .unwrap()
        + 1;
    assert!(e.starts_with(&format!("t.toml:{zig_line}:")), "{e}");

    let e = parse_str(&with_zig(
        "{ pypi = \"ziglang==0.14.1\", file = \"z.whl\" }",
    ))
    .unwrap_err();
    assert!(e.contains("missing field `sha256`"), "{e}");

    let text = with_zig("{ pypi = \"ziglang==0.14.1\", file = \"z.whl\", sha256 = \"abc123\" }");
    let e = parse_str(&text).unwrap_err();
    assert!(
        e.contains("malformed sha256 `abc123`: expected 64 hexadecimal digits"),
        "{e}"
    );
    let line = text.lines().position(|l| l.contains("abc123")).unwrap() + 1;
    assert!(
        e.starts_with(&format!("t.toml:{line}:")),
        "{e} (line {line})"
    );

    let e = parse_str(&with_zig(&format!(
        "{{ pypi = \"ziglang\", file = \"z.whl\", sha256 = \"{SHA}\" }}"
    )))
    .unwrap_err();
    assert!(e.contains("exact version"), "{e}");
    let e = parse_str(&with_zig(&format!(
        "{{ pypi = \"ziglang==1\", sha256 = \"{SHA}\" }}"
    )))
    .unwrap_err();
    assert!(e.contains("needs `file`"), "{e}");
    let e = parse_str(&with_zig(&format!("{{ sha256 = \"{SHA}\" }}"))).unwrap_err();
    assert!(
        e.contains("exactly one of `apt`, `pypi`, `url` or `path` (found none)"),
        "{e}"
    );
    let e = parse_str(&with_zig(&format!(
        "{{ url = \"https://a/b\", path = \"c\", sha256 = \"{SHA}\" }}"
    )))
    .unwrap_err();
    assert!(e.contains("(found url, path)"), "{e}");
    let e = parse_str(&with_zig(&format!(
        "{{ url = \"ftp://a/b\", sha256 = \"{SHA}\" }}"
    )))
    .unwrap_err();
    assert!(e.contains("must start with https://"), "{e}");
    let e = parse_str(&with_zig(&format!(
        "{{ apt = \"zig\", sha256 = \"{SHA}\" }}"
    )))
    .unwrap_err();
    assert!(e.contains("NAME=VERSION"), "{e}");
    let e = parse_str(&DEFAULT_TEXT.replace("version = 1", "version = 2")).unwrap_err();
    assert!(
        e.contains("t.toml:5:11: unsupported toolchains.toml version 2"),
        "{e}"
    );
    let e = parse_str(&DEFAULT_TEXT.replace("[qemu]", "[qemoo]")).unwrap_err();
    assert!(e.contains("qemoo"), "{e}");
}

/// The host CPU is part of the pins: the default ones are for x86_64, an
/// unknown CPU is an error at its line, and a missing key means x86_64.
#[test]
fn the_host_cpu_is_a_field_of_the_pins() {
    assert_eq!(Pins::builtin().host, "x86_64");
    let root = Pins::builtin().root_layout.unwrap();
    assert_eq!(root.bwrap.as_deref(), Some("usr/bin/bwrap"));
    let arm = DEFAULT_TEXT.replace("host = \"x86_64\"", "host = \"aarch64\"");
    assert_eq!(parse_str(&arm).unwrap().host, "aarch64");
    let bad = DEFAULT_TEXT.replace("host = \"x86_64\"", "host = \"vax\"");
    let e = parse_str(&bad).unwrap_err();
    assert!(
        e.contains("unknown host CPU `vax`") && e.contains("t.toml:"),
        "{e}"
    );
    let none = DEFAULT_TEXT.replace("host = \"x86_64\"\n", "");
    assert_eq!(parse_str(&none).unwrap().host, "x86_64");
}
