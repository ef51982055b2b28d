"""What each workload runs and how it is wired: commands against the real CLI, settings
against the real Settings model, probes, autoscaling, the GPU worker group, the jobs."""

from __future__ import annotations

import os
import re
import tomllib

import pytest
from click.testing import CliRunner

from .conftest import CHART_DIR, ROOT, by_kind, env_of, load_values, one

SECRET_ENV = {"CONSENTRY_S3_ACCESS_KEY", "CONSENTRY_S3_SECRET_KEY", "CONSENTRY_KAFKA_PASSWORD",
              "CONSENTRY_MILVUS_TOKEN"}


def container(obj: dict) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    return obj["spec"]["template"]["spec"]["containers"][0]


def consentry_commands(docs: list[dict]) -> list[list[str]]:
    cmds = []
    for d in docs:
        if d["kind"] in ("Deployment", "Job", "CronJob"):
            c = container(d)
            assert "command" not in c, "the image's ENTRYPOINT is `consentry`; args are its arguments"
            cmds.append(c["args"])
    return cmds


def test_commands_exist_in_the_cli(docs):
    """Every command line the chart runs parses against the real `consentry` CLI."""
    from consentry.cli.main import cli

    cmds = consentry_commands(docs)
    assert ["ingest", "run"] in cmds and ["retention", "sweep"] in cmds
    for args in cmds:
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, f"consentry {' '.join(args)}: {result.output}"


