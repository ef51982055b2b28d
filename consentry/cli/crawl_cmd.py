"""`consentry crawl`: crawl jobs over registered sources."""

from __future__ import annotations

import click

from .common import CliContext, json_option, not_built, pass_ctx


@click.group("crawl")
def crawl() -> None:
    """Start, watch, stop and resume crawl jobs."""


@crawl.command("start")
@click.option("--source", "source_name", required=True, help="A registered source.")
@click.option("--seed", "seeds", multiple=True, help="Start URL (repeatable); must fall under the source's match.")
@click.option("--max-pages", type=int)
@click.option("--depth", type=int)
@click.option("--job-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--detach", is_flag=True, help="Run in the background and return at once.")
@json_option
@pass_ctx
def start(ctx: CliContext, source_name: str, seeds: tuple[str, ...], max_pages: int | None, depth: int | None,
          job_file: str | None, detach: bool, as_json: bool) -> None:
    """Start a crawl job; prints its id. Example: consentry crawl start --source family --seed https://photos.example.org/"""
    not_built("crawl start")


@crawl.command("status")
@click.argument("job_id")
@json_option
@pass_ctx
def status(ctx: CliContext, job_id: str, as_json: bool) -> None:
    """Show a job's progress and refusals. Example: consentry crawl status JOB_ID"""
    not_built("crawl status")


@crawl.command("list")
@json_option
@pass_ctx
def list_(ctx: CliContext, as_json: bool) -> None:
    """List jobs. Example: consentry crawl list"""
    not_built("crawl list")


@crawl.command("stop")
@click.argument("job_id")
@pass_ctx
def stop(ctx: CliContext, job_id: str) -> None:
    """Stop a running job (it can be resumed). Example: consentry crawl stop JOB_ID"""
    not_built("crawl stop")


@crawl.command("resume")
@click.argument("job_id")
@click.option("--detach", is_flag=True)
@pass_ctx
def resume(ctx: CliContext, job_id: str, detach: bool) -> None:
    """Resume a stopped job where it left off. Example: consentry crawl resume JOB_ID"""
    not_built("crawl resume")


COMMANDS = [crawl]
