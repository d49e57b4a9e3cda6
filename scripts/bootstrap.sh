#!/usr/bin/env bash
# Idempotent set-up used by `make run` and `make test`:
#   1. a virtualenv in .venv (Python 3.11+) with exactly the versions pinned in requirements/dev.txt
#      (hash-checked; `make lock` refreshes it from pyproject.toml), then cryptolab itself, editable;
#      re-installed only when either file changes;
#   2. the JVM jars (Apache Kafka broker, Spark's Kafka connector) resolved from Maven Central with
#      Apache Ivy (shipped inside pyspark) and cached under ~/.cache/cryptolab (offline afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bootstrap: $*" >&2; exit 1; }

PY=${PYTHON:-}
venv_opts=()
if [ -z "$PY" ] && [ -n "${CONDA_PREFIX:-}" ] && [ -x "$CONDA_PREFIX/bin/python" ]; then
  # An active conda env (environment.yml): use its Python and reuse what it installed.
  PY=$CONDA_PREFIX/bin/python
  venv_opts=(--system-site-packages)
fi
if [ -z "$PY" ]; then
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || die "Python 3.11+ not found: install it or set PYTHON=/path/to/python3.11"

JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
command -v "$JAVA" >/dev/null 2>&1 || die "Java 17+ not found: install a JDK 17+ or set JAVA_HOME"
jver=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
[ "${jver:-0}" -ge 17 ] || die "Java 17+ required, found '${jver:-unknown}': install a JDK 17+ or set JAVA_HOME"

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PY"
  "$PY" -m venv ${venv_opts[@]+"${venv_opts[@]}"} .venv
fi
stamp=.venv/.cryptolab-installed
want=$(cat pyproject.toml requirements/dev.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing the locked packages (first time takes ~2 minutes)"
  .venv/bin/python -m pip install --upgrade --quiet pip
  .venv/bin/python -m pip install --quiet --require-hashes -r requirements/dev.txt
  .venv/bin/python -m pip install --quiet --no-deps -e .
  # an editable install skips pyproject's data-files: put JupyterLab's page config where a
  # wheel install puts it (no "Build Recommended" prompt for dash's legacy extension)
  mkdir -p .venv/etc/jupyter/labconfig/page_config.d
  cp jupyter-config/labconfig/page_config.d/cryptolab.json .venv/etc/jupyter/labconfig/page_config.d/
  echo "$want" > "$stamp"
fi
.venv/bin/cryptolab jars fetch
