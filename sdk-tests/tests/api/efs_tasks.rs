//! EFS volumes in ECS tasks with real containers: two instances in two AZs share one file
//! system through their own FUSE mounts; an access point confines (escapes through `..`,
//! symbolic links and hard links fail) and impersonates (PosixUser owns new files on the
//! backing store, permissions are checked as it); data survives kill -9 and no stale mount is
//! left; a file system policy denying ClientWrite gives the task a read-only file system; no
//! mount target in the task's AZ stops the task with ECS's reason.

use crate::ecs_docker::{container, ensure_image, register_instance, wait_status};
use aws_sdk_ecs::types::{
    EfsAuthorizationConfig, EfsAuthorizationConfigIam, EfsTransitEncryption,
    EfsVolumeConfiguration, MountPoint, Task, Volume,
};
use aws_sdk_efs::types::{CreationInfo, LifeCycleState, PosixUser, RootDirectory};
use sdk_tests::Emulator;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROLE: &str = "arn:aws:iam::000000000000:role/efs-writer";

struct Setup {
    emu: Emulator,
    fs: String,
    cluster: String,
    /// Container instances in us-east-1a and us-east-1b.
    a: String,
    b: String,
}

async fn available(efs: &aws_sdk_efs::Client, id: &str) {
    let start = Instant::now();
    loop {
        let out = efs
            .describe_file_systems()
            .file_system_id(id)
            .send()
            .await
            .expect("DescribeFileSystems");
        if out.file_systems()[0].life_cycle_state() == &LifeCycleState::Available {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{id} never available"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A file system with mount targets in `azs`, and a cluster with an instance in us-east-1a and
/// one in us-east-1b.
async fn setup(cluster: &str, azs: &[&str]) -> Setup {
    ensure_image();
    let emu = Emulator::start();
    let ec2 = emu.ec2();
    let efs = emu.efs();
    let ecs = emu.ecs();
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.80.0.0/16")
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc")
        .to_string();
    let fs = efs
        .create_file_system()
        .creation_token(cluster)
        .send()
        .await
        .expect("CreateFileSystem")
        .file_system_id()
        .to_string();
    available(&efs, &fs).await;
    for (i, az) in azs.iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.80.{}.0/24", i + 1))
            .availability_zone(*az)
            .send()
            .await
            .expect("CreateSubnet")
            .subnet()
            .and_then(|s| s.subnet_id())
            .expect("subnet")
            .to_string();
        efs.create_mount_target()
            .file_system_id(&fs)
            .subnet_id(subnet)
            .send()
            .await
            .expect("CreateMountTarget");
    }
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .expect("CreateCluster");
    let a = register_instance(&ecs, cluster, "t3.medium", "us-east-1a").await;
    let b = register_instance(&ecs, cluster, "t3.medium", "us-east-1b").await;
    Setup {
        emu,
        fs,
        cluster: cluster.to_string(),
        a,
        b,
    }
}

impl Setup {
    fn backing(&self) -> PathBuf {
        self.emu.data_dir().join("efs").join(&self.fs).join("root")
    }

    /// Registers a one-container task definition whose volume "data" is `efs`, at /mnt/efs.
    async fn task_definition(
        &self,
        family: &str,
        script: &str,
        efs: EfsVolumeConfiguration,
        read_only: bool,
    ) -> String {
        self.emu
            .ecs()
            .register_task_definition()
            .family(family)
            .task_role_arn(ROLE)
            .container_definitions(
                container("app", 64, &["sh", "-c", script])
                    .mount_points(
                        MountPoint::builder()
                            .source_volume("data")
                            .container_path("/mnt/efs")
                            .read_only(read_only)
                            .build(),
                    )
                    .build(),
            )
            .volumes(
                Volume::builder()
                    .name("data")
                    .efs_volume_configuration(efs)
                    .build(),
            )
            .send()
            .await
            .expect("RegisterTaskDefinition")
            .task_definition()
            .and_then(|d| d.task_definition_arn())
            .expect("arn")
            .to_string()
    }

    /// Starts the task on `instance` and waits for it to stop.
    async fn run_on(&self, def: &str, instance: &str) -> Task {
        let ecs = self.emu.ecs();
        let out = ecs
            .start_task()
            .cluster(&self.cluster)
            .task_definition(def)
            .container_instances(instance)
            .send()
            .await
            .expect("StartTask");
        assert!(out.failures().is_empty(), "{:?}", out.failures());
        let arn = out.tasks()[0].task_arn().expect("task arn").to_string();
        wait_status(&ecs, &self.cluster, &arn, "STOPPED").await
    }

    fn plain(&self) -> EfsVolumeConfiguration {
        EfsVolumeConfiguration::builder()
            .file_system_id(&self.fs)
            .build()
            .expect("efs volume")
    }
}

fn exit_code(t: &Task) -> Option<i32> {
    t.containers().first().and_then(|c| c.exit_code())
}

/// EFS mounts of this emulator in the mount table (FUSE, source efs:<fs id>, under its data dir).
fn efs_mounts(data_dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| l.contains(" - fuse") && l.contains(" efs:fs-"))
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| Path::new(m).starts_with(data_dir))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn efs_writer_and_reader_on_two_instances_share_a_file_and_survive_kill9() {
    let mut s = setup("efs-share", &["us-east-1a", "us-east-1b"]).await;
    let writer = s
        .task_definition(
            "efs-writer",
            "echo hello-from-a > /mnt/efs/shared.txt",
            s.plain(),
            false,
        )
        .await;
    let reader = s
        .task_definition(
            "efs-reader",
            "test \"$(cat /mnt/efs/shared.txt)\" = hello-from-a",
            s.plain(),
            true,
        )
        .await;
    let t = s.run_on(&writer, &s.a).await;
    assert_eq!(exit_code(&t), Some(0), "writer: {t:?}\n{}", s.emu.log());
    assert_eq!(
        std::fs::read_to_string(s.backing().join("shared.txt")).expect("on the backing store"),
        "hello-from-a\n"
    );
    let t = s.run_on(&reader, &s.b).await;
    assert_eq!(
        exit_code(&t),
        Some(0),
        "reader on B: {t:?}\n{}",
        s.emu.log()
    );
    // One mount per instance: A's and B's.
    let mounts = efs_mounts(s.emu.data_dir());
    assert_eq!(
        mounts.len(),
        2,
        "{mounts:?} in {}",
        std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
    );
    // readOnly in the mount point is honoured.
    let ro = s
        .task_definition(
            "efs-ro",
            "echo x > /mnt/efs/nope && exit 1; exit 0",
            s.plain(),
            true,
        )
        .await;
    let t = s.run_on(&ro, &s.b).await;
    assert_eq!(exit_code(&t), Some(0), "readOnly mount point: {t:?}");
    assert!(!s.backing().join("nope").exists());

    // kill -9: the mounts go with the process, none is left stale.
    s.emu.kill9();
    let start = Instant::now();
    while !efs_mounts(s.emu.data_dir()).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "stale mounts after kill -9: {:?}",
            efs_mounts(s.emu.data_dir())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.emu.restart();
    assert!(efs_mounts(s.emu.data_dir()).is_empty());
    let t = s.run_on(&reader, &s.a).await;
    assert_eq!(
        exit_code(&t),
        Some(0),
        "the data survived: {t:?}\n{}",
        s.emu.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn efs_access_point_impersonates_and_confines() {
    let s = setup("efs-ap", &["us-east-1a", "us-east-1b"]).await;
    let efs = s.emu.efs();
    // Outside the access point's root: a secret no task may reach. Inside: a root-only file.
    std::fs::write(s.backing().join("outside.txt"), "TOPSECRET").expect("outside");
    let app = s.backing().join("app");
    std::fs::create_dir(&app).expect("app dir");
    std::os::unix::fs::chown(&app, Some(1000), Some(1000)).expect("chown app");
    std::fs::write(app.join("root-only"), "mine").expect("root-only");
    std::fs::set_permissions(
        app.join("root-only"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let ap = efs
        .create_access_point()
        .file_system_id(&s.fs)
        .posix_user(
            PosixUser::builder()
                .uid(1000)
                .gid(1000)
                .build()
                .expect("user"),
        )
        .root_directory(RootDirectory::builder().path("/app").build())
        .send()
        .await
        .expect("CreateAccessPoint")
        .access_point_id()
        .expect("ap id")
        .to_string();
    let conf = EfsVolumeConfiguration::builder()
        .file_system_id(&s.fs)
        .transit_encryption(EfsTransitEncryption::Enabled)
        .authorization_config(
            EfsAuthorizationConfig::builder()
                .access_point_id(&ap)
                .build(),
        )
        .build()
        .expect("efs volume");
    // Each escape that succeeds adds to the exit code.
    let script = r#"
        fail=0
        echo data > /mnt/efs/owned.txt || fail=$((fail+1))
        cat /mnt/efs/root-only && fail=$((fail+2))
        cat /mnt/efs/../outside.txt && fail=$((fail+4))
        ln -s /outside.txt /mnt/efs/abs; cat /mnt/efs/abs && fail=$((fail+8))
        ln -s ../../../../../outside.txt /mnt/efs/rel; cat /mnt/efs/rel && fail=$((fail+16))
        ln /mnt/efs/../outside.txt /mnt/efs/hard && fail=$((fail+32))
        ln /etc/passwd /mnt/efs/hard2 && fail=$((fail+64))
        grep -rs TOPSECRET /mnt && fail=$((fail+128))
        exit $fail
    "#;
    let def = s.task_definition("efs-ap", script, conf, false).await;
    let t = s.run_on(&def, &s.a).await;
    assert_eq!(
        exit_code(&t),
        Some(0),
        "escapes (bit mask): {t:?}\n{}",
        s.emu.log()
    );
    let md = std::fs::metadata(app.join("owned.txt")).expect("owned.txt on the backing store");
    assert_eq!(
        (md.uid(), md.gid()),
        (1000, 1000),
        "PosixUser owns new files"
    );
    // The symbolic links exist inside the root and point where they said; nothing outside it
    // was touched.
    assert!(std::fs::symlink_metadata(app.join("rel")).is_ok());
    assert_eq!(
        std::fs::read_to_string(s.backing().join("outside.txt")).expect("outside"),
        "TOPSECRET"
    );
    assert!(!app.join("hard").exists() && !app.join("hard2").exists());

    // A missing root with CreationInfo is created with its owner and permissions.
    let ap2 = efs
        .create_access_point()
        .file_system_id(&s.fs)
        .posix_user(
            PosixUser::builder()
                .uid(2000)
                .gid(2000)
                .build()
                .expect("user"),
        )
        .root_directory(
            RootDirectory::builder()
                .path("/made/here")
                .creation_info(
                    CreationInfo::builder()
                        .owner_uid(2000)
                        .owner_gid(2000)
                        .permissions("0750")
                        .build()
                        .expect("creation info"),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateAccessPoint")
        .access_point_id()
        .expect("ap id")
        .to_string();
    let conf2 = EfsVolumeConfiguration::builder()
        .file_system_id(&s.fs)
        .transit_encryption(EfsTransitEncryption::Enabled)
        .authorization_config(
            EfsAuthorizationConfig::builder()
                .access_point_id(&ap2)
                .build(),
        )
        .build()
        .expect("efs volume");
    let def2 = s
        .task_definition("efs-ap2", "echo x > /mnt/efs/f", conf2, false)
        .await;
    let t = s.run_on(&def2, &s.b).await;
    assert_eq!(exit_code(&t), Some(0), "{t:?}\n{}", s.emu.log());
    let made = std::fs::metadata(s.backing().join("made/here")).expect("created root");
    assert_eq!(
        (made.uid(), made.gid(), made.mode() & 0o7777),
        (2000, 2000, 0o750)
    );

    // An access point of another file system fails the task as the mount would.
    let other = efs
        .create_file_system()
        .creation_token("other")
        .send()
        .await
        .expect("CreateFileSystem")
        .file_system_id()
        .to_string();
    let wrong = EfsVolumeConfiguration::builder()
        .file_system_id(&other)
        .transit_encryption(EfsTransitEncryption::Enabled)
        .authorization_config(
            EfsAuthorizationConfig::builder()
                .access_point_id(&ap)
                .build(),
        )
        .build()
        .expect("efs volume");
    let def3 = s.task_definition("efs-wrong", "true", wrong, false).await;
    let t = s.run_on(&def3, &s.a).await;
    assert!(
        t.stopped_reason().is_some_and(|r| r.starts_with(
            "ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes:"
        )),
        "{t:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn efs_iam_policy_denying_client_write_gives_a_read_only_file_system() {
    let s = setup("efs-iam", &["us-east-1a", "us-east-1b"]).await;
    std::fs::write(s.backing().join("readme"), "r").expect("readme");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Allow","Principal":{{"AWS":"*"}},"Action":["elasticfilesystem:ClientMount","elasticfilesystem:ClientWrite","elasticfilesystem:ClientRootAccess"]}},
        {{"Effect":"Deny","Principal":{{"AWS":"{ROLE}"}},"Action":"elasticfilesystem:ClientWrite"}}]}}"#
    );
    s.emu
        .efs()
        .put_file_system_policy()
        .file_system_id(&s.fs)
        .policy(policy)
        .send()
        .await
        .expect("PutFileSystemPolicy");
    let conf = EfsVolumeConfiguration::builder()
        .file_system_id(&s.fs)
        .transit_encryption(EfsTransitEncryption::Enabled)
        .authorization_config(
            EfsAuthorizationConfig::builder()
                .iam(EfsAuthorizationConfigIam::Enabled)
                .build(),
        )
        .build()
        .expect("efs volume");
    let script = "cat /mnt/efs/readme || exit 2; echo x > /mnt/efs/w && exit 3; grep -q ' /mnt/efs ro,' /proc/self/mountinfo || exit 4; exit 0";
    let def = s.task_definition("efs-iam", script, conf, false).await;
    let t = s.run_on(&def, &s.a).await;
    assert_eq!(exit_code(&t), Some(0), "{t:?}\n{}", s.emu.log());
    assert!(!s.backing().join("w").exists());

    // Without IAM authorization the mount is anonymous: the Deny naming the role does not
    // apply and the task writes.
    let anon = s
        .task_definition("efs-anon", "echo x > /mnt/efs/w", s.plain(), false)
        .await;
    let t = s.run_on(&anon, &s.a).await;
    assert_eq!(exit_code(&t), Some(0), "{t:?}");
    assert!(s.backing().join("w").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn efs_without_a_mount_target_in_the_tasks_az_stops_it_and_bad_definitions_are_refused() {
    let s = setup("efs-az", &["us-east-1a"]).await;
    let def = s.task_definition("efs-az", "true", s.plain(), false).await;
    let t = s.run_on(&def, &s.b).await;
    let reason = t.stopped_reason().unwrap_or_default();
    assert!(
        reason.starts_with(
            "ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes:"
        ) && reason.contains(&format!("Failed to resolve \"{}.efs.us-east-1.amazonaws.com\"", s.fs)),
        "{t:?}"
    );
    // In us-east-1a it mounts.
    let t = s.run_on(&def, &s.a).await;
    assert_eq!(exit_code(&t), Some(0), "{t:?}\n{}", s.emu.log());

    // An access point needs transit encryption; IAM authorization too.
    let err = s
        .emu
        .ecs()
        .register_task_definition()
        .family("bad")
        .container_definitions(container("app", 64, &["true"]).build())
        .volumes(
            Volume::builder()
                .name("data")
                .efs_volume_configuration(
                    EfsVolumeConfiguration::builder()
                        .file_system_id(&s.fs)
                        .authorization_config(
                            EfsAuthorizationConfig::builder()
                                .iam(EfsAuthorizationConfigIam::Enabled)
                                .build(),
                        )
                        .build()
                        .expect("efs volume"),
                )
                .build(),
        )
        .send()
        .await
        .expect_err("iam without transit encryption");
    use aws_sdk_ecs::error::ProvideErrorMetadata;
    assert_eq!(err.code(), Some("ClientException"), "{err:?}");
    let defs = s
        .emu
        .ecs()
        .list_task_definitions()
        .family_prefix("bad")
        .send()
        .await
        .expect("list");
    assert!(
        defs.task_definition_arns().is_empty(),
        "nothing half-created"
    );
}
