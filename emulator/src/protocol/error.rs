//! The one error type that handlers return and codecs render.

use std::borrow::Cow;
use std::fmt;

/// An AWS error. `code` is the model's error shape name where the service models one
/// ("ClusterNotFoundException"), or the unmodelled code the service uses ("ValidationError").
/// The codec looks the shape up to find the wire code and HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub code: Cow<'static, str>,
    pub message: String,
    /// Overrides the status the model gives (or 400 when it gives none).
    pub status: Option<u16>,
    /// Extra members of the error structure (e.g. EFS's ErrorCode), keyed by model member name.
    pub fields: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl AwsError {
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        AwsError {
            code: code.into(),
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
            "NotImplemented",
            format!("The operation {service}:{operation} is not implemented by ecs-emulator yet"),
        )
        .with_status(501)
    }

    /// The body could not be decoded (malformed JSON, CBOR, XML or form data).
    pub fn serialization(message: impl Into<String>) -> Self {
        AwsError::new("SerializationException", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AwsError::new("InternalFailure", message).with_status(500)
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
