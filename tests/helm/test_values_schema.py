"""values.schema.json rejects bad values with a message that names the key and the rule.

Helm enforces the schema on install, upgrade, template and lint; helm-python-sdk is Helm's own
engine, so these are the messages a user sees.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from .conftest import BAD_VALUES_DIR, CHART_DIR, helm, load_values

GROUP = {"name": "g", "replicas": 1, "minReplicas": 0, "maxReplicas": 2, "gpus": 0,
         "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": 1, "memory": "1Gi"}}}


def rejection(render, values) -> str:
    with pytest.raises(helm.HelmValuesError) as info:
        render(values, raw=True)
    return str(info.value)


@pytest.mark.parametrize("filename, expected", [
    ("bad-negative-replicas.yaml", "at '/api/replicas': minimum: got -1, want 1"),
    ("bad-missing-kafka.yaml", "at '/kafka': missing property 'bootstrap'"),
    ("bad-model-device.yaml", "at '/model/device'"),
])
def test_bad_values_files_are_rejected(render, filename, expected):
    message = rejection(render, load_values(BAD_VALUES_DIR / filename))
    assert "values don't meet the specifications of the schema" in message
    assert expected in message, message


def test_bad_values_file_fails_lint_too():
    report = helm.lint(str(CHART_DIR), load_values(BAD_VALUES_DIR / "bad-negative-replicas.yaml"))
    assert any("at '/api/replicas': minimum: got -1, want 1" in e for e in report["errors"]), report


@pytest.mark.parametrize("values, expected", [
    ({"api": {"replicas": 0}}, "at '/api/replicas': minimum: got 0, want 1"),
    ({"api": {"autoscaling": {"maxReplicas": 0}}}, "at '/api/autoscaling/maxReplicas': minimum: got 0, want 1"),
    ({"ray": {"workerGroups": [{**GROUP, "maxReplicas": 0}]}},
     "at '/ray/workerGroups/0/maxReplicas': minimum: got 0, want 1"),
    ({"ray": {"workerGroups": [{**GROUP, "minReplicas": -1}]}},
     "at '/ray/workerGroups/0/minReplicas': minimum: got -1, want 0"),
    ({"ray": {"workerGroups": [{**GROUP, "gpus": -1}]}}, "at '/ray/workerGroups/0/gpus': minimum: got -1, want 0"),
    ({"ray": {"workerGroups": []}}, "at '/ray/workerGroups': minItems"),
    ({"ingest": {"workers": 0}}, "at '/ingest/workers': minimum: got 0, want 1"),
    ({"kafka": {"bootstrap": ""}}, "at '/kafka/bootstrap'"),
    ({"kafka": {"bootstrap": "kafka.example"}}, "at '/kafka/bootstrap'"),  # no port
    ({"milvus": {"uri": None}}, "at '/milvus': missing property 'uri'"),
    ({"milvus": {"uri": "milvus:19530"}}, "at '/milvus/uri'"),  # Settings needs http(s)://
    ({"objectStore": {"endpoint": None}}, "at '/objectStore': missing property 'endpoint'"),
    ({"model": {"device": "gpu"}}, "at '/model/device'"),
    ({"kafka": {"securityProtocol": "TLS"}}, "at '/kafka/securityProtocol'"),
    ({"api": {"replica": 2}}, "at '/api': additional properties 'replica' not allowed"),
    ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    ({"config": {"extraEnv": {"CONSENTRY_ALLOW_PRIVATE_NETWORKS": "true"}}},
     "at '/config/extraEnv/CONSENTRY_ALLOW_PRIVATE_NETWORKS': false schema"),
    ({"config": {"extraEnv": {"CONSENTRY_S3_SECRET_KEY": "oops"}}},
     "at '/config/extraEnv/CONSENTRY_S3_SECRET_KEY': false schema"),
    ({"config": {"extraEnv": {"AWS_REGION": "x"}}}, "invalid propertyName 'AWS_REGION'"),
    ({"crawlJobs": [{"name": "a", "source": "s", "seeds": []}]}, "at '/crawlJobs/0/seeds': minItems"),
    ({"crawlJobs": [{"name": "Bad_Name", "source": "s", "seeds": ["https://x.example/"]}]},
     "at '/crawlJobs/0/name'"),
    ({"crawlJobs": [{"name": "a", "source": "s", "seeds": ["https://x.example/"], "schedule": "daily"}]},
     "at '/crawlJobs/0/schedule'"),
    ({"retention": {"schedule": "every day"}}, "at '/retention/schedule'"),
    ({"ray": {"head": {"rayStartParams": {"num-cpus": 0}}}}, "at '/ray/head/rayStartParams/num-cpus'"),
    ({"api": {"resources": {"limits": None}}}, "at '/api/resources': missing property 'limits'"),
    ({"ray": {"head": {"resources": {"limits": {"memory": None}}}}},
     "at '/ray/head/resources/limits': missing property 'memory'"),
    ({"credentials": {"existingSecret": "mine", "s3SecretKey": "inline-too"}}, "at '/credentials/s3SecretKey'"),
    ({"ingest": {"workerGpus": 1}}, "at '/ray/workerGroups'"),  # GPUs per actor but no GPU group
])
def test_bad_values_are_rejected_with_the_key_named(render, values, expected):
    message = rejection(render, values)
    assert expected in message, message


def test_defaults_and_production_pass_the_schema(chart, production_values):
    chart.validate_schema({})
    chart.validate_schema(production_values)


def test_schema_is_draft07_and_matches_values_yaml():
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = load_values(CHART_DIR / "values.yaml")
    jsonschema.Draft7Validator(schema).validate(defaults)
    # every top-level values key is described by the schema, and nothing else is allowed
    assert set(defaults) <= set(schema["properties"])
    assert schema["additionalProperties"] is False
