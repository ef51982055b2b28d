"""The local stack: S3 (SeaweedFS), Kafka-compatible broker (tansu) and Milvus on loopback."""
