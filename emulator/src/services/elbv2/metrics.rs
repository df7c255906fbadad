//! Request counters the data plane increments, for the AWS/ApplicationELB metrics a metrics
//! publisher will read: per load balancer, per target group, and per target.

use parking_lot::RwLock;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// How many copies of each set of counters there are: a thread counts in its own
/// (`set_thread_shard`), so the load balancer's threads, which count every request of theirs,
/// never write to the same cache line; readers add the copies up.
const SHARDS: usize = 4;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// The shard the calling thread counts in from now on (lb::plane gives each of its threads
/// its own; every other thread counts in shard 0).
pub fn set_thread_shard(i: usize) {
    SHARD.with(|s| s.set(i % SHARDS));
}

/// Monotonic counters (read them twice and subtract for a period's value): [`Counters::here`]
/// to count, [`Counters::snapshot`] to read.
#[derive(Debug, Default)]
pub struct Counters {
    shards: [Shard; SHARDS],
}

/// One thread's share of [`Counters`], alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Shard {
    /// RequestCount.
    pub requests: AtomicU64,
    /// HTTPCode_Target_{2,3,4,5}XX_Count: answers from targets by class.
    pub target_2xx: AtomicU64,
    pub target_3xx: AtomicU64,
    pub target_4xx: AtomicU64,
    pub target_5xx: AtomicU64,
    /// HTTPCode_ELB_{3,4,5}XX_Count: answers the load balancer made itself (redirects,
    /// fixed responses, 502/503/504), and HTTPCode_ELB_502/503/504_Count.
    pub elb_3xx: AtomicU64,
    pub elb_4xx: AtomicU64,
    pub elb_5xx: AtomicU64,
    pub elb_502: AtomicU64,
    pub elb_503: AtomicU64,
    pub elb_504: AtomicU64,
    /// TargetConnectionErrorCount.
    pub connection_errors: AtomicU64,
    /// TargetResponseTime: sum (microseconds) and count of target answers.
    pub response_time_us: AtomicU64,
    pub responses: AtomicU64,
    /// Requests in flight now (least_outstanding_requests reads it).
    pub outstanding: AtomicI64,
    /// ProcessedBytes (request and response bodies seen by the proxy, approximate).
    pub processed_bytes: AtomicU64,
    /// NewConnectionCount (load balancers only).
    pub new_connections: AtomicU64,
    /// Client connections open now (load balancers only; ActiveConnectionCount).
    pub open_connections: AtomicI64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub requests: u64,
    pub target_2xx: u64,
    pub target_3xx: u64,
    pub target_4xx: u64,
    pub target_5xx: u64,
    pub elb_3xx: u64,
    pub elb_4xx: u64,
    pub elb_5xx: u64,
    pub elb_502: u64,
    pub elb_503: u64,
    pub elb_504: u64,
    pub connection_errors: u64,
    pub response_time_us: u64,
    pub responses: u64,
    pub outstanding: i64,
    pub processed_bytes: u64,
    pub new_connections: u64,
    pub open_connections: i64,
}

impl Snapshot {
    /// Mean TargetResponseTime in seconds.
    pub fn mean_response_time(&self) -> Option<f64> {
        (self.responses > 0).then(|| self.response_time_us as f64 / self.responses as f64 / 1e6)
    }
}

impl Counters {
    /// The calling thread's shard, to count in.
    pub fn here(&self) -> &Shard {
        &self.shards[SHARD.with(Cell::get)]
    }

    /// Every shard added up.
    pub fn snapshot(&self) -> Snapshot {
        self.shards
            .iter()
            .map(Shard::snapshot)
            .fold(Snapshot::default(), |a, b| a.plus(&b))
    }

    /// Requests in flight now, on every thread.
    pub fn outstanding(&self) -> i64 {
        self.shards
            .iter()
            .map(|s| s.outstanding.load(Ordering::Relaxed))
            .sum()
    }

