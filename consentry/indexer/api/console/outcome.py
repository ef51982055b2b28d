"""How a failed console action is told: the API's own status and message for each of our errors."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import translate


@dataclass(frozen=True)
class Problem:
    status: int
    code: str
    message: str


def problem(exc: Exception) -> Problem:
    """The status, code and message the JSON API would answer ``exc`` with (one mapping for both)."""
    resp = translate(exc)
    body = json.loads(bytes(resp.body))["error"]
    return Problem(resp.status_code, body["code"], body["message"])
