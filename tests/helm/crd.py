"""Validators for the custom resources the chart renders.

RayCluster: KubeRay's own CRD schema (helm/consentry/crds-schema/ray.io_rayclusters.v1.yaml, the
upstream v1 schema with its two embedded PodTemplateSpecs put back from Kubernetes' strict schema
for the version under test). The API server prunes unknown fields of a structural schema, and
`kubectl apply` / Helm's server-side apply reject them under strict field validation, so every
object that lists its properties is closed here (additionalProperties: false).

PodMonitor and ScaledObject: the pydantic models generated from the prometheus-operator and KEDA
CRDs (cloudcoil-models-*), plus a walk that refuses keys the CRD does not define (the models
themselves ignore unknown keys).
"""

from __future__ import annotations

import json
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import BaseModel
from referencing import Registry, Resource

from .conftest import CHART_DIR

RAYCLUSTER_CRD = CHART_DIR / "crds-schema" / "ray.io_rayclusters.v1.yaml"
EMBEDDED = "x-consentry-embedded"


def _k8s_definitions(kube_version: str) -> dict[str, Any]:
    import kubernetes_validate

    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{kube_version}.0-local-strict"
    return json.loads((root / "_definitions.json").read_text())


def _close(node: Any) -> Any:
    """Embedded types become $refs into Kubernetes' definitions; listed objects are closed."""
    if isinstance(node, list):
        return [_close(n) for n in node]
    if not isinstance(node, dict):
        return node
    if EMBEDDED in node:
        return {"$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/{node[EMBEDDED]}"}
    out = {k: _close(v) for k, v in node.items() if not k.startswith("x-consentry")}
    if "properties" in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@cache
def raycluster_validator(kube_version: str) -> jsonschema.protocols.Validator:
    crd = yaml.safe_load(RAYCLUSTER_CRD.read_text())
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "ray.io/v1"},
            "kind": {"const": "RayCluster"},
            "metadata": {"$ref": "https://kubernetes.io/api/_definitions.json#/$defs/"
                                 "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
            "spec": _close(crd["spec"]),
        },
        "additionalProperties": False,
    }
    registry = Resource.from_contents(_k8s_definitions(kube_version)) @ Registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def raycluster_errors(obj: dict, kube_version: str) -> list[str]:
    return [f"RayCluster at {list(e.absolute_path)}: {e.message}"
            for e in raycluster_validator(kube_version).iter_errors(obj)]


# --- pydantic-model CRDs ---------------------------------------------------------------------------

def _models_in(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (list, dict, typing.Union, types.UnionType) or origin is not None:
        found = []
        for arg in typing.get_args(annotation):
            found += _models_in(arg)
        return found
    return []


def unknown_keys(model: type[BaseModel], data: Any, path: str = "") -> list[str]:
    """Keys in `data` that `model` (recursively) does not define."""
    if isinstance(data, list):
        return [e for i, item in enumerate(data) for e in unknown_keys(model, item, f"{path}[{i}]")]
    if not isinstance(data, dict):
        return []
    if getattr(model, "__pydantic_root_model__", False):
        models = _models_in(model.model_fields["root"].annotation)
        return unknown_keys(models[0], data, path) if models else []
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    errors = []
    for key, value in data.items():
        if key not in fields:
            errors.append(f"{path}.{key}")
            continue
        nested = _models_in(fields[key].annotation)
        if nested and isinstance(value, dict | list):
            if isinstance(value, dict) and typing.get_origin(fields[key].annotation) is dict:
                continue
            errors += unknown_keys(nested[0], value, f"{path}.{key}")
    return errors


def crd_model(kind: str) -> type[BaseModel] | None:
    if kind in ("PodMonitor", "ServiceMonitor"):
        from cloudcoil.models.prometheus_operator import v1
        return getattr(v1, kind)
    if kind == "ScaledObject":
        from cloudcoil.models.keda.v1alpha1 import ScaledObject
        return ScaledObject
    return None


def model_errors(obj: dict) -> list[str]:
    model = crd_model(obj["kind"])
    assert model is not None, obj["kind"]
    errors = [f"{obj['kind']}: unknown field {k}" for k in unknown_keys(model, obj)]
    try:
        model.model_validate(obj)
    except Exception as exc:  # pydantic.ValidationError, named in the message
        errors.append(f"{obj['kind']}: {exc}")
    return errors
