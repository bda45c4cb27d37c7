//! git's own files read without git, for a host that has none: the index
//! (what `git ls-files --cached` lists) and the time of the commit `HEAD`
//! names (what `git log -1 --format=%ct` prints). Formats as git's
//! documentation describes them (`gitformat-index`, `gitformat-pack`);
//! what this reader does not know (a sparse index, an unknown version) is
//! an error that says to install git, never a guess.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

/// A repository's git directory and the directory objects and refs live in
/// (they differ for a linked worktree).
pub struct Repo {
    pub top: PathBuf,
    git_dir: PathBuf,
    common: PathBuf,
    hash_len: usize,
}

impl Repo {
    /// The repository `dir` is in: the nearest ancestor with a `.git`
    /// directory, or a `.git` file naming one (`gitdir: ...`).
    pub fn find(dir: &Path) -> Result<Option<Repo>> {
        let Some(top) = dir.ancestors().find(|d| d.join(".git").exists()) else {
            return Ok(None);
        };
        let dot = top.join(".git");
        let git_dir = if dot.is_dir() {
            dot
        } else {
            let text =
                fs::read_to_string(&dot).with_context(|| format!("reading {}", dot.display()))?;
            let rel = text
                .trim()
                .strip_prefix("gitdir:")
                .with_context(|| format!("{} does not name a git directory", dot.display()))?;
            top.join(rel.trim())
        };
        let common = match fs::read_to_string(git_dir.join("commondir")) {
            Ok(rel) => git_dir.join(rel.trim()),
            Err(_) => git_dir.clone(),
        };
        let config = fs::read_to_string(common.join("config")).unwrap_or_default();
        let sha256 = config.lines().any(|l| {
            l.replace(' ', "")
                .eq_ignore_ascii_case("objectformat=sha256")
        });
        Ok(Some(Repo {
            top: top.to_path_buf(),
            git_dir,
            common,
            hash_len: if sha256 { 32 } else { 20 },
        }))
    }

    /// The paths the index tracks under `dir` (relative to it), with those
    /// of initialized submodules, as `git ls-files --cached
    /// --recurse-submodules -- .` run in `dir` lists them.
    pub fn tracked(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let prefix = dir.strip_prefix(&self.top).unwrap_or(Path::new(""));
        let mut out = Vec::new();
        for (path, mode) in self.index_entries()? {
            let path = PathBuf::from(path);
            if mode == 0o160000 {
                let sub_dir = self.top.join(&path);
                if sub_dir.join(".git").exists()
                    && let Some(sub) = Repo::find(&sub_dir)?
                    && sub.top == sub_dir
                {
                    for f in sub.tracked(&sub_dir)? {
                        let full = path.join(f);
                        if let Ok(rel) = full.strip_prefix(prefix) {
                            out.push(rel.to_path_buf());
                        }
                    }
                }
                continue;
            }
            if let Ok(rel) = path.strip_prefix(prefix) {
                out.push(rel.to_path_buf());
            }
        }
        out.dedup();
        Ok(out)
    }

    /// Every entry of the index: path (from the top) and mode.
    fn index_entries(&self) -> Result<Vec<(String, u32)>> {
        let file = self.git_dir.join("index");
        let b = match fs::read(&file) {
            Ok(b) => b,
            // a repository with nothing added yet
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        parse_index(&b, self.hash_len).with_context(|| {
            format!(
                "reading git's index {} without git: install git, which xbuild then asks",
                file.display()
            )
        })
    }

    /// The committer time of the commit `HEAD` names (None: no commit yet).
    pub fn head_time(&self) -> Result<Option<i64>> {
        let Some(id) = self.resolve("HEAD", 0)? else {
            return Ok(None);
        };
        let (kind, body) = self.object(&id)?;
        ensure!(kind == 1, "HEAD names {id}, which is not a commit");
        let text = String::from_utf8_lossy(&body);
        let committer = text
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("committer "))
            .with_context(|| format!("commit {id} has no committer"))?;
        let mut words = committer.rsplit(' ');
        let _zone = words.next();
        let time = words
            .next()
            .and_then(|t| t.parse().ok())
            .with_context(|| format!("commit {id}'s committer line has no time"))?;
        Ok(Some(time))
    }

    /// A ref (or `HEAD`) to an object id in hex.
    fn resolve(&self, name: &str, depth: u32) -> Result<Option<String>> {
        ensure!(depth < 10, "the ref {name} is a loop of symbolic refs");
        let dir = if name == "HEAD" {
            &self.git_dir
        } else {
            &self.common
        };
        if let Ok(text) = fs::read_to_string(dir.join(name)) {
            let text = text.trim();
            return match text.strip_prefix("ref:") {
                Some(target) => self.resolve(target.trim(), depth + 1),
                None => Ok(Some(text.to_string())),
            };
        }
        let packed = fs::read_to_string(self.common.join("packed-refs")).unwrap_or_default();
        Ok(packed.lines().find_map(|l| {
            let (id, r) = l.split_once(' ')?;
            (r == name).then(|| id.to_string())
        }))
    }

