"""The web dashboard: server-rendered pages; the live parts are drawn by a little JavaScript.

Why so little: pages are Jinja2 templates over the same queries the API answers, and the parts
that must update live (frontier, hyperparameters against cost, learning curves, trials table)
are drawn in the browser from the JSON endpoints, with the Plotly.js bundled under
`static/vendor`. Nothing is fetched from the internet, so the dashboard works on an air-gapped
cluster. A page that fails answers a readable HTML page; the API keeps answering JSON.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from experiments.service import queries
from experiments.service.context import Ctx, require_sweep
from experiments.store.engine import StoreUnavailable

WEB_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "web"
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
router = APIRouter(include_in_schema=False)


def _fmt_loss(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _fmt_flops(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


templates.env.filters["loss"] = _fmt_loss
templates.env.filters["flops"] = _fmt_flops


@router.get("/", response_class=HTMLResponse)
def sweeps_page(request: Request, ctx: Ctx) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "sweeps.html", {"sweeps": queries.sweep_rows(ctx.store)}
    )


@router.get("/sweeps/{name}", response_class=HTMLResponse)
def sweep_page(request: Request, ctx: Ctx, name: str) -> HTMLResponse:
    sweep = require_sweep(ctx, name)
    detail = queries.sweep_detail(ctx.store, sweep)
    return templates.TemplateResponse(request, "sweep.html", {"sweep": detail})


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, ctx: Ctx, names: str = "") -> HTMLResponse:
    """Several sweeps' frontiers on one plot: `/compare?names=a,b`."""
    chosen = [n for n in (s.strip() for s in names.split(",")) if n]
    known = {r["name"] for r in queries.sweep_rows(ctx.store)}
    return templates.TemplateResponse(
        request,
        "compare.html",
        {
            "names": [n for n in chosen if n in known],
            "unknown": [n for n in chosen if n not in known],
            "all": sorted(known),
        },
    )


@router.get("/api-docs", response_class=HTMLResponse)
def api_docs_page(request: Request) -> HTMLResponse:
    """The API's operations from the OpenAPI schema, without any CDN-hosted viewer."""
    schema = request.app.openapi()
    ops = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            ops.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "auth": bool(op.get("security")),
                    "params": [p["name"] for p in op.get("parameters", [])],
                }
            )
    return templates.TemplateResponse(request, "api.html", {"ops": ops, "info": schema["info"]})


TITLES = {
    404: "Not found",
    403: "Not allowed",
    401: "Token needed",
    409: "Conflict",
    503: "Unavailable",
}


def wants_html(request: Request) -> bool:
    """Pages (not /api, /static or /openapi.json) asked for by a browser get HTML errors."""
    path = request.url.path
    if path == "/api" or path.startswith(("/api/", "/static/", "/openapi")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "application/json" not in accept


async def html_or_json_error(request: Request, exc: Exception) -> Response:
    """An HTTP error as a page with the reason and a way back, where a person asked; else the
    API's JSON (`{"detail": ...}`)."""
    assert isinstance(exc, StarletteHTTPException)
    if not wants_html(request):
        return await http_exception_handler(request, exc)
    sweeps: list[str] = []
    if exc.status_code == 404:
        ctx = getattr(request.app.state, "ctx", None)
        try:
            sweeps = sorted(r["name"] for r in queries.sweep_rows(ctx.store))[:20] if ctx else []
        except StoreUnavailable:  # the page still says what was not found
            sweeps = []
    detail = str(exc.detail)
    if detail == "Not Found":  # an unknown route, not a handler's own 404
        detail = f"There is no page at {request.url.path}"
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "title": TITLES.get(exc.status_code, "Error"),
            "message": _page_message(detail),
            "status": exc.status_code,
            "path": request.url.path,
            "sweeps": sweeps,
        },
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


def _page_message(detail: str) -> str:
    """The API's advice, reworded for a page: a browser user lists sweeps on the front page."""
    text = detail.replace("; GET /api/sweeps lists them", "").rstrip(".") + "."
    return text[:1].upper() + text[1:]
