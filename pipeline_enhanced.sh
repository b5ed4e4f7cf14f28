#!/usr/bin/env bash
# The enhanced pipeline, driven by the operations guide's feature flags:
#   USE_ENHANCED    (default true)  false runs the original scripts
#   ENABLE_PARALLEL (default false) true passes --parallel to the enhanced scripts
# Sources: enrich_rss*.py captures RSS_FEEDS and WEBSITE_SOURCES, enrich*.py captures PDF_DIR
# and DRIVE_FOLDER_ID (capture/registry.py); a source left unset is skipped silently.
# Settings come from the environment, then .env.migration, then .env
# (a variable already exported always wins). Two runs never overlap: a second
# one exits at once with code 75. Exit codes: see README ("Exit codes").
set -uo pipefail

PROJECT_DIR="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
cd "$PROJECT_DIR" || exit 1
EXIT_CONFIG=2
EXIT_LOCKED=75

# Export KEY=VALUE lines of a dotenv file, never overriding a variable already set.
load_env_file() {
    local file=$1 line key value
    [ -f "$file" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line#"${line%%[![:space:]]*}"}"
        case "$line" in ''|'#'*) continue ;; esac
        line="${line#export }"
        key="${line%%=*}"
        value="${line#*=}"
        key="${key%"${key##*[![:space:]]}"}"
        if ! [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ "$key" = "$line" ]; then
            echo "pipeline_enhanced.sh: $file: ignoring malformed line" >&2
            continue
        fi
        value="${value#"${value%%[![:space:]]*}"}"
        value="${value%"${value##*[![:space:]]}"}"
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then
            value="${BASH_REMATCH[1]}"
        else
            value="${value%% #*}"
        fi
        if [ -z "${!key+x}" ]; then
            export "$key=$value"
        fi
    done < "$file"
}

load_env_file .env.migration
load_env_file .env

flag() {
    local name=$1 default=$2 value
    value="${!name:-$default}"
    case "${value,,}" in
        1|true|yes|on) echo true ;;
        0|false|no|off) echo false ;;
        *) echo "pipeline_enhanced.sh: configuration error: $name='$value' is invalid: expected true or false" >&2
           return 1 ;;
    esac
}
USE_ENHANCED_FLAG=$(flag USE_ENHANCED true) || exit $EXIT_CONFIG
ENABLE_PARALLEL_FLAG=$(flag ENABLE_PARALLEL false) || exit $EXIT_CONFIG

PYTHON=python3
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python

LOCK_DIR="${LOG_DIR:-logs}"
mkdir -p "$LOCK_DIR" || { echo "pipeline_enhanced.sh: cannot create LOG_DIR '$LOCK_DIR'" >&2; exit $EXIT_CONFIG; }
LOCK_FILE="$LOCK_DIR/.pipeline.lock"
exec 9>>"$LOCK_FILE" || { echo "pipeline_enhanced.sh: cannot open lock file $LOCK_FILE" >&2; exit $EXIT_CONFIG; }
if ! flock -n 9; then
    echo "pipeline_enhanced.sh: another pipeline run is active (lock $LOCK_FILE); exiting with code $EXIT_LOCKED" >&2
    exit $EXIT_LOCKED
fi

if [ "$USE_ENHANCED_FLAG" = true ]; then
    steps=(enrich_rss_enhanced.py enrich_enhanced.py)
    args=()
    if [ "$ENABLE_PARALLEL_FLAG" = true ]; then
        args=(--parallel)
        mode="enhanced, parallel: ${PARALLEL_MAX_WORKERS:-5} workers, rate limit ${PARALLEL_RATE_LIMIT:-0.1}s"
    else
        mode="enhanced, sequential"
    fi
else
    steps=(enrich_rss.py enrich.py)
    args=()
    mode="original scripts (USE_ENHANCED=false)"
fi
echo "== knowledge pipeline: $mode; logs: ${LOG_DIR:-logs}/pipeline.jsonl =="

for step in "${steps[@]}"; do
    "$PYTHON" "$step" "${args[@]}" "$@"
    code=$?
    if [ "$code" -ne 0 ]; then
        echo "pipeline_enhanced.sh: $step failed with exit code $code; stopping" >&2
        exit "$code"
    fi
done
