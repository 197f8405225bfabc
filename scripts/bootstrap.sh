#!/usr/bin/env bash
# Create .venv in the repository and install scenetalk with pinned dependencies, the train
# extra included: torch is installed first, pinned to the CPU build, so that nothing pulls a
# CUDA build.
#   --with-browser   also Debian's Chromium, for the web page's browser tests
#   --light          instead, .venv-light: the light install (`pip install .` and the test
#                    tools, no PyTorch), as a user without the train extra has it
set -euo pipefail
cd "$(dirname "$0")/.."
LIGHT=""
BROWSER=""
for arg in "$@"; do
  case "$arg" in
    --light) LIGHT=1 ;;
    --with-browser) BROWSER=1 ;;
    *) echo "bootstrap: unknown option $arg (expected --light, --with-browser)" >&2; exit 2 ;;
  esac
done
# The caption metrics (PTB tokenizer, METEOR) run on Java: install a JRE where we can, and say so.
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${SCENETALK_NO_APT:-}" ]; then
    echo "bootstrap: no Java found; installing default-jre-headless with apt-get for the caption metrics" \
         "(SCENETALK_NO_APT=1 skips this)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null
  else
    echo "bootstrap: no Java found; the caption metrics need it (e.g. apt-get install default-jre-headless)" >&2
  fi
fi
# --with-browser (the tests): the web page's browser tests drive Debian's Chromium
# (tests/test_service_browser.py skips with a message without it); Playwright's own browser
# download cannot work offline, so it is never used.
if [ -n "$BROWSER" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${SCENETALK_NO_APT:-}" ]; then
    echo "bootstrap: installing chromium with apt-get for the web page's browser tests (SCENETALK_NO_APT=1 skips this)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "bootstrap: could not install chromium; the browser tests will skip" >&2
  fi
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ -n "$LIGHT" ]; then
  # Not editable: the venv holds the package as a wheel would (the shipped graphs, photos and
  # fonts included), and nothing of the train extra.
  [ -x .venv-light/bin/python ] || "$PY" -m venv .venv-light
  .venv-light/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv-light/bin/python -m pip install -q --disable-pip-version-check ".[dev]"
  # this checkout's code, even where an earlier run installed the same version
  .venv-light/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps .
  if .venv-light/bin/python -c "import torch" 2>/dev/null; then
    echo "bootstrap: torch is importable in .venv-light; the light install must not need it" >&2
    exit 1
  fi
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[train,cluster,dev]"
