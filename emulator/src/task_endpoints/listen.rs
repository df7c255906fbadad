//! Reachability: every AWS SDK resolves AWS_CONTAINER_CREDENTIALS_RELATIVE_URI against
//! http://169.254.170.2 (port 80), so the task endpoints must answer there from inside task
//! containers. The ECS agent DNATs that address to itself with iptables; here the emulator adds
//! the address (/32) to the Docker bridge interface and listens on it, port 80. Containers on any
//! Docker bridge network route it through their gateway to the host, which owns it.
//!
//! Several emulators on one machine share the address: the first to bind it serves it, and asks
//! the others (over loopback listeners registered in a directory under the system temp dir) about
//! ids it does not know, passing the caller's address along. When it stops, another one binds the
//! address within a second.

use super::{router, TaskEndpoints, SOURCE_HEADER, UNKNOWN_ID_HEADER};
use axum::body::Body;
use axum::response::Response;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The port the SDKs use (RELATIVE_URI is resolved against http://169.254.170.2, port 80).
pub const PORT: u16 = 80;
/// How long a forwarded request may take (stats take a second or two).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);
/// How often an emulator that does not hold the address tries to take it.
const TAKEOVER_INTERVAL: Duration = Duration::from_secs(1);

/// The other emulators sharing the address on this machine: one file per process, named by its
/// pid, holding the address of its loopback listener.
pub struct Peers {
    dir: PathBuf,
    me: u32,
}

impl Peers {
    pub fn new(ip: Ipv4Addr) -> Peers {
        Peers {
            dir: std::env::temp_dir()
                .join("ecs-emulator-task-endpoints")
                .join(ip.to_string()),
            me: std::process::id(),
        }
    }

    fn register(&self, addr: SocketAddr) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{}", self.me));
        std::fs::write(&tmp, addr.to_string())?;
        std::fs::rename(tmp, self.dir.join(self.me.to_string()))
    }

    /// Loopback listeners of the other live emulators (files of dead ones are removed).
    fn others(&self) -> Vec<SocketAddr> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(pid) = name.parse::<u32>() else {
                continue;
            };
            if pid == self.me {
                continue;
            }
            if !PathBuf::from(format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(e.path());
                continue;
            }
            if let Some(addr) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                out.push(addr);
            }
        }
        out
    }

    /// Asks each other emulator; the first that knows the id answers.
    pub async fn forward(&self, path: &str, source: IpAddr) -> Option<Response> {
        for addr in self.others() {
            match tokio::time::timeout(FORWARD_TIMEOUT, get(addr, path, source)).await {
                Ok(Ok(r)) if !r.unknown => return Some(r.into_response()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "peer emulator did not answer"),
                Err(_) => tracing::debug!(%addr, "peer emulator timed out"),
            }
        }
        None
    }
}

struct Forwarded {
    status: u16,
    content_type: Option<String>,
    unknown: bool,
    body: Vec<u8>,
}

impl Forwarded {
    fn into_response(self) -> Response {
        let mut b = Response::builder().status(self.status);
        if let Some(ct) = self.content_type {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        b.body(Body::from(self.body))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

/// One GET over HTTP/1.1 with `Connection: close` to a peer's loopback listener.
async fn get(addr: SocketAddr, path: &str, source: IpAddr) -> std::io::Result<Forwarded> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{SOURCE_HEADER}: {source}\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut content_type = None;
    let mut unknown = false;
    for (k, v) in lines.filter_map(|l| l.split_once(':')) {
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-type" {
            content_type = Some(v.to_string());
        } else if k == UNKNOWN_ID_HEADER {
            unknown = true;
        } else if k == "content-length" {
            if let Ok(n) = v.parse::<usize>() {
                body.truncate(n);
            }
        } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            body = dechunk(&body);
        }
    }
    Ok(Forwarded {
        status,
        content_type,
        unknown,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// The interface holding `gateway` (the Docker bridge, normally docker0).
pub(crate) fn interface_of(gateway: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        // "5: docker0    inet 172.17.0.1/16 brd … scope global docker0"
        let mut f = l.split_whitespace();
        let _index = f.next()?;
        let dev = f.next()?;
        let _inet = f.next()?;
        let addr = f.next()?.split('/').next()?;
        (addr == gateway).then(|| dev.to_string())
    })
}

/// Adds `ip`/32 to the bridge interface (nothing to do when it is there already).
pub(crate) fn add_address(ip: Ipv4Addr, dev: &str) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(["addr", "add", &format!("{ip}/32"), "dev", dev])
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // iproute2 says "File exists" or "Address already assigned" when it is there already.
    if out.status.success() || stderr.contains("File exists") || stderr.contains("already assigned")
    {
        Ok(())
    } else {
        Err(stderr.trim().to_string())
    }
}

