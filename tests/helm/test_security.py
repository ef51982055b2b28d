"""Security posture of everything the chart runs: non-root, read-only root, no capabilities,
seccomp, resources on every container, no tokens, NetworkPolicies, and secrets kept out of
ConfigMaps."""

from __future__ import annotations

import base64

from .conftest import by_kind, containers, env_of, one, pod_templates

SECRET_ENV = ("CONSENTRY_S3_ACCESS_KEY", "CONSENTRY_S3_SECRET_KEY", "CONSENTRY_KAFKA_PASSWORD",
              "CONSENTRY_MILVUS_TOKEN")


def test_every_container_is_locked_down(docs):
    seen = 0
    for label, c in containers(docs):
        seen += 1
        sc = c.get("securityContext") or {}
        assert sc.get("runAsNonRoot") is True, label
        assert sc.get("runAsUser") == 10001, label
        assert sc.get("allowPrivilegeEscalation") is False, label
        assert sc.get("readOnlyRootFilesystem") is True, label
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], label
        assert not sc.get("capabilities", {}).get("add"), label
        assert sc.get("privileged") in (None, False), label
        assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", label
    assert seen >= 6


def test_every_container_has_requests_and_limits(docs):
    for label, c in containers(docs):
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(kind, {})), f"{label}: resources.{kind} lacks cpu/memory"


def test_every_pod_is_non_root_and_keeps_tokens_and_service_links_out(docs):
    for label, tmpl in pod_templates(docs):
        spec = tmpl["spec"]
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001, label
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", label
        # a Service named <release>-api would inject CONSENTRY_API_PORT=tcp://... otherwise
        assert spec["enableServiceLinks"] is False, label
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), label
        if label.endswith("/head"):
            continue  # the head runs as KubeRay's autoscaler account (see test below)
        assert spec["automountServiceAccountToken"] is False, label
        assert spec["serviceAccountName"] == "consentry", label


def test_writable_paths_are_empty_dirs(docs):
    for label, tmpl in pod_templates(docs):
        volumes = {v["name"]: v for v in tmpl["spec"]["volumes"]}
        for c in tmpl["spec"]["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], label
            assert "emptyDir" in volumes[mounts["/var/lib/consentry"]], label
            if label.startswith("RayCluster"):
                assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory", label


def test_service_account_has_no_token_and_no_rbac(docs):
    sa = one(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        assert not by_kind(docs, kind)


def test_ray_head_uses_kuberays_autoscaler_account_not_ours(docs):
    rc = one(docs, "RayCluster")
    head = rc["spec"]["headGroupSpec"]["template"]["spec"]
    assert rc["spec"]["enableInTreeAutoscaling"] is True
    # unset: KubeRay creates an account for the cluster and binds only its autoscaler Role to it
    assert "serviceAccountName" not in head


def test_ray_head_falls_back_to_our_account_without_autoscaler(render):
    rc = one(render({"ray": {"autoscaler": {"enabled": False}}}), "RayCluster")
    assert rc["spec"]["enableInTreeAutoscaling"] is False and "autoscalerOptions" not in rc["spec"]
    head = rc["spec"]["headGroupSpec"]["template"]["spec"]
    assert head["serviceAccountName"] == "consentry" and head["automountServiceAccountToken"] is False


def test_network_policies(default_docs):
    pols = {p["metadata"]["name"]: p["spec"] for p in by_kind(default_docs, "NetworkPolicy")}
    deny = pols["consentry-default-deny-ingress"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    api = pols["consentry-api-ingress"]
    assert api["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert api["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]  # from anywhere
    intra = pols["consentry-intra-release"]
    release = {"app.kubernetes.io/name": "consentry", "app.kubernetes.io/instance": "consentry"}
    assert intra["podSelector"]["matchLabels"] == release
    assert intra["ingress"][0]["from"] == [{"podSelector": {"matchLabels": release}}]
    # egress is open by default
    assert not [p for p in pols.values() if "Egress" in p["policyTypes"]]
    # the API port the policy names exists on the API container
    dep = one(default_docs, "Deployment", "-api")
    assert dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] == "http"


def test_network_policies_restricted(production_docs, production_values):
    pols = {p["metadata"]["name"]: p["spec"] for p in by_kind(production_docs, "NetworkPolicy")}
    api = pols["consentry-api-ingress"]
    assert api["ingress"][0]["from"] == production_values["networkPolicy"]["api"]["from"]
    egress = pols["consentry-egress"]
    assert egress["policyTypes"] == ["Egress"]
    dns_ports = {(p["port"], p["protocol"]) for p in egress["egress"][0]["ports"]}
    assert dns_ports == {(53, "UDP"), (53, "TCP")}
    assert egress["egress"][2:] == production_values["networkPolicy"]["egress"]["services"]
    web = pols["consentry-egress-web"]
    block = web["egress"][0]["to"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in block["except"] and "169.254.0.0/16" in block["except"]
    comps = next(e for e in web["podSelector"]["matchExpressions"] if e["key"] == "app.kubernetes.io/component")
    assert set(comps["values"]) == {"crawl", "ray-worker", "ray-head"}
    kube = pols["consentry-egress-kube-api"]
    assert kube["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}}]


def test_network_policies_can_be_switched_off(render):
    assert not by_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy")
    names = {p["metadata"]["name"] for p in by_kind(render({"networkPolicy": {"defaultDenyIngress": False}}),
                                                     "NetworkPolicy")}
    assert "consentry-default-deny-ingress" not in names and "consentry-api-ingress" in names


def test_no_secret_values_in_configmaps(render):
    creds = {"s3AccessKey": "AKIA-SENTINEL-ACCESS", "s3SecretKey": "sentinel-secret-key-9f2",
             "kafkaPassword": "sentinel-kafka-pw", "milvusToken": "sentinel-milvus-token"}
    docs = render({"credentials": creds})
    for cm in by_kind(docs, "ConfigMap"):
        text = repr(cm)
        for value in creds.values():
            assert value not in text, f"credential leaked into ConfigMap {cm['metadata']['name']}"
        assert not set(cm["data"]) & set(SECRET_ENV)
    # the values live in the Secret, and every container reads them from there
    secret = one(docs, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == dict(zip(SECRET_ENV, creds.values()))
    for label, c in containers(docs):
        if label.endswith("/autoscaler"):
            continue
        env = env_of(c)
        for name in SECRET_ENV:
            assert env[name]["secretKeyRef"]["name"] == secret["metadata"]["name"], label
        # nothing else in plain env carries a credential
        assert not [v for v in env.values() if isinstance(v, str) and v in creds.values()], label


def test_existing_secret_is_referenced_not_rendered(production_docs, production_values):
    assert not by_kind(production_docs, "Secret")
    keys = production_values["credentials"]["keys"]
    expected = {"CONSENTRY_S3_ACCESS_KEY": (keys["s3AccessKey"], None),
                "CONSENTRY_S3_SECRET_KEY": (keys["s3SecretKey"], None),
                "CONSENTRY_KAFKA_PASSWORD": (keys["kafkaPassword"], True),
                "CONSENTRY_MILVUS_TOKEN": (keys["milvusToken"], True)}
    for label, c in containers(production_docs):
        if label.endswith("/autoscaler"):
            continue
        env = env_of(c)
        for name, (key, optional) in expected.items():
            ref = env[name]["secretKeyRef"]
            assert (ref["name"], ref["key"], ref.get("optional")) == ("consentry-credentials", key, optional), label
