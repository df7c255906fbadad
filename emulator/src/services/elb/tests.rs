//! Handler tests over the real registry (EC2's default VPC provides subnets and zones).

use super::{HealthCheckConfig, InstanceHealth, FAILED, REGISTERING};
use crate::app::build;
use crate::services::{Ctx, Deps, Registry};
use serde_json::{json, Value};

async fn call(r: &Registry, op: &str, input: Value) -> Result<Value, crate::protocol::AwsError> {
    let h = r.get("elb", op).ok_or_else(|| {
        crate::protocol::AwsError::new(crate::protocol::codes::common::InternalFailure, op)
    })?;
    h.call(Ctx::for_tests(), input).await
}

async fn ok(r: &Registry, op: &str, input: Value) -> Value {
    match call(r, op, input).await {
        Ok(v) => v,
        Err(e) => panic!("{op}: {e}"),
    }
}

async fn code(r: &Registry, op: &str, input: Value) -> String {
    match call(r, op, input).await {
        Ok(v) => panic!("{op} succeeded: {v}"),
        Err(e) => e.code.to_string(),
    }
}

fn http80() -> Value {
    json!([{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}])
}

/// Registers an ECS container instance (generated EC2 id) and returns that id.
async fn container_instance(r: &Registry) -> String {
    let h = r.get("ecs", "RegisterContainerInstance").expect("op");
    let doc = json!({"instanceType": "m5.large", "availabilityZone": "us-east-1a"}).to_string();
    let out = h
        .call(
            Ctx::for_tests(),
            json!({"cluster": "default", "instanceIdentityDocument": doc}),
        )
        .await;
    let out = match out {
        Ok(v) => v,
        Err(e) => {
            // The default cluster may need creating first.
            let _ = r
                .get("ecs", "CreateCluster")
                .expect("op")
                .call(Ctx::for_tests(), json!({"clusterName": "default"}))
                .await;
            let _ = e;
            h.call(
                Ctx::for_tests(),
                json!({"cluster": "default", "instanceIdentityDocument": doc}),
            )
            .await
            .expect("register container instance")
        }
    };
    out["containerInstance"]["ec2InstanceId"]
        .as_str()
        .expect("ec2 id")
        .to_string()
}

