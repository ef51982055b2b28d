"""The chart lints clean and every manifest it renders is valid for Kubernetes 1.29 and 1.32.

Built-in kinds are checked with kubernetes-validate in strict mode (unknown fields are errors);
the RayCluster with KubeRay's own CRD schema (vendored, see crd.py), the PodMonitor and the KEDA
ScaledObject with the models generated from their CRDs. A kind no schema covers fails the test.
"""

from __future__ import annotations

import copy

import pytest

from .conftest import CHART_DIR, KUBE_VERSIONS, by_kind, helm, one
from .crd import crd_model, model_errors, raycluster_errors

kubernetes_validate = pytest.importorskip("kubernetes_validate")
pytest.importorskip("cloudcoil.models.keda", reason="cloudcoil-models-* are in the test extra")


def k8s_errors(obj: dict, version: str) -> str | None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']}/{obj['metadata'].get('name')} at {list(exc.path)}: {exc.message}"
    return None


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("which", ["default", "production"])
def test_lint_is_clean(which, kube_version, production_values):
    values = production_values if which == "production" else {}
    report = helm.lint(str(CHART_DIR), values, strict=True, kube_version=f"v{kube_version}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert not problems and not report["errors"], report


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_manifest_is_valid(docs, kube_version):
    assert len(docs) >= 10
    errors, kinds = [], set()
    for obj in docs:
        kinds.add(obj["kind"])
        if obj["kind"] == "RayCluster":
            errors += raycluster_errors(obj, kube_version)
            continue
        if crd_model(obj["kind"]):
            errors += model_errors(obj)
            continue
        try:
            err = k8s_errors(obj, kube_version)
        except kubernetes_validate.SchemaNotFoundError:
            err = f"no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {kube_version}"
        if err:
            errors.append(err)
    assert not errors, "\n".join(errors)
    assert {"ConfigMap", "ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "RayCluster", "CronJob", "NetworkPolicy"} <= kinds


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_ray_pod_templates_are_valid_pod_templates(docs, kube_version):
    """KubeRay embeds core/v1 PodTemplateSpec: check the templates with Kubernetes' schema."""
    rc = one(docs, "RayCluster")
    templates = [("head", rc["spec"]["headGroupSpec"]["template"])]
    templates += [(g["groupName"], g["template"]) for g in rc["spec"]["workerGroupSpecs"]]
    for group, tmpl in templates:
        wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": group}, "template": tmpl}
        assert k8s_errors(wrapper, kube_version) is None, k8s_errors(wrapper, kube_version)
    # and the autoscaler's overrides are core/v1 types too
    opts = rc["spec"]["autoscalerOptions"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "autoscaler"},
           "spec": {"containers": [{"name": "autoscaler", "image": "x", "resources": opts["resources"],
                                    "securityContext": opts["securityContext"], "env": opts["env"],
                                    "volumeMounts": opts["volumeMounts"]}],
                    "volumes": [{"name": "tmp", "emptyDir": {}}]}}
    assert k8s_errors(pod, kube_version) is None, k8s_errors(pod, kube_version)


@pytest.mark.parametrize("mutate, where", [
    (lambda s: s["workerGroupSpecs"][0].update(groupname="typo"), "groupname"),
    (lambda s: s["workerGroupSpecs"][0].pop("groupName"), "groupName"),
    (lambda s: s["headGroupSpec"].pop("template"), "template"),
    (lambda s: s["headGroupSpec"].update(rayStartParam={}), "rayStartParam"),
    (lambda s: s["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}), "is not of type 'string'"),
    (lambda s: s["workerGroupSpecs"][0].update(minReplicas="1"), "'1'"),
    (lambda s: s.update(enableInTreeAutoScaling=True), "enableInTreeAutoScaling"),
    (lambda s: s["autoscalerOptions"].update(upscalingMode="Fast"), "Fast"),
    (lambda s: s["workerGroupSpecs"][0]["template"]["spec"]["containers"][0].update(resource={}), "resource"),
    (lambda s: s["workerGroupSpecs"][0]["template"]["spec"].update(restartPolicy=7), "7"),
    (lambda s: s.update(upgradeStrategy={"type": "Rolling"}), "Rolling"),
    (lambda s: s.update(authOptions={"mode": "password"}), "password"),
    (lambda s: s.pop("headGroupSpec"), "headGroupSpec"),
])
def test_kuberay_schema_catches_mistakes(production_docs, mutate, where):
    rc = copy.deepcopy(one(production_docs, "RayCluster"))
    assert not raycluster_errors(rc, "1.32")
    mutate(rc["spec"])
    messages = raycluster_errors(rc, "1.32")
    assert messages and any(where in m for m in messages), messages


@pytest.mark.parametrize("kind, mutate, where", [
    ("PodMonitor", lambda s: s["podMetricsEndpoints"][0].update(pathh="/m"), "pathh"),
    ("PodMonitor", lambda s: s.update(podMetricEndpoints=[]), "podMetricEndpoints"),
    ("ScaledObject", lambda s: s.update(maxReplicaCount="two"), "maxReplicaCount"),
    ("ScaledObject", lambda s: s["triggers"][0].update(metaData={}), "metaData"),
])
def test_crd_models_catch_mistakes(production_docs, kind, mutate, where):
    obj = copy.deepcopy(one(production_docs, kind))
    assert not model_errors(obj)
    mutate(obj["spec"])
    messages = model_errors(obj)
    assert messages and any(where in m for m in messages), messages


def test_ray_containers_come_first(docs):
    """KubeRay treats containers[0] of each template as the Ray container."""
    rc = one(docs, "RayCluster")
    assert rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["name"] == "ray-head"
    for g in rc["spec"]["workerGroupSpecs"]:
        assert g["template"]["spec"]["containers"][0]["name"] == "ray-worker"
    assert len({g["groupName"] for g in rc["spec"]["workerGroupSpecs"]}) == len(rc["spec"]["workerGroupSpecs"])


def test_only_expected_kinds(docs):
    allowed = {"ConfigMap", "Secret", "ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler",
               "PodDisruptionBudget", "RayCluster", "CronJob", "NetworkPolicy", "PodMonitor", "ScaledObject"}
    assert {d["kind"] for d in docs} <= allowed
    # least privilege: the chart grants no Kubernetes API rights of its own
    assert not by_kind(docs, "Role") and not by_kind(docs, "ClusterRole") and not by_kind(docs, "RoleBinding")
