//! Where a store store keeps its objects: a directory (`file://`, e.g. on
//! NFS), a read-only static site (`https://`), or an S3-compatible bucket
//! (`s3://`). Every backend stores opaque objects under relative names
//! (`blobs/<sha256>`, `outputs/<key>`); [`super`] decides what they mean.
//!
//! S3 requests are presigned by `rusty-s3` (SigV4, no hand-written signing)
//! and sent with the blocking `ureq` agent xbuild already uses.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// Why a request to the store failed. `Unreachable` and `Denied` end the
/// store's use for the run (said once); `Other` concerns one object.
#[derive(Debug)]
pub enum StoreError {
    /// No answer: refused, timed out, DNS.
    Unreachable(String),
    /// The credentials were rejected (401/403).
    Denied { status: u16, body: String },
    /// Any other failure (an unexpected status, a local I/O error).
    Other(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unreachable(why) => write!(f, "unreachable: {why}"),
            StoreError::Denied { status, body } => {
                write!(f, "access denied: HTTP {status}")?;
                if !body.is_empty() {
                    write!(f, " ({body})")?;
                }
                Ok(())
            }
            StoreError::Other(why) => f.write_str(why),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

fn io_err(what: &str, e: io::Error) -> StoreError {
    StoreError::Other(format!("{what}: {e}"))
}

/// Whether a conditional create wrote the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Yes,
    /// Another writer was first; the object was left as it was.
    AlreadyThere,
}

pub enum Backend {
    Dir(PathBuf),
    Http(String),
    S3 {
        bucket: Box<Bucket>,
        credentials: Option<Box<Credentials>>,
        prefix: String,
    },
}

/// What S3 needs besides the URL, from the standard AWS variables.
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub key_id: Option<String>,
    pub secret: Option<String>,
    pub session_token: Option<String>,
}

/// How long one request may take to answer, one read to deliver bytes, and
/// one object from request to last byte (a server that drips bytes fails).
pub struct Timeouts {
    pub connect: Duration,
    pub response: Duration,
    pub object: Duration,
}

/// How long a presigned URL stays valid; only the request made right away uses it.
const PRESIGN: Duration = Duration::from_secs(15 * 60);

