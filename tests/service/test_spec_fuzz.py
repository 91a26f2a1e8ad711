"""Property-based fuzzing of sweep definitions: the shipped specs, mutated by Hypothesis (values
swapped for odd ones, keys dropped or added, hostile constraints and fixed values, broken bytes,
duplicate keys, alias bombs, deep nesting), through the loader `carbs run` uses and through the
service's upload endpoint.

What must hold for every case: no traceback (only SpecError from the loader), no HTTP 500, no
hang (a bounded time per case), the HTTP verdict agrees with the loader's, and nothing invalid
is accepted: a spec that loads passes `assert_sound`, an independent check of what the optimizer
and the trainer rely on; a mutation that makes a spec invalid by construction must be refused.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_helpers import LiveServer, start_server

from carbs.errors import SpecError
from experiments.entrypoints import LOCAL, SERVICE
from experiments.spec import SweepSpec, parse_spec

pytestmark = pytest.mark.slow

SWEEPS = Path(__file__).resolve().parents[2] / "experiments" / "sweeps"
BASES = {p.name: yaml.safe_load(p.read_text()) for p in sorted(SWEEPS.glob("*.yaml"))}
# CI runs the same 1,000 cases every time; CARBS_FUZZ_CASES=N CARBS_FUZZ_EXPLORE=1 draws new ones
CASES = int(os.environ.get("CARBS_FUZZ_CASES", "1000"))
EXPLORE = bool(os.environ.get("CARBS_FUZZ_EXPLORE"))
# the most one case may take before it counts as a hang: generous, since the machine may be
# shared (a 0.1 s load measured 3.9 s under load); a YAML bomb or a runaway expression takes
# minutes or never ends, far past these
LOADER_S, HTTP_S = 15.0, 30.0

ODD_VALUES = [
    math.inf,
    -math.inf,
    math.nan,
    -1,
    0,
    1,
    0.5,
    2**63,
    -(2**63),
    10**30,
    1e-320,
    1e308,
    True,
    None,
    "",
    "abc",
    "1e5",
    [],
    [1, 2],
    {},
    {"a": 1},
    "models.workload:train_moe",
    ".rel:fn",
    "os:system",
    "no_such_module_xyz:fn",
    "a:b:c",
    "experiments.toy_objectives:chinchilla_toy",
]
HOSTILE_CONSTRAINTS = [  # each makes any spec invalid
    "9**9**9 > 1",
    "2 ** (3 ** 4) > 1",
    "__import__('os').system('true')",
    "(1).real > 1",
    "",
    "1 >",
    "(" * 300 + "1" + ")" * 300,
    "not " * 5000 + "1",
    "lambda: 1",
    "[x for x in ()]",
    "1 > 'a'",
    "1/0 > 1",
    "open('/etc/passwd')",
]
PLAIN_CONSTRAINTS = [  # valid or not depending on the spec's names
    "d_model % n_heads == 0",
    "top_k <= n_experts",
    "tokens > 0",
    "n_params ** 2 > 1",
    "(9**9)**9 > 1",
    "n_params > tokens",
]
HOSTILE_FIXED = [
    {"h": {"()": "subprocess.getoutput", "cmd": "true"}},
    {"_target_": "os.system"},
    {"x": {"__class__": "y"}},
    {"1bad": 1},
    {"deep": [[[[[[[[[[1]]]]]]]]]]},
    {"ok_value": 3, "ok_list": [1, 2, "a"]},
]


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _mappings(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        yield path
        for k, v in data.items():
            yield from _mappings(v, (*path, k))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


def _nonfinite(v: Any) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


@st.composite
def mutated_specs(draw: st.DrawFn) -> tuple[str | bytes, str, bool]:
    """(text, what was done, must_refuse): must_refuse when the mutation makes any spec
    invalid by construction."""
    base = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    kind = draw(
        st.sampled_from(
            ["value", "value", "value", "drop", "add", "constraint", "fixed", "seed", "text"]
        )
    )
    if kind == "value":
        path = draw(st.sampled_from(list(_leaves(base))))
        value = draw(st.sampled_from(ODD_VALUES) | st.floats() | st.integers(-(2**40), 2**40))
        _get(base, path[:-1])[path[-1]] = value
        return yaml.safe_dump(base), f"set {path} = {value!r}", _nonfinite(value)
    if kind == "drop":
        path = draw(st.sampled_from([p for p in _leaves(base) if p]))
        parent = _get(base, path[:-1])
        del parent[path[-1]]
        return yaml.safe_dump(base), f"drop {path}", False
    if kind == "add":
        path = draw(st.sampled_from(list(_mappings(base))))
        _get(base, path)["zz_unknown"] = 1
        free_form = path[:2] == ("workload", "fixed")  # the one mapping with any keys
        return yaml.safe_dump(base), f"add zz_unknown under {path}", not free_form
    if kind == "constraint":
        pool = HOSTILE_CONSTRAINTS + PLAIN_CONSTRAINTS
        exprs = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        base["constraints"] = exprs
        hostile = any(e in HOSTILE_CONSTRAINTS for e in exprs)
        return yaml.safe_dump(base), f"constraints {exprs!r}"[:200], hostile
    if kind == "fixed":
        fixed = draw(st.sampled_from(HOSTILE_FIXED))
        base.setdefault("workload", {})["fixed"] = fixed
        return yaml.safe_dump(base), f"fixed {fixed!r}", fixed is not HOSTILE_FIXED[-1]
    if kind == "seed":
        seed = draw(st.sampled_from(["-1", str(-(2**70)), str(2**32), str(2**70), "9" * 5000]))
        text = yaml.safe_dump({**base, "seed": 0}).replace("seed: 0", f"seed: {seed}", 1)
        return text, f"seed {seed[:20]}", True
    return _text_mutation(draw, yaml.safe_dump(base))


def _text_mutation(draw: st.DrawFn, text: str) -> tuple[str | bytes, str, bool]:
    how = draw(st.sampled_from(["truncate", "dup_key", "bytes", "bomb", "deep", "splice"]))
    if how == "truncate":
        cut = draw(st.integers(0, len(text)))
        return text[:cut], f"truncate at {cut}", False
    if how == "dup_key":
        first = text.splitlines()[0]
        return text + first + "\n", f"duplicate {first!r}", True
    if how == "bytes":
        at = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x00", b"\xe9"]))
        return text.encode()[:at] + junk + text.encode()[at:], f"bytes {junk!r} at {at}", True
    if how == "bomb":
        laughs = "".join(
            f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['x'] * 9)}]\n"
            for i in range(8)
        )
        return text + laughs, "alias bomb", True
    if how == "deep":
        depth = draw(st.integers(33, 3000))
        return text + "zz: " + "[" * depth + "]" * depth + "\n", f"nested {depth}", True
    at = draw(st.integers(0, len(text)))
    piece = draw(st.text(max_size=8))
    return text[:at] + piece + text[at:], f"splice {piece!r} at {at}", False


def assert_sound(spec: SweepSpec, text: str | bytes) -> None:
    """What an accepted spec must give the rest of the system, checked independently."""
    raw = text.decode() if isinstance(text, bytes) else text
    _no_duplicate_keys(raw)
    dumped = spec.model_dump(mode="json")
    for path in _leaves(dumped):
        v = _get(dumped, path)
        assert not _nonfinite(v), f"non-finite {path}"
        assert not (isinstance(v, str) and len(v) > 10_000), f"huge string at {path}"
    assert 0 <= spec.seed < 2**32
    for m in _mappings(spec.workload.fixed):
        for k in _get(spec.workload.fixed, m):
            assert isinstance(k, str) and k[:1].isalpha(), f"fixed key {k!r}"
    space = spec.space()
    for p in space.params:
        if p.kind == "categorical":
            assert p.choices and p.default_center() in p.choices
            continue
        lo, hi = p.basic_bounds()
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi, p.name
        for x in [lo + (hi - lo) * i / 10 for i in range(11)]:
            v = p.from_basic(x)
            assert p.min <= v <= p.max, f"{p.name}: {v} outside [{p.min}, {p.max}]"
            if p.multiple_of:
                assert v % p.multiple_of == 0, f"{p.name}: {v} not a multiple"
            if p.is_integer:
                assert float(v).is_integer(), f"{p.name}: {v} not an integer"
    env = space.full(space.center())
    for c in space.constraints:
        start = time.perf_counter()
        c.value(env)  # evaluates, without an error, at the centre
        assert time.perf_counter() - start < 1.0  # a hang guard, not a speed target
    SweepSpec.model_validate(dumped)  # what is stored validates again
    _first_suggestion_is_legal(spec)


def _first_suggestion_is_legal(spec: SweepSpec) -> None:
    """The sweep's own optimizer makes a first suggestion, inside every bound (a negative seed
    or a range with no legal value used to fail or escape only here)."""
    from experiments.rebuild import rebuild_optimizer

    space = spec.space()
    (suggestion,) = rebuild_optimizer(spec, []).suggest(1)
    for p in space.params:
        v = suggestion.params[p.name]
        if p.kind == "categorical":
            assert v in p.choices, f"{p.name}: {v!r}"
        else:
            assert p.min <= v <= p.max, f"suggested {p.name} = {v} outside [{p.min}, {p.max}]"


def _no_duplicate_keys(raw: str) -> None:
    node = yaml.compose(raw, Loader=yaml.SafeLoader)
    stack = [node] if node is not None else []
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            keys = [k.value for k, _ in n.value if isinstance(k, yaml.ScalarNode)]
            assert len(keys) == len(set(keys)), f"duplicate keys accepted: {keys}"
            stack.extend(v for pair in n.value for v in pair)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)


@pytest.fixture(scope="module")
def fuzz_upload_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("specfuzz")
    th, srv = start_server(f"sqlite:///{tmp / 'fuzz.db'}", tmp, run_scheduler=False)
    try:
        yield srv
    finally:
        th.stop()


def test_mutated_specs_never_crash_hang_or_slip_through(fuzz_upload_server: LiveServer) -> None:
    tally = {"cases": 0, "accepted": 0, "refused": 0, "http_201_409": 0, "http_422": 0}
    problems: list[str] = []
    slowest = {"loader": 0.0, "http": 0.0}
    client = httpx.Client(
        base_url=fuzz_upload_server.url,
        headers={"Authorization": f"Bearer {fuzz_upload_server.tokens['alice']}"},
        timeout=HTTP_S,
    )

    @settings(
        max_examples=CASES,
        deadline=None,
        database=None,
        derandomize=not EXPLORE,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=mutated_specs())
    def run(case: tuple[str | bytes, str, bool]) -> None:
        text, what, must_refuse = case
        tally["cases"] += 1
        verdicts = {}
        for label, policy in (("local", LOCAL), ("service", SERVICE)):
            start = time.perf_counter()
            try:
                spec = parse_spec(text, "fuzz.yaml", entrypoints=policy)
                took = time.perf_counter() - start
                verdicts[label] = True
                assert_sound(spec, text)
            except SpecError as exc:
                verdicts[label] = False
                msg = str(exc)
                if not msg.startswith("fuzz.yaml: ") or len(msg.splitlines()) > 40:
                    problems.append(f"unhelpful error for {what}: {msg[:200]}")
            except AssertionError as exc:
                problems.append(f"accepted unsound spec ({what}): {exc}")
            except Exception as exc:  # noqa: BLE001 - a traceback is what we are hunting
                problems.append(f"crash {type(exc).__name__} ({what}): {exc}"[:300])
            if not verdicts.get(label):
                took = time.perf_counter() - start
            slowest["loader"] = max(slowest["loader"], took)
            if took > LOADER_S:
                problems.append(f"loader took {took:.1f} s ({what})")
        if must_refuse and any(verdicts.values()):
            problems.append(f"accepted an invalid spec ({what})")
        tally["accepted" if verdicts.get("local") else "refused"] += 1
        body = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        start = time.perf_counter()
        try:
            r = client.post("/api/sweeps/upload", files={"spec": ("fuzz.yaml", body)})
        except httpx.TimeoutException:
            problems.append(f"HTTP hang ({what})")
            return
        slowest["http"] = max(slowest["http"], time.perf_counter() - start)
        if r.status_code >= 500:
            problems.append(f"HTTP {r.status_code} ({what}): {r.text[:200]}")
        elif verdicts.get("service"):
            ok = r.status_code in (201, 409)  # 409: a same-named sweep with another space
            tally["http_201_409"] += int(ok)
            if not ok:
                problems.append(f"loader accepted, HTTP {r.status_code} ({what}): {r.text[:200]}")
        else:
            tally["http_422"] += int(r.status_code == 422)
            if r.status_code not in (413, 422):
                problems.append(f"loader refused, HTTP {r.status_code} ({what})")

    for base in BASES.values():  # first imports (torch, BoTorch) are not a hang
        assert_sound(parse_spec(yaml.safe_dump(base), "warm-up", entrypoints=LOCAL), "{}")
    run()
    client.close()
    print(
        f"\nspec fuzz: {tally}, slowest loader {slowest['loader']:.3f} s, HTTP {slowest['http']:.3f} s"
    )
    assert tally["cases"] >= CASES
    assert tally["accepted"] > 50 and tally["refused"] > 300  # the mutations reach both sides
    assert problems == [], "\n".join(problems[:30])
    assert httpx.get(fuzz_upload_server.url + "/api/health", timeout=5).json()["ok"]
