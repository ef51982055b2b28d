"""Safe decoding of untrusted bytes (consentry.imaging): bombs, truncation, modes, orientation, frames."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from consentry.core.consent import iptc_signal
from consentry.core.errors import ImageRejected
from consentry.imaging import decode, hamming, phash

from .site import jpeg_with_xmp, noise_image, png_bomb, to_jpeg


def save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_a_decompression_bomb_is_rejected_before_decoding():
    with pytest.raises(ImageRejected) as e:
        decode(png_bomb(100_000, 100_000), max_pixels=40_000_000)
    assert e.value.reason == "decompression-bomb"
    with pytest.raises(ImageRejected) as e:
        decode(png_bomb(8000, 8000), max_pixels=40_000_000)  # under Pillow's own limit, over ours
    assert e.value.reason == "decompression-bomb" and "exceeds the limit" in str(e.value)


def test_a_truncated_jpeg_is_rejected(photos):
    data = photos["obama.jpg"].read_bytes()
    with pytest.raises(ImageRejected) as e:
        decode(data[: len(data) // 2])
    assert e.value.reason == "truncated"


def test_modes_are_normalised_to_rgb():
    rgb = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    base = Image.fromarray(rgb)
    for data in (save(base.convert("CMYK"), "JPEG"), save(base.convert("P"), "PNG"),
                 save(base.convert("RGBA"), "PNG"), save(Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257), "PNG"),
                 save(base.convert("L"), "BMP"), save(base, "WEBP")):
        d = decode(data)
        assert d.rgb.dtype == np.uint8 and d.rgb.shape == (40, 50, 3)


def test_exif_orientation_is_applied():
    im = Image.fromarray(np.zeros((20, 60, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    d = decode(save(im, "JPEG", exif=exif.tobytes()))
    assert (d.width, d.height) == (20, 60)


def test_animated_images_use_the_first_frame():
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    d = decode(buf.getvalue())
    assert tuple(d.rgb[5, 5]) == (255, 0, 0)


def test_too_small_and_garbage_are_rejected():
    with pytest.raises(ImageRejected) as e:
        decode(noise_image(1, size=20), min_side=32)
    assert e.value.reason == "too-small"
    with pytest.raises(ImageRejected) as e:
        decode(b"\xff\xd8\xff" + b"\x00" * 100)
    assert e.value.reason in ("undecodable", "truncated")


def test_xmp_datamining_is_read_from_the_file_and_phash_is_stable():
    jpeg = to_jpeg(noise_image(3))
    d = decode(jpeg_with_xmp(jpeg))
    sig = iptc_signal(d.xmp)
    assert sig.value == "DMI-PROHIBITED-AIMLTRAINING" and sig.opt_out
    assert iptc_signal(decode(jpeg).xmp).value == "absent"
    a, b = phash(decode(jpeg).rgb), phash(decode(to_jpeg(noise_image(3), quality=60)).rgb)
    assert hamming(a, b) <= 6 and hamming(a, phash(decode(noise_image(4)).rgb)) > 12


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_fast_jpeg_path_gives_pillows_pixels_for_every_orientation(orientation):
    """Complete YCbCr JPEGs are decoded by OpenCV (off the GIL); the result is Pillow's, orientation included."""
    from PIL import ImageOps

    rgb = np.random.default_rng(orientation).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = save(Image.fromarray(rgb), "JPEG", exif=exif.tobytes(), quality=95)
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    got = decode(data)
    assert got.bgr.flags.c_contiguous and (got.width, got.height) == (want.shape[1], want.shape[0])
    assert np.array_equal(got.rgb, want)


def test_cmyk_truncated_and_trailing_bytes_take_pillows_path():
    rgb = np.random.default_rng(7).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    cmyk = save(Image.fromarray(rgb).convert("CMYK"), "JPEG")
    assert decode(cmyk).rgb.shape == (40, 40, 3)
    jpeg = save(Image.fromarray(rgb), "JPEG")
    assert np.array_equal(decode(jpeg + b"trailer").rgb, decode(jpeg).rgb)  # no EOI at the end: Pillow decodes it
    with pytest.raises(ImageRejected):
        decode(jpeg[: len(jpeg) - 200])
