"""Errors the translator reports to its user, and the one reader of files the user names.

Every class here is a mistake the user can fix, not a bug. The CLI turns each into ONE line on
stderr and exit status 2 (:class:`UserError`), so every message says what was wrong, where (file,
line, byte offset, option) and what to do instead. Programming errors are not caught anywhere:
they keep their traceback.

- :class:`DataError`: the user's data or data files (missing, corrupt, malformed, not UTF-8).
- :class:`ConfigError`: an option value or combination (the message names the option).
- :class:`CheckpointError`: a model directory or checkpoint that is missing, corrupt or from an
  incompatible version.
- :class:`PlotUnavailable`: a plot was asked for and matplotlib is not installed.
- :class:`UserError`: how the CLI prints any of them (a ``click.ClickException``, exit status 2).

:func:`read_user_file` (:func:`open_user_file` to stream, :func:`user_file_errors` around the
reads) and :func:`decode_utf8` are the only places that turn ``OSError`` and
``UnicodeDecodeError`` on a user's file into one of these errors.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Iterator

import click

USER_ERROR_EXIT = 2


class TranslatorError(Exception):
    """Base of the mistakes a user can fix; the CLI shows the message as one line."""


class DataError(TranslatorError):
    """A problem with the user's data or data files (missing, corrupt, malformed), not a bug."""


class ConfigError(TranslatorError, ValueError):
    """An option value or combination the user must change (one line, names the option)."""


class CheckpointError(TranslatorError):
    """A model directory or checkpoint that is missing, corrupt or from an incompatible version."""


class PlotUnavailable(TranslatorError, ImportError):
    """matplotlib is not installed."""


class UserError(click.ClickException):
    """A mistake the user can fix, as the CLI prints it: one line, exit status 2."""

    exit_code = USER_ERROR_EXIT


def read_user_file(path: str | os.PathLike, what: str = "file", error: type[Exception] = DataError,
                   missing: str | None = None) -> bytes:
    """The bytes of a file the user named; any OS error becomes ``error`` naming the file.

    Args:
        path: the file.
        what: its role in the messages, e.g. ``"config file"`` -> "config file a.toml does not exist".
        error: the exception class raised (a :class:`TranslatorError`).
        missing: the message when the file does not exist (default: "<what> <path> does not exist").
    Raises:
        error: missing file, a directory, no permission, an I/O error.
    """
    with user_file_errors(path, what, error, missing):
        return Path(path).read_bytes()


def open_user_file(path: str | os.PathLike, what: str = "file", error: type[Exception] = DataError,
                   missing: str | None = None) -> BinaryIO:
    """A file the user named, open for reading bytes (to stream it); errors as :func:`read_user_file`."""
    with user_file_errors(path, what, error, missing):
        return open(path, "rb")  # noqa: SIM115 - the caller closes it


@contextlib.contextmanager
def user_file_errors(path: str | os.PathLike, what: str = "file", error: type[Exception] = DataError,
                     missing: str | None = None) -> Iterator[None]:
    """Turn an OSError raised inside the block into ``error`` naming ``path`` (see :func:`read_user_file`)."""
    try:
        yield
    except FileNotFoundError:
        raise error(missing or f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{path} is a directory, not a {what}") from None
    except OSError as problem:
        raise error(f"cannot read {what} {path}: {problem.strerror or problem}") from None


def decode_utf8(data: bytes, name: str, error: type[Exception] = DataError, offset: int = 0) -> str:
    """``data`` as text (a leading byte-order mark dropped); ``error`` naming ``name`` and the byte offset if not UTF-8.

    ``offset``: where ``data`` starts in the file, for a file decoded piece by piece.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise error(f"{name} is not valid UTF-8: byte 0x{data[problem.start]:02x} at byte offset "
                    f"{offset + problem.start}; convert it to UTF-8") from None
    return text.removeprefix("\ufeff")
