"""The web dashboard: server-rendered pages; the live parts are drawn by a little JavaScript.

Why so little: pages are Jinja2 templates over the same queries the API answers, and the plots
that must update live (frontier, hyperparameters against cost, learning curves, trials table)
are inline SVG drawn by `dashboard.js` from the JSON endpoints. Nothing is fetched from the
internet, so the dashboard works on an air-gapped cluster.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from experiments.service import queries
from experiments.service.context import Ctx, require_sweep

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
