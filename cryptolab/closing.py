"""Stopping something made of parts: every part is stopped, whatever the others do."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

Stopper = tuple[str, Callable[[], object] | None]


def stop_all(parts: Sequence[Stopper], log: logging.Logger) -> None:
    """Call each part's stop in order (None = nothing to stop). One that raises, even
    KeyboardInterrupt, is logged and the rest still run; then the first failure is raised."""
    first: BaseException | None = None
    for name, stop in parts:
        if stop is None:
            continue
        try:
            stop()
        except BaseException as exc:
            log.error("stopping %s failed error=%r", name, exc)
            first = first or exc
    if first is not None:
        raise first
