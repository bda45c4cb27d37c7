//! Debian's control format (deb822 stanzas, as in `Packages` and
//! `InRelease`), its dependency fields and its version ordering.

use std::cmp::Ordering;

/// One stanza: fields in order, names as written, continuation lines kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanza {
    fields: Vec<(String, String)>,
}

impl Stanza {
    /// A field's value (names compare case-insensitively, as dpkg does).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Every stanza of a control file; blank lines separate them, a line that
/// starts with a space or tab continues the field above.
pub fn parse(text: &str) -> Vec<Stanza> {
    let mut out = Vec::new();
    let mut cur = Stanza::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.fields.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.fields
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    out
}

/// The package names of a `Depends`-like field: one list of alternatives
/// per comma-separated entry (`a | b`), without versions or `:any`.
pub fn relations(field: &str) -> Vec<Vec<String>> {
    field
        .split(',')
        .map(|entry| {
            entry
                .split('|')
                .filter_map(|alt| {
                    let name = alt
                        .trim()
                        .split(|c: char| c.is_whitespace() || c == '(' || c == ':' || c == '[')
                        .next()?;
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|alts| !alts.is_empty())
        .collect()
}

/// dpkg's order of versions (`[epoch:]upstream[-revision]`, `~` before
/// anything, even the end).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split_version(a);
    let (eb, ub, rb) = split_version(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

fn split_version(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // the non-digit run, character by character
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ca = a.get(i).copied().filter(|c| !c.is_ascii_digit());
            let cb = b.get(j).copied().filter(|c| !c.is_ascii_digit());
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            if ca.is_some() {
                i += 1;
            }
            if cb.is_some() {
                j += 1;
            }
        }
        // the digit run, as a number (leading zeros do not count)
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (si, sj) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (na, nb) = (&a[si..i], &b[sj..j]);
        let by_len = na.len().cmp(&nb.len());
        if by_len != Ordering::Equal {
            return by_len;
        }
        let by_digits = na.cmp(nb);
        if by_digits != Ordering::Equal {
            return by_digits;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_dpkg_orders_them() {
        // each pair checked with `dpkg --compare-versions A lt B` on Debian 12
        let ascending = [
            ("1.0~rc1", "1.0"),
            ("1.0", "1.0-1"),
            ("1.0-1", "1.0-1+b1"),
            ("1.96.0+dfsg1-1~deb12u2", "1.96.0+dfsg1-1"),
            ("1.96.0+dfsg1-1~deb12u2", "1.96.0+dfsg1-1~deb13u1+b1"),
            ("9.9", "1:0.1"),
            ("1.2.13.dfsg-1", "1.2.13.dfsg-1+deb12u1"),
            ("2.9", "2.10"),
            ("1.0a", "1.0b"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+"),
            ("1.0~~", "1.0~"),
        ];
        for (lo, hi) in ascending {
            assert_eq!(compare_versions(lo, hi), Ordering::Less, "{lo} < {hi}");
            assert_eq!(compare_versions(hi, lo), Ordering::Greater, "{hi} > {lo}");
        }
        assert_eq!(compare_versions("1:1.01", "1:1.1"), Ordering::Equal);
    }

    #[test]
    fn stanzas_and_relations_are_read_as_apt_reads_them() {
        let text = "Package: a\nVersion: 1\nDepends: libc6 (>= 2.34), b | c:any, d [amd64]\nDescription: x\n more\n\n\nPackage: b\n";
        let s = parse(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("package"), Some("a"));
        assert_eq!(s[0].get("Description"), Some("x\nmore"));
        assert_eq!(
            relations(s[0].get("Depends").unwrap()),
            vec![
                vec!["libc6".to_string()],
                vec!["b".into(), "c".into()],
                vec!["d".into()]
            ]
        );
        assert!(relations("").is_empty());
    }
}
