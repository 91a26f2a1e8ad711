"""Bounded arithmetic expressions over parameter names: the grammar of constraints and conditions.

Why its own interpreter with limits: a sweep file is untrusted where a shared service runs it, and
an expression like ``9**9**9 > n`` would hold the interpreter (and the GIL) for hours. So an
expression is parsed once with `ast`, refused unless it is short, shallow and made only of
arithmetic, comparisons and and/or/not, and evaluated with every intermediate number bounded:
a power needs a literal exponent, and any value past `MAX_MAGNITUDE` is an error, not a bignum.
Parsing and evaluating one expression take microseconds whatever it says.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from typing import Any

MAX_LENGTH = 500  # characters: far longer than any real constraint, short enough to parse fast
MAX_DEPTH = 32  # nesting of the syntax tree
MAX_EXPONENT = 64  # |literal exponent| of `**`
MAX_MAGNITUDE = 1e300  # any intermediate value beyond this is refused (no exponent towers)

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Compare,
    ast.Name,
    ast.Load,
    ast.Constant,
    *_BINOPS,
    *_CMPOPS,
)
GRAMMAR = "arithmetic (+ - * / // % and ** with a number exponent), comparisons and and/or/not"


class ExpressionError(ValueError):
    """An expression is refused (grammar, size, depth) or cannot be evaluated (bounds, types)."""


def parse_expression(expr: str) -> ast.Expression:
    """Parse and check an expression; ExpressionError says what is wrong and what is allowed."""
    if not isinstance(expr, str):
        raise ExpressionError(f"expected a string expression, got {type(expr).__name__}")
    if not expr.strip():
        raise ExpressionError("the expression is empty; write e.g. `d_model % n_heads == 0`")
    if len(expr) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(expr)} characters long; at most {MAX_LENGTH} are allowed"
        )
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = getattr(exc, "msg", None) or type(exc).__name__
        raise ExpressionError(
            f"{expr!r} is not a valid expression ({reason}); use {GRAMMAR}"
        ) from exc
    _check_tree(expr, tree)
    return tree


def _check_tree(expr: str, tree: ast.Expression) -> None:
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"{expr!r} nests deeper than {MAX_DEPTH} levels; simplify it")
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(f"{expr!r}: {type(node).__name__} is not allowed; use {GRAMMAR}")
        if isinstance(node, ast.Constant):
            _check_constant(expr, node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            _check_exponent(expr, node.right)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_constant(expr: str, value: Any) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if not isinstance(value, int | float):
        raise ExpressionError(f"{expr!r}: the constant {value!r} is not a number, string or bool")
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise ExpressionError(f"{expr!r}: the constant {value!r} is out of range (|x| <= 1e300)")


def _check_exponent(expr: str, node: ast.AST) -> None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > MAX_EXPONENT:
        raise ExpressionError(
            f"{expr!r}: the exponent of ** must be a number literal of at most {MAX_EXPONENT} "
            "(e.g. `d_model ** 2`)"
        )


def names_in(tree: ast.Expression) -> set[str]:
    """Every variable name the expression reads."""
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def evaluate(tree: ast.Expression, env: Mapping[str, Any]) -> Any:
    """The expression's value over `env`; ExpressionError for an unknown name, a value out of
    bounds, a division by zero or a type mismatch."""
    try:
        return _eval(tree.body, env)
    except ExpressionError:
        raise
    except KeyError as exc:
        raise ExpressionError(f"unknown name {exc.args[0]!r}") from exc
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise ExpressionError(f"{type(exc).__name__}: {exc}") from exc


def _bounded(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and math.isnan(value):
            raise ExpressionError("the value is not a number (NaN)")
        if abs(value) > MAX_MAGNITUDE:
            raise ExpressionError(f"a value exceeds {MAX_MAGNITUDE:g} in magnitude")
    return value


def _power(base: Any, exp: Any) -> Any:
    if isinstance(base, int | float) and isinstance(exp, int | float):
        magnitude = abs(float(base))
        if magnitude > 1 and float(exp) * math.log10(magnitude) > math.log10(MAX_MAGNITUDE):
            raise ExpressionError(f"{base!r} ** {exp!r} exceeds {MAX_MAGNITUDE:g}")
    return operator.pow(base, exp)


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return _bounded(env[node.id])
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        if isinstance(left, str) or isinstance(right, str):
            raise ExpressionError("arithmetic on strings is not allowed; compare them instead")
        if isinstance(node.op, ast.Pow):
            return _bounded(_power(left, right))
        return _bounded(_BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not v
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BoolOp):
        vals = (_eval(v, env) for v in node.values)
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, env)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    raise ExpressionError(f"unsupported expression node {type(node).__name__}")
