//! Read-only public parameters AWS publishes under /aws/service/: the ECS-optimized AMIs and
//! the Amazon Linux AMIs (/aws/service/ami-amazon-linux-latest/, al2023 and amzn2 names),
//! generated from EC2's AMI tables so the image ids agree with DescribeImages.

use super::state::{Parameter, ParameterVersion};
use crate::services::ec2::{
    AMAZON_LINUX_AMIS, AMAZON_LINUX_LATEST, AMAZON_LINUX_PARAMETERS, ECS_OPTIMIZED_AMIS,
};

/// When the published values last changed (2026-11-20T19:00:00Z).
const PUBLISHED: f64 = 1_795_201_200.0;
const VERSION: i64 = 142;

fn param(region: &str, name: String, value: String) -> Parameter {
    Parameter {
        name,
        account: String::new(),
        region: region.to_string(),
        versions: vec![ParameterVersion {
            version: VERSION,
            value,
            kind: "String".into(),
            description: None,
            key_id: None,
            allowed_pattern: None,
            tier: "Standard".into(),
            data_type: "text".into(),
            last_modified: PUBLISHED,
            last_modified_user: String::new(),
            labels: vec![],
        }],
        tags: vec![],
    }
}

/// Every public parameter of a region, sorted by name.
pub fn public_parameters(region: &str) -> Vec<Parameter> {
    let mut out = Vec::new();
    for ami in ECS_OPTIMIZED_AMIS {
        let base = ami.ssm_path;
        out.push(param(
            region,
            base.to_string(),
            ami.recommended_json(region),
        ));
        let fields: [(&str, String); 8] = [
            ("ecs_agent_version", ami.ecs_agent_version.into()),
            ("ecs_runtime_version", ami.ecs_runtime_version.into()),
            ("image_id", ami.image_id(region)),
            ("image_name", ami.name.into()),
            ("image_version", ami.image_version.into()),
            ("os", ami.os.into()),
            ("schema_version", "1".into()),
            ("source_image_name", ami.source_image_name.into()),
        ];
        for (field, value) in fields {
            out.push(param(region, format!("{base}/{field}"), value));
        }
    }
    for (name, ami) in AMAZON_LINUX_PARAMETERS {
        if let Some(a) = AMAZON_LINUX_AMIS.iter().find(|a| a.name == *ami) {
            let mut p = param(
                region,
                format!("{AMAZON_LINUX_LATEST}{name}"),
                a.image_id(region),
            );
            // AWS publishes these as aws:ec2:image parameters.
            if let Some(v) = p.versions.first_mut() {
                v.data_type = "aws:ec2:image".into();
            }
            out.push(p);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn is_public(name: &str) -> bool {
    name.starts_with("/aws/")
}

pub fn public_parameter(region: &str, name: &str) -> Option<Parameter> {
    public_parameters(region)
        .into_iter()
        .find(|p| p.name == name)
}

/// Public parameters' ARNs have no account: arn:aws:ssm:<region>::parameter/aws/service/...
pub fn public_arn(region: &str, name: &str) -> String {
    super::state::arn(region, "", name)
}
