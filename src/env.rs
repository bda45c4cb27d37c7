//! The one place that reads the process environment.
//!
//! Every `XBUILD_*` variable xbuild reads is declared here with what it does.
//! Sealed builds depend on this: children get an environment built from an
//! explicit list, never the ambient one, and nothing else in the crate calls
//! `std::env::var` (enforced by `clippy.toml`).
#![allow(clippy::disallowed_methods)]

use std::ffi::OsString;
use std::path::PathBuf;

/// Tracing filter (`info`, `xbuild=debug`, ...); overrides `-v`.
pub const XBUILD_LOG: &str = "XBUILD_LOG";
/// Root of xbuild's cache (toolchains, std sysroots, zig's cache).
pub const XBUILD_CACHE_DIR: &str = "XBUILD_CACHE_DIR";
/// Mirrors of artifacts, consulted before any other source: a comma-separated
/// list of directories or http(s) URLs holding files by sha256 or file name.
pub const XBUILD_MIRROR: &str = "XBUILD_MIRROR";
/// The Debian mirror xbuild's own apt configuration uses (`URL` of the
/// `debian` archive, or `URL,SECURITY_URL`); default: the one the host's apt
/// sources name.
pub const XBUILD_DEBIAN_MIRROR: &str = "XBUILD_DEBIAN_MIRROR";
/// The durable Debian archive (`[sources] debian-archive` in toolchains.toml).
pub const XBUILD_DEBIAN_ARCHIVE: &str = "XBUILD_DEBIAN_ARCHIVE";
/// The bound on the cache's kept dependencies, cached outputs and source
/// mirrors (`20G`, `500M`, `none`), enforced at the end of each run that
/// builds; overrides `max-size` in the cache's `config.toml`.
pub const XBUILD_CACHE_MAX: &str = "XBUILD_CACHE_MAX";
/// The shared store (`s3://BUCKET/PREFIX`, `file:///DIR`, read-only
/// `https://…`), as `--cache-url`; S3 takes the standard `AWS_*` variables.
pub const XBUILD_CACHE_URL: &str = "XBUILD_CACHE_URL";
/// A secret key file (`xbuild cache keygen`): with it, xbuild writes to the
/// store and signs what it writes; without it, it only reads.
pub const XBUILD_CACHE_SIGNING_KEY: &str = "XBUILD_CACHE_SIGNING_KEY";
/// The public keys (`NAME:KEY`, separated by spaces or commas) whose
/// manifests a reader accepts.
pub const XBUILD_CACHE_TRUSTED_KEYS: &str = "XBUILD_CACHE_TRUSTED_KEYS";
/// Seconds a store request may wait for an answer (default 30).
pub const XBUILD_CACHE_TIMEOUT: &str = "XBUILD_CACHE_TIMEOUT";
/// Seconds one store object (a manifest, a blob) may take from the request to
/// its last byte, however slowly the server sends it (default 600); past
/// it, the object is a miss.
pub const XBUILD_CACHE_DEADLINE: &str = "XBUILD_CACHE_DEADLINE";
/// Seconds to wait for another xbuild holding a cache lock (default 600).
pub const XBUILD_LOCK_TIMEOUT: &str = "XBUILD_LOCK_TIMEOUT";
/// The bubblewrap binary that sandboxes builds (default: `bwrap` on PATH).
pub const XBUILD_BWRAP: &str = "XBUILD_BWRAP";
/// `1`: fail (exit 5) instead of building unsandboxed, as `--require-sandbox`.
pub const XBUILD_REQUIRE_SANDBOX: &str = "XBUILD_REQUIRE_SANDBOX";
/// Set by xbuild in the environment of the zig wrappers: the zig binary.
pub const XBUILD_ZIG: &str = "XBUILD_ZIG";
/// Set by xbuild in the environment of the zig wrappers: zig's cache directory.
pub const XBUILD_ZIG_CACHE: &str = "XBUILD_ZIG_CACHE";
/// Set by xbuild for the toolchain it runs outside a sandbox: the build
/// root's program loader (an absolute path). The launchers of rustc, cargo
/// and the build tools start their program through it instead of the host's,
/// and the host linker makes build scripts ask for it: no glibc of the host's
/// is used, however old.
pub const XBUILD_ROOT_LOADER: &str = "XBUILD_ROOT_LOADER";
/// With [`XBUILD_ROOT_LOADER`]: the build root's library directories
/// (absolute, `:`-separated).
pub const XBUILD_ROOT_LIBRARY_PATH: &str = "XBUILD_ROOT_LIBRARY_PATH";

/// Set by xbuild for its C compiler wrappers in a sealed build: the paths
/// rustc remaps (`FROM=TO`, separated by `\x1f`), given to every C and C++
/// compile as `-ffile-prefix-map`, so that `__FILE__` and debug information
/// of C code from the sources or the cargo home name no machine's path.
pub const XBUILD_PREFIX_MAP: &str = "XBUILD_PREFIX_MAP";

