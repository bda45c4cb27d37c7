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
use std::sync::{Mutex, OnceLock};

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

/// The user and group builds run as in the sandbox (`bwrap --uid/--gid`):
/// the same on every host, whoever runs xbuild (the build root's
/// `/etc/passwd` names it, `toolchain::root`).
pub const BUILD_UID: u32 = 1000;

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
        if network && let Some(ca) = crate::http::cargo_ca_bundle() {
            s.ro_at(&ca, Path::new(crate::http::CA_IN_SANDBOX));
        }
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
        for top in crate::unpack::MERGED {
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

    /// `key=value` in the sandboxed program's environment (set by
    /// bubblewrap after it started, so not in its own).
    pub fn setenv(&mut self, key: &str, value: &OsStr) {
        self.args.push("--setenv".into());
        self.args.push(key.into());
        self.args.push(value.into());
    }

    pub fn chdir(&mut self, dir: &Path) {
        self.args.push("--chdir".into());
        self.args.push(dir.into());
    }

    /// The command that runs `program` in the sandbox (its environment is
    /// the `Cmd`'s: bwrap passes its own on).
    pub fn command(self, program: &OsStr) -> Cmd {
        self.command_with(&launcher(), program)
    }

    fn command_with(self, launcher: &Launcher, program: &OsStr) -> Cmd {
        let argv = launcher.argv();
        let mut cmd = Cmd::new(&argv[0]);
        cmd.args(&argv[1..])
            .args(self.finish())
            .arg(program)
            .inherit(crate::process::Inherited::BUILD);
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
        let mut v = launcher().argv();
        v.extend(self.finish());
        v
    }
}

/// How bubblewrap is started.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Launcher {
    /// The host's (`XBUILD_BWRAP`, else `bwrap` on `PATH`).
    Host(PathBuf),
    /// The build root's, started through the root's own loader and
    /// libraries: no glibc, loader or bubblewrap needed from the host.
    Pinned(PinnedBwrap),
}

/// The build root's bubblewrap, as [`offer_pinned`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedBwrap {
    pub loader: PathBuf,
    pub library_path: Vec<PathBuf>,
    pub bwrap: PathBuf,
    /// The root itself: the probe's system.
    pub root: PathBuf,
}

impl Launcher {
    fn argv(&self) -> Vec<OsString> {
        match self {
            Launcher::Host(p) => vec![p.clone().into_os_string()],
            Launcher::Pinned(p) => {
                let libs = std::env::join_paths(&p.library_path).unwrap_or_default();
                vec![
                    p.loader.clone().into_os_string(),
                    "--library-path".into(),
                    libs,
                    p.bwrap.clone().into_os_string(),
                ]
            }
        }
    }
}

/// The host's bubblewrap: `XBUILD_BWRAP` when set (then only it), else
/// `bwrap` found on `PATH` (None: not there).
fn host_bwrap() -> Option<PathBuf> {
    env::var_os(env::XBUILD_BWRAP)
        .map(PathBuf::from)
        .or_else(|| which::which("bwrap").ok())
}

/// The build root's bubblewrap, offered by the toolchain once the root is
/// installed: used when the host's cannot be had (none installed, or one
/// the host's policy does not let make namespaces where the pinned one may).
static PINNED: Mutex<Option<(PinnedBwrap, Option<Probe>)>> = Mutex::new(None);

/// A probe's answer: `Err` says why there is no sandbox.
type Probe = Result<(), String>;

/// Offer the build root's bubblewrap (see [`PINNED`]). `XBUILD_BWRAP` set
/// means that one and no other.
pub fn offer_pinned(pinned: PinnedBwrap) {
    if env::var_os(env::XBUILD_BWRAP).is_some() {
        return;
    }
    let mut slot = PINNED.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_some_and(|(p, _)| *p == pinned) {
        return;
    }
    *slot = Some((pinned, None));
}

/// The host's probe, once per process.
fn host_probe() -> &'static Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        let Some(bwrap) = host_bwrap() else {
            return Err(format!(
                "bubblewrap is not installed (no `bwrap` on PATH): {INSTALL}"
            ));
        };
        probe(&Launcher::Host(bwrap.clone()), &System::Host, "/bin/true").map_err(|e| {
            if e.status.is_none() {
                format!(
                    "bubblewrap (`{}`) cannot be run ({}): {INSTALL}",
                    bwrap.display(),
                    e.stderr.trim()
                )
            } else {
                no_namespace(&e.stderr)
            }
        })
    })
}

