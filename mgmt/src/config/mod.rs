//! The node's config file: one TOML document (DESIGN.md, "Interfaces"),
//! read, validated and turned into the classifier's [`classifier::Policy`].
//!
//! Contract:
//! - A [`Config`] exists only if the file parsed and validated
//!   ([`Config::load`], [`Config::from_toml_str`]): exactly one outside and
//!   one inside port, every name resolved, every value in range. Code that
//!   holds one need not re-check what validation checked.
//! - Every refusal is a [`ConfigError`] naming the file (with `:line:column`
//!   where the key is found in the file), the key path as a user reads it
//!   (`services[1].allow[2]`) and the reason. Unknown keys are refused
//!   (`deny_unknown_fields` on every table), so a misspelt key never silently
//!   falls back to a default.
//! - Relative paths in the file (`state_dir`, `cookie_secret_file`,
//!   `token_file`) are relative to the folder of the config file, so a
//!   config means the same whatever the working directory.
//!
//! Layout: this file holds the serde structs and the API; [`detect`] those
//! of detection, escalation and webhooks with their checks; [`values`] the
//! string-typed values (port specs, MACs, prefixes, hex), `validate` the
//! cross-field checks, `policy` the building of the classifier's policy,
//! `locate` the mapping between byte spans, key paths and lines.

pub mod bgp;
pub mod cluster;
pub mod detect;
mod files;
mod gates;
pub mod l7;
mod locate;
mod policy;
pub mod udpauth;
mod validate;
pub mod values;

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use classifier::policy::{FragPolicy, Limits, SynAuth};
use serde::{Deserialize, Serialize};

pub use bgp::BgpConfig;
pub use cluster::ClusterConfig;
pub use detect::{AlertEvent, BlacklistConfig, DetectionConfig, OnAttackConfig, Thresholds, WebhookConfig};
pub use files::{read_small_file, SMALL_FILE_MAX};
pub use gates::{api_token, read_token_file, Gates, Overlay, TableMemory, API_TOKEN_MIN_LEN};
pub use policy::{secrets_at, secrets_from_file, SecretSource};
pub use udpauth::UdpAuthConfig;
pub use validate::{MAX_MEMORY_PPS, MAX_TABLE_SIZE};
pub use values::{mac_default, Cidr, HexBytes, IfaceAddr, Mac, PortSpec, Proto, TcpRuleText, UdpRuleText};

/// A refused config: which file (and where in it), which key, and why.
///
/// Shown as `file: key: reason`, or `file: reason` when the error is about
/// the whole file (it cannot be read, or has a syntax error before any key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{reason}", key_prefix(key))]
pub struct ConfigError {
    /// The file label, followed by `:line:column` when the key was found in
    /// the file.
    pub file: String,
    /// The key path as a user reads it: `services[1].allow[2]`,
    /// `dataplane.workers`; empty when the error is about the whole file.
    pub key: String,
    pub reason: String,
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

impl ConfigError {
    /// An error about `key`, before the file label is known.
    pub(crate) fn at(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: String::new(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// `[node]`: who this node is and where it keeps its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Secret material shared by the nodes of a cluster, so that any node
    /// validates any node's SYN cookies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_secret_file: Option<PathBuf>,
    /// Live backends derive a new cookie key every this many seconds (the
    /// previous one stays valid), the same on every node of a cluster:
    /// the key of epoch `unix_time / cookie_rotate_secs` comes from the
    /// secret and the epoch number. 0 = never rotate. Capture replays
    /// (`backend = "pcap"`, `moat scrub`) never rotate.
    #[serde(default = "default_rotate")]
    pub cookie_rotate_secs: u32,
}

fn default_rotate() -> u32 {
    3600
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("./state")
}

/// The packet I/O backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    #[default]
    AfPacket,
    Pcap,
    Memory,
    Dpdk,
}

impl Backend {
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::AfPacket => "af_packet",
            Backend::Pcap => "pcap",
            Backend::Memory => "memory",
            Backend::Dpdk => "dpdk",
        }
    }
}

/// `[dataplane] two_stage`: see [`dataplane::runtime::TwoStage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TwoStage {
    #[default]
    Auto,
    On,
    Off,
}

