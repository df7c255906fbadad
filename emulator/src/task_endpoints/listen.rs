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
//!
//! The loopback listeners trust the caller's address they are told only from a peer that
//! presents the listener's per-boot secret (FORWARD_TOKEN_HEADER): each emulator writes its
//! address and secret to a 0600 file in a 0700 directory it owns, so only processes of the same
//! user (the other emulators) can forward, and any other local process gets 403.

use super::{router, TaskEndpoints, FORWARD_TOKEN_HEADER, SOURCE_HEADER, UNKNOWN_ID_HEADER};
use axum::body::Body;
use axum::response::Response;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
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

/// The other emulators sharing the address on this machine: one file per process, holding the
/// address of its loopback listener and the secret it takes (0600 files in a 0700 directory).
/// A file is named by its writer's pid (with a random suffix when another live emulator, in
/// another pid namespace, has that name already), and the writer holds an exclusive flock(2) on
/// it as long as it lives: liveness is the lock, not the pid, so emulators in containers (own pid
/// namespaces) and on the host tell each other apart through a bind-mounted directory.
pub struct Peers {
    dir: PathBuf,
    /// This emulator's file name (set by `register`).
    name: parking_lot::Mutex<String>,
    /// What this emulator's loopback listener requires of forwarded requests (per boot).
    secret: String,
    /// The open, flocked file: kept for the life of the process.
    lock: parking_lot::Mutex<Option<std::fs::File>>,
}

/// Third line of a peer file whose writer holds its flock (files without it, from emulators
/// before the lock, are judged by their pid).
const LOCKED_MARK: &str = "flock";

/// A peer's loopback listener and its secret.
#[derive(Debug, Clone, PartialEq)]
struct Peer {
    addr: SocketAddr,
    secret: String,
}

/// The peer directory's default base: <temp dir>/ecs-emulator-task-endpoints.
pub fn default_peers_base() -> PathBuf {
    std::env::temp_dir().join("ecs-emulator-task-endpoints")
}

impl Peers {
    /// Peers of `ip` under `base` (default [`default_peers_base`]): `<base>/<ip>`.
    pub fn new(ip: Ipv4Addr, base: Option<PathBuf>) -> Peers {
        Peers::in_dir(base.unwrap_or_else(default_peers_base).join(ip.to_string()))
    }

