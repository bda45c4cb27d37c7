//! xbuild: static, reproducible Linux binaries for several CPUs from one Cargo
//! workspace. See docs/ARCHITECTURE.md for the map of the code.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod env;
mod logging;
mod targets;
mod toolchain;
mod triple;
mod ui;

use cli::{Cli, Command, PinArgs, ToolchainCommand};
use toolchain::cache::Cache;
use toolchain::fetch::Mode;
use toolchain::manifest::{ComponentKind, Pins};

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
        Command::Toolchain(cmd) => toolchain_command(cmd, stdout),
    }
}

fn pins_of(args: &PinArgs) -> anyhow::Result<(Pins, Mode)> {
    let cwd = std::env::current_dir()?;
    let root = toolchain::find_workspace_root(&cwd);
    let pins = toolchain::load_pins(args.toolchains.as_deref(), root.as_deref())?;
    let mode = if args.offline {
        Mode::Offline
    } else {
        Mode::Online
    };
    Ok((pins, mode))
}

fn toolchain_command(
    cmd: ToolchainCommand,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    let cache = Cache::from_env()?;
    let all = [ComponentKind::Rust, ComponentKind::Zig, ComponentKind::Qemu];
    match cmd {
        ToolchainCommand::Fetch { targets, pins } => {
            let (pins, mode) = pins_of(&pins)?;
            let kinds = if targets.is_empty() {
                all.to_vec()
            } else {
                let table = targets
                    .iter()
                    .map(|t| targets::lookup(t))
                    .collect::<Result<Vec<_>, _>>()?;
                toolchain::components_for(&table)
            };
            toolchain::commands::fetch(&cache, &pins, &kinds, mode)?;
        }
        ToolchainCommand::List { json, pins } => {
            let (pins, _) = pins_of(&pins)?;
            toolchain::commands::list(&cache, &pins, json, out)?;
        }
        ToolchainCommand::Verify { pins } => {
            let (pins, _) = pins_of(&pins)?;
            if !toolchain::commands::verify(&cache, &pins, out)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        ToolchainCommand::Gc { pins } => {
            let (pins, _) = pins_of(&pins)?;
            let freed = toolchain::commands::gc(&cache, &pins)?;
            ui::status("Freed", &toolchain::cache::human_size(freed));
        }
        ToolchainCommand::Bundle { file, pins } => {
            let (pins, mode) = pins_of(&pins)?;
            toolchain::commands::bundle(&cache, &pins, &file, mode)?;
        }
        ToolchainCommand::Import { file } => {
            toolchain::commands::import(&cache, &file)?;
        }
        ToolchainCommand::Env { pins } => {
            let (pins, mode) = pins_of(&pins)?;
            let tc = toolchain::provision(&cache, &pins, &all, mode)?;
            toolchain::commands::print_env(&tc, &cache, out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
