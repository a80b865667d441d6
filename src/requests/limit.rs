//! A per-source budget for the public web form: at most `per_hour` requests from one address
//! (an IPv6 /64 counts as one) in a sliding hour, kept as a fixed-size map. Pure: `now` in.

use std::collections::HashMap;
use std::net::IpAddr;

/// Sources remembered at most; when full, the quietest are forgotten.
const MAX_SOURCES: usize = 100_000;
const HOUR_MS: i64 = 3_600_000;

/// The budget.
#[derive(Debug)]
pub struct SourceLimit {
    per_hour: u32,
    seen: HashMap<IpAddr, Vec<i64>>,
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

impl SourceLimit {
    /// `per_hour` requests per source.
    pub fn new(per_hour: u32) -> SourceLimit {
        SourceLimit {
            per_hour: per_hour.max(1),
            seen: HashMap::new(),
        }
    }

    /// Whether `ip` may send one more at `now_ms`; counts it when it may.
    pub fn allow(&mut self, ip: IpAddr, now_ms: i64) -> bool {
        if self.seen.len() >= MAX_SOURCES {
            self.seen
                .retain(|_, times| times.last().is_some_and(|t| now_ms - t < HOUR_MS));
            if self.seen.len() >= MAX_SOURCES {
                self.seen.clear();
            }
        }
        let times = self.seen.entry(source_key(ip)).or_default();
        times.retain(|t| now_ms - t < HOUR_MS);
        if times.len() >= self.per_hour as usize {
            return false;
        }
        times.push(now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_hour_and_no_more() {
        let mut l = SourceLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.allow(a, 0));
        assert!(l.allow(a, 1_000));
        assert!(!l.allow(a, 2_000));
        assert!(l.allow(b, 2_000));
        assert!(l.allow(a, HOUR_MS + 1));
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let mut l = SourceLimit::new(1);
        assert!(l.allow("2001:db8::1".parse().unwrap(), 0));
        assert!(!l.allow("2001:db8::ffff".parse().unwrap(), 0));
        assert!(l.allow("2001:db8:0:1::1".parse().unwrap(), 0));
    }
}
