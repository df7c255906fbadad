//! Security groups and their rules: Describe/Create/DeleteSecurityGroup,
//! Authorize/RevokeSecurityGroupIngress/Egress, DescribeSecurityGroupRules.

use super::cidr::Cidr;
use super::filters::{
    check_ids_with_max, dry_run, err, filter_all, invalid_value, paginate, parse_filters,
    tags_from_specs, tags_json, Filterable, Tags,
};
use super::state::{new_id, sg_key, Row, State, Vpc};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecurityGroup {
    pub group_id: String,
    pub group_name: String,
    pub description: String,
    pub vpc_id: String,
    pub owner_id: String,
    pub region: String,
    #[serde(default)]
    pub rules: Vec<SgRule>,
    #[serde(default)]
    pub tags: Tags,
}

/// One rule: a protocol and port range, and one peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SgRule {
    pub rule_id: String,
    pub egress: bool,
    /// "tcp", "udp", "icmp", "icmpv6", "-1" (all) or a protocol number.
    pub protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    #[serde(default)]
    pub cidr_ipv4: Option<String>,
    #[serde(default)]
    pub cidr_ipv6: Option<String>,
    #[serde(default)]
    pub prefix_list_id: Option<String>,
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl SgRule {
    fn same_as(&self, other: &SgRule) -> bool {
        self.egress == other.egress
            && self.protocol == other.protocol
            && self.from_port == other.from_port
            && self.to_port == other.to_port
            && self.cidr_ipv4 == other.cidr_ipv4
            && self.cidr_ipv6 == other.cidr_ipv6
            && self.prefix_list_id == other.prefix_list_id
            && self.group_id == other.group_id
    }

    fn peer(&self) -> String {
        self.cidr_ipv4
            .clone()
            .or_else(|| self.cidr_ipv6.clone())
            .or_else(|| self.prefix_list_id.clone())
            .or_else(|| self.group_id.clone())
            .unwrap_or_default()
    }

    pub fn to_json(&self, group: &SecurityGroup) -> Value {
        let mut v = json!({
            "SecurityGroupRuleId": self.rule_id,
            "GroupId": group.group_id,
            "GroupOwnerId": group.owner_id,
            "IsEgress": self.egress,
            "IpProtocol": self.protocol,
            "FromPort": self.from_port,
            "ToPort": self.to_port,
            "Tags": [],
            "SecurityGroupRuleArn": format!(
                "arn:aws:ec2:{}:{}:security-group-rule/{}",
                group.region, group.owner_id, self.rule_id
            ),
        });
        if let Some(c) = &self.cidr_ipv4 {
            v["CidrIpv4"] = json!(c);
        }
        if let Some(c) = &self.cidr_ipv6 {
            v["CidrIpv6"] = json!(c);
        }
        if let Some(p) = &self.prefix_list_id {
            v["PrefixListId"] = json!(p);
        }
        if let Some(g) = &self.group_id {
            v["ReferencedGroupInfo"] = json!({"GroupId": g, "UserId": self.user_id});
        }
        if let Some(d) = &self.description {
            v["Description"] = json!(d);
        }
        v
    }

    fn revoked_json(&self, group_id: &str) -> Value {
        let mut v = self.to_json(&SecurityGroup {
            group_id: group_id.into(),
            group_name: String::new(),
            description: String::new(),
            vpc_id: String::new(),
            owner_id: String::new(),
            region: String::new(),
            rules: vec![],
            tags: Tags::new(),
        });
        if let Some(map) = v.as_object_mut() {
            map.remove("GroupOwnerId");
            map.remove("Tags");
            map.remove("SecurityGroupRuleArn");
            if let Some(r) = map.remove("ReferencedGroupInfo") {
                map.insert("ReferencedGroupId".into(), r["GroupId"].clone());
            }
        }
        v
    }
}

