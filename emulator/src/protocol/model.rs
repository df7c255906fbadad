//! The botocore service model, as far as the codecs and the validator need it.
//!
//! The models are vendored under `emulator/models/` (stripped of documentation, gzip-compressed)
//! and parsed lazily, the first time a service is called, so start-up stays fast.

use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

#[derive(Debug, Deserialize)]
pub struct ServiceModel {
    pub metadata: Metadata,
    pub operations: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub protocol: String,
    #[serde(default)]
    pub protocols: Vec<String>,
    pub target_prefix: Option<String>,
    pub json_version: Option<String>,
    pub xml_namespace: Option<String>,
    pub aws_query_compatible: Option<serde_json::Value>,
    pub service_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    pub http: Http,
    pub input: Option<ShapeRef>,
    pub output: Option<OutputRef>,
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    pub method: String,
    pub request_uri: String,
    pub response_code: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputRef {
    pub shape: String,
    pub result_wrapper: Option<String>,
}

/// A reference to a shape: a structure member, a list member, a map key or value.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ShapeRef {
    pub shape: String,
    /// header, headers, uri, querystring, statusCode (rest protocols).
    pub location: Option<String>,
    pub location_name: Option<String>,
    pub query_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub idempotency_token: bool,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ShapeType {
    Structure,
    List,
    Map,
    String,
    Integer,
    Long,
    Short,
    Byte,
    Boolean,
    Timestamp,
    Blob,
    Float,
    Double,
    Bigdecimal,
    Biginteger,
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: ShapeType,
    #[serde(default)]
    pub members: IndexMap<String, ShapeRef>,
    #[serde(default)]
    pub required: Vec<String>,
    pub member: Option<ShapeRef>,
    pub key: Option<ShapeRef>,
    pub value: Option<ShapeRef>,
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub pattern: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    pub location_name: Option<String>,
    pub error: Option<ErrorInfo>,
    #[serde(default)]
    pub exception: bool,
    pub payload: Option<String>,
    #[serde(default)]
    pub document: bool,
    #[serde(default)]
    pub union: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    pub code: Option<String>,
    pub http_status_code: Option<u16>,
    #[serde(default)]
    pub sender_fault: bool,
}

impl ServiceModel {
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// The error shape with this name, when the model declares one.
    pub fn error_shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name).filter(|s| s.exception)
    }

    /// Names of all operations, sorted.
    pub fn operation_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.operations.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

macro_rules! embedded_models {
    ($($name:literal),* $(,)?) => {
        /// The vendored models, gzip-compressed, in the order of `SERVICES`.
        const EMBEDDED: &[(&str, &[u8])] = &[
            $(($name, include_bytes!(concat!("../../models/", $name, ".json.gz")))),*
        ];
    };
}

embedded_models!(
    "ecs",
    "ecr",
    "elbv2",
    "elb",
    "autoscaling",
    "application-autoscaling",
    "cloudwatch",
    "logs",
    "efs",
    "servicediscovery",
    "ec2",
    "sts",
    "iam",
    "ssm",
);

/// The model of a vendored service, parsed on first use. `name` is the botocore name ("ecs").
/// How model-shaped JSON carries a float that JSON numbers cannot: "NaN", "Infinity" and
/// "-Infinity", the strings of the awsJson and rpcv2 protocols (the query and CBOR decoders
/// produce them too).
pub fn non_finite_name(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

pub fn is_non_finite_name(s: &str) -> bool {
    matches!(s, "NaN" | "Infinity" | "-Infinity")
}

pub fn model(name: &str) -> Option<&'static ServiceModel> {
    static CELLS: [OnceLock<ServiceModel>; 14] = [const { OnceLock::new() }; 14];
    let idx = EMBEDDED.iter().position(|(n, _)| *n == name)?;
    Some(CELLS[idx].get_or_init(|| parse_embedded(EMBEDDED[idx].1)))
}

fn parse_embedded(gz: &[u8]) -> ServiceModel {
    let mut json = Vec::with_capacity(gz.len() * 10);
    // The embedded bytes were written by models/refresh.py and checked by the unit tests below;
    // a failure here is a build defect, not a request error.
    #[allow(clippy::expect_used)]
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut json)
        .expect("embedded model is valid gzip");
    #[allow(clippy::expect_used)]
    serde_json::from_slice(&json).expect("embedded model is a valid botocore model")
}

/// Names of every vendored model.
pub fn model_names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_model_parses_and_references_resolve() {
        for name in model_names() {
            let m = model(name).unwrap_or_else(|| panic!("{name} missing"));
            for op in m.operations.values() {
                if let Some(i) = &op.input {
                    assert!(m.shapes.contains_key(&i.shape), "{name} {}", op.name);
                }
                if let Some(o) = &op.output {
                    assert!(m.shapes.contains_key(&o.shape), "{name} {}", op.name);
                }
            }
            for (sname, s) in &m.shapes {
                for r in s
                    .members
                    .values()
                    .chain(s.member.iter())
                    .chain(s.key.iter())
                    .chain(s.value.iter())
                {
                    assert!(
                        m.shapes.contains_key(&r.shape),
                        "{name} {sname} -> {}",
                        r.shape
                    );
                }
            }
        }
    }
}
