//! Names outside every namespace go to the host's resolvers (the `nameserver` lines of
//! /etc/resolv.conf). An upstream that did not answer is skipped for a while, so that without a
//! network queries fail fast with SERVFAIL instead of each waiting for a timeout.

use parking_lot::Mutex;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream may take to answer.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// How long an upstream that timed out is skipped.
const BACKOFF: Duration = Duration::from_secs(10);

pub struct Upstreams {
    servers: Vec<(SocketAddr, Mutex<Option<Instant>>)>,
}

/// The nameserver addresses of a resolv.conf text.
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == "nameserver").then_some(())?;
            // "fe80::1%eth0": the zone is dropped (link-local upstreams are rare).
            f.next()?.split('%').next()?.parse().ok()
        })
        .collect()
}

impl Upstreams {
    /// The host's resolvers, minus `own` (this server's addresses: forwarding to ourselves
    /// would loop).
    pub fn from_host(own: &[SocketAddr]) -> Upstreams {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Upstreams::new(parse_resolv_conf(&text), own)
    }

    pub fn new(ips: Vec<IpAddr>, own: &[SocketAddr]) -> Upstreams {
        let servers = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .filter(|a| !own.contains(a))
            .map(|a| (a, Mutex::new(None)))
            .collect();
        Upstreams { servers }
    }

    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|(a, _)| *a).collect()
    }

    /// Sends the query to the first upstream that is not backing off; None when none answered.
    pub async fn forward(&self, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
        for (addr, down_since) in &self.servers {
            if down_since.lock().is_some_and(|t| t.elapsed() < BACKOFF) {
                continue;
            }
            let result = if tcp {
                tokio::time::timeout(TIMEOUT, over_tcp(*addr, query)).await
            } else {
                tokio::time::timeout(TIMEOUT, over_udp(*addr, query)).await
            };
            match result {
                Ok(Ok(answer)) => {
                    *down_since.lock() = None;
                    return Some(answer);
                }
                _ => *down_since.lock() = Some(Instant::now()),
            }
        }
        None
    }
}

async fn over_udp(addr: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    // A socket of its own per query: the upstream's answer can only be this query's.
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(addr).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Same id as the query: anything else is stray.
        if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn over_tcp(addr: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::other("query too long"))?
        .to_be_bytes();
    s.write_all(&len).await?;
    s.write_all(query).await?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_without_our_own_address() {
        let ips = parse_resolv_conf(
            "# comment\nsearch example\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nnameserver 127.0.0.1\noptions ndots:2\n",
        );
        assert_eq!(ips.len(), 3);
        let own: SocketAddr = "127.0.0.1:53".parse().expect("addr");
        let u = Upstreams::new(ips, &[own]);
        let addrs = u.addresses();
        assert_eq!(addrs.len(), 2);
        assert!(!addrs.contains(&own));
    }

    #[tokio::test]
    async fn no_upstream_fails_at_once() {
        let u = Upstreams::new(vec![], &[]);
        let t = Instant::now();
        assert!(u.forward(&[0, 1, 2], false).await.is_none());
        assert!(t.elapsed() < Duration::from_millis(100));
    }
}
