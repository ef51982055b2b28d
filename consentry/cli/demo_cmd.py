"""`consentry demo`: the whole pipeline on a bundled demo site."""

from __future__ import annotations

import click

from .common import CliContext, pass_ctx


@click.command("demo")
@click.option("--keep", is_flag=True, help="Leave the stack up afterwards (the demo data stays for exploring).")
@pass_ctx
def demo(ctx: CliContext, keep: bool) -> None:
    """Run the demo: stack up, serve a local photo site, register its sources, crawl, ingest,
    search by photo, explain refusals, forget a person, search again, verify the audit log.

    Example: consentry demo --keep
    """
    from ..demo.runner import run_demo

    run_demo(ctx.settings, keep=keep)


COMMANDS = [demo]
