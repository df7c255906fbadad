//! A full data dir is survivable (issue 15 fix 4): writes answer 503 ServiceUnavailable, reads
//! keep working, /_emulator/health says degraded, and once space is freed writes work again
//! without a restart; nothing acknowledged is lost and nothing half-written is visible.
//!
//! The data dir is on a small tmpfs: the test mounts one (it runs as root in CI) and fails, never
//! skips, when mounting is not permitted.

use sdk_tests::{eventually, Emulator};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a fresh directory; unmounted (and the directory removed) on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("ecs-emulator-tmpfs-")
            .tempdir()
            .expect("a mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(
            out.status.success(),
            "this test needs a small tmpfs for the data dir and mounting one is not permitted here \
             (`mount -t tmpfs` failed: {}). Run the sdk-tests as root, as CI does.",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system is full; returns its path.
    pub fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write_all(&chunk) {
                Ok(()) => written += chunk.len() as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs failed otherwise: {e}"),
            }
            assert!(written < 1 << 30, "the tmpfs never filled");
        }
        // The last partial chunk may have left a few bytes: fill them one at a time.
        while f.write_all(&[0u8; 512]).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // The emulator is gone by now; a helper of it (the EFS reaper) may still hold the mount
        // for a moment: detach it then.
        let plain = Command::new("umount").arg(self.dir.path()).status();
        if !plain.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

fn container(name: &str, pad: usize) -> aws_sdk_ecs::types::ContainerDefinition {
    aws_sdk_ecs::types::ContainerDefinition::builder()
        .name(name)
        .image("busybox")
        .memory(16)
        .environment(
            aws_sdk_ecs::types::KeyValuePair::builder()
                .name("PAD")
                .value("x".repeat(pad))
                .build(),
        )
        .build()
}

/// Every revision of the family `fill`, in order.
async fn revisions(ecs: &aws_sdk_ecs::Client) -> Vec<String> {
    let mut arns = Vec::new();
    let mut pages = ecs
        .list_task_definitions()
        .family_prefix("fill")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        arns.extend(
            page.expect("ListTaskDefinitions")
                .task_definition_arns()
                .iter()
                .cloned(),
        );
    }
    arns
}

