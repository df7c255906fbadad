//! The generic, model-driven protocol layer: finds the service and operation of an HTTP request,
//! decodes its input into model-shaped JSON, validates it, and renders outputs and errors in the
//! request's wire protocol. Handlers never see HTTP, XML or CBOR.

pub mod catalog;
pub mod cbor;
pub mod codes;
pub mod error;
pub mod json;
pub mod model;
pub mod query;
pub mod restjson;
pub mod sigv4;
pub mod timestamp;
pub mod validate;

use catalog::{Protocol, ServiceInfo};
pub use error::AwsError;
use model::{Operation, ServiceModel};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

/// An HTTP request as the protocol layer sees it.
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    /// The body with any Content-Encoding undone.
    pub body: &'a [u8],
    /// The signing name from the SigV4 scope, when signed.
    pub signing_name: Option<&'a str>,
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Where a request was routed: enough to render any answer in its protocol.
#[derive(Debug, Clone, Copy)]
pub struct Wire {
    pub service: Option<&'static ServiceInfo>,
    pub protocol: Protocol,
    pub operation: Option<&'static Operation>,
}

impl Wire {
    fn model(&self) -> Option<&'static ServiceModel> {
        self.service.and_then(|s| model::model(s.name))
    }
}

/// A decoded call, ready for validation and a handler.
#[derive(Debug)]
pub struct Call {
    pub service: &'static ServiceInfo,
    pub operation: &'static Operation,
    pub protocol: Protocol,
    pub input: Value,
    pub wire: Wire,
}

fn unknown(
    protocol: Protocol,
    service: Option<&'static ServiceInfo>,
    err: AwsError,
) -> Box<(Wire, AwsError)> {
    Box::new((
        Wire {
            service,
            protocol,
            operation: None,
        },
        err,
    ))
}

fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Identifies and decodes a request. On failure, returns how to render the error.
pub fn parse(req: &HttpRequest<'_>) -> Result<Call, Box<(Wire, AwsError)>> {
    // 1. Smithy RPC v2 CBOR: /service/<ServiceShape>/operation/<Op>.
    if header(req.headers, "smithy-protocol") == Some("rpc-v2-cbor") {
        let mut parts = req.path.trim_start_matches('/').split('/');
        let (svc, op) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("service"), Some(svc), Some("operation"), Some(op)) => (svc, op),
            _ => {
                return Err(unknown(
                    Protocol::Cbor,
                    None,
                    unknown_operation("Expected /service/<service>/operation/<operation>"),
                ))
            }
        };
        return rpc_call(Protocol::Cbor, svc, op, &format!("{svc}.{op}"), || {
            cbor::decode(req.body)
        });
    }
    // 2. awsJson: X-Amz-Target: <prefix>.<Op>.
    if let Some(target) = header(req.headers, "x-amz-target") {
        let (prefix, op) = target.rsplit_once('.').unwrap_or((target, ""));
        return rpc_call(Protocol::Json, prefix, op, target, || {
            json::decode(req.body)
        });
    }
    // 3. query / ec2: Action and Version in the form body or the query string.
    let query_pairs: Vec<(String, String)> =
        form_urlencoded::parse(req.query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let has_action = query_pairs.iter().any(|(k, _)| k == "Action");
    if is_form(req.headers) || has_action {
        // The query string first, the body after it: a parameter in both (Action above all) is
        // the body's, as the signed body is what the caller meant; a query string never
        // overrides it.
        let mut form_bytes = req.query.unwrap_or("").as_bytes().to_vec();
        if !req.body.is_empty() {
            if !form_bytes.is_empty() {
                form_bytes.push(b'&');
            }
            form_bytes.extend_from_slice(req.body);
        }
        let form = query::FormTree::parse(&form_bytes);
        let version = form.get("Version").unwrap_or("");
        let service = catalog::by_query_version(version)
            .or_else(|| {
                // Without a Version, the signing name may still tell (when it names one service).
                let mut candidates = catalog::by_signing_name(req.signing_name.unwrap_or(""))
                    .filter(|s| {
                        s.protocols
                            .iter()
                            .any(|p| matches!(p, Protocol::Query | Protocol::Ec2))
                    });
                match (candidates.next(), candidates.next()) {
                    (Some(s), None) => Some(s),
                    _ => None,
                }
            })
            .ok_or_else(|| {
                unknown(
                    Protocol::Query,
                    None,
                    AwsError::new(
                        codes::common::InvalidAction,
                        format!("Could not find a service for Version '{version}'"),
                    ),
                )
            })?;
        let protocol = if service.protocols.contains(&Protocol::Ec2) {
            Protocol::Ec2
        } else {
            Protocol::Query
        };
        let Some(action) = form.get("Action") else {
            return Err(unknown(
                protocol,
                Some(service),
                AwsError::new(
                    codes::common::MissingAction,
                    "The request must contain the parameter Action",
                ),
            ));
        };
        let operation = find_op(service, action).ok_or_else(|| {
            unknown(
                protocol,
                Some(service),
                AwsError::new(
                    codes::common::InvalidAction,
                    format!("The action {action} is not valid for this web service."),
                ),
            )
        })?;
        let wire = Wire {
            service: Some(service),
            protocol,
            operation: Some(operation),
        };
        let model = wire
            .model()
            .ok_or_else(|| Box::new((wire, AwsError::internal("model missing"))))?;
        let input = match &operation.input {
            Some(i) => query::decode(
                model,
                &i.shape,
                &form,
                protocol == Protocol::Ec2,
                service.bad_input.invalid,
            )
            .map_err(|e| Box::new((wire, e)))?,
            None => Value::Object(Default::default()),
        };
        return Ok(Call {
            service,
            operation,
            protocol,
            input,
            wire,
        });
    }
    // 4. rest-json: the method and the URI template.
    for service in catalog::SERVICES
        .iter()
        .filter(|s| s.protocols.contains(&Protocol::RestJson))
    {
        if req.signing_name.is_some_and(|n| n != service.signing_name) {
            continue;
        }
        let Some((model, routes)) = rest_routes(service) else {
            continue;
        };
        let Some((op_name, labels)) = restjson::match_route(routes, req.method, req.path) else {
            continue;
        };
        let Some(operation) = model.operations.get(op_name) else {
            continue;
        };
        let wire = Wire {
            service: Some(service),
            protocol: Protocol::RestJson,
            operation: Some(operation),
        };
        let input = match &operation.input {
            Some(i) => restjson::decode(
                model,
                &i.shape,
                &labels,
                &query_pairs,
                req.headers,
                req.body,
                service.bad_input.invalid,
            )
            .map_err(|e| Box::new((wire, e)))?,
            None => Value::Object(Default::default()),
        };
        return Ok(Call {
            service,
            operation,
            protocol: Protocol::RestJson,
            input,
            wire,
        });
    }
    let protocol = if req
        .signing_name
        .and_then(|n| catalog::by_signing_name(n).next())
        .is_some_and(|s| s.protocols[0] == Protocol::RestJson)
    {
        Protocol::RestJson
    } else {
        Protocol::Json
    };
    Err(unknown(
        protocol,
        None,
        unknown_operation(&format!(
            "No AWS operation matches {} {}",
            req.method, req.path
        )),
    ))
}

/// An RPC-style call (awsJson or CBOR): the service by its target prefix, then the operation,
/// then the body.
fn rpc_call(
    protocol: Protocol,
    prefix: &str,
    op: &str,
    target: &str,
    decode: impl FnOnce() -> Result<Value, AwsError>,
) -> Result<Call, Box<(Wire, AwsError)>> {
    let service = catalog::by_target_prefix(prefix)
        .filter(|s| s.protocols.contains(&protocol))
        .ok_or_else(|| {
            unknown(
                protocol,
                None,
                unknown_operation(&format!("Unknown target {target}")),
            )
        })?;
    let operation = find_op(service, op).ok_or_else(|| {
        unknown(
            protocol,
            Some(service),
            unknown_operation(&format!("Unknown operation {target}")),
        )
    })?;
    let wire = Wire {
        service: Some(service),
        protocol,
        operation: Some(operation),
    };
    let input = decode().map_err(|e| Box::new((wire, e)))?;
    Ok(Call {
        service,
        operation,
        protocol,
        input,
        wire,
    })
}

fn unknown_operation(msg: &str) -> AwsError {
    AwsError::new(codes::common::UnknownOperationException, msg.to_string())
}

fn find_op(service: &ServiceInfo, name: &str) -> Option<&'static Operation> {
    model::model(service.name)?.operations.get(name)
}

fn rest_routes(
    service: &ServiceInfo,
) -> Option<(&'static ServiceModel, &'static [restjson::Route])> {
    static ROUTES: OnceLock<HashMap<&'static str, Vec<restjson::Route>>> = OnceLock::new();
    let all = ROUTES.get_or_init(|| {
        catalog::SERVICES
            .iter()
            .filter(|s| s.protocols.contains(&Protocol::RestJson))
            .filter_map(|s| Some((s.name, restjson::routes(model::model(s.name)?))))
            .collect()
    });
    Some((
        model::model(service.name)?,
        all.get(service.name)?.as_slice(),
    ))
}

/// Validates a call's input against its model.
pub fn validate(call: &Call) -> Result<(), AwsError> {
    let (Some(model), Some(input)) = (model::model(call.service.name), &call.operation.input)
    else {
        return Ok(());
    };
    validate::validate(model, call.service, &input.shape, &call.input)
}

fn request_id_header(request_id: &str) -> (String, String) {
    ("x-amzn-RequestId".to_string(), request_id.to_string())
}

/// Renders a handler's output.
pub fn render_output(wire: &Wire, value: &Value, request_id: &str) -> HttpResponse {
    let model = wire.model();
    let op = wire.operation;
    let output_shape = op.and_then(|o| o.output.as_ref()).map(|o| o.shape.as_str());
    let mut headers = vec![request_id_header(request_id)];
    match (wire.protocol, model, wire.service) {
        (Protocol::Json, _, Some(svc)) => {
            headers.push((
                "Content-Type".into(),
                format!("application/x-amz-json-{}", svc.json_version),
            ));
            let body = if output_shape.is_some() {
                serde_json::to_vec(value).unwrap_or_default()
            } else {
                b"{}".to_vec()
            };
            HttpResponse {
                status: 200,
                headers,
                body,
            }
        }
        (Protocol::Cbor, Some(model), _) => {
            headers.push(("Content-Type".into(), "application/cbor".into()));
            headers.push(("smithy-protocol".into(), "rpc-v2-cbor".into()));
            let empty = Value::Object(Default::default());
            let body = cbor::encode(
                model,
                output_shape,
                if output_shape.is_some() {
                    value
                } else {
                    &empty
                },
            );
            HttpResponse {
                status: 200,
                headers,
                body,
            }
        }
        (Protocol::Query | Protocol::Ec2, Some(model), Some(svc)) => {
            headers.push(("Content-Type".into(), "text/xml".into()));
            let op_name = op.map(|o| o.name.as_str()).unwrap_or("Unknown");
            let wrapper = op
                .and_then(|o| o.output.as_ref())
                .and_then(|o| o.result_wrapper.as_deref());
            let xml = query::encode_output(
                model,
                op_name,
                svc.xml_namespace,
                wrapper,
                output_shape,
                value,
                request_id,
                wire.protocol == Protocol::Ec2,
            );
            HttpResponse {
                status: 200,
                headers,
                body: xml.into_bytes(),
            }
        }
        (Protocol::RestJson, Some(model), _) => {
            headers.push(("Content-Type".into(), "application/json".into()));
            let (extra, body) = restjson::encode_output(model, output_shape, value);
            headers.extend(extra);
            let status = op.and_then(|o| o.http.response_code).unwrap_or(200);
            HttpResponse {
                status,
                headers,
                body,
            }
        }
        _ => render_error(
            wire,
            &AwsError::internal("no model for the response"),
            request_id,
        ),
    }
}

/// Renders an error in the request's protocol.
pub fn render_error(wire: &Wire, err: &AwsError, request_id: &str) -> HttpResponse {
    let model = wire.model();
    let resolved = err.resolve(model);
    let mut headers = vec![request_id_header(request_id)];
    let query_error = || {
        (
            "x-amzn-query-error".to_string(),
            format!(
                "{};{}",
                resolved.query_code,
                if resolved.sender_fault {
                    "Sender"
                } else {
                    "Receiver"
                }
            ),
        )
    };
    let query_compatible = wire.service.is_some_and(|s| s.query_compatible);
    let body = match wire.protocol {
        Protocol::Json => {
            let version = wire.service.map(|s| s.json_version).unwrap_or("1.1");
            headers.push((
                "Content-Type".into(),
                format!("application/x-amz-json-{version}"),
            ));
            headers.push(("X-Amzn-ErrorType".into(), resolved.shape_name.to_string()));
            if query_compatible {
                headers.push(query_error());
            }
            serde_json::to_vec(&json::error_body(err, &resolved, model)).unwrap_or_default()
        }
        Protocol::Cbor => {
            headers.push(("Content-Type".into(), "application/cbor".into()));
            headers.push(("smithy-protocol".into(), "rpc-v2-cbor".into()));
            if query_compatible {
                headers.push(query_error());
            }
            let body = json::error_body(err, &resolved, model);
            match model {
                Some(m) => cbor::encode(m, None, &body),
                None => cbor::encode_value(&ciborium::value::Value::Map(vec![
                    (
                        ciborium::value::Value::Text("__type".into()),
                        ciborium::value::Value::Text(resolved.shape_name.to_string()),
                    ),
                    (
                        ciborium::value::Value::Text("message".into()),
                        ciborium::value::Value::Text(err.message.clone()),
                    ),
                ])),
            }
        }
        Protocol::Query => {
            headers.push(("Content-Type".into(), "text/xml".into()));
            let ns = wire.service.map(|s| s.xml_namespace).unwrap_or("");
            query::encode_error(&resolved, ns, request_id).into_bytes()
        }
        Protocol::Ec2 => {
            headers.push(("Content-Type".into(), "text/xml".into()));
            query::encode_ec2_error(&resolved, request_id).into_bytes()
        }
        Protocol::RestJson => {
            headers.push(("Content-Type".into(), "application/json".into()));
            headers.push(("x-amzn-errortype".into(), resolved.shape_name.to_string()));
            let mut body = json::error_body(err, &resolved, model);
            if let Some(obj) = body.as_object_mut() {
                obj.remove("__type");
                let has_code = model
                    .and_then(|m| m.error_shape(&err.code))
                    .is_some_and(|s| s.members.contains_key("ErrorCode"));
                if has_code {
                    obj.insert(
                        "ErrorCode".into(),
                        Value::String(resolved.shape_name.to_string()),
                    );
                }
            }
            serde_json::to_vec(&body).unwrap_or_default()
        }
    };
    HttpResponse {
        status: resolved.status,
        headers,
        body,
    }
}
