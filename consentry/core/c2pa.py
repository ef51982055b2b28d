"""C2PA (Content Credentials): the training-and-mining assertion of an image's manifest, as signals.

Reads only the manifest store embedded in the bytes (``c2pa-python``; the pixels are never decoded
for it, remote manifests and OCSP are never fetched) and interprets it:

- ``c2pa.training-mining`` / ``cawg.training-mining`` assertions (any version), entries
  ``ai_training``, ``ai_generative_training``, ``ai_inference``, ``data_mining`` (``c2pa.``/``cawg.``
  prefixed): ``use: notAllowed`` is an opt-out; ``constrained`` is one too unless the source's basis is
  ``licence``; an unknown ``use`` counts as ``notAllowed``. Every manifest in the store is read (an
  ingredient's ``notAllowed`` still binds). Reason ``c2pa-training-mining``.
- A manifest that is present but cannot be read, or whose validation fails (hashes or signature do
  not match: validation state ``Invalid``), is refused: reason ``c2pa-invalid``. We fail closed, unlike
  tools that ignore what they cannot read. An untrusted signer (a certificate no trust list holds) is
  not a failure: anyone may say "do not train", and that is honoured; the signal says who signed.
- No manifest: no signal (nothing to show).

:func:`training_mining` is pure (a manifest store as the reader's JSON → Signal); :func:`c2pa_signals`
adds the reading.
"""

from __future__ import annotations

import io
import json
import logging
from functools import lru_cache
from typing import Any

from .records import Basis, Signal

log = logging.getLogger("consentry.c2pa")

TRAINING_LABELS = ("c2pa.training-mining", "cawg.training-mining")
ENTRIES = ("ai_training", "ai_generative_training", "ai_inference", "data_mining")
#: bytes every embedded manifest store or remote-manifest reference carries (a cheap test before reading)
MARKERS = (b"c2pa", b"dcterms:provenance")
#: sniffed image formats and the MIME types the reader takes
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "TIFF": "image/tiff",
        "AVIF": "image/avif", "HEIF": "image/heif", "HEIC": "image/heic", "BMP": "image/bmp"}
_READER_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


def may_carry_manifest(data: bytes) -> bool:
    return any(m in data for m in MARKERS)


def _is_training_label(label: str) -> bool:
    return any(label == t or label.startswith(t + ".") for t in TRAINING_LABELS)  # e.g. ".v2"


def _signer(manifest: dict[str, Any]) -> str:
    info = manifest.get("signature_info") or {}
    who = info.get("common_name") or "unknown signer"
    issuer = f", issued by {info['issuer']}" if info.get("issuer") else ""
    alg = f", {str(info['alg']).lower()}" if info.get("alg") else ""
    return f"{who}{issuer}{alg}"


def training_mining(store: dict[str, Any], basis: Basis) -> list[Signal]:
    """Signals from a manifest store (the reader's JSON): validation, then the training-mining assertions."""
    state = store.get("validation_state")
    manifests: dict[str, Any] = store.get("manifests") or {}
    active = store.get("active_manifest")
    order = [active] + [k for k in manifests if k != active] if active in manifests else list(manifests)
    signer = _signer(manifests[order[0]]) if order else "unknown signer"
    if state == "Invalid":
        codes = sorted({s.get("code", "?") for s in store.get("validation_status") or []
                        if s.get("code") != "signingCredential.untrusted"})
        return [Signal(name="c2pa-manifest", value=f"invalid: {', '.join(codes) or 'validation failed'}",
                       opt_out=True, scope="image", detail=f"signed by {signer}")]
    trust = "trusted signer" if state == "Trusted" else "signer not on a trust list"
    found: list[tuple[str, str, str]] = []  # (manifest label, entry, use)
    for label in order:
        for assertion in manifests[label].get("assertions") or []:
            if not _is_training_label(str(assertion.get("label", ""))):
                continue
            entries = (assertion.get("data") or {}).get("entries") or {}
            for name, entry in entries.items():
                if name.split(".", 1)[-1] in ENTRIES and isinstance(entry, dict) and "use" in entry:
                    found.append((label, name, str(entry["use"])))
    detail = f"signed by {signer}; validation {state or 'unknown'} ({trust}); manifest {active}"
    if not found:
        return [Signal(name="c2pa-training-mining", value="no training-mining assertion", opt_out=False,
                       scope="image", detail=detail)]

    def refuses(use: str) -> bool:
        return use != "allowed" and not (use == "constrained" and basis is Basis.LICENCE)

    value = "; ".join(f"{name}: {use}" + ("" if label == active else " (ingredient)") for label, name, use in found)
    return [Signal(name="c2pa-training-mining", value=value, opt_out=any(refuses(u) for _, _, u in found),
                   scope="image", detail=detail)]


@lru_cache(maxsize=1)
def _context() -> Any:
    import c2pa

    return c2pa.Context(c2pa.Settings.from_dict(_READER_SETTINGS))


def read_store(data: bytes, image_format: str | None = None) -> dict[str, Any] | None:
    """The manifest store embedded in ``data`` as the reader's JSON (None: there is none).

    Raises ValueError when a manifest is present but cannot be read (a remote manifest, which is never
    fetched, included). A format C2PA cannot embed a manifest in (BMP) carries none.
    """
    import c2pa

    try:
        reader = c2pa.Reader.try_create(MIME.get((image_format or "").upper()), io.BytesIO(data), None, _context())
        if reader is None:
            return None
        with reader:
            return json.loads(reader.json())
    except c2pa.C2paError.NotSupported:
        return None
    except c2pa.C2paError as exc:
        raise ValueError(str(exc)) from None


def c2pa_signals(data: bytes, basis: Basis, image_format: str | None = None) -> list[Signal]:
    """The C2PA signals of an image's bytes (empty when it carries no manifest)."""
    if not may_carry_manifest(data):
        return []
    try:
        store = read_store(data, image_format)
    except ValueError as exc:
        log.info("unreadable C2PA manifest: %s", exc)
        return [Signal(name="c2pa-manifest", value=f"unreadable: {str(exc)[:300]}", opt_out=True, scope="image")]
    return [] if store is None else training_mining(store, basis)
