//! Stage "report": `report.json`, `SHA256SUMS`, and what is printed about a
//! run (the table of outputs, test results, the cache's size).

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Outcomes;
use super::verify::Artifact;
use crate::cache;
use crate::plan::Plan;
use crate::plan::RustFlags;
use crate::targets::Target;
use crate::testrun::{Outcome, Status};

#[derive(Debug, Serialize)]
pub struct TargetReport {
    nix_target: String,
    rust_target: String,
    rustflags: Vec<String>,
    rustflags_source: String,
    duration_secs: f64,
    /// The outputs came from the cache: the inputs had not changed.
    cached: bool,
    /// The build ran in the sandbox (no network, only its inputs visible).
    sandboxed: bool,
    /// Compiled units the build started from, restored from the store
    /// (null when it started from the kept dir, or from nothing).
    pub units_restored: Option<crate::cache::units::Restored>,
}

impl TargetReport {
    pub fn new(
        target: &Target,
        flags: RustFlags,
        started: Instant,
        cached: bool,
        sandboxed: bool,
    ) -> Self {
        TargetReport {
            nix_target: target.nix.clone(),
            rust_target: target.rust.clone(),
            rustflags: flags.flags,
            rustflags_source: flags.source,
            duration_secs: started.elapsed().as_secs_f64(),
            cached,
            sandboxed,
            units_restored: None,
        }
    }
}

/// `SHA256SUMS` and `report.json` into the staging tree.
pub fn write(plan: &Plan, epoch: &str, out: &Outcomes, dir: &Path) -> Result<()> {
    let pins = &plan.pins;
    super::publish::write_sums(dir, &out.artifacts)?;
    let report = serde_json::json!({
        "xbuild": env!("CARGO_PKG_VERSION"),
        "git_version": plan.git_version,
        "source_date_epoch": epoch,
        "profile": plan.profile(),
        "rust": plan.rust.as_ref().map(|r| serde_json::json!({
            "release": r.release.to_string(),
            "chosen_by": r.why,
        })),
        "toolchain": {
            "pins": pins.origin,
            "digest": pins.digest(),
            "components": pins.components.iter().map(|c| serde_json::json!({
                "component": c.kind.name(),
                "pin_hash": c.pin_hash(),
                "artifacts": c.artifacts.iter().map(|a| serde_json::json!({"label": a.label(), "sha256": a.sha256})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        },
        "targets": out.reports,
        "artifacts": out.artifacts,
        "tests": out.tests.iter().map(|(t, o)| serde_json::json!({"rust_target": t, "binaries": o})).collect::<Vec<_>>(),
        "determinism": out.determinism,
    });
    fs::write(dir.join("report.json"), serde_json::to_vec_pretty(&report)?)
        .context("writing report.json")
}

/// The table printed after a build of several targets.
pub fn summary(artifacts: &[Artifact]) -> String {
    let mut s = String::new();
    for a in artifacts {
        s.push_str(&format!(
            "{:<32} {:<20} {:>10}  {}  {}\n",
            a.rust_target,
            a.name,
            cache::human_size(a.size),
            a.elf.elf_type,
            &a.sha256[..16]
        ));
    }
    s
}

/// Per target: `N passed, M failed` counting test binaries.
pub fn test_summary(tests: &[(String, Vec<Outcome>)]) -> String {
    let mut s = String::new();
    for (target, outcomes) in tests {
        let count = |st| outcomes.iter().filter(|o| o.status == st).count();
        let (passed, timed_out) = (count(Status::Pass), count(Status::Timeout));
        let tests: u64 = outcomes
            .iter()
            .filter_map(|o| o.counts)
            .map(|c| c.passed)
            .sum();
        let timeouts = if timed_out > 0 {
            format!(", {timed_out} of them timed out")
        } else {
            String::new()
        };
        s.push_str(&format!(
            "{target}: {passed} passed, {} failed (test binaries{timeouts}; {tests} tests passed inside them)\n",
            outcomes.len() - passed
        ));
    }
    s
}

/// One test binary's result, as it finishes.
pub fn print_outcome(o: &Outcome) {
    let counts = o.counts.map_or(String::new(), |c| {
        format!(
            " ({} passed; {} failed; {} ignored)",
            c.passed, c.failed, c.ignored
        )
    });
    let verdict = match o.status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Timeout => "TIMEOUT",
    };
    eprintln!(
        "{verdict:>12} {}{counts} in {:.1}s",
        o.name, o.duration_secs
    );
    if o.status != Status::Pass {
        eprintln!("---- output of {} ----", o.name);
        eprint!("{}", o.output);
        if o.status == Status::Timeout {
            eprintln!("(killed after the --test-timeout)");
        }
        eprintln!("---- end of {} ----", o.name);
    }
}
