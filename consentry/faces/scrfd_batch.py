"""SCRFD detection over a batch of images in one onnxruntime call (the GPU path; also runs on CPU).

insightface's ``SCRFD.detect`` runs one image per call on a static-shape session. Here N images are
letterboxed exactly as it does (aspect kept, padded right/bottom to ``det_size``), stacked into one
NCHW tensor, run through a dynamic-batch session of the same ``.onnx`` file, and each image's
outputs are decoded with insightface's own anchors, distance decoding and NMS — the boxes and
landmarks are identical to ``SCRFD.detect`` (checked in tests/faces). On a GPU one call per batch
is what keeps the device busy; on CPU one image per call is faster, so the CPU default batch is 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class BatchedSCRFD:
    def __init__(self, scrfd: Any, session: Any, det_size: int) -> None:
        """``scrfd``: insightface's prepared SCRFD (its constants, thresholds and NMS); ``session``: an
        onnxruntime session of the same model file with a dynamic batch dimension."""
        self.m = scrfd
        self.session = session
        self.size = det_size
        self._centers: dict[int, np.ndarray] = {}

    def detect(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(boxes N x 5 [x1, y1, x2, y2, score], landmarks N x 5 x 2) per BGR image."""
        import cv2

        boxes = [self._letterbox(img) for img in images]
        blob = cv2.dnn.blobFromImages([b for b, _ in boxes], 1.0 / self.m.input_std, (self.size, self.size),
                                      (self.m.input_mean,) * 3, swapRB=True)
        outs = self.session.run(self.m.output_names, {self.m.input_name: blob})
        return [self._decode(outs, i, scale) for i, (_, scale) in enumerate(boxes)]

    def _letterbox(self, img: np.ndarray) -> tuple[np.ndarray, float]:
        import cv2

        s = self.size
        ratio = float(img.shape[0]) / img.shape[1]
        if ratio > 1.0:
            h = s
            w = int(h / ratio)
        else:
            w = s
            h = int(w * ratio)
        canvas = np.zeros((s, s, 3), dtype=np.uint8)
        canvas[:h, :w, :] = cv2.resize(img, (w, h))
        return canvas, float(h) / img.shape[0]

    def _anchor_centers(self, stride: int) -> np.ndarray:
        if stride not in self._centers:
            n = self.size // stride
            grid = np.mgrid[:n, :n]
            c = (np.stack([grid[1], grid[0]], axis=-1).astype(np.float32) * stride).reshape((-1, 2))
            if self.m._num_anchors > 1:
                c = np.stack([c] * self.m._num_anchors, axis=1).reshape((-1, 2))
            self._centers[stride] = c
        return self._centers[stride]

    def _decode(self, outs: list[np.ndarray], i: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
        from insightface.model_zoo.scrfd import distance2bbox, distance2kps

        m, fmc = self.m, self.m.fmc
        scores_l, boxes_l, kps_l = [], [], []
        for idx, stride in enumerate(m._feat_stride_fpn):
            scores = outs[idx][i]
            centers = self._anchor_centers(stride)
            pos = np.where(scores >= m.det_thresh)[0]
            scores_l.append(scores[pos])
            boxes_l.append(distance2bbox(centers, outs[idx + fmc][i] * stride)[pos])
            kps = distance2kps(centers, outs[idx + 2 * fmc][i] * stride)
            kps_l.append(kps.reshape((kps.shape[0], -1, 2))[pos])
        scores = np.vstack(scores_l)
        if scores.size == 0:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        order = np.argsort(-scores.ravel(), kind="stable")
        pre = np.hstack((np.vstack(boxes_l) / scale, scores)).astype(np.float32, copy=False)[order]
        kpss = (np.vstack(kps_l) / scale)[order]
        keep = m.nms(pre)
        return pre[keep], kpss[keep]
