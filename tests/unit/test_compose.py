"""Static checks of the scaled-out deployment (there is no Docker engine to run it here).

docker-compose.yml is validated by Debian's docker-compose (`docker-compose config`, offline),
then read as YAML: every image pinned, every CRYPTOLAB_* variable a valid Settings value,
ports the ones docs/deployment.md lists, health checks, restart policies, memory limits, volumes.
"""

from __future__ import annotations

import base64
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cryptolab.errors import ConfigError
from cryptolab.settings import ENV_PREFIX, Settings, load_settings
from cryptolab.store.server import MIN_VERSION, parse_version
from tests.tools import need

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
ORIGINAL_MEMORY = {  # the limits of the system cryptolab grew from
    "spark-master": "1g",
    "spark-worker": "2g",
    "streaming": "2g",
    "dashboard": "512m",
    "producer": "512m",
}
_VAR = re.compile(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}")


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines())
    return {k.strip(): v.strip() for k, v in (p for p in pairs if len(p) == 2) if k[:1] != "#"}


def interpolate(value: Any, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` with ``env``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if name in env and env[name] != "":
            return env[name]
        assert op != ":?", f"${{{name}}} is required: {arg}"
        return arg or ""

    return _VAR.sub(one, str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def cryptolab_services(services: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, svc in services.items() if "build" in svc]


def run_compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need("docker-compose"), "--env-file", str(env_file), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
    )


def test_docker_compose_validates_the_file(tmp_path: Path) -> None:
    done = run_compose("config", "-q", env_file=ENV_EXAMPLE)
    assert done.returncode == 0, done.stderr
    empty = tmp_path / "empty.env"
    empty.write_text("")
    missing = run_compose("config", "-q", env_file=empty)
    assert missing.returncode != 0
    assert "set CLICKHOUSE_PASSWORD in .env" in missing.stderr


def test_docker_compose_rejects_a_misspelt_option(tmp_path: Path) -> None:
    """The validation above is real: the same tool refuses a broken copy of the file."""
    (tmp_path / "docker-compose.yml").write_text(
        COMPOSE.read_text().replace("mem_limit: 512m", "mem_limt: 512m")
    )
    done = subprocess.run(
        [need("docker-compose"), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "mem_limt" in done.stderr


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d", tag), (name, image)
    for name in cryptolab_services(services):
        assert services[name]["image"] == f"cryptolab:{VERSION}", name
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"


def test_versions_match_the_embedded_stack(services: dict[str, dict[str, Any]]) -> None:
    kafka_tag = services["kafka"]["image"].split(":")[1]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert kafka_tag == Settings.model_fields["kafka_version"].default
    clickhouse = services["clickhouse"]["image"]
    assert parse_version(clickhouse.split(":")[1])[:2] >= MIN_VERSION
    # Spark master and worker run pyspark's own spark-class from the cryptolab image, so the
    # cluster's Spark is the exact version the driver was installed with.
    for name in ("spark-master", "spark-worker"):
        assert name in cryptolab_services(services)
        assert services[name]["command"][0] == "spark-class"


def test_every_cryptolab_variable_is_a_valid_setting(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = {ENV_PREFIX + f.upper() for f in Settings.model_fields}
    example = env_example()
    checked = 0
    for name, svc in services.items():
        env = {k: interpolate(v, example) for k, v in (svc.get("environment") or {}).items()}
        ours = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
        assert set(ours) <= known, (name, sorted(set(ours) - known))
        if not ours:
            continue
        with monkeypatch.context() as patch:
            for key, value in ours.items():
                patch.setenv(key, value)
            settings = load_settings()  # ConfigError on a bad value
        assert settings.kafka_bootstrap == "kafka:29092"
        assert settings.spark_master == "spark://spark-master:7077"
        assert settings.store_url.startswith("http://cryptolab@clickhouse:8123/")
        assert settings.clickhouse_password is not None
        checked += 1
    assert checked >= 4  # producer, streaming, dashboard, jupyter


def test_secrets_come_from_dotenv_and_are_required(services: dict[str, dict[str, Any]]) -> None:
    raw = COMPOSE.read_text()
    used = {m.group(1) for m in _VAR.finditer(raw)}
    assert used == set(env_example()), "every ${VAR} of the compose file is in .env.example"
    assert "${CLICKHOUSE_PASSWORD:?" in raw and "${JUPYTER_TOKEN:?" in raw
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored and ".env.example" not in ignored
    cluster_id = interpolate(services["kafka"]["environment"]["CLUSTER_ID"], {})
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_ports_are_local_and_the_ones_the_readme_lists(
    services: dict[str, dict[str, Any]],
) -> None:
    published = set()
    for name, svc in services.items():
        for port in svc.get("ports", []):
            host, host_port, _container = str(port).split(":")
            assert host == "127.0.0.1", (name, port)
            published.add(int(host_port))
    readme = (ROOT / "docs" / "deployment.md").read_text()
    section = readme.split("## docker-compose", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    listed = {int(p) for line in table for p in re.findall(r"127\.0\.0\.1:(\d+)", line)}
    assert listed == published


def test_every_service_is_healthchecked_restarted_and_limited(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose["volumes"])
    for name, svc in services.items():
        assert svc["healthcheck"]["test"][0] == "CMD", name
        assert svc["restart"] == "unless-stopped", name
        assert re.fullmatch(r"\d+[mg]", svc["mem_limit"]), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in declared, (name, volume)
    assert {k: services[k]["mem_limit"] for k in ORIGINAL_MEMORY} == ORIGINAL_MEMORY


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert len(stages) >= 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, flags=re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1))
    final = text.split("\nFROM ")[-1]
    user = re.findall(r"^USER (\S+)", final, flags=re.M)
    assert user and user[-1] not in ("root", "0")
    assert "COPY --from=build" in final and "pip install" not in final


def test_a_compose_dotenv_does_not_break_cryptolab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cp .env.example .env` at the repo root: cryptolab still starts, reading only its own
    CRYPTOLAB_* keys; a misspelt CRYPTOLAB_* key there still fails loudly."""
    monkeypatch.chdir(tmp_path)
    dotenv = tmp_path / ".env"
    dotenv.write_text(ENV_EXAMPLE.read_text() + "CRYPTOLAB_TOPIC=from_dotenv\n")
    settings = load_settings()
    assert settings.topic == "from_dotenv" and settings.clickhouse_password is None
    dotenv.write_text(ENV_EXAMPLE.read_text() + "CRYPTOLAB_TOPICS=typo\n")
    with pytest.raises(ConfigError, match="CRYPTOLAB_TOPICS"):
        load_settings()


def test_conda_environment_matches_the_project() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "conda-forge" in env["channels"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"
    java = next(d for d in deps if isinstance(d, str) and d.startswith("openjdk="))
    assert int(java.split("=")[1]) >= 17
    assert "make" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e .[dev]" in pip