impl From<TwoStage> for dataplane::runtime::TwoStage {
    fn from(t: TwoStage) -> Self {
        match t {
            TwoStage::Auto => dataplane::runtime::TwoStage::Auto,
            TwoStage::On => dataplane::runtime::TwoStage::On,
            TwoStage::Off => dataplane::runtime::TwoStage::Off,
        }
    }
}

/// `[dataplane]`: backend, workers and the fixed sizes of per-core state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneConfig {
    pub backend: Backend,
    pub workers: u32,
    pub burst: u32,
    pub flow_table_size: u32,
    /// First-segment reassembly: flows held at once per worker (allocated
    /// only while a service has `l7_rules` or TCP payload rules).
    pub reassembly_slots: u32,
    /// First client bytes kept per flow for inspection.
    pub reassembly_bytes: u32,
    pub verified_table_size: u32,
    pub source_table_size: u32,
    /// Banned sources each worker holds (the auto-blacklist), and the most
    /// bans the management plane keeps.
    pub ban_table_size: u32,
    /// Sources whose violations the management plane counts at once
    /// (`[services.blacklist]`); past it the oldest counter is evicted.
    pub violation_table_size: u32,
    #[serde(with = "values::frag_policy")]
    pub fragments: FragPolicy,
    pub min_ttl: u8,
    pub verify_ip_checksum: bool,
    /// Emergency cap on all traffic into the node, packets per second; 0 = none.
    pub global_pps: u64,
    pub verified_ttl_secs: u32,
    pub flow_idle_secs: u32,
    /// Cores the workers are pinned to, in worker order; empty: cores 1..N
    /// when the machine has a spare core for management, else 0..N.
    pub cores: Vec<usize>,
    /// Empty polls in a row before a worker starts sleeping.
    pub idle_spins: u32,
    /// Sleep per empty poll once idle, microseconds; 0 = pure busy polling.
    pub idle_sleep_us: u32,
    /// ICMP "fragmentation needed" / "packet too big" errors per second for
    /// the whole node (0 = never send them).
    pub icmp_too_big_pps: u64,
    /// The two-stage burst: `auto` (on when the workers' tables together
    /// exceed the last-level cache), `on` or `off`.
    pub two_stage: TwoStage,
    pub dpdk: DpdkConfig,
    pub af_packet: AfPacketOptions,
    pub pcap: PcapOptions,
    pub memory: MemoryOptions,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            backend: Backend::AfPacket,
            workers: 1,
            burst: 32,
            flow_table_size: 65536,
            reassembly_slots: 2048,
            reassembly_bytes: 4096,
            verified_table_size: 65536,
            source_table_size: 65536,
            ban_table_size: 4096,
            violation_table_size: 65536,
            fragments: FragPolicy::Drop,
            min_ttl: 2,
            verify_ip_checksum: true,
            global_pps: 0,
            verified_ttl_secs: 300,
            flow_idle_secs: 120,
            cores: Vec::new(),
            idle_spins: 256,
            idle_sleep_us: 50,
            icmp_too_big_pps: 100,
            two_stage: TwoStage::Auto,
            dpdk: DpdkConfig::default(),
            af_packet: AfPacketOptions::default(),
            pcap: PcapOptions::default(),
            memory: MemoryOptions::default(),
        }
    }
}

/// `[dataplane.dpdk]`: EAL and the ports' queues and buffers (the ports'
/// `iface` is a DPDK device name: `net_pcap0`, `0000:03:00.0`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkConfig {
    /// EAL arguments, e.g. `["--no-huge", "-m", "512", "--no-pci"]`.
    pub eal_args: Vec<String>,
    /// Mbufs per mempool (one pool per NUMA socket of the ports); best a
    /// power of two minus one. 0 (the default): what the workers can hold
    /// at once, rounded up to a power of two minus one, at least 16383
    /// ([`dataplane::port::dpdk_options::DpdkOptions::auto_mbufs`]).
    pub mbufs: u32,
    /// Per-lcore mempool cache, 0..=512.
    pub mbuf_cache: u32,
    /// Descriptors per RX queue and per TX queue.
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Frames per software-steering ring (the RSS fallback, one ring per
    /// ordered pair of workers).
    pub steer_ring: u32,
    /// How long to wait for each port's link at start, milliseconds.
    pub link_wait_ms: u32,
}

