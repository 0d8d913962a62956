use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/infrad.toml"), text)
}

fn error(text: &str) -> String {
    parse(text)
        .expect_err("config should be refused")
        .to_string()
}

#[test]
fn defaults_fill_a_minimal_profile() {
    let config = parse("[profiles.demo]\n").unwrap();
    let pool = &config.profile("demo").unwrap().pool;
    assert_eq!((pool.warm, pool.max), (1, 2));
    assert_eq!(pool.recycle, Recycle::Recreate);
    assert_eq!(pool.lease_ttl, Duration::from_secs(1800));
    assert_eq!(pool.max_lease_ttl, Duration::from_secs(4 * 3600));
    assert_eq!(config.daemon.max_concurrent_builds, 2);
}

#[test]
fn durations_and_policy_are_read() {
    let config = parse(
        "[daemon]\nmax_concurrent_builds = 3\n[profiles.we-e2e.pool]\nwarm = 2\nmax = 4\nrecycle = \"reset\"\nlease_ttl = \"90s\"\nmax_lease_ttl = \"2h\"\nacquire_wait = \"0s\"\n",
    )
    .unwrap();
    let pool = &config.profile("we-e2e").unwrap().pool;
    assert_eq!((pool.warm, pool.max), (2, 4));
    assert_eq!(pool.recycle, Recycle::Reset);
    assert_eq!(pool.lease_ttl, Duration::from_secs(90));
    assert_eq!(pool.acquire_wait, Duration::ZERO);
    assert_eq!(config.daemon.max_concurrent_builds, 3);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let e = error("[profiles.demo.pool]\nwarm = 1\nwarmm = 2\n");
    assert!(
        e.starts_with("/etc/infrad.toml:3: profiles.demo.pool.warmm:"),
        "{e}"
    );
    assert!(e.contains("unknown field"), "{e}");
}

#[test]
fn bad_value_names_file_line_and_key() {
    let e = error("[profiles.demo.pool]\nmax = 2\nwarm = 3\n");
    assert_eq!(
        e,
        "/etc/infrad.toml:3: profiles.demo.pool.warm: 3 warm clusters cannot fit in a pool of max 2"
    );
    let e = error("[profiles.demo.pool]\n\nlease_ttl = \"soon\"\n");
    assert!(
        e.starts_with("/etc/infrad.toml:3: profiles.demo.pool.lease_ttl:"),
        "{e}"
    );
    let e = error("[profiles.demo.pool]\nrecycle = \"burn\"\n");
    assert!(
        e.starts_with("/etc/infrad.toml:2: profiles.demo.pool.recycle:"),
        "{e}"
    );
    let e = error("[profiles.demo.pool]\nmax = -1\n");
    assert!(
        e.starts_with("/etc/infrad.toml:2: profiles.demo.pool.max:"),
        "{e}"
    );
}

#[test]
fn ttl_bounds_are_checked() {
    let e = error("[profiles.demo.pool]\nlease_ttl = \"2h\"\nmax_lease_ttl = \"1h\"\n");
    assert!(
        e.starts_with(
            "/etc/infrad.toml:3: profiles.demo.pool.max_lease_ttl: must be at least lease_ttl"
        ),
        "{e}"
    );
    let e = error("[profiles.demo.pool]\nlease_ttl = \"0s\"\n");
    assert!(e.contains("lease_ttl: must be longer than 0s"), "{e}");
}

#[test]
fn profile_names_must_fit_cluster_names() {
    let e = error("[profiles.Demo_1]\n");
    assert!(
        e.starts_with("/etc/infrad.toml:1: profiles.Demo_1: profile names use"),
        "{e}"
    );
    let long = format!("[profiles.{}]\n", "a".repeat(33));
    assert!(error(&long).contains("at most 32 characters"));
}

#[test]
fn a_file_without_profiles_is_refused() {
    assert_eq!(
        error("[daemon]\n"),
        "/etc/infrad.toml:1: profiles: no profile is defined; add a [profiles.NAME] table"
    );
}

#[test]
fn missing_file_names_the_path() {
    let e = Config::load(Path::new("/nonexistent/infrad.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot read config file /nonexistent/infrad.toml")
    );
}

/// A config file in a temporary folder with the files its recipe names.
fn recipe_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("web")).unwrap();
    std::fs::write(dir.path().join("web/Dockerfile"), "FROM busybox:1.36.1\n").unwrap();
    for file in ["crd.yaml", "web.yaml", "db.yaml", "kind.yaml"] {
        std::fs::write(dir.path().join(file), "").unwrap();
    }
    dir
}

