#!/usr/bin/env bash
# The original pipeline: feeds and websites (enrich_rss.py), then PDFs (enrich.py).
# Cron-safe: works from any directory, uses the project's .venv when present,
# and stops at the first failing step with that step's exit code.
set -uo pipefail

PROJECT_DIR="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
cd "$PROJECT_DIR" || exit 1

# say FD LINE: one line to stdout (1) or stderr (2), dated like the scripts' lines when not a terminal (cron's log)
say() {
    local fd=$1
    shift
    if [ -t "$fd" ]; then echo "$*" >&"$fd"; else echo "$(date '+%Y-%m-%d %H:%M:%S') $*" >&"$fd"; fi
}
PYTHON=python3
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python

for step in enrich_rss.py enrich.py; do
    "$PYTHON" "$step" "$@"
    code=$?
    if [ "$code" -ne 0 ]; then
        say 2 "pipeline.sh: $step failed with exit code $code; stopping"
        exit "$code"
    fi
done
