"""Render the Helm chart once per values set (helm-python-sdk: Helm's own engine, offline).

Fixtures give the rendered manifests as parsed objects; helpers walk them to every pod template
and container so the tests can make one assertion about all of them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is in the test extra")

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "consentry"
PRODUCTION_VALUES = CHART_DIR / "ci" / "production-values.yaml"
BAD_VALUES_DIR = Path(__file__).parent / "values"
KUBE_VERSIONS = ("1.29", "1.32")
RELEASE = "consentry"
NAMESPACE = "consentry"


def load_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def parse(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every object of a render, NOTES.txt left out."""
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


@pytest.fixture(scope="session")
def chart():
    with helm.Chart.load(str(CHART_DIR)) as c:
        yield c


@pytest.fixture(scope="session")
def render(chart):
    def _render(values: dict[str, Any] | None = None, *, name: str = RELEASE, raw: bool = False):
        out = chart.render(copy.deepcopy(values or {}), name=name, namespace=NAMESPACE)
        return out if raw else parse(out)
    return _render


@pytest.fixture(scope="session")
def production_values() -> dict[str, Any]:
    return load_values(PRODUCTION_VALUES)


@pytest.fixture(scope="session")
def default_docs(render) -> list[dict[str, Any]]:
    return render({})


@pytest.fixture(scope="session")
def production_docs(render, production_values) -> list[dict[str, Any]]:
    return render(production_values)


@pytest.fixture(scope="session", params=["default", "production"])
def docs(request, default_docs, production_docs) -> list[dict[str, Any]]:
    return default_docs if request.param == "default" else production_docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, pod template) for every pod the release creates, Ray's included."""
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind in ("Deployment", "Job"):
            yield f"{kind}/{name}", d["spec"]["template"]
        elif kind == "CronJob":
            yield f"{kind}/{name}", d["spec"]["jobTemplate"]["spec"]["template"]
        elif kind == "RayCluster":
            yield f"{kind}/{name}/head", d["spec"]["headGroupSpec"]["template"]
            for g in d["spec"].get("workerGroupSpecs", []):
                yield f"{kind}/{name}/{g['groupName']}", g["template"]


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, container) for every container, init containers and the Ray autoscaler included."""
    for label, tmpl in pod_templates(docs):
        spec = tmpl["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield f"{label}/{c['name']}", c
    for rc in by_kind(docs, "RayCluster"):
        opts = rc["spec"].get("autoscalerOptions")
        if rc["spec"].get("enableInTreeAutoscaling"):
            assert opts, "in-tree autoscaling without autoscalerOptions: the sidecar gets KubeRay's defaults"
            yield f"RayCluster/{rc['metadata']['name']}/autoscaler", {"name": "autoscaler", **opts}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
