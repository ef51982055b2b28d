"""One small interface per outside system, a real adapter, and an in-memory fake.

- :mod:`.broker`  Kafka (kafka-python) / MemoryBroker
- :mod:`.objectstore`  S3 (minio) / MemoryObjectStore
- :mod:`.vectors`  Milvus (pymilvus) connection and error translation

Library errors are translated here into :mod:`consentry.core.errors`.
"""
