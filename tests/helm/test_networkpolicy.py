"""What the rendered NetworkPolicies allow and refuse, evaluated connection by connection.

Pods are built from the rendered pod templates (their labels and named ports) and placed in the
release's namespace; Kafka, Milvus, MinIO, DNS, Prometheus and an unrelated pod live in their own
namespaces; outside addresses are plain IPs.
"""

from __future__ import annotations

import copy

import pytest

from .conftest import NAMESPACE, by_kind, pod_templates
from .netpol import Endpoint, allowed, egress_allowed, ingress_allowed

RAY_HEAD_PORTS = (6379, 8265, 10001, 52365, 8080)
PUBLIC_V4, PUBLIC_V6 = "93.184.216.34", "2606:4700:4700::1111"
METADATA = ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")

KAFKA = Endpoint("10.244.9.10", "kafka", {"strimzi.io/kind": "Kafka"})
MILVUS = Endpoint("10.244.9.20", "milvus", {"app.kubernetes.io/name": "milvus"})
MINIO = Endpoint("10.244.9.30", "minio", {"app": "minio"})
MINIO_TENANT = Endpoint("10.244.9.31", "minio-tenant", {"v1.min.io/tenant": "consentry"})
DNS = Endpoint("10.244.0.10", "kube-system", {"k8s-app": "kube-dns"})
PROMETHEUS = Endpoint("10.244.8.5", "monitoring", {"app.kubernetes.io/name": "prometheus"})
OTHER = Endpoint("10.244.7.7", "payments", {"app": "billing"}, {"https": 443})
API_SERVER = Endpoint("192.168.10.11", None)


def world(docs: list[dict]) -> tuple[list[dict], dict[str, Endpoint]]:
    policies = copy.deepcopy(by_kind(docs, "NetworkPolicy"))
    for p in policies:
        p["metadata"]["namespace"] = NAMESPACE
    pods: dict[str, Endpoint] = {}
    for n, (_, tmpl) in enumerate(pod_templates(docs)):
        labels = tmpl["metadata"]["labels"]
        ports = {p["name"]: p["containerPort"] for c in tmpl["spec"]["containers"] for p in c.get("ports", [])
                 if "name" in p}
        pods.setdefault(labels["app.kubernetes.io/component"], Endpoint(f"10.244.1.{n + 10}", NAMESPACE, labels, ports))
    return policies, pods


CRAWL = [{"name": "archive", "source": "archive", "seeds": ["https://photos.example.org/"]}]


@pytest.fixture(scope="session")
def default_world(render):
    return world(render({"crawlJobs": CRAWL}))  # the defaults, with one crawl


@pytest.fixture(scope="session")
def production_world(production_docs):
    return world(production_docs)


@pytest.fixture(params=["default", "production"])
def any_world(request, default_world, production_world):
    return default_world if request.param == "default" else production_world


def test_the_evaluator_itself():
    """The evaluator follows NetworkPolicy semantics on hand-made policies (so it can fail)."""
    a = Endpoint("10.0.0.1", "ns", {"app": "a"}, {"web": 80})
    b = Endpoint("10.0.0.2", "ns", {"app": "b"}, {"web": 80})
    assert allowed([], a, b, 80)  # nothing selects: open
    deny = {"metadata": {"namespace": "ns"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    assert not allowed([deny], a, b, 80)
    allow_a = {"metadata": {"namespace": "ns"}, "spec": {
        "podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}}],
                     "ports": [{"port": "web", "protocol": "TCP"}]}]}}
    assert allowed([deny, allow_a], a, b, 80) and not allowed([deny, allow_a], a, b, 81)
    assert not allowed([deny, allow_a], b, a, 80)
    assert not allowed([deny, allow_a], Endpoint("10.0.0.1", "other", {"app": "a"}), b, 80)  # other namespace
    egress = {"metadata": {"namespace": "ns"}, "spec": {
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443}]}]}}
    assert egress_allowed([egress], a, Endpoint("8.8.8.8"), 443)
    assert not egress_allowed([egress], a, Endpoint("10.1.1.1"), 443)
    assert not egress_allowed([egress], a, Endpoint("8.8.8.8"), 80)
    assert ingress_allowed([egress], a, b, 1)  # an egress policy leaves ingress open


@pytest.mark.parametrize("component", ["api", "crawl", "retention"])
def test_api_crawler_and_sweep_cannot_reach_the_ray_head(any_world, component):
    policies, pods = any_world
    for port in RAY_HEAD_PORTS:
        assert not allowed(policies, pods[component], pods["ray-head"], port), (component, port)
        assert not allowed(policies, pods[component], pods["ray-worker"], port), (component, port)


def test_only_ray_pods_and_the_driver_reach_the_head(any_world):
    policies, pods = any_world
    head, worker, driver = pods["ray-head"], pods["ray-worker"], pods["ingest"]
    assert allowed(policies, driver, head, 10001)  # Ray Client
    for port in (6379, 8265, 52365):
        assert not allowed(policies, driver, head, port), port
    for port in (6379, 8265, 10001, 52365, 12345):
        assert allowed(policies, worker, head, port), port
        assert allowed(policies, head, worker, port), port
    outside = Endpoint(PUBLIC_V4)
    assert not any(allowed(policies, outside, head, p) for p in RAY_HEAD_PORTS)
    assert not allowed(policies, OTHER, head, 10001)


