//! What the data planes ask about faults, per request: is this target address blackholed or
//! slowed, is this instance's agent held disconnected, is the registry paused. A snapshot rebuilt
//! by `Faults::refresh` (on every fault change and every second), so a lookup takes one read
//! lock and touches no table.

use parking_lot::RwLock;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What happens to traffic towards an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing answers: connections hang until the caller gives up.
    Blackhole,
    /// Answers, this much later.
    Delay(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub ip: IpAddr,
    /// None: every port of the address.
    pub port: Option<u16>,
    pub effect: Effect,
}

#[derive(Debug, Default)]
pub struct Network {
    rules: RwLock<Vec<Rule>>,
    /// EC2 instance ids whose agent a fault keeps disconnected.
    held: RwLock<HashSet<String>>,
    /// The id of the fault pausing the registry.
    registry_paused: RwLock<Option<String>>,
}

impl Network {
    /// The effect on traffic to `addr`: a blackhole wins over a delay; delays do not add up,
    /// the longest applies.
    pub fn effect(&self, addr: SocketAddr) -> Option<Effect> {
        let rules = self.rules.read();
        let mut out: Option<Effect> = None;
        for r in rules.iter() {
            if r.ip != addr.ip() || r.port.is_some_and(|p| p != addr.port()) {
                continue;
            }
            out = match (out, r.effect) {
                (Some(Effect::Blackhole), _) | (_, Effect::Blackhole) => Some(Effect::Blackhole),
                (Some(Effect::Delay(a)), Effect::Delay(b)) => Some(Effect::Delay(a.max(b))),
                (None, e) => Some(e),
            };
        }
        out
    }

    /// Whether a fault keeps this EC2 instance's agent disconnected.
    pub fn holds(&self, ec2_instance_id: &str) -> bool {
        self.held.read().contains(ec2_instance_id)
    }

    /// The fault pausing the registry, if any.
    pub fn registry_paused(&self) -> Option<String> {
        self.registry_paused.read().clone()
    }

    pub(super) fn set(&self, rules: Vec<Rule>, held: HashSet<String>, paused: Option<String>) {
        *self.rules.write() = rules;
        *self.held.write() = held;
        *self.registry_paused.write() = paused;
    }
}

/// Parses a target as describe-target-health shows it, `<id>:<port>` or `<id>` (an instance id
/// or an IP address).
pub fn split_target(target: &str) -> (String, Option<u16>) {
    match target.rsplit_once(':') {
        Some((id, port)) if !id.contains(':') => match port.parse::<u16>() {
            Ok(p) => (id.to_string(), Some(p)),
            Err(_) => (target.to_string(), None),
        },
        _ => (target.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn blackhole_wins_and_ports_match() {
        let n = Network::default();
        let ip: IpAddr = "127.20.0.5".parse().expect("ip");
        n.set(
            vec![
                Rule {
                    ip,
                    port: Some(8080),
                    effect: Effect::Delay(Duration::from_millis(300)),
                },
                Rule {
                    ip,
                    port: Some(8080),
                    effect: Effect::Delay(Duration::from_millis(100)),
                },
                Rule {
                    ip,
                    port: Some(9090),
                    effect: Effect::Blackhole,
                },
            ],
            HashSet::new(),
            None,
        );
        assert_eq!(
            n.effect(addr("127.20.0.5:8080")),
            Some(Effect::Delay(Duration::from_millis(300)))
        );
        assert_eq!(n.effect(addr("127.20.0.5:9090")), Some(Effect::Blackhole));
        assert_eq!(n.effect(addr("127.20.0.5:1")), None);
        assert_eq!(n.effect(addr("127.20.0.6:8080")), None);
        n.set(
            vec![Rule {
                ip,
                port: None,
                effect: Effect::Blackhole,
            }],
            HashSet::from(["i-1".to_string()]),
            Some("f-1".into()),
        );
        assert_eq!(n.effect(addr("127.20.0.5:8080")), Some(Effect::Blackhole));
        assert!(n.holds("i-1") && !n.holds("i-2"));
        assert_eq!(n.registry_paused().as_deref(), Some("f-1"));
    }

    #[test]
    fn targets_split_like_describe_target_health() {
        assert_eq!(
            split_target("i-0abc:32768"),
            ("i-0abc".to_string(), Some(32768))
        );
        assert_eq!(split_target("10.0.1.5"), ("10.0.1.5".to_string(), None));
        assert_eq!(
            split_target("10.0.1.5:80"),
            ("10.0.1.5".to_string(), Some(80))
        );
        assert_eq!(split_target("i-0abc:x"), ("i-0abc:x".to_string(), None));
    }
}
