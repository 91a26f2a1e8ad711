"""Checks of sweep-definition values that pydantic's types cannot express.

Why apart from the models: each check is a small pure function raising ValueError with the fix,
so `spec.py` reads as the schema and these read as the rules: fixed values are plain data (no
keys that construct objects in a consumer such as `logging.config.dictConfig`), numbers are
finite, and every searched parameter has at least one legal value.
"""

from __future__ import annotations

import math
import re
from typing import Any

KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
NESTED_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
MAX_PLAIN_DEPTH = 8
MAX_PLAIN_VALUES = 2_000
MAX_STRING = 10_000
MAX_EXACT_INT = 2**53  # integers beyond this are not exact as floats (the optimizer's space)
Scalar = str | int | float | bool | None


def check_plain_data(value: Any, what: str) -> None:
    """Raise ValueError unless `value` is plain data: scalars, lists and string-keyed mappings,
    finite numbers, keys that are names (letters, digits, `_ . -`, starting with a letter),
    at most `MAX_PLAIN_DEPTH` deep and `MAX_PLAIN_VALUES` values in all."""
    count = 0
    stack: list[tuple[Any, str, int]] = [(value, what, 0)]
    while stack:
        v, path, depth = stack.pop()
        count += 1
        if count > MAX_PLAIN_VALUES:
            raise ValueError(f"{what}: more than {MAX_PLAIN_VALUES} values; keep it small")
        if depth > MAX_PLAIN_DEPTH:
            raise ValueError(f"{path}: nested deeper than {MAX_PLAIN_DEPTH} levels")
        if isinstance(v, dict):
            pattern = KEY_RE if depth == 0 else NESTED_KEY_RE
            for k, item in v.items():
                if not isinstance(k, str) or not pattern.match(k):
                    raise ValueError(
                        f"{path}: key {k!r} is not allowed; keys are names (letters, digits and "
                        "_, starting with a letter); keys such as '()' or '_target_' that make "
                        "objects are refused"
                    )
                stack.append((item, f"{path}.{k}", depth + 1))
        elif isinstance(v, list):
            stack.extend((item, f"{path}.{i}", depth + 1) for i, item in enumerate(v))
        else:
            check_scalar(v, path)


def check_scalar(v: Any, path: str) -> None:
    """Raise ValueError unless `v` is a string (bounded), a bool, None or a finite number."""
    if v is None or isinstance(v, bool):
        return
    if isinstance(v, str):
        if len(v) > MAX_STRING:
            raise ValueError(f"{path}: a string of {len(v)} characters; at most {MAX_STRING}")
        return
    if isinstance(v, int):
        if abs(v) > 10**300:
            raise ValueError(f"{path}: the integer is out of range (|x| <= 1e300)")
        return
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{path}: {v} is not a finite number")
        return
    raise ValueError(f"{path}: {type(v).__name__} values are not allowed; use plain data")


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_center(center: Any, lo: float, hi: float) -> None:
    """A numeric parameter's `center` is a finite number within its bounds."""
    if not is_number(center) or not math.isfinite(float(center)):
        raise ValueError(f"`center` must be a finite number, got {center!r}")
    if not lo <= float(center) <= hi:
        raise ValueError(f"center {center} is outside [min, max] = [{lo}, {hi}]")


def check_integer_range(lo: float, hi: float, multiple_of: int | None) -> None:
    """An integer (or multiple-of) parameter has at least one legal value, exactly representable."""
    if max(abs(lo), abs(hi)) > MAX_EXACT_INT:
        raise ValueError(f"integer bounds must lie within +-2**53; got [{lo}, {hi}]")
    step = multiple_of or 1
    first = math.ceil(lo / step) * step
    if first > hi:
        what = f"multiple of {multiple_of}" if multiple_of else "integer"
        raise ValueError(
            f"no {what} lies in [min, max] = [{lo}, {hi}]; widen the range"
            + (" or lower `multiple_of`" if multiple_of else "")
        )


def check_choices(choices: list[Any]) -> None:
    """Categorical choices: 1..256 distinct plain scalars."""
    if len(choices) > 256:
        raise ValueError(f"{len(choices)} choices; at most 256")
    for i, c in enumerate(choices):
        if isinstance(c, dict | list):
            raise ValueError(f"choice {i} ({c!r}) must be a plain value (number, string, bool)")
        check_scalar(c, f"choice {i}")
    for i, c in enumerate(choices):
        if any(c == earlier for earlier in choices[:i]):  # == as `choices.index` compares
            raise ValueError(f"choice {c!r} is listed twice (or equals another); keep one")


FEASIBILITY_SAMPLES = 2_000


def some_config_is_feasible(space: Any) -> bool:
    """Whether the centre, or one of `FEASIBILITY_SAMPLES` seeded uniform draws of the search
    space, satisfies every constraint. Why at load: a space with no feasible point is accepted
    today and fails at the first suggestion, after the sweep was queued."""
    import random

    if space.is_feasible(space.canonical(space.center())):  # the centre on the legal grid
        return True
    rng = random.Random(0)
    bounds = [p.basic_bounds() for p in space.params]
    for _ in range(FEASIBILITY_SAMPLES):
        point = space.canonical(space.from_basic([rng.uniform(lo, hi) for lo, hi in bounds]))
        if space.is_feasible(point):
            return True
    return False


def check_basic_bounds(name: str, lo: float, hi: float) -> None:
    """The optimizer's transformed bounds must be finite and ordered (no overflow from `scale`)."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(
            f"{name}: the bounds overflow the search space's transform (got [{lo}, {hi}]); "
            "use a smaller range or a larger `scale`"
        )