def test_metrics_scrapers(default_world, production_world):
    policies, pods = default_world
    assert not allowed(policies, PROMETHEUS, pods["ray-head"], 8080)  # metrics.from empty: nobody
    policies, pods = production_world
    assert allowed(policies, PROMETHEUS, pods["ray-head"], 8080)
    assert allowed(policies, PROMETHEUS, pods["ray-worker"], 8080)
    assert allowed(policies, PROMETHEUS, pods["ingest"], pods["ingest"].ports["http"])
    assert not allowed(policies, PROMETHEUS, pods["ray-head"], 8265)
    assert not allowed(policies, PROMETHEUS, pods["ray-head"], 10001)


@pytest.mark.parametrize("component", ["crawl", "ray-worker", "ray-head"])
def test_fetchers_reach_the_web_but_nothing_internal(any_world, component):
    policies, pods = any_world
    src = pods[component]
    assert egress_allowed(policies, src, Endpoint(PUBLIC_V4), 443)
    assert egress_allowed(policies, src, Endpoint(PUBLIC_V6), 80)
    assert not egress_allowed(policies, src, Endpoint(PUBLIC_V4), 22)
    for ip in METADATA:
        for port in (80, 443):
            assert not egress_allowed(policies, src, Endpoint(ip), port), (ip, port)
    # the head's kube-API rule opens its ports to the API server's (unnamed) address: see below
    kube_api_ports = {443, 6443} if component == "ray-head" else set()
    for port in (80, 443, 8080):
        if port in kube_api_ports:
            continue
        assert not allowed(policies, src, OTHER, port), port
        assert not egress_allowed(policies, src, Endpoint("10.96.0.1"), port)  # a ClusterIP
        assert not egress_allowed(policies, src, Endpoint("172.20.4.5"), port)
        assert not egress_allowed(policies, src, Endpoint("192.168.1.1"), port)


def test_kube_api_rule_is_as_narrow_as_the_values(default_world, production_world):
    """Unnamed, the API server may be at any non-metadata address on 443/6443 (managed control
    planes answer on 443, kubeadm on 6443); named (production), only there."""
    policies, pods = default_world
    assert allowed(policies, pods["ray-head"], OTHER, 443)
    assert not egress_allowed(policies, pods["ray-head"], Endpoint(METADATA[0]), 443)
    policies, pods = production_world
    assert not allowed(policies, pods["ray-head"], OTHER, 443)
    assert not egress_allowed(policies, pods["ray-head"], Endpoint("10.96.0.1"), 443)


def test_api_driver_and_sweep_have_no_web(any_world):
    policies, pods = any_world
    for component in ("api", "ingest", "retention"):
        assert not egress_allowed(policies, pods[component], Endpoint(PUBLIC_V4), 443), component


def test_each_workload_reaches_only_the_systems_it_uses(default_world):
    policies, pods = default_world
    uses = {"api": {"kafka", "milvus", "minio"}, "ingest": {"kafka", "milvus", "minio"},
            "ray-head": {"kafka", "milvus", "minio"}, "ray-worker": {"kafka", "milvus", "minio"},
            "crawl": {"kafka", "minio"}, "retention": {"milvus", "minio"}}
    systems = {"kafka": (KAFKA, 9092), "milvus": (MILVUS, 19530), "minio": (MINIO, 9000)}
    for component, want in uses.items():
        for name, (pod, port) in systems.items():
            assert allowed(policies, pods[component], pod, port) == (name in want), (component, name)
            assert not allowed(policies, pods[component], pod, port + 1), (component, name)
        assert allowed(policies, pods[component], DNS, 53, "UDP")


def test_production_egress_follows_dnat(production_world):
    """The MinIO tenant answers on 443 at its Service and 9000 at its pods; the API server's
    endpoints on 6443: policies must name what is left after DNAT."""
    policies, pods = production_world
    assert allowed(policies, pods["api"], MINIO_TENANT, 9000)
    assert allowed(policies, pods["ray-head"], API_SERVER, 6443)
    assert not allowed(policies, pods["ray-worker"], API_SERVER, 6443)
    assert not egress_allowed(policies, pods["ray-head"], Endpoint("192.168.10.99"), 6443)


def test_egress_can_be_left_open(render):
    docs = render({"crawlJobs": CRAWL, "networkPolicy": {"egress": {"restrict": False}}})
    policies, pods = world(docs)
    assert not [p for p in policies if "Egress" in p["spec"]["policyTypes"]]
    assert egress_allowed(policies, pods["crawl"], Endpoint(METADATA[0]), 80)
    # ingress stays closed: the crawler still cannot reach the head
    assert not allowed(policies, pods["crawl"], pods["ray-head"], 8265)
