//! Tests that need Docker: they skip with a loud message when it is absent, or fail when
//! `INFRAD_REQUIRE_DOCKER=1` (as in CI).
use std::{
    io::Write,
    process::{Command, Stdio},
};

/// Whether Docker answers; if not, says so loudly (or fails under `INFRAD_REQUIRE_DOCKER=1`).
pub fn docker_available(test: &str) -> bool {
    let up = Command::new("docker")
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !up {
        let required = std::env::var("INFRAD_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{test}: `docker info` fails but INFRAD_REQUIRE_DOCKER=1 requires Docker"
        );
        // Straight to stderr, not eprintln!: the test harness hides what passing tests print.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {test}: `docker info` fails. Start Docker with scripts/start-dockerd.sh \
             and seed busybox:1.36.1 with scripts/seed-busybox-image.sh to run it. ***\n"
        );
    }
    up
}

/// Builds `tag` on the host as a caller would build its own image: busybox labelled with
/// `marker` (so that each marker gives an image ID of its own). Returns the image ID.
pub fn build_local_image(tag: &str, marker: &str) -> String {
    let mut child = Command::new("docker")
        .args(["build", "--quiet", "--tag", tag, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker runs");
    let dockerfile = format!("FROM busybox:1.36.1\nLABEL infrad.test.local=\"{marker}\"\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image_id(tag).expect("the image just built exists")
}

/// The ID of a local image (a tag or an ID), if the host has it.
pub fn image_id(reference: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .stdin(Stdio::null())
        .output()
        .expect("docker runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
