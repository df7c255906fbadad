//! What the router needs to know of each service without parsing its model: its wire protocols
//! and routing keys. A unit test checks every entry against the vendored model.

/// A wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson 1.0 or 1.1 (X-Amz-Target).
    Json,
    /// rest-json (EFS).
    RestJson,
    /// awsQuery: form-encoded request, XML response.
    Query,
    /// The EC2 variant of query.
    Ec2,
    /// Smithy RPC v2 CBOR.
    Cbor,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::RestJson => "rest-json",
            Protocol::Query => "query",
            Protocol::Ec2 => "ec2",
            Protocol::Cbor => "rpcv2-cbor",
        }
    }
}

/// The error codes a service uses for input that fails validation.
#[derive(Debug)]
pub struct BadInputCodes {
    /// A required member is missing.
    pub missing: Code,
    /// A value breaks a constraint (enum, length, range, pattern) or has the wrong type.
    pub invalid: Code,
}

#[derive(Debug)]
pub struct ServiceInfo {
    /// The botocore model name, e.g. "ecs"; also the folder under services/.
    pub name: &'static str,
    /// The SigV4 signing name, e.g. "elasticloadbalancing".
    pub signing_name: &'static str,
    pub api_version: &'static str,
    /// X-Amz-Target prefix (JSON) and the service shape of the CBOR path.
    pub target_prefix: Option<&'static str>,
    /// awsJson version: "1.0" or "1.1".
    pub json_version: &'static str,
    /// Every protocol the service accepts, the model's preferred one first.
    pub protocols: &'static [Protocol],
    /// awsQueryCompatible: JSON/CBOR errors carry the query code in x-amzn-query-error.
    pub query_compatible: bool,
    pub xml_namespace: &'static str,
    pub bad_input: BadInputCodes,
}

const fn codes(missing: Code, invalid: Code) -> BadInputCodes {
    BadInputCodes { missing, invalid }
}

use super::codes::Code;
use Protocol::*;

pub static SERVICES: &[ServiceInfo] = &[
    ServiceInfo {
        name: "ecs",
        signing_name: "ecs",
        api_version: "2014-11-13",
        target_prefix: Some("AmazonEC2ContainerServiceV20141113"),
        json_version: "1.1",
        protocols: &[Json],
        query_compatible: false,
        xml_namespace: "",
        bad_input: codes(
            super::codes::ecs::InvalidParameterException,
            super::codes::ecs::InvalidParameterException,
        ),
    },
    ServiceInfo {
        name: "ecr",
        signing_name: "ecr",
        api_version: "2015-09-21",
        target_prefix: Some("AmazonEC2ContainerRegistry_V20150921"),
        json_version: "1.1",
        protocols: &[Json],
        query_compatible: false,
        xml_namespace: "",
        bad_input: codes(
            super::codes::ecr::InvalidParameterException,
            super::codes::ecr::InvalidParameterException,
        ),
    },
    ServiceInfo {
        name: "elbv2",
        signing_name: "elasticloadbalancing",
        api_version: "2015-12-01",
        target_prefix: None,
        json_version: "",
        protocols: &[Query],
        query_compatible: false,
        xml_namespace: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
        bad_input: codes(
            super::codes::common::ValidationError,
            super::codes::common::ValidationError,
        ),
    },
    ServiceInfo {
        name: "elb",
        signing_name: "elasticloadbalancing",
        api_version: "2012-06-01",
        target_prefix: None,
        json_version: "",
        protocols: &[Query],
        query_compatible: false,
        xml_namespace: "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/",
        bad_input: codes(
            super::codes::common::ValidationError,
            super::codes::common::ValidationError,
        ),
    },
    ServiceInfo {
        name: "autoscaling",
        signing_name: "autoscaling",
        api_version: "2011-01-01",
        target_prefix: None,
        json_version: "",
        protocols: &[Query],
        query_compatible: false,
        xml_namespace: "http://autoscaling.amazonaws.com/doc/2011-01-01/",
        bad_input: codes(
            super::codes::common::ValidationError,
            super::codes::common::ValidationError,
        ),
    },
    ServiceInfo {
        name: "application-autoscaling",
        signing_name: "application-autoscaling",
        api_version: "2016-02-06",
        target_prefix: Some("AnyScaleFrontendService"),
        json_version: "1.1",
        protocols: &[Json],
        query_compatible: false,
        xml_namespace: "",
        bad_input: codes(
            super::codes::application_autoscaling::ValidationException,
            super::codes::application_autoscaling::ValidationException,
        ),
    },
    ServiceInfo {
        name: "cloudwatch",
        signing_name: "monitoring",
        api_version: "2010-08-01",
        target_prefix: Some("GraniteServiceVersion20100801"),
        json_version: "1.0",
        protocols: &[Cbor, Json, Query],
        query_compatible: true,
        xml_namespace: "http://monitoring.amazonaws.com/doc/2010-08-01/",
        bad_input: codes(
            super::codes::cloudwatch::MissingRequiredParameterException,
            super::codes::cloudwatch::InvalidParameterValueException,
        ),
    },
    ServiceInfo {
        name: "logs",
        signing_name: "logs",
        api_version: "2014-03-28",
        target_prefix: Some("Logs_20140328"),
        json_version: "1.1",
        protocols: &[Json],
        query_compatible: false,
        xml_namespace: "",
        bad_input: codes(
            super::codes::logs::InvalidParameterException,
            super::codes::logs::InvalidParameterException,
        ),
    },
    ServiceInfo {
        name: "efs",
        signing_name: "elasticfilesystem",
        api_version: "2015-02-01",
        target_prefix: None,
        json_version: "",
        protocols: &[RestJson],
        query_compatible: false,
        xml_namespace: "",
        bad_input: codes(super::codes::efs::BadRequest, super::codes::efs::BadRequest),
    },
    ServiceInfo {
        name: "servicediscovery",
        signing_name: "servicediscovery",
        api_version: "2017-03-14",
        target_prefix: Some("Route53AutoNaming_v20170314"),
        json_version: "1.1",
        protocols: &[Cbor, Json],
        query_compatible: false,
        xml_namespace: "",
        bad_input: codes(
            super::codes::servicediscovery::InvalidInput,
            super::codes::servicediscovery::InvalidInput,
        ),
    },
    ServiceInfo {
        name: "ec2",
        signing_name: "ec2",
        api_version: "2016-11-15",
        target_prefix: None,
        json_version: "",
        protocols: &[Ec2],
        query_compatible: false,
        xml_namespace: "http://ec2.amazonaws.com/doc/2016-11-15",
        bad_input: codes(
            super::codes::ec2::MissingParameter,
            super::codes::common::InvalidParameterValue,
        ),
    },
    ServiceInfo {
        name: "sts",
        signing_name: "sts",
        api_version: "2011-06-15",
        target_prefix: None,
        json_version: "",
        protocols: &[Query],
        query_compatible: false,
        xml_namespace: "https://sts.amazonaws.com/doc/2011-06-15/",
        bad_input: codes(
            super::codes::common::ValidationError,
            super::codes::common::ValidationError,
        ),
    },
    ServiceInfo {
        name: "iam",
        signing_name: "iam",
        api_version: "2010-05-08",
        target_prefix: None,
        json_version: "",
        protocols: &[Query],
        query_compatible: false,
        xml_namespace: "https://iam.amazonaws.com/doc/2010-05-08/",
        bad_input: codes(
            super::codes::common::ValidationError,
            super::codes::common::ValidationError,
        ),
    },
    ServiceInfo {
        name: "ssm",
        signing_name: "ssm",
        api_version: "2014-11-06",
        target_prefix: Some("AmazonSSM"),
        json_version: "1.1",
        protocols: &[Json],
        query_compatible: false,
        xml_namespace: "",
        bad_input: codes(
            super::codes::ssm::ValidationException,
            super::codes::ssm::ValidationException,
        ),
    },
];

