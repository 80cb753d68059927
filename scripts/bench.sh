#!/usr/bin/env bash
# make bench: every benchmark in bench/, each printing its own table. Figures are recorded in docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.test}"
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"  # development, explicitly (the default is off)
for script in bench/bench_*.py; do
  echo "== $script"
  .venv/bin/python "$script"
  echo
done
