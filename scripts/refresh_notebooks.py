"""Re-execute the committed notebooks with their default parameters, to refresh the outputs
that `pytest --nbval` compares against (after changing a notebook or what it shows).

    .venv/bin/python scripts/refresh_notebooks.py [NAME ...]      # or: make notebooks

Each notebook runs with papermill into a temporary file next to it, which then replaces it, so
a failing notebook leaves the committed one untouched. CRYPTOLAB_* variables are ignored (the
outputs must not depend on one machine's settings), as in the tests.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat

from cryptolab.report import execute

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _strip_run_metadata(path: Path) -> None:
    """Drop papermill's timings and paths, so a refresh only changes what the notebook shows."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def main(names: list[str]) -> int:
    for key in [k for k in os.environ if k.startswith("CRYPTOLAB_") and k != "CRYPTOLAB_CACHE_DIR"]:
        del os.environ[key]
    paths = [NOTEBOOKS / f"{Path(n).stem}.ipynb" for n in names] or sorted(
        NOTEBOOKS.glob("[0-9]*.ipynb")
    )
    for path in paths:
        started = time.perf_counter()
        scratch = path.with_name(f".{path.stem}.refresh.ipynb")
        try:
            execute(path, scratch, {}, cwd=NOTEBOOKS)
            _strip_run_metadata(scratch)
            os.replace(scratch, path)
        finally:
            scratch.unlink(missing_ok=True)
        print(f"{path.name}: {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
