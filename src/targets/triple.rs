//! Target names: Nix system strings and Rust target triples.
//!
//! A name given by the user is resolved to the Rust target triple that rustc
//! and cargo understand. Two kinds of names are accepted:
//!
//! * a Rust triple that the pinned rustc knows (`targets/rustc-target-list.txt`,
//!   the output of `rustc --print target-list`), kept unchanged;
//! * a Nix *config* triple or *system* double (`armv6l-unknown-linux-musleabihf`,
//!   `aarch64-linux`), parsed the way nixpkgs parses it in
//!   `lib/systems/parse.nix` and turned into a Rust name the way
//!   `lib/systems/default.nix` computes `rust.rustcTarget`.
//!
//! The tables below are written from those nixpkgs files; where nixpkgs throws,
//! this module returns an error carrying nixpkgs' advice.

use std::fmt;

/// The targets the pinned rustc knows, one per line (comments start with `#`).
const RUSTC_TARGET_LIST: &str = include_str!("../../targets/rustc-target-list.txt");

/// Where nixpkgs' `lib/systems/examples.nix` names the Rust target itself
/// (`rust.rustcTarget`) because the computed name is not one rustc knows.
/// Keyed by the normalised Nix config triple.
const NIX_EXAMPLE_RUST_TARGETS: &[(&str, &str)] = &[
    ("aarch64-unknown-linux-android", "aarch64-linux-android"),
    (
        "armv7a-unknown-linux-androideabi",
        "armv7-linux-androideabi",
    ),
];

/// How a name was understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The name was already a Rust triple known to rustc.
    Rust,
    /// The name was a Nix system string; `config` is its normalised Nix triple.
    Nix { config: String },
}

/// A user-given target name resolved to a Rust triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub input: String,
    pub rust: String,
    pub origin: Origin,
}

/// Why a name could not be resolved. Each variant carries what the user needs
/// to correct the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TripleError {
    #[error(
        "`{name}` has {parts} dash-separated parts; a Nix system string has 1 to 4 and a Rust triple 2 to 4{}",
        hint(suggestions)
    )]
    PartCount {
        name: String,
        parts: usize,
        suggestions: Vec<String>,
    },
    #[error(
        "`{name}` with {parts} component(s) is ambiguous (nixpkgs cannot tell cpu, vendor, kernel and ABI apart){}",
        hint(suggestions)
    )]
    Ambiguous {
        name: String,
        parts: usize,
        suggestions: Vec<String>,
    },
    #[error("`{name}`: unknown {what} `{value}`{}", hint(suggestions))]
    UnknownPart {
        name: String,
        what: &'static str,
        value: String,
        suggestions: Vec<String>,
    },
    #[error("`{name}`: {message}")]
    Rejected { name: String, message: String },
    #[error(
        "`{name}` is the Nix system `{config}`, which nixpkgs maps to the Rust target `{computed}`, but rustc does not know that target{}",
        hint(suggestions)
    )]
    NotARustTarget {
        name: String,
        config: String,
        computed: String,
        suggestions: Vec<String>,
    },
}

fn hint(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("\n  closest known names: {}", suggestions.join(", "))
    }
}

/// Every Rust target the pinned rustc knows.
pub fn rustc_targets() -> impl Iterator<Item = &'static str> {
    RUSTC_TARGET_LIST
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

pub fn is_rustc_target(name: &str) -> bool {
    rustc_targets().any(|t| t == name)
}

/// Resolve a Nix or Rust name to a Rust triple.
pub fn resolve(name: &str) -> Result<Resolved, TripleError> {
    let name = name.trim();
    if is_rustc_target(name) {
        return Ok(Resolved {
            input: name.to_string(),
            rust: name.to_string(),
            origin: Origin::Rust,
        });
    }
    let system = parse_nix(name)?;
    let config = system.config_triple();
    let computed = system.rustc_target();
    let rust = if is_rustc_target(&computed) {
        computed
    } else if let Some((_, real)) = NIX_EXAMPLE_RUST_TARGETS
        .iter()
        .find(|(nix, _)| *nix == config)
    {
        real.to_string()
    } else {
        return Err(TripleError::NotARustTarget {
            name: name.to_string(),
            suggestions: closest(&computed, rustc_targets()),
            config,
            computed,
        });
    };
    Ok(Resolved {
        input: name.to_string(),
        rust,
        origin: Origin::Nix { config },
    })
}