impl DataplaneConfig {
    /// The DPDK backend's options for ports `outside` and `inside` (device
    /// names).
    pub fn dpdk_options(&self, outside: String, inside: String) -> dataplane::port::dpdk_options::DpdkOptions {
        let p = &self.dpdk;
        let mut o = dataplane::port::dpdk_options::DpdkOptions {
            eal_args: p.eal_args.clone(),
            outside,
            inside,
            workers: self.workers as usize,
            mbufs: p.mbufs,
            mbuf_cache: p.mbuf_cache,
            rx_desc: p.rx_desc,
            tx_desc: p.tx_desc,
            steer_ring: p.steer_ring as usize,
            link_wait: std::time::Duration::from_millis(p.link_wait_ms.into()),
        };
        if o.mbufs == 0 {
            // Validation refused an automatic size over 2^26.
            o.mbufs = u32::try_from(o.auto_mbufs()).unwrap_or(u32::MAX);
        }
        o
    }
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            eal_args: Vec::new(),
            mbufs: 0,
            mbuf_cache: 256,
            rx_desc: 1024,
            tx_desc: 1024,
            steer_ring: 1024,
            link_wait_ms: 5000,
        }
    }
}

/// `[dataplane.af_packet]`: the RX ring of each socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AfPacketOptions {
    /// Bytes per ring block (a power of two, a multiple of the page size).
    pub block_size: u32,
    /// Blocks per ring.
    pub block_count: u32,
    /// A partly filled block is handed over after this many milliseconds.
    pub retire_ms: u32,
}

impl Default for AfPacketOptions {
    fn default() -> Self {
        AfPacketOptions {
            block_size: 1 << 18,
            block_count: 16,
            retire_ms: 1,
        }
    }
}

/// `[dataplane.pcap]`: the capture-file backend (one worker).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PcapOptions {
    /// Capture read as the outside port's traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx: Option<PathBuf>,
    /// Replies sent out the outside port (challenges, resets, ARP, ICMP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside_tx: Option<PathBuf>,
    /// GRE toward the origins (and ARP) sent out the inside port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inside_tx: Option<PathBuf>,
}

/// `[dataplane.memory]`: the built-in generator as the outside port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryOptions {
    /// Traffic mix, as `moat gen --mix` takes it.
    pub mix: String,
    pub seed: u64,
    /// Packets per second per worker, 0 = as fast as the worker goes.
    pub pps: u64,
    /// Packets per worker, 0 = endless.
    pub count: u64,
    /// An attack phase: from this many seconds after start-up, `attack_mix`
    /// instead of `mix` (0 = no attack phase)...
    pub attack_after_secs: u32,
    /// ...for this many seconds (0 = to the end).
    pub attack_secs: u32,
    pub attack_mix: String,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            mix: "mix".into(),
            seed: 1,
            pps: 100_000,
            count: 0,
            attack_after_secs: 0,
            attack_secs: 0,
            attack_mix: "syn-flood".into(),
        }
    }
}

/// Role of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortRole {
    /// Toward the Internet: attack and client traffic in, challenges out.
    Outside,
    /// Toward the origins: GRE-encapsulated clean traffic out.
    Inside,
}

/// `[[ports]]`: one network port of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    pub name: String,
    pub role: PortRole,
    pub iface: String,
    /// The node's address on this port, with the attached network's prefix.
    pub ip: IfaceAddr,
    /// The node's IPv6 address on this port, with its prefix. Neighbour
    /// solicitations for it are answered, and for the port's link-local
    /// address (fe80::/64 from the port's MAC by modified EUI-64, RFC 4291
    /// Appendix A), so that a router can use either as the next hop of IPv6 VIPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<IfaceAddr>,
    /// Absent: read from the interface at run time; backends without an
    /// interface use [`mac_default`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Static fallback for the gateway's MAC when ARP gets no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_mac: Option<Mac>,
}

impl PortConfig {
    /// The index the dataplane opens this port under (outside 0, inside 1);
    /// it seeds [`mac_default`].
    pub fn index(&self) -> u8 {
        match self.role {
            PortRole::Outside => 0,
            PortRole::Inside => 1,
        }
    }

    /// The configured MAC, else the locally administered default.
    pub fn mac_or_default(&self) -> [u8; 6] {
        self.mac.map_or_else(|| mac_default(self.index()), |m| m.0)
    }

