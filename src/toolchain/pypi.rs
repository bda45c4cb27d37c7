//! PyPI's files without pip: the wheel a pin names, found on the package
//! index the user's pip is configured with (PEP 503's simple API) or in a
//! local find-links directory, then downloaded by xbuild and checked
//! against the pin. pip itself stays the way of last resort.
//!
//! The index is the user's configuration (`PIP_INDEX_URL`, `index-url` in
//! pip's config files), never a host name of xbuild's own.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::env;

/// pip's configuration files, in the order pip reads them (later wins):
/// `PIP_CONFIG_FILE` alone when set.
fn config_files() -> Vec<PathBuf> {
    if let Some(f) = env::var_os("PIP_CONFIG_FILE") {
        return vec![PathBuf::from(f)];
    }
    let mut files = vec![
        PathBuf::from("/etc/xdg/pip/pip.conf"),
        PathBuf::from("/etc/pip.conf"),
    ];
    if let Some(home) = env::var_os("HOME") {
        let home = PathBuf::from(home);
        files.push(home.join(".pip/pip.conf"));
        let config =
            env::var_os("XDG_CONFIG_HOME").map_or_else(|| home.join(".config"), PathBuf::from);
        files.push(config.join("pip/pip.conf"));
    }
    files
}

/// `key` of the `[global]` or `[download]` section of an INI text (the
/// latter wins, as for `pip download`).
fn ini_value(text: &str, key: &str) -> Option<String> {
    let mut section = String::new();
    let (mut global, mut download) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim().replace('_', "-") != key {
            continue;
        }
        match section.as_str() {
            "global" => global = Some(v.trim().to_string()),
            "download" => download = Some(v.trim().to_string()),
            _ => {}
        }
    }
    download.or(global)
}

/// What pip is configured with for `key` (`index-url`, `find-links`): the
/// environment (`PIP_INDEX_URL`...), else the last config file that says.
fn pip_setting(key: &str) -> Option<String> {
    let var = format!("PIP_{}", key.to_uppercase().replace('-', "_"));
    if let Some(v) = env::var(&var) {
        return Some(v);
    }
    config_files()
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|text| ini_value(&text, key))
        .next_back()
}

/// The package index the user's pip uses, when one is configured.
pub fn index_url() -> Option<String> {
    pip_setting("index-url").map(|u| u.trim_end_matches('/').to_string())
}

/// The local directories pip's `find-links` names.
pub fn find_links() -> Vec<PathBuf> {
    pip_setting("find-links")
        .map(|v| local_dirs(&v))
        .unwrap_or_default()
}

/// The existing local directories of a find-links value (URLs are left to
/// pip).
fn local_dirs(value: &str) -> Vec<PathBuf> {
    value
        .split_whitespace()
        .map(|l| l.strip_prefix("file://").unwrap_or(l))
        .filter(|l| l.starts_with('/'))
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .collect()
}

/// The project name of a `NAME==VERSION` requirement, normalized as PEP 503
/// says (lowercase, runs of `-_.` as one `-`).
pub fn project(requirement: &str) -> String {
    let name = requirement.split("==").next().unwrap_or(requirement).trim();
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The page listing `requirement`'s files on `index`.
pub fn project_page(index: &str, requirement: &str) -> String {
    format!("{index}/{}/", project(requirement))
}

/// The URL of the file named `file` on a simple-API page (`page` at
/// `page_url`): the `href` of the anchor whose text is the name (or whose
/// path ends with it), fragment dropped, resolved against the page.
pub fn file_url(page: &str, page_url: &str, file: &str) -> Result<String> {
    let mut rest = page;
    while let Some(at) = rest.find("<a ") {
        rest = &rest[at + 3..];
        let Some(end) = rest.find("</a>") else {
            break;
        };
        let anchor = &rest[..end];
        let text = anchor.rsplit('>').next().unwrap_or_default().trim();
        let Some(href) = attr(anchor, "href") else {
            continue;
        };
        let href = href
            .split('#')
            .next()
            .unwrap_or_default()
            .replace("&amp;", "&");
        let last = href.rsplit('/').next().unwrap_or_default();
        if text == file || last == file {
            return Ok(join(page_url, &href));
        }
    }
    bail!("{page_url} lists no file named {file}")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!("{name}="))? + name.len() + 1;
    let rest = &tag[at..];
    let quote = rest.chars().next()?;
    if quote == '"' || quote == '\'' {
        let rest = &rest[1..];
        Some(rest[..rest.find(quote)?].to_string())
    } else {
        Some(rest.split([' ', '>']).next()?.to_string())
    }
}

