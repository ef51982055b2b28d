"""`consentry demo`: the whole pipeline on a bundled demo site."""

from __future__ import annotations

import click

from .common import CliContext, pass_ctx


@click.command("demo")
@click.option("--keep", is_flag=True, help="Leave the stack up afterwards.")
@pass_ctx
def demo(ctx: CliContext, keep: bool) -> None:
    """Run the demo: stack up, crawl a local site, ingest, search, explain, forget.

    Example: consentry demo --keep
    """
    from ..demo.smoke import run_smoke

    run_smoke(ctx.settings, keep=keep)


COMMANDS = [demo]
