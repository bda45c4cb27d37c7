//! Debian's archive indices, read the way apt reads them: a suite's
//! `InRelease`, its OpenPGP signature checked against a pinned keyring (in
//! Rust: the `pgp` crate, no gpg), then the `Packages` lists it names, each
//! checked against the sha256 the signed file gives. `xbuild toolchain pin`
//! builds its pins from what this returns.

pub mod control;
pub mod render;
pub mod resolve;

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result, bail};
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use sha2::{Digest, Sha256};

use self::control::Stanza;

/// The OpenPGP keys a suite's `InRelease` must be signed by (one of them).
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    /// Where it came from, for messages.
    pub origin: String,
}

impl Keyring {
    /// A keyring file as apt keeps them (binary, `*.gpg`) or armored (`*.asc`).
    pub fn read(bytes: &[u8], origin: &str) -> Result<Keyring> {
        let (keys, _) = SignedPublicKey::from_reader_many(bytes)
            .map_err(|e| anyhow::anyhow!("{origin} is not an OpenPGP keyring: {e}"))?;
        let keys: Vec<_> = keys
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{origin} is not an OpenPGP keyring: {e}"))?;
        if keys.is_empty() {
            bail!("{origin} holds no OpenPGP key");
        }
        Ok(Keyring {
            keys,
            origin: origin.to_string(),
        })
    }

    /// Whether a detached signature of `data` is by a key (or signing
    /// subkey) of this keyring.
    pub fn verifies(&self, sig: &pgp::composed::DetachedSignature, data: &[u8]) -> bool {
        self.keys.iter().any(|k| {
            sig.verify(k, data).is_ok()
                || k.public_subkeys.iter().any(|s| sig.verify(s, data).is_ok())
        })
    }

    /// The text a clear-signed file signs, when one of its signatures is by
    /// a key (or signing subkey) of this keyring; line ends as `\n`.
    pub fn verify_clearsigned(&self, text: &str, what: &str) -> Result<String> {
        let (msg, _) = CleartextSignedMessage::from_string(text)
            .map_err(|e| anyhow::anyhow!("{what} is not a clear-signed OpenPGP message: {e}"))?;
        let good = self.keys.iter().any(|k| {
            msg.verify(k).is_ok() || k.public_subkeys.iter().any(|s| msg.verify(s).is_ok())
        });
        if !good {
            bail!(
                "{what}: no signature by a key of {} ({} signature(s), none good): the mirror \
                 may be compromised or out of date, or the keyring too old for it",
                self.origin,
                msg.signatures().len()
            );
        }
        Ok(msg.signed_text().replace("\r\n", "\n"))
    }
}

/// A suite's `InRelease`, verified.
#[derive(Debug, Clone)]
pub struct Release {
    /// The name asked for (`bookworm-security`).
    pub name: String,
    /// Its `Suite` (`stable`, `oldstable`, `testing`, `unstable`).
    pub suite: String,
    pub date: String,
    /// `Valid-Until`, seconds since the epoch, when the file says.
    pub valid_until: Option<i64>,
    /// Past its `Valid-Until`, taken with `--allow-expired`.
    pub expired: bool,
    /// path under `dists/<name>/` → (size, sha256)
    files: BTreeMap<String, (u64, String)>,
}

impl Release {
    /// `testing` and `unstable` replace their packages as they move: their
    /// versions leave the archive (all but its snapshot copy) within weeks.
    pub fn moving(&self) -> bool {
        matches!(self.suite.as_str(), "testing" | "unstable" | "experimental")
    }

    /// Parse the signed text.
    pub fn parse(name: &str, signed: &str) -> Result<Release> {
        let stanza = control::parse(signed)
            .into_iter()
            .next()
            .with_context(|| format!("the InRelease of {name} is empty"))?;
        let field = |f: &str| stanza.get(f).unwrap_or_default().to_string();
        let mut files = BTreeMap::new();
        for line in stanza.get("SHA256").unwrap_or_default().lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let [sum, size, path] = parts[..]
                && let Ok(size) = size.parse()
            {
                files.insert(path.to_string(), (size, sum.to_ascii_lowercase()));
            }
        }
        if files.is_empty() {
            bail!("the InRelease of {name} lists no file with a SHA256 sum");
        }
        Ok(Release {
            name: name.to_string(),
            suite: field("Suite"),
            date: field("Date"),
            valid_until: stanza.get("Valid-Until").and_then(unix_time),
            expired: false,
            files,
        })
    }
}

