"""`consentry demo` end to end: its own stack on its own ports, the real CLI, real servers."""

import os
import subprocess
import sys

import pytest

from tests.conftest import PORT_BASE, stack_env


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    env = {**os.environ, **stack_env(tmp_path / "home", PORT_BASE + 2000)}
    env.pop("CONSENTRY_ALLOW_PRIVATE_NETWORKS")  # the demo must turn it on by itself
    env.pop("CONSENTRY_TOPIC_PREFIX")
    proc = subprocess.run([sys.executable, "-m", "consentry.cli.main", "demo"], capture_output=True, text=True,
                          env=env, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:] + out[-3000:]
    # the search hit, with provenance
    assert "demo-family  http://127.0.0.1:" in out
    assert "/family/img/obama.jpg" in out and "/family/img/obama2.jpg" in out
    # the refusal explanations
    assert "REFUSE — noimageai" in out and "REFUSE — iptc-datamining-prohibited" in out
    # the crawler refused the basis-none source and the opted-out pages
    assert "has basis 'none'" in out and "'noai': 1" in out and "'robots-txt': 1" in out
    # forget, then nothing left
    assert "2 faces matched" in out and "verification ok" in out
    assert out.count("0 match(es)") == 1
    assert "audit log OK" in out and "Demo complete" in out
    # the stack was stopped
    st = subprocess.run([sys.executable, "-m", "consentry.cli.main", "stack", "status", "--json"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert st.returncode == 1 and '"running": true' not in st.stdout
