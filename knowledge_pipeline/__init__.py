"""knowledge_pipeline: capture feeds, articles and PDFs into a Sources store and enrich them."""

__version__ = "1.0.0"
USER_AGENT = f"knowledge-pipeline/{__version__} (+self-hosted; feed and article enrichment)"
