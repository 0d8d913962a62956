//! Resource types (the built-in ones and those CRDs define) and what discovery shows of them:
//! `/version`, API groups, resource lists and aggregated discovery.

use serde_json::{Value, json};

use super::{
    GIT_VERSION,
    objects::{ApiState, Progress},
    routing::Resp,
    short_hash,
};

#[derive(Clone, Debug)]
pub(super) struct ResType {
    pub(super) group: String,
    pub(super) version: String,
    pub(super) plural: String,
    pub(super) singular: String,
    pub(super) kind: String,
    pub(super) namespaced: bool,
    pub(super) verbs: Vec<String>,
    pub(super) short_names: Vec<String>,
    pub(super) categories: Vec<String>,
    /// Subresource names, e.g. "status".
    pub(super) subresources: Vec<String>,
    /// Defined by a CustomResourceDefinition.
    pub(super) custom: bool,
}

impl ResType {
    pub(super) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// `deployments.apps`, or `configmaps` for the core group (as in error messages).
    pub(super) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    pub(super) fn details(&self, name: &str) -> Value {
        let mut d = json!({ "name": name });
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d["kind"] = json!(self.plural);
        d
    }
    pub(super) fn has_generation(&self) -> bool {
        !(self.group.is_empty()
            && matches!(
                self.plural.as_str(),
                "namespaces" | "configmaps" | "secrets" | "serviceaccounts" | "services"
            ))
    }
    pub(super) fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    cats: &[&str],
    subs: &[&str],
) -> ResType {
    let verbs: Vec<String> = VERBS
        .iter()
        .filter(|v| match plural {
            "namespaces" => **v != "deletecollection",
            // Pods are computed from their workloads on each read (pods.rs): read-only.
            "pods" => matches!(**v, "get" | "list"),
            _ => true,
        })
        .map(|v| v.to_string())
        .collect();
    ResType {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        verbs,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: cats.iter().map(|s| s.to_string()).collect(),
        subresources: subs.iter().map(|s| s.to_string()).collect(),
        custom: false,
    }
}

pub(super) fn builtin_types() -> Vec<ResType> {
    vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            &[],
            &["finalize", "status"],
        ),
        builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], &[], &[]),
        builtin("", "v1", "secrets", "Secret", true, &[], &[], &[]),
        builtin(
            "",
            "v1",
            "services",
            "Service",
            true,
            &["svc"],
            &["all"],
            &["status"],
        ),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            &[],
            &[],
        ),
        builtin("", "v1", "pods", "Pod", true, &["po"], &["all"], &["log"]),
        builtin("", "v1", "events", "Event", true, &["ev"], &[], &[]),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            &["all"],
            &["status"],
        ),
        builtin(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            &["all"],
            &["status"],
        ),
        builtin(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            true,
            &["ds"],
            &["all"],
            &["status"],
        ),
        builtin(
            "batch",
            "v1",
            "jobs",
            "Job",
            true,
            &[],
            &["all"],
            &["status"],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            &[],
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            &[],
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            &[],
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            &[],
            &[],
            &[],
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            &["api-extensions"],
            &["status"],
        ),
    ]
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first; others last.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    for (prefix, rank) in [("beta", 2u8), ("alpha", 1u8)] {
        if let Some(n) = tail
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
        {
            return (rank, major, n);
        }
    }
    (0, 0, 0)
}

impl ApiState {
    /// Built-in types plus the kinds of established CRDs.
    pub(super) fn types(&self) -> Vec<ResType> {
        let mut out = self.builtins.clone();
        for (k, o) in &self.objects {
            if !(k.group == "apiextensions.k8s.io" && k.plural == "customresourcedefinitions") {
                continue;
            }
            if o.progress != Progress::Ready || !o.value["metadata"]["deletionTimestamp"].is_null()
            {
                continue;
            }
            let spec = &o.value["spec"];
            let names = &spec["names"];
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let list = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for ver in spec["versions"].as_array().into_iter().flatten() {
                if ver["served"] != json!(true) {
                    continue;
                }
                out.push(ResType {
                    group: s(&spec["group"]),
                    version: s(&ver["name"]),
                    plural: s(&names["plural"]),
                    singular: s(&names["singular"]),
                    kind: s(&names["kind"]),
                    namespaced: spec["scope"] == json!("Namespaced"),
                    verbs: VERBS.iter().map(|v| v.to_string()).collect(),
                    short_names: list(&names["shortNames"]),
                    categories: list(&names["categories"]),
                    subresources: if ver["subresources"]["status"].is_object() {
                        vec!["status".into()]
                    } else {
                        vec![]
                    },
                    custom: true,
                });
            }
        }
        out
    }

