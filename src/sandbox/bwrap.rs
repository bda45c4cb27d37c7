//! The sandbox: bubblewrap (`bwrap`, Flatpak's sandbox), which gives root
//! and ordinary users alike a user namespace with their own mount, network,
//! pid, ipc and uts namespaces, and no capabilities.
//!
//! A sandboxed process sees, and nothing else:
//! - its [`System`]: the pinned build root's `/usr` and `/etc`, read-only,
//!   with the links of a merged `/usr` (`/bin`, `/lib`...), as the user and
//!   group [`BUILD_UID`] under the host name `xbuild`; or, with pins that
//!   have no build root, the host's system directories (`/usr`, `/bin`,
//!   `/sbin`, `/lib*`), read-only, and of `/etc` only [`ETC`] (the loader's
//!   cache and config, the alternatives links, users and groups for tools
//!   that look themselves up, perl's config); either way, with network, the
//!   host's [`ETC_NET`] (name resolution and CA certificates);
//! - a private `/tmp`, `/dev` (null, zero, random, tty...) and `/proc` of its
//!   own pid namespace;
//! - the paths its caller lists, read-only or writable.
//!
//! It runs in a session of its own, with no controlling terminal, and its
//! output reaches the user's terminal only through xbuild's relay
//! (`process::terminal_safe`). It has no network unless asked, no home directory, nothing under `/srv`,
//! `/opt`, `/mnt`, `/media`, `/var`, `/root`, `/home`, and no capabilities:
//! even when xbuild runs as root, the build is root only in its own user
//! namespace, and the files it can change are the ones bound writable.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::env;
use crate::process::Cmd;

/// What of `/etc` every sandbox gets.
const ETC: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/perl",
];

/// What of `/etc` a sandbox with network also gets (cargo fetching std's
/// dependencies: name resolution, proxies' certificates).
const ETC_NET: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/pki",
];

/// The host's system directories, read-only (or as the links they are).
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The system directories a sandbox gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum System {
    /// The host's: for pins without a build root, and the probe.
    Host,
    /// The pinned build root installed at this path (see `toolchain::root`).
    Root(PathBuf),
}

pub use crate::toolchain::root::BUILD_UID;

/// A sandbox being described: bwrap's arguments.
pub struct Sandbox {
    args: Vec<OsString>,
}

