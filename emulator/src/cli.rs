//! The commands that talk to a running emulator: `status`, `reset`, `logs`, `fault …`.

use crate::config::{Command, Config};
use crate::ui::view::{ClusterView, ServiceView, Summary};
use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// --admin-token (ECS_EMULATOR_ADMIN_TOKEN), sent to the control API when given.
static ADMIN_TOKEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Runs a client command; `None` when the command is not one of these.
pub fn run(config: &Config) -> Option<anyhow::Result<()>> {
    let (target, action): (_, Box<dyn FnOnce(String) -> _>) = match config.command.clone()? {
        Command::Status { target, json } => (target, Box::new(move |url| status(url, json))),
        Command::Reset { target } => (target, Box::new(reset)),
        Command::Logs {
            task,
            cluster,
            target,
        } => (target, Box::new(move |url| logs(url, cluster, task))),
        Command::WaitStable {
            cluster,
            service,
            timeout,
            target,
        } => (
            target,
            Box::new(move |url| wait_stable(url, cluster, service, timeout)),
        ),
        Command::Fault { action, target } => (
            target,
            Box::new(move |url| crate::faults::cli::run(url, action)),
        ),
        _ => return None,
    };
    let _ = ADMIN_TOKEN.set(config.admin_token.clone());
    let endpoint = target
        .endpoint
        .unwrap_or_else(|| format!("http://{}", config.listen))
        .trim_end_matches('/')
        .to_string();
    Some(action(endpoint))
}

async fn call(method: http::Method, url: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    request(method, url, None).await
}

/// One request to the emulator (a JSON body when given); the status and the body.
pub(crate) async fn request(
    method: http::Method,
    url: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url)
        .header("accept", "application/json");
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    if let Some(token) = ADMIN_TOKEN.get().and_then(|t| t.as_deref()) {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let request = builder.body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))?;
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(30), client.request(request))
            .await
            .map_err(|_| anyhow::anyhow!("the emulator at {url} did not answer within 30 s"))?
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the emulator at {url} ({e}). Is it running? Start it with \
                 `ecs-emulator` (or `cargo run --release -p ecs-emulator`), or point \
                 --endpoint / ECS_EMULATOR_ENDPOINT at it."
                )
            })?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, body))
}

pub(crate) fn block_on<T>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

