//! ECS resource names and ARNs: parameters accept a name or a full ARN.

use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::Ctx;

/// The cluster a request names (name or ARN); "default" when omitted, as ECS does.
pub fn cluster_name(param: Option<&str>) -> Result<String, AwsError> {
    let Some(p) = param.filter(|p| !p.is_empty()) else {
        return Ok("default".to_string());
    };
    if p.starts_with("arn:") {
        return match ResourceArn::parse(p) {
            Some(ResourceArn { kind, path, .. }) if kind == "cluster" => Ok(path),
            _ => Err(AwsError::new(
                codes::ecs::InvalidParameterException,
                format!("Invalid cluster ARN: {p}"),
            )),
        };
    }
    Ok(p.to_string())
}

pub fn cluster_arn(ctx: &Ctx, name: &str) -> String {
    ctx.arn("ecs", &format!("cluster/{name}"))
}

/// arn:aws:ecs:<region>:<account>:<kind>/<path>
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceArn {
    pub region: String,
    pub account: String,
    pub kind: String,
    pub path: String,
}

impl ResourceArn {
    pub fn parse(arn: &str) -> Option<ResourceArn> {
        let mut parts = arn.splitn(6, ':');
        let (
            Some("arn"),
            Some(_partition),
            Some("ecs"),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return None;
        };
        let (kind, path) = resource.split_once('/')?;
        Some(ResourceArn {
            region: region.into(),
            account: account.into(),
            kind: kind.into(),
            path: path.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns() {
        assert_eq!(cluster_name(None).expect("default"), "default");
        assert_eq!(cluster_name(Some("web")).expect("name"), "web");
        assert_eq!(
            cluster_name(Some("arn:aws:ecs:us-east-1:000000000000:cluster/web")).expect("arn"),
            "web"
        );
        assert!(cluster_name(Some("arn:aws:ecs:us-east-1:000000000000:service/web/x")).is_err());
        let arn = ResourceArn::parse("arn:aws:ecs:eu-west-1:1:task/c/abc").expect("arn");
        assert_eq!(
            (arn.kind.as_str(), arn.path.as_str(), arn.region.as_str()),
            ("task", "c/abc", "eu-west-1")
        );
    }
}
