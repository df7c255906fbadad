//! Active health checks: one probe per target per interval (emulator clock), each on a fresh
//! connection, as ALB's checker does; results go to ELBv2's health book.

use crate::faults::network::Effect;
use crate::services::elbv2::health::Failure;
use crate::services::elbv2::model::HealthCheck;
use bytes::Bytes;
use http_body_util::Empty;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Whether `status` is accepted by a matcher ("200", "200,202", "200-299").
pub fn matcher_accepts(matcher: &str, status: u16) -> bool {
    matcher.split(',').any(|part| match part.split_once('-') {
        Some((a, b)) => match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            (Ok(a), Ok(b)) => (a..=b).contains(&status),
            _ => false,
        },
        None => part.trim().parse::<u16>() == Ok(status),
    })
}

/// Probes one target through a fault's effect: a blackholed target times out, a slowed one
/// answers late (and times out when later than `timeout`).
pub async fn probe_through(
    effect: Option<Effect>,
    hc: &HealthCheck,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(), Failure> {
    match effect {
        Some(Effect::Blackhole) => {
            tokio::time::sleep(timeout).await;
            Err(Failure::Timeout)
        }
        Some(Effect::Delay(d)) if d >= timeout => {
            tokio::time::sleep(timeout).await;
            Err(Failure::Timeout)
        }
        Some(Effect::Delay(d)) => {
            tokio::time::sleep(d).await;
            probe(hc, addr, timeout - d).await
        }
        None => probe(hc, addr, timeout).await,
    }
}

/// Probes one target; `timeout` is real time.
pub async fn probe(hc: &HealthCheck, addr: SocketAddr, timeout: Duration) -> Result<(), Failure> {
    match tokio::time::timeout(timeout, probe_inner(hc, addr)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout),
    }
}

async fn probe_inner(hc: &HealthCheck, addr: SocketAddr) -> Result<(), Failure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| Failure::Failed)?;
    if !matches!(hc.protocol.as_str(), "HTTP" | "HTTPS") {
        return Ok(());
    }
    // HTTPS checks are made as TCP connects (the targets' certificates are not verified anyway).
    if hc.protocol == "HTTPS" {
        return Ok(());
    }
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|_| Failure::Failed)?;
    let driver = tokio::spawn(conn);
    let req = http::Request::builder()
        .method("GET")
        .uri(hc.path.as_deref().unwrap_or("/"))
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "ELB-HealthChecker/2.0")
        .header(http::header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|_| Failure::Failed)?;
    let result = sender.send_request(req).await;
    driver.abort();
    let response = result.map_err(|_| Failure::Failed)?;
    let status = response.status().as_u16();
    let matcher = hc.http_code.as_deref().unwrap_or("200");
    if matcher_accepts(matcher, status) {
        Ok(())
    } else {
        Err(Failure::Code(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert!(matcher_accepts("200", 200));
        assert!(!matcher_accepts("200", 404));
        assert!(matcher_accepts("200,404", 404));
        assert!(matcher_accepts("200-299", 204));
        assert!(!matcher_accepts("200-299", 302));
    }
}
