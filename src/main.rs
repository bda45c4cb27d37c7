//! xbuild: static, reproducible Linux binaries for several CPUs from one Cargo
//! workspace. See docs/ARCHITECTURE.md for the map of the code.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod env;
mod logging;
mod targets;
mod triple;

use cli::{Cli, Command};

/// Exit status for a user mistake (bad flag, unknown triple, bad config).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.global.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let stdout = &mut std::io::stdout().lock();
    match cli.command {
        Command::Triple { names } => {
            let ok = commands::triple(&names, stdout, &mut std::io::stderr())?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_USAGE)
            })
        }
        Command::Targets { json } => {
            commands::targets(json, stdout)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
