//! The environment of the pinned cargo: an explicit list, never the user's
//! environment. Each kind of cargo run (fetching, building std, a sealed
//! build) starts from [`CargoEnv::toolchain`] and adds only what it needs.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Result;

use crate::cache::Cache;
use crate::process::Cmd;
use crate::targets::Target;
use crate::toolchain::Toolchain;
use crate::{env, zigcc};

pub struct CargoEnv {
    pub vars: Vec<(String, OsString)>,
}

impl CargoEnv {
    /// What every cargo child gets: the pinned toolchain, xbuild's cargo
    /// home and zig's cache (as the child sees them).
    fn toolchain(
        tc: &Toolchain,
        cargo_home: &Path,
        zig_cache: &Path,
        path_tail: OsString,
    ) -> CargoEnv {
        let mut path = OsString::new();
        // the pinned build tools (CMake, Ninja) come before the host's
        if let Some(dir) = tc.tools_bin() {
            path.push(dir);
            path.push(":");
        }
        if let Some(dir) = tc.rustc().parent() {
            path.push(dir);
            path.push(":");
        }
        path.push(path_tail);
        let mut vars: Vec<(String, OsString)> = vec![
            ("PATH".into(), path),
            ("RUSTC".into(), tc.rustc().into()),
            // cargo runs through the loader: tell it its own path (what build
            // scripts get as CARGO)
            ("CARGO".into(), tc.cargo().into()),
            ("CARGO_HOME".into(), cargo_home.into()),
            (env::XBUILD_ZIG.into(), tc.zig().into()),
            (env::XBUILD_ZIG_CACHE.into(), zig_cache.into()),
        ];
        if let Some(dir) = tc.libclang_dir() {
            vars.push(("LIBCLANG_PATH".into(), dir.into()));
        }
        if tc.tools_bin().is_some() {
            // the `cmake` crate's generator: the pinned Ninja, not the host's make
            vars.push(("CMAKE_GENERATOR".into(), "Ninja".into()));
        }
        vars.extend(env::display_for_cargo());
        CargoEnv { vars }
    }

    /// For work that needs the network (`cargo fetch`, std's dependencies):
    /// the user's PATH, HOME and proxy settings, and the host's CA
    /// certificates (the pinned OpenSSL looks where Debian keeps them; cargo
    /// is told where this host does). `cargo_home` as cargo sees it.
    pub fn for_fetch(cache: &Cache, tc: &Toolchain, cargo_home: &Path) -> CargoEnv {
        let user = env::passthrough_for_fetchers();
        let path = user
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or_else(|| OsString::from("/usr/bin:/bin"), |(_, v)| v.clone());
        let mut e = CargoEnv::toolchain(tc, cargo_home, &cache.zig_cache(), path);
        let have: Vec<String> = e.vars.iter().map(|(k, _)| k.clone()).collect();
        e.vars
            .extend(user.into_iter().filter(|(k, _)| !have.contains(k)));
        if let Some(bundle) = crate::http::cargo_ca_bundle() {
            e.set("CARGO_HTTP_CAINFO", bundle);
        }
        e
    }

    /// For a cargo in a sandbox with network: the CA bundle where the
    /// sandbox shows it (see `http::CA_IN_SANDBOX`).
    pub fn in_network_sandbox(&mut self) {
        if crate::http::cargo_ca_bundle().is_some() {
            self.set("CARGO_HTTP_CAINFO", crate::http::CA_IN_SANDBOX);
            // and OpenSSL's own default (libgit2's fetches), where the user
            // names one: the host's path may not be there
            if self.vars.iter().any(|(k, _)| k == "SSL_CERT_FILE") {
                self.set("SSL_CERT_FILE", crate::http::CA_IN_SANDBOX);
            }
        }
    }

    /// A sealed build's environment: nothing from the user's but how to show
    /// progress; the cargo home, zig's cache, `home` and `tmp` (the sealed
    /// directory's) as the build sees them.
    pub fn sealed(
        tc: &Toolchain,
        cargo_home: &Path,
        zig_cache: &Path,
        home: &Path,
        tmp: &Path,
        epoch: &str,
    ) -> CargoEnv {
        let mut e = CargoEnv::toolchain(
            tc,
            cargo_home,
            zig_cache,
            "/usr/local/bin:/usr/bin:/bin".into(),
        );
        e.vars.extend([
            ("HOME".to_string(), home.into()),
            ("TMPDIR".to_string(), tmp.into()),
            ("TZ".to_string(), "UTC".into()),
            ("LC_ALL".to_string(), "C".into()),
            ("SOURCE_DATE_EPOCH".to_string(), epoch.into()),
            // incremental state is not byte-for-byte reproducible, and the
            // kept target dirs already give reuse
            ("CARGO_INCREMENTAL".to_string(), "0".into()),
        ]);
        e
    }

    /// For a cargo that runs on the host, not in a sandbox: the toolchain on
    /// the build root's loader and libraries ([`Toolchain::outside_env`]).
    pub fn outside_sandbox(&mut self, tc: &Toolchain) {
        for (k, v) in tc.outside_env() {
            self.set(&k, v);
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<OsString>) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_string(), value.into()));
    }

    /// The pinned cargo with exactly this environment.
    pub fn cargo_command(&self, tc: &Toolchain) -> Cmd {
        let mut cmd = Cmd::new(tc.cargo());
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Make `target`'s C and C++ compilers, archiver and linker the zig
    /// wrappers, and give CMake and bindgen what they need to cross-compile;
    /// `seen` gives where the build sees a path of the cache's.
    pub fn add_target(
        &mut self,
        cache: &Cache,
        tc: &Toolchain,
        target: &Target,
        seen: &dyn Fn(&Path) -> std::path::PathBuf,
    ) -> Result<()> {
        let shims =
            zigcc::install_shims(cache, target, &tc.zig(), &tc.system())?.seen_through(seen);
        let under = target.rust.replace('-', "_");
        let t = target.cargo_env_name();
        self.set(&format!("CARGO_TARGET_{t}_LINKER"), shims.cc.clone());
        self.set(&format!("CC_{under}"), shims.cc);
        self.set(&format!("CXX_{under}"), shims.cxx);
        self.set(&format!("AR_{under}"), shims.ar);
        self.set(&format!("RANLIB_{under}"), shims.ranlib);
        self.set(
            &format!("CMAKE_TOOLCHAIN_FILE_{under}"),
            shims.cmake_toolchain,
        );
        // one target per cargo run, so one site file (see zigcc::config_site)
        self.set("CONFIG_SITE", shims.config_site);
        self.set(
            &format!("BINDGEN_EXTRA_CLANG_ARGS_{under}"),
            zigcc::bindgen_args(target, &tc.zig()),
        );
        // build scripts and proc macros are linked for the host: by zig
        // against the build root's glibc; without a build root, by the
        // host's `cc`, or by zig where there is none
        if let Some(host) = zigcc::host_linker(cache, tc.root_glibc())?.map(|h| seen(&h)) {
            let h = zigcc::HOST.replace('-', "_");
            self.set(
                &format!("CARGO_TARGET_{}_LINKER", h.to_ascii_uppercase()),
                host.clone(),
            );
            self.set(&format!("CC_{h}"), host);
        }
        Ok(())
    }
}
