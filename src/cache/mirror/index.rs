//! The stat index of a workspace's mirror (see `super`): what `lstat` said
//! of each tracked file and the sha256 of the mirror's copy, written in
//! segments so that reading it and stat'ing its files run on several threads.
//!
//! ```text
//! xbuild-stat-index 1 <taken_ns> <offset>,<offset>,...
//! <kind> <size> <mtime_ns> <ctime_ns> <ino> <dev> <mode>\0<path>\0<sha256 or link target>\0 ...
//! ```

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const HEADER: &str = "xbuild-stat-index 1";

/// A file changed this close to (or after) the moment its index entry was
/// recorded is hashed again the next time: timestamps come from a coarse
/// clock, and some file systems keep them to the second (or two).
pub const RACY_NS: i64 = 2_000_000_000;

/// What the index knows of a working-tree file, from `lstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub mode: u32,
}

/// A source file as built: its path (relative to the workspace root) and
/// what the digest covers, the sha256 of its bytes or a link's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A regular file's sha256 (hex).
    File(String),
    /// A symlink's target, as written.
    Link(PathBuf),
}

impl Source {
    /// The file's sha256, `None` for a link.
    pub fn sha256(&self) -> Option<&str> {
        match &self.content {
            Content::File(s) => Some(s),
            Content::Link(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) stat: Stat,
    pub(super) content: Content,
}

/// The stat index: entries sorted by path, and when it was taken.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// Wall-clock ns at the start of the run that wrote it.
    pub(super) taken_ns: i64,
    pub(super) entries: Vec<(PathBuf, Entry)>,
}

/// Whether an entry recorded in an index taken at `taken_ns` still stands
/// for a file whose stat is now `now`: the same stat (the kind of file is
/// in its mode), and not racily clean.
pub fn still_valid(recorded: &Stat, taken_ns: i64, now: &Stat) -> bool {
    recorded == now && recorded.mtime_ns.max(recorded.ctime_ns) + RACY_NS < taken_ns
}

/// The index is written in this many segments, each listed in the header
/// by its offset, so that reading it and `lstat`ing its files run on several
/// threads, one per segment.
const SEGMENTS: usize = 4;

impl Index {
    /// The index's segments in `bytes` and when it was taken; `None` when
    /// damaged.
    pub(super) fn segments(bytes: &[u8]) -> Option<(i64, Vec<&[u8]>)> {
        let (head, body) = bytes.split_at(bytes.iter().position(|b| *b == b'\n')? + 1);
        let mut head = std::str::from_utf8(head)
            .ok()?
            .trim_end()
            .strip_prefix(HEADER)?
            .split(' ');
        let taken_ns = head.nth(1)?.parse().ok()?;
        let mut starts = vec![0];
        for o in head
            .next()
            .filter(|o| !o.is_empty())
            .into_iter()
            .flat_map(|o| o.split(','))
        {
            starts.push(o.parse::<usize>().ok().filter(|o| *o <= body.len())?);
        }
        starts.push(body.len());
        let segments = starts
            .windows(2)
            .map(|w| body.get(w[0]..w[1]))
            .collect::<Option<Vec<_>>>()?;
        Some((taken_ns, segments))
    }

    /// The entries of one segment; `None` when damaged.
    pub(super) fn parse(mut rest: &[u8]) -> Option<Vec<(PathBuf, Entry)>> {
        let mut entries = Vec::new();
        // `<kind> <size> <mtime> <ctime> <ino> <dev> <mode>\0<path>\0<content>\0`
        while !rest.is_empty() {
            let mut fields = rest.splitn(4, |b| *b == 0);
            let (meta, path, content) = (fields.next()?, fields.next()?, fields.next()?);
            rest = fields.next()?;
            let meta = std::str::from_utf8(meta).ok()?;
            let mut m = meta.split(' ');
            let kind = m.next()?;
            let mut num = || m.next()?.parse::<i64>().ok();
            let stat = Stat {
                size: num()? as u64,
                mtime_ns: num()?,
                ctime_ns: num()?,
                ino: num()? as u64,
                dev: num()? as u64,
                mode: num()? as u32,
            };
            let content = match kind {
                "f" => Content::File(std::str::from_utf8(content).ok()?.to_string()),
                "l" => Content::Link(PathBuf::from(std::ffi::OsStr::from_bytes(content))),
                _ => return None,
            };
            // out of order would cost copies, never a wrong mirror: an entry
            // the merge in `update` skips is a file copied again
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(path));
            entries.push((path, Entry { stat, content }));
        }
        Some(entries)
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut starts = Vec::new();
        let per = self.entries.len().div_ceil(SEGMENTS).max(1);
        for (i, (path, e)) in self.entries.iter().enumerate() {
            if i > 0 && i % per == 0 {
                starts.push(body.len().to_string());
            }
            let st = &e.stat;
            let (kind, content) = match &e.content {
                Content::File(h) => ("f", h.as_bytes()),
                Content::Link(t) => ("l", t.as_os_str().as_bytes()),
            };
            body.extend_from_slice(
                format!(
                    "{kind} {} {} {} {} {} {}",
                    st.size, st.mtime_ns, st.ctime_ns, st.ino as i64, st.dev as i64, st.mode
                )
                .as_bytes(),
            );
            for part in [path.as_os_str().as_bytes(), content] {
                body.push(0);
                body.extend_from_slice(part);
            }
            body.push(0);
        }
        let mut out = format!("{HEADER} {} {}\n", self.taken_ns, starts.join(",")).into_bytes();
        out.append(&mut body);
        out
    }
}

