"""`consentry audit`: the hash-chained audit log."""

from __future__ import annotations

import click

from .common import CliContext, json_option, not_built, pass_ctx


@click.group("audit")
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@json_option
@pass_ctx
def verify(ctx: CliContext, as_json: bool) -> None:
    """Check the audit chain. Example: consentry audit verify"""
    not_built("audit verify")


@audit.command("export")
@json_option
@pass_ctx
def export(ctx: CliContext, as_json: bool) -> None:
    """Export audit entries. Example: consentry audit export --since 2026-01-01"""
    not_built("audit export")


COMMANDS = [audit]
