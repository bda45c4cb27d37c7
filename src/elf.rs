//! Reading just enough of an ELF file to verify the static-linking policy:
//! the header (class, type, machine), the program headers (PT_INTERP) and the
//! dynamic section (DT_NEEDED).

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::targets::{ElfKind, ElfPolicy};

const PT_INTERP: u32 = 3;
const PT_DYNAMIC: u32 = 2;
const DT_NEEDED: u64 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    pub class: u8,
    /// `EXEC`, `DYN` or the number.
    pub elf_type: String,
    /// The machine's name as the target table calls it.
    pub machine: String,
    /// The ELF header's `e_machine`.
    pub e_machine: u16,
    pub interpreter: Option<String>,
    pub needed: usize,
}

struct Reader<'a> {
    b: &'a [u8],
    wide: bool,
    /// Big-endian (s390x); every other target in the table is little-endian.
    big: bool,
}

impl Reader<'_> {
    /// A reader for a whole ELF file, by its identification bytes.
    fn of(bytes: &[u8]) -> Result<Reader<'_>> {
        if bytes.get(..4) != Some(b"\x7fELF") {
            bail!("not an ELF file");
        }
        let wide = match bytes.get(4) {
            Some(1) => false,
            Some(2) => true,
            other => bail!("unknown ELF class {other:?}"),
        };
        let big = match bytes.get(5) {
            Some(1) => false,
            Some(2) => true,
            other => bail!("unknown ELF data encoding {other:?}"),
        };
        Ok(Reader {
            b: bytes,
            wide,
            big,
        })
    }
    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N]> {
        let s = self.b.get(at..at + N).context("truncated ELF file")?;
        Ok(s.try_into().expect("N bytes"))
    }
    fn u16(&self, at: usize) -> Result<u16> {
        let b = self.bytes(at)?;
        Ok(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32(&self, at: usize) -> Result<u32> {
        let b = self.bytes(at)?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&self, at: usize) -> Result<u64> {
        let b = self.bytes(at)?;
        Ok(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    /// An address-sized word.
    fn word(&self, at: usize) -> Result<u64> {
        if self.wide {
            self.u64(at)
        } else {
            self.u32(at).map(u64::from)
        }
    }
}

/// Parse the parts of an ELF file that the policy looks at.
pub fn inspect(bytes: &[u8]) -> Result<ElfInfo> {
    let r = Reader::of(bytes)?;
    let class = if r.wide { 64 } else { 32 };
    let e_type = r.u16(16)?;
    let machine = r.u16(18)?;
    let (phoff, phentsize, phnum) = if r.wide {
        (r.u64(32)?, r.u16(54)?, r.u16(56)?)
    } else {
        (u64::from(r.u32(28)?), r.u16(42)?, r.u16(44)?)
    };
    let mut interpreter = None;
    let mut needed = 0;
    for i in 0..usize::from(phnum) {
        let ph = usize::try_from(phoff)? + i * usize::from(phentsize);
        let p_type = r.u32(ph)?;
        let (offset, filesz) = if r.wide {
            (r.u64(ph + 8)?, r.u64(ph + 32)?)
        } else {
            (u64::from(r.u32(ph + 4)?), u64::from(r.u32(ph + 16)?))
        };
        let (start, len) = (usize::try_from(offset)?, usize::try_from(filesz)?);
        let seg = bytes
            .get(start..start + len)
            .context("a program header points past the end of the file")?;
        match p_type {
            PT_INTERP => {
                let s = String::from_utf8_lossy(seg);
                interpreter = Some(s.trim_end_matches('\0').to_string());
            }
            PT_DYNAMIC => {
                let entry = if r.wide { 16 } else { 8 };
                let dynr = Reader {
                    b: seg,
                    wide: r.wide,
                    big: r.big,
                };
                for k in 0..len / entry {
                    let tag = dynr.word(k * entry)?;
                    if tag == 0 {
                        break;
                    }
                    if tag == DT_NEEDED {
                        needed += 1;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ElfInfo {
        class,
        elf_type: match e_type {
            ET_EXEC => "EXEC".into(),
            ET_DYN => "DYN".into(),
            other => other.to_string(),
        },
        machine: crate::targets::machine_name(machine),
        e_machine: machine,
        interpreter,
        needed,
    })
}

/// A section: name, file offset, size (SHT_NOBITS sections have size 0 here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// The sections of an ELF file, from its section headers.
pub fn sections(bytes: &[u8]) -> Result<Vec<Section>> {
    let r = Reader::of(bytes)?;
    let (shoff, shentsize, shnum, shstrndx) = if r.wide {
        (r.u64(40)?, r.u16(58)?, r.u16(60)?, r.u16(62)?)
    } else {
        (u64::from(r.u32(32)?), r.u16(46)?, r.u16(48)?, r.u16(50)?)
    };
    let header = |i: usize| -> Result<(u32, u32, u64, u64)> {
        let at = usize::try_from(shoff)? + i * usize::from(shentsize);
        let name = r.u32(at)?;
        let kind = r.u32(at + 4)?;
        let (offset, size) = if r.wide {
            (r.u64(at + 24)?, r.u64(at + 32)?)
        } else {
            (u64::from(r.u32(at + 16)?), u64::from(r.u32(at + 20)?))
        };
        Ok((name, kind, offset, size))
    };
    if shnum == 0 {
        return Ok(Vec::new());
    }
    let (_, _, str_off, str_size) = header(usize::from(shstrndx))?;
    let strtab = bytes
        .get(usize::try_from(str_off)?..usize::try_from(str_off + str_size)?)
        .context("section name table out of bounds")?;
    let mut out = Vec::new();
    for i in 0..usize::from(shnum) {
        let (name, kind, offset, size) = header(i)?;
        let name_bytes = strtab.get(name as usize..).unwrap_or_default();
        let end = name_bytes
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(name_bytes.len());
        const SHT_NOBITS: u32 = 8;
        out.push(Section {
            name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
            offset,
            size: if kind == SHT_NOBITS { 0 } else { size },
        });
    }
    Ok(out)
}

/// The newest glibc symbol version a dynamically linked program needs
/// (`(2, 34)`), from the version names in its `.dynstr`; `None` when it
/// names none (static, or not linked against glibc).
pub fn glibc_needed(bytes: &[u8]) -> Result<Option<(u32, u32)>> {
    let Some(dynstr) = sections(bytes)?.into_iter().find(|s| s.name == ".dynstr") else {
        return Ok(None);
    };
    let table = bytes
        .get(usize::try_from(dynstr.offset)?..usize::try_from(dynstr.offset + dynstr.size)?)
        .context(".dynstr out of bounds")?;
    Ok(table
        .split(|b| *b == 0)
        .filter_map(|s| std::str::from_utf8(s).ok()?.strip_prefix("GLIBC_2."))
        .filter_map(|minor| Some((2, minor.split('.').next()?.parse::<u32>().ok()?)))
        .max())
}

/// Check a file against a target's policy; the error names the file, what was
/// expected and what was found.
pub fn verify(path: &Path, policy: &ElfPolicy) -> Result<ElfInfo> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let info =
        inspect(&bytes).with_context(|| format!("{}: cannot read it as ELF", path.display()))?;
    let want_type = match policy.kind {
        ElfKind::Exec => "EXEC",
        ElfKind::StaticPie => "DYN",
    };
    let mut problems = Vec::new();
    if info.class != policy.class {
        problems.push(format!(
            "ELF class {}-bit, found {}-bit",
            policy.class, info.class
        ));
    }
    if info.e_machine != policy.e_machine {
        problems.push(format!(
            "machine {}, found {}",
            policy.machine, info.machine
        ));
    }
    if info.elf_type != want_type {
        problems.push(format!("ELF type {want_type}, found {}", info.elf_type));
    }
    if let Some(interp) = &info.interpreter {
        problems.push(format!("no program interpreter, found {interp}"));
    }
    if info.needed > 0 {
        problems.push(format!(
            "no shared libraries (DT_NEEDED), found {}",
            info.needed
        ));
    }
    if !problems.is_empty() {
        bail!(
            "{} breaks the target's static-linking policy: expected {}",
            path.display(),
            problems.join("; expected ")
        );
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF image: header, program headers, and their segments.
    fn e16(v: u16, big: bool) -> [u8; 2] {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn e32(v: u32, big: bool) -> [u8; 4] {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn e64(v: u64, big: bool) -> [u8; 8] {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn image(
        class64: bool,
        e_type: u16,
        machine: u16,
        interp: Option<&str>,
        needed: usize,
    ) -> Vec<u8> {
        image_in(class64, false, e_type, machine, interp, needed)
    }

    /// The same, big-endian when `big` (s390x).
    fn image_in(
        class64: bool,
        big: bool,
        e_type: u16,
        machine: u16,
        interp: Option<&str>,
        needed: usize,
    ) -> Vec<u8> {
        let (ehsize, phentsize) = if class64 { (64, 56) } else { (52, 32) };
        let mut phdrs: Vec<(u32, Vec<u8>)> = Vec::new();
        if let Some(i) = interp {
            phdrs.push((PT_INTERP, format!("{i}\0").into_bytes()));
        }
        let mut dynamic = Vec::new();
        for _ in 0..needed {
            if class64 {
                dynamic.extend(e64(1u64, big));
                dynamic.extend(e64(7u64, big));
            } else {
                dynamic.extend(e32(1u32, big));
                dynamic.extend(e32(7u32, big));
            }
        }
        dynamic.extend(vec![0u8; if class64 { 16 } else { 8 }]);
        phdrs.push((PT_DYNAMIC, dynamic));
        let mut b = vec![0u8; ehsize];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = if class64 { 2 } else { 1 };
        b[5] = if big { 2 } else { 1 };
        b[16..18].copy_from_slice(&e16(e_type, big));
        b[18..20].copy_from_slice(&e16(machine, big));
        let phoff = ehsize;
        let mut data_at = phoff + phentsize * phdrs.len();
        if class64 {
            b[32..40].copy_from_slice(&e64(phoff as u64, big));
            b[54..56].copy_from_slice(&e16(phentsize as u16, big));
            b[56..58].copy_from_slice(&e16(phdrs.len() as u16, big));
        } else {
            b[28..32].copy_from_slice(&e32(phoff as u32, big));
            b[42..44].copy_from_slice(&e16(phentsize as u16, big));
            b[44..46].copy_from_slice(&e16(phdrs.len() as u16, big));
        }
        let mut tail: Vec<u8> = Vec::new();
        for (t, seg) in &phdrs {
            let mut ph = vec![0u8; phentsize];
            ph[..4].copy_from_slice(&e32(*t, big));
            if class64 {
                ph[8..16].copy_from_slice(&e64(data_at as u64, big));
                ph[32..40].copy_from_slice(&e64(seg.len() as u64, big));
            } else {
                ph[4..8].copy_from_slice(&e32(data_at as u32, big));
                ph[16..20].copy_from_slice(&e32(seg.len() as u32, big));
            }
            b.extend(ph);
            tail.extend(seg);
            data_at += seg.len();
        }
        b.extend(tail);
        b
    }

    fn policy(class: u8, machine: &str, kind: ElfKind) -> ElfPolicy {
        let e_machine = crate::targets::all()
            .iter()
            .find(|t| t.elf.machine == machine)
            .map(|t| t.elf.e_machine)
            .unwrap();
        ElfPolicy {
            class,
            machine: machine.into(),
            e_machine,
            kind,
        }
    }

    fn check(bytes: Vec<u8>, p: &ElfPolicy) -> Result<ElfInfo> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        std::fs::write(&f, bytes).unwrap();
        verify(&f, p)
    }

    #[test]
    fn static_pie_x86_64_passes() {
        let info = check(
            image(true, ET_DYN, 62, None, 0),
            &policy(64, "x86_64", ElfKind::StaticPie),
        )
        .unwrap();
        assert_eq!(info.elf_type, "DYN");
        assert_eq!(info.interpreter, None);
    }

    #[test]
    fn static_exec_arm_passes() {
        let info = check(
            image(false, ET_EXEC, 40, None, 0),
            &policy(32, "arm", ElfKind::Exec),
        )
        .unwrap();
        assert_eq!((info.class, info.machine.as_str()), (32, "arm"));
    }

    #[test]
    fn dynamic_binaries_fail_with_what_was_found() {
        let e = check(
            image(true, ET_DYN, 62, Some("/lib/ld-musl-x86_64.so.1"), 1),
            &policy(64, "x86_64", ElfKind::StaticPie),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("expected no program interpreter, found /lib/ld-musl-x86_64.so.1"),
            "{e}"
        );
        assert!(
            e.contains("expected no shared libraries (DT_NEEDED), found 1"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_and_machine_fail() {
        let e = check(
            image(true, ET_EXEC, 62, None, 0),
            &policy(64, "x86_64", ElfKind::StaticPie),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("expected ELF type DYN, found EXEC"), "{e}");
        let e = check(
            image(true, ET_EXEC, 183, None, 0),
            &policy(32, "arm", ElfKind::Exec),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ELF class 32-bit, found 64-bit"), "{e}");
        assert!(e.contains("machine arm, found aarch64"), "{e}");
    }

    #[test]
    fn garbage_is_not_elf() {
        assert!(inspect(b"#!/bin/sh\n").is_err());
        assert!(inspect(b"\x7fELF\x02\x01").is_err());
    }

    #[test]
    fn big_endian_files_are_read_as_big_endian() {
        // s390x: EM_S390 = 22, a static executable and one with a library
        let ok = image_in(true, true, ET_EXEC, 22, None, 0);
        let info = inspect(&ok).unwrap();
        assert_eq!(
            (info.class, info.e_machine, info.elf_type.as_str()),
            (64, 22, "EXEC")
        );
        assert_eq!(info.needed, 0);
        let dynamic = image_in(true, true, ET_DYN, 22, Some("/lib/ld64.so.1"), 2);
        let info = inspect(&dynamic).unwrap();
        assert_eq!(info.needed, 2);
        assert_eq!(info.interpreter.as_deref(), Some("/lib/ld64.so.1"));
        // the same bytes read as little-endian are another machine, or garbage
        let mut swapped = ok.clone();
        swapped[5] = 1;
        assert!(inspect(&swapped).map_or(true, |i| i.e_machine != 22));
    }

    #[test]
    fn the_glibc_a_program_needs_is_read_from_its_version_names() {
        // this test binary: linked against the host's glibc, needing at most it
        let me = std::fs::read("/proc/self/exe").unwrap();
        let (major, minor) = glibc_needed(&me).unwrap().expect("a glibc program");
        let host = crate::toolchain::glibc::host_version().unwrap();
        let host = crate::toolchain::glibc::parse(&host).unwrap();
        assert!(
            major == 2 && minor >= 2 && (major, minor) <= host,
            "{minor}"
        );
        // a file with sections but no .dynstr (an object file) needs none
        assert_eq!(glibc_needed(&tiny_static_elf()).unwrap(), None);
    }

    /// The smallest 64-bit ELF with a section table holding only its own
    /// name table.
    fn tiny_static_elf() -> Vec<u8> {
        let strtab = b"\0.shstrtab\0";
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little endian
        b[6] = 1;
        let str_off = b.len() as u64;
        b.extend_from_slice(strtab);
        let shoff = b.len() as u64;
        b[40..48].copy_from_slice(&shoff.to_le_bytes());
        b[58..60].copy_from_slice(&64u16.to_le_bytes());
        b[60..62].copy_from_slice(&2u16.to_le_bytes());
        b[62..64].copy_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&[0u8; 64]); // the null section
        let mut sh = [0u8; 64];
        sh[0..4].copy_from_slice(&1u32.to_le_bytes());
        sh[4..8].copy_from_slice(&3u32.to_le_bytes()); // SHT_STRTAB
        sh[24..32].copy_from_slice(&str_off.to_le_bytes());
        sh[32..40].copy_from_slice(&(strtab.len() as u64).to_le_bytes());
        b.extend_from_slice(&sh);
        b
    }
}
