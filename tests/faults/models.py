"""A test face model (selected with CONSENTRY_MODEL_PACK=tests.faults.models:GatedFaceModel) whose
``hold_call``-th batch waits while a gate file exists: the faces stage is held with a batch in it.

Environment: CONSENTRY_TEST_MODEL_GATE (the gate file; a ``.waiting`` file beside it says the model is
held), CONSENTRY_TEST_MODEL_HOLD_CALL (which call waits, 1-based; default 2)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.fakes import HashFaceModel


class GatedFaceModel(HashFaceModel):
    model_id = HashFaceModel.model_id  # the same faces (ids) as the plain fake model

    def __init__(self) -> None:
        self.calls = 0
        gate = os.environ.get("CONSENTRY_TEST_MODEL_GATE")
        self.gate = Path(gate) if gate else None
        self.hold_call = int(os.environ.get("CONSENTRY_TEST_MODEL_HOLD_CALL", "2"))

    def analyze_batch(self, images):
        self.calls += 1
        if self.gate is not None and self.calls == self.hold_call:
            waiting = self.gate.with_suffix(".waiting")
            waiting.write_text(str(len(images)))
            deadline = time.monotonic() + 300
            while self.gate.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().analyze_batch(images)
