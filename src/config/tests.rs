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
