//! `moat drain --config FILE`: asks the running node of FILE to drain
//! (`POST /api/v1/drain` on its API, with its token): it withdraws its BGP
//! announcement at once, keeps scrubbing `[bgp] drain_secs`, then stops
//! with exit status 0. `--wait` returns only once the node's API is gone
//! (bounded by `drain_secs` plus [`WAIT_MARGIN`]).
//!
//! The API's address is `[mgmt] listen` (a wildcard address is reached on
//! loopback), or `--api`; the token comes from where the node took it:
//! `[mgmt] token_file`, `$MOAT_API_TOKEN`, else the generated
//! `<state_dir>/api.token`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::api::auth::{GENERATED_FILE, TOKEN_ENV};
use crate::config::{api_token, read_token_file, Config};

/// How long `--wait` waits beyond `drain_secs` for the node to stop.
pub const WAIT_MARGIN: Duration = Duration::from_secs(30);

/// One request's timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `moat drain`.
#[derive(clap::Args, Debug)]
pub struct DrainArgs {
    /// Config file of the running node (its `[mgmt] listen`, token and `[bgp]`).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// The node's API address, when not `[mgmt] listen` (e.g. `127.0.0.1:9180`).
    #[arg(long, value_name = "ADDR")]
    pub api: Option<SocketAddr>,
    /// Return only once the node has stopped (its API no longer answers).
    #[arg(long)]
    pub wait: bool,
}

pub fn run(args: &DrainArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    let bgp = cfg.bgp.as_ref().with_context(|| {
        format!(
            "{}: no [bgp] section: the node announces nothing to withdraw (stop it with SIGTERM)",
            cfg.label()
        )
    })?;
    let addr = api_addr(&cfg, args.api)?;
    let token = token(&cfg)?;
    let agent = ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).redirects(0).build();
    let url = format!("http://{addr}/api/v1/drain");
    match agent.post(&url).set("Authorization", &format!("Bearer {token}")).call() {
        Ok(_) => {}
        Err(ureq::Error::Status(code, r)) => {
            let body = r.into_string().unwrap_or_default();
            anyhow::bail!("{url} answered {code}: {}", body.trim());
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("{url}: is the node running?"))),
    }
    println!(
        "{}: draining: announcement withdrawn, the node stops in {} s",
        cfg.node.name, bgp.drain_secs
    );
    if args.wait {
        let limit = Duration::from_secs(bgp.drain_secs.into()) + WAIT_MARGIN;
        wait_gone(&agent, addr, limit)?;
        println!("{}: stopped", cfg.node.name);
    }
    Ok(())
}

/// The API's address: `--api`, else `[mgmt] listen` (a wildcard address
/// reached on loopback).
fn api_addr(cfg: &Config, flag: Option<SocketAddr>) -> anyhow::Result<SocketAddr> {
    if let Some(a) = flag {
        return Ok(a);
    }
    anyhow::ensure!(
        cfg.mgmt.enabled,
        "{}: mgmt.enabled = false: the node has no API to ask",
        cfg.label()
    );
    let mut a = cfg.mgmt.listen;
    anyhow::ensure!(
        a.port() != 0,
        "{}: mgmt.listen has port 0 (any free port): give the node's address with --api",
        cfg.label()
    );
    if a.ip().is_unspecified() {
        a.set_ip(match a.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(a)
}

/// The node's token, from where the node took it.
fn token(cfg: &Config) -> anyhow::Result<String> {
    if let Some(p) = cfg.token_file() {
        let t = read_token_file(&p).map_err(anyhow::Error::msg)?;
        return Ok(api_token(&t).map_err(anyhow::Error::msg)?.to_string());
    }
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        return Ok(api_token(&t)
            .map_err(|r| anyhow::anyhow!("${TOKEN_ENV}: {r}"))?
            .to_string());
    }
    let p = cfg.state_dir().join(GENERATED_FILE);
    let t = read_token_file(&p).map_err(|r| {
        anyhow::anyhow!("{r} (no mgmt.token_file nor ${TOKEN_ENV}: the token the node generated is read from there)")
    })?;
    Ok(api_token(&t).map_err(anyhow::Error::msg)?.to_string())
}

/// Polls the health route until the API stops answering, at most `limit`.
fn wait_gone(agent: &ureq::Agent, addr: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let url = format!("http://{addr}/api/v1/health");
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        match agent.get(&url).call() {
            Ok(_) | Err(ureq::Error::Status(..)) => std::thread::sleep(Duration::from_millis(200)),
            Err(ureq::Error::Transport(_)) => return Ok(()),
        }
    }
    anyhow::bail!("the node still answers on {addr} after {} s", limit.as_secs())
}
