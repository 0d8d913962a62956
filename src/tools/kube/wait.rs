//! Waiting by watching, as `kubectl rollout status` and `kubectl wait` do, for applied objects
//! to be ready and for deleted namespaces to be gone: list, then watch from the list's
//! `resourceVersion`, judging every change; a watch that ends or breaks is followed by a fresh
//! list. A step so ends within milliseconds of the change instead of at the next poll.
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
    time::Duration,
};

use futures::{StreamExt, TryStreamExt, future::try_join_all};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api,
    api::{DynamicObject, ListParams, WatchEvent, WatchParams},
};
use tracing::debug;

use super::{Kube, ObjectRef, Readiness, kube_error, readiness};
use crate::tools::ToolError;

/// Pause before listing again after a watch failed to start or broke.
const RELIST: Duration = Duration::from_millis(250);
/// How often the pods of a workload not ready yet are checked for a hopeless reason.
const POD_CHECK: Duration = Duration::from_secs(1);
/// Server-side bound of one watch request, after which it lists again: also a bound on how
/// long an event lost on the way (a proxy, an API server restart) could delay a step.
const WATCH_SECONDS: u32 = 10;

impl Kube {
    /// Waits until every object is ready; fails at once when one fails (a failed Job, a
    /// Deployment past its progress deadline, a pod whose image cannot run), and after
    /// `timeout` names those not ready with what their pods report.
    pub async fn wait_ready(
        &self,
        objects: &[ObjectRef],
        timeout: Duration,
    ) -> Result<(), ToolError> {
        // The newest verdict on each object not ready yet, for the timeout's message.
        let pending: Mutex<BTreeMap<usize, String>> = Mutex::new(
            (0..objects.len())
                .map(|i| (i, "not seen yet".to_string()))
                .collect(),
        );
        let note = |i: usize, why: Option<String>| {
            let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
            match why {
                Some(why) => pending.insert(i, why),
                None => pending.remove(&i),
            };
        };
        let waits = objects.iter().enumerate().map(|(i, object)| async move {
            tokio::select! {
                done = self.wait_one(object, move |why| note(i, why)) => done,
                hopeless = self.hopeless(object) => Err(hopeless),
            }
        });
        match tokio::time::timeout(timeout, try_join_all(waits)).await {
            Ok(done) => done.map(drop),
            Err(_) => {
                let pending: Vec<(usize, String)> = pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(i, why)| (*i, why.clone()))
                    .collect();
                let mut waiting = Vec::with_capacity(pending.len());
                for (i, why) in pending {
                    let mut why = why;
                    // Best effort: the timeout is the error either way.
                    for problem in self.pod_problems(&objects[i]).await.unwrap_or_default() {
                        why.push_str(&format!("; {problem}"));
                    }
                    waiting.push(format!("{} ({why})", objects[i]));
                }
                Err(ToolError::new(format!(
                    "not ready after {}: {}",
                    humantime::format_duration(timeout),
                    waiting.join(", ")
                )))
            }
        }
    }

    /// Resolves once a pod of `object` reports a reason waiting cannot clear; never for an
    /// object whose pods are fine (or that has none).
    async fn hopeless(&self, object: &ObjectRef) -> ToolError {
        let mut selector = None;
        loop {
            tokio::time::sleep(POD_CHECK).await;
            if selector.is_none() {
                match self.pod_selector(object).await {
                    Ok(found) => selector = found,
                    Err(e) => debug!(%object, error = %e.message, "cannot read its selector"),
                }
            }
            let Some(selector) = &selector else { continue };
            match self.problems_of(object, selector).await {
                Ok(problems) => {
                    if let Some(problem) = problems.iter().find(|p| p.hopeless()) {
                        return ToolError::new(format!("{object} cannot become ready: {problem}"));
                    }
                }
                Err(e) => debug!(%object, error = %e.message, "cannot read its pods"),
            }
        }
    }

    /// Watches one object until it is ready; `note` hears why it is not (`None` once it is).
    async fn wait_one(
        &self,
        object: &ObjectRef,
        note: impl Fn(Option<String>),
    ) -> Result<(), ToolError> {
        let api = self.api(object).await?;
        let fields = format!("metadata.name={}", object.name);
        loop {
            let list = api
                .list(&ListParams::default().fields(&fields))
                .await
                .map_err(|e| kube_error(&format!("reading {object}"), e))?;
            if judge(object, list.items.first(), &note)? {
                return Ok(());
            }
            let version = list.metadata.resource_version.unwrap_or_default();
            let params = WatchParams::default()
                .fields(&fields)
                .timeout(WATCH_SECONDS);
            let mut events = match api.watch(&params, &version).await {
                Ok(events) => events.boxed(),
                Err(e) => {
                    debug!(%object, error = %e, "cannot watch; listing again");
                    tokio::time::sleep(RELIST).await;
                    continue;
                }
            };
            loop {
                match events.try_next().await {
                    Ok(Some(WatchEvent::Added(found) | WatchEvent::Modified(found))) => {
                        if judge(object, Some(&found), &note)? {
                            return Ok(());
                        }
                    }
                    Ok(Some(WatchEvent::Deleted(_))) => note(Some("not found".into())),
                    Ok(Some(WatchEvent::Bookmark(_))) => {}
                    // Ended: list again.
                    Ok(None) => break,
                    // Too old a version (410) or another error: list again, not at once.
                    Ok(Some(WatchEvent::Error(e))) => {
                        debug!(%object, error = %e.message, "watch error; listing again");
                        tokio::time::sleep(RELIST).await;
                        break;
                    }
                    Err(e) => {
                        debug!(%object, error = %e, "watch broke; listing again");
                        tokio::time::sleep(RELIST).await;
                        break;
                    }
                }
            }
        }
    }
}

