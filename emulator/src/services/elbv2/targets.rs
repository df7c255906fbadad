//! RegisterTargets, DeregisterTargets, DescribeTargetHealth, and the typed API the ECS service
//! scheduler uses for the same (on [`Elbv2`]).

use super::health::Observed;
use super::model::{target_key, Registration, TargetGroup};
use super::{group_not_found, validation, Elbv2, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;

pub fn register(r: &mut Registry, s: &Arc<Elbv2>) {
    r.sync(SERVICE, "RegisterTargets", s, register_targets);
    r.sync(SERVICE, "DeregisterTargets", s, deregister_targets);
    r.sync(SERVICE, "DescribeTargetHealth", s, describe_target_health);
}

/// A target as RegisterTargets names it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    pub id: String,
    pub port: Option<u16>,
    pub availability_zone: Option<String>,
}

/// A target's health as DescribeTargetHealth reports it, plus where the proxy reaches it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetHealth {
    pub id: String,
    pub port: u16,
    pub availability_zone: Option<String>,
    /// initial | healthy | unhealthy | unused | draining | unavailable
    pub state: &'static str,
    pub reason: Option<&'static str>,
    pub description: Option<String>,
    /// The address traffic goes to: the IP of an ip target; for an instance target the
    /// loopback address of the ECS container instance on that EC2 instance (else 127.0.0.1).
    pub address: String,
    /// The health-check port ("traffic-port" resolved).
    pub health_check_port: u16,
    /// When the target last became healthy (for slow start).
    pub healthy_since: Option<f64>,
}

fn parse_specs(input: &Value) -> Result<Vec<TargetSpec>, AwsError> {
    let mut out = Vec::new();
    if let Some(Value::Array(items)) = input.get("Targets") {
        for t in items {
            let port = match t.i64("Port") {
                Some(p) => Some(
                    u16::try_from(p)
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| validation("The port must be between 1 and 65535"))?,
                ),
                None => None,
            };
            out.push(TargetSpec {
                id: t.str("Id").unwrap_or_default().to_string(),
                port,
                availability_zone: t.str("AvailabilityZone").map(str::to_string),
            });
        }
    }
    Ok(out)
}

fn check_target(group: &TargetGroup, t: &TargetSpec) -> Result<u16, AwsError> {
    let valid = match group.target_type.as_str() {
        "instance" => {
            t.id.starts_with("i-")
                && t.id.len() > 2
                && t.id[2..].chars().all(|c| c.is_ascii_hexdigit())
        }
        "ip" => t.id.parse::<IpAddr>().is_ok(),
        "alb" => t.id.starts_with("arn:"),
        _ => true,
    };
    if !valid {
        let what = match group.target_type.as_str() {
            "instance" => "instances",
            "ip" => "IP addresses",
            _ => "targets",
        };
        return Err(AwsError::new(
            codes::elbv2::InvalidTargetException,
            format!("The following targets are not valid {what}: '{}'", t.id),
        ));
    }
    if group.target_type == "lambda" {
        return Ok(0);
    }
    t.port
        .or(group.port)
        .ok_or_else(|| validation(format!("A port must be specified for target '{}'", t.id)))
}

impl Elbv2 {
    fn group_in(&self, scope: &str, arn: &str) -> Result<TargetGroup, AwsError> {
        self.target_groups
            .get(&format!("{scope}{arn}"))
            .ok_or_else(group_not_found)
    }

    /// Registers targets (ECS's scheduler calls this for a service's tasks). Registering a
    /// draining target again makes it a new registration.
    pub fn register_targets(
        &self,
        account: &str,
        region: &str,
        group_arn: &str,
        targets: &[TargetSpec],
    ) -> Result<(), AwsError> {
        let scope = format!("{account}/{region}/");
        let group = self.group_in(&scope, group_arn)?;
        let now = self.clock.now();
        let mut regs = Vec::new();
        for t in targets {
            let port = check_target(&group, t)?;
            regs.push(Registration {
                group_arn: group.arn.clone(),
                id: t.id.clone(),
                port,
                availability_zone: t.availability_zone.clone(),
                registered_at: now,
                draining_since: None,
            });
        }
        let fresh = self.targets.transact::<_, AwsError, _>(|tx| {
            let mut fresh = Vec::new();
            for r in &regs {
                let k = format!("{scope}{}/{}", group.id, r.key());
                match tx.get(&k) {
                    Some(old) if old.draining_since.is_none() => {}
                    _ => {
                        tx.put(&k, r.clone());
                        fresh.push(r.key());
                    }
                }
            }
            Ok(fresh)
        })?;
        for k in fresh {
            self.health.reset(&group.arn, &k);
        }
        self.bump();
        Ok(())
    }