fn parse_in(dir: &tempfile::TempDir, text: &str) -> Result<Config, ConfigError> {
    Config::parse(&dir.path().join("infrad.toml"), text)
}

#[test]
fn a_recipe_resolves_paths_against_the_config_file() {
    let dir = recipe_dir();
    let config = parse_in(
        &dir,
        r#"
[tools]
kind = "/opt/kind"
[profiles.demo]
[[profiles.demo.images]]
name = "web:dev"
context = "web"
build_args = { GREETING = "hi" }
[profiles.demo.cluster]
config = "kind.yaml"
create_wait = "30s"
[profiles.demo.bootstrap]
manifests = ["crd.yaml"]
[[profiles.demo.deploy]]
name = "db"
manifests = ["db.yaml"]
[[profiles.demo.deploy]]
name = "web"
manifests = ["web.yaml"]
after = ["db"]
timeout = "1m"
"#,
    )
    .unwrap();
    let demo = config.profile("demo").unwrap();
    assert_eq!(demo.images[0].context, dir.path().join("web"));
    assert_eq!(demo.images[0].dockerfile, dir.path().join("web/Dockerfile"));
    assert_eq!(demo.images[0].build_args["GREETING"], "hi");
    assert_eq!(
        demo.cluster.config.as_deref(),
        Some(dir.path().join("kind.yaml").as_path())
    );
    assert_eq!(demo.cluster.node_image, DEFAULT_NODE_IMAGE);
    assert_eq!(demo.cluster.create_wait, Duration::from_secs(30));
    assert_eq!(demo.bootstrap.manifests, vec![dir.path().join("crd.yaml")]);
    assert_eq!(demo.deploy[1].after, vec!["db".to_string()]);
    assert_eq!(demo.deploy[1].timeout, Duration::from_secs(60));
    assert_eq!(config.tools.kind, std::path::PathBuf::from("/opt/kind"));
    assert_eq!(config.tools.docker, std::path::PathBuf::from("docker"));
}

#[test]
fn unknown_after_names_and_cycles_are_refused() {
    let dir = recipe_dir();
    let e = parse_in(
        &dir,
        "[profiles.demo]\n[[profiles.demo.deploy]]\nname = \"web\"\nmanifests = [\"web.yaml\"]\nafter = [\"dbb\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("infrad.toml:5: profiles.demo.deploy.after: step \"web\" waits for \"dbb\""),
        "{e}"
    );

    let e = parse_in(
        &dir,
        "[profiles.demo]\n[[profiles.demo.deploy]]\nname = \"a\"\nmanifests = []\nafter = [\"b\"]\n[[profiles.demo.deploy]]\nname = \"b\"\nmanifests = []\nafter = [\"a\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("infrad.toml:3: profiles.demo.deploy.after: deploy steps wait for each other in a cycle: a → b → a"), "{e}");
}

#[test]
fn missing_files_and_unpinned_images_are_refused() {
    let dir = recipe_dir();
    let e = parse_in(
        &dir,
        "[profiles.demo.bootstrap]\nmanifests = [\"crd.yaml\", \"nope.yaml\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(":2: profiles.demo.bootstrap.manifests: no such file:"),
        "{e}"
    );
    assert!(e.contains("nope.yaml"), "{e}");
    let e = parse_in(
        &dir,
        "[profiles.demo.cluster]\nnode_image = \"kindest/node:v1.36.1\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(
            ":2: profiles.demo.cluster.node_image: \"kindest/node:v1.36.1\" is not pinned by digest"
        ),
        "{e}"
    );
    let e = parse_in(
        &dir,
        "[[profiles.demo.images]]\nname = \"a\"\ncontext = \"web\"\n[[profiles.demo.images]]\nname = \"a\"\ncontext = \"web\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(":5: profiles.demo.images.name: image names must be non-empty and unique"),
        "{e}"
    );
}

const TWO_STEPS: &str = r#"
[[profiles.demo.images]]
name = "web:dev"
context = "web"
[[profiles.demo.deploy]]
name = "db"
manifests = ["db.yaml"]
[[profiles.demo.deploy]]
name = "web"
manifests = ["web.yaml"]
"#;

#[test]
fn the_images_each_step_uses_come_from_its_manifests() {
    let dir = recipe_dir();
    std::fs::write(
        dir.path().join("web.yaml"),
        "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - {name: web, image: \"web:dev\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("db.yaml"),
        "kind: StatefulSet\nspec: {image: postgres:16}\n",
    )
    .unwrap();
    let config = parse_in(&dir, TWO_STEPS).unwrap();
    let demo = config.profile("demo").unwrap();
    assert!(demo.deploy[0].images.is_empty(), "db uses no profile image");
    assert_eq!(demo.deploy[1].images, ["web:dev"]);
    assert!(demo.deploy[0].image_use().contains("no profile image"));
}

#[test]
fn a_manifest_that_is_not_yaml_names_the_file_and_key() {
    let dir = recipe_dir();
    std::fs::write(dir.path().join("web.yaml"), "kind: [unclosed\n").unwrap();
    let err = parse_in(&dir, TWO_STEPS).unwrap_err().to_string();
    assert!(err.contains("profiles.demo.deploy.manifests"), "{err}");
    assert!(err.contains("web.yaml is not valid YAML"), "{err}");
    assert!(err.contains("infrad.toml:"), "located: {err}");
}

#[test]
fn artifacts_take_an_absolute_node_path() {
    let config = parse("[profiles.demo.artifacts]\nnode_path = \"/infrad/artifacts\"\n").unwrap();
    let artifacts = config.profile("demo").unwrap().artifacts.clone();
    assert_eq!(artifacts.unwrap().node_path, "/infrad/artifacts");
    assert_eq!(
        parse("[profiles.demo]\n")
            .unwrap()
            .profile("demo")
            .unwrap()
            .artifacts,
        None
    );
    for bad in ["infrad", "/", "/a/../b", "/a/./b"] {
        let e = error(&format!(
            "[profiles.demo.artifacts]\n\nnode_path = {bad:?}\n"
        ));
        assert!(
            e.starts_with("/etc/infrad.toml:3: profiles.demo.artifacts.node_path:"),
            "{bad}: {e}"
        );
        assert!(e.contains("absolute path"), "{e}");
    }
}

#[test]
fn artifacts_collection_has_bounds_with_defaults() {
    let config = parse("[profiles.demo.artifacts]\nnode_path = \"/a\"\n").unwrap();
    let artifacts = config.profile("demo").unwrap().artifacts.clone().unwrap();
    assert_eq!(artifacts.max_log_bytes, 5 * 1024 * 1024);
    assert_eq!(artifacts.collect_timeout, Duration::from_secs(120));
    let config = parse(
        "[profiles.demo.artifacts]\nnode_path = \"/a\"\nmax_log_bytes = 1_000\ncollect_timeout = \"30s\"\n",
    )
    .unwrap();
    let artifacts = config.profile("demo").unwrap().artifacts.clone().unwrap();
    assert_eq!(artifacts.max_log_bytes, 1000);
    assert_eq!(artifacts.collect_timeout, Duration::from_secs(30));
    let e = error("[profiles.demo.artifacts]\nnode_path = \"/a\"\nmax_log_bytes = 0\n");
    assert!(
        e.starts_with(
            "/etc/infrad.toml:3: profiles.demo.artifacts.max_log_bytes: must be at least 1"
        ),
        "{e}"
    );
    let e = error("[profiles.demo.artifacts]\nnode_path = \"/a\"\ncollect_timeout = \"0s\"\n");
    assert!(
        e.starts_with(
            "/etc/infrad.toml:3: profiles.demo.artifacts.collect_timeout: must be longer than 0s"
        ),
        "{e}"
    );
}

#[test]
fn a_kind_config_mount_where_the_artifacts_go_is_a_conflict() {
    let dir = recipe_dir();
    std::fs::write(
        dir.path().join("kind.yaml"),
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n  extraMounts:\n  - hostPath: /tmp/x\n    containerPath: /data\n  - hostPath: /tmp/y\n    containerPath: /infrad\n",
    )
    .unwrap();
    let text = |node_path: &str| {
        format!(
            "[profiles.demo.cluster]\nconfig = \"kind.yaml\"\n[profiles.demo.artifacts]\nnode_path = {node_path:?}\n"
        )
    };
    // Mounting at /infrad/artifacts would hide below (or be hidden by) the mount at /infrad.
    let e = parse_in(&dir, &text("/infrad/artifacts"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(":4: profiles.demo.artifacts.node_path:"), "{e}");
    assert!(e.contains("nodes[1].extraMounts[1].containerPath"), "{e}");
    assert!(e.contains("kind.yaml"), "{e}");
    assert!(parse_in(&dir, &text("/coverage")).is_ok());
}
