//! EFS volumes in ECS tasks with real containers: two instances in two AZs share one file
//! system through their own FUSE mounts; an access point confines (escapes through `..`,
//! symbolic links and hard links fail) and impersonates (PosixUser owns new files on the
//! backing store, permissions are checked as it); data survives kill -9 and no stale mount is
//! left; a file system policy denying ClientWrite gives the task a read-only file system; no
//! mount target in the task's AZ stops the task with ECS's reason.

use crate::ecs_docker::{container, describe, ensure_image, register_instance, wait_status};
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

pub struct Setup {
    pub emu: Emulator,
    pub fs: String,
    pub cluster: String,
    /// Container instances in us-east-1a and us-east-1b.
    pub a: String,
    pub b: String,
    /// The subnets of the mount targets, in the order of `azs`.
    pub subnets: Vec<String>,
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
    setup_on(Emulator::start(), cluster, azs).await
}

/// A file system with mount targets in `azs`, a cluster and two container instances (us-east-1a
/// and us-east-1b) on `emu` (also the compose-started emulator).
pub async fn setup_on(emu: Emulator, cluster: &str, azs: &[&str]) -> Setup {
    ensure_image();
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
    let mut subnets = Vec::new();
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
        subnets.push(subnet.clone());
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
        subnets,
    }
}

impl Setup {
    pub fn backing(&self) -> PathBuf {
        self.emu.data_dir().join("efs").join(&self.fs).join("root")
    }

    /// Registers a one-container task definition whose volume "data" is `efs`, at /mnt/efs.
    pub async fn task_definition(
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
    pub async fn run_on(&self, def: &str, instance: &str) -> Task {
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

    pub fn plain(&self) -> EfsVolumeConfiguration {
        EfsVolumeConfiguration::builder()
            .file_system_id(&self.fs)
            .build()
            .expect("efs volume")
    }
}

/// Polls `cond` every 100 ms for at most `secs` seconds.
async fn until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(secs), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |s| s.lines().count())
}

pub fn exit_code(t: &Task) -> Option<i32> {
    t.containers().first().and_then(|c| c.exit_code())
}

/// EFS mounts of this emulator in the mount table (FUSE, source efs:<fs id>, under its data dir).
pub fn efs_mounts(data_dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| l.contains(" - fuse") && l.contains(" efs:fs-"))
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| Path::new(m).starts_with(data_dir))
        .collect()
}

/// The device ("major:minor") and source of the FUSE mount at `mount_point` in our mount table.
fn device_and_source(mount_point: &str) -> (String, String) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.get(4) == Some(&mount_point))
        .and_then(|f| {
            let dash = f.iter().position(|x| *x == "-")?;
            Some((f[2].to_string(), f.get(dash + 2)?.to_string()))
        })
        .expect("the mount in mountinfo")
}

