import time

from consentry.indexer.retention import RetentionSweeper, expires_at

SITE = "http://127.0.0.1:8/photos/"


def test_expires_at_is_capped():
    assert expires_at(0, 30, 1095) == 30 * 86400
    assert expires_at(0, 5000, 1095) == 1095 * 86400


def test_sweep_with_clock_moved_forward_removes_exactly_the_expired(world, photos):
    now = time.time()
    short = world.add(SITE + "t1.jpg", photos["t1.jpg"].read_bytes(), expires_in=86400, now=now)       # 6 faces, 1 day
    long = world.add(SITE + "biden.jpg", photos["biden.jpg"].read_bytes(), expires_in=30 * 86400, now=now)
    sweeper = RetentionSweeper(world.index, world.provenance, world.audit)
    assert sweeper.sweep(now=now).expired_faces == 0
    assert sweeper.sweep(now=now + 2 * 86400, dry_run=True).expired_faces == 6
    rep = sweeper.sweep(now=now + 2 * 86400)
    assert rep.expired_faces == 6 and rep.remaining_expired == 0 and rep.deleted["milvus_faces"] == 6
    assert world.index.count() == 1
    assert len(world.index.get(long.face_ids)) == 1
    p = world.provenance.get(short.key)
    assert p.face_ids == [] and all(f.erased for f in p.faces) and p.erased_by == [rep.run_id]
    assert list(world.audit.entries())[-1]["action"] == "retention-sweep"
