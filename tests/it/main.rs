//! Integration tests: one crate with modules (see docs/ARCHITECTURE.md).

mod cli;
mod support;