impl SecurityGroup {
    /// The "default" group every VPC gets: all traffic in from itself, all traffic out.
    pub fn default_for(vpc: &Vpc) -> SecurityGroup {
        let group_id = new_id("sg");
        SecurityGroup {
            group_id: group_id.clone(),
            group_name: "default".into(),
            description: "default VPC security group".into(),
            vpc_id: vpc.vpc_id.clone(),
            owner_id: vpc.owner_id.clone(),
            region: vpc.region.clone(),
            rules: vec![
                SgRule {
                    rule_id: new_id("sgr"),
                    egress: false,
                    protocol: "-1".into(),
                    from_port: -1,
                    to_port: -1,
                    cidr_ipv4: None,
                    cidr_ipv6: None,
                    prefix_list_id: None,
                    group_id: Some(group_id),
                    user_id: Some(vpc.owner_id.clone()),
                    description: None,
                },
                all_egress(),
            ],
            tags: Tags::new(),
        }
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:ec2:{}:{}:security-group/{}",
            self.region, self.owner_id, self.group_id
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "GroupId": self.group_id,
            "IpPermissionsEgress": permissions_json(self.rules.iter().filter(|r| r.egress)),
            "Tags": tags_json(&self.tags),
            "VpcId": self.vpc_id,
            "SecurityGroupArn": self.arn(),
            "OwnerId": self.owner_id,
            "GroupName": self.group_name,
            "Description": self.description,
            "IpPermissions": permissions_json(self.rules.iter().filter(|r| !r.egress)),
        })
    }
}

fn all_egress() -> SgRule {
    SgRule {
        rule_id: new_id("sgr"),
        egress: true,
        protocol: "-1".into(),
        from_port: -1,
        to_port: -1,
        cidr_ipv4: Some("0.0.0.0/0".into()),
        cidr_ipv6: None,
        prefix_list_id: None,
        group_id: None,
        user_id: None,
        description: None,
    }
}

/// Rules grouped into the model's IpPermission list by (protocol, from, to).
fn permissions_json<'a>(rules: impl Iterator<Item = &'a SgRule>) -> Value {
    type PortKey = (String, i64, i64);
    let mut perms: Vec<(PortKey, Map<String, Value>)> = Vec::new();
    for r in rules {
        let key = (r.protocol.clone(), r.from_port, r.to_port);
        let idx = match perms.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let mut m = Map::new();
                m.insert("IpProtocol".into(), json!(r.protocol));
                if r.protocol != "-1" {
                    m.insert("FromPort".into(), json!(r.from_port));
                    m.insert("ToPort".into(), json!(r.to_port));
                }
                for list in [
                    "UserIdGroupPairs",
                    "IpRanges",
                    "Ipv6Ranges",
                    "PrefixListIds",
                ] {
                    m.insert(list.into(), json!([]));
                }
                perms.push((key, m));
                perms.len() - 1
            }
        };
        let m = &mut perms[idx].1;
        let (list, mut entry) = if let Some(c) = &r.cidr_ipv4 {
            ("IpRanges", json!({"CidrIp": c}))
        } else if let Some(c) = &r.cidr_ipv6 {
            ("Ipv6Ranges", json!({"CidrIpv6": c}))
        } else if let Some(p) = &r.prefix_list_id {
            ("PrefixListIds", json!({"PrefixListId": p}))
        } else {
            (
                "UserIdGroupPairs",
                json!({"GroupId": r.group_id, "UserId": r.user_id}),
            )
        };
        if let Some(d) = &r.description {
            entry["Description"] = json!(d);
        }
        if let Some(Value::Array(a)) = m.get_mut(list) {
            a.push(entry);
        }
    }
    Value::Array(perms.into_iter().map(|(_, m)| Value::Object(m)).collect())
}

impl Filterable for SecurityGroup {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let single = |s: &str| Some(vec![s.to_string()]);
        let of_rules = |egress: bool, f: &dyn Fn(&SgRule) -> Option<String>| {
            Some(
                self.rules
                    .iter()
                    .filter(|r| r.egress == egress)
                    .filter_map(f)
                    .collect::<Vec<_>>(),
            )
        };
        match name {
            "group-id" => single(&self.group_id),
            "group-name" => single(&self.group_name),
            "description" => single(&self.description),
            "vpc-id" => single(&self.vpc_id),
            "owner-id" => single(&self.owner_id),
            "ip-permission.cidr" => of_rules(false, &|r| r.cidr_ipv4.clone()),
            "ip-permission.ipv6-cidr" => of_rules(false, &|r| r.cidr_ipv6.clone()),
            "ip-permission.protocol" => of_rules(false, &|r| Some(r.protocol.clone())),
            "ip-permission.from-port" => of_rules(false, &|r| Some(r.from_port.to_string())),
            "ip-permission.to-port" => of_rules(false, &|r| Some(r.to_port.to_string())),
            "ip-permission.group-id" => of_rules(false, &|r| r.group_id.clone()),
            "ip-permission.prefix-list-id" => of_rules(false, &|r| r.prefix_list_id.clone()),
            "egress.ip-permission.cidr" => of_rules(true, &|r| r.cidr_ipv4.clone()),
            "egress.ip-permission.ipv6-cidr" => of_rules(true, &|r| r.cidr_ipv6.clone()),
            "egress.ip-permission.protocol" => of_rules(true, &|r| Some(r.protocol.clone())),
            "egress.ip-permission.from-port" => of_rules(true, &|r| Some(r.from_port.to_string())),
            "egress.ip-permission.to-port" => of_rules(true, &|r| Some(r.to_port.to_string())),
            "egress.ip-permission.group-id" => of_rules(true, &|r| r.group_id.clone()),
            "egress.ip-permission.prefix-list-id" => of_rules(true, &|r| r.prefix_list_id.clone()),
            _ => None,
        }
    }
    fn tag_map(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

fn group_not_found(id: &str) -> AwsError {
    err(
        codes::ec2::InvalidGroup_NotFound,
        format!("The security group '{id}' does not exist"),
    )
}

fn check_group_id(id: &str) -> Result<(), AwsError> {
    let ok = id
        .strip_prefix("sg-")
        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(err(
            codes::ec2::InvalidGroupId_Malformed,
            format!("Invalid id: \"{id}\" (expecting \"sg-...\")"),
        ))
    }
}

