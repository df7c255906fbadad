//! Durable state: what an acknowledged call wrote survives kill -9; --ephemeral keeps nothing.

use sdk_tests::{Emulator, ACCOUNT, REGION};

#[tokio::test]
async fn cluster_survives_kill_9_and_restart() {
    let mut emu = Emulator::start();
    emu.ecs()
        .create_cluster()
        .cluster_name("durable")
        .send()
        .await
        .expect("CreateCluster");
    let first_port = emu.port();
    emu.kill9();
    emu.restart();
    assert!(
        emu.data_dir().join("state.redb").is_file(),
        "state lives in <data dir>/state.redb"
    );
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert_eq!(
        listed.cluster_arns(),
        [format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/durable")],
        "after kill -9 and restart on the same data dir (ports {first_port} then {})",
        emu.port()
    );
    let described = emu
        .ecs()
        .describe_clusters()
        .clusters("durable")
        .send()
        .await
        .expect("DescribeClusters");
    assert_eq!(described.clusters().len(), 1);
    assert_eq!(described.clusters()[0].status(), Some("ACTIVE"));

    // And a second crash right after more writes.
    emu.ecs()
        .delete_cluster()
        .cluster("durable")
        .send()
        .await
        .expect("DeleteCluster");
    emu.restart();
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
}

#[tokio::test]
async fn ephemeral_state_is_gone_after_restart() {
    let mut emu = Emulator::start_with(&["--ephemeral"]);
    emu.ecs()
        .create_cluster()
        .cluster_name("fleeting")
        .send()
        .await
        .expect("CreateCluster");
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert_eq!(listed.cluster_arns().len(), 1, "listed before the restart");
    emu.restart();
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
}
