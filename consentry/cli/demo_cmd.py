"""`consentry demo`: the whole pipeline on a bundled demo site."""

from __future__ import annotations

import click

from .common import CliContext, pass_ctx


@click.command("demo")
@click.option("--keep", is_flag=True, help="Leave the stack up afterwards and serve the web console on the demo "
              "data; prints its URL and a token per role to sign in with.")
@click.option("--stop", is_flag=True, help="Stop what `--keep` left running (the console and the stack).")
@pass_ctx
def demo(ctx: CliContext, keep: bool, stop: bool) -> None:
    """Run the demo: stack up, serve a local photo site, register its sources, crawl, ingest,
    search by photo, explain refusals, forget a person, search again, verify the audit log.

    \b
    Example:
      consentry demo --keep     # then open the printed console URL and sign in with a printed token
      consentry demo --stop
    """
    from ..demo.runner import run_demo, stop_demo

    if stop:
        stopped = stop_demo(ctx.settings)
        click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        return
    run_demo(ctx.settings, keep=keep)


COMMANDS = [demo]
