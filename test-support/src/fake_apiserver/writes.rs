//! Writes: create, patch (server-side apply and merge patch) and delete, with `put` storing
//! the new state of an object for the first two.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value, json};

use super::{
    Applied, READY_AFTER,
    discovery::ResType,
    now_rfc3339,
    objects::{ApiState, Key, Obj, Progress, apply_defaults, check_name, check_type, ns_key},
    pods::held,
    routing::{Resp, not_found},
    short_hash,
    status::{Phase, sim_status},
};

/// The object without metadata and status: what `generation` tracks.
fn content(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    c
}

fn user_meta(v: &Value) -> Value {
    let m = &v["metadata"];
    json!([
        m["labels"],
        m["annotations"],
        m["finalizers"],
        m["ownerReferences"]
    ])
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v["metadata"]["annotations"][key].as_str()
}

fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        let t = target.as_object_mut().unwrap();
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
    }
}

impl ApiState {
    pub(super) fn create(
        &mut self,
        rt: &ResType,
        ns: Option<&str>,
        params: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Resp {
        let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
            return Resp::bad_request("the body of the request could not be decoded as JSON");
        };
        if !obj.is_object() {
            return Resp::bad_request("the body of the request is not an object");
        }
        if let Some(r) = check_type(rt, &obj) {
            return r;
        }
        let mut name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name.is_empty()
            && let Some(prefix) = obj["metadata"]["generateName"].as_str()
        {
            name = format!(
                "{prefix}{}",
                &short_hash(&(prefix, self.rv, Instant::now()))[..5]
            );
            obj["metadata"]["name"] = json!(name);
        }
        if name.is_empty() {
            return Resp::status(
                422,
                "Invalid",
                format!(
                    "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                    rt.kind
                ),
                None,
            );
        }
        let key = Key {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: ns.map(String::from),
            name: name.clone(),
        };
        if self.objects.contains_key(&key) {
            return Resp::status(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", rt.qualified()),
                Some(rt.details(&name)),
            );
        }
        let manager = params
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let dry = params.get("dryRun").is_some_and(|d| d == "All");
        match self.put(rt, ns, &name, obj, &manager, "Update", dry) {
            Ok((_, v)) => Resp::json(201, &v),
            Err(r) => r,
        }
    }

