//! tracing on stderr; stdout is kept for data.

use tracing_subscriber::EnvFilter;

use crate::env;

pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "xbuild=info,warn",
        2 => "xbuild=debug,info",
        _ => "trace",
    };
    let filter = env::log_filter()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
