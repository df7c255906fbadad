//! Server-rendered HTML (maud escapes every value). Each page is a `<main>` fragment inside one
//! layout; the layout's few lines of script swap the fragment when the server says state changed.

use super::view::{
    ClusterView, InstanceView, LoadBalancerView, RepositoryView, ServiceView, Summary, TaskBox,
};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

const STYLE: &str = include_str!("style.css");

/// Reloads `<main>` from the same URL when the server sends a change event; nothing runs while
/// nothing changes (no polling).
const LIVE: &str = r#"
(function () {
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { headers: { 'x-ui-fragment': '1' } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (h) { if (h !== null) { document.querySelector('main').innerHTML = h; } })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var es = new EventSource('/_emulator/ui/events');
  es.addEventListener('changed', refresh);
  es.onopen = function () { document.body.dataset.live = 'on'; };
  es.onerror = function () { document.body.dataset.live = 'off'; };
})();
"#;

pub fn layout(title: &str, region: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ecs-emulator" }
                style { (PreEscaped(STYLE)) }
            }
            body data-live="off" {
                header {
                    a.brand href="/_emulator/" { "ecs-emulator" }
                    nav {
                        a href={ "/_emulator/?region=" (region) } { "Clusters" }
                        a href={ "/_emulator/ui/load-balancers?region=" (region) } { "Load balancers" }
                        a href={ "/_emulator/ui/repositories?region=" (region) } { "Repositories" }
                    }
                    span.region { (region) }
                    span.live title="live updates" { "●" }
                }
                main { (main) }
                script { (PreEscaped(LIVE)) }
            }
        }
    }
}

pub fn overview(summary: &Summary) -> Markup {
    let region = &summary.region;
    html! {
        @if !summary.faults.is_empty() {
            section.faults {
                h2 { "Faults" }
                ul.compact {
                    @for f in &summary.faults {
                        li {
                            b { (f.summary) } " "
                            span.muted { (f.id) " · " (if f.lasting { "until healed: ecs-emulator fault heal " } else { "happened once" })
                                @if f.lasting { code { (f.id) } } }
                        }
                    }
                }
            }
        }
        h1 { "Clusters" }
        @if summary.clusters.is_empty() {
            p.empty { "No clusters yet: " code { "aws ecs create-cluster --cluster-name demo" } }
        }
        @for c in &summary.clusters { (cluster_card(c, region)) }
        @if !summary.load_balancers.is_empty() {
            h2 { a href={ "/_emulator/ui/load-balancers?region=" (region) } { "Load balancers" } }
            ul.compact {
                @for lb in &summary.load_balancers {
                    li { b { (lb.name) } " " span.muted { (lb.kind) " · " (lb.state) }
                        @for l in &lb.listeners {
                            " " @if let Some(url) = &l.local_url { a href=(url) { (l.protocol) ":" (l.port) } }
                            @else { (l.protocol) ":" (l.port) }
                        }
                    }
                }
            }
        }
        @if !summary.repositories.is_empty() {
            h2 { a href={ "/_emulator/ui/repositories?region=" (region) } { "Repositories" } }
            ul.compact {
                @for r in &summary.repositories {
                    li { b { (r.name) } " " span.muted { (r.images.len()) " images" } }
                }
            }
        }
        (others(summary))
    }
}

fn others(summary: &Summary) -> Markup {
    html! {
        @for (heading, lines) in &summary.others {
            @if !lines.is_empty() {
                h2 { (heading) }
                ul.compact { @for line in lines { li { (line) } } }
            }
        }
    }
}

pub fn cluster_card(c: &ClusterView, region: &str) -> Markup {
    html! {
        section.cluster id={ "cluster-" (c.name) } {
            h2 {
                a href={ "/_emulator/ui/clusters/" (c.name) "?region=" (region) } { (c.name) }
                " " span.muted { (c.status) " · " (c.running_tasks) " running · " (c.pending_tasks) " pending" }
                @if let Some(cpu) = c.cpu_used_percent { " · CPU used " (format!("{cpu:.0}")) " %" }
                @if let Some(mem) = c.memory_used_percent { " · memory used " (format!("{mem:.0}")) " %" }
            }
            div.instances {
                @for i in &c.instances { (instance_box(i, &c.name, region)) }
                @if !c.unplaced.is_empty() {
                    div.instance.fargate {
                        div.title { b { "Fargate / not on an instance" } }
                        div.tasks { @for t in &c.unplaced { (task_chip(t, &c.name, region)) } }
                    }
                }
                @if c.instances.is_empty() && c.unplaced.is_empty() {
                    p.empty { "No container instances and no tasks." }
                }
            }
            @if !c.recently_stopped.is_empty() {
                details.stopped {
                    summary { "Recently stopped tasks (" (c.recently_stopped.len()) ")" }
                    ul.events {
                        @for t in &c.recently_stopped {
                            li { (task_chip(t, &c.name, region)) " " span.muted { (time(t.stopped_at)) } " " (t.stopped_reason) }
                        }
                    }
                }
            }
            @if !c.services.is_empty() {
                table.services {
                    tr { th { "Service" } th { "Status" } th { "Desired" } th { "Running" } th { "Pending" } th { "Deployments" } }
                    @for s in &c.services {
                        tr {
                            td { a href={ "/_emulator/ui/services/" (c.name) "/" (s.name) "?region=" (region) } { (s.name) } }
                            td { (s.status) } td { (s.desired) } td { (s.running) } td { (s.pending) }
                            td { @for d in &s.deployments {
                                span class={ "pill " (d.rollout_state.to_lowercase()) } { (d.status) " " (d.rollout_state) " " (d.running) "/" (d.desired) }
                            } }
                        }
                    }
                }
            }
        }
    }
}

