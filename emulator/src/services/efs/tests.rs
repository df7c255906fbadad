//! Handler-level tests of EFS.

use super::*;
use crate::protocol::AwsError;
use crate::services::{Ctx, Deps};
use serde_json::{json, Value};

fn setup() -> (Arc<Efs>, Ctx, Registry) {
    let deps = Deps::for_tests();
    let r = crate::app::build(&deps);
    (r.handle::<Efs>().expect("efs"), Ctx::for_tests(), r)
}

fn err(r: Result<Value, AwsError>) -> AwsError {
    r.expect_err("an error")
}

fn default_subnets(r: &Registry, ctx: &Ctx) -> Vec<crate::services::ec2::Subnet> {
    r.handle::<Ec2>()
        .expect("ec2")
        .default_subnets(&ctx.account, &ctx.region)
        .expect("subnets")
}

/// Creates a file system and moves the clock past `creating`.
fn file_system(efs: &Efs, ctx: &mut Ctx, token: &str) -> String {
    let out = file_systems::create_file_system(efs, ctx, json!({"CreationToken": token}))
        .expect("create");
    assert_eq!(out["LifeCycleState"], "creating");
    ctx.now += state::TRANSITION;
    out["FileSystemId"].as_str().expect("id").to_string()
}

fn describe_fs(efs: &Efs, ctx: &Ctx, id: &str) -> Value {
    file_systems::describe_file_systems(efs, ctx, json!({"FileSystemId": id})).expect("describe")
        ["FileSystems"][0]
        .clone()
}

#[test]
fn file_systems_live_on_the_clock_and_keep_their_data_in_a_real_directory() {
    let (efs, mut ctx, _r) = setup();
    let out = file_systems::create_file_system(
        &efs,
        &ctx,
        json!({"CreationToken": "t1", "Tags": [{"Key": "Name", "Value": "data"}],
               "ThroughputMode": "provisioned", "ProvisionedThroughputInMibps": 64.0,
               "Encrypted": true}),
    )
    .expect("create");
    let id = out["FileSystemId"].as_str().expect("id").to_string();
    assert!(id.starts_with("fs-") && id.len() == 20, "{id}");
    assert_eq!(out["LifeCycleState"], "creating");
    assert_eq!(out["Name"], "data");
    assert_eq!(out["PerformanceMode"], "generalPurpose");
    assert_eq!(out["ProvisionedThroughputInMibps"], 64.0);
    assert!(out["KmsKeyId"]
        .as_str()
        .is_some_and(|k| k.starts_with("arn:aws:kms:us-east-1:000000000000:key/")));
    let dir = efs.backing_dir_of(&id);
    assert_eq!(dir, backing_dir(efs.data_dir(), &id));
    assert!(dir.is_dir(), "the backing directory exists");
    ctx.now += state::TRANSITION;
    assert_eq!(describe_fs(&efs, &ctx, &id)["LifeCycleState"], "available");
    assert_eq!(describe_fs(&efs, &ctx, &id)["SizeInBytes"]["Value"], 4096);
    efs.sizes.forget(&id);
    std::fs::write(dir.join("f"), vec![7u8; 100_000]).expect("write");
    let size = &describe_fs(&efs, &ctx, &id)["SizeInBytes"];
    assert_eq!(size["Value"], 4096 + 102_400);
    assert_eq!(size["ValueInStandard"], 4096 + 102_400);

    // The same token again: the existing file system's id in the error, nothing created.
    let e = err(file_systems::create_file_system(
        &efs,
        &ctx,
        json!({"CreationToken": "t1"}),
    ));
    assert_eq!(e.code, "FileSystemAlreadyExists");
    assert_eq!(
        e.message,
        format!("File system '{id}' already exists with creation token 't1'")
    );
    assert_eq!(e.fields.as_ref().expect("fields")["FileSystemId"], id);
    let all = file_systems::describe_file_systems(&efs, &ctx, json!({})).expect("all");
    assert_eq!(all["FileSystems"].as_array().map(Vec::len), Some(1));

    // The handle sees it.
    let view = efs
        .file_system(&ctx.account, &ctx.region, &id)
        .expect("view");
    assert!(view.available);
    assert_eq!(view.backing_dir, dir);
    assert_eq!(view.policy, None);

    file_systems::delete_file_system(&efs, &ctx, json!({"FileSystemId": id})).expect("delete");
    assert_eq!(describe_fs(&efs, &ctx, &id)["LifeCycleState"], "deleting");
    ctx.now += state::TRANSITION;
    let e = err(file_systems::describe_file_systems(
        &efs,
        &ctx,
        json!({"FileSystemId": id}),
    ));
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        (
            "FileSystemNotFound",
            format!("File system '{id}' does not exist.").as_str()
        )
    );
    let all = file_systems::describe_file_systems(&efs, &ctx, json!({})).expect("all");
    assert_eq!(all["FileSystems"][0]["LifeCycleState"], "deleted");
    assert!(dir.is_dir(), "kept while deleted shows");
    ctx.now += state::DELETED_FOR;
    let all = file_systems::describe_file_systems(&efs, &ctx, json!({})).expect("all");
    assert_eq!(all["FileSystems"], json!([]));
    assert!(!dir.exists(), "the data is removed with the file system");
    // The token is free again.
    file_systems::create_file_system(&efs, &ctx, json!({"CreationToken": "t1"})).expect("again");
}