impl Backend {
    /// The backend for `url`: `file:///dir`, `https://host/prefix`, `http://…`
    /// (loopback stores), or `s3://bucket/prefix`.
    pub fn parse(url: &str, s3: S3Settings) -> Result<Backend, String> {
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "`{url}`: a file:// store needs an absolute path (file:///srv/xbuild-cache)"
                ));
            }
            return Ok(Backend::Dir(PathBuf::from(path)));
        }
        if url.starts_with("https://") || url.starts_with("http://") {
            return Ok(Backend::Http(url.trim_end_matches('/').to_string()));
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(format!(
                "`{url}` is not a store URL: use s3://BUCKET/PREFIX, file:///DIR or https://HOST/PATH"
            ));
        };
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(format!("`{url}` names no bucket (s3://BUCKET/PREFIX)"));
        }
        let region = s3.region.unwrap_or_else(|| "us-east-1".into());
        // An explicit endpoint is an S3-compatible service (Garage, MinIO,
        // s3s): path-style URLs, which every one of them serves.
        let (endpoint, style) = match s3.endpoint {
            Some(e) => (e, UrlStyle::Path),
            None => (
                format!("https://s3.{region}.amazonaws.com"),
                UrlStyle::VirtualHost,
            ),
        };
        let endpoint = endpoint
            .parse()
            .map_err(|e| format!("AWS_ENDPOINT_URL `{endpoint}` is not a URL: {e}"))?;
        let bucket = Bucket::new(endpoint, style, name.to_string(), region)
            .map_err(|e| format!("`{url}`: {e}"))?;
        let credentials = match (s3.key_id, s3.secret) {
            (Some(k), Some(s)) => Some(Box::new(match s3.session_token {
                Some(t) => Credentials::new_with_token(k, s, t),
                None => Credentials::new(k, s),
            })),
            _ => None,
        };
        let prefix = prefix.trim_matches('/');
        Ok(Backend::S3 {
            bucket: Box::new(bucket),
            credentials,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }

    pub fn writable(&self) -> bool {
        !matches!(self, Backend::Http(_))
    }

    /// Whether S3 requests are signed (credentials were given).
    pub fn signed(&self) -> Option<bool> {
        match self {
            Backend::S3 { credentials, .. } => Some(credentials.is_some()),
            _ => None,
        }
    }

    /// The object `name` into `dest`; `Ok(None)` when there is none, else
    /// its size. At most `limit` bytes are read (a hostile store cannot fill
    /// the disk).
    pub fn get(
        &self,
        t: &Timeouts,
        name: &str,
        dest: &Path,
        limit: u64,
    ) -> StoreResult<Option<u64>> {
        match self {
            Backend::Dir(root) => {
                let from = root.join(name);
                let mut f = match File::open(&from) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err(&format!("opening {}", from.display()), e)),
                };
                copy_limited(&mut f, dest, limit).map(Some)
            }
            Backend::Http(base) => http_get(t, &format!("{base}/{name}"), dest, limit),
            Backend::S3 {
                bucket,
                credentials,
                prefix,
            } => {
                let object = format!("{prefix}{name}");
                let url = bucket
                    .get_object(credentials.as_deref(), &object)
                    .sign(PRESIGN);
                http_get(t, url.as_str(), dest, limit)
            }
        }
    }

    /// Whether the object `name` exists.
    pub fn exists(&self, t: &Timeouts, name: &str) -> StoreResult<bool> {
        match self {
            Backend::Dir(root) => Ok(root.join(name).is_file()),
            Backend::Http(base) => http_head(t, &format!("{base}/{name}")),
            Backend::S3 {
                bucket,
                credentials,
                prefix,
            } => {
                let object = format!("{prefix}{name}");
                let url = bucket
                    .head_object(credentials.as_deref(), &object)
                    .sign(PRESIGN);
                http_head(t, url.as_str())
            }
        }
    }

    /// Write `file` as the object `name`. With `only_if_absent`, a
    /// conditional create (S3's `If-None-Match: *`, a hard link in a
    /// directory): an object already there is left alone.
    pub fn put(
        &self,
        t: &Timeouts,
        name: &str,
        file: &Path,
        only_if_absent: bool,
    ) -> StoreResult<Created> {
        match self {
            Backend::Dir(root) => dir_put(root, name, file, only_if_absent),
            Backend::Http(base) => Err(StoreError::Other(format!(
                "{base} is a read-only store (https://); use s3:// or file:// to write"
            ))),
            Backend::S3 {
                bucket,
                credentials,
                prefix,
            } => {
                let object = format!("{prefix}{name}");
                let mut action = bucket.put_object(credentials.as_deref(), &object);
                if only_if_absent {
                    action.headers_mut().insert("if-none-match", "*");
                }
                let url = action.sign(PRESIGN);
                // streamed from the file, with its length
                let body = File::open(file)
                    .map_err(|e| io_err(&format!("reading {}", file.display()), e))?;
                let mut req = agent(t).put(url.as_str());
                if only_if_absent {
                    req = req.header("if-none-match", "*");
                }
                let resp = req
                    .send(body)
                    .map_err(|e| StoreError::Unreachable(e.to_string()))?;
                let status = resp.status().as_u16();
                match status {
                    200..=299 => Ok(Created::Yes),
                    // 412: the object exists; 409: a concurrent conditional
                    // create is in progress (AWS): the other writer wins.
                    412 | 409 if only_if_absent => Ok(Created::AlreadyThere),
                    _ => Err(status_error(status, resp)),
                }
            }
        }
    }
}