    /// Groups in discovery order, each with its versions sorted by preference.
    pub(super) fn groups(types: &[ResType]) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in types.iter().filter(|t| !t.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) => {
                    if !vs.contains(&t.version) {
                        vs.push(t.version.clone());
                    }
                }
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        for (_, vs) in &mut groups {
            vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        groups
    }
}

pub(super) fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "emulationMajor": "1",
        "emulationMinor": "36",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "35",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(super) fn api_group(group: &str, versions: &[String]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{group}/{v}"), "version": v }))
        .collect();
    json!({ "name": group, "versions": gvs, "preferredVersion": gvs[0] })
}

pub(super) fn resource_list(group: &str, version: &str, types: &[&ResType]) -> Value {
    let mut resources = Vec::new();
    let mut sorted: Vec<&&ResType> = types.iter().collect();
    sorted.sort_by(|a, b| a.plural.cmp(&b.plural));
    for t in sorted {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        r["storageVersionHash"] = json!(short_hash(&(&t.group, &t.kind)));
        resources.push(r);
        for sub in &t.subresources {
            let verbs = if sub == "finalize" {
                json!(["update"])
            } else {
                json!(["get", "patch", "update"])
            };
            resources.push(json!({
                "name": format!("{}/{sub}", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": verbs,
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list = json!({ "kind": "APIResourceList" });
    if !group.is_empty() {
        // The core group's list has no apiVersion, as on a real server.
        list["apiVersion"] = json!("v1");
    }
    list["groupVersion"] = json!(gv);
    list["resources"] = json!(resources);
    list
}

/// Aggregated discovery (apidiscovery.k8s.io/v2), as asked for by
/// `kube::Discovery::run_aggregated` with `Accept: …;as=APIGroupDiscoveryList`.
pub(super) fn aggregated_discovery(types: &[ResType], core: bool) -> Resp {
    let resource = |t: &ResType| {
        let gvk = json!({ "group": t.group, "version": t.version, "kind": t.kind });
        let subs: Vec<Value> = t
            .subresources
            .iter()
            .map(|s| {
                let verbs = if s == "finalize" {
                    json!(["update"])
                } else {
                    json!(["get", "patch", "update"])
                };
                json!({ "subresource": s, "responseKind": gvk, "verbs": verbs })
            })
            .collect();
        let mut r = json!({
            "resource": t.plural,
            "responseKind": gvk,
            "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": t.singular,
            "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        if !subs.is_empty() {
            r["subresources"] = json!(subs);
        }
        r
    };
    let items: Vec<Value> = if core {
        let resources: Vec<Value> = types
            .iter()
            .filter(|t| t.group.is_empty())
            .map(resource)
            .collect();
        vec![json!({
            "metadata": { "creationTimestamp": null },
            "versions": [{ "version": "v1", "resources": resources, "freshness": "Current" }],
        })]
    } else {
        ApiState::groups(types)
            .iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| {
                        let resources: Vec<Value> =
                            types.iter().filter(|t| &t.group == g && &t.version == v).map(resource).collect();
                        json!({ "version": v, "resources": resources, "freshness": "Current" })
                    })
                    .collect();
                json!({ "metadata": { "name": g, "creationTimestamp": null }, "versions": versions })
            })
            .collect()
    };
    Resp {
        code: 200,
        content_type: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        body: serde_json::to_vec(&json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }))
        .unwrap(),
        watch: None,
    }
}
