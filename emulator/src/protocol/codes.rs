//! The error codes an [`AwsError`](super::AwsError) can carry, one module of constants per
//! service: the error shapes of its vendored model, plus the codes AWS documents for it that the
//! model does not list (EC2 models none; the query services' `ValidationError`). A misspelt code
//! does not compile, and a code of one service is named through that service's module.
//!
//! `codes_generated.rs` is generated from the models and [`UNMODELED`]; the test
//! `codes_generated_rs_is_current` fails when it is stale and rewrites it when run with
//! `ECS_EMULATOR_WRITE_CODES=1`.

#![allow(non_upper_case_globals)]

/// An error code known to the model of some service (or to the protocols themselves).
/// Only this module's constants make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(&'static str);

impl Code {
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl std::ops::Deref for Code {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Codes the protocols answer with for any service: AWS's common errors (the "Common Errors"
/// pages of the API references) and the emulator's own NotImplemented.
pub const COMMON: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationQueryParametersError",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "InternalFailure",
    "InvalidAction",
    "InvalidClientTokenId",
    "InvalidParameterCombination",
    "InvalidParameterValue",
    "InvalidQueryParameter",
    "InvalidSignatureException",
    "MalformedQueryString",
    "MissingAction",
    "MissingAuthenticationToken",
    "MissingParameter",
    "NotImplemented",
    "RequestEntityTooLarge",
    "RequestExpired",
    "RequestTimeTooSkewed",
    "RequestTimeout",
    "SerializationException",
    "ServiceUnavailable",
    "SignatureDoesNotMatch",
    "ThrottlingException",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "ValidationError",
    "ValidationException",
    "XAmzContentSHA256Mismatch",
];

/// Codes AWS documents for a service that its model has no error shape for.
pub const UNMODELED: &[(&str, &[&str])] = &[
    (
        // "Error codes for the Amazon EC2 API": EC2's model has no error shapes at all.
        "ec2",
        &[
            "AuthFailure",
            "CannotDelete",
            "DependencyViolation",
            "DryRunOperation",
            "IncorrectInstanceState",
            "InstanceLimitExceeded",
            "InsufficientFreeAddressesInSubnet",
            "InvalidAMIID.Malformed",
            "InvalidAMIID.NotFound",
            "InvalidAMIName.Duplicate",
            "InvalidAMIName.Malformed",
            "InvalidGroup.Duplicate",
            "InvalidGroup.NotFound",
            "InvalidGroupId.Malformed",
            "InvalidID",
            "InvalidIPAddress.InUse",
            "InvalidInstanceID.Malformed",
            "InvalidInstanceID.NotFound",
            "InvalidInstanceType",
            "InvalidLaunchTemplateId.Malformed",
            "InvalidLaunchTemplateId.NotFound",
            "InvalidLaunchTemplateId.VersionNotFound",
            "InvalidLaunchTemplateName.AlreadyExistsException",
            "InvalidLaunchTemplateName.MalformedException",
            "InvalidLaunchTemplateName.NotFoundException",
            "InvalidPaginationToken",
            "InvalidParameter",
            "InvalidPermission.Duplicate",
            "InvalidPermission.NotFound",
            "InvalidSecurityGroupRuleId.NotFound",
            "InvalidSubnet.Conflict",
            "InvalidSubnet.Range",
            "InvalidSubnetID.NotFound",
            "InvalidVpc.Range",
            "InvalidVpcID.NotFound",
            "LaunchTemplateVersionLimitExceeded",
            "MissingParameter",
            "RulesPerSecurityGroupLimitExceeded",
            "TagLimitExceeded",
            "UnsupportedOperation",
            "VPCIdNotSpecified",
            "VpcLimitExceeded",
        ],
    ),
    // BatchDeleteImage's failure code for an image a manifest list still references.
    ("ecr", &["ImageReferencedByManifestList"]),
    // GetParameter with a label no version carries.
    ("ssm", &["ParameterVersionLabelNotFound"]),
    // AssumeRole refused by the role's trust policy.
    ("sts", &["AccessDenied"]),
];

/// The Rust name of a code: dots become underscores ("InvalidSubnetID.NotFound").
fn const_name(code: &str) -> String {
    code.replace('.', "_")
}

/// The Rust module of a model ("application-autoscaling" → application_autoscaling).
fn module_name(model: &str) -> String {
    model.replace('-', "_")
}

/// codes_generated.rs as the models and the tables above make it.
pub fn render() -> String {
    let mut out = String::from(
        "// Generated by protocol::codes::render from the vendored models and codes.rs's tables.\n\
         // Do not edit: run `ECS_EMULATOR_WRITE_CODES=1 cargo test -p ecs-emulator codes_generated`.\n\n",
    );
    out.push_str(&module(
        "common",
        COMMON.iter().map(|c| c.to_string()).collect(),
    ));
    for name in super::model::model_names() {
        let Some(model) = super::model::model(name) else {
            continue;
        };
        let mut codes: Vec<String> = model
            .shapes
            .iter()
            .filter(|(_, s)| s.exception)
            .map(|(n, _)| n.clone())
            .collect();
        for (svc, extra) in UNMODELED {
            if *svc == name {
                codes.extend(extra.iter().map(|c| c.to_string()));
            }
        }
        out.push_str(&module(&module_name(name), codes));
    }
    out
}

fn module(name: &str, mut codes: Vec<String>) -> String {
    codes.sort();
    codes.dedup();
    let mut out = format!("pub mod {name} {{\n    use super::Code;\n");
    for c in codes {
        out.push_str(&format!(
            "    pub const {}: Code = Code(\"{c}\");\n",
            const_name(&c)
        ));
    }
    out.push_str("}\n\n");
    out
}

include!("codes_generated.rs");

#[cfg(test)]
mod tests {
    #[test]
    fn codes_generated_rs_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/protocol/codes_generated.rs"
        );
        let expected = super::render();
        if std::env::var_os("ECS_EMULATOR_WRITE_CODES").is_some() {
            std::fs::write(path, &expected).expect("write codes_generated.rs");
        }
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            actual == expected,
            "emulator/src/protocol/codes_generated.rs is stale: run \
             `ECS_EMULATOR_WRITE_CODES=1 cargo test -p ecs-emulator codes_generated`"
        );
    }

    #[test]
    fn codes_are_the_models_error_shapes() {
        assert_eq!(
            super::ecs::ClusterNotFoundException.as_str(),
            "ClusterNotFoundException"
        );
        assert_eq!(
            super::ec2::InvalidSubnetID_NotFound.as_str(),
            "InvalidSubnetID.NotFound"
        );
        let ecs = crate::protocol::model::model("ecs").expect("ecs model");
        assert!(ecs
            .error_shape(super::ecs::ServiceNotFoundException.as_str())
            .is_some());
    }
}