    /// An object's type (1 commit, 2 tree, 3 blob, 4 tag) and contents.
    fn object(&self, id: &str) -> Result<(u8, Vec<u8>)> {
        ensure!(
            id.len() == self.hash_len * 2 && id.bytes().all(|c| c.is_ascii_hexdigit()),
            "`{id}` is not an object id"
        );
        let loose = self.common.join("objects").join(&id[..2]).join(&id[2..]);
        if let Ok(bytes) = fs::read(&loose) {
            let raw = inflate(&bytes)?;
            let nul = raw
                .iter()
                .position(|&c| c == 0)
                .context("a loose object without a header")?;
            let header = String::from_utf8_lossy(&raw[..nul]);
            let kind = match header.split(' ').next() {
                Some("commit") => 1,
                Some("tree") => 2,
                Some("blob") => 3,
                Some("tag") => 4,
                _ => bail!("the loose object {id} has the header `{header}`"),
            };
            return Ok((kind, raw[nul + 1..].to_vec()));
        }
        let want = hex::decode(id)?;
        let packs = self.common.join("objects/pack");
        for e in fs::read_dir(&packs).into_iter().flatten().flatten() {
            let idx = e.path();
            if idx.extension().is_some_and(|x| x == "idx")
                && let Some(offset) = find_in_idx(&fs::read(&idx)?, &want, self.hash_len)?
            {
                let pack = fs::read(idx.with_extension("pack"))?;
                return self.pack_object(&pack, offset, 0);
            }
        }
        bail!("object {id} is neither loose nor in a pack")
    }

    /// The object at `offset` of a pack, its deltas applied.
    fn pack_object(&self, pack: &[u8], offset: usize, depth: u32) -> Result<(u8, Vec<u8>)> {
        ensure!(depth < 64, "a delta chain deeper than git makes");
        let at = |i: usize| {
            pack.get(i)
                .copied()
                .context("a pack entry runs past the pack's end")
        };
        let mut i = offset;
        let mut c = at(i)?;
        i += 1;
        let kind = (c >> 4) & 7;
        while c & 0x80 != 0 {
            c = at(i)?;
            i += 1;
        }
        match kind {
            1..=4 => Ok((kind, inflate(&pack[i..])?)),
            6 => {
                // OFS_DELTA: the base is this far back
                let mut c = at(i)?;
                i += 1;
                let mut back = (c & 0x7f) as usize;
                while c & 0x80 != 0 {
                    c = at(i)?;
                    i += 1;
                    back = ((back + 1) << 7) | (c & 0x7f) as usize;
                }
                let base_at = offset
                    .checked_sub(back)
                    .context("a delta's base before the pack")?;
                let (k, base) = self.pack_object(pack, base_at, depth + 1)?;
                Ok((k, apply_delta(&base, &inflate(&pack[i..])?)?))
            }
            7 => {
                // REF_DELTA: the base by id
                let id = hex::encode(
                    pack.get(i..i + self.hash_len)
                        .context("a truncated delta")?,
                );
                let (k, base) = self.object(&id)?;
                Ok((
                    k,
                    apply_delta(&base, &inflate(&pack[i + self.hash_len..])?)?,
                ))
            }
            k => bail!("a pack entry of unknown type {k}"),
        }
    }
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes)
        .read_to_end(&mut out)
        .context("inflating a git object")?;
    Ok(out)
}

fn be32(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at + 4).context("the file ends early")?;
    Ok(u32::from_be_bytes(s.try_into().expect("4 bytes")))
}

