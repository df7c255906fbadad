//! Keep-alive HTTP/1.1 connections from the load balancer to its targets.
//!
//! hyper's own pooled client (hyper-util's legacy `Client`) spawns a task per request to learn
//! when a connection is idle again, and takes its pool lock twice per request. This pool hands a
//! connection back when the response body has been read to its end (a connection whose body is
//! dropped half-read is closed, as HTTP/1.1 requires), so a forwarded request costs no task and
//! one short lock each way.

use super::proxy::{BoxError, ProxyBody};
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::body::{Body, Frame, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long an unused connection is kept (ALB keeps target connections for a while; nginx's
/// default keepalive_timeout is 75 s).
const IDLE_FOR: Duration = Duration::from_secs(55);
/// Unused connections kept per target.
const MAX_IDLE_PER_TARGET: usize = 1024;

/// Why a request did not get an answer from the target.
#[derive(Debug)]
pub enum UpstreamError {
    /// No TCP connection within the connect timeout.
    ConnectTimeout,
    /// The connection was refused or failed.
    Connect(std::io::Error),
    /// The connection broke before a whole answer arrived.
    Exchange(hyper::Error),
}

struct IdleConnection {
    sender: SendRequest<ProxyBody>,
    since: Instant,
}

/// FxHash: looked up twice per request, keyed by target addresses from the configuration.
type IdleConnections = rustc_hash::FxHashMap<SocketAddr, Vec<IdleConnection>>;

pub struct Upstreams {
    connect_timeout: Duration,
    /// One pool per thread slot (`plane::slot`): a connection's task runs on the runtime of the
    /// thread that opened it, so it is handed only to requests on that thread, which then
    /// never wake another. Slot 0 is everything off the data plane.
    idle: Vec<Mutex<IdleConnections>>,
}

impl Upstreams {
    /// `slots`: 1 + the number of data-plane threads.
    pub fn new(connect_timeout: Duration, slots: usize) -> Arc<Upstreams> {
        Arc::new(Upstreams {
            connect_timeout,
            idle: (0..slots.max(1)).map(|_| Mutex::default()).collect(),
        })
    }

    /// The calling thread's pool.
    fn pool(&self, slot: usize) -> &Mutex<IdleConnections> {
        &self.idle[slot.min(self.idle.len() - 1)]
    }

    /// Sends `req` (origin-form URI, Host set) to `addr` on an idle connection, else a new one;
    /// a request that an idle connection closed under it before taking it goes on a new one.
    pub async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        req: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        let mut req = req;
        let slot = super::plane::slot();
        while let Some(mut sender) = self.checkout(slot, addr) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(self.answer(slot, addr, sender, response)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(UpstreamError::Exchange(e.into_error())),
                },
            }
        }
        // Boxed: a new connection is the rare case; unboxed, its future would make every
        // request's future larger, and futures are copied as they are built.
        let mut sender = Box::pin(self.connect(addr)).await?;
        match sender.send_request(req).await {
            Ok(response) => Ok(self.answer(slot, addr, sender, response)),
            Err(e) => Err(UpstreamError::Exchange(e)),
        }
    }

    /// The most recently used idle connection to `addr` that is still open.
    fn checkout(&self, slot: usize, addr: SocketAddr) -> Option<SendRequest<ProxyBody>> {
        let mut idle = self.pool(slot).lock();
        let list = idle.get_mut(&addr)?;
        while let Some(c) = list.pop() {
            if !c.sender.is_closed() && c.since.elapsed() < IDLE_FOR {
                return Some(c.sender);
            }
        }
        None
    }

    fn checkin(&self, slot: usize, addr: SocketAddr, sender: SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.pool(slot).lock();
        let list = idle.entry(addr).or_default();
        // Checkout takes the newest; stale ones are dropped there, or here when the list is full
        // (the oldest first: they are the likeliest to have been closed by the target).
        if list.len() >= MAX_IDLE_PER_TARGET {
            list.retain(|c| !c.sender.is_closed() && c.since.elapsed() < IDLE_FOR);
            if list.len() >= MAX_IDLE_PER_TARGET {
                list.remove(0);
            }
        }
        list.push(IdleConnection {
            sender,
            since: Instant::now(),
        });
    }

    /// Drops idle connections that are closed or stale, and the targets left with none (a
    /// replaced task's address is never asked for again). Off the request path: `Lb::run`.
    pub fn sweep(&self) {
        for pool in &self.idle {
            pool.lock().retain(|_, list| {
                list.retain(|c| !c.sender.is_closed() && c.since.elapsed() < IDLE_FOR);
                !list.is_empty()
            });
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<ProxyBody>, UpstreamError> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
                Err(_) => return Err(UpstreamError::ConnectTimeout),
            };
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(UpstreamError::Exchange)?;
        tokio::spawn(async move {
            // Ends when the target closes, every handle is dropped, or the connection is
            // upgraded (the upgraded stream lives on in the proxy's splice).
            if let Err(e) = connection.with_upgrades().await {
                tracing::trace!(error = %e, "target connection ended");
            }
        });
        Ok(sender)
    }

    /// The answer, with a body that returns the connection once it is read to its end. A 101
    /// (upgrade) connection is never reused.
    fn answer(
        self: &Arc<Self>,
        slot: usize,
        addr: SocketAddr,
        sender: SendRequest<ProxyBody>,
        response: Response<Incoming>,
    ) -> Response<ProxyBody> {
        let reuse = response.status() != http::StatusCode::SWITCHING_PROTOCOLS;
        response.map(|body| {
            let mut returning = ReturningBody {
                body,
                home: reuse.then(|| Home {
                    pool: self.clone(),
                    slot,
                    addr,
                    sender,
                }),
            };
            if returning.body.is_end_stream() {
                returning.check_in();
            }
            http_body_util::BodyExt::boxed_unsync(returning)
        })
    }
}