#[tokio::test]
async fn create_describe_delete() {
    let r = build(&Deps::for_tests());
    assert_eq!(
        code(
            &r,
            "CreateLoadBalancer",
            json!({"LoadBalancerName": "web", "Listeners": http80()})
        )
        .await,
        "ValidationError"
    );
    assert_eq!(
        code(
            &r,
            "CreateLoadBalancer",
            json!({"LoadBalancerName": "web", "Listeners": http80(), "Subnets": ["subnet-nope"]})
        )
        .await,
        "SubnetNotFoundException"
    );
    assert_eq!(
        code(
            &r,
            "CreateLoadBalancer",
            json!({"LoadBalancerName": "web", "AvailabilityZones": ["us-east-1a"],
                   "Listeners": [{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80, "InstanceProtocol": "TCP"}]})
        )
        .await,
        "ValidationError"
    );
    assert_eq!(
        code(
            &r,
            "CreateLoadBalancer",
            json!({"LoadBalancerName": "web", "AvailabilityZones": ["us-east-1a"], "Scheme": "odd", "Listeners": http80()})
        )
        .await,
        "InvalidSchemeException"
    );
    let out = ok(
        &r,
        "CreateLoadBalancer",
        json!({"LoadBalancerName": "web", "AvailabilityZones": ["us-east-1a", "us-east-1b"],
               "Listeners": [{"Protocol": "http", "LoadBalancerPort": 80, "InstancePort": 8080},
                             {"Protocol": "TCP", "LoadBalancerPort": 9000, "InstancePort": 9000}],
               "Tags": [{"Key": "team", "Value": "a"}]}),
    )
    .await;
    let dns = out["DNSName"].as_str().expect("dns");
    assert!(
        dns.starts_with("web-") && dns.ends_with(".us-east-1.elb.localhost"),
        "{dns}"
    );
    assert_eq!(
        code(
            &r,
            "CreateLoadBalancer",
            json!({"LoadBalancerName": "web", "AvailabilityZones": ["us-east-1a"], "Listeners": http80()})
        )
        .await,
        "DuplicateAccessPointNameException"
    );
    let d = ok(
        &r,
        "DescribeLoadBalancers",
        json!({"LoadBalancerNames": ["web"]}),
    )
    .await;
    let lb = &d["LoadBalancerDescriptions"][0];
    assert_eq!(lb["DNSName"], dns);
    assert_eq!(lb["Scheme"], "internet-facing");
    assert_eq!(lb["AvailabilityZones"], json!(["us-east-1a", "us-east-1b"]));
    assert_eq!(lb["Subnets"].as_array().map(Vec::len), Some(2));
    assert!(lb["VPCId"].as_str().is_some_and(|v| v.starts_with("vpc-")));
    assert_eq!(lb["SecurityGroups"].as_array().map(Vec::len), Some(1));
    assert_eq!(lb["SourceSecurityGroup"]["GroupName"], "default");
    assert_eq!(
        lb["HealthCheck"],
        json!({"Target": "TCP:8080", "Interval": 30, "Timeout": 5, "UnhealthyThreshold": 2, "HealthyThreshold": 10})
    );
    let l0 = &lb["ListenerDescriptions"][0]["Listener"];
    assert_eq!(l0["Protocol"], "HTTP");
    assert_eq!(l0["InstanceProtocol"], "HTTP");
    assert_eq!(
        lb["ListenerDescriptions"][1]["Listener"]["InstanceProtocol"],
        "TCP"
    );
    // Listeners.
    assert_eq!(
        code(
            &r,
            "CreateLoadBalancerListeners",
            json!({"LoadBalancerName": "web", "Listeners": [{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 1}]})
        )
        .await,
        "DuplicateListenerException"
    );
    ok(
        &r,
        "CreateLoadBalancerListeners",
        json!({"LoadBalancerName": "web", "Listeners": [{"Protocol": "HTTPS", "LoadBalancerPort": 443, "InstancePort": 8080, "SSLCertificateId": "arn:aws:acm:us-east-1:000000000000:certificate/x"}]}),
    )
    .await;
    ok(
        &r,
        "DeleteLoadBalancerListeners",
        json!({"LoadBalancerName": "web", "LoadBalancerPorts": [9000, 1234]}),
    )
    .await;
    let d = ok(&r, "DescribeLoadBalancers", json!({})).await;
    let ports: Vec<i64> = d["LoadBalancerDescriptions"][0]["ListenerDescriptions"]
        .as_array()
        .expect("listeners")
        .iter()
        .filter_map(|l| l["Listener"]["LoadBalancerPort"].as_i64())
        .collect();
    assert_eq!(ports, vec![80, 443]);
    // Paging.
    for n in ["a-lb", "b-lb"] {
        ok(
            &r,
            "CreateLoadBalancer",
            json!({"LoadBalancerName": n, "AvailabilityZones": ["us-east-1c"], "Listeners": http80(), "Scheme": "internal"}),
        )
        .await;
    }
    let p1 = ok(&r, "DescribeLoadBalancers", json!({"PageSize": 2})).await;
    assert_eq!(
        p1["LoadBalancerDescriptions"][0]["LoadBalancerName"],
        "a-lb"
    );
    assert!(p1["LoadBalancerDescriptions"][0]["DNSName"]
        .as_str()
        .is_some_and(|d| d.starts_with("internal-a-lb-")));
    let marker = p1["NextMarker"].as_str().expect("marker");
    let p2 = ok(
        &r,
        "DescribeLoadBalancers",
        json!({"PageSize": 2, "Marker": marker}),
    )
    .await;
    assert_eq!(p2["LoadBalancerDescriptions"][0]["LoadBalancerName"], "web");
    assert!(p2.get("NextMarker").is_none());
    assert_eq!(
        code(
            &r,
            "DescribeLoadBalancers",
            json!({"LoadBalancerNames": ["nope"]})
        )
        .await,
        "AccessPointNotFoundException"
    );
    // Delete is idempotent.
    ok(
        &r,
        "DeleteLoadBalancer",
        json!({"LoadBalancerName": "a-lb"}),
    )
    .await;
    ok(
        &r,
        "DeleteLoadBalancer",
        json!({"LoadBalancerName": "a-lb"}),
    )
    .await;
    let limits = ok(&r, "DescribeAccountLimits", json!({})).await;
    assert_eq!(limits["Limits"][0]["Name"], "classic-load-balancers");
}

