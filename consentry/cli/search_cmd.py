"""`consentry search`: search indexed faces by photo, with a stated purpose."""

from __future__ import annotations

import click

from .common import CliContext, json_option, not_built, pass_ctx


@click.command("search")
@click.argument("photo", type=click.Path(exists=True, dir_okay=False))
@click.option("--purpose", required=True, help="Why you are searching (audit-logged).")
@click.option("--case", "case_ref", help="Case reference (audit-logged).")
@click.option("--top-k", type=int)
@click.option("--threshold", type=float)
@json_option
@pass_ctx
def search(ctx: CliContext, photo: str, purpose: str, case_ref: str | None, top_k: int | None,
           threshold: float | None, as_json: bool) -> None:
    """Search faces like those in PHOTO. Example: consentry search me.jpg --purpose "subject access request" """
    not_built("search")


COMMANDS = [search]
