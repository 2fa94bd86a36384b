//! Addresses as the server reads them: `getaddrinfo(AI_NUMERICHOST)` (so `10.1`, `127.1` and
//! scoped IPv6 are accepted exactly when PostgreSQL accepts them), CIDR masks as
//! `pg_sockaddr_cidr_mask`, text as `getnameinfo(NI_NUMERICHOST)`, and the machine's own
//! interfaces for `samehost`/`samenet`.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Result of reading an address token without DNS.
pub enum Numeric {
    Ip(IpAddr),
    /// `EAI_NONAME`: PostgreSQL takes it as a host name.
    NotNumeric,
    /// Any other failure, with `gai_strerror`'s text.
    Invalid(String),
}

/// `pg_getaddrinfo_all(str, NULL, {AI_NUMERICHOST, AF_UNSPEC})`.
pub fn numeric_host(s: &str) -> Numeric {
    // Fast path: a strict dotted quad (no leading zeros) reads the same in inet_aton.
    if s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Numeric::Ip(IpAddr::V4(v4));
        }
    }
    let Ok(c) = CString::new(s) else {
        return Numeric::NotNumeric;
    };
    // SAFETY: plain libc call with a zeroed hints struct and a result freed below.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_flags = libc::AI_NUMERICHOST;
        hints.ai_family = libc::AF_UNSPEC;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        let rc = libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res);
        if rc == 0 && !res.is_null() {
            let ip = sockaddr_ip((*res).ai_addr);
            libc::freeaddrinfo(res);
            match ip {
                Some(ip) => Numeric::Ip(ip),
                None => Numeric::Invalid("unsupported address family".into()),
            }
        } else {
            if !res.is_null() {
                libc::freeaddrinfo(res);
            }
            if rc == libc::EAI_NONAME {
                Numeric::NotNumeric
            } else {
                Numeric::Invalid(gai_strerror(rc))
            }
        }
    }
}

/// `gai_strerror`.
pub fn gai_strerror(rc: i32) -> String {
    // SAFETY: gai_strerror returns a static string.
    unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
        .to_string_lossy()
        .into_owned()
}

/// Reads an IPv4/IPv6 socket address.
///
/// # Safety
/// `sa` must point to a valid sockaddr of the family it claims.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match (*sa).sa_family as i32 {
            libc::AF_INET => {
                let a = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let a = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// The address as `getnameinfo(NI_NUMERICHOST)` prints it (what `pg_hba_file_rules` shows).
pub fn to_text(ip: &IpAddr) -> String {
    let mut s = String::new();
    push_text(ip, &mut s);
    s
}

/// [`to_text`], appended to `s` (a list of 100,000 rules reuses one buffer).
pub fn push_text(ip: &IpAddr, s: &mut String) {
    match ip {
        IpAddr::V4(v4) => push_v4(v4.octets(), s),
        IpAddr::V6(v6) => push_v6(v6, s),
    }
}

/// A dotted quad (`inet_ntop4`).
fn push_v4(octets: [u8; 4], s: &mut String) {
    for (i, o) in octets.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if *o >= 100 {
            s.push((b'0' + o / 100) as char);
        }
        if *o >= 10 {
            s.push((b'0' + (o / 10) % 10) as char);
        }
        s.push((b'0' + o % 10) as char);
    }
}

/// glibc's `inet_ntop6` (resolv/inet_ntop.c), which `getnameinfo(NI_NUMERICHOST)` prints
/// with (no scope here): the first longest run of two or more zero groups becomes `::`, and
/// `::a.b.c.d` and `::ffff:a.b.c.d` end in a dotted quad. Rust's own formatting differs
/// (it never prints the first form).
fn push_v6(ip: &Ipv6Addr, s: &mut String) {
    use std::fmt::Write;
    let words = ip.segments();
    // (start, length) of the first longest run of zero groups, and of the current run.
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            cur = Some(cur.map_or((i, 1), |(b, l)| (b, l + 1)));
        } else if let Some(c) = cur.take() {
            if best.is_none_or(|b| c.1 > b.1) {
                best = Some(c);
            }
        }
    }
    if let Some(c) = cur {
        if best.is_none_or(|b| c.1 > b.1) {
            best = Some(c);
        }
    }
    let best = best.filter(|b| b.1 >= 2);
    for (i, &w) in words.iter().enumerate() {
        if let Some((b, l)) = best {
            if (b..b + l).contains(&i) {
                if i == b {
                    s.push(':');
                }
                continue;
            }
        }
        if i != 0 {
            s.push(':');
        }
        if i == 6 && best.is_some_and(|(b, l)| b == 0 && (l == 6 || (l == 5 && words[5] == 0xffff)))
        {
            let o = ip.octets();
            push_v4([o[12], o[13], o[14], o[15]], s);
            return;
        }
        let _ = write!(s, "{w:x}");
    }
    if best.is_some_and(|(b, l)| b + l == 8) {
        s.push(':');
    }
}

