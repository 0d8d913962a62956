//! Per-cluster artifacts directories: the kind config every cluster is created with mounts
//! its directory on every node and keeps the user's other settings; each lease gets the
//! directory empty.

use std::os::unix::fs::PermissionsExt;

use infrad_test_support::{
    acquire,
    recipe::{Recipe, deployment},
    world::FakeWorld,
};
use serde_json::{Value, json};

const NODE_PATH: &str = "/infrad/artifacts";

/// A profile with artifacts whose kind config has two nodes, one mount and a port setting.
fn with_artifacts(world: &FakeWorld) -> String {
    world.write(
        "kind.yaml",
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n\
         networking:\n  apiServerPort: 7443\n\
         nodes:\n- role: control-plane\n\
         - role: worker\n  extraMounts:\n  - hostPath: /tmp\n    containerPath: /host-tmp\n",
    );
    Recipe::new("demo")
        .toml(&format!(
            "[profiles.demo.pool]\nwarm = 1\nmax = 1\nrecycle = \"reset\"\n\
             [profiles.demo.cluster]\nconfig = \"kind.yaml\"\n\
             [profiles.demo.artifacts]\nnode_path = \"{NODE_PATH}\"\n"
        ))
        .step(
            "app",
            &[],
            &deployment("app", "app", "busybox:1.36.1", None),
        )
        .write(world)
}

#[tokio::test]
async fn every_node_mounts_the_clusters_artifacts_directory() {
    let world = FakeWorld::new().await;
    world.fake_docker(0.0);
    let daemon = world.daemon(&with_artifacts(&world)).await;
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();

    let create = world
        .kind_calls()
        .into_iter()
        .find(|c| c.args.first().is_some_and(|a| a == "create"))
        .expect("kind create ran");
    let at = create.args.iter().position(|a| a == "--config").unwrap();
    let config_file = std::path::PathBuf::from(&create.args[at + 1]);
    let config: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&config_file).unwrap()).unwrap();
    let dir = config_file.parent().unwrap().join("artifacts");
    let ours = json!({ "hostPath": dir, "containerPath": NODE_PATH });
    assert_eq!(
        config["nodes"][0],
        json!({ "role": "control-plane", "extraMounts": [ours] })
    );
    assert_eq!(
        config["nodes"][1]["extraMounts"],
        json!([{ "hostPath": "/tmp", "containerPath": "/host-tmp" }, ours])
    );
    assert_eq!(config["networking"]["apiServerPort"], 7443);
    assert_eq!(config["kind"], "Cluster");
    assert!(
        config_file.parent().unwrap().ends_with(&lease.cluster),
        "{config_file:?} is the cluster's own"
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&config_file), 0o600);
}

#[tokio::test]
async fn each_lease_gets_the_directory_empty() {
    let world = FakeWorld::new().await;
    world.fake_docker(0.0);
    let daemon = world.daemon(&with_artifacts(&world)).await;
    let mut client = daemon.client().await;
    let first = client.acquire_lease(acquire("job-1")).await.unwrap();
    let dir = std::path::PathBuf::from(&first.artifacts_dir);
    assert!(
        dir.ends_with(format!("{}/artifacts", first.cluster)),
        "{dir:?}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::create_dir_all(dir.join("coverdata/run")).unwrap();
    std::fs::write(dir.join("coverdata/run/covmeta.1"), "x").unwrap();
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&dir).unwrap());
    client.release(&first.lease_id, &first.token).await.unwrap();

    let second = client.acquire_lease(acquire("job-2")).await.unwrap();
    assert_eq!(
        second.cluster, first.cluster,
        "the reset cluster is leased again"
    );
    assert_eq!(second.artifacts_dir, first.artifacts_dir);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "emptied for the new lease"
    );
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&meta),
        inode,
        "the directory the nodes mount is kept, only its contents go"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
}

#[tokio::test]
async fn a_profile_without_artifacts_gives_no_directory() {
    let world = FakeWorld::new().await;
    world.fake_docker(0.0);
    let text = Recipe::new("demo")
        .toml("[profiles.demo.pool]\nwarm = 1\nmax = 1\n")
        .step(
            "app",
            &[],
            &deployment("app", "app", "busybox:1.36.1", None),
        )
        .write(&world);
    let daemon = world.daemon(&text).await;
    let lease = daemon
        .client()
        .await
        .acquire_lease(acquire("job"))
        .await
        .unwrap();
    assert_eq!(lease.artifacts_dir, "");
}
