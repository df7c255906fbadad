//! The HTTP server of the main port and of the listener containers reach: axum's router on
//! hyper, as `axum::serve` runs it, with the limits a server facing many clients needs.
//!
//! - HTTP/1 request headers must arrive within HEADER_READ_TIMEOUT of the connection becoming
//!   ready for a request, and a keep-alive connection idle for as long is closed: a slow or idle
//!   client holds its own connection for that long, nothing more.
//! - At most `connection_cap()` connections at once (three quarters of the file descriptor
//!   limit, the rest kept for Docker, the database, load balancer listeners and proxies); past
//!   it new connections wait in the kernel's backlog, and a log line says so.
//! - Request bodies are read with a timeout in `server.rs` (BODY_READ_TIMEOUT).
//! - On shutdown: no new connections, idle ones close, requests under way finish (for up to
//!   SHUTDOWN_GRACE).

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

/// How long a client may take to send a request's headers (and how long an idle keep-alive
/// connection stays open).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a client may take to send a request body (a 64 MiB ECR layer part at ~1 MB/s).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long shutdown waits for requests under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often the "connection limit reached" line may repeat.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Concurrent connections allowed: three quarters of the soft file descriptor limit.
pub fn connection_cap() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024);
    cap_for(limit)
}

fn cap_for(fd_limit: u64) -> usize {
    let cap = fd_limit.saturating_mul(3) / 4;
    usize::try_from(cap)
        .unwrap_or(usize::MAX)
        .clamp(32, 1 << 20)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = connection_cap();
    let permits = Arc::new(Semaphore::new(cap));
    let (close_tx, close_rx) = watch::channel(false);
    // Every connection holds a sender; when all are dropped, every connection has ended.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut shutdown = pin!(shutdown);
    let mut warned: Option<Instant> = None;
    loop {
        if permits.available_permits() == 0
            && warned.is_none_or(|t| t.elapsed() > LIMIT_LOG_INTERVAL)
        {
            warned = Some(Instant::now());
            tracing::warn!(
                limit = cap,
                "connection limit reached ({cap}, three quarters of the file descriptor limit): new connections wait until one closes"
            );
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let mut close = close_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _done = done;
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            builder.http2().timer(TokioTimer::new());
            let mut conn =
                pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = close.changed() => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = close_tx.send(true);
    drop(done_tx);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_quarter_of_the_descriptors() {
        assert_eq!(cap_for(1024), 768);
        assert_eq!(cap_for(1_048_576), 786_432);
        assert_eq!(cap_for(10), 32);
        assert!(connection_cap() >= 32);
    }
}
