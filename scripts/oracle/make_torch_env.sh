#!/usr/bin/env bash
# Creates or updates .venv-torch, the pinned Python environment with torch that the oracle scripts
# record_audio_goldens.py and crosscheck_vision_transformers.py run in. The pins are in
# scripts/oracle/requirements-torch.txt. It takes about 3 GB, mostly torch's CUDA libraries, which
# the CPU reference does not use.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${repo_root}/.venv-torch"
if [[ ! -x "${venv}/bin/python" ]]; then
  python="$(command -v python3.11 || command -v python3 || true)"
  if [[ -z "${python}" ]]; then
    echo "make_torch_env.sh: python3 not found; install Python 3.11 and rerun" >&2
    exit 1
  fi
  "${python}" -m venv "${venv}"
fi
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${repo_root}/scripts/oracle/requirements-torch.txt"
echo "${venv}"
