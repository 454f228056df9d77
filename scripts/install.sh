#!/usr/bin/env bash
# One-command install: a virtual environment in .venv with gpt2atlas (editable), its dev and ray extras, plus a
# Chromium for static PNG export (kaleido) and the browser tests, and (where apt is at hand) Debian's
# python3.11-doc, whose reStructuredText sources are the English prose of `gpt2atlas train --data python-docs`.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && ! command -v google-chrome >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Chromium (PNG export and browser tests) ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: no Chrome/Chromium found; PNG export needs one (apt-get install chromium, or" \
         "'plotly_get_chrome'), HTML output works without it" >&2
  fi
fi

if ! ls -d /usr/share/doc/python3*/html/_sources >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing python3.11-doc (the English prose corpus 'python-docs' for training) ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-doc >/dev/null \
      || echo "warning: python3.11-doc could not be installed; --data python-docs will not be available" >&2
  else
    echo "warning: no Python documentation sources found; 'gpt2atlas train --data python-docs' needs" \
         "Debian's python3.11-doc (apt-get install python3.11-doc)" >&2
  fi
fi

[ -d .venv ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# A CPU build of torch first (a plain 'torch' requirement could pull a multi-GB CUDA build).
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,ray]"  # ray: CI runs the Ray engine's test (tests/test_corpus_ray.py)
echo "installed: $(python -c 'import gpt2atlas, torch; print("gpt2atlas", gpt2atlas.__version__, "torch", torch.__version__)')"
