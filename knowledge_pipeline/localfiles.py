"""Local files read as untrusted input: a regular file, opened without blocking, never a door out of its folder.

``PDF_DIR`` is a folder anyone may drop files into: a symlink there can lead
to a private file elsewhere (or ``/etc/shadow``), a FIFO blocks a reader
forever, a device may never end. :func:`open_regular` opens only a regular
file, whose real path is inside ``within`` when one is given, and refuses
everything else with a one-line reason.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import ExtractionError

_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symlink"))


def open_regular(path: Path, *, what: str = "file", within: Path | None = None,
                 within_name: str = "PDF_DIR") -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (inside ``within``); else ExtractionError.

    The real path is checked first, then opened without following a symlink
    and without blocking, and checked again on the open file, so a file
    swapped for a link or a FIFO in between is refused too.
    """
    real = Path(os.path.realpath(path))
    if within is not None and not real.is_relative_to(os.path.realpath(within)):
        raise ExtractionError(f"{what} {path} leads outside {within_name} (to {real}): not read")
    try:
        kind = _kind(os.lstat(real).st_mode)
        if kind is not None:
            raise ExtractionError(f"{what} is not a regular file ({kind}): {path}")
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ExtractionError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ExtractionError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    kind = _kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise ExtractionError(f"{what} is not a regular file ({kind}): {path}")
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return os.fdopen(fd, "rb")


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "special file")