/// An RFC 2822 date as the Release files write it (`Sun, 13 Dec 2026
/// 02:54:29 UTC`), as seconds since the epoch.
pub fn unix_time(date: &str) -> Option<i64> {
    let parts: Vec<&str> = date.split_whitespace().collect();
    let (day, month, year, time) = match parts[..] {
        [_, d, m, y, t, ..] => (d, m, y, t),
        _ => return None,
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(month))? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, s] = hms[..] else { return None };
    // days from the civil date (Howard Hinnant's algorithm)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + s)
}

/// One suite on one mirror.
pub struct Archive<'a> {
    /// `…/debian` or `…/debian-security`.
    pub base: String,
    pub keyring: &'a Keyring,
    pub agent: ureq::Agent,
    /// Take a Release file past its `Valid-Until` (apt's
    /// `Acquire::Check-Valid-Until=false`).
    pub allow_expired: bool,
}

impl Archive<'_> {
    fn get(&self, path: &str) -> Result<Vec<u8>> {
        crate::http::get_body(&self.agent, &format!("{}/{path}", self.base))
    }

    /// `dists/<suite>/InRelease`, its signature checked.
    pub fn release(&self, suite: &str) -> Result<Release> {
        let path = format!("dists/{suite}/InRelease");
        let body = self.get(&path)?;
        let text =
            String::from_utf8(body).with_context(|| format!("{}/{path} is not text", self.base))?;
        let signed = self
            .keyring
            .verify_clearsigned(&text, &format!("{}/{path}", self.base))?;
        let mut release = Release::parse(suite, &signed)?;
        // an old signed file served again would pin old versions: refused
        // once it expires, as apt refuses it
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Some(until) = release.valid_until
            && until < now
            && !self.allow_expired
        {
            bail!(
                "{}/{path} expired (Valid-Until {}): the mirror is out of date or replays an old \
                 file, and its versions may have been replaced since. Use an up-to-date mirror \
                 ({}), or pass --allow-expired to pin from it anyway (as apt's \
                 Acquire::Check-Valid-Until=false)",
                self.base,
                signed
                    .lines()
                    .find_map(|l| l.strip_prefix("Valid-Until:"))
                    .unwrap_or_default()
                    .trim(),
                crate::env::XBUILD_DEBIAN_MIRROR
            );
        }
        release.expired = release.valid_until.is_some_and(|until| until < now);
        Ok(release)
    }

    /// The packages of one component and architecture, from the list the
    /// release names (`Packages.xz`, else `.gz`, else plain), each byte
    /// checked against the release's sha256.
    pub fn packages(&self, release: &Release, component: &str, arch: &str) -> Result<Vec<Stanza>> {
        let stem = format!("{component}/binary-{arch}/Packages");
        for (ext, decode) in [
            (".xz", Decode::Xz),
            (".gz", Decode::Gz),
            ("", Decode::Plain),
        ] {
            let name = format!("{stem}{ext}");
            let Some((size, sum)) = release.files.get(&name) else {
                continue;
            };
            let path = format!("dists/{}/{name}", release.name);
            let body = self.get(&path)?;
            let got = hex::encode(Sha256::digest(&body));
            if body.len() as u64 != *size || got != *sum {
                bail!(
                    "{}/{path}: sha256 {got} ({} bytes), but the signed InRelease says {sum} \
                     ({size} bytes); the mirror may be in the middle of an update: try again",
                    self.base,
                    body.len()
                );
            }
            let text = decode
                .read(&body)
                .with_context(|| format!("decompressing {path}"))?;
            return Ok(control::parse(&text));
        }
        bail!(
            "the InRelease of {} lists no {stem} (component {component}, architecture {arch})",
            release.name
        )
    }
}

enum Decode {
    Xz,
    Gz,
    Plain,
}

impl Decode {
    fn read(&self, body: &[u8]) -> Result<String> {
        let mut text = String::new();
        match self {
            Decode::Xz => liblzma::read::XzDecoder::new(body).read_to_string(&mut text)?,
            Decode::Gz => flate2::read::GzDecoder::new(body).read_to_string(&mut text)?,
            Decode::Plain => std::io::Read::read_to_string(&mut &body[..], &mut text)?,
        };
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_dates_are_read_as_seconds_since_the_epoch() {
        // `date -d 'Sun, 13 Dec 2026 02:54:29 UTC' +%s`
        assert_eq!(
            super::unix_time("Sun, 13 Dec 2026 02:54:29 UTC"),
            Some(1_797_130_469)
        );
        assert_eq!(super::unix_time("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            super::unix_time("Tue, 29 Feb 2028 23:59:59 UTC"),
            Some(1_835_481_599)
        );
        assert_eq!(super::unix_time("yesterday"), None);
    }
}
