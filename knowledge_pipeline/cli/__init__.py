"""Command-line faces of the package: argument parsing, console output, progress bar.

The only part of the package that prints.
"""
