//! The awsQuery and ec2 protocols: form-encoded requests, XML responses.

use super::error::{AwsError, ResolvedError};
use super::model::{ServiceModel, Shape, ShapeRef, ShapeType};
use super::timestamp;
use crate::protocol::codes::Code;
use base64::Engine;
use quick_xml::escape::escape;
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The form keys split on '.', as a tree: `Filter.1.Value.2=x` → Filter → 1 → Value → 2 = x.
#[derive(Debug, Default)]
pub struct FormTree {
    pub value: Option<String>,
    pub children: BTreeMap<String, FormTree>,
}

/// The most '.'-separated segments a form key may have.
const MAX_KEY_DEPTH: usize = 32;

impl FormTree {
    pub fn parse(body: &[u8]) -> FormTree {
        let mut root = FormTree::default();
        for (k, v) in form_urlencoded::parse(body) {
            // No AWS shape nests anywhere near this deep; deeper keys name nothing and are
            // ignored like any unknown parameter (and cannot make the tree, whose drop recurses,
            // as deep as an attacker likes).
            if k.split('.').count() > MAX_KEY_DEPTH {
                continue;
            }
            let mut node = &mut root;
            for part in k.split('.') {
                node = node.children.entry(part.to_string()).or_default();
            }
            node.value = Some(v.into_owned());
        }
        root
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.children.get(key).and_then(|n| n.value.as_deref())
    }

    /// Children with numeric keys, in numeric order (1, 2, …, 10).
    fn numbered(&self) -> Vec<&FormTree> {
        let mut items: Vec<(u64, &FormTree)> = self
            .children
            .iter()
            .filter_map(|(k, v)| k.parse::<u64>().ok().map(|n| (n, v)))
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The request key of a structure member.
fn input_key(member: &ShapeRef, name: &str, ec2: bool) -> String {
    if ec2 {
        if let Some(q) = &member.query_name {
            return q.clone();
        }
        if let Some(l) = &member.location_name {
            return capitalize(l);
        }
        return name.to_string();
    }
    member
        .location_name
        .clone()
        .unwrap_or_else(|| name.to_string())
}

/// Decodes a form request into model-shaped JSON (member names as keys).
pub fn decode(
    model: &ServiceModel,
    shape_name: &str,
    form: &FormTree,
    ec2: bool,
    invalid_code: Code,
) -> Result<Value, AwsError> {
    let d = Decoder {
        model,
        ec2,
        invalid_code,
    };
    d.structure(shape_name, form)
}

struct Decoder<'a> {
    model: &'a ServiceModel,
    ec2: bool,
    invalid_code: Code,
}

impl Decoder<'_> {
    fn shape(&self, name: &str) -> Result<&Shape, AwsError> {
        self.model
            .shape(name)
            .ok_or_else(|| AwsError::internal(format!("unknown shape {name}")))
    }

    fn structure(&self, shape_name: &str, node: &FormTree) -> Result<Value, AwsError> {
        let shape = self.shape(shape_name)?;
        let mut out = Map::new();
        for (name, member) in &shape.members {
            if let Some(child) = node.children.get(&input_key(member, name, self.ec2)) {
                out.insert(name.clone(), self.value(member, child)?);
            }
        }
        Ok(Value::Object(out))
    }

