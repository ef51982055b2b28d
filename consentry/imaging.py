"""Safe image decoding and normalisation, shared by ingest (fetched images) and search (uploads).

Bytes are sniffed by their magic numbers (the Content-Type header is not trusted), the pixel
count is checked *before* decoding (decompression bombs are rejected, not crashed on), truncated
files are rejected, EXIF orientation is applied, every mode (CMYK, palette, 16-bit, alpha) is
converted to 8-bit RGB, and animated images use their first frame.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .core.errors import ImageRejected

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
_XMP_RE = re.compile(rb"<x:xmpmeta[\s\S]{0,262144}?</x:xmpmeta>")


def sniff(data: bytes) -> str | None:
    """The image format named by the leading bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM":
        return "BMP"
    return None


def describe_non_image(data: bytes) -> tuple[str, str]:
    """(what the bytes are, a reason code) for bytes :func:`sniff` did not recognise."""
    head = data[:512].lstrip().lower()
    if not data:
        return "empty body", "empty"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head:
        return "HTML, not an image", "html-not-image"
    if b"<svg" in head or (head.startswith(b"<?xml") and b"svg" in data[:4096].lower()):
        return "SVG, not a raster image (vector images are not processed)", "svg-not-raster"
    return "unrecognised bytes, not a supported image format", "not-an-image"


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # H x W x 3, uint8
    format: str
    width: int
    height: int
    xmp: bytes | None

    @property
    def bgr(self) -> np.ndarray:
        return np.ascontiguousarray(self.rgb[:, :, ::-1])


def decode(data: bytes, max_pixels: int = 40_000_000, min_side: int = 1) -> DecodedImage:
    """Decode untrusted bytes into 8-bit RGB. Raises ImageRejected with a reason."""
    from PIL import Image, ImageOps

    fmt = sniff(data)
    if fmt is None:
        what, reason = describe_non_image(data)
        raise ImageRejected(what, reason=reason)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
            w, h = im.size
            if w * h > max_pixels:
                raise ImageRejected(f"{w}x{h} = {w * h} pixels exceeds the limit of {max_pixels}",
                                    reason="decompression-bomb")
            if min(w, h) < min_side:
                raise ImageRejected(f"{w}x{h} is smaller than {min_side} pixels", reason="too-small")
            xmp = _xmp(im, data)
            im.seek(0)  # animated: first frame
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb(im)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(str(exc), reason="decompression-bomb") from None
    except OSError as exc:
        msg = str(exc)
        reason = "truncated" if "truncated" in msg or "broken data stream" in msg else "undecodable"
        raise ImageRejected(f"{fmt} could not be decoded: {msg}", reason=reason) from None
    except (ValueError, SyntaxError, EOFError, MemoryError, Image.UnidentifiedImageError) as exc:
        raise ImageRejected(f"{fmt} could not be decoded: {type(exc).__name__}: {exc}", reason="undecodable") from None
    arr = np.asarray(rgb, dtype=np.uint8)
    return DecodedImage(rgb=arr, format=fmt, width=arr.shape[1], height=arr.shape[0], xmp=xmp)


def _xmp(im, data: bytes) -> bytes | None:  # noqa: ANN001
    for key in ("xmp", "XML:com.adobe.xmp"):
        v = im.info.get(key)
        if v:
            return v.encode("utf-8") if isinstance(v, str) else bytes(v)
    m = _XMP_RE.search(data[: 4 * 1024 * 1024])
    return m.group(0) if m else None


def _to_rgb(im):  # noqa: ANN001, ANN202
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        hi = a.max() or 1.0
        im = Image.fromarray(np.clip(a * (255.0 / hi), 0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    if im.mode != "RGB":
        im = im.convert("RGB")  # CMYK, L, 1, YCbCr ...
    return im


@lru_cache(maxsize=1)
def _dct_matrix(n: int = 32) -> np.ndarray:
    k = np.arange(n)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def phash(rgb: np.ndarray) -> str:
    """64-bit DCT perceptual hash (hex), for near-duplicate detection."""
    from PIL import Image

    gray = Image.fromarray(rgb).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    a = np.asarray(gray, dtype=np.float64)
    d = _dct_matrix() @ a @ _dct_matrix().T
    low = d[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


#: the side of a face crop (the size face models align to) and the margin around the detected box
CROP_SIDE = 112
CROP_MARGIN = 0.2


def face_crop_jpeg(rgb: np.ndarray, bbox, side: int = CROP_SIDE, margin: float = CROP_MARGIN,  # noqa: ANN001
                   quality: int = 85) -> bytes:
    """A ``side``×``side`` JPEG of the face box, widened by ``margin`` of its size on each side.

    The widened box is made square around the face's centre (so faces are not stretched), clipped to
    the image, and the area outside the image (a face at an edge) is padded grey.
    """
    from PIL import Image

    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in bbox)
    half = max(x2 - x1, y2 - y1, 1.0) * (0.5 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top, right, bottom = (int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    square = np.full((bottom - top, right - left, 3), 128, dtype=np.uint8)
    sx1, sy1, sx2, sy2 = max(0, left), max(0, top), min(w, right), min(h, bottom)
    if sx2 > sx1 and sy2 > sy1:
        square[sy1 - top:sy2 - top, sx1 - left:sx2 - left] = rgb[sy1:sy2, sx1:sx2]
    img = Image.fromarray(square).resize((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
