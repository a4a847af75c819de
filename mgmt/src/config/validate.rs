//! Cross-field checks of a parsed config file: what serde cannot see on one
//! value (ranges, names resolved, duplicates, addresses that must agree).
//!
//! Contract: [`validate`] returns the first problem in file order as a
//! [`ConfigError`] whose key is the path of the offending value, or the
//! outside and inside ports when the file is sound. Everything
//! [`super::Config`]'s accessors and `policy.rs` rely on is checked here:
//! exactly one port per role, the inside port on IPv4 (the GRE outer header
//! is IPv4), tunnel sources equal to the inside address, every origin named by
//! a service defined, payload rules that fit the classifier's fixed arrays.

use core::net::IpAddr;
use std::collections::HashMap;
use std::path::Path;

use classifier::policy::PayloadRule;

use super::values::Proto;
use super::{
    AclConfig, ConfigError, ConfigFile, DataplaneConfig, NodeConfig, OriginConfig, PortConfig, PortRole, ServiceConfig,
};

type Res<T = ()> = Result<T, ConfigError>;

/// Largest UDP payload in an IPv4 datagram: 65535 - 20 (IP) - 8 (UDP).
const MAX_UDP_PAYLOAD: usize = 65507;

/// Largest table (entries per worker): 2^24 entries take 1 to 2 GiB per
/// table and worker; `moat check` and `run` also refuse tables that, over
/// all workers, exceed the machine's available memory.
pub const MAX_TABLE_SIZE: u64 = 1 << 24;

/// Largest node-wide packet rate a key takes: 10 Gpps, above any NIC.
const MAX_NODE_PPS: u64 = 10_000_000_000;

/// Largest `[dataplane.memory] pps` (per worker): the generator's
/// flat-out rate (`pps = 0`). Its queue holds about a second of traffic.
pub const MAX_MEMORY_PPS: u64 = 1_000_000;

/// Largest duration a key takes (attack phases, cookie rotation): a year.
const MAX_SECS: u64 = 366 * 86_400;

/// Largest DPDK mempool (mbufs).
const MAX_MBUFS: u64 = 1 << 26;

/// Checks `f`; relative paths are resolved against `base`.
pub(super) fn validate(f: &ConfigFile, base: &Path) -> Res<(PortConfig, PortConfig)> {
    node(&f.node, base)?;
    dataplane(&f.dataplane)?;
    let (outside, inside) = ports(&f.ports)?;
    origins(&f.origins, inside)?;
    services(&f.services, &f.origins, &f.ports)?;
    acl(&f.acl)?;
    super::detect::mgmt(f.mgmt.sample_every, &f.mgmt.webhooks)?;
    super::detect::detection(&f.detection)?;
    if let Some(b) = &f.bgp {
        super::bgp::check(b)?;
    }
    super::cluster::validate(&f.cluster, base)?;
    for (i, s) in f.services.iter().enumerate() {
        super::detect::service(&format!("services[{i}]"), &s.detection, &s.on_attack)?;
        if let Some(b) = &s.blacklist {
            b.validate(&format!("services[{i}].blacklist"))?;
        }
    }
    Ok((outside.clone(), inside.clone()))
}

/// Names end up in metric labels, report file names and REST paths: keep
/// them to a safe alphabet.
fn name(key: String, name: &str) -> Res {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::at(
            key,
            format!("\"{name}\": names are 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit"),
        ))
    }
}

/// Refuses a name already seen in the same list.
fn unique<'a>(seen: &mut HashMap<&'a str, usize>, list: &str, i: usize, what: &str, value: &'a str) -> Res {
    match seen.insert(value, i) {
        Some(j) => Err(ConfigError::at(
            format!("{list}[{i}].name"),
            format!("duplicate {what} name \"{value}\" (also {list}[{j}])"),
        )),
        None => Ok(()),
    }
}

fn range(key: &str, v: u64, lo: u64, hi: u64) -> Res {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::at(key, format!("{v} is out of range {lo}..={hi}")))
    }
}

fn node(n: &NodeConfig, base: &Path) -> Res {
    name("node.name".into(), &n.name)?;
    if n.state_dir.as_os_str().is_empty() {
        return Err(ConfigError::at("node.state_dir", "empty path"));
    }
    range("node.cookie_rotate_secs", n.cookie_rotate_secs.into(), 0, MAX_SECS)?;
    if let Some(p) = &n.cookie_secret_file {
        super::policy::read_secret(&base.join(p)).map_err(|r| ConfigError::at("node.cookie_secret_file", r))?;
    }
    Ok(())
}

