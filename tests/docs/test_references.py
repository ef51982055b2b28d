"""The generated references stay true: docs/settings.md and docs/cli.md match the code."""

from pathlib import Path

import pytest

from consentry.cli.reference import render_cli, render_settings
from consentry.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("rel", "render"), [("docs/settings.md", render_settings), ("docs/cli.md", render_cli)])
def test_reference_is_current(rel, render):
    committed = (ROOT / rel).read_text()
    assert committed == render(), f"{rel} is out of date with the code: run ./scripts/gen-docs and commit it"


def test_every_setting_is_described_and_listed():
    text = (ROOT / "docs/settings.md").read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        assert f"`CONSENTRY_{name.upper()}`" in text


def test_docs_links_resolve():
    """Relative links between the markdown pages point at files that exist."""
    import re

    pages = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md")),
             ROOT / "bench" / "README.md", ROOT / "helm" / "consentry" / "README.md"]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
