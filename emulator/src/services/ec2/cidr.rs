//! IPv4 CIDR blocks: parsing, containment, overlap.

use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: u32,
    pub len: u8,
}

impl Cidr {
    /// Parses "a.b.c.d/n". Host bits may be set; see [`Cidr::is_aligned`].
    pub fn parse(s: &str) -> Option<Cidr> {
        let (ip, len) = s.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        if len > 32 {
            return None;
        }
        Some(Cidr {
            addr: u32::from(ip),
            len,
        })
    }

    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }

    pub fn network(&self) -> u32 {
        self.addr & self.mask()
    }

    /// No host bits set.
    pub fn is_aligned(&self) -> bool {
        self.addr == self.network()
    }

    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len))
    }

    pub fn last(&self) -> u32 {
        self.network() | !self.mask()
    }

    pub fn contains(&self, other: &Cidr) -> bool {
        other.len >= self.len && (other.network() & self.mask()) == self.network()
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.network() <= other.last() && other.network() <= self.last()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network()), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_and_overlap() {
        let vpc = Cidr::parse("172.31.0.0/16").expect("vpc");
        let a = Cidr::parse("172.31.16.0/20").expect("a");
        let b = Cidr::parse("172.31.20.0/24").expect("b");
        let c = Cidr::parse("10.0.0.0/24").expect("c");
        assert!(vpc.contains(&a) && vpc.contains(&b) && !vpc.contains(&c));
        assert!(a.overlaps(&b) && !a.overlaps(&c));
        assert_eq!(a.size(), 4096);
        assert!(!Cidr::parse("10.0.0.1/24").expect("d").is_aligned());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert_eq!(
            Cidr::parse("10.0.0.0/8").expect("e").to_string(),
            "10.0.0.0/8"
        );
    }
}
