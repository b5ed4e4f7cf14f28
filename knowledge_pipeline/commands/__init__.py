"""Subcommands of ``python3 -m knowledge_pipeline`` (each module has ``add_parser``)."""