    /// Starts draining targets; they go after the group's deregistration delay (at once when
    /// the delay is 0 or no load balancer uses the group).
    pub fn deregister_targets(
        &self,
        account: &str,
        region: &str,
        group_arn: &str,
        targets: &[TargetSpec],
    ) -> Result<(), AwsError> {
        let scope = format!("{account}/{region}/");
        let group = self.group_in(&scope, group_arn)?;
        let now = self.clock.now();
        let delay = deregistration_delay(&group);
        let in_use = !super::actions::group_load_balancers(self, &scope, &group.arn).is_empty();
        self.targets.transact(|tx| {
            let mut missing = Vec::new();
            for t in targets {
                let port = t.port.or(group.port).unwrap_or(0);
                let k = format!("{scope}{}/{}", group.id, target_key(&t.id, port));
                // A target registered with a port of its own may be named without it.
                let k = if tx.contains(&k) || t.port.is_some() {
                    k
                } else {
                    tx.keys(&format!("{scope}{}/{}:", group.id, t.id))
                        .into_iter()
                        .next()
                        .unwrap_or(k)
                };
                if !tx.contains(&k) {
                    missing.push(t.id.clone());
                    continue;
                }
                if delay <= 0.0 || !in_use {
                    tx.remove(&k);
                } else if let Some(r) = tx.get_mut(&k) {
                    r.draining_since.get_or_insert(now);
                }
            }
            if !missing.is_empty() {
                return Err(AwsError::new(
                    codes::elbv2::InvalidTargetException,
                    format!(
                        "The following targets are not registered in target group: '{}'",
                        missing.join("', '")
                    ),
                ));
            }
            Ok(())
        })?;
        self.health.notify(&group.arn);
        self.bump();
        Ok(())
    }

    /// Removes draining targets whose deregistration delay has passed; true if any went.
    pub fn expire_draining(&self, now: f64) -> bool {
        let expired: Vec<(String, String)> = self.targets.read(|m| {
            m.iter()
                .filter(|(_, r)| {
                    r.draining_since.is_some_and(|since| {
                        let delay = self
                            .group_by_arn(&r.group_arn)
                            .map(|g| deregistration_delay(&g))
                            .unwrap_or(0.0);
                        now - since >= delay
                    })
                })
                .map(|(k, r)| (k.clone(), r.group_arn.clone()))
                .collect()
        });
        if expired.is_empty() {
            return false;
        }
        let _ = self.targets.transact::<_, AwsError, _>(|tx| {
            for (k, _) in &expired {
                tx.remove(k);
            }
            Ok(())
        });
        let groups: HashSet<&str> = expired.iter().map(|(_, g)| g.as_str()).collect();
        for group in groups {
            self.health.notify(group);
        }
        self.bump();
        true
    }

    /// The health of every registered target of a group (ECS's scheduler waits on this).
    pub fn target_health(
        &self,
        account: &str,
        region: &str,
        group_arn: &str,
    ) -> Result<Vec<TargetHealth>, AwsError> {
        let scope = format!("{account}/{region}/");
        let group = self.group_in(&scope, group_arn)?;
        Ok(self.group_health(&group))
    }

    /// Wakes whenever some target's health may have changed.
    pub fn health_changes(&self) -> watch::Receiver<u64> {
        self.health.subscribe()
    }

    /// The health of a group's registered targets (the proxy and the health checker read this).
    pub fn group_health(&self, group: &TargetGroup) -> Vec<TargetHealth> {
        let scope = super::scope_of(&group.arn);
        let in_use = !super::actions::group_load_balancers(self, &scope, &group.arn).is_empty();
        self.registrations(group)
            .into_iter()
            .map(|r| self.health_of(group, &r, in_use))
            .collect()
    }

