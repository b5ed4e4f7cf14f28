#!/usr/bin/env python3
"""The parallel enrichment engine, re-exported for scripts and notebooks.

``ParallelEnricher`` runs the one per-item processing function with
PARALLEL_MAX_WORKERS asyncio workers under shared per-service rate limits.
Run the pipeline with ``python3 enrich_rss_enhanced.py --parallel`` (or
``ENABLE_PARALLEL=true ./pipeline_enhanced.sh``); running this file does that.
"""

import sys

if __name__ == "__main__":  # before the imports below, which need the dependencies
    from knowledge_pipeline.project_venv import use_project_venv

    use_project_venv()

from knowledge_pipeline.engine import EngineResult, ParallelEnricher
from knowledge_pipeline.processing import Deps, process_item
from knowledge_pipeline.services import ServiceGateway, ServiceLimiter

__all__ = ["Deps", "EngineResult", "ParallelEnricher", "ServiceGateway", "ServiceLimiter", "process_item"]

if __name__ == "__main__":
    from knowledge_pipeline.cli.scripts import enrich_main

    sys.exit(enrich_main(["--parallel", *sys.argv[1:]], script="parallel_enricher.py", capture="feeds", enhanced=True))