fn dataplane(d: &DataplaneConfig) -> Res {
    range("dataplane.workers", d.workers.into(), 1, 256)?;
    range("dataplane.burst", d.burst.into(), 1, 512)?;
    for (key, v) in [
        ("dataplane.flow_table_size", d.flow_table_size),
        ("dataplane.verified_table_size", d.verified_table_size),
        ("dataplane.source_table_size", d.source_table_size),
    ] {
        range(key, v.into(), 1024, MAX_TABLE_SIZE)?;
    }
    range("dataplane.reassembly_slots", d.reassembly_slots.into(), 1, 1 << 20)?;
    range(
        "dataplane.reassembly_bytes",
        d.reassembly_bytes.into(),
        512,
        classifier::l7::reassembly::MAX_BYTES_PER_FLOW as u64,
    )?;
    range("dataplane.ban_table_size", d.ban_table_size.into(), 16, MAX_TABLE_SIZE)?;
    range(
        "dataplane.violation_table_size",
        d.violation_table_size.into(),
        16,
        MAX_TABLE_SIZE,
    )?;
    range("dataplane.verified_ttl_secs", d.verified_ttl_secs.into(), 1, 86_400)?;
    range("dataplane.flow_idle_secs", d.flow_idle_secs.into(), 1, 86_400)?;
    range("dataplane.idle_spins", d.idle_spins.into(), 0, 10_000_000)?;
    range("dataplane.idle_sleep_us", d.idle_sleep_us.into(), 0, 100_000)?;
    range("dataplane.global_pps", d.global_pps, 0, MAX_NODE_PPS)?;
    range("dataplane.icmp_too_big_pps", d.icmp_too_big_pps, 0, 1_000_000)?;
    cores(d)?;
    af_packet(&d.af_packet)?;
    dpdk(d)?;
    memory(&d.memory)?;
    if d.backend == super::Backend::Pcap && d.workers != 1 {
        return Err(ConfigError::at(
            "dataplane.workers",
            "the pcap backend runs one worker (a capture is one ordered stream)",
        ));
    }
    if d.backend == super::Backend::Memory {
        dataplane::gen::parse_mix(&d.memory.mix).map_err(|e| ConfigError::at("dataplane.memory.mix", e))?;
        if d.memory.attack_after_secs > 0 {
            dataplane::gen::parse_mix(&d.memory.attack_mix)
                .map_err(|e| ConfigError::at("dataplane.memory.attack_mix", e))?;
        }
    }
    Ok(())
}

/// `cores`: one distinct core per worker, each available to this process.
fn cores(d: &DataplaneConfig) -> Res {
    let available = core_affinity::get_core_ids().unwrap_or_default();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for (i, &c) in d.cores.iter().enumerate() {
        if let Some(j) = seen.insert(c, i) {
            return Err(ConfigError::at(
                format!("dataplane.cores[{i}]"),
                format!("core {c} is listed twice (also dataplane.cores[{j}]): one core per worker"),
            ));
        }
        if !available.is_empty() && !available.iter().any(|id| id.id == c) {
            return Err(ConfigError::at(
                format!("dataplane.cores[{i}]"),
                format!("core {c} is not available to this process ({} cores)", available.len()),
            ));
        }
    }
    if !d.cores.is_empty() && d.cores.len() < d.workers as usize {
        return Err(ConfigError::at(
            "dataplane.cores",
            format!(
                "{} core(s) for {} workers: list one core per worker (or none: cores are then chosen)",
                d.cores.len(),
                d.workers
            ),
        ));
    }
    Ok(())
}

fn af_packet(a: &super::AfPacketOptions) -> Res {
    if !a.block_size.is_power_of_two() || !(1 << 14..=1 << 26).contains(&a.block_size) {
        return Err(ConfigError::at(
            "dataplane.af_packet.block_size",
            format!("{}: a power of two from 16384 to 2^26", a.block_size),
        ));
    }
    range("dataplane.af_packet.block_count", a.block_count.into(), 2, 4096)?;
    // The kernel takes a ring's size in a 32-bit field.
    let ring = u64::from(a.block_size) * u64::from(a.block_count);
    if ring > u64::from(u32::MAX) {
        return Err(ConfigError::at(
            "dataplane.af_packet.block_count",
            format!(
                "{} blocks of {} bytes make a ring of {ring} bytes; a ring is at most 4 GiB",
                a.block_count, a.block_size
            ),
        ));
    }
    range("dataplane.af_packet.retire_ms", a.retire_ms.into(), 0, 1000)
}

