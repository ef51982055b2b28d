"""What every command shares: the context object, --json, output and exit codes.

Exit codes: 0 success; 1 failure (one-line reason on stderr); 2 bad usage (click);
4 an outside system (broker, S3, Milvus) is unavailable; 130 interrupted (a crawl stopped: 130 too).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from ..core.errors import ConsentryError, DependencyError
from ..core.settings import Settings, load_settings

EXIT_FAILURE = 1
EXIT_UNAVAILABLE = 4


@dataclass
class CliContext:
    config: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(config=self.config, **self.overrides)


pass_ctx = click.make_pass_decorator(CliContext, ensure=True)


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(fn)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Print a simple aligned table (rich is used for colour when stdout is a terminal)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(*headers, box=None, pad_edge=False, header_style="bold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    Console(width=200 if not sys.stdout.isatty() else None).print(t)


def local_actor() -> str:
    """Who is acting, for the audit log: the local operator's user name."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name (containers)
        return "cli:unknown"


def exit_code_for(exc: ConsentryError) -> int:
    if isinstance(exc, DependencyError):
        return EXIT_UNAVAILABLE
    return EXIT_FAILURE
