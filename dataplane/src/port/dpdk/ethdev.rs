//! Ports: found by device name, configured with one RX and one TX queue
//! per worker, RSS on the L3 source where the driver can do it, started,
//! promiscuous, link awaited; their counters read from the management
//! thread; stopped and closed when the last user lets go ([`Ports`]).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use dpdk_sys as ffi;

use super::eal::fail;
use super::{DpdkError, Spread};

/// The RSS hash types Moat asks for: every IP flow type, hashed on the L3
/// source only (`RTE_ETH_RSS_L3_SRC_ONLY` narrows each type's input to the
/// source address, so TCP, UDP and other packets of one source agree).
const RSS_TYPES: u64 = ffi::RTE_ETH_RSS_IPV4
    | ffi::RTE_ETH_RSS_FRAG_IPV4
    | ffi::RTE_ETH_RSS_NONFRAG_IPV4_TCP
    | ffi::RTE_ETH_RSS_NONFRAG_IPV4_UDP
    | ffi::RTE_ETH_RSS_NONFRAG_IPV4_OTHER
    | ffi::RTE_ETH_RSS_IPV6
    | ffi::RTE_ETH_RSS_FRAG_IPV6
    | ffi::RTE_ETH_RSS_NONFRAG_IPV6_TCP
    | ffi::RTE_ETH_RSS_NONFRAG_IPV6_UDP
    | ffi::RTE_ETH_RSS_NONFRAG_IPV6_OTHER;

/// A mempool of mbufs (never freed: mbufs of it may be anywhere until the
/// process ends, and EAL is never cleaned up).
#[derive(Debug, Clone, Copy)]
pub struct Mempool(pub NonNull<ffi::rte_mempool>);

// SAFETY: a mempool is a shared, thread-safe object (multi-producer,
// multi-consumer ring ops) that lives until the process ends.
unsafe impl Send for Mempool {}
// SAFETY: as above: every operation on it is thread-safe.
unsafe impl Sync for Mempool {}

/// Creates a pool of `n` mbufs with `cache` per lcore on `socket`, each
/// with 2048 bytes of data room after DPDK's headroom.
pub fn mempool(name: &str, n: u32, cache: u32, socket: i32) -> Result<Mempool, DpdkError> {
    let cname = CString::new(name).map_err(|_| DpdkError(format!("mempool name {name:?}")))?;
    let room = 2048 + ffi::RTE_PKTMBUF_HEADROOM as u16;
    // SAFETY: a valid NUL-terminated name; EAL is initialised. Returns NULL
    // with rte_errno on failure.
    let p = unsafe { ffi::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, room, socket) };
    NonNull::new(p).map(Mempool).ok_or_else(|| {
        fail(
            format_args!("rte_pktmbuf_pool_create {name} ({n} mbufs of {room} bytes, socket {socket})"),
            -1,
        )
    })
}

/// What is known about one opened port.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// The device name from the config (`net_pcap0`, `0000:03:00.0`).
    pub name: String,
    pub id: u16,
    pub driver: String,
    pub socket: i32,
    pub mac: [u8; 6],
    pub spread: Spread,
    /// False when the link was still down after the wait.
    pub link_up: bool,
}

/// The port id of device `name`.
pub fn port_by_name(name: &str) -> Result<u16, DpdkError> {
    let cname = CString::new(name).map_err(|_| DpdkError(format!("port name {name:?}")))?;
    let mut id = 0u16;
    // SAFETY: valid name and out-pointer; EAL is initialised.
    let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    if rc != 0 {
        return Err(DpdkError(format!(
            "port {name}: no DPDK device of that name (a PCI address bound to a DPDK driver, or a --vdev in dataplane.dpdk.eal_args)"
        )));
    }
    Ok(id)
}

/// The device's info and socket.
pub fn info(name: &str, id: u16) -> Result<(ffi::rte_eth_dev_info, i32), DpdkError> {
    let mut di = ffi::rte_eth_dev_info::default();
    // SAFETY: a valid port id and out-pointer.
    let rc = unsafe { ffi::rte_eth_dev_info_get(id, &mut di) };
    if rc != 0 {
        return Err(fail(format_args!("port {name}: rte_eth_dev_info_get"), rc));
    }
    // SAFETY: a valid port id. -1 (SOCKET_ID_ANY) for virtual devices.
    let socket = unsafe { ffi::rte_eth_dev_socket_id(id) };
    Ok((di, socket.max(0)))
}

/// Queue sizes and the link wait of [`setup`].
#[derive(Debug, Clone, Copy)]
pub struct QueueSizes {
    pub queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub link_wait: Duration,
}

