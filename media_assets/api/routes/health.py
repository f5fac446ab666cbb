"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from media_assets.api.schemas import Problem
from media_assets.api.state import State

router = APIRouter(tags=["health"], responses={
    400: {"model": Problem, "description": "a Host not allowed"}})


async def state(request: Request) -> State:
    return request.app.state.media


@router.get("/health")
async def health() -> dict:
    """Liveness: the process answers (no token needed, never waits for a model)."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "the database unreachable or a "
                                                  "required model missing (same body)"}})
def ready(st: State = Depends(state)) -> JSONResponse:
    """The database reachable, and each model found or missing (as `doctor` says); the
    model queues' lengths."""
    import sqlalchemy as sa

    out: dict = {"database": "ok", "models": {}}
    try:
        with st.engine.connect() as conn:
            conn.scalar(sa.select(sa.literal(1)))
    except Exception as exc:
        out["database"] = f"unreachable: {type(exc).__name__}"
    out["models"] = {m.role.value: m.as_dict() for m in st.inventory.statuses()}
    out["loaded"] = st.manager.loaded()
    out["queues"] = {lane: {"waiting_or_running": st.lanes.pending[lane], "depth": depth}
                     for lane, depth in st.lanes.depths.items()}
    ok = out["database"] == "ok" and all(m["status"] == "found" or not m["required"]
                                         for m in out["models"].values())
    out["status"] = "ready" if ok else "not ready"
    return JSONResponse(out, status_code=200 if ok else 503)
