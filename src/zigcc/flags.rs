//! The target flags that build scripts pass to a C compiler, translated for
//! zig. `cc` 1.0.x passes `-march=armv6 -marm -mfpu=vfp` for
//! `arm-unknown-linux-musleabihf`, `-m32`/`-m64` on x86, `--target=<llvm
//! triple>` for clang-like compilers; hand-written build scripts pass
//! `-march=x86-64` or `-march=armv8-a+crypto`. zig reads `-march=` as a CPU
//! name and rejects ISA names, so each is mapped to what zig accepts for the
//! target's pinned CPU (from the target file's `[cc]` table). A flag that
//! would change the ABI or ask for more than the pinned CPU has is an error,
//! never silently dropped.

use crate::targets::Target;

/// What becomes of one argument.
#[derive(Debug, PartialEq, Eq)]
pub enum Flag {
    Keep,
    Drop,
    Replace(String),
    Reject(String),
}

/// The fate of `arg` for `target`. `-target`/`--target X` (two arguments)
/// are handled by the caller.
pub fn translate(target: &Target, arg: &str) -> Flag {
    let cc = &target.cc;
    if arg.starts_with("--target=") || cc.drop_args.iter().any(|d| d == arg) {
        return Flag::Drop;
    }
    // zig ignores -static-pie (and makes an EXEC); -static -pie gives a static-pie
    if arg == "-static-pie" {
        return Flag::Replace("-static -pie".into());
    }
    if let Some(bits) = arg.strip_prefix("-m").and_then(|b| b.parse::<u8>().ok())
        && (bits == 32 || bits == 64)
    {
        return if bits == target.elf.class {
            Flag::Drop // the target already says it
        } else {
            Flag::Reject(format!(
                "`{arg}` asks for {bits}-bit code, but {} is a {}-bit target",
                target.rust, target.elf.class
            ))
        };
    }
    for tune in ["-march=native", "-mcpu=native", "-mtune=native"] {
        if arg == tune {
            eprintln!(
                "xbuild: ignoring `{arg}`: the output must not depend on the machine that builds it"
            );
            return Flag::Drop;
        }
    }
    if let Some(value) = arg.strip_prefix("-march=") {
        let (isa, ext) = match value.split_once('+') {
            Some((isa, ext)) => (isa, Some(ext)),
            None => (value, None),
        };
        return match (cc.march.get(isa), ext) {
            // implied by the pinned CPU
            (Some(cpu), None) if cpu.is_empty() => Flag::Drop,
            (Some(cpu), _) if cpu.is_empty() => Flag::Reject(format!(
                "`{arg}`: extensions on top of {}'s pinned CPU are not supported",
                target.rust
            )),
            (Some(cpu), None) => Flag::Replace(format!("-mcpu={cpu}")),
            (Some(cpu), Some(ext)) => Flag::Replace(format!("-mcpu={cpu}+{ext}")),
            // a CPU name: zig checks it, and lists its CPUs when it is not one
            (None, _) if target.cc.cpu.is_none() => Flag::Keep,
            (None, _) => Flag::Reject(format!(
                "`{arg}` is not the CPU {} is built for ({}); {}",
                target.rust,
                target.cc.cpu.as_deref().unwrap_or_default(),
                known(target)
            )),
        };
    }
    if let Some(cpu) = arg.strip_prefix("-mcpu=")
        && let Some(pinned) = &cc.cpu
    {
        return if cpu.replace('-', "_") == *pinned {
            Flag::Drop // given already
        } else {
            Flag::Reject(format!(
                "`{arg}`: {} is built for the CPU {pinned}",
                target.rust
            ))
        };
    }
    if let Some(fpu) = arg.strip_prefix("-mfpu=")
        && !cc.fpu.is_empty()
        && !cc.fpu.iter().any(|f| f == fpu)
    {
        return Flag::Reject(format!(
            "`{arg}` needs a floating-point unit that {}'s CPU does not have (it has {})",
            target.rust,
            cc.fpu.join(", ")
        ));
    }
    if let Some(abi) = arg.strip_prefix("-mfloat-abi=")
        && let Some(want) = &cc.float_abi
        && abi != want
    {
        return Flag::Reject(format!(
            "`{arg}` would change the ABI: {} uses -mfloat-abi={want}",
            target.rust
        ));
    }
    if let Some(abi) = arg.strip_prefix("-mabi=")
        && let Some(want) = &cc.abi
        && abi != want
    {
        return Flag::Reject(format!(
            "`{arg}` would change the calling convention: {} uses -mabi={want}",
            target.rust
        ));
    }
    Flag::Keep
}