#[test]
fn create_file_system_checks_its_parameters() {
    let (efs, ctx, _r) = setup();
    let cases = [
        (
            json!({"CreationToken": "a", "ThroughputMode": "provisioned"}),
            "BadRequest",
        ),
        (
            json!({"CreationToken": "a", "ProvisionedThroughputInMibps": 5.0}),
            "BadRequest",
        ),
        (
            json!({"CreationToken": "a", "ThroughputMode": "provisioned", "ProvisionedThroughputInMibps": 99999.0}),
            "ThroughputLimitExceeded",
        ),
        (
            json!({"CreationToken": "a", "KmsKeyId": "alias/x"}),
            "BadRequest",
        ),
        (
            json!({"CreationToken": "a", "AvailabilityZoneName": "eu-west-1a"}),
            "UnsupportedAvailabilityZone",
        ),
        (
            json!({"CreationToken": "a", "PerformanceMode": "maxIO", "ThroughputMode": "elastic"}),
            "BadRequest",
        ),
    ];
    for (input, code) in cases {
        let e = err(file_systems::create_file_system(&efs, &ctx, input.clone()));
        assert_eq!(e.code, code, "{input}");
    }
    assert!(efs.state.file_systems.is_empty(), "nothing half-created");
    let one_zone = file_systems::create_file_system(
        &efs,
        &ctx,
        json!({"CreationToken": "oz", "AvailabilityZoneName": "us-east-1b"}),
    )
    .expect("one zone");
    assert_eq!(one_zone["AvailabilityZoneId"], "use1-az2");
    let id = one_zone["FileSystemId"].as_str().expect("id");
    let b =
        policies::describe_backup_policy(&efs, &ctx, json!({"FileSystemId": id})).expect("backup");
    assert_eq!(b["BackupPolicy"]["Status"], "ENABLED");
}

