//! The instance agent: what the ECS container agent on an ECS-optimized AMI does when its EC2
//! instance boots, stops or goes away, for every virtual EC2 instance at once.
//!
//! - A running instance whose user data configures ECS (`echo ECS_CLUSTER=x >>
//!   /etc/ecs/ecs.config`; without it the "default" cluster) registers as a container instance
//!   with its instance id, type, AZ, subnet, VPC, private IP, AMI and ECS_INSTANCE_ATTRIBUTES.
//!   If the cluster does not exist it keeps retrying, as the real agent does.
//! - A stopping or stopped instance: its tasks stop ("Host EC2 (instance i-…) stopped.") and the
//!   agent disconnects; starting the instance again reconnects it.
//! - A terminating instance: its tasks stop ("… terminated.") and the container instance is
//!   deregistered (INACTIVE).

use crate::clock::Clock;
use crate::faults::network::Network;
use crate::services::ec2::{Ec2, Instance};
use crate::services::ecs::{ContainerInstance, Ecs, InstanceLaunch};
use crate::services::Ctx;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What the agent reads from /etc/ecs/ecs.config, as the user data writes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EcsConfig {
    pub cluster: Option<String>,
    /// ECS_INSTANCE_ATTRIBUTES: custom attributes (name, value).
    pub attributes: Vec<(String, String)>,
    /// ECS_CONTAINER_INSTANCE_TAGS: tags (key, value).
    pub tags: Vec<(String, String)>,
}

impl EcsConfig {
    /// The cluster the agent registers with: ECS_CLUSTER, else "default".
    pub fn cluster(&self) -> &str {
        self.cluster.as_deref().unwrap_or("default")
    }
}

/// Splits a shell line into words, honouring single quotes, double quotes and backslashes
/// (enough for `echo 'ECS_INSTANCE_ATTRIBUTES={"a":"b"}' >> /etc/ecs/ecs.config`).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&n) if matches!(n, '"' | '\\' | '$' | '`') => {
                                cur.push(n);
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        _ => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() || c == ';' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

