//! The HTTP layer: records each request, routes its path to a handler, and writes the answer.

use std::{collections::BTreeMap, convert::Infallible, sync::Arc, time::Instant};

use axum::{
    body::Body,
    extract::{Request, State as AxState},
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use serde_json::{Value, json};

use super::{
    RecordedRequest, Shared,
    discovery::{ResType, aggregated_discovery, api_group, resource_list, version_info},
    objects::{ApiState, Key, with_api_version},
    watch::Watch,
};

pub(super) struct Resp {
    pub(super) code: u16,
    pub(super) content_type: &'static str,
    pub(super) body: Vec<u8>,
    /// For a watch: the body is streamed from it.
    pub(super) watch: Option<Box<Watch>>,
}

impl Resp {
    pub(super) fn json(code: u16, v: &Value) -> Resp {
        Resp {
            code,
            content_type: "application/json",
            body: serde_json::to_vec(v).unwrap(),
            watch: None,
        }
    }
    fn text(code: u16, s: &str) -> Resp {
        Resp {
            code,
            content_type: "text/plain; charset=utf-8",
            body: s.as_bytes().to_vec(),
            watch: None,
        }
    }
    /// A `Status` of `Failure`.
    pub(super) fn status(
        code: u16,
        reason: &str,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> Resp {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message.into(),
            "reason": reason,
        });
        if let Some(d) = details {
            s["details"] = d;
        }
        s["code"] = json!(code);
        Resp::json(code, &s)
    }
    fn page_not_found() -> Resp {
        Resp::text(404, "404 page not found\n")
    }
    fn no_resource() -> Resp {
        Resp::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }
    pub(super) fn bad_request(message: impl Into<String>) -> Resp {
        Resp::status(400, "BadRequest", message, None)
    }
    fn not_allowed(message: impl Into<String>) -> Resp {
        Resp::status(405, "MethodNotAllowed", message, Some(json!({})))
    }
}

pub(super) async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    shared.lock().requests.push(RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        content_type,
        at: Instant::now(),
    });
    let resp = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(bytes) => {
            let mut st = shared.lock();
            st.dispatch(&method, &path, &query, &parts.headers, &bytes)
        }
        Err(e) => Resp::bad_request(format!("reading the request body: {e}")),
    };
    let body = match resp.watch {
        Some(w) => {
            let lines = futures::stream::unfold((shared, w), |(shared, mut w)| async move {
                let chunk = w.next(&shared).await?;
                Some((Ok::<_, Infallible>(chunk), (shared, w)))
            });
            Body::from_stream(lines)
        }
        None => Body::from(resp.body),
    };
    Response::builder()
        .status(StatusCode::from_u16(resp.code).unwrap())
        .header(header::CONTENT_TYPE, resp.content_type)
        .body(body)
        .unwrap()
}