#[test]
fn mount_targets_one_per_az_in_one_vpc_with_an_address_of_the_subnet() {
    let (efs, mut ctx, r) = setup();
    let subnets = default_subnets(&r, &ctx);
    let fs = file_system(&efs, &mut ctx, "m");
    let mt = mount_targets::create_mount_target(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "SubnetId": subnets[0].subnet_id}),
    )
    .expect("mount target");
    assert_eq!(mt["LifeCycleState"], "creating");
    assert_eq!(mt["AvailabilityZoneName"], subnets[0].availability_zone);
    assert_eq!(mt["VpcId"], subnets[0].vpc_id);
    let ip: std::net::Ipv4Addr = mt["IpAddress"].as_str().expect("ip").parse().expect("ipv4");
    let cidr = crate::services::ec2::cidr::Cidr::parse(&subnets[0].cidr_block).expect("cidr");
    assert!(u32::from(ip) > cidr.network() + 3 && u32::from(ip) < cidr.last());
    let mt_id = mt["MountTargetId"].as_str().expect("id").to_string();

    // A second one in the same AZ.
    let e = err(mount_targets::create_mount_target(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "SubnetId": subnets[0].subnet_id}),
    ));
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        (
            "MountTargetConflict",
            "mount target already exists in this AZ"
        )
    );
    let e = err(mount_targets::create_mount_target(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "SubnetId": "subnet-0123456789abcdef0"}),
    ));
    assert_eq!(e.code, "SubnetNotFound");
    let e = err(mount_targets::create_mount_target(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "SubnetId": subnets[1].subnet_id, "SecurityGroups": ["sg-0123456789abcdef0"]}),
    ));
    assert_eq!(e.code, "SecurityGroupNotFound");
    let e = err(mount_targets::create_mount_target(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "SubnetId": subnets[1].subnet_id, "IpAddress": "192.0.2.1"}),
    ));
    assert_eq!(e.code, "BadRequest");
    let e = err(mount_targets::create_mount_target(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "SubnetId": subnets[1].subnet_id, "IpAddress": ip.to_string()}),
    ));
    assert_eq!(e.code, "BadRequest", "another subnet's address");
    assert_eq!(efs.state.mount_targets.len(), 1, "nothing half-created");

    ctx.now += state::TRANSITION;
    let sg = mount_targets::describe_mount_target_security_groups(
        &efs,
        &ctx,
        json!({"MountTargetId": mt_id}),
    )
    .expect("sgs");
    assert_eq!(sg["SecurityGroups"].as_array().map(Vec::len), Some(1));
    let view = efs
        .mount_target_in_az(
            &ctx.account,
            &ctx.region,
            &fs,
            &subnets[0].availability_zone,
        )
        .expect("in az");
    assert_eq!(view.ip_address, ip.to_string());
    assert!(efs
        .mount_target_in_az(
            &ctx.account,
            &ctx.region,
            &fs,
            &subnets[1].availability_zone
        )
        .is_none());

    // The file system cannot be deleted while it has mount targets.
    let e = err(file_systems::delete_file_system(
        &efs,
        &ctx,
        json!({"FileSystemId": fs}),
    ));
    assert_eq!(e.code, "FileSystemInUse");
    assert_eq!(e.message, format!("The file system '{fs}' cannot be deleted because it has mount targets. You must delete the mount targets, and then try again."));
    mount_targets::delete_mount_target(&efs, &ctx, json!({"MountTargetId": mt_id}))
        .expect("delete mt");
    let e = err(mount_targets::describe_mount_target_security_groups(
        &efs,
        &ctx,
        json!({"MountTargetId": mt_id}),
    ));
    assert_eq!(e.code, "IncorrectMountTargetState");
    assert_eq!(
        err(file_systems::delete_file_system(
            &efs,
            &ctx,
            json!({"FileSystemId": fs})
        ))
        .code,
        "FileSystemInUse",
        "until the mount target is gone"
    );
    ctx.now += state::TRANSITION + state::DELETED_FOR;
    file_systems::delete_file_system(&efs, &ctx, json!({"FileSystemId": fs})).expect("delete");
}

