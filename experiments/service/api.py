"""The JSON API under /api: submit, list, inspect, cancel, plots, fits, predictions, exports.

Why these rules: everyone may read every sweep (no token); submitting needs a token, and changing
or cancelling a sweep needs its owner's token (401 without one, 403 with someone else's). A bad
sweep definition answers 422 with one entry per problem: the field path and how to fix it.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, HTTPException, Path, Query, UploadFile
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, Field, ValidationError

from carbs.errors import SpecError
from experiments.service import artifacts, queries
from experiments.service.auth import Principal
from experiments.service.context import Ctx, ServiceContext, User, require_owner, require_sweep
from experiments.service.scheduler import ACTIVE
from experiments.spec import parse_spec, problems
from experiments.store.repository import SweepConflict

router = APIRouter(prefix="/api")

SweepName = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        description="the sweep's `name`",
        examples=["toy_chinchilla"],
    ),
]
ExportFormat = Literal["yaml", "llm-foundry", "hf-dbrx"]
MAX_SPEC_BYTES = 256_000


class SubmitRequest(BaseModel):
    spec_yaml: str = Field(
        ..., max_length=MAX_SPEC_BYTES, description="the sweep definition, as YAML text"
    )


class SpecProblem(BaseModel):
    field: str = Field(description="dotted path of the offending field, e.g. budget.max_trials")
    message: str = Field(description="what is wrong and how to fix it")


class SpecErrorBody(BaseModel):
    message: str
    errors: list[SpecProblem]


class SpecErrorResponse(BaseModel):
    detail: SpecErrorBody


class SubmitResponse(BaseModel):
    name: str
    owner: str | None
    status: str
    resumed: bool
    url: str
    note: str | None = None


class CancelResponse(BaseModel):
    name: str
    status: str = Field(description="`cancelled`, or `cancel_requested` while a driver stops")


def spec_problems(exc: SpecError) -> list[SpecProblem]:
    """One entry per problem, from the pydantic errors behind a SpecError when there are any."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        return [SpecProblem(field=f, message=m) for f, m in problems(cause)]
    text = str(exc)
    _, _, rest = text.partition(": ")
    head, sep, tail = rest.partition(": ")
    if sep and " " not in head:
        return [SpecProblem(field=head, message=tail)]
    return [SpecProblem(field="(top level)", message=rest or text)]


# --- submit and cancel -----------------------------------------------------------------------
def _submit(ctx: ServiceContext, who: Principal, text: str, source: str) -> SubmitResponse:
    try:
        spec = parse_spec(text, source=source, entrypoints=ctx.settings.entrypoints)
    except SpecError as exc:
        body = SpecErrorBody(message=str(exc), errors=spec_problems(exc))
        raise HTTPException(422, body.model_dump()) from exc
    note = None
    if spec.storage != ctx.store.url:
        note = "the spec's `storage` is ignored: the service keeps every sweep in its own store"
    # what is stored names the service's store without its credentials (the store redacts too)
    spec = spec.model_copy(update={"storage": ctx.store.safe_url})
    existing = ctx.store.get_sweep(spec.name)
    if existing is not None:
        require_owner(who, existing)
        if existing.status in ACTIVE or ctx.scheduler.is_running(spec.name):
            raise HTTPException(
                409,
                f"sweep {spec.name!r} is already {existing.status}; cancel it first or "
                "submit under another `name`",
            )
    try:
        sweep, created = ctx.store.get_or_create_sweep(
            spec.name, spec.model_dump(mode="json"), text, owner=who.name
        )
    except SweepConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    ctx.scheduler.enqueue(sweep.id, sweep.name)
    return SubmitResponse(
        name=sweep.name,
        owner=sweep.owner,
        status="queued",
        resumed=not created,
        url=f"/sweeps/{sweep.name}",
        note=note,
    )


_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or unknown token"},
    403: {"description": "a sweep of that name belongs to someone else"},
    409: {"description": "a sweep of that name is running, or has another search space"},
    422: {"model": SpecErrorResponse, "description": "invalid sweep definition"},
}


@router.post("/sweeps", status_code=201, responses=_SUBMIT_RESPONSES)
def submit_sweep(ctx: Ctx, who: User, body: SubmitRequest) -> SubmitResponse:
    """Validate a sweep definition and queue it; re-submitting your stopped sweep resumes it."""
    return _submit(ctx, who, body.spec_yaml, "submitted spec")