/// The names from `candidates` closest to `wanted`, best first (at most 3).
pub fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| (strsim::jaro_winkler(wanted, c), c))
        .filter(|(score, _)| *score > 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// The nixpkgs tables (lib/systems/parse.nix)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Arm,
    X86,
    Mips,
    Power,
    Riscv,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Cpu {
    name: &'static str,
    bits: u8,
    big_endian: bool,
    family: Family,
    /// The ARM architecture version, where nixpkgs gives one.
    arm_version: Option<u8>,
}

const fn cpu(name: &'static str, bits: u8, big_endian: bool, family: Family) -> Cpu {
    Cpu {
        name,
        bits,
        big_endian,
        family,
        arm_version: None,
    }
}

const fn arm(name: &'static str, version: Option<u8>) -> Cpu {
    Cpu {
        name,
        bits: 32,
        big_endian: false,
        family: Family::Arm,
        arm_version: version,
    }
}

use Family::*;
const CPUS: &[Cpu] = &[
    arm("arm", None),
    arm("armv5tel", Some(5)),
    arm("armv6m", Some(6)),
    arm("armv6l", Some(6)),
    arm("armv7a", Some(7)),
    arm("armv7r", Some(7)),
    arm("armv7m", Some(7)),
    arm("armv7l", Some(7)),
    arm("armv8a", Some(8)),
    arm("armv8r", Some(8)),
    arm("armv8m", Some(8)),
    cpu("aarch64", 64, false, Arm),
    cpu("aarch64_be", 64, true, Arm),
    cpu("i386", 32, false, X86),
    cpu("i486", 32, false, X86),
    cpu("i586", 32, false, X86),
    cpu("i686", 32, false, X86),
    cpu("x86_64", 64, false, X86),
    cpu("microblaze", 32, true, Other),
    cpu("microblazeel", 32, false, Other),
    cpu("mips", 32, true, Mips),
    cpu("mipsel", 32, false, Mips),
    cpu("mips64", 64, true, Mips),
    cpu("mips64el", 64, false, Mips),
    cpu("mmix", 64, true, Other),
    cpu("m68k", 32, true, Other),
    cpu("powerpc", 32, true, Power),
    cpu("powerpc64", 64, true, Power),
    cpu("powerpc64le", 64, false, Power),
    cpu("powerpcle", 32, false, Power),
    cpu("riscv32", 32, false, Riscv),
    cpu("riscv64", 64, false, Riscv),
    cpu("s390", 32, true, Other),
    cpu("s390x", 64, true, Other),
    cpu("sparc", 32, true, Other),
    cpu("sparc64", 64, true, Other),
    cpu("wasm32", 32, false, Other),
    cpu("wasm64", 64, false, Other),
    cpu("alpha", 64, false, Other),
    cpu("rx", 32, false, Other),
    cpu("msp430", 16, false, Other),
    cpu("avr", 8, false, Other),
    cpu("vc4", 32, false, Other),
    cpu("or1k", 32, true, Other),
    cpu("loongarch64", 64, false, Other),
    cpu("javascript", 32, false, Other),
];

/// CPU aliases: `arm64` is Apple's name for aarch64.
const CPU_ALIASES: &[(&str, &str)] = &[("arm64", "aarch64")];

const VENDORS: &[&str] = &["apple", "pc", "knuth", "w64", "none", "unknown"];

/// Kernels: (name as written, canonical key, name used in triples, darwin family).
#[derive(Debug, Clone, Copy)]
struct Kernel {
    key: &'static str,
    /// `macos` is written `darwin` in triples.
    triple_name: &'static str,
    darwin: bool,
}

const fn kernel(key: &'static str) -> Kernel {
    Kernel {
        key,
        triple_name: key,
        darwin: false,
    }
}

const KERNELS: &[Kernel] = &[
    Kernel {
        key: "macos",
        triple_name: "darwin",
        darwin: true,
    },
    Kernel {
        key: "ios",
        triple_name: "ios",
        darwin: true,
    },
    kernel("freebsd"),
    kernel("linux"),
    kernel("netbsd"),
    kernel("none"),
    kernel("openbsd"),
    kernel("solaris"),
    kernel("wasi"),
    kernel("redox"),
    kernel("windows"),
    kernel("cygwin"),
    kernel("ghcjs"),
    kernel("genode"),
    kernel("mmixware"),
];

const KERNEL_ALIASES: &[(&str, &str)] = &[
    ("darwin", "macos"),
    ("watchos", "ios"),
    ("tvos", "ios"),
    ("win32", "windows"),
];

const ABIS: &[&str] = &[
    "msvc",
    "eabi",
    "eabihf",
    "elf",
    "androideabi",
    "android",
    "gnueabi",
    "gnueabihf",
    "gnu",
    "gnuabi64",
    "muslabi64",
    "gnuabin32",
    "muslabin32",
    "gnuabielfv2",
    "gnuabielfv1",
    "musleabi",
    "musleabihf",
    "musl",
    "uclibceabi",
    "uclibceabihf",
    "uclibc",
    "unknown",
];

/// A parsed Nix system: the four components, each checked against its table.
#[derive(Debug, Clone)]
struct System {
    cpu: Cpu,
    vendor: &'static str,
    kernel: Kernel,
    abi: &'static str,
}

impl System {
    fn is_aarch32(&self) -> bool {
        self.cpu.family == Family::Arm && self.cpu.bits == 32
    }

    /// `tripleFromSystem`: the normalised Nix config triple.
    fn config_triple(&self) -> String {
        let abi = if self.abi == "unknown" {
            String::new()
        } else {
            format!("-{}", self.abi)
        };
        format!(
            "{}-{}-{}{}",
            self.cpu.name, self.vendor, self.kernel.triple_name, abi
        )
    }

    /// `rust.rustcTarget` of `lib/systems/default.nix`.
    fn rustc_target(&self) -> String {
        let cpu = match self.cpu.name {
            "armv7a" | "armv7l" => "armv7",
            "armv6l" => "arm",
            "armv5tel" => "armv5te",
            "riscv32" => "riscv32gc",
            "riscv64" => "riscv64gc",
            other => other,
        };
        if self.kernel.key == "wasi" {
            // Rust names WASI targets wasm32-wasip1 rather than wasm32-unknown-wasi.
            return format!("{cpu}-wasip1");
        }
        let vendor = if self.vendor == "w64" {
            "pc"
        } else {
            self.vendor
        };
        // nixpkgs is explicit about the POWER ELF ABI; Rust calls it gnu.
        let abi = if self.cpu.name.starts_with("powerpc") && self.abi.starts_with("gnuabielfv") {
            "gnu"
        } else {
            self.abi
        };
        let abi = if self.abi == "unknown" {
            String::new()
        } else {
            format!("-{abi}")
        };
        format!("{cpu}-{vendor}-{}{abi}", self.kernel.triple_name)
    }
}

/// The skeleton of `mkSkeletonFromList`: components as written, some inferred later.
struct Skeleton<'a> {
    cpu: &'a str,
    vendor: Option<&'a str>,
    kernel: &'a str,
    abi: Option<&'a str>,
}

