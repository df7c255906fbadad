//! One shutdown signal for the whole process (as mini-redis passes one to `run(listener,
//! shutdown)`): every listener and controller loop gets a [`Shutdown`] and stops when it fires.
//! `main` fires it on SIGTERM or Ctrl-C; the listeners then stop accepting and finish the calls
//! in flight, the loops stop at their next await, and the process exits. Containers are left
//! running: the next start adopts them.

use std::future::Future;
use tokio::sync::watch;

/// Fires the signal (held by `App`).
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// A clonable handle that waits for the signal.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new signal, not fired.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    /// Fires the signal; every [`Shutdown`] sees it (now and later).
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Whether the signal has fired.
    pub fn fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the signal fires (or its trigger is gone, which means the same).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }

    /// Runs `work` until it ends or the signal fires, whichever comes first. Loops stop at an
    /// await point: a store transaction is synchronous, so none is ever left half done.
    pub async fn run_until<F: Future<Output = ()>>(self, work: F) {
        tokio::select! {
            _ = work => {}
            _ = self.wait() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_handle_sees_the_signal() {
        let (trigger, shutdown) = channel();
        let late = trigger.subscribe();
        assert!(!shutdown.fired());
        let looping = tokio::spawn(shutdown.clone().run_until(std::future::pending()));
        trigger.fire();
        tokio::time::timeout(Duration::from_secs(1), looping)
            .await
            .expect("the loop stops")
            .expect("joined");
        assert!(late.fired());
        tokio::time::timeout(Duration::from_secs(1), shutdown.wait())
            .await
            .expect("a handle taken before the signal resolves after it");
    }
}
