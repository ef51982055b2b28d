"""Indexer: search, erasure, retention, audit, doctor and the query API, over the face store
(:mod:`consentry.faceindex`) and the catalog in S3."""
