"""Request body bound: a body over ``max_bytes`` gets 413 and is never held in memory.

- A declared ``Content-Length`` over the bound is answered at once. If it is within ``drain_bytes``
  the body is first read and thrown away (a client that writes its whole body before reading, as
  most do, would otherwise see the connection reset instead of our answer); beyond that, the
  connection is closed without reading it.
- A body without a length (chunked) is counted as it streams in; the moment it passes the bound
  the application stops receiving (the rest is drained up to ``drain_bytes``) and the client gets
  413, whatever the route was doing with the partial body.
"""

from __future__ import annotations

import json

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_TIMEOUT_S = 10.0


class _Overflow(Exception):
    pass


async def _drain(receive: Receive, budget: int) -> None:
    """Read and discard the rest of the body, at most ``budget`` bytes."""
    with anyio.move_on_after(DRAIN_TIMEOUT_S):
        while budget > 0:
            message = await receive()
            if message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, drain_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = 2 * max_bytes if drain_bytes is None else drain_bytes
        self.body = json.dumps({"error": {"code": "too-large", "message": f"request body exceeds the limit of "
                                          f"{max_bytes} bytes"}}).encode()

    async def _reply(self, send: Send, close: bool) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            drain = int(declared) <= self.drain_bytes
            if drain:
                await _drain(receive, int(declared))
            await self._reply(send, close=not drain)
            return
        seen = 0
        overflow = False
        replied = False

        async def limited_receive() -> Message:
            nonlocal seen, overflow
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    overflow = True
                    if message.get("more_body", False):
                        await _drain(receive, self.drain_bytes - seen)
                    raise _Overflow()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replied
            if overflow:  # whatever the app answers to a cut-off body, the client gets 413
                if message["type"] == "http.response.start" and not replied:
                    replied = True
                    await self._reply(send, close=True)
                return
            if message["type"] == "http.response.start":
                replied = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not overflow:
                raise
            if not replied:
                await self._reply(send, close=True)
