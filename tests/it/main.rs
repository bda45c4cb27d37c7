//! Integration tests: one crate with modules (see docs/ARCHITECTURE.md).

mod cli;
#[cfg(feature = "e2e")]
mod e2e;
mod fixtures;
mod support;
mod toolchain;
