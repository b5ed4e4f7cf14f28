"""Command-line faces of the package: argument parsing, console output, progress bar.

The only part of the package that prints (with ``commands/``).
"""

from __future__ import annotations

import os
import sys
from typing import Callable

EXIT_READER_GONE = 141  # 128 + SIGPIPE: what a shell reports for `yes | head`


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 item``, ``3 items``, ``0 items``: a count people read, in the right number."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def drop_stdout() -> None:
    """Point stdout at /dev/null once its reader went away (``| head``), so no later write or flush fails."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def exit_code_of(main: Callable[[], int]) -> int:
    """``main()``'s exit code; a closed stdout ends it quietly with 141 instead of a traceback."""
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        drop_stdout()
        return EXIT_READER_GONE
