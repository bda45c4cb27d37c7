//! `xbuild toolchain pin` against a small Debian archive on loopback, signed
//! by gpg (another OpenPGP implementation than the one xbuild verifies with)
//! with a key the test makes: the pins come out exactly as the lists say, a
//! second run changes nothing, and a bad signature or a list whose sum does
//! not match is refused with nothing written.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use crate::fixtures::{self, Reply, sha256};
use crate::support::{run, xbuild};

/// The build root's starting packages (src/commands/toolchain/pin.rs).
const ROOT: &[&str] = &[
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

struct Pkg {
    name: &'static str,
    version: &'static str,
    section: &'static str,
    depends: &'static str,
    security: bool,
}

fn pkg(
    name: &'static str,
    version: &'static str,
    section: &'static str,
    depends: &'static str,
) -> Pkg {
    Pkg {
        name,
        version,
        section,
        depends,
        security: false,
    }
}

fn pool(p: &Pkg) -> String {
    format!(
        "pool/{}main/{}/{}/{}_{}_amd64.deb",
        if p.security { "updates/" } else { "" },
        &p.name[..1],
        p.name,
        p.name,
        p.version.rsplit(':').next().unwrap()
    )
}

fn digest(p: &Pkg) -> String {
    sha256(format!("{}={}", p.name, p.version).as_bytes())
}

fn packages(list: &[&Pkg]) -> String {
    let mut s = String::new();
    for p in list {
        let _ = writeln!(
            s,
            "Package: {}\nVersion: {}\nArchitecture: amd64\nSection: {}\nFilename: {}\nSHA256: {}",
            p.name,
            p.version,
            p.section,
            pool(p),
            digest(p)
        );
        if !p.depends.is_empty() {
            let _ = writeln!(s, "Depends: {}", p.depends);
        }
        s.push('\n');
    }
    s
}

fn xz(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = liblzma::write::XzEncoder::new(&mut out, 6);
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    out
}

fn gpg(home: &Path, args: &[&str], input: Option<&str>) -> Vec<u8> {
    let mut cmd = Command::new("gpg");
    cmd.env("GNUPGHOME", home)
        .args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("gpg runs (apt-get install gpg)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.unwrap_or_default().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A key in its own GNUPGHOME; its public key as a binary keyring.
fn key(dir: &Path, name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let home = dir.join(format!("gnupg-{name}"));
    fs::create_dir_all(&home).unwrap();
    let mut perms = fs::metadata(&home).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    fs::set_permissions(&home, perms).unwrap();
    gpg(
        &home,
        &[
            "--quick-gen-key",
            &format!("{name} <{name}@archive.test>"),
            "ed25519",
            "sign",
            "never",
        ],
        None,
    );
    let public = gpg(&home, &["--export"], None);
    (home, public)
}

fn in_release(suite: &str, list: &[u8]) -> String {
    in_release_until(suite, list, "Sat, 01 Jan 2039 00:00:00 UTC")
}

fn in_release_until(suite: &str, list: &[u8], until: &str) -> String {
    format!(
        "Origin: Debian\nLabel: Debian\nSuite: oldstable\nCodename: {suite}\nDate: Sat, 05 Dec 2026 10:00:00 UTC\nValid-Until: {until}\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages.xz\n",
        sha256(list),
        list.len()
    )
}

fn archive() -> Vec<Pkg> {
    let mut list = vec![
        pkg(
            "rustc-web",
            "1.96.0+dfsg1-1~deb12u2",
            "rust",
            "libc6 (>= 2.34), libllvm22, libstd-rust-web-dev (= 1.96.0+dfsg1-1~deb12u2), gcc, libc6-dev | libc-dev",
        ),
        pkg(
            "cargo-web",
            "1.96.0+dfsg1-1~deb12u2",
            "rust",
            "rustc-web, libcurl4 (>= 7.16.2), zlib1g",
        ),
        pkg("rust-web-src", "1.96.0+dfsg1-1~deb12u2", "rust", ""),
        pkg(
            "libstd-rust-web-dev",
            "1.96.0+dfsg1-1~deb12u2",
            "libdevel",
            "libstd-rust-web-1.96 (= 1.96.0+dfsg1-1~deb12u2)",
        ),
        pkg(
            "libstd-rust-web-1.96",
            "1.96.0+dfsg1-1~deb12u2",
            "libs",
            "libc6",
        ),
        pkg(
            "libllvm22",
            "1:22.1.8-1~deb12u1",
            "libs",
            "libc6, libstdc++6, zlib1g",
        ),
        pkg("libcurl4", "7.88.1-10+deb12u15", "libs", "libc6, zlib1g"),
        pkg("zlib1g", "1:1.2.13.dfsg-1", "libs", "libc6"),
        pkg("gcc", "4:12.2.0-3", "devel", "cpp"),
        pkg("libc6-dev", "2.36-9+deb12u14", "libdevel", "libc6"),
        // an older release, whole: not the one asked for, until it is
        pkg("rustc-web", "1.85.0+dfsg3-1~deb12u3", "rust", "libc6"),
        pkg("cargo-web", "1.85.0+dfsg3-1~deb12u3", "rust", "rustc-web"),
        pkg("rust-web-src", "1.85.0+dfsg3-1~deb12u3", "rust", ""),
        pkg(
            "libstd-rust-web-dev",
            "1.85.0+dfsg3-1~deb12u3",
            "libdevel",
            "libstd-rust-web-1.85",
        ),
        pkg(
            "libstd-rust-web-1.85",
            "1.85.0+dfsg3-1~deb12u3",
            "libs",
            "libc6",
        ),
    ];
    list.push(pkg("perl-base", "5.36.0-7", "perl", "libc6"));
    // the rest of the build root: no dependencies of their own
    for name in ROOT {
        if !list.iter().any(|p| p.name == *name) {
            let depends = if *name == "perl" {
                "perl-base, dpkg"
            } else {
                ""
            };
            list.push(pkg(
                name,
                "1.0-1",
                if name.starts_with("lib") {
                    "libs"
                } else {
                    "utils"
                },
                depends,
            ));
        }
    }
    let mut newer = pkg("zlib1g", "1:1.2.13.dfsg-1+deb12u1", "libs", "libc6");
    newer.security = true;
    list.push(newer);
    list
}

fn line(p: &Pkg) -> String {
    format!(
        "    {{ apt = \"{}={}\", arch = \"amd64\", suite = \"{}\", pool = \"{}\", sha256 = \"{}\" }},",
        p.name,
        p.version,
        if p.security {
            "bookworm-security"
        } else {
            "bookworm"
        },
        pool(p),
        digest(p)
    )
}

#[test]
fn toolchain_pin_writes_a_signed_archives_pins_exactly_and_refuses_a_bad_signature() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let (signer, public) = key(dir, "archive");
    let (stranger, _) = key(dir, "stranger");
    let keyring = dir.join("keyring.gpg");
    fs::write(&keyring, &public).unwrap();

    let list = archive();
    let (main, security): (Vec<&Pkg>, Vec<&Pkg>) = list.iter().partition(|p| !p.security);
    let main_xz = xz(&packages(&main));
    let sec_xz = xz(&packages(&security));
    let signed = |home: &Path, body: &str| {
        String::from_utf8(gpg(home, &["--clearsign"], Some(body))).unwrap()
    };
    let good_main = signed(&signer, &in_release("bookworm", &main_xz));
    let good_sec = signed(&signer, &in_release("bookworm-security", &sec_xz));
    // gpgv, not xbuild, agrees the signature is good
    let check = Command::new("gpgv")
        .args(["--keyring", keyring.to_str().unwrap(), "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(good_main.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let routes = |main_release: &str| {
        let mut r = HashMap::new();
        r.insert(
            "/debian/dists/bookworm/InRelease".to_string(),
            Reply::Ok(main_release.as_bytes().to_vec()),
        );
        r.insert(
            "/debian/dists/bookworm/main/binary-amd64/Packages.xz".into(),
            Reply::Ok(main_xz.clone()),
        );
        r.insert(
            "/debian-security/dists/bookworm-security/InRelease".into(),
            Reply::Ok(good_sec.as_bytes().to_vec()),
        );
        r.insert(
            "/debian-security/dists/bookworm-security/main/binary-amd64/Packages.xz".into(),
            Reply::Ok(sec_xz.clone()),
        );
        r
    };
    let builtin =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/toolchains.toml")).unwrap();
    let pins = dir.join("toolchains.toml");
    fs::write(&pins, &builtin).unwrap();
    fs::set_permissions(&pins, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let pin = |server: &fixtures::Server, rust: &str| {
        let mut cmd = xbuild(&home);
        cmd.env("XBUILD_DEBIAN_MIRROR", format!("{}/debian", server.base))
            .args([
                "toolchain",
                "pin",
                "--rust",
                rust,
                "--suite",
                "bookworm",
                "--keyring",
                keyring.to_str().unwrap(),
                "--write",
                pins.to_str().unwrap(),
            ]);
        run(&mut cmd)
    };

    let server = fixtures::serve(routes(&good_main));
    let r = pin(&server, "1.96");
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Wrote Rust 1.96.0 from Debian bookworm (oldstable)"),
        "{}",
        r.stderr
    );
    let written = fs::read_to_string(&pins).unwrap();
    // [rust]: the roots and the libraries they need, the newest version of
    // each (zlib1g from the security suite), not libc6, gcc or libc6-dev
    let rust: Vec<&str> = [
        "cargo-web",
        "libcurl4",
        "libllvm22",
        "libstd-rust-web-1.96",
        "libstd-rust-web-dev",
        "libstdc++6",
        "rust-web-src",
        "rustc-web",
        "zlib1g",
    ]
    .to_vec();
    let mut expected: Vec<&Pkg> = rust
        .iter()
        .map(|n| {
            list.iter()
                .filter(|p| p.name == *n && !p.version.starts_with("1.85"))
                .max_by_key(|p| p.security)
                .unwrap()
        })
        .collect();
    expected.sort_by_key(|p| format!("{}={}", p.name, p.version));
    let section = |name: &str| -> Vec<String> {
        let start = written.find(&format!("\n{name}\n")).unwrap();
        let rest = &written[start..];
        let open = rest.find("artifacts = [\n").unwrap() + "artifacts = [\n".len();
        let close = rest[open..].find("\n]").unwrap();
        rest[open..open + close].lines().map(String::from).collect()
    };
    assert_eq!(
        section("[rust]"),
        expected.iter().map(|p| line(p)).collect::<Vec<_>>()
    );
    // [build-root]: the starting packages and their needs, without dpkg
    let root = section("[build-root]");
    assert_eq!(root.len(), ROOT.len() + 1, "{root:#?}"); // and perl-base
    assert!(root.iter().any(|l| l.contains("\"perl-base=5.36.0-7\"")));
    assert!(!root.iter().any(|l| l.contains("dpkg")));
    // the rest of the file as it was
    assert!(written.contains("[zig]") && written.contains("debian-keyring = "));

    // the file keeps its mode
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&pins).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // again: nothing changes
    let r = pin(&server, "1.96");
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("Unchanged"), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&pins).unwrap(), written);

    // another release: a block of its own, replaced on the next run
    let r = pin(&server, "1.85");
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    let with_185 = fs::read_to_string(&pins).unwrap();
    assert!(with_185.contains("[releases.\"1.85\".rust]"), "{with_185}");
    assert!(with_185.contains("\"rustc-web=1.85.0+dfsg3-1~deb12u3\""));
    let r = pin(&server, "1.85");
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&pins).unwrap(), with_185);

    // a release the archive does not have
    let r = pin(&server, "1.99");
    assert_eq!(r.status, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("Rust 1.99 is in none of bookworm"),
        "{}",
        r.stderr
    );

    // refused, nothing written: signed by a key not in the keyring; the
    // signed text changed after signing; a list whose sum is not the signed one
    let tampered = good_main.replace("Date: Sat, 05 Dec 2026", "Date: Sun, 06 Dec 2026");
    assert_ne!(tampered, good_main);
    for (what, release, says) in [
        (
            "another key",
            signed(&stranger, &in_release("bookworm", &main_xz)),
            "no signature by a key of",
        ),
        ("a changed text", tampered, "no signature by a key of"),
        (
            "another list",
            signed(&signer, &in_release("bookworm", &sec_xz)),
            "but the signed InRelease says",
        ),
        (
            "an expired file",
            signed(
                &signer,
                &in_release_until("bookworm", &main_xz, "Sun, 06 Dec 2026 10:00:00 UTC"),
            ),
            "expired (Valid-Until Sun, 06 Dec 2026 10:00:00 UTC)",
        ),
    ] {
        let server = fixtures::serve(routes(&release));
        let r = pin(&server, "1.96");
        assert_eq!(r.status, Some(1), "{what}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{what}: {}", r.stderr);
        assert_eq!(
            fs::read_to_string(&pins).unwrap(),
            with_185,
            "{what}: the file is untouched"
        );
    }
    // an outdated mirror, taken knowingly: the block says so
    let expired = signed(
        &signer,
        &in_release_until("bookworm", &main_xz, "Sun, 06 Dec 2026 10:00:00 UTC"),
    );
    let server = fixtures::serve(routes(&expired));
    let mut cmd = xbuild(&home);
    cmd.env("XBUILD_DEBIAN_MIRROR", format!("{}/debian", server.base))
        .args([
            "toolchain",
            "pin",
            "--rust",
            "1.85",
            "--suite",
            "bookworm",
            "--allow-expired",
        ])
        .arg("--keyring")
        .arg(&keyring);
    let r = run(&mut cmd);
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("pinned with --allow-expired"),
        "{}",
        r.stdout
    );
}

