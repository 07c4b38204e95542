#!/usr/bin/env bash
# Sets up a fresh machine and runs mxgemma's main job: builds the CLI, prepares the default
# bundle when none is given, and generates a reply.
# Usage: scripts/demo.sh [PROMPT] [BUNDLE]
set -euo pipefail
cd "$(dirname "$0")/.."
prompt=${1:-"Write a haiku about the sea."}
bundle=${2:-}

# Setup output goes to stderr, so stdout carries only the reply.
scripts/install_deps.sh >&2
scripts/build.sh build >&2

if [[ -z "$bundle" ]]; then
  if [[ ! -e models/default/config.json ]]; then
    scripts/make_fixtures.sh >&2
    mkdir -p models
    ln -sfn ../fixtures/generated/tiny-hf models/default
    echo "demo: the default bundle is the tiny random-weight Gemma 4 test bundle; its text is random." >&2
    echo "demo: pass a real bundle as the second argument: scripts/demo.sh \"PROMPT\" /path/to/bundle" >&2
  fi
  bundle=models/default
fi
exec build/bin/mxgemma run -m "$bundle" -p "$prompt"
