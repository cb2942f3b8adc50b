"""The query language of conditional routing (a MongoDB-like subset)."""
from __future__ import annotations

import re
from typing import Any

COMPARE = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex"})
LOGICAL = frozenset({"$and", "$or"})
_MISSING = object()


class QueryError(ValueError):
    """A query that is not well formed; ``path`` is where, below the query."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def check(query: Any, path: str = "") -> None:
    """Raise QueryError for an unknown operator or a malformed operand."""
    if not isinstance(query, dict):
        raise QueryError("a query is an object", path)
    for key, value in query.items():
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise QueryError(f"{key} takes a non-empty array of queries", f"{path}.{key}")
            for i, sub in enumerate(value):
                check(sub, f"{path}.{key}[{i}]")
        elif key.startswith("$"):
            raise QueryError(f"unknown operator {key!r}", f"{path}.{key}")
        elif isinstance(value, dict):
            for op, operand in value.items():
                if op not in COMPARE:
                    raise QueryError(f"unknown operator {op!r}", f"{path}.{key}.{op}")
                if op in ("$in", "$nin") and not isinstance(operand, list):
                    raise QueryError(f"{op} takes an array", f"{path}.{key}.{op}")
                if op == "$regex":
                    try:
                        re.compile(str(operand))
                    except re.error as e:
                        raise QueryError(f"bad regular expression: {e}", f"{path}.{key}.{op}") from None


def lookup(context: dict[str, Any], dotted: str) -> Any:
    node: Any = context
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _compare(op: str, value: Any, operand: Any) -> bool:
    if op == "$eq":
        return value is not _MISSING and value == operand
    if op == "$ne":
        return value is _MISSING or value != operand
    if op == "$in":
        return value is not _MISSING and value in operand
    if op == "$nin":
        return value is _MISSING or value not in operand
    if op == "$regex":
        return value is not _MISSING and re.search(str(operand), str(value)) is not None
    a, b = _number(value), _number(operand)
    if a is None or b is None:
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def matches(query: dict[str, Any], context: dict[str, Any]) -> bool:
    """Whether ``context`` satisfies every clause of ``query``."""
    for key, cond in query.items():
        if key == "$and":
            if not all(matches(q, context) for q in cond):
                return False
        elif key == "$or":
            if not any(matches(q, context) for q in cond):
                return False
        else:
            value = lookup(context, key)
            if isinstance(cond, dict):
                if not all(_compare(op, value, operand) for op, operand in cond.items()):
                    return False
            elif value is _MISSING or value != cond:
                return False
    return True
