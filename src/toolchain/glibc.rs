//! The host's glibc against the toolchain's floor: the pinned rustc and cargo
//! are Debian 12 builds and need the glibc they were linked against (or
//! newer). Checked before anything is fetched, so an older host gets one
//! message naming both versions instead of a loader error after a 1 GB
//! download.

use std::ffi::CStr;

/// The running glibc's version (`2.36`), or `None` where the C library is
/// not glibc.
pub fn host_version() -> Option<String> {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) };
        Some(v.to_string_lossy().into_owned())
    }
    #[cfg(not(target_env = "gnu"))]
    {
        let _ = CStr::from_bytes_with_nul(b"\0");
        None
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TooOld {
    #[error(
        "this host's glibc is {host}, but the pinned toolchain ({origin}) needs glibc {floor} or newer: \
         its rustc and cargo would not start. Use a host with glibc >= {floor} (Debian 12 or newer, \
         Ubuntu 23.04 or newer, Fedora 37 or newer), or pin a toolchain built for an older glibc"
    )]
    Older {
        host: String,
        floor: String,
        origin: String,
    },
    #[error(
        "this host has no glibc (its C library is not GNU's), but the pinned toolchain ({origin}) \
         needs glibc {floor} or newer; use a glibc host, or a glibc container on this one"
    )]
    NoGlibc { floor: String, origin: String },
}

pub fn parse(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim().split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it
        .next()
        .map(|m| {
            m.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    Some((major, minor))
}

/// Whether `host` (the running glibc, `None` for none) meets `floor`.
pub fn check(host: Option<&str>, floor: &str, origin: &str) -> Result<(), TooOld> {
    let Some(host) = host else {
        return Err(TooOld::NoGlibc {
            floor: floor.to_string(),
            origin: origin.to_string(),
        });
    };
    match (parse(host), parse(floor)) {
        (Some(h), Some(f)) if h < f => Err(TooOld::Older {
            host: host.to_string(),
            floor: floor.to_string(),
            origin: origin.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_glibc_is_refused_with_both_versions() {
        let e = check(Some("2.35"), "2.36", "toolchains.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("glibc is 2.35"), "{msg}");
        assert!(msg.contains("needs glibc 2.36 or newer"), "{msg}");
        assert!(check(Some("2.36"), "2.36", "t").is_ok());
        assert!(check(Some("2.41"), "2.36", "t").is_ok());
        assert!(check(Some("3.0"), "2.36", "t").is_ok());
        assert!(check(Some("2.9"), "2.36", "t").is_err(), "2.9 < 2.36");
        assert!(matches!(
            check(None, "2.36", "t"),
            Err(TooOld::NoGlibc { .. })
        ));
    }

    #[test]
    fn this_host_reports_a_version() {
        let v = host_version().expect("xbuild's tests run on glibc");
        assert!(parse(&v).is_some(), "{v}");
    }
}
