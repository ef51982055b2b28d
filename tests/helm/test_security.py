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


def test_network_policies_can_be_switched_off(render):
    assert not by_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy")
    names = {p["metadata"]["name"] for p in by_kind(render({"networkPolicy": {"defaultDenyIngress": False}}),
                                                     "NetworkPolicy")}
    assert "consentry-default-deny-ingress" not in names and "consentry-api-ingress" in names


CREDENTIALS_OF = {  # least credential: what each workload reads
    "api": set(SECRET_ENV), "ingest": set(SECRET_ENV), "ray": set(SECRET_ENV),
    "crawl": {"CONSENTRY_S3_ACCESS_KEY", "CONSENTRY_S3_SECRET_KEY", "CONSENTRY_KAFKA_PASSWORD"},
    "retention": {"CONSENTRY_S3_ACCESS_KEY", "CONSENTRY_S3_SECRET_KEY", "CONSENTRY_MILVUS_TOKEN"},
}


def workload(label: str) -> str:
    if label.startswith("RayCluster"):
        return "ray"
    return label.rsplit("/", 1)[-1]  # the container name is the component


def consentry_containers(docs):
    return [(label, c) for label, c in containers(docs)
            if not label.endswith("/autoscaler") and not label.endswith("/ca-bundle")]


def test_no_secret_values_in_configmaps(render):
    creds = {"s3AccessKey": "AKIA-SENTINEL-ACCESS", "s3SecretKey": "sentinel-secret-key-9f2",
             "kafkaPassword": "sentinel-kafka-pw", "milvusToken": "sentinel-milvus-token"}
    docs = render({"credentials": creds, "crawlJobs": [{"name": "a", "source": "a", "seeds": ["https://a.example/"]}]})
    for cm in by_kind(docs, "ConfigMap"):
        text = repr(cm)
        for value in creds.values():
            assert value not in text, f"credential leaked into ConfigMap {cm['metadata']['name']}"
        assert not set(cm["data"]) & set(SECRET_ENV)
    # the values live in the Secret, and every container reads them from there
    secret = one(docs, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == dict(zip(SECRET_ENV, creds.values()))
    seen = set()
    for label, c in consentry_containers(docs):
        env = env_of(c)
        seen.add(workload(label))
        assert {k for k in env if k in SECRET_ENV} == CREDENTIALS_OF[workload(label)], label
        for name in CREDENTIALS_OF[workload(label)]:
            assert env[name]["secretKeyRef"]["name"] == secret["metadata"]["name"], label
        # nothing else in plain env carries a credential
        assert not [v for v in env.values() if isinstance(v, str) and v in creds.values()], label
    assert seen == set(CREDENTIALS_OF)


def test_crawl_pods_never_see_milvus_nor_the_sweep_kafka(production_docs):
    for label, c in consentry_containers(production_docs):
        env = env_of(c)
        if workload(label) == "crawl":
            assert "CONSENTRY_MILVUS_TOKEN" not in env, label
        if workload(label) == "retention":
            assert "CONSENTRY_KAFKA_PASSWORD" not in env, label


def test_one_secret_per_credential(production_docs, production_values):
    """Production names a Secret per credential (Strimzi's KafkaUser secret among them): no
    chart Secret is rendered, and each variable reads its own Secret and key, never optional."""
    assert not by_kind(production_docs, "Secret")
    refs = production_values["credentials"]["refs"]
    env_name = {"s3AccessKey": "CONSENTRY_S3_ACCESS_KEY", "s3SecretKey": "CONSENTRY_S3_SECRET_KEY",
                "kafkaPassword": "CONSENTRY_KAFKA_PASSWORD", "milvusToken": "CONSENTRY_MILVUS_TOKEN"}
    for label, c in consentry_containers(production_docs):
        env = env_of(c)
        for cred, ref in refs.items():
            if env_name[cred] not in CREDENTIALS_OF[workload(label)]:
                continue
            got = env[env_name[cred]]["secretKeyRef"]
            assert (got["name"], got["key"], got.get("optional")) == (ref["name"], ref["key"], None), label


def test_existing_secret_with_one_override(render):
    docs = render({"credentials": {"existingSecret": "creds", "keys": {"kafkaPassword": "kafka-pw"},
                                   "refs": {"kafkaPassword": {"name": "consentry-ingest", "key": "password"}}}})
    assert not by_kind(docs, "Secret")
    env = env_of(one(docs, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0])
    assert env["CONSENTRY_KAFKA_PASSWORD"]["secretKeyRef"] == {"name": "consentry-ingest", "key": "password"}
    assert env["CONSENTRY_MILVUS_TOKEN"]["secretKeyRef"] == {"name": "creds", "key": "CONSENTRY_MILVUS_TOKEN",
                                                              "optional": True}
    assert env["CONSENTRY_S3_SECRET_KEY"]["secretKeyRef"] == {"name": "creds", "key": "CONSENTRY_S3_SECRET_KEY"}


def test_ray_token_reaches_only_the_driver(docs):
    """KubeRay gives the token to the Ray containers; of the chart's own pods only the driver,
    which connects to the head, reads it (from the Secret KubeRay names after the cluster)."""
    rc = one(docs, "RayCluster")
    assert rc["spec"]["authOptions"] == {"mode": "token"}
    for label, c in consentry_containers(docs):
        env = env_of(c)
        if workload(label) == "ingest":
            assert env["RAY_AUTH_MODE"] == "token"
            assert env["RAY_AUTH_TOKEN"]["secretKeyRef"] == {"name": rc["metadata"]["name"], "key": "auth_token"}
        else:
            assert "RAY_AUTH_TOKEN" not in env, label


def test_ca_bundle_is_trusted_everywhere(render, production_docs):
    for label, tmpl in pod_templates(production_docs):
        spec = tmpl["spec"]
        (init,) = [c for c in spec["initContainers"] if c["name"] == "ca-bundle"]
        assert "/etc/ssl/certs/ca-certificates.crt /etc/consentry/ca/ca.crt" in init["command"][-1], label
        assert {v["name"]: v for v in spec["volumes"]}["ca"]["configMap"]["name"] == "internal-ca-bundle"
        c = spec["containers"][0]
        env = env_of(c)
        assert env["SSL_CERT_FILE"] == env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] == "/etc/consentry/trust/ca-bundle.pem"
        assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/etc/consentry/trust", "/etc/consentry/ca"}
    # a bundle that already holds every CA is used as it is, from a Secret
    docs = render({"caBundle": {"secret": "ca", "key": "bundle.pem", "includeSystemCAs": False}})
    api = one(docs, "Deployment", "-api")["spec"]["template"]["spec"]
    assert "initContainers" not in api
    assert env_of(api["containers"][0])["SSL_CERT_FILE"] == "/etc/consentry/ca/bundle.pem"
    # and nothing at all without one
    default_api = one(render({}), "Deployment", "-api")["spec"]["template"]["spec"]
    assert "SSL_CERT_FILE" not in env_of(default_api["containers"][0])