fn status(endpoint: String, json: bool) -> anyhow::Result<()> {
    let (code, body) = block_on(call(
        http::Method::GET,
        &format!("{endpoint}/_emulator/summary"),
    ))?;
    if code != 200 {
        bail!(
            "the emulator answered HTTP {code}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    if json {
        println!("{}", String::from_utf8_lossy(&body));
        return Ok(());
    }
    let summary: Summary = serde_json::from_slice(&body).context("unexpected summary")?;
    print!("{}", render_status(&endpoint, &summary));
    Ok(())
}

fn reset(endpoint: String) -> anyhow::Result<()> {
    let (code, body) = block_on(call(
        http::Method::POST,
        &format!("{endpoint}/_emulator/reset"),
    ))?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if code != 200 {
        bail!(
            "reset failed (HTTP {code}): {}",
            v["error"].as_str().unwrap_or("unknown error")
        );
    }
    println!(
        "reset: all state dropped, {} containers removed",
        v["containersRemoved"].as_i64().unwrap_or(0)
    );
    Ok(())
}

fn logs(endpoint: String, cluster: String, task: String) -> anyhow::Result<()> {
    let id = task.rsplit('/').next().unwrap_or(&task).to_string();
    let url = format!("{endpoint}/_emulator/tasks/{cluster}/{id}/logs");
    let (code, body) = block_on(call(http::Method::GET, &url))?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if code != 200 {
        bail!(
            "{}",
            v["message"]
                .as_str()
                .unwrap_or("the emulator refused the request")
        );
    }
    for l in v["lines"].as_array().into_iter().flatten() {
        println!(
            "{}  {}",
            l["container"].as_str().unwrap_or(""),
            l["line"].as_str().unwrap_or("").trim_end()
        );
    }
    Ok(())
}

/// One progress line for a service: counts and deployments.
pub fn progress_line(s: &ServiceView, elapsed: u64) -> String {
    let deployments: Vec<String> = s
        .deployments
        .iter()
        .map(|d| {
            format!(
                "{} {} {}/{}",
                d.status, d.rollout_state, d.running, d.desired
            )
        })
        .collect();
    format!(
        "{}: {}/{} running, {} pending · {} · {elapsed} s",
        s.name,
        s.running,
        s.desired,
        s.pending,
        deployments.join("; ")
    )
}

/// Stable as the services-stable waiter says: one deployment and running = desired.
pub fn is_stable(s: &ServiceView) -> bool {
    s.deployments.len() == 1 && s.running == s.desired && s.pending == 0
}

fn wait_stable(
    endpoint: String,
    cluster: String,
    service: String,
    timeout: u64,
) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let started = std::time::Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last = String::new();
    block_on(async {
        loop {
            let (code, body) =
                call(http::Method::GET, &format!("{endpoint}/_emulator/summary")).await?;
            if code != 200 {
                bail!(
                    "the emulator answered HTTP {code}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let summary: Summary = serde_json::from_slice(&body).context("unexpected summary")?;
            let Some(c) = summary.clusters.iter().find(|c| c.name == cluster) else {
                bail!("no cluster {cluster} (aws ecs list-clusters lists them)");
            };
            let Some(s) = c.services.iter().find(|s| s.name == service) else {
                bail!("no service {service} in cluster {cluster} (aws ecs list-services --cluster {cluster})");
            };
            let elapsed = started.elapsed().as_secs();
            let line = progress_line(s, elapsed);
            // On a terminal one line rewritten in place; elsewhere a line per change.
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else if strip_elapsed(&line) != strip_elapsed(&last) {
                eprintln!("{line}");
            }
            let _ = std::io::stderr().flush();
            last = line;
            if is_stable(s) {
                if tty {
                    eprintln!();
                }
                println!("{service} is stable: {}/{} running", s.running, s.desired);
                return Ok(());
            }
            if elapsed >= timeout {
                if tty {
                    eprintln!();
                }
                let event = s
                    .events
                    .first()
                    .map(|(_, m)| m.as_str())
                    .unwrap_or("no events");
                bail!("{service} was not stable after {timeout} s; its last event: {event}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    })
}

fn strip_elapsed(line: &str) -> &str {
    line.rsplit_once(" · ").map(|(a, _)| a).unwrap_or(line)
}

fn pct(used: i64, total: i64) -> String {
    if total <= 0 {
        return "-".into();
    }
    format!("{used}/{total} ({}%)", used * 100 / total)
}

/// The status screen, as text.
pub fn render_status(endpoint: &str, s: &Summary) -> String {
    let mut out = format!(
        "ecs-emulator at {endpoint} · account {} · {}\ndashboard: {endpoint}/_emulator/\n",
        s.account, s.region
    );
    if !s.faults.is_empty() {
        out.push_str("\nFaults\n");
        for f in &s.faults {
            let how = if f.lasting {
                format!("heal: ecs-emulator fault heal {}", f.id)
            } else {
                "happened once".to_string()
            };
            out.push_str(&format!("  {}  {}  ({how})\n", f.id, f.summary));
        }
    }
    if s.clusters.is_empty() {
        out.push_str("\nNo clusters.\n");
    }
    for c in &s.clusters {
        out.push_str(&cluster_text(c));
    }
    if !s.load_balancers.is_empty() {
        out.push_str("\nLoad balancers\n");
        for lb in &s.load_balancers {
            out.push_str(&format!("  {} ({}, {})\n", lb.name, lb.kind, lb.state));
            for l in &lb.listeners {
                let url = l
                    .local_url
                    .clone()
                    .unwrap_or_else(|| "not listening".into());
                out.push_str(&format!("    {}:{}  {url}\n", l.protocol, l.port));
            }
            for g in &lb.target_groups {
                let healthy = g.targets.iter().filter(|t| t.state == "healthy").count();
                out.push_str(&format!(
                    "    target group {}: {healthy}/{} healthy\n",
                    g.name,
                    g.targets.len()
                ));
            }
        }
    }
    if !s.repositories.is_empty() {
        out.push_str("\nRepositories\n");
        for r in &s.repositories {
            out.push_str(&format!("  {}  {} images\n", r.uri, r.images.len()));
        }
    }
    for (heading, lines) in &s.others {
        if lines.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{heading}\n"));
        for l in lines {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out
}

fn cluster_text(c: &ClusterView) -> String {
    let mut out = format!(
        "\nCluster {} ({}) · {} running · {} pending\n",
        c.name, c.status, c.running_tasks, c.pending_tasks
    );
    if !c.instances.is_empty() {
        out.push_str(&format!(
            "  {:<21} {:<11} {:<11} {:<9} {:<10} {:<18} {:<18} TASKS\n",
            "INSTANCE", "TYPE", "AZ", "LIFECYCLE", "STATUS", "CPU RESERVED", "MEM RESERVED"
        ));
    }
    for i in &c.instances {
        out.push_str(&format!(
            "  {:<21} {:<11} {:<11} {:<9} {:<10} {:<18} {:<18} {}\n",
            i.ec2_instance_id,
            i.instance_type,
            i.availability_zone,
            i.lifecycle,
            i.status,
            pct(i.cpu_registered - i.cpu_remaining, i.cpu_registered),
            pct(
                i.memory_registered - i.memory_remaining,
                i.memory_registered
            ),
            i.tasks.len()
        ));
    }
    if !c.unplaced.is_empty() {
        out.push_str(&format!(
            "  Fargate / unplaced tasks: {}\n",
            c.unplaced.len()
        ));
    }
    if !c.services.is_empty() {
        out.push_str(&format!(
            "  {:<24} {:<9} {:>7} {:>7} {:>7}  DEPLOYMENTS\n",
            "SERVICE", "STATUS", "DESIRED", "RUNNING", "PENDING"
        ));
    }
    for s in &c.services {
        let deployments: Vec<String> = s
            .deployments
            .iter()
            .map(|d| {
                format!(
                    "{} {} {}/{}",
                    d.status, d.rollout_state, d.running, d.desired
                )
            })
            .collect();
        out.push_str(&format!(
            "  {:<24} {:<9} {:>7} {:>7} {:>7}  {}\n",
            s.name,
            s.status,
            s.desired,
            s.running,
            s.pending,
            deployments.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::view::{DeploymentView, InstanceView};

    #[test]
    fn progress_and_stability() {
        let mut s = ServiceView {
            name: "web".into(),
            desired: 2,
            running: 1,
            pending: 1,
            deployments: vec![DeploymentView {
                status: "PRIMARY".into(),
                rollout_state: "IN_PROGRESS".into(),
                desired: 2,
                running: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            progress_line(&s, 7),
            "web: 1/2 running, 1 pending · PRIMARY IN_PROGRESS 1/2 · 7 s"
        );
        assert!(!is_stable(&s));
        s.running = 2;
        s.pending = 0;
        assert!(is_stable(&s));
        assert_eq!(strip_elapsed("a · b · 7 s"), "a · b");
    }

    #[test]
    fn status_shows_instances_reservations_and_services() {
        let summary = Summary {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            clusters: vec![ClusterView {
                name: "demo".into(),
                status: "ACTIVE".into(),
                running_tasks: 2,
                instances: vec![InstanceView {
                    ec2_instance_id: "i-0123".into(),
                    instance_type: "m5.large".into(),
                    availability_zone: "us-east-1a".into(),
                    lifecycle: "on-demand".into(),
                    status: "ACTIVE".into(),
                    cpu_registered: 2048,
                    cpu_remaining: 1536,
                    memory_registered: 7680,
                    memory_remaining: 7552,
                    ..Default::default()
                }],
                services: vec![ServiceView {
                    name: "web".into(),
                    status: "ACTIVE".into(),
                    desired: 2,
                    running: 2,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render_status("http://127.0.0.1:4566", &summary);
        assert!(
            text.contains("Cluster demo (ACTIVE) · 2 running · 0 pending"),
            "{text}"
        );
        assert!(text.contains("512/2048 (25%)"), "{text}");
        assert!(text.contains("m5.large"), "{text}");
        assert!(text.contains("web "), "{text}");
        assert!(
            text.contains("dashboard: http://127.0.0.1:4566/_emulator/"),
            "{text}"
        );
    }
}
