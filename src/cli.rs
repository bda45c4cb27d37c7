//! Command-line parsing. This module only parses and validates; every command
//! is carried out by one function in another module.

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
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
#[command(name = "xbuild", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
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
}
