//! Handler-level tests of Cloud Map.

use super::*;
use crate::services::{Ctx, Deps};
use serde_json::{json, Value};

fn setup() -> (Arc<CloudMap>, Ctx, Registry) {
    let deps = Deps::for_tests();
    let r = crate::app::build(&deps);
    (
        r.handle::<CloudMap>().expect("cloud map"),
        Ctx::for_tests(),
        r,
    )
}

fn code(r: Result<Value, AwsError>) -> String {
    r.err().map(|e| e.code.to_string()).unwrap_or_default()
}

fn default_vpc(r: &Registry, ctx: &Ctx) -> String {
    r.handle::<Ec2>()
        .expect("ec2")
        .default_vpc(&ctx.account, &ctx.region)
        .expect("vpc")
        .expect("default vpc")
        .vpc_id
}

/// Creates a private namespace and returns its id (through its operation's target).
fn private_ns(cm: &CloudMap, ctx: &Ctx, r: &Registry, name: &str) -> String {
    let vpc = default_vpc(r, ctx);
    let op = namespaces::create_private_dns_namespace(cm, ctx, json!({"Name": name, "Vpc": vpc}))
        .expect("create");
    let op = operations::get_operation(cm, ctx, json!({"OperationId": op["OperationId"]}))
        .expect("operation");
    op["Operation"]["Targets"]["NAMESPACE"]
        .as_str()
        .expect("target")
        .to_string()
}

fn dns_service(cm: &CloudMap, ctx: &Ctx, ns: &str, name: &str, records: Value) -> String {
    let out = service::create_service(
        cm,
        ctx,
        json!({"Name": name, "NamespaceId": ns, "DnsConfig": {"DnsRecords": records},
               "HealthCheckCustomConfig": {}}),
    )
    .expect("service");
    out["Service"]["Id"].as_str().expect("id").to_string()
}