    fn value(&self, r: &ShapeRef, node: &FormTree) -> Result<Value, AwsError> {
        let shape = self.shape(&r.shape)?;
        match shape.kind {
            ShapeType::Structure => self.structure(&r.shape, node),
            ShapeType::List => {
                // `X=` with no members is the empty list.
                if node.children.is_empty() {
                    return Ok(Value::Array(Vec::new()));
                }
                let member = shape
                    .member
                    .as_ref()
                    .ok_or_else(|| AwsError::internal("list without member"))?;
                let flattened = self.ec2 || shape.flattened || r.flattened;
                let holder = if flattened {
                    Some(node)
                } else {
                    node.children
                        .get(member.location_name.as_deref().unwrap_or("member"))
                };
                let mut items = Vec::new();
                if let Some(holder) = holder {
                    for item in holder.numbered() {
                        items.push(self.value(member, item)?);
                    }
                }
                Ok(Value::Array(items))
            }
            ShapeType::Map => {
                let (Some(k), Some(v)) = (&shape.key, &shape.value) else {
                    return Err(AwsError::internal("map without key or value"));
                };
                let flattened = shape.flattened || r.flattened;
                let holder = if flattened {
                    Some(node)
                } else {
                    node.children.get("entry")
                };
                let kname = k.location_name.as_deref().unwrap_or("key");
                let vname = v.location_name.as_deref().unwrap_or("value");
                let mut out = Map::new();
                if let Some(holder) = holder {
                    for entry in holder.numbered() {
                        if let (Some(key), Some(val)) =
                            (entry.get(kname), entry.children.get(vname))
                        {
                            out.insert(key.to_string(), self.value(v, val)?);
                        }
                    }
                }
                Ok(Value::Object(out))
            }
            _ => scalar(
                shape,
                node.value.as_deref().unwrap_or(""),
                self.invalid_code,
            ),
        }
    }
}

/// A scalar from its text form (query strings, form values, headers, URI labels).
pub fn scalar(shape: &Shape, text: &str, invalid_code: Code) -> Result<Value, AwsError> {
    let bad = || {
        AwsError::new(
            invalid_code,
            format!("Invalid value '{text}' for a {:?} parameter", shape.kind),
        )
    };
    Ok(match shape.kind {
        ShapeType::Integer | ShapeType::Long | ShapeType::Short | ShapeType::Byte => {
            Value::Number(text.trim().parse::<i64>().map_err(|_| bad())?.into())
        }
        ShapeType::Float | ShapeType::Double | ShapeType::Bigdecimal | ShapeType::Biginteger => {
            let f: f64 = text.trim().parse().map_err(|_| bad())?;
            match Number::from_f64(f) {
                Some(n) => Value::Number(n),
                // NaN and the infinities as the JSON protocols carry them.
                None => Value::String(super::model::non_finite_name(f).to_string()),
            }
        }
        ShapeType::Boolean => match text.trim() {
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            _ => return Err(bad()),
        },
        ShapeType::Timestamp => {
            let t = timestamp::parse(text).ok_or_else(bad)?;
            Value::Number(Number::from_f64(t).ok_or_else(bad)?)
        }
        _ => Value::String(text.to_string()),
    })
}

/// Serializes an operation's output. Query: `<OpResponse><OpResult>…</OpResult><ResponseMetadata>`;
/// ec2: `<OpResponse><requestId/>…</OpResponse>`.
#[allow(clippy::too_many_arguments)]
pub fn encode_output(
    model: &ServiceModel,
    operation: &str,
    xmlns: &str,
    result_wrapper: Option<&str>,
    output_shape: Option<&str>,
    value: &Value,
    request_id: &str,
    ec2: bool,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = write!(out, "<{operation}Response xmlns=\"{xmlns}\">");
    let enc = Encoder { model, ec2 };
    if ec2 {
        let _ = write!(out, "<requestId>{}</requestId>", escape(request_id));
        if let Some(shape) = output_shape {
            enc.members(&mut out, shape, value);
        }
    } else {
        if let Some(shape) = output_shape {
            let wrapper = result_wrapper
                .map(str::to_string)
                .unwrap_or_else(|| format!("{operation}Result"));
            let _ = write!(out, "<{wrapper}>");
            enc.members(&mut out, shape, value);
            let _ = write!(out, "</{wrapper}>");
        }
        let _ = write!(
            out,
            "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>",
            escape(request_id)
        );
    }
    let _ = write!(out, "</{operation}Response>");
    out
}

