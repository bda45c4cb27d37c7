//! The store's writing side: whether this run writes, blobs, manifests by
//! conditional create (outputs, std) or as the newest entry (compiled
//! units), and stopping writes for the rest of a run.

use std::fs;
use std::path::{Path, PathBuf};

use super::backend::Created;
use super::manifest::{self, Body, File};
use super::{Pushed, Store};
use crate::cache::Cache;

impl Store {
    /// Whether this run may write (a signing key and a writable store).
    pub fn writes(&self) -> bool {
        self.signer.is_some()
            && self.backend.writable()
            && self.usable()
            && self.state.lock().expect("store state").no_writes.is_none()
    }

    /// The public key this run signs with (`NAME:BASE64`), when it may
    /// write: what kept dirs are keyed by, so that no build without the key
    /// writes one that a signing build reuses.
    pub fn signer(&self) -> Option<String> {
        self.signer
            .as_ref()
            .filter(|_| self.writes())
            .map(|s| s.public().to_string())
    }

    /// Stop writing for the rest of the run (reading goes on), and say why once.
    pub fn stop_writing(&self, why: &str) {
        if self.signer.is_none() || !self.backend.writable() {
            return;
        }
        let mut st = self.state.lock().expect("store state");
        if st.no_writes.is_none() {
            st.no_writes = Some(why.to_string());
            drop(st);
            self.warn(format!(
                "nothing is signed or pushed to the cache store {} in this run: {why}",
                self.url
            ));
        }
    }

    /// Upload a blob the store lacks (best effort: a failure is a warning).
    pub fn push_blob(&self, sha256: &str, path: &Path) -> bool {
        if !self.writes() {
            return false;
        }
        let name = format!("blobs/{sha256}");
        match self.backend.exists(&self.timeouts, &name) {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => {
                self.failed(&format!("checking {name}"), e);
                return false;
            }
        }
        match self.backend.put(&self.timeouts, &name, path, false) {
            Ok(_) => {
                let size = fs::metadata(path).map_or(0, |m| m.len());
                self.stats(|s| s.bytes_up += size);
                true
            }
            Err(e) => {
                self.failed(&format!("uploading {name}"), e);
                false
            }
        }
    }

    /// Compare what this run built for `kind`/`key` with the store and, when
    /// the store has nothing and this run may write, push it: blobs first,
    /// then the signed manifest by conditional create. A trusted manifest
    /// already there is never replaced; when its files differ, it is
    /// returned (`Pushed::Different`) for the caller to diagnose.
    pub fn push(
        &self,
        cache: &Cache,
        kind: &str,
        key: &str,
        files: &[(File, PathBuf)],
        may_write: bool,
    ) -> Pushed {
        let ours = Body::new(kind, key, files.iter().map(|(f, _)| f.clone()).collect());
        let compare = |theirs: Body| {
            if theirs.same_files(&ours) {
                Pushed::Same
            } else {
                self.stats(|s| s.not_reproducible += 1);
                Pushed::Different(theirs)
            }
        };
        match self.manifest(cache, kind, key) {
            Ok(Some(theirs)) => return compare(theirs),
            Ok(None) => {}
            // a manifest nobody trusted signed, under a trusted key's name:
            // it blocks nothing (ours replaces it below)
            Err(why) => self.warn(format!(
                "the cache store {}: a {kind} manifest for {key} is there but not trusted ({why}); it is not used",
                self.url
            )),
        }
        let Some(signer) = self.signer.as_ref().filter(|_| may_write && self.writes()) else {
            return Pushed::Nothing;
        };
        let public = signer.public();
        for (f, path) in files {
            if !self.push_blob(&f.sha256, path) {
                return Pushed::Nothing;
            }
        }
        let text = ours.sign(signer);
        let Ok(tmp) = cache.temp_file("manifest") else {
            return Pushed::Nothing;
        };
        if fs::write(tmp.path(), &text).is_err() {
            return Pushed::Nothing;
        }
        let name = manifest::name(kind, key, &public);
        let written = match self.backend.put(&self.timeouts, &name, tmp.path(), true) {
            // another writer with this key was first: compare with what it
            // wrote; what does not verify under this key's name is a squat
            // by someone without the key, and is replaced
            Ok(Created::AlreadyThere) => match self.manifest_of(cache, kind, key, &public) {
                Ok(Some(theirs)) => return compare(theirs),
                Ok(None) => return Pushed::Nothing,
                Err(_) => self.backend.put(&self.timeouts, &name, tmp.path(), false),
            },
            other => other,
        };
        match written {
            Ok(_) => {
                self.stats(|s| s.manifests_pushed += 1);
                Pushed::Written
            }
            Err(e) => {
                self.failed(&format!("writing {name}"), e);
                Pushed::Nothing
            }
        }
    }

    /// Write this run's signed manifest of `files` (whose blobs the caller
    /// pushed) for `kind`/`key`, replacing what it wrote there before: the
    /// newest entry (compiled units: each build's are the newest). Best
    /// effort: false when nothing was written (said as a warning).
    pub fn publish_manifest(&self, cache: &Cache, kind: &str, key: &str, files: &[File]) -> bool {
        let Some(signer) = self.signer.as_ref().filter(|_| self.writes()) else {
            return false;
        };
        let ours = Body::new(kind, key, files.to_vec());
        let Ok(tmp) = cache.temp_file("manifest") else {
            return false;
        };
        if fs::write(tmp.path(), ours.sign(signer)).is_err() {
            return false;
        }
        let name = manifest::name(kind, key, &signer.public());
        match self.backend.put(&self.timeouts, &name, tmp.path(), false) {
            Ok(_) => {
                self.stats(|s| s.manifests_pushed += 1);
                true
            }
            Err(e) => {
                self.failed(&format!("writing {name}"), e);
                false
            }
        }
    }

    /// Whether the store holds the blob `sha256` (false when it cannot say).
    pub fn has_blob(&self, sha256: &str) -> bool {
        let name = format!("blobs/{sha256}");
        match self.backend.exists(&self.timeouts, &name) {
            Ok(b) => b,
            Err(e) => {
                self.failed(&format!("checking {name}"), e);
                false
            }
        }
    }
}
