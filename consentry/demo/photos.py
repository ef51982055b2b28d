"""Openly available photos with faces, fetched from the package index (never committed).

- face_recognition 1.3.0's sdist (MIT): obama.jpg, obama2.jpg, obama3.jpg (one person, three photos)
  and biden.jpg (another person); fetched with ``pip download`` into a cache folder.
- insightface's wheel (installed): t1.jpg, a group photo with six faces.
- scikit-image (installed with insightface): astronaut.png (one face).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..core.errors import ConsentryError

FR_SDIST = "face_recognition==1.3.0"
FR_FILES = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")


def cache_dir() -> Path:
    base = os.environ.get("CONSENTRY_ASSETS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "consentry", "photos")
    return Path(base)


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise ConsentryError(f"package {package} is not installed")
    return Path(spec.origin).parent.joinpath(*parts)


def ensure_photos(dest: Path | None = None) -> dict[str, Path]:
    """Return name → path for every demo photo, downloading the sdist once if needed."""
    dest = dest or cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    missing = [n for n in FR_FILES if not (dest / n).is_file()]
    if missing:
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                   "--quiet", "-d", tmp, FR_SDIST], capture_output=True, text=True)
            if proc.returncode != 0:
                why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode
                raise ConsentryError(f"could not fetch demo photos ({FR_SDIST}) from the package index: {why}")
            sdist = next(Path(tmp).glob("face_recognition-*.tar.gz"))
            with tarfile.open(sdist) as tf:
                for member in tf.getmembers():
                    name = Path(member.name).name
                    if name in FR_FILES and "/tests/test_images/" in member.name:
                        src = tf.extractfile(member)
                        assert src is not None
                        (dest / name).write_bytes(src.read())
    out = {n: dest / n for n in FR_FILES}
    for name, path in (("t1.jpg", _package_file("insightface", "data", "images", "t1.jpg")),
                       ("astronaut.png", _package_file("skimage", "data", "astronaut.png"))):
        target = dest / name
        if not target.is_file():
            shutil.copyfile(path, target)
        out[name] = target
    for name, path in out.items():
        if not path.is_file():
            raise ConsentryError(f"demo photo {name} missing from {dest}")
    return out
