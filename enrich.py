#!/usr/bin/env python3
"""Original PDF enrichment: capture PDF_DIR, then enrich PDF items one at a time.

Run with --help for options. The logic lives in knowledge_pipeline; this file only dispatches.
"""

import sys

from knowledge_pipeline.cli.scripts import enrich_main

if __name__ == "__main__":
    sys.exit(enrich_main(sys.argv[1:], script="enrich.py", capture="pdfs", enhanced=False))
