//! awsJson 1.1 through aws-sdk-ecs: the cluster operations.

use aws_sdk_ecs::error::ProvideErrorMetadata;
use sdk_tests::{Emulator, ACCOUNT, REGION};

fn cluster_arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}")
}

#[tokio::test]
async fn create_list_describe_delete_cluster() {
    create_list_describe_delete_cluster_on(&Emulator::start()).await
}

/// The body of `create_list_describe_delete_cluster`, against any emulator (also the compose-started one).
pub async fn create_list_describe_delete_cluster_on(emu: &Emulator) {
    let ecs = emu.ecs();

    let created = ecs
        .create_cluster()
        .cluster_name("alpha")
        .send()
        .await
        .expect("CreateCluster");
    let cluster = created
        .cluster()
        .expect("cluster in the CreateCluster output");
    assert_eq!(cluster.cluster_name(), Some("alpha"));
    assert_eq!(cluster.cluster_arn(), Some(cluster_arn("alpha").as_str()));
    assert_eq!(cluster.status(), Some("ACTIVE"));
    assert_eq!(cluster.running_tasks_count(), 0);
    assert_eq!(cluster.active_services_count(), 0);

    // CreateCluster is idempotent on the name: the same cluster comes back.
    let again = ecs
        .create_cluster()
        .cluster_name("alpha")
        .send()
        .await
        .expect("CreateCluster again");
    assert_eq!(
        again.cluster().and_then(|c| c.cluster_arn()),
        Some(cluster_arn("alpha").as_str())
    );

    ecs.create_cluster()
        .cluster_name("beta")
        .send()
        .await
        .expect("CreateCluster beta");

    let listed = ecs.list_clusters().send().await.expect("ListClusters");
    let mut arns = listed.cluster_arns().to_vec();
    arns.sort();
    assert_eq!(arns, vec![cluster_arn("alpha"), cluster_arn("beta")]);

    // DescribeClusters accepts names and ARNs; an unknown one lands in failures[] as MISSING.
    let described = ecs
        .describe_clusters()
        .clusters("alpha")
        .clusters(cluster_arn("beta"))
        .clusters("no-such-cluster")
        .send()
        .await
        .expect("DescribeClusters");
    let names: Vec<_> = described
        .clusters()
        .iter()
        .filter_map(|c| c.cluster_name())
        .collect();
    assert_eq!(names, vec!["alpha", "beta"]);
    assert_eq!(described.failures().len(), 1, "{:?}", described.failures());
    let failure = &described.failures()[0];
    assert_eq!(failure.reason(), Some("MISSING"));
    assert_eq!(failure.arn(), Some(cluster_arn("no-such-cluster").as_str()));

    let deleted = ecs
        .delete_cluster()
        .cluster("alpha")
        .send()
        .await
        .expect("DeleteCluster");
    let gone = deleted
        .cluster()
        .expect("cluster in the DeleteCluster output");
    assert_eq!(gone.cluster_arn(), Some(cluster_arn("alpha").as_str()));
    assert_eq!(gone.status(), Some("INACTIVE"));

    let listed = ecs.list_clusters().send().await.expect("ListClusters");
    assert_eq!(listed.cluster_arns(), [cluster_arn("beta")]);

    // A deleted cluster is described as INACTIVE (AWS keeps it visible for a while) or MISSING,
    // never as ACTIVE.
    let described = ecs
        .describe_clusters()
        .clusters("alpha")
        .send()
        .await
        .expect("DescribeClusters after delete");
    assert!(
        described
            .clusters()
            .iter()
            .all(|c| c.status() == Some("INACTIVE"))
            && (described.clusters().len() + described.failures().len() == 1),
        "{described:?}"
    );
}

#[tokio::test]
async fn cluster_not_found_is_a_typed_error() {
    let emu = Emulator::start();
    let err = emu
        .ecs()
        .delete_cluster()
        .cluster("ghost")
        .send()
        .await
        .expect_err("DeleteCluster of an unknown cluster must fail");
    let status = err.raw_response().map(|r| r.status().as_u16());
    let service_err = err.into_service_error();
    assert!(
        service_err.is_cluster_not_found_exception(),
        "expected ClusterNotFoundException, got {service_err:?}"
    );
    assert_eq!(service_err.code(), Some("ClusterNotFoundException"));
    assert!(service_err.message().is_some_and(|m| !m.is_empty()));
    assert_eq!(status, Some(400));
}

#[tokio::test]
async fn invalid_cluster_name_is_rejected() {
    let emu = Emulator::start();
    let err = emu
        .ecs()
        .create_cluster()
        .cluster_name("not a valid name!")
        .send()
        .await
        .expect_err("a cluster name with spaces must be rejected");
    let service_err = err.into_service_error();
    assert!(
        service_err.is_invalid_parameter_exception() || service_err.is_client_exception(),
        "expected InvalidParameterException or ClientException, got {service_err:?}"
    );
}

#[tokio::test]
async fn list_clusters_pages_with_next_token() {
    let emu = Emulator::start();
    let ecs = emu.ecs();
    for name in ["c1", "c2", "c3"] {
        ecs.create_cluster()
            .cluster_name(name)
            .send()
            .await
            .expect("CreateCluster");
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = ecs
            .list_clusters()
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("ListClusters page");
        pages += 1;
        assert!(page.cluster_arns().len() <= 2, "{page:?}");
        seen.extend(page.cluster_arns().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() || pages > 5 {
            break;
        }
    }
    assert_eq!(pages, 2, "3 clusters in pages of 2");
    seen.sort();
    assert_eq!(
        seen,
        vec![cluster_arn("c1"), cluster_arn("c2"), cluster_arn("c3")]
    );

    let err = ecs
        .list_clusters()
        .next_token("not-a-token")
        .send()
        .await
        .expect_err("a forged next token");
    assert!(
        err.into_service_error().is_invalid_parameter_exception(),
        "InvalidParameterException"
    );
}
