//! The liveness interface (`[bgp] liveness_iface`): a TAP interface that
//! exists, link up, exactly as long as this process holds it open.
//!
//! It is not persistent (no `TUNSETPERSIST`), so when Moat exits for any
//! reason, `kill -9` included, the kernel closes the descriptor and
//! deletes the interface. BIRD's static routes for the VIPs point via it
//! with `check link`, so BIRD withdraws them by itself, without Moat
//! asking (docs/cluster.md, "The liveness interface"). Nothing is ever
//! read from or written to it; the kernel drops what queues on it.
//!
//! Creating it needs `CAP_NET_ADMIN`; without it, start-up fails naming
//! the key and the capability.

use anyhow::Context;

/// The open interface; dropping it deletes the interface.
pub struct Liveness {
    name: String,
    // Held, never used: its descriptor keeps the interface alive.
    _dev: tun_rs::SyncDevice,
}

impl std::fmt::Debug for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Liveness")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Liveness {
    /// Creates TAP interface `name`, link up. Fails when it exists
    /// already and another process holds it, or without `CAP_NET_ADMIN`.
    pub fn open(name: &str) -> anyhow::Result<Liveness> {
        let dev = tun_rs::DeviceBuilder::new()
            .name(name)
            .layer(tun_rs::Layer::L2)
            .enable(true)
            .build_sync()
            .map_err(|e| explain(name, e))?;
        let got = dev.name().with_context(|| format!("bgp.liveness_iface {name}"))?;
        anyhow::ensure!(
            got == name,
            "bgp.liveness_iface {name}: the kernel named the interface {got}"
        );
        Ok(Liveness {
            name: name.to_string(),
            _dev: dev,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

fn explain(name: &str, e: std::io::Error) -> anyhow::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (creating a TAP interface needs CAP_NET_ADMIN: run as root, or give the service \
             AmbientCapabilities=CAP_NET_ADMIN)"
        }
        Some(libc::EBUSY) => " (an interface of that name exists and another process holds it: another Moat?)",
        Some(libc::EINVAL) => " (an interface of that name exists and is not a TAP interface)",
        Some(libc::ENOENT) | Some(libc::ENODEV) => " (no /dev/net/tun: load the tun module)",
        _ => "",
    };
    anyhow::anyhow!("bgp.liveness_iface {name}: cannot create the TAP interface: {e}{hint}")
}