/// `[dataplane.memory]`: the generator keeps about a second of its
/// traffic queued, so its rate bounds its memory.
fn memory(m: &super::MemoryOptions) -> Res {
    range("dataplane.memory.pps", m.pps, 0, MAX_MEMORY_PPS)?;
    range(
        "dataplane.memory.attack_after_secs",
        m.attack_after_secs.into(),
        0,
        MAX_SECS,
    )?;
    range("dataplane.memory.attack_secs", m.attack_secs.into(), 0, MAX_SECS)
}

/// DPDK's queues and buffers. Every backend has its ranges checked; the
/// mbufs the workers need only matter to (and are only checked for)
/// `backend = "dpdk"`.
fn dpdk(d: &DataplaneConfig) -> Res {
    let p = &d.dpdk;
    range("dataplane.dpdk.mbuf_cache", p.mbuf_cache.into(), 0, 512)?;
    for (key, v) in [
        ("dataplane.dpdk.rx_desc", p.rx_desc),
        ("dataplane.dpdk.tx_desc", p.tx_desc),
    ] {
        range(key, v.into(), 64, 16384)?;
    }
    range("dataplane.dpdk.steer_ring", p.steer_ring.into(), 64, 1 << 20)?;
    range("dataplane.dpdk.link_wait_ms", p.link_wait_ms.into(), 0, 60_000)?;
    if p.mbufs != 0 {
        range("dataplane.dpdk.mbufs", p.mbufs.into(), 1023, MAX_MBUFS)?;
    }
    if d.backend != super::Backend::Dpdk {
        return Ok(());
    }
    let opts = d.dpdk_options(String::new(), String::new());
    let need = opts.mbufs_needed();
    let what = format!(
        "{} worker(s) can hold {need} mbufs at once \
         (2 ports x workers x (rx_desc + tx_desc), plus caches, bursts and workers x (workers - 1) steering rings)",
        d.workers
    );
    if p.mbufs == 0 && opts.auto_mbufs() > MAX_MBUFS {
        return Err(ConfigError::at(
            "dataplane.dpdk.mbufs",
            format!("{what}: more than a pool holds ({MAX_MBUFS}); lower steer_ring, rx_desc, tx_desc or workers"),
        ));
    }
    if p.mbufs != 0 && u64::from(p.mbufs) < need {
        return Err(ConfigError::at(
            "dataplane.dpdk.mbufs",
            format!(
                "{} is fewer than needed: {what}; raise it, or leave it out (0) to size the pool for the workers",
                p.mbufs
            ),
        ));
    }
    Ok(())
}

fn ports(ports: &[PortConfig]) -> Res<(&PortConfig, &PortConfig)> {
    let mut names = HashMap::new();
    let mut outside: Option<usize> = None;
    let mut inside: Option<usize> = None;
    for (i, p) in ports.iter().enumerate() {
        name(format!("ports[{i}].name"), &p.name)?;
        unique(&mut names, "ports", i, "port", &p.name)?;
        if p.iface.is_empty() {
            return Err(ConfigError::at(format!("ports[{i}].iface"), "empty interface name"));
        }
        let slot = match p.role {
            PortRole::Outside => &mut outside,
            PortRole::Inside => &mut inside,
        };
        if let Some(j) = slot.replace(i) {
            let role = if p.role == PortRole::Outside {
                "outside"
            } else {
                "inside"
            };
            return Err(ConfigError::at(
                format!("ports[{i}].role"),
                format!(
                    "a second {role} port (also ports[{j}]); this version has exactly one outside and one inside port"
                ),
            ));
        }
        gateway(i, p)?;
        ip6(i, p)?;
    }
    let (Some(o), Some(n)) = (outside, inside) else {
        let missing = if outside.is_none() { "outside" } else { "inside" };
        return Err(ConfigError::at(
            "ports",
            format!("no port with role = \"{missing}\" (this version needs one outside and one inside port)"),
        ));
    };
    let (out, ins) = (&ports[o], &ports[n]);
    if !ins.ip.addr().is_ipv4() {
        return Err(ConfigError::at(
            format!("ports[{n}].ip"),
            "the inside port needs an IPv4 address (it is the GRE tunnel source)",
        ));
    }
    let later = o.max(n);
    distinct_addrs(ports, [o.min(n), later])?;
    if out.mac_or_default() == ins.mac_or_default() {
        return Err(ConfigError::at(
            format!("ports[{later}].mac"),
            format!("same MAC as ports[{}]", o.min(n)),
        ));
    }
    Ok((out, ins))
}

