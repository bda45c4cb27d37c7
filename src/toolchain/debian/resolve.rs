//! Packages chosen from several suites' lists: the newest version of each
//! name, and the closure of a set of packages' `Pre-Depends` and `Depends`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};

use super::control::{self, Stanza};

/// A package of one suite's list.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The suite it was listed in (`bookworm-security`).
    pub suite: String,
    pub stanza: Stanza,
}

impl Candidate {
    pub fn name(&self) -> &str {
        self.stanza.get("Package").unwrap_or_default()
    }
    pub fn version(&self) -> &str {
        self.stanza.get("Version").unwrap_or_default()
    }
    pub fn arch(&self) -> &str {
        self.stanza.get("Architecture").unwrap_or_default()
    }
    pub fn pool(&self) -> &str {
        self.stanza.get("Filename").unwrap_or_default()
    }
    pub fn sha256(&self) -> &str {
        self.stanza.get("SHA256").unwrap_or_default()
    }
    /// The section without its archive area (`contrib/libs` → `libs`).
    pub fn section(&self) -> &str {
        let s = self.stanza.get("Section").unwrap_or_default();
        s.rsplit('/').next().unwrap_or(s)
    }
    fn depends(&self) -> Vec<Vec<String>> {
        let mut all = control::relations(self.stanza.get("Pre-Depends").unwrap_or_default());
        all.extend(control::relations(
            self.stanza.get("Depends").unwrap_or_default(),
        ));
        all
    }
}

/// The packages of several suites, by name.
#[derive(Debug, Default)]
pub struct Index {
    by_name: BTreeMap<String, Vec<Candidate>>,
    /// virtual name → the packages that provide it
    providers: BTreeMap<String, BTreeSet<String>>,
}

impl Index {
    pub fn add(&mut self, suite: &str, stanzas: Vec<Stanza>) {
        for stanza in stanzas {
            let Some(name) = stanza.get("Package").map(String::from) else {
                continue;
            };
            for alts in control::relations(stanza.get("Provides").unwrap_or_default()) {
                for virt in alts {
                    self.providers.entry(virt).or_default().insert(name.clone());
                }
            }
            self.by_name.entry(name).or_default().push(Candidate {
                suite: suite.to_string(),
                stanza,
            });
        }
    }

    /// Every version of `name` listed, newest first.
    pub fn versions(&self, name: &str) -> Vec<&Candidate> {
        let mut all: Vec<&Candidate> = self.by_name.get(name).into_iter().flatten().collect();
        all.sort_by(|a, b| control::compare_versions(b.version(), a.version()));
        all
    }

    /// The newest version of `name` in any suite (the one apt would install).
    pub fn newest(&self, name: &str) -> Option<&Candidate> {
        self.versions(name).into_iter().next()
    }

    /// `roots` and what they need, as apt would install them: for each
    /// `Pre-Depends`/`Depends` entry the first alternative that is a real
    /// package, else a package providing it (one already chosen or a root
    /// first, then the first by name). `follow` says whether a needed
    /// package is taken (and its own needs with it); `skip` names packages
    /// never taken. Sorted by name.
    pub fn closure(
        &self,
        roots: &[&str],
        skip: &[&str],
        follow: impl Fn(&Candidate) -> bool,
    ) -> Result<Vec<&Candidate>> {
        let mut start = Vec::new();
        for root in roots {
            let Some(c) = self.newest(root) else {
                bail!("no package {root} in the lists read");
            };
            start.push(c);
        }
        self.closure_of(&start, skip, follow)
    }

