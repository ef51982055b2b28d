"""What each workload runs and how it is wired: commands against the real CLI, settings
against the real Settings model, probes, autoscaling, the GPU worker group, the jobs."""

from __future__ import annotations

import os
import re
import tomllib

import pytest
from click.testing import CliRunner

from .conftest import CHART_DIR, ROOT, by_kind, env_of, load_values, one

GROUP = {"name": "g", "replicas": 1, "minReplicas": 0, "maxReplicas": 4, "gpus": 0,
         "resources": {"requests": {"cpu": 1, "memory": "2Gi"}, "limits": {"cpu": 1, "memory": "2Gi"}},
         "shmSize": "512Mi", "objectStoreMemory": "256Mi", "tmpSize": "2Gi"}
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
    assert ["ingest", "run", "--http-port", "9090", "--http-host", "0.0.0.0"] in cmds and ["retention", "sweep"] in cmds
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
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    c = container(dep)
    env = env_of(c)
    assert env["CONSENTRY_RAY_ADDRESS"] == f"ray://{rc['metadata']['name']}-head-svc:10001"
    assert c["args"] == ["ingest", "run", "--http-port", "9090", "--http-host", "0.0.0.0"]


def test_ingest_driver_probes_and_actor_start_timeout(docs):
    c = container(one(docs, "Deployment", "-ingest"))
    assert c["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    timeout = int(env_of(c)["CONSENTRY_INGEST_ACTOR_START_TIMEOUT_S"])
    startup = c["startupProbe"]
    assert startup["httpGet"] == {"path": "/healthz", "port": "http"}
    # the start-up window covers the actors' start timeout, so the probe never kills a slow start
    assert startup["periodSeconds"] * startup["failureThreshold"] >= timeout + 60


def test_actor_start_timeout_is_a_value(render):
    c = container(one(render({"ingest": {"actorStartTimeoutSeconds": 1800}}), "Deployment", "-ingest"))
    assert env_of(c)["CONSENTRY_INGEST_ACTOR_START_TIMEOUT_S"] == "1800"
    assert c["startupProbe"]["failureThreshold"] * 10 >= 1800


def test_the_driver_serves_its_probes_on_that_port():
    """`ingest run --http-port/--http-host` are real options of the CLI (see the health server
    tests in tests/ for what they serve)."""
    from consentry.cli.main import cli

    params = {p.name for p in cli.commands["ingest"].commands["run"].params}
    assert {"http_port", "http_host"} <= params


def test_images_by_tag_or_digest(render, production_docs, production_values):
    docs = render({"ray": {"workerGroups": [{**GROUP, "gpus": 1}]}, "ingest": {"workerGpus": 1}})
    rc = one(docs, "RayCluster")
    assert rc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["image"] == \
        "ghcr.io/consentry/consentry:0.1.0-gpu"
    assert container(one(docs, "Deployment", "-api"))["image"] == "ghcr.io/consentry/consentry:0.1.0"
    image = production_values["image"]
    for d in production_docs:
        if d["kind"] in ("Deployment", "CronJob"):
            assert container(d)["image"] == f"{image['repository']}@{image['digest']}", d["metadata"]["name"]


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
    assert (group["minReplicas"], group["maxReplicas"]) == (want["minReplicas"], want["maxReplicas"])
    assert "replicas" not in group, "the autoscaler owns the worker count"
    spec = group["template"]["spec"]
    c = spec["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in c["resources"]["requests"]
    image = production_values["image"]
    assert c["image"] == f"{image['repository']}@{image['gpuDigest']}"  # pinned by digest
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
    assert not by_kind(production_docs, "Job"), "the release owns no Job: Jobs are immutable"
    jobs = {j["metadata"]["labels"]["consentry.io/crawl-job"]: j for j in by_kind(production_docs, "CronJob")
            if "consentry.io/crawl-job" in j["metadata"]["labels"]}
    assert set(jobs) == {j["name"] for j in production_values["crawlJobs"]}
    for spec in production_values["crawlJobs"]:
        obj = jobs[spec["name"]]
        args = container(obj)["args"]
        expected = ["crawl", "start", "--source", spec["source"]]
        for seed in spec["seeds"]:
            expected += ["--seed", seed]
        expected += ["--max-pages", str(spec["maxPages"]), "--depth", str(spec["depth"])]
        assert args == expected
        assert obj["spec"]["concurrencyPolicy"] == "Forbid"
        assert obj["spec"]["timeZone"] == production_values["crawl"]["timeZone"]
        if spec.get("schedule"):
            assert obj["spec"]["schedule"] == spec["schedule"] and obj["spec"]["suspend"] is False
            assert obj["metadata"]["labels"]["consentry.io/crawl-start"] == "scheduled"
        else:  # a launcher: never runs by itself, started with `kubectl create job --from=cronjob/...`
            assert obj["spec"]["suspend"] is True and obj["spec"]["schedule"] == "0 0 31 2 *"
            assert obj["metadata"]["labels"]["consentry.io/crawl-start"] == "on-demand"
        assert obj["metadata"]["name"] == f"consentry-crawl-{spec['name']}"
        assert obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert len(obj["metadata"]["name"]) <= 52


def test_on_demand_crawl_schedule_never_fires():
    """February 31st: the launcher's schedule matches no day, so even unsuspended it never runs."""
    import calendar

    assert all(calendar.monthrange(year, 2)[1] < 31 for year in range(2000, 2400))


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
    ({"ray": {"workerGroups": [{**GROUP, "minReplicas": 2}]}},
     "ray.workerGroups[g]: need minReplicas (2) <= replicas (1) <= maxReplicas (4)"),
    ({"ray": {"workerGroups": [{**GROUP, "maxReplicas": 1}]}, "ingest": {"workers": 3}},
     "at most 2 ingest actors (0.5 CPUs, 0 GPUs each) fit on the worker groups at maxReplicas, but ingest needs 3"),
    ({"ingest": {"workers": 9}}, "kafka.topics.partitions (8) is less than the ingest actors consuming them"),
    ({"ingest": {"autoscaling": {"enabled": True, "maxDrivers": 5}}},
     "kafka.topics.partitions (8) is less than the ingest actors consuming them (ingest.workers 2 x 5 driver(s))"),
    ({"ray": {"workerGroups": [{**GROUP, "objectStoreMemory": "600Mi"}]}},
     "ray.workerGroups[g]: objectStoreMemory (600Mi) must fit in shmSize (512Mi)"),
    ({"ray": {"head": {"shmSize": "2Gi", "objectStoreMemory": "1Gi"}}},
     "ray.head: shmSize (2Gi) must stay under half the memory limit (4Gi)"),
    ({"model": {"pack": "buffalo_s"}}, "InsightFace's buffalo_s weights are licensed for non-commercial research only"),
    ({"image": {"digest": "sha256:" + "a" * 64}, "ingest": {"workerGpus": 1},
      "ray": {"workerGroups": [{**GROUP, "gpus": 1}]}}, "image.gpuDigest is empty"),
    ({"api": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
     "api.autoscaling.minReplicas (5) must not exceed api.autoscaling.maxReplicas (2)"),
    ({"crawlJobs": [{"name": "a", "source": "s", "seeds": ["https://x.example/"]},
                    {"name": "a", "source": "t", "seeds": ["https://y.example/"]}]},
     'crawlJobs: the name "a" is used twice'),
])
def test_template_checks_fail_clearly(render, values, message):
    """Mistakes Helm's schema cannot see fail the render with the reason."""
    from .conftest import helm

    with pytest.raises(helm.HelmRenderError) as info:
        render(values)
    assert message in str(info.value)


# Settings the chart renders that the application adds in the same change set (issue 18); once
# Settings has them, the test below also checks the values load.
PENDING_APP_SETTINGS = {"CONSENTRY_INGEST_ACTOR_START_TIMEOUT_S"}


def test_every_consentry_variable_is_a_setting(docs, monkeypatch, tmp_path):
    from consentry.core.settings import Settings, load_settings

    known = {f"CONSENTRY_{name.upper()}" for name in Settings.model_fields}
    for d in by_kind(docs, "Deployment") + by_kind(docs, "CronJob"):
        env = {e["name"]: e.get("value") for e in container(d).get("env", [])}
        names = {k for k in env if k.startswith("CONSENTRY_")}
        assert names <= known | PENDING_APP_SETTINGS, names - known - PENDING_APP_SETTINGS
        plain = {k: v for k, v in env.items() if k in known and v is not None}
        for key in [k for k in os.environ if k.startswith("CONSENTRY_")]:
            monkeypatch.delenv(key)
        for key, value in {**one(docs, "ConfigMap")["data"], **plain}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
        load_settings()  # raises ConfigError naming the setting
