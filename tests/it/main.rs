//! Integration tests: one crate with modules (see docs/ARCHITECTURE.md).
// The tests start xbuild and tools as a user would; the one-spawner rule is src/'s.
#![allow(clippy::disallowed_methods)]

#[cfg(feature = "e2e")]
mod bare;
mod cli;
#[cfg(feature = "e2e")]
mod e2e;
mod fixtures;
#[cfg(feature = "e2e")]
mod hosts;
#[cfg(feature = "e2e")]
mod integrity;
mod layout;
#[cfg(feature = "e2e")]
mod machine;
mod pin;
#[cfg(feature = "e2e")]
mod release;
#[cfg(feature = "e2e")]
mod sandbox;
#[cfg(feature = "e2e")]
mod store;
mod support;
mod toolchain;
