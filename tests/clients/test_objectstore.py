import uuid

import pytest

from consentry.clients.objectstore import S3Config, S3ObjectStore, get_json, put_json
from consentry.core.errors import ObjectNotFound, ObjectStoreError
from tests.fakes import MemoryObjectStore


@pytest.fixture(params=["s3", "memory"])
def store(request):
    if request.param == "memory":
        return MemoryObjectStore()
    return request.getfixturevalue("object_store")


def test_put_get_metadata_tags_list_delete(store):
    prefix = f"t/{uuid.uuid4().hex}/"
    store.put(prefix + "a.json", b'{"a": 1}', content_type="application/json", metadata={"sha256": "abc"},
              tags={"source": "family", "decision": "index"})
    put_json(store, prefix + "b.json", {"b": 2})
    assert store.get(prefix + "a.json") == b'{"a": 1}'
    assert get_json(store, prefix + "b.json") == {"b": 2}
    info = store.stat(prefix + "a.json")
    assert info.size == 8 and info.metadata.get("sha256") == "abc"
    assert store.tags(prefix + "a.json") == {"source": "family", "decision": "index"}
    assert sorted(store.list(prefix)) == [prefix + "a.json", prefix + "b.json"]
    assert store.delete_many([prefix + "a.json", prefix + "b.json"]) == 2
    assert list(store.list(prefix)) == []
    with pytest.raises(ObjectNotFound):
        store.get(prefix + "a.json")
    assert not store.exists(prefix + "a.json")


def test_put_if_absent_is_a_conditional_create(store):
    key = f"t/{uuid.uuid4().hex}/once"
    assert store.put_if_absent(key, b"first") is True
    assert store.put_if_absent(key, b"second") is False
    assert store.get(key) == b"first"


def test_wrong_credentials_are_refused(stack):
    bad = S3ObjectStore(S3Config(endpoint=stack.s3_endpoint, access_key="nobody", secret_key="wrong",
                                 bucket=stack.s3_bucket))
    with pytest.raises(ObjectStoreError) as ei:
        bad.get("anything")
    assert not isinstance(ei.value, ObjectNotFound) and "InvalidAccessKeyId" in str(ei.value)
    assert not ei.value.transient  # a retry cannot fix wrong credentials
    assert bad.ping() is False  # readiness: a store we cannot use is not ready, even though the server answers


def test_unreachable_endpoint_is_a_transient_error():
    dead = S3ObjectStore(S3Config(endpoint="http://127.0.0.1:9", access_key="a", secret_key="b", bucket="nowhere",
                                  timeout_s=0.5))
    with pytest.raises(ObjectStoreError) as ei:
        dead.put("k", b"v")
    assert ei.value.transient
    assert ei.value.setting == "s3_endpoint" and "S3 at http://127.0.0.1:9 is not answering" in str(ei.value)
    assert dead.ping() is False
