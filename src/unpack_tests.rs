//! Tests of `unpack`: hostile archives.

use super::*;

#[test]
fn safe_paths() {
    assert_eq!(
        safe_relative(Path::new("./usr/bin/x"), 0),
        Ok(Some(PathBuf::from("usr/bin/x")))
    );
    assert_eq!(
        safe_relative(Path::new("a/b/c"), 1),
        Ok(Some(PathBuf::from("b/c")))
    );
    assert_eq!(safe_relative(Path::new("a/"), 1), Ok(None));
    assert!(safe_relative(Path::new("../etc/passwd"), 0).is_err());
    assert!(safe_relative(Path::new("a/../../b"), 0).is_err());
    assert!(safe_relative(Path::new("/etc/passwd"), 0).is_err());
}

#[test]
fn links() {
    assert!(link_stays_inside(
        Path::new("usr/lib/libx.so"),
        Path::new("libx.so.1")
    ));
    assert!(link_stays_inside(
        Path::new("usr/bin/cc"),
        Path::new("../lib/cc")
    ));
    assert!(!link_stays_inside(
        Path::new("usr/bin/cc"),
        Path::new("../../../etc")
    ));
    assert!(!link_stays_inside(Path::new("x"), Path::new("/etc/passwd")));
    assert!(!link_stays_inside(Path::new("x"), Path::new("..")));
}

fn symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, path, target).unwrap();
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, path, data).unwrap();
}

fn unpack_tar_bytes(bytes: Vec<u8>) -> (tempfile::TempDir, Result<()>) {
    let root = tempfile::tempdir().unwrap();
    let archive = root.path().join("a.tar");
    fs::write(&archive, bytes).unwrap();
    let r = unpack(&archive, "a.tar", &root.path().join("dest"), 0);
    (root, r)
}

#[test]
fn a_link_through_an_earlier_link_is_resolved_and_refused() {
    let mut b = tar::Builder::new(Vec::new());
    symlink(&mut b, "d/y", "..");
    symlink(&mut b, "d/x", "y/../..");
    let (root, r) = unpack_tar_bytes(b.into_inner().unwrap());
    let e = r.unwrap_err();
    assert!(format!("{e:#}").contains("`d/x`"), "{e:#}");
    assert!(format!("{e:#}").contains("pointing outside"), "{e:#}");
    assert!(fs::symlink_metadata(root.path().join("dest/d/x")).is_err());
    // links that resolve inside still unpack
    let mut b = tar::Builder::new(Vec::new());
    symlink(&mut b, "usr/lib64", "lib");
    symlink(&mut b, "lib", "usr/lib64/../lib64");
    file(&mut b, "usr/lib/f", b"ok");
    let (_root, r) = unpack_tar_bytes(b.into_inner().unwrap());
    r.unwrap();
}

