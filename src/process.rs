//! The one way xbuild starts a child process (cargo-util's `ProcessBuilder`
//! is the model).
//!
//! Every child starts from a **cleared environment** plus the variables its
//! caller lists, so what a child sees is decided where it is started, never
//! inherited by accident: a `GIT_DIR` in the user's shell cannot change which
//! files git lists, and a `RUSTC_WRAPPER` cannot reach a sealed build. A
//! failure keeps the command line, the exit status and the child's stderr.
//! Nothing else in the crate calls `std::process::Command::new` (enforced by
//! `clippy.toml`).
#![allow(clippy::disallowed_methods)]

use std::ffi::OsStr;
use std::fmt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};

/// A child process that failed: what ran, how it ended, what it said.
#[derive(Debug, thiserror::Error)]
pub struct ProcessError {
    pub command: String,
    pub status: Option<ExitStatus>,
    pub stderr: String,
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "`{}` failed ({s})", self.command)?,
            None => write!(f, "`{}` could not be started", self.command)?,
        }
        let stderr = self.stderr.trim_end();
        if !stderr.is_empty() {
            write!(f, ":\n{stderr}")?;
        }
        Ok(())
    }
}

/// A command being built: program, arguments, working directory and the
/// complete environment it will get.
pub struct Cmd {
    inner: Command,
    shown: String,
}

impl Cmd {
    /// `program` with an empty environment.
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        let program = program.as_ref();
        let mut inner = Command::new(program);
        inner.env_clear();
        Cmd {
            inner,
            shown: program.to_string_lossy().into_owned(),
        }
    }

    /// `program` with `PATH`, `HOME` and the locale of the user: for the
    /// host tools xbuild runs on the user's behalf (git), nothing else.
    pub fn host_tool(program: &str) -> Cmd {
        let mut cmd = Cmd::new(program);
        cmd.envs(crate::env::host_tool_env());
        cmd
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cmd {
        let arg = arg.as_ref();
        self.shown.push(' ');
        self.shown.push_str(&arg.to_string_lossy());
        self.inner.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Cmd {
        self.inner.env(key, value);
        self
    }

    pub fn envs<K, V>(&mut self, vars: impl IntoIterator<Item = (K, V)>) -> &mut Cmd
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.inner.current_dir(dir);
        self
    }

    pub fn stdin(&mut self, s: Stdio) -> &mut Cmd {
        self.inner.stdin(s);
        self
    }

    pub fn stdout(&mut self, s: Stdio) -> &mut Cmd {
        self.inner.stdout(s);
        self
    }

    pub fn stderr(&mut self, s: Stdio) -> &mut Cmd {
        self.inner.stderr(s);
        self
    }

    /// The command line, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn not_started(&self, e: std::io::Error) -> ProcessError {
        ProcessError {
            command: self.shown.clone(),
            status: None,
            stderr: e.to_string(),
        }
    }

    pub fn spawn(&mut self) -> Result<Child, ProcessError> {
        self.inner.spawn().map_err(|e| self.not_started(e))
    }

    /// Run to the end with inherited stdio; an exit status other than 0 is an error.
    pub fn run(&mut self) -> Result<(), ProcessError> {
        let status = self.inner.status().map_err(|e| self.not_started(e))?;
        if status.success() {
            Ok(())
        } else {
            Err(ProcessError {
                command: self.shown.clone(),
                status: Some(status),
                stderr: String::new(),
            })
        }
    }

    /// Run to the end, returning its exit status whatever it is.
    pub fn status(&mut self) -> Result<ExitStatus, ProcessError> {
        self.inner.status().map_err(|e| self.not_started(e))
    }

    /// Run to the end capturing stdout and stderr, whatever its exit status.
    pub fn output_unchecked(&mut self) -> Result<Output, ProcessError> {
        self.inner
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.not_started(e))
    }

    /// Run to the end capturing stdout and stderr; an exit status other than
    /// 0 is an error that keeps stderr.
    pub fn output(&mut self) -> Result<Output, ProcessError> {
        let out = self
            .inner
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.not_started(e))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(ProcessError {
                command: self.shown.clone(),
                status: Some(out.status),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_start_from_an_empty_environment() {
        let out = Cmd::new("/usr/bin/env").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        let out = Cmd::new("/usr/bin/env").env("A", "1").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "A=1\n");
    }

    #[test]
    fn a_failure_keeps_command_status_and_stderr() {
        let err = Cmd::new("/bin/sh")
            .args(["-c", "echo broken >&2; exit 7"])
            .output()
            .unwrap_err();
        assert_eq!(err.status.and_then(|s| s.code()), Some(7));
        assert_eq!(err.stderr.trim(), "broken");
        let text = err.to_string();
        assert!(text.contains("/bin/sh -c"), "{text}");
        assert!(text.contains("broken"), "{text}");
        let err = Cmd::new("/nonexistent/tool").output().unwrap_err();
        assert!(err.status.is_none());
    }
}