#[test]
fn operations_go_submitted_pending_success_on_the_clock() {
    let (cm, mut ctx, r) = setup();
    let vpc = default_vpc(&r, &ctx);
    let out = namespaces::create_private_dns_namespace(
        &cm,
        &ctx,
        json!({"Name": "prod.local", "Vpc": vpc, "CreatorRequestId": "c1"}),
    )
    .expect("create");
    let op_id = out["OperationId"].as_str().expect("op").to_string();
    let status = |ctx: &Ctx| {
        operations::get_operation(&cm, ctx, json!({"OperationId": op_id})).expect("get")
            ["Operation"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(status(&ctx), "SUBMITTED");
    ctx.now += 0.5;
    assert_eq!(status(&ctx), "PENDING");
    ctx.now += 1.0;
    assert_eq!(status(&ctx), "SUCCESS");
    let listed = operations::list_operations(
        &cm,
        &ctx,
        json!({"Filters": [{"Name": "STATUS", "Values": ["SUCCESS"]}, {"Name": "TYPE", "Values": ["CREATE_NAMESPACE"], "Condition": "IN"}]}),
    )
    .expect("list");
    assert_eq!(listed["Operations"][0]["Id"], op_id.as_str());
    // A retry with the same CreatorRequestId gets the same operation; another name with it is a
    // duplicate; the same name without it already exists.
    let again = namespaces::create_private_dns_namespace(
        &cm,
        &ctx,
        json!({"Name": "prod.local", "Vpc": vpc, "CreatorRequestId": "c1"}),
    )
    .expect("retry");
    assert_eq!(again["OperationId"], op_id.as_str());
    let dup = namespaces::create_private_dns_namespace(
        &cm,
        &ctx,
        json!({"Name": "other.local", "Vpc": vpc, "CreatorRequestId": "c1"}),
    )
    .expect_err("dup");
    assert_eq!(dup.code, "DuplicateRequest");
    assert_eq!(
        dup.fields
            .as_ref()
            .map(|f| f["DuplicateOperationId"].clone()),
        Some(json!(op_id))
    );
    assert_eq!(
        code(namespaces::create_private_dns_namespace(
            &cm,
            &ctx,
            json!({"Name": "prod.local", "Vpc": vpc})
        )),
        "NamespaceAlreadyExists"
    );
}

#[test]
fn bad_namespaces_are_refused_and_nothing_is_created() {
    let (cm, ctx, r) = setup();
    let vpc = default_vpc(&r, &ctx);
    for name in ["bad..name", "-x.local", "a b", "x_y-.local"] {
        assert_eq!(
            code(namespaces::create_private_dns_namespace(
                &cm,
                &ctx,
                json!({"Name": name, "Vpc": vpc})
            )),
            "InvalidInput",
            "{name}"
        );
    }
    assert_eq!(
        code(namespaces::create_private_dns_namespace(
            &cm,
            &ctx,
            json!({"Name": "ok.local", "Vpc": "vpc-0000000000000000f"})
        )),
        "InvalidInput"
    );
    let listed = namespaces::list_namespaces(&cm, &ctx, json!({})).expect("list");
    assert_eq!(listed["Namespaces"], json!([]));
    assert!(cm.state.operations.is_empty());
}

#[test]
fn services_need_dns_config_in_dns_namespaces_and_srv_needs_a_port() {
    let (cm, ctx, r) = setup();
    let ns = private_ns(&cm, &ctx, &r, "prod.local");
    assert_eq!(
        code(service::create_service(
            &cm,
            &ctx,
            json!({"Name": "api", "NamespaceId": ns})
        )),
        "InvalidInput"
    );
    assert_eq!(
        code(service::create_service(
            &cm,
            &ctx,
            json!({"Name": "api", "NamespaceId": "ns-nope"})
        )),
        "NamespaceNotFound"
    );
    assert_eq!(
        code(service::create_service(
            &cm,
            &ctx,
            json!({"Name": "api", "NamespaceId": ns, "DnsConfig": {"DnsRecords": [{"Type": "CNAME", "TTL": 5}]}})
        )),
        "InvalidInput",
        "CNAME needs WEIGHTED"
    );
    let srv = dns_service(&cm, &ctx, &ns, "api", json!([{"Type": "SRV", "TTL": 10}]));
    let e = instances::register_instance(
        &cm,
        &ctx,
        json!({"ServiceId": srv, "InstanceId": "i1", "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.1"}}),
    )
    .expect_err("no port");
    assert_eq!(e.code, "InvalidInput");
    assert!(e.message.contains("AWS_INSTANCE_PORT"), "{}", e.message);
    assert_eq!(cm.state.instances_of(&ctx.scope(), &srv).len(), 0);
    instances::register_instance(
        &cm,
        &ctx,
        json!({"ServiceId": srv, "InstanceId": "i1", "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "8080"}}),
    )
    .expect("register");
    // A namespace with services, and a service with instances, are in use.
    assert_eq!(
        code(namespaces::delete_namespace(&cm, &ctx, json!({"Id": ns}))),
        "ResourceInUse"
    );
    assert_eq!(
        code(service::delete_service(&cm, &ctx, json!({"Id": srv}))),
        "ResourceInUse"
    );
    let view = cm.dns_view();
    let (zone, rest) = view.zone_of("api.prod.local").expect("zone");
    assert_eq!(rest, "api");
    assert_eq!(zone.services["api"].instances[0].port, Some(8080));
}

#[test]
fn discover_instances_filters_by_health_and_parameters() {
    let (cm, ctx, r) = setup();
    let ns = private_ns(&cm, &ctx, &r, "prod.local");
    let svc = dns_service(&cm, &ctx, &ns, "web", json!([{"Type": "A", "TTL": 10}]));
    for (id, ip, stage, health) in [
        ("t1", "10.0.0.1", "blue", "HEALTHY"),
        ("t2", "10.0.0.2", "green", "UNHEALTHY"),
    ] {
        instances::register_instance(
            &cm,
            &ctx,
            json!({"ServiceId": svc, "InstanceId": id, "Attributes": {
                "AWS_INSTANCE_IPV4": ip, "stage": stage, "AWS_INIT_HEALTH_STATUS": health}}),
        )
        .expect("register");
    }
    let discover = |extra: Value| {
        let mut input = json!({"NamespaceName": "prod.local", "ServiceName": "web"});
        if let (Some(i), Some(e)) = (input.as_object_mut(), extra.as_object()) {
            i.extend(e.clone());
        }
        let out = instances::discover_instances(&cm, &ctx, input).expect("discover");
        let mut ids: Vec<String> = out["Instances"]
            .as_array()
            .expect("instances")
            .iter()
            .map(|i| i["InstanceId"].as_str().unwrap_or_default().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(discover(json!({})), vec!["t1"]);
    assert_eq!(discover(json!({"HealthStatus": "UNHEALTHY"})), vec!["t2"]);
    assert_eq!(discover(json!({"HealthStatus": "ALL"})), vec!["t1", "t2"]);
    assert_eq!(
        discover(json!({"HealthStatus": "ALL", "QueryParameters": {"stage": "green"}})),
        vec!["t2"]
    );
    assert_eq!(
        discover(json!({"HealthStatus": "ALL", "OptionalParameters": {"stage": "nope"}})),
        vec!["t1", "t2"]
    );
    let before = instances::discover_instances_revision(
        &cm,
        &ctx,
        json!({"NamespaceName": "prod.local", "ServiceName": "web"}),
    )
    .expect("rev")["InstancesRevision"]
        .as_i64();
    instances::update_instance_custom_health_status(
        &cm,
        &ctx,
        json!({"ServiceId": svc, "InstanceId": "t2", "Status": "HEALTHY"}),
    )
    .expect("health");
    assert_eq!(discover(json!({})), vec!["t1", "t2"]);
    let after = instances::discover_instances_revision(
        &cm,
        &ctx,
        json!({"NamespaceName": "prod.local", "ServiceName": "web"}),
    )
    .expect("rev")["InstancesRevision"]
        .as_i64();
    assert!(after > before);
    assert_eq!(
        code(instances::discover_instances(
            &cm,
            &ctx,
            json!({"NamespaceName": "nope.local", "ServiceName": "web"})
        )),
        "NamespaceNotFound"
    );
    let status = instances::get_instances_health_status(&cm, &ctx, json!({"ServiceId": svc}))
        .expect("status");
    assert_eq!(status["Status"], json!({"t1": "HEALTHY", "t2": "HEALTHY"}));
}

#[test]
fn state_survives_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::for_tests();
    {
        let store = crate::store::Store::open(dir.path()).expect("store");
        let cm = CloudMap::new(&store, None);
        namespaces::create_http_namespace(
            &cm,
            &ctx,
            json!({"Name": "apps", "Tags": [{"Key": "a", "Value": "b"}]}),
        )
        .expect("create");
    }
    let store = crate::store::Store::open(dir.path()).expect("store");
    let cm = CloudMap::new(&store, None);
    let listed = namespaces::list_namespaces(&cm, &ctx, json!({})).expect("list");
    assert_eq!(listed["Namespaces"][0]["Name"], "apps");
    assert_eq!(listed["Namespaces"][0]["Type"], "HTTP");
    let arn = listed["Namespaces"][0]["Arn"]
        .as_str()
        .expect("arn")
        .to_string();
    let tags = tags::list_tags_for_resource(&cm, &ctx, json!({"ResourceARN": arn})).expect("tags");
    assert_eq!(tags["Tags"], json!([{"Key": "a", "Value": "b"}]));
    assert_eq!(
        code(service::create_service(
            &cm,
            &ctx,
            json!({"Name": "x", "NamespaceId": listed["Namespaces"][0]["Id"], "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 1}]}})
        )),
        "InvalidInput",
        "no DnsConfig in an HTTP namespace"
    );
}