/// A file or a link (what a snapshot holds), from `lstat` of `name` in the
/// directory `dir` (an open fd, or `AT_FDCWD` for a path).
fn stat_at(dir: libc::c_int, name: &std::ffi::CStr) -> Option<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated and `st` is written by the call.
    let rc = unsafe {
        libc::fstatat(
            dir,
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: fstatat succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    let kind = st.st_mode & libc::S_IFMT;
    (kind == libc::S_IFREG || kind == libc::S_IFLNK).then_some(Stat {
        size: st.st_size as u64,
        mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        ctime_ns: st.st_ctime * 1_000_000_000 + st.st_ctime_nsec,
        ino: st.st_ino,
        dev: st.st_dev,
        mode: st.st_mode,
    })
}

fn cstring(path: &Path) -> Option<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_bytes()).ok()
}

/// [`stat_at`] of a path.
pub(super) fn stat_of(path: &Path) -> Option<Stat> {
    stat_at(libc::AT_FDCWD, &cstring(path)?)
}

/// [`stat_of`] of `root/rel` for each of `rels`, opening each directory once
/// (files of one directory are next to each other in sorted order), so the
/// kernel walks one name per file instead of the whole path.
pub(super) fn stat_all<'a>(root: &Path, rels: impl Iterator<Item = &'a Path>) -> Vec<Option<Stat>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut dir: Option<(&Path, Option<OwnedFd>)> = None;
    rels.map(|rel| {
        let (parent, name) = (rel.parent()?, rel.file_name()?);
        if dir.as_ref().is_none_or(|(p, _)| *p != parent) {
            let fd = cstring(&root.join(parent)).and_then(|c| {
                // SAFETY: a NUL-terminated path; the fd is owned below.
                let fd = unsafe {
                    libc::open(
                        c.as_ptr(),
                        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                    )
                };
                // SAFETY: `fd` was just opened and is owned by nobody else.
                (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
            });
            dir = Some((parent, fd));
        }
        let fd = dir.as_ref()?.1.as_ref()?;
        stat_at(fd.as_raw_fd(), &cstring(Path::new(name))?)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mtime_ns: i64) -> Stat {
        Stat {
            size: 3,
            mtime_ns,
            ctime_ns: mtime_ns,
            ino: 7,
            dev: 1,
            mode: 0o100644,
        }
    }

    #[test]
    fn an_entry_stands_only_for_the_same_stat_recorded_well_after_the_change() {
        let s = 1_000 * 1_000_000_000;
        // recorded 10 s after the last change: trusted while the stat holds
        assert!(still_valid(&stat(s), s + 10_000_000_000, &stat(s)));
        let mut grown = stat(s);
        grown.size = 4;
        assert!(!still_valid(&stat(s), s + 10_000_000_000, &grown));
        let mut moved = stat(s);
        moved.ino = 8;
        assert!(!still_valid(&stat(s), s + 10_000_000_000, &moved));
        // racily clean: changed in the same second the index was taken (or
        // later), so a second change may not show in the stat
        assert!(!still_valid(&stat(s), s + 500_000_000, &stat(s)));
        assert!(!still_valid(&stat(s), s, &stat(s)));
        assert!(!still_valid(&stat(s + 1), s, &stat(s + 1)));
    }
}
