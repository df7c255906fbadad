//! The load balancer data plane: a socket per ELBv2 listener (HTTP and HTTPS through an ALB
//! reverse proxy, TCP and TLS forwarded as streams for NLB), requests on the main port routed
//! by Host header to the load balancer whose DNSName it is, and the active health checker.
//!
//! It sits on `services::elbv2`: it reads configuration through the [`Elbv2`] handle, rebuilds
//! its routing table when that changes, and records what it observes (target health, request
//! counters, bound addresses) back into it.

pub mod classic;
pub mod health;
pub mod matching;
pub mod plane;
pub mod proxy;
pub mod routes;
pub mod tls;
pub mod upstream;

use crate::clock::Clock;
use crate::faults::network::Effect;
use crate::services::elb::Elb;
use crate::services::elbv2::Elbv2;
use crate::services::Registry;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use parking_lot::{Mutex, RwLock};
use proxy::{BoxError, Inbound, ProxyBody};
use routes::{ListenerRoutes, Routes};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long ALB waits for a target's TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Running {
    port: u16,
    protocol: String,
    dns_name: String,
    task: JoinHandle<()>,
}

pub struct Lb {
    pub(crate) elbv2: Arc<Elbv2>,
    /// Classic ELB, a second source of listeners and routes (`classic.rs`).
    pub(crate) classic: Option<Arc<Elb>>,
    pub(crate) clock: Clock,
    /// Keep-alive connections to targets.
    pub(crate) upstreams: Arc<upstream::Upstreams>,
    routes: RwLock<Arc<Routes>>,
    /// Counts the replacements of `routes`: a client connection keeps its listener's routes
    /// until this moves (`RoutesCache`).
    routes_generation: std::sync::atomic::AtomicU64,
    running: Mutex<HashMap<String, Running>>,
    /// Next health check per (target group ARN, "<id>:<port>"), emulated epoch seconds.
    next_check: Mutex<HashMap<(String, String), f64>>,
    /// Faults: targets that do not answer, or answer late.
    pub(crate) faults: Option<Arc<crate::faults::network::Network>>,
    /// How many data-plane threads `run` starts (none: listeners are served on the shared
    /// runtime).
    threads: Option<usize>,
    /// The threads listener connections are served on, once `run` has started them.
    plane: std::sync::OnceLock<plane::DataPlane>,
}

impl Lb {
    /// What a fault does to traffic towards `addr` (none without faults).
    pub(crate) fn effect(&self, addr: SocketAddr) -> Option<Effect> {
        self.faults.as_ref().and_then(|n| n.effect(addr))
    }
}

impl Lb {
    /// `threads`: how many data-plane threads serve listener connections (see `plane`); none:
    /// the shared runtime does.
    pub fn new(registry: &Registry, clock: Clock, threads: Option<usize>) -> Option<Arc<Lb>> {
        let elbv2 = registry.handle::<Elbv2>()?;
        Some(Arc::new(Lb {
            elbv2,
            classic: registry.handle::<Elb>(),
            clock,
            upstreams: upstream::Upstreams::new(CONNECT_TIMEOUT, threads.unwrap_or(0) + 1),
            routes: RwLock::new(Arc::new(Routes::default())),
            routes_generation: std::sync::atomic::AtomicU64::new(0),
            running: Mutex::new(HashMap::new()),
            next_check: Mutex::new(HashMap::new()),
            faults: registry.handle::<crate::faults::network::Network>(),
            threads,
            plane: std::sync::OnceLock::new(),
        }))
    }

