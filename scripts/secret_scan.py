#!/usr/bin/env python3
"""`make secret-scan`: detect-secrets (Yelp's maintained scanner) over every tracked file, with
the plugins, filters and audited false positives of `.secrets.baseline`; exit 1 on any secret
the baseline does not know. Reads only: unlike `detect-secrets-hook`, it never rewrites the
baseline (a line that moved is still the same known secret).

    python scripts/secret_scan.py [--root DIR]

A finding prints as `path:line: type` (never the value). A false positive: end its line with
`# pragma: allowlist secret` (a comment saying why after it), or record it in the baseline with
`make secret-baseline` and mark it with `detect-secrets audit .secrets.baseline`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from detect_secrets import SecretsCollection
from detect_secrets.__version__ import VERSION
from detect_secrets.core import baseline

BASELINE = ".secrets.baseline"


def tracked_files(root: Path) -> list[str]:
    done = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True
    )
    return [p for p in done.stdout.decode().split("\0") if p and (root / p).is_file()]


def scan(root: Path) -> tuple[list[str], int]:
    """New findings (``path:line: type``) over the tracked files of ``root``, and their count."""
    os.chdir(root)  # detect-secrets compares findings by their path as given: relative ones
    known = baseline.load(baseline.load_from_file(BASELINE), BASELINE)
    files = [name for name in tracked_files(root) if name != BASELINE]
    found = SecretsCollection()
    found.scan_files(*files)
    new = found - known
    return sorted(f"{name}:{secret.line_number}: {secret.type}" for name, secret in new), len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="git work tree to scan")
    args = parser.parse_args(argv)
    findings, scanned = scan(args.root.resolve())
    for finding in findings:
        print(finding)
    print(
        f"secret scan (detect-secrets {VERSION}): {scanned} files, {len(findings)} new finding(s)"
        + (" (a false positive: '# pragma: allowlist secret' on its line)" if findings else ""),
        file=sys.stderr,
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
