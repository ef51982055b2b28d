import pytest


@pytest.fixture(params=["embedded", "server"])
def milvus_uri(request) -> str:
    """Both Milvus flavours: milvus-lite's server (the session stack) and Milvus 2.3 standalone."""
    if request.param == "embedded":
        return request.getfixturevalue("stack").milvus_uri
    return request.getfixturevalue("milvus_server")
