#!/usr/bin/env python3
"""Original RSS/website enrichment: capture RSS_FEEDS, then enrich RSS and Website items one at a time.

Run with --help for options. The logic lives in knowledge_pipeline; this file only dispatches.
"""

import sys


if __name__ == "__main__":
    from knowledge_pipeline.project_venv import use_project_venv

    use_project_venv()
    from knowledge_pipeline.cli.scripts import enrich_main

    sys.exit(enrich_main(sys.argv[1:], script="enrich_rss.py", capture="feeds", enhanced=False))
