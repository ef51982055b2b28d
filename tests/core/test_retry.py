import pytest

from consentry.core.errors import DependencyError, ObjectNotFound
from consentry.core.retry import RetryPolicy


def test_retries_transient_then_succeeds():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise DependencyError("down", transient=True)
        return "ok"

    assert RetryPolicy(attempts=5, base_delay_s=0.1).call(flaky, sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2 and all(0 <= s <= 0.2 for s in sleeps)


def test_gives_up_after_attempts_and_never_retries_permanent():
    calls = []

    def down():
        calls.append(1)
        raise DependencyError("down", transient=True)

    with pytest.raises(DependencyError):
        RetryPolicy(attempts=3).call(down, sleep=lambda s: None)
    assert len(calls) == 3
    calls.clear()

    def missing():
        calls.append(1)
        raise ObjectNotFound("gone")

    with pytest.raises(ObjectNotFound):
        RetryPolicy(attempts=3).call(missing, sleep=lambda s: None)
    assert len(calls) == 1
