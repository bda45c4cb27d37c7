//! Tests of `fetch`.

use super::*;

#[test]
fn a_package_two_components_pin_is_asked_for_once() {
    let pins = Pins::builtin();
    let specs = debian_specs(&pins);
    let all = pins
        .components
        .iter()
        .flat_map(|c| &c.artifacts)
        .filter(|a| matches!(a.source, Source::Apt { .. }))
        .count();
    assert!(all > specs.len(), "libstdc++6 is in rust and build-tools");
    let mut sorted = specs.clone();
    sorted.dedup();
    assert_eq!(sorted, specs);
    assert!(specs.iter().any(|s| s.starts_with("libstdc++6:amd64=")));
}