    /// Whether the port speaks IPv6: an `ip6`, or an IPv6 `ip`.
    pub fn has_ipv6(&self) -> bool {
        self.ip6.is_some() || self.ip.addr().is_ipv6()
    }

    /// The node's own addresses on this port with `mac`, the port's MAC:
    /// `ip`, then, when the port speaks IPv6, `ip6` and the link-local
    /// address derived from `mac` (the MAC the interface really has, which
    /// a backend may only learn at start-up).
    pub fn own_addrs(&self, mac: [u8; 6]) -> Vec<classifier::policy::OwnAddr> {
        let v6 = self.has_ipv6().then(|| IpAddr::V6(classifier::build::link_local(mac)));
        [Some(self.ip.addr()), self.ip6.map(|a| a.addr()), v6]
            .into_iter()
            .flatten()
            .map(|ip| classifier::policy::OwnAddr { ip, mac })
            .collect()
    }
}

/// `[[origins]]`: a GRE tunnel toward a hidden origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    pub name: String,
    /// Must be the inside port's address.
    pub tunnel_src: Ipv4Addr,
    pub tunnel_dst: Ipv4Addr,
    /// GRE key (RFC 2890).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u32>,
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Static fallback MAC of `tunnel_dst` when it is on the inside port's
    /// network and does not answer ARP (and for backends without ARP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

fn default_mtu() -> u16 {
    1476
}

/// `[[services]]`: a protected VIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    pub vip: IpAddr,
    /// Name of an `[[origins]]` entry.
    pub origin: String,
    pub allow: Vec<PortSpec>,
    #[serde(default, with = "values::syn_auth")]
    pub syn_auth: SynAuth,
    /// UDP reflection source ports this service accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_src_ports: Vec<PortSpec>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payload_rules: Vec<PayloadRuleConfig>,
    /// UDP game authentication per port (`udpauth.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub udp_auth: Vec<UdpAuthConfig>,
    /// First-segment rules (HTTP request line and Host, TLS ClientHello).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l7_rules: Vec<l7::L7RuleConfig>,
    /// Thresholds of this service (absent keys: `[detection]`'s).
    #[serde(default)]
    pub detection: Thresholds,
    /// Escalation while the service is under attack.
    #[serde(default)]
    pub on_attack: OnAttackConfig,
    /// The auto-blacklist (absent: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist: Option<BlacklistConfig>,
}

/// `[services.limits]`: all optional, 0 = unlimited. Per-service rates are
/// for the whole node (each worker allows `rate / workers`). Off by default
/// except the ICMP rates (`classifier::policy::Limits`'s defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub src_pps: u32,
    pub src_syn_pps: u32,
    pub src_new_conns_ps: u32,
    /// The old name of `src_new_conns_ps`, still read (with a warning at
    /// load) and never written.
    #[serde(skip_serializing)]
    pub src_new_flows_ps: Option<u32>,
    /// Concurrent connections per source.
    pub src_conns: u32,
    /// Concurrent connections to the service (node-wide).
    pub dst_conns: u64,
    /// New connections per second to the service (node-wide).
    pub dst_new_conns_ps: u64,
    /// Seconds a connection may stay silent after its handshake.
    pub empty_conn_secs: u32,
    /// ICMP and ICMPv6 messages per second per source (default 20).
    pub src_icmp_pps: u32,
    pub service_pps: u64,
    pub challenge_pps: u64,
    /// ICMP and ICMPv6 messages per second to the service (default 200).
    pub icmp_pps: u64,
}

impl LimitsConfig {
    /// Moves a value given under the old name `src_new_flows_ps` to
    /// `src_new_conns_ps`; `Err` when both names are given with different
    /// values. Returns whether the old name was used.
    pub fn take_old_names(&mut self) -> Result<bool, String> {
        let Some(old) = self.src_new_flows_ps.take() else {
            return Ok(false);
        };
        if self.src_new_conns_ps != 0 && self.src_new_conns_ps != old {
            return Err(format!(
                "src_new_flows_ps (the old name of src_new_conns_ps) = {old} and src_new_conns_ps = {} disagree",
                self.src_new_conns_ps
            ));
        }
        self.src_new_conns_ps = old;
        Ok(true)
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig::from(&Limits::default())
    }
}

