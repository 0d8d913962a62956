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
