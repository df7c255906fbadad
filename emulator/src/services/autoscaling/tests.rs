//! Groups, the controller's passes and policies against real EC2 state (no Docker needed).

use super::*;
use crate::clock::Clock;
use crate::controllers::autoscaling::AutoScalingController;
use crate::services::{Ctx, Deps, HandlerResult};
use serde_json::{json, Value};

struct Env {
    asg: Arc<AutoScaling>,
    ec2: Arc<Ec2>,
    registry: crate::services::Registry,
    ctx: Ctx,
}

fn env() -> Env {
    let deps = Deps::for_tests();
    let registry = crate::app::build(&deps);
    let asg = registry.handle::<AutoScaling>().expect("asg");
    let ec2 = registry.handle::<Ec2>().expect("ec2");
    Env {
        asg,
        ec2,
        registry,
        ctx: Ctx::for_tests(),
    }
}

impl Env {
    fn call(&self, service: &str, op: &str, input: Value) -> HandlerResult {
        match self.registry.get(service, op) {
            Some(crate::services::Handler::Sync(f)) => f(&self.ctx, input),
            _ => panic!("no sync handler {service}:{op}"),
        }
    }
    fn asg(&self, op: &str, input: Value) -> HandlerResult {
        self.call("autoscaling", op, input)
    }
    fn later(&mut self, dt: f64) {
        self.ctx.now += dt;
    }
    fn pass(&self) {
        AutoScalingController::new(self.asg.clone(), Clock::new(1.0)).pass(self.ctx.now);
    }
    fn template(&self) -> String {
        let ami = crate::services::ec2::ECS_OPTIMIZED_AMIS[0].image_id(&self.ctx.region);
        let out = self
            .call(
                "ec2",
                "CreateLaunchTemplate",
                json!({"LaunchTemplateName": "lt", "LaunchTemplateData": {"ImageId": ami, "InstanceType": "m5.large"}}),
            )
            .expect("template");
        out["LaunchTemplate"]["LaunchTemplateId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn subnets(&self) -> Vec<String> {
        self.ec2
            .default_subnets(&self.ctx.account, &self.ctx.region)
            .expect("subnets")
            .into_iter()
            .map(|s| s.subnet_id)
            .collect()
    }
    fn group(&self, name: &str) -> Value {
        let d = self
            .asg(
                "DescribeAutoScalingGroups",
                json!({"AutoScalingGroupNames": [name]}),
            )
            .expect("describe");
        d["AutoScalingGroups"][0].clone()
    }
    fn states(&self, name: &str) -> Vec<String> {
        self.group(name)["Instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["LifecycleState"].as_str().map(str::to_string))
            .collect()
    }
    fn activities(&self, name: &str) -> Vec<Value> {
        self.asg(
            "DescribeScalingActivities",
            json!({"AutoScalingGroupName": name}),
        )
        .expect("activities")["Activities"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn code(r: HandlerResult) -> String {
    r.err()
        .map(|e| format!("{}: {}", e.code, e.message))
        .unwrap_or_default()
}

#[test]
fn group_launches_balances_and_shrinks() {
    let mut e = env();
    let lt = e.template();
    let subnets = e.subnets();
    e.asg(
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "web", "MinSize": 0, "MaxSize": 4, "DesiredCapacity": 3,
               "LaunchTemplate": {"LaunchTemplateId": lt},
               "VPCZoneIdentifier": subnets[..2].join(","),
               "Tags": [{"Key": "team", "Value": "a", "PropagateAtLaunch": true}]}),
    )
    .expect("create");
    e.pass();
    let g = e.group("web");
    assert_eq!(g["Instances"].as_array().map(Vec::len), Some(3));
    assert_eq!(g["VPCZoneIdentifier"], subnets[..2].join(",").as_str());
    let zones: Vec<&str> = g["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["AvailabilityZone"].as_str())
        .collect();
    assert!(
        zones.contains(&"us-east-1a") && zones.contains(&"us-east-1b"),
        "{zones:?}"
    );
    assert!(e.states("web").iter().all(|s| s == "Pending"));
    // The EC2 instances are real rows: tagged, from the template.
    let ec2 = e.ec2.instances(&e.ctx.account, &e.ctx.region, e.ctx.now);
    assert_eq!(ec2.len(), 3);
    assert!(ec2
        .iter()
        .all(|i| i.tags.get("aws:autoscaling:groupName").map(String::as_str) == Some("web")));
    assert!(ec2
        .iter()
        .all(|i| i.tags.get("team").map(String::as_str) == Some("a")));
    e.later(1.0);
    e.pass();
    assert!(
        e.states("web").iter().all(|s| s == "InService"),
        "{:?}",
        e.states("web")
    );
    let acts = e.activities("web");
    assert_eq!(acts.len(), 3);
    assert!(acts.iter().all(|a| a["StatusCode"] == "Successful"));
    let d = acts[0]["Description"].as_str().unwrap_or_default();
    assert!(d.starts_with("Launching a new EC2 instance: i-"), "{d}");
    let c = acts[0]["Cause"].as_str().unwrap_or_default();
    assert!(c.contains("a user request created an AutoScalingGroup changing the desired capacity from 0 to 3.  At "), "{c}");
    assert!(c.ends_with("an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 0 to 3."), "{c}");

    // Scale in to 1: two terminate (one per zone first), protected instances stay.
    let ids: Vec<String> = e.group("web")["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
        .collect();
    e.asg("SetInstanceProtection", json!({"AutoScalingGroupName": "web", "InstanceIds": [ids[0]], "ProtectedFromScaleIn": true})).expect("protect");
    e.asg(
        "UpdateAutoScalingGroup",
        json!({"AutoScalingGroupName": "web", "DesiredCapacity": 1}),
    )
    .expect("update");
    e.pass();
    let g = e.group("web");
    assert_eq!(g["DesiredCapacity"], 1);
    let kept: Vec<&Value> = g["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["LifecycleState"] == "InService")
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["InstanceId"], ids[0].as_str());
    let acts = e.activities("web");
    let term = acts
        .iter()
        .find(|a| {
            a["Description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Terminating EC2 instance: "))
        })
        .expect("terminate activity");
    let c = term["Cause"].as_str().unwrap_or_default();
    assert!(c.contains("a user request update of AutoScalingGroup constraints to min: 0, max: 4, desired: 1 changing the desired capacity from 3 to 1."), "{c}");
    assert!(c.contains("shrinking the capacity from 3 to 1."), "{c}");
    e.later(0.5);
    e.pass();
    e.later(2.0);
    e.pass();
    assert_eq!(e.states("web"), vec!["InService".to_string()]);
    let ec2 = e.ec2.instances(&e.ctx.account, &e.ctx.region, e.ctx.now);
    assert_eq!(ec2.iter().filter(|i| i.state == "terminated").count(), 2);

    // An instance terminated behind the group's back is replaced.
    e.ec2
        .terminate(&e.ctx, std::slice::from_ref(&ids[0]))
        .expect("terminate");
    e.later(2.0);
    e.pass();
    e.later(0.5);
    e.pass();
    e.later(2.0);
    e.pass();
    let g = e.group("web");
    assert_eq!(g["Instances"].as_array().map(Vec::len), Some(1));
    assert_ne!(g["Instances"][0]["InstanceId"], ids[0].as_str());
    let acts = e.activities("web");
    assert!(acts
        .iter()
        .any(|a| a["Cause"].as_str().is_some_and(|c| c.contains(
            "in response to an EC2 health check indicating it has been terminated or stopped"
        ))));

    // Delete with instances needs ForceDelete; then the group goes once they are gone.
    assert!(code(e.asg(
        "DeleteAutoScalingGroup",
        json!({"AutoScalingGroupName": "web"})
    ))
    .starts_with("ResourceInUse"));
    e.asg(
        "DeleteAutoScalingGroup",
        json!({"AutoScalingGroupName": "web", "ForceDelete": true}),
    )
    .expect("force");
    for _ in 0..4 {
        e.later(1.0);
        e.pass();
    }
    assert!(e.group("web").is_null());
}

#[test]
fn bad_input_is_refused_whole() {
    let e = env();
    let lt = e.template();
    let base = |extra: Value| {
        let mut v = json!({"AutoScalingGroupName": "g", "MinSize": 1, "MaxSize": 2, "LaunchTemplate": {"LaunchTemplateId": lt}, "AvailabilityZones": ["us-east-1a"]});
        if let (Some(o), Some(x)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in x {
                o.insert(k.clone(), val.clone());
            }
        }
        v
    };
    assert_eq!(
        code(e.asg("CreateAutoScalingGroup", base(json!({"MinSize": 3})))),
        "ValidationError: Max bound, 2, must be greater than or equal to min bound, 3"
    );
    assert_eq!(code(e.asg("CreateAutoScalingGroup", base(json!({"DesiredCapacity": 5})))), "ValidationError: Desired capacity:5 must be between the specified min size:1 and max size:2");
    assert!(code(e.asg(
        "CreateAutoScalingGroup",
        base(json!({"LaunchTemplate": {"LaunchTemplateName": "nope"}}))
    ))
    .contains("does not exist"));
    assert!(code(e.asg(
        "CreateAutoScalingGroup",
        base(json!({"LaunchTemplate": {"LaunchTemplateId": lt, "Version": "9"}}))
    ))
    .starts_with("ValidationError: You must use a valid fully-formed launch template."));
    // Subnets of two VPCs.
    let vpc = e
        .call("ec2", "CreateVpc", json!({"CidrBlock": "10.0.0.0/16"}))
        .expect("vpc");
    let vpc_id = vpc["Vpc"]["VpcId"].as_str().unwrap_or_default();
    let sn = e
        .call(
            "ec2",
            "CreateSubnet",
            json!({"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1a"}),
        )
        .expect("subnet");
    let other = sn["Subnet"]["SubnetId"].as_str().unwrap_or_default();
    let default = &e.subnets()[0];
    assert!(code(e.asg(
        "CreateAutoScalingGroup",
        base(json!({"AvailabilityZones": [], "VPCZoneIdentifier": format!("{default},{other}")}))
    ))
    .contains("different VPCs"));
    assert!(code(e.asg(
        "CreateAutoScalingGroup",
        base(json!({"AvailabilityZones": [], "VPCZoneIdentifier": "subnet-0123456789abcdef0"}))
    ))
    .contains("does not exist"));
    // Nothing half-created.
    assert!(
        e.asg("DescribeAutoScalingGroups", json!({})).expect("d")["AutoScalingGroups"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    e.asg("CreateAutoScalingGroup", base(json!({})))
        .expect("create");
    assert!(code(e.asg("CreateAutoScalingGroup", base(json!({})))).starts_with("AlreadyExists"));
    assert!(code(e.asg(
        "SetDesiredCapacity",
        json!({"AutoScalingGroupName": "g", "DesiredCapacity": 3})
    ))
    .contains("above max value 2"));
    assert!(code(e.asg(
        "SetDesiredCapacity",
        json!({"AutoScalingGroupName": "nope", "DesiredCapacity": 1})
    ))
    .starts_with("ValidationError"));
}

#[test]
fn lifecycle_hooks_hold_instances() {
    let mut e = env();
    let lt = e.template();
    e.asg(
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "h", "MinSize": 0, "MaxSize": 2, "DesiredCapacity": 0,
               "LaunchTemplate": {"LaunchTemplateId": lt}, "AvailabilityZones": ["us-east-1a"]}),
    )
    .expect("create");
    e.asg("PutLifecycleHook", json!({"AutoScalingGroupName": "h", "LifecycleHookName": "boot", "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "HeartbeatTimeout": 60, "DefaultResult": "ABANDON"})).expect("hook");
    let hooks = e
        .asg(
            "DescribeLifecycleHooks",
            json!({"AutoScalingGroupName": "h"}),
        )
        .expect("hooks");
    assert_eq!(hooks["LifecycleHooks"][0]["GlobalTimeout"], 6000);
    e.asg(
        "SetDesiredCapacity",
        json!({"AutoScalingGroupName": "h", "DesiredCapacity": 2}),
    )
    .expect("desired");
    e.pass();
    e.later(1.0);
    e.pass();
    assert_eq!(
        e.states("h"),
        vec!["Pending:Wait".to_string(), "Pending:Wait".to_string()]
    );
    e.later(10.0);
    e.pass();
    assert_eq!(
        e.states("h"),
        vec!["Pending:Wait".to_string(), "Pending:Wait".to_string()]
    );
    let ids: Vec<String> = e.group("h")["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
        .collect();
    assert!(code(e.asg("CompleteLifecycleAction", json!({"AutoScalingGroupName": "h", "LifecycleHookName": "boot", "LifecycleActionResult": "CONTINUE", "InstanceId": "i-0123456789abcdef0"}))).contains("No active Lifecycle Action found with instance ID"));
    e.asg("CompleteLifecycleAction", json!({"AutoScalingGroupName": "h", "LifecycleHookName": "boot", "LifecycleActionResult": "CONTINUE", "InstanceId": ids[0]})).expect("complete");
    e.asg(
        "RecordLifecycleActionHeartbeat",
        json!({"AutoScalingGroupName": "h", "LifecycleHookName": "boot", "InstanceId": ids[1]}),
    )
    .expect("heartbeat");
    e.pass();
    let g = e.group("h");
    let state = |id: &str| {
        g["Instances"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["InstanceId"] == id)
            .map(|i| i["LifecycleState"].clone())
    };
    assert_eq!(state(&ids[0]), Some(json!("InService")));
    assert_eq!(state(&ids[1]), Some(json!("Pending:Wait")));
    // The heartbeat gave it 60 s more; after that the default result (ABANDON) applies and the
    // group replaces it.
    e.later(61.0);
    e.pass();
    let g = e.group("h");
    let gone = g["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["InstanceId"] == ids[1].as_str())
        .map(|i| i["LifecycleState"].clone());
    assert!(
        gone.as_ref()
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with("Terminating")),
        "{gone:?}"
    );
    assert_eq!(
        g["Instances"].as_array().map(Vec::len),
        Some(3),
        "a replacement is launching"
    );
}

#[test]
fn policies_and_scheduled_actions() {
    let mut e = env();
    let lt = e.template();
    e.asg(
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "p", "MinSize": 1, "MaxSize": 5, "DesiredCapacity": 1,
               "LaunchTemplate": {"LaunchTemplateId": lt}, "AvailabilityZones": ["us-east-1a", "us-east-1b"]}),
    )
    .expect("create");
    let out = e.asg("PutScalingPolicy", json!({"AutoScalingGroupName": "p", "PolicyName": "up", "PolicyType": "SimpleScaling", "AdjustmentType": "ChangeInCapacity", "ScalingAdjustment": 2})).expect("simple");
    let arn = out["PolicyARN"].as_str().unwrap_or_default().to_string();
    assert!(
        arn.contains(":scalingPolicy:") && arn.ends_with(":autoScalingGroupName/p:policyName/up"),
        "{arn}"
    );
    e.asg(
        "ExecutePolicy",
        json!({"AutoScalingGroupName": "p", "PolicyName": "up"}),
    )
    .expect("execute");
    assert_eq!(e.group("p")["DesiredCapacity"], 3);
    // Through an alarm: the AlarmActionTarget path.
    let ev = crate::services::cloudwatch::AlarmEvent {
        account: e.ctx.account.clone(),
        region: e.ctx.region.clone(),
        alarm_name: "high".into(),
        alarm_arn: String::new(),
        state: crate::services::cloudwatch::AlarmState::Alarm,
        previous_state: crate::services::cloudwatch::AlarmState::Ok,
        transition: true,
        threshold: Some(50.0),
        value: Some(90.0),
        statistic: None,
        now: e.ctx.now + 1000.0,
    };
    assert!(e.asg.owns(&arn));
    e.asg.invoke(&arn, &ev).expect("invoke");
    let g = e.group("p");
    assert_eq!(g["DesiredCapacity"], 5, "clamped to max");
    e.pass();
    let acts = e.activities("p");
    assert!(acts.iter().any(|a| a["Cause"].as_str().is_some_and(|c| c.contains("a monitor alarm high in state ALARM triggered policy up changing the desired capacity from 3 to 5."))));
    // Target tracking creates its alarms with CloudWatch.
    let out = e.asg("PutScalingPolicy", json!({"AutoScalingGroupName": "p", "PolicyName": "cpu", "PolicyType": "TargetTrackingScaling", "TargetTrackingConfiguration": {"PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"}, "TargetValue": 50.0}})).expect("tt");
    assert_eq!(out["Alarms"].as_array().map(Vec::len), Some(2));
    let names: Vec<String> = out["Alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["AlarmName"].as_str().map(str::to_string))
        .collect();
    assert!(
        names[0].starts_with("TargetTracking-p-AlarmHigh-"),
        "{names:?}"
    );
    let alarms = e
        .call("cloudwatch", "DescribeAlarms", json!({"AlarmNames": names}))
        .expect("alarms");
    assert_eq!(alarms["MetricAlarms"].as_array().map(Vec::len), Some(2));
    assert_eq!(alarms["MetricAlarms"][0]["Namespace"], "AWS/EC2");
    let d = e
        .asg("DescribePolicies", json!({"AutoScalingGroupName": "p"}))
        .expect("policies");
    assert_eq!(d["ScalingPolicies"].as_array().map(Vec::len), Some(2));
    e.asg(
        "DeletePolicy",
        json!({"AutoScalingGroupName": "p", "PolicyName": "cpu"}),
    )
    .expect("delete");
    let alarms = e
        .call("cloudwatch", "DescribeAlarms", json!({"AlarmNames": names}))
        .expect("alarms");
    assert_eq!(alarms["MetricAlarms"].as_array().map(Vec::len), Some(0));
    // A scheduled action (cron in a time zone) runs on the clock.
    e.asg("PutScheduledUpdateGroupAction", json!({"AutoScalingGroupName": "p", "ScheduledActionName": "night", "Recurrence": "0 2 * * *", "TimeZone": "Europe/Paris", "MinSize": 1, "MaxSize": 2, "DesiredCapacity": 1})).expect("scheduled");
    let d = e
        .asg(
            "DescribeScheduledActions",
            json!({"AutoScalingGroupName": "p"}),
        )
        .expect("d");
    let start = d["ScheduledUpdateGroupActions"][0]["StartTime"]
        .as_f64()
        .unwrap_or_default();
    assert!(start > e.ctx.now);
    e.ctx.now = start + 1.0;
    e.pass();
    let g = e.group("p");
    assert_eq!(
        (
            g["MinSize"].clone(),
            g["MaxSize"].clone(),
            g["DesiredCapacity"].clone()
        ),
        (json!(1), json!(2), json!(1))
    );
    assert_eq!(code(e.asg("PutScheduledUpdateGroupAction", json!({"AutoScalingGroupName": "p", "ScheduledActionName": "x", "Recurrence": "bogus", "MinSize": 1}))), "ValidationError: Given recurrence string: bogus is invalid");
}

#[test]
fn mixed_instances_split_on_demand_and_spot() {
    let mut e = env();
    let lt = e.template();
    e.asg(
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "m", "MinSize": 0, "MaxSize": 10, "DesiredCapacity": 4,
               "MixedInstancesPolicy": {
                   "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": lt}, "Overrides": [{"InstanceType": "m5.large"}, {"InstanceType": "c5.large"}]},
                   "InstancesDistribution": {"OnDemandBaseCapacity": 1, "OnDemandPercentageAboveBaseCapacity": 0}},
               "AvailabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"]}),
    )
    .expect("create");
    e.pass();
    let ec2 = e.ec2.instances(&e.ctx.account, &e.ctx.region, e.ctx.now);
    assert_eq!(ec2.len(), 4);
    assert_eq!(
        ec2.iter()
            .filter(|i| i.instance_lifecycle.as_deref() == Some("spot"))
            .count(),
        3
    );
    let g = e.group("m");
    assert_eq!(
        g["MixedInstancesPolicy"]["InstancesDistribution"]["SpotAllocationStrategy"],
        "lowest-price"
    );
    e.later(1.0);
    e.pass();
    let d = e
        .asg("DescribeAutoScalingInstances", json!({}))
        .expect("instances");
    assert_eq!(d["AutoScalingInstances"].as_array().map(Vec::len), Some(4));
    assert_eq!(d["AutoScalingInstances"][0]["AutoScalingGroupName"], "m");
}

#[test]
fn capacity_provider_errors_and_managed_policy() {
    let e = env();
    let lt = e.template();
    e.asg(
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "cpg", "MinSize": 0, "MaxSize": 3,
               "LaunchTemplate": {"LaunchTemplateId": lt}, "AvailabilityZones": ["us-east-1a"]}),
    )
    .expect("create");
    let arn = e.group("cpg")["AutoScalingGroupARN"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ecs = |op: &str, input: Value| e.call("ecs", op, input);
    let provider = |name: &str, extra: Value| {
        let mut p = json!({"autoScalingGroupArn": arn});
        if let (Some(o), Some(x)) = (p.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                o.insert(k.clone(), v.clone());
            }
        }
        json!({"name": name, "autoScalingGroupProvider": p})
    };
    for bad in ["aws-x", "ECSx", "fargate1"] {
        assert!(
            code(ecs("CreateCapacityProvider", provider(bad, json!({}))))
                .starts_with("ClientException: The specified capacity provider name is invalid."),
            "{bad}"
        );
    }
    assert!(code(ecs("CreateCapacityProvider", json!({"name": "x", "autoScalingGroupProvider": {"autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/nope"}}))).starts_with("ClientException: The specified Auto Scaling group ARN"));
    assert_eq!(
        code(ecs("CreateCapacityProvider", provider("x", json!({"managedTerminationProtection": "ENABLED", "managedScaling": {"status": "ENABLED"}})))),
        "ClientException: The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, the Auto Scaling group must have instance protection from scale in enabled."
    );
    let out = ecs(
        "CreateCapacityProvider",
        provider(
            "cp1",
            json!({"managedScaling": {"status": "ENABLED", "targetCapacity": 80}}),
        ),
    )
    .expect("create");
    assert_eq!(
        out["capacityProvider"]["autoScalingGroupProvider"]["managedScaling"]
            ["minimumScalingStepSize"],
        1
    );
    assert_eq!(
        out["capacityProvider"]["autoScalingGroupProvider"]["managedDraining"],
        "ENABLED"
    );
    assert!(
        code(ecs("CreateCapacityProvider", provider("cp2", json!({}))))
            .contains("already being used by another capacity provider")
    );
    // Unknown providers cannot join a cluster; a known one puts ECS's policy on the group.
    assert!(code(ecs(
        "CreateCluster",
        json!({"clusterName": "c", "capacityProviders": ["nope"]})
    ))
    .starts_with("InvalidParameterException"));
    ecs("CreateCluster", json!({"clusterName": "c", "capacityProviders": ["cp1"], "defaultCapacityProviderStrategy": [{"capacityProvider": "cp1", "weight": 1}]})).expect("cluster");
    let p = e
        .asg("DescribePolicies", json!({"AutoScalingGroupName": "cpg"}))
        .expect("policies");
    let policy = &p["ScalingPolicies"][0];
    assert!(policy["PolicyName"]
        .as_str()
        .is_some_and(|n| n.starts_with("ECSManagedAutoScalingPolicy-")));
    assert_eq!(policy["TargetTrackingConfiguration"]["TargetValue"], 80.0);
    assert_eq!(
        policy["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Namespace"],
        "AWS/ECS/ManagedScaling"
    );
    assert!(code(ecs(
        "DeleteCapacityProvider",
        json!({"capacityProvider": "cp1"})
    ))
    .contains("is in use"));
    // Removing it from the cluster removes the policy; then it can be deleted.
    ecs(
        "PutClusterCapacityProviders",
        json!({"cluster": "c", "capacityProviders": [], "defaultCapacityProviderStrategy": []}),
    )
    .expect("put");
    let p = e
        .asg("DescribePolicies", json!({"AutoScalingGroupName": "cpg"}))
        .expect("policies");
    assert_eq!(p["ScalingPolicies"].as_array().map(Vec::len), Some(0));
    let d = ecs("DeleteCapacityProvider", json!({"capacityProvider": "cp1"})).expect("delete");
    assert_eq!(d["capacityProvider"]["status"], "INACTIVE");
    let d = ecs("DescribeCapacityProviders", json!({})).expect("describe");
    let names: Vec<&str> = d["capacityProviders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, vec!["FARGATE", "FARGATE_SPOT"]);
}

