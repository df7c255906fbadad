//! The threads that serve load balancer connections.
//!
//! Each is a single-threaded tokio runtime owning a share of the client connections and the
//! keep-alive connections to targets that those open (the upstream pool keeps one set per
//! thread), so a request — read from the client, written to the target, its answer read and
//! written back — runs on one thread without waking another, as in an nginx worker. On the
//! emulator's shared multi-threaded runtime the client's and the target's connection tasks
//! ran on different threads and nearly every request woke a parked one (bench/alb.sh STAT=1:
//! 0.9 context switches per request, against nginx's 0.16). That wins on a machine whose cores
//! are busy with other work, and loses on an idle one, where these threads sleep and wake
//! around every request while the shared runtime's workers stay awake: so they run only when
//! asked for (`--lb-threads`; docs/benchmarks.md, "Data-plane threads").

use crate::shutdown::Shutdown;
use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpStream;
use tokio::runtime::Handle;

thread_local! {
    /// 1 + the data-plane thread's index on one of its threads, 0 elsewhere.
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// Which per-thread share of shared state (the upstream pool) the calling thread uses: 0 off
/// the data plane, `1..=threads` on it.
pub fn slot() -> usize {
    SLOT.with(Cell::get)
}

pub struct DataPlane {
    threads: Vec<Handle>,
    next: AtomicUsize,
}

impl DataPlane {
    /// Starts `threads` runtimes that run until `shutdown` fires; their connections are
    /// dropped then.
    pub fn start(threads: usize, shutdown: &Shutdown) -> std::io::Result<DataPlane> {
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name(format!("lb-{i}"))
                .spawn(move || {
                    SLOT.with(|s| s.set(i + 1));
                    crate::services::elbv2::metrics::set_thread_shard(i + 1);
                    runtime.block_on(shutdown.wait());
                    // Whatever is still open is dropped at once, as on the main runtime.
                    runtime.shutdown_background();
                })?;
        }
        Ok(DataPlane {
            threads: handles,
            next: AtomicUsize::new(0),
        })
    }

    /// Serves an accepted connection on the next thread in turn. The socket moves to that
    /// thread's I/O driver; a socket that cannot is closed.
    pub fn serve<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Ok(stream) = stream.into_std() else {
            return;
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        self.threads[i].spawn(async move {
            if let Ok(stream) = TcpStream::from_std(stream) {
                serve(stream).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn connections_are_served_in_turn_on_the_plane_threads_until_shutdown() {
        let (trigger, shutdown) = crate::shutdown::channel();
        let plane = DataPlane::start(2, &shutdown).expect("plane");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut slots = Vec::new();
        for _ in 0..4 {
            let mut client = TcpStream::connect(addr).await.expect("connect");
            let (accepted, _) = listener.accept().await.expect("accept");
            plane.serve(accepted, |mut s| async move {
                let name = std::thread::current().name().unwrap_or("").to_string();
                let _ = s.write_all(format!("{}:{name}", slot()).as_bytes()).await;
            });
            let mut said = String::new();
            client.read_to_string(&mut said).await.expect("read");
            slots.push(said);
        }
        assert_eq!(slots, ["1:lb-0", "2:lb-1", "1:lb-0", "2:lb-1"]);
        assert_eq!(slot(), 0, "the test's own thread is off the plane");
        trigger.fire();
        // Once shut down, a connection handed over is dropped unserved (the runtime is gone).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let mut client = TcpStream::connect(addr).await.expect("connect");
            let (accepted, _) = listener.accept().await.expect("accept");
            plane.serve(accepted, |mut s| async move {
                let _ = s.write_all(b"served").await;
            });
            let mut said = String::new();
            let _ = client.read_to_string(&mut said).await;
            if said.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still serving after shutdown"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