impl From<&Limits> for LimitsConfig {
    fn from(l: &Limits) -> Self {
        LimitsConfig {
            src_pps: l.src_pps,
            src_syn_pps: l.src_syn_pps,
            src_new_conns_ps: l.src_new_conns_ps,
            src_new_flows_ps: None,
            src_conns: l.src_conns,
            dst_conns: l.dst_conns,
            dst_new_conns_ps: l.dst_new_conns_ps,
            empty_conn_secs: l.empty_conn_secs,
            src_icmp_pps: l.src_icmp_pps,
            service_pps: l.service_pps,
            challenge_pps: l.challenge_pps,
            icmp_pps: l.icmp_pps,
        }
    }
}

impl From<&LimitsConfig> for Limits {
    fn from(l: &LimitsConfig) -> Self {
        Limits {
            src_pps: l.src_pps,
            src_syn_pps: l.src_syn_pps,
            src_new_conns_ps: l.src_new_flows_ps.unwrap_or(l.src_new_conns_ps),
            src_conns: l.src_conns,
            dst_conns: l.dst_conns,
            dst_new_conns_ps: l.dst_new_conns_ps,
            empty_conn_secs: l.empty_conn_secs,
            src_icmp_pps: l.src_icmp_pps,
            service_pps: l.service_pps,
            challenge_pps: l.challenge_pps,
            icmp_pps: l.icmp_pps,
        }
    }
}

/// `[[services.payload_rules]]`: a UDP datagram to `port` passes when
/// `payload[offset..][..len] & mask == value & mask`. On a TCP port
/// (`tcp/N`), the same test on each flow's first data bytes (`offset` from
/// the flow's first payload byte): a flow that matches none of its port's
/// rules is reset both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadRuleConfig {
    pub port: PortSpec,
    #[serde(default)]
    pub offset: u16,
    pub value: HexBytes,
    /// Absent: all `ff` (exact match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<HexBytes>,
}

/// `[acl]`: longest prefix wins; a prefix may not be in both lists.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AclConfig {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

/// `[fingerprints]`: static deny rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FingerprintConfig {
    pub deny_tcp: Vec<TcpRuleText>,
    pub deny_udp: Vec<UdpRuleText>,
}

/// `[mgmt]`: the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MgmtConfig {
    /// Whether `moat run` serves the REST API and `/metrics`.
    pub enabled: bool,
    /// Port 0: any free port (the address is printed at start-up).
    pub listen: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Workers sample one packet in this many for detection and attack
    /// reports (0 = off).
    pub sample_every: u32,
    /// Alerts: HTTP POSTs of attack starts, ends and threshold crossings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for MgmtConfig {
    fn default() -> Self {
        MgmtConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9180)),
            token_file: None,
            sample_every: 64,
            webhooks: Vec::new(),
        }
    }
}

/// The file as written: what serde reads and writes. [`Config`] is this after
/// validation, with the two ports split out by role.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    node: NodeConfig,
    #[serde(default)]
    dataplane: DataplaneConfig,
    #[serde(default)]
    ports: Vec<PortConfig>,
    #[serde(default)]
    origins: Vec<OriginConfig>,
    #[serde(default)]
    services: Vec<ServiceConfig>,
    #[serde(default)]
    acl: AclConfig,
    #[serde(default)]
    fingerprints: FingerprintConfig,
    #[serde(default)]
    mgmt: MgmtConfig,
    #[serde(default)]
    detection: DetectionConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bgp: Option<BgpConfig>,
    #[serde(default)]
    cluster: ClusterConfig,
}

/// A validated config (see the module contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub node: NodeConfig,
    pub dataplane: DataplaneConfig,
    pub outside: PortConfig,
    pub inside: PortConfig,
    pub origins: Vec<OriginConfig>,
    pub services: Vec<ServiceConfig>,
    pub acl: AclConfig,
    pub fingerprints: FingerprintConfig,
    pub mgmt: MgmtConfig,
    pub detection: DetectionConfig,
    /// `[bgp]`: announcements through BIRD (`None`: the node announces
    /// nothing, SIGTERM stops it at once).
    pub bgp: Option<BgpConfig>,
    pub cluster: ClusterConfig,
    /// Folder that relative paths are relative to.
    base_dir: PathBuf,
    /// How errors name the file.
    label: String,
}

/// Per-core table capacities (entries per worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSizes {
    pub flows: usize,
    pub verified: usize,
    pub sources: usize,
    pub bans: usize,
}