#[test]
fn fifos_and_devices_are_refused_and_setuid_bits_dropped() {
    for kind in [
        tar::EntryType::Fifo,
        tar::EntryType::Char,
        tar::EntryType::Block,
    ] {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "dev/thing", &b""[..]).unwrap();
        let (root, r) = unpack_tar_bytes(b.into_inner().unwrap());
        let e = r.unwrap_err();
        assert!(format!("{e:#}").contains("a FIFO or a device"), "{e:#}");
        assert!(fs::symlink_metadata(root.path().join("dest/dev/thing")).is_err());
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o6755);
    h.set_cksum();
    b.append_data(&mut h, "bin/su", &b"hi"[..]).unwrap();
    let (root, r) = unpack_tar_bytes(b.into_inner().unwrap());
    r.unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(root.path().join("dest/bin/su"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn an_archive_past_the_limits_is_refused() {
    let mut b = Budget::new("big.tar");
    b.max_entries = 3;
    b.max_bytes = 100;
    b.take(10).unwrap();
    b.take(10).unwrap();
    b.take(10).unwrap();
    let e = b.take(0).unwrap_err().to_string();
    assert!(e.contains("more than 3 entries"), "{e}");
    let mut b = Budget::new("big.tar");
    b.max_bytes = 100;
    b.take(60).unwrap();
    let e = b.take(41).unwrap_err().to_string();
    assert!(e.contains("more than 100 bytes"), "{e}");
}

#[test]
fn a_link_chain_cannot_write_outside_the_destination() {
    let mut b = tar::Builder::new(Vec::new());
    symlink(&mut b, "l", ".");
    symlink(&mut b, "l/x", "..");
    file(&mut b, "l/x/f", b"escaped");
    let bytes = b.into_inner().unwrap();
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("dest");
    let archive = root.path().join("chain.tar");
    fs::write(&archive, bytes).unwrap();
    let e = unpack(&archive, "chain.tar", &dest, 0).unwrap_err();
    assert!(
        format!("{e:#}").contains("through a symbolic link"),
        "{e:#}"
    );
    assert!(
        !root.path().join("f").exists(),
        "a file was written outside"
    );
}

#[test]
fn an_entry_under_a_link_the_archive_made_is_refused() {
    let mut b = tar::Builder::new(Vec::new());
    symlink(&mut b, "lib", "usr/lib");
    file(&mut b, "usr/lib/ok", b"fine");
    file(&mut b, "lib/through", b"through the link");
    let root = tempfile::tempdir().unwrap();
    let archive = root.path().join("a.tar");
    fs::write(&archive, b.into_inner().unwrap()).unwrap();
    let e = unpack(&archive, "a.tar", &root.path().join("d"), 0).unwrap_err();
    assert!(format!("{e:#}").contains("lib/through"), "{e:#}");
}

#[test]
fn zip_links_and_entries_under_existing_links_are_refused() {
    use std::io::Write;
    let root = tempfile::tempdir().unwrap();
    // a link chain in a zip: the links themselves are refused
    let path = root.path().join("chain.whl");
    let mut z = zip::ZipWriter::new(File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.add_symlink("l", ".", opts).unwrap();
    z.add_symlink("l/x", "..", opts).unwrap();
    z.start_file("l/x/f", opts).unwrap();
    z.write_all(b"escaped").unwrap();
    z.finish().unwrap();
    let dest = root.path().join("dest");
    let e = unpack(&path, "chain.whl", &dest, 0).unwrap_err();
    assert!(format!("{e:#}").contains("symbolic link"), "{e:#}");
    assert!(!root.path().join("f").exists());
    // a link already in the destination is not written through either
    let outside = root.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("pkg")).unwrap();
    let path = root.path().join("plain.whl");
    let mut z = zip::ZipWriter::new(File::create(&path).unwrap());
    z.start_file("pkg/f", opts).unwrap();
    z.write_all(b"escaped").unwrap();
    z.finish().unwrap();
    let e = unpack(&path, "plain.whl", &dest, 0).unwrap_err();
    assert!(
        format!("{e:#}").contains("through a symbolic link"),
        "{e:#}"
    );
    assert!(!outside.join("f").exists());
}

#[test]
fn a_root_merges_usr_and_makes_absolute_links_relative_to_itself() {
    let t = |rel: &str, target: &str| {
        root_link_target(Path::new(rel), Path::new(target)).map(|p| p.display().to_string())
    };
    // libc6's loader link, absolute in the package
    assert_eq!(
        t(
            "lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        )
        .as_deref(),
        Some("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    );
    // a relative link that crosses from /bin into /usr keeps its meaning
    assert_eq!(
        t("bin/foo", "../usr/share/foo/run").as_deref(),
        Some("../share/foo/run")
    );
    assert_eq!(t("usr/bin/sh", "dash").as_deref(), Some("dash"));
    assert_eq!(t("bin/x", "/").as_deref(), Some("../.."));
    assert_eq!(t("bin/x", "../../.."), None);

    // unpacked: files of /bin land in usr/bin, the absolute link works
    let mut b = tar::Builder::new(Vec::new());
    file(&mut b, "./usr/bin/true", b"true");
    // a merged-/usr base-files (Debian 13 and later) ships the top-level
    // links itself: they are the root's already, and skipped
    symlink(&mut b, "./bin", "usr/bin");
    symlink(&mut b, "./lib64", "usr/lib64");
    file(&mut b, "./lib/x86_64-linux-gnu/libc.so.6", b"libc");
    symlink(&mut b, "./lib64/ld.so", "/lib/x86_64-linux-gnu/libc.so.6");
    file(&mut b, "./bin/dash", b"dash");
    symlink(&mut b, "./bin/sh", "dash");
    let bytes = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("root");
    fs::create_dir_all(&dest).unwrap();
    unpack_tar_as(&bytes[..], "a.deb", &dest, 0, true).unwrap();
    assert!(!dest.join("bin").exists() && !dest.join("lib64").exists());
    assert_eq!(fs::read(dest.join("usr/lib64/ld.so")).unwrap(), b"libc");
    assert_eq!(fs::read(dest.join("usr/bin/sh")).unwrap(), b"dash");
    assert_eq!(fs::read(dest.join("usr/bin/true")).unwrap(), b"true");
    assert!(fs::symlink_metadata(dest.join("usr/bin")).unwrap().is_dir());
    assert_eq!(
        fs::read_link(dest.join("usr/lib64/ld.so")).unwrap(),
        Path::new("../lib/x86_64-linux-gnu/libc.so.6")
    );
    // a link that climbs above the root is refused, as in any archive
    let mut b = tar::Builder::new(Vec::new());
    symlink(&mut b, "./bin/up", "../../etc/passwd");
    let bytes = b.into_inner().unwrap();
    let err = unpack_tar_as(&bytes[..], "b.deb", &dest, 0, true).unwrap_err();
    assert!(format!("{err:#}").contains("above the root"), "{err:#}");
}