fn query_params(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (pct_decode(k), pct_decode(v)),
            None => (pct_decode(p), String::new()),
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

enum Target {
    Collection {
        rt: ResType,
        ns: Option<String>,
    },
    Object {
        rt: ResType,
        ns: Option<String>,
        name: String,
        sub: Option<String>,
    },
}

impl ApiState {
    fn dispatch(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Resp {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        match path {
            "/version" => return Resp::json(200, &version_info()),
            "/readyz" | "/livez" | "/healthz" => return Resp::text(200, "ok"),
            _ => {}
        }
        let authorized = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| !t.trim().is_empty());
        if self.require_token && !authorized {
            return Resp::status(
                403,
                "Forbidden",
                format!(
                    "forbidden: User \"system:anonymous\" cannot {} path \"{path}\"",
                    method.to_lowercase()
                ),
                Some(json!({})),
            );
        }
        let aggregated = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=APIGroupDiscoveryList"));
        let types = self.types();
        let segs: Vec<&str> = path.split('/').skip(1).collect();
        let params = query_params(query);
        match segs.as_slice() {
            ["api"] if method == "GET" => {
                if aggregated {
                    return aggregated_discovery(&types, true);
                }
                Resp::json(
                    200,
                    &json!({
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "172.18.0.2:6443" }],
                    }),
                )
            }
            ["apis"] if method == "GET" => {
                if aggregated {
                    return aggregated_discovery(&types, false);
                }
                let groups: Vec<Value> = Self::groups(&types)
                    .iter()
                    .map(|(g, vs)| api_group(g, vs))
                    .collect();
                Resp::json(
                    200,
                    &json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups }),
                )
            }
            ["apis", group] if method == "GET" => {
                match Self::groups(&types).iter().find(|(g, _)| g == group) {
                    Some((g, vs)) => {
                        let mut v = api_group(g, vs);
                        v["kind"] = json!("APIGroup");
                        v["apiVersion"] = json!("v1");
                        Resp::json(200, &v)
                    }
                    None => Resp::page_not_found(),
                }
            }
            ["api", version, rest @ ..] => {
                self.group_version(method, "", version, rest, &types, &params, headers, body)
            }
            ["apis", group, version, rest @ ..] => {
                self.group_version(method, group, version, rest, &types, &params, headers, body)
            }
            _ => Resp::page_not_found(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn group_version(
        &mut self,
        method: &str,
        group: &str,
        version: &str,
        rest: &[&str],
        types: &[ResType],
        params: &BTreeMap<String, String>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Resp {
        let gv_types: Vec<&ResType> = types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect();
        if gv_types.is_empty() {
            return Resp::page_not_found();
        }
        if rest.is_empty() {
            if method != "GET" {
                return Resp::not_allowed(
                    "the server does not allow this method on the requested resource",
                );
            }
            return Resp::json(200, &resource_list(group, version, &gv_types));
        }
        // `namespaces/{ns}/{plural}…`, except the core group's own `namespaces/{name}/status`
        // and `namespaces/{name}/finalize` subresources.
        let namespace_subresource =
            group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize");
        let (ns, rest) = if rest[0] == "namespaces" && rest.len() >= 3 && !namespace_subresource {
            (Some(rest[1].to_string()), &rest[2..])
        } else {
            (None, rest)
        };
        let Some(rt) = gv_types
            .iter()
            .find(|t| t.plural == rest[0])
            .map(|t| (*t).clone())
        else {
            return Resp::no_resource();
        };
        if ns.is_some() && !rt.namespaced {
            return Resp::no_resource();
        }
        if rt.is("", "Pod") {
            return self.pods_request(method, &rt, ns.as_deref(), &rest[1..], params);
        }
        let target = match rest {
            [_] => Target::Collection { rt, ns },
            [_, name] => Target::Object {
                rt,
                ns,
                name: name.to_string(),
                sub: None,
            },
            [_, name, sub] => Target::Object {
                rt,
                ns,
                name: name.to_string(),
                sub: Some(sub.to_string()),
            },
            _ => return Resp::no_resource(),
        };
        match target {
            Target::Collection { rt, ns } => match method {
                "GET" => {
                    if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
                        return self.watch(&rt, ns.as_deref(), params);
                    }
                    self.list(&rt, ns.as_deref(), params)
                }
                "POST" => match ns {
                    None if rt.namespaced => Resp::not_allowed(
                        "the server does not allow this method on the requested resource",
                    ),
                    _ => self.create(&rt, ns.as_deref(), params, body),
                },
                _ => Resp::not_allowed(format!(
                    "the fake API server does not support {method} on a collection"
                )),
            },
            Target::Object { rt, ns, name, sub } => {
                if rt.namespaced && ns.is_none() {
                    return Resp::no_resource();
                }
                if let Some(sub) = &sub
                    && !rt.subresources.contains(sub)
                {
                    return Resp::no_resource();
                }
                let key = Key {
                    group: rt.group.clone(),
                    plural: rt.plural.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                };
                match (method, sub.as_deref()) {
                    ("GET", None | Some("status")) => match self.objects.get(&key) {
                        Some(o) => Resp::json(200, &with_api_version(&rt, &o.value)),
                        None => not_found(&rt, &name),
                    },
                    ("PATCH", None) => self.patch(&rt, ns.as_deref(), &name, params, headers, body),
                    ("DELETE", None) => self.delete(&rt, key, params, body),
                    _ => Resp::not_allowed(format!(
                        "the fake API server does not support {method} on {}{}",
                        rt.qualified(),
                        sub.map(|s| format!("/{s}")).unwrap_or_default()
                    )),
                }
            }
        }
    }

    /// Pods are computed from their workloads on each read: only get and list are served.
    fn pods_request(
        &self,
        method: &str,
        rt: &ResType,
        ns: Option<&str>,
        rest: &[&str],
        params: &BTreeMap<String, String>,
    ) -> Resp {
        let watch = params.get("watch").is_some_and(|w| w == "true" || w == "1");
        match (method, ns, rest) {
            ("GET", _, []) if !watch => self.list_pods(rt, ns, params),
            ("GET", Some(ns), [name]) => self.get_pod(rt, ns, name),
            ("GET", Some(ns), [name, "log"]) => self.pod_log(rt, ns, name, params),
            (_, None, [_]) | (_, _, [_, _, ..]) => Resp::no_resource(),
            _ => {
                Resp::not_allowed("the server does not allow this method on the requested resource")
            }
        }
    }
}

pub(super) fn not_found(rt: &ResType, name: &str) -> Resp {
    Resp::status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", rt.qualified()),
        Some(rt.details(name)),
    )
}
