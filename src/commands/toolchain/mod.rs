//! `xbuild toolchain fetch|list|verify|gc|bundle|import|doctor|env|pin`.

use std::io::Write;

use anyhow::Result;

use crate::cache::{self, Cache};
use crate::cli::{PinArgs, ToolchainCommand};
use crate::targets;
use crate::toolchain::{self, fetch::Mode, manifest::ComponentKind, manifest::Pins};

mod actions;
mod doctor;
mod pin;
use crate::ui;

fn pins_of(args: &PinArgs) -> Result<(Pins, Mode)> {
    let cwd = std::env::current_dir()?;
    let manifest = cwd.join("Cargo.toml");
    let root = if manifest.is_file() {
        crate::workspace::find_workspace_root(&manifest).ok()
    } else {
        None
    };
    let pins = toolchain::load_pins(args.toolchains.as_deref(), root.as_deref())?;
    // the release the workspace asks for (rust-toolchain.toml), as a build would
    let pins = match root.as_deref() {
        Some(root) => match crate::rust_release::choose(&pins, None, root)? {
            Some(choice) => crate::rust_release::select(&pins, choice.release),
            None => pins,
        },
        None => pins,
    };
    let mode = if args.offline {
        Mode::Offline
    } else {
        Mode::Online
    };
    Ok((pins, mode))
}

/// Returns whether the command succeeded (`verify` may find problems).
pub fn toolchain(cmd: ToolchainCommand, out: &mut dyn Write) -> Result<bool> {
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
            actions::fetch(&cache, &pins, &kinds, mode)?;
        }
        ToolchainCommand::List { json, pins } => {
            let (pins, _) = pins_of(&pins)?;
            actions::list(&cache, &pins, json, out)?;
        }
        ToolchainCommand::Verify { pins } => {
            let (pins, _) = pins_of(&pins)?;
            return actions::verify(&cache, &pins, out);
        }
        ToolchainCommand::Gc { pins } => {
            let (pins, _) = pins_of(&pins)?;
            let freed = actions::gc(&cache, &pins)?;
            ui::status("Freed", &cache::human_size(freed));
        }
        ToolchainCommand::Bundle { file, pins } => {
            let (pins, mode) = pins_of(&pins)?;
            actions::bundle(&cache, &pins, &file, mode)?;
        }
        ToolchainCommand::Import { file } => {
            actions::import(&cache, &file)?;
        }
        ToolchainCommand::Doctor { pins } => {
            let (pins, _) = pins_of(&pins)?;
            return doctor::run(&cache, &pins, out);
        }
        ToolchainCommand::Pin {
            rust,
            suites,
            keyring,
            write,
            dist,
            allow_expired,
            pins,
        } => {
            let (pins, mode) = pins_of(&pins)?;
            let ask = pin::Ask {
                rust: &rust,
                suites: &suites,
                keyring: keyring.as_deref(),
                write: write.as_deref(),
                dist: dist.as_deref(),
                allow_expired,
            };
            pin::run(&cache, &pins, &ask, mode, out)?;
        }
        ToolchainCommand::Env { pins } => {
            let (pins, mode) = pins_of(&pins)?;
            let tc = toolchain::provision(&cache, &pins, &all, mode)?;
            actions::print_env(&tc, &cache, out)?;
        }
    }
    Ok(true)
}
