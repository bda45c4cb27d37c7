//! The shared store against a real S3 server on loopback: `s3s-fs` 0.14.1
//! from crates.io (`XBUILD_TEST_S3S_FS` names the binary, else it is looked
//! up on PATH, else installed once with `cargo install` into the tests' temp
//! dir). One server serves every test of the run, each test in its own
//! prefix; the test of a server stopped mid-run starts its own.
//!
//! Writers are the run's shared cache (toolchain, std and kept dependencies
//! warm); readers are fresh caches, some with the toolchain linked in.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::e2e::{sums, workspace, xbuild};
use crate::support::{Run, ok, run};

const T: &str = "aarch64-unknown-linux-musl";
const KEY_ID: &str = "xbuild-test";
const SECRET: &str = "xbuild-test-secret";

/// The S3 server: `XBUILD_TEST_S3S_FS`, else `s3s-fs` on PATH, else
/// installed once from crates.io into the test's temp dir (minutes, once).
#[allow(clippy::disallowed_methods)] // the test reads CI's setting directly
fn s3s_fs() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("XBUILD_TEST_S3S_FS") {
            return PathBuf::from(p);
        }
        let r = run(Command::new("sh").args(["-c", "command -v s3s-fs"]));
        if r.status == Some(0) {
            return PathBuf::from(r.stdout.trim());
        }
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("s3s-fs");
        let exe = root.join("bin/s3s-fs");
        if !exe.is_file() {
            eprintln!(
                "installing s3s-fs 0.14.1 from crates.io into {} (once)",
                root.display()
            );
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            ok(&run(Command::new(cargo)
                .args([
                    "install",
                    "--locked",
                    "--quiet",
                    "s3s-fs",
                    "--version",
                    "0.14.1",
                ])
                .args(["--features", "binary", "--root"])
                .arg(&root)));
        }
        exe
    })
    .clone()
}

struct Server {
    endpoint: String,
    root: PathBuf,
    child: Child,
}

impl Server {
    /// A new s3s-fs on a free loopback port, serving `root` (each directory
    /// in it is a bucket), with credentials.
    fn start(root: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        fs::create_dir_all(root.join("team")).unwrap();
        let mut child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", KEY_ID, "--secret-key", SECRET])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Server {
                    endpoint,
                    root: root.to_path_buf(),
                    child,
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("s3s-fs did not listen on {endpoint}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The run's server: started once, and kept until the test process ends
/// (a thread holds it; the kernel kills it with the process).
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        // the server's data goes when the test process exits
        let root = crate::support::dir_until_exit("xbuild-s3-");
        let s = Server::start(&root);
        let pid = s.child.id();
        // the server must not outlive the test process
        std::thread::spawn(move || {
            let parent = std::process::id();
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill {pid}"
                ))
                .status();
        });
        s
    })
}

/// A signing key made with `xbuild cache keygen`: (secret key file, public key).
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(format!("{name}.secret"));
    let r = run(xbuild(dir)
        .args(["cache", "keygen", name, "--out"])
        .arg(&file));
    ok(&r);
    (file, r.stdout.trim().to_string())
}

/// A store in its own prefix of the run's server, and a team key.
struct Store {
    url: String,
    endpoint: String,
    /// Where the server keeps this store's objects.
    files: PathBuf,
    key: PathBuf,
    public: String,
    _keys: tempfile::TempDir,
}

fn store(prefix: &str) -> Store {
    let s = server();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "team-ci");
    Store {
        url: format!("s3://team/{prefix}"),
        endpoint: s.endpoint.clone(),
        files: s.root.join("team").join(prefix),
        key,
        public,
        _keys: keys,
    }
}

impl Store {
    /// `cmd` configured for this store: credentials, trust, and the signing
    /// key when `writes`.
    fn on<'a>(&self, cmd: &'a mut Command, writes: bool) -> &'a mut Command {
        cmd.env("XBUILD_CACHE_URL", &self.url)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("XBUILD_CACHE_TRUSTED_KEYS", &self.public)
            .env("XBUILD_CACHE_TIMEOUT", "10");
        if writes {
            cmd.env("XBUILD_CACHE_SIGNING_KEY", &self.key);
        }
        cmd
    }

    fn manifests(&self) -> Vec<PathBuf> {
        manifest_files(&self.files)
    }
}

