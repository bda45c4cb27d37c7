//! `xbuild cache list|gc`.

use std::io::Write;

use anyhow::Result;

use crate::cache::{self, Cache, deps, outputs};
use crate::cli::CacheCommand;
use crate::ui;

pub fn cache(cmd: CacheCommand, out: &mut dyn Write) -> Result<()> {
    let cache = Cache::from_env()?;
    match cmd {
        CacheCommand::List => {
            writeln!(out, "cache: {}", cache.root.display())?;
            let mut total = 0;
            for (what, size) in cache.bucket_sizes() {
                total += size;
                writeln!(out, "  {what:<22} {:>10}", cache::human_size(size))?;
            }
            writeln!(out, "  {:<22} {:>10}", "total", cache::human_size(total))?;
            for kept in deps::list(&cache) {
                let what = kept.about.map_or_else(
                    || "(unknown)".to_string(),
                    |a| format!("{} {} of {}", a.mode, a.target, a.workspace),
                );
                writeln!(
                    out,
                    "  kept deps  {} {:>10}  {what}",
                    kept.entry.key,
                    cache::human_size(kept.entry.size)
                )?;
            }
            for set in outputs::list(&cache) {
                writeln!(
                    out,
                    "  output set {} {:>10}",
                    set.key,
                    cache::human_size(set.size)
                )?;
            }
        }
        CacheCommand::Gc { max_size } => {
            let freed = cache::trim(&cache, max_size)?;
            ui::status("Freed", &cache::human_size(freed));
        }
    }
    Ok(())
}