fn known(target: &Target) -> String {
    let names: Vec<&str> = target.cc.march.keys().map(String::as_str).collect();
    if names.is_empty() {
        "no -march values are known for it".into()
    } else {
        format!("known -march values: {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets;

    /// (target, who passes them, flags) → what zig gets; `!` marks a flag
    /// that must be rejected.
    const SEEN: &[(&str, &str, &[&str], &[&str])] = &[
        // cc 1.0.x (1.0.83 in real lockfiles) for the Raspberry Pi 1
        (
            "armv6l-unknown-linux-musleabihf",
            "cc 1.0.83",
            &[
                "-march=armv6",
                "-marm",
                "-mfpu=vfp",
                "-ffunction-sections",
                "-fPIC",
            ],
            &["-marm", "-mfpu=vfp", "-ffunction-sections", "-fPIC"],
        ),
        (
            "armv6l-unknown-linux-musleabihf",
            "cc 1.0.x, older",
            &[
                "-march=armv6",
                "-marm",
                "-mfloat-abi=hard",
                "-mfpu=vfp",
                "-mthumb-interwork",
            ],
            &["-marm", "-mfloat-abi=hard", "-mfpu=vfp"],
        ),
        (
            "armv6l-unknown-linux-musleabihf",
            "cc 1.1+/1.2 (clang-like)",
            &[
                "--target=arm-unknown-linux-musleabihf",
                "-mfpu=vfpv2",
                "-mthumb",
            ],
            &["-mfpu=vfpv2", "-mthumb"],
        ),
        (
            "armv6l-unknown-linux-musleabihf",
            "a build script",
            &["-march=armv6zk", "-mcpu=arm1176jzf-s", "-O2"],
            &["-O2"],
        ),
        (
            "armv6l-unknown-linux-musleabihf",
            "wrong CPU",
            &["-march=armv7-a"],
            &["!"],
        ),
        (
            "armv6l-unknown-linux-musleabihf",
            "wrong CPU",
            &["-mcpu=cortex-a7"],
            &["!"],
        ),
        (
            "armv6l-unknown-linux-musleabihf",
            "wrong FPU",
            &["-mfpu=neon"],
            &["!"],
        ),
        (
            "armv6l-unknown-linux-musleabihf",
            "soft float",
            &["-mfloat-abi=soft"],
            &["!"],
        ),
        // x86
        (
            "i686-unknown-linux-musl",
            "cc 1.0.x",
            &[
                "-m32",
                "-march=i686",
                "-ffunction-sections",
                "-fdata-sections",
                "-fPIC",
            ],
            &[
                "-march=i686",
                "-ffunction-sections",
                "-fdata-sections",
                "-fPIC",
            ],
        ),
        ("i686-unknown-linux-musl", "wrong width", &["-m64"], &["!"]),
        (
            "x86_64-unknown-linux-musl",
            "cc 1.0.x",
            &[
                "-m64",
                "-ffunction-sections",
                "-fPIC",
                "-gdwarf-4",
                "-fno-omit-frame-pointer",
            ],
            &[
                "-ffunction-sections",
                "-fPIC",
                "-gdwarf-4",
                "-fno-omit-frame-pointer",
            ],
        ),
        (
            "x86_64-unknown-linux-musl",
            "a build script",
            &["-march=x86-64", "-march=x86-64-v2", "-march=native"],
            &["-mcpu=x86_64", "-mcpu=x86_64_v2"],
        ),
        (
            "x86_64-unknown-linux-musl",
            "cc 1.2 (clang-like)",
            &["--target=x86_64-unknown-linux-musl", "-static-pie"],
            &["-static -pie"],
        ),
        (
            "x86_64-unknown-linux-musl",
            "wrong width",
            &["-m32"],
            &["!"],
        ),
        // aarch64
        (
            "aarch64-unknown-linux-musl",
            "a build script (ring-style)",
            &["-march=armv8-a+crypto", "-march=armv8-a"],
            &["-mcpu=generic+crypto", "-mcpu=generic"],
        ),
        (
            "aarch64-unknown-linux-musl",
            "cc 1.2 (clang-like)",
            &["--target=aarch64-unknown-linux-musl", "-fPIC"],
            &["-fPIC"],
        ),
        // armv7l (Raspberry Pi 2/3, 32-bit)
        (
            "armv7l-unknown-linux-musleabihf",
            "cc 1.0.83",
            &["-march=armv7-a", "-mfpu=vfpv3-d16", "-ffunction-sections"],
            &["-mfpu=vfpv3-d16", "-ffunction-sections"],
        ),
        (
            "armv7l-unknown-linux-musleabihf",
            "a build script asking for ARMv8",
            &["-march=armv8-a", "-mfloat-abi=softfp"],
            &["!", "!"],
        ),
        // riscv64
        (
            "riscv64-unknown-linux-musl",
            "cc 1.0.83",
            &["-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany", "-fPIC"],
            &["-mabi=lp64d", "-mcmodel=medany", "-fPIC"],
        ),
        (
            "riscv64-unknown-linux-musl",
            "a soft-float ABI",
            &["-mabi=lp64"],
            &["!"],
        ),
        // powerpc64le, s390x, loongarch64: cc passes -m64 on POWER, nothing
        // target-specific on the others
        (
            "powerpc64le-unknown-linux-musl",
            "cc 1.0.83",
            &["-m64", "-ffunction-sections", "-fPIC"],
            &["-ffunction-sections", "-fPIC"],
        ),
        (
            "powerpc64le-unknown-linux-musl",
            "wrong width",
            &["-m32"],
            &["!"],
        ),
        (
            "s390x-unknown-linux-musl",
            "cc 1.2",
            &["--target=s390x-unknown-linux-musl", "-fPIC"],
            &["-fPIC"],
        ),
        (
            "loongarch64-unknown-linux-musl",
            "cc 1.2",
            &[
                "--target=loongarch64-unknown-linux-musl",
                "-mabi=lp64d",
                "-fPIC",
            ],
            &["-mabi=lp64d", "-fPIC"],
        ),
        (
            "loongarch64-unknown-linux-musl",
            "a soft-float ABI",
            &["-mabi=lp64s"],
            &["!"],
        ),
    ];

    #[test]
    fn flags_every_cc_release_passes_are_translated() {
        for (name, who, given, want) in SEEN {
            let t = targets::lookup(name).unwrap();
            let mut got = Vec::new();
            for arg in *given {
                match translate(t, arg) {
                    Flag::Keep => got.push(arg.to_string()),
                    Flag::Drop => {}
                    Flag::Replace(r) => got.push(r),
                    Flag::Reject(why) => {
                        assert!(why.contains(arg), "{why}");
                        got.push("!".into());
                    }
                }
            }
            assert_eq!(got, *want, "{name}, flags of {who}: {given:?}");
        }
    }

    #[test]
    fn every_target_in_the_table_is_covered() {
        for t in targets::all() {
            assert!(
                SEEN.iter()
                    .any(|(n, ..)| targets::lookup(n).unwrap().rust == t.rust),
                "{} has no row in the flag table",
                t.rust
            );
        }
    }
}
