//! How manifests name images: a reference as the container runtime resolves it, and the string
//! values of a YAML document that are one. Which deploy steps use a profile image (config) and
//! the overlay's rewrite to a caller's image (pipeline) follow these same rules.
use std::collections::BTreeSet;

use serde_json::Value;

/// An image reference as the container runtime resolves it: `web:dev`, `library/web:dev` and
/// `docker.io/library/web:dev` are one image; no tag means `:latest`.
pub fn normalized(reference: &str) -> String {
    let name = reference
        .strip_prefix("docker.io/")
        .or_else(|| reference.strip_prefix("index.docker.io/"))
        .unwrap_or(reference);
    let name = name.strip_prefix("library/").unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Every string value in `value`, wherever it appears (containers, env, custom resources).
pub fn strings<'a>(value: &'a Value, out: &mut BTreeSet<&'a str>) {
    match value {
        Value::String(s) => {
            out.insert(s);
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(fields) => fields.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Replaces every string value that names one of `renames`' images (`(name, new reference)`)
/// with its new reference; returns how many were replaced.
pub fn rewrite(value: &mut Value, renames: &[(String, String)]) -> usize {
    match value {
        Value::String(s) => {
            let this = normalized(s);
            match renames.iter().find(|(name, _)| normalized(name) == this) {
                Some((_, new)) => {
                    *s = new.clone();
                    1
                }
                None => 0,
            }
        }
        Value::Array(items) => items.iter_mut().map(|v| rewrite(v, renames)).sum(),
        Value::Object(fields) => fields.values_mut().map(|v| rewrite(v, renames)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rewrite_replaces_every_spelling_of_the_image_and_nothing_else() {
        let mut doc = json!({
            "spec": {"template": {"spec": {
                "initContainers": [{"image": "docker.io/library/we:dev"}],
                "containers": [
                    {"image": "we:dev", "env": [{"name": "SELF", "value": "we:dev"}]},
                    {"image": "registry.example/we:dev"},
                ],
            }}},
            "metadata": {"annotations": {"note": "we:dev is ours"}},
        });
        let renames = [("we:dev".to_string(), "we:infrad-0123456789ab".to_string())];
        assert_eq!(rewrite(&mut doc, &renames), 3);
        let containers = &doc["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], "we:infrad-0123456789ab");
        assert_eq!(containers[0]["env"][0]["value"], "we:infrad-0123456789ab");
        assert_eq!(
            doc["spec"]["template"]["spec"]["initContainers"][0]["image"],
            "we:infrad-0123456789ab"
        );
        assert_eq!(containers[1]["image"], "registry.example/we:dev");
        assert_eq!(doc["metadata"]["annotations"]["note"], "we:dev is ours");
    }
}
