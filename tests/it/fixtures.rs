//! Fixture archives made in the test (no network): a tarball, a wheel and a
//! .deb shaped like the real toolchain, and a loopback HTTP server.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn tar_bytes(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn tar_gz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes(files)).unwrap();
    gz.finish().unwrap()
}

/// A tar.gz with one entry whose raw name is written as given (`../x`, `/x`).
pub fn tar_gz_raw_name(name: &str, link_target: Option<&str>) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(t) = link_target {
            old.linkname[..t.len()].copy_from_slice(t.as_bytes());
        }
    }
    h.set_mode(0o644);
    h.set_size(if link_target.is_some() { 0 } else { 4 });
    h.set_entry_type(if link_target.is_some() {
        tar::EntryType::Symlink
    } else {
        tar::EntryType::Regular
    });
    h.set_cksum();
    let mut raw = h.as_bytes().to_vec();
    if link_target.is_none() {
        let mut block = b"evil".to_vec();
        block.resize(512, 0);
        raw.extend(block);
    }
    raw.extend(vec![0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

pub fn wheel(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, data, mode) in files {
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        z.start_file(*path, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap().into_inner()
}

pub fn deb(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar_bytes(files)).unwrap();
    let data = xz.finish().unwrap();
    let mut a = ar::Builder::new(Vec::new());
    for (name, bytes) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.xz", Vec::new()),
        ("data.tar.xz", data),
    ] {
        let h = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
        a.append(&h, bytes.as_slice()).unwrap();
    }
    a.into_inner().unwrap()
}

/// The three fixture artifacts, shaped like the real toolchain's layout.
pub struct Artifacts {
    pub rust: Vec<u8>,
    pub zig: Vec<u8>,
    pub qemu: Vec<u8>,
}

pub fn artifacts() -> Artifacts {
    let exe = b"#!/bin/sh\necho fake\n".as_slice();
    Artifacts {
        rust: tar_gz(&[
            ("rust-1.0/usr/bin/rustc", exe, 0o755),
            ("rust-1.0/usr/bin/cargo", exe, 0o755),
            (
                "rust-1.0/usr/lib/rustlib/src/rust/library/std/lib.rs",
                b"//",
                0o644,
            ),
        ]),
        zig: wheel(&[
            ("ziglang/zig", exe, 0o755),
            ("ziglang/lib/musl.txt", b"m", 0o644),
        ]),
        qemu: deb(&[("./usr/bin/qemu-aarch64", exe, 0o755)]),
    }
}

/// A toolchains.toml whose artifacts come from `sources` (one TOML inline
/// table body without sha256 each: rust, zig, qemu) with the given digests.
pub fn toolchains_toml(sources: [&str; 3], shas: [&str; 3]) -> String {
    format!(
        r#"version = 1
[rust]
rustc = "usr/bin/rustc"
cargo = "usr/bin/cargo"
rust-src = "usr/lib/rustlib/src/rust"
artifacts = [{{ {}, sha256 = "{}", strip = 1 }}]
[zig]
zig = "ziglang/zig"
artifacts = [{{ {}, sha256 = "{}" }}]
[qemu]
bin-dir = "usr/bin"
artifacts = [{{ {}, sha256 = "{}" }}]
"#,
        sources[0], shas[0], sources[1], shas[1], sources[2], shas[2]
    )
}

/// Write the fixture artifacts into `dir` and a toolchains.toml using `path`.
pub fn local_pins(dir: &Path) -> (PathBuf, Artifacts) {
    let a = artifacts();
    std::fs::write(dir.join("rust.tar.gz"), &a.rust).unwrap();
    std::fs::write(dir.join("zig.whl"), &a.zig).unwrap();
    std::fs::write(dir.join("qemu.deb"), &a.qemu).unwrap();
    let toml = toolchains_toml(
        [
            "path = \"rust.tar.gz\"",
            "path = \"zig.whl\"",
            "path = \"qemu.deb\"",
        ],
        [&sha256(&a.rust), &sha256(&a.zig), &sha256(&a.qemu)],
    );
    let file = dir.join("toolchains.toml");
    std::fs::write(&file, toml).unwrap();
    (file, a)
}

/// How the server answers one path.
#[derive(Clone)]
pub enum Reply {
    Ok(Vec<u8>),
    /// Send a Content-Length of the full body, then only `n` bytes, then close.
    Truncate(Vec<u8>, usize),
    /// Send `n` bytes, then hang (until the client goes away).
    Stall(Vec<u8>, usize),
    /// Wait, then send the body.
    Slow(Vec<u8>, Duration),
}

/// A loopback HTTP/1.1 server counting requests per path.
pub struct Server {
    pub base: String,
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    pub served: Arc<AtomicUsize>,
}

pub fn serve(routes: HashMap<String, Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let served = Arc::new(AtomicUsize::new(0));
    let (h, s) = (hits.clone(), served.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let routes = routes.clone();
            let (h, s) = (h.clone(), s.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                s.fetch_add(1, Ordering::SeqCst);
                let head = |len: usize| {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
                };
                match routes.get(&path) {
                    None => {
                        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                    Some(Reply::Ok(body)) => {
                        let _ = stream.write_all(head(body.len()).as_bytes());
                        let _ = stream.write_all(body);
                    }
                    Some(Reply::Slow(body, wait)) => {
                        std::thread::sleep(*wait);
                        let _ = stream.write_all(head(body.len()).as_bytes());
                        let _ = stream.write_all(body);
                    }
                    Some(Reply::Truncate(body, n)) => {
                        let _ = stream.write_all(head(body.len()).as_bytes());
                        let _ = stream.write_all(&body[..*n]);
                    }
                    Some(Reply::Stall(body, n)) => {
                        let _ = stream.write_all(head(body.len()).as_bytes());
                        let _ = stream.write_all(&body[..*n]);
                        let _ = stream.flush();
                        std::thread::sleep(Duration::from_secs(60));
                    }
                }
            });
        }
    });
    Server { base, hits, served }
}
