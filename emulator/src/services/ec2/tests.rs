//! Handler-level tests of EC2.

use super::state::State;
use super::*;
use crate::services::{Ctx, Deps};
use crate::store::Store;
use serde_json::{json, Value};

fn setup() -> (State, Ctx) {
    (State::new(&Deps::for_tests().store), Ctx::for_tests())
}

fn code(r: Result<Value, crate::protocol::AwsError>) -> String {
    r.err().map(|e| e.code.to_string()).unwrap_or_default()
}

#[test]
fn default_vpc_subnets_and_group_are_created_once() {
    let (s, ctx) = setup();
    let out = vpcs::describe_vpcs(&s, &ctx, json!({})).expect("describe");
    let vpcs = out["Vpcs"].as_array().expect("vpcs");
    assert_eq!(vpcs.len(), 1);
    let vpc = &vpcs[0];
    assert_eq!(vpc["CidrBlock"], "172.31.0.0/16");
    assert_eq!(vpc["IsDefault"], true);
    let vpc_id = vpc["VpcId"].as_str().expect("id");
    assert!(vpc_id.starts_with("vpc-") && vpc_id.len() == 21);

    let out = subnets::describe_subnets(&s, &ctx, json!({})).expect("subnets");
    let mut subnets: Vec<(String, String)> = out["Subnets"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| {
            assert_eq!(s["DefaultForAz"], true);
            assert_eq!(s["MapPublicIpOnLaunch"], true);
            assert_eq!(s["AvailableIpAddressCount"], 4091);
            assert_eq!(s["VpcId"], vpc_id);
            (
                s["AvailabilityZone"].as_str().unwrap_or("").to_string(),
                s["CidrBlock"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    subnets.sort();
    assert_eq!(
        subnets,
        vec![
            ("us-east-1a".to_string(), "172.31.0.0/20".to_string()),
            ("us-east-1b".to_string(), "172.31.16.0/20".to_string()),
            ("us-east-1c".to_string(), "172.31.32.0/20".to_string()),
        ]
    );

    let out = security_groups::describe_security_groups(&s, &ctx, json!({})).expect("sgs");
    let sg = &out["SecurityGroups"][0];
    assert_eq!(sg["GroupName"], "default");
    assert_eq!(sg["Description"], "default VPC security group");
    assert_eq!(sg["IpPermissionsEgress"][0]["IpProtocol"], "-1");
    assert_eq!(
        sg["IpPermissionsEgress"][0]["IpRanges"][0]["CidrIp"],
        "0.0.0.0/0"
    );
    // A second call does not create another default VPC.
    let again = vpcs::describe_vpcs(&s, &ctx, json!({})).expect("again");
    assert_eq!(again["Vpcs"][0]["VpcId"], vpc_id);
    // Another region gets its own.
    let mut other = ctx.clone();
    other.region = "eu-west-1".into();
    let out = subnets::describe_subnets(
        &s,
        &other,
        json!({"Filters": [{"Name": "availability-zone", "Values": ["eu-west-1?"]}]}),
    )
    .expect("eu");
    assert_eq!(out["Subnets"].as_array().map(Vec::len), Some(3));
    // Subnets come back in no particular order, as in EC2.
    let mut zone_ids: Vec<&str> = out["Subnets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["AvailabilityZoneId"].as_str())
        .collect();
    zone_ids.sort_unstable();
    assert_eq!(zone_ids, vec!["euw1-az1", "euw1-az2", "euw1-az3"]);
}

#[test]
fn vpc_and_subnet_lifecycle_with_errors() {
    let (s, ctx) = setup();
    let out = vpcs::create_vpc(&s, &ctx, json!({"CidrBlock": "10.0.0.0/16",
        "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "main"}]}]}))
    .expect("create");
    let vpc_id = out["Vpc"]["VpcId"].as_str().expect("id").to_string();
    assert_eq!(
        code(vpcs::create_vpc(
            &s,
            &ctx,
            json!({"CidrBlock": "10.0.0.0/8"})
        )),
        "InvalidVpc.Range"
    );

    let found = vpcs::describe_vpcs(
        &s,
        &ctx,
        json!({"Filters": [{"Name": "tag:Name", "Values": ["ma*"]}]}),
    )
    .expect("by tag");
    assert_eq!(found["Vpcs"][0]["VpcId"], vpc_id.as_str());
    let err = vpcs::describe_vpcs(&s, &ctx, json!({"VpcIds": ["vpc-00000000000000000"]}))
        .expect_err("err");
    assert_eq!(err.code, "InvalidVpcID.NotFound");
    assert_eq!(
        err.message,
        "The vpc ID 'vpc-00000000000000000' does not exist"
    );
    assert_eq!(
        code(vpcs::describe_vpcs(
            &s,
            &ctx,
            json!({"Filters": [{"Name": "bogus", "Values": ["x"]}]})
        )),
        "InvalidParameterValue"
    );

    assert_eq!(
        code(subnets::create_subnet(
            &s,
            &ctx,
            json!({"VpcId": vpc_id, "CidrBlock": "10.1.0.0/24"})
        )),
        "InvalidSubnet.Range"
    );
    let sub = subnets::create_subnet(
        &s,
        &ctx,
        json!({"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1b"}),
    )
    .expect("subnet");
    let subnet_id = sub["Subnet"]["SubnetId"].as_str().expect("id").to_string();
    assert_eq!(sub["Subnet"]["AvailableIpAddressCount"], 251);
    assert_eq!(sub["Subnet"]["DefaultForAz"], false);
    assert_eq!(
        code(subnets::create_subnet(
            &s,
            &ctx,
            json!({"VpcId": vpc_id, "CidrBlock": "10.0.1.128/25"})
        )),
        "InvalidSubnet.Conflict"
    );
    assert_eq!(
        code(subnets::create_subnet(
            &s,
            &ctx,
            json!({"VpcId": vpc_id, "CidrBlock": "10.0.2.0/24", "AvailabilityZone": "us-east-1z"})
        )),
        "InvalidParameterValue"
    );

    // A VPC with a subnet or a non-default group cannot be deleted.
    assert_eq!(
        code(vpcs::delete_vpc(&s, &ctx, json!({"VpcId": vpc_id}))),
        "DependencyViolation"
    );
    subnets::delete_subnet(&s, &ctx, json!({"SubnetId": subnet_id})).expect("delete subnet");
    assert_eq!(
        code(subnets::delete_subnet(
            &s,
            &ctx,
            json!({"SubnetId": subnet_id})
        )),
        "InvalidSubnetID.NotFound"
    );
    let sg = security_groups::create_security_group(
        &s,
        &ctx,
        json!({"GroupName": "web", "Description": "w", "VpcId": vpc_id}),
    )
    .expect("sg");
    assert_eq!(
        code(vpcs::delete_vpc(&s, &ctx, json!({"VpcId": vpc_id}))),
        "DependencyViolation"
    );
    security_groups::delete_security_group(&s, &ctx, json!({"GroupId": sg["GroupId"]}))
        .expect("del sg");
    vpcs::delete_vpc(&s, &ctx, json!({"VpcId": vpc_id})).expect("delete vpc");
    // Its default group went with it.
    let left = security_groups::describe_security_groups(
        &s,
        &ctx,
        json!({"Filters": [{"Name": "vpc-id", "Values": [vpc_id]}]}),
    )
    .expect("left");
    assert_eq!(left["SecurityGroups"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        code(vpcs::delete_vpc(&s, &ctx, json!({"VpcId": vpc_id}))),
        "InvalidVpcID.NotFound"
    );
}

#[test]
fn security_group_rules_authorize_and_revoke() {
    let (s, ctx) = setup();
    let sg = security_groups::create_security_group(
        &s,
        &ctx,
        json!({"GroupName": "web", "Description": "web"}),
    )
    .expect("create");
    let gid = sg["GroupId"].as_str().expect("id").to_string();
    assert!(gid.starts_with("sg-") && gid.len() == 20);
    assert_eq!(
        code(security_groups::create_security_group(
            &s,
            &ctx,
            json!({"GroupName": "web", "Description": "again"})
        )),
        "InvalidGroup.Duplicate"
    );
    let perm = json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "http"}]}]);
    let out = security_groups::authorize_ingress(
        &s,
        &ctx,
        json!({"GroupId": gid, "IpPermissions": perm}),
    )
    .expect("authorize");
    let rule_id = out["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        .as_str()
        .expect("rule")
        .to_string();
    assert!(rule_id.starts_with("sgr-"));
    let dup = security_groups::authorize_ingress(
        &s,
        &ctx,
        json!({"GroupId": gid, "IpPermissions": perm}),
    )
    .expect_err("dup");
    assert_eq!(dup.code, "InvalidPermission.Duplicate");
    // Legacy flat parameters, protocol by number.
    security_groups::authorize_ingress(&s, &ctx, json!({"GroupId": gid, "IpProtocol": "6", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/8"}))
        .expect("flat");
    let d = security_groups::describe_security_groups(&s, &ctx, json!({"GroupIds": [gid]}))
        .expect("describe");
    let perms = d["SecurityGroups"][0]["IpPermissions"]
        .as_array()
        .expect("perms")
        .clone();
    assert_eq!(perms.len(), 2);
    assert_eq!(perms[0]["IpRanges"][0]["Description"], "http");
    let by_cidr = security_groups::describe_security_groups(
        &s,
        &ctx,
        json!({"Filters": [{"Name": "ip-permission.cidr", "Values": ["10.0.0.0/8"]}]}),
    )
    .expect("filter");
    assert_eq!(by_cidr["SecurityGroups"][0]["GroupId"], gid.as_str());

    security_groups::revoke_ingress(
        &s,
        &ctx,
        json!({"GroupId": gid, "SecurityGroupRuleIds": [rule_id]}),
    )
    .expect("revoke id");
    assert_eq!(
        code(security_groups::revoke_ingress(
            &s,
            &ctx,
            json!({"GroupId": gid, "IpPermissions": perm})
        )),
        "InvalidPermission.NotFound"
    );
    security_groups::revoke_egress(&s, &ctx, json!({"GroupId": gid, "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}))
        .expect("revoke egress");
    let d = security_groups::describe_security_groups(&s, &ctx, json!({"GroupIds": [gid]}))
        .expect("describe");
    assert_eq!(
        d["SecurityGroups"][0]["IpPermissionsEgress"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        d["SecurityGroups"][0]["IpPermissions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A group referenced by another group's rule cannot be deleted.
    let other = security_groups::create_security_group(
        &s,
        &ctx,
        json!({"GroupName": "db", "Description": "db"}),
    )
    .expect("db");
    security_groups::authorize_ingress(&s, &ctx, json!({"GroupId": other["GroupId"], "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": gid}]}]}))
        .expect("ref");
    assert_eq!(
        code(security_groups::delete_security_group(
            &s,
            &ctx,
            json!({"GroupId": gid})
        )),
        "DependencyViolation"
    );
    let def = security_groups::describe_security_groups(
        &s,
        &ctx,
        json!({"Filters": [{"Name": "group-name", "Values": ["default"]}]}),
    )
    .expect("default");
    assert_eq!(
        code(security_groups::delete_security_group(
            &s,
            &ctx,
            json!({"GroupId": def["SecurityGroups"][0]["GroupId"]})
        )),
        "CannotDelete"
    );
    assert_eq!(
        code(security_groups::describe_security_groups(
            &s,
            &ctx,
            json!({"GroupIds": ["sg-00000000000000000"]})
        )),
        "InvalidGroup.NotFound"
    );
    assert_eq!(
        code(security_groups::delete_security_group(
            &s,
            &ctx,
            json!({"GroupId": "sg-00000000000000000"})
        )),
        "InvalidGroup.NotFound"
    );
}

#[test]
fn tags_pagination_zones_regions_images_and_attributes() {
    let (s, ctx) = setup();
    let vpc = vpcs::describe_vpcs(&s, &ctx, json!({})).expect("vpcs");
    let vpc_id = vpc["Vpcs"][0]["VpcId"].as_str().expect("id").to_string();
    tags::create_tags(&s, &ctx, json!({"Resources": [vpc_id], "Tags": [{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "a"}]}))
        .expect("tag");
    assert_eq!(
        code(tags::create_tags(
            &s,
            &ctx,
            json!({"Resources": ["vpc-0123456789abcdef0"], "Tags": [{"Key": "k", "Value": "v"}]})
        )),
        "InvalidVpcID.NotFound"
    );
    let t = tags::describe_tags(
        &s,
        &ctx,
        json!({"Filters": [{"Name": "resource-id", "Values": [vpc_id]}]}),
    )
    .expect("tags");
    assert_eq!(t["Tags"].as_array().map(Vec::len), Some(2));
    tags::delete_tags(
        &s,
        &ctx,
        json!({"Resources": [vpc_id], "Tags": [{"Key": "env"}]}),
    )
    .expect("untag");
    let v = vpcs::describe_vpcs(
        &s,
        &ctx,
        json!({"Filters": [{"Name": "tag-key", "Values": ["team"]}]}),
    )
    .expect("tag-key");
    assert_eq!(v["Vpcs"][0]["Tags"], json!([{"Key": "team", "Value": "a"}]));

    let p1 = subnets::describe_subnets(&s, &ctx, json!({"MaxResults": 2})).expect("p1");
    assert_eq!(p1["Subnets"].as_array().map(Vec::len), Some(2));
    let p2 = subnets::describe_subnets(
        &s,
        &ctx,
        json!({"MaxResults": 2, "NextToken": p1["NextToken"]}),
    )
    .expect("p2");
    assert_eq!(p2["Subnets"].as_array().map(Vec::len), Some(1));
    assert!(p2.get("NextToken").is_none());
    assert_eq!(
        code(subnets::describe_subnets(
            &s,
            &ctx,
            json!({"MaxResults": 5, "SubnetIds": ["subnet-1"]})
        )),
        "InvalidParameterCombination"
    );

    let z = regions::describe_availability_zones(&s, &ctx, json!({})).expect("azs");
    assert_eq!(z["AvailabilityZones"][2]["ZoneName"], "us-east-1c");
    assert_eq!(z["AvailabilityZones"][0]["ZoneId"], "use1-az1");
    let r = regions::describe_regions(&s, &ctx, json!({"RegionNames": ["eu-central-1"]}))
        .expect("regions");
    assert_eq!(
        r["Regions"][0]["Endpoint"],
        "ec2.eu-central-1.amazonaws.com"
    );
    assert_eq!(
        code(regions::describe_regions(
            &s,
            &ctx,
            json!({"RegionNames": ["xx-1"]})
        )),
        "InvalidParameterValue"
    );
    assert_eq!(regions::region_code("ap-southeast-2"), "apse2");

    let imgs = images::describe_images(&s, &ctx, json!({"Owners": ["amazon"], "Filters": [
        {"Name": "name", "Values": ["al2023-ami-ecs-hvm-*"]}, {"Name": "architecture", "Values": ["arm64"]}]}))
        .expect("images");
    let list = imgs["Images"].as_array().expect("images");
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["Name"],
        "al2023-ami-ecs-hvm-2023.0.20261120-kernel-6.1-arm64"
    );
    assert_eq!(list[0]["OwnerId"], AMAZON_OWNER_ID);
    let id = list[0]["ImageId"].as_str().expect("id").to_string();
    assert_eq!(id, ECS_OPTIMIZED_AMIS[1].image_id("us-east-1"));
    assert_ne!(id, ECS_OPTIMIZED_AMIS[1].image_id("us-west-2"));
    assert!(find_ami("us-east-1", &id).is_some());
    assert_eq!(
        code(images::describe_images(
            &s,
            &ctx,
            json!({"ImageIds": ["ami-00000000000000000"]})
        )),
        "InvalidAMIID.NotFound"
    );
    assert_eq!(
        code(images::describe_images(
            &s,
            &ctx,
            json!({"ImageIds": ["bogus"]})
        )),
        "InvalidAMIID.Malformed"
    );
    let all = images::describe_images(&s, &ctx, json!({"ImageIds": [id]})).expect("by id");
    assert_eq!(all["Images"].as_array().map(Vec::len), Some(1));

    let a = regions::describe_account_attributes(
        &s,
        &ctx,
        json!({"AttributeNames": ["default-vpc", "supported-platforms"]}),
    )
    .expect("attrs");
    let attrs = a["AccountAttributes"].as_array().expect("attrs");
    assert_eq!(attrs.len(), 2);
    assert!(attrs
        .iter()
        .any(|x| x["AttributeValues"][0]["AttributeValue"] == vpc_id.as_str()));
    assert!(attrs
        .iter()
        .any(|x| x["AttributeValues"][0]["AttributeValue"] == "VPC"));
    assert_eq!(
        vpcs::describe_vpcs(&s, &ctx, json!({"DryRun": true}))
            .err()
            .map(|e| (e.code.to_string(), e.status)),
        Some(("DryRunOperation".to_string(), Some(412)))
    );
}

#[test]
fn handle_reads_subnets_and_groups() {
    let deps = Deps::for_tests();
    let mut r = crate::services::Registry::default();
    register(&mut r, &deps);
    let ec2 = r.handle::<Ec2>().expect("handle");
    let subnets = ec2
        .default_subnets("111122223333", "us-west-2")
        .expect("subnets");
    assert_eq!(subnets.len(), 3);
    assert_eq!(subnets[0].availability_zone, "us-west-2a");
    let one = ec2
        .subnet("111122223333", "us-west-2", &subnets[1].subnet_id)
        .expect("ok")
        .expect("found");
    assert_eq!(one.cidr_block, "172.31.16.0/20");
    let vpc = ec2
        .default_vpc("111122223333", "us-west-2")
        .expect("ok")
        .expect("vpc");
    let sg = ec2
        .default_security_group("111122223333", "us-west-2", &vpc.vpc_id)
        .expect("ok")
        .expect("sg");
    assert!(ec2
        .security_group("111122223333", "us-west-2", &sg.group_id)
        .expect("ok")
        .is_some());
    assert!(ec2
        .subnet("111122223333", "us-east-1", &subnets[0].subnet_id)
        .expect("ok")
        .is_none());
}

#[test]
fn state_survives_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::for_tests();
    let (vpc_id, sg_id) = {
        let store = Store::open(dir.path()).expect("open");
        let s = State::new(&store);
        let v = vpcs::create_vpc(&s, &ctx, json!({"CidrBlock": "10.1.0.0/16"})).expect("vpc");
        let vpc_id = v["Vpc"]["VpcId"].as_str().expect("id").to_string();
        let g = security_groups::create_security_group(
            &s,
            &ctx,
            json!({"GroupName": "g", "Description": "d", "VpcId": vpc_id}),
        )
        .expect("sg");
        security_groups::authorize_ingress(&s, &ctx, json!({"GroupId": g["GroupId"], "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "1.2.3.4/32"}))
            .expect("rule");
        (vpc_id, g["GroupId"].as_str().expect("gid").to_string())
    };
    let store = Store::open(dir.path()).expect("reopen");
    let s = State::new(&store);
    assert_eq!(s.vpcs(&ctx.account, &ctx.region).len(), 2);
    assert!(s.vpc(&ctx.account, &ctx.region, &vpc_id).is_some());
    let g = s
        .security_group(&ctx.account, &ctx.region, &sg_id)
        .expect("sg");
    assert!(g
        .rules
        .iter()
        .any(|r| r.cidr_ipv4.as_deref() == Some("1.2.3.4/32")));
    // The default VPC is not created twice after a restart.
    let out = vpcs::describe_vpcs(
        &s,
        &ctx,
        json!({"Filters": [{"Name": "is-default", "Values": ["true"]}]}),
    )
    .expect("d");
    assert_eq!(out["Vpcs"].as_array().map(Vec::len), Some(1));
}
