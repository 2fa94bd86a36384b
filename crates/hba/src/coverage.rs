//! Which client addresses rules admit, alone and together: one address covering another
//! (`covers_address`), two that may meet, and the union of many ([`Union`]), where IP ranges
//! merge so that `0.0.0.0/0` and `::/0` together are every address, and `samenet` covers
//! `samehost`. Host names, `samehost` and `samenet` stay symbolic: which addresses they mean
//! depends on DNS and on the server's interfaces, so only an `all` or every IP covers them.

use crate::addr;
use crate::parse_line::Address;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Whether every client address `b` admits, `a` admits.
pub fn covers_address(a: &Option<Address>, b: &Option<Address>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Address::All), Some(_)) => true,
        (Some(Address::Ip { addr: aa, mask: am }), Some(Address::Ip { addr: ba, mask: bm })) => {
            let (aa, w1) = addr::bits(aa);
            let (am, _) = addr::bits(am);
            let (ba, w2) = addr::bits(ba);
            let (bm, _) = addr::bits(bm);
            w1 == w2 && am & !bm == 0 && (aa ^ ba) & am == 0
        }
        (Some(Address::Hostname(ah)), Some(Address::Hostname(bh))) => {
            let (ah, bh) = (ah.to_ascii_lowercase(), bh.to_ascii_lowercase());
            ah == bh || (ah.starts_with('.') && bh.ends_with(&ah))
        }
        (Some(Address::SameNet), Some(Address::SameHost)) => true,
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether some client address may be admitted by both (only IP ranges can be told apart).
pub fn may_intersect(a: &Option<Address>, b: &Option<Address>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Address::Ip { addr: aa, mask: am }), Some(Address::Ip { addr: ba, mask: bm })) => {
            let (aa, w1) = addr::bits(aa);
            let (am, _) = addr::bits(am);
            let (ba, w2) = addr::bits(ba);
            let (bm, _) = addr::bits(bm);
            w1 == w2 && (aa ^ ba) & am & bm == 0
        }
        (Some(_), Some(_)) => true,
        _ => false,
    }
}

/// An address as an integer: `u32` for IPv4 (a tree of half the size, searched faster than
/// one of `u128`), `u128` for IPv6.
trait Bits: Copy + Ord {
    /// The next address, or the same at the top of the range.
    fn next(self) -> Self;
}

impl Bits for u32 {
    fn next(self) -> u32 {
        self.saturating_add(1)
    }
}

impl Bits for u128 {
    fn next(self) -> u128 {
        self.saturating_add(1)
    }
}

/// Disjoint, non-adjacent closed ranges of addresses (start → end).
struct Ranges<K>(BTreeMap<K, K>);

impl<K> Default for Ranges<K> {
    fn default() -> Self {
        Ranges(BTreeMap::new())
    }
}

impl<K: Bits> Ranges<K> {
    fn insert(&mut self, mut lo: K, mut hi: K) {
        if let Some((&s, &e)) = self.0.range(..=lo).next_back() {
            if e >= hi {
                return;
            }
            if e.next() >= lo {
                lo = s;
            }
        }
        // Swallow every range that starts inside or just after the new one.
        while let Some((&s, &e)) = self.0.range(lo..=hi.next()).next() {
            self.0.remove(&s);
            hi = hi.max(e);
        }
        self.0.insert(lo, hi);
    }

    /// Whether the union of the ranges `pick` chooses from `unions` contains every address in
    /// `lo..=hi`.
    fn cover(unions: &[&Union], pick: Pick<K>, lo: K, hi: K) -> bool {
        let mut pos = lo;
        loop {
            let reach = unions
                .iter()
                .filter_map(|u| pick(u).0.range(..=pos).next_back())
                .filter(|(_, &e)| e >= pos)
                .map(|(_, &e)| e)
                .max();
            match reach {
                None => return false,
                Some(e) if e >= hi => return true,
                Some(e) => pos = e.next(),
            }
        }
    }
}

/// Which ranges of a union: IPv4 or IPv6.
type Pick<K> = fn(&Union) -> &Ranges<K>;

/// The client addresses some earlier rules admit, together.
#[derive(Default)]
pub struct Union {
    local: bool,
    all: bool,
    samehost: bool,
    samenet: bool,
    hostnames: Vec<Address>,
    v4: Ranges<u32>,
    v6: Ranges<u128>,
    /// Addresses with a non-contiguous mask: they cover only one by one.
    odd: Vec<Address>,
}

/// The range of addresses an address with a contiguous mask admits, and its width.
fn range_of(a: &IpAddr, m: &IpAddr) -> Option<(u128, u128, u32)> {
    addr::prefix_len(m)?;
    let (a, w) = addr::bits(a);
    let (m, _) = addr::bits(m);
    let lo = a & m;
    let width_mask = if w == 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    };
    Some((lo, lo | (!m & width_mask), w))
}

impl Union {
    pub fn add(&mut self, a: &Option<Address>) {
        match a {
            None => self.local = true,
            Some(Address::All) => self.all = true,
            Some(Address::SameHost) => self.samehost = true,
            Some(Address::SameNet) => self.samenet = true,
            Some(h @ Address::Hostname(_)) => self.hostnames.push(h.clone()),
            Some(ip @ Address::Ip { addr, mask }) => match range_of(addr, mask) {
                Some((lo, hi, 32)) => self.v4.insert(lo as u32, hi as u32),
                Some((lo, hi, _)) => self.v6.insert(lo, hi),
                None => self.odd.push(ip.clone()),
            },
        }
    }

    /// Whether the addresses of `b` lie in the union of `unions`.
    pub fn covers(unions: &[&Union], b: &Option<Address>) -> bool {
        let any = |f: fn(&Union) -> bool| unions.iter().any(|u| f(u));
        let v4: Pick<u32> = |u| &u.v4;
        let v6: Pick<u128> = |u| &u.v6;
        let every_ip =
            || Ranges::cover(unions, v4, 0, u32::MAX) && Ranges::cover(unions, v6, 0, u128::MAX);
        match b {
            None => any(|u| u.local),
            Some(_) if any(|u| u.all) => true,
            Some(Address::All) => every_ip(),
            Some(Address::SameHost) => any(|u| u.samehost || u.samenet) || every_ip(),
            Some(Address::SameNet) => any(|u| u.samenet) || every_ip(),
            Some(Address::Hostname(_)) => {
                unions
                    .iter()
                    .flat_map(|u| &u.hostnames)
                    .any(|h| covers_address(&Some(h.clone()), b))
                    || every_ip()
            }
            Some(Address::Ip { addr, mask }) => {
                if unions
                    .iter()
                    .flat_map(|u| &u.odd)
                    .any(|o| covers_address(&Some(o.clone()), b))
                {
                    return true;
                }
                // A non-contiguous mask admits addresses between its lowest and highest.
                let (a, w) = addr::bits(addr);
                let (m, _) = addr::bits(mask);
                let width_mask = if w == 128 {
                    u128::MAX
                } else {
                    (1u128 << w) - 1
                };
                let (lo, hi) = (a & m, (a & m) | (!m & width_mask));
                if w == 32 {
                    Ranges::cover(unions, v4, lo as u32, hi as u32)
                } else {
                    Ranges::cover(unions, v6, lo, hi)
                }
            }
        }
    }
}
