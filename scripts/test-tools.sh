#!/usr/bin/env bash
# System packages some tests need, from Debian (idempotent; CI runs it before `make test`):
#   docker-compose     validates docker-compose.yml offline (`docker-compose config`)
#   clickhouse-server  a real ClickHouse server for the http:// store tests
#   curl               a real HTTP client for the store share tests
# Without them those tests are skipped on a developer machine and fail when CI is set
# (.ci/run exports CI=true; see docs/testing.md).
set -euo pipefail
missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -x /usr/sbin/clickhouse-server ] || command -v clickhouse-server >/dev/null 2>&1 || missing+=(clickhouse-server)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-tools: missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "test-tools: installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