#[tokio::test]
async fn a_full_data_dir_refuses_writes_with_503_and_recovers_without_a_restart() {
    let fs = Tmpfs::mount("24m");
    let data = tempfile::Builder::new()
        .prefix("data-")
        .tempdir_in(fs.path())
        .expect("the data dir on the tmpfs");
    let mut emu = Emulator::start_in(data, &[]);
    let ecs = emu.ecs_with(sdk_tests::ACCESS_KEY, sdk_tests::SECRET_KEY, |b| {
        b.retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
    });
    ecs.create_cluster()
        .cluster_name("before")
        .send()
        .await
        .expect("CreateCluster before the disk fills");
    let health = emu.raw("GET", "/_emulator/health", &[], b"").json();
    assert_eq!(health["status"], "running", "{health}");
    assert_eq!(health["storage"]["status"], "ok", "{health}");

    emu.ecr()
        .create_repository()
        .repository_name("full")
        .send()
        .await
        .expect("CreateRepository");
    let token = emu
        .ecr()
        .get_authorization_token()
        .send()
        .await
        .expect("GetAuthorizationToken")
        .authorization_data()[0]
        .authorization_token()
        .expect("token")
        .to_string();
    let basic = format!("Basic {token}");

    let filler = fs.fill();

    // A registry push that does not fit: distribution's 503 UNAVAILABLE, nothing kept.
    let blob = vec![7u8; 256 * 1024];
    let digest = format!("sha256:{}", sdk_tests::sha256_hex(&blob));
    let r = emu.raw(
        "POST",
        &format!("/v2/full/blobs/uploads/?digest={digest}"),
        &[
            ("Authorization", basic.as_str()),
            ("Content-Type", "application/octet-stream"),
        ],
        &blob,
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "UNAVAILABLE", "{}", r.text());
    let r = emu.raw(
        "HEAD",
        &format!("/v2/full/blobs/{digest}"),
        &[("Authorization", basic.as_str())],
        b"",
    );
    assert_eq!(r.status, 404, "the refused blob is not there");

    // Register revisions (~30 KiB each) until one is refused: redb may still reuse pages it
    // freed, so the first writes after the fill can succeed (and are then durable).
    let mut acknowledged = 0u32;
    let refused = loop {
        match ecs
            .register_task_definition()
            .family("fill")
            .container_definitions(container("app", 30_000))
            .send()
            .await
        {
            Ok(r) => {
                acknowledged += 1;
                assert_eq!(
                    r.task_definition().map(|t| t.revision()),
                    Some(acknowledged as i32)
                );
            }
            Err(e) => break e,
        }
        assert!(
            acknowledged < 200,
            "200 registrations of 30 KiB on a full 24 MiB tmpfs all succeeded"
        );
    };
    use aws_sdk_ecs::error::ProvideErrorMetadata;
    assert_eq!(crate::status(&refused), Some(503), "{refused:?}");
    assert_eq!(refused.code(), Some("ServiceUnavailable"), "{refused:?}");
    let message = refused.message().unwrap_or_default().to_string();
    assert!(
        message.contains("no space left on device") && message.contains("not made"),
        "the message says what happened: {message}"
    );
    // Health says degraded, and why (until a write succeeds again).
    let health = emu.raw("GET", "/_emulator/health", &[], b"");
    assert_eq!(health.status, 200, "{}", health.text());
    let health = health.json();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["storage"]["status"], "degraded", "{health}");
    assert!(
        health["storage"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no space left on device")),
        "{health}"
    );

    // Another write: the database was reopened and may reuse the pages the refused change
    // freed, so a small one can fit. Either it is refused the same way, or it is acknowledged
    // (and then kept like any other).
    let while_full_kept = match ecs.create_cluster().cluster_name("while-full").send().await {
        Ok(_) => true,
        Err(err) => {
            assert_eq!(crate::status(&err), Some(503), "{err:?}");
            assert_eq!(err.code(), Some("ServiceUnavailable"), "{err:?}");
            false
        }
    };

    // Reads keep working, and show nothing half-written: exactly the acknowledged revisions.
    let expect_revisions = |acknowledged: u32| {
        (1..=acknowledged)
            .map(|n| {
                format!(
                    "arn:aws:ecs:{}:{}:task-definition/fill:{n}",
                    sdk_tests::REGION,
                    sdk_tests::ACCOUNT
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        revisions(&ecs).await,
        expect_revisions(acknowledged),
        "on a full disk"
    );
    let clusters = ecs
        .list_clusters()
        .send()
        .await
        .expect("ListClusters on a full disk");
    assert_eq!(
        clusters.cluster_arns().len(),
        1 + usize::from(while_full_kept),
        "{clusters:?}"
    );

    // Free the space: health turns running and writes work, with no restart.
    std::fs::remove_file(&filler).expect("remove the filler");
    eventually(30, "health running once space is freed", || async {
        let h = emu.raw("GET", "/_emulator/health", &[], b"").json();
        (h["status"] == "running" && h["storage"]["status"] == "ok").then_some(())
    })
    .await;
    let r = ecs
        .register_task_definition()
        .family("fill")
        .container_definitions(container("app", 100))
        .send()
        .await
        .expect("RegisterTaskDefinition after space is freed");
    acknowledged += 1;
    assert_eq!(
        r.task_definition().map(|t| t.revision()),
        Some(acknowledged as i32),
        "the refused registration took no revision"
    );
    ecs.create_cluster()
        .cluster_name("after")
        .send()
        .await
        .expect("CreateCluster after space is freed");

    // And all of it is on disk: kill -9, restart on the same data dir.
    emu.restart();
    let ecs = emu.ecs();
    assert_eq!(
        revisions(&ecs).await,
        expect_revisions(acknowledged),
        "after the restart"
    );
    let mut clusters: Vec<String> = ecs
        .list_clusters()
        .send()
        .await
        .expect("ListClusters after the restart")
        .cluster_arns()
        .iter()
        .filter_map(|a| a.rsplit('/').next().map(str::to_string))
        .collect();
    clusters.sort();
    let expected: &[&str] = if while_full_kept {
        &["after", "before", "while-full"]
    } else {
        &["after", "before"]
    };
    assert_eq!(clusters, expected, "exactly the acknowledged clusters");
    drop(emu);
    drop(fs);
}
