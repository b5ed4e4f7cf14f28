#!/usr/bin/env bash
# The enhanced pipeline, driven by the operations guide's feature flags:
#   USE_ENHANCED    (default true)  false runs the original scripts
#   ENABLE_PARALLEL (default false) true passes --parallel to the enhanced scripts
# Sources: enrich_rss*.py captures the feed list (FEEDS_FILE, RSS_FEEDS), WEBSITE_SOURCES and the
# EMAIL_IMAP_* mailbox, enrich*.py captures PDF_DIR and DRIVE_FOLDER_ID (capture/registry.py);
# a source left unset is skipped silently.
# Settings come from the environment, then .env.migration, then .env (a variable
# already exported always wins), read by Python for this wrapper and every script
# alike (python3 -m knowledge_pipeline.shellenv). Two runs never overlap: a second
# one exits at once with code 75. Exit codes: see README ("Exit codes").
set -uo pipefail

PROJECT_DIR="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
cd "$PROJECT_DIR" || exit 1

# say FD LINE: one line to stdout (1) or stderr (2), dated like the scripts' lines when not a terminal (cron's log)
say() {
    local fd=$1
    shift
    if [ -t "$fd" ]; then echo "$*" >&"$fd"; else echo "$(date '+%Y-%m-%d %H:%M:%S') $*" >&"$fd"; fi
}
EXIT_CONFIG=2
EXIT_LOCKED=75

PYTHON=python3
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python

# Python reads .env and .env.migration (python-dotenv, one reader for every script),
# validates every setting and prints the few this wrapper needs as shell assignments.
settings=$("$PYTHON" -m knowledge_pipeline.shellenv --for pipeline_enhanced.sh)
code=$?
if [ "$code" -ne 0 ]; then
    [ "$code" -eq 1 ] && say 2 "pipeline_enhanced.sh: cannot read the settings with $PYTHON (run make install)"
    exit $EXIT_CONFIG
fi
use_enhanced=true enable_parallel=false log_dir=logs workers=5 rate_limit=0.1
eval "$settings"

LOCK_DIR="$log_dir"
mkdir -p "$LOCK_DIR" || { say 2 "pipeline_enhanced.sh: cannot create LOG_DIR '$LOCK_DIR'"; exit $EXIT_CONFIG; }
LOCK_FILE="$LOCK_DIR/.pipeline.lock"
exec 9>>"$LOCK_FILE" || { say 2 "pipeline_enhanced.sh: cannot open lock file $LOCK_FILE"; exit $EXIT_CONFIG; }
if ! flock -n 9; then
    say 2 "pipeline_enhanced.sh: another pipeline run is active (lock $LOCK_FILE); exiting with code $EXIT_LOCKED"
    exit $EXIT_LOCKED
fi

if [ "$use_enhanced" = true ]; then
    steps=(enrich_rss_enhanced.py enrich_enhanced.py)
    args=()
    if [ "$enable_parallel" = true ]; then
        args=(--parallel)
        mode="enhanced, parallel: $workers workers, rate limit ${rate_limit}s"
    else
        mode="enhanced, sequential"
    fi
    mode="$mode; logs: $log_dir/pipeline.jsonl"
else
    steps=(enrich_rss.py enrich.py)
    args=()
    mode="original scripts (USE_ENHANCED=false): console lines only, no JSONL log"
fi
say 1 "== knowledge pipeline: $mode =="

for step in "${steps[@]}"; do
    "$PYTHON" "$step" "${args[@]}" "$@"
    code=$?
    if [ "$code" -ne 0 ]; then
        say 2 "pipeline_enhanced.sh: $step failed with exit code $code; stopping"
        exit "$code"
    fi
done
