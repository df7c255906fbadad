//! Launch templates: CreateLaunchTemplate, CreateLaunchTemplateVersion, DescribeLaunchTemplates,
//! DescribeLaunchTemplateVersions, ModifyLaunchTemplate, DeleteLaunchTemplate,
//! DeleteLaunchTemplateVersions, GetLaunchTemplateData, and what RunInstances (and EC2 Auto
//! Scaling) read from a template.
//!
//! A version's data is kept as given (the model's `RequestLaunchTemplateData`): its member names
//! are those of `ResponseLaunchTemplateData` and of RunInstances, so describing it is a copy and
//! launching from it is a merge ([`merge_into_run_input`]).

use super::filters::{
    dry_run, err, filter_all, invalid_value, paginate, parse_filters, tags_from_specs, tags_json,
    Filterable, Tags,
};
use super::instances::Instance;
use super::state::{new_id, scope, Row, State};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<State>) {
    r.sync("ec2", "CreateLaunchTemplate", s, create_launch_template);
    r.sync(
        "ec2",
        "CreateLaunchTemplateVersion",
        s,
        create_launch_template_version,
    );
    r.sync(
        "ec2",
        "DescribeLaunchTemplates",
        s,
        describe_launch_templates,
    );
    r.sync(
        "ec2",
        "DescribeLaunchTemplateVersions",
        s,
        describe_launch_template_versions,
    );
    r.sync("ec2", "ModifyLaunchTemplate", s, modify_launch_template);
    r.sync("ec2", "DeleteLaunchTemplate", s, delete_launch_template);
    r.sync(
        "ec2",
        "DeleteLaunchTemplateVersions",
        s,
        delete_launch_template_versions,
    );
    r.sync("ec2", "GetLaunchTemplateData", s, get_launch_template_data);
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LaunchTemplateVersion {
    pub number: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub create_time: f64,
    /// `RequestLaunchTemplateData` as given.
    pub data: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LaunchTemplate {
    pub id: String,
    pub name: String,
    pub create_time: f64,
    pub created_by: String,
    pub default_version: i64,
    pub latest_version: i64,
    #[serde(default)]
    pub tags: Tags,
    /// Versions that were not deleted, by number.
    pub versions: BTreeMap<i64, LaunchTemplateVersion>,
    #[serde(default)]
    pub client_token: Option<String>,
}

/// The template and version an instance was launched from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LaunchTemplateRef {
    pub id: String,
    pub name: String,
    pub version: i64,
}

pub fn lt_key(account: &str, region: &str, id: &str) -> String {
    format!("{account}/{region}/lt/{id}")
}

impl LaunchTemplate {
    pub fn to_json(&self) -> Value {
        json!({
            "LaunchTemplateId": self.id,
            "LaunchTemplateName": self.name,
            "CreateTime": self.create_time.floor(),
            "CreatedBy": self.created_by,
            "DefaultVersionNumber": self.default_version,
            "LatestVersionNumber": self.latest_version,
            "Tags": tags_json(&self.tags),
        })
    }

    fn version_json(&self, v: &LaunchTemplateVersion) -> Value {
        let mut out = json!({
            "LaunchTemplateId": self.id,
            "LaunchTemplateName": self.name,
            "VersionNumber": v.number,
            "CreateTime": v.create_time.floor(),
            "CreatedBy": self.created_by,
            "DefaultVersion": v.number == self.default_version,
            "LaunchTemplateData": v.data,
        });
        if let Some(d) = &v.description {
            out["VersionDescription"] = json!(d);
        }
        out
    }

    /// Resolves "$Latest", "$Default", a number or none (the default) to a stored version.
    pub fn version(&self, spec: Option<&str>) -> Result<&LaunchTemplateVersion, AwsError> {
        let number = match spec.map(str::trim).filter(|s| !s.is_empty()) {
            None | Some("$Default") => self.default_version,
            Some("$Latest") => self.latest_version,
            Some(n) => n.parse::<i64>().map_err(|_| {
                err(codes::ec2::InvalidLaunchTemplateId_VersionNotFound,
                    format!(
                        "The specified launch template version is not valid: {n}. Valid values: $Latest, $Default, or a version number."
                    ),
                )
            })?,
        };
        self.versions
            .get(&number)
            .ok_or_else(|| version_not_found(&self.id, number))
    }
}

fn version_not_found(id: &str, number: i64) -> AwsError {
    err(
        codes::ec2::InvalidLaunchTemplateId_VersionNotFound,
        format!("Could not find launch template version {number} for launch template {id}."),
    )
}

impl Filterable for LaunchTemplate {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let one = |s: String| Some(vec![s]);
        match name {
            "launch-template-name" => one(self.name.clone()),
            "launch-template-id" => one(self.id.clone()),
            "create-time" => one(iso(self.create_time)),
            _ => None,
        }
    }
    fn tag_map(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

pub(super) fn iso(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S.000Z").to_string())
        .unwrap_or_default()
}

/// Version rows for DescribeLaunchTemplateVersions filters.
struct VersionRow<'a>(&'a LaunchTemplate, &'a LaunchTemplateVersion);

impl Filterable for VersionRow<'_> {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let d = &self.1.data;
        let s = |k: &str| Some(d.str(k).map(|v| vec![v.to_string()]).unwrap_or_default());
        match name {
            "image-id" => s("ImageId"),
            "instance-type" => s("InstanceType"),
            "kernel-id" => s("KernelId"),
            "ram-disk-id" => s("RamDiskId"),
            "is-default-version" => {
                Some(vec![(self.1.number == self.0.default_version).to_string()])
            }
            "create-time" => Some(vec![iso(self.1.create_time)]),
            "iam-instance-profile" => Some(
                d.get("IamInstanceProfile")
                    .into_iter()
                    .flat_map(|p| [p.str("Arn"), p.str("Name")])
                    .flatten()
                    .map(str::to_string)
                    .collect(),
            ),
            "disable-api-termination" => Some(vec![d
                .bool("DisableApiTermination")
                .unwrap_or(false)
                .to_string()]),
            "ebs-optimized" => Some(vec![d.bool("EbsOptimized").unwrap_or(false).to_string()]),
            _ => None,
        }
    }
}

