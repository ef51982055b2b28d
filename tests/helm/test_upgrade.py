"""Upgrades: render the chart twice, with values changed in between as an operator would, and
check what `helm upgrade` would do with the difference.

- Jobs: Kubernetes refuses any change to a Job's pod template or selector. The release owns no
  Job (one-off crawls are suspended CronJobs), and no upgrade makes one appear.
- The autoscaled Ray worker groups never carry `replicas`, so an upgrade cannot reset the count
  the autoscaler chose.
- The Ray pods are replaced when the image or the settings change (KubeRay does not roll them):
  with upgradeStrategy Recreate their pod templates change (a revision annotation), with
  RenameCluster the RayCluster itself is a new object; and nothing changes when nothing did.
"""

from __future__ import annotations

import copy

import pytest

from .conftest import by_kind, one

CRAWLS = [{"name": "archive", "source": "archive", "seeds": ["https://photos.example.org/"]},
          {"name": "weekly", "source": "press", "seeds": ["https://press.example.org/"], "schedule": "0 2 * * 0"}]


def merged(base: dict, change: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in change.items():
        out[k] = merged(out.get(k, {}), v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# what operators change between releases
CHANGES = {
    "image bump": {"image": {"tag": "0.2.0", "digest": "sha256:" + "b" * 64, "gpuDigest": "sha256:" + "c" * 64}},
    "log level": {"config": {"logLevel": "DEBUG"}},
    "crawl resources": {"crawl": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                                "limits": {"cpu": "2", "memory": "2Gi"}}}},
    "crawl seeds": {"crawlJobs": [{**CRAWLS[0], "seeds": ["https://photos.example.org/2026/"]}, CRAWLS[1]]},
    "setting": {"config": {"extraEnv": {"CONSENTRY_SEARCH_THRESHOLD": "0.5"}}},
    "kafka credentials": {"credentials": {"refs": {"kafkaPassword": {"name": "kafka-user-2", "key": "password"}}}},
    "more workers": {"ingest": {"workers": 4}},
}


@pytest.fixture(scope="module", params=["default", "production"])
def base(request, production_values):
    values = {} if request.param == "default" else copy.deepcopy(production_values)
    values["crawlJobs"] = CRAWLS
    return values


def jobs_by_name(docs):
    return {d["metadata"]["name"]: d for d in by_kind(docs, "Job")}


def pod_templates_by_cluster(rc):
    spec = rc["spec"]
    return [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]


@pytest.mark.parametrize("change", CHANGES)
def test_no_immutable_job_field_changes(render, base, change):
    before, after = render(base), render(merged(base, CHANGES[change]))
    old, new = jobs_by_name(before), jobs_by_name(after)
    for name in old.keys() & new.keys():
        assert old[name]["spec"]["template"] == new[name]["spec"]["template"], f"{change}: Job {name} template"
        assert old[name]["spec"].get("selector") == new[name]["spec"].get("selector"), name
    assert not old and not new, "the release owns no Job at all"
    # the crawls are CronJobs whose (mutable) job template carries the change
    crawl = {d["metadata"]["name"]: d for d in by_kind(after, "CronJob") if "-crawl-" in d["metadata"]["name"]}
    assert set(crawl) == {"consentry-crawl-archive", "consentry-crawl-weekly"}


def test_an_image_bump_starts_no_crawl(render, base):
    after = render(merged(base, CHANGES["image bump"]))
    launcher = one(after, "CronJob", "-crawl-archive")
    assert launcher["spec"]["suspend"] is True  # still only a launcher
    image = launcher["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("@sha256:" + "b" * 64)  # the next run started by hand gets the new image


@pytest.mark.parametrize("change", CHANGES)
def test_autoscaled_groups_never_force_replicas(render, base, change):
    for values in (base, merged(base, CHANGES[change])):
        rc = one(render(values), "RayCluster")
        assert rc["spec"]["enableInTreeAutoscaling"] is True
        for group in rc["spec"]["workerGroupSpecs"]:
            assert "replicas" not in group, group["groupName"]
            assert group["template"]["spec"]["restartPolicy"] == "Never"


def test_replicas_are_rendered_without_the_autoscaler(render):
    rc = one(render({"ray": {"autoscaler": {"enabled": False}}}), "RayCluster")
    assert [g["replicas"] for g in rc["spec"]["workerGroupSpecs"]] == [1]


@pytest.mark.parametrize("change", ["image bump", "log level", "setting", "kafka credentials"])
def test_ray_pods_are_replaced_on_image_or_config_change(render, base, change):
    values = merged(base, {"ray": {"upgradeStrategy": "Recreate"}})
    before = one(render(values), "RayCluster")
    after = one(render(merged(values, CHANGES[change])), "RayCluster")
    assert before["metadata"]["name"] == after["metadata"]["name"]
    assert after["spec"]["upgradeStrategy"] == {"type": "Recreate"}
    for old, new in zip(pod_templates_by_cluster(before), pod_templates_by_cluster(after)):
        assert old != new, change
        assert old["metadata"]["annotations"]["consentry.io/ray-revision"] != \
            new["metadata"]["annotations"]["consentry.io/ray-revision"]
    # the driver, tied to the cluster, rolls with it
    drivers = [one(render(v), "Deployment", "-ingest")["spec"]["template"]["metadata"]["annotations"]
               for v in (values, merged(values, CHANGES[change]))]
    assert drivers[0]["consentry.io/ray-revision"] != drivers[1]["consentry.io/ray-revision"]


@pytest.mark.parametrize("change", ["image bump", "setting"])
def test_rename_strategy_makes_a_new_cluster(render, base, change):
    values = merged(base, {"ray": {"upgradeStrategy": "RenameCluster"}})
    before, after = render(values), render(merged(values, CHANGES[change]))
    old, new = one(before, "RayCluster"), one(after, "RayCluster")
    assert old["metadata"]["name"] != new["metadata"]["name"]
    assert "upgradeStrategy" not in new["spec"]
    # the driver follows the new cluster: its address and its Ray token Secret
    env = {e["name"]: e for e in one(after, "Deployment", "-ingest")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CONSENTRY_RAY_ADDRESS"]["value"] == f"ray://{new['metadata']['name']}-head-svc:10001"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == new["metadata"]["name"]
    assert len(f"{new['metadata']['name']}-head-svc") <= 63


@pytest.mark.parametrize("change", ["crawl resources", "crawl seeds"])
def test_ray_pods_stay_when_nothing_of_theirs_changed(render, base, change):
    """Crawl-only changes leave the Ray pods alone (a change of any setting in the shared
    ConfigMap, ingest.workers included, replaces them)."""
    for strategy in ("Recreate", "RenameCluster"):
        values = merged(base, {"ray": {"upgradeStrategy": strategy}})
        before = one(render(values), "RayCluster")
        after = one(render(merged(values, CHANGES[change])), "RayCluster")
        assert before["metadata"]["name"] == after["metadata"]["name"], strategy
        assert pod_templates_by_cluster(before) == pod_templates_by_cluster(after), strategy
