"""Sub-commands of `carbs` that belong to the service: serve, submit, token, remote.

`experiments.cli` calls `register` with its sub-parsers; each command added here sets `func`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from experiments.service.client import SERVER_ENV, ServiceClient, ServiceError, load_token


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the service's sub-commands to the `carbs` parser."""
    serve = sub.add_parser("serve", help="run the HTTP API, the web dashboard and the scheduler")
    _storage_arg(serve)
    serve.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    serve.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS"), help="existing Ray cluster"
    )
    serve.add_argument("--max-running", type=int, default=2, help="sweeps run at once")
    serve.add_argument(
        "--no-scheduler", action="store_true", help="serve reads only; run no submitted sweep"
    )
    serve.add_argument(
        "--cache-dir", help="folder for rendered plots and driver logs (default: a temp folder)"
    )
    serve.add_argument(
        "--allow-entrypoint",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="a workload, cost or size function submitted specs may name (repeatable; "
        "MODULE:* allows a whole module); also $CARBS_ALLOWED_ENTRYPOINTS, comma-separated. "
        "Allowed always, unless --no-default-entrypoints: the built-in MoE workload and the "
        "bundled toy objective",
    )
    serve.add_argument(
        "--no-default-entrypoints",
        action="store_true",
        help="allow only the --allow-entrypoint ones, not the built-in workloads",
    )
    serve.add_argument(
        "--ray-num-cpus", type=int, help="CPUs of the service's own local Ray (default: all)"
    )
    serve.set_defaults(func=cmd_serve)

    submit = sub.add_parser("submit", help="submit a sweep YAML to a carbs service")
    submit.add_argument("spec", help="sweep definition (YAML)")
    _server_arg(submit)
    submit.set_defaults(func=cmd_submit)

    token = sub.add_parser("token", help="API tokens of the service (admin, local database)")
    tsub = token.add_subparsers(dest="token_command", required=True)
    create = tsub.add_parser("create", help="create a user's token and print it once")
    create.add_argument("user", help="user name the token belongs to (created if new)")
    create.add_argument("--admin", action="store_true", help="may change every sweep")
    create.add_argument("--label", help="what the token is for")
    _storage_arg(create)
    create.set_defaults(func=cmd_token_create)
    revoke = tsub.add_parser("revoke", help="revoke every token of a user")
    revoke.add_argument("user", help="user whose tokens to revoke")
    _storage_arg(revoke)
    revoke.set_defaults(func=cmd_token_revoke)
    lst = tsub.add_parser("list", help="users and their live tokens")
    _storage_arg(lst)
    lst.set_defaults(func=cmd_token_list)

    remote = sub.add_parser("remote", help="sweeps on a carbs service: list, status, cancel")
    rsub = remote.add_subparsers(dest="remote_command", required=True)
    rl = rsub.add_parser("list", help="every sweep on the service")
    _server_arg(rl)
    rl.set_defaults(func=cmd_remote_list)
    rs = rsub.add_parser("status", help="one sweep's status and counts")
    rs.add_argument("sweep", help="name of the sweep")
    _server_arg(rs)
    rs.set_defaults(func=cmd_remote_status)
    rc = rsub.add_parser("cancel", help="cancel your sweep")
    rc.add_argument("sweep", help="name of the sweep")
    _server_arg(rc)
    rc.set_defaults(func=cmd_remote_cancel)


def _storage_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage", help="SQLAlchemy URL (default: $CARBS_STORAGE or sqlite:///carbs.db)"
    )


def _server_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        default=os.environ.get(SERVER_ENV),
        help=f"service URL, e.g. http://host:8000 (default: ${SERVER_ENV})",
    )


def _storage(args: argparse.Namespace) -> str:
    from experiments.spec import DEFAULT_STORAGE

    return args.storage or os.environ.get("CARBS_STORAGE", DEFAULT_STORAGE)