/// Finds a group by id, or by name in the default VPC (the legacy GroupName parameters).
fn resolve_group(
    state: &State,
    ctx: &Ctx,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<SecurityGroup, AwsError> {
    if let Some(id) = id {
        check_group_id(id)?;
        return state
            .security_group(&ctx.account, &ctx.region, id)
            .ok_or_else(|| group_not_found(id));
    }
    let Some(name) = name else {
        return Err(err(
            codes::ec2::MissingParameter,
            "The request must contain the parameter groupName or groupId",
        ));
    };
    let default_vpc = state.default_vpc(&ctx.account, &ctx.region);
    let vpc_id = default_vpc.map(|v| v.vpc_id).unwrap_or_default();
    state
        .security_groups(&ctx.account, &ctx.region)
        .into_iter()
        .find(|g| g.group_name == name && g.vpc_id == vpc_id)
        .ok_or_else(|| {
            err(
                codes::ec2::InvalidGroup_NotFound,
                format!("The security group '{name}' does not exist in default VPC '{vpc_id}'"),
            )
        })
}

pub fn describe_security_groups(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    check_ids_with_max(&input, "GroupIds", "groupIds")?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let mut groups = state.security_groups(&ctx.account, &ctx.region);
    let ids = input.string_list("GroupIds");
    for id in &ids {
        check_group_id(id)?;
        if !groups.iter().any(|g| &g.group_id == id) {
            return Err(group_not_found(id));
        }
    }
    let names = input.string_list("GroupNames");
    let mut wanted: Vec<String> = ids.clone();
    for n in &names {
        wanted.push(resolve_group(state, ctx, None, Some(n))?.group_id);
    }
    if !wanted.is_empty() {
        groups.retain(|g| wanted.contains(&g.group_id));
    }
    let groups = filter_all(groups, &parse_filters(&input))?;
    let (page, token) = paginate(groups, |g| g.group_id.clone(), &input)?;
    let mut out = json!({
        "SecurityGroups": page.iter().map(SecurityGroup::to_json).collect::<Vec<_>>()
    });
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

pub fn create_security_group(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let (account, region) = (&ctx.account, &ctx.region);
    state.ensure_defaults(account, region)?;
    let name = input.str("GroupName").unwrap_or_default().to_string();
    let description = input.str("Description").unwrap_or_default().to_string();
    if name.is_empty() || name.len() > 255 {
        return Err(invalid_value(format!(
            "Invalid value '{name}' for groupName. Length of group name must be between 1 and 255 characters"
        )));
    }
    if name.to_ascii_lowercase().starts_with("sg-") {
        return Err(invalid_value("Group names may not be in the format sg-*"));
    }
    if name == "default" {
        return Err(invalid_value(
            "Cannot use reserved security group name: default",
        ));
    }
    if description.len() > 255 {
        return Err(invalid_value(
            "Invalid value for groupDescription. Length exceeds maximum of 255 characters",
        ));
    }
    let vpc = match input.str("VpcId") {
        Some(id) => state.vpc(account, region, id).ok_or_else(|| {
            err(
                codes::ec2::InvalidVpcID_NotFound,
                format!("The vpc ID '{id}' does not exist"),
            )
        })?,
        None => state.default_vpc(account, region).ok_or_else(|| {
            err(
                codes::ec2::VPCIdNotSpecified,
                "No default VPC for this user",
            )
        })?,
    };
    let tags = tags_from_specs(&input, "security-group")?;
    let group = SecurityGroup {
        group_id: new_id("sg"),
        group_name: name.clone(),
        description,
        vpc_id: vpc.vpc_id.clone(),
        owner_id: account.clone(),
        region: region.clone(),
        rules: vec![all_egress()],
        tags,
    };
    let existing = state.security_groups(account, region);
    state.rows.transact(|t| {
        let dup = existing.iter().any(|g| {
            g.vpc_id == vpc.vpc_id
                && g.group_name == name
                && t.contains(&sg_key(account, region, &g.group_id))
        });
        if dup {
            return Err(err(
                codes::ec2::InvalidGroup_Duplicate,
                format!(
                    "The security group '{name}' already exists for VPC '{}'",
                    vpc.vpc_id
                ),
            ));
        }
        t.put(
            &sg_key(account, region, &group.group_id),
            Row::SecurityGroup(group.clone()),
        );
        Ok(())
    })?;
    Ok(json!({
        "GroupId": group.group_id,
        "Tags": tags_json(&group.tags),
        "SecurityGroupArn": group.arn(),
    }))
}

pub fn delete_security_group(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let (account, region) = (&ctx.account, &ctx.region);
    state.ensure_defaults(account, region)?;
    let group = resolve_group(state, ctx, input.str("GroupId"), input.str("GroupName"))?;
    if group.group_name == "default" {
        return Err(err(
            codes::ec2::CannotDelete,
            format!(
                "the specified group: \"{}\" name: \"default\" cannot be deleted by a user",
                group.group_id
            ),
        ));
    }
    let referenced = state.all_rules(account, region).iter().any(|(owner, r)| {
        owner != &group.group_id && r.group_id.as_deref() == Some(&group.group_id)
    });
    if referenced {
        return Err(err(
            codes::ec2::DependencyViolation,
            format!("resource {} has a dependent object", group.group_id),
        ));
    }
    state.rows.transact(|t| {
        if t.remove(&sg_key(account, region, &group.group_id))
            .is_none()
        {
            return Err(group_not_found(&group.group_id));
        }
        Ok(())
    })?;
    Ok(json!({"Return": true, "GroupId": group.group_id}))
}

fn normalize_protocol(p: &str) -> Result<String, AwsError> {
    let lower = p.to_ascii_lowercase();
    let named = match lower.as_str() {
        "tcp" | "6" => "tcp",
        "udp" | "17" => "udp",
        "icmp" | "1" => "icmp",
        "icmpv6" | "58" => "icmpv6",
        "-1" | "all" => "-1",
        _ => "",
    };
    if !named.is_empty() {
        return Ok(named.to_string());
    }
    match lower.parse::<u16>() {
        Ok(n) if n <= 255 => Ok(n.to_string()),
        _ => Err(invalid_value(format!(
            "Invalid value '{p}' for IP protocol. Unknown protocol."
        ))),
    }
}

/// The rules an Authorize/Revoke request describes (flat parameters or IpPermissions).
fn requested_rules(
    state: &State,
    ctx: &Ctx,
    input: &Value,
    egress: bool,
) -> Result<Vec<SgRule>, AwsError> {
    let mut perms: Vec<Value> = input
        .get("IpPermissions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(proto) = input.str("IpProtocol") {
        let mut p = json!({"IpProtocol": proto});
        if let Some(f) = input.i64("FromPort") {
            p["FromPort"] = json!(f);
        }
        if let Some(t) = input.i64("ToPort") {
            p["ToPort"] = json!(t);
        }
        if let Some(c) = input.str("CidrIp") {
            p["IpRanges"] = json!([{"CidrIp": c}]);
        }
        if let Some(n) = input.str("SourceSecurityGroupName") {
            p["UserIdGroupPairs"] = json!([{"GroupName": n}]);
        }
        perms.push(p);
    } else if input.str("CidrIp").is_some() || input.str("SourceSecurityGroupName").is_some() {
        let mut p = json!({"IpProtocol": "-1"});
        if let Some(c) = input.str("CidrIp") {
            p["IpRanges"] = json!([{"CidrIp": c}]);
        }
        if let Some(n) = input.str("SourceSecurityGroupName") {
            p["UserIdGroupPairs"] = json!([{"GroupName": n}]);
        }
        perms.push(p);
    }
    let mut rules = Vec::new();
    for p in &perms {
        let protocol = normalize_protocol(p.str("IpProtocol").unwrap_or("-1"))?;
        let (from, to) = match protocol.as_str() {
            "tcp" | "udp" => {
                let (Some(f), Some(t)) = (p.i64("FromPort"), p.i64("ToPort")) else {
                    return Err(invalid_value(
                        "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.",
                    ));
                };
                if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) || f > t {
                    return Err(invalid_value(format!(
                        "Invalid value '{f}-{t}' for portRange. The port range is not valid."
                    )));
                }
                (f, t)
            }
            "icmp" | "icmpv6" => (
                p.i64("FromPort").unwrap_or(-1),
                p.i64("ToPort").unwrap_or(-1),
            ),
            "-1" => (-1, -1),
            _ => (
                p.i64("FromPort").unwrap_or(-1),
                p.i64("ToPort").unwrap_or(-1),
            ),
        };
        let base = SgRule {
            rule_id: String::new(),
            egress,
            protocol,
            from_port: from,
            to_port: to,
            cidr_ipv4: None,
            cidr_ipv6: None,
            prefix_list_id: None,
            group_id: None,
            user_id: None,
            description: None,
        };
        let desc = |v: &Value| v.str("Description").map(str::to_string);
        for r in p
            .get("IpRanges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let c = r.str("CidrIp").unwrap_or_default();
            let cidr = Cidr::parse(c)
                .ok_or_else(|| invalid_value(format!("CIDR block {c} is malformed")))?;
            rules.push(SgRule {
                cidr_ipv4: Some(cidr.to_string()),
                description: desc(r),
                ..base.clone()
            });
        }
        for r in p
            .get("Ipv6Ranges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let c = r.str("CidrIpv6").unwrap_or_default();
            if !c.contains(':') || !c.contains('/') {
                return Err(invalid_value(format!("CIDR block {c} is malformed")));
            }
            rules.push(SgRule {
                cidr_ipv6: Some(c.to_string()),
                description: desc(r),
                ..base.clone()
            });
        }
        for r in p
            .get("PrefixListIds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            rules.push(SgRule {
                prefix_list_id: r.str("PrefixListId").map(str::to_string),
                description: desc(r),
                ..base.clone()
            });
        }
        for r in p
            .get("UserIdGroupPairs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let peer = resolve_group(state, ctx, r.str("GroupId"), r.str("GroupName"))?;
            rules.push(SgRule {
                group_id: Some(peer.group_id),
                user_id: Some(peer.owner_id),
                description: desc(r),
                ..base.clone()
            });
        }
    }
    Ok(rules)
}

