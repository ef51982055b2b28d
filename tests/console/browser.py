"""A real browser for the console tests: Debian's chromium driven by Playwright, plus the helpers the tests share.

The tests skip (with the reason) only when chromium or Playwright is missing; scripts/setup installs
both. Accessibility is checked with axe-core (vendored under vendor/, injected into the page).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
AXE = HERE / "vendor" / "axe-core-4.14.1" / "axe.min.js"
#: where the screenshots go: docs/img (what docs/console.md shows) when CONSENTRY_UPDATE_SCREENSHOTS=1,
#: else a temporary folder, so an ordinary test run leaves the working tree clean
SHOTS = (HERE.parents[1] / "docs" / "img" if os.environ.get("CONSENTRY_UPDATE_SCREENSHOTS") == "1"
         else Path(tempfile.gettempdir()) / f"consentry-console-shots-{os.getpid()}")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage"]


def chromium_path() -> str:
    """/usr/bin/chromium (Debian's package), or skip the test with the reason."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.skip("chromium is not installed: scripts/setup installs Debian's chromium package with apt-get")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    return path


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA violations on the page as it is now (id, impact, the nodes' selectors)."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # evaluated over the DevTools protocol: no <script> tag, the CSP stays as it is
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                                           'best-practice']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return result


def screenshot(page: Any, name: str) -> Path:
    """console-NAME.png in SHOTS (docs/img with CONSENTRY_UPDATE_SCREENSHOTS=1: the pictures docs/console.md shows)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class Recorder:
    """An HTTP server on 127.0.0.1 that records every request: the target that injected markup points at."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                rec.hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
