"""Which `module:function` entry points a sweep may name, and importing the allowed ones.

Why a policy object: on your own machine `carbs run` runs your own code, so every importable
callable is allowed (`LOCAL`). A shared `carbs serve` runs strangers' specs: a spec naming
`logging.config:dictConfig` as its cost function, with a `{"()": "subprocess.getoutput"}`
handler in its fixed values, would run shell commands as the service. There only the entry
points the operator allowed (`carbs serve --allow-entrypoint`) may be named, checked when a spec
is submitted (no import), again before a driver runs it, and again before a fit prices or sizes
a config; nothing else is ever imported.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

ENTRYPOINT_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
ENTRYPOINT_FORM = "package.module:function (dotted module names, no relative paths)"

MOE_WORKLOAD = "models.workload:train_moe"
MOE_COST = "models.accounting:training_flops_for_params"
MOE_SIZE = "models.accounting:active_params_for_params"
TOY_WORKLOAD = "experiments.toy_objectives:chinchilla_toy"
TOY_COST = "experiments.toy_objectives:chinchilla_toy_cost"

# What a service allows when its operator names nothing: the built-in MoE trainer and its
# FLOP and size counters, and the bundled analytic toy objective (pure arithmetic on numbers).
SERVICE_DEFAULT = (MOE_WORKLOAD, MOE_COST, MOE_SIZE, TOY_WORKLOAD, TOY_COST)


class EntryPointRefused(ValueError):
    """An entry point is malformed, not allowed here, or does not import; says which and why."""


def check_form(entry: str) -> str:
    """`entry` itself when it reads `package.module:function`; EntryPointRefused otherwise."""
    if not isinstance(entry, str) or not ENTRYPOINT_RE.match(entry):
        raise EntryPointRefused(f"{entry!r} is not an entry point; write {ENTRYPOINT_FORM}")
    return entry


@dataclass(frozen=True)
class EntryPointPolicy:
    """`allowed` None: any importable callable (your own machine). Otherwise exact entries
    (`pkg.mod:fn`) or whole modules (`pkg.mod:*`)."""

    allowed: frozenset[str] | None = None

    @classmethod
    def allow_only(cls, entries: Iterable[str]) -> EntryPointPolicy:
        items = frozenset(entries)
        for e in items:  # `pkg.mod:*` is checked as the module part of an entry point
            check_form(f"{e[:-2]}:any" if e.endswith(":*") else e)
        return cls(items)

    @property
    def trusts_all(self) -> bool:
        return self.allowed is None

    def permits(self, entry: str) -> bool:
        if self.allowed is None:
            return True
        module = entry.partition(":")[0]
        return entry in self.allowed or f"{module}:*" in self.allowed

    def check(self, entry: str) -> str:
        """`entry` when well-formed and allowed; EntryPointRefused says how to get it allowed."""
        check_form(entry)
        if not self.permits(entry):
            allowed = ", ".join(sorted(self.allowed or ())) or "none"
            raise EntryPointRefused(
                f"{entry!r} is not allowed on this service; the operator allows: {allowed} "
                "(`carbs serve --allow-entrypoint MODULE:FUNCTION` adds one)"
            )
        return entry

    def resolve(self, entry: str) -> Callable[..., Any]:
        """Import an allowed entry point; EntryPointRefused names the missing part."""
        self.check(entry)
        return import_entrypoint(entry)


LOCAL = EntryPointPolicy(None)
SERVICE = EntryPointPolicy(frozenset(SERVICE_DEFAULT))


def import_entrypoint(entry: str) -> Callable[..., Any]:
    """Import `package.module:function`; EntryPointRefused says which part is missing."""
    module_name, _, attr = check_form(entry).partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
        raise EntryPointRefused(
            f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise EntryPointRefused(f"module {module_name!r} has no callable {attr!r}")
    return fn
