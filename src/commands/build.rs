//! `xbuild [options]`: resolve the plan, run the pipeline, say what happened.

use anyhow::Result;

use crate::cache::Cache;
use crate::cache::store::Store;
use crate::cli::BuildArgs;
use crate::pipeline::determinism;
use crate::pipeline::{self, report};
use crate::plan::Plan;
use crate::toolchain::fetch::Mode;
use crate::{exit, ui};

/// Returns the exit code: 0, [`exit::TESTS_FAILED`] or [`exit::NOT_DETERMINISTIC`].
pub fn build(args: BuildArgs) -> Result<u8> {
    let plan = Plan::resolve(args)?;
    if let Some(rust) = &plan.rust {
        ui::status("Rust", &format!("{} ({})", rust.release, rust.why));
        for note in &rust.notes {
            ui::note(note);
        }
    }
    // --offline never touches the shared store
    let store = match plan.mode {
        Mode::Offline => None,
        Mode::Online => {
            Store::from_env(plan.cache_url.as_deref()).map_err(|e| exit::Usage(format!("{e:#}")))?
        }
    };
    let cache = Cache::from_env()?.with_store(store);
    let outcomes = pipeline::run(&plan, &cache)?;
    if let Some(kib) = peak_memory_kib() {
        // xbuild's own, not cargo's or rustc's (they are other processes)
        tracing::info!("peak memory of xbuild itself: {} MiB", kib / 1024);
    }
    let artifacts = &outcomes.artifacts;
    if plan.targets.len() > 1 || crate::env::stderr_is_terminal() {
        eprint!("{}", report::summary(artifacts));
    }
    ui::status(
        "Wrote",
        &format!(
            "{} {}, SHA256SUMS and report.json to {}",
            artifacts.len(),
            match (plan.test.is_some(), artifacts.len()) {
                (true, 1) => "test binary",
                (true, _) => "test binaries",
                (false, 1) => "binary",
                (false, _) => "binaries",
            },
            plan.out_dir.display()
        ),
    );
    let mut code = 0;
    if !outcomes.tests.is_empty() {
        eprint!("{}", report::test_summary(&outcomes.tests));
        if !outcomes.tests_passed() {
            code = exit::TESTS_FAILED;
        }
    }
    if plan.check_determinism {
        for (against, what) in [
            (determinism::SECOND_BUILD, "outputs of two sealed builds"),
            (
                determinism::CACHED_OUTPUTS,
                "against the cached outputs of an earlier build with the same inputs",
            ),
            (
                determinism::STORE,
                "against the shared store's signed outputs for the same inputs",
            ),
        ] {
            let of: Vec<_> = outcomes
                .determinism
                .iter()
                .filter(|v| v.against == against)
                .collect();
            if of.is_empty() && against != determinism::SECOND_BUILD {
                continue;
            }
            let different = of.iter().filter(|v| !v.identical).count();
            eprintln!(
                "determinism: {} identical, {different} different ({what})",
                of.len() - different
            );
        }
        if !outcomes.deterministic() && code == 0 {
            code = exit::NOT_DETERMINISTIC;
        }
    }
    Ok(code)
}

/// This process's peak resident memory (`VmHWM`), in KiB.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
