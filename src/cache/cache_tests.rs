//! Tests of `cache`.

use super::upkeep::SHIMS_GRACE;
use super::*;

#[test]
fn remove_retired_drops_earlier_zig_caches_and_keeps_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path().to_path_buf()).unwrap();
    for d in [
        cache.v1().join("zig/o"),
        cache.v1().join("zig2/o"),
        cache.zig_cache(),
    ] {
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("libc.a"), b"1234").unwrap();
    }
    assert_eq!(remove_retired(&cache).unwrap(), 8);
    assert!(!cache.v1().join("zig").exists());
    assert!(!cache.v1().join("zig2").exists());
    assert!(cache.zig_cache().join("libc.a").is_file());
    assert_eq!(remove_retired(&cache).unwrap(), 0, "nothing left to remove");
}

#[test]
fn gc_shims_removes_the_wrappers_of_executables_no_process_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path().to_path_buf()).unwrap();
    let shims = cache.v1().join("shims");
    let own = cache.own_exe().unwrap();
    // a bucket named for another running program, and two nobody runs
    let mut child = crate::process::Cmd::new("sleep").arg("60").spawn().unwrap();
    let other = exe_id(&fs::metadata(format!("/proc/{}/exe", child.id())).unwrap());
    let old_long_ago = shims.join("0123456789ab");
    let old_just_now = shims.join("ba9876543210");
    for d in [
        shims.join(&other),
        old_long_ago.clone(),
        old_just_now.clone(),
    ] {
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("xbuild"), b"12345").unwrap();
    }
    fs::hard_link(old_long_ago.join("xbuild"), dir.path().join("elsewhere")).unwrap();
    fs::write(old_long_ago.join("only-here"), b"123").unwrap();
    let back = std::time::SystemTime::now() - SHIMS_GRACE - Duration::from_secs(60);
    for d in [shims.join(&other), old_long_ago.clone()] {
        File::open(&d).unwrap().set_modified(back).unwrap();
    }

    let (removed, freed) = gc_shims(&cache).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(
        (removed, freed),
        (1, 3),
        "only the unlinked file counts as freed"
    );
    assert!(!old_long_ago.exists());
    assert!(old_just_now.exists(), "changed in the grace period");
    assert!(shims.join(&other).exists(), "its executable runs");
    assert!(own.exists(), "the running xbuild's own");
}

#[test]
fn clean_tmp_removes_what_dead_processes_left_and_keeps_the_living() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path().join("c")).unwrap();
    let mine = cache.temp_dir("outputs").unwrap();
    // a process that has exited: its pid is not running any more
    let mut child = crate::process::Cmd::new("/bin/true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let left = cache.tmp().join(format!("outputs.{dead}.abc"));
    fs::create_dir_all(left.join("inner")).unwrap();
    let unnamed = cache.tmp().join("stray");
    fs::write(&unnamed, b"x").unwrap();
    clean_tmp(&cache).unwrap();
    assert!(mine.path().is_dir(), "a live process's temp dir stays");
    assert!(!left.exists(), "a dead process's temp dir goes");
    assert!(!unnamed.exists());
}