    /// Counts a target's answer.
    pub fn target_answer(&self, status: u16, micros: u64) {
        self.here().target_answer(status, micros);
    }

    /// Counts an answer the load balancer made itself.
    pub fn elb_answer(&self, status: u16) {
        self.here().elb_answer(status);
    }
}

impl Snapshot {
    fn plus(&self, o: &Snapshot) -> Snapshot {
        Snapshot {
            requests: self.requests + o.requests,
            target_2xx: self.target_2xx + o.target_2xx,
            target_3xx: self.target_3xx + o.target_3xx,
            target_4xx: self.target_4xx + o.target_4xx,
            target_5xx: self.target_5xx + o.target_5xx,
            elb_3xx: self.elb_3xx + o.elb_3xx,
            elb_4xx: self.elb_4xx + o.elb_4xx,
            elb_5xx: self.elb_5xx + o.elb_5xx,
            elb_502: self.elb_502 + o.elb_502,
            elb_503: self.elb_503 + o.elb_503,
            elb_504: self.elb_504 + o.elb_504,
            connection_errors: self.connection_errors + o.connection_errors,
            response_time_us: self.response_time_us + o.response_time_us,
            responses: self.responses + o.responses,
            outstanding: self.outstanding + o.outstanding,
            processed_bytes: self.processed_bytes + o.processed_bytes,
            new_connections: self.new_connections + o.new_connections,
            open_connections: self.open_connections + o.open_connections,
        }
    }
}

