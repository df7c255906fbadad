//! The ALB data plane beyond HTTP/1.1: HTTP/2 from clients (h2c prior knowledge) and connection
//! upgrades (WebSocket) spliced through to the target.

use sdk_tests::Emulator;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

/// A target that answers plain requests with 200 "ok" and upgrades WebSocket requests to an echo.
fn upgrade_echo_target() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = conn;
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if text.contains("upgrade: websocket") {
                    let _ = c.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                } else {
                    let _ = c.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn http2_clients_and_websocket_upgrades_pass_through_the_alb() {
    let emu = Emulator::start();
    let (ec2, elb) = (emu.ec2(), emu.elbv2());
    let subnets: Vec<String> = ec2
        .describe_subnets()
        .send()
        .await
        .expect("subnets")
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .take(2)
        .collect();
    let vpc = ec2.describe_vpcs().send().await.expect("vpcs").vpcs()[0]
        .vpc_id()
        .expect("vpc")
        .to_string();
    let target_port = upgrade_echo_target();
    let lb = elb
        .create_load_balancer()
        .name("proto")
        .set_subnets(Some(subnets))
        .send()
        .await
        .expect("lb");
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .expect("arn")
        .to_string();
    let tg = elb
        .create_target_group()
        .name("proto")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(i32::from(target_port))
        .vpc_id(vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
        .send()
        .await
        .expect("tg");
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .expect("tg arn")
        .to_string();
    elb.register_targets()
        .target_group_arn(&tg_arn)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id("127.0.0.1")
                .port(i32::from(target_port))
                .build(),
        )
        .send()
        .await
        .expect("register");
    let port = 20_000 + (std::process::id() % 2000) as i32;
    elb.create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(port)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&tg_arn)
                .build(),
        )
        .send()
        .await
        .expect("listener");
    // The listener's own socket (its port, else a free one listed in /_emulator/state).
    let state = emu.raw("GET", "/_emulator/state", &[], b"").json();
    let addr = state["loadBalancerListeners"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("127.0.0.1:{port}"));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // HTTP/2 with prior knowledge (h2c) is answered in HTTP/2.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--http2-prior-knowledge",
            &format!("http://{addr}/"),
        ])
        .output()
        .expect("curl (the CI script installs it)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");

    // A WebSocket upgrade reaches the target, and then bytes flow both ways.
    let mut c = TcpStream::connect(&addr).expect("connect to the listener");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"GET /chat HTTP/1.1\r\nHost: proto\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").expect("upgrade request");
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = c.read(&mut buf).expect("read");
        assert!(n > 0, "connection closed before the 101");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    c.write_all(b"ping-123").expect("frame");
    let n = c.read(&mut buf).expect("echo");
    assert_eq!(&buf[..n], b"ping-123");
}