struct Encoder<'a> {
    model: &'a ServiceModel,
    ec2: bool,
}

impl Encoder<'_> {
    fn members(&self, out: &mut String, shape_name: &str, value: &Value) {
        let (Some(shape), Some(obj)) = (self.model.shape(shape_name), value.as_object()) else {
            return;
        };
        for (name, member) in &shape.members {
            let Some(v) = obj.get(name) else { continue };
            if v.is_null() {
                continue;
            }
            let tag = member.location_name.as_deref().unwrap_or(name);
            let flattened = member.flattened
                || self
                    .model
                    .shape(&member.shape)
                    .is_some_and(|s| s.flattened && s.kind != ShapeType::Structure);
            if flattened {
                if let (Some(items), Some(list)) = (v.as_array(), self.model.shape(&member.shape)) {
                    if let Some(m) = &list.member {
                        let item_tag = m.location_name.as_deref().unwrap_or(tag);
                        for item in items {
                            self.element(out, item_tag, &m.shape, item);
                        }
                        continue;
                    }
                }
            }
            self.element(out, tag, &member.shape, v);
        }
    }

    fn element(&self, out: &mut String, tag: &str, shape_name: &str, value: &Value) {
        let Some(shape) = self.model.shape(shape_name) else {
            return;
        };
        let _ = write!(out, "<{tag}>");
        match shape.kind {
            ShapeType::Structure => self.members(out, shape_name, value),
            ShapeType::List => {
                if let (Some(items), Some(m)) = (value.as_array(), &shape.member) {
                    let default = if self.ec2 { "item" } else { "member" };
                    let item_tag = m.location_name.as_deref().unwrap_or(default);
                    for item in items {
                        self.element(out, item_tag, &m.shape, item);
                    }
                }
            }
            ShapeType::Map => {
                if let (Some(map), Some(k), Some(v)) = (value.as_object(), &shape.key, &shape.value)
                {
                    let ktag = k.location_name.as_deref().unwrap_or("key");
                    let vtag = v.location_name.as_deref().unwrap_or("value");
                    for (key, item) in map {
                        out.push_str("<entry>");
                        let _ = write!(out, "<{ktag}>{}</{ktag}>", escape(key.as_str()));
                        self.element(out, vtag, &v.shape, item);
                        out.push_str("</entry>");
                    }
                }
            }
            ShapeType::Timestamp => {
                if let Some(t) = value.as_f64() {
                    out.push_str(&timestamp::to_iso8601(t));
                }
            }
            ShapeType::Blob => {
                if let Some(s) = value.as_str() {
                    out.push_str(&escape(s));
                }
            }
            _ => match value {
                Value::String(s) => out.push_str(&escape(s.as_str())),
                Value::Number(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::Bool(b) => {
                    let _ = write!(out, "{b}");
                }
                _ => {}
            },
        }
        let _ = write!(out, "</{tag}>");
    }
}

/// Query error: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
pub fn encode_error(err: &ResolvedError<'_>, xmlns: &str, request_id: &str) -> String {
    let kind = if err.sender_fault {
        "Sender"
    } else {
        "Receiver"
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ErrorResponse xmlns=\"{xmlns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(err.query_code),
        escape(err.message),
        escape(request_id)
    )
}

/// ec2 error: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
pub fn encode_ec2_error(err: &ResolvedError<'_>, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        escape(err.query_code),
        escape(err.message),
        escape(request_id)
    )
}

