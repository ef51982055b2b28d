"""The chart's README documents every value, and NOTES.txt renders for both values sets."""

from __future__ import annotations

import yaml

from .conftest import CHART_DIR

README = (CHART_DIR / "README.md").read_text()


def key_paths(values: dict, prefix: str = "", depth: int = 2):
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value and depth > 1 and key not in ("rayStartParams", "keys", "dns"):
            yield from key_paths(value, path, depth - 1)
        else:
            yield path


def documented(path: str, rows: list[str]) -> bool:
    """`a.b.c` is documented by a row naming it, an ancestor (`a.b`, `a.b.*`), or a grouped row
    (`a.b.x`, `c` / `a.b.x`, `.c`)."""
    parts = path.split(".")
    ancestors = [".".join(parts[:i]) for i in range(1, len(parts))]
    for row in rows:
        key_cell = row.split("|")[1]
        if f"`{path}`" in key_cell or f"`{path}.*`" in key_cell or any(f"`{a}`" in key_cell or f"`{a}.*`" in key_cell for a in ancestors):
            return True
        parent, leaf = ".".join(parts[:-1]), parts[-1]
        if parent and f"`{parent}." in key_cell and (f"`{leaf}`" in key_cell or f"`.{leaf}`" in key_cell):
            return True
    return False


def test_every_value_is_in_the_readme_table():
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    rows = [line for line in README.splitlines() if line.startswith("| `")]
    missing = [p for p in key_paths(values, depth=3) if not documented(p, rows)]
    assert not missing, f"values missing from README.md's table: {missing}"


def test_readme_covers_what_users_need():
    for needle in ("RayService", "RayJob", "long-running stream consumer", "consentry stack up",
                   "kafka.bootstrap", "milvus.uri", "objectStore.endpoint", "credentials.refs",
                   "kuberay-operator", "Strimzi", "KafkaUser", "MinIO tenant", "caBundle.configMap",
                   "after the Service's DNAT", "6443", "kubectl create job --from=cronjob",
                   "non-commercial research only", "authOptions", "upgradeStrategy",
                   "requirements/image.lock", "ray.io_rayclusters"):
        assert needle in README, needle


def test_notes_render(render, production_values):
    for values in ({}, production_values):
        notes = render(values, raw=True)["consentry/templates/NOTES.txt"]
        assert "consentry-api" in notes and "raycluster" in notes
    assert "WARNING: no S3 credentials" in render({}, raw=True)["consentry/templates/NOTES.txt"]
    assert "WARNING" not in render(production_values, raw=True)["consentry/templates/NOTES.txt"]
