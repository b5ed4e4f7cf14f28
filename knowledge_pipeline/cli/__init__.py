"""Command-line faces of the package: argument parsing, console output, progress bar.

The only part of the package that prints (with ``commands/``).
"""


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 item``, ``3 items``, ``0 items``: a count people read, in the right number."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
