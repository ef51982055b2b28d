"""The CLI contract: every command has --help with an Example, is documented (README or docs/), and fails clearly."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from consentry.cli.main import cli, main

ROOT = Path(__file__).parents[2]
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def all_commands(group=cli, prefix=()):
    for name, cmd in group.commands.items():
        path = prefix + (name,)
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, path)


@pytest.mark.parametrize("path", [p for p, _ in all_commands()], ids=" ".join)
def test_every_command_has_help_and_is_documented(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    if not isinstance(dict(all_commands())[path], click.Group):
        assert "Example" in result.output
    assert f"consentry {path[0]}" in DOCS


def test_usage_error_exit_code(capsys):
    assert main(["stack", "nope"]) == 2


def test_failure_is_one_line_on_stderr(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    monkeypatch.setenv("CONSENTRY_SEARCH_THRESHOLD", "7")
    assert main(["stack", "status"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("consentry: error: invalid setting search_threshold") and "\n" not in err
