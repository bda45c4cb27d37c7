//! xbuild: static, reproducible Linux binaries for several CPUs from one Cargo
//! workspace. See docs/ARCHITECTURE.md for the map of the code.

use std::process::ExitCode;

use clap::Parser;

mod cache;
mod cargo_config;
mod cargo_env;
mod cli;
mod commands;
mod elf;
mod env;
mod exit;
mod http;
mod logging;
mod pipeline;
mod plan;
mod process;
mod rust_release;
mod safe_fs;
mod sandbox;
mod stdlib;
mod targets;
mod testrun;
mod toolchain;
mod ui;
mod unpack;
mod workspace;
mod zigcc;

use cli::{Cli, Command};

fn main() -> ExitCode {
    // Started as a target's C compiler or archiver (see zigcc)?
    if let Some(argv0) = std::env::args_os().next()
        && let Some(code) = zigcc::dispatch(&argv0)
    {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    logging::init(cli.global.verbose);
    env::catch_interrupts();
    match run(cli) {
        Ok(code) => exit::code(code),
        Err(e) if env::interrupted() => {
            eprintln!("error: interrupted; nothing was published ({e:#})");
            exit::code(exit::INTERRUPTED)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::code(commands::exit_code(&e))
        }
    }
}

/// One match from the command line to the command that carries it out.
fn run(cli: Cli) -> anyhow::Result<u8> {
    let stdout = &mut std::io::stdout().lock();
    let Some(command) = cli.command else {
        return commands::build::build(cli.build);
    };
    let ok = match command {
        Command::Triple { names } => {
            if commands::triple(&names, stdout, &mut std::io::stderr())? {
                return Ok(0);
            }
            return Ok(exit::USAGE);
        }
        Command::Targets { json } => {
            commands::targets(json, stdout)?;
            true
        }
        Command::Toolchain(cmd) => commands::toolchain::toolchain(cmd, stdout)?,
        Command::Cache(cmd) => {
            commands::cache::cache(cmd, stdout)?;
            true
        }
    };
    Ok(if ok { 0 } else { exit::FAILURE })
}