/// The official distribution's layout: `<archive>/<component>/…`, one
/// tar.gz per component, as `dist/` names them.
#[cfg(feature = "e2e")]
fn dist_tarball(top: &str, component: &str, parts: &[(&Path, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.follow_symlinks(false);
    let mut installer = tar::Header::new_gnu();
    installer.set_size(2);
    installer.set_mode(0o644);
    installer.set_cksum();
    b.append_data(
        &mut installer,
        format!("{top}/rust-installer-version"),
        &b"3\n"[..],
    )
    .unwrap();
    for (src, dest) in parts {
        let at = format!("{top}/{component}/{dest}");
        if src.is_dir() {
            b.append_dir_all(&at, src).unwrap();
        } else {
            b.append_path_with_name(src, &at).unwrap();
        }
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn channel(base: &str, version: &str, tarballs: &[(&str, &str, &str, &[u8])]) -> String {
    let mut s = format!(
        "manifest-version = \"2\"\ndate = \"2026-12-07\"\n[pkg.rustc]\nversion = \"{version} (test 2026-12-07)\"\n"
    );
    for (component, target, file, bytes) in tarballs {
        let _ = write!(
            s,
            "[pkg.{component}.target.\"{target}\"]\navailable = true\nurl = \"{base}/dist/2026-12-07/{file}\"\nhash = \"{}\"\n",
            sha256(bytes)
        );
    }
    s
}

/// `toolchain pin --rust-dist`: the channel manifest's tarballs and sums, its
/// signature checked (gpg signs, another key is refused), and the default
/// release of a file never pinned twice.
#[test]
fn toolchain_pin_from_the_rust_distribution_checks_the_manifests_signature() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let (signer, public) = key(dir, "rust");
    let (stranger, _) = key(dir, "stranger");
    let keyring = dir.join("rust-key.gpg");
    fs::write(&keyring, &public).unwrap();
    let files: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        (
            "rustc",
            "x86_64-unknown-linux-gnu",
            "rustc-1.97.0-x86_64-unknown-linux-gnu.tar.gz",
            b"rustc".to_vec(),
        ),
        (
            "cargo",
            "x86_64-unknown-linux-gnu",
            "cargo-1.97.0-x86_64-unknown-linux-gnu.tar.gz",
            b"cargo".to_vec(),
        ),
        (
            "rust-std",
            "x86_64-unknown-linux-gnu",
            "rust-std-1.97.0-x86_64-unknown-linux-gnu.tar.gz",
            b"std".to_vec(),
        ),
        (
            "rust-std",
            "aarch64-unknown-linux-musl",
            "rust-std-1.97.0-aarch64-unknown-linux-musl.tar.gz",
            b"std-a64".to_vec(),
        ),
        ("rust-src", "*", "rust-src-1.97.0.tar.gz", b"src".to_vec()),
    ];
    let listed: Vec<(&str, &str, &str, &[u8])> = files
        .iter()
        .map(|(c, t, f, b)| (*c, *t, *f, &b[..]))
        .collect();
    // the tarballs are not fetched by `pin`: their URLs need no server
    let text = channel("https://dist.test", "1.97.0", &listed);
    let manifest_server = |signer: &Path, text: &str| {
        let mut r = HashMap::new();
        r.insert(
            "/dist/channel-rust-1.97.toml".to_string(),
            Reply::Ok(text.as_bytes().to_vec()),
        );
        let asc = gpg(signer, &["--detach-sign", "--armor"], Some(text));
        r.insert(
            "/dist/channel-rust-1.97.toml.asc".to_string(),
            Reply::Ok(asc),
        );
        fixtures::serve(r)
    };
    let pin = |server: &fixtures::Server, extra: &[&str]| {
        let mut cmd = xbuild(&home);
        cmd.args([
            "toolchain",
            "pin",
            "--rust",
            "1.97",
            "--rust-dist",
            &server.base,
            "--keyring",
        ])
        .arg(&keyring)
        .args(extra);
        run(&mut cmd)
    };
    let server = manifest_server(&signer, &text);
    let r = pin(&server, &[]);
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    // rustc, cargo, the host's std and std's source, in that order; not
    // another target's std
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains("url = ")).collect();
    let expected: Vec<String> = [0, 1, 2, 4]
        .iter()
        .map(|i| {
            let (_, _, file, bytes) = listed[*i];
            format!(
                "    {{ url = \"https://dist.test/dist/2026-12-07/{file}\", sha256 = \"{}\", strip = 2 }},",
                sha256(bytes)
            )
        })
        .collect();
    assert_eq!(lines, expected, "{}", r.stdout);
    assert!(
        r.stdout.contains("[releases.\"1.97\".rust]\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("rustc = \"bin/rustc\""), "{}", r.stdout);
    // the block parses as pins, and the release is read from it
    let pins = dir.join("toolchains.toml");
    let builtin =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/toolchains.toml")).unwrap();
    let without_197 = {
        let a = builtin.find("# BEGIN Rust 1.97:").unwrap();
        let b = builtin.find("# END Rust 1.97").unwrap() + "# END Rust 1.97\n".len();
        format!("{}{}", &builtin[..a], &builtin[b..])
    };
    fs::write(&pins, &without_197).unwrap();
    let r = pin(&server, &["--write", pins.to_str().unwrap()]);
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    let r = run(xbuild(&home)
        .args(["toolchain", "list", "--json", "--toolchains"])
        .arg(&pins));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("\"release\": \"1.97.0\""), "{}", r.stdout);

    // refused: signed by another key; a manifest changed after signing
    let forged = manifest_server(&stranger, &text);
    let r = pin(&forged, &[]);
    assert_eq!(r.status, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("is by no key of"), "{}", r.stderr);
    let changed = {
        let mut r = HashMap::new();
        r.insert(
            "/dist/channel-rust-1.97.toml".to_string(),
            Reply::Ok(text.replace("rustc-1.97.0", "rustc-1.97.1").into_bytes()),
        );
        r.insert(
            "/dist/channel-rust-1.97.toml.asc".to_string(),
            Reply::Ok(gpg(&signer, &["--detach-sign", "--armor"], Some(&text))),
        );
        fixtures::serve(r)
    };
    let r = pin(&changed, &[]);
    assert_eq!(r.status, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("is by no key of"), "{}", r.stderr);
    // no keyring: told what to pass
    let r = run(xbuild(&home).args([
        "toolchain",
        "pin",
        "--rust",
        "1.97",
        "--rust-dist",
        &server.base,
    ]));
    assert_eq!(r.status, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("--rust-dist needs --keyring FILE"),
        "{}",
        r.stderr
    );
}

