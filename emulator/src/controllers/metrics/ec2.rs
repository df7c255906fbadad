//! AWS/EC2 `CPUUtilization` of the virtual instances that are ECS container instances: the CPU
//! their tasks' containers used over the minute ÷ the instance's CPU (its registered CPU units,
//! 1024 per vCPU) × 100, per instance (InstanceId) and per EC2 Auto Scaling group
//! (AutoScalingGroupName: one sample per instance, so Average is the group's average, which
//! target tracking on ASGAverageCPUUtilization watches). An instance runs nothing but its tasks,
//! so an idle instance is at 0 %.
//!
//! Pure functions: the publisher measures, this computes.

use super::ecs::{Scoped, TaskUsage};
use crate::services::cloudwatch::Samples;
use crate::services::ecs::{ContainerInstance, Task};
use std::collections::{BTreeMap, HashMap};

pub const NAMESPACE: &str = "AWS/EC2";

/// Every AWS/EC2 CPUUtilization datum of one minute, grouped by scope.
pub fn samples(
    instances: &[Scoped<'_, ContainerInstance>],
    tasks: &[Scoped<'_, Task>],
    usage: &HashMap<String, TaskUsage>,
    timestamp: f64,
) -> BTreeMap<String, Vec<Samples>> {
    let mut used: HashMap<&str, f64> = HashMap::new();
    for t in tasks {
        let task = t.row;
        let (Some(arn), Some(u)) = (task.container_instance_arn.as_deref(), usage.get(&task.arn))
        else {
            continue;
        };
        *used.entry(arn).or_default() += u.cpu_units.unwrap_or(0.0);
    }
    let mut out: BTreeMap<String, Vec<Samples>> = BTreeMap::new();
    let mut groups: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for i in instances {
        let ci = i.row;
        if !matches!(ci.status.as_str(), "ACTIVE" | "DRAINING") || ci.registered_cpu <= 0 {
            continue;
        }
        let pct =
            used.get(ci.arn.as_str()).copied().unwrap_or(0.0) / ci.registered_cpu as f64 * 100.0;
        out.entry(i.scope.to_string()).or_default().push(cpu(
            vec![("InstanceId".into(), ci.ec2_instance_id.clone())],
            vec![pct],
            timestamp,
        ));
        if let Some(g) = ci.autoscaling_group.as_deref() {
            groups.entry((i.scope, g)).or_default().push(pct);
        }
    }
    for ((scope, group), values) in groups {
        out.entry(scope.to_string()).or_default().push(cpu(
            vec![("AutoScalingGroupName".into(), group.to_string())],
            values,
            timestamp,
        ));
    }
    out
}

fn cpu(dimensions: Vec<(String, String)>, values: Vec<f64>, t: f64) -> Samples {
    Samples {
        namespace: NAMESPACE.to_string(),
        metric_name: "CPUUtilization".to_string(),
        dimensions,
        values,
        unit: Some("Percent".to_string()),
        timestamp: t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ecs::model::TaskStatus;

    const SCOPE: &str = "000000000000/us-east-1/";

    fn instance(arn: &str, ec2: &str, group: Option<&str>, status: &str) -> ContainerInstance {
        serde_json::from_value(serde_json::json!({
            "arn": arn, "id": arn, "cluster": "c", "ec2_instance_id": ec2, "status": status,
            "agent_connected": true, "instance_type": "m5.large", "registered_cpu": 2048,
            "registered_memory": 7680, "availability_zone": "us-east-1a",
            "host_ip": "127.16.0.2", "registered_at": 0.0, "version": 1, "arch": "x86_64",
            "autoscaling_group": group,
        }))
        .expect("instance")
    }

    fn task(arn: &str, instance: &str) -> Task {
        Task {
            arn: arn.into(),
            cluster: "c".into(),
            container_instance_arn: Some(instance.into()),
            last_status: TaskStatus::Running,
            ..Default::default()
        }
    }

    #[test]
    fn per_instance_and_per_group_cpu() {
        let instances = [
            instance("ci-1", "i-1", Some("asg"), "ACTIVE"),
            instance("ci-2", "i-2", Some("asg"), "DRAINING"),
            instance("ci-3", "i-3", None, "ACTIVE"),
            instance("ci-4", "i-4", Some("asg"), "INACTIVE"),
        ];
        let tasks = [task("t1", "ci-1"), task("t2", "ci-1"), task("t3", "ci-3")];
        let usage: HashMap<String, TaskUsage> = [("t1", 1024.0), ("t2", 512.0), ("t3", 2048.0)]
            .into_iter()
            .map(|(a, c)| {
                (
                    a.to_string(),
                    TaskUsage {
                        cpu_units: Some(c),
                        memory_mib: None,
                    },
                )
            })
            .collect();
        let si: Vec<Scoped<'_, ContainerInstance>> = instances
            .iter()
            .map(|row| Scoped { scope: SCOPE, row })
            .collect();
        let st: Vec<Scoped<'_, Task>> = tasks
            .iter()
            .map(|row| Scoped { scope: SCOPE, row })
            .collect();
        let out = samples(&si, &st, &usage, 60.0);
        let by_dim = |k: &str, v: &str| {
            out[SCOPE]
                .iter()
                .find(|s| s.dimensions == vec![(k.to_string(), v.to_string())])
                .map(|s| s.values.clone())
        };
        assert_eq!(by_dim("InstanceId", "i-1"), Some(vec![75.0]));
        assert_eq!(by_dim("InstanceId", "i-2"), Some(vec![0.0]));
        assert_eq!(by_dim("InstanceId", "i-3"), Some(vec![100.0]));
        assert_eq!(
            by_dim("InstanceId", "i-4"),
            None,
            "INACTIVE instances are not measured"
        );
        // The group: one sample per instance (Average 37.5 %).
        assert_eq!(by_dim("AutoScalingGroupName", "asg"), Some(vec![75.0, 0.0]));
        assert!(out[SCOPE].iter().all(|s| s.namespace == "AWS/EC2"
            && s.metric_name == "CPUUtilization"
            && s.unit.as_deref() == Some("Percent")));
    }
}
