//! Exit codes, by class of failure, so that scripts can tell them apart.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the build failed (cargo, a linker, a download, the file system) |
//! | 2 | a user mistake: bad flag, unknown target, bad `toolchains.toml`, no `Cargo.lock` |
//! | 3 | `--test`: the build succeeded and a test failed |
//! | 4 | `--check-determinism`: two builds of the same inputs differ |
//! | 5 | no sandbox: `--require-sandbox` and this system cannot give it, an unsandboxed build would read a `.cargo/config.toml` above its directory, or run a workspace's own `toolchains.toml` |
//! | 130 | interrupted (Ctrl-C or SIGTERM); nothing was published |
//!
//! A leaf: the modules that fail say which class with [`Usage`] and
//! [`NoSandbox`]; `commands::exit_code` tells the class of an error.

use std::process::ExitCode;

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const TESTS_FAILED: u8 = 3;
pub const NOT_DETERMINISTIC: u8 = 4;
pub const NO_SANDBOX: u8 = 5;
pub const INTERRUPTED: u8 = 130;

/// A user mistake: the message says what to do. Exits with [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The sandbox is required and this system cannot give it: a fact about the
/// system, not a user mistake. Exits with [`NO_SANDBOX`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoSandbox(pub String);

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