/// `href` resolved against `base` (absolute, root-relative or relative).
pub fn join(base: &str, href: &str) -> String {
    if href.contains("://") {
        return href.to_string();
    }
    let (scheme, after) = base.split_once("://").unwrap_or(("http", base));
    let (host, path) = after.split_once('/').unwrap_or((after, ""));
    if let Some(abs) = href.strip_prefix('/') {
        return format!("{scheme}://{host}/{abs}");
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop(); // the page's own name (empty after a trailing slash)
    for seg in href.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("{scheme}://{host}/{}", parts.join("/"))
}

/// A wheel named `file` in one of the find-links directories.
pub fn in_find_links(file: &str) -> Option<PathBuf> {
    find_links()
        .into_iter()
        .map(|d| d.join(file))
        .find(|p| p.is_file())
}

/// Read a simple-API page.
pub fn get_page(url: &str) -> Result<String> {
    let response = super::download::agent()
        .get(url)
        .header("Accept", "text/html")
        .call()
        .with_context(|| format!("{url}: the package index cannot be reached"))?;
    if !response.status().is_success() {
        bail!("{url} answered HTTP {}", response.status().as_u16());
    }
    response
        .into_body()
        .read_to_string()
        .with_context(|| format!("reading {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_as_pep_503_says() {
        assert_eq!(project("ziglang==0.14.1"), "ziglang");
        assert_eq!(project("Foo.Bar__baz==1"), "foo-bar-baz");
    }

    #[test]
    fn hrefs_resolve_against_the_page() {
        let page = "https://i.example/simple/ziglang/";
        assert_eq!(
            join(page, "../../packages/ab/z.whl"),
            "https://i.example/packages/ab/z.whl"
        );
        assert_eq!(join(page, "/p/z.whl"), "https://i.example/p/z.whl");
        assert_eq!(
            join(page, "z.whl"),
            "https://i.example/simple/ziglang/z.whl"
        );
        assert_eq!(
            join(page, "http://o.example/z.whl"),
            "http://o.example/z.whl"
        );
    }

    #[test]
    fn the_file_is_found_by_its_anchor_and_its_fragment_dropped() {
        let page = r#"<html><body><h1>Links for ziglang</h1>
<a href="../../p/a/ziglang-0.14.0-py3-none-any.whl#sha256=00">ziglang-0.14.0-py3-none-any.whl</a><br/>
<a data-requires-python="&gt;=3.5" href="https://f.example/p/b/ziglang-0.14.1-py3-none-manylinux.whl#sha256=11">ziglang-0.14.1-py3-none-manylinux.whl</a>
</body></html>"#;
        let url = "http://127.0.0.1:1/simple/ziglang/";
        assert_eq!(
            file_url(page, url, "ziglang-0.14.1-py3-none-manylinux.whl").unwrap(),
            "https://f.example/p/b/ziglang-0.14.1-py3-none-manylinux.whl"
        );
        assert_eq!(
            file_url(page, url, "ziglang-0.14.0-py3-none-any.whl").unwrap(),
            "http://127.0.0.1:1/p/a/ziglang-0.14.0-py3-none-any.whl"
        );
        let e = file_url(page, url, "other.whl").unwrap_err().to_string();
        assert!(e.contains("lists no file named other.whl"), "{e}");
    }

    #[test]
    fn pip_config_is_read_from_global_and_download() {
        let text = "[global]\nindex-url = https://a.example/simple\n[install]\nindex-url=x\n";
        assert_eq!(
            ini_value(text, "index-url").as_deref(),
            Some("https://a.example/simple")
        );
        let text = "[global]\nindex_url = a\n[download]\nindex-url = b\n";
        assert_eq!(ini_value(text, "index-url").as_deref(), Some("b"));
        assert_eq!(ini_value("[global]\ncert = x\n", "index-url"), None);
    }

    #[test]
    fn find_links_keeps_existing_local_directories() {
        let dir = tempfile::tempdir().unwrap();
        let v = format!(
            "file://{} /nonexistent https://x.example/ {}",
            dir.path().display(),
            dir.path().display()
        );
        assert_eq!(
            local_dirs(&v),
            vec![dir.path().to_path_buf(), dir.path().to_path_buf()]
        );
        assert!(local_dirs("https://x.example/").is_empty());
    }
}
