"""The FastAPI application: REST API, Jinja2 pages and static assets."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.middleware.trustedhost import TrustedHostMiddleware

from app.api import openapi_doc
from app.api.errors import out_of_range
from app.api.routes import annotations as annotation_routes
from app.api.routes import (
    api_docs,
    checkpoints,
    datasets,
    deployments,
    evaluation_pages,
    evaluations,
    exports,
    health,
    notifications,
    pages,
    run_files,
    runs,
    trackers,
)
from app.api.routes import auth as auth_routes
from app.api.routes import clone as clone_routes
from app.api.routes import compare as compare_routes
from app.api.routes import queues as queue_routes
from app.api.routes import rewards as reward_routes
from app.api.routes import run_figures as run_figure_routes
from app.api.routes import sweeps as sweep_routes
from app.api.routes import wizard as wizard_routes
from app.core import security
from app.core.config import settings
from app.core.headers import SecurityHeadersMiddleware
from app.core.limits import BodyLimitMiddleware
from app.core.paths import STATIC_DIR
from app.domain import sessions
from app.domain.errors import TuneDeckError
from app.schemas import validation_detail


def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # A body sent with the wrong content type arrives as bytes: not JSON-serialisable as is.
    errors = jsonable_encoder(
        exc.errors(), custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")}
    )
    return JSONResponse({"detail": validation_detail(exc.errors()), "errors": errors},
                        status_code=422)


def _user_error(_request: Request, exc: TuneDeckError) -> JSONResponse:
    body: dict = {"detail": str(exc)}
    if getattr(exc, "field", None) is not None:  # the wizard names the question to answer
        body["field"] = exc.field  # type: ignore[attr-defined]
    return JSONResponse(body, status_code=exc.status_code)


def _load_tokenizer() -> None:
    from app.domain.datasets import tokens

    try:
        tokens.counter()
    except Exception:  # the first upload tries again, and says what is wrong
        logging.getLogger(__name__).exception("loading the tokenizer for dataset statistics")


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    # Every web process reaps runs of dead workers (domain/reaper.py; concurrent reapers agree).
    from app.core.db import SessionLocal
    from app.domain.reaper import ReaperThread

    reaper = ReaperThread(SessionLocal, lost_after_s=settings.worker_lost_after_s)
    reaper.start()
    # The tokenizer that small uploads are counted with, loaded now rather than in the first
    # upload's request (importing transformers takes seconds on a small machine).
    threading.Thread(target=_load_tokenizer, name="tunedeck-tokenizer", daemon=True).start()
    try:
        yield
    finally:
        reaper.stop()


def create_app() -> FastAPI:
    app = FastAPI(
        title="TuneDeck",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        description="Launch, watch and compare LoRA fine-tuning runs.",
        lifespan=_lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(TuneDeckError, _user_error)  # type: ignore[arg-type]
    for error in (OverflowError, DataError):  # e.g. an id beyond 64 bits
        app.add_exception_handler(error, out_of_range)
    for module in (health, datasets, runs, checkpoints, pages, api_docs):
        app.include_router(module.router)
    app.include_router(reward_routes.router)
    app.include_router(wizard_routes.router)
    app.include_router(auth_routes.router)
    app.include_router(evaluations.router)
    app.include_router(evaluation_pages.router)
    app.include_router(compare_routes.router)
    app.include_router(run_files.router)
    app.include_router(notifications.router)
    app.include_router(run_figure_routes.router)
    app.openapi = lambda: openapi_doc.openapi(app)  # type: ignore[method-assign]
    app.include_router(exports.router)
    app.include_router(deployments.router)
    app.include_router(clone_routes.router)
    app.include_router(queue_routes.router)
    app.include_router(sweep_routes.router)
    app.include_router(annotation_routes.router)
    app.include_router(trackers.router)
    # Added last = runs first: Host check, then auth/CSRF (core/security.py).
    app.add_middleware(
        security.SecurityMiddleware,
        auth_token=settings.auth_token,
        trusted_hosts=settings.allowed_hosts,
        is_revoked=sessions.is_revoked,
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=security.allowed_hosts(settings))
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: on refusals too

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        return Response(
            _plotly_js(),
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


_PLOTLY: dict[str, str] = {}


def _plotly_js() -> str:
    # Served from the installed plotly wheel: no CDN at runtime.
    if "js" not in _PLOTLY:
        from plotly.offline import get_plotlyjs

        _PLOTLY["js"] = get_plotlyjs()
    return _PLOTLY["js"]


app = create_app()