impl Shard {
    fn snapshot(&self) -> Snapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            requests: r(&self.requests),
            target_2xx: r(&self.target_2xx),
            target_3xx: r(&self.target_3xx),
            target_4xx: r(&self.target_4xx),
            target_5xx: r(&self.target_5xx),
            elb_3xx: r(&self.elb_3xx),
            elb_4xx: r(&self.elb_4xx),
            elb_5xx: r(&self.elb_5xx),
            elb_502: r(&self.elb_502),
            elb_503: r(&self.elb_503),
            elb_504: r(&self.elb_504),
            connection_errors: r(&self.connection_errors),
            response_time_us: r(&self.response_time_us),
            responses: r(&self.responses),
            outstanding: self.outstanding.load(Ordering::Relaxed),
            processed_bytes: r(&self.processed_bytes),
            new_connections: r(&self.new_connections),
            open_connections: self.open_connections.load(Ordering::Relaxed),
        }
    }

    /// Counts a target's answer.
    pub fn target_answer(&self, status: u16, micros: u64) {
        let class = match status / 100 {
            2 => &self.target_2xx,
            3 => &self.target_3xx,
            4 => &self.target_4xx,
            5 => &self.target_5xx,
            _ => return,
        };
        class.fetch_add(1, Ordering::Relaxed);
        self.response_time_us.fetch_add(micros, Ordering::Relaxed);
        self.responses.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an answer the load balancer made itself.
    pub fn elb_answer(&self, status: u16) {
        let class = match status / 100 {
            3 => &self.elb_3xx,
            4 => &self.elb_4xx,
            5 => &self.elb_5xx,
            _ => return,
        };
        class.fetch_add(1, Ordering::Relaxed);
        match status {
            502 => self.elb_502.fetch_add(1, Ordering::Relaxed),
            503 => self.elb_503.fetch_add(1, Ordering::Relaxed),
            504 => self.elb_504.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
}

/// The counters of one target group and of each of its targets.
#[derive(Debug, Default)]
pub struct GroupCounters {
    pub all: Counters,
    /// Round-robin cursors, one per shard (each thread takes its own turns, as each nginx
    /// worker does).
    cursors: [Cursor; SHARDS],
    targets: RwLock<HashMap<String, Arc<Counters>>>,
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Cursor(AtomicUsize);

impl GroupCounters {
    /// The calling thread's next round-robin turn.
    pub fn turn(&self) -> usize {
        self.cursors[SHARD.with(Cell::get)]
            .0
            .fetch_add(1, Ordering::Relaxed)
    }

    /// A target's counters ("<id>:<port>"), created on first use.
    pub fn target(&self, key: &str) -> Arc<Counters> {
        if let Some(c) = self.targets.read().get(key) {
            return c.clone();
        }
        self.targets
            .write()
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    pub fn targets(&self) -> Vec<(String, Snapshot)> {
        let mut v: Vec<(String, Snapshot)> = self
            .targets
            .read()
            .iter()
            .map(|(k, c)| (k.clone(), c.snapshot()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    groups: RwLock<HashMap<String, Arc<GroupCounters>>>,
    load_balancers: RwLock<HashMap<String, Arc<Counters>>>,
}

impl Metrics {
    /// A target group's counters, created on first use.
    pub fn group(&self, arn: &str) -> Arc<GroupCounters> {
        if let Some(g) = self.groups.read().get(arn) {
            return g.clone();
        }
        self.groups
            .write()
            .entry(arn.to_string())
            .or_default()
            .clone()
    }

    /// A load balancer's counters, created on first use.
    pub fn load_balancer(&self, arn: &str) -> Arc<Counters> {
        if let Some(c) = self.load_balancers.read().get(arn) {
            return c.clone();
        }
        self.load_balancers
            .write()
            .entry(arn.to_string())
            .or_default()
            .clone()
    }

    pub fn forget_group(&self, arn: &str) {
        self.groups.write().remove(arn);
    }

    /// Every target group's totals.
    pub fn group_snapshots(&self) -> Vec<(String, Snapshot)> {
        self.groups
            .read()
            .iter()
            .map(|(k, g)| (k.clone(), g.all.snapshot()))
            .collect()
    }

    pub fn load_balancer_snapshots(&self) -> Vec<(String, Snapshot)> {
        self.load_balancers
            .read()
            .iter()
            .map(|(k, c)| (k.clone(), c.snapshot()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_count_in_their_own_shards_and_readers_add_them_up() {
        let c = Arc::new(Counters::default());
        let g = Arc::new(GroupCounters::default());
        let on_shard = |shard: usize| {
            let (c, g) = (c.clone(), g.clone());
            std::thread::spawn(move || {
                set_thread_shard(shard);
                c.here().requests.fetch_add(2, Ordering::Relaxed);
                c.here().outstanding.fetch_add(1, Ordering::Relaxed);
                c.target_answer(200, 10);
                (g.turn(), g.turn())
            })
            .join()
            .expect("thread")
        };
        // Each thread takes its own round-robin turns.
        assert_eq!(on_shard(1), (0, 1));
        assert_eq!(on_shard(2), (0, 1));
        assert_eq!(on_shard(1), (2, 3));
        // A request counted out on another thread than the one it was counted in on.
        c.here().outstanding.fetch_sub(1, Ordering::Relaxed);
        let s = c.snapshot();
        assert_eq!((s.requests, s.target_2xx, s.responses), (6, 3, 3));
        assert_eq!(s.response_time_us, 30);
        assert_eq!((s.outstanding, c.outstanding()), (2, 2));
        assert_eq!(
            c.shards[1].snapshot().requests,
            4,
            "shard 1 holds its two threads' counts"
        );
    }

    #[test]
    fn classes_and_latency() {
        let m = Metrics::default();
        let g = m.group("tg");
        g.all.target_answer(200, 1000);
        g.all.target_answer(404, 3000);
        g.all.elb_answer(503);
        g.target("10.0.0.1:80").target_answer(500, 10);
        let s = m.group("tg").all.snapshot();
        assert_eq!(
            (s.target_2xx, s.target_4xx, s.elb_5xx, s.elb_503),
            (1, 1, 1, 1)
        );
        assert_eq!(s.mean_response_time(), Some(0.002));
        assert_eq!(g.targets()[0].1.target_5xx, 1);
    }
}