async fn serve(listener: TcpListener, app: axum::Router) {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, service).await {
        tracing::warn!(error = %e, "task endpoint listener stopped");
    }
}

/// Makes the task endpoints reachable from containers at `ip` (port 80) and returns the base URL
/// containers are given (`http://<ip>`), or, when the address cannot be set up at all, a port on
/// the bridge gateway where the metadata endpoint still works (credentials over RELATIVE_URI then
/// cannot). None: not reachable at all.
pub async fn start(
    endpoints: Arc<TaskEndpoints>,
    ip: Ipv4Addr,
    gateway: Option<String>,
) -> Option<String> {
    let peers = Arc::new(Peers::new(ip));
    // The loopback listener other emulators forward to.
    match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
        Ok(l) => {
            if let Ok(addr) = l.local_addr() {
                if let Err(e) = peers.register(addr) {
                    tracing::warn!(error = %e, "cannot register with other emulators sharing {ip}");
                }
            }
            tokio::spawn(serve(l, router(endpoints.clone(), true, None)));
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen on loopback for task endpoints"),
    }

    let dev = gateway
        .as_deref()
        .and_then(interface_of)
        .unwrap_or_else(|| "docker0".to_string());
    if let Err(e) = add_address(ip, &dev) {
        tracing::warn!(%ip, %dev, error = %e, "cannot add the task endpoint address to the Docker bridge");
    }
    let public = router(endpoints.clone(), false, Some(peers.clone()));
    match TcpListener::bind((ip, PORT)).await {
        Ok(l) => {
            tracing::info!(%ip, %dev, "task metadata and credentials endpoints on http://{ip}");
            tokio::spawn(serve(l, public));
            Some(format!("http://{ip}"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::info!(
                %ip,
                "another emulator serves http://{ip}; it forwards this emulator's tasks here, and this one takes the address over when it stops"
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(TAKEOVER_INTERVAL).await;
                    if let Ok(l) = TcpListener::bind((ip, PORT)).await {
                        tracing::info!(%ip, "took over the task endpoint address");
                        serve(l, public).await;
                        return;
                    }
                }
            });
            Some(format!("http://{ip}"))
        }
        Err(e) => {
            let gateway = gateway?;
            let l = match TcpListener::bind((gateway.as_str(), 0)).await {
                Ok(l) => l,
                Err(e2) => {
                    tracing::warn!(%ip, error = %e, fallback_error = %e2, "task endpoints are not reachable from containers");
                    return None;
                }
            };
            let addr = l.local_addr().ok()?;
            tracing::warn!(
                %ip,
                error = %e,
                "cannot listen on {ip}:{PORT}: the task metadata endpoint is on http://{addr} instead, and task role credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, which SDKs resolve against http://169.254.170.2) will not reach the emulator"
            );
            tokio::spawn(serve(l, public));
            Some(format!("http://{addr}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
    }

    #[test]
    fn peers_skip_themselves_and_dead_processes() {
        let ip = Ipv4Addr::new(169, 254, 170, 250);
        let p = Peers {
            dir: std::env::temp_dir()
                .join(format!("ecs-emulator-peers-test-{}", std::process::id())),
            me: std::process::id(),
        };
        p.register("127.0.0.1:1234".parse().unwrap()).unwrap();
        assert!(p.others().is_empty());
        // A pid that cannot be alive.
        std::fs::write(p.dir.join("4194399"), "127.0.0.1:9").unwrap();
        assert!(p.others().is_empty());
        assert!(!p.dir.join("4194399").exists());
        // pid 1 is alive.
        std::fs::write(p.dir.join("1"), "127.0.0.1:9").unwrap();
        assert_eq!(
            p.others(),
            vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()]
        );
        let _ = std::fs::remove_dir_all(&p.dir);
        let _ = ip;
    }
}
