//! Command-line parsing. This module only parses and validates; every command
//! is carried out by one function in another module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  xbuild --release                                # static x86_64 binaries in target/xbuild
  xbuild --release --target aarch64-unknown-linux-musl --target armv6l-unknown-linux-musleabihf
  xbuild --test --target aarch64-unknown-linux-musl  # run the tests under qemu
  xbuild --test -- --nocapture my_test            # arguments after -- go to every test binary
  xbuild --check-determinism --target aarch64-unknown-linux-musl  # build twice, compare bytes
  xbuild toolchain fetch                          # provision the pinned rustc, zig and qemu
  xbuild triple armv6l-unknown-linux-musleabihf   # Nix name -> arm-unknown-linux-musleabihf
  xbuild triple aarch64-linux x86_64-w64-mingw32  # several names, one Rust triple per line
  xbuild targets                                  # the targets xbuild builds
  xbuild targets --json                           # the same, for scripts

Target names may be Rust triples (aarch64-unknown-linux-musl) or Nix system
strings (armv6l-unknown-linux-musleabihf, aarch64-linux); Nix names are mapped
to Rust names by the rules nixpkgs uses.

Logging goes to stderr: -v for info, -vv for debug, or XBUILD_LOG=<filter>.";

/// Fully static, reproducible Linux binaries for several CPUs from one Cargo
/// workspace, with a pinned toolchain and no Docker or Nix.
#[derive(Debug, Parser)]
#[command(
    name = "xbuild",
    version,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub build: BuildArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The main job: `xbuild [--target NAME]... [options]`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build for this target (Nix or Rust name); repeat for several [default: x86_64-unknown-linux-musl]
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Build with the release profile
    #[arg(short, long, conflicts_with = "profile")]
    pub release: bool,
    /// Build with this profile (a custom one such as cargo-dist's `dist`, which inherits from
    /// `release`)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Build only this package's binaries (repeatable) [default: the workspace's default members]
    #[arg(short, long = "package", value_name = "PKG")]
    pub packages: Vec<String>,
    /// Build only this binary (repeatable)
    #[arg(long = "bin", value_name = "NAME")]
    pub bins: Vec<String>,
    /// Build this example too (repeatable); its executable is an output like a binary's
    #[arg(long = "example", value_name = "NAME", conflicts_with = "test")]
    pub examples: Vec<String>,
    /// Build every member of the workspace (not only the default members)
    #[arg(long)]
    pub workspace: bool,
    /// With --workspace: leave this package out (repeatable)
    #[arg(long, value_name = "PKG", requires = "workspace")]
    pub exclude: Vec<String>,
    /// Features to enable, as cargo takes them
    #[arg(long, short = 'F', value_name = "FEATURES")]
    pub features: Option<String>,
    /// Do not enable the default features
    #[arg(long)]
    pub no_default_features: bool,
    /// Enable every feature of the selected packages
    #[arg(long, conflicts_with = "features")]
    pub all_features: bool,
    /// The workspace's Cargo.toml [default: ./Cargo.toml]
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// The Rust release to build with: a pinned one (`1.96`, `1.96.0`) or `stable` (the newest
    /// pinned) [default: the workspace's rust-toolchain.toml, else the pins' own]
    #[arg(long = "rust", value_name = "VERSION")]
    pub rust: Option<String>,
    /// Where the binaries, SHA256SUMS and report.json go [default: target/xbuild]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Set GIT_VERSION for the build; `auto` runs `git describe --tags --always --dirty`
    #[arg(long, value_name = "V|auto")]
    pub git_version: Option<String>,
    /// Parallel jobs for cargo, and test binaries run at once with --test [default: CPUs]
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<u32>,
    /// Build every workspace member's tests (or the -p ones) for the targets and run them,
    /// natively or under qemu
    #[arg(long, conflicts_with = "bins")]
    pub test: bool,
    /// With --test: only build and gather the test binaries
    #[arg(long, requires = "test")]
    pub no_run: bool,
    /// With --test: kill a test binary still running after SECS seconds
    #[arg(long, value_name = "SECS", default_value_t = 600, requires = "test")]
    pub test_timeout: u64,
    /// With --test: let the tests use the host's network (and its name resolution and CA
    /// certificates); by default they run sealed with a loopback of their own
    #[arg(long, requires = "test")]
    pub test_network: bool,
    /// With --test: arguments for every test binary (a filter, --nocapture, ...)
    #[arg(last = true, value_name = "TEST-ARGS", requires = "test")]
    pub test_args: Vec<String>,
    /// Build twice in two sealed directories, the second with what no sandbox fixes changed
    /// (the date, kernel release, CPUs, jobs, ASLR, env order); compare every output, also with
    /// the cached outputs of an earlier build with the same inputs, and name what each
    /// difference depends on
    #[arg(long)]
    pub check_determinism: bool,
    /// Also write release archives: <out>/dist/NAME-VERSION-TRIPLE.tar.xz per package and target
    /// (its executables, README and license files; reproducible) and dist/SHA256SUMS
    #[arg(long, conflicts_with = "test")]
    pub dist: bool,
    /// With --check-determinism: instead of a second local build, compare this sealed build
    /// with the signed outputs the shared store holds for the same inputs (what CI published)
    #[arg(long, requires = "check_determinism")]
    pub against_store: bool,
    /// The store a team shares outputs through: s3://BUCKET/PREFIX (with the AWS_* variables), file:///DIR, or a
    /// read-only https:// URL
    #[arg(
        long,
        env = "XBUILD_CACHE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub cache_url: Option<String>,
    /// Keep the sealed build directories (for debugging) and print their paths; builds from
    /// scratch, so that the kept directory holds the whole target dir
    #[arg(long)]
    pub keep_sealed: bool,
    /// Build from scratch: ignore cached outputs for exactly these inputs, and empty the
    /// compiled dependencies kept for this workspace (once: later targets of the run build on
    /// what the first compiled)
    #[arg(long)]
    pub rebuild: bool,
    /// Fail (exit 5) when this system cannot sandbox builds, instead of building without
    /// isolation
    #[arg(long, env = "XBUILD_REQUIRE_SANDBOX", hide_env_values = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub require_sandbox: bool,
    #[command(flatten)]
    pub pins: PinArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More output on stderr: -v info, -vv debug, -vvv trace (XBUILD_LOG overrides)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Rust target triple for Nix or Rust target names
    #[command(after_help = "\
