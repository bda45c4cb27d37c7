#![allow(clippy::disallowed_methods)] // a build script: cargo hands it its environment
//! Compiles the target table (`targets/*.toml`) into xbuild: adding a target
//! is adding one file there, with no list to edit in Rust.

include!("src/targets/listing.rs");

fn main() {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest_dir).join("targets");
    println!("cargo::rerun-if-changed={}", dir.display());
    let files = target_files(&dir).expect("reading targets/");
    for (_, path) in &files {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    let out = std::path::Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("targets.rs");
    std::fs::write(out, render(&files)).expect("writing the target table");
}
