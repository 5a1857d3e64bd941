#!/usr/bin/env bash
# Create .venv (Python 3.11) with the pinned environment of requirements.txt, register the
# `petaction` Jupyter kernel, and install Chromium (for the PDF report) where apt exists.
# Run by `make setup`; safe to re-run (pip skips what is installed, and caches the mmcv build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || { echo "setup: $PY not found: install Python 3.11 (or set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)
stage() { awk -v s="$1" '/^# stage:/{cur=$3; next} /^#/ || NF==0 {next} cur==s {print $1}' requirements.txt; }

"${PIP[@]}" $(stage build)
# Full mmcv (with its compiled ops) has no wheel for this torch: build it against the
# installed torch. The first build takes ~14 min on 2 cores; pip caches the wheel.
if ! .venv/bin/python -c "import mmcv, mmcv.ops" 2>/dev/null; then
  echo "setup: building mmcv with ops (first time ~14 min; cached afterwards)"
  MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "${PIP[@]}" --no-build-isolation $(stage mmcv)
fi
"${PIP[@]}" $(stage main)
"${PIP[@]}" --no-deps $(stage nodeps)
"${PIP[@]}" --no-deps --no-build-isolation -e .
.venv/bin/python -m ipykernel install --sys-prefix --name petaction --display-name petaction >/dev/null

# Debian's chromium prints the PDF report; poppler-utils' pdftotext lets the tests read it back.
need=()
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
command -v pdftotext >/dev/null || need+=(poppler-utils)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's ${need[*]} (the PDF report and its test)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: WARNING no root apt-get for ${need[*]}: the PDF report needs chromium (or PETACTION_CHROMIUM)" >&2
  fi
fi
touch .venv/.setup-stamp
echo "setup: ok"