    /// [`Index::closure`] from given versions of the roots.
    pub fn closure_of<'a>(
        &'a self,
        start: &[&'a Candidate],
        skip: &[&str],
        follow: impl Fn(&Candidate) -> bool,
    ) -> Result<Vec<&'a Candidate>> {
        let roots: Vec<&str> = start.iter().map(|c| c.name()).collect();
        let roots = &roots[..];
        let mut chosen: BTreeMap<&str, &Candidate> = BTreeMap::new();
        let mut todo: Vec<&Candidate> = start.to_vec();
        let mut unresolved = Vec::new();
        while let Some(c) = todo.pop() {
            if skip.contains(&c.name()) || chosen.contains_key(c.name()) {
                continue;
            }
            chosen.insert(c.name(), c);
            for alts in c.depends() {
                if alts.iter().any(|a| skip.contains(&a.as_str())) {
                    continue;
                }
                let pick = alts
                    .iter()
                    .find_map(|a| self.newest(a))
                    .or_else(|| self.provider(&alts, &chosen, roots));
                match pick {
                    Some(p) if follow(p) => todo.push(p),
                    Some(_) => {}
                    None => {
                        unresolved.push(format!("{} (needed by {})", alts.join(" | "), c.name()))
                    }
                }
            }
        }
        if !unresolved.is_empty() {
            unresolved.sort();
            unresolved.dedup();
            bail!(
                "no package in the lists read gives {}",
                unresolved.join(", ")
            );
        }
        Ok(chosen.into_values().collect())
    }

    fn provider(
        &self,
        alts: &[String],
        chosen: &BTreeMap<&str, &Candidate>,
        roots: &[&str],
    ) -> Option<&Candidate> {
        let providers: Vec<&String> = alts
            .iter()
            .filter_map(|a| self.providers.get(a))
            .flatten()
            .collect();
        let rank = |p: &&String| {
            if chosen.contains_key(p.as_str()) {
                0
            } else if roots.contains(&p.as_str()) {
                1
            } else {
                2
            }
        };
        providers
            .into_iter()
            .min_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)))
            .and_then(|p| self.newest(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(lists: &[(&str, &str)]) -> Index {
        let mut i = Index::default();
        for (suite, text) in lists {
            i.add(suite, control::parse(text));
        }
        i
    }

    #[test]
    fn the_closure_takes_the_newest_version_alternatives_providers_and_skips() {
        let i = index(&[
            (
                "stable",
                "Package: tool\nVersion: 1\nSection: devel\nDepends: libfoo1 (>= 1), awk, dpkg\n\n\
                 Package: libfoo1\nVersion: 1.0-1\nSection: libs\nPre-Depends: libc6\n\n\
                 Package: libc6\nVersion: 2.36\nSection: libs\n\n\
                 Package: mawk\nVersion: 1\nProvides: awk\n\n\
                 Package: gawk\nVersion: 1\nProvides: awk\nDepends: libc6\n\n\
                 Package: dpkg\nVersion: 1\n",
            ),
            (
                "stable-security",
                "Package: libfoo1\nVersion: 1.0-1+deb12u1\nSection: libs\nPre-Depends: libc6\n",
            ),
        ]);
        let names = |c: Vec<&Candidate>| {
            c.iter()
                .map(|c| format!("{}={}@{}", c.name(), c.version(), c.suite))
                .collect::<Vec<_>>()
        };
        // gawk is a root, so it gives awk rather than mawk (first by name)
        let all = i.closure(&["tool", "gawk"], &["dpkg"], |_| true).unwrap();
        assert_eq!(
            names(all),
            [
                "gawk=1@stable",
                "libc6=2.36@stable",
                "libfoo1=1.0-1+deb12u1@stable-security",
                "tool=1@stable"
            ]
        );
        // libraries only, without libc6
        let libs = i
            .closure(&["tool"], &["libc6", "dpkg"], |c| c.section() == "libs")
            .unwrap();
        assert_eq!(
            names(libs),
            ["libfoo1=1.0-1+deb12u1@stable-security", "tool=1@stable"]
        );
        let err = index(&[("s", "Package: a\nVersion: 1\nDepends: nothere | nor-this\n")])
            .closure(&["a"], &[], |_| true)
            .unwrap_err();
        assert!(
            err.to_string().contains("nothere | nor-this (needed by a)"),
            "{err}"
        );
    }
}