@router.post("/sweeps/upload", status_code=201, responses=_SUBMIT_RESPONSES)
def upload_sweep(ctx: Ctx, who: User, spec: Annotated[UploadFile, File()]) -> SubmitResponse:
    """The same as POST /api/sweeps, from a file upload (`curl -F spec=@sweep.yaml`)."""
    raw = spec.file.read(MAX_SPEC_BYTES + 1)
    if len(raw) > MAX_SPEC_BYTES:
        raise HTTPException(413, f"a sweep definition may be at most {MAX_SPEC_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, "the uploaded sweep definition is not UTF-8 text") from exc
    return _submit(ctx, who, text, spec.filename or "uploaded spec")


@router.post(
    "/sweeps/{name}/cancel",
    responses={401: {"description": "no token"}, 403: {"description": "not the owner"}},
)
def cancel_sweep(ctx: Ctx, who: User, name: SweepName) -> CancelResponse:
    """Stop a sweep: in-flight trials are cancelled on Ray, pending ones marked cancelled."""
    sweep = require_sweep(ctx, name)
    require_owner(who, sweep)
    outcome = ctx.scheduler.cancel(sweep.id, name)
    if outcome == "not-found":
        raise HTTPException(409, f"sweep {name!r} is already {sweep.status}")
    if outcome == "stopping":
        # The runner stops at its next loop iteration (after any suggestion in progress);
        # answer within seconds either way: "cancel_requested" turns `cancelled` shortly.
        ctx.scheduler.wait_idle(name, timeout=5.0)
    return CancelResponse(name=name, status=require_sweep(ctx, name).status)


@router.get("/whoami")
def whoami(who: User) -> dict[str, Any]:
    """The user a token belongs to (checks a token without changing anything)."""
    return {"name": who.name, "is_admin": who.is_admin}


# --- reading ---------------------------------------------------------------------------------
@router.get("/health")
def health(ctx: Ctx) -> dict[str, Any]:
    return {"ok": True, "running": ctx.scheduler.running(), "ray": ctx.scheduler.ray_status()}


@router.get("/sweeps")
def list_sweeps(ctx: Ctx) -> list[dict[str, Any]]:
    """Every sweep with its owner, status, trial counts and best loss."""
    return queries.sweep_rows(ctx.store)


@router.get("/sweeps/{name}")
def get_sweep(ctx: Ctx, name: SweepName) -> dict[str, Any]:
    """A sweep's definition, status, counts, best loss and (while it runs here) recent events."""
    sweep = require_sweep(ctx, name)
    out = queries.sweep_detail(ctx.store, sweep)
    out["live"] = ctx.scheduler.progress(name)
    return out


@router.get("/sweeps/{name}/trials")
def list_trials(
    ctx: Ctx,
    name: SweepName,
    status: Annotated[list[str] | None, Query(description="only these statuses")] = None,
) -> list[dict[str, Any]]:
    sweep = require_sweep(ctx, name)
    return [queries.trial_dict(t) for t in ctx.store.trials(sweep.id, statuses=status)]


@router.get("/sweeps/{name}/trials/{number}")
def get_trial(ctx: Ctx, name: SweepName, number: int) -> dict[str, Any]:
    """One trial with its learning curve."""
    sweep = require_sweep(ctx, name)
    match = [t for t in ctx.store.trials(sweep.id) if t.number == number]
    if not match:
        raise HTTPException(404, f"sweep {name!r} has no trial number {number}")
    trial = ctx.store.get_trial(match[0].id)
    return queries.trial_dict(trial, curve=True)  # type: ignore[arg-type]


@router.get("/sweeps/{name}/frontier")
def frontier(ctx: Ctx, name: SweepName) -> dict[str, Any]:
    """Successful trials' cost and loss with their configs and on-frontier flags (for plots)."""
    return queries.frontier_data(ctx.store, require_sweep(ctx, name))


@router.get("/sweeps/{name}/curves")
def curves(ctx: Ctx, name: SweepName) -> list[dict[str, Any]]:
    """Learning curves of the sweep's trials."""
    return queries.curves_data(ctx.store, require_sweep(ctx, name))


# --- plots, fits, predictions, exports ---------------------------------------------------------
def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(409, f"no scaling-law fit yet: {exc}")


@router.get(
    "/sweeps/{name}/plots/frontier.{fmt}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def frontier_plot(ctx: Ctx, name: SweepName, fmt: Literal["png", "svg"]) -> FileResponse:
    """The Pareto-frontier figure (cost against loss, frontier highlighted)."""
    sweep = require_sweep(ctx, name)
    path = artifacts.frontier_plot(ctx.store, sweep, ctx.cache_dir, fmt)
    return FileResponse(path, media_type=_MEDIA[fmt])


@router.get("/sweeps/{name}/plots/scaling")
def scaling_plot_list(ctx: Ctx, name: SweepName) -> dict[str, Any]:
    """Names of the scaling-law figures of the current fit (fits first when stale)."""
    sweep = require_sweep(ctx, name)
    try:
        paths = artifacts.scaling_plots(ctx.store, sweep, ctx.cache_dir, ctx.picks)
    except artifacts.FitUnavailable as exc:
        raise _unavailable(exc) from exc
    stems = sorted({p.stem for p in paths})
    return {
        "plots": [
            {
                "name": s,
                "png": f"/api/sweeps/{name}/plots/scaling/{s}.png",
                "svg": f"/api/sweeps/{name}/plots/scaling/{s}.svg",
            }
            for s in stems
        ]
    }


@router.get(
    "/sweeps/{name}/plots/scaling/{plot}.{fmt}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def scaling_plot(
    ctx: Ctx,
    name: SweepName,
    plot: Annotated[str, Path(pattern=r"^[a-z_]{1,40}$")],
    fmt: Literal["png", "svg"],
) -> FileResponse:
    """One scaling-law figure: frontier with extrapolation band, the laws, the backtest."""
    sweep = require_sweep(ctx, name)
    try:
        paths = artifacts.scaling_plots(ctx.store, sweep, ctx.cache_dir, ctx.picks)
    except artifacts.FitUnavailable as exc:
        raise _unavailable(exc) from exc
    match: list[FsPath] = [p for p in paths if p.stem == plot and p.suffix == f".{fmt}"]
    if not match:
        raise HTTPException(
            404, f"no scaling plot {plot!r}; choose one of {sorted({p.stem for p in paths})}"
        )
    return FileResponse(match[0], media_type=_MEDIA[fmt])


@router.get("/sweeps/{name}/fit")
def get_fit(ctx: Ctx, name: SweepName) -> dict[str, Any]:
    """The large-run pick and every scaling-law fit behind it (fits first when stale)."""
    sweep = require_sweep(ctx, name)
    try:
        fit_id, pick = artifacts.current_pick(ctx.store, sweep, ctx.picks)
    except artifacts.FitUnavailable as exc:
        raise _unavailable(exc) from exc
    return {"fit_id": fit_id, **pick.to_dict()}


@router.get("/sweeps/{name}/predict")
def predict(
    ctx: Ctx,
    name: SweepName,
    flops: Annotated[
        list[Annotated[float, Field(gt=0, allow_inf_nan=False)]],
        Query(description="compute budgets in FLOPs"),
    ],
) -> dict[str, Any]:
    """The compute-optimal loss the scaling model predicts at each compute budget (90 %
    interval), and the large run's own prediction at the target: both from the one model."""
    sweep = require_sweep(ctx, name)
    if not flops or len(flops) > 100:
        raise HTTPException(422, "give between 1 and 100 `flops` values")
    try:
        _, pick = artifacts.current_pick(ctx.store, sweep, ctx.picks)
        predictions = artifacts.predict(pick, flops)
    except artifacts.FitUnavailable as exc:
        raise _unavailable(exc) from exc
    return {
        "predictions": predictions,
        "source": "scaling model: loss of the compute-optimal run at each budget, 90% interval",
        "target_flops": pick.target_flops,
        "target_loss_source": (pick.fits or {}).get("predicted_loss_source"),
        "target_loss": pick.predicted_loss,
        "target_loss_ci90": list(pick.predicted_loss_ci),
    }


@router.get("/sweeps/{name}/exports")
def list_exports(ctx: Ctx, name: SweepName) -> dict[str, Any]:
    """Stored exports, and the formats this sweep can be exported to."""
    sweep = require_sweep(ctx, name)
    return {
        "formats": artifacts.export_formats(sweep),
        "exports": [
            {
                "id": e.id,
                "format": e.format,
                "fit_id": e.fit_id,
                "predicted_loss": e.predicted_loss,
                "created_at": e.created_at.isoformat(),
                "url": f"/api/sweeps/{name}/exports/{e.id}",
            }
            for e in ctx.store.exports(sweep.id)
        ],
    }


@router.get("/sweeps/{name}/exports/{export_id}", response_class=PlainTextResponse)
def download_stored_export(ctx: Ctx, name: SweepName, export_id: int) -> PlainTextResponse:
    sweep = require_sweep(ctx, name)
    match = [e for e in ctx.store.exports(sweep.id) if e.id == export_id]
    if not match:
        raise HTTPException(404, f"sweep {name!r} has no export {export_id}")
    return _attachment(match[0].content, match[0].format, name)


@router.get("/sweeps/{name}/export/{fmt}", response_class=PlainTextResponse)
def download_export(ctx: Ctx, name: SweepName, fmt: ExportFormat) -> PlainTextResponse:
    """The large-run config of the current fit in `fmt`, as a file download."""
    sweep = require_sweep(ctx, name)
    refusal = artifacts.format_refusal(sweep, fmt)
    if refusal:
        raise HTTPException(422, refusal)
    try:
        exp = artifacts.get_export(ctx.store, sweep, fmt, ctx.picks)
    except artifacts.FitUnavailable as exc:
        raise _unavailable(exc) from exc
    return _attachment(exp.content, fmt, name)


_MEDIA = {"png": "image/png", "svg": "image/svg+xml"}


def _attachment(content: str, fmt: str, sweep: str) -> PlainTextResponse:
    fname = f"{sweep}-{artifacts.export_filename(fmt)}"
    media = "application/json" if fname.endswith(".json") else "application/yaml"
    return PlainTextResponse(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{fname}"'},
    )
