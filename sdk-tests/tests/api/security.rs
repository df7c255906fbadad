//! Binding: nothing listens on every interface by default, and the listener containers reach
//! serves only what containers need.

use sdk_tests::Emulator;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The sockets a process holds, by inode.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the emulator's fds")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse().ok())
        })
        .collect()
}

fn parse_addr(hex: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = if v6 {
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_mut(4).enumerate() {
            let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.to_le_bytes(),
        ))
    };
    Some(SocketAddr::new(ip, port))
}

/// Listening TCP sockets and bound UDP sockets of the process: (protocol, local address).
fn bound(pid: u32) -> Vec<(&'static str, SocketAddr)> {
    let inodes = socket_inodes(pid);
    let mut out = Vec::new();
    for (file, proto, v6, listening) in [
        ("tcp", "tcp", false, Some("0A")),
        ("tcp6", "tcp", true, Some("0A")),
        ("udp", "udp", false, None),
        ("udp6", "udp", true, None),
    ] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            if listening.is_some_and(|l| *state != l) {
                continue;
            }
            if !inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                continue;
            }
            if let Some(a) = parse_addr(local, v6) {
                out.push((proto, a));
            }
        }
    }
    out
}

#[test]
fn the_defaults_listen_on_loopback() {
    let out = std::process::Command::new(sdk_tests::binary())
        .arg("--help")
        .output()
        .expect("--help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[default: 127.0.0.1:4566]"), "{help}");
    assert!(help.contains("[default: 127.0.0.1:8053]"), "{help}");
}

/// With the default flags (but its own port), the emulator binds no wildcard address; what it
/// binds beyond loopback (the Docker bridge gateway, the task endpoint address, the containers'
/// DNS address) serves containers only: the control API is not there.
#[tokio::test]
async fn nothing_listens_on_every_interface_and_containers_get_no_control_api() {
    let emu = Emulator::start();
    let pid = emu.pid().expect("pid");
    // Docker connects in the background: wait (bounded) for the container-facing listener, when
    // Docker is there at all.
    let docker = std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let outside = |b: &[(&str, SocketAddr)]| {
        b.iter()
            .filter(|(p, a)| *p == "tcp" && !a.ip().is_loopback() && a.port() == emu.port())
            .map(|(_, a)| *a)
            .collect::<Vec<_>>()
    };
    let mut sockets = bound(pid);
    while docker && outside(&sockets).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no container-facing listener: {sockets:?}\n{}",
            emu.log()
        );
        std::thread::sleep(Duration::from_millis(200));
        sockets = bound(pid);
    }
    assert!(!sockets.is_empty());
    for (proto, addr) in &sockets {
        assert!(
            !addr.ip().is_unspecified(),
            "{proto} {addr} listens on every interface: {sockets:?}"
        );
    }
    for addr in outside(&sockets) {
        let get = |path: &str| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .expect("connect to the container-facing listener");
            s.set_read_timeout(Some(Duration::from_secs(20))).ok();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .expect("send");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        };
        for path in [
            "/_emulator/state",
            "/_emulator/",
            "/_emulator/health",
            "/_emulator/summary",
        ] {
            let r = get(path);
            assert!(r.starts_with("HTTP/1.1 404"), "{addr}{path}: {r}");
        }
        // The AWS APIs are there (an unsigned browser-style GET / gets the pointer page).
        let r = get("/");
        assert!(r.starts_with("HTTP/1.1 200"), "{addr}/: {r}");
    }
}
