//! The ec2 protocol through aws-sdk-ec2: the default VPC and its subnets, CreateVpc/DeleteVpc.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;
use sdk_tests::Emulator;

/// (network, prefix length) of an IPv4 CIDR.
fn parse_cidr(cidr: &str) -> (u32, u32) {
    let (ip, len) = cidr.split_once('/').expect("CIDR has a /");
    let ip: std::net::Ipv4Addr = ip.parse().expect("IPv4 address");
    (u32::from(ip), len.parse().expect("prefix length"))
}

fn contains(outer: &str, inner: &str) -> bool {
    let (o, ol) = parse_cidr(outer);
    let (i, il) = parse_cidr(inner);
    let mask = if ol == 0 { 0 } else { u32::MAX << (32 - ol) };
    il >= ol && (i & mask) == o
}

#[tokio::test]
async fn default_vpc_is_172_31_0_0_16() {
    let emu = Emulator::start();
    let out = emu
        .ec2()
        .describe_vpcs()
        .send()
        .await
        .expect("DescribeVpcs");
    let defaults: Vec<_> = out
        .vpcs()
        .iter()
        .filter(|v| v.is_default() == Some(true))
        .collect();
    assert_eq!(defaults.len(), 1, "one default VPC: {:?}", out.vpcs());
    let vpc = defaults[0];
    assert_eq!(vpc.cidr_block(), Some("172.31.0.0/16"));
    assert!(vpc.vpc_id().is_some_and(|id| id.starts_with("vpc-")));
    assert_eq!(vpc.state().map(|s| s.as_str()), Some("available"));

    // The is-default filter finds it too.
    let filtered = emu
        .ec2()
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .expect("DescribeVpcs is-default=true");
    assert_eq!(filtered.vpcs().len(), 1);
    assert_eq!(filtered.vpcs()[0].vpc_id(), vpc.vpc_id());
}

#[tokio::test]
async fn default_subnets_are_one_per_zone_in_the_default_vpc() {
    let emu = Emulator::start();
    let ec2 = emu.ec2();
    let vpcs = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .expect("DescribeVpcs");
    let vpc_id = vpcs.vpcs()[0].vpc_id().expect("vpc id").to_string();

    let out = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
        .send()
        .await
        .expect("DescribeSubnets");
    let subnets = out.subnets();
    assert!(
        subnets.len() >= 2,
        "the default VPC has a default subnet per zone (at least two, as an ALB needs): {subnets:?}"
    );
    let mut zones = Vec::new();
    for s in subnets {
        assert_eq!(s.vpc_id(), Some(vpc_id.as_str()));
        assert_eq!(s.default_for_az(), Some(true), "{s:?}");
        assert_eq!(s.map_public_ip_on_launch(), Some(true), "{s:?}");
        assert!(s.subnet_id().is_some_and(|id| id.starts_with("subnet-")));
        let cidr = s.cidr_block().expect("subnet CIDR");
        assert!(cidr.ends_with("/20"), "default subnets are /20: {cidr}");
        assert!(
            contains("172.31.0.0/16", cidr),
            "{cidr} inside 172.31.0.0/16"
        );
        // A /20 has 4096 addresses, AWS reserves 5.
        assert_eq!(s.available_ip_address_count(), Some(4091), "{s:?}");
        let az = s.availability_zone().expect("zone").to_string();
        assert!(az.starts_with("us-east-1"), "{az}");
        zones.push(az);
    }
    let mut distinct = zones.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        zones.len(),
        "one default subnet per zone: {zones:?}"
    );

    // Without a filter, DescribeSubnets lists (at least) the same subnets.
    let all = ec2
        .describe_subnets()
        .send()
        .await
        .expect("DescribeSubnets");
    for s in subnets {
        assert!(all.subnets().iter().any(|t| t.subnet_id() == s.subnet_id()));
    }
}

#[tokio::test]
async fn create_describe_delete_vpc() {
    let emu = Emulator::start();
    let ec2 = emu.ec2();
    let created = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("CreateVpc");
    let vpc = created.vpc().expect("vpc in the CreateVpc output");
    let vpc_id = vpc.vpc_id().expect("vpc id").to_string();
    assert!(vpc_id.starts_with("vpc-"), "{vpc_id}");
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    assert_eq!(vpc.is_default(), Some(false));

    let described = ec2
        .describe_vpcs()
        .vpc_ids(&vpc_id)
        .send()
        .await
        .expect("DescribeVpcs by id");
    assert_eq!(described.vpcs().len(), 1);
    assert_eq!(described.vpcs()[0].cidr_block(), Some("10.0.0.0/16"));
    assert_eq!(
        described.vpcs()[0].state().map(|s| s.as_str()),
        Some("available")
    );

    let all = ec2.describe_vpcs().send().await.expect("DescribeVpcs");
    assert_eq!(all.vpcs().len(), 2, "the default VPC and the new one");

    ec2.delete_vpc()
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("DeleteVpc");

    let err = ec2
        .describe_vpcs()
        .vpc_ids(&vpc_id)
        .send()
        .await
        .expect_err("a deleted VPC is not found");
    assert_eq!(err.code(), Some("InvalidVpcID.NotFound"), "{err:?}");
    assert!(
        err.message().is_some_and(|m| m.contains(&vpc_id)),
        "{err:?}"
    );
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(400));

    let all = ec2.describe_vpcs().send().await.expect("DescribeVpcs");
    assert_eq!(all.vpcs().len(), 1, "only the default VPC is left");
}

#[tokio::test]
async fn unknown_vpc_is_invalid_vpc_id_not_found() {
    let emu = Emulator::start();
    let err = emu
        .ec2()
        .delete_vpc()
        .vpc_id("vpc-0123456789abcdef0")
        .send()
        .await
        .expect_err("DeleteVpc of an unknown VPC must fail");
    assert_eq!(err.code(), Some("InvalidVpcID.NotFound"), "{err:?}");
    let message = err.message().unwrap_or_default().to_string();
    assert!(message.contains("vpc-0123456789abcdef0"), "{message}");
}