fn percent(used: i64, total: i64) -> i64 {
    if total <= 0 {
        0
    } else {
        (used * 100 / total).clamp(0, 100)
    }
}

fn instance_box(i: &InstanceView, cluster: &str, region: &str) -> Markup {
    let cpu = percent(i.cpu_registered - i.cpu_remaining, i.cpu_registered);
    let mem = percent(
        i.memory_registered - i.memory_remaining,
        i.memory_registered,
    );
    html! {
        div class={ "instance " (i.status.to_lowercase()) } data-instance=(i.ec2_instance_id) {
            div.title {
                b { (i.ec2_instance_id) } " " span.muted { (i.instance_type) " · " (i.availability_zone) " · " (i.lifecycle) " · " (i.status) }
            }
            div.bar title={ "CPU reserved " (i.cpu_registered - i.cpu_remaining) " of " (i.cpu_registered) " units" } {
                span.label { "CPU" } span.fill style={ "width:" (cpu) "%" } {} span.value { (cpu) " %" }
            }
            div.bar title={ "memory reserved " (i.memory_registered - i.memory_remaining) " of " (i.memory_registered) " MiB" } {
                span.label { "MEM" } span.fill style={ "width:" (mem) "%" } {} span.value { (mem) " %" }
            }
            div.tasks {
                @for t in &i.tasks { (task_chip(t, cluster, region)) }
            }
        }
    }
}

