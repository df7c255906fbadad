//! The control API under /_emulator.

use sdk_tests::Emulator;

#[test]
fn health_answers_running() {
    let emu = Emulator::start();
    let r = emu.raw("GET", "/_emulator/health", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "running", "{v}");
    assert_eq!(v["durable"], true, "{v}");
    assert!(v["version"].is_string(), "{v}");

    let emu = Emulator::start_with(&["--ephemeral"]);
    let v = emu.raw("GET", "/_emulator/health", &[], b"").json();
    assert_eq!(v["durable"], false, "{v}");
}

#[tokio::test]
async fn state_summarises_and_reset_empties() {
    let emu = Emulator::start();
    let ecs = emu.ecs();
    ecs.create_cluster()
        .cluster_name("to-reset")
        .send()
        .await
        .expect("CreateCluster");

    let r = emu.raw("GET", "/_emulator/state", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let state = r.json();
    assert_eq!(state["durable"], true, "{state}");
    assert_eq!(state["accountId"], sdk_tests::ACCOUNT, "{state}");
    assert_eq!(state["region"], "us-east-1", "{state}");
    assert_eq!(
        state["dataDir"].as_str().map(std::path::PathBuf::from),
        Some(emu.data_dir().to_path_buf()),
        "{state}"
    );
    let rows: u64 = state["tables"]
        .as_object()
        .expect("tables")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert!(rows >= 1, "the cluster is a row somewhere: {state}");

    let r = emu.raw("POST", "/_emulator/reset", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["reset"], true);

    let listed = ecs.list_clusters().send().await.expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
    let described = ecs
        .describe_clusters()
        .clusters("to-reset")
        .send()
        .await
        .expect("DescribeClusters");
    assert!(described.clusters().is_empty(), "{described:?}");
    assert_eq!(described.failures().len(), 1);
    assert_eq!(described.failures()[0].reason(), Some("MISSING"));

    // The reset is durable too: a restart does not bring the cluster back.
    let mut emu = emu;
    emu.restart();
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
}