/// What GRE encapsulation toward one origin needs (RFC 2784, key RFC 2890).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreTunnel {
    /// Outer source: the inside port's address.
    pub src: Ipv4Addr,
    /// Outer destination: the origin's tunnel endpoint.
    pub dst: Ipv4Addr,
    pub key: Option<u32>,
    /// Largest inner packet.
    pub mtu: u16,
    /// Source MAC: the inside port's (configured or default).
    pub src_mac: [u8; 6],
    /// Where the frame goes at L2: `dst` when it is on the inside port's
    /// network, else the inside port's gateway.
    pub next_hop: Ipv4Addr,
    /// Static MAC of `next_hop` (the origin's `mac` or the port's
    /// `gateway_mac`); `None`: resolve by ARP.
    pub next_hop_mac: Option<[u8; 6]>,
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let label = path.display().to_string();
        let text = files::read_config_text(path).map_err(|reason| ConfigError {
            file: label.clone(),
            key: String::new(),
            reason,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        Config::from_toml_str(&text, &label, base)
    }

    /// Parses and validates `s`; `file_label` names it in errors and
    /// `base_dir` is the folder relative paths are relative to.
    pub fn from_toml_str(s: &str, file_label: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut file: ConfigFile = toml::from_str(s).map_err(|e| locate::serde_error(s, file_label, &e))?;
        for (i, svc) in file.services.iter_mut().enumerate() {
            match svc.limits.take_old_names() {
                Ok(true) => tracing::warn!(
                    "{file_label}: services[{i}].limits.src_new_flows_ps is deprecated: \
                     it is now src_new_conns_ps (read as such)"
                ),
                Ok(false) => {}
                Err(why) => {
                    return Err(ConfigError {
                        file: file_label.to_string(),
                        key: format!("services[{i}].limits.src_new_conns_ps"),
                        reason: why,
                    })
                }
            }
        }
        let base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir.to_path_buf()
        };
        validate::validate(&file, &base_dir)
            .map(|(outside, inside)| Config {
                outside,
                inside,
                node: file.node,
                dataplane: file.dataplane,
                origins: file.origins,
                services: file.services,
                acl: file.acl,
                fingerprints: file.fingerprints,
                mgmt: file.mgmt,
                detection: file.detection,
                bgp: file.bgp,
                cluster: file.cluster,
                base_dir,
                label: file_label.to_string(),
            })
            .map_err(|e| locate::locate_error(s, file_label, e))
    }

    /// Builds the classifier's policy snapshot (see `policy.rs`).
    pub fn policy(&self) -> Result<classifier::Policy, ConfigError> {
        policy::build(self).map_err(|mut e| {
            e.file.clone_from(&self.label);
            e
        })
    }

    /// Where the SYN cookie key of [`Config::policy`] comes from.
    pub fn secret_source(&self) -> SecretSource {
        match &self.node.cookie_secret_file {
            Some(p) => SecretSource::File(self.resolve(p)),
            None => SecretSource::Random,
        }
    }

    /// Per-worker table capacities.
    pub fn state_config(&self) -> TableSizes {
        // u32 -> usize cannot truncate on the 32- and 64-bit targets Moat
        // builds for; validation caps the sizes at 2^24 anyway.
        let n = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
        TableSizes {
            flows: n(self.dataplane.flow_table_size),
            verified: n(self.dataplane.verified_table_size),
            sources: n(self.dataplane.source_table_size),
            bans: n(self.dataplane.ban_table_size),
        }
    }

    pub fn outside_port(&self) -> &PortConfig {
        &self.outside
    }

    pub fn inside_port(&self) -> &PortConfig {
        &self.inside
    }

    /// The GRE tunnel toward the origin named `origin`, `None` if there is
    /// no such origin.
    pub fn origin_gre(&self, origin: &str) -> Option<GreTunnel> {
        let o = self.origins.iter().find(|o| o.name == origin)?;
        let on_link = self.inside.ip.on_link(IpAddr::V4(o.tunnel_dst));
        let (next_hop, next_hop_mac) = match (on_link, self.inside.gateway) {
            (false, Some(IpAddr::V4(gw))) => (gw, self.inside.gateway_mac.map(|m| m.0)),
            _ => (o.tunnel_dst, o.mac.map(|m| m.0)),
        };
        Some(GreTunnel {
            src: o.tunnel_src,
            dst: o.tunnel_dst,
            key: o.key,
            mtu: o.mtu,
            src_mac: self.inside.mac_or_default(),
            next_hop,
            next_hop_mac,
        })
    }

    /// `p` made absolute against the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        self.base_dir.join(p)
    }

    /// How errors name the config's file.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The state directory, resolved.
    pub fn state_dir(&self) -> PathBuf {
        self.resolve(&self.node.state_dir)
    }

    /// The REST token file, resolved.
    pub fn token_file(&self) -> Option<PathBuf> {
        self.mgmt.token_file.as_deref().map(|p| self.resolve(p))
    }

    fn to_file(&self) -> ConfigFile {
        ConfigFile {
            node: self.node.clone(),
            dataplane: self.dataplane.clone(),
            ports: vec![self.outside.clone(), self.inside.clone()],
            origins: self.origins.clone(),
            services: self.services.clone(),
            acl: self.acl.clone(),
            fingerprints: self.fingerprints.clone(),
            mgmt: self.mgmt.clone(),
            detection: self.detection.clone(),
            bgp: self.bgp.clone(),
            cluster: self.cluster.clone(),
        }
    }

    /// This config checked again by the file's own validation, after changes
    /// made in memory (the REST API's): the same keys and reasons as for a
    /// file (`services[2].allow[0]: ...`), without a line number.
    pub fn revalidated(&self) -> Result<Config, ConfigError> {
        let file = self.to_file();
        let (outside, inside) = validate::validate(&file, &self.base_dir).map_err(|mut e| {
            e.file.clone_from(&self.label);
            e
        })?;
        Ok(Config {
            outside,
            inside,
            ..self.clone()
        })
    }

    /// The config written back as TOML (ports in the order outside, inside).
    pub fn to_toml_string(&self) -> String {
        let file = self.to_file();
        // Every value here is a string, number, bool, array or table, which
        // the TOML serializer always accepts; an error would be a bug in
        // these structs, reported in the output rather than by a panic.
        toml::to_string(&file).unwrap_or_else(|e| format!("# cannot write config: {e}\n"))
    }
}