#[test]
fn access_points_validate_paths_and_tokens() {
    let (efs, mut ctx, _r) = setup();
    let fs = file_system(&efs, &mut ctx, "ap");
    let input = json!({"ClientToken": "c1", "FileSystemId": fs,
        "PosixUser": {"Uid": 1000, "Gid": 1000, "SecondaryGids": [5]},
        "RootDirectory": {"Path": "/app/data", "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "0750"}},
        "Tags": [{"Key": "Name", "Value": "app"}]});
    let ap = access_points::create_access_point(&efs, &ctx, input.clone()).expect("ap");
    let ap_id = ap["AccessPointId"].as_str().expect("id").to_string();
    assert_eq!(ap["Name"], "app");
    assert_eq!(ap["RootDirectory"]["CreationInfo"]["Permissions"], "0750");
    // The same request again is the same access point; another with the token conflicts.
    let again = access_points::create_access_point(&efs, &ctx, input).expect("retry");
    assert_eq!(again["AccessPointId"], ap_id.as_str());
    let e = err(access_points::create_access_point(
        &efs,
        &ctx,
        json!({"ClientToken": "c1", "FileSystemId": fs}),
    ));
    assert_eq!(e.code, "AccessPointAlreadyExists");
    assert_eq!(e.fields.as_ref().expect("fields")["AccessPointId"], ap_id);
    let e = err(access_points::create_access_point(
        &efs,
        &ctx,
        json!({"ClientToken": "c2", "FileSystemId": fs, "RootDirectory": {"Path": "/a/b/c/d/e"}}),
    ));
    assert_eq!(e.code, "BadRequest");
    assert_eq!(
        e.message,
        format!("1 validation error detected: Value '/a/b/c/d/e' at 'rootDirectory.path' failed to satisfy constraint: Member must satisfy regular expression pattern: {}", access_points::PATH_PATTERN)
    );
    let view = efs
        .access_point(&ctx.account, &ctx.region, &ap_id)
        .expect("view");
    assert_eq!(
        view,
        AccessPointView {
            id: ap_id.clone(),
            arn: format!("arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/{ap_id}"),
            file_system_id: fs.clone(),
            posix_user: Some(PosixUser {
                uid: 1000,
                gid: 1000,
                secondary_gids: vec![5]
            }),
            root_path: "/app/data".into(),
            creation_info: Some(CreationInfo {
                owner_uid: 1000,
                owner_gid: 1000,
                permissions: 0o750
            }),
        }
    );
    let listed = access_points::describe_access_points(&efs, &ctx, json!({"FileSystemId": fs}))
        .expect("list");
    assert_eq!(listed["AccessPoints"].as_array().map(Vec::len), Some(1));
    access_points::delete_access_point(&efs, &ctx, json!({"AccessPointId": ap_id}))
        .expect("delete");
    assert!(efs
        .access_point(&ctx.account, &ctx.region, &ap_id)
        .is_none());
}

#[test]
fn access_points_are_limited_per_file_system() {
    let (efs, mut ctx, _r) = setup();
    let fs = file_system(&efs, &mut ctx, "lim");
    let scope = ctx.scope();
    efs.state
        .access_points
        .transact::<_, AwsError, _>(|t| {
            for i in 0..state::MAX_ACCESS_POINTS {
                let id = format!("fsap-{i:017x}");
                t.put(
                    &format!("{scope}{id}"),
                    state::AccessPoint {
                        arn: String::new(),
                        id,
                        account: ctx.account.clone(),
                        region: ctx.region.clone(),
                        file_system_id: fs.clone(),
                        client_token: format!("t{i}"),
                        tags: Vec::new(),
                        posix_user: None,
                        root_path: "/".into(),
                        creation_info: None,
                        created: ctx.now,
                        deleted: None,
                    },
                );
            }
            Ok(())
        })
        .expect("fill");
    let e = err(access_points::create_access_point(
        &efs,
        &ctx,
        json!({"ClientToken": "one-more", "FileSystemId": fs}),
    ));
    assert_eq!(e.code, "AccessPointLimitExceeded");
}

#[test]
fn policies_backup_lifecycle_protection_and_tags() {
    let (efs, mut ctx, _r) = setup();
    let fs = file_system(&efs, &mut ctx, "p");
    let e = err(policies::describe_file_system_policy(
        &efs,
        &ctx,
        json!({"FileSystemId": fs}),
    ));
    assert_eq!(e.code, "PolicyNotFound");
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"elasticfilesystem:ClientWrite"}]}"#;
    let e = err(policies::put_file_system_policy(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "Policy": "{}"}),
    ));
    assert_eq!(e.code, "InvalidPolicyException");
    policies::put_file_system_policy(&efs, &ctx, json!({"FileSystemId": fs, "Policy": doc}))
        .expect("put");
    let view = efs
        .file_system(&ctx.account, &ctx.region, &fs)
        .expect("view");
    assert_eq!(view.policy.as_deref(), Some(doc));
    policies::delete_file_system_policy(&efs, &ctx, json!({"FileSystemId": fs})).expect("del");

    let e = err(policies::describe_backup_policy(
        &efs,
        &ctx,
        json!({"FileSystemId": fs}),
    ));
    assert_eq!(e.code, "PolicyNotFound");
    policies::put_backup_policy(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "BackupPolicy": {"Status": "ENABLED"}}),
    )
    .expect("backup");
    let l = json!([{"TransitionToIA": "AFTER_30_DAYS"}, {"TransitionToPrimaryStorageClass": "AFTER_1_ACCESS"}]);
    let out = policies::put_lifecycle_configuration(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "LifecyclePolicies": l}),
    )
    .expect("lifecycle");
    assert_eq!(out["LifecyclePolicies"], l);
    let e = err(policies::put_lifecycle_configuration(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "LifecyclePolicies": [{"TransitionToArchive": "AFTER_90_DAYS"}]}),
    ));
    assert_eq!(e.code, "BadRequest", "archive needs elastic throughput");

    let out = file_systems::update_file_system_protection(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "ReplicationOverwriteProtection": "DISABLED"}),
    )
    .expect("protection");
    assert_eq!(out["ReplicationOverwriteProtection"], "DISABLED");

    tags::tag_resource(
        &efs,
        &ctx,
        json!({"ResourceId": fs, "Tags": [{"Key": "Name", "Value": "n"}, {"Key": "b", "Value": "2"}]}),
    )
    .expect("tag");
    assert_eq!(describe_fs(&efs, &ctx, &fs)["Name"], "n");
    let page1 =
        tags::describe_tags(&efs, &ctx, json!({"FileSystemId": fs, "MaxItems": 1})).expect("d");
    assert_eq!(page1["Tags"], json!([{"Key": "Name", "Value": "n"}]));
    let page2 = tags::describe_tags(
        &efs,
        &ctx,
        json!({"FileSystemId": fs, "MaxItems": 1, "Marker": page1["NextMarker"]}),
    )
    .expect("d2");
    assert_eq!(page2["Tags"], json!([{"Key": "b", "Value": "2"}]));
    assert!(page2.get("NextMarker").is_none());
    tags::untag_resource(&efs, &ctx, json!({"ResourceId": fs, "TagKeys": ["Name"]})).expect("u");
    let listed = tags::list_tags_for_resource(&efs, &ctx, json!({"ResourceId": fs})).expect("l");
    assert_eq!(listed["Tags"], json!([{"Key": "b", "Value": "2"}]));
}

