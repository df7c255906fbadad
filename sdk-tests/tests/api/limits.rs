//! Limits as AWS has them: request sizes per service, registry manifests that lie about sizes.

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::ContainerDefinition;
use sdk_tests::Emulator;

/// RegisterTaskDefinition: the containerDefinitions document may be 64 KiB (ECS's quota); a
/// 10 MB command is refused with ClientException, one just under the limit is fine.
#[tokio::test]
async fn register_task_definition_is_limited_to_64_kib_of_container_definitions() {
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let with_command = |len: usize| {
        ecs.register_task_definition()
            .family("big")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("c")
                    .image("busybox")
                    .memory(16)
                    .command("x".repeat(len))
                    .build(),
            )
    };
    let err = with_command(10 * 1024 * 1024)
        .send()
        .await
        .expect_err("a 10 MB command");
    assert_eq!(err.code(), Some("ClientException"), "{err:?}");
    assert_eq!(crate::status(&err), Some(400));
    assert!(
        err.message().unwrap_or_default().contains("64 KiB"),
        "{err:?}"
    );
    let err = with_command(65 * 1024)
        .send()
        .await
        .expect_err("just over 64 KiB");
    assert_eq!(err.code(), Some("ClientException"), "{err:?}");
    with_command(60 * 1024)
        .send()
        .await
        .expect("60 KiB of container definitions");
}

/// A manifest whose descriptor sizes are not the blobs' is MANIFEST_INVALID, as distribution
/// answers; with the right sizes the same manifest is accepted.
#[tokio::test]
async fn manifests_must_state_the_blob_sizes() {
    let emu = Emulator::start();
    let ecr = emu.ecr();
    ecr.create_repository()
        .repository_name("sizes")
        .send()
        .await
        .expect("create repository");
    let token = ecr
        .get_authorization_token()
        .send()
        .await
        .expect("token")
        .authorization_data()[0]
        .authorization_token()
        .expect("token")
        .to_string();
    let basic = format!("Basic {token}");
    let auth = ("Authorization", basic.as_str());
    let push = |blob: &[u8]| {
        let digest = format!("sha256:{}", sdk_tests::sha256_hex(blob));
        let r = emu.raw(
            "POST",
            &format!("/v2/sizes/blobs/uploads/?digest={digest}"),
            &[auth, ("Content-Type", "application/octet-stream")],
            blob,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        digest
    };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"not really a tarball, but bytes of a known size";
    let (config_digest, layer_digest) = (push(config), push(layer));
    let manifest = |layer_size: usize| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]
        })
        .to_string()
    };
    let ct = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    for wrong in [layer.len() - 1, layer.len() + 1000] {
        let r = emu.raw(
            "PUT",
            "/v2/sizes/manifests/v1",
            &[auth, ct],
            manifest(wrong).as_bytes(),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(
            r.json()["errors"][0]["code"],
            "MANIFEST_INVALID",
            "{}",
            r.text()
        );
    }
    let r = emu.raw(
        "PUT",
        "/v2/sizes/manifests/v1",
        &[auth, ct],
        manifest(layer.len()).as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// A client that never finishes its headers holds its own connection for the header timeout
/// (20 s), then it is closed; hundreds of idle sockets meanwhile do not keep others waiting.
#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_clients_hold_only_their_own_connection_for_a_while() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let emu = Emulator::start();
    let addr = ("127.0.0.1", emu.port());
    let mut slow = std::net::TcpStream::connect(addr).expect("connect");
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar")
        .expect("half a header");
    let idle: Vec<std::net::TcpStream> = (0..500)
        .map(|_| std::net::TcpStream::connect(addr).expect("an idle connection"))
        .collect();
    let started = Instant::now();
    emu.ecs()
        .list_clusters()
        .send()
        .await
        .expect("a normal client is served");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The slow client's connection is closed by the server (EOF), bounded wait.
    slow.set_read_timeout(Some(Duration::from_secs(45)))
        .expect("timeout");
    let mut rest = Vec::new();
    let started = Instant::now();
    slow.read_to_end(&mut rest)
        .expect("the server closes the connection");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(40), "closed after {waited:?}");
    drop(idle);
}