/// A file-level I/O error as a reason (`no such file`, ...).
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

impl Config {
    /// GRE encapsulation parameters for every origin of `policy` (built by
    /// [`Config::policy`], so origin indices match), for backends without ARP
    /// (offline scrubbing, the memory backend): every next hop needs a static
    /// MAC (`origins[].mac` or `ports.gateway_mac`).
    pub fn gre_params_static(
        &self,
        policy: &classifier::Policy,
    ) -> Result<Vec<classifier::build::GreParams>, ConfigError> {
        policy
            .origins
            .iter()
            .map(|o| {
                let i = self.origins.iter().position(|c| c.name == o.name).unwrap_or(0);
                let t = self.origin_gre(&o.name).ok_or_else(|| ConfigError {
                    file: self.label.clone(),
                    key: format!("origins[{i}]"),
                    reason: format!("unknown origin \"{}\"", o.name),
                })?;
                let dst_mac = t.next_hop_mac.ok_or_else(|| ConfigError {
                    file: self.label.clone(),
                    key: format!("origins[{i}].mac"),
                    reason: format!(
                        "next hop {} needs a static MAC without ARP (set origins[{i}].mac or the inside port's gateway_mac)",
                        t.next_hop
                    ),
                })?;
                Ok(classifier::build::GreParams {
                    src_mac: t.src_mac,
                    dst_mac,
                    tunnel_src: t.src,
                    tunnel_dst: t.dst,
                    key: t.key,
                    ttl: 64,
                })
            })
            .collect()
    }

    /// Table capacities as the classifier takes them.
    pub fn classifier_state(&self) -> classifier::state::StateConfig {
        let t = self.state_config();
        classifier::state::StateConfig {
            flows: t.flows,
            verified: t.verified,
            sources: t.sources,
            reassembly: classifier::l7::reassembly::ReassemblyConfig {
                slots: usize::try_from(self.dataplane.reassembly_slots).unwrap_or(usize::MAX),
                bytes_per_flow: usize::try_from(self.dataplane.reassembly_bytes).unwrap_or(usize::MAX),
                ..Default::default()
            },
            bans: t.bans,
        }
    }
}
