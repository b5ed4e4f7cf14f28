"""The operations guide's rollout phases, as the settings each one writes.

Values are the guide's "Migration Strategy" blocks. Every phase also writes
``USE_ENHANCED=true``, and phases 2 and 3 write ``ENABLE_PARALLEL=true``: the
guide's phase 3 block relies on phase 2 having set it, but a file coming
straight from phase 1 must still give a parallel run.
"""

from __future__ import annotations

from ..config import Settings

PHASES: dict[int, dict[str, str]] = {
    1: {"USE_ENHANCED": "true", "ENABLE_PARALLEL": "false"},
    2: {"USE_ENHANCED": "true", "ENABLE_PARALLEL": "true", "PARALLEL_MAX_WORKERS": "3", "PARALLEL_RATE_LIMIT": "0.2"},
    3: {"USE_ENHANCED": "true", "ENABLE_PARALLEL": "true", "PARALLEL_MAX_WORKERS": "5", "PARALLEL_RATE_LIMIT": "0.1"},
}
ROLLBACK_FLAGS: dict[str, str] = {"USE_ENHANCED": "false", "ENABLE_PARALLEL": "false"}
HEADER = (
    "# Rollout flags written by migrate_to_parallel.py (phase/migrate/rollback).\n"
    "# pipeline_enhanced.sh loads this file; exported variables win over it, it wins over .env.\n"
)


def describe_phase(settings: Settings) -> str:
    """The phase the effective flags correspond to."""
    if not settings.use_enhanced:
        return "original pipeline (USE_ENHANCED=false)"
    if not settings.enable_parallel:
        return "phase 1 (enhanced, sequential)"
    workers, rate = settings.parallel_max_workers, settings.parallel_rate_limit
    if (workers, rate) == (3, 0.2):
        return "phase 2 (parallel, 3 workers, 0.2 s)"
    if (workers, rate) == (5, 0.1):
        return "phase 3 (parallel, 5 workers, 0.1 s)"
    return f"custom (parallel, {workers} workers, {rate:g} s)"