fn string_map(json: &str) -> Vec<(String, String)> {
    serde_json::from_str::<serde_json::Map<String, Value>>(json)
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the ECS agent settings a user-data script writes: `echo ECS_CLUSTER=x >>
/// /etc/ecs/ecs.config` (quoted or not), heredocs and plain `KEY=VALUE` lines (the config
/// file's own form, as in cloud-init write_files). Later settings win.
pub fn parse_user_data(user_data: &str) -> EcsConfig {
    let mut cfg = EcsConfig::default();
    let mut set = |key: &str, value: &str| match key {
        "ECS_CLUSTER" if !value.is_empty() => cfg.cluster = Some(value.to_string()),
        "ECS_INSTANCE_ATTRIBUTES" => cfg.attributes = string_map(value),
        "ECS_CONTAINER_INSTANCE_TAGS" => cfg.tags = string_map(value),
        _ => {}
    };
    for line in user_data.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        // A config-file line, written literally (heredoc body, write_files content).
        if trimmed.starts_with("ECS_") {
            if let Some((k, v)) = trimmed.split_once('=') {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(v);
                set(k.trim(), v);
                continue;
            }
        }
        for word in shell_words(line) {
            if let Some((k, v)) = word.split_once('=') {
                if k.starts_with("ECS_") {
                    set(k, v);
                }
            }
        }
    }
    cfg
}

pub struct InstanceAgent {
    pub ec2: Arc<Ec2>,
    pub ecs: Arc<Ecs>,
    pub clock: Clock,
    /// Instances whose registration failed, so a missing cluster is logged once.
    warned: parking_lot::Mutex<HashSet<String>>,
    /// Faults: an instance in a downed Availability Zone stays disconnected.
    network: Option<Arc<Network>>,
}

impl InstanceAgent {
    pub fn new(
        ec2: Arc<Ec2>,
        ecs: Arc<Ecs>,
        clock: Clock,
        network: Option<Arc<Network>>,
    ) -> Arc<InstanceAgent> {
        Arc::new(InstanceAgent {
            ec2,
            ecs,
            clock,
            warned: parking_lot::Mutex::new(HashSet::new()),
            network,
        })
    }

    /// Runs forever: reconciles on every instance change and every 250 ms (pending instances
    /// become running with time, not with a call).
    pub async fn run(self: Arc<Self>) {
        loop {
            self.reconcile();
            tokio::select! {
                _ = self.ec2.instance_events().notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }

    fn ctx(&self, i: &Instance) -> Ctx {
        Ctx {
            account: i.owner_id.clone(),
            region: i.region.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            now: self.clock.now(),
            access_key: None,
        }
    }

    /// The container instances this EC2 instance registered (every status).
    fn registrations(&self, i: &Instance) -> Vec<(String, ContainerInstance)> {
        let scope = format!("{}/{}/", i.owner_id, i.region);
        self.ecs.instances.read(|rows| {
            rows.range(scope.clone()..)
                .take_while(|(k, _)| k.starts_with(&scope))
                .filter(|(_, c)| c.ec2_instance_id == i.instance_id)
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect()
        })
    }

    /// One pass over every instance.
    pub fn reconcile(&self) {
        let now = self.clock.now();
        for i in self.ec2.all_instances(now) {
            // A Spot interruption whose two minutes are up.
            if i.state == "running" && i.interruption_at.is_some_and(|t| t <= now) {
                let mut ctx = self.ctx(&i);
                ctx.now = now;
                if let Err(e) = self
                    .ec2
                    .terminate(&ctx, std::slice::from_ref(&i.instance_id))
                {
                    tracing::warn!(instance = %i.instance_id, error = %e.message, "spot interruption");
                }
                continue;
            }
            let regs = self.registrations(&i);
            let result = match i.state.as_str() {
                "running" => self.boot(&i, &regs),
                "stopping" | "stopped" => self.host_gone(&i, &regs, false),
                "shutting-down" | "terminated" => self.host_gone(&i, &regs, true),
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::debug!(instance = %i.instance_id, error = %e.message, "instance agent");
            }
        }
    }

    /// The agent on a running instance: registers once, reconnects after a stop.
    fn boot(
        &self,
        i: &Instance,
        regs: &[(String, ContainerInstance)],
    ) -> Result<(), crate::protocol::AwsError> {
        if !regs.is_empty() {
            if self
                .network
                .as_ref()
                .is_some_and(|n| n.holds(&i.instance_id))
            {
                return Ok(());
            }
            // Reconnect after a start; a deregistered instance's agent stays stopped.
            for (key, c) in regs {
                if c.status != "INACTIVE" && !c.agent_connected {
                    self.ecs
                        .instances
                        .transact::<_, crate::store::StoreError, _>(|t| {
                            if let Some(c) = t.get_mut(key) {
                                if c.status != "INACTIVE" && !c.agent_connected {
                                    c.agent_connected = true;
                                    c.version += 1;
                                }
                            }
                            Ok(())
                        })?;
                    self.ecs.wake_agent();
                }
            }
            return Ok(());
        }
        if i.recorded_from_agent {
            // Its agent registered by itself (an identity document): nothing boots here.
            return Ok(());
        }
        let cfg = parse_user_data(i.user_data.as_deref().unwrap_or_default());
        let ctx = self.ctx(i);
        let launch = InstanceLaunch {
            cluster: cfg.cluster().to_string(),
            ec2_instance_id: Some(i.instance_id.clone()),
            instance_type: i.instance_type.clone(),
            availability_zone: i.availability_zone.clone(),
            subnet_id: Some(i.subnet_id.clone()),
            vpc_id: Some(i.vpc_id.clone()),
            private_ip: Some(i.private_ip.clone()),
            ami_id: Some(i.image_id.clone()),
            attributes: cfg
                .attributes
                .iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect(),
            tags: cfg
                .tags
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect(),
            autoscaling_group: i.tags.get("aws:autoscaling:groupName").cloned(),
        };
        match self.ecs.register_instance(&ctx, launch) {
            Ok(c) => {
                self.warned.lock().remove(&i.instance_id);
                tracing::info!(instance = %i.instance_id, cluster = %c.cluster, arn = %c.arn, "container instance registered");
                Ok(())
            }
            Err(e) => {
                if self.warned.lock().insert(i.instance_id.clone()) {
                    tracing::warn!(instance = %i.instance_id, cluster = %cfg.cluster(), error = %e.message, "the ECS agent cannot register; retrying");
                }
                Ok(())
            }
        }
    }

    /// The host stopped or went away: its tasks stop, the agent disconnects, and on
    /// termination the container instance is deregistered.
    fn host_gone(
        &self,
        i: &Instance,
        regs: &[(String, ContainerInstance)],
        terminated: bool,
    ) -> Result<(), crate::protocol::AwsError> {
        for (key, c) in regs {
            let done = if terminated {
                c.status == "INACTIVE"
            } else {
                !c.agent_connected || c.status == "INACTIVE"
            };
            if done {
                continue;
            }
            let ctx = self.ctx(i);
            let reason = format!(
                "Host EC2 (instance {}) {}.",
                i.instance_id,
                if terminated { "terminated" } else { "stopped" }
            );
            let arn = c.arn.clone();
            self.ecs.stop_tasks_where(
                &ctx,
                &c.cluster,
                |t| t.container_instance_arn.as_deref() == Some(arn.as_str()),
                "TerminationNotice",
                &reason,
            )?;
            self.ecs
                .instances
                .transact::<_, crate::store::StoreError, _>(|t| {
                    if let Some(c) = t.get_mut(key) {
                        c.agent_connected = false;
                        if terminated {
                            c.status = "INACTIVE".into();
                            c.deregistered_at = Some(ctx.now);
                        }
                        c.version += 1;
                    }
                    Ok(())
                })?;
            tracing::info!(instance = %i.instance_id, container_instance = %c.arn, %reason, "host gone");
            self.ecs.wake_agent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_forms() {
        let c = parse_user_data("#!/bin/bash\necho ECS_CLUSTER=demo >> /etc/ecs/ecs.config");
        assert_eq!(c.cluster.as_deref(), Some("demo"));
        let c = parse_user_data(
            "#!/bin/bash\necho \"ECS_CLUSTER=my-cluster\" >> /etc/ecs/ecs.config\n",
        );
        assert_eq!(c.cluster(), "my-cluster");
        let c = parse_user_data("echo ECS_CLUSTER='q' >>/etc/ecs/ecs.config; echo ECS_ENABLE_TASK_IAM_ROLE=true >> /etc/ecs/ecs.config");
        assert_eq!(c.cluster(), "q");
        assert_eq!(
            parse_user_data("#!/bin/bash\nyum update -y").cluster(),
            "default"
        );
        assert_eq!(parse_user_data("").cluster, None);
    }

    #[test]
    fn attributes_and_tags() {
        let ud = "#!/bin/bash\n\
                  echo ECS_CLUSTER=a >> /etc/ecs/ecs.config\n\
                  echo 'ECS_INSTANCE_ATTRIBUTES={\"stack\":\"prod\",\"gpu\":\"none\"}' >> /etc/ecs/ecs.config\n\
                  echo \"ECS_CONTAINER_INSTANCE_TAGS={\\\"team\\\":\\\"x\\\"}\" >> /etc/ecs/ecs.config\n";
        let c = parse_user_data(ud);
        assert_eq!(c.cluster(), "a");
        let mut attributes = c.attributes.clone();
        attributes.sort();
        assert_eq!(
            attributes,
            vec![
                ("gpu".to_string(), "none".to_string()),
                ("stack".to_string(), "prod".to_string())
            ]
        );
        assert_eq!(c.tags, vec![("team".to_string(), "x".to_string())]);
    }

    #[test]
    fn heredoc_and_config_lines() {
        let ud = "#!/bin/bash\ncat <<'EOF' >> /etc/ecs/ecs.config\nECS_CLUSTER=heredoc\nECS_INSTANCE_ATTRIBUTES={\"k\":\"v\"}\nEOF\n";
        let c = parse_user_data(ud);
        assert_eq!(c.cluster(), "heredoc");
        assert_eq!(c.attributes, vec![("k".to_string(), "v".to_string())]);
        // Later settings win; broken JSON yields no attributes.
        let c = parse_user_data("ECS_CLUSTER=one\nECS_CLUSTER=two\nECS_INSTANCE_ATTRIBUTES={bad");
        assert_eq!(c.cluster(), "two");
        assert!(c.attributes.is_empty());
    }

    #[test]
    fn shell_words_split_like_sh() {
        assert_eq!(
            shell_words(r#"echo 'a b' "c \"d\"" e\ f"#),
            vec!["echo", "a b", "c \"d\"", "e f"]
        );
    }
}