/// `strtol(s, &end, 10)` that must consume everything (`pg_sockaddr_cidr_mask`).
fn strtol_whole(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Overflow saturates (LONG_MAX), which is out of range anyway.
    let v = digits.parse::<i64>().unwrap_or(i64::MAX);
    Some(if neg { -v } else { v })
}

/// The mask for a CIDR length in the family of `like`, or None if invalid.
pub fn cidr_mask(bits: &str, like: &IpAddr) -> Option<IpAddr> {
    let n = strtol_whole(bits)?;
    match like {
        IpAddr::V4(_) => {
            if !(0..=32).contains(&n) {
                return None;
            }
            let m = if n == 0 { 0 } else { u32::MAX << (32 - n) };
            Some(IpAddr::V4(Ipv4Addr::from(m)))
        }
        IpAddr::V6(_) => {
            if !(0..=128).contains(&n) {
                return None;
            }
            let m = if n == 0 { 0 } else { u128::MAX << (128 - n) };
            Some(IpAddr::V6(Ipv6Addr::from(m)))
        }
    }
}

/// The address bits as an integer and its width (32 or 128).
pub fn bits(ip: &IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(a) => (u32::from(*a) as u128, 32),
        IpAddr::V6(a) => (u128::from(*a), 128),
    }
}

/// The prefix length of a contiguous mask, or None.
pub fn prefix_len(mask: &IpAddr) -> Option<u32> {
    let (m, w) = bits(mask);
    let ones = m.count_ones();
    let expect = if ones == 0 {
        0
    } else {
        (u128::MAX >> (128 - w)) & !((1u128 << (w - ones)) - 1)
    };
    (m == expect).then_some(ones)
}

/// `pg_range_sockaddr`: same family and equal under the mask.
pub fn in_range(client: &IpAddr, addr: &IpAddr, mask: &IpAddr) -> bool {
    let (c, cw) = bits(client);
    let (a, aw) = bits(addr);
    let (m, mw) = bits(mask);
    cw == aw && aw == mw && (c ^ a) & m == 0
}

