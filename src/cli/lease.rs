//! `infrad acquire | renew | release`: leases by hand, for test runners in any language.
use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use infrad_client::{Acquire, Client, Progress, proto};
use serde_json::json;

use super::{AcquireArgs, LeaseRequestArgs, ReleaseArgs, RenewArgs, progress::ProgressView};
use anyhow::{Context, Result};

/// The Acquire the flags describe.
pub(super) fn request(args: &LeaseRequestArgs) -> Acquire {
    let mut request = Acquire::new(&args.profile);
    if let Some(holder) = &args.holder {
        request = request.holder(holder);
    }
    if let Some(ttl) = args.ttl {
        request = request.ttl(ttl);
    }
    if let Some(wait) = args.wait {
        request = request.wait(wait);
    }
    for (name, reference) in &args.images {
        request = request.image(name, reference);
    }
    request
}

/// Acquires with a progress display on stderr.
pub(super) async fn acquire_showing_progress(
    client: &mut Client,
    args: &LeaseRequestArgs,
) -> Result<proto::Lease> {
    let mut view = ProgressView::for_stderr();
    let lease = client
        .acquire_with_progress(request(args), |progress| match progress {
            Progress::Waiting(waiting) => view.waiting(waiting),
            Progress::Overlay(step) => view.overlay(step),
        })
        .await;
    view.done();
    Ok(lease?)
}

pub async fn acquire(args: AcquireArgs) -> Result<()> {
    let mut client = Client::connect(&args.addr.addr).await?;
    let lease = acquire_showing_progress(&mut client, &args.request).await?;
    let path = args.kubeconfig_out.unwrap_or_else(|| {
        let short: String = lease.lease_id.chars().take(8).collect();
        std::env::temp_dir().join(format!("infrad-{}-{short}.kubeconfig", lease.cluster))
    });
    write_private(&path, &lease.kubeconfig)
        .with_context(|| format!("cannot write the kubeconfig to {}", path.display()))?;
    let expires = lease
        .expires_at
        .and_then(|t| SystemTime::try_from(t).ok())
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default();
    if args.json {
        let value = json!({
            "lease_id": lease.lease_id,
            "token": lease.token,
            "profile": lease.profile,
            "holder": lease.holder,
            "cluster": lease.cluster,
            "kubeconfig_path": path,
            "expires_at": expires,
        });
        println!("{value:#}");
    } else {
        println!("lease_id:   {}", lease.lease_id);
        println!("token:      {}", lease.token);
        println!("cluster:    {}", lease.cluster);
        println!("kubeconfig: {}", path.display());
        println!("expires_at: {expires}");
    }
    Ok(())
}

pub async fn renew(args: RenewArgs) -> Result<()> {
    let mut client = Client::connect(&args.addr.addr).await?;
    let expires = client.renew(&args.lease_id, &args.token, args.ttl).await?;
    println!("expires_at: {}", humantime::format_rfc3339_seconds(expires));
    Ok(())
}

pub async fn release(args: ReleaseArgs) -> Result<()> {
    let mut client = Client::connect(&args.addr.addr).await?;
    client.release(&args.lease_id, &args.token).await?;
    println!("released {}", args.lease_id);
    Ok(())
}

/// Writes a secret to a file only its owner can read, whether or not it existed.
fn write_private(path: &Path, content: &str) -> std::io::Result<PathBuf> {
    crate::private::write(path, content.as_bytes())?;
    Ok(path.to_path_buf())
}
