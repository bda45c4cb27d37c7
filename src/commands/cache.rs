//! `xbuild cache list|gc`.

use std::io::Write;

use anyhow::Result;

use crate::cache::store::sign::SecretKey;
use crate::cache::store::{self, Store};
use crate::cache::{self, Cache, deps, mirror, outputs};
use crate::cli::CacheCommand;
use crate::env;
use crate::ui;

pub fn cache(cmd: CacheCommand, out: &mut dyn Write) -> Result<()> {
    if let CacheCommand::Keygen { name, out: file } = &cmd {
        let key = SecretKey::generate(name)?;
        key.write_new(file)?;
        writeln!(out, "{}", key.public())?;
        ui::status(
            "Wrote",
            &format!(
                "the secret key to {}: give it to writers as {}; readers trust the line above in {}",
                file.display(),
                env::XBUILD_CACHE_SIGNING_KEY,
                env::XBUILD_CACHE_TRUSTED_KEYS
            ),
        );
        return Ok(());
    }
    let cache = Cache::from_env()?;
    match cmd {
        CacheCommand::Keygen { .. } => unreachable!("handled above"),
        CacheCommand::List => {
            writeln!(out, "cache: {}", cache.root.display())?;
            let mut total = 0;
            for (what, size) in cache.bucket_sizes() {
                total += size;
                writeln!(out, "  {what:<22} {:>10}", cache::human_size(size))?;
            }
            writeln!(out, "  {:<22} {:>10}", "total", cache::human_size(total))?;
            writeln!(
                out,
                "limit: {}; they take {} now",
                cache::limit(&cache)?.describe(),
                cache::human_size(cache::growing_size(&cache))
            )?;
            for kept in deps::list(&cache) {
                let what = kept.about.map_or_else(
                    || "(unknown)".to_string(),
                    |a| format!("{} of {}", a.mode, a.workspace),
                );
                writeln!(
                    out,
                    "  kept deps  {} {:>10}  {what}",
                    kept.entry.key,
                    cache::human_size(kept.entry.size)
                )?;
            }
            for m in mirror::list(&cache) {
                let about = std::fs::read(m.dir.join("about.json")).ok();
                let workspace = about
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["workspace"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "(unknown)".into());
                writeln!(
                    out,
                    "  sources    {} {:>10}  {workspace}",
                    m.key,
                    cache::human_size(m.size)
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
            list_store(out, &cache)?;
        }
        CacheCommand::Gc {
            store: true,
            older_than,
            ..
        } => {
            let url = env::var(env::XBUILD_CACHE_URL).unwrap_or_default();
            let Some(root) = url.strip_prefix("file://") else {
                anyhow::bail!(
                    "--store trims a file:// store, and {} is {}: an S3 store is trimmed by a lifecycle rule on `v2/units/` (docs/STORE.md)",
                    env::XBUILD_CACHE_URL,
                    if url.is_empty() {
                        "not set".to_string()
                    } else {
                        format!("`{}`", store::backend::redact(&url))
                    }
                );
            };
            let t = store::gc::trim_file_store(
                std::path::Path::new(root),
                std::time::Duration::from_secs(older_than.saturating_mul(86400)),
            )?;
            ui::status(
                "Freed",
                &format!(
                    "{} in {} blobs and {} compiled-units entries of {url}",
                    cache::human_size(t.bytes),
                    t.blobs,
                    t.manifests
                ),
            );
        }
        CacheCommand::Gc { max_size, .. } => {
            let limit = cache::limit(&cache)?;
            let Some(max) = max_size.or(limit.bytes) else {
                ui::note(&format!(
                    "the cache has no limit ({}): nothing to trim; --max-size SIZE trims to SIZE",
                    limit.from
                ));
                return Ok(());
            };
            let trimmed = cache::trim(&cache, max)?;
            ui::status(
                "Freed",
                &format!(
                    "{}, least recently used first, to fit in {}",
                    trimmed.describe(),
                    cache::human_size(max)
                ),
            );
        }
    }
    Ok(())
}

/// The shared store's settings and what the last run got from it.
fn list_store(out: &mut dyn Write, cache: &Cache) -> Result<()> {
    match Store::from_env(None)? {
        Some(store) => {
            for line in store.describe() {
                writeln!(out, "{line}")?;
            }
        }
        None => writeln!(
            out,
            "store: none ({} or --cache-url sets one)",
            env::XBUILD_CACHE_URL
        )?,
    }
    if let Some(s) = store::last_run(cache) {
        writeln!(out, "last run with a store ({}):", s.store)?;
        writeln!(
            out,
            "  outputs: {} hits, {} misses; std: {} hits, {} misses; toolchain artifacts: {} hits",
            s.output_hits, s.output_misses, s.std_hits, s.std_misses, s.artifact_hits
        )?;
        writeln!(
            out,
            "  {} down, {} up, {} manifests pushed, {} not reproducible",
            cache::human_size(s.bytes_down),
            cache::human_size(s.bytes_up),
            s.manifests_pushed,
            s.not_reproducible
        )?;
        for w in &s.warnings {
            writeln!(out, "  warning: {w}")?;
        }
    }
    Ok(())
}
