//! Snapshot tests of the command-line interface.

use crate::support::{render, xb};

#[test]
fn triple_maps_nix_and_rust_names() {
    let r = xb(&[
        "triple",
        "armv6l-unknown-linux-musleabihf",
        "aarch64-linux",
        "x86_64-w64-mingw32",
        "riscv64-unknown-linux-gnu",
        "i686-unknown-linux-musl",
        "thumbv7em-none-eabihf",
    ]);
    insta::assert_snapshot!(render(&r));
}

#[test]
fn triple_errors_go_to_stderr_with_exit_2() {
    let r = xb(&[
        "triple",
        "armv7l-unknown-linux-gnu",
        "x86_64-unknown-linux-mus",
        "aarch64-linux",
        "i686-elf",
        "x86_64-pc-linux",
    ]);
    assert_eq!(r.status, Some(2));
    insta::assert_snapshot!(render(&r));
}

#[test]
fn triple_needs_a_name() {
    let r = xb(&["triple"]);
    assert_eq!(r.status, Some(2));
    insta::assert_snapshot!(render(&r));
}

#[test]
fn targets_lists_the_table() {
    let r = xb(&["targets"]);
    assert_eq!(r.status, Some(0));
    insta::assert_snapshot!(render(&r));
}

#[test]
fn targets_json_is_machine_readable() {
    let r = xb(&["targets", "--json"]);
    assert_eq!(r.status, Some(0));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    let rust: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rust"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        rust,
        [
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-musl",
            "arm-unknown-linux-musleabihf",
            "i686-unknown-linux-musl"
        ]
    );
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn help_teaches_with_examples() {
    let r = xb(&["--help"]);
    assert_eq!(r.status, Some(0));
    insta::assert_snapshot!(r.stdout);
    let r = xb(&["triple", "--help"]);
    insta::assert_snapshot!("triple_help", r.stdout);
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let r = xb(&["targets", "--jsn"]);
    assert_eq!(r.status, Some(2));
    insta::assert_snapshot!(render(&r));
}