/// Read a variable; empty counts as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn var_os(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// `RUST_LOG`, used when `XBUILD_LOG` is unset.
pub fn log_filter() -> Option<String> {
    var(XBUILD_LOG).or_else(|| var("RUST_LOG"))
}

/// The user's own RUSTFLAGS: when set, xbuild applies none of its per-target flags.
pub fn user_rustflags() -> Option<String> {
    var("RUSTFLAGS")
}

/// The cache root: `XBUILD_CACHE_DIR`, else `$XDG_CACHE_HOME/xbuild`, else `~/.cache/xbuild`.
pub fn cache_root() -> Option<PathBuf> {
    if let Some(dir) = var_os(XBUILD_CACHE_DIR) {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(xdg).join("xbuild"));
    }
    var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("xbuild"))
}

/// The entries of `XBUILD_MIRROR`, in order.
pub fn mirrors() -> Vec<String> {
    var(XBUILD_MIRROR)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The variables a child process inherits from the user's environment when
/// xbuild runs a tool on the user's behalf (apt-get, pip): what is needed to
/// find the tools, the user's proxy and registry configuration, and nothing else.
pub fn passthrough_for_fetchers() -> Vec<(String, OsString)> {
    const KEEP: &[&str] = &[
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TMPDIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_CONFIG_FILE",
        "PIP_CERT",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CARGO_HTTP_CAINFO",
        "APT_CONFIG",
        "CARGO_NET_GIT_FETCH_WITH_CLI",
        "CARGO_REGISTRIES_CRATES_IO_PROTOCOL",
        "SSH_AUTH_SOCK",
        "PYENV_ROOT",
        "PYENV_VERSION",
    ];
    KEEP.iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (k.to_string(), v)))
        .collect()
}

/// The variables a host tool (git) gets: how to find programs, whose home it
/// is and the locale. Never `GIT_DIR`, `GIT_WORK_TREE` or any other variable
/// that would change what the tool reports about the workspace.
pub fn host_tool_env() -> Vec<(String, OsString)> {
    const KEEP: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL"];
    KEEP.iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (k.to_string(), v)))
        .collect()
}

/// The variables zig gets when xbuild runs it as a target's C compiler,
/// archiver or linker (the caller is cargo, rustc or a build script inside
/// a sealed build, whose own environment xbuild already chose).
pub fn passthrough_for_compiler() -> Vec<(String, OsString)> {
    const KEEP: &[&str] = &[
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "TZ",
        "SOURCE_DATE_EPOCH",
    ];
    KEEP.iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (k.to_string(), v)))
        .collect()
}

/// Everything: for xbuild as a `RUSTC_WRAPPER`, which must be transparent
/// (rustc gets what cargo chose for it, which is already an explicit list).
pub fn all_for_wrapped_rustc() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// Whether stderr is a terminal (progress bars) or not (plain lines).
pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// The variables a sealed cargo child gets for showing its messages: the
/// same whoever runs it where, since cargo passes them on to build scripts
/// (a user's `TERM`, or whether xbuild's stderr is a terminal, would reach
/// the bytes). Cargo always colours; xbuild's relay keeps the colours only
/// for a terminal (see [`colour`]).
pub fn display_for_cargo() -> Vec<(String, OsString)> {
    vec![("CARGO_TERM_COLOR".into(), "always".into())]
}

/// Whether what xbuild relays from cargo keeps its colours: stderr is a
/// terminal and the user did not ask cargo for none (`CARGO_TERM_COLOR`,
/// `NO_COLOR`).
pub fn colour() -> bool {
    static COLOUR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *COLOUR.get_or_init(|| {
        let asked = std::env::var("CARGO_TERM_COLOR").unwrap_or_default();
        match asked.as_str() {
            "always" => true,
            "never" => false,
            _ => std::env::var_os("NO_COLOR").is_none() && stderr_is_terminal(),
        }
    })
}

/// The variables a test binary inherits when `xbuild --test` runs it.
pub fn passthrough_for_tests() -> Vec<(String, OsString)> {
    const KEEP: &[&str] = &[
        "PATH",
        "HOME",
        "USER",
        "TERM",
        "TMPDIR",
        "RUST_BACKTRACE",
        "RUST_TEST_THREADS",
        "RUST_MIN_STACK",
    ];
    KEEP.iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (k.to_string(), v)))
        .collect()
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Catch Ctrl-C (SIGINT) and SIGTERM instead of dying at once: the children
/// (cargo, test binaries) get the signal too and stop, and xbuild then
/// unwinds normally, removing its sealed and staging directories.
pub fn catch_interrupts() {
    let handler: extern "C" fn(libc::c_int) = on_interrupt;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// Whether Ctrl-C or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}
