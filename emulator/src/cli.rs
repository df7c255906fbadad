//! The commands that talk to a running emulator: `status`, `reset`, `logs`.

use crate::config::{Command, Config};
use crate::ui::view::{ClusterView, Summary};
use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

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
        _ => return None,
    };
    let endpoint = target
        .endpoint
        .unwrap_or_else(|| format!("http://{}", config.listen))
        .trim_end_matches('/')
        .to_string();
    Some(action(endpoint))
}

async fn call(method: http::Method, url: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("accept", "application/json")
        .body(Full::default())?;
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

fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
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
    use crate::ui::view::{InstanceView, ServiceView};

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