fn describe_rule(r: &SgRule) -> String {
    let proto = match r.protocol.as_str() {
        "-1" => "ALL".to_string(),
        p => p.to_ascii_uppercase(),
    };
    if r.protocol == "-1" {
        format!("peer: {}, {proto}, ALLOW", r.peer())
    } else {
        format!(
            "peer: {}, {proto}, from port: {}, to port: {}, ALLOW",
            r.peer(),
            r.from_port,
            r.to_port
        )
    }
}

fn authorize(state: &State, ctx: &Ctx, input: Value, egress: bool) -> HandlerResult {
    dry_run(&input)?;
    let (account, region) = (&ctx.account, &ctx.region);
    state.ensure_defaults(account, region)?;
    let group = resolve_group(state, ctx, input.str("GroupId"), input.str("GroupName"))?;
    let mut new_rules = requested_rules(state, ctx, &input, egress)?;
    if new_rules.is_empty() {
        return Err(err(
            codes::ec2::MissingParameter,
            "No IpPermissions specified: at least one source or destination is required.",
        ));
    }
    for r in &mut new_rules {
        r.rule_id = new_id("sgr");
    }
    let key = sg_key(account, region, &group.group_id);
    let added = state.rows.transact(|t| {
        let Some(Row::SecurityGroup(g)) = t.get_mut(&key) else {
            return Err(group_not_found(&group.group_id));
        };
        for (i, r) in new_rules.iter().enumerate() {
            let dup =
                g.rules.iter().any(|x| x.same_as(r)) || new_rules[..i].iter().any(|x| x.same_as(r));
            if dup {
                return Err(err(
                    codes::ec2::InvalidPermission_Duplicate,
                    format!("the specified rule \"{}\" already exists", describe_rule(r)),
                ));
            }
        }
        if g.rules.iter().filter(|x| x.egress == egress).count() + new_rules.len() > 60 {
            return Err(err(
                codes::ec2::RulesPerSecurityGroupLimitExceeded,
                "The maximum number of rules per security group has been reached.",
            ));
        }
        g.rules.extend(new_rules.iter().cloned());
        Ok(g.clone())
    })?;
    Ok(json!({
        "Return": true,
        "SecurityGroupRules": new_rules.iter().map(|r| r.to_json(&added)).collect::<Vec<_>>(),
    }))
}

