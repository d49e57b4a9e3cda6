"""The secret scan CI runs (scripts/secret_scan.py: detect-secrets with the settings and audited
false positives of .secrets.baseline): the repository is clean, and the scan does catch secrets
planted in a throwaway git repository, without printing them."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.reliability.results import record

ROOT = Path(__file__).resolve().parents[2]
SCAN = ROOT / "scripts" / "secret_scan.py"
BASELINE = ".secrets.baseline"


def scan(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCAN), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.row("security", "secret scan of the repository")
def test_no_committed_file_looks_like_a_secret() -> None:
    done = scan(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    files = int(done.stderr.split("): ")[1].split(" files")[0])
    assert files > 100
    record(
        "security",
        "secret scan of the repository",
        attempted="detect-secrets over `git ls-files` (scripts/secret_scan.py; plugins, filters "
        "and audited false positives in .secrets.baseline; '# pragma: allowlist secret' lines)",
        cases=files,
        observed=f"{files} tracked files scanned, 0 new findings",
    )


def _planted(rng: random.Random) -> dict[str, tuple[str, str, str]]:
    """rule -> (file name, line, secret value); values are made here, never committed."""

    def chars(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    alnum = string.ascii_letters + string.digits
    binance = chars(string.ascii_lowercase, 20) + chars(string.ascii_uppercase, 20)
    binance += chars(string.digits, 24)
    binance = "".join(rng.sample(binance, len(binance)))
    values = {
        "private-key": ("id_rsa", "-----BEGIN " + "RSA PRIVATE KEY-----", "RSA PRIVATE KEY"),
        "aws-access-key": ("deploy.py", "", "AKIA" + chars(string.ascii_uppercase, 16)),
        "aws-secret-key": ("aws.cfg", "", chars(alnum + "/+", 40)),
        "github-token": ("ci.yml", "", "ghp_" + chars(alnum, 36)),
        "slack-token": (
            "notify.py",
            "",
            "xoxb-" + chars(string.digits, 12) + "-" + chars(alnum, 24),
        ),
        "binance-api-key": ("keys.json", "", binance),
        "password-assignment": ("settings.py", "", chars(alnum, 14)),
        "env-assignment": ("prod.env", "", chars(alnum, 16)),
        "url-credentials": ("notebook.py", "", chars(alnum, 12)),
        "high-entropy": ("blob.js", "", base64.b64encode(rng.randbytes(30)).decode()),
    }
    lines = {
        "aws-access-key": 'KEY_ID = "{v}"',
        "aws-secret-key": "aws_secret_access_key = {v}",
        "github-token": "  token_in_ci: {v}",
        "slack-token": 'client = WebClient("{v}")',
        "binance-api-key": '{{"apiKey": "{v}"}}',
        "password-assignment": 'DB_PASSWORD = "{v}"',
        "env-assignment": "CRYPTOLAB_CLICKHOUSE_PASSWORD={v}",
        "url-credentials": 'url = "http://admin:{v}@db.internal:8123/crypto"',
        "high-entropy": 'const blob = "{v}";',
    }
    return {
        rule: (name, line or lines[rule].format(v=value), value)
        for rule, (name, line, value) in values.items()
    }


CLEAN_LINES = [
    "CLICKHOUSE_PASSWORD=CHANGE-ME",
    "password: ${DB_PASSWORD}",
    'url = "http://reader:***@ch.example:8123/crypto"',
    'url = "http://reader@ch.example:8123/crypto"',
    f'digest = "{hashlib.sha256(b"x").hexdigest()}"',
    f'run_id = "{uuid.uuid4().hex}"',
    f'"bdata": "{base64.b64encode(random.Random(1).randbytes(60)).decode()}",',
    "password = settings.clickhouse_password.get_secret_value()",
    'api_key = os.environ["BINANCE_API_KEY"]',
]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.mark.row("security", "secret scan catches planted secrets")
def test_planted_secrets_are_caught_and_allow_lists_work(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    # the project's scanner settings, none of its known findings
    settings = json.loads((ROOT / BASELINE).read_text())
    (repo / BASELINE).write_text(json.dumps({**settings, "results": {}}, indent=2))
    planted = _planted(random.Random(20261129))
    # an audited fixture: recorded in the baseline (`make secret-baseline`), then not reported
    (repo / "fixtures").mkdir()
    (repo / "fixtures" / "server.py").write_text(planted["password-assignment"][1] + "\n")
    git(repo, "add", "-A")
    subprocess.run(
        [str(Path(sys.executable).with_name("detect-secrets")), "scan", "--baseline", BASELINE],
        cwd=repo,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert "fixtures/server.py" in json.loads((repo / BASELINE).read_text())["results"]
    for _rule, (name, line, _value) in planted.items():
        with (repo / name).open("a") as handle:
            handle.write(f"# harmless first line\n{line}\n")
    (repo / "clean.py").write_text("\n".join(CLEAN_LINES) + "\n")
    allowed_value = planted["password-assignment"][2]
    (repo / "pragma.py").write_text(
        f'PASSWORD = "{allowed_value}x"  # pragma: allowlist secret (fixture of a test)\n'
    )
    git(repo, "add", "-A")

    done = scan(repo)
    assert done.returncode == 1, done.stdout + done.stderr
    reported = {line.split(":")[0] for line in done.stdout.splitlines()}
    expected = {name for name, _, _ in planted.values()}
    missed = expected - reported
    assert not missed, done.stdout
    assert not {"clean.py", "pragma.py", "fixtures/server.py"} & reported, done.stdout
    for _name, _line, value in planted.values():
        assert value not in done.stdout + done.stderr, "the report must not show what it found"
    record(
        "security",
        "secret scan catches planted secrets",
        attempted="detect-secrets with the project's .secrets.baseline settings over a temporary "
        "git repo: one planted secret per kind (private key, AWS, GitHub, Slack, Binance-shaped "
        "key, password and env assignments, URL credentials, high-entropy blob), look-alike "
        "lines, a '# pragma: allowlist secret' line and a fixture audited into the baseline",
        cases=len(planted) + len(CLEAN_LINES) + 2,
        observed=f"planted {len(planted)}, caught {len(planted) - len(missed)} (values never "
        f"printed); false positives {len(reported - expected)} over {len(CLEAN_LINES)} "
        "look-alike lines; the allow-listed line and the audited fixture not reported",
    )