/// Each address of the ports (`ip`, `ip6`) belongs to one key only.
fn distinct_addrs(ports: &[PortConfig], order: [usize; 2]) -> Res {
    let mut seen: Vec<(IpAddr, String)> = Vec::new();
    for i in order {
        let p = &ports[i];
        for (k, a) in [("ip", Some(p.ip.addr())), ("ip6", p.ip6.map(|a| a.addr()))] {
            let Some(a) = a else { continue };
            let key = format!("ports[{i}].{k}");
            if let Some((_, prev)) = seen.iter().find(|(b, _)| *b == a) {
                return Err(ConfigError::at(key, format!("same address as {prev}")));
            }
            seen.push((a, key));
        }
    }
    Ok(())
}

/// `ip6`: an IPv6 unicast address with its prefix.
fn ip6(i: usize, p: &PortConfig) -> Res {
    let key = format!("ports[{i}].ip6");
    match p.ip6.map(|a| a.addr()) {
        None => Ok(()),
        Some(IpAddr::V4(a)) => Err(ConfigError::at(
            key,
            format!("{a} is IPv4; ip6 takes an IPv6 address/prefix (e.g. 2001:db8:10::1/64)"),
        )),
        Some(IpAddr::V6(a)) if a.is_unspecified() || a.is_loopback() || a.is_multicast() => {
            Err(ConfigError::at(key, format!("{a} is not a unicast address")))
        }
        Some(_) => Ok(()),
    }
}

fn gateway(i: usize, p: &PortConfig) -> Res {
    match p.gateway {
        Some(gw) if !p.ip.on_link(gw) => Err(ConfigError::at(
            format!("ports[{i}].gateway"),
            format!("gateway {gw} is not on the port's network {}", p.ip.0.trunc()),
        )),
        Some(gw) if gw == p.ip.addr() => Err(ConfigError::at(
            format!("ports[{i}].gateway"),
            format!("gateway {gw} is the port's own address"),
        )),
        None if p.gateway_mac.is_some() => Err(ConfigError::at(
            format!("ports[{i}].gateway_mac"),
            "gateway_mac without gateway",
        )),
        _ => Ok(()),
    }
}

fn origins(origins: &[OriginConfig], inside: &PortConfig) -> Res {
    let mut names = HashMap::new();
    for (i, o) in origins.iter().enumerate() {
        name(format!("origins[{i}].name"), &o.name)?;
        unique(&mut names, "origins", i, "origin", &o.name)?;
        let key = |k: &str| format!("origins[{i}].{k}");
        if IpAddr::V4(o.tunnel_src) != inside.ip.addr() {
            return Err(ConfigError::at(
                key("tunnel_src"),
                format!(
                    "tunnel_src {} is not the address of the inside port ({})",
                    o.tunnel_src,
                    inside.ip.addr()
                ),
            ));
        }
        if o.tunnel_dst == o.tunnel_src {
            return Err(ConfigError::at(key("tunnel_dst"), "tunnel_dst equals tunnel_src"));
        }
        if !inside.ip.on_link(IpAddr::V4(o.tunnel_dst)) && inside.gateway.is_none() {
            return Err(ConfigError::at(
                key("tunnel_dst"),
                format!(
                    "tunnel_dst {} is not on the inside port's network {} and the inside port has no gateway",
                    o.tunnel_dst,
                    inside.ip.0.trunc()
                ),
            ));
        }
        range(&key("mtu"), o.mtu.into(), 576, 9000)?;
    }
    Ok(())
}

