"""Loading the configured model pack, once per process.

``ModelConfig.pack`` is a named pack (:data:`~.packs.PACKS`), a folder holding a detector and a
recogniser, or a plugin ``module:attribute`` naming a class (or factory) that takes no arguments
and implements :class:`~.types.FaceModel`. The unit tests' fake model is such a plugin
(``tests.fakes:HashFaceModel``); it lives in the test tree, which an installed Consentry does not
carry, so it cannot be selected in production.
"""

from __future__ import annotations

import importlib
import re
import threading

from ..core.errors import ModelError
from .packs import pack_files
from .types import FaceModel, ModelConfig

_PLUGIN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_cache: dict[ModelConfig, FaceModel] = {}
_cache_lock = threading.Lock()


def load_model(cfg: ModelConfig) -> FaceModel:
    """The configured model pack, loaded once per process (raises ModelError)."""
    with _cache_lock:
        if cfg not in _cache:
            _cache[cfg] = _load(cfg)
        return _cache[cfg]


def _load(cfg: ModelConfig) -> FaceModel:
    if _PLUGIN.match(cfg.pack):
        module, attr = cfg.pack.split(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ModelError(f"model pack plugin {cfg.pack!r} cannot be loaded: {exc}") from None
        return factory()
    kind, det_path, rec_path = pack_files(cfg.pack, cfg.model_dir)
    if kind == "yunet":
        from .yunet import YuNetSFaceModel

        return YuNetSFaceModel(cfg, det_path, rec_path)
    from .model import InsightFaceModel

    return InsightFaceModel(cfg, det_path, rec_path)
