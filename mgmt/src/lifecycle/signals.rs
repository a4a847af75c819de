//! The signals a node answers: SIGINT and SIGTERM stop it (with `[bgp]`,
//! the first one drains it: see [`super`]), SIGHUP reloads its config
//! file. Handlers only set flags; the management loop acts.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;

/// The process's stop and reload requests.
#[derive(Debug, Clone)]
pub struct Signals {
    /// SIGINT or SIGTERM arrived (a second one while it is set kills the
    /// process the default way, for a stuck shutdown; a drain clears it,
    /// so that a second signal during a drain stops the node cleanly).
    pub stop: Arc<AtomicBool>,
    /// SIGHUP arrived since the last reload.
    pub hup: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> anyhow::Result<Signals> {
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_conditional_default(sig, Arc::clone(&stop)).context("signal handler")?;
            signal_hook::flag::register(sig, Arc::clone(&stop)).context("signal handler")?;
        }
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup)).context("signal handler")?;
        Ok(Signals { stop, hup })
    }
}
