//! The shipped example: `deploy/infrad.example.toml` and its `demo` profile in
//! `deploy/examples/demo/`.
//!
//! The first tests need nothing but the files: the configuration validates, the profile has the
//! shape the README promises, and every manifest it names is one a real kind cluster accepts
//! from a pool (named objects in namespace `demo`, images infrad builds and loads, no fixed host
//! ports, no `:latest`).
//!
//! The Docker-backed tests build both demo images for real with infrad's own docker driver and
//! run them without a network. They are skipped loudly when `docker info` fails, unless
//! `INFRAD_REQUIRE_DOCKER=1` is set, when they fail instead. They expect the base image
//! `busybox:1.36.1` (`scripts/seed-busybox-image.sh` seeds it offline).
use infrad_test_support::docker::docker_available;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use infrad::{
    config::{Config, ImageSpec, Profile},
    tools::{docker::Docker, kube::parse_documents},
};
use serde_json::Value;

const EXAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/infrad.example.toml");
const EXAMPLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/demo");
const NAMESPACE: &str = "demo";
/// Kinds of the example that are not namespaced.
const CLUSTER_SCOPED: &[&str] = &["Namespace", "CustomResourceDefinition"];
/// A liveness bound for a container to come up; never a speed assertion.
const LIVENESS: Duration = Duration::from_secs(20);

fn demo() -> (Config, Profile) {
    let config = Config::load(Path::new(EXAMPLE_CONFIG))
        .unwrap_or_else(|e| panic!("the example configuration is invalid:\n{e}"));
    let profile = config
        .profile("demo")
        .expect("the example has a profile `demo`")
        .as_ref()
        .clone();
    (config, profile)
}

/// One object of a manifest, and the file it came from.
struct Object {
    file: PathBuf,
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
    body: Value,
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}/{} in {}",
            self.kind,
            self.namespace.as_deref().unwrap_or("-"),
            self.name,
            self.file.display()
        )
    }
}

fn objects(files: &[PathBuf]) -> Vec<Object> {
    files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
            let docs = parse_documents(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
            assert!(!docs.is_empty(), "{} holds no object", file.display());
            docs.into_iter().map(|(object, body)| Object {
                file: file.clone(),
                api_version: object.api_version,
                kind: object.kind,
                namespace: object.namespace,
                name: object.name,
                body,
            })
        })
        .collect()
}

fn bootstrap_objects(profile: &Profile) -> Vec<Object> {
    objects(&profile.bootstrap.manifests)
}

fn step_objects(profile: &Profile, step: &str) -> Vec<Object> {
    let step = profile
        .deploy
        .iter()
        .find(|s| s.name == step)
        .unwrap_or_else(|| panic!("no deploy step {step:?}"));
    objects(&step.manifests)
}

fn all_objects(profile: &Profile) -> Vec<Object> {
    let mut all = bootstrap_objects(profile);
    for step in &profile.deploy {
        all.extend(step_objects(profile, &step.name));
    }
    all
}

/// Every container (init containers too) of a workload's pod template.
fn containers(object: &Object) -> Vec<&Value> {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| object.body.pointer(&format!("/spec/template/spec/{list}")))
        .filter_map(Value::as_array)
        .flatten()
        .collect()
}

