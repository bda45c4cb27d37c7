//! The source layout docs/ARCHITECTURE.md describes: the top-level modules
//! of `src/` depend on each other without cycles (tests aside), so that each
//! can be read knowing only the ones below it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use crate::support::repo_root;

/// Top-level module → the top-level modules its non-test code names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name.ends_with("_tests.rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "main" {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            // the code before the tests, without comments
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let names = graph.entry(module.clone()).or_default();
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for item in group.split(',') {
                        let head = item.trim().split("::").next().unwrap().trim();
                        if !head.is_empty() && head != "self" {
                            names.insert(head.to_string());
                        }
                    }
                } else {
                    let head: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    names.insert(head);
                }
            }
            names.remove(&module);
        }
    }
    graph
}

/// A cycle through `from`, as a path of module names, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut paths = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = paths.pop() {
        let last = path.last().unwrap();
        for next in graph.get(last).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if graph.contains_key(next) && seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                paths.push(longer);
            }
        }
    }
    None
}

#[test]
fn top_level_modules_have_no_import_cycles() {
    let graph = module_graph(&repo_root().join("src"));
    // the reader sees the modules it knows: a graph this small would mean
    // the walk found nothing
    for known in ["pipeline", "toolchain", "sandbox", "cache", "zigcc", "exit"] {
        assert!(graph.contains_key(known), "{known}: {graph:?}");
    }
    assert!(graph["pipeline"].contains("sandbox"), "{graph:?}");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_through(&graph, m))
        .map(|c| c.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// The check itself finds a cycle when there is one.
#[test]
fn a_cycle_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    fs::create_dir(src.join("a")).unwrap();
    fs::write(src.join("a/mod.rs"), "use crate::{b, c::X};\n").unwrap();
    fs::write(src.join("b.rs"), "// crate::a in a comment\nfn f() {}\n").unwrap();
    fs::write(
        src.join("c.rs"),
        "fn g() { crate::b::f() }\n#[cfg(test)]\nmod tests { use crate::a; }\n",
    )
    .unwrap();
    let graph = module_graph(src);
    assert_eq!(cycle_through(&graph, "a"), None, "{graph:?}");
    fs::write(src.join("b.rs"), "fn f() { crate::a::h() }\n").unwrap();
    let graph = module_graph(src);
    assert_eq!(
        cycle_through(&graph, "a"),
        Some(vec!["a".to_string(), "b".to_string(), "a".to_string()])
    );
}