/// The machine's interfaces: (address, netmask), for `samehost` and `samenet`.
pub fn interfaces() -> Vec<(IpAddr, IpAddr)> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs/freeifaddrs pair; each entry read only while the list lives.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut p = list;
        while !p.is_null() {
            let ifa = &*p;
            if !ifa.ifa_addr.is_null() && !ifa.ifa_netmask.is_null() {
                let fam = (*ifa.ifa_addr).sa_family as i32;
                if fam == libc::AF_INET || fam == libc::AF_INET6 {
                    if let (Some(a), Some(m)) =
                        (sockaddr_ip(ifa.ifa_addr), sockaddr_ip(ifa.ifa_netmask))
                    {
                        out.push((a, m));
                    }
                }
            }
            p = ifa.ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// Whether a host name resolves (`radiusservers` entries are looked up when the file loads).
pub fn resolves(host: &str) -> bool {
    if !matches!(numeric_host(host), Numeric::NotNumeric) {
        return matches!(numeric_host(host), Numeric::Ip(_));
    }
    let Ok(c) = CString::new(host) else {
        return false;
    };
    // SAFETY: plain libc call; the result is freed.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_family = libc::AF_UNSPEC;
        hints.ai_socktype = libc::SOCK_DGRAM;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        let rc = libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res);
        if !res.is_null() {
            libc::freeaddrinfo(res);
        }
        rc == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        match numeric_host(s) {
            Numeric::Ip(i) => i,
            _ => panic!("{s} is not numeric"),
        }
    }

    /// The address as glibc's `getnameinfo(NI_NUMERICHOST)` prints it.
    fn libc_text(ip: &IpAddr) -> String {
        // SAFETY: sockaddr structs built here, buffer sized NI_MAXHOST.
        unsafe {
            let mut buf = [0 as libc::c_char; 1025];
            let rc = match ip {
                IpAddr::V4(v4) => {
                    let mut sa: libc::sockaddr_in = std::mem::zeroed();
                    sa.sin_family = libc::AF_INET as libc::sa_family_t;
                    sa.sin_addr.s_addr = u32::from(*v4).to_be();
                    libc::getnameinfo(
                        &sa as *const _ as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                        buf.as_mut_ptr(),
                        buf.len() as libc::socklen_t,
                        std::ptr::null_mut(),
                        0,
                        libc::NI_NUMERICHOST,
                    )
                }
                IpAddr::V6(v6) => {
                    let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                    sa.sin6_addr.s6_addr = v6.octets();
                    libc::getnameinfo(
                        &sa as *const _ as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                        buf.as_mut_ptr(),
                        buf.len() as libc::socklen_t,
                        std::ptr::null_mut(),
                        0,
                        libc::NI_NUMERICHOST,
                    )
                }
            };
            if rc != 0 {
                return "???".into();
            }
            CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
        }
    }

    #[test]
    fn text_as_glibc_prints_it() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut n = 0;
        for i in 0..200_000u32 {
            let r = next();
            // Groups zero, 0xffff or small, so that every form of zero run shows up.
            let mut words = [0u16; 8];
            for (k, w) in words.iter_mut().enumerate() {
                *w = match (r >> (k * 3)) & 7 {
                    0..=3 => 0,
                    4 => 0xffff,
                    5 => (r >> (k * 5 + 24)) as u16 & 0xf,
                    _ => (r >> (k * 7)) as u16,
                };
            }
            let v6 = IpAddr::V6(Ipv6Addr::from(words));
            assert_eq!(to_text(&v6), libc_text(&v6), "{words:x?}");
            let v4 = IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)));
            assert_eq!(to_text(&v4), libc_text(&v4));
            n += 1;
        }
        for s in [
            "::",
            "::1",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "1::",
            "1:0:0:2::",
            "::ffff:0:1.2.3.4",
        ] {
            let ip = ip(s);
            assert_eq!(to_text(&ip), libc_text(&ip), "{s}");
        }
        assert_eq!(n, 200_000);
    }

    #[test]
    fn numeric_forms_as_glibc() {
        assert_eq!(to_text(&ip("10.1")), "10.0.0.1");
        assert_eq!(to_text(&ip("127.1")), "127.0.0.1");
        assert_eq!(to_text(&ip("::1")), "::1");
        assert_eq!(
            to_text(&ip("fe80::7a31:c1ff:0000:0000")),
            "fe80::7a31:c1ff:0:0"
        );
        assert!(matches!(
            numeric_host("db.example.com"),
            Numeric::NotNumeric
        ));
        assert!(matches!(numeric_host(".example.com"), Numeric::NotNumeric));
    }

    #[test]
    fn masks() {
        let v4 = ip("10.0.0.0");
        assert_eq!(to_text(&cidr_mask("8", &v4).unwrap()), "255.0.0.0");
        assert_eq!(to_text(&cidr_mask("0", &v4).unwrap()), "0.0.0.0");
        assert!(cidr_mask("33", &v4).is_none());
        assert!(cidr_mask("", &v4).is_none());
        assert!(cidr_mask("8x", &v4).is_none());
        assert_eq!(to_text(&cidr_mask("+8", &v4).unwrap()), "255.0.0.0");
        let v6 = ip("::1");
        assert_eq!(
            to_text(&cidr_mask("128", &v6).unwrap()),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(prefix_len(&ip("255.255.255.0")), Some(24));
        assert_eq!(prefix_len(&ip("255.0.255.0")), None);
        assert_eq!(prefix_len(&ip("0.0.0.0")), Some(0));
        assert!(in_range(&ip("10.1.2.3"), &ip("10.9.9.9"), &ip("255.0.0.0")));
        assert!(!in_range(
            &ip("::ffff:10.1.2.3"),
            &ip("10.0.0.0"),
            &ip("255.0.0.0")
        ));
    }
}