impl State {
    pub fn launch_templates(&self, account: &str, region: &str) -> Vec<LaunchTemplate> {
        let prefix = format!("{}lt/", scope(account, region));
        self.rows.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, r)| match r {
                    Row::LaunchTemplate(t) => Some((**t).clone()),
                    _ => None,
                })
                .collect()
        })
    }

    /// A template by id or by name (exactly one of them), with EC2's errors.
    pub fn find_launch_template(
        &self,
        account: &str,
        region: &str,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<LaunchTemplate, AwsError> {
        let id = id.filter(|s| !s.is_empty());
        let name = name.filter(|s| !s.is_empty());
        match (id, name) {
            (Some(_), Some(_)) => Err(err(codes::common::InvalidParameterCombination,
                "Both a launch template ID and a launch template name were specified. Specify only one.",
            )),
            (None, None) => Err(err(codes::ec2::MissingParameter,
                "The request must contain the parameter launchTemplateName or launchTemplateId",
            )),
            (Some(id), None) => {
                if !valid_id(id) {
                    return Err(err(codes::ec2::InvalidLaunchTemplateId_Malformed,
                        format!(
                            "The specified ID for the launch template ({id}) is not valid. The ID must be in the form lt-xxxxxxxxxxxxxxxxx."
                        ),
                    ));
                }
                match self.rows.get(&lt_key(account, region, id)) {
                    Some(Row::LaunchTemplate(t)) => Ok(*t),
                    _ => Err(err(codes::ec2::InvalidLaunchTemplateId_NotFound,
                        format!("The specified launch template, with template ID {id}, does not exist."),
                    )),
                }
            }
            (None, Some(name)) => self
                .launch_templates(account, region)
                .into_iter()
                .find(|t| t.name == name)
                .ok_or_else(|| {
                    err(codes::ec2::InvalidLaunchTemplateName_NotFoundException,
                        format!(
                            "The specified launch template, with template name {name}, does not exist."
                        ),
                    )
                }),
        }
    }

    /// The data of a template version (`LaunchTemplateSpecification` members: LaunchTemplateId
    /// or LaunchTemplateName, Version), with the reference recorded on instances.
    pub fn resolve_launch_template(
        &self,
        account: &str,
        region: &str,
        spec: &Value,
    ) -> Result<(Value, LaunchTemplateRef), AwsError> {
        let t = self.find_launch_template(
            account,
            region,
            spec.str("LaunchTemplateId"),
            spec.str("LaunchTemplateName"),
        )?;
        let v = t.version(spec.str("Version"))?;
        Ok((
            v.data.clone(),
            LaunchTemplateRef {
                id: t.id.clone(),
                name: t.name.clone(),
                version: v.number,
            },
        ))
    }
}

