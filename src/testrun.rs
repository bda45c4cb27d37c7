//! Running test binaries: natively or under qemu-user, in parallel, each with
//! a timeout, capturing output and libtest's counts.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::env;
use crate::process::Cmd;

/// One test binary to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The stable name (`package-kind-target`).
    pub name: String,
    pub exe: PathBuf,
    /// The runner prefix: empty for native, `[qemu, -cpu, CPU]` otherwise.
    pub runner: Vec<OsString>,
    /// The package's directory as the test sees it: cargo runs tests there,
    /// and tests expect it (the runner prefix changes into it when it is a
    /// path inside a mount namespace).
    pub manifest_dir: PathBuf,
    /// Where to start the process (a real path).
    pub cwd: PathBuf,
    /// Set over `env::passthrough_for_tests` (the sandbox's HOME, TMPDIR, PATH).
    pub env: Vec<(String, OsString)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Timeout,
}

/// libtest's own counts, summed over the `test result:` lines it printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub status: Status,
    pub counts: Option<Counts>,
    pub duration_secs: f64,
    pub exit_code: Option<i32>,
    #[serde(skip)]
    pub output: String,
}

/// Parse `test result: ok. 3 passed; 0 failed; 1 ignored; ...` lines.
pub fn parse_counts(output: &str) -> Option<Counts> {
    let mut total: Option<Counts> = None;
    for line in output.lines().filter(|l| l.starts_with("test result:")) {
        let c = total.get_or_insert_with(Counts::default);
        for part in line.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let (Some(n), Some(what)) = (
                words
                    .iter()
                    .rev()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok()),
                words.last(),
            ) else {
                continue;
            };
            match *what {
                "passed" => c.passed += n,
                "failed" => c.failed += n,
                "ignored" => c.ignored += n,
                _ => {}
            }
        }
    }
    total
}

fn run_one(job: &Job, args: &[String], timeout: Duration) -> Outcome {
    let started = Instant::now();
    let fail = |output: String| Outcome {
        name: job.name.clone(),
        status: Status::Fail,
        counts: None,
        duration_secs: started.elapsed().as_secs_f64(),
        exit_code: None,
        output,
    };
    let log = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot create a temp file for the output: {e}")),
    };
    let (program, prefix_args) = match job.runner.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => (job.exe.clone().into_os_string(), Vec::new()),
    };
    let mut cmd = Cmd::new(&program);
    cmd.args(&prefix_args);
    if !job.runner.is_empty() {
        cmd.arg(&job.exe);
    }
    cmd.args(args)
        .current_dir(&job.cwd)
        .envs(env::passthrough_for_tests())
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .env("CARGO_MANIFEST_DIR", &job.manifest_dir)
        .stdin(Stdio::null());
    match (log.try_clone(), log.try_clone()) {
        (Ok(out), Ok(err)) => {
            cmd.stdout(out.into()).stderr(err.into());
        }
        _ => return fail("cannot duplicate the output file".into()),
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start {}: {e}", job.exe.display())),
    };
    let deadline = started + timeout;
    let (status, code) = loop {
        match child.try_wait() {
            Ok(Some(s)) => {
                break (
                    if s.success() {
                        Status::Pass
                    } else {
                        Status::Fail
                    },
                    s.code(),
                );
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break (Status::Timeout, None);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(25)),
            Err(e) => return fail(format!("waiting for {}: {e}", job.exe.display())),
        }
    };
    let mut output = String::new();
    let mut log = log;
    use std::io::Seek;
    let _ = log.seek(std::io::SeekFrom::Start(0));
    let mut bytes = Vec::new();
    let _ = File::read_to_end(&mut log, &mut bytes);
    output.push_str(&String::from_utf8_lossy(&bytes));
    Outcome {
        name: job.name.clone(),
        status,
        counts: parse_counts(&output),
        duration_secs: started.elapsed().as_secs_f64(),
        exit_code: code,
        output,
    }
}

/// Run every job, `parallel` at a time; `on_done` sees each outcome as it
/// finishes. Outcomes come back in the order of `jobs`.
pub fn run_all(
    jobs: &[Job],
    args: &[String],
    parallel: usize,
    timeout: Duration,
    on_done: &(dyn Fn(&Outcome) + Sync),
) -> Vec<Outcome> {
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..jobs.len()).collect());
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1).min(jobs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let Some(i) = queue.lock().expect("queue lock").pop_front() else {
                        break;
                    };
                    let outcome = run_one(&jobs[i], args, timeout);
                    on_done(&outcome);
                    results.lock().expect("results lock")[i] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summed_over_result_lines() {
        let out = "running 2 tests\ntest a ... ok\n\ntest result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\
                   test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        assert_eq!(
            parse_counts(out),
            Some(Counts {
                passed: 3,
                failed: 2,
                ignored: 1
            })
        );
        assert_eq!(parse_counts("no tests here"), None);
    }

    fn sh(name: &str, script: &str) -> Job {
        Job {
            name: name.into(),
            exe: "/bin/sh".into(),
            runner: vec!["/bin/sh".into(), "-c".into(), script.into()],
            manifest_dir: std::env::temp_dir(),
            cwd: std::env::temp_dir(),
            env: Vec::new(),
        }
    }

    #[test]
    fn pass_fail_and_timeout() {
        let jobs = [
            sh(
                "pass",
                "echo 'test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured'",
            ),
            sh("fail", "echo boom; exit 101"),
            sh("hang", "sleep 30"),
        ];
        let started = Instant::now();
        let out = run_all(&jobs, &[], 3, Duration::from_millis(500), &|_| {});
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(out[0].status, Status::Pass);
        assert_eq!(out[0].counts.unwrap().passed, 1);
        assert_eq!(out[1].status, Status::Fail);
        assert_eq!(out[1].exit_code, Some(101));
        assert!(out[1].output.contains("boom"));
        assert_eq!(out[2].status, Status::Timeout);
    }
}