    /// Reconciles listeners, routes and health checks with ELBv2's state until `shutdown`
    /// fires; then closes every listener socket.
    pub async fn run(self: Arc<Self>, shutdown: crate::shutdown::Shutdown) {
        let mut changes = self.elbv2.subscribe_changes();
        let mut health = self.elbv2.health_changes();
        if let Some(threads) = self.threads {
            match plane::DataPlane::start(threads, &shutdown) {
                Ok(p) => {
                    let _ = self.plane.set(p);
                }
                // Connections are then served on the shared runtime, as they can be.
                Err(e) => tracing::error!(error = %e, "cannot start the load balancer threads"),
            }
        }
        loop {
            if shutdown.fired() {
                self.close_listeners();
                return;
            }
            let now = self.clock.now();
            self.elbv2.expire_draining(now);
            self.upstreams.sweep();
            let mut routes = Routes::build(&self.elbv2);
            if let Some(c) = &self.classic {
                classic::add_routes(&mut routes, c);
                classic::schedule_checks(c, &self.clock, now);
            }
            let routes = Arc::new(routes);
            *self.routes.write() = routes.clone();
            self.routes_generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
            self.reconcile_sockets().await;
            self.schedule_checks(&routes, now);
            tokio::select! {
                _ = changes.changed() => {}
                _ = health.changed() => {}
                _ = shutdown.clone().wait() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }

    /// Stops accepting on every listener socket.
    fn close_listeners(&self) {
        for (arn, r) in self.running.lock().drain() {
            r.task.abort();
            self.elbv2.bound.write().remove(&arn);
        }
    }

    /// The listener a request on the main port is for, by its Host header.
    pub fn route_host(&self, headers: &http::HeaderMap) -> Option<Arc<ListenerRoutes>> {
        let host = headers.get(http::header::HOST)?.to_str().ok()?;
        if !host.contains(".elb.localhost") {
            return None;
        }
        self.routes.read().by_host(host)
    }

    /// Serves a request that arrived on the main port for a load balancer.
    pub async fn serve_main_port<B>(
        &self,
        routes: Arc<ListenerRoutes>,
        req: http::Request<B>,
    ) -> http::Response<ProxyBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let req = req.map(|b| b.map_err(Into::into).boxed_unsync());
        let scheme = if routes.protocol == "HTTPS" {
            "https"
        } else {
            "http"
        };
        let inbound = Inbound::new(IpAddr::V4(Ipv4Addr::LOCALHOST), scheme, routes.port);
        self.handle(routes, req, &inbound).await
    }

    async fn reconcile_sockets(self: &Arc<Self>) {
        let mut listeners = self.elbv2.all_listeners();
        let mut lbs: HashMap<String, String> = self
            .elbv2
            .all_load_balancers()
            .into_iter()
            .map(|l| (l.arn, l.dns_name))
            .collect();
        if let Some(c) = &self.classic {
            let (classic_listeners, names) = classic::listeners(c);
            listeners.extend(classic_listeners);
            lbs.extend(names);
        }
        let wanted: HashSet<&str> = listeners.iter().map(|l| l.arn.as_str()).collect();
        {
            let mut running = self.running.lock();
            let gone: Vec<String> = running
                .iter()
                .filter(|(arn, r)| {
                    !wanted.contains(arn.as_str())
                        || listeners.iter().any(|l| {
                            &l.arn == *arn
                                && (l.port != r.port
                                    || l.protocol != r.protocol
                                    || lbs.get(&l.lb_arn) != Some(&r.dns_name))
                        })
                })
                .map(|(a, _)| a.clone())
                .collect();
            for arn in gone {
                if let Some(r) = running.remove(&arn) {
                    r.task.abort();
                    self.elbv2.bound.write().remove(&arn);
                    tracing::info!(listener = %arn, "listener stopped");
                }
            }
        }
        for l in listeners {
            if self.running.lock().contains_key(&l.arn) {
                continue;
            }
            let Some(dns_name) = lbs.get(&l.lb_arn).cloned() else {
                continue;
            };
            let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, l.port)).await {
                Ok(s) => s,
                Err(e) => match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
                    Ok(s) => {
                        let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
                        tracing::warn!(listener = %l.arn, wanted = l.port, port, error = %e,
                            "listener port is taken: listening on another port (see GET /_emulator/state)");
                        s
                    }
                    Err(e) => {
                        tracing::error!(listener = %l.arn, error = %e, "cannot listen");
                        continue;
                    }
                },
            };
            let addr = match listener.local_addr() {
                Ok(a) => a,
                Err(_) => continue,
            };
            let tls = if l.protocol == "HTTPS" || l.protocol == "TLS" {
                match tls::acceptor(&dns_name, l.protocol == "HTTPS") {
                    Ok(a) => Some(a),
                    Err(e) => {
                        tracing::error!(listener = %l.arn, error = %e, "cannot make a TLS certificate");
                        continue;
                    }
                }
            } else {
                None
            };
            let lb = self.clone();
            let arn = l.arn.clone();
            let protocol = l.protocol.clone();
            let port = l.port;
            let task = tokio::spawn(async move {
                lb.accept_loop(listener, arn, protocol, port, tls).await;
            });
            tracing::info!(listener = %l.arn, %addr, protocol = %l.protocol, "listener started");
            self.elbv2
                .bound
                .write()
                .insert(l.arn.clone(), addr.to_string());
            self.running.lock().insert(
                l.arn.clone(),
                Running {
                    port: l.port,
                    protocol: l.protocol.clone(),
                    dns_name,
                    task,
                },
            );
        }
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        arn: String,
        protocol: String,
        port: u16,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let arn: Arc<str> = Arc::from(arn.as_str());
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let lb = self.clone();
            let arn = arn.clone();
            let protocol = protocol.clone();
            let tls = tls.clone();
            let serve = move |stream: TcpStream| async move {
                let counters = lb
                    .routes
                    .read()
                    .listeners
                    .get(&*arn)
                    .map(|r| r.counters.clone());
                let _open = counters.map(OpenConnection::new);
                match (protocol.as_str(), tls) {
                    ("HTTP", _) => {
                        lb.serve_http(TokioIo::new(stream), arn, peer, port, "http")
                            .await
                    }
                    ("HTTPS", Some(acceptor)) => {
                        if let Ok(s) = acceptor.accept(stream).await {
                            lb.serve_http(TokioIo::new(s), arn, peer, port, "https")
                                .await;
                        }
                    }
                    ("TLS", Some(acceptor)) => {
                        if let Ok(s) = acceptor.accept(stream).await {
                            lb.forward_stream(s, &arn).await;
                        }
                    }
                    _ => lb.forward_stream(stream, &arn).await,
                }
            };
            match self.plane.get() {
                Some(plane) => plane.serve(stream, serve),
                None => {
                    tokio::spawn(serve(stream));
                }
            }
        }
    }

    async fn serve_http<I>(
        self: Arc<Self>,
        io: TokioIo<I>,
        arn: Arc<str>,
        peer: SocketAddr,
        port: u16,
        scheme: &'static str,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let connection = Arc::new(ClientConnection {
            routes: RoutesCache::default(),
            inbound: Inbound::new(peer.ip(), scheme, port),
            lb: self,
            arn,
        });
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let connection = connection.clone();
                // Boxed: hyper keeps the request's future and moves it around; a pointer moves
                // in one copy, the whole future (all the proxying's state) in many.
                Box::pin(async move {
                    let response = match connection.listener_routes() {
                        Some(r) => {
                            let req =
                                req.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
                            connection.lb.handle(r, req, &connection.inbound).await
                        }
                        None => proxy::elb_error(http::StatusCode::SERVICE_UNAVAILABLE),
                    };
                    Ok::<_, std::convert::Infallible>(response)
                })
            });
        // HTTP/1.1 (keep-alive, upgrades such as WebSocket) and HTTP/2 from clients (h2c with
        // prior knowledge, or h2 by ALPN on TLS listeners); targets are spoken to in HTTP/1.1, as
        // ALB does by default.
        let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection_with_upgrades(io, service)
            .await;
    }

    /// NLB: forwards a TCP (or TLS-terminated) stream to a target of the default action.
    async fn forward_stream<S>(&self, mut inbound: S, arn: &str)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let Some(routes) = self.routes.read().listeners.get(arn).cloned() else {
            return;
        };
        let group = routes
            .default_actions
            .last()
            .and_then(|a| a.target_group_arn.clone())
            .and_then(|g| routes.groups.get(&g).cloned());
        let Some(group) = group else {
            return;
        };
        let Some(target) = group.pick(None, self.clock.now()).cloned() else {
            return;
        };
        group
            .counters
            .all
            .here()
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.effect(target.addr) {
            Some(Effect::Blackhole) => {
                // Nothing answers the SYN: the connect times out.
                tokio::time::sleep(CONNECT_TIMEOUT).await;
                target
                    .counters
                    .here()
                    .connection_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            Some(Effect::Delay(d)) => tokio::time::sleep(d).await,
            None => {}
        }
        let mut upstream =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr)).await {
                Ok(Ok(s)) => s,
                _ => {
                    target
                        .counters
                        .here()
                        .connection_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            };
        let _ = upstream.set_nodelay(true);
        if let Ok((a, b)) = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await {
            target
                .counters
                .here()
                .processed_bytes
                .fetch_add(a + b, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Starts the health checks that are due.
    fn schedule_checks(&self, routes: &Routes, now: f64) {
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let groups: HashMap<&str, ()> = routes
            .listeners
            .values()
            .flat_map(|l| l.groups.keys().map(|k| (k.as_str(), ())))
            .collect();
        for arn in groups.keys() {
            let Some(tg) = self.elbv2.group_by_arn(arn) else {
                continue;
            };
            if !tg.health.enabled {
                continue;
            }
            for t in self.elbv2.group_health(&tg) {
                if t.state == "draining" {
                    continue;
                }
                let key = (tg.arn.clone(), format!("{}:{}", t.id, t.port));
                seen.insert(key.clone());
                {
                    let mut next = self.next_check.lock();
                    if next.get(&key).is_some_and(|due| *due > now) {
                        continue;
                    }
                    next.insert(key.clone(), now + tg.health.interval as f64);
                }
                let Ok(ip) = t.address.parse::<IpAddr>() else {
                    continue;
                };
                let addr = SocketAddr::new(ip, t.health_check_port);
                let hc = tg.health.clone();
                let elbv2 = self.elbv2.clone();
                let clock = self.clock.clone();
                let timeout = clock.real(Duration::from_secs(hc.timeout.max(1) as u64));
                let effect = self.effect(addr);
                tokio::spawn(async move {
                    let result = health::probe_through(effect, &hc, addr, timeout).await;
                    elbv2.health.record(
                        &key.0,
                        &key.1,
                        result,
                        hc.healthy_threshold,
                        hc.unhealthy_threshold,
                        clock.now(),
                    );
                });
            }
        }
        self.next_check.lock().retain(|k, _| seen.contains(k));
    }
}

/// What the requests of one HTTP client connection share.
struct ClientConnection {
    lb: Arc<Lb>,
    arn: Arc<str>,
    inbound: Inbound,
    routes: RoutesCache,
}

/// A listener's routes as a connection last looked them up, and the routing table generation
/// they are from: a request looks them up again (a lock and a hashed lookup) only once the
/// table has been rebuilt.
#[derive(Default)]
struct RoutesCache(Mutex<Option<(u64, Option<Arc<ListenerRoutes>>)>>);

impl ClientConnection {
    fn listener_routes(&self) -> Option<Arc<ListenerRoutes>> {
        let generation = self
            .lb
            .routes_generation
            .load(std::sync::atomic::Ordering::Acquire);
        let mut cached = self.routes.0.lock();
        match &*cached {
            Some((g, routes)) if *g == generation => routes.clone(),
            _ => {
                let routes = self.lb.routes.read().listeners.get(&*self.arn).cloned();
                *cached = Some((generation, routes.clone()));
                routes
            }
        }
    }
}

/// Counts a client connection as new, and as open until dropped (ActiveConnectionCount).
struct OpenConnection(Arc<crate::services::elbv2::metrics::Counters>);

impl OpenConnection {
    fn new(c: Arc<crate::services::elbv2::metrics::Counters>) -> OpenConnection {
        use std::sync::atomic::Ordering::Relaxed;
        c.here().new_connections.fetch_add(1, Relaxed);
        c.here().open_connections.fetch_add(1, Relaxed);
        OpenConnection(c)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .here()
            .open_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