/// Where a connection goes back to.
struct Home {
    pool: Arc<Upstreams>,
    slot: usize,
    addr: SocketAddr,
    sender: SendRequest<ProxyBody>,
}

/// A target's response body that checks its connection back in at its end.
struct ReturningBody {
    body: Incoming,
    home: Option<Home>,
}

impl ReturningBody {
    fn check_in(&mut self) {
        if let Some(h) = self.home.take() {
            h.pool.checkin(h.slot, h.addr, h.sender);
        }
    }
}

impl Body for ReturningBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.check_in(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.check_in(),
            Poll::Ready(Some(Ok(_))) => {}
            // A broken body: the connection is not reused (dropping the handle closes it).
            Poll::Ready(Some(Err(_))) => self.home = None,
            Poll::Pending => {}
        }
        polled.map(|f| f.map(|r| r.map_err(|e| Box::new(e) as BoxError)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An HTTP/1.1 target on loopback answering "hi <n>" on its n-th connection (closing each
    /// after one answer unless `keep_alive`); counts its connections.
    async fn target(keep_alive: bool) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| async move {
                        Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                            Bytes::from(format!("hi {n}")),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, connections)
    }

    fn get(addr: SocketAddr) -> Request<ProxyBody> {
        Request::builder()
            .uri("/")
            .header("host", addr.to_string())
            .body(super::super::proxy::full(""))
            .expect("request")
    }

    async fn text(r: Response<ProxyBody>) -> String {
        let body = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_is_read() {
        let (addr, connections) = target(true).await;
        let pool = Upstreams::new(Duration::from_secs(2), 1);
        for _ in 0..5 {
            let r = pool.send(addr, get(addr)).await.expect("answer");
            assert_eq!(text(r).await, "hi 1");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        // Two at once need two connections; both are kept.
        let (a, b) = tokio::join!(pool.send(addr, get(addr)), pool.send(addr, get(addr)));
        let (a, b) = (a.expect("a"), b.expect("b"));
        let mut both = vec![text(a).await, text(b).await];
        both.sort();
        assert_eq!(both, ["hi 1", "hi 2"]);
        assert_eq!(pool.idle[0].lock()[&addr].len(), 2);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_closes_its_connection() {
        let (addr, connections) = target(true).await;
        let pool = Upstreams::new(Duration::from_secs(2), 1);
        let r = pool.send(addr, get(addr)).await.expect("answer");
        drop(r.into_body());
        let r = pool.send(addr, get(addr)).await.expect("answer");
        assert_eq!(text(r).await, "hi 2");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refused_targets_and_targets_that_close() {
        let unused = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let pool = Upstreams::new(Duration::from_secs(2), 1);
        assert!(matches!(
            pool.send(unused, get(unused)).await,
            Err(UpstreamError::Connect(_))
        ));
        // "Connection: close" from the target: each request gets a connection of its own.
        let (addr, connections) = target(false).await;
        for n in 1..=3 {
            let r = pool.send(addr, get(addr)).await.expect("answer");
            assert_eq!(text(r).await, format!("hi {n}"));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3);
        // What those closed connections left in the pool is swept away with their target (once
        // the last connection's task has seen the close).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            pool.sweep();
            if !pool.idle[0].lock().contains_key(&addr) {
                break;
            }
            assert!(Instant::now() < deadline, "closed connections stay pooled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
