"""Liveness, readiness and Prometheus metrics (no token needed)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .models import Check, Health, Readiness

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 5.0


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers (and which model pack it uses)")
async def healthz(request: Request) -> Health:
    from ...faces.packs import pack_licence

    pack = request.app.state.settings.model_pack
    return Health(status="ok", model_pack=pack, model_licence=pack_licence(pack))


async def _check(fn) -> Check:
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
        return Check(ok=True)
    except TimeoutError:
        return Check(ok=False, error=f"no answer in {CHECK_TIMEOUT_S:.0f}s")
    except Exception as exc:
        return Check(ok=False, error=f"{type(exc).__name__}: {str(exc)[:200]}")


@router.get("/readyz", response_model=Readiness, summary="Readiness: Milvus and S3 answer",
            responses={503: {"model": Readiness, "description": "A dependency is down."}})
async def readyz(request: Request) -> JSONResponse:
    svc = request.app.state.services

    def milvus() -> None:
        if not svc.vectors.ping():
            raise ConnectionError(f"Milvus at {svc.settings.milvus_uri} does not answer")
        svc.index.ensure()  # creates the collections on first use; a schema mismatch is not ready

    def s3() -> None:
        if not svc.objects.ping():
            raise ConnectionError(f"S3 at {svc.settings.s3_endpoint} does not answer")

    results: dict[str, Check] = {}

    async def run(name: str, fn) -> None:
        results[name] = await _check(fn)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "milvus", milvus)
        tg.start_soon(run, "s3", s3)
    ready = all(c.ok for c in results.values())
    body = Readiness(ready=ready, checks=dict(sorted(results.items()))).model_dump()
    if not ready:
        failed = ", ".join(f"{k}: {c.error}" for k, c in sorted(results.items()) if not c.ok)
        body["error"] = {"code": "not-ready", "message": failed}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}})
async def metrics(request: Request) -> Response:
    data, content_type = request.app.state.metrics.render()
    return Response(data, media_type=content_type)
