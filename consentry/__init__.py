"""Consentry: consent-first image ingestion and face indexing."""

__version__ = "0.1.0"
