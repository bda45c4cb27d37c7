//! What xbuild tells the person running it, on stderr: cargo-style status
//! lines, warnings, and a progress meter on a terminal (plain lines elsewhere).

use std::io::Write;
use std::time::Instant;

use crate::env;

/// `   Fetching rustc-web ...`, right-aligned verb like cargo's.
pub fn status(verb: &str, message: &str) {
    eprintln!("{verb:>12} {message}");
}

/// `        Note ...`: something the user should know, once.
pub fn note(message: &str) {
    status("Note", message);
}

pub fn warn(message: &str) {
    eprintln!("warning: {message}");
}

/// A byte counter for long copies; redraws on a terminal, silent elsewhere
/// (the status line before it already said what is happening).
pub struct Progress {
    label: String,
    total: Option<u64>,
    tty: bool,
    last: Instant,
    drawn: bool,
}

impl Progress {
    pub fn new(label: &str, total: Option<u64>) -> Progress {
        Progress {
            label: label.to_string(),
            total,
            tty: env::stderr_is_terminal(),
            last: Instant::now(),
            drawn: false,
        }
    }

    pub fn update(&mut self, done: u64) {
        if !self.tty || self.last.elapsed().as_millis() < 100 {
            return;
        }
        self.last = Instant::now();
        self.drawn = true;
        let mib = done as f64 / 1048576.0;
        let line = match self.total {
            Some(t) if t > 0 => format!(
                "{:>12} {} {mib:.1}/{:.1} MiB ({}%)",
                "",
                self.label,
                t as f64 / 1048576.0,
                done * 100 / t
            ),
            _ => format!("{:>12} {} {mib:.1} MiB", "", self.label),
        };
        eprint!("\r{line}\x1b[K");
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }
}
