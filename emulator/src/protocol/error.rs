//! The one error type that handlers return and codecs render.

use super::codes::{self, Code};
use std::fmt;

/// An AWS error. `code` is the model's error shape name where the service models one
/// ("ClusterNotFoundException"), or the unmodelled code the service uses ("ValidationError"):
/// always one of `codes`' constants, so a misspelt code does not compile.
/// The codec looks the shape up to find the wire code and HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub code: Code,
    pub message: String,
    /// Overrides the status the model gives (or 400 when it gives none).
    pub status: Option<u16>,
    /// Extra members of the error structure (e.g. EFS's ErrorCode), keyed by model member name.
    pub fields: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

/// The one place a state-store failure becomes what a client sees: a full or failing disk is a
/// 503 ServiceUnavailable that says what to do (nothing of the change was kept), anything else an
/// InternalFailure that does not leak the database's words.
impl From<crate::store::StoreError> for AwsError {
    fn from(e: crate::store::StoreError) -> AwsError {
        if e.is_disk() {
            AwsError::service_unavailable(format!(
                "The change was not made: the emulator's data dir refuses writes ({}). \
                 Free space there; writes resume without a restart.",
                e.reason()
            ))
        } else {
            AwsError::internal("The change could not be saved durably")
        }
    }
}

impl AwsError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        AwsError {
            code,
            message: message.into(),
            status: None,
            fields: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// An operation the model defines but the emulator does not implement yet.
    pub fn not_implemented(service: &str, operation: &str) -> Self {
        AwsError::new(
            codes::common::NotImplemented,
            format!("The operation {service}:{operation} is not implemented by ecs-emulator yet"),
        )
        .with_status(501)
    }

    /// The body could not be decoded (malformed JSON, CBOR, XML or form data).
    pub fn serialization(message: impl Into<String>) -> Self {
        AwsError::new(codes::common::SerializationException, message)
    }

    /// The server cannot take the request now (the data dir is full): 503, retryable, as AWS
    /// services answer a server-side capacity problem.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        AwsError::new(codes::common::ServiceUnavailable, message).with_status(503)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AwsError::new(codes::common::InternalFailure, message).with_status(500)
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

/// How a codec renders an error: resolved against the service model.
#[derive(Debug)]
pub struct ResolvedError<'a> {
    /// The shape name (JSON `__type`, rest-json x-amzn-errortype).
    pub shape_name: &'a str,
    /// The query code (XML `<Code>`, x-amzn-query-error).
    pub query_code: &'a str,
    pub status: u16,
    pub sender_fault: bool,
    pub message: &'a str,
}

impl AwsError {
    pub fn resolve<'a>(
        &'a self,
        model: Option<&'a super::model::ServiceModel>,
    ) -> ResolvedError<'a> {
        let shape = model.and_then(|m| m.error_shape(&self.code));
        let info = shape.and_then(|s| s.error.as_ref());
        let query_code = info.and_then(|i| i.code.as_deref()).unwrap_or(&self.code);
        let status = self
            .status
            .or_else(|| info.and_then(|i| i.http_status_code))
            .unwrap_or(400);
        ResolvedError {
            shape_name: &self.code,
            query_code,
            status,
            sender_fault: status < 500,
            message: &self.message,
        }
    }
}
