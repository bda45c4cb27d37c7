// The files of a target table: every `*.toml` in a directory, the default
// target first, then by name. Shared by build.rs (which compiles the table in)
// and the tests (which run it on a copy of the folder), so that adding a target
// is adding one file.

/// The target a build uses when none is given, as in the seed.
pub const DEFAULT_TARGET: &str = "x86_64-unknown-linux-musl";

/// `(file name, path)` of every target file in `dir`, in table order.
pub fn target_files(dir: &std::path::Path) -> std::io::Result<Vec<(String, std::path::PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".toml") && !name.starts_with('.') {
            files.push((name.to_string(), path.clone()));
        }
    }
    let default = format!("{DEFAULT_TARGET}.toml");
    files.sort_by(|a, b| (a.0 != default, &a.0).cmp(&(b.0 != default, &b.0)));
    Ok(files)
}

/// The Rust source of the table: `&[(file name, contents)]`.
pub fn render(files: &[(String, std::path::PathBuf)]) -> String {
    let mut code = String::from("&[\n");
    for (name, path) in files {
        code.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    code.push_str("]\n");
    code
}
