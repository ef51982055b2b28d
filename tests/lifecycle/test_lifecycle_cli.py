"""forget / explain / retention through the real CLI process, on the real servers."""

import json
import os
import subprocess
import sys
import time

SITE = "http://127.0.0.1:8/photos/"


def run(settings, bucket, *args):
    env = {**os.environ, "CONSENTRY_S3_BUCKET": bucket, "CONSENTRY_MILVUS_COLLECTION": settings.milvus_collection,
           "CONSENTRY_MILVUS_SUPPRESSION_COLLECTION": settings.milvus_suppression_collection,
           "CONSENTRY_TOPIC_PREFIX": settings.topic_prefix}
    return subprocess.run([sys.executable, "-m", "consentry.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_forget_explain_and_sweep_cli(real_world, settings, photos):
    w = real_world
    w.add(SITE + "obama.jpg", photos["obama.jpg"].read_bytes())
    w.add(SITE + "obama2.jpg", photos["obama2.jpg"].read_bytes())
    w.add(SITE + "biden.jpg", photos["biden.jpg"].read_bytes(), expires_in=60)

    res = run(settings, w.store.bucket, "forget", str(photos["obama3.jpg"]), "--json")
    assert res.returncode == 0, res.stderr
    receipt = json.loads(res.stdout)
    assert len(receipt["matched_face_ids"]) == 2 and receipt["verification"]["ok"]
    assert w.index.count() == 1

    res = run(settings, w.store.bucket, "explain", SITE + "obama2.jpg")
    assert res.returncode == 0, res.stderr
    assert "INDEX" in res.stdout and "faces erased:  1" in res.stdout and receipt["request_id"] in res.stdout

    later = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 3600))
    res = run(settings, w.store.bucket, "retention", "sweep", "--as-of", later, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["expired_faces"] == 1 and w.index.count() == 0

    res = run(settings, w.store.bucket, "explain", "http://127.0.0.1:8/never-seen.jpg")
    assert res.returncode == 1 and "no provenance" in res.stderr

    res = run(settings, w.store.bucket, "forget", "--source", "a", "--url", "http://x/")
    assert res.returncode == 2
