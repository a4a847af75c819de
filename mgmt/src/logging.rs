//! Logs: `tracing` events with a level and a timestamp, to stderr as text
//! (the default) or as one JSON object per line (`--log-format json`), or
//! straight to the journal when systemd started the process with stderr
//! connected to it (`JOURNAL_STREAM` names stderr's device and inode; see
//! `systemd.exec(5)`), falling back to stderr when the journal's socket
//! cannot be used. The level filter comes from `MOAT_LOG` (the
//! `EnvFilter` syntax: `debug`, `mgmt=debug,info`), `info` by default.
//!
//! The CLI's own output (`check`'s line, `scrub`'s summary, the live line
//! of `run --live` and `demo`) stays on stdout, unformatted.

use std::os::fd::AsFd;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Environment variable holding the log filter.
pub const FILTER_ENV: &str = "MOAT_LOG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text lines on stderr, or the journal under systemd.
    #[default]
    Text,
    /// One JSON object per line on stderr.
    Json,
}

/// True when stderr is the journal stream systemd set up for this service.
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(st) = rustix::fs::fstat(std::io::stderr().as_fd()) else {
        return false;
    };
    dev.parse::<u64>().is_ok_and(|d| d == st.st_dev) && ino.parse::<u64>().is_ok_and(|i| i == st.st_ino)
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_env(FILTER_ENV).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the process's logger (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let journal = format == LogFormat::Text && stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref());
    if journal {
        if let Ok(layer) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry().with(filter()).with(layer).try_init();
            return;
        }
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => tracing_subscriber::registry().with(filter()).with(fmt).try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter())
            .with(fmt.json().flatten_event(true))
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_used_only_when_it_is_stderr() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(Some("1:2")));
        let st = rustix::fs::fstat(std::io::stderr().as_fd()).unwrap();
        assert!(stderr_is_journal(Some(&format!("{}:{}", st.st_dev, st.st_ino))));
    }
}