/// Paths (`a/b/0/c`) of every key named `key` anywhere under `value`.
fn find_key(value: &Value, key: &str, at: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = format!("{at}/{k}");
                if k == key {
                    found.push(path.clone());
                }
                find_key(v, key, &path, found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                find_key(v, key, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

fn uses_latest(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => !image.contains('@'), // no tag means :latest
    }
}

// ----- the configuration -----------------------------------------------------------------

#[test]
fn the_example_configuration_validates_with_the_demo_profile() {
    let (config, profile) = demo();
    assert_eq!(config.tools.docker, Path::new("docker"));
    assert_eq!(config.tools.kind, Path::new("kind"));
    assert_eq!(config.daemon.refresh_interval, None, "\"0s\" means never");

    let images: Vec<&str> = profile.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(images, ["infrad-demo/web:dev", "infrad-demo/worker:dev"]);
    for image in &profile.images {
        assert!(image.context.is_dir(), "{}", image.context.display());
        assert!(image.dockerfile.is_file(), "{}", image.dockerfile.display());
    }

    let config_file = profile.cluster.config.as_ref().expect("a kind config");
    assert!(
        config_file.ends_with("examples/demo/kind.yaml"),
        "{}",
        config_file.display()
    );
    assert_eq!(
        profile.cluster.node_image,
        infrad::config::DEFAULT_NODE_IMAGE
    );

    assert_eq!(profile.bootstrap.manifests.len(), 2);
    let bootstrap_kinds: BTreeSet<String> = bootstrap_objects(&profile)
        .into_iter()
        .map(|o| o.kind)
        .collect();
    assert_eq!(
        bootstrap_kinds,
        BTreeSet::from([
            "CustomResourceDefinition".to_string(),
            "Namespace".to_string()
        ])
    );

    let steps: BTreeMap<&str, Vec<&str>> = profile
        .deploy
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.after.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        BTreeMap::from([
            ("config", vec![]),
            ("web", vec!["config"]),
            ("worker", vec![]),
        ])
    );
}

#[test]
fn the_example_paths_are_relative_to_the_config_file() {
    let (_, profile) = demo();
    let mut paths: Vec<&Path> = profile.images.iter().map(|i| i.context.as_path()).collect();
    paths.extend(profile.cluster.config.iter().map(PathBuf::as_path));
    paths.extend(profile.bootstrap.manifests.iter().map(PathBuf::as_path));
    paths.extend(
        profile
            .deploy
            .iter()
            .flat_map(|s| s.manifests.iter().map(PathBuf::as_path)),
    );
    for path in paths {
        assert!(
            path.starts_with(EXAMPLE_DIR),
            "{} is not under deploy/examples/demo",
            path.display()
        );
        assert!(path.exists(), "{} does not exist", path.display());
    }
}

// ----- the manifests ------------------------------------------------------------------------

#[test]
fn every_manifest_names_its_objects_and_namespaced_ones_live_in_demo() {
    let (_, profile) = demo();
    let all = all_objects(&profile);
    assert!(all.len() >= 7, "only {} objects", all.len());
    for object in &all {
        assert!(
            !object.api_version.is_empty() && !object.kind.is_empty() && !object.name.is_empty()
        );
        if CLUSTER_SCOPED.contains(&object.kind.as_str()) {
            assert_eq!(object.namespace, None, "{object} is cluster-scoped");
        } else {
            assert_eq!(object.namespace.as_deref(), Some(NAMESPACE), "{object}");
        }
    }
    let namespace = all
        .iter()
        .find(|o| o.kind == "Namespace")
        .expect("bootstrap creates the namespace");
    assert_eq!(namespace.name, NAMESPACE);
}

#[test]
fn the_custom_resource_matches_the_bootstrap_crd() {
    let (_, profile) = demo();
    let bootstrap = bootstrap_objects(&profile);
    let crd = bootstrap
        .iter()
        .find(|o| o.kind == "CustomResourceDefinition")
        .expect("a CRD in bootstrap");
    assert_eq!(crd.api_version, "apiextensions.k8s.io/v1");
    let spec = &crd.body["spec"];
    let group = spec["group"].as_str().expect("spec.group");
    let plural = spec["names"]["plural"].as_str().expect("spec.names.plural");
    let kind = spec["names"]["kind"].as_str().expect("spec.names.kind");
    assert_eq!(
        crd.name,
        format!("{plural}.{group}"),
        "a CRD's name is PLURAL.GROUP"
    );
    assert_eq!(spec["scope"], "Namespaced");
    let versions = spec["versions"].as_array().expect("spec.versions");
    let storage: Vec<&Value> = versions.iter().filter(|v| v["storage"] == true).collect();
    assert_eq!(storage.len(), 1, "exactly one storage version");
    let version = storage[0];
    assert_eq!(version["served"], true);
    assert_eq!(
        version["schema"]["openAPIV3Schema"]["type"], "object",
        "v1 CRDs need a structural schema"
    );
    let required: Vec<&str> =
        version["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();

    let config = step_objects(&profile, "config");
    let custom: Vec<&Object> = config.iter().filter(|o| o.kind == kind).collect();
    assert_eq!(custom.len(), 1, "one {kind} in the config step");
    assert_eq!(
        custom[0].api_version,
        format!("{group}/{}", version["name"].as_str().unwrap())
    );
    for field in required {
        assert!(
            custom[0].body["spec"].get(field).is_some(),
            "{} lacks the required spec.{field}",
            custom[0]
        );
    }
    assert!(config.iter().any(|o| o.kind == "ConfigMap"));
}

#[test]
fn deployments_run_the_profile_images_without_pulling() {
    let (_, profile) = demo();
    let built: BTreeSet<&str> = profile.images.iter().map(|i| i.name.as_str()).collect();
    let all = all_objects(&profile);
    let mut used = BTreeSet::new();
    let mut deployments = BTreeSet::new();
    for object in all.iter().filter(|o| o.kind == "Deployment") {
        deployments.insert(object.name.clone());
        assert_eq!(object.body["spec"]["replicas"], 1, "{object}");
        let labels = &object.body["spec"]["selector"]["matchLabels"];
        let template_labels = &object.body["spec"]["template"]["metadata"]["labels"];
        for (key, value) in labels.as_object().expect("matchLabels") {
            assert_eq!(
                &template_labels[key], value,
                "{object}: selector must match the template"
            );
        }
        let containers = containers(object);
        assert!(!containers.is_empty(), "{object} has no containers");
        for container in containers {
            let image = container["image"].as_str().expect("container image");
            assert!(
                built.contains(image),
                "{object} runs {image}, which the profile does not build (it builds {built:?})"
            );
            assert_eq!(
                container["imagePullPolicy"], "IfNotPresent",
                "{object}: a kind-loaded image must never be pulled"
            );
            assert!(
                container.pointer("/resources/limits/memory").is_some(),
                "{object}: keep a memory limit"
            );
            used.insert(image);
        }
    }
    assert_eq!(deployments, BTreeSet::from(["web".into(), "worker".into()]));
    assert_eq!(used, built, "every built image is deployed");

    let web = all
        .iter()
        .find(|o| o.kind == "Deployment" && o.name == "web")
        .unwrap();
    let probe = &containers(web)[0]["readinessProbe"]["httpGet"];
    let port = &probe["port"];
    let port_number = match port {
        Value::String(name) => containers(web)[0]["ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == *name))
            .map(|p| p["containerPort"].clone())
            .unwrap_or(Value::Null),
        other => other.clone(),
    };
    assert_eq!(port_number, 8080, "web is probed over HTTP on 8080");

    let service = all
        .iter()
        .find(|o| o.kind == "Service" && o.name == "web")
        .expect("a Service web");
    for (key, value) in service.body["spec"]["selector"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(
            &web.body["spec"]["template"]["metadata"]["labels"][key], value,
            "the Service selects the web pods"
        );
    }
}

#[test]
fn configmaps_a_step_reads_come_from_a_step_it_runs_after() {
    let (_, profile) = demo();
    for step in &profile.deploy {
        let mut available: BTreeSet<String> = BTreeSet::new();
        for object in step_objects(&profile, &step.name) {
            if object.kind == "ConfigMap" {
                available.insert(object.name.clone());
            }
        }
        for after in &step.after {
            for object in step_objects(&profile, after) {
                if object.kind == "ConfigMap" {
                    available.insert(object.name.clone());
                }
            }
        }
        for object in step_objects(&profile, &step.name) {
            let mut refs = Vec::new();
            find_key(&object.body, "configMapKeyRef", "", &mut refs);
            for path in refs {
                let name = object
                    .body
                    .pointer(&format!("{path}/name"))
                    .and_then(Value::as_str);
                let name = name.unwrap_or_else(|| panic!("{object}: {path} has no name"));
                assert!(
                    available.contains(name),
                    "{object} reads ConfigMap {name}, which step {:?} does not wait for",
                    step.name
                );
            }
        }
    }
}

#[test]
fn nothing_fixes_a_host_port_or_uses_latest() {
    let (_, profile) = demo();
    for object in all_objects(&profile) {
        let mut found = Vec::new();
        find_key(&object.body, "hostPort", "", &mut found);
        find_key(&object.body, "hostNetwork", "", &mut found);
        assert!(found.is_empty(), "{object} fixes host ports: {found:?}");
        for container in containers(&object) {
            let image = container["image"].as_str().unwrap_or_default();
            assert!(
                !uses_latest(image),
                "{object} runs {image} (:latest is always pulled)"
            );
        }
    }
    for image in &profile.images {
        assert!(
            !uses_latest(&image.name),
            "image {} is tagged :latest",
            image.name
        );
        let dockerfile = std::fs::read_to_string(&image.dockerfile).unwrap();
        let from: Vec<&str> = dockerfile
            .lines()
            .map(str::trim)
            .filter(|l| l.to_ascii_uppercase().starts_with("FROM "))
            .collect();
        assert_eq!(
            from,
            ["FROM busybox:1.36.1"],
            "{}",
            image.dockerfile.display()
        );
        assert!(
            !dockerfile
                .lines()
                .any(|l| l.trim().to_ascii_uppercase().starts_with("RUN ")),
            "{}: keep the demo offline-buildable (no RUN)",
            image.dockerfile.display()
        );
        assert!(
            dockerfile
                .lines()
                .any(|l| l.trim().starts_with("USER 65534")),
            "{}: run as nobody",
            image.dockerfile.display()
        );
    }

    // The kind config: one control-plane node, no port mappings (pooled clusters share the host).
    let kind_config = profile.cluster.config.as_ref().unwrap();
    let text = std::fs::read_to_string(kind_config).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("kind.yaml parses");
    let docs: Vec<&Value> = docs.iter().filter(|d| !d.is_null()).collect();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["kind"], "Cluster");
    assert_eq!(docs[0]["apiVersion"], "kind.x-k8s.io/v1alpha4");
    let roles: Vec<&str> = docs[0]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["role"].as_str())
        .collect();
    assert_eq!(roles, ["control-plane"]);
    let mut found = Vec::new();
    for key in ["hostPort", "extraPortMappings", "apiServerPort"] {
        find_key(docs[0], key, "", &mut found);
    }
    assert!(found.is_empty(), "kind.yaml fixes host ports: {found:?}");
}

// ----- the images, built and run for real ---------------------------------------------------

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A detached container, removed when dropped (also when the test panics).
struct Container(String);

impl Container {
    fn run(image: &str) -> Self {
        let id = docker_ok(&["run", "--detach", "--network", "none", image]);
        Self(id.trim().to_string())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "--force", &self.0]);
    }
}

