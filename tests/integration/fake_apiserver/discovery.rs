//! Version, health and discovery (legacy and aggregated), as kube-rs reads them.

use infrad_test_support::fake_apiserver::FakeApiServer;
use kube::{
    Discovery,
    api::GroupVersionKind,
    discovery::{self, Scope},
};

use super::{api_error, client, raw_get};

#[tokio::test]
async fn version_health_and_discovery() {
    let f = FakeApiServer::start().await;
    let client = client(&f).await;

    let info = client.apiserver_version().await.unwrap();
    assert_eq!(info.git_version, "v1.36.1");
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "36"));
    let readyz = raw_get(&f.url(), "/readyz").await;
    assert!(readyz.starts_with("HTTP/1.1 200"), "{readyz}");
    assert!(readyz.ends_with("\r\n\r\nok"), "{readyz}");

    let (ar, caps) =
        discovery::pinned_kind(&client, &GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .await
            .unwrap();
    assert_eq!(
        (ar.plural.as_str(), ar.api_version.as_str()),
        ("deployments", "apps/v1")
    );
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(r, _)| r.plural == "deployments/status" || r.plural == "status")
    );

    for (g, v, k, plural, scope) in [
        ("", "v1", "Namespace", "namespaces", Scope::Cluster),
        ("", "v1", "ConfigMap", "configmaps", Scope::Namespaced),
        (
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            Scope::Namespaced,
        ),
        ("batch", "v1", "Job", "jobs", Scope::Namespaced),
        ("apps", "v1", "DaemonSet", "daemonsets", Scope::Namespaced),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            Scope::Cluster,
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            Scope::Namespaced,
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            Scope::Cluster,
        ),
    ] {
        let (ar, caps) = discovery::pinned_kind(&client, &GroupVersionKind::gvk(g, v, k))
            .await
            .unwrap();
        assert_eq!(ar.plural, plural);
        assert_eq!(caps.scope, scope, "{k}");
    }

    // An unknown group is a 404 (a text body on a real server; kube makes it a Status).
    let err = discovery::pinned_kind(
        &client,
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
    )
    .await;
    assert_eq!(api_error(err).code, 404);
    // A known group without the kind is a discovery error, not an API error.
    let err = discovery::pinned_kind(&client, &GroupVersionKind::gvk("apps", "v1", "Widget")).await;
    assert!(matches!(err, Err(kube::Error::Discovery(_))), "{err:?}");

    // Full discovery, legacy and aggregated.
    for d in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        for gvk in [
            GroupVersionKind::gvk("apps", "v1", "StatefulSet"),
            GroupVersionKind::gvk("", "v1", "Secret"),
            GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"),
        ] {
            assert!(d.resolve_gvk(&gvk).is_some(), "{gvk:?}");
        }
    }
}
