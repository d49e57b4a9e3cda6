#!/usr/bin/env python3
"""Fail when a committed file holds something that looks like a secret. No network, stdlib only.

    python scripts/secret_scan.py [--root DIR]     # scans `git ls-files` of DIR (default: .)

Rules: private keys, AWS access keys and secret keys, GitHub/Slack/Google tokens, Binance-shaped
API keys (64 letters and digits, both cases), a literal assigned to a password/secret/token/key
name (``password = "..."``, ``API_KEY=...``), credentials inside URLs (``scheme://user:pw@host``)
and long high-entropy quoted strings. Placeholders (``CHANGE-ME``, ``${VAR}``, ``***``,
``<password>``, ``example``...) do not count.

Allow-list, narrowest first:
* a line containing ``secret-scan: allow`` (a comment saying why) is skipped;
* ``.secretscan-allow`` at the root: one ``glob`` (every rule) or ``glob rule`` per line, ``#``
  comments; e.g. ``reports/examples/*.html high-entropy`` (embedded images).

Findings print as ``path:line: rule: excerpt`` with the matched value masked, and exit 1.
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PRAGMA = "secret-scan: allow"
ALLOW_FILE = ".secretscan-allow"
MAX_BYTES = 2_000_000
PLACEHOLDER = re.compile(
    r"(?i)^(\*+|x+|\.+|change[-_]?me.*|<[^>]*>|\$\{[^}]*\}?|\$[A-Z_]+|%\([a-z_]+\)s|\{[^}]*\}|"
    r"(your|my|the|some)[-_]?\w*|.*example.*|.*placeholder.*|dummy|redacted|secret|password|"
    r"passw0rd|none|null|true|false|test|changeit|\*\*\*.*|.*\.\.\..*)$"
)
_NAME = r"[A-Za-z0-9_]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)[A-Za-z0-9_]*"


CONFIG_FILES = (
    ".env*",
    "*.env",
    "*.sh",
    "*.properties",
    "*.cfg",
    "*.ini",
    "*.conf",
    "*.yml",
    "*.yaml",
    "*.toml",
    "Dockerfile*",
    "Makefile",
    "*.txt",
)
SAFE_CONTEXT = re.compile(r"\"bdata\":")  # plotly's base64 typed arrays in notebook outputs


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    group: int = 0  # which group is the secret value (for placeholders and masking)
    check_placeholder: bool = False
    files: tuple[str, ...] = ("*",)  # globs of the file names the rule applies to
    data_rule: bool = False  # skipped on lines of known-safe encoded data (SAFE_CONTEXT)


RULES = (
    Rule(
        "private-key",
        re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY"),
    ),
    Rule("aws-access-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    Rule(
        "aws-secret-key",
        re.compile(r"(?i)aws_?secret_?access_?key\W{0,3}[:=]\s*[\"']?([A-Za-z0-9/+=]{40})\b"),
        group=1,
    ),
    Rule("github-token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    Rule("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    Rule("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    Rule(
        "binance-api-key",
        re.compile(
            r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])"
            r"(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{64}(?![A-Za-z0-9])"
        ),
        data_rule=True,
    ),
    Rule(
        "password-assignment",
        re.compile(
            rf"(?i)\b{_NAME}[\"']?\s*(?::|=|:=|=>)\s*(?:[a-z]+\()?[\"']([^\"'\s]{{6,}})[\"']"
        ),
        group=1,
        check_placeholder=True,
    ),
    Rule(
        "env-assignment",
        re.compile(
            rf"(?i)^\s*(?:export\s+|-\s+)?{_NAME}\s*[=:]\s*([^\s\"'#$\[{{&*|>][^\s#]{{5,}})\s*(?:#.*)?$"
        ),
        group=1,
        check_placeholder=True,
        files=CONFIG_FILES,
    ),
    Rule(
        "url-credentials",
        re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"'`]+:([^\s@/\"'`]{3,})@[\w.-]+"),
        group=1,
        check_placeholder=True,
    ),
    Rule(
        "high-entropy",
        re.compile(r"[\"'`]([A-Za-z0-9+/=_-]{32,})[\"'`]"),
        group=1,
        data_rule=True,
    ),
)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.excerpt}"


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _high_entropy(value: str) -> bool:
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[+/=_-]"))
    return classes >= 3 and entropy(value) >= 4.5


def _mask(line: str, value: str) -> str:
    shown = value[:4] + "…" if len(value) > 8 else "…"
    return line.strip().replace(value, shown)[:160]


def scan_text(path: str, text: str, rules: Iterable[Rule] = RULES) -> Iterator[Finding]:
    name = Path(path).name
    active = [r for r in rules if any(fnmatch.fnmatch(name, g) for g in r.files)]
    for number, line in enumerate(text.splitlines(), start=1):
        if PRAGMA in line:
            continue
        safe_data = bool(SAFE_CONTEXT.search(line))
        for rule in active:
            if rule.data_rule and safe_data:
                continue
            for match in rule.pattern.finditer(line):
                value = match.group(rule.group)
                if rule.check_placeholder and PLACEHOLDER.match(value):
                    continue
                if rule.name == "high-entropy" and not _high_entropy(value):
                    continue
                yield Finding(path, number, rule.name, _mask(line, value))
                break


def load_allow(root: Path) -> list[tuple[str, str | None]]:
    path = root / ALLOW_FILE
    if not path.is_file():
        return []
    entries: list[tuple[str, str | None]] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            glob, _, rule = line.partition(" ")
            entries.append((glob, rule.strip() or None))
    return entries


def allowed(finding: Finding, allow: list[tuple[str, str | None]]) -> bool:
    return any(
        fnmatch.fnmatch(finding.path, glob) and rule in (None, finding.rule) for glob, rule in allow
    )


def tracked_files(root: Path) -> list[str]:
    done = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True
    )
    return [p for p in done.stdout.decode().split("\0") if p]


def scan(root: Path) -> tuple[list[Finding], int]:
    """Findings over every tracked file of ``root``, and how many files were read."""
    allow = load_allow(root)
    findings: list[Finding] = []
    scanned = 0
    for name in tracked_files(root):
        path = root / name
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        scanned += 1
        text = data.decode("utf-8", errors="replace")
        findings += [f for f in scan_text(name, text) if not allowed(f, allow)]
    return findings, scanned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="git work tree to scan")
    args = parser.parse_args(argv)
    findings, scanned = scan(args.root.resolve())
    for finding in findings:
        print(finding)
    print(
        f"secret scan: {scanned} files, {len(findings)} finding(s)"
        + (f" (allow a false positive with '{PRAGMA}' or {ALLOW_FILE})" if findings else ""),
        file=sys.stderr,
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
