//! One client address's share of the slots: a machine that opens many
//! connections must not take every slot (`--max-per-address`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use common::lock;

// ANCHOR: per_address
/// How many connections each client address holds, so that one machine
/// cannot take every slot (`--max-per-address`).
#[derive(Default)]
pub(crate) struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in its address's share; dropping it gives it back.
pub(crate) struct AddressPlace<'a> {
    counts: &'a PerAddress,
    address: IpAddr,
}

impl PerAddress {
    /// A place for one more connection from `ip`, or None when its address
    /// already holds `max`.
    pub(crate) fn enter(&self, ip: IpAddr, max: usize) -> Option<AddressPlace<'_>> {
        let address = counted_as(ip);
        let mut counts = lock(&self.0);
        let held = counts.entry(address).or_insert(0);
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(AddressPlace {
            counts: self,
            address,
        })
    }
}

impl Drop for AddressPlace<'_> {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts.0);
        if let Some(held) = counts.get_mut(&self.address) {
            *held -= 1;
            // Only addresses with connections stay: the map cannot grow
            // with every address that ever came.
            if *held == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// The address a connection counts against: an IPv4 one as it is (also when
/// it comes as `::ffff:a.b.c.d`), an IPv6 one by its /64, since one machine
/// is usually given a whole /64 and can pick a new address in it at will.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}
// ANCHOR_END: per_address

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share_and_gets_it_back() {
        let counts = PerAddress::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = counts.enter(ip, 2);
        let second = counts.enter(ip, 2);
        assert!(first.is_some() && second.is_some());
        assert!(
            counts.enter(ip, 2).is_none(),
            "a third connection over a share of 2 must be refused"
        );
        drop(first);
        assert!(
            counts.enter(ip, 2).is_some(),
            "a place given back is free again"
        );
    }

    #[test]
    fn an_ipv6_address_counts_by_its_64_and_a_mapped_ipv4_one_as_ipv4() {
        let counted = |ip: &str| counted_as(ip.parse().unwrap()).to_string();
        assert_eq!(
            counted("2001:db8:1:2:aaaa::1"),
            counted("2001:db8:1:2:bbbb::2"),
            "two addresses of one /64 are one machine"
        );
        assert_ne!(counted("2001:db8:1:2::1"), counted("2001:db8:1:3::1"));
        assert_eq!(counted("::ffff:192.0.2.1"), "192.0.2.1");
    }
}