fn services(services: &[ServiceConfig], origins: &[OriginConfig], ports: &[PortConfig]) -> Res {
    if services.len() > dataplane::runtime::MAX_SERVICES {
        return Err(ConfigError::at(
            "services",
            format!(
                "{} services; at most {}",
                services.len(),
                dataplane::runtime::MAX_SERVICES
            ),
        ));
    }
    let mut names = HashMap::new();
    let mut vips: HashMap<IpAddr, usize> = HashMap::new();
    for (i, s) in services.iter().enumerate() {
        name(format!("services[{i}].name"), &s.name)?;
        unique(&mut names, "services", i, "service", &s.name)?;
        vip(i, s.vip, ports)?;
        if let Some(j) = vips.insert(s.vip, i) {
            return Err(ConfigError::at(
                format!("services[{i}].vip"),
                format!("duplicate VIP {} (also services[{j}])", s.vip),
            ));
        }
        if !origins.iter().any(|o| o.name == s.origin) {
            return Err(ConfigError::at(
                format!("services[{i}].origin"),
                format!("unknown origin \"{}\"", s.origin),
            ));
        }
        if s.allow.is_empty() {
            return Err(ConfigError::at(
                format!("services[{i}].allow"),
                "empty: the service would drop all its traffic",
            ));
        }
        for (j, p) in s.allow_src_ports.iter().enumerate() {
            if p.proto != Proto::Udp {
                return Err(ConfigError::at(
                    format!("services[{i}].allow_src_ports[{j}]"),
                    format!("\"{p}\": source ports here are UDP reflection ports (udp/N)"),
                ));
            }
        }
        for j in 0..s.payload_rules.len() {
            payload_rule(i, j, s)?;
        }
        super::udpauth::validate(i, s)?;
        super::l7::validate(i, s)?;
    }
    Ok(())
}

fn vip(i: usize, vip: IpAddr, ports: &[PortConfig]) -> Res {
    let key = format!("services[{i}].vip");
    let unicast = match vip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    };
    if !unicast {
        return Err(ConfigError::at(key, format!("VIP {vip} is not a unicast address")));
    }
    match ports
        .iter()
        .find(|p| p.ip.addr() == vip || p.ip6.is_some_and(|a| a.addr() == vip))
    {
        Some(p) => Err(ConfigError::at(
            key,
            format!("VIP {vip} is the address of port \"{}\"", p.name),
        )),
        None => Ok(()),
    }
}

fn payload_rule(i: usize, j: usize, s: &ServiceConfig) -> Res {
    let r = &s.payload_rules[j];
    let key = |k: &str| format!("services[{i}].payload_rules[{j}].{k}");
    let (proto, port) = match (r.port.proto, r.port.single()) {
        (Proto::Udp | Proto::Tcp, Some(p)) => (r.port.proto, p),
        _ => {
            return Err(ConfigError::at(
                key("port"),
                format!(
                    "\"{}\": a payload rule is for one UDP or TCP port (udp/N, tcp/N)",
                    r.port
                ),
            ))
        }
    };
    if !s.allow.iter().any(|a| a.covers(proto, port)) {
        return Err(ConfigError::at(
            key("port"),
            format!(
                "payload rule on {}/{port} which the service does not allow",
                if proto == Proto::Tcp { "tcp" } else { "udp" }
            ),
        ));
    }
    let len = r.value.0.len();
    if len == 0 {
        return Err(ConfigError::at(key("value"), "empty value"));
    }
    if len > PayloadRule::MAX_LEN {
        return Err(ConfigError::at(
            key("value"),
            format!("value longer than {} bytes ({len} bytes)", PayloadRule::MAX_LEN),
        ));
    }
    if let Some(mask) = &r.mask {
        if mask.0.len() != len {
            return Err(ConfigError::at(
                key("mask"),
                format!("value and mask lengths differ ({len} vs {} bytes)", mask.0.len()),
            ));
        }
    }
    let end = usize::from(r.offset) + len;
    if end > MAX_UDP_PAYLOAD {
        return Err(ConfigError::at(
            key("offset"),
            format!(
                "offset {} + {len} bytes reaches past the largest UDP payload ({MAX_UDP_PAYLOAD} bytes)",
                r.offset
            ),
        ));
    }
    Ok(())
}

fn acl(a: &AclConfig) -> Res {
    let mut seen: HashMap<ipnet::IpNet, String> = HashMap::new();
    let lists = [("acl.allow", &a.allow), ("acl.deny", &a.deny)];
    for (list, nets) in lists {
        for (i, net) in nets.iter().enumerate() {
            let here = format!("{list}[{i}]");
            if let Some(prev) = seen.insert(net.0, here.clone()) {
                let why = if prev.starts_with(list) {
                    format!("{} is a duplicate of {prev}", net.0)
                } else {
                    format!("{} is also in {prev}", net.0)
                };
                return Err(ConfigError::at(here, why));
            }
        }
    }
    Ok(())
}