/// The index's entries (`gitformat-index`: versions 2, 3 and 4).
fn parse_index(b: &[u8], hash_len: usize) -> Result<Vec<(String, u32)>> {
    ensure!(
        b.get(..4) == Some(b"DIRC"),
        "not a git index (no DIRC signature)"
    );
    let version = be32(b, 4)?;
    ensure!(
        (2..=4).contains(&version),
        "index version {version} is not one this reader knows"
    );
    let count = be32(b, 8)? as usize;
    let mut at = 12;
    let mut out = Vec::with_capacity(count);
    let mut previous: Vec<u8> = Vec::new();
    for _ in 0..count {
        let start = at;
        let mode = be32(b, at + 24)?;
        let flags_at = at + 40 + hash_len;
        let flags = u16::from_be_bytes(
            b.get(flags_at..flags_at + 2)
                .context("a truncated entry")?
                .try_into()?,
        );
        at = flags_at + 2;
        if version >= 3 && flags & 0x4000 != 0 {
            at += 2;
        }
        let name = if version == 4 {
            let mut strip = 0usize;
            loop {
                let c = *b.get(at).context("a truncated entry")?;
                at += 1;
                strip = (strip << 7) | (c & 0x7f) as usize;
                if c & 0x80 == 0 {
                    break;
                }
                strip += 1;
            }
            let end = at
                + b[at..]
                    .iter()
                    .position(|&c| c == 0)
                    .context("an unterminated name")?;
            let keep = previous
                .len()
                .checked_sub(strip)
                .context("a name strips more than it has")?;
            let mut name = previous[..keep].to_vec();
            name.extend_from_slice(&b[at..end]);
            at = end + 1;
            name
        } else {
            let end = at
                + b[at..]
                    .iter()
                    .position(|&c| c == 0)
                    .context("an unterminated name")?;
            let name = b[at..end].to_vec();
            // padded with 1 to 8 NULs to a multiple of 8
            at = start + (end - start + 8) / 8 * 8;
            name
        };
        ensure!(
            mode & 0o170000 != 0o040000,
            "the index is sparse (`git sparse-checkout` with sparse-index)"
        );
        previous = name.clone();
        let name = String::from_utf8(name).context("a path that is not UTF-8")?;
        if out.last().is_none_or(|(n, _): &(String, u32)| *n != name) {
            out.push((name, mode));
        }
    }
    Ok(out)
}

/// The pack offset of `id` in a version-2 pack index.
fn find_in_idx(idx: &[u8], id: &[u8], hash_len: usize) -> Result<Option<usize>> {
    ensure!(
        idx.get(..4) == Some(b"\xfftOc") && be32(idx, 4)? == 2,
        "a pack index that is not version 2"
    );
    let fan = |i: usize| be32(idx, 8 + 4 * i).map(|v| v as usize);
    let total = fan(255)?;
    let lo = if id[0] == 0 {
        0
    } else {
        fan(id[0] as usize - 1)?
    };
    let hi = fan(id[0] as usize)?;
    let names = 8 + 256 * 4;
    let (mut lo, mut hi) = (lo, hi);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let name = idx
            .get(names + mid * hash_len..names + (mid + 1) * hash_len)
            .context("a truncated pack index")?;
        match name.cmp(id) {
            std::cmp::Ordering::Equal => {
                let offsets = names + total * hash_len + total * 4;
                let off = be32(idx, offsets + mid * 4)?;
                if off & 0x8000_0000 == 0 {
                    return Ok(Some(off as usize));
                }
                let large = offsets + total * 4 + (off & 0x7fff_ffff) as usize * 8;
                let s = idx
                    .get(large..large + 8)
                    .context("a truncated pack index")?;
                return Ok(Some(u64::from_be_bytes(s.try_into()?) as usize));
            }
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
        }
    }
    Ok(None)
}

/// git's delta: source and target sizes, then copy and insert instructions.
fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>> {
    let mut i = 0;
    let mut size = || -> Result<usize> {
        let mut v = 0usize;
        let mut shift = 0;
        loop {
            let c = *delta.get(i).context("a truncated delta")?;
            i += 1;
            v |= ((c & 0x7f) as usize) << shift;
            shift += 7;
            if c & 0x80 == 0 {
                return Ok(v);
            }
        }
    };
    let source = size()?;
    let target = size()?;
    ensure!(source == base.len(), "a delta for another base");
    let mut out = Vec::with_capacity(target);
    while i < delta.len() {
        let op = delta[i];
        i += 1;
        if op & 0x80 != 0 {
            let mut arg = |bits: std::ops::Range<u8>| -> Result<usize> {
                let mut v = 0usize;
                for (n, bit) in bits.enumerate() {
                    if op & (1 << bit) != 0 {
                        v |= (*delta.get(i).context("a truncated delta")? as usize) << (8 * n);
                        i += 1;
                    }
                }
                Ok(v)
            };
            let off = arg(0..4)?;
            let mut len = arg(4..7)?;
            if len == 0 {
                len = 0x10000;
            }
            out.extend_from_slice(
                base.get(off..off + len)
                    .context("a delta copies past its base")?,
            );
        } else if op != 0 {
            let n = op as usize;
            out.extend_from_slice(delta.get(i..i + n).context("a truncated delta")?);
            i += n;
        } else {
            bail!("a delta with the reserved instruction 0");
        }
    }
    ensure!(out.len() == target, "a delta that makes the wrong size");
    Ok(out)
}

#[cfg(test)]
#[path = "gitread_tests.rs"]
mod tests;