fn valid_id(id: &str) -> bool {
    id.strip_prefix("lt-")
        .is_some_and(|h| h.len() == 17 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// RunInstances input with the template's data filled in where the request leaves a member out
/// (the request wins, as in EC2). The primary network interface's subnet and groups become
/// SubnetId and SecurityGroupIds; template tag specifications join the request's.
pub fn merge_into_run_input(input: &Value, data: &Value) -> Value {
    let mut out = input.clone();
    let Some(obj) = out.as_object_mut() else {
        return out;
    };
    let Some(d) = data.as_object() else {
        return out;
    };
    for (k, v) in d {
        match k.as_str() {
            "NetworkInterfaces" | "TagSpecifications" => {}
            _ => {
                obj.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if let Some(eni) = d
        .get("NetworkInterfaces")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|n| n.i64("DeviceIndex").unwrap_or(0) == 0)
                .cloned()
        })
    {
        if !obj.contains_key("SubnetId") {
            if let Some(s) = eni.str("SubnetId") {
                obj.insert("SubnetId".into(), json!(s));
            }
        }
        let groups = eni.string_list("Groups");
        if !groups.is_empty()
            && !obj.contains_key("SecurityGroupIds")
            && !obj.contains_key("SecurityGroups")
        {
            obj.insert("SecurityGroupIds".into(), json!(groups));
        }
        if !obj.contains_key("PrivateIpAddress") {
            if let Some(ip) = eni.str("PrivateIpAddress") {
                obj.insert("PrivateIpAddress".into(), json!(ip));
            }
        }
    }
    let mut specs: Vec<Value> = obj
        .get("TagSpecifications")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for spec in d
        .get("TagSpecifications")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // A request's tags for a resource type replace the template's for that type.
        let rt = spec.str("ResourceType");
        if !specs.iter().any(|s| s.str("ResourceType") == rt) {
            specs.push(spec.clone());
        }
    }
    if !specs.is_empty() {
        obj.insert("TagSpecifications".into(), Value::Array(specs));
    }
    out
}

/// What a template may hold that EC2 checks when it is created (the rest when launching).
fn check_data(data: &Value) -> Result<(), AwsError> {
    if let Some(ud) = data.str("UserData").filter(|u| !u.is_empty()) {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(ud.trim())
            .map_err(|_| invalid_value("Invalid BASE64 encoding of user data."))?;
    }
    if let Some(t) = data.str("InstanceType") {
        if crate::services::ec2::instance_types::lookup(t).is_none() {
            return Err(invalid_value(format!(
                "The instance type '{t}' does not exist."
            )));
        }
    }
    if let Some(img) = data.str("ImageId") {
        if !img.starts_with("ami-") && !img.starts_with("resolve:ssm:") {
            return Err(err(
                codes::ec2::InvalidAMIID_Malformed,
                format!("Invalid id: \"{img}\" (expecting \"ami-...\")"),
            ));
        }
    }
    for spec in data
        .get("TagSpecifications")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rt = spec.str("ResourceType").unwrap_or_default();
        if !matches!(
            rt,
            "instance" | "volume" | "network-interface" | "spot-instances-request" | "elastic-gpu"
        ) {
            return Err(invalid_value(format!(
                "The following resource type is not supported: {rt}. Supported resource types: instance, volume, network-interface, spot-instances-request."
            )));
        }
    }
    Ok(())
}