impl Sandbox {
    /// The base sandbox: nothing but the system directories, a private
    /// `/tmp`, `/dev`, `/proc`; network only when `network`.
    pub fn new(system: &System, network: bool) -> Sandbox {
        let mut s = Sandbox { args: Vec::new() };
        // a new session: no controlling terminal, so no TIOCSTI into the
        // user's, and its output reaches the terminal only through xbuild
        s.push([
            "--unshare-all",
            "--new-session",
            "--die-with-parent",
            "--cap-drop",
            "ALL",
        ]);
        if network {
            s.push(["--share-net"]);
        }
        match system {
            System::Host => s.host_system(network),
            System::Root(root) => s.root_system(root, network),
        }
        s.push(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        s
    }

    fn host_system(&mut self, network: bool) {
        let s = self;
        for dir in SYSTEM {
            let p = Path::new(dir);
            match std::fs::read_link(p) {
                Ok(target) => {
                    s.args.push("--symlink".into());
                    s.args.push(target.into());
                    s.args.push(p.into());
                }
                Err(_) if p.is_dir() => s.ro(p),
                Err(_) => {}
            }
        }
        for f in ETC.iter().chain(if network { ETC_NET } else { &[] }) {
            s.push(["--ro-bind-try", f, f]);
        }
    }

    /// The build root's `usr` and `etc`, its top-level links, and the
    /// host's network files over the root's placeholders.
    fn root_system(&mut self, root: &Path, network: bool) {
        let uid = BUILD_UID.to_string();
        self.push(["--unshare-user", "--uid", &uid, "--gid", &uid]);
        self.push(["--hostname", "xbuild"]);
        for dir in ["usr", "etc"] {
            self.ro_at(&root.join(dir), &Path::new("/").join(dir));
        }
        for top in crate::toolchain::unpack::MERGED {
            let at = root.join(top);
            if let Ok(target) = std::fs::read_link(&at) {
                self.args.push("--symlink".into());
                self.args.push(target.into());
                self.args.push(Path::new("/").join(top).into());
            }
        }
        if network {
            for f in ETC_NET {
                self.push(["--ro-bind-try", f, f]);
            }
        }
    }

    fn push<const N: usize>(&mut self, args: [&str; N]) {
        self.args.extend(args.iter().map(OsString::from));
    }

    fn bind_op(&mut self, op: &str, from: &Path, to: &Path) {
        self.args.push(op.into());
        self.args.push(from.into());
        self.args.push(to.into());
    }

    /// `path`, read-only, at the same path.
    pub fn ro(&mut self, path: &Path) {
        self.bind_op("--ro-bind", path, path);
    }

    /// `from`, read-only, at `to`.
    pub fn ro_at(&mut self, from: &Path, to: &Path) {
        self.bind_op("--ro-bind", from, to);
    }

    /// `path`, writable, at the same path.
    pub fn rw(&mut self, path: &Path) {
        self.bind_op("--bind", path, path);
    }

    /// `from`, writable, at `to`.
    pub fn bind(&mut self, from: &Path, to: &Path) {
        self.bind_op("--bind", from, to);
    }

    pub fn chdir(&mut self, dir: &Path) {
        self.args.push("--chdir".into());
        self.args.push(dir.into());
    }

    /// The command that runs `program` in the sandbox (its environment is
    /// the `Cmd`'s: bwrap passes its own on).
    pub fn command(self, program: &OsStr) -> Cmd {
        let mut cmd = Cmd::new(bwrap_path());
        cmd.args(self.finish()).arg(program);
        cmd
    }

    /// The arguments, ending with the root made read-only (bubblewrap's root
    /// is a tmpfs holding the mount points: nothing is written there) and `--`.
    fn finish(mut self) -> Vec<OsString> {
        self.push(["--remount-ro", "/", "--"]);
        self.args
    }

    /// The argv prefix that runs a program in the sandbox.
    pub fn prefix(self) -> Vec<OsString> {
        let mut v = vec![bwrap_path().into_os_string()];
        v.extend(self.finish());
        v
    }
}

fn bwrap_path() -> PathBuf {
    env::var_os(env::XBUILD_BWRAP).map_or_else(|| PathBuf::from("bwrap"), PathBuf::from)
}

/// Whether a sandbox can be had here: `Err` says precisely why not and what
/// to do. Probed once per process, by running `true` in the base sandbox.
pub fn available() -> Result<(), &'static str> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let mut cmd = Sandbox::new(&System::Host, false).command(OsStr::new("/bin/true"));
        cmd.env("PATH", super::SYSTEM_PATH);
        match cmd.output() {
            Ok(_) => Ok(()),
            Err(e) if e.status.is_none() => Err(format!(
                "bubblewrap (`{}`) cannot be run ({}): install it (Debian and Ubuntu: `apt-get install bubblewrap`; \
                 Fedora: `dnf install bubblewrap`; Arch: `pacman -S bubblewrap`)",
                bwrap_path().display(),
                e.stderr.trim()
            )),
            Err(e) => Err(format!(
                "bubblewrap could not create a user namespace: {}\n  \
                 user namespaces are restricted on this system. Debian before 11: `sysctl -w kernel.unprivileged_userns_clone=1`; \
                 Ubuntu 23.10 and later: allow bwrap in AppArmor (the `bwrap-userns-restrict` profile) or `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; \
                 containers: run with user namespaces allowed (e.g. Docker's default seccomp profile blocks them: `--security-opt seccomp=unconfined`)",
                e.stderr.trim()
            )),
        }
    });
    probe.as_ref().map(|_| ()).map_err(|s| s.as_str())
}