/// Blob members travel base64-encoded in every text protocol; this checks one decodes.
pub fn is_base64(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codes;
    use crate::protocol::model::model;
    use serde_json::json;

    #[test]
    fn absurdly_deep_keys_are_ignored_not_a_stack_overflow() {
        let mut body = b"Action=DescribeVpcs&Version=2016-11-15&a".to_vec();
        for _ in 0..20_000 {
            body.extend_from_slice(b".a");
        }
        body.extend_from_slice(b"=1");
        let tree = FormTree::parse(&body);
        assert_eq!(tree.get("Action"), Some("DescribeVpcs"));
        assert!(!tree.children.contains_key("a"));
    }

    #[test]
    fn query_lists_maps_and_empty_lists_decode() {
        let m = model("elbv2").expect("model");
        let form = FormTree::parse(
            b"Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=a&Names.member.2=b&Names.member.10=j&PageSize=5",
        );
        let v = decode(
            m,
            "DescribeLoadBalancersInput",
            &form,
            false,
            codes::common::ValidationError,
        )
        .expect("decode");
        assert_eq!(v, json!({"Names": ["a", "b", "j"], "PageSize": 5}));

        let form = FormTree::parse(b"LoadBalancerArns=");
        let v = decode(
            m,
            "DescribeLoadBalancersInput",
            &form,
            false,
            codes::common::ValidationError,
        )
        .expect("decode");
        assert_eq!(v, json!({"LoadBalancerArns": []}));

        let form = FormTree::parse(b"PageSize=many");
        let err = decode(
            m,
            "DescribeLoadBalancersInput",
            &form,
            false,
            codes::common::ValidationError,
        )
        .unwrap_err();
        assert_eq!(err.code, "ValidationError");
    }

    #[test]
    fn ec2_flattened_lists_use_capitalised_location_names() {
        let m = model("ec2").expect("model");
        let form = FormTree::parse(
            b"VpcId.1=vpc-1&Filter.1.Name=is-default&Filter.1.Value.1=true&Filter.1.Value.2=false",
        );
        let v = decode(
            m,
            "DescribeVpcsRequest",
            &form,
            true,
            codes::common::InvalidParameterValue,
        )
        .expect("decode");
        assert_eq!(
            v,
            json!({"Filters": [{"Name": "is-default", "Values": ["true", "false"]}], "VpcIds": ["vpc-1"]})
        );
    }

    #[test]
    fn query_output_has_result_wrapper_first_and_lists_of_members() {
        let m = model("elbv2").expect("model");
        let value = json!({"LoadBalancers": [{"LoadBalancerName": "a&b", "CreatedTime": 0.0, "AvailabilityZones": []}], "NextMarker": "n"});
        let xml = encode_output(
            m,
            "DescribeLoadBalancers",
            "ns",
            Some("DescribeLoadBalancersResult"),
            Some("DescribeLoadBalancersOutput"),
            &value,
            "rid",
            false,
        );
        assert!(xml.contains("<DescribeLoadBalancersResponse xmlns=\"ns\"><DescribeLoadBalancersResult><LoadBalancers><member><CreatedTime>1970-01-01T00:00:00.000Z</CreatedTime><LoadBalancerName>a&amp;b</LoadBalancerName><AvailabilityZones></AvailabilityZones></member></LoadBalancers><NextMarker>n</NextMarker></DescribeLoadBalancersResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DescribeLoadBalancersResponse>"), "{xml}");
    }

    #[test]
    fn ec2_output_uses_location_names_and_items() {
        let m = model("ec2").expect("model");
        let value = json!({"Vpcs": [{"VpcId": "vpc-1", "IsDefault": true, "Tags": [{"Key": "k", "Value": "v"}]}]});
        let xml = encode_output(
            m,
            "DescribeVpcs",
            "ns",
            None,
            Some("DescribeVpcsResult"),
            &value,
            "rid",
            true,
        );
        assert!(
            xml.contains("<requestId>rid</requestId><vpcSet><item>"),
            "{xml}"
        );
        assert!(xml.contains("<vpcId>vpc-1</vpcId>"), "{xml}");
        assert!(xml.contains("<isDefault>true</isDefault>"), "{xml}");
        assert!(
            xml.contains("<tagSet><item><key>k</key><value>v</value></item></tagSet>"),
            "{xml}"
        );
    }
}
