//! The alarm controller: evaluates CloudWatch alarms on the emulator clock (each metric alarm
//! just after each minute, or each period for 10-, 20- and 30-second alarms; composite alarms on
//! every pass), and at once when an alarm is created or changed.

use crate::clock::Clock;
use crate::services::cloudwatch::CloudWatch;
use std::sync::Arc;
use std::time::Duration;

pub struct AlarmController {
    cw: Arc<CloudWatch>,
    clock: Clock,
}

impl AlarmController {
    pub fn new(cw: Arc<CloudWatch>, clock: Clock) -> AlarmController {
        AlarmController { cw, clock }
    }

    pub async fn run(self) {
        let mut changes = self.cw.alarm_changes();
        // Two emulated seconds between passes, within [20 ms, 1 s] of real time.
        let pause = self
            .clock
            .real(Duration::from_secs(2))
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        loop {
            self.cw.evaluate_due(self.clock.now());
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