    fn health_of(&self, group: &TargetGroup, r: &Registration, in_use: bool) -> TargetHealth {
        let scope = super::scope_of(&group.arn);
        let mut parts = scope.split('/');
        let (account, region) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let address = if group.target_type == "instance" {
            self.instance_address(account, region, &r.id)
        } else {
            r.id.clone()
        };
        let health_check_port = group.health.port.parse::<u16>().unwrap_or(r.port);
        let record = self.health.get(&group.arn, &r.key());
        let (state, reason, description): (&'static str, Option<&'static str>, Option<String>) =
            if r.draining_since.is_some() {
                (
                    "draining",
                    Some("Target.DeregistrationInProgress"),
                    Some("Target deregistration is in progress".into()),
                )
            } else if !in_use {
                (
                    "unused",
                    Some("Target.NotInUse"),
                    Some(
                        "Target group is not configured to receive traffic from the load balancer"
                            .into(),
                    ),
                )
            } else if !group.health.enabled {
                (
                    "unavailable",
                    Some("Target.HealthCheckDisabled"),
                    Some("Health checks are disabled".into()),
                )
            } else {
                match &record {
                    None => (
                        "initial",
                        Some("Elb.RegistrationInProgress"),
                        Some("Target registration is in progress".into()),
                    ),
                    Some(rec) => (
                        match rec.state {
                            Observed::Initial => "initial",
                            Observed::Healthy => "healthy",
                            Observed::Unhealthy => "unhealthy",
                        },
                        rec.reason,
                        rec.description.clone(),
                    ),
                }
            };
        TargetHealth {
            id: r.id.clone(),
            port: r.port,
            availability_zone: r.availability_zone.clone(),
            state,
            reason,
            description,
            address,
            health_check_port,
            healthy_since: record.and_then(|r| r.healthy_since),
        }
    }
}

/// deregistration_delay.timeout_seconds of a group.
pub fn deregistration_delay(group: &TargetGroup) -> f64 {
    group
        .attributes
        .get("deregistration_delay.timeout_seconds")
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(300.0)
}

fn register_targets(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("TargetGroupArn").unwrap_or_default();
    s.register_targets(&ctx.account, &ctx.region, arn, &parse_specs(&input)?)?;
    Ok(json!({}))
}

fn deregister_targets(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("TargetGroupArn").unwrap_or_default();
    s.deregister_targets(&ctx.account, &ctx.region, arn, &parse_specs(&input)?)?;
    Ok(json!({}))
}

fn describe_target_health(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("TargetGroupArn").unwrap_or_default();
    let group = s.group_in(&ctx.scope(), arn)?;
    let all = s.group_health(&group);
    let wanted = parse_specs(&input)?;
    let json_of = |h: &TargetHealth| {
        let mut target = json!({"Id": h.id, "Port": h.port});
        if let Some(z) = &h.availability_zone {
            target["AvailabilityZone"] = json!(z);
        }
        let mut health = json!({"State": h.state});
        if let Some(r) = h.reason {
            health["Reason"] = json!(r);
        }
        if let Some(d) = &h.description {
            health["Description"] = json!(d);
        }
        json!({
            "Target": target,
            "HealthCheckPort": h.health_check_port.to_string(),
            "TargetHealth": health,
        })
    };
    let out: Vec<Value> = if wanted.is_empty() {
        all.iter().map(json_of).collect()
    } else {
        let mut out = Vec::new();
        for w in &wanted {
            check_target(&group, w)?;
            let found = all
                .iter()
                .find(|h| h.id == w.id && w.port.is_none_or(|p| p == h.port));
            match found {
                Some(h) => out.push(json_of(h)),
                None => {
                    let port = w.port.or(group.port).unwrap_or(0);
                    out.push(json!({
                        "Target": {"Id": w.id, "Port": port},
                        "HealthCheckPort": group.health.port.parse::<u16>().unwrap_or(port).to_string(),
                        "TargetHealth": {
                            "State": "unused",
                            "Reason": "Target.NotRegistered",
                            "Description": "Target is not registered to the target group",
                        },
                    }));
                }
            }
        }
        out
    };
    Ok(json!({"TargetHealthDescriptions": out}))
}