pub fn create_launch_template(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let (account, region) = (&ctx.account, &ctx.region);
    let name = input
        .str("LaunchTemplateName")
        .unwrap_or_default()
        .to_string();
    let data = input
        .get("LaunchTemplateData")
        .cloned()
        .unwrap_or(json!({}));
    check_data(&data)?;
    let tags = tags_from_specs(&input, "launch-template")?;
    let token = input
        .str("ClientToken")
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let existing = state.launch_templates(account, region);
    if let Some(t) = token.as_ref().and_then(|tok| {
        existing
            .iter()
            .find(|t| t.client_token.as_ref() == Some(tok))
    }) {
        return Ok(json!({"LaunchTemplate": t.to_json()}));
    }
    let template = LaunchTemplate {
        id: new_id("lt"),
        name: name.clone(),
        create_time: ctx.now,
        created_by: format!("arn:aws:iam::{account}:root"),
        default_version: 1,
        latest_version: 1,
        tags,
        versions: BTreeMap::from([(
            1,
            LaunchTemplateVersion {
                number: 1,
                description: input.str("VersionDescription").map(str::to_string),
                create_time: ctx.now,
                data,
            },
        )]),
        client_token: token,
    };
    let prefix = format!("{}lt/", scope(account, region));
    state.rows.transact(|t| {
        let taken = t
            .keys(&prefix)
            .into_iter()
            .any(|k| matches!(t.get(&k), Some(Row::LaunchTemplate(x)) if x.name == name));
        if taken {
            return Err(err(
                codes::ec2::InvalidLaunchTemplateName_AlreadyExistsException,
                "Launch template name already in use.",
            ));
        }
        t.put(
            &lt_key(account, region, &template.id),
            Row::LaunchTemplate(Box::new(template.clone())),
        );
        Ok(())
    })?;
    Ok(json!({"LaunchTemplate": template.to_json()}))
}

/// Applies `change` to the stored template in one transaction and returns it changed.
fn update(
    state: &State,
    ctx: &Ctx,
    id: &str,
    change: impl FnOnce(&mut LaunchTemplate) -> Result<(), AwsError>,
) -> Result<LaunchTemplate, AwsError> {
    let key = lt_key(&ctx.account, &ctx.region, id);
    state.rows.transact(|t| {
        let Some(Row::LaunchTemplate(stored)) = t.get(&key).cloned() else {
            return Err(err(
                codes::ec2::InvalidLaunchTemplateId_NotFound,
                format!("The specified launch template, with template ID {id}, does not exist."),
            ));
        };
        let mut lt = *stored;
        change(&mut lt)?;
        t.put(&key, Row::LaunchTemplate(Box::new(lt.clone())));
        Ok(lt)
    })
}

fn named(state: &State, ctx: &Ctx, input: &Value) -> Result<LaunchTemplate, AwsError> {
    state.find_launch_template(
        &ctx.account,
        &ctx.region,
        input.str("LaunchTemplateId"),
        input.str("LaunchTemplateName"),
    )
}

