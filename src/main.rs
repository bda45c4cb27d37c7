//! xbuild: static, reproducible Linux binaries for several CPUs from one Cargo
//! workspace. See docs/ARCHITECTURE.md for the map of the code.

use std::process::ExitCode;

use clap::Parser;

mod build;
mod cli;
mod commands;
mod depcache;
mod determinism;
mod elf;
mod env;
mod logging;
mod outputs;
mod seal;
mod targets;
mod testrun;
mod toolchain;
mod triple;
mod ui;
mod zigcc;

use cli::{CacheCommand, Cli, Command, PinArgs, ToolchainCommand};
use toolchain::cache::Cache;
use toolchain::fetch::Mode;
use toolchain::manifest::{ComponentKind, Pins};

/// Exit status for a user mistake (bad flag, unknown triple, bad config).
const EXIT_USAGE: u8 = 2;

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
        Ok(code) => code,
        Err(e) if env::interrupted() => {
            eprintln!("error: interrupted; nothing was published ({e:#})");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let stdout = &mut std::io::stdout().lock();
    let Some(command) = cli.command else {
        return build_command(cli.build);
    };
    match command {
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
        Command::Cache(cmd) => cache_command(cmd, stdout),
    }
}

fn cache_command(cmd: CacheCommand, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    use toolchain::cache::{dir_size, human_size};
    let cache = Cache::from_env()?;
    match cmd {
        CacheCommand::List => {
            writeln!(out, "cache: {}", cache.root.display())?;
            let mut total = 0;
            for (what, path) in [
                ("downloads", cache.downloads()),
                ("toolchains", cache.toolchains()),
                ("std sysroots", cache.sysroots()),
                ("zig's cache", cache.zig_cache()),
                ("crates (cargo home)", cache.cargo_home()),
                ("kept dependencies", cache.root.join("v1/deps")),
                ("cached outputs", cache.root.join("v1/outputs")),
            ] {
                let size = dir_size(&path);
                total += size;
                writeln!(out, "  {what:<22} {:>10}", human_size(size))?;
            }
            writeln!(out, "  {:<22} {:>10}", "total", human_size(total))?;
            for kept in depcache::list(&cache) {
                let what = kept.about.map_or_else(
                    || "(unknown)".to_string(),
                    |a| format!("{} {} of {}", a.mode, a.target, a.workspace),
                );
                writeln!(
                    out,
                    "  kept deps  {} {:>10}  {what}",
                    kept.key,
                    human_size(kept.size)
                )?;
            }
            for (key, size, _) in outputs::list(&cache) {
                writeln!(out, "  output set {key} {:>10}", human_size(size))?;
            }
        }
        CacheCommand::Gc { max_size } => {
            let freed = outputs::trim(&cache, max_size)?;
            ui::status("Freed", &human_size(freed));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn build_command(args: cli::BuildArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let cwd = std::env::current_dir()?;
    let manifest_path = match &args.manifest_path {
        Some(p) => cwd.join(p),
        None => cwd.join("Cargo.toml"),
    };
    if !manifest_path.is_file() {
        anyhow::bail!(
            "no Cargo.toml at {}; run xbuild in a Cargo workspace or pass --manifest-path",
            manifest_path.display()
        );
    }
    let manifest_dir = manifest_path
        .parent()
        .context("manifest path has no parent")?;
    let workspace_root =
        toolchain::find_workspace_root(manifest_dir).unwrap_or(manifest_dir.to_path_buf());
    let names = if args.targets.is_empty() {
        vec![targets::DEFAULT_TARGET.to_string()]
    } else {
        args.targets.clone()
    };
    let mut table = Vec::new();
    for name in &names {
        let t = targets::lookup(name)?;
        if !table.contains(&t) {
            table.push(t);
        }
    }
    let git_version = match args.git_version.as_deref() {
        Some("auto") => Some(build::git_describe(&workspace_root)?),
        other => other.map(String::from),
    };
    let plan = build::Plan {
        targets: table.clone(),
        out_dir: match &args.out {
            Some(o) => cwd.join(o),
            None => workspace_root.join("target").join("xbuild"),
        },
        workspace_root: workspace_root.clone(),
        manifest_path,
        release: args.release,
        packages: args.packages,
        bins: args.bins,
        features: args.features,
        git_version,
        jobs: args.jobs,
        offline: args.pins.offline,
        user_rustflags: env::user_rustflags(),
        test: args.test.then(|| build::TestOptions {
            no_run: args.no_run,
            timeout: std::time::Duration::from_secs(args.test_timeout),
            args: args.test_args.clone(),
            parallel: args.jobs.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |j| j as usize,
            ),
        }),
        check_determinism: args.check_determinism,
        keep_sealed: args.keep_sealed,
        rebuild: args.rebuild,
    };
    let pins = toolchain::load_pins(args.pins.toolchains.as_deref(), Some(&workspace_root))?;
    let cache = Cache::from_env()?;
    let mode = if args.pins.offline {
        Mode::Offline
    } else {
        Mode::Online
    };
    // qemu is needed to run tests, not to build
    let kinds = if args.test && !args.no_run {
        toolchain::components_for(&plan.targets)
    } else {
        vec![ComponentKind::Rust, ComponentKind::Zig]
    };
    let tc = toolchain::provision(&cache, &pins, &kinds, mode)?;
    let outcomes = build::run(&plan, &cache, &tc)?;
    if let Some(kib) = peak_memory_kib() {
        // xbuild's own, not cargo's or rustc's (they are other processes)
        tracing::info!("peak memory of xbuild itself: {} MiB", kib / 1024);
    }
    let artifacts = &outcomes.artifacts;
    if plan.targets.len() > 1 || std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprint!("{}", build::summary(artifacts));
    }
    ui::status(
        "Wrote",
        &format!(
            "{} {}, SHA256SUMS and report.json to {}",
            artifacts.len(),
            if args.test {
                "test binaries"
            } else {
                "binaries"
            },
            plan.out_dir.display()
        ),
    );
    let mut ok = true;
    if !outcomes.tests.is_empty() {
        eprint!("{}", outcomes.test_summary());
        ok &= outcomes.tests_passed();
    }
    if args.check_determinism {
        for (against, what) in [
            (determinism::SECOND_BUILD, "outputs of two sealed builds"),
            (
                determinism::CACHED_OUTPUTS,
                "against the cached outputs of an earlier build with the same inputs",
            ),
        ] {
            let of: Vec<_> = outcomes
                .determinism
                .iter()
                .filter(|v| v.against == against)
                .collect();
            if of.is_empty() && against == determinism::CACHED_OUTPUTS {
                continue;
            }
            let different = of.iter().filter(|v| !v.identical).count();
            eprintln!(
                "determinism: {} identical, {different} different ({what})",
                of.len() - different
            );
        }
        ok &= outcomes.deterministic();
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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

/// This process's peak resident memory (`VmHWM`), in KiB.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
