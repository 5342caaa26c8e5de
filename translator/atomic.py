"""Atomic file writes: write to a temporary file in the same directory, then ``os.replace``.

A reader (or a crash half-way through) never sees a half-written file: the destination either keeps
its old content or gets the complete new content. The temporary file lives in the destination's
directory because ``os.replace`` is atomic only within one filesystem.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on a clean exit it replaces ``path``.

    Args:
        path: the destination file. Its directory must exist.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: text encoding for ``"w"``; ignored for ``"wb"``.

    Yields the open temporary file. If the ``with`` body raises, the temporary file is deleted
    and ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports mode 'w' or 'wb', got {mode!r}")
    path = Path(path)
    file_descriptor, temporary_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(file_descriptor, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file private (0600); give it the usual permissions of a data file.
        os.chmod(temporary_name, 0o644)
        os.replace(temporary_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary_name)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)
