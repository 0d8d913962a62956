//! Watches: the events of one `?watch=true` request, streamed as the store changes.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::{
    Shared,
    discovery::ResType,
    objects::{ApiState, in_collection, with_api_version},
    routing::Resp,
};

/// One watch request being served.
pub(super) struct Watch {
    rt: ResType,
    ns: Option<String>,
    params: BTreeMap<String, String>,
    /// Changes up to this resourceVersion have been sent (or skipped).
    since: u64,
    /// Lines not sent yet.
    out: Vec<u8>,
    changed: watch::Receiver<()>,
    /// When the watch ends; `None` once it has.
    end: Option<Instant>,
}

impl Watch {
    fn push(&mut self, kind: &str, object: Value) {
        // `type` first, as a real server writes it (serde_json would sort the keys).
        let line = format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n");
        self.out.extend(line.as_bytes());
    }

    fn bookmark(&mut self, rv: u64, initial_events_end: bool) {
        if self.params.get("allowWatchBookmarks").map(String::as_str) == Some("true") {
            let mut meta = json!({ "resourceVersion": rv.to_string() });
            if initial_events_end {
                meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
            }
            let (kind, api_version) = (&self.rt.kind, self.rt.api_version());
            let object = json!({ "kind": kind, "apiVersion": api_version, "metadata": meta });
            self.push("BOOKMARK", object);
        }
    }

    /// The next lines to send, once there are any; `None` when the watch is over.
    pub(super) async fn next(&mut self, shared: &Shared) -> Option<Vec<u8>> {
        let end = self.end?;
        loop {
            let (due, rv) = {
                let st = shared.lock();
                if st.stopped {
                    return None;
                }
                st.watch_changes(self);
                (st.next_due(), st.rv)
            };
            if Instant::now() >= end {
                self.end = None;
                self.bookmark(rv, false);
            }
            if !self.out.is_empty() {
                return Some(std::mem::take(&mut self.out));
            }
            self.end?;
            // Wake for a change, or when time makes one (a readiness flip, a namespace purge).
            let wake = due.map_or(end, |d| d.min(end));
            tokio::select! {
                _ = self.changed.changed() => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }
}

impl ApiState {
    /// Starts a watch: the initial events now, under the same lock as the changes after them.
    pub(super) fn watch(
        &self,
        rt: &ResType,
        ns: Option<&str>,
        params: &BTreeMap<String, String>,
    ) -> Resp {
        let rv = params.get("resourceVersion").map_or("", String::as_str);
        let initial = params.get("sendInitialEvents").is_some_and(|s| s == "true");
        let from_now = initial || matches!(rv, "" | "0");
        let Ok(since) = (if from_now { Ok(self.rv) } else { rv.parse() }) else {
            return Resp::bad_request(format!("invalid resource version: {rv:?}"));
        };
        let timeout = params.get("timeoutSeconds").and_then(|t| t.parse().ok());
        let mut w = Watch {
            rt: rt.clone(),
            ns: ns.map(String::from),
            params: params.clone(),
            since,
            out: Vec::new(),
            changed: self.changed.subscribe(),
            end: Some(Instant::now() + Duration::from_secs(timeout.unwrap_or(1800))),
        };
        if from_now {
            for (k, o) in &self.objects {
                if in_collection(rt, ns, params, k, &o.value) {
                    w.push("ADDED", with_api_version(rt, &o.value));
                }
            }
        }
        if initial {
            w.bookmark(self.rv, true);
        }
        Resp {
            code: 200,
            content_type: "application/json",
            body: Vec::new(),
            watch: Some(Box::new(w)),
        }
    }

    /// Adds the events of the changes a watch has not seen yet.
    fn watch_changes(&self, w: &mut Watch) {
        let start = self.changes.partition_point(|c| c.rv <= w.since);
        for c in &self.changes[start..] {
            let selected = |v: &Value| in_collection(&w.rt, w.ns.as_deref(), &w.params, &c.key, v);
            let (before, after) = (c.old.as_ref().is_some_and(selected), selected(&c.object));
            let (kind, mut object) = match (before, after) {
                (false, true) => ("ADDED", c.object.clone()),
                (true, true) => (c.kind, c.object.clone()),
                // It no longer matches: gone, in its last matching state, at the new version.
                (true, false) => ("DELETED", c.old.clone().unwrap()),
                (false, false) => continue,
            };
            object["metadata"]["resourceVersion"] = json!(c.rv.to_string());
            w.push(kind, with_api_version(&w.rt, &object));
        }
        w.since = self.rv;
    }
}
