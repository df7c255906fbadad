//! Threads for the operations that may take long (fsync, fallocate, reads served here rather
//! than passed through), so that a mount's FUSE thread keeps answering the others.
//!
//! Why a single FUSE thread per mount with this pool rather than fuser's multithreaded session:
//! the kernel hands each request to the reader that has waited longest, so with N readers a
//! client doing one operation after another always wakes a cold thread, often on the other CPU.
//! Metadata operations are short system calls on the backing directory, answered faster by one
//! hot thread (docs/benchmarks.md, EFS data plane); what can block for long goes here, and lock
//! waits are parked without a thread (`locks.rs`).

use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;

type Job = Box<dyn FnOnce() + Send>;

pub struct Slow {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    threads: usize,
}

impl Slow {
    /// Threads start with the first job.
    pub fn new(threads: usize) -> Slow {
        Slow {
            tx: Mutex::new(None),
            threads: threads.max(1),
        }
    }

    /// Runs `job` on one of the threads (or here, if they cannot be started).
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        let mut tx = self.tx.lock();
        if tx.is_none() {
            *tx = self.start();
        }
        let job: Job = Box::new(job);
        let job = match tx.as_ref() {
            Some(t) => match t.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        drop(tx);
        job();
    }

    fn start(&self) -> Option<mpsc::Sender<Job>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..self.threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("efs-slow-{i}"))
                .spawn(move || loop {
                    // Ends when the file system (the only sender) is dropped.
                    let job = rx.lock().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no EFS slow-operation thread");
                if i == 0 {
                    return None;
                }
            }
        }
        Some(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_off_the_calling_thread() {
        let slow = Slow::new(2);
        let (tx, rx) = mpsc::channel();
        let me = std::thread::current().id();
        for _ in 0..4 {
            let tx = tx.clone();
            slow.run(move || tx.send(std::thread::current().id()).expect("send"));
        }
        for _ in 0..4 {
            let id = rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .expect("ran");
            assert_ne!(id, me);
        }
    }
}
