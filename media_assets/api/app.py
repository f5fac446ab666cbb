"""`media-assets serve`: builds the app. The seed's contracts over HTTP (`routes/models.py`),
search and the catalogue by key (`routes/catalogue.py`), health, and the web page at `/`.
Every endpoint calls the `lib/` functions the assets call.

What guards the routes is `security.py`; what reads bodies, `body.py`; the process's state
(catalogue, models one inference at a time each, queues, picture cache), `state.py`.
Idle models unload after MEDIA_ASSETS_API_IDLE_UNLOAD_S.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from media_assets.api import security
from media_assets.api.body import BodyError, cut
from media_assets.api.inference import QueueFull
from media_assets.api.media import BadInput
from media_assets.api.routes import catalogue, health, library, models
from media_assets.api.state import State
from media_assets.lib.models.locate import ModelNotFound
from media_assets.lib.models.manager import ModelBudgetError
from media_assets.lib.settings import Settings

STATIC = Path(__file__).parent / "static"


def _problem(status: int, detail: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"detail": cut(detail, 1000), **extra}, status_code=status,
                        headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error a client can cause is a 4xx with a message in words; inputs are never
    echoed whole (a 1000-character query came back in full before)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": [cut(str(x), 40) for x in e.get("loc", ())],
                   "msg": cut(str(e.get("msg", "")), 200), "type": e.get("type")}
                  for e in exc.errors()[:20]]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return _problem(422, detail or "invalid request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(BodyError)
    async def body_error(request: Request, exc: BodyError):
        return _problem(exc.status, str(exc))

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput):
        return _problem(exc.status, str(exc))

    @app.exception_handler(ModelNotFound)
    async def no_model(request: Request, exc: ModelNotFound):
        return _problem(503, str(exc))

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull):
        return _problem(503, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(ModelBudgetError)
    async def no_room(request: Request, exc: ModelBudgetError):
        return _problem(503, str(exc), {"Retry-After": "30"})


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: the environment's). SettingsError for a token
    that cannot work (only whitespace, or not printable ASCII)."""
    settings = settings or Settings.from_env()
    tokens = security.Tokens(settings.api_token)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        security.redact_access_log()
        app.state.media = State(settings)
        try:
            yield
        finally:
            app.state.media.close()

    app = FastAPI(title="media_assets", version="0.2.0", lifespan=lifespan,
                  description="The catalogue's model services (the seed's contracts), search, "
                              "and files by catalogue key. Local models only. With "
                              "MEDIA_ASSETS_API_TOKEN set, send 'Authorization: Bearer "
                              "<token>' (or log in on the page).")
    app.state.tokens = tokens
    app.add_middleware(security.Guard, settings=settings, tokens=tokens)
    _add_error_handlers(app)
    app.include_router(health.router)
    app.include_router(security.router)
    app.include_router(models.router)
    app.include_router(catalogue.router)
    app.include_router(library.router)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