fn revoke(state: &State, ctx: &Ctx, input: Value, egress: bool) -> HandlerResult {
    dry_run(&input)?;
    let (account, region) = (&ctx.account, &ctx.region);
    state.ensure_defaults(account, region)?;
    let group = resolve_group(state, ctx, input.str("GroupId"), input.str("GroupName"))?;
    let rule_ids = input.string_list("SecurityGroupRuleIds");
    let requested = requested_rules(state, ctx, &input, egress)?;
    let key = sg_key(account, region, &group.group_id);
    let (revoked, unknown) = state.rows.transact(|t| {
        let Some(Row::SecurityGroup(g)) = t.get_mut(&key) else {
            return Err(group_not_found(&group.group_id));
        };
        let mut revoked = Vec::new();
        for id in &rule_ids {
            match g
                .rules
                .iter()
                .position(|r| &r.rule_id == id && r.egress == egress)
            {
                Some(i) => revoked.push(g.rules.remove(i)),
                None => {
                    return Err(err(
                        codes::ec2::InvalidSecurityGroupRuleId_NotFound,
                        format!("The security group rule ID '{id}' does not exist"),
                    ))
                }
            }
        }
        let mut unknown = Vec::new();
        for r in &requested {
            match g.rules.iter().position(|x| x.same_as(r)) {
                Some(i) => revoked.push(g.rules.remove(i)),
                None => unknown.push(r.clone()),
            }
        }
        if revoked.is_empty() && !unknown.is_empty() {
            return Err(err(
                codes::ec2::InvalidPermission_NotFound,
                "The specified rule does not exist in this security group.",
            ));
        }
        Ok((revoked, unknown))
    })?;
    let mut out = json!({
        "Return": true,
        "RevokedSecurityGroupRules": revoked.iter().map(|r| r.revoked_json(&group.group_id)).collect::<Vec<_>>(),
    });
    if !unknown.is_empty() {
        out["UnknownIpPermissions"] = permissions_json(unknown.iter());
    }
    Ok(out)
}

