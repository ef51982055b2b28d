"""What every bench hands to ``bench/run_all.py``: one JSON report per run.

A bench script calls :func:`add_args` on its parser and, at the end, :func:`write` with its title,
its table(s) as markdown, a one-line headline for the main README and its raw figures. Without
``--report`` nothing is written and the bench only prints, as before.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--report", type=Path, help="write a JSON report (title, markdown, headline, data) here")


def command() -> str:
    """The command line that produced this run, as a user would type it (without --report)."""
    argv = list(sys.argv)
    if "--report" in argv:
        i = argv.index("--report")
        del argv[i:i + 2]
    script = Path(argv[0])
    try:
        script = script.resolve().relative_to(Path(__file__).resolve().parents[1])
    except ValueError:
        pass
    return shlex.join([".venv/bin/python", str(script), *argv[1:]])


def write(args: argparse.Namespace, *, title: str, markdown: str, headline: str, data: Any,
          stand_in: str | None = None) -> None:
    """``stand_in`` says what in the run is not the real thing (e.g. 'synthetic embeddings'), if anything."""
    if getattr(args, "report", None) is None:
        return
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({"title": title, "command": command(), "markdown": markdown,
                                       "headline": headline, "stand_in": stand_in, "data": data}, indent=2))
