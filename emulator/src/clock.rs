//! The emulator clock. Every timer reads it; `--time-scale N` makes it run N times faster than
//! real time so that a five-minute cooldown passes in seconds.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    origin: Instant,
    origin_epoch: f64,
    scale: f64,
}

impl Clock {
    pub fn new(scale: f64) -> Clock {
        let origin_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        Clock {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                origin_epoch,
                scale,
            }),
        }
    }

    /// Emulated time, in epoch seconds.
    pub fn now(&self) -> f64 {
        self.inner.origin_epoch + self.inner.origin.elapsed().as_secs_f64() * self.inner.scale
    }

    pub fn scale(&self) -> f64 {
        self.inner.scale
    }

    /// The real duration that an emulated duration takes.
    pub fn real(&self, emulated: Duration) -> Duration {
        emulated.div_f64(self.inner.scale)
    }

    /// Sleeps for an emulated duration.
    pub async fn sleep(&self, emulated: Duration) {
        tokio::time::sleep(self.real(emulated)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_faster() {
        let c = Clock::new(60.0);
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(50));
        let dt = c.now() - t0;
        assert!(dt >= 2.9, "60x clock advanced only {dt}s in 50ms");
        assert_eq!(c.real(Duration::from_secs(300)), Duration::from_secs(5));
        assert_eq!(Clock::new(-1.0).scale(), 1.0);
    }
}
