//! Start-up: make the store and the provisioner's own list agree.
use std::collections::HashSet;

use tracing::{info, warn};

use super::{Demand, Inner, Provisioner};
use crate::{Result, store::ClusterState, time};

/// Clusters named so are infrad's; unknown ones are orphans of an earlier life.
const NAME_PREFIX: &str = "infrad-";

impl<P: Provisioner, D: Demand> Inner<P, D> {
    pub(super) async fn reconcile(&self) -> Result<()> {
        let known = self.store.clusters(None, &ClusterState::LIVE).await?;
        // Half-built clusters cannot be resumed: delete them (through recycling) and rebuild.
        for cluster in known.iter().filter(|c| c.state == ClusterState::Building) {
            info!(cluster = %cluster.name, "deleting a cluster left half-built");
            self.store.abandon_build(&cluster.id, time::now()).await?;
        }
        let existing: HashSet<String> = match self.provisioner.list().await {
            Ok(names) => names.into_iter().collect(),
            Err(e) => {
                warn!(error = %e.error, "cannot list clusters; skipping orphan and vanished checks");
                return Ok(());
            }
        };
        for cluster in &known {
            let usable = matches!(cluster.state, ClusterState::Ready | ClusterState::Leased);
            if usable && !existing.contains(&cluster.name) {
                warn!(cluster = %cluster.name, "cluster vanished; marking it gone");
                self.store.mark_gone(&cluster.id, time::now()).await?;
            }
        }
        let known_names: HashSet<&str> = known.iter().map(|c| c.name.as_str()).collect();
        for orphan in existing
            .iter()
            .filter(|name| name.starts_with(NAME_PREFIX) && !known_names.contains(name.as_str()))
        {
            info!(cluster = %orphan, "deleting an orphan cluster");
            if let Err(e) = self.provisioner.destroy(orphan).await {
                warn!(cluster = %orphan, error = %e.error, "cannot delete an orphan cluster");
            }
        }
        Ok(())
    }
}
