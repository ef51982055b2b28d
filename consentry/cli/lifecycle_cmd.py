"""Consent lifecycle commands: explain, forget, retention."""

from __future__ import annotations

import click

from .common import CliContext, json_option, not_built, pass_ctx


@click.command("explain")
@click.argument("url")
@json_option
@pass_ctx
def explain(ctx: CliContext, url: str, as_json: bool) -> None:
    """Why an image was or was not indexed. Example: consentry explain https://photos.example.org/a.jpg"""
    not_built("explain")


@click.command("forget")
@click.argument("photo", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--source", "source_name")
@click.option("--url")
@click.option("--job", "job_id")
@json_option
@pass_ctx
def forget(ctx: CliContext, photo: str | None, source_name: str | None, url: str | None, job_id: str | None,
           as_json: bool) -> None:
    """Erase a person (by photo), a source, a job or a URL; prints the receipt. Example: consentry forget me.jpg"""
    not_built("forget")


@click.group("retention")
def retention() -> None:
    """Retention enforcement."""


@retention.command("sweep")
@json_option
@pass_ctx
def sweep(ctx: CliContext, as_json: bool) -> None:
    """Delete faces past their expiry. Example: consentry retention sweep"""
    not_built("retention sweep")


COMMANDS = [explain, forget, retention]