    fn in_dir(dir: PathBuf) -> Peers {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        Peers {
            dir,
            name: parking_lot::Mutex::new(std::process::id().to_string()),
            secret: hex::encode(bytes),
            lock: parking_lot::Mutex::new(None),
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Creates the directory (and its parent) 0700, or checks that an existing one is this
    /// user's (then makes it 0700): a directory of someone else in the shared temp dir could
    /// collect the secrets or plant listeners.
    fn private_dir(&self) -> std::io::Result<()> {
        let euid = rustix::process::geteuid().as_raw();
        let mut dirs: Vec<&Path> = vec![&self.dir];
        if let Some(parent) = self.dir.parent() {
            dirs.insert(0, parent);
        }
        for d in dirs {
            match std::fs::DirBuilder::new().mode(0o700).create(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            let meta = std::fs::symlink_metadata(d)?;
            if !meta.is_dir() || meta.uid() != euid {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{} is not a directory of this user", d.display()),
                ));
            }
            if meta.permissions().mode() & 0o777 != 0o700 {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        Ok(())
    }

    fn register(&self, addr: SocketAddr) -> std::io::Result<()> {
        use rustix::fs::{flock, FlockOperation};
        self.private_dir()?;
        let pid = std::process::id();
        // The pid is taken when a live emulator of another pid namespace holds it.
        let mut name = pid.to_string();
        if self.dir.join(&name).exists() && peer_state(&self.dir.join(&name), pid) == State::Alive {
            use rand::Rng;
            name = format!("{pid}-{:08x}", rand::rng().random::<u32>());
        }
        let tmp = self.dir.join(format!(".{name}"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        flock(&f, FlockOperation::NonBlockingLockExclusive)?;
        f.write_all(format!("{addr}\n{}\n{LOCKED_MARK}\n", self.secret).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(tmp, self.dir.join(&name))?;
        *self.lock.lock() = Some(f);
        *self.name.lock() = name;
        Ok(())
    }

    /// Loopback listeners of the other live emulators (files of dead ones are removed; files
    /// without a secret, of emulators before this scheme, are skipped).
    fn others(&self) -> Vec<Peer> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let me = self.name.lock().clone();
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = peer_pid(&name) else {
                continue;
            };
            if name == me {
                continue;
            }
            let path = e.path();
            let text = match peer_state(&path, pid) {
                State::Alive => std::fs::read_to_string(&path).unwrap_or_default(),
                State::Dead => {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                State::Gone => continue,
            };
            let mut lines = text.lines();
            let addr = lines.next().and_then(|s| s.trim().parse().ok());
            let secret = lines.next().map(str::trim).filter(|s| !s.is_empty());
            if let (Some(addr), Some(secret)) = (addr, secret) {
                out.push(Peer {
                    addr,
                    secret: secret.to_string(),
                });
            }
        }
        out
    }

    /// Asks each other emulator; the first that knows the id answers.
    pub async fn forward(&self, path: &str, source: IpAddr) -> Option<Response> {
        for peer in self.others() {
            let addr = peer.addr;
            match tokio::time::timeout(FORWARD_TIMEOUT, get(&peer, path, source)).await {
                Ok(Ok(r)) if !r.unknown => return Some(r.into_response()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "peer emulator did not answer"),
                Err(_) => tracing::debug!(%addr, "peer emulator timed out"),
            }
        }
        None
    }
}

#[derive(Debug, PartialEq)]
enum State {
    Alive,
    Dead,
    Gone,
}

/// The pid in a peer file's name: `<pid>` or `<pid>-<suffix>`.
fn peer_pid(name: &str) -> Option<u32> {
    let (pid, suffix) = name.split_once('-').unwrap_or((name, ""));
    if !suffix.chars().all(|c| c.is_ascii_hexdigit()) || (name.contains('-') && suffix.is_empty()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether the writer of a peer file lives: it holds the file's flock (files that say so), or,
/// for files of emulators before the lock, its pid exists in this pid namespace.
fn peer_state(path: &Path, pid: u32) -> State {
    use rustix::fs::{flock, FlockOperation};
    let Ok(f) = std::fs::File::open(path) else {
        return State::Gone;
    };
    let mut text = String::new();
    let _ = (&f).take(4096).read_to_string(&mut text);
    if text.lines().nth(2).map(str::trim) == Some(LOCKED_MARK) {
        return match flock(&f, FlockOperation::NonBlockingLockShared) {
            // Nobody holds it: its writer is gone. (Still the same file? A new one may have
            // been renamed over it since it was opened.)
            Ok(()) => match (f.metadata(), std::fs::metadata(path)) {
                (Ok(a), Ok(b)) if a.ino() == b.ino() => State::Dead,
                _ => State::Gone,
            },
            Err(_) => State::Alive,
        };
    }
    if PathBuf::from(format!("/proc/{pid}")).exists() {
        State::Alive
    } else {
        State::Dead
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
async fn get(peer: &Peer, path: &str, source: IpAddr) -> std::io::Result<Forwarded> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let addr = peer.addr;
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{SOURCE_HEADER}: {source}\r\n{FORWARD_TOKEN_HEADER}: {}\r\n\r\n",
        peer.secret
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

/// The interface holding `gateway` (the Docker bridge, normally docker0), asked of the kernel
/// over rtnetlink.
pub(crate) fn interface_of(gateway: &str) -> Option<String> {
    let gateway: Ipv4Addr = gateway.parse().ok()?;
    let index = crate::netlink::ipv4_addresses()
        .ok()?
        .into_iter()
        .find(|a| a.ip == gateway)?
        .index;
    crate::netlink::links()
        .ok()?
        .into_iter()
        .find_map(|(i, name)| (i == index).then_some(name))
}

/// Adds `ip`/32 to the bridge interface over rtnetlink (nothing to do when it is there
/// already). Needs CAP_NET_ADMIN in the host's network namespace.
pub(crate) fn add_address(ip: Ipv4Addr, dev: &str) -> Result<(), String> {
    let index = crate::netlink::index_of(dev)
        .map_err(|e| format!("cannot list interfaces: {e}"))?
        .ok_or_else(|| format!("no interface {dev}"))?;
    match crate::netlink::add_ipv4_address(index, ip, 32) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.to_string()),
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
    peers_base: Option<PathBuf>,
    gateway: Option<String>,
) -> Option<String> {
    let peers = Arc::new(Peers::new(ip, peers_base));
    // The loopback listener other emulators forward to.
    match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
        Ok(l) => {
            if let Ok(addr) = l.local_addr() {
                if let Err(e) = peers.register(addr) {
                    tracing::warn!(error = %e, "cannot register with other emulators sharing {ip}");
                }
            }
            let secret: Arc<str> = Arc::from(peers.secret());
            tokio::spawn(serve(l, router(endpoints.clone(), Some(secret), None)));
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
    let public = router(endpoints.clone(), None, Some(peers.clone()));
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
        let dir = std::env::temp_dir()
            .join(format!("ecs-emulator-peers-test-{}", std::process::id()))
            .join("169.254.170.250");
        let p = Peers::in_dir(dir.clone());
        p.register("127.0.0.1:1234".parse().unwrap()).unwrap();
        assert!(p.others().is_empty());
        // Private: the directories 0700, the file 0600 with the address and the secret.
        for d in [&dir, &dir.parent().unwrap().to_path_buf()] {
            let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        let mine = dir.join(std::process::id().to_string());
        assert_eq!(
            std::fs::metadata(&mine).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_to_string(&mine).unwrap(),
            format!("127.0.0.1:1234\n{}\nflock\n", p.secret())
        );
        // A pid that cannot be alive.
        std::fs::write(dir.join("4194399"), "127.0.0.1:9\nx").unwrap();
        assert!(p.others().is_empty());
        assert!(!dir.join("4194399").exists());
        // pid 1 is alive; a file without a secret is skipped.
        std::fs::write(dir.join("1"), "127.0.0.1:9").unwrap();
        assert!(p.others().is_empty());
        std::fs::write(dir.join("1"), "127.0.0.1:9\nabc\n").unwrap();
        assert_eq!(
            p.others(),
            vec![Peer {
                addr: "127.0.0.1:9".parse().unwrap(),
                secret: "abc".into()
            }]
        );
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }

    #[test]
    fn liveness_is_the_flock_not_the_pid() {
        use rustix::fs::{flock, FlockOperation};
        let base =
            std::env::temp_dir().join(format!("ecs-emulator-peers-flock-{}", std::process::id()));
        let dir = base.join("169.254.170.252");
        let p = Peers::in_dir(dir.clone());
        p.register("127.0.0.1:1".parse().unwrap()).unwrap();
        // Another emulator, as seen through a shared directory from another pid namespace: its
        // pid (4194399) does not exist here, but it holds its file's lock.
        let other = dir.join("4194399-0a1b2c3d");
        std::fs::write(&other, "127.0.0.1:2\nsecret2\nflock\n").unwrap();
        let held = std::fs::File::open(&other).unwrap();
        flock(&held, FlockOperation::NonBlockingLockExclusive).unwrap();
        assert_eq!(
            p.others(),
            vec![Peer {
                addr: "127.0.0.1:2".parse().unwrap(),
                secret: "secret2".into()
            }]
        );
        // It dies (its lock goes with it): its file is removed.
        drop(held);
        assert!(p.others().is_empty());
        assert!(!other.exists());
        // Names that are not peer files are left alone.
        for junk in ["abc", "12-", "12-xyz", ".12"] {
            std::fs::write(dir.join(junk), "127.0.0.1:3\ns\n").unwrap();
        }
        assert!(p.others().is_empty());
        assert!(dir.join("12-xyz").exists());
        // A second emulator with this one's pid (another pid namespace) gets a name of its own.
        let q = Peers::in_dir(dir.clone());
        q.register("127.0.0.1:4".parse().unwrap()).unwrap();
        let qname = q.name.lock().clone();
        assert!(
            qname.starts_with(&format!("{}-", std::process::id())),
            "{qname}"
        );
        assert_eq!(p.others().len(), 1);
        assert_eq!(q.others().len(), 1);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_loose_directory_is_made_private() {
        let base =
            std::env::temp_dir().join(format!("ecs-emulator-peers-loose-{}", std::process::id()));
        let dir = base.join("169.254.170.251");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let p = Peers::in_dir(dir.clone());
        p.register("127.0.0.1:1".parse().unwrap()).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