#[test]
fn replication_creates_a_protected_destination() {
    let (efs, mut ctx, _r) = setup();
    let fs = file_system(&efs, &mut ctx, "r");
    let out = replication::create_replication_configuration(
        &efs,
        &ctx,
        json!({"SourceFileSystemId": fs, "Destinations": [{"Region": "us-west-2"}]}),
    )
    .expect("replication");
    assert_eq!(out["Destinations"][0]["Status"], "ENABLING");
    let dest = out["Destinations"][0]["FileSystemId"]
        .as_str()
        .expect("dest")
        .to_string();
    let west = Ctx {
        region: "us-west-2".into(),
        ..ctx.clone()
    };
    assert_eq!(
        describe_fs(&efs, &west, &dest)["FileSystemProtection"]["ReplicationOverwriteProtection"],
        "REPLICATING"
    );
    ctx.now += state::TRANSITION;
    let d =
        replication::describe_replication_configurations(&efs, &ctx, json!({"FileSystemId": fs}))
            .expect("describe");
    assert_eq!(d["Replications"][0]["Destinations"][0]["Status"], "ENABLED");
    assert_eq!(
        err(file_systems::delete_file_system(
            &efs,
            &ctx,
            json!({"FileSystemId": fs})
        ))
        .code,
        "FileSystemInUse"
    );
    replication::delete_replication_configuration(&efs, &ctx, json!({"SourceFileSystemId": fs}))
        .expect("delete");
    let e = err(replication::describe_replication_configurations(
        &efs,
        &ctx,
        json!({"FileSystemId": fs}),
    ));
    assert_eq!(e.code, "ReplicationNotFound");
    file_systems::delete_file_system(&efs, &ctx, json!({"FileSystemId": fs})).expect("delete fs");
}

#[test]
fn account_preferences_choose_the_id_length() {
    let (efs, ctx, _r) = setup();
    let p = account::describe_account_preferences(&efs, &ctx, json!({})).expect("prefs");
    assert_eq!(p["ResourceIdPreference"]["ResourceIdType"], "LONG_ID");
    account::put_account_preferences(&efs, &ctx, json!({"ResourceIdType": "SHORT_ID"}))
        .expect("put");
    let out = file_systems::create_file_system(&efs, &ctx, json!({"CreationToken": "s"}))
        .expect("create");
    assert_eq!(out["FileSystemId"].as_str().map(str::len), Some(11));
}
