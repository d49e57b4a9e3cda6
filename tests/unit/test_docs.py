"""The documentation a newcomer reads stays short and complete: the README under 200 lines,
every module of the package named in the README or docs/, every doc link pointing at a file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 200, f"README.md has {lines} lines: move detail into docs/"


def test_every_module_is_named_in_the_readme_or_docs() -> None:
    text = "\n".join(p.read_text() for p in DOCS)
    package = ROOT / "cryptolab"
    missing = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py")
        and str(path.relative_to(package)) not in text
    ]
    assert missing == [], f"not named in README.md or docs/ (add to docs/design.md): {missing}"


def test_relative_links_point_at_files() -> None:
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []
