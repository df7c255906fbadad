//! rest-json (EFS): the operation is found from the method and the URI template; members travel
//! in the path, the query string, headers and a JSON body.

use super::error::AwsError;
use super::model::{Operation, ServiceModel, ShapeType};
use super::query::scalar;
use crate::protocol::codes::Code;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use std::collections::HashMap;

#[derive(Debug)]
enum Segment {
    Literal(String),
    Label(String),
    Greedy(String),
}

#[derive(Debug)]
pub struct Route {
    pub operation: String,
    method: String,
    segments: Vec<Segment>,
}

/// The routes of a rest-json model, most specific first.
pub fn routes(model: &ServiceModel) -> Vec<Route> {
    let mut routes: Vec<Route> = model
        .operations
        .values()
        .map(|op: &Operation| {
            let path = op.http.request_uri.split('?').next().unwrap_or("");
            let segments = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if let Some(name) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        match name.strip_suffix('+') {
                            Some(g) => Segment::Greedy(g.to_string()),
                            None => Segment::Label(name.to_string()),
                        }
                    } else {
                        Segment::Literal(s.to_string())
                    }
                })
                .collect();
            Route {
                operation: op.name.clone(),
                method: op.http.method.clone(),
                segments,
            }
        })
        .collect();
    let literals = |r: &Route| {
        r.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    };
    routes.sort_by(|a, b| {
        literals(b)
            .cmp(&literals(a))
            .then(b.segments.len().cmp(&a.segments.len()))
    });
    routes
}

/// Finds the operation for a request; returns its name and the URI labels.
pub fn match_route<'a>(
    routes: &'a [Route],
    method: &str,
    path: &str,
) -> Option<(&'a str, HashMap<String, String>)> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    'routes: for r in routes {
        if !r.method.eq_ignore_ascii_case(method) {
            continue;
        }
        let mut labels = HashMap::new();
        let mut i = 0;
        for seg in &r.segments {
            match seg {
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        continue 'routes;
                    }
                    i += 1;
                }
                Segment::Label(name) => {
                    let Some(p) = parts.get(i) else {
                        continue 'routes;
                    };
                    labels.insert(
                        name.clone(),
                        percent_decode_str(p).decode_utf8_lossy().into_owned(),
                    );
                    i += 1;
                }
                Segment::Greedy(name) => {
                    if i >= parts.len() {
                        continue 'routes;
                    }
                    let rest = parts[i..].join("/");
                    labels.insert(
                        name.clone(),
                        percent_decode_str(&rest).decode_utf8_lossy().into_owned(),
                    );
                    i = parts.len();
                }
            }
        }
        if i == parts.len() {
            return Some((&r.operation, labels));
        }
    }
    None
}

/// Builds the input structure from labels, query string, headers and body.
pub fn decode(
    model: &ServiceModel,
    shape_name: &str,
    labels: &HashMap<String, String>,
    query: &[(String, String)],
    headers: &http::HeaderMap,
    body: &[u8],
    invalid_code: Code,
) -> Result<Value, AwsError> {
    let shape = model
        .shape(shape_name)
        .ok_or_else(|| AwsError::internal("unknown input shape"))?;
    let mut out = if let Some(payload) = &shape.payload {
        let mut m = Map::new();
        if !body.is_empty() {
            m.insert(payload.clone(), super::json::decode(body)?);
        }
        m
    } else {
        match super::json::decode(body)? {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    };
    for (name, member) in &shape.members {
        let Some(location) = member.location.as_deref() else {
            continue;
        };
        out.remove(name);
        let key = member.location_name.as_deref().unwrap_or(name);
        let member_shape = model
            .shape(&member.shape)
            .ok_or_else(|| AwsError::internal("unknown member shape"))?;
        match location {
            "uri" => {
                if let Some(v) = labels.get(key) {
                    out.insert(name.clone(), scalar(member_shape, v, invalid_code)?);
                }
            }
            "querystring" => {
                let values: Vec<&str> = query
                    .iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
                    .collect();
                if member_shape.kind == ShapeType::List {
                    if !values.is_empty() {
                        let item = member_shape
                            .member
                            .as_ref()
                            .and_then(|m| model.shape(&m.shape));
                        let mut items = Vec::new();
                        for v in values {
                            items.push(match item {
                                Some(s) => scalar(s, v, invalid_code)?,
                                None => Value::String(v.to_string()),
                            });
                        }
                        out.insert(name.clone(), Value::Array(items));
                    }
                } else if let Some(v) = values.first() {
                    out.insert(name.clone(), scalar(member_shape, v, invalid_code)?);
                }
            }
            "header" => {
                if let Some(v) = headers.get(key).and_then(|v| v.to_str().ok()) {
                    out.insert(name.clone(), scalar(member_shape, v, invalid_code)?);
                }
            }
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

/// Splits an output structure into headers and a JSON body.
pub fn encode_output(
    model: &ServiceModel,
    shape_name: Option<&str>,
    value: &Value,
) -> (Vec<(String, String)>, Vec<u8>) {
    let mut headers = Vec::new();
    let Some(shape) = shape_name.and_then(|n| model.shape(n)) else {
        return (headers, b"{}".to_vec());
    };
    let mut body = value.as_object().cloned().unwrap_or_default();
    for (name, member) in &shape.members {
        if member.location.as_deref() == Some("header") {
            if let Some(v) = body.remove(name) {
                let key = member.location_name.clone().unwrap_or_else(|| name.clone());
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                headers.push((key, text));
            }
        }
    }
    if let Some(payload) = &shape.payload {
        let v = body.remove(payload).unwrap_or(Value::Null);
        return (headers, serde_json::to_vec(&v).unwrap_or_default());
    }
    (
        headers,
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::model::model;

    #[test]
    fn efs_routes_match_labels_and_decode_inputs() {
        let m = model("efs").expect("model");
        let routes = routes(m);
        let (op, labels) = match_route(&routes, "GET", "/2015-02-01/file-systems").expect("route");
        assert_eq!(op, "DescribeFileSystems");
        assert!(labels.is_empty());
        let (op, labels) =
            match_route(&routes, "GET", "/2015-02-01/file-systems/fs-1/policy").expect("route");
        assert_eq!(op, "DescribeFileSystemPolicy");
        assert_eq!(labels["FileSystemId"], "fs-1");
        let (op, _) = match_route(&routes, "POST", "/2015-02-01/file-systems").expect("route");
        assert_eq!(op, "CreateFileSystem");
        let (op, labels) =
            match_route(&routes, "DELETE", "/2015-02-01/file-systems/fs-123").expect("route");
        assert_eq!(op, "DeleteFileSystem");
        assert_eq!(labels["FileSystemId"], "fs-123");
        assert!(match_route(&routes, "GET", "/nowhere").is_none());

        let q = vec![("MaxItems".to_string(), "5".to_string())];
        let v = decode(
            m,
            "DescribeFileSystemsRequest",
            &HashMap::new(),
            &q,
            &http::HeaderMap::new(),
            b"",
            crate::protocol::codes::efs::BadRequest,
        )
        .expect("decode");
        assert_eq!(v, serde_json::json!({"MaxItems": 5}));
        let q = vec![("MaxItems".to_string(), "five".to_string())];
        let err = decode(
            m,
            "DescribeFileSystemsRequest",
            &HashMap::new(),
            &q,
            &http::HeaderMap::new(),
            b"",
            crate::protocol::codes::efs::BadRequest,
        )
        .unwrap_err();
        assert_eq!(err.code, "BadRequest");
    }
}
