"""The FastAPI application: REST API, Jinja2 pages and static assets."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from app.api.routes import api_docs, checkpoints, datasets, health, pages, runs
from app.core.paths import STATIC_DIR


def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    messages = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"] if p != "body")
        messages.append(f"{where}: {error['msg']}" if where else error["msg"])
    return JSONResponse({"detail": "; ".join(messages), "errors": exc.errors()}, status_code=422)


def create_app() -> FastAPI:
    app = FastAPI(title="TuneDeck", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Launch, watch and compare LoRA fine-tuning runs.")
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    for module in (health, datasets, runs, checkpoints, pages, api_docs):
        app.include_router(module.router)

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        return Response(_plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

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
