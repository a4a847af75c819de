//! Which client uses which source address and ports, so that a received
//! segment finds its client by arithmetic on its destination address and
//! port: no hash table, nothing allocated per connection.
//!
//! The address range is split over the cores by index (`i % cores`), so a
//! core's socket filter can take its own clients' answers by address
//! alone. On a core, client `s` uses its `s % A`-th address (A: the core's
//! addresses) and port slot `j = s / A` of that address: the ports
//! `FIRST_PORT + j + P·k` (P: clients per address), `k` counting the
//! client's attempts modulo the number that fit in Linux's ephemeral range
//! (32768-60999). A client thus cycles through `28232 / P` ports before
//! reusing one, which keeps a reused 4-tuple out of the origin's TIME-WAIT
//! (60 s) at any rate below `28232 / P / 60` connections per second and
//! client.

use core::net::Ipv4Addr;

/// Linux's default `ip_local_port_range`.
pub const FIRST_PORT: u16 = 32768;
pub const PORTS: u32 = 61000 - FIRST_PORT as u32;

/// One core's share of the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    base: u32,
    count: u32,
    cores: u32,
    core: u32,
    /// This core's addresses.
    addrs: u32,
    /// Clients on this core.
    clients: u32,
    /// Clients per address (P).
    per_addr: u32,
}

impl Layout {
    /// Core `core` of `cores`, for `clients` clients in all over `count`
    /// addresses from `first`. An error says what does not fit.
    pub fn new(first: Ipv4Addr, count: u32, clients: u32, cores: u32, core: u32) -> Result<Layout, String> {
        if cores == 0 || core >= cores {
            return Err(format!("core {core} of {cores}"));
        }
        if count < cores {
            return Err(format!(
                "{count} source address(es) for {cores} cores: give at least one per core"
            ));
        }
        if u32::from(first).checked_add(count - 1).is_none() {
            return Err(format!("{count} addresses from {first} go past 255.255.255.255"));
        }
        let clients_here = clients / cores + u32::from(core < clients % cores);
        let addrs = (count - core).div_ceil(cores);
        let per_addr = clients_here.div_ceil(addrs).max(1);
        if per_addr > PORTS {
            return Err(format!(
                "{clients} clients over {count} addresses: more than {PORTS} clients (ports) per address"
            ));
        }
        Ok(Layout {
            base: u32::from(first),
            count,
            cores,
            core,
            addrs,
            clients: clients_here,
            per_addr,
        })
    }

    /// Clients on this core.
    pub fn clients(&self) -> usize {
        self.clients as usize
    }

    /// The source address of client `s`.
    pub fn addr(&self, s: usize) -> Ipv4Addr {
        let local = s as u32 % self.addrs;
        Ipv4Addr::from(self.base + self.core + self.cores * local)
    }

    /// The source port of client `s`'s `k`-th attempt.
    pub fn port(&self, s: usize, k: u32) -> u16 {
        let j = s as u32 / self.addrs;
        let cycle = PORTS / self.per_addr;
        (u32::from(FIRST_PORT) + j + self.per_addr * (k % cycle)) as u16
    }

    /// The client a segment to `dst`:`port` is for, if it is one of this
    /// core's.
    pub fn client(&self, dst: Ipv4Addr, port: u16) -> Option<usize> {
        let i = u32::from(dst).wrapping_sub(self.base);
        if i >= self.count || i % self.cores != self.core {
            return None;
        }
        let p = u32::from(port).checked_sub(u32::from(FIRST_PORT))?;
        if p >= PORTS {
            return None;
        }
        let s = (p % self.per_addr) * self.addrs + i / self.cores;
        (s < self.clients).then_some(s as usize)
    }

    /// The first source address and the count of the whole range, the
    /// number of cores and this core's index (for the socket filter).
    pub fn partition(&self) -> (Ipv4Addr, u32, u32, u32) {
        (Ipv4Addr::from(self.base), self.count, self.cores, self.core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_is_found_from_its_address_and_each_of_its_ports() {
        let first = Ipv4Addr::new(10, 10, 0, 100);
        for (count, clients, cores) in [(100, 1000, 1), (100, 1000, 2), (3, 7, 3), (100, 50, 1), (5, 20000, 2)] {
            let mut seen = std::collections::HashSet::new();
            for core in 0..cores {
                let l = Layout::new(first, count, clients, cores, core).unwrap();
                for s in 0..l.clients() {
                    for k in [0, 1, 2, 1000, u32::MAX] {
                        let (a, p) = (l.addr(s), l.port(s, k));
                        assert_eq!(
                            l.client(a, p),
                            Some(s),
                            "{count} {clients} {cores}: core {core} client {s} k {k}"
                        );
                        for other in 0..cores {
                            if other != core {
                                let o = Layout::new(first, count, clients, cores, other).unwrap();
                                assert_eq!(o.client(a, p), None);
                            }
                        }
                    }
                    assert!(seen.insert((l.addr(s), l.port(s, 0))), "two clients share a port");
                    assert!(u32::from(l.addr(s)) - u32::from(first) < count);
                }
            }
            assert_eq!(seen.len(), clients as usize);
        }
    }

    #[test]
    fn strangers_and_bad_shapes() {
        let l = Layout::new(Ipv4Addr::new(10, 10, 0, 100), 100, 10, 1, 0).unwrap();
        assert_eq!(l.client(Ipv4Addr::new(10, 10, 0, 99), 32768), None);
        assert_eq!(l.client(Ipv4Addr::new(10, 10, 0, 200), 32768), None);
        assert_eq!(l.client(Ipv4Addr::new(10, 10, 0, 100), 80), None);
        assert_eq!(l.client(Ipv4Addr::new(10, 10, 0, 100), 61000), None);
        // Address 100+20 has no client (10 clients on 100 addresses).
        assert_eq!(l.client(Ipv4Addr::new(10, 10, 0, 120), 32768), None);
        assert!(Layout::new(Ipv4Addr::new(10, 0, 0, 1), 1, 10, 2, 0).is_err());
        assert!(Layout::new(Ipv4Addr::new(255, 255, 255, 255), 2, 1, 1, 0).is_err());
        assert!(Layout::new(Ipv4Addr::new(10, 0, 0, 1), 1, PORTS + 1, 1, 0).is_err());
        assert!(Layout::new(Ipv4Addr::new(10, 0, 0, 1), 1, 1, 1, 1).is_err());
    }
}
