"""The demo: a bundled local site and the whole pipeline run over it."""