/// Configures, starts and waits for port `name` (id `id`, info `di`):
/// `q.queues` RX and TX queues whose RX buffers come from `pool`.
pub fn setup(
    name: &str,
    id: u16,
    di: &ffi::rte_eth_dev_info,
    socket: i32,
    pool: Mempool,
    q: QueueSizes,
    outside: bool,
) -> Result<PortInfo, DpdkError> {
    let driver = driver_name(di);
    if u32::from(q.queues) > u32::from(di.max_rx_queues) || u32::from(q.queues) > u32::from(di.max_tx_queues) {
        return Err(DpdkError(format!(
            "port {name} ({driver}): {} workers need as many RX and TX queues, the device has {} RX and {} TX{}",
            q.queues,
            di.max_rx_queues,
            di.max_tx_queues,
            if driver == "net_af_packet" {
                " (set qpairs=<workers> on the vdev)"
            } else {
                ""
            }
        )));
    }
    // net_af_packet spreads the interface's traffic over all its qpairs
    // with a kernel fanout: a queue nobody polls would swallow its share.
    if driver == "net_af_packet" && di.max_rx_queues != q.queues {
        return Err(DpdkError(format!(
            "port {name} (net_af_packet): qpairs={} but {} workers; they must be equal",
            di.max_rx_queues, q.queues
        )));
    }
    let mut conf = ffi::rte_eth_conf::default();
    let spread = spread(di, q.queues, outside);
    let rss_hf = match spread {
        Spread::Rss { rss_hf } | Spread::Software { rss_hf } => rss_hf,
        Spread::Single => 0,
    };
    if rss_hf != 0 {
        conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
    }
    let csum =
        ffi::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | ffi::RTE_ETH_RX_OFFLOAD_UDP_CKSUM | ffi::RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
    conf.rxmode.offloads = di.rx_offload_capa & csum;
    // SAFETY: valid port id and conf; the port is not started.
    let rc = unsafe { ffi::rte_eth_dev_configure(id, q.queues, q.queues, &conf) };
    if rc != 0 {
        return Err(fail(format_args!("port {name} ({driver}): rte_eth_dev_configure"), rc));
    }
    let (mut rxd, mut txd) = (q.rx_desc, q.tx_desc);
    // SAFETY: valid port id and out-pointers; the port is configured.
    let rc = unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rxd, &mut txd) };
    if rc != 0 {
        return Err(fail(format_args!("port {name}: rte_eth_dev_adjust_nb_rx_tx_desc"), rc));
    }
    for queue in 0..q.queues {
        // SAFETY: valid port and queue ids; NULL rxconf/txconf take the
        // driver's defaults; `pool` lives forever.
        let rc =
            unsafe { ffi::rte_eth_rx_queue_setup(id, queue, rxd, socket as u32, core::ptr::null(), pool.0.as_ptr()) };
        if rc != 0 {
            return Err(fail(format_args!("port {name}: rte_eth_rx_queue_setup {queue}"), rc));
        }
        // SAFETY: as above.
        let rc = unsafe { ffi::rte_eth_tx_queue_setup(id, queue, txd, socket as u32, core::ptr::null()) };
        if rc != 0 {
            return Err(fail(format_args!("port {name}: rte_eth_tx_queue_setup {queue}"), rc));
        }
    }
    // SAFETY: a configured port with all its queues set up.
    let rc = unsafe { ffi::rte_eth_dev_start(id) };
    if rc != 0 {
        return Err(fail(format_args!("port {name} ({driver}): rte_eth_dev_start"), rc));
    }
    // SAFETY: a started port. Some virtual devices have no promiscuous
    // mode (-ENOTSUP): they see every frame anyway.
    let rc = unsafe { ffi::rte_eth_promiscuous_enable(id) };
    if rc != 0 && rc != -libc::ENOTSUP {
        eprintln!("moat: port {name}: promiscuous mode: {}", super::eal::strerror(-rc));
    }
    let link_up = wait_link(id, q.link_wait);
    if !link_up {
        eprintln!(
            "moat: port {name} ({driver}): link still down after {:?}; going on",
            q.link_wait
        );
    }
    Ok(PortInfo {
        name: name.to_owned(),
        id,
        driver,
        socket,
        mac: mac(name, id)?,
        spread,
        link_up,
    })
}

fn driver_name(di: &ffi::rte_eth_dev_info) -> String {
    if di.driver_name.is_null() {
        return String::new();
    }
    // SAFETY: a non-NULL driver_name is the driver's static NUL-terminated
    // name.
    unsafe { std::ffi::CStr::from_ptr(di.driver_name) }
        .to_string_lossy()
        .into_owned()
}

/// How the outside port spreads sources over `queues` workers: hardware
/// RSS on the L3 source when the driver offers `RTE_ETH_RSS_L3_SRC_ONLY`
/// and IPv4 and IPv6 hashing, else the software fallback (behind the
/// driver's ordinary RSS, when it has one, so that no single queue takes
/// all the load).
fn spread(di: &ffi::rte_eth_dev_info, queues: u16, outside: bool) -> Spread {
    if queues <= 1 || !outside {
        return Spread::Single;
    }
    let offered = di.flow_type_rss_offloads;
    let needed = ffi::RTE_ETH_RSS_L3_SRC_ONLY | ffi::RTE_ETH_RSS_IPV4 | ffi::RTE_ETH_RSS_IPV6;
    if offered & needed == needed {
        Spread::Rss {
            rss_hf: (RSS_TYPES & offered) | ffi::RTE_ETH_RSS_L3_SRC_ONLY,
        }
    } else {
        Spread::Software {
            rss_hf: RSS_TYPES & offered,
        }
    }
}

