#!/usr/bin/env bash
# Creates or updates the pinned Python environment .venv (scripts/oracle/requirements.txt), then
# generates the tiny random-weight Gemma 4 test bundles under fixtures/generated/ with
# scripts/oracle/make_fixtures.py. Arguments are passed on to that script (see its --help).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv"
requirements="${repo_root}/scripts/oracle/requirements.txt"

if [[ ! -x "${venv}/bin/python" ]]; then
  python="$(command -v python3.11 || command -v python3 || true)"
  if [[ -z "${python}" ]]; then
    echo "make_fixtures.sh: python3 not found; install Python 3.11 and rerun" >&2
    exit 1
  fi
  "${python}" -m venv "${venv}"
fi

# pip leaves satisfied pins alone and contacts the package index only for missing ones.
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${requirements}"

exec "${venv}/bin/python" "${repo_root}/scripts/oracle/make_fixtures.py" "$@"
