//! Per-cluster artifacts directories: the kind config every cluster is created with mounts
//! its directory on every node and keeps the user's other settings.

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
            "[profiles.demo.pool]\nwarm = 1\nmax = 1\n\
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
