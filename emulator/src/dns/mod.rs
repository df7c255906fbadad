//! The DNS data plane of Cloud Map: answers the private and public DNS namespaces' records
//! (`answer.rs`, from [`CloudMap::dns_view`]) and forwards every other name to the host's
//! resolvers (`forward.rs`), over UDP and TCP.
//!
//! It listens on a loopback port for people and tests (`--dns-listen`, a free port when that one
//! is taken) and, once Docker is reachable, on port 53 of a link-local address it adds to the
//! Docker bridge (169.254.53.N, the first one no other emulator holds): task containers get that
//! address as their resolver (Docker's `Dns`), whatever their network. Containers on any Docker
//! network route it through their gateway to the host, as they do the task metadata address.

pub mod answer;
pub mod forward;

use crate::services::servicediscovery::CloudMap;
use answer::{Outcome, Transport};
use forward::Upstreams;
use parking_lot::{Mutex, RwLock};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Where the container addresses are taken from: 169.254.53.1, .2, …
const CONTAINER_NET: [u8; 3] = [169, 254, 53];
const CONTAINER_ADDRESSES: u8 = 250;
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Tasks receiving on each UDP socket (the answer path is short; two keep both cores busy).
const UDP_WORKERS: usize = 2;

pub struct DnsServer {
    cloudmap: Arc<CloudMap>,
    upstreams: RwLock<Arc<Upstreams>>,
    /// Every address served (UDP and TCP on each), for `GET /_emulator/state`.
    addresses: Mutex<Vec<SocketAddr>>,
}

impl DnsServer {
    pub fn new(cloudmap: Arc<CloudMap>) -> Arc<DnsServer> {
        Arc::new(DnsServer {
            cloudmap,
            upstreams: RwLock::new(Arc::new(Upstreams::from_host(&[]))),
            addresses: Mutex::new(Vec::new()),
        })
    }

    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.addresses.lock().clone()
    }

    /// The loopback listener: `addr`, else a free port on its IP. Returns the address.
    pub async fn listen(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let bound = match bind_pair(addr).await {
            Ok(b) => b,
            Err(e) if addr.port() != 0 => {
                tracing::warn!(%addr, error = %e, "DNS port taken; using a free one");
                bind_pair(SocketAddr::new(addr.ip(), 0)).await?
            }
            Err(e) => return Err(e),
        };
        Ok(self.serve(bound))
    }

    /// Port 53 on a link-local address of the Docker bridge (the one holding `gateway`), for
    /// task containers. Returns the address containers use.
    pub async fn listen_for_containers(
        self: &Arc<Self>,
        gateway: &str,
        wanted: Option<Ipv4Addr>,
    ) -> Option<Ipv4Addr> {
        let dev = crate::task_endpoints::listen::interface_of(gateway)?;
        let candidates: Vec<Ipv4Addr> = match wanted {
            Some(ip) => vec![ip],
            None => (1..=CONTAINER_ADDRESSES)
                .map(|n| Ipv4Addr::new(CONTAINER_NET[0], CONTAINER_NET[1], CONTAINER_NET[2], n))
                .collect(),
        };
        for ip in candidates {
            let addr = SocketAddr::from((ip, 53));
            let bound = match bind_pair(addr).await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                    if let Err(e) = crate::task_endpoints::listen::add_address(ip, &dev) {
                        tracing::warn!(%ip, %dev, error = %e, "cannot add the DNS address to the Docker bridge");
                        return None;
                    }
                    match bind_pair(addr).await {
                        Ok(b) => b,
                        Err(_) => continue,
                    }
                }
                // Another emulator serves this one.
                Err(_) => continue,
            };
            self.serve(bound);
            return Some(ip);
        }
        tracing::warn!("no address for the containers' DNS server: tasks keep Docker's resolver");
        None
    }

    fn serve(self: &Arc<Self>, (udp, tcp): (UdpSocket, TcpListener)) -> SocketAddr {
        let addr = udp
            .local_addr()
            .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
        {
            let mut addresses = self.addresses.lock();
            addresses.push(addr);
            *self.upstreams.write() = Arc::new(Upstreams::from_host(&addresses));
        }
        tracing::info!(%addr, "DNS server (udp, tcp) on {addr}");
        let udp = Arc::new(udp);
        for _ in 0..UDP_WORKERS {
            tokio::spawn(self.clone().serve_udp(udp.clone()));
        }
        tokio::spawn(self.clone().serve_tcp(tcp));
        addr
    }

    /// Keeps the view current after a reset (which empties the tables under the handle).
    pub async fn refresh(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if self.cloudmap.state.namespaces.is_empty()
                && !self.cloudmap.dns_view().zones.is_empty()
            {
                self.cloudmap.changed();
            }
        }
    }

    async fn serve_udp(self: Arc<Self>, socket: Arc<UdpSocket>) {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = match socket.recv_from(&mut buf).await {
                Ok(r) => r,
                // ICMP errors from earlier sends surface here on some systems: keep serving.
                Err(_) => continue,
            };
            let packet = &buf[..n];
            match answer::answer(&self.cloudmap.dns_view(), packet, Transport::Udp) {
                Outcome::Reply(bytes) => {
                    let _ = socket.send_to(&bytes, peer).await;
                }
                Outcome::Forward => {
                    let me = self.clone();
                    let socket = socket.clone();
                    let query = packet.to_vec();
                    tokio::spawn(async move {
                        if let Some(bytes) = me.forwarded(&query, false).await {
                            let _ = socket.send_to(&bytes, peer).await;
                        }
                    });
                }
                Outcome::Drop => {}
            }
        }
    }

    /// The upstream's answer, or SERVFAIL when none answered.
    async fn forwarded(&self, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let upstreams = self.upstreams.read().clone();
        match upstreams.forward(query, tcp).await {
            Some(bytes) => Some(bytes),
            None => answer::servfail(query),
        }
    }

    async fn serve_tcp(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            tokio::spawn(self.clone().tcp_connection(stream));
        }
    }

    async fn tcp_connection(self: Arc<Self>, mut stream: TcpStream) {
        loop {
            let mut len = [0u8; 2];
            match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
            match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut packet)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let reply = match answer::answer(&self.cloudmap.dns_view(), &packet, Transport::Tcp) {
                Outcome::Reply(bytes) => Some(bytes),
                Outcome::Forward => self.forwarded(&packet, true).await,
                Outcome::Drop => None,
            };
            let Some(bytes) = reply else { continue };
            let Ok(len) = u16::try_from(bytes.len()) else {
                continue;
            };
            if stream.write_all(&len.to_be_bytes()).await.is_err()
                || stream.write_all(&bytes).await.is_err()
            {
                return;
            }
        }
    }
}

