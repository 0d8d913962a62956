//! What a cluster tells about its workloads after a test run: pods, their containers' logs
//! (current and previous), the cluster's events.
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{
    Api,
    api::{ListParams, LogParams},
};

use super::{Kube, ObjectRef, kube_error};
use crate::tools::ToolError;

/// How often the pods of a workload being stopped are listed again (pods are not watched:
/// a stop takes seconds, its grace period).
const GONE_POLL: Duration = Duration::from_millis(100);

impl Kube {
    /// The pods of a workload (those its selector matches); none for kinds without pods.
    pub async fn workload_pods(&self, object: &ObjectRef) -> Result<Vec<Pod>, ToolError> {
        let Some(selector) = self.pod_selector(object).await? else {
            return Ok(Vec::new());
        };
        let namespace = object.namespace.as_deref().unwrap_or("default");
        self.list_pods(namespace, Some(&selector)).await
    }

    /// Every pod of a namespace.
    pub async fn namespace_pods(&self, namespace: &str) -> Result<Vec<Pod>, ToolError> {
        self.list_pods(namespace, None).await
    }

    async fn list_pods(
        &self,
        namespace: &str,
        selector: Option<&str>,
    ) -> Result<Vec<Pod>, ToolError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = match selector {
            Some(selector) => ListParams::default().labels(selector),
            None => ListParams::default(),
        };
        let list = pods
            .list(&params)
            .await
            .map_err(|e| kube_error(&format!("listing the pods in namespace {namespace}"), e))?;
        Ok(list.items)
    }

    /// Waits until a workload has no pods left, e.g. after it was scaled to 0.
    pub async fn wait_no_pods(&self, object: &ObjectRef) -> Result<(), ToolError> {
        while !self.workload_pods(object).await?.is_empty() {
            tokio::time::sleep(GONE_POLL).await;
        }
        Ok(())
    }

    /// One container's log; with `previous`, that of its last terminated instance.
    pub async fn container_log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<String, ToolError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(container.to_string()),
            previous,
            timestamps: true,
            ..LogParams::default()
        };
        pods.logs(pod, &params).await.map_err(|e| {
            kube_error(
                &format!("reading the log of {namespace}/{pod} container {container}"),
                e,
            )
        })
    }

    /// The cluster's events, in every namespace.
    pub async fn events(&self) -> Result<Vec<Event>, ToolError> {
        let events: Api<Event> = Api::all(self.client.clone());
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_error("listing events", e))?;
        Ok(list.items)
    }
}