fn skeleton(name: &str) -> Result<Skeleton<'_>, TripleError> {
    let l: Vec<&str> = name.split('-').collect();
    let ambiguous = |parts| TripleError::Ambiguous {
        name: name.to_string(),
        parts,
        suggestions: closest(name, rustc_targets()),
    };
    let sk = |cpu, vendor, kernel, abi| Skeleton {
        cpu,
        vendor,
        kernel,
        abi,
    };
    Ok(match l.as_slice() {
        ["avr"] => sk("avr", None, "none", Some("unknown")),
        [_] => return Err(ambiguous(1)),
        [cpu, "cygwin"] => sk(cpu, Some("pc"), "cygwin", None),
        [cpu, "windows"] => sk(cpu, None, "windows", Some("msvc")),
        [cpu, "elf"] => sk(cpu, Some("unknown"), "none", Some("elf")),
        [cpu, kernel] => sk(cpu, None, kernel, None),
        // cpu-kernel-environment
        [cpu, kernel, abi]
            if *kernel == "linux" || ["eabi", "eabihf", "elf", "gnu"].contains(abi) =>
        {
            sk(cpu, Some("unknown"), kernel, Some(abi))
        }
        // cpu-vendor-os
        [cpu, vendor, os]
            if *vendor == "apple"
                || ["redox", "mmixware", "ghcjs", "mingw32"].contains(os)
                || ["freebsd", "netbsd", "openbsd", "genode"]
                    .iter()
                    .any(|p| os.starts_with(p))
                || cpu.starts_with("wasm32") =>
        {
            // autotools breaks on -gnu for Windows, hence mingw32
            let kernel = if *os == "mingw32" { "windows" } else { os };
            sk(cpu, Some(vendor), kernel, None)
        }
        [cpu, vendor, "cygwin"] => sk(cpu, Some(vendor), "cygwin", None),
        [_, _, _] => return Err(ambiguous(3)),
        [cpu, vendor, kernel, abi] => sk(cpu, Some(vendor), kernel, Some(abi)),
        _ => {
            return Err(TripleError::PartCount {
                name: name.to_string(),
                parts: l.len(),
                suggestions: closest(name, rustc_targets()),
            });
        }
    })
}

