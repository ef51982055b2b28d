import pytest

from consentry.core.errors import ConfigError
from consentry.core.settings import load_settings


def test_defaults_and_topic_names(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    for k in ("CONSENTRY_TOPIC_PREFIX", "CONSENTRY_KAFKA_BOOTSTRAP", "CONSENTRY_ALLOW_PRIVATE_NETWORKS"):
        monkeypatch.delenv(k, raising=False)
    s = load_settings()
    assert s.topic_images == "consentry.images"
    assert s.topic_dlq == "consentry.dlq"
    assert s.allow_private_networks is False
    assert "+http" in s.user_agent


def test_environment_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    monkeypatch.setenv("CONSENTRY_TOPIC_PREFIX", "acme.")
    monkeypatch.setenv("CONSENTRY_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("CONSENTRY_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("CONSENTRY_S3_SECRET_KEY", "s3cr3t")
    s = load_settings()
    assert s.topic_dlq == "acme.dlq"
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert s.allow_private_networks is True
    assert s.s3_secret_key.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(s) and "s3cr3t" not in str(s.redacted())


def test_config_file_is_read_and_env_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    monkeypatch.delenv("CONSENTRY_TOPIC_PREFIX", raising=False)
    (tmp_path / "consentry.toml").write_text('[consentry]\nmilvus_collection = "from_file"\nsearch_threshold = 0.5\n')
    assert load_settings().milvus_collection == "from_file"
    monkeypatch.setenv("CONSENTRY_MILVUS_COLLECTION", "from_env")
    s = load_settings()
    assert s.milvus_collection == "from_env" and s.search_threshold == 0.5


def test_bad_values_give_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    monkeypatch.setenv("CONSENTRY_SEARCH_THRESHOLD", "2.5")
    with pytest.raises(ConfigError) as ei:
        load_settings()
    assert "search_threshold" in str(ei.value) and "CONSENTRY_SEARCH_THRESHOLD" in str(ei.value)
    monkeypatch.delenv("CONSENTRY_SEARCH_THRESHOLD")
    with pytest.raises(ConfigError):
        load_settings(config=tmp_path / "missing.toml")
    monkeypatch.setenv("CONSENTRY_S3_ENDPOINT", "not a url")
    with pytest.raises(ConfigError):
        load_settings()
