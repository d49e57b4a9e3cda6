"""Reject malformed callback requests with a 400 and a reason before Dash sees them.

The page always posts ``/_dash-update-component`` bodies of one shape. Anything else (a script,
a fuzzer, a stale tab after an upgrade) used to reach Dash's dispatcher, which answered
``500 Internal Server Error`` and logged a traceback for a missing key or a wrong type.
"""

from __future__ import annotations

from typing import Any

import dash
from flask import jsonify, request

ENDPOINT = "_dash-update-component"
MAX_BODY_BYTES = 1_000_000


def install(app: dash.Dash) -> None:
    """Check every callback request of ``app`` first."""

    @app.server.before_request
    def _check_callback_body() -> Any:
        if request.method != "POST" or not request.path.endswith("/" + ENDPOINT):
            return None
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return jsonify(error=f"request body larger than {MAX_BODY_BYTES} bytes"), 413
        problem = body_problem(app.callback_map, request.get_json(silent=True))
        if problem:
            return jsonify(error=problem), 400
        return None


def _ids(deps: Any) -> list[tuple[str, str]]:
    return [(str(d.get("id")), str(d.get("property"))) for d in deps]


def _matches(sent: Any, expected: list[tuple[str, str]], what: str) -> str | None:
    if not isinstance(sent, list) or len(sent) != len(expected):
        return f"'{what}' must be a list of {len(expected)} items"
    for item, (cid, prop) in zip(sent, expected, strict=True):
        if not isinstance(item, dict) or (item.get("id"), item.get("property")) != (cid, prop):
            return f"'{what}' does not match the callback ({cid}.{prop} expected)"
    return None


def _outputs(key: str) -> list[tuple[str, str]]:
    """``..a.x...b.y..`` (several outputs) or ``a.x`` (one) -> [(id, property), ...]."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [tuple(p.rsplit(".", 1)) for p in parts]  # type: ignore[misc]


def body_problem(callbacks: dict[str, Any], body: Any) -> str | None:
    """None for a well-formed callback request, else what is wrong with it."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    key = body.get("output")
    if not isinstance(key, str) or key not in callbacks:
        return "unknown callback output"
    callback = callbacks[key]
    outputs = body.get("outputs")
    expected = _outputs(key)
    if isinstance(outputs, dict) and len(expected) == 1 and not key.startswith(".."):
        outputs = [outputs]
    problem = (
        _matches(outputs, expected, "outputs")
        or _matches(body.get("inputs"), _ids(callback.get("inputs", [])), "inputs")
        or _matches(body.get("state", []), _ids(callback.get("state", [])), "state")
    )
    if problem:
        return problem
    changed = body.get("changedPropIds", [])
    known = {f"{cid}.{prop}" for cid, prop in _ids(callback.get("inputs", []))}
    if not isinstance(changed, list) or not all(isinstance(c, str) and c in known for c in changed):
        return "'changedPropIds' must name inputs of the callback"
    return None
