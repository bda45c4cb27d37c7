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
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;

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

/// What a build's processes inherit from the first one xbuild starts: set
/// in that child between fork and exec, so xbuild's own process is never
/// changed, and passed on through bubblewrap to cargo, rustc, build scripts
/// and what they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inherited {
    /// The file mode creation mask.
    pub umask: u32,
    /// `uname` reports a 2.6 kernel release (personality `UNAME26`).
    pub old_kernel: bool,
    /// No address space layout randomisation (`ADDR_NO_RANDOMIZE`).
    pub no_aslr: bool,
    /// Only one CPU of those xbuild may use (affinity).
    pub one_cpu: bool,
}

/// `UNAME26` of `<linux/personality.h>` (not in the libc crate).
const UNAME26: libc::c_ulong = 0x002_0000;

impl Inherited {
    /// Every build's: the machine's value of none of these reaches it.
    pub const BUILD: Inherited = Inherited {
        umask: 0o022,
        old_kernel: false,
        no_aslr: false,
        one_cpu: false,
    };

    /// In the child, before exec: only async-signal-safe system calls.
    fn apply(&self) -> std::io::Result<()> {
        // SAFETY: plain system calls on values owned by this frame.
        unsafe {
            libc::umask(self.umask as libc::mode_t);
            let mut persona: libc::c_ulong = 0;
            if self.old_kernel {
                persona |= UNAME26;
            }
            if self.no_aslr {
                persona |= libc::ADDR_NO_RANDOMIZE as libc::c_ulong;
            }
            if libc::personality(persona) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if self.one_cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                let size = std::mem::size_of::<libc::cpu_set_t>();
                if libc::sched_getaffinity(0, size, &mut set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let first = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set));
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(first.unwrap_or(0), &mut one);
                if libc::sched_setaffinity(0, size, &one) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
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

    /// The child starts with `inherited`: calls apply in turn, so umask and
    /// personality are the last call's, and one CPU stays once asked for.
    pub fn inherit(&mut self, inherited: Inherited) -> &mut Cmd {
        use std::os::unix::process::CommandExt;
        // SAFETY: `apply` makes only async-signal-safe system calls and
        // allocates nothing.
        unsafe {
            self.inner.pre_exec(move || inherited.apply());
        }
        self
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

    /// Run to the end with no terminal: stdin from `/dev/null`, stdout and
    /// stderr through pipes that xbuild relays to its own stderr, cleaned
    /// by [`terminal_safe`]; an exit status other than 0 is an error.
    pub fn run_relayed(&mut self) -> Result<(), ProcessError> {
        let mut child = self.spawn_relayed(false)?;
        let status = child.wait().map_err(|e| self.not_started(e))?;
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

    /// Start with no terminal: stdin from `/dev/null`, stderr (and stdout
    /// unless `keep_stdout`, then piped for the caller) relayed to xbuild's
    /// stderr through [`terminal_safe`]. [`Relayed::wait`] waits for the
    /// relays too, so that nothing the child said is lost.
    pub fn spawn_relayed(&mut self, keep_stdout: bool) -> Result<Relayed, ProcessError> {
        self.inner
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.spawn()?;
        let mut relays = Vec::new();
        if let Some(err) = child.stderr.take() {
            relays.push(relay(err));
        }
        if !keep_stdout && let Some(out) = child.stdout.take() {
            relays.push(relay(out));
        }
        Ok(Relayed {
            child,
            relays,
            tail: Vec::new(),
        })
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

/// A child whose output xbuild relays (see [`Cmd::spawn_relayed`]).
pub struct Relayed {
    pub child: Child,
    relays: Vec<JoinHandle<Vec<String>>>,
    tail: Vec<String>,
}

/// Lines of a relayed stream kept for the caller to read after
/// [`Relayed::wait`] (the last ones: an error's explanation).
const TAIL_LINES: usize = 40;

impl Relayed {
    /// Wait for the child and for everything it wrote to be relayed.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait()?;
        for r in self.relays.drain(..) {
            if let Ok(lines) = r.join() {
                self.tail.extend(lines);
            }
        }
        Ok(status)
    }

    /// The last lines the child wrote to the relayed streams (without
    /// colours), once [`Relayed::wait`] returned.
    pub fn tail(&self) -> &[String] {
        &self.tail
    }
}

/// Copy what a child writes to xbuild's stderr, a line at a time, through
/// [`terminal_safe`].
fn relay(from: impl Read + Send + 'static) -> JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut from = BufReader::new(from);
        let mut line = Vec::new();
        let mut tail = std::collections::VecDeque::with_capacity(TAIL_LINES);
        loop {
            line.clear();
            match from.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let safe = terminal_safe(&line);
                    let plain = without_colour(&safe);
                    let shown = if crate::env::colour() { &safe } else { &plain };
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(shown);
                    let _ = err.flush();
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(String::from_utf8_lossy(&plain).trim_end().to_string());
                }
            }
        }
        tail.into()
    })
}

