#!/usr/bin/env bash
# Create .venv in the repository and install scenetalk with pinned dependencies.
# torch is installed first, pinned to the CPU build, so that nothing pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
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
if [ "${1:-}" = "--with-browser" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${SCENETALK_NO_APT:-}" ]; then
    echo "bootstrap: installing chromium with apt-get for the web page's browser tests (SCENETALK_NO_APT=1 skips this)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "bootstrap: could not install chromium; the browser tests will skip" >&2
  fi
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