    pub(super) fn patch(
        &mut self,
        rt: &ResType,
        ns: Option<&str>,
        name: &str,
        params: &BTreeMap<String, String>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Resp {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let manager = params.get("fieldManager").cloned();
        let force = params.get("force").is_some_and(|f| f == "true" || f == "1");
        let dry = params.get("dryRun").is_some_and(|d| d == "All");
        let key = Key {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: ns.map(String::from),
            name: name.to_string(),
        };
        match ct.as_str() {
            "application/apply-patch+yaml" => {
                let Some(manager) = manager.filter(|m| !m.is_empty()) else {
                    return Resp::status(
                        422,
                        "Invalid",
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                        Some(json!({
                            "group": "meta.k8s.io", "kind": "PatchOptions",
                            "causes": [{ "reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager" }],
                        })),
                    );
                };
                // kube-rs sends JSON, which is YAML too; real YAML text is not understood here.
                let obj: Value = match serde_json::from_slice(body) {
                    Ok(v @ Value::Object(_)) => v,
                    Ok(_) => {
                        return Resp::bad_request(
                            "error decoding YAML: the patch is not an object",
                        );
                    }
                    Err(e) => {
                        return Resp::bad_request(format!(
                            "error decoding YAML: {e} (the fake API server only reads JSON bodies)"
                        ));
                    }
                };
                let patch_gv = obj["apiVersion"].as_str().unwrap_or_default();
                if patch_gv != rt.api_version() {
                    return Resp::bad_request(format!(
                        "Incorrect version specified in apply patch. Specified patch version: {patch_gv}, expected: {}",
                        rt.api_version()
                    ));
                }
                if let Some(r) = check_type(rt, &obj) {
                    return r;
                }
                if let Some(r) = check_name(rt, &obj, ns, name) {
                    return r;
                }
                let created = !self.objects.contains_key(&key);
                match self.put(rt, ns, name, obj, &manager, "Apply", dry) {
                    Ok((_, v)) => Resp::json(if created { 201 } else { 200 }, &v),
                    Err(r) => r,
                }
            }
            "application/merge-patch+json" | "application/strategic-merge-patch+json"
                if !(rt.custom && ct == "application/strategic-merge-patch+json") =>
            {
                if force {
                    return Resp::status(
                        422,
                        "Invalid",
                        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
                        None,
                    );
                }
                let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                    return Resp::bad_request(
                        "the body of the request could not be decoded as JSON",
                    );
                };
                let Some(existing) = self.objects.get(&key) else {
                    return not_found(rt, name);
                };
                let mut obj = existing.value.clone();
                merge_patch(&mut obj, &patch);
                if let Some(r) = check_type(rt, &obj) {
                    return r;
                }
                if let Some(r) = check_name(rt, &obj, ns, name) {
                    return r;
                }
                let manager = manager.unwrap_or_else(|| "unknown".into());
                match self.put(rt, ns, name, obj, &manager, "Update", dry) {
                    Ok((_, v)) => Resp::json(200, &v),
                    Err(r) => r,
                }
            }
            "application/json-patch+json" => Resp::status(
                415,
                "UnsupportedMediaType",
                "the fake API server does not implement JSON patch (application/json-patch+json)",
                None,
            ),
            _ => Resp::status(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}",
                    if rt.custom {
                        ""
                    } else {
                        ", application/strategic-merge-patch+json"
                    }
                ),
                None,
            ),
        }
    }

    /// Stores `obj` (already checked against the URL) as the new state of the object.
    /// Returns whether it was created, and the object as the server now has it.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        rt: &ResType,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        manager: &str,
        operation: &str,
        dry_run: bool,
    ) -> Result<(bool, Value), Resp> {
        let key = Key {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: ns.map(String::from),
            name: name.to_string(),
        };
        let existing = self.objects.get(&key);
        if existing.is_none()
            && let Some(ns) = ns
        {
            match self.objects.get(&ns_key(ns)) {
                None => {
                    return Err(Resp::status(
                        404,
                        "NotFound",
                        format!("namespaces \"{ns}\" not found"),
                        Some(json!({ "name": ns, "kind": "namespaces" })),
                    ));
                }
                Some(n) if n.delete_at.is_some() => {
                    let mut details = rt.details(name);
                    details["causes"] = json!([{
                        "reason": "NamespaceTerminating",
                        "message": format!("namespace {ns} is being terminated"),
                        "field": "metadata.namespace",
                    }]);
                    return Err(Resp::status(
                        403,
                        "Forbidden",
                        format!(
                            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            rt.qualified()
                        ),
                        Some(details),
                    ));
                }
                Some(_) => {}
            }
        }

        // Normalise: type meta from the URL, server-owned metadata dropped, status ignored.
        let m = obj.as_object_mut().unwrap();
        m.remove("status");
        m.insert("apiVersion".into(), json!(rt.api_version()));
        m.insert("kind".into(), json!(rt.kind));
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let meta = meta.as_object_mut().unwrap();
        for f in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(f);
        }
        meta.insert("name".into(), json!(name));
        match ns {
            Some(ns) => meta.insert("namespace".into(), json!(ns)),
            None => meta.remove("namespace"),
        };
        apply_defaults(rt, &mut obj);
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            let spec = &obj["spec"];
            let want = format!(
                "{}.{}",
                spec["names"]["plural"].as_str().unwrap_or_default(),
                spec["group"].as_str().unwrap_or_default()
            );
            if want != name {
                return Err(Resp::status(
                    422,
                    "Invalid",
                    format!(
                        "CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
                    ),
                    Some(
                        json!({ "name": name, "group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition",
                        "causes": [{ "reason": "FieldValueInvalid", "message": "Invalid value: \"".to_string() + name + "\": must be spec.names.plural+\".\"+spec.group", "field": "metadata.name" }] }),
                    ),
                ));
            }
        }

        let now = now_rfc3339();
        let created = existing.is_none();
        let (spec_changed, meta_changed, ready_after_changed) = match existing {
            Some(e) => (
                content(&e.value) != content(&obj),
                user_meta(&e.value) != user_meta(&obj),
                annotation(&e.value, READY_AFTER) != annotation(&obj, READY_AFTER),
            ),
            None => (true, true, true),
        };
        if let Some(e) = existing
            && !spec_changed
            && !meta_changed
        {
            // A no-op: nothing changes, not even the resourceVersion.
            return Ok((false, e.value.clone()));
        }

        let meta = obj["metadata"].as_object_mut().unwrap();
        match existing {
            Some(e) => {
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ] {
                    if let Some(v) = e.value["metadata"].get(f) {
                        meta.insert(f.into(), v.clone());
                    }
                }
            }
            None => {
                meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                meta.insert("creationTimestamp".into(), json!(now));
            }
        }
        if rt.has_generation() {
            let old = existing.and_then(|e| e.value["metadata"]["generation"].as_i64());
            let generation = match old {
                Some(g) if spec_changed => g + 1,
                Some(g) => g,
                None => 1,
            };
            meta.insert("generation".into(), json!(generation));
        }
        let mut managed: Vec<Value> = existing
            .and_then(|e| e.value["metadata"]["managedFields"].as_array().cloned())
            .unwrap_or_default();
        managed.retain(|f| !(f["manager"] == json!(manager) && f["operation"] == json!(operation)));
        managed.push(json!({
            "manager": manager,
            "operation": operation,
            "apiVersion": rt.api_version(),
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }));
        meta.insert("managedFields".into(), json!(managed));

        // Readiness: restart the simulated rollout when the spec (or the override) changed.
        let reset = created || spec_changed || ready_after_changed;
        let mut progress = existing.map(|e| e.progress).unwrap_or(Progress::Ready);
        let status = if reset && sim_status(&rt.group, &rt.kind, &obj, Phase::Ready).is_some() {
            let update = matches!(existing.map(|e| e.progress), Some(Progress::Ready));
            let (at, fail) = self.ready_at(&obj);
            progress = Progress::Pending { at, fail, update };
            sim_status(&rt.group, &rt.kind, &obj, Phase::Pending { update })
        } else if let Some(e) = existing {
            e.value.get("status").cloned()
        } else if rt.is("", "Namespace") {
            Some(json!({ "phase": "Active" }))
        } else {
            None
        };
        if let Some(s) = status {
            obj["status"] = s;
        }
        if dry_run {
            return Ok((created, obj));
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv);
        let delete_at = self.objects.get(&key).and_then(|e| e.delete_at);
        let old = self.objects.insert(
            key.clone(),
            Obj {
                kind: rt.kind.clone(),
                value: obj.clone(),
                progress,
                delete_at,
            },
        );
        let kind = if created { "ADDED" } else { "MODIFIED" };
        self.record(kind, &key, old.map(|o| o.value), &obj);
        if created {
            self.applied.push(Applied {
                kind: rt.kind.clone(),
                namespace: ns.map(String::from),
                name: name.to_string(),
                at: Instant::now(),
            });
            if rt.is("", "Namespace") {
                self.namespace_side_objects(name);
            }
        }
        Ok((created, obj))
    }

    /// When the object becomes ready: `None` = never; and whether it fails instead.
    fn ready_at(&self, obj: &Value) -> (Option<Instant>, bool) {
        // A pod template with an image that cannot run never becomes ready.
        if held(&self.image_failures, obj) {
            return (None, false);
        }
        let now = Instant::now();
        let ms = |s: &str| s.trim().parse::<u64>().ok().map(Duration::from_millis);
        match annotation(obj, READY_AFTER).map(str::trim) {
            Some("never") => (None, false),
            Some("fail") => (Some(now + self.ready_delay), true),
            Some(a) if a.starts_with("fail:") => {
                (Some(now + ms(&a[5..]).unwrap_or(self.ready_delay)), true)
            }
            Some(a) => (Some(now + ms(a).unwrap_or(self.ready_delay)), false),
            None => (Some(now + self.ready_delay), false),
        }
    }

    pub(super) fn delete(
        &mut self,
        rt: &ResType,
        key: Key,
        params: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Resp {
        let opts: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let dry =
            params.get("dryRun").is_some_and(|d| d == "All") || opts["dryRun"] == json!(["All"]);
        let name = key.name.clone();
        let Some(existing) = self.objects.get(&key) else {
            return not_found(rt, &name);
        };
        let now = now_rfc3339();
        if rt.is("", "Namespace") {
            if matches!(name.as_str(), "default" | "kube-system" | "kube-public") {
                return Resp::status(
                    403,
                    "Forbidden",
                    format!(
                        "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                    ),
                    Some(json!({ "name": name, "kind": "namespaces" })),
                );
            }
            if existing.delete_at.is_some() {
                return Resp::status(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on namespaces \"{name}\": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system."
                    ),
                    Some(json!({ "name": name, "kind": "namespaces" })),
                );
            }
            let mut v = existing.value.clone();
            v["metadata"]["deletionTimestamp"] = json!(now);
            v["status"] = json!({ "phase": "Terminating" });
            if dry {
                return Resp::json(200, &v);
            }
            let rv = self.next_rv();
            v["metadata"]["resourceVersion"] = json!(rv);
            let delete_at = Instant::now() + self.ns_delete_delay;
            let o = self.objects.get_mut(&key).unwrap();
            let old = std::mem::replace(&mut o.value, v.clone());
            o.delete_at = Some(delete_at);
            self.record("MODIFIED", &key, Some(old), &v);
            return Resp::json(200, &v);
        }
        let mut v = existing.value.clone();
        let uid = v["metadata"]["uid"].clone();
        if dry {
            return Resp::json(200, &v);
        }
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            let (group, plural) = (&v["spec"]["group"], &v["spec"]["names"]["plural"]);
            let instances: Vec<Key> = (self.objects.keys())
                .filter(|k| Some(k.group.as_str()) == group.as_str())
                .filter(|k| Some(k.plural.as_str()) == plural.as_str())
                .cloned()
                .collect();
            for k in instances.iter().chain([&key]) {
                self.remove(k);
            }
            v["metadata"]["deletionTimestamp"] = json!(now);
            return Resp::json(200, &v);
        }
        self.remove(&key);
        let policy = opts["propagationPolicy"].as_str().unwrap_or("");
        if policy == "Foreground" || policy == "Orphan" {
            // The object is returned while its finalizer runs (here: already gone).
            v["metadata"]["deletionTimestamp"] = json!(now);
            v["metadata"]["finalizers"] = json!([if policy == "Foreground" {
                "foregroundDeletion"
            } else {
                "orphan"
            }]);
            return Resp::json(200, &v);
        }
        let mut details = rt.details(&name);
        details["uid"] = uid;
        Resp::json(
            200,
            &json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }),
        )
    }
}