/// The outputs manifests in a store's directory (layout v2:
/// `v2/outputs/<key>/<signer's fingerprint>`).
fn manifest_files(root: &Path) -> Vec<PathBuf> {
    fs::read_dir(root.join("v2/outputs"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|k| fs::read_dir(k.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect()
}

/// The outputs key a manifest file is for.
fn key_of(manifest: &Path) -> String {
    let dir = manifest.parent().unwrap();
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// Where a key's manifests are named in the store: 16 hex digits of the
/// sha256 of its `NAME:KEY` text.
fn fingerprint(public: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(public.as_bytes()))[..16].to_string()
}

/// A fresh cache dir; with `toolchain`, the run's toolchain linked in
/// (`cp -al`), and std too with `std`.
fn fresh_cache(toolchain: bool, std: bool) -> tempfile::TempDir {
    let mut buckets = Vec::new();
    if toolchain {
        buckets.push("toolchains");
    }
    if std {
        buckets.push("sysroots");
    }
    crate::e2e::linked_cache(&buckets)
}

fn build(ws: &Path, cache: Option<&Path>, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = xbuild(ws);
    cmd.args(["--target", T, "--out"]).arg(out).args(extra);
    if let Some(c) = cache {
        cmd.env("XBUILD_CACHE_DIR", c);
    }
    cmd
}

/// The fixture, made unique to one test (a comment in `rel`), so that no
/// other test's cached outputs answer for it.
fn unique(ws: tempfile::TempDir, rel: &str, tag: &str) -> tempfile::TempDir {
    let file = ws.path().join(rel);
    let source = fs::read_to_string(&file).unwrap();
    fs::write(&file, format!("{source}\n// store test: {tag}\n")).unwrap();
    ws
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// The writer builds and pushes; an empty cache then gets the outputs from
/// the store with no toolchain, no cargo and no std; a cache with only the
/// toolchain builds an edited workspace with std from the store.
#[test]
fn a_second_machine_gets_outputs_and_std_from_the_store() {
    let st = store("second-machine");
    let ws = unique(workspace(), "app/src/main.rs", "second-machine");
    let out1 = tempfile::tempdir().unwrap();
    // built, whatever an earlier run of the tests left in the cache
    let pushed = run(st.on(
        &mut build(ws.path(), None, out1.path(), &["--rebuild"]),
        true,
    ));
    ok(&pushed);
    assert!(
        pushed
            .stderr
            .contains(&format!("Pushed {T} outputs to {}", st.url)),
        "{}",
        pushed.stderr
    );
    assert_eq!(st.manifests().len(), 1);
    assert!(
        fs::read_dir(st.files.join("v2/sysroots")).unwrap().count() >= 1,
        "std went to the store as well"
    );

    // an empty cache: outputs from the store, nothing provisioned or built
    let empty = fresh_cache(false, false);
    let out2 = tempfile::tempdir().unwrap();
    let hit = run(st.on(
        &mut build(ws.path(), Some(empty.path()), out2.path(), &[]),
        false,
    ));
    ok(&hit);
    assert!(
        hit.stderr
            .contains(&format!("outputs from the shared store {}", st.url)),
        "{}",
        hit.stderr
    );
    for said in ["Compiling", "Building std", "Installed", "Downloading"] {
        assert!(!hit.stderr.contains(said), "{said}:\n{}", hit.stderr);
    }
    for bucket in ["toolchains", "sysroots", "downloads"] {
        let dir = empty.path().join("v1").join(bucket);
        assert_eq!(
            fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0),
            0,
            "{bucket} is empty"
        );
    }
    assert_eq!(sums(out1.path()), sums(out2.path()));
    let listed = run(st
        .on(&mut xbuild(ws.path()), false)
        .env("XBUILD_CACHE_DIR", empty.path())
        .args(["cache", "list"]));
    ok(&listed);
    assert!(
        listed.stdout.contains("outputs: 1 hits, 0 misses"),
        "{}",
        listed.stdout
    );

    // the toolchain but no std, and an edit: std comes from the store
    let main = ws.path().join("app/src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{source}\n// edited\n")).unwrap();
    let tc_only = fresh_cache(true, false);
    let out3 = tempfile::tempdir().unwrap();
    let miss = run(st.on(
        &mut build(ws.path(), Some(tc_only.path()), out3.path(), &[]),
        false,
    ));
    ok(&miss);
    assert!(
        miss.stderr
            .contains(&format!("Fetched std for {T} from the shared store")),
        "{}",
        miss.stderr
    );
    assert!(!miss.stderr.contains("Building std"), "{}", miss.stderr);
    assert!(miss.stderr.contains("Compiling"), "{}", miss.stderr);
}

/// A tampered blob and a manifest signed by an untrusted key are misses
/// that build locally, each with a warning naming the key and the reason.
#[test]
fn tampered_blobs_and_untrusted_signers_are_misses_that_build_locally() {
    let st = store("tampered");
    let ws = unique(workspace(), "app/src/main.rs", "tampered");
    let out = tempfile::tempdir().unwrap();
    // --rebuild: a local hit (an earlier run of the suite in this cache) would push nothing
    ok(&run(st.on(
        &mut build(ws.path(), None, out.path(), &["--rebuild"]),
        true,
    )));
    let manifest = &st.manifests()[0];
    let key = key_of(manifest);
    let good = sums(out.path());

    // a reader that trusts another signer does not use it
    let keys = tempfile::tempdir().unwrap();
    let (_, stranger) = keygen(keys.path(), "stranger");
    let reader = fresh_cache(true, true);
    let r = run(st
        .on(
            &mut build(ws.path(), Some(reader.path()), out.path(), &[]),
            false,
        )
        .env("XBUILD_CACHE_TRUSTED_KEYS", &stranger));
    ok(&r);
    assert!(!r.stderr.contains("from the shared store"), "{}", r.stderr);
    assert!(r.stderr.contains("Compiling"), "{}", r.stderr);
    // nor a manifest under the trusted key's name that its key did not sign
    let reader = fresh_cache(true, true);
    let forged = {
        let text = fs::read_to_string(manifest).unwrap();
        let body = text.lines().next().unwrap().to_string();
        format!("{body}\nsig team-ci:{}\n", "A".repeat(86) + "==")
    };
    let original = fs::read(manifest).unwrap();
    fs::write(manifest, forged).unwrap();
    let r = run(st.on(
        &mut build(ws.path(), Some(reader.path()), out.path(), &[]),
        false,
    ));
    ok(&r);
    assert!(
        r.stderr
            .contains(&format!("the outputs manifest {key} is not used")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Compiling"), "{}", r.stderr);
    fs::write(manifest, original).unwrap();
    assert_eq!(sums(out.path()), good, "the local build has the same bytes");

    // a blob whose bytes were changed in the store
    let text = fs::read_to_string(manifest).unwrap();
    let body: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let sha = body["files"][0]["sha256"].as_str().unwrap();
    let blob = st.files.join("blobs").join(sha);
    let mut bytes = fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&blob, &bytes).unwrap();
    let reader = fresh_cache(true, true);
    let r = run(st.on(
        &mut build(ws.path(), Some(reader.path()), out.path(), &[]),
        false,
    ));
    ok(&r);
    assert!(
        r.stderr.contains(&format!("the outputs {key} is not used"))
            && r.stderr.contains("tampered with or truncated"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Compiling"), "{}", r.stderr);
    assert_eq!(sums(out.path()), good);
}

/// Two writers of the same inputs at once: one manifest, both succeed. Their
/// caches are at different paths, and each builds zig's C runtime (and std,
/// when the shared cache has none) itself: the bytes match only when nothing
/// built depends on where the cache is (a warm-up run from the cache's own
/// temp dir once put that path into every debug build).
#[test]
fn two_concurrent_writers_of_one_key_leave_one_manifest() {
    let st = store("concurrent");
    let ws = unique(workspace(), "app/src/main.rs", "concurrent");
    let caches = [fresh_cache(true, true), fresh_cache(true, true)];
    let outs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let mut cmd = build(ws.path(), Some(caches[i].path()), outs[i].path(), &[]);
                st.on(&mut cmd, true);
                s.spawn(move || run(&mut cmd))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &runs {
        ok(r);
        assert!(
            r.stderr.contains(&format!("Pushed {T} outputs")) || r.stderr.contains("Reproduced"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("NOT REPRODUCIBLE"), "{}", r.stderr);
    }
    assert_eq!(st.manifests().len(), 1);
    assert_eq!(sums(outs[0].path()), sums(outs[1].path()));
}

/// A build whose bytes differ from the store's signed outputs for the same
/// inputs (a build script embeds the clock): NOT REPRODUCIBLE, diagnosed,
/// the store's manifest kept; exit 4 with --check-determinism.
#[test]
fn other_bytes_than_the_store_holds_are_not_reproducible_and_kept() {
    let st = store("not-reproducible");
    let ws = unique(crate::e2e::fixture("clock-ws"), "src/main.rs", "clock");
    let out = tempfile::tempdir().unwrap();
    ok(&run(
        st.on(&mut build(ws.path(), None, out.path(), &[]), true)
    ));
    let manifest = st.manifests()[0].clone();
    let before = fs::read(&manifest).unwrap();

    std::thread::sleep(std::time::Duration::from_secs(1));
    let warned = run(st.on(
        &mut build(ws.path(), None, out.path(), &["--rebuild"]),
        true,
    ));
    ok(&warned);
    assert!(
        warned.stderr.contains("NOT REPRODUCIBLE"),
        "{}",
        warned.stderr
    );
    assert!(
        warned.stderr.contains("to the shared store's outputs"),
        "{}",
        warned.stderr
    );

    std::thread::sleep(std::time::Duration::from_secs(1));
    let checked = run(st.on(
        &mut build(
            ws.path(),
            None,
            out.path(),
            &["--check-determinism", "--against-store"],
        ),
        false,
    ));
    assert_eq!(checked.status, Some(4), "{}", checked.stderr);
    assert!(
        checked.stderr.contains(
            "determinism: 0 identical, 1 different (against the shared store's signed outputs"
        ),
        "{}",
        checked.stderr
    );
    assert!(
        !checked.stderr.contains("second sealed directory"),
        "no second local build: {}",
        checked.stderr
    );
    assert_eq!(
        fs::read(&manifest).unwrap(),
        before,
        "the store's manifest is kept"
    );
    assert_eq!(st.manifests().len(), 1);
}

/// Wrong credentials: one loud warning with the status, the build goes on.
/// The server stopped while cargo runs: one warning, the build succeeds.
#[test]
fn a_store_that_rejects_or_stops_leaves_a_local_build_with_one_warning() {
    let st = store("failing");
    let ws = unique(workspace(), "app/src/main.rs", "failing");
    let out = tempfile::tempdir().unwrap();
    let reader = fresh_cache(true, true);
    let r = run(st
        .on(
            &mut build(ws.path(), Some(reader.path()), out.path(), &[]),
            true,
        )
        .env("AWS_SECRET_ACCESS_KEY", "wrong"));
    ok(&r);
    assert_eq!(
        count(&r.stderr, "warning: the cache store"),
        1,
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "the cache store {} failed (reading v2/outputs/",
            st.url
        )) && r.stderr.contains("access denied: HTTP 403"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Compiling"), "{}", r.stderr);

    // a private server, stopped once cargo compiles
    let root = tempfile::tempdir().unwrap();
    let mut own = Server::start(root.path());
    let main = ws.path().join("app/src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{source}\n// stopped\n")).unwrap();
    let mut cmd = build(ws.path(), Some(reader.path()), out.path(), &[]);
    st.on(&mut cmd, true)
        .env("AWS_ENDPOINT_URL", &own.endpoint)
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("Compiling") && own.child.try_wait().unwrap().is_none() {
            own.child.kill().unwrap();
            own.child.wait().unwrap();
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("Compiling"), "{stderr}");
    assert_eq!(count(&stderr, "warning: the cache store"), 1, "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");
}

/// A directory store (file://, e.g. on NFS): the same hit as S3. Outputs in
/// the local cache from before the store was set up are pushed by the first
/// run that finds them there.
#[test]
fn a_file_store_gives_the_same_hit() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "nfs");
    let url = format!("file://{}", dir.path().display());
    let ws = unique(workspace(), "app/src/main.rs", "file-store");
    let out1 = tempfile::tempdir().unwrap();
    // built (or found) in the local cache before the store was set up: the
    // next run's hit is offered to the store, not only what a run builds
    ok(&run(&mut build(ws.path(), None, out1.path(), &[])));
    let w = run(build(ws.path(), None, out1.path(), &[])
        .env("XBUILD_CACHE_URL", &url)
        .env("XBUILD_CACHE_SIGNING_KEY", &key));
    ok(&w);
    assert!(w.stderr.contains("outputs from the cache"), "{}", w.stderr);
    assert!(
        w.stderr
            .contains(&format!("outputs (cached here) to {url}")),
        "{}",
        w.stderr
    );
    let again = run(build(ws.path(), None, out1.path(), &[])
        .env("XBUILD_CACHE_URL", &url)
        .env("XBUILD_CACHE_SIGNING_KEY", &key));
    ok(&again);
    assert!(!again.stderr.contains("Pushed"), "{}", again.stderr);
    let out2 = tempfile::tempdir().unwrap();
    let (empty, hit) = hit_from_an_empty_cache(ws.path(), out2.path(), &url, &public);
    assert!(!hit.stderr.contains("Compiling"), "{}", hit.stderr);
    assert_eq!(
        fs::read_dir(empty.path().join("v1/toolchains"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    assert_eq!(sums(out1.path()), sums(out2.path()));
}

/// No outputs key depends on where the checkout, the cache or HOME is: a
/// commit pushed from one checkout is a hit for a clone of it at another
/// path (deeper, other name), with an empty cache elsewhere, run by the
/// ordinary user when there is one (else by root), and the bytes are equal.
#[test]
fn the_same_commit_at_another_path_by_another_user_hits_the_store() {
    let st = store("another-path");
    let ws = unique(workspace(), "app/src/main.rs", "another-path");
    let git = |dir: &Path, args: &[&str]| {
        ok(&run(Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(dir)
            .env("GIT_COMMITTER_DATE", "2026-12-01T00:00:00Z")
            .env("GIT_AUTHOR_DATE", "2026-12-01T00:00:00Z")))
    };
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "-A"]);
    git(ws.path(), &["commit", "-qm", "one commit"]);
    let out1 = tempfile::tempdir().unwrap();
    // --rebuild: a local hit (an earlier run of the suite in this cache) would push nothing
    ok(&run(st.on(
        &mut build(ws.path(), None, out1.path(), &["--rebuild"]),
        true,
    )));

    let user = crate::sandbox::user();
    let elsewhere = tempfile::tempdir().unwrap();
    let clone = elsewhere.path().join("runner/work/checkout");
    fs::create_dir_all(clone.parent().unwrap()).unwrap();
    ok(&run(Command::new("git")
        .args(["clone", "-q"])
        .arg(ws.path())
        .arg(&clone)));
    let cache = elsewhere.path().join("cache");
    let out2 = elsewhere.path().join("out");
    fs::create_dir_all(&cache).unwrap();
    if let Some(u) = user {
        crate::sandbox::give(u, elsewhere.path());
    }
    let mut cmd = crate::sandbox::xbuild_as(user, &clone);
    cmd.args(["--target", T, "--out"])
        .arg(&out2)
        .env("XBUILD_CACHE_DIR", &cache);
    let hit = run(st.on(&mut cmd, false));
    ok(&hit);
    assert!(
        hit.stderr
            .contains(&format!("outputs from the shared store {}", st.url)),
        "as {}: {}",
        user.map_or("root", |u| u.name.as_str()),
        hit.stderr
    );
    assert!(!hit.stderr.contains("Compiling"), "{}", hit.stderr);
    assert_eq!(sums(out1.path()), sums(&out2));
}

/// A fresh runner with a warm store compiles only what changed: the writer
/// publishes its compiled units; a clone at another path, built with a cache
/// that never saw the workspace (the ordinary user's, when there is one),
/// one member edited, restores them and compiles that member alone, to the
/// bytes of a build from scratch. A bumped dependency takes the fallback
/// entry and compiles it and its dependents; another profile takes nothing;
/// a tampered unit is a miss.
#[test]
fn a_fresh_runner_restores_compiled_units_and_compiles_only_what_changed() {
    let st = store("units");
    let ws = unique(workspace(), "app/src/main.rs", "units");
    let out1 = tempfile::tempdir().unwrap();
    // (--rebuild: an earlier run of this test may have cached the outputs)
    let pushed = run(st.on(
        &mut build(ws.path(), None, out1.path(), &["--rebuild"]),
        true,
    ));
    ok(&pushed);
    assert!(
        pushed.stderr.contains("Published") && pushed.stderr.contains("compiled units"),
        "{}",
        pushed.stderr
    );
    assert!(
        fs::read_dir(st.files.join("v2/units")).unwrap().count() >= 2,
        "the exact entry and the fallback one"
    );

    // another checkout, one member edited
    let user = crate::sandbox::user();
    let elsewhere = tempfile::tempdir().unwrap();
    let clone = elsewhere.path().join("runner/work/checkout");
    crate::e2e::copy_dir(ws.path(), &clone);
    let tool = clone.join("tool/src/main.rs");
    let source = fs::read_to_string(&tool).unwrap();
    fs::write(&tool, format!("{source}\n// edited on the runner\n")).unwrap();
    let fresh = fresh_cache(true, true);
    let (cache, out2) = match user {
        Some(u) => (u.cache.clone(), elsewhere.path().join("out")),
        None => (fresh.path().to_path_buf(), elsewhere.path().join("out")),
    };
    if let Some(u) = user {
        crate::sandbox::give(u, elsewhere.path());
    }
    let mut cmd = crate::sandbox::xbuild_as(user, &clone);
    cmd.args(["--target", T, "--out"])
        .arg(&out2)
        .env("XBUILD_CACHE_DIR", &cache);
    let restored = run(st.on(&mut cmd, false));
    ok(&restored);
    assert!(
        restored.stderr.contains("Restored") && !restored.stderr.contains("fallback entry"),
        "{}",
        restored.stderr
    );
    assert!(
        restored.stderr.contains("Compiling tool"),
        "{}",
        restored.stderr
    );
    for kept in [
        "Compiling cmath",
        "Compiling app",
        "Compiling cc ",
        "Compiling itoa",
    ] {
        assert!(
            !restored.stderr.contains(kept),
            "{kept}:\n{}",
            restored.stderr
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out2.join("report.json")).unwrap()).unwrap();
    let units = &report["targets"][0]["units_restored"];
    assert!(units["units"].as_u64().unwrap() > 5, "{units}");
    assert_eq!(units["fallback"], false);

    // the same bytes as a build of the edited sources from scratch
    let ws_tool = ws.path().join("tool/src/main.rs");
    fs::write(&ws_tool, fs::read(&tool).unwrap()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    ok(&run(&mut build(
        ws.path(),
        None,
        scratch.path(),
        &["--rebuild"],
    )));
    assert_eq!(sums(&out2), sums(scratch.path()));

    // a bumped dependency: the fallback entry, and only it and its dependents
    ok(&run(Command::new("cargo")
        .args(["update", "-q", "-p", "itoa", "--precise", "1.0.18"])
        .current_dir(ws.path())));
    let fresh2 = fresh_cache(true, true);
    let out3 = tempfile::tempdir().unwrap();
    let bumped = run(st.on(
        &mut build(ws.path(), Some(fresh2.path()), out3.path(), &[]),
        false,
    ));
    ok(&bumped);
    assert!(
        bumped.stderr.contains("fallback entry"),
        "{}",
        bumped.stderr
    );
    assert!(
        bumped.stderr.contains("Compiling itoa v1.0.18"),
        "{}",
        bumped.stderr
    );
    assert!(bumped.stderr.contains("Compiling app"), "{}", bumped.stderr);
    for kept in ["Compiling cmath", "Compiling cc "] {
        assert!(!bumped.stderr.contains(kept), "{kept}:\n{}", bumped.stderr);
    }

    // another profile never takes these units
    let fresh_release = fresh_cache(true, true);
    let out5 = tempfile::tempdir().unwrap();
    let release = run(st.on(
        &mut build(
            ws.path(),
            Some(fresh_release.path()),
            out5.path(),
            &["--release"],
        ),
        false,
    ));
    ok(&release);
    assert!(!release.stderr.contains("Restored"), "{}", release.stderr);
    assert!(
        release.stderr.contains("Compiling cmath"),
        "{}",
        release.stderr
    );

    // a tampered unit: the entry is not used (said once), everything compiles
    let mut blobs: Vec<PathBuf> = fs::read_dir(st.files.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    blobs.sort();
    for b in &blobs {
        let mut bytes = fs::read(b).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(b, bytes).unwrap();
    }
    let fresh3 = fresh_cache(true, true);
    let out4 = tempfile::tempdir().unwrap();
    let tampered = run(st.on(
        &mut build(ws.path(), Some(fresh3.path()), out4.path(), &[]),
        false,
    ));
    ok(&tampered);
    assert!(!tampered.stderr.contains("Restored"), "{}", tampered.stderr);
    assert_eq!(
        count(&tampered.stderr, "tampered with"),
        1,
        "{}",
        tampered.stderr
    );
    assert!(
        tampered.stderr.contains("Compiling cmath"),
        "{}",
        tampered.stderr
    );
}

/// Only trustworthy builds sign: a signing build does not reuse the kept
/// dir an unsigned build of the same workspace wrote (and says so in one
/// line), and an unsandboxed run, key and all, pushes nothing.
#[test]
fn kept_dirs_of_unsigned_builds_are_not_signed_and_unsandboxed_builds_never_push() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "trusted");
    let url = format!("file://{}", dir.path().display());
    let ws = unique(workspace(), "app/src/main.rs", "signer-kept-dirs");
    let cache = fresh_cache(true, true);
    let manifests = || manifest_files(dir.path()).len();
    // a build without the key (a pull request on the same runner)
    let out = tempfile::tempdir().unwrap();
    let unsigned = run(build(ws.path(), Some(cache.path()), out.path(), &[])
        .env("XBUILD_CACHE_URL", &url)
        .env("XBUILD_CACHE_TRUSTED_KEYS", &public));
    ok(&unsigned);
    assert_eq!(manifests(), 0);
    // the signing build compiles its dependencies again, in its own kept dir
    let main = ws.path().join("app/src/main.rs");
    let text = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{text}\n// signed\n")).unwrap();
    let signed = run(build(ws.path(), Some(cache.path()), out.path(), &[])
        .env("XBUILD_CACHE_URL", &url)
        .env("XBUILD_CACHE_TRUSTED_KEYS", &public)
        .env("XBUILD_CACHE_SIGNING_KEY", &key));
    ok(&signed);
    assert_eq!(
        count(
            &signed.stderr,
            "not reusing the compiled dependencies that unsigned builds kept"
        ),
        1,
        "{}",
        signed.stderr
    );
    assert!(
        signed.stderr.contains("Compiling itoa"),
        "{}",
        signed.stderr
    );
    assert_eq!(manifests(), 1, "{}", signed.stderr);
    // without a sandbox: builds, reads, never pushes
    fs::write(&main, format!("{text}\n// unsandboxed\n")).unwrap();
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let r = run(build(ws.path(), Some(cache.path()), out.path(), &[])
        .env("XBUILD_CACHE_URL", &url)
        .env("XBUILD_CACHE_TRUSTED_KEYS", &public)
        .env("XBUILD_CACHE_SIGNING_KEY", &key)
        .env("XBUILD_BWRAP", "/nonexistent/bwrap")
        .env_remove("XBUILD_REQUIRE_SANDBOX")
        .env("TMPDIR", tmp.path()));
    ok(&r);
    assert_eq!(
        count(&r.stderr, "nothing is signed or pushed to the cache store"),
        1,
        "{}",
        r.stderr
    );
    assert_eq!(manifests(), 1, "an unsandboxed build pushed: {}", r.stderr);
}

/// A writer without a trusted key (it can write to the bucket) cannot keep
/// a trusted writer from publishing the same inputs: its own manifest is
/// under its own key's name, and one it plants under the trusted key's name
/// is replaced by the trusted writer's, which readers then use.
#[test]
fn a_manifest_squatted_without_the_key_blocks_no_trusted_writer() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (trusted_key, trusted) = keygen(keys.path(), "team");
    let (mallory_key, _) = keygen(keys.path(), "mallory");
    let url = format!("file://{}", dir.path().display());
    let ws = unique(workspace(), "app/src/main.rs", "squatted");
    let out = tempfile::tempdir().unwrap();
    let writer = |key: &Path| {
        run(build(ws.path(), None, out.path(), &["--rebuild"])
            .env("XBUILD_CACHE_URL", &url)
            .env("XBUILD_CACHE_TRUSTED_KEYS", &trusted)
            .env("XBUILD_CACHE_SIGNING_KEY", key))
    };
    ok(&writer(&mallory_key));
    let planted = manifest_files(dir.path());
    assert_eq!(planted.len(), 1);
    // and the same bytes under the trusted key's name
    let squat = planted[0].with_file_name(fingerprint(&trusted));
    fs::copy(&planted[0], &squat).unwrap();
    let w = writer(&trusted_key);
    ok(&w);
    assert!(
        w.stderr.contains("is there but not trusted"),
        "{}",
        w.stderr
    );
    assert!(w.stderr.contains("Pushed"), "{}", w.stderr);
    hit_from_an_empty_cache(ws.path(), out.path(), &url, &trusted);

    // signed by the trusted key, but not an executable: a miss, never a failure
    let manifest = manifest_files(dir.path())
        .into_iter()
        .find(|m| m.file_name().unwrap().to_string_lossy() == fingerprint(&trusted))
        .unwrap();
    let text = fs::read_to_string(&manifest).unwrap();
    let mut body: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let junk = b"#!/bin/sh\necho not what was built\n";
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(junk))
    };
    fs::write(dir.path().join("blobs").join(&sha), junk).unwrap();
    body["files"][0]["sha256"] = sha.clone().into();
    body["files"][0]["size"] = junk.len().into();
    fs::write(&manifest, sign(&body, &trusted_key)).unwrap();
    let reader = fresh_cache(true, true);
    let r = run(build(ws.path(), Some(reader.path()), out.path(), &[])
        .env("XBUILD_CACHE_URL", &url)
        .env("XBUILD_CACHE_TRUSTED_KEYS", &trusted));
    ok(&r);
    assert!(
        r.stderr.contains("is signed but not a valid executable"),
        "{}",
        r.stderr
    );
    // built here (from the trusted writer's compiled units, which the store
    // also holds), not the junk
    assert!(
        r.stderr.contains("Restored") || r.stderr.contains("Compiling app"),
        "{}",
        r.stderr
    );
    assert!(!sums(out.path()).contains(&sha), "{}", sums(out.path()));
}

/// A build of `ws` into `out` with an empty cache that trusts `public`:
/// its outputs from the store at `url` (the cache and the run).
fn hit_from_an_empty_cache(
    ws: &Path,
    out: &Path,
    url: &str,
    public: &str,
) -> (tempfile::TempDir, Run) {
    let empty = fresh_cache(false, false);
    let hit = run(build(ws, Some(empty.path()), out, &[])
        .env("XBUILD_CACHE_URL", url)
        .env("XBUILD_CACHE_TRUSTED_KEYS", public));
    ok(&hit);
    assert!(
        hit.stderr
            .contains(&format!("outputs from the shared store {url}")),
        "{}",
        hit.stderr
    );
    (empty, hit)
}

/// A manifest `body` signed with the secret key in `key_file`, as xbuild
/// writes one (signed here by the test itself, with ed25519-dalek).
fn sign(body: &serde_json::Value, key_file: &Path) -> String {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let text = fs::read_to_string(key_file).unwrap();
    let (name, seed) = text.trim().split_once(':').unwrap();
    let seed: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(seed)
        .unwrap()
        .try_into()
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let body = serde_json::to_string(body).unwrap();
    let sig =
        base64::engine::general_purpose::STANDARD.encode(key.sign(body.as_bytes()).to_bytes());
    format!("{body}\nsig {name}:{sig}\n")
}
