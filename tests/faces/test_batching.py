"""GPU-ready batching, run on CPU: detection in N-image tensors and recognition across images give
exactly the per-image results; the CUDA path is chosen by configuration only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from consentry.core.errors import ModelError
from consentry.core.settings import load_settings
from consentry.faces import ModelConfig, load_model

NAMES = ("t1.jpg", "obama.jpg", "astronaut.png", "biden.jpg", "obama3.jpg")


def _faces(model, images):
    return [[(f.bbox, f.score, f.embedding) for f in fs] for fs in model.analyze_batch(images)]


def test_batched_detection_and_recognition_match_one_image_at_a_time(photos):
    images = [cv2.imread(str(photos[n])) for n in NAMES]
    single = load_model(ModelConfig(det_batch=1, rec_batch=1))
    batched = load_model(ModelConfig(det_batch=4, rec_batch=3))  # batches that split the images and faces unevenly
    assert batched._batched is not None and single._batched is None
    want = [_faces(single, [img])[0] for img in images]
    got = _faces(batched, images)
    assert [len(g) for g in got] == [len(w) for w in want] == [6, 1, 1, 1, 1]
    for g_img, w_img in zip(got, want):
        for (gb, gs, ge), (wb, ws, we) in zip(g_img, w_img):
            assert gb == wb and gs == ws  # the same boxes and scores, exactly
            assert float(ge @ we) > 0.9999


def test_cuda_is_chosen_by_configuration_only(monkeypatch):
    s = load_settings(model_device="cuda")
    cfg = ModelConfig.from_settings(s)
    assert cfg.device == "cuda" and cfg.det_batch == 32 and cfg.rec_batch == 64
    assert ModelConfig.from_settings(load_settings()).det_batch == 1  # CPU: one image per detector call
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has a CUDA provider")
    with pytest.raises(ModelError, match="no CUDA provider"):
        load_model(ModelConfig(device="cuda"))


def test_an_image_without_faces_in_a_batch(photos):
    model = load_model(ModelConfig(det_batch=3))
    flat = np.full((300, 400, 3), 127, np.uint8)
    got = model.analyze_batch([flat, cv2.imread(str(photos["obama.jpg"])), flat])
    assert [len(g) for g in got] == [0, 1, 0]
