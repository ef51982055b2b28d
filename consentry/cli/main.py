"""`consentry`: the operator CLI. Every command has --help; reporting commands have --json."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from .. import __version__
from ..core.errors import ConsentryError, DependencyError
from ..core.settings import ENV_PREFIX
from .common import CliContext, exit_code_for


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="consentry")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), envvar="CONSENTRY_CONFIG",
              help="Config file (TOML). Default: $CONSENTRY_HOME/consentry.toml if it exists.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int) -> None:
    """Consentry: consent-first image ingestion and face indexing.

    Crawl the sources you are entitled to process, honour every opt-out, index faces only
    where a consent basis exists, search them with a stated purpose, and erase people on request.

    \b
    Example:
      consentry stack up
      consentry source add family --match photos.example.org --basis consent --evidence DOC-1
      consentry crawl start --source family --seed https://photos.example.org/
      consentry ingest run --until-idle
      consentry search me.jpg --purpose "find my photos"
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose == 0:  # a refused connection is reported once, as the command's error, not as the
        #               client libraries' retry warnings (-v shows them)
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    ctx.obj = CliContext(config=config)


def _register() -> None:
    from . import (
        api_cmd,
        audit_cmd,
        crawl_cmd,
        demo_cmd,
        doctor_cmd,
        ingest_cmd,
        lifecycle_cmd,
        search_cmd,
        source_cmd,
        stack_cmd,
        token_cmd,
    )

    for mod in (stack_cmd, source_cmd, crawl_cmd, ingest_cmd, search_cmd, lifecycle_cmd, audit_cmd, doctor_cmd, api_cmd,
                token_cmd, demo_cmd):
        for command in mod.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    try:
        rc = cli.main(args=argv, prog_name="consentry", standalone_mode=False)
        return rc if isinstance(rc, int) else 0
    except ConsentryError as exc:
        hint = ""
        if isinstance(exc, DependencyError) and exc.setting:
            hint = f" — run `consentry stack up` or set {ENV_PREFIX}{exc.setting.upper()}"
        click.echo(f"consentry: error: {exc}{hint}", err=True)
        return exit_code_for(exc)
    except click.exceptions.Abort:
        click.echo("consentry: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("consentry: interrupted", err=True)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