/// A FUSE device number is freed with its last mount and given to the next FUSE mount anybody
/// makes. A restarted emulator whose record of a mount names a device and source that are now
/// another emulator's live mount (held by that emulator's running container) leaves that
/// container's mount alone: only dead mounts are its own to give back.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_leaves_a_live_mount_that_took_a_recorded_device_number_alone() {
    let other = setup("efs-live", &["us-east-1a", "us-east-1b"]).await;
    std::fs::write(other.backing().join("mine.txt"), "other").expect("mine.txt");
    let holder = other
        .task_definition(
            "efs-holder",
            "while test \"$(cat /mnt/efs/mine.txt)\" = other; do \
               [ -f /mnt/efs/ping ] && cp /mnt/efs/ping /mnt/efs/pong; sleep 0.1; done; exit 7",
            other.plain(),
            false,
        )
        .await;
    let out = other
        .emu
        .ecs()
        .start_task()
        .cluster(&other.cluster)
        .task_definition(&holder)
        .container_instances(&other.a)
        .send()
        .await
        .expect("StartTask");
    let arn = out.tasks()[0].task_arn().expect("arn").to_string();
    wait_status(&other.emu.ecs(), &other.cluster, &arn, "RUNNING").await;
    let mounts = efs_mounts(other.emu.data_dir());
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let (dev, source) = device_and_source(&mounts[0]);

    // This emulator's record, as a previous run of it left it, of a mount whose device number
    // (and source) have since gone to the other emulator's mount.
    let mut s = setup("efs-recycled", &["us-east-1a", "us-east-1b"]).await;
    s.emu.kill9();
    let decoy = s.emu.data_dir().join("decoy");
    std::fs::create_dir_all(&decoy).expect("decoy");
    let record = serde_json::json!({
        (s.emu.data_dir().join("efs-mounts/i-gone/fs-gone/root").to_string_lossy()): {
            "fs_name": source,
            "file_system_id": "fs-gone",
            "opts": {"root": decoy, "identity": null, "squash_root": false, "read_only": false},
            "dev": dev,
        }
    });
    let records = s.emu.data_dir().join("efs-mounts/mounts.json");
    std::fs::create_dir_all(records.parent().expect("dir")).expect("efs-mounts");
    std::fs::write(&records, record.to_string()).expect("mounts.json");
    s.emu.restart();

    // The other emulator's task still reads its own file system through its mount.
    std::fs::write(other.backing().join("ping"), "after-restart").expect("ping");
    let pong = other.backing().join("pong");
    until(
        20,
        "the other emulator's task still answers through its mount",
        || std::fs::read_to_string(&pong).is_ok_and(|p| p == "after-restart"),
    )
    .await;
    let t = describe(&other.emu.ecs(), &other.cluster, &arn).await;
    assert_eq!(t.last_status(), Some("RUNNING"), "{t:?}");
    assert!(
        !s.emu
            .log()
            .contains("EFS mount given back to a running container"),
        "{}",
        s.emu.log()
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn efs_running_task_keeps_its_volume_across_kill9_and_restart() {
    let mut s = setup("efs-adopt", &["us-east-1a", "us-east-1b"]).await;
    // Writes a tick a few times a second, and copies ping to pong: it reads and writes.
    let script = "while true; do echo tick >> /mnt/efs/ticks; \
                  if [ -f /mnt/efs/ping ]; then cat /mnt/efs/ping > /mnt/efs/pong; fi; \
                  sleep 0.1; done";
    let def = s
        .task_definition("efs-adopt", script, s.plain(), false)
        .await;
    let ro = s
        .task_definition(
            "efs-adopt-ro",
            "until [ -f /mnt/efs/ping ]; do sleep 0.1; done; \
             grep -q after-restart /mnt/efs/ping || exit 3; \
             echo x > /mnt/efs/ro-write && exit 4; exit 0",
            s.plain(),
            true,
        )
        .await;
    let mut arns = Vec::new();
    for (d, inst) in [(&def, &s.a), (&ro, &s.b)] {
        let out = s
            .emu
            .ecs()
            .start_task()
            .cluster(&s.cluster)
            .task_definition(d)
            .container_instances(inst)
            .send()
            .await
            .expect("StartTask");
        let arn = out.tasks()[0].task_arn().expect("arn").to_string();
        wait_status(&s.emu.ecs(), &s.cluster, &arn, "RUNNING").await;
        arns.push(arn);
    }
    let writer_container = describe(&s.emu.ecs(), &s.cluster, &arns[0])
        .await
        .containers()[0]
        .runtime_id()
        .expect("container")
        .to_string();
    let ticks = s.backing().join("ticks");
    until(20, "the task writes", || lines(&ticks) > 3).await;

    s.emu.kill9();
    until(10, "stale mounts after kill -9", || {
        efs_mounts(s.emu.data_dir()).is_empty()
    })
    .await;
    let before = lines(&ticks);
    s.emu.restart();
    // The task was adopted, not restarted: it keeps running with its volume given back.
    let t = wait_status(&s.emu.ecs(), &s.cluster, &arns[0], "RUNNING").await;
    assert_eq!(
        t.containers()[0].runtime_id(),
        Some(writer_container.as_str())
    );
    until(
        20,
        "the running task writes again after the restart",
        || lines(&ticks) > before + 3,
    )
    .await;
    std::fs::write(s.backing().join("ping"), "after-restart").expect("ping");
    let pong = s.backing().join("pong");
    until(20, "the running task reads again after the restart", || {
        std::fs::read_to_string(&pong).is_ok_and(|p| p == "after-restart")
    })
    .await;
    // The read-only task (on the other instance) read the file through its mount given back,
    // and could not write: it stays read-only.
    let t = wait_status(&s.emu.ecs(), &s.cluster, &arns[1], "STOPPED").await;
    assert_eq!(
        exit_code(&t),
        Some(0),
        "read-only task: {t:?}\n{}",
        s.emu.log()
    );
    assert!(!s.backing().join("ro-write").exists());
    assert!(
        s.emu
            .log()
            .contains("EFS mount given back to a running container"),
        "{}",
        s.emu.log()
    );
    s.emu
        .ecs()
        .stop_task()
        .cluster(&s.cluster)
        .task(&arns[0])
        .send()
        .await
        .expect("StopTask");
    wait_status(&s.emu.ecs(), &s.cluster, &arns[0], "STOPPED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn efs_volume_in_a_fargate_task() {
    use aws_sdk_ecs::types::{
        AwsVpcConfiguration, Compatibility, LaunchType, NetworkConfiguration, NetworkMode,
    };
    let s = setup("efs-fargate", &["us-east-1a"]).await;
    let ecs = s.emu.ecs();
    ecs.register_task_definition()
        .family("efs-fg")
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            container(
                "app",
                64,
                &[
                    "sh",
                    "-c",
                    "echo from-fargate > /mnt/efs/fg.txt && cat /mnt/efs/seed",
                ],
            )
            .mount_points(
                MountPoint::builder()
                    .source_volume("data")
                    .container_path("/mnt/efs")
                    .build(),
            )
            .build(),
        )
        .volumes(
            Volume::builder()
                .name("data")
                .efs_volume_configuration(s.plain())
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    std::fs::write(s.backing().join("seed"), "seeded").expect("seed");
    let out = ecs
        .run_task()
        .cluster(&s.cluster)
        .launch_type(LaunchType::Fargate)
        .task_definition("efs-fg")
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets(&s.subnets[0])
                        .build()
                        .expect("awsvpc"),
                )
                .build(),
        )
        .send()
        .await
        .expect("RunTask");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    let arn = out.tasks()[0].task_arn().expect("arn").to_string();
    let t = wait_status(&ecs, &s.cluster, &arn, "STOPPED").await;
    assert_eq!(t.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    assert_eq!(exit_code(&t), Some(0), "{t:?}\n{}", s.emu.log());
    assert_eq!(
        std::fs::read_to_string(s.backing().join("fg.txt")).expect("written by the task"),
        "from-fargate\n"
    );
    // The task was a host of its own: its mount goes with it.
    let id = arn.rsplit('/').next().expect("task id").to_string();
    let data = s.emu.data_dir().to_path_buf();
    until(10, "the Fargate task's mount is released", || {
        !efs_mounts(&data).iter().any(|m| m.contains(&id))
    })
    .await;
}

/// A FUSE mount gone behind the emulator's back (`umount -l` of a running task's instance
/// mount, which also ends its FUSE session): the emulator notices within a second, mounts the
/// file system again and grafts the new mount into the running container, which reads and
/// writes its data again, intact, without being restarted.
#[tokio::test(flavor = "multi_thread")]
async fn efs_mount_unmounted_behind_the_emulators_back_is_remounted_into_the_running_task() {
    let s = setup("efs-gone", &["us-east-1a"]).await;
    std::fs::write(s.backing().join("keep"), "kept\n").expect("keep");
    // Copies ping and keep to pong a few times a second (through a temporary file, so that pong
    // is never half-written).
    let script = "while true; do if [ -f /mnt/efs/ping ]; then \
                  cat /mnt/efs/ping /mnt/efs/keep > /mnt/efs/pong.tmp && \
                  mv /mnt/efs/pong.tmp /mnt/efs/pong; fi; sleep 0.1; done";
    let def = s
        .task_definition("efs-gone", script, s.plain(), false)
        .await;
    let ecs = s.emu.ecs();
    let out = ecs
        .start_task()
        .cluster(&s.cluster)
        .task_definition(&def)
        .container_instances(&s.a)
        .send()
        .await
        .expect("StartTask");
    let arn = out.tasks()[0].task_arn().expect("arn").to_string();
    let t = wait_status(&ecs, &s.cluster, &arn, "RUNNING").await;
    let container_id = t.containers()[0]
        .runtime_id()
        .expect("container")
        .to_string();
    let (ping, pong) = (s.backing().join("ping"), s.backing().join("pong"));
    let answers = |want: &'static str| {
        let pong = pong.clone();
        move || std::fs::read_to_string(&pong).is_ok_and(|p| p == format!("{want}\nkept\n"))
    };
    std::fs::write(&ping, "one\n").expect("ping");
    until(
        20,
        "the task reads and writes through its mount",
        answers("one"),
    )
    .await;

    let mounts = efs_mounts(s.emu.data_dir());
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let out = std::process::Command::new("umount")
        .args(["-l", &mounts[0]])
        .output()
        .expect("umount");
    assert!(out.status.success(), "umount -l: {out:?}");
    until(20, "the emulator remounts the mount it lost", || {
        s.emu.log().contains("EFS mount died; remounting") && efs_mounts(s.emu.data_dir()) == mounts
    })
    .await;
    std::fs::write(&ping, "two\n").expect("ping");
    until(
        20,
        "the running task reads and writes again",
        answers("two"),
    )
    .await;
    assert!(
        s.emu
            .log()
            .contains("EFS mount given back to a running container"),
        "{}",
        s.emu.log()
    );
    // The same task and container throughout.
    let t = describe(&ecs, &s.cluster, &arn).await;
    assert_eq!(t.last_status(), Some("RUNNING"), "{t:?}");
    assert_eq!(t.containers()[0].runtime_id(), Some(container_id.as_str()));
    ecs.stop_task()
        .cluster(&s.cluster)
        .task(&arn)
        .send()
        .await
        .expect("StopTask");
    wait_status(&ecs, &s.cluster, &arn, "STOPPED").await;
}