def test_api_deployment(default_docs):
    dep = one(default_docs, "Deployment", "-api")
    c = container(dep)
    assert c["args"] == ["api", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    svc = one(default_docs, "Service", "-api")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    hpa = one(default_docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    pdb = one(default_docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_api_without_autoscaling_sets_replicas(render):
    docs = render({"api": {"replicas": 3, "autoscaling": {"enabled": False}}})
    assert one(docs, "Deployment", "-api")["spec"]["replicas"] == 3
    assert not by_kind(docs, "HorizontalPodAutoscaler")


def test_production_autoscaling(production_docs, production_values):
    hpa = one(production_docs, "HorizontalPodAutoscaler")
    want = production_values["api"]["autoscaling"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (want["minReplicas"], want["maxReplicas"])
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": want["targetCPUUtilizationPercentage"],
                       "memory": want["targetMemoryUtilizationPercentage"]}


def test_configmap_is_a_valid_settings_environment(docs, monkeypatch, tmp_path):
    """Every key is a real setting, and the Settings model accepts the whole environment."""
    from consentry.core.settings import Settings, load_settings

    cm = one(docs, "ConfigMap")
    known = {f"CONSENTRY_{name.upper()}" for name in Settings.model_fields}
    assert set(cm["data"]) <= known, set(cm["data"]) - known
    assert not set(cm["data"]) & SECRET_ENV
    assert cm["data"]["CONSENTRY_ALLOW_PRIVATE_NETWORKS"] == "false"
    for key in ("CONSENTRY_HOME", "CONSENTRY_KAFKA_BOOTSTRAP", "CONSENTRY_TOPIC_PREFIX", "CONSENTRY_S3_ENDPOINT",
                "CONSENTRY_S3_BUCKET", "CONSENTRY_MILVUS_URI", "CONSENTRY_MODEL_PACK", "CONSENTRY_MODEL_DEVICE",
                "CONSENTRY_KAFKA_SECURITY_PROTOCOL", "CONSENTRY_INGEST_WORKERS", "CONSENTRY_INGEST_WORKER_GPUS",
                "CONSENTRY_API_PORT", "CONSENTRY_LOG_JSON"):
        assert key in cm["data"], key
    for key in [k for k in os.environ if k.startswith("CONSENTRY_")]:
        monkeypatch.delenv(key)
    for key, value in cm["data"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))  # the pod's emptyDir
    for key in SECRET_ENV:
        monkeypatch.setenv(key, "dummy")
    s = load_settings()
    assert s.allow_private_networks is False and s.model_device == "cpu" and s.log_json is True
    assert s.kafka_bootstrap == cm["data"]["CONSENTRY_KAFKA_BOOTSTRAP"]
    assert s.milvus_uri == cm["data"]["CONSENTRY_MILVUS_URI"]


def test_extra_env_reaches_the_configmap(production_docs, production_values):
    data = one(production_docs, "ConfigMap")["data"]
    for key, value in production_values["config"]["extraEnv"].items():
        assert data[key] == str(value)
    assert data["CONSENTRY_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"


def test_raycluster_shape(default_docs):
    rc = one(default_docs, "RayCluster")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ray_pin = next(d for d in pyproject["project"]["dependencies"] if re.match(r"ray(\[.*\])?==", d))
    assert rc["spec"]["rayVersion"] == ray_pin.split("==")[1], "ray.version must match the image's Ray"
    head = rc["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    hc = head["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in hc["ports"]} == {
        "gcs-server": 6379, "dashboard": 8265, "client": 10001, "metrics": 8080}
    assert "nvidia.com/gpu" not in hc["resources"]["limits"], "the head is CPU only"
    for c in [hc] + [g["template"]["spec"]["containers"][0] for g in rc["spec"]["workerGroupSpecs"]]:
        # explicit probes: KubeRay's injected ones need wget, which the image lacks
        assert "exec" in c["readinessProbe"] and "exec" in c["livenessProbe"]
        assert "local_raylet_healthz" in " ".join(c["readinessProbe"]["exec"]["command"])
        assert "command" not in c and "args" not in c, "KubeRay generates `ray start`"
    # the default worker group runs anywhere: no GPUs asked for
    assert "nvidia.com/gpu" not in repr(rc)


def test_ingest_driver_connects_to_the_cluster(docs):
    rc = one(docs, "RayCluster")
    dep = one(docs, "Deployment", "-ingest")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    env = env_of(container(dep))
    assert env["CONSENTRY_RAY_ADDRESS"] == f"ray://{rc['metadata']['name']}-head-svc:10001"
    assert container(dep)["args"] == ["ingest", "run"]


def test_ingest_can_be_disabled(render):
    docs = render({"ingest": {"enabled": False}})
    assert not by_kind(docs, "RayCluster")
    assert not [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-ingest")]


def test_production_gpu_worker_group(production_docs, production_values):
    rc = one(production_docs, "RayCluster")
    assert rc["spec"]["enableInTreeAutoscaling"] is True
    want = production_values["ray"]["workerGroups"][0]
    (group,) = rc["spec"]["workerGroupSpecs"]
    assert group["groupName"] == "gpu"
    assert (group["minReplicas"], group["replicas"], group["maxReplicas"]) == (
        want["minReplicas"], want["replicas"], want["maxReplicas"])
    spec = group["template"]["spec"]
    c = spec["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in c["resources"]["requests"]
    assert c["image"].endswith(":0.1.0-gpu")
    assert env_of(c)["CONSENTRY_MODEL_DEVICE"] == "cuda"
    assert spec["nodeSelector"] == want["nodeSelector"]
    assert spec["tolerations"] == want["tolerations"]
    # the actors get their settings from the driver, so the driver says cuda too; the API stays on CPU
    assert env_of(container(one(production_docs, "Deployment", "-ingest")))["CONSENTRY_MODEL_DEVICE"] == "cuda"
    api_env = env_of(container(one(production_docs, "Deployment", "-api")))
    assert "CONSENTRY_MODEL_DEVICE" not in api_env
    assert one(production_docs, "ConfigMap")["data"]["CONSENTRY_MODEL_DEVICE"] == "cpu"
    # the GPU group's pods are sized as asked
    assert c["resources"]["limits"]["memory"] == want["resources"]["limits"]["memory"]


def test_crawl_jobs(production_docs, production_values):
    jobs = {j["metadata"]["labels"]["consentry.io/crawl-job"]: j
            for j in by_kind(production_docs, "CronJob") + by_kind(production_docs, "Job")
            if "consentry.io/crawl-job" in j["metadata"]["labels"]}
    assert set(jobs) == {j["name"] for j in production_values["crawlJobs"]}
    for spec in production_values["crawlJobs"]:
        obj = jobs[spec["name"]]
        assert obj["kind"] == ("CronJob" if spec.get("schedule") else "Job")
        args = container(obj)["args"]
        expected = ["crawl", "start", "--source", spec["source"]]
        for seed in spec["seeds"]:
            expected += ["--seed", seed]
        expected += ["--max-pages", str(spec["maxPages"]), "--depth", str(spec["depth"])]
        assert args == expected
        if obj["kind"] == "CronJob":
            assert obj["spec"]["schedule"] == spec["schedule"]
            assert obj["spec"]["concurrencyPolicy"] == "Forbid"
            assert obj["spec"]["timeZone"] == production_values["crawl"]["timeZone"]
            pod = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        else:
            assert re.fullmatch(rf"consentry-crawl-{spec['name']}-[0-9a-f]{{8}}", obj["metadata"]["name"])
            pod = obj["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert len(obj["metadata"]["name"]) <= (52 if obj["kind"] == "CronJob" else 63)


def test_one_off_crawl_job_name_follows_its_spec(render):
    job = {"name": "archive", "source": "archive", "seeds": ["https://a.example.org/"]}
    name1 = one(render({"crawlJobs": [job]}), "Job")["metadata"]["name"]
    assert name1 == one(render({"crawlJobs": [job]}), "Job")["metadata"]["name"]  # stable
    name2 = one(render({"crawlJobs": [{**job, "maxPages": 10}]}), "Job")["metadata"]["name"]
    assert name1 != name2  # a changed Job is a new Job, not an immutable-field error


def test_retention_sweep(default_docs, render):
    cron = one(default_docs, "CronJob", "-retention")
    assert cron["spec"]["schedule"] == load_values(CHART_DIR / "values.yaml")["retention"]["schedule"]
    assert container(cron)["args"] == ["retention", "sweep"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert not [c for c in by_kind(render({"retention": {"enabled": False}}), "CronJob")
                if c["metadata"]["name"].endswith("-retention")]


def test_long_release_names_stay_within_limits(render, production_values):
    docs = render(production_values, name="a-really-long-release-name-for-consentry-in-prod")
    for d in docs:
        limit = 52 if d["kind"] == "CronJob" else 63
        assert len(d["metadata"]["name"]) <= limit, d["metadata"]["name"]
    rc = one(docs, "RayCluster")
    assert len(f"{rc['metadata']['name']}-head-svc") <= 63


@pytest.mark.parametrize("values, message", [
    ({"ray": {"workerGroups": [{"name": "g", "replicas": 1, "minReplicas": 2, "maxReplicas": 4, "gpus": 0,
                                "resources": {"requests": {"cpu": 1, "memory": "1Gi"},
                                              "limits": {"cpu": 1, "memory": "1Gi"}}}]}},
     "ray.workerGroups[g]: need minReplicas (2) <= replicas (1) <= maxReplicas (4)"),
    ({"api": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
     "api.autoscaling.minReplicas (5) must not exceed api.autoscaling.maxReplicas (2)"),
    ({"crawlJobs": [{"name": "a", "source": "s", "seeds": ["https://x.example/"]},
                    {"name": "a", "source": "t", "seeds": ["https://y.example/"]}]},
     'crawlJobs: the name "a" is used twice'),
])
def test_template_checks_fail_clearly(render, values, message):
    from .conftest import helm

    with pytest.raises(helm.HelmRenderError) as info:
        render(values)
    assert message in str(info.value)