# --- serve -----------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import torch
    import uvicorn

    # the server fits GPs and scaling laws; one thread each keeps requests from thrashing the cores
    torch.set_num_threads(1)

    from experiments.service.app import create_app
    from experiments.service.context import ServiceSettings
    from experiments.store.startup import open_store

    # a bad store is one line (exit 3) before the server starts; the service creates its store
    open_store(_storage(args), create=True).dispose()
    logging.getLogger("experiments").setLevel(logging.INFO)
    try:
        policy = entrypoint_policy(args)
    except ValueError as exc:
        print(f"error: --allow-entrypoint: {exc}", file=sys.stderr)
        return 2
    settings = ServiceSettings(
        storage=_storage(args),
        ray_address=args.address,
        max_running=args.max_running,
        run_scheduler=not args.no_scheduler,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        entrypoints=policy,
        ray_num_cpus=args.ray_num_cpus,
    )
    from experiments.redact import redact_text

    print(
        f"carbs service on http://{args.host}:{args.port} (dashboard /, API docs /api-docs), "
        f"store {redact_text(settings.storage)}; specs may name: "
        f"{', '.join(sorted(policy.allowed or ())) or 'nothing'}",
        flush=True,
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


def entrypoint_policy(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The service's allow-list from the options and $CARBS_ALLOWED_ENTRYPOINTS."""
    from experiments.entrypoints import SERVICE_DEFAULT, EntryPointPolicy

    env = [e.strip() for e in os.environ.get(ALLOWED_ENV, "").split(",") if e.strip()]
    base = () if args.no_default_entrypoints else SERVICE_DEFAULT
    return EntryPointPolicy.allow_only([*base, *env, *args.allow_entrypoint])


ALLOWED_ENV = "CARBS_ALLOWED_ENTRYPOINTS"


# --- tokens (local database, admin) ----------------------------------------------------------
def cmd_token_create(args: argparse.Namespace) -> int:
    from experiments.service.auth import create_token
    from experiments.store.startup import open_store

    store = open_store(_storage(args), create=True)  # the first token may come before any sweep
    try:
        token = create_token(store.session, args.user, admin=args.admin, label=args.label)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    print(token)
    print(
        f"token for {args.user}{' (admin)' if args.admin else ''}: shown once, stored hashed. "
        "Give it to the user; they set CARBS_TOKEN or write it to ~/.config/carbs/token",
        file=sys.stderr,
    )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from experiments.service.auth import revoke_tokens
    from experiments.store.startup import open_store

    store = open_store(_storage(args))
    n = revoke_tokens(store.session, args.user)
    store.dispose()
    print(f"revoked {n} token(s) of {args.user}")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from experiments.store.startup import open_store
    from experiments.store.tokens import ApiToken, ApiUser

    store = open_store(_storage(args))
    with store.session() as s:
        users = list(s.scalars(select(ApiUser).order_by(ApiUser.name)))
        for u in users:
            toks = list(
                s.scalars(
                    select(ApiToken).where(ApiToken.user_id == u.id, ApiToken.revoked_at.is_(None))
                )
            )
            last = max((t.last_used_at for t in toks if t.last_used_at), default=None)
            print(
                f"{u.name}{' (admin)' if u.is_admin else ''}: {len(toks)} live token(s), "
                f"last used {last.isoformat() if last else 'never'}"
            )
    store.dispose()
    if not users:
        print("no users yet: `carbs token create USER`")
    return 0


# --- client side -----------------------------------------------------------------------------
def _client(args: argparse.Namespace) -> ServiceClient:
    if not args.server:
        raise ServiceError(
            0,
            f"no service given: pass --server http://HOST:PORT or set ${SERVER_ENV} "
            "(to run a sweep on this machine against a local database, use `carbs run SPEC.yaml`)",
        )
    return ServiceClient(args.server, load_token())


def _run_client(args: argparse.Namespace, fn) -> int:  # type: ignore[no-untyped-def]
    try:
        with _client(args) as c:
            return int(fn(c) or 0)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_submit(args: argparse.Namespace) -> int:
    path = Path(args.spec)
    if not path.is_file():
        print(f"error: {path}: no such sweep file", file=sys.stderr)
        return 2

    def go(c: ServiceClient) -> int:
        r = c.submit(path.read_text())
        verb = "resumed" if r["resumed"] else "submitted"
        print(f"{verb} sweep {r['name']!r} (owner {r['owner']}): {r['status']}")
        if r.get("note"):
            print(f"note: {r['note']}")
        print(f"dashboard: {c.server}{r['url']}")
        return 0

    return _run_client(args, go)


def cmd_remote_list(args: argparse.Namespace) -> int:
    def go(c: ServiceClient) -> int:
        rows = c.sweeps()
        if not rows:
            print(f"no sweeps on {c.server}")
        for r in rows:
            print(_line(r))
        return 0

    return _run_client(args, go)


def cmd_remote_status(args: argparse.Namespace) -> int:
    def go(c: ServiceClient) -> int:
        r = c.sweep(args.sweep)
        print(_line(r))
        for e in (r.get("live") or {}).get("events") or []:
            print(f"  {e}")
        return 0

    return _run_client(args, go)


def cmd_remote_cancel(args: argparse.Namespace) -> int:
    def go(c: ServiceClient) -> int:
        r = c.cancel(args.sweep)
        print(f"sweep {r['name']!r}: {r['status']}")
        return 0

    return _run_client(args, go)


def _line(r: dict) -> str:  # type: ignore[type-arg]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items())) or "no trials"
    best = "-" if r.get("best_loss") is None else f"{r['best_loss']:.4f}"
    return f"{r['name']}: {r['status']} (owner {r['owner'] or '-'}); {counts}; best loss {best}"