fn alarm_event(
    e: &Env,
    alarm: &str,
    value: f64,
    threshold: f64,
    now: f64,
) -> crate::services::cloudwatch::AlarmEvent {
    crate::services::cloudwatch::AlarmEvent {
        account: e.ctx.account.clone(),
        region: e.ctx.region.clone(),
        alarm_name: alarm.into(),
        alarm_arn: String::new(),
        state: crate::services::cloudwatch::AlarmState::Alarm,
        previous_state: crate::services::cloudwatch::AlarmState::Ok,
        transition: true,
        threshold: Some(threshold),
        value: Some(value),
        statistic: None,
        now,
    }
}

/// (instance id, zone) of the group's members.
fn members(e: &Env, name: &str) -> Vec<(String, String)> {
    e.group(name)["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["InstanceId"].as_str().unwrap_or_default().to_string(),
                i["AvailabilityZone"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Runs controller passes a second apart until `done` (at most 30).
fn settle(e: &mut Env, done: impl Fn(&Env) -> bool) {
    for _ in 0..30 {
        e.pass();
        if done(e) {
            return;
        }
        e.later(1.0);
    }
    panic!("the group never settled: {:?}", e.group("az"));
}

#[test]
fn az_rebalancing_launches_in_the_emptiest_zone_before_terminating() {
    let mut e = env();
    let lt = e.template();
    let subnets = e.subnets();
    e.asg(
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "az", "MinSize": 0, "MaxSize": 6, "DesiredCapacity": 4,
               "LaunchTemplate": {"LaunchTemplateId": lt},
               "VPCZoneIdentifier": subnets[..2].join(",")}),
    )
    .expect("create");
    settle(&mut e, |e| e.states("az") == vec!["InService"; 4]);
    // Two instances of us-east-1a terminated with the desired capacity decremented: 0 and 2.
    let in_a: Vec<String> = members(&e, "az")
        .into_iter()
        .filter(|(_, z)| z == "us-east-1a")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(in_a.len(), 2);
    e.asg(
        "SuspendProcesses",
        json!({"AutoScalingGroupName": "az", "ScalingProcesses": ["AZRebalance"]}),
    )
    .expect("suspend");
    for id in &in_a {
        e.asg(
            "TerminateInstanceInAutoScalingGroup",
            json!({"InstanceId": id, "ShouldDecrementDesiredCapacity": true}),
        )
        .expect("terminate");
    }
    settle(&mut e, |e| {
        members(e, "az").len() == 2 && e.states("az") == vec!["InService"; 2]
    });
    // Suspended: nothing moves.
    e.later(5.0);
    e.pass();
    assert_eq!(members(&e, "az").len(), 2);
    assert!(members(&e, "az").iter().all(|(_, z)| z == "us-east-1b"));
    e.asg(
        "ResumeProcesses",
        json!({"AutoScalingGroupName": "az", "ScalingProcesses": ["AZRebalance"]}),
    )
    .expect("resume");
    // Resumed: a launch in us-east-1a first (3 instances for a while), then a termination in
    // us-east-1b once it is in service: 1 and 1, the desired capacity unchanged.
    e.later(1.0);
    e.pass();
    let now: Vec<(String, String)> = members(&e, "az");
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(now.iter().filter(|(_, z)| z == "us-east-1a").count(), 1);
    settle(&mut e, |e| {
        let m = members(e, "az");
        m.len() == 2
            && m.iter().filter(|(_, z)| z == "us-east-1a").count() == 1
            && e.states("az") == vec!["InService"; 2]
    });
    assert_eq!(e.group("az")["DesiredCapacity"], 2);
    let acts = e.activities("az");
    let causes: Vec<&str> = acts.iter().filter_map(|a| a["Cause"].as_str()).collect();
    assert!(
        causes
            .iter()
            .any(|c| c.ends_with("an instance was launched to aid in balancing the group's zones.")),
        "{causes:?}"
    );
    assert!(
        causes.iter().any(|c| c.ends_with(
            "an instance was taken out of service to aid in balancing the group's zones."
        )),
        "{causes:?}"
    );
    // Balanced now: nothing more happens.
    e.later(5.0);
    e.pass();
    assert_eq!(members(&e, "az").len(), 2);
}

#[test]
fn managed_scaling_step_bounds() {
    use super::policies::managed_scale_out;
    // From an empty group the metric says 200 % whatever the need: ECS's estimate sizes the step.
    assert_eq!(managed_scale_out(0, 200.0, 100.0, Some(3), (1, 10000)), 3);
    // At least minimumScalingStepSize, at most maximumScalingStepSize.
    assert_eq!(managed_scale_out(0, 200.0, 100.0, Some(3), (5, 10)), 5);
    assert_eq!(managed_scale_out(2, 500.0, 100.0, Some(10), (1, 3)), 5);
    // A target capacity below 100 % asks for headroom: 4 instances needed at 80 % → 5.
    assert_eq!(managed_scale_out(4, 100.0, 80.0, Some(4), (1, 10000)), 5);
    // Without an estimate, the metric: 150 % of 2 → 3.
    assert_eq!(managed_scale_out(2, 150.0, 100.0, None, (1, 10000)), 3);
}

#[test]
fn target_tracking_does_not_scale_in_while_instances_warm_up() {
    let e = env();
    let lt = e.template();
    e.asg(
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "w", "MinSize": 1, "MaxSize": 5, "DesiredCapacity": 3,
               "LaunchTemplate": {"LaunchTemplateId": lt}, "AvailabilityZones": ["us-east-1a"]}),
    )
    .expect("create");
    e.pass();
    let out = e.asg("PutScalingPolicy", json!({"AutoScalingGroupName": "w", "PolicyName": "cpu", "PolicyType": "TargetTrackingScaling", "EstimatedInstanceWarmup": 120, "TargetTrackingConfiguration": {"PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"}, "TargetValue": 50.0}})).expect("tt");
    let arn = out["PolicyARN"].as_str().unwrap_or_default().to_string();
    let low = out["Alarms"][1]["AlarmName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(low.contains("-AlarmLow-"), "{low}");
    // 60 s after launch: warming, no scale-in.
    e.asg
        .invoke(&arn, &alarm_event(&e, &low, 10.0, 45.0, e.ctx.now + 60.0))
        .expect("invoke");
    assert_eq!(e.group("w")["DesiredCapacity"], 3);
    // After the warm-up: 3 × 10 / 50 → 1.
    e.asg
        .invoke(&arn, &alarm_event(&e, &low, 10.0, 45.0, e.ctx.now + 121.0))
        .expect("invoke");
    assert_eq!(e.group("w")["DesiredCapacity"], 1);
    let d = e
        .asg("DescribePolicies", json!({"AutoScalingGroupName": "w"}))
        .expect("d");
    assert_eq!(d["ScalingPolicies"][0]["EstimatedInstanceWarmup"], 120);
}

