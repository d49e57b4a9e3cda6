"""The lock files pin what pyproject.toml asks for: a fresh clone installs exactly the tested
versions (`make bootstrap`: requirements/dev.txt, hash-checked; the image: requirements/image.txt),
and `make lock` must be re-run when pyproject.toml changes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+?)(?:\s*;\s*(.+?))?\s*\\?$")
PYTHONS = ("3.11.7", "3.12.4", "3.13.1")


def pins(path: Path, python: str) -> dict[str, Version]:
    """name -> version pinned for ``python`` on Linux (markers evaluated)."""
    found: dict[str, Version] = {}
    environment = {"python_full_version": python, "python_version": python.rsplit(".", 1)[0]}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate(environment):
            found[canonicalize_name(name)] = Version(version)
    return found


def wanted(extras: tuple[str, ...]) -> list[Requirement]:
    """pyproject's requirements for ``extras``, the project's own extras unfolded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    todo = list(extras)
    while todo:
        for text in project["optional-dependencies"][todo.pop()]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "cryptolab":
                todo.extend(req.extras)
            else:
                reqs.append(req)
    return reqs


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize(("lock", "extras"), [("dev.txt", ("dev",)), ("image.txt", ("notebooks",))])
def test_every_requirement_is_pinned_within_its_range(
    lock: str, extras: tuple[str, ...], python: str
) -> None:
    pinned = pins(ROOT / "requirements" / lock, python)
    for req in wanted(extras):
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in requirements/{lock}: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"requirements/{lock} pins {req.name}=={pinned[name]}, pyproject wants "
            f"{req.specifier}: run `make lock`"
        )


def test_the_image_lock_is_a_subset_of_the_dev_lock() -> None:
    for python in PYTHONS:
        dev = pins(ROOT / "requirements" / "dev.txt", python)
        image = pins(ROOT / "requirements" / "image.txt", python)
        assert {n: v for n, v in image.items() if dev.get(n) != v} == {}, "one set of versions"


def test_every_pin_is_hash_checked() -> None:
    for lock in ("dev.txt", "image.txt"):
        text = (ROOT / "requirements" / lock).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        assert entries and all("--hash=sha256:" in entry for entry in entries), lock
