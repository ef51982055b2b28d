"""`consentry ingest`: Ray workers consuming image candidates from Kafka."""

from __future__ import annotations

import click

from .common import CliContext, not_built, pass_ctx


@click.group("ingest")
def ingest() -> None:
    """Run the ingest workers (fetch, validate, decide consent, embed, write)."""


@ingest.command("run")
@click.option("--workers", type=int, help="Number of Ray worker actors.")
@click.option("--until-idle", is_flag=True, help="Exit when the images topic is drained.")
@pass_ctx
def run(ctx: CliContext, workers: int | None, until_idle: bool) -> None:
    """Consume image candidates until stopped. Example: consentry ingest run --workers 2 --until-idle"""
    not_built("ingest run")


COMMANDS = [ingest]
