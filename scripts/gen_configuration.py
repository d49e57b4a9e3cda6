#!/usr/bin/env python3
"""Write docs/configuration.md from the Settings fields (names, defaults, types, descriptions).

    .venv/bin/python scripts/gen_configuration.py          # or: make docs

tests/unit/test_configuration_doc.py fails when the committed file differs from what this
renders, so the reference cannot drift from the code.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from cryptolab.settings import ENV_PREFIX, Settings

OUT = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
HEADER = """# Configuration

Generated from `cryptolab/settings.py` by `scripts/gen_configuration.py` (`make docs`); do not
edit by hand.

One frozen `Settings` object. Precedence: command-line flag > environment variable > `.env` file
(git-ignored; only its `CRYPTOLAB_*` keys are read) > default. An unknown `CRYPTOLAB_*` variable
or `.env` key is an error naming the known ones, so a typo never falls back to a default. Secrets
are held as `SecretStr`: never printed, masked in logs and errors.

| variable | default | type | meaning |
|---|---|---|---|
"""


def _type(annotation: Any) -> str:
    """A short, readable type: ``PLAINTEXT|SSL``, ``number``, ``path``, ``secret``..."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is Literal:
        return " \\| ".join(f"`{v}`" for v in typing.get_args(annotation))
    if origin is tuple:
        return "list (comma-separated)"
    names = {bool: "true/false", int: "integer", float: "number", str: "text", Path: "path",
             SecretStr: "secret"}  # fmt: skip
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(metadata: list[Any]) -> str:
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    found = [f"{words[k]} {getattr(m, k)}" for m in metadata for k in words if hasattr(m, k)]
    return f" ({', '.join(found)})" if found else ""


def _default(name: str, value: Any) -> str:
    if value is None:
        return "unset"
    if name == "cache_dir":
        return "`~/.cache/cryptolab`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        variable = f"`{ENV_PREFIX}{name.upper()}`"
        kind = _type(field.annotation) + _bounds(field.metadata)
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| {variable} | {_default(name, field.default)} | {kind} | {meaning} |")
    return HEADER + "\n".join(rows) + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