#[test]
fn launch_instances_account_settings_rollback_and_forecast() {
    let mut e = env();
    let lt = e.template();
    let subnets = e.subnets();
    e.asg(
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "li", "MinSize": 0, "MaxSize": 3, "DesiredCapacity": 0,
               "LaunchTemplate": {"LaunchTemplateId": lt, "Version": "1"},
               "VPCZoneIdentifier": subnets[..2].join(",")}),
    )
    .expect("create");
    // LaunchInstances: now, in the subnet asked for; the desired capacity follows.
    let out = e
        .asg(
            "LaunchInstances",
            json!({"AutoScalingGroupName": "li", "RequestedCapacity": 2, "ClientToken": "t-1",
                   "SubnetIds": [subnets[1]]}),
        )
        .expect("launch");
    assert_eq!(out["Instances"].as_array().map(Vec::len), Some(1), "{out}");
    let c = &out["Instances"][0];
    assert_eq!(c["SubnetId"], subnets[1].as_str());
    assert_eq!(c["AvailabilityZone"], "us-east-1b");
    assert_eq!(c["InstanceType"], "m5.large");
    assert_eq!(c["MarketType"], "on-demand");
    assert_eq!(c["InstanceIds"].as_array().map(Vec::len), Some(2));
    assert_eq!(out["Errors"], json!([]));
    assert_eq!(out["ClientToken"], "t-1");
    let g = e.group("li");
    assert_eq!(g["DesiredCapacity"], 2);
    assert_eq!(g["Instances"].as_array().map(Vec::len), Some(2));
    e.pass();
    assert_eq!(members(&e, "li").len(), 2, "the controller keeps them");
    assert!(code(e.asg(
        "LaunchInstances",
        json!({"AutoScalingGroupName": "li", "RequestedCapacity": 2, "ClientToken": "t-2"})
    ))
    .contains("above max value 3"));
    assert!(code(e.asg(
        "LaunchInstances",
        json!({"AutoScalingGroupName": "li", "RequestedCapacity": 1, "ClientToken": "t-3", "AvailabilityZones": ["us-east-1c"]})
    ))
    .starts_with("ValidationError"));

    // Account settings: stored and described, one page at a time.
    assert_eq!(
        e.asg("DescribeAccountSettings", json!({})).expect("d")["Settings"],
        json!([])
    );
    for (n, v) in [("feature-a", "enabled"), ("feature-b", "disabled")] {
        e.asg("PutAccountSetting", json!({"Name": n, "Value": v}))
            .expect("put");
    }
    let d = e
        .asg("DescribeAccountSettings", json!({"MaxRecords": 1}))
        .expect("d");
    assert_eq!(d["Settings"][0]["Name"], "feature-a");
    let next = d["NextToken"].as_str().unwrap_or_default().to_string();
    let d = e
        .asg("DescribeAccountSettings", json!({"NextToken": next}))
        .expect("d");
    assert_eq!(
        d["Settings"],
        json!([{"Name": "feature-b", "Value": "disabled", "EnforcementType": "none"}])
    );
    let d = e
        .asg("DescribeAccountSettings", json!({"Name": "feature-a"}))
        .expect("d");
    assert_eq!(d["Settings"][0]["Value"], "enabled");

    // RollbackInstanceRefresh: nothing to roll back; a refresh without a desired configuration
    // cannot be; one with it goes RollbackInProgress → RollbackSuccessful.
    assert!(code(e.asg(
        "RollbackInstanceRefresh",
        json!({"AutoScalingGroupName": "li"})
    ))
    .starts_with("ActiveInstanceRefreshNotFoundFault"));
    settle_group(&mut e, "li", 2);
    e.asg(
        "StartInstanceRefresh",
        json!({"AutoScalingGroupName": "li"}),
    )
    .expect("start");
    assert!(code(e.asg(
        "RollbackInstanceRefresh",
        json!({"AutoScalingGroupName": "li"})
    ))
    .starts_with("IrreversibleInstanceRefreshFault"));
    e.asg(
        "CancelInstanceRefresh",
        json!({"AutoScalingGroupName": "li"}),
    )
    .expect("cancel");
    let id = e
        .asg(
            "StartInstanceRefresh",
            json!({"AutoScalingGroupName": "li", "Preferences": {"MinHealthyPercentage": 50},
                   "DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": lt, "Version": "1"}}}),
        )
        .expect("start")["InstanceRefreshId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // One instance replaced so far, then the rollback.
    e.later(1.0);
    e.pass();
    e.later(1.0);
    e.pass();
    let r = e
        .asg(
            "RollbackInstanceRefresh",
            json!({"AutoScalingGroupName": "li"}),
        )
        .expect("rollback");
    assert_eq!(r["InstanceRefreshId"], id.as_str());
    let status = |e: &Env| {
        e.asg(
            "DescribeInstanceRefreshes",
            json!({"AutoScalingGroupName": "li", "InstanceRefreshIds": [id]}),
        )
        .expect("d")["InstanceRefreshes"][0]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(status(&e), "RollbackInProgress");
    for _ in 0..60 {
        e.later(1.0);
        e.pass();
        if status(&e) == "RollbackSuccessful" {
            break;
        }
    }
    assert_eq!(status(&e), "RollbackSuccessful");

    // GetPredictiveScalingForecast: only for a predictive policy; flat from the metric's history.
    e.asg("PutScalingPolicy", json!({"AutoScalingGroupName": "li", "PolicyName": "pred", "PolicyType": "PredictiveScaling",
        "PredictiveScalingConfiguration": {"MetricSpecifications": [{"TargetValue": 40.0,
            "PredefinedMetricPairSpecification": {"PredefinedMetricType": "ASGCPUUtilization"}}]}})).expect("predictive");
    let window = json!({"AutoScalingGroupName": "li", "PolicyName": "pred", "StartTime": e.ctx.now, "EndTime": e.ctx.now + 3.0 * 3600.0});
    let f = e
        .asg("GetPredictiveScalingForecast", window.clone())
        .expect("forecast");
    assert_eq!(
        f["LoadForecast"][0]["Timestamps"],
        json!([]),
        "no history yet: {f}"
    );
    let cw = e.asg.cloudwatch.clone();
    let data: Vec<crate::services::cloudwatch::Datum> = (1..=3)
        .map(|h| crate::services::cloudwatch::Datum {
            namespace: "AWS/EC2".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: vec![("AutoScalingGroupName".into(), "li".into())],
            value: 100.0,
            unit: Some("Percent".into()),
            timestamp: e.ctx.now - h as f64 * 3600.0,
        })
        .collect();
    cw.put_data(&e.ctx.account, &e.ctx.region, e.ctx.now, &data)
        .expect("put");
    let f = e
        .asg("GetPredictiveScalingForecast", window)
        .expect("forecast");
    let load = &f["LoadForecast"][0];
    assert!(
        load["Timestamps"]
            .as_array()
            .is_some_and(|t| (3..=4).contains(&t.len())),
        "{f}"
    );
    assert!(
        load["Values"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|v| v == 100.0),
        "{f}"
    );
    // 100 % of load at 40 % per instance → 3 instances (within max 3).
    assert!(
        f["CapacityForecast"]["Values"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|v| v == 3.0),
        "{f}"
    );
    assert!(code(e.asg(
        "GetPredictiveScalingForecast",
        json!({"AutoScalingGroupName": "li", "PolicyName": "nope", "StartTime": 0, "EndTime": 10})
    ))
    .starts_with("ValidationError"));
}

/// Passes until the group has `n` members, all InService.
fn settle_group(e: &mut Env, name: &str, n: usize) {
    for _ in 0..30 {
        e.pass();
        if e.states(name) == vec!["InService"; n] {
            return;
        }
        e.later(1.0);
    }
    panic!(
        "{name} never had {n} instances in service: {:?}",
        e.group(name)
    );
}
