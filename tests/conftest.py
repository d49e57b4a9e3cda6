"""Shared fixtures: one real Kafka broker, one chDB engine and one SparkSession per test run;
factory fixtures give each test its own topic names and ClickHouse database."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Tests must not pick up a developer's own CRYPTOLAB_* settings (the jar cache may stay).
for _key in [k for k in os.environ if k.startswith("CRYPTOLAB_") and k != "CRYPTOLAB_CACHE_DIR"]:
    del os.environ[_key]

from cryptolab.settings import Settings, load_settings  # noqa: E402
from tests.reliability import rows  # noqa: E402
from tests.reliability.results import Run  # noqa: E402
from tests.tools import in_ci  # noqa: E402

ROOT = Path(__file__).resolve().parent
RUN_KEY = pytest.StashKey[Run]()
TREE_KEY = pytest.StashKey[set[str] | None]()
DIRTIED_KEY = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    rows.add_option(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Under CI, property tests draw the same examples on every run (hypothesis derandomize), so
    a CI failure reproduces; locally they explore new examples each run."""
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, database=None)
    if in_ci():
        settings.load_profile("ci")


def _tree_status() -> set[str] | None:
    """``git status --porcelain`` lines of this checkout (None outside git)."""
    try:
        done = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT.parent, text=True,
                              capture_output=True, timeout=60, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return set(done.stdout.splitlines())


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[TREE_KEY] = _tree_status()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        parts = path.relative_to(ROOT).parts if path.is_relative_to(ROOT) else ()
        if parts and parts[0] in ("unit", "integration", "e2e", "reliability"):
            item.add_marker(getattr(pytest.mark, parts[0]))
    # the soak runs in the background for the whole session; it is judged last
    items.sort(key=lambda item: item.nodeid.startswith("tests/reliability/test_soak.py"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Open this run's results directory when a row test was selected; start the soak now when
    it was selected, so it overlaps the rest of the suite."""
    from tests.reliability import test_soak

    rows.start_run(session)
    if session.config.option.collectonly or hasattr(session.config, "workerinput"):
        return
    if any(item.nodeid == test_soak.NODE for item in session.items):
        session.config.stash[test_soak.SOAK_KEY] = test_soak.SoakRun(test_soak.soak_minutes())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    rows.begin(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rows.on_report(item, outcome.get_result())  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop a soak still running (Ctrl-C, -x, a failure elsewhere) and close the run's results;
    nothing under reports/ is written (`make reports` renders a run)."""
    from tests.reliability import test_soak

    soak = session.config.stash.get(test_soak.SOAK_KEY, None)
    if soak is not None:
        soak.cleanup()
    run = rows.finish(exitstatus)
    if run is not None:
        session.config.stash[RUN_KEY] = run
    before, after = session.config.stash.get(TREE_KEY, None), _tree_status()
    if before is not None and after is not None and after - before:
        changed = sorted(after - before)
        session.config.stash[DIRTIED_KEY] = changed
        if in_ci():  # tests write to ignored folders (build/), never into the tree
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    dirtied = config.stash.get(DIRTIED_KEY, None)
    if dirtied:
        verdict = "FAILED (CI)" if in_ci() else "warning"
        terminalreporter.write_line(
            f"{verdict}: this session changed the git tree (tests must write under build/ or a "
            f"temporary directory): {dirtied[:10]}",
            red=True,
        )
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        where = run.dir.relative_to(ROOT.parent) if run.dir.is_relative_to(ROOT.parent) else run.dir
        terminalreporter.write_line(f"result rows of this run: {where} (`make reports` renders)")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Apache Kafka broker (KRaft) for the whole run."""
    from cryptolab.bus.broker import LocalBroker

    broker = LocalBroker(load_settings(data_dir=tmp_path_factory.mktemp("broker")))
    bootstrap = broker.start()
    yield bootstrap
    broker.stop()


@pytest.fixture(scope="session")
def chdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chDB allows one data directory per process: every in-process store lives under this."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def make_settings(chdb_root: Path) -> Any:
    """Factory: Settings with a fresh topic pair and ClickHouse database for this test."""

    def make(**overrides: Any) -> Settings:
        tag = uuid.uuid4().hex[:10]
        values: dict[str, Any] = {
            "data_dir": chdb_root,
            "topic": f"trades_{tag}",
            "dlq_topic": f"dlq_{tag}",
            "clickhouse_database": f"t_{tag}",
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture(scope="session")
def spark(chdb_root: Path) -> Iterator[Any]:
    from cryptolab.streaming.session import create_spark

    session = create_spark(load_settings(data_dir=chdb_root), app_name="cryptolab-tests")
    yield session
    session.stop()
