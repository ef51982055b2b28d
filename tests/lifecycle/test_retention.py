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


def test_a_shortened_source_retention_applies_to_faces_already_held(world, photos):
    now = time.time()
    day = 86400
    old = world.add(SITE + "t1.jpg", photos["t1.jpg"].read_bytes(), source="src-a", expires_in=365 * day,
                    now=now - 40 * day)                                                    # 6 faces, 40 days old
    fresh = world.add(SITE + "obama.jpg", photos["obama.jpg"].read_bytes(), source="src-a", expires_in=365 * day,
                      now=now - 5 * day)                                                   # 1 face, 5 days old
    other = world.add(SITE + "biden.jpg", photos["biden.jpg"].read_bytes(), source="src-b", expires_in=365 * day,
                      now=now - 40 * day)                                                  # another source's face
    sweeper = RetentionSweeper(world.index, world.provenance, world.audit,
                               source_retention_days={"src-a": 30, "src-b": 400})  # src-a shortened to 30 days
    dry = sweeper.sweep(now=now, dry_run=True)
    assert (dry.expired_faces, dry.past_source_retention) == (6, 6)
    assert world.index.count() == 8
    rep = sweeper.sweep(now=now)
    assert (rep.expired_faces, rep.past_source_retention, rep.remaining_expired) == (6, 6, 0)
    assert world.index.get(old.face_ids) == []
    assert len(world.index.get(fresh.face_ids)) == 1 and len(world.index.get(other.face_ids)) == 1
    assert world.provenance.get(old.key).erased_by == [rep.run_id]
    # a longer retention (src-b: 400 days) never extends a face past its expires_at
    later = now - 40 * day + 366 * day  # a day past the src-b face's expires_at
    assert RetentionSweeper(world.index, world.provenance, world.audit,
                            source_retention_days={"src-b": 400}).sweep(now=later).expired_faces == 1
    assert world.index.get(other.face_ids) == [] and len(world.index.get(fresh.face_ids)) == 1