Examples:
  $ xbuild triple armv6l-unknown-linux-musleabihf
  arm-unknown-linux-musleabihf
  $ xbuild triple aarch64-linux riscv64-unknown-linux-gnu
  aarch64-unknown-linux-gnu
  riscv64gc-unknown-linux-gnu

Prints one Rust triple per line on stdout and exits 0. A name that cannot be
mapped is explained on stderr, and the exit status is 2.")]
    Triple {
        /// Nix config triples (armv7l-unknown-linux-gnueabihf), Nix systems
        /// (aarch64-linux) or Rust triples (thumbv7em-none-eabihf)
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// List the targets xbuild builds, with their flags and how they run
    Targets {
        /// Print the table as JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Provision and inspect the pinned toolchain (rustc, zig, qemu)
    #[command(subcommand)]
    Toolchain(ToolchainCommand),
    /// Show and trim xbuild's cache (toolchains, std sysroots, kept dependencies, outputs)
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Sizes of each part of the cache, the kept dependencies and the cached output sets
    List,
    /// Remove the least recently used kept dependencies, output sets and source mirrors until
    /// they fit in SIZE (default: the cache's limit, which every build enforces too); with
    /// --store, trim the file:// store XBUILD_CACHE_URL names
    #[command(after_help = "\
The limit: XBUILD_CACHE_MAX (like 20G, or none), else max-size in the cache's config.toml
(max-size = \"20G\"), else 20 GiB; `xbuild cache list` shows it. Toolchains and std are never
trimmed (`xbuild toolchain gc` removes those no pin uses).

Examples:
  $ xbuild cache gc
  $ xbuild cache gc --max-size 4G
  $ XBUILD_CACHE_URL=file:///srv/xbuild-store xbuild cache gc --store --older-than 30
    (compiled units no build replaced in 30 days, and the blobs only they named; outputs and std
    stay. An S3 store is trimmed by a lifecycle rule: see docs/STORE.md)")]
    Gc {
        /// Like 500M or 2G (bytes without a suffix)
        #[arg(long, value_name = "SIZE", value_parser = crate::cache::parse_size, conflicts_with = "store")]
        max_size: Option<u64>,
        /// Trim the shared store (a file:// one) instead of the local cache
        #[arg(long)]
        store: bool,
        /// With --store: the age, in days, past which a compiled-units entry goes
        #[arg(long, value_name = "DAYS", default_value_t = 30, requires = "store")]
        older_than: u64,
    },
    /// Make a signing key for the shared store: the secret key goes to FILE, the public key
    /// (NAME:KEY, for XBUILD_CACHE_TRUSTED_KEYS) is printed on stdout
    #[command(after_help = "\
Example (once, for the machine that writes the store, e.g. CI):
  $ xbuild cache keygen ci.example.org-1 --out ~/.config/xbuild/ci.secret
  ci.example.org-1:Gj7Vr0n2...=
Writers set XBUILD_CACHE_SIGNING_KEY=~/.config/xbuild/ci.secret; every reader
sets XBUILD_CACHE_TRUSTED_KEYS to the printed line. FILE is created with mode
0600 and never overwritten.")]
    Keygen {
        /// The key's name, recorded in every signature (letters, digits, `-`, `_`, `.`)
        name: String,
        /// Where to write the secret key (must not exist)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Options every toolchain command shares.
#[derive(Debug, Args)]
pub struct PinArgs {
    /// Pins to use instead of the workspace's toolchains.toml or the built-in one
    #[arg(long, value_name = "FILE")]
    pub toolchains: Option<PathBuf>,
    /// Use only the cache, XBUILD_MIRROR and the registry files cargo has; never fetch
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum ToolchainCommand {
    /// Download, verify and install what the targets need (default: every target)
    #[command(after_help = "\
Examples:
  xbuild toolchain fetch                                   # rust, zig and qemu
  xbuild toolchain fetch --target x86_64-unknown-linux-musl  # rust and zig only
  XBUILD_MIRROR=/srv/artifacts xbuild toolchain fetch --offline

Each artifact has several sources, tried in order and each checked against the
pin's sha256 before anything is unpacked: the mirrors (XBUILD_MIRROR, a comma-
separated list of directories or URLs), the artifact's own method (apt-get with
the host's sources, then with xbuild's own apt sources on the host's Debian
mirror; pip; HTTPS; a path), then Debian's durable snapshot archive.
`xbuild toolchain doctor` says which of them work on this host.
The cache is XBUILD_CACHE_DIR, else ~/.cache/xbuild.")]
    Fetch {
        /// Provision only what these targets need (Nix or Rust names)
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Show the pins, what is cached and installed, and sizes
    List {
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Re-hash the cached archives against the pins (exit 1 if one is corrupt)
    Verify {
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Remove installed components and archives the pins no longer name, the wrappers of
    /// xbuild executables (older installs) that no longer run, and older xbuilds' zig caches
    Gc {
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Write every pinned artifact into one file, for machines without network
    Bundle {
        /// The bundle to write (a tar file)
        file: PathBuf,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Load a bundle written by `xbuild toolchain bundle` into the cache
    Import {
        /// The bundle to read
        file: PathBuf,
    },
    /// Check what this host needs to provision and build, each with its fix
    #[command(after_help = "\
Checks the host's glibc against the toolchain's floor, each source of the
pinned artifacts (mirrors, the host's apt, xbuild's own apt sources, the
durable Debian archive, pip), the sandbox (bubblewrap and user namespaces),
free disk and what is installed. Exits 1 when something must be fixed.")]
    Doctor {
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Print shell exports to run the provisioned cargo, rustc and zig by hand
    #[command(after_help = "Example:\n  eval \"$(xbuild toolchain env)\" && cargo --version")]
    Env {
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Pin a Rust release from Debian's signed package lists
    #[command(after_help = "\
Examples:
  xbuild toolchain pin --rust 1.97                          # print the pins
  xbuild toolchain pin --rust 1.85 --write toolchains.toml  # add or renew them
  xbuild toolchain pin --rust 1.96 --suite trixie

Reads each suite's InRelease from the host's Debian mirror (XBUILD_DEBIAN_MIRROR
names another), checks its OpenPGP signature against the pinned Debian archive
keyring ([sources] debian-keyring; --keyring FILE instead), then the package
lists it names by their sha256. The suites are searched oldest first (bookworm,
trixie, forky, sid, each with its -security); the first holding the release
gives rustc, cargo, std's source and the libraries they load, and the build
root (the same packages as the default one, from that suite). A release from a
moving suite (testing, unstable) is marked `moving = true`: its versions leave
the mirror when the suite moves on. With --write, the block between
`# BEGIN Rust X.Y` and `# END Rust X.Y` is replaced (or added); for the file's
default release, the artifacts of [rust] and [build-root]. `git diff` shows
what changed.

With --rust-dist URL the pins come from the official Rust distribution instead:
the release's channel manifest, its .asc signature checked against --keyring
(the Rust project's release key, which you download and check yourself), and
the rustc, cargo, host std and rust-src tarballs with the sha256 it gives.")]
    Pin {
        /// The release: 1.97 (the newest 1.97.x the suite has) or 1.85.1
        #[arg(long, value_name = "VERSION")]
        rust: String,
        /// A Debian release to search (a codename: bookworm, trixie...); repeatable
        #[arg(long = "suite", value_name = "CODENAME")]
        suites: Vec<String>,
        /// The keyring to check the lists' signatures against, instead of the pinned one
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// The toolchains.toml to write the pins into (default: print them)
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
        /// Pin from the official Rust distribution at URL (its dist/channel-rust-X.Y.toml,
        /// signature checked against --keyring, the Rust project's release key) instead of Debian
        #[arg(long = "rust-dist", value_name = "URL")]
        dist: Option<String>,
        /// Read Debian's lists even when their signed Valid-Until has passed (an outdated mirror)
        #[arg(long)]
        allow_expired: bool,
        #[command(flatten)]
        pins: PinArgs,
    },
}