/// A line [`terminal_safe`] left, without its colours and "erase in line"
/// (the only escape sequences it keeps), for a log rather than a terminal.
pub fn without_colour(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == 0x1b && line.get(i + 1) == Some(&b'[') {
            let end = line[i + 2..]
                .iter()
                .position(|c| *c == b'm' || *c == b'K')
                .map_or(line.len(), |p| i + 2 + p + 1);
            i = end;
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

/// A line a sandboxed process wrote, made safe for the user's terminal:
/// text, tabs and newlines pass, and of the escape sequences only colours
/// and "erase in line" (`ESC [ digits;… m|K`, what cargo and rustc use);
/// every other control character and escape sequence (cursor moves, window
/// titles, OSC 52 clipboard writes, terminal queries, C1 controls) is dropped.
pub fn terminal_safe(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        match b {
            0x1b => {
                i += 1;
                match line.get(i) {
                    Some(b'[') => {
                        let start = i + 1;
                        let mut j = start;
                        while j < line.len() && (0x20..0x40).contains(&line[j]) {
                            j += 1;
                        }
                        let params = &line[start..j.min(line.len())];
                        let plain = params.iter().all(|c| c.is_ascii_digit() || *c == b';');
                        match line.get(j) {
                            Some(&f @ (b'm' | b'K')) if plain => {
                                out.extend_from_slice(b"\x1b[");
                                out.extend_from_slice(params);
                                out.push(f);
                                i = j + 1;
                            }
                            Some(0x40..=0x7e) => i = j + 1,
                            _ => i = j,
                        }
                    }
                    // OSC, DCS, APC, PM, SOS: up to BEL or ST
                    Some(b']' | b'P' | b'_' | b'^' | b'X') => {
                        i += 1;
                        while i < line.len() {
                            if line[i] == 0x07 {
                                i += 1;
                                break;
                            }
                            if line[i] == 0x1b && line.get(i + 1) == Some(&b'\\') {
                                i += 2;
                                break;
                            }
                            i += 1;
                        }
                    }
                    Some(_) => i += 1,
                    None => {}
                }
            }
            b'\n' | b'\t' => {
                out.push(b);
                i += 1;
            }
            0x00..=0x1f | 0x7f => i += 1,
            // C1 controls, as UTF-8 (U+0080..U+009F)
            0xc2 if matches!(line.get(i + 1), Some(0x80..=0x9f)) => i += 2,
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(s: &str) -> String {
        String::from_utf8(terminal_safe(s.as_bytes())).unwrap()
    }

    #[test]
    fn without_a_terminal_the_colours_go_too() {
        let plain =
            |s: &str| String::from_utf8(without_colour(&terminal_safe(s.as_bytes()))).unwrap();
        assert_eq!(
            plain("\x1b[1m\x1b[32m   Compiling\x1b[0m a\x1b[K\n"),
            "   Compiling a\n"
        );
        assert_eq!(plain("\x1b[38;5;12mx [y] \x1b[2Jz\n"), "x [y] z\n");
    }

    #[test]
    fn colours_and_text_reach_the_terminal_and_nothing_else_does() {
        let check = |input: &str, expected: &str| assert_eq!(safe(input), expected, "{input:?}");
        check("plain text\n", "plain text\n");
        check(
            "\x1b[1m\x1b[32m   Compiling\x1b[0m a\n",
            "\x1b[1m\x1b[32m   Compiling\x1b[0m a\n",
        );
        check("\x1b[38;5;12mx\x1b[K\n", "\x1b[38;5;12mx\x1b[K\n");
        check("tab\there\n", "tab\there\n");
        check("héllo ✓\n", "héllo ✓\n");
        // window title, clipboard (OSC 52), BEL- and ST-terminated
        check("a\x1b]0;pwned\x07b\n", "ab\n");
        check("a\x1b]52;c;ZWNobyBoaQ==\x1b\\b\n", "ab\n");
        // cursor moves, clearing the screen, device queries, private modes
        check("\x1b[2J\x1b[H\x1b[6n\x1b[?1049h\x1b[1;1Hx\n", "x\n");
        // a sequence ends at its final byte; what follows is text
        check("\x1b[0;\"rm -rf ~\"p.\n", "m -rf ~\"p.\n");
        // carriage return, backspace, bell, DEL and C1 CSI (U+009B)
        check("abc\r\x08\x07\x7fd\u{9b}2Je\n", "abcd2Je\n");
        // DCS, single-character escapes, an escape cut off at the end
        check("\x1bP+q544e\x1b\\x\x1bcy\x1b[12", "xy");
    }

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
