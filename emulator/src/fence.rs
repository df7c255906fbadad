//! The reset fence. Every container start and stop of the task agent, and every pass of the
//! service scheduler, runs inside it; `POST /_emulator/reset` closes it (waiting for those in
//! flight), removes the containers, wipes the state and opens it again. So no container whose
//! start was under way survives a reset, and nothing is started from state the reset drops.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

#[derive(Clone, Default, Debug)]
pub struct Fence(Arc<RwLock<()>>);

impl Fence {
    /// Held while one start, stop or scheduler pass runs; waits while a reset holds the fence.
    pub async fn enter(&self) -> OwnedRwLockReadGuard<()> {
        self.0.clone().read_owned().await
    }

    /// Closes the fence once everything inside has left, or None after `wait`. tokio's lock is
    /// fair: nothing new enters while a reset waits.
    pub async fn close(&self, wait: Duration) -> Option<OwnedRwLockWriteGuard<()>> {
        tokio::time::timeout(wait, self.0.clone().write_owned())
            .await
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reset_waits_for_work_in_flight_and_holds_new_work_back() {
        let fence = Fence::default();
        let inside = fence.enter().await;
        // Work in flight: the reset cannot close the fence yet.
        assert!(fence.close(Duration::from_millis(50)).await.is_none());
        let f = fence.clone();
        let closing = tokio::spawn(async move { f.close(Duration::from_secs(5)).await.is_some() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // New work waits behind the reset.
        let f = fence.clone();
        let later = tokio::spawn(async move {
            let _g = f.enter().await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!later.is_finished());
        drop(inside);
        assert!(closing.await.expect("join"));
        later.await.expect("join");
    }
}
