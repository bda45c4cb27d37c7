//! The commands, each a thin wrapper: parse what clap gave, resolve, call
//! the one function that does the work. The informational ones (`triple`,
//! `targets`) are here; the others have a file each.

pub mod build;
pub mod cache;
pub mod toolchain;

use std::io::Write;

use anyhow::Result;

use crate::exit;
use crate::targets::{self, ElfKind, Target, triple};

/// The exit code for an error that ended a command (`exit`'s table): the
/// errors of every module are known here, at the top.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    let usage = e.chain().any(|c| {
        c.is::<exit::Usage>()
            || c.is::<crate::targets::LookupError>()
            || c.is::<crate::targets::triple::TripleError>()
            || c.is::<crate::toolchain::manifest::ManifestError>()
    });
    if e.chain().any(|c| c.is::<exit::NoSandbox>()) {
        exit::NO_SANDBOX
    } else if usage {
        exit::USAGE
    } else {
        exit::FAILURE
    }
}

/// `xbuild triple NAME...`: one Rust triple per line on stdout; errors on
/// stderr. Returns whether every name resolved.
pub fn triple(names: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<bool> {
    let mut all_ok = true;
    for name in names {
        match triple::resolve(name) {
            Ok(r) => writeln!(out, "{}", r.rust)?,
            Err(e) => {
                all_ok = false;
                writeln!(err, "error: {e}")?;
            }
        }
    }
    Ok(all_ok)
}

/// `xbuild targets [--json]`.
pub fn targets(json: bool, out: &mut dyn Write) -> Result<()> {
    targets_of(targets::all(), json, out)
}

/// `xbuild targets` of any table.
pub fn targets_of(table: &[Target], json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, table)?;
        writeln!(out)?;
        return Ok(());
    }
    for t in table {
        let form = match t.elf.kind {
            ElfKind::StaticPie => "static-pie (ELF DYN, no interpreter)",
            ElfKind::Exec => "static (ELF EXEC, no interpreter)",
        };
        let run = match (&t.runner.qemu, &t.runner.qemu_cpu) {
            (Some(q), Some(cpu)) => format!("{q} -cpu {cpu}"),
            (Some(q), None) => q.clone(),
            (None, _) => "native".to_string(),
        };
        let cc = match &t.cc.cpu {
            Some(cpu) => format!("zig cc -target {} -mcpu={cpu}", t.cc.zig_target),
            None => format!("zig cc -target {}", t.cc.zig_target),
        };
        writeln!(out, "{}", t.rust)?;
        writeln!(out, "  nix:       {}", t.nix)?;
        writeln!(out, "  summary:   {}", t.summary)?;
        writeln!(out, "  rustflags: {}", t.rustflags.join(" "))?;
        writeln!(
            out,
            "  output:    {form}, {}-bit {}",
            t.elf.class, t.elf.machine
        )?;
        writeln!(out, "  c/linker:  {cc}")?;
        writeln!(out, "  runs with: {run}")?;
    }
    Ok(())
}
