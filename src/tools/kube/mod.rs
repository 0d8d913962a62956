//! The Kubernetes API of one cluster via kube-rs: server-side apply of manifests, readiness
//! of what was applied (watched: `wait`), namespaces.
mod logs;
mod pods;
mod readiness;
mod wait;

use std::{
    collections::HashMap,
    path::Path,
    time::{Duration, Instant},
};

use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
    discovery::{ApiCapabilities, ApiResource, Scope, pinned_kind},
};
use serde_json::Value;
use tokio::sync::Mutex;

pub use pods::PodProblem;
pub use readiness::{Readiness, readiness};

use super::ToolError;

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "infrad";
/// Until the API server answers there is nothing to watch: ask again this often.
const API_RETRY: Duration = Duration::from_millis(50);
/// Bound on a deleted object (a Job being re-created) disappearing.
const OBJECT_DELETION: Duration = Duration::from_secs(60);

/// One object infrad applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

pub struct Kube {
    client: Client,
    /// API resources by group/version/kind, looked up once.
    resources: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
}

fn kube_error(what: &str, e: impl std::fmt::Display) -> ToolError {
    ToolError::new(format!("{what}: {e}"))
}

impl Kube {
    /// A client for the cluster a kubeconfig file names.
    pub async fn from_kubeconfig(path: &Path) -> Result<Self, ToolError> {
        let kubeconfig = Kubeconfig::read_from(path)
            .map_err(|e| kube_error(&format!("reading kubeconfig {}", path.display()), e))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| kube_error("kubeconfig", e))?;
        let client = Client::try_from(config).map_err(|e| kube_error("kubernetes client", e))?;
        Ok(Self {
            client,
            resources: Mutex::default(),
        })
    }

    /// Waits until the API server answers (kind's `--wait` running out still exits 0).
    pub async fn wait_api(&self, timeout: Duration) -> Result<String, ToolError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.client.apiserver_version().await {
                Ok(info) => return Ok(info.git_version),
                Err(e) if Instant::now() >= deadline => {
                    return Err(ToolError::new(format!(
                        "API server not ready after {}: {e}",
                        humantime::format_duration(timeout)
                    )));
                }
                Err(_) => tokio::time::sleep(API_RETRY).await,
            }
        }
    }

    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), ToolError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.resources.lock().await.get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = pinned_kind(&self.client, &gvk).await.map_err(|e| {
            kube_error(
                &format!("the API server does not serve {kind} {api_version}"),
                e,
            )
        })?;
        self.resources.lock().await.insert(key, found.clone());
        Ok(found)
    }

    async fn api(&self, object: &ObjectRef) -> Result<Api<DynamicObject>, ToolError> {
        let (resource, caps) = self.resource(&object.api_version, &object.kind).await?;
        Ok(match (&caps.scope, &object.namespace) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            (Scope::Namespaced, None) => {
                Api::default_namespaced_with(self.client.clone(), &resource)
            }
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// Server-side applies every document of `files`, namespaces and CRDs first, creating the
    /// namespaces the objects name; returns what was applied, in order.
    pub async fn apply_files(
        &self,
        files: &[impl AsRef<Path>],
    ) -> Result<Vec<ObjectRef>, ToolError> {
        let mut documents = Vec::new();
        for file in files {
            documents.extend(read_documents(file.as_ref())?);
        }
        self.apply_documents(documents, false).await
    }

    /// [`Kube::apply_files`] for documents already read (and perhaps rewritten). With
    /// `recreate_jobs`, an existing Job is deleted and created anew: its pod template is
    /// immutable, so an apply that changes its image would be refused.
    pub async fn apply_documents(
        &self,
        mut documents: Vec<(ObjectRef, Value)>,
        recreate_jobs: bool,
    ) -> Result<Vec<ObjectRef>, ToolError> {
        // Namespaces and CRDs first: other objects may live in or be instances of them.
        documents.sort_by_key(|(object, _)| match object.kind.as_str() {
            "Namespace" => 0,
            "CustomResourceDefinition" => 1,
            _ => 2,
        });
        let mut applied = Vec::with_capacity(documents.len());
        for (mut object, body) in documents {
            let (_, caps) = self.resource(&object.api_version, &object.kind).await?;
            if caps.scope == Scope::Namespaced {
                let ns = object
                    .namespace
                    .get_or_insert_with(|| "default".to_string())
                    .clone();
                self.ensure_namespace(&ns).await?;
            }
            if recreate_jobs && object.kind == "Job" {
                self.delete_and_wait(&object).await?;
            }
            self.apply(&object, &body).await?;
            if object.kind == "CustomResourceDefinition" {
                // Its instances can only be applied once it is established.
                self.wait_ready(std::slice::from_ref(&object), Duration::from_secs(60))
                    .await?;
            }
            applied.push(object);
        }
        Ok(applied)
    }

    async fn apply(&self, object: &ObjectRef, body: &Value) -> Result<(), ToolError> {
        let api = self.api(object).await?;
        api.patch(
            &object.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(|e| kube_error(&format!("applying {object}"), e))?;
        Ok(())
    }

    /// Deletes an object (its dependants in the background) and waits until it is gone.
    async fn delete_and_wait(&self, object: &ObjectRef) -> Result<(), ToolError> {
        let api = self.api(object).await?;
        match api.delete(&object.name, &DeleteParams::background()).await {
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(kube_error(&format!("deleting {object}"), e)),
            Ok(_) => {}
        }
        let deadline = Instant::now() + OBJECT_DELETION;
        // The object itself goes at once with background propagation (finalizers aside).
        while api
            .get_opt(&object.name)
            .await
            .map_err(|e| kube_error(&format!("reading {object}"), e))?
            .is_some()
        {
            if Instant::now() >= deadline {
                return Err(ToolError::new(format!(
                    "{object} still there {} after it was deleted",
                    humantime::format_duration(OBJECT_DELETION)
                )));
            }
            tokio::time::sleep(API_RETRY).await;
        }
        Ok(())
    }

    async fn ensure_namespace(&self, name: &str) -> Result<(), ToolError> {
        let namespace = ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: name.into(),
        };
        let api = self.api(&namespace).await?;
        let exists = api
            .get_opt(name)
            .await
            .map_err(|e| kube_error(&format!("reading namespace {name}"), e))?
            .is_some();
        if !exists {
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            self.apply(&namespace, &body).await?;
        }
        Ok(())
    }

    /// Names of the cluster's namespaces.
    pub async fn namespaces(&self) -> Result<Vec<String>, ToolError> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let list = api
            .list(&Default::default())
            .await
            .map_err(|e| kube_error("listing namespaces", e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect())
    }

    /// Deletes namespaces and waits until they are gone.
    pub async fn delete_namespaces(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<(), ToolError> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        for name in names {
            match api.delete(name, &DeleteParams::default()).await {
                // Already going (409) or gone (404): what was asked for.
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(kube_error(&format!("deleting namespace {name}"), e)),
                Ok(_) => {}
            }
        }
        self.wait_namespaces_gone(names, timeout).await
    }
}

/// The documents of a (multi-document) YAML file, with what each one is.
pub fn read_documents(path: &Path) -> Result<Vec<(ObjectRef, Value)>, ToolError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ToolError::new(format!("reading {}: {e}", path.display())))?;
    parse_documents(&text).map_err(|e| ToolError::new(format!("{}: {e}", path.display())))
}

pub fn parse_documents(text: &str) -> Result<Vec<(ObjectRef, Value)>, String> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    documents
        .into_iter()
        .filter(|d| !d.is_null())
        .enumerate()
        .map(|(i, body)| {
            let field = |name: &str, v: Option<&Value>| {
                v.and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .ok_or_else(|| format!("document {} has no {name}", i + 1))
            };
            let object = ObjectRef {
                api_version: field("apiVersion", body.get("apiVersion"))?,
                kind: field("kind", body.get("kind"))?,
                namespace: body
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(String::from),
                name: field("metadata.name", body.pointer("/metadata/name"))?,
            };
            Ok((object, body))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_split_and_named() {
        let docs = parse_documents(
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\n# nothing here\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: demo\nspec:\n  replicas: 2\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].0.to_string(), "Namespace demo");
        assert_eq!(docs[1].0.to_string(), "Deployment demo/web");
        assert_eq!(docs[1].1["spec"]["replicas"], 2);
    }

    #[test]
    fn a_document_without_a_name_is_refused() {
        let e = parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err();
        assert_eq!(e, "document 1 has no metadata.name");
    }
}