/// Polls the link status until it is up or `wait` has passed.
fn wait_link(id: u16, wait: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        let mut link = ffi::rte_eth_link::default();
        // SAFETY: a valid port id and out-pointer; does not block.
        let rc = unsafe { ffi::rte_eth_link_get_nowait(id, &mut link) };
        if rc == 0 && link.link_status() == ffi::RTE_ETH_LINK_UP {
            return true;
        }
        if t0.elapsed() >= wait {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Port `id`'s link status now; `None` when the driver cannot tell.
pub fn link_up(id: u16) -> Option<bool> {
    let mut link = ffi::rte_eth_link::default();
    // SAFETY: a valid port id and out-pointer; does not block. Drivers
    // answer it from a control thread while the queues run (testpmd's
    // `show port info` does so).
    let rc = unsafe { ffi::rte_eth_link_get_nowait(id, &mut link) };
    (rc == 0).then(|| link.link_status() == ffi::RTE_ETH_LINK_UP)
}

fn mac(name: &str, id: u16) -> Result<[u8; 6], DpdkError> {
    let mut a = ffi::rte_ether_addr::default();
    // SAFETY: a valid port id and out-pointer.
    let rc = unsafe { ffi::rte_eth_macaddr_get(id, &mut a) };
    if rc != 0 {
        return Err(fail(format_args!("port {name}: rte_eth_macaddr_get"), rc));
    }
    Ok(a.addr_bytes)
}

/// The device counters of port `id`.
pub fn stats(name: &str, id: u16) -> Result<ffi::rte_eth_stats, String> {
    let mut s = ffi::rte_eth_stats::default();
    // SAFETY: a valid, started port id and out-pointer. Drivers keep these
    // counters readable from a control thread while the queues run
    // (testpmd reads them so).
    let rc = unsafe { ffi::rte_eth_stats_get(id, &mut s) };
    if rc != 0 {
        return Err(fail(format_args!("port {name}: rte_eth_stats_get"), rc).0);
    }
    Ok(s)
}

/// Stops and closes port `id` (flushes capture files of `net_pcap`).
pub fn close(name: &str, id: u16) {
    // SAFETY: a valid port id; called once, after every queue user ended.
    let rc = unsafe { ffi::rte_eth_dev_stop(id) };
    if rc != 0 {
        eprintln!("moat: {}", fail(format_args!("port {name}: rte_eth_dev_stop"), rc).0);
    }
    // SAFETY: as above; the port is stopped.
    let rc = unsafe { ffi::rte_eth_dev_close(id) };
    if rc != 0 {
        eprintln!("moat: {}", fail(format_args!("port {name}: rte_eth_dev_close"), rc).0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offering(flow_types: u64) -> ffi::rte_eth_dev_info {
        ffi::rte_eth_dev_info {
            flow_type_rss_offloads: flow_types,
            ..Default::default()
        }
    }

    #[test]
    fn rss_on_the_l3_source_where_the_driver_offers_it() {
        let nic = offering(RSS_TYPES | ffi::RTE_ETH_RSS_L3_SRC_ONLY | (1 << 40));
        assert_eq!(
            spread(&nic, 4, true),
            Spread::Rss {
                rss_hf: RSS_TYPES | ffi::RTE_ETH_RSS_L3_SRC_ONLY
            },
            "only what Moat asks for"
        );
        // Only what the driver offers is asked for (rte_eth_dev_configure
        // refuses anything else).
        let partial = offering(ffi::RTE_ETH_RSS_IPV4 | ffi::RTE_ETH_RSS_IPV6 | ffi::RTE_ETH_RSS_L3_SRC_ONLY);
        assert_eq!(
            spread(&partial, 2, true),
            Spread::Rss {
                rss_hf: ffi::RTE_ETH_RSS_IPV4 | ffi::RTE_ETH_RSS_IPV6 | ffi::RTE_ETH_RSS_L3_SRC_ONLY
            }
        );
    }

    #[test]
    fn software_fallback_behind_ordinary_rss_or_none() {
        let no_src_only = offering(RSS_TYPES);
        assert_eq!(spread(&no_src_only, 2, true), Spread::Software { rss_hf: RSS_TYPES });
        let ipv4_only = offering(ffi::RTE_ETH_RSS_IPV4 | ffi::RTE_ETH_RSS_L3_SRC_ONLY);
        assert_eq!(
            spread(&ipv4_only, 2, true),
            Spread::Software {
                rss_hf: ffi::RTE_ETH_RSS_IPV4
            },
            "L3_SRC_ONLY without IPv6 hashing is not enough"
        );
        assert_eq!(spread(&offering(0), 2, true), Spread::Software { rss_hf: 0 });
    }

    #[test]
    fn one_worker_and_the_inside_port_need_no_spreading() {
        let nic = offering(RSS_TYPES | ffi::RTE_ETH_RSS_L3_SRC_ONLY);
        assert_eq!(spread(&nic, 1, true), Spread::Single);
        assert_eq!(spread(&nic, 4, false), Spread::Single);
    }
}