const INSTALL: &str = "install it (Debian and Ubuntu: `apt-get install bubblewrap`; \
     Fedora: `dnf install bubblewrap`; Arch: `pacman -S bubblewrap`)";

fn probe(
    launcher: &Launcher,
    system: &System,
    program: &str,
) -> Result<(), crate::process::ProcessError> {
    let mut cmd = Sandbox::new(system, false).command_with(launcher, OsStr::new(program));
    cmd.env("PATH", super::SYSTEM_PATH);
    cmd.output().map(|_| ())
}

/// The pinned bubblewrap's probe (run once per root), when one is offered.
fn pinned_probe() -> Option<(PinnedBwrap, Result<(), String>)> {
    let mut slot = PINNED.lock().unwrap_or_else(|e| e.into_inner());
    let (pinned, result) = slot.as_mut()?;
    let result = result.get_or_insert_with(|| {
        let system = System::Root(pinned.root.clone());
        probe(&Launcher::Pinned(pinned.clone()), &system, "/usr/bin/true").map_err(|e| {
            if e.status.is_none() {
                format!(
                    "the build root's bubblewrap cannot be run: {}",
                    e.stderr.trim()
                )
            } else {
                no_namespace(&e.stderr)
            }
        })
    });
    Some((pinned.clone(), result.clone()))
}

/// The bubblewrap sandboxes start with: the host's when it works, else the
/// build root's when offered and it works, else the host's (whose failure
/// [`available`] reports).
fn launcher() -> Launcher {
    let host = || Launcher::Host(host_bwrap().unwrap_or_else(|| PathBuf::from("bwrap")));
    if host_probe().is_ok() {
        return host();
    }
    match pinned_probe() {
        Some((p, Ok(()))) => Launcher::Pinned(p),
        _ => host(),
    }
}

/// Which bubblewrap sandboxes start with, for people.
pub fn which() -> String {
    match launcher() {
        Launcher::Host(p) => format!("the host's, {}", p.display()),
        Launcher::Pinned(p) => format!("the build root's, {}", p.bwrap.display()),
    }
}

/// Whether a sandbox can be had here: `Err` says precisely why not and what
/// to do. Probed by running `true` in the base sandbox: with the host's
/// bubblewrap once per process, and with the build root's, when the
/// toolchain offers it, once per root.
pub fn available() -> Result<(), String> {
    let host = host_probe();
    if host.is_ok() {
        return Ok(());
    }
    match pinned_probe() {
        Some((_, Ok(()))) => Ok(()),
        Some((_, Err(pinned))) if host_bwrap_missing() => Err(pinned),
        _ => host.clone(),
    }
}

/// No bubblewrap on the host at all (so the pinned one's failure is the
/// one to report).
fn host_bwrap_missing() -> bool {
    env::var_os(env::XBUILD_BWRAP).is_none() && which::which("bwrap").is_err()
}

/// bubblewrap ran but could not make its namespaces: say why, from what the
/// kernel tells, and what to do.
fn no_namespace(stderr: &str) -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .ok()
    };
    let cause = if chrooted() {
        "xbuild runs in a chroot, and the kernel refuses user namespaces to a chrooted process: \
         enter the root with a mount namespace and pivot_root instead (`bwrap --bind ROOT / --dev /dev --proc /proc …`, \
         `unshare --mount --root`, systemd-nspawn, a container)"
            .to_string()
    } else if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        "user namespaces are disabled (user.max_user_namespaces is 0): `sysctl -w user.max_user_namespaces=15000`"
            .to_string()
    } else if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone is 0): \
         `sysctl -w kernel.unprivileged_userns_clone=1`"
            .to_string()
    } else if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1")
    {
        "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10 and later): allow bwrap in AppArmor \
         (the `bwrap-userns-restrict` profile) or `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`"
            .to_string()
    } else {
        "user namespaces are restricted here. Containers: run with user namespaces allowed \
         (e.g. Docker's default seccomp profile blocks them: `--security-opt seccomp=unconfined`); \
         Debian before 11: `sysctl -w kernel.unprivileged_userns_clone=1`"
            .to_string()
    };
    format!(
        "bubblewrap could not create a user namespace: {}\n  {cause}",
        stderr.trim()
    )
}

/// Whether this process's root is not its mount namespace's (a chroot):
/// `/` and `/proc/self/root/..`'s mount root differ from the real root,
/// which shows in `/proc/self/mountinfo` as no mount at `/`.
fn chrooted() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    !info.lines().any(|l| l.split(' ').nth(4) == Some("/"))
}