pub fn by_name(name: &str) -> Option<&'static ServiceInfo> {
    SERVICES.iter().find(|s| s.name == name)
}

pub fn by_target_prefix(prefix: &str) -> Option<&'static ServiceInfo> {
    SERVICES.iter().find(|s| s.target_prefix == Some(prefix))
}

/// The query/ec2 service for a form request's Version (unique across the vendored models).
pub fn by_query_version(version: &str) -> Option<&'static ServiceInfo> {
    SERVICES
        .iter()
        .find(|s| s.api_version == version && s.protocols.iter().any(|p| matches!(p, Query | Ec2)))
}

pub fn by_signing_name(signing: &str) -> impl Iterator<Item = &'static ServiceInfo> + '_ {
    SERVICES.iter().filter(move |s| s.signing_name == signing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::model::{model, model_names};

    #[test]
    fn catalog_matches_the_vendored_models() {
        assert_eq!(SERVICES.len(), model_names().count());
        for info in SERVICES {
            let m = model(info.name).unwrap_or_else(|| panic!("no model for {}", info.name));
            let md = &m.metadata;
            assert_eq!(md.api_version, info.api_version, "{}", info.name);
            assert_eq!(
                md.target_prefix.as_deref(),
                info.target_prefix,
                "{}",
                info.name
            );
            if info.protocols.contains(&Json) {
                assert_eq!(
                    md.json_version.as_deref(),
                    Some(info.json_version),
                    "{}",
                    info.name
                );
            }
            assert_eq!(
                md.aws_query_compatible.is_some(),
                info.query_compatible,
                "{}",
                info.name
            );
            let wire: Vec<&str> = md
                .protocols
                .iter()
                .map(|p| match p.as_str() {
                    "smithy-rpc-v2-cbor" => "rpcv2-cbor",
                    other => other,
                })
                .collect();
            let ours: Vec<&str> = info.protocols.iter().map(|p| p.name()).collect();
            assert_eq!(wire, ours, "{}", info.name);
            if info.protocols.iter().any(|p| matches!(p, Query | Ec2)) {
                assert_eq!(
                    md.xml_namespace.as_deref(),
                    Some(info.xml_namespace),
                    "{}",
                    info.name
                );
            }
            for err in [info.bad_input.missing, info.bad_input.invalid] {
                // Query services (and ec2) answer with the unmodelled ValidationError family;
                // JSON and rest-json services declare their bad-input errors in the model.
                if !info.protocols.iter().any(|p| matches!(p, Query | Ec2)) {
                    assert!(
                        m.error_shape(err.as_str()).is_some(),
                        "{}: {err} not in model",
                        info.name
                    );
                }
            }
        }
    }
}
