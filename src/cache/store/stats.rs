//! What the last run got from the store (hits, misses, bytes, warnings),
//! kept for `xbuild cache list`.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cache::Cache;

/// What the last run got from the store, for `xbuild cache list`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub store: String,
    pub output_hits: u32,
    pub output_misses: u32,
    pub std_hits: u32,
    pub std_misses: u32,
    /// Compiled units restored (exact or fallback entry), and misses.
    #[serde(default)]
    pub units_hits: u32,
    #[serde(default)]
    pub units_misses: u32,
    pub artifact_hits: u32,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub manifests_pushed: u32,
    pub not_reproducible: u32,
    /// Signed outputs that failed the ELF check after download.
    #[serde(default)]
    pub rejected: u32,
    pub warnings: Vec<String>,
}

pub(super) fn file(cache: &Cache) -> PathBuf {
    cache.root.join("v1").join("store-last-run.json")
}

/// What the last run that used a store got from it.
pub fn last_run(cache: &Cache) -> Option<Stats> {
    serde_json::from_slice(&fs::read(file(cache)).ok()?).ok()
}