/// The official distribution's layout, served on loopback and built with:
/// the provisioned 1.96 repacked as `rustc`, `cargo`, `rust-std` and
/// `rust-src` tarballs (the real server is not reachable from here), pinned
/// by `toolchain pin --rust-dist`, a workspace built for x86_64 with those pins
/// (std from its rust-src), its build script running that rustc.
#[cfg(feature = "e2e")]
#[test]
fn pins_from_the_rust_distributions_layout_build_a_workspace() {
    use crate::e2e::{component_dir, provisioned};
    provisioned();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let (signer, public) = key(dir, "rust");
    let keyring = dir.join("rust-key.gpg");
    fs::write(&keyring, &public).unwrap();
    let debian = component_dir("rust");
    let usr = debian.join("usr");
    let host = "x86_64-unknown-linux-gnu";
    let src = fs::canonicalize(usr.join("lib/rustlib/src/rust")).unwrap();
    let libs = [
        usr.join("lib/x86_64-linux-gnu"),
        debian.join("lib/x86_64-linux-gnu"),
    ];
    let mut rustc_parts: Vec<(&Path, &str)> = Vec::new();
    let bin_rustc = usr.join("bin/rustc");
    let bin_rustdoc = usr.join("bin/rustdoc");
    rustc_parts.push((&bin_rustc, "bin/rustc"));
    rustc_parts.push((&bin_rustdoc, "bin/rustdoc"));
    for l in &libs {
        rustc_parts.push((l, "lib"));
    }
    let std_dir = usr.join("lib/rustlib").join(host);
    let std_dest = format!("lib/rustlib/{host}");
    let cargo_bin = usr.join("bin/cargo");
    let tarballs: Vec<(&str, &str, String, Vec<u8>)> = vec![
        (
            "rustc",
            host,
            format!("rustc-1.96.0-{host}.tar.gz"),
            dist_tarball(&format!("rustc-1.96.0-{host}"), "rustc", &rustc_parts),
        ),
        (
            "cargo",
            host,
            format!("cargo-1.96.0-{host}.tar.gz"),
            dist_tarball(
                &format!("cargo-1.96.0-{host}"),
                "cargo",
                &[(&cargo_bin, "bin/cargo")],
            ),
        ),
        (
            "rust-std",
            host,
            format!("rust-std-1.96.0-{host}.tar.gz"),
            dist_tarball(
                &format!("rust-std-1.96.0-{host}"),
                &format!("rust-std-{host}"),
                &[(&std_dir, &std_dest)],
            ),
        ),
        (
            "rust-src",
            "*",
            "rust-src-1.96.0.tar.gz".to_string(),
            dist_tarball(
                "rust-src-1.96.0",
                "rust-src",
                &[(&src, "lib/rustlib/src/rust")],
            ),
        ),
    ];
    let mut routes = HashMap::new();
    for (_, _, file, bytes) in &tarballs {
        routes.insert(format!("/dist/2026-12-07/{file}"), Reply::Ok(bytes.clone()));
    }
    let files = fixtures::serve(routes);
    let listed: Vec<(&str, &str, &str, &[u8])> = tarballs
        .iter()
        .map(|(c, t, f, b)| (*c, *t, f.as_str(), &b[..]))
        .collect();
    let text = channel(&files.base, "1.96.0", &listed).replace("1.97", "1.96");
    let mut r = HashMap::new();
    r.insert(
        "/dist/channel-rust-1.96.toml".to_string(),
        Reply::Ok(text.as_bytes().to_vec()),
    );
    r.insert(
        "/dist/channel-rust-1.96.toml.asc".to_string(),
        Reply::Ok(gpg(&signer, &["--detach-sign", "--armor"], Some(&text))),
    );
    let manifest = fixtures::serve(r);
    let r = run(crate::e2e::xbuild(dir)
        .args([
            "toolchain",
            "pin",
            "--rust",
            "1.96",
            "--rust-dist",
            &manifest.base,
            "--keyring",
        ])
        .arg(&keyring));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    // these pins as the default release of a toolchains.toml: the block's
    // [rust] in place of the built-in one
    let block = &r.stdout[r.stdout.find("[releases.\"1.96\".rust]").unwrap()..];
    let rust: String = block
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let builtin =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/toolchains.toml")).unwrap();
    let a = builtin.find("\n[rust]\n").unwrap();
    let b = builtin.find("\n[zig]\n").unwrap();
    let pins = dir.join("dist-pins.toml");
    fs::write(
        &pins,
        format!("{}\n[rust]\n{rust}{}", &builtin[..a], &builtin[b..]),
    )
    .unwrap();

    let ws = dir.join("ws");
    crate::support::prints_its_rustc(&ws, "seen");
    let r = run(crate::e2e::xbuild(&ws)
        .args(["--target", "x86_64-unknown-linux-musl", "--toolchains"])
        .arg(&pins));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    let exe = ws.join("target/xbuild/x86_64-unknown-linux-musl/seen");
    let out = run(&mut Command::new(&exe));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("rustc 1.96.0"), "{}", out.stdout);
    // the rust component of these pins is the tarballs', unpacked in the
    // distribution's layout, beside the Debian one (fetched from the server
    // in a fresh cache; a warm one has them from an earlier run)
    let r = run(crate::e2e::xbuild(&ws)
        .args(["toolchain", "list", "--json", "--toolchains"])
        .arg(&pins));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rust = list["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "rust")
        .unwrap();
    let dir = Path::new(rust["path"].as_str().unwrap());
    assert!(
        dir.join("bin/rustc").is_file() && dir.join("lib/rustlib/src/rust/library/std").is_dir()
    );
    assert_ne!(dir, debian, "not the Debian component");
    let names: Vec<&str> = rust["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        tarballs
            .iter()
            .map(|(_, _, f, _)| f.as_str())
            .collect::<Vec<_>>()
    );
}