/// gnu-config ignores the part of a kernel name matching `e?abi.*$`.
fn remove_abi_suffix(kernel: &str) -> &str {
    match kernel.rfind("abi") {
        Some(i) => &kernel[..i],
        None => kernel,
    }
}

fn parse_nix(name: &str) -> Result<System, TripleError> {
    let sk = skeleton(name)?;
    let unknown =
        |what: &'static str, value: &str, known: Vec<&'static str>| TripleError::UnknownPart {
            name: name.to_string(),
            what,
            value: value.to_string(),
            suggestions: closest(value, known.into_iter()),
        };

    let cpu_name = CPU_ALIASES
        .iter()
        .find(|(alias, _)| *alias == sk.cpu)
        .map_or(sk.cpu, |(_, real)| real);
    let cpu = *CPUS
        .iter()
        .find(|c| c.name == cpu_name)
        .ok_or_else(|| unknown("CPU type", sk.cpu, CPUS.iter().map(|c| c.name).collect()))?;

    let kernel_key = if sk.kernel.starts_with("darwin") {
        "darwin"
    } else if sk.kernel.starts_with("netbsd") {
        "netbsd"
    } else {
        remove_abi_suffix(sk.kernel)
    };
    let kernel_key = KERNEL_ALIASES
        .iter()
        .find(|(alias, _)| *alias == kernel_key)
        .map_or(kernel_key, |(_, real)| real);
    let kernel = *KERNELS
        .iter()
        .find(|k| k.key == kernel_key)
        .ok_or_else(|| {
            unknown(
                "kernel",
                sk.kernel,
                KERNELS
                    .iter()
                    .map(|k| k.key)
                    .chain(KERNEL_ALIASES.iter().map(|(a, _)| *a))
                    .collect(),
            )
        })?;

    let vendor = match sk.vendor {
        Some(v) => *VENDORS
            .iter()
            .find(|k| **k == v)
            .ok_or_else(|| unknown("vendor", v, VENDORS.to_vec()))?,
        None if kernel.darwin => "apple",
        None if matches!(kernel.key, "windows" | "cygwin") => "pc",
        None => "unknown",
    };

    let is_aarch32 = cpu.family == Family::Arm && cpu.bits == 32;
    let abi = match sk.abi {
        Some(a) => *ABIS
            .iter()
            .find(|k| **k == a)
            .ok_or_else(|| unknown("ABI", a, ABIS.to_vec()))?,
        None if matches!(kernel.key, "linux" | "windows") => {
            if is_aarch32 {
                // hard-float from ARMv6 on, soft-float before
                if cpu.arm_version.unwrap_or(0) >= 6 {
                    "gnueabihf"
                } else {
                    "gnueabi"
                }
            } else if cpu.family == Family::Power && cpu.bits == 64 && cpu.big_endian {
                "gnuabielfv2"
            } else {
                "gnu"
            }
        }
        None => "unknown",
    };

    let system = System {
        cpu,
        vendor,
        kernel,
        abi,
    };
    check_abi_assertions(name, &system)?;
    Ok(system)
}

/// The `assertions` nixpkgs attaches to some ABIs.
fn check_abi_assertions(name: &str, s: &System) -> Result<(), TripleError> {
    let message = match s.abi {
        "gnu" if s.is_aarch32() => {
            "the \"gnu\" ABI is ambiguous on 32-bit ARM; use \"gnueabi\" (soft-float) or \"gnueabihf\" (hard-float) instead"
        }
        "gnu" if s.cpu.family == Family::Power && s.cpu.bits == 64 && s.cpu.big_endian => {
            "the \"gnu\" ABI is ambiguous on big-endian 64-bit PowerPC; use \"gnuabielfv2\" or \"gnuabielfv1\" instead"
        }
        "android" if s.is_aarch32() => {
            "the \"android\" ABI is not for 32-bit ARM; use \"androideabi\" instead"
        }
        _ => return Ok(()),
    };
    Err(TripleError::Rejected {
        name: name.to_string(),
        message: message.to_string(),
    })
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rust)
    }
}

#[cfg(test)]
#[path = "triple_tests.rs"]
mod tests;
