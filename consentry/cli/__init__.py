"""The operator CLI: a thin layer over the library (see consentry.cli.main)."""