pub fn create_launch_template_version(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let found = named(state, ctx, &input)?;
    let mut data = input
        .get("LaunchTemplateData")
        .cloned()
        .unwrap_or(json!({}));
    // SourceVersion: the new version starts from that version's data, the request's members
    // replacing the source's.
    if let Some(src) = input.str("SourceVersion").filter(|s| !s.is_empty()) {
        let base = found.version(Some(src))?.data.clone();
        if let (Some(d), Some(b)) = (data.as_object_mut(), base.as_object()) {
            for (k, v) in b {
                d.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    check_data(&data)?;
    let description = input.str("VersionDescription").map(str::to_string);
    let lt = update(state, ctx, &found.id, |lt| {
        if lt.latest_version >= 10_000 {
            return Err(err(
                codes::ec2::LaunchTemplateVersionLimitExceeded,
                "You have reached the maximum number of versions (10000) for this launch template.",
            ));
        }
        lt.latest_version += 1;
        let number = lt.latest_version;
        lt.versions.insert(
            number,
            LaunchTemplateVersion {
                number,
                description,
                create_time: ctx.now,
                data,
            },
        );
        Ok(())
    })?;
    let v = lt.versions.get(&lt.latest_version).cloned();
    Ok(json!({"LaunchTemplateVersion": v.map(|v| lt.version_json(&v))}))
}

pub fn describe_launch_templates(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let mut all = state.launch_templates(&ctx.account, &ctx.region);
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let ids = input.string_list("LaunchTemplateIds");
    let names = input.string_list("LaunchTemplateNames");
    if (!ids.is_empty() || !names.is_empty()) && input.i64("MaxResults").is_some() {
        return Err(err(codes::common::InvalidParameterCombination,
            "The parameter launchTemplateIds or launchTemplateNames cannot be used with the parameter maxResults",
        ));
    }
    for id in &ids {
        if !all.iter().any(|t| &t.id == id) {
            return Err(err(
                codes::ec2::InvalidLaunchTemplateId_NotFound,
                format!("The specified launch template, with template ID {id}, does not exist."),
            ));
        }
    }
    for n in &names {
        if !all.iter().any(|t| &t.name == n) {
            return Err(err(
                codes::ec2::InvalidLaunchTemplateName_NotFoundException,
                "At least one of the launch templates specified in the request does not exist.",
            ));
        }
    }
    if !ids.is_empty() || !names.is_empty() {
        all.retain(|t| ids.contains(&t.id) || names.contains(&t.name));
    }
    let all = filter_all(all, &parse_filters(&input))?;
    let (page, token) = paginate(all, |t| t.id.clone(), &input)?;
    let mut out =
        json!({"LaunchTemplates": page.iter().map(LaunchTemplate::to_json).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

pub fn describe_launch_template_versions(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let id = input.str("LaunchTemplateId").filter(|s| !s.is_empty());
    let name = input.str("LaunchTemplateName").filter(|s| !s.is_empty());
    let templates = if id.is_none() && name.is_none() {
        // Without a template: the $Latest/$Default versions of every template (AWS allows only
        // those aliases in that form).
        state.launch_templates(&ctx.account, &ctx.region)
    } else {
        vec![state.find_launch_template(&ctx.account, &ctx.region, id, name)?]
    };
    let versions = input.string_list("Versions");
    let min = input.str("MinVersion").and_then(|v| v.parse::<i64>().ok());
    let max = input.str("MaxVersion").and_then(|v| v.parse::<i64>().ok());
    let mut rows: Vec<(LaunchTemplate, LaunchTemplateVersion)> = Vec::new();
    for t in &templates {
        if versions.is_empty() {
            if id.is_none() && name.is_none() {
                return Err(err(
                    codes::ec2::MissingParameter,
                    "The request must contain the parameter launchTemplateName or launchTemplateId",
                ));
            }
            for v in t.versions.values() {
                if min.is_some_and(|m| v.number < m) || max.is_some_and(|m| v.number > m) {
                    continue;
                }
                rows.push((t.clone(), v.clone()));
            }
        } else {
            for spec in &versions {
                let v = t.version(Some(spec))?;
                if !rows
                    .iter()
                    .any(|(rt, rv)| rt.id == t.id && rv.number == v.number)
                {
                    rows.push((t.clone(), v.clone()));
                }
            }
        }
    }
    // Newest first, as EC2 lists them.
    rows.sort_by(|a, b| (&a.0.id, -a.1.number).cmp(&(&b.0.id, -b.1.number)));
    let filters = parse_filters(&input);
    let mut kept = Vec::new();
    for (t, v) in rows {
        if super::filters::matches(&VersionRow(&t, &v), &filters)? {
            kept.push((t, v));
        }
    }
    let (page, token) = paginate(
        kept,
        |(t, v)| format!("{}/{:010}", t.id, i64::MAX / 1_000_000_000 - v.number),
        &input,
    )?;
    let mut out = json!({
        "LaunchTemplateVersions": page.iter().map(|(t, v)| t.version_json(v)).collect::<Vec<_>>()
    });
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

pub fn modify_launch_template(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let found = named(state, ctx, &input)?;
    let Some(spec) = input
        .str("DefaultVersion")
        .or_else(|| input.str("SetDefaultVersion"))
    else {
        return Ok(json!({"LaunchTemplate": found.to_json()}));
    };
    let number = found.version(Some(spec))?.number;
    let lt = update(state, ctx, &found.id, |lt| {
        lt.default_version = number;
        Ok(())
    })?;
    Ok(json!({"LaunchTemplate": lt.to_json()}))
}

pub fn delete_launch_template(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let found = named(state, ctx, &input)?;
    let key = lt_key(&ctx.account, &ctx.region, &found.id);
    state.rows.transact::<_, AwsError, _>(|t| {
        t.remove(&key);
        Ok(())
    })?;
    Ok(json!({"LaunchTemplate": found.to_json()}))
}

pub fn delete_launch_template_versions(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let found = named(state, ctx, &input)?;
    let requested = input.string_list("Versions");
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut remove = Vec::new();
    for spec in &requested {
        let item = |number: i64, code: &str, message: String| {
            json!({
                "LaunchTemplateId": found.id,
                "LaunchTemplateName": found.name,
                "VersionNumber": number,
                "ResponseError": {"Code": code, "Message": message},
            })
        };
        let Ok(number) = spec.parse::<i64>() else {
            failed.push(item(
                0,
                "launchTemplateVersionDoesNotExist",
                format!("The specified launch template version is not valid: {spec}"),
            ));
            continue;
        };
        if !found.versions.contains_key(&number) {
            failed.push(item(
                number,
                "launchTemplateVersionDoesNotExist",
                "The specified launch template version does not exist.".into(),
            ));
        } else if number == found.default_version {
            failed.push(item(
                number,
                "unexpectedError",
                "The default version of a launch template cannot be deleted. To delete the default version, delete the launch template.".into(),
            ));
        } else {
            remove.push(number);
            ok.push(json!({
                "LaunchTemplateId": found.id,
                "LaunchTemplateName": found.name,
                "VersionNumber": number,
            }));
        }
    }
    if !remove.is_empty() {
        update(state, ctx, &found.id, |lt| {
            for n in &remove {
                lt.versions.remove(n);
            }
            Ok(())
        })?;
    }
    let mut out = json!({});
    if !ok.is_empty() {
        out["SuccessfullyDeletedLaunchTemplateVersions"] = json!(ok);
    }
    if !failed.is_empty() {
        out["UnsuccessfullyDeletedLaunchTemplateVersions"] = json!(failed);
    }
    Ok(out)
}

/// The launch data of an instance, as a template would hold it.
pub fn instance_launch_data(i: &Instance) -> Value {
    use base64::Engine;
    let mut d = json!({
        "ImageId": i.image_id,
        "InstanceType": i.instance_type,
        "Placement": {"AvailabilityZone": i.availability_zone, "GroupName": "", "Tenancy": "default"},
        "NetworkInterfaces": [{
            "DeviceIndex": 0,
            "SubnetId": i.subnet_id,
            "Groups": i.security_groups.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
            "PrivateIpAddress": i.private_ip,
            "DeleteOnTermination": true,
            "NetworkInterfaceId": i.network_interface_id,
        }],
        "Monitoring": {"Enabled": false},
        "DisableApiTermination": false,
        "InstanceInitiatedShutdownBehavior": "stop",
        "EbsOptimized": false,
        "MetadataOptions": i.metadata_options_json(),
    });
    if let Some(ud) = &i.user_data {
        d["UserData"] = json!(base64::engine::general_purpose::STANDARD.encode(ud));
    }
    if let Some((arn, _)) = &i.iam_instance_profile {
        d["IamInstanceProfile"] = json!({"Arn": arn});
    }
    if let Some(k) = &i.key_name {
        d["KeyName"] = json!(k);
    }
    let user_tags: Tags = i
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !user_tags.is_empty() {
        d["TagSpecifications"] =
            json!([{"ResourceType": "instance", "Tags": tags_json(&user_tags)}]);
    }
    if i.instance_lifecycle.as_deref() == Some("spot") {
        d["InstanceMarketOptions"] = json!({"MarketType": "spot"});
    }
    d
}

pub fn get_launch_template_data(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let id = input.str("InstanceId").unwrap_or_default();
    let found = state
        .instances(&ctx.account, &ctx.region, ctx.now)
        .into_iter()
        .find(|i| i.instance_id == id)
        .ok_or_else(|| {
            err(
                codes::ec2::InvalidInstanceID_NotFound,
                format!("The instance ID '{id}' does not exist"),
            )
        })?;
    Ok(json!({"LaunchTemplateData": instance_launch_data(&found)}))
}

#[cfg(test)]
mod tests {
    use super::super::instances::{describe_instances, run_instances};
    use super::*;
    use crate::services::Deps;
    use base64::Engine;

    fn setup() -> (State, Ctx) {
        (State::new(&Deps::for_tests().store), Ctx::for_tests())
    }

    fn code(r: Result<Value, AwsError>) -> String {
        r.err().map(|e| e.code.to_string()).unwrap_or_default()
    }

    fn ami(ctx: &Ctx) -> String {
        super::super::ECS_OPTIMIZED_AMIS
            .iter()
            .find(|a| a.architecture == "x86_64")
            .map(|a| a.image_id(&ctx.region))
            .unwrap_or_default()
    }

    #[test]
    fn versions_defaults_and_run_instances() {
        let (s, ctx) = setup();
        let ud = base64::engine::general_purpose::STANDARD
            .encode("#!/bin/bash\necho ECS_CLUSTER=c >> /etc/ecs/ecs.config");
        let out = create_launch_template(
            &s,
            &ctx,
            json!({"LaunchTemplateName": "web", "VersionDescription": "one",
                   "LaunchTemplateData": {"ImageId": ami(&ctx), "InstanceType": "m5.large", "UserData": ud,
                       "IamInstanceProfile": {"Name": "ecsInstanceRole"},
                       "MetadataOptions": {"HttpTokens": "optional"},
                       "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "a"}]}]},
                   "TagSpecifications": [{"ResourceType": "launch-template", "Tags": [{"Key": "k", "Value": "v"}]}]}),
        )
        .expect("create");
        let id = out["LaunchTemplate"]["LaunchTemplateId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(valid_id(&id), "{id}");
        assert_eq!(out["LaunchTemplate"]["LatestVersionNumber"], 1);
        assert_eq!(out["LaunchTemplate"]["Tags"][0]["Key"], "k");
        assert_eq!(
            code(create_launch_template(
                &s,
                &ctx,
                json!({"LaunchTemplateName": "web", "LaunchTemplateData": {}})
            )),
            "InvalidLaunchTemplateName.AlreadyExistsException"
        );
        // Version 2 from version 1, with another type.
        let v2 = create_launch_template_version(
            &s,
            &ctx,
            json!({"LaunchTemplateName": "web", "SourceVersion": "1", "LaunchTemplateData": {"InstanceType": "t3.micro"}}),
        )
        .expect("v2");
        assert_eq!(v2["LaunchTemplateVersion"]["VersionNumber"], 2);
        assert_eq!(v2["LaunchTemplateVersion"]["DefaultVersion"], false);
        assert_eq!(
            v2["LaunchTemplateVersion"]["LaunchTemplateData"]["ImageId"],
            ami(&ctx).as_str()
        );
        let d = describe_launch_template_versions(
            &s,
            &ctx,
            json!({"LaunchTemplateId": id, "Versions": ["$Latest", "$Default"]}),
        )
        .expect("versions");
        let nums: Vec<i64> = d["LaunchTemplateVersions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["VersionNumber"].as_i64())
            .collect();
        assert_eq!(nums, vec![2, 1]);
        assert_eq!(
            code(describe_launch_template_versions(
                &s,
                &ctx,
                json!({"LaunchTemplateId": id, "Versions": ["7"]})
            )),
            "InvalidLaunchTemplateId.VersionNotFound"
        );
        // RunInstances with the default version (1): its data, tags and metadata options.
        let r = run_instances(
            &s,
            &ctx,
            json!({"MinCount": 1, "MaxCount": 1, "LaunchTemplate": {"LaunchTemplateName": "web"}}),
        )
        .expect("run");
        let i = &r["Instances"][0];
        assert_eq!(i["InstanceType"], "m5.large");
        assert_eq!(i["MetadataOptions"]["HttpTokens"], "optional");
        assert_eq!(i["MetadataOptions"]["HttpEndpoint"], "enabled");
        assert_eq!(
            i["IamInstanceProfile"]["Arn"],
            "arn:aws:iam::000000000000:instance-profile/ecsInstanceRole"
        );
        let tags: Vec<(String, String)> = i["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["Key"].as_str().unwrap_or_default().to_string(),
                    t["Value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert!(tags.contains(&("team".into(), "a".into())), "{tags:?}");
        assert!(
            tags.contains(&("aws:ec2launchtemplate:id".into(), id.clone())),
            "{tags:?}"
        );
        assert!(
            tags.contains(&("aws:ec2launchtemplate:version".into(), "1".into())),
            "{tags:?}"
        );
        let stored = s.instances(&ctx.account, &ctx.region, ctx.now);
        assert!(stored[0]
            .user_data
            .as_deref()
            .is_some_and(|u| u.contains("ECS_CLUSTER=c")));
        // $Latest, and the request overriding the template.
        let r = run_instances(
            &s,
            &ctx,
            json!({"MinCount": 1, "MaxCount": 1, "InstanceType": "c5.large", "LaunchTemplate": {"LaunchTemplateId": id, "Version": "$Latest"}}),
        )
        .expect("run latest");
        assert_eq!(r["Instances"][0]["InstanceType"], "c5.large");
        // Default version 2, then version 1 can go, the default cannot.
        let m = modify_launch_template(
            &s,
            &ctx,
            json!({"LaunchTemplateId": id, "DefaultVersion": "2"}),
        )
        .expect("modify");
        assert_eq!(m["LaunchTemplate"]["DefaultVersionNumber"], 2);
        let r = run_instances(
            &s,
            &ctx,
            json!({"MinCount": 1, "MaxCount": 1, "LaunchTemplate": {"LaunchTemplateId": id}}),
        )
        .expect("run default");
        assert_eq!(r["Instances"][0]["InstanceType"], "t3.micro");
        let del = delete_launch_template_versions(
            &s,
            &ctx,
            json!({"LaunchTemplateId": id, "Versions": ["1", "2", "9"]}),
        )
        .expect("del");
        assert_eq!(
            del["SuccessfullyDeletedLaunchTemplateVersions"][0]["VersionNumber"],
            1
        );
        assert_eq!(
            del["UnsuccessfullyDeletedLaunchTemplateVersions"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        // GetLaunchTemplateData of an instance.
        let iid = r["Instances"][0]["InstanceId"].clone();
        let g = get_launch_template_data(&s, &ctx, json!({"InstanceId": iid})).expect("data");
        assert_eq!(g["LaunchTemplateData"]["InstanceType"], "t3.micro");
        assert!(g["LaunchTemplateData"]["UserData"].is_string());
        // Describe with filters; delete.
        let d = describe_launch_templates(
            &s,
            &ctx,
            json!({"Filters": [{"Name": "tag:k", "Values": ["v"]}]}),
        )
        .expect("d");
        assert_eq!(d["LaunchTemplates"].as_array().map(Vec::len), Some(1));
        delete_launch_template(&s, &ctx, json!({"LaunchTemplateName": "web"})).expect("delete");
        assert_eq!(
            code(run_instances(
                &s,
                &ctx,
                json!({"MinCount": 1, "MaxCount": 1, "LaunchTemplate": {"LaunchTemplateId": id}})
            )),
            "InvalidLaunchTemplateId.NotFound"
        );
        let d = describe_instances(&s, &ctx, json!({})).expect("d");
        assert_eq!(d["Reservations"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn bad_input() {
        let (s, ctx) = setup();
        assert_eq!(
            code(describe_launch_templates(
                &s,
                &ctx,
                json!({"LaunchTemplateNames": ["nope"]})
            )),
            "InvalidLaunchTemplateName.NotFoundException"
        );
        assert_eq!(
            code(run_instances(
                &s,
                &ctx,
                json!({"MinCount": 1, "MaxCount": 1, "LaunchTemplate": {"LaunchTemplateName": "nope"}})
            )),
            "InvalidLaunchTemplateName.NotFoundException"
        );
        assert_eq!(
            code(run_instances(
                &s,
                &ctx,
                json!({"MinCount": 1, "MaxCount": 1, "LaunchTemplate": {"LaunchTemplateId": "lt-1"}})
            )),
            "InvalidLaunchTemplateId.Malformed"
        );
        assert_eq!(
            code(create_launch_template(
                &s,
                &ctx,
                json!({"LaunchTemplateName": "x", "LaunchTemplateData": {"InstanceType": "zz.top"}})
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(create_launch_template_version(
                &s,
                &ctx,
                json!({"LaunchTemplateData": {}})
            )),
            "MissingParameter"
        );
        // A template without an image cannot launch.
        create_launch_template(
            &s,
            &ctx,
            json!({"LaunchTemplateName": "empty", "LaunchTemplateData": {}}),
        )
        .expect("create");
        assert_eq!(
            code(run_instances(
                &s,
                &ctx,
                json!({"MinCount": 1, "MaxCount": 1, "LaunchTemplate": {"LaunchTemplateName": "empty"}})
            )),
            "MissingParameter"
        );
        assert!(s.instances(&ctx.account, &ctx.region, ctx.now).is_empty());
    }
}
