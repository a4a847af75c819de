//! Allow/deny CIDR lists with longest-prefix match, IPv4 and IPv6.
//!
//! Control side: `prefix-trie` holds the rules as written (for listing,
//! deleting, exporting). Packet path: a flat table per family, one hash map
//! keyed by (masked address, prefix length) and the distinct prefix lengths
//! present, longest first; a lookup probes one map entry per distinct length
//! and stops at the first hit, so an empty ACL costs one branch and a typical
//! one (a few lengths) a few hash probes, whatever the number of rules.

use core::net::IpAddr;

use hashbrown::HashMap;
use ipnet::IpNet;
use prefix_trie::PrefixMap;

/// What a matching rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclAction {
    /// Trusted source: skips SYN authentication and rate limits (never the
    /// sanity and service checks).
    Allow,
    /// Dropped as `acl_deny`.
    Deny,
}

/// Flat LPM table for one family; addresses as u128 (IPv4 in the low 32 bits).
#[derive(Debug, Clone, Default)]
struct Flat {
    lengths: Vec<u8>,
    map: HashMap<(u128, u8), AclAction, ahash::RandomState>,
}

impl Flat {
    fn insert(&mut self, addr: u128, len: u8, bits: u8, action: AclAction) {
        self.map.insert((mask(addr, len, bits), len), action);
        if !self.lengths.contains(&len) {
            self.lengths.push(len);
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    #[inline]
    fn lookup(&self, addr: u128, bits: u8) -> Option<AclAction> {
        for &len in &self.lengths {
            if let Some(a) = self.map.get(&(mask(addr, len, bits), len)) {
                return Some(*a);
            }
        }
        None
    }
}

#[inline]
fn mask(addr: u128, len: u8, bits: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let keep = u128::MAX << (128 - u32::from(len));
        (addr << (128 - u32::from(bits))) & keep
    }
}

/// The ACL: rules as written, plus the flat tables the packet path reads.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    rules4: PrefixMap<ipnet::Ipv4Net, AclAction>,
    rules6: PrefixMap<ipnet::Ipv6Net, AclAction>,
    v4: Flat,
    v6: Flat,
}

impl Acl {
    /// Adds or replaces the rule for `net` (host bits are ignored).
    pub fn insert(&mut self, net: IpNet, action: AclAction) {
        match net.trunc() {
            IpNet::V4(n) => {
                self.rules4.insert(n, action);
                self.v4
                    .insert(u128::from(u32::from(n.addr())), n.prefix_len(), 32, action);
            }
            IpNet::V6(n) => {
                self.rules6.insert(n, action);
                self.v6.insert(u128::from(n.addr()), n.prefix_len(), 128, action);
            }
        }
    }

    /// Removes the rule for exactly `net`; returns what it said.
    pub fn remove(&mut self, net: IpNet) -> Option<AclAction> {
        let old = match net.trunc() {
            IpNet::V4(n) => self.rules4.remove(&n),
            IpNet::V6(n) => self.rules6.remove(&n),
        };
        self.rebuild();
        old
    }

    fn rebuild(&mut self) {
        self.v4 = Flat::default();
        self.v6 = Flat::default();
        for (n, a) in self.rules4.iter() {
            self.v4.insert(u128::from(u32::from(n.addr())), n.prefix_len(), 32, *a);
        }
        for (n, a) in self.rules6.iter() {
            self.v6.insert(u128::from(n.addr()), n.prefix_len(), 128, *a);
        }
    }

    /// Every rule, IPv4 first, in prefix order.
    pub fn rules(&self) -> impl Iterator<Item = (IpNet, AclAction)> + '_ {
        let v4 = self.rules4.iter().map(|(n, a)| (IpNet::V4(*n), *a));
        let v6 = self.rules6.iter().map(|(n, a)| (IpNet::V6(*n), *a));
        v4.chain(v6)
    }

    pub fn is_empty(&self) -> bool {
        self.v4.lengths.is_empty() && self.v6.lengths.is_empty()
    }

    /// Longest-prefix match of `addr` (packet path). An IPv4-mapped IPv6
    /// address is not folded into IPv4: rules are per family.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<AclAction> {
        match addr {
            IpAddr::V4(a) => self.v4.lookup(u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a), 128),
        }
    }

    /// [`Acl::lookup`] by integer address (the packet path).
    #[inline]
    pub fn lookup_addr(&self, addr: crate::parse::Addr, v6: bool) -> Option<AclAction> {
        if v6 {
            self.v6.lookup(addr.v6_bits(), 128)
        } else {
            self.v4.lookup(u128::from(addr.v4_bits()), 32)
        }
    }

    /// The same match through the trie (control side, and the reference the
    /// flat table is tested against).
    pub fn lookup_slow(&self, addr: IpAddr) -> Option<AclAction> {
        match addr {
            IpAddr::V4(a) => self.rules4.get_lpm(&ipnet::Ipv4Net::from(a)).map(|(_, x)| *x),
            IpAddr::V6(a) => self.rules6.get_lpm(&ipnet::Ipv6Net::from(a)).map(|(_, x)| *x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut acl = Acl::default();
        assert_eq!(acl.lookup("1.2.3.4".parse().unwrap()), None);
        acl.insert(net("10.0.0.0/8"), AclAction::Deny);
        acl.insert(net("10.1.0.0/16"), AclAction::Allow);
        acl.insert(net("10.1.2.3/32"), AclAction::Deny);
        acl.insert(net("2001:db8::/32"), AclAction::Deny);
        acl.insert(net("0.0.0.0/0"), AclAction::Allow);
        let l = |acl: &Acl, s: &str| acl.lookup(s.parse().unwrap());
        assert_eq!(l(&acl, "10.9.9.9"), Some(AclAction::Deny));
        assert_eq!(l(&acl, "10.1.9.9"), Some(AclAction::Allow));
        assert_eq!(l(&acl, "10.1.2.3"), Some(AclAction::Deny));
        assert_eq!(l(&acl, "11.0.0.1"), Some(AclAction::Allow));
        assert_eq!(l(&acl, "2001:db8::1"), Some(AclAction::Deny));
        assert_eq!(l(&acl, "2001:db9::1"), None);
        assert_eq!(acl.remove(net("10.1.0.0/16")), Some(AclAction::Allow));
        assert_eq!(l(&acl, "10.1.9.9"), Some(AclAction::Deny));
        assert_eq!(acl.rules().count(), 4);
    }

    #[test]
    fn host_bits_are_ignored() {
        let mut acl = Acl::default();
        acl.insert(net("192.0.2.77/24"), AclAction::Deny);
        assert_eq!(acl.lookup("192.0.2.1".parse().unwrap()), Some(AclAction::Deny));
        assert_eq!(acl.rules().next().unwrap().0, net("192.0.2.0/24"));
    }

    proptest! {
        #[test]
        fn flat_table_agrees_with_trie(
            rules in proptest::collection::vec((any::<u32>(), 0u8..=32, any::<bool>()), 0..40),
            probes in proptest::collection::vec(any::<u32>(), 1..50),
        ) {
            let mut acl = Acl::default();
            for (a, len, allow) in &rules {
                let n = ipnet::Ipv4Net::new(core::net::Ipv4Addr::from(*a), *len).unwrap();
                acl.insert(IpNet::V4(n), if *allow { AclAction::Allow } else { AclAction::Deny });
            }
            for p in probes.iter().chain(rules.iter().map(|r| &r.0)) {
                let addr = IpAddr::V4(core::net::Ipv4Addr::from(*p));
                prop_assert_eq!(acl.lookup(addr), acl.lookup_slow(addr));
            }
        }
    }
}