#[tokio::test]
async fn instances_health_attributes_and_tags() {
    let r = build(&Deps::for_tests());
    ok(
        &r,
        "CreateLoadBalancer",
        json!({"LoadBalancerName": "web", "AvailabilityZones": ["us-east-1a"], "Listeners": http80()}),
    )
    .await;
    assert_eq!(
        code(
            &r,
            "RegisterInstancesWithLoadBalancer",
            json!({"LoadBalancerName": "web", "Instances": [{"InstanceId": "i-0123456789abcdef0"}]})
        )
        .await,
        "InvalidEndPointException"
    );
    let id = container_instance(&r).await;
    let out = ok(
        &r,
        "RegisterInstancesWithLoadBalancer",
        json!({"LoadBalancerName": "web", "Instances": [{"InstanceId": id}]}),
    )
    .await;
    assert_eq!(out["Instances"], json!([{"InstanceId": id}]));
    let h = ok(
        &r,
        "DescribeInstanceHealth",
        json!({"LoadBalancerName": "web"}),
    )
    .await;
    assert_eq!(
        h["InstanceStates"][0],
        json!({"InstanceId": id, "State": "OutOfService", "ReasonCode": "ELB", "Description": REGISTERING})
    );
    assert_eq!(
        code(
            &r,
            "DescribeInstanceHealth",
            json!({"LoadBalancerName": "web", "Instances": [{"InstanceId": "i-other"}]})
        )
        .await,
        "InvalidEndPointException"
    );
    // Health check configuration.
    for bad in [
        json!({"Target": "HTTP:80", "Interval": 10, "Timeout": 5, "UnhealthyThreshold": 2, "HealthyThreshold": 2}),
        json!({"Target": "TCP:80/x", "Interval": 10, "Timeout": 5, "UnhealthyThreshold": 2, "HealthyThreshold": 2}),
        json!({"Target": "HTTP:80/", "Interval": 5, "Timeout": 5, "UnhealthyThreshold": 2, "HealthyThreshold": 2}),
    ] {
        assert_eq!(
            code(
                &r,
                "ConfigureHealthCheck",
                json!({"LoadBalancerName": "web", "HealthCheck": bad})
            )
            .await,
            "ValidationError"
        );
    }
    let hc = json!({"Target": "HTTP:8080/health", "Interval": 5, "Timeout": 2, "UnhealthyThreshold": 2, "HealthyThreshold": 3});
    let out = ok(
        &r,
        "ConfigureHealthCheck",
        json!({"LoadBalancerName": "web", "HealthCheck": hc}),
    )
    .await;
    assert_eq!(out["HealthCheck"], hc);
    // Attributes.
    let a = ok(
        &r,
        "DescribeLoadBalancerAttributes",
        json!({"LoadBalancerName": "web"}),
    )
    .await;
    assert_eq!(
        a["LoadBalancerAttributes"]["ConnectionSettings"]["IdleTimeout"],
        60
    );
    assert_eq!(
        a["LoadBalancerAttributes"]["ConnectionDraining"]["Enabled"],
        false
    );
    let m = ok(
        &r,
        "ModifyLoadBalancerAttributes",
        json!({"LoadBalancerName": "web", "LoadBalancerAttributes": {
            "CrossZoneLoadBalancing": {"Enabled": true},
            "ConnectionDraining": {"Enabled": true, "Timeout": 30},
            "ConnectionSettings": {"IdleTimeout": 120},
            "AccessLog": {"Enabled": true, "S3BucketName": "logs", "EmitInterval": 5},
        }}),
    )
    .await;
    assert_eq!(m["LoadBalancerName"], "web");
    let a = ok(
        &r,
        "DescribeLoadBalancerAttributes",
        json!({"LoadBalancerName": "web"}),
    )
    .await;
    let a = &a["LoadBalancerAttributes"];
    assert_eq!(a["CrossZoneLoadBalancing"]["Enabled"], true);
    assert_eq!(
        a["ConnectionDraining"],
        json!({"Enabled": true, "Timeout": 30})
    );
    assert_eq!(a["ConnectionSettings"]["IdleTimeout"], 120);
    assert_eq!(a["AccessLog"]["S3BucketName"], "logs");
    assert_eq!(
        code(
            &r,
            "ModifyLoadBalancerAttributes",
            json!({"LoadBalancerName": "web", "LoadBalancerAttributes": {"AdditionalAttributes": [{"Key": "nope", "Value": "x"}]}})
        )
        .await,
        "LoadBalancerAttributeNotFoundException"
    );
    // Tags.
    ok(
        &r,
        "AddTags",
        json!({"LoadBalancerNames": ["web"], "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}),
    )
    .await;
    assert_eq!(
        code(
            &r,
            "AddTags",
            json!({"LoadBalancerNames": ["web"], "Tags": [{"Key": "a"}, {"Key": "a"}]})
        )
        .await,
        "DuplicateTagKeysException"
    );
    ok(
        &r,
        "RemoveTags",
        json!({"LoadBalancerNames": ["web"], "Tags": [{"Key": "a"}]}),
    )
    .await;
    let t = ok(&r, "DescribeTags", json!({"LoadBalancerNames": ["web"]})).await;
    assert_eq!(
        t["TagDescriptions"][0]["Tags"],
        json!([{"Key": "b", "Value": "2"}])
    );
    assert_eq!(
        code(
            &r,
            "AddTags",
            json!({"LoadBalancerNames": ["gone"], "Tags": [{"Key": "a"}]})
        )
        .await,
        "AccessPointNotFoundException"
    );
    // Deregistration.
    assert_eq!(
        code(
            &r,
            "DeregisterInstancesFromLoadBalancer",
            json!({"LoadBalancerName": "web", "Instances": [{"InstanceId": "i-other"}]})
        )
        .await,
        "InvalidEndPointException"
    );
    let out = ok(
        &r,
        "DeregisterInstancesFromLoadBalancer",
        json!({"LoadBalancerName": "web", "Instances": [{"InstanceId": id}]}),
    )
    .await;
    assert_eq!(out["Instances"], json!([]));
}

#[test]
fn health_state_machine_and_targets() {
    let mut h = InstanceHealth::default();
    assert!(!h.record(true, 2, 2));
    assert!(h.record(true, 2, 2));
    assert_eq!((h.state, h.reason_code), ("InService", "N/A"));
    assert!(!h.record(false, 2, 2));
    assert_eq!(h.state, "InService");
    assert!(h.record(false, 2, 2));
    assert_eq!(
        (h.state, h.reason_code, h.description),
        ("OutOfService", "Instance", FAILED)
    );
    assert_eq!(
        HealthCheckConfig::parse_target("http:80/x"),
        Some(("HTTP".into(), 80, Some("/x".into())))
    );
    assert_eq!(
        HealthCheckConfig::parse_target("TCP:8080"),
        Some(("TCP".into(), 8080, None))
    );
    assert_eq!(HealthCheckConfig::parse_target("TCP:0"), None);
    assert_eq!(HealthCheckConfig::parse_target("UDP:53"), None);
    assert_eq!(HealthCheckConfig::parse_target("HTTPS:443"), None);
}
