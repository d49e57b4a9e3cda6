"""What the reliability suite measured, kept for reports/reliability.md.

Each test calls :func:`record` with one row; rows are JSON files under
``reports/reliability/`` (one per row name, overwritten on every run), and
``python -m tests.reliability.render`` (also run at the end of every pytest session that ran a
reliability test) turns them into ``reports/reliability.md``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Literal

REPORTS = Path(__file__).resolve().parents[2] / "reports"
RESULTS_DIR = REPORTS / "reliability"

Kind = Literal["fault", "fuzz", "soak", "security"]


def record(kind: Kind, name: str, **fields: Any) -> Path:
    """Store one result row. ``fields`` must be JSON-serialisable; keep them short and factual
    (what was injected, counts in/out, seconds to recover, ...)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{kind}-{name}".lower()).strip("-")
    path = RESULTS_DIR / f"{slug}.json"
    row = {
        "kind": kind,
        "name": name,
        "recorded_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        **fields,
    }
    path.write_text(json.dumps(row, indent=2, sort_keys=False, default=str) + "\n")
    return path


def load_rows() -> list[dict[str, Any]]:
    if not RESULTS_DIR.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(RESULTS_DIR.glob("*.json"))]
