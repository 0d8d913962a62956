//! A `BeforeSuite` for an end-to-end suite: lease a ready cluster, talk to it, give it back.
//!
//! ```sh
//! INFRAD_ADDR=127.0.0.1:50051 cargo run -p infrad-client --example before_suite -- demo
//! ```
use std::time::Duration;

use infrad_client::{Acquire, Client};
use k8s_openapi::api::core::v1::Node;
use kube::{Api, config::Kubeconfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let profile = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "demo".to_string());
    let mut infrad = Client::connect_from_env().await?;

    // Waits (FIFO) for a ready cluster; the guard renews the lease until it is released.
    let lease = infrad
        .acquire(
            Acquire::new(profile)
                .ttl(Duration::from_secs(30 * 60))
                .wait(Duration::from_secs(10 * 60)),
        )
        .await?;
    println!(
        "cluster {} (kubeconfig {})",
        lease.cluster(),
        lease.kubeconfig_path().display()
    );

    let kubeconfig = Kubeconfig::read_from(lease.kubeconfig_path())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let kube = kube::Client::try_from(config)?;
    for node in Api::<Node>::all(kube).list(&Default::default()).await? {
        println!("node {}", node.metadata.name.unwrap_or_default());
    }

    // The suite would run here; if the lease is lost meanwhile, `lease.lost()` says why.
    lease.release().await?;
    Ok(())
}
