"""Deliberately broken builds of cryptolab, to prove the reliability checks catch what they claim
to catch. Nothing here is imported by cryptolab, and cryptolab has no hooks for it.

Put this directory on PYTHONPATH and set ``CL_TEST_MUTANT`` to a name in :data:`MUTANTS`:
Python imports this file at start-up (the ``sitecustomize`` hook of :mod:`site`), and the named
defect is patched into the cryptolab module it breaks when that module is first imported.
tests/reliability/pipeline.py does both for every pipeline process when ``CL_TEST_MUTANT`` is
set, e.g. ``CL_TEST_MUTANT=drop-every-1000th pytest tests/reliability/test_fault_spark.py``.

``drop-every-1000th``: the store sink silently leaves out every 1,000th valid trade it writes
(counted per process), as a sink that loses rows would.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


def _drop_every_1000th(sink: ModuleType) -> None:
    import pyarrow as pa

    split_trades = sink.split_trades
    written = [0]

    def broken(table: Any) -> tuple[Any, Any]:
        valid, bad = split_trades(table)
        keep = [(written[0] + i + 1) % 1000 != 0 for i in range(valid.num_rows)]
        written[0] += valid.num_rows
        return valid.filter(pa.array(keep, pa.bool_())), bad

    setattr(sink, "split_trades", broken)  # noqa: B010 (mypy: ModuleType has no such attribute)


MUTANTS: dict[str, tuple[str, Callable[[ModuleType], None]]] = {
    "drop-every-1000th": ("cryptolab.streaming.sink", _drop_every_1000th),
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds ``module`` like the normal path finder, then patches it right after it executes."""

    def __init__(self, module: str, patch: Callable[[ModuleType], None]) -> None:
        self.module, self.patch = module, patch

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        loader, patch = spec.loader, self.patch
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)
            sys.stderr.write(f"CL_TEST_MUTANT: {fullname} patched\n")

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _activate(name: str) -> None:
    if name not in MUTANTS:
        raise SystemExit(f"CL_TEST_MUTANT={name!r} is not one of {', '.join(MUTANTS)}")
    sys.meta_path.insert(0, _PatchOnImport(*MUTANTS[name]))


if os.environ.get("CL_TEST_MUTANT"):
    _activate(os.environ["CL_TEST_MUTANT"])
