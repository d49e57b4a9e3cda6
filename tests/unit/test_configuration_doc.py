"""docs/configuration.md is generated from the Settings fields and must match them."""

from __future__ import annotations

import runpy
from pathlib import Path

from cryptolab.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []


def test_the_committed_reference_matches_the_code() -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "gen_configuration.py"))
    expected = generator["render"]()
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == expected, (
        "docs/configuration.md is out of date: run `make docs` (scripts/gen_configuration.py)"
    )
    for name in Settings.model_fields:
        assert f"`CRYPTOLAB_{name.upper()}`" in committed