async fn build(name: &str) -> ImageSpec {
    let (config, profile) = demo();
    let image = profile
        .images
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no image {name}"))
        .clone();
    let id = Docker::new(&config.tools.docker)
        .build(&image)
        .await
        .unwrap_or_else(|e| {
            panic!("building {name} failed (is busybox:1.36.1 seeded? scripts/seed-busybox-image.sh): {e:?}")
        });
    assert!(
        id.starts_with("sha256:")
            && id.len() == 7 + 64
            && id[7..].bytes().all(|b| b.is_ascii_hexdigit()),
        "build of {name} returned {id:?}, not an image ID"
    );
    assert_eq!(
        docker_ok(&["image", "inspect", "--format", "{{.Id}}", name]).trim(),
        id,
        "the returned ID is the one tagged {name}"
    );
    assert_eq!(
        docker_ok(&["image", "inspect", "--format", "{{.Config.User}}", name]).trim(),
        "65534:65534",
        "{name} runs as nobody"
    );
    image
}

#[tokio::test]
async fn the_web_image_builds_and_serves_its_page() {
    if !docker_available("the_web_image_builds_and_serves_its_page") {
        return;
    }
    let image = build("infrad-demo/web:dev").await;
    let page = std::fs::read_to_string(image.context.join("index.html")).unwrap();

    // The file is in the image, readable by the image's user.
    let copied = docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "busybox",
        &image.name,
        "cat",
        "/www/index.html",
    ]);
    assert_eq!(copied, page);

    // The image's own command serves it on 8080 (loopback exists even with --network none).
    let container = Container::run(&image.name);
    let started = Instant::now();
    let served = loop {
        let out = docker(&[
            "exec",
            &container.0,
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:8080/",
        ]);
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        let running = docker_ok(&["inspect", "--format", "{{.State.Running}}", &container.0]);
        assert!(
            running.trim() == "true" && started.elapsed() < LIVENESS,
            "web never served its page (running: {}); its log:\n{}",
            running.trim(),
            String::from_utf8_lossy(&docker(&["logs", &container.0]).stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(served, page);
    let log = String::from_utf8_lossy(&docker(&["logs", &container.0]).stderr).into_owned();
    assert!(
        log.contains("response:200"),
        "httpd -v logs each response; its log:\n{log}"
    );
}

#[tokio::test]
async fn the_worker_image_builds_runs_and_stops_on_sigterm() {
    if !docker_available("the_worker_image_builds_runs_and_stops_on_sigterm") {
        return;
    }
    let image = build("infrad-demo/worker:dev").await;

    docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        &image.name,
        "-c",
        "exit 0",
    ]);

    // Its own command loops, printing the time, and ends at once (exit 0) on SIGTERM.
    let container = Container::run(&image.name);
    let started = Instant::now();
    loop {
        let log = docker_ok(&["logs", &container.0]);
        if !log.trim().is_empty() {
            break;
        }
        assert!(started.elapsed() < LIVENESS, "the worker printed nothing");
        std::thread::sleep(Duration::from_millis(200));
    }
    let running = docker_ok(&["inspect", "--format", "{{.State.Running}}", &container.0]);
    assert_eq!(running.trim(), "true");
    let stopping = Instant::now();
    docker_ok(&["stop", "--time", "15", &container.0]);
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "the worker ignored SIGTERM and was killed after {:?}",
        stopping.elapsed()
    );
    let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &container.0]);
    assert_eq!(code.trim(), "0", "the worker exits 0 on SIGTERM");
}
