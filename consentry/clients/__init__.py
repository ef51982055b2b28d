"""One small interface per outside system and its real adapter (the in-memory fakes are in tests/fakes.py).

- :mod:`.broker`  Kafka (kafka-python)
- :mod:`.objectstore`  S3 (minio)
- :mod:`.vectors`  Milvus (pymilvus) connection and error translation

Library errors are translated here into :mod:`consentry.core.errors`.
"""
