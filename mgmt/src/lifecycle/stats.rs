//! The `--stats` file and the errors of management-side writes: counted
//! ([`Counters::count_mgmt_error`]), logged at most once a minute, never a
//! reason to stop the node.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::metrics::Counters;
use crate::node::Node;
use crate::persist;

/// Writes the `--stats` file: [`Node::stats_json`] plus the management
/// plane's own error count, replaced whole ([`persist::write_replace`]).
pub fn write_stats(node: &Node, counters: &Counters, path: &Path) -> anyhow::Result<()> {
    let mut v = node.stats_json();
    v["mgmt_errors"] = serde_json::json!(counters.mgmt_errors());
    let text = serde_json::to_string_pretty(&v)?;
    persist::write_replace(path, text.as_bytes(), 0o644).with_context(|| format!("--stats {}", path.display()))
}

/// Rate-limited logging of a repeated management error: the first at once,
/// then at most one line a minute with the count since, and a line when it
/// works again.
#[derive(Debug, Default)]
pub struct ErrorLog {
    failing: bool,
    last: Option<Instant>,
    since: u64,
}

/// The shortest time between two lines about the same failure.
pub const ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

impl ErrorLog {
    /// Counts and logs `res` (an attempt to write `path`).
    pub fn note(&mut self, path: &Path, res: anyhow::Result<()>, counters: &Counters) {
        match res {
            Ok(()) => {
                if self.failing {
                    tracing::info!("{}: writes work again", path.display());
                }
                *self = ErrorLog::default();
            }
            Err(e) => {
                let total = counters.count_mgmt_error();
                self.failing = true;
                self.since += 1;
                let due = match self.last {
                    None => true,
                    Some(t) => t.elapsed() >= ERROR_LOG_EVERY,
                };
                if due {
                    tracing::error!(
                        "{e:#} ({} failure(s) since the last line, {total} in all; \
                         scrubbing goes on, trying again every second)",
                        self.since
                    );
                    self.last = Some(Instant::now());
                    self.since = 0;
                }
            }
        }
    }
}
