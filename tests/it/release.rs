//! Releases (issue 30): `--dist` archives, read back by Python's tarfile
//! and lzma (not xbuild's tar and xz), checked by `sha256sum -c`, the same
//! bytes on a second run.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::e2e::{provisioned, xbuild};
use crate::support::{ok, run};

fn git(dir: &Path, args: &[&str]) {
    ok(&run(Command::new("git")
        .args(["-c", "user.email=t@example.test", "-c", "user.name=t"])
        .args(args)
        .env("GIT_COMMITTER_DATE", "2026-11-30T12:00:00Z")
        .env("GIT_AUTHOR_DATE", "2026-11-30T12:00:00Z")
        .current_dir(dir)));
}

/// Every archive's members as Python reads them: name, mode, uid, gid,
/// owner names, mtime, sha256 of the content.
const READ: &str = r#"
import hashlib, json, sys, tarfile
out = {}
for path in sys.argv[1:]:
    with tarfile.open(path, "r:xz") as t:
        rows = []
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isfile() else b""
            rows.append([m.name, oct(m.mode), m.uid, m.gid, m.uname, m.gname, m.mtime,
                         m.type.decode(), hashlib.sha256(data).hexdigest()])
        out[path.rsplit("/", 1)[-1]] = rows
print(json.dumps(out))
"#;

#[test]
fn dist_writes_reproducible_archives_with_the_executables_readme_and_licenses() {
    provisioned();
    let ws = tempfile::tempdir().unwrap();
    let dir = ws.path();
    let write = |rel: &str, text: &str| {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"app\", \"other\"]\nresolver = \"2\"\n\n[workspace.package]\nversion = \"1.2.0\"\n",
    );
    write(
        "Cargo.lock",
        "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.3.1\"\n\n[[package]]\nname = \"other\"\nversion = \"1.2.0\"\n",
    );
    write(
        "app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.3.1\"\nedition = \"2021\"\n\n[[bin]]\nname = \"app\"\npath = \"src/main.rs\"\n\n[[bin]]\nname = \"app-tool\"\npath = \"src/tool.rs\"\n",
    );
    write("app/src/main.rs", "fn main() { println!(\"app\"); }\n");
    write("app/src/tool.rs", "fn main() { println!(\"tool\"); }\n");
    write("app/README.md", "# app\n");
    write("app/LICENSE-MIT", "MIT\n");
    write("app/LICENSE-APACHE", "Apache-2.0\n");
    write(
        "other/Cargo.toml",
        "[package]\nname = \"other\"\nversion.workspace = true\nedition = \"2021\"\nreadme = \"../README-other.md\"\n",
    );
    write("README-other.md", "# other\n");
    // a tracked link (to a file of the workspace; links out of it the
    // snapshot refuses): an archive holds files, never what a link names
    std::os::unix::fs::symlink("../LICENSE", dir.join("app/LICENSE-LINK")).unwrap();
    write("other/src/main.rs", "fn main() { println!(\"other\"); }\n");
    write("LICENSE", "the workspace's license\n");
    git(dir, &["init", "-q"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-qm", "release"]);
    // not tracked: not in any archive
    write("app/LICENSE-DRAFT", "draft\n");

    let triple = "x86_64-unknown-linux-musl";
    let r = run(xbuild(dir).args(["--dist", "--workspace", "--target", triple]));
    ok(&r);
    assert!(
        r.stderr.contains("Archived 2 release archive(s)"),
        "{}",
        r.stderr
    );
    let dist = dir.join("target/xbuild/dist");
    let names = [
        format!("app-0.3.1-{triple}.tar.xz"),
        format!("other-1.2.0-{triple}.tar.xz"),
    ];
    let first: Vec<Vec<u8>> = names
        .iter()
        .map(|n| fs::read(dist.join(n)).unwrap())
        .collect();
    ok(&run(Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&dist)));
    let sums = fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 2, "{sums}");

    let py = run(Command::new("python3")
        .arg("-c")
        .arg(READ)
        .args(names.iter().map(|n| dist.join(n))));
    ok(&py);
    let doc: serde_json::Value = serde_json::from_str(&py.stdout).unwrap();
    let sha = |p: &Path| crate::fixtures::sha256(&fs::read(p).unwrap());
    let out = dir.join("target/xbuild").join(triple);
    let text_sha = |s: &str| crate::fixtures::sha256(s.as_bytes());
    let epoch = 1_796_040_000; // 2026-11-30T12:00:00Z, the commit's time
    let row = |name: &str, mode: &str, kind: &str, sum: String| {
        serde_json::json!([name, mode, 0, 0, "root", "root", epoch, kind, sum])
    };
    let empty = text_sha("");
    let top = format!("app-0.3.1-{triple}");
    assert_eq!(
        doc[&names[0]],
        serde_json::json!([
            row(&top, "0o755", "5", empty.clone()),
            row(
                &format!("{top}/LICENSE-APACHE"),
                "0o644",
                "0",
                text_sha("Apache-2.0\n")
            ),
            row(
                &format!("{top}/LICENSE-MIT"),
                "0o644",
                "0",
                text_sha("MIT\n")
            ),
            row(
                &format!("{top}/README.md"),
                "0o644",
                "0",
                text_sha("# app\n")
            ),
            row(&format!("{top}/app"), "0o755", "0", sha(&out.join("app"))),
            row(
                &format!("{top}/app-tool"),
                "0o755",
                "0",
                sha(&out.join("app-tool"))
            ),
        ])
    );
    // a package without license files has the workspace root's; its
    // manifest's readme may be outside its directory
    let top = format!("other-1.2.0-{triple}");
    assert_eq!(
        doc[&names[1]],
        serde_json::json!([
            row(&top, "0o755", "5", empty),
            row(
                &format!("{top}/LICENSE"),
                "0o644",
                "0",
                text_sha("the workspace's license\n")
            ),
            row(
                &format!("{top}/README-other.md"),
                "0o644",
                "0",
                text_sha("# other\n")
            ),
            row(
                &format!("{top}/other"),
                "0o755",
                "0",
                sha(&out.join("other"))
            ),
        ])
    );

    // again (the outputs from the cache): the same bytes
    let r = run(xbuild(dir).args(["--dist", "--workspace", "--target", triple]));
    ok(&r);
    for (n, bytes) in names.iter().zip(&first) {
        assert_eq!(&fs::read(dist.join(n)).unwrap(), bytes, "{n} changed");
    }
    // archives are of executables: not with --test
    let r = run(xbuild(dir).args(["--dist", "--test", "--target", triple]));
    assert_eq!(r.status, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
}