pub fn authorize_ingress(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    authorize(state, ctx, input, false)
}

pub fn authorize_egress(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    authorize(state, ctx, input, true)
}

pub fn revoke_ingress(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    revoke(state, ctx, input, false)
}

pub fn revoke_egress(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    revoke(state, ctx, input, true)
}

struct RuleRow {
    group: SecurityGroup,
    rule: SgRule,
}

impl Filterable for RuleRow {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let v = match name {
            "group-id" => self.group.group_id.clone(),
            "security-group-rule-id" => self.rule.rule_id.clone(),
            _ => return None,
        };
        Some(vec![v])
    }
}

pub fn describe_security_group_rules(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let ids = input.string_list("SecurityGroupRuleIds");
    let mut rows: Vec<RuleRow> = state
        .security_groups(&ctx.account, &ctx.region)
        .into_iter()
        .flat_map(|g| {
            g.rules.clone().into_iter().map(move |rule| RuleRow {
                group: g.clone(),
                rule,
            })
        })
        .collect();
    for id in &ids {
        if !rows.iter().any(|r| &r.rule.rule_id == id) {
            return Err(err(
                codes::ec2::InvalidSecurityGroupRuleId_NotFound,
                format!("The security group rule ID '{id}' does not exist"),
            ));
        }
    }
    if !ids.is_empty() {
        rows.retain(|r| ids.contains(&r.rule.rule_id));
    }
    rows.sort_by(|a, b| a.rule.rule_id.cmp(&b.rule.rule_id));
    let rows = filter_all(rows, &parse_filters(&input))?;
    let (page, token) = paginate(rows, |r| r.rule.rule_id.clone(), &input)?;
    let mut out = json!({
        "SecurityGroupRules": page.iter().map(|r| r.rule.to_json(&r.group)).collect::<Vec<_>>()
    });
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