impl Kube {
    /// Waits until none of `names` is left among the namespaces, watching their deletion.
    pub(super) async fn wait_namespaces_gone(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<(), ToolError> {
        let left: Mutex<BTreeSet<String>> = Mutex::new(names.iter().cloned().collect());
        let gone = async {
            let api: Api<Namespace> = Api::all(self.client.clone());
            loop {
                let list = api
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| kube_error("listing namespaces", e))?;
                let listed: BTreeSet<String> = list
                    .items
                    .into_iter()
                    .filter_map(|n| n.metadata.name)
                    .collect();
                let remaining = {
                    let mut left = left.lock().unwrap_or_else(|e| e.into_inner());
                    left.retain(|n| listed.contains(n));
                    left.len()
                };
                if remaining == 0 {
                    return Ok::<(), ToolError>(());
                }
                let version = list.metadata.resource_version.unwrap_or_default();
                let params = WatchParams::default().timeout(WATCH_SECONDS);
                let mut events = match api.watch(&params, &version).await {
                    Ok(events) => events.boxed(),
                    Err(e) => {
                        debug!(error = %e, "cannot watch namespaces; listing again");
                        tokio::time::sleep(RELIST).await;
                        continue;
                    }
                };
                loop {
                    let event = match events.try_next().await {
                        Ok(Some(event)) => event,
                        Ok(None) => break,
                        Err(e) => {
                            debug!(error = %e, "namespace watch broke; listing again");
                            tokio::time::sleep(RELIST).await;
                            break;
                        }
                    };
                    match event {
                        WatchEvent::Deleted(namespace) => {
                            let mut left = left.lock().unwrap_or_else(|e| e.into_inner());
                            if let Some(name) = &namespace.metadata.name {
                                left.remove(name);
                            }
                            if left.is_empty() {
                                return Ok(());
                            }
                        }
                        WatchEvent::Error(e) => {
                            debug!(error = %e.message, "namespace watch error; listing again");
                            tokio::time::sleep(RELIST).await;
                            break;
                        }
                        _ => {}
                    }
                }
            }
        };
        match tokio::time::timeout(timeout, gone).await {
            Ok(done) => done,
            Err(_) => {
                let left = left.lock().unwrap_or_else(|e| e.into_inner());
                Err(ToolError::new(format!(
                    "namespaces still terminating after {}: {}",
                    humantime::format_duration(timeout),
                    left.iter().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
        }
    }
}

/// Whether `found` is ready; a failed object is an error, anything else is noted.
fn judge(
    object: &ObjectRef,
    found: Option<&DynamicObject>,
    note: &impl Fn(Option<String>),
) -> Result<bool, ToolError> {
    let verdict = match found {
        Some(found) => readiness(
            &object.kind,
            &serde_json::to_value(found).unwrap_or_default(),
        ),
        None => Readiness::NotReady("not found".into()),
    };
    match verdict {
        Readiness::Ready => {
            note(None);
            Ok(true)
        }
        Readiness::NotReady(why) => {
            note(Some(why));
            Ok(false)
        }
        Readiness::Failed(why) => Err(ToolError::new(format!("{object} failed: {why}"))),
    }
}
