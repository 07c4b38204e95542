#!/usr/bin/env bash
# Installs the Debian packages mxgemma builds and tests with, at the versions it was tested with.
# A pinned version that the archive no longer serves falls back to the archive's current one,
# with a warning, so that a Debian point release does not break the build.
set -euo pipefail

packages=(
  build-essential=12.9
  cmake=3.25.1-1
  ninja-build=1.11.1-2~deb12u1
  libgtest-dev=1.12.1-0.2
  nlohmann-json3-dev=3.11.2-2
  libcli11-dev=2.1.2+ds-1
  libbenchmark-dev=1.7.1-1
  libcpp-httplib-dev=0.11.4+ds-1+deb12u1
  pkg-config=1.8.1-1
  libjpeg62-turbo-dev=1:2.1.5-2
  libpng-dev=1.6.39-2+deb12u4
  libwebp-dev=1.2.4-0.2+deb12u1
  libstb-dev=0.0~git20220908.8b5f1f3+ds-1
  libsndfile1-dev=1.2.0-1+deb12u1
  libsamplerate0-dev=0.2.2-3
  libfftw3-dev=3.3.10-1
  python3-venv
  nodejs
  npm
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for spec in "${packages[@]}"; do
  name=${spec%%=*}
  if ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$spec")
  fi
done
# node and npm often come from elsewhere (nvm, a tarball); only install them when absent.
filtered=()
for spec in "${missing[@]}"; do
  case "${spec%%=*}" in
    nodejs) command -v node >/dev/null || filtered+=("$spec") ;;
    npm) command -v npm >/dev/null || filtered+=("$spec") ;;
    python3-venv) python3 -c 'import venv, ensurepip' 2>/dev/null || filtered+=("$spec") ;;
    *) filtered+=("$spec") ;;
  esac
done
if [[ ${#filtered[@]} -eq 0 ]]; then
  echo "install_deps: all Debian packages present"
  exit 0
fi

echo "install_deps: installing ${filtered[*]}"
$SUDO apt-get update -qq
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${filtered[@]}"; then
  echo "install_deps: warning: a pinned version is not available; installing the archive's current versions" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${filtered[@]%%=*}"
fi
