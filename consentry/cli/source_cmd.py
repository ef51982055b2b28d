"""`consentry source`: the sources an operator is entitled to process, and their basis."""

from __future__ import annotations

import click

from .common import CliContext, json_option, not_built, pass_ctx


@click.group("source")
def source() -> None:
    """Register and inspect sources (what may be crawled, on which consent basis)."""


@source.command("add")
@click.argument("name")
@click.option("--match", required=True, help="Host, host:port or URL prefix the source covers.")
@click.option("--basis", required=True, type=click.Choice(["consent", "licence", "own-archive", "none"]))
@click.option("--evidence", help="Reference to the consent/licence document (an id, not the document).")
@click.option("--retention-days", type=int, help="How long faces from this source are kept.")
@json_option
@pass_ctx
def add(ctx: CliContext, name: str, match: str, basis: str, evidence: str | None, retention_days: int | None,
        as_json: bool) -> None:
    """Register a source. Example: consentry source add family --match photos.example.org --basis consent"""
    not_built("source add")


@source.command("list")
@json_option
@pass_ctx
def list_(ctx: CliContext, as_json: bool) -> None:
    """List sources. Example: consentry source list --json"""
    not_built("source list")


@source.command("show")
@click.argument("name")
@json_option
@pass_ctx
def show(ctx: CliContext, name: str, as_json: bool) -> None:
    """Show one source. Example: consentry source show family"""
    not_built("source show")


COMMANDS = [source]
