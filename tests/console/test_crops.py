"""Stored face crops: the 112x112 JPEG ingest keeps per indexed face, and every path that deletes a face
deletes its crop (each erasure kind and the retention sweep), on the real servers and on the fakes.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from consentry.catalog import ProvenanceStore
from consentry.imaging import decode, face_crop_jpeg
from consentry.indexer.erasure import Eraser
from consentry.indexer.retention import RetentionSweeper
from tests.lifecycle.conftest import World, make_world

SITE = "http://127.0.0.1:8/photos/"


@pytest.fixture(params=["real", "memory"])
def world(request: pytest.FixtureRequest) -> World:
    return make_world(request.param, request)


def test_a_crop_is_a_112_square_jpeg_of_the_face_with_a_margin_even_at_the_edge():
    rgb = np.zeros((200, 300, 3), dtype=np.uint8)
    rgb[50:150, 100:160] = (255, 255, 255)  # a 60x100 "face"
    img = Image.open(io.BytesIO(face_crop_jpeg(rgb, (100, 50, 160, 150))))
    assert img.format == "JPEG" and img.size == (112, 112)
    a = np.asarray(img.convert("L"), dtype=float)
    assert a[56, 56] > 200 and a[56, 5] < 60 and a[3, 56] < 60  # the face in the middle, a margin around it
    edge = Image.open(io.BytesIO(face_crop_jpeg(rgb, (-20, -10, 40, 60))))  # a box past the image's corner
    assert edge.size == (112, 112)
    assert abs(float(np.asarray(edge.convert("L"))[2, 2]) - 128) < 20  # padded grey, not stretched


def test_ingest_stores_crops_by_default():
    """The default reaches the ingest stage (tests/ingest/test_e2e.py checks one crop per face on the servers)."""
    from consentry.core.settings import Settings
    from consentry.ingest import IngestConfig

    assert Settings.model_fields["s3_store_crops"].default is True
    assert IngestConfig.from_settings(Settings()).store_crops is True


def _with_crops(world: World, url: str, data: bytes, **kw) -> list[str]:
    prov = world.add(url, data, **kw)
    img = decode(data)
    for ref in prov.faces:
        world.store.put(ProvenanceStore.crop_key(ref.face_id), face_crop_jpeg(img.rgb, ref.bbox), "image/jpeg")
    return prov.face_ids


def _crops(world: World, face_ids: list[str]) -> list[bool]:
    return [world.store.exists(ProvenanceStore.crop_key(f)) for f in face_ids]


def _eraser(world: World) -> Eraser:
    return Eraser(world.index, world.provenance, world.store, world.audit, erasure_threshold=0.45,
                  model_loader=lambda: world.model)


def test_every_erasure_deletes_the_crops_and_counts_them(world, photos):
    ob = _with_crops(world, SITE + "obama.jpg", photos["obama.jpg"].read_bytes())
    ob2 = _with_crops(world, SITE + "obama2.jpg", photos["obama2.jpg"].read_bytes(), source="src-b")
    t1 = _with_crops(world, SITE + "t1.jpg", photos["t1.jpg"].read_bytes(), job="job-t1")
    bi = _with_crops(world, SITE + "biden.jpg", photos["biden.jpg"].read_bytes(), source="src-c")
    astro = _with_crops(world, SITE + "astronaut.png", photos["astronaut.png"].read_bytes(), source="src-d")
    assert all(_crops(world, ob + ob2 + t1 + bi + astro))
    r = _eraser(world).forget_photo(photos["obama3.jpg"].read_bytes(), actor="privacy:test")
    assert sorted(r.matched_face_ids) == sorted(ob + ob2) and r.deleted["crops_deleted"] == 2
    assert not any(_crops(world, ob + ob2)) and all(_crops(world, t1 + bi + astro))
    r = _eraser(world).forget_job("job-t1", actor="privacy:test")
    assert r.deleted["crops_deleted"] == 6 and not any(_crops(world, t1))
    r = _eraser(world).forget_source("src-c", actor="privacy:test")
    assert r.deleted["crops_deleted"] == 1 and not any(_crops(world, bi))
    r = _eraser(world).forget_url(SITE + "astronaut.png", actor="privacy:test")
    assert r.deleted["crops_deleted"] == 1 and not any(_crops(world, astro))
    assert not [k for k in world.store.list("crops/")]


def test_the_retention_sweep_deletes_the_crops_of_expired_faces(world, photos):
    now = time.time()
    short = _with_crops(world, SITE + "t1.jpg", photos["t1.jpg"].read_bytes(), expires_in=86400, now=now)
    long = _with_crops(world, SITE + "biden.jpg", photos["biden.jpg"].read_bytes(), expires_in=30 * 86400, now=now)
    rep = RetentionSweeper(world.index, world.provenance, world.audit).sweep(now=now + 2 * 86400)
    assert rep.expired_faces == 6 and rep.deleted["crops_deleted"] == 6
    assert not any(_crops(world, short)) and all(_crops(world, long))