fn agent(t: &Timeouts) -> ureq::Agent {
    crate::http::config()
        .timeout_connect(Some(t.connect))
        .timeout_recv_response(Some(t.response))
        .timeout_per_read(Some(t.response))
        .timeout_send_body(Some(t.response))
        .timeout_global(Some(t.object))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The error for an unexpected status, with the start of the server's answer
/// (S3's XML error code says why).
fn status_error(status: u16, resp: ureq::http::Response<ureq::Body>) -> StoreError {
    let mut body = String::new();
    let _ = resp
        .into_body()
        .as_reader()
        .take(2048)
        .read_to_string(&mut body);
    let body = s3_error_code(&body).unwrap_or_else(|| body.trim().chars().take(200).collect());
    if status == 401 || status == 403 {
        StoreError::Denied { status, body }
    } else {
        StoreError::Other(format!("HTTP {status}: {body}"))
    }
}

/// `<Code>AccessDenied</Code><Message>…</Message>` → `AccessDenied: …`.
fn s3_error_code(xml: &str) -> Option<String> {
    let tag = |t: &str| {
        let start = xml.find(&format!("<{t}>"))? + t.len() + 2;
        let end = xml[start..].find(&format!("</{t}>"))? + start;
        Some(xml[start..end].to_string())
    };
    let code = tag("Code")?;
    Some(match tag("Message") {
        Some(m) if !m.is_empty() => format!("{code}: {m}"),
        _ => code,
    })
}

fn http_get(t: &Timeouts, url: &str, dest: &Path, limit: u64) -> StoreResult<Option<u64>> {
    let resp = agent(t)
        .get(url)
        .call()
        .map_err(|e| StoreError::Unreachable(e.to_string()))?;
    match resp.status().as_u16() {
        200 => {
            let mut body = resp.into_body();
            copy_limited(&mut body.as_reader(), dest, limit).map(Some)
        }
        404 => Ok(None),
        s => Err(status_error(s, resp)),
    }
}

fn http_head(t: &Timeouts, url: &str) -> StoreResult<bool> {
    let resp = agent(t)
        .head(url)
        .call()
        .map_err(|e| StoreError::Unreachable(e.to_string()))?;
    match resp.status().as_u16() {
        200 => Ok(true),
        404 => Ok(false),
        s => Err(status_error(s, resp)),
    }
}

fn copy_limited(from: &mut dyn Read, dest: &Path, limit: u64) -> StoreResult<u64> {
    let mut out =
        File::create(dest).map_err(|e| io_err(&format!("creating {}", dest.display()), e))?;
    let n = io::copy(&mut from.take(limit + 1), &mut out)
        .map_err(|e| StoreError::Other(format!("the transfer broke off: {e}")))?;
    if n > limit {
        return Err(StoreError::Other(format!(
            "the object is larger than the {limit} bytes allowed"
        )));
    }
    Ok(n)
}

/// A directory store: the object is written beside its final name and then
/// renamed (a reader sees all of it or nothing); a conditional create
/// hard-links instead, which fails when the name exists (atomic on local
/// file systems and on NFS).
fn dir_put(root: &Path, name: &str, file: &Path, only_if_absent: bool) -> StoreResult<Created> {
    let dest = root.join(name);
    let parent = dest.parent().expect("an object name has a directory");
    fs::create_dir_all(parent).map_err(|e| io_err(&format!("creating {}", parent.display()), e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".xbuild-upload.")
        .tempfile_in(parent)
        .map_err(|e| io_err(&format!("creating a file in {}", parent.display()), e))?;
    fs::copy(file, tmp.path()).map_err(|e| io_err(&format!("writing {}", dest.display()), e))?;
    if only_if_absent {
        return match fs::hard_link(tmp.path(), &dest) {
            Ok(()) => Ok(Created::Yes),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Created::AlreadyThere),
            Err(e) => Err(io_err(&format!("creating {}", dest.display()), e)),
        };
    }
    tmp.persist(&dest)
        .map_err(|e| io_err(&format!("renaming into {}", dest.display()), e.error))?;
    Ok(Created::Yes)
}

/// `url` without the credentials a user may have written into it
/// (`https://user:secret@host/…` → `https://***@host/…`).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> S3Settings {
        S3Settings {
            endpoint: None,
            region: None,
            key_id: None,
            secret: None,
            session_token: None,
        }
    }

    #[test]
    fn urls_parse_into_backends_and_bad_ones_say_the_forms() {
        assert!(matches!(
            Backend::parse("file:///srv/c", none()),
            Ok(Backend::Dir(p)) if p == Path::new("/srv/c")
        ));
        assert!(Backend::parse("file://rel/c", none()).is_err());
        assert!(matches!(
            Backend::parse("https://cache.example/x/", none()),
            Ok(Backend::Http(u)) if u == "https://cache.example/x"
        ));
        let e = Backend::parse("ftp://x", none()).err().unwrap();
        assert!(e.contains("s3://BUCKET/PREFIX"), "{e}");
        let Ok(Backend::S3 { bucket, prefix, .. }) = Backend::parse(
            "s3://team/ci/x86",
            S3Settings {
                endpoint: Some("http://127.0.0.1:9000".into()),
                ..none()
            },
        ) else {
            panic!("an s3 backend")
        };
        assert_eq!(bucket.name(), "team");
        assert_eq!(prefix, "ci/x86/");
        assert!(Backend::parse("s3:///p", none()).is_err());
    }

    #[test]
    fn credentials_in_a_store_url_are_never_shown() {
        let check = |url: &str, shown: &str| assert_eq!(redact(url), shown);
        check(
            "https://user:s3cret@cache.example/x",
            "https://***@cache.example/x",
        );
        check("https://tok@cache.example", "https://***@cache.example");
        check("s3://bucket/prefix", "s3://bucket/prefix");
        check("file:///srv/c@x", "file:///srv/c@x");
        check("https://h/p@q", "https://h/p@q");
    }

    #[test]
    fn s3_error_codes_are_read_from_the_answer() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message></Error>";
        assert_eq!(
            s3_error_code(xml).as_deref(),
            Some("SignatureDoesNotMatch: bad sig")
        );
        assert_eq!(s3_error_code("plain"), None);
    }

    #[test]
    fn a_directory_store_creates_once_and_limits_reads() {
        let root = tempfile::tempdir().unwrap();
        let b = Backend::Dir(root.path().to_path_buf());
        let t = Timeouts {
            connect: Duration::from_secs(1),
            response: Duration::from_secs(1),
            object: Duration::from_secs(1),
        };
        let src = root.path().join("src");
        fs::write(&src, b"first").unwrap();
        assert_eq!(b.put(&t, "m/k", &src, true).unwrap(), Created::Yes);
        fs::write(&src, b"second").unwrap();
        assert_eq!(b.put(&t, "m/k", &src, true).unwrap(), Created::AlreadyThere);
        let out = root.path().join("out");
        assert_eq!(b.get(&t, "m/k", &out, 100).unwrap(), Some(5));
        assert_eq!(fs::read(&out).unwrap(), b"first");
        assert!(b.get(&t, "m/k", &out, 3).is_err(), "over the limit");
        assert_eq!(b.get(&t, "m/none", &out, 100).unwrap(), None);
        assert!(b.exists(&t, "m/k").unwrap());
        // no upload temp file is left beside the object
        let names: Vec<_> = fs::read_dir(root.path().join("m"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["k"]);
    }

    /// A server on loopback that answers every GET with a 200 and a body of
    /// `len` bytes, sent `chunk` bytes every `every`.
    fn server(len: usize, chunk: usize, every: Duration) -> String {
        use std::io::Write;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
                    if s.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    let mut sent = 0;
                    while sent < len {
                        let n = chunk.min(len - sent);
                        if s.write_all(&vec![b'x'; n]).is_err() {
                            return;
                        }
                        sent += n;
                        std::thread::sleep(every);
                    }
                });
            }
        });
        format!("http://127.0.0.1:{port}")
    }

    #[test]
    fn a_dripping_server_fails_at_the_deadline_and_a_big_answer_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("obj");
        let t = Timeouts {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(5),
            object: Duration::from_secs(2),
        };
        // a byte every 200 ms: each read is quick, the whole never ends in time
        let b = Backend::Http(server(1000, 1, Duration::from_millis(200)));
        let started = std::time::Instant::now();
        assert!(b.get(&t, "blobs/x", &out, 1 << 20).is_err());
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
        // more than the manifest said: cut off, an error
        let b = Backend::Http(server(1 << 20, 64 << 10, Duration::ZERO));
        let e = b.get(&t, "blobs/x", &out, 1000).unwrap_err();
        assert!(e.to_string().contains("larger than the 1000 bytes"), "{e}");
        assert!(fs::metadata(&out).unwrap().len() <= 1001);
        // within both: fine
        let b = Backend::Http(server(5000, 1000, Duration::ZERO));
        assert_eq!(b.get(&t, "blobs/x", &out, 5000).unwrap(), Some(5000));
    }
}
