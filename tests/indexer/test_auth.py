"""Tokens, roles and the rate limiter, with in-memory fakes (the API tests cover them over HTTP and S3)."""

import json

import pytest

from consentry.core.errors import AccessDenied, NotFound, RecordError
from consentry.core.records import sha256_hex
from consentry.indexer.auth import Role, TokenStore
from consentry.indexer.ratelimit import RateLimiter
from tests.fakes import MemoryObjectStore


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_tokens_are_random_hashed_at_rest_and_checked():
    tokens = TokenStore(MemoryObjectStore(), cache_ttl_s=0)
    rec, token = tokens.create("alice", "searcher")
    rec2, token2 = tokens.create("alice", Role.AUDITOR)
    assert token != token2 and rec.id != rec2.id and len(token) > 50
    stored = tokens.store.get(tokens.key(rec.id)).decode()
    assert token not in stored and json.loads(stored)["hash"] == sha256_hex(token)
    p = tokens.authenticate(token)
    assert (p.name, p.role, p.actor) == ("alice", Role.SEARCHER, f"token:alice/{rec.id}")
    assert TokenStore.authorize(p, [Role.SEARCHER]) is p
    with pytest.raises(AccessDenied) as ei:
        TokenStore.authorize(p, [Role.AUDITOR, Role.PRIVACY])
    assert ei.value.status == 403 and "auditor or privacy" in str(ei.value)
    for bad in (None, "", "cst_", "Bearer x", token[:-1], token + "x", f"cst_{rec.id}_", "cst_zz_abc",
                token.replace(rec.id, rec2.id)):
        with pytest.raises(AccessDenied) as ei:
            tokens.authenticate(bad)
        assert ei.value.status == 401


def test_revoke_by_id_or_unique_name():
    tokens = TokenStore(MemoryObjectStore(), cache_ttl_s=0)
    a, ta = tokens.create("alice", "searcher")
    b, tb = tokens.create("bob", "operator")
    b2, _ = tokens.create("bob", "auditor")
    assert tokens.revoke("alice").revoked_at is not None
    with pytest.raises(AccessDenied, match="revoked"):
        tokens.authenticate(ta)
    with pytest.raises(NotFound, match="2 active tokens"):
        tokens.revoke("bob")
    tokens.revoke(b.id)
    assert tokens.revoke("bob").id == b2.id  # now the only active one
    with pytest.raises(NotFound):
        tokens.revoke("carol")
    assert [r.name for r in tokens.list()] == ["alice", "bob", "bob"] and not any(r.active for r in tokens.list())
    assert "hash" not in tokens.list()[0].public()
    with pytest.raises(RecordError):
        tokens.create("Not A Name", "searcher")
    with pytest.raises(ValueError):
        tokens.create("dave", "admin")


def test_revocation_elsewhere_applies_after_the_cache_ttl():
    store, clock = MemoryObjectStore(), Clock()
    api = TokenStore(store, cache_ttl_s=5, clock=clock)
    cli = TokenStore(store, cache_ttl_s=5, clock=clock)
    rec, token = cli.create("alice", "searcher")
    api.authenticate(token)
    cli.revoke(rec.id)
    api.authenticate(token)  # still cached
    clock.t += 5.1
    with pytest.raises(AccessDenied):
        api.authenticate(token)


def test_rate_limiter_token_bucket_per_key():
    clock = Clock()
    rl = RateLimiter(3, clock=clock)
    assert [rl.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = rl.acquire("a")
    assert wait == pytest.approx(20.0)  # one request every 20 s at 3 a minute
    assert rl.acquire("b") == 0.0
    clock.t += 20
    assert rl.acquire("a") == 0.0 and rl.acquire("a") > 0
    clock.t += 3600
    assert [rl.acquire("a") for _ in range(4)][-1] > 0  # the burst never exceeds the per-minute budget