fn task_chip(t: &TaskBox, cluster: &str, region: &str) -> Markup {
    html! {
        a class={ "task " (t.last_status.to_lowercase()) } data-task=(t.id)
            href={ "/_emulator/ui/tasks/" (cluster) "/" (t.id) "?region=" (region) }
            title={ (t.group) " · " (t.last_status) " → " (t.desired_status) " · cpu " (t.cpu) " · mem " (t.memory) } {
            (t.task_definition) " " span.muted { (short(&t.id)) " " (t.last_status) }
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn time(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

pub fn cluster_page(c: &ClusterView, region: &str) -> Markup {
    html! {
        p.crumbs { a href={ "/_emulator/?region=" (region) } { "Clusters" } " / " (c.name) }
        (cluster_card(c, region))
        @for s in &c.services {
            h3 { a href={ "/_emulator/ui/services/" (c.name) "/" (s.name) "?region=" (region) } { "Events of " (s.name) } }
            (events(s, 5))
        }
    }
}

fn events(s: &ServiceView, limit: usize) -> Markup {
    html! {
        ul.events {
            @for (at, message) in s.events.iter().take(limit) {
                li { span.muted { (time(*at)) } " " (message) }
            }
        }
    }
}

pub struct ServicePage<'a> {
    pub cluster: &'a str,
    pub region: &'a str,
    pub service: &'a ServiceView,
    pub tasks: &'a [TaskBox],
    pub activities: &'a [Value],
    pub alarms: &'a [Value],
}

pub fn service_page(p: &ServicePage) -> Markup {
    let s = p.service;
    html! {
        p.crumbs {
            a href={ "/_emulator/?region=" (p.region) } { "Clusters" } " / "
            a href={ "/_emulator/ui/clusters/" (p.cluster) "?region=" (p.region) } { (p.cluster) } " / " (s.name)
        }
        h1 { (s.name) " " span.muted { (s.status) " · desired " (s.desired) " · running " (s.running) " · pending " (s.pending) } }
        h2 { "Deployments" }
        table {
            tr { th { "Id" } th { "Status" } th { "Task definition" } th { "Desired" } th { "Running" } th { "Pending" } th { "Failed" } th { "Rollout" } }
            @for d in &s.deployments {
                tr {
                    td { code { (d.id) } } td { (d.status) } td { (d.task_definition) } td { (d.desired) }
                    td { (d.running) } td { (d.pending) } td { (d.failed) }
                    td { span class={ "pill " (d.rollout_state.to_lowercase()) } { (d.rollout_state) } " " span.muted { (d.rollout_state_reason) } }
                }
            }
        }
        h2 { "Tasks" }
        div.tasks { @for t in p.tasks { (task_chip(t, p.cluster, p.region)) } }
        @if !p.alarms.is_empty() {
            h2 { "Alarms" }
            ul.compact {
                @for a in p.alarms {
                    li { span class={ "pill " (str_of(a, "StateValue").to_lowercase()) } { (str_of(a, "StateValue")) } " " (str_of(a, "AlarmName")) " " span.muted { (str_of(a, "StateReason")) } }
                }
            }
        }
        @if !p.activities.is_empty() {
            h2 { "Scaling activities" }
            ul.events {
                @for a in p.activities {
                    li { span.muted { (time(a["StartTime"].as_f64().unwrap_or(0.0))) } " " (str_of(a, "StatusCode")) " " (str_of(a, "Description")) " " span.muted { (str_of(a, "Cause")) } }
                }
            }
        }
        h2 { "Events" }
        (events(s, 100))
    }
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub fn task_page(cluster: &str, region: &str, task: &Value, logs: &[(String, String)]) -> Markup {
    let arn = str_of(task, "taskArn");
    html! {
        p.crumbs {
            a href={ "/_emulator/?region=" (region) } { "Clusters" } " / "
            a href={ "/_emulator/ui/clusters/" (cluster) "?region=" (region) } { (cluster) } " / " (super::api::tail(arn))
        }
        h1 { "Task " (super::api::tail(arn)) }
        table.kv {
            @for (label, key) in [("Task definition", "taskDefinitionArn"), ("Last status", "lastStatus"),
                ("Desired status", "desiredStatus"), ("Launch type", "launchType"), ("Group", "group"),
                ("Started by", "startedBy"), ("Availability zone", "availabilityZone"), ("Health", "healthStatus"),
                ("Stop code", "stopCode"), ("Stopped reason", "stoppedReason")] {
                @if !str_of(task, key).is_empty() { tr { th { (label) } td { (str_of(task, key)) } } }
            }
            @for (label, key) in [("Created", "createdAt"), ("Started", "startedAt"), ("Stopping", "stoppingAt"), ("Stopped", "stoppedAt")] {
                @if let Some(t) = task[key].as_f64() { tr { th { (label) } td { (time(t)) } } }
            }
        }
        h2 { "Containers" }
        table {
            tr { th { "Name" } th { "Image" } th { "Status" } th { "Exit code" } th { "Reason" } th { "Ports" } th { "Health" } }
            @for c in task["containers"].as_array().into_iter().flatten() {
                tr {
                    td { (str_of(c, "name")) } td { code { (str_of(c, "image")) } } td { (str_of(c, "lastStatus")) }
                    td { @if let Some(code) = c["exitCode"].as_i64() { (code) } }
                    td { (str_of(c, "reason")) }
                    td { @for b in c["networkBindings"].as_array().into_iter().flatten() {
                        code { (str_of(b, "bindIP")) ":" (b["hostPort"].as_i64().unwrap_or(0)) " → " (b["containerPort"].as_i64().unwrap_or(0)) } " "
                    } }
                    td { (str_of(c, "healthStatus")) }
                }
            }
        }
        h2 { "Logs" }
        @if logs.is_empty() { p.empty { "No log lines." } }
        @else { pre.logs { @for (source, line) in logs { span.muted { (source) " " } (line) "\n" } } }
    }
}

pub fn load_balancers_page(lbs: &[LoadBalancerView]) -> Markup {
    html! {
        h1 { "Load balancers" }
        @if lbs.is_empty() { p.empty { "No load balancers." } }
        @for lb in lbs {
            section.lb {
                h2 { (lb.name) " " span.muted { (lb.kind) " · " (lb.state) " · " code { (lb.dns_name) } } }
                h3 { "Listeners" }
                ul.compact {
                    @for l in &lb.listeners {
                        li {
                            b { (l.protocol) ":" (l.port) } " "
                            @if let Some(url) = &l.local_url { a href=(url) { (url) } }
                            ul { @for r in &l.rules { li { (r) } } }
                        }
                    }
                }
                h3 { "Target groups" }
                @for g in &lb.target_groups {
                    p { b { (g.name) } }
                    table {
                        tr { th { "Target" } th { "Port" } th { "State" } th { "Reason" } th { "Description" } }
                        @for t in &g.targets {
                            tr { td { (t.id) } td { (t.port) } td { span class={ "pill " (t.state) } { (t.state) } } td { (t.reason) } td { (t.description) } }
                        }
                    }
                }
            }
        }
    }
}

pub fn repositories_page(repos: &[RepositoryView]) -> Markup {
    html! {
        h1 { "Repositories" }
        @if repos.is_empty() { p.empty { "No repositories." } }
        @for r in repos {
            section.repo {
                h2 { (r.name) " " span.muted { code { (r.uri) } " · tags " (r.tag_mutability) } }
                table {
                    tr { th { "Tags" } th { "Digest" } th { "Size" } th { "Pushed at" } }
                    @for i in &r.images {
                        tr {
                            td { (i.tags.join(", ")) } td { code { (short_digest(&i.digest)) } }
                            td { (format!("{:.1} MB", i.size_bytes as f64 / 1e6)) } td { (time(i.pushed_at)) }
                        }
                    }
                }
            }
        }
    }
}

fn short_digest(d: &str) -> &str {
    d.get(..19).unwrap_or(d)
}

pub fn not_found(what: &str) -> Markup {
    html! { h1 { "Not found" } p { (what) } p { a href="/_emulator/" { "Back to the clusters" } } }
}
