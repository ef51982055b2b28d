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
    bgr: np.ndarray  # H x W x 3, uint8, contiguous: what the face models take
    format: str
    width: int
    height: int
    xmp: bytes | None

    @property
    def rgb(self) -> np.ndarray:
        """The same pixels in RGB order (a view, no copy)."""
        return self.bgr[:, :, ::-1]


def decode(data: bytes, max_pixels: int = 40_000_000, min_side: int = 1) -> DecodedImage:
    """Decode untrusted bytes into 8-bit BGR. Raises ImageRejected with a reason.

    The header is read (and the pixel count checked) with Pillow before anything is decoded. A
    complete baseline/progressive YCbCr or grayscale JPEG — most images — is then decoded by
    OpenCV (``cv2.imdecode``: libjpeg-turbo, the same pixels as Pillow's, without holding the GIL,
    so the prepare threads decode in parallel); everything else by Pillow.
    """
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
            if fmt == "JPEG" and im.mode in ("RGB", "L") and data.rstrip(b"\0")[-2:] == b"\xff\xd9":
                bgr = _cv2_jpeg(data, (h, w), im.getexif().get(0x0112, 1))
                if bgr is not None:
                    return DecodedImage(bgr=bgr, format=fmt, width=bgr.shape[1], height=bgr.shape[0], xmp=xmp)
            im.seek(0)  # animated: first frame
            im.load()
            rgb = _to_rgb(ImageOps.exif_transpose(im))
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
    bgr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])
    return DecodedImage(bgr=bgr, format=fmt, width=bgr.shape[1], height=bgr.shape[0], xmp=xmp)


#: EXIF orientation -> the numpy operation that shows the image upright (as Pillow's exif_transpose)
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _cv2_jpeg(data: bytes, size: tuple[int, int], orientation: int) -> np.ndarray | None:
    """A complete JPEG decoded by OpenCV (None: let Pillow decode it and say what is wrong)."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or bgr.shape[:2] != size or bgr.ndim != 3:
        return None
    turn = _ORIENT.get(int(orientation) if isinstance(orientation, int) else 1)
    return np.ascontiguousarray(turn(bgr)) if turn else bgr


def _xmp(im, data: bytes) -> bytes | None:
    for key in ("xmp", "XML:com.adobe.xmp"):
        v = im.info.get(key)
        if v:
            return v.encode("utf-8") if isinstance(v, str) else bytes(v)
    m = _XMP_RE.search(data[: 4 * 1024 * 1024])
    return m.group(0) if m else None


def _to_rgb(im):
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
    """64-bit DCT perceptual hash (hex) of an RGB image, for near-duplicate detection.

    Luma (BT.601) of the image area-averaged by a whole factor to 256-511 pixels on its long side,
    Lanczos-resampled to 32x32, DCT, the 8x8 low frequencies against their median. (The whole-factor
    pre-reduction makes it ~5x cheaper than resampling the full image; on real photos the hash is the
    same as a full-image resampling's or at most 2 bits from it.)"""
    import cv2
    from PIL import Image

    if rgb.strides[-1] < 0:  # DecodedImage.rgb: a view of contiguous BGR pixels, read as they are stored
        img, code = np.ascontiguousarray(rgb[:, :, ::-1]), cv2.COLOR_BGR2GRAY
    else:
        img, code = np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY
    k = max(img.shape[:2]) // 256
    if k > 1:
        img = cv2.resize(img, None, fx=1 / k, fy=1 / k, interpolation=cv2.INTER_AREA)
    gray = Image.fromarray(cv2.cvtColor(img, code)).resize((32, 32), Image.Resampling.LANCZOS)
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
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


#: the side of a face crop (the size face models align to) and the margin around the detected box
CROP_SIDE = 112
CROP_MARGIN = 0.2


def face_crop_jpeg(rgb: np.ndarray, bbox, side: int = CROP_SIDE, margin: float = CROP_MARGIN,
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