/// A UDP socket and a TCP listener on the same address (port 0: the same free port for both).
async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..10 {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // The free UDP port is taken over TCP: try another (only when we chose it).
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::{Ctx, Deps};
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    use serde_json::json;

    #[tokio::test]
    async fn answers_over_udp_and_tcp_from_the_cloud_map_state() {
        let deps = Deps::for_tests();
        let r = crate::app::build(&deps);
        let cm = r.handle::<CloudMap>().expect("cloud map");
        let ctx = Ctx::for_tests();
        let vpc = r
            .handle::<crate::services::ec2::Ec2>()
            .expect("ec2")
            .default_vpc(&ctx.account, &ctx.region)
            .expect("vpc")
            .expect("default")
            .vpc_id;
        let call = |op: &str, input: serde_json::Value| {
            let h = r.get("servicediscovery", op).expect("op").clone();
            let ctx = ctx.clone();
            let op = op.to_string();
            async move { h.call(ctx, input).await.expect(&op) }
        };
        let op = call(
            "CreatePrivateDnsNamespace",
            json!({"Name": "prod.local", "Vpc": vpc}),
        )
        .await;
        let op = call("GetOperation", json!({"OperationId": op["OperationId"]})).await;
        let ns_id = op["Operation"]["Targets"]["NAMESPACE"].clone();
        let svc = call(
            "CreateService",
            json!({"Name": "api", "NamespaceId": ns_id, "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 7}]}}),
        )
        .await;
        call(
            "RegisterInstance",
            json!({"ServiceId": svc["Service"]["Id"], "InstanceId": "t1", "Attributes": {"AWS_INSTANCE_IPV4": "10.1.2.3"}}),
        )
        .await;

        let server = DnsServer::new(cm);
        let addr = server
            .listen("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("listen");
        assert_eq!(server.addresses(), vec![addr]);
        let mut q = Message::new();
        q.set_id(9).add_query(Query::query(
            Name::from_ascii("api.prod.local.").expect("name"),
            RecordType::A,
        ));
        let bytes = q.to_vec().expect("encode");

        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        client.send_to(&bytes, addr).await.expect("send");
        let mut buf = [0u8; 1500];
        let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
            .await
            .expect("in time")
            .expect("recv");
        let m = Message::from_vec(&buf[..n]).expect("decode");
        assert_eq!(m.answers()[0].data().to_string(), "10.1.2.3");
        assert_eq!(m.answers()[0].ttl(), 7);

        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(&(bytes.len() as u16).to_be_bytes())
            .await
            .expect("len");
        tcp.write_all(&bytes).await.expect("query");
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).await.expect("len");
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tcp.read_exact(&mut body).await.expect("body");
        let m = Message::from_vec(&body).expect("decode");
        assert_eq!(m.answers()[0].data().to_string(), "10.1.2.3");
    }
}
