"""Reading sentence pairs in the manythings.org/anki format.

Each line is ``english<TAB>other[<TAB>attribution]``, UTF-8, as published at manythings.org/anki
and in the TensorFlow tutorial's ``spa-eng.zip`` (member ``spa-eng/spa.txt``). The file may be
plain text (``.txt``/``.tsv``) or a ``.zip`` holding it. By default the source is column 1 (the
non-English language) and the target column 0 (English): Spanish -> English.

Malformed lines (too few columns, an empty field, longer than :data:`MAX_LINE_BYTES`) are skipped
and reported by line number, or, with ``strict=True``, raise :class:`DataError`.

The file is streamed in 1 MiB chunks: memory follows the pairs kept, not the file's size, reading
stops at ``max_lines``, and a zip member that claims an absurd compression ratio (a zip bomb) is
refused before it is inflated. A damaged, encrypted or truncated zip is a one-line DataError.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
import unicodedata
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, Iterator

from translator.errors import DataError, decode_utf8, open_user_file, user_file_errors

Pair = tuple[str, str]

MAX_LINE_BYTES = 1 << 20
"""A line longer than this (1 MiB, some 150,000 words) is no sentence pair: it is skipped as
malformed without ever being held in memory whole."""

MAX_COMPRESSION_RATIO = 100
"""A zip member that claims to inflate to more than this many times its compressed size is refused
before it is read (a zip bomb). Text deflates 3-4x (spa-eng.zip: 2.9x); a file that truly compresses
better can be unzipped and given as a plain ``.txt``."""

_RATIO_CHECK_BYTES = 1 << 20  # members smaller than this are harmless whatever their ratio

# What zipfile and zlib raise on a damaged, encrypted or exotic archive (besides OSError).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, RuntimeError,
              NotImplementedError, ValueError, struct.error)


@dataclasses.dataclass(frozen=True)
class SkippedLine:
    """A malformed line: 1-based ``line_number`` in the text file and why it was skipped."""

    line_number: int
    reason: str


@dataclasses.dataclass
class PairsResult:
    """What :func:`read_pairs` read.

    Attributes:
        pairs: ``(source, target)`` sentences, in file order, stripped and NFC-normalised.
        line_numbers: 1-based line number of each pair (parallel to ``pairs``).
        skipped: the malformed lines that were left out.
        source: a description of where the text came from (``file`` or ``file.zip:member``).
    """

    pairs: list[Pair]
    line_numbers: list[int]
    skipped: list[SkippedLine]
    source: str

    @property
    def skipped_line_numbers(self) -> list[int]:
        return [skipped.line_number for skipped in self.skipped]

    def summary(self) -> str:
        """One line for a log, e.g. ``"read 115964 pairs from spa-eng.zip:spa-eng/spa.txt, skipped 2 lines (4, 9)"``."""
        message = f"read {len(self.pairs)} pairs from {self.source}"
        if self.skipped:
            shown = ", ".join(str(number) for number in self.skipped_line_numbers[:10])
            more = ", ..." if len(self.skipped) > 10 else ""
            message += f", skipped {len(self.skipped)} malformed lines ({shown}{more})"
        return message


def find_zip_member(archive: zipfile.ZipFile, member: str | None = None, *, archive_name: str = "archive") -> str:
    """Name of the text member to read inside ``archive``.

    Args:
        archive: an open zip file.
        member: the member to use; ``None`` picks the only ``.txt`` member that is not ``_about.txt``.
        archive_name: the archive's file name, for error messages.
    Raises:
        DataError: the requested member is missing, or there is not exactly one candidate.
    """
    names = [info.filename for info in archive.infolist() if not info.is_dir()]
    if member is not None:
        if member not in names:
            raise DataError(f"{archive_name} has no member {member!r}; it contains: {', '.join(names) or 'nothing'}")
        return member
    candidates = [
        name for name in names
        if name.lower().endswith(".txt") and PurePosixPath(name).name.lower() != "_about.txt"
    ]
    if len(candidates) != 1:
        found = "no .txt file" if not candidates else f"several .txt files ({', '.join(candidates)})"
        raise DataError(f"{archive_name} contains {found} besides _about.txt; name the member to read "
                        "(--data-member NAME)")
    return candidates[0]


def _zip_problem(path: Path, error: BaseException) -> DataError:
    return DataError(f"{path} is not a readable zip archive ({error or type(error).__name__}); "
                     "download or create it again")


def _check_compression_ratio(info: zipfile.ZipInfo, description: str) -> None:
    """Refuse a member whose header promises an absurd inflation (zipfile never yields more than it)."""
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > _RATIO_CHECK_BYTES and ratio > MAX_COMPRESSION_RATIO:
        raise DataError(f"{description} would inflate {info.compress_size:,} bytes to {info.file_size:,} "
                        f"({ratio:.0f}x; text compresses less than {MAX_COMPRESSION_RATIO}x): refusing a "
                        "possible zip bomb; if the file is genuine, unzip it and pass the text file")


_CHUNK_BYTES = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"


class _GuardedStream:
    """A binary stream whose read errors (a corrupt zip found half-way) become one-line DataErrors."""

    def __init__(self, stream: IO[bytes], path: Path, *, is_zip_member: bool = False):
        self._stream, self._path, self.is_zip_member = stream, path, is_zip_member

    def check_rest(self) -> None:
        """Read the rest of a zip member, keeping nothing: DataError if its data or CRC is corrupt."""
        if self.is_zip_member:
            while self.read(_CHUNK_BYTES):
                pass

    def read(self, size: int) -> bytes:
        with user_file_errors(self._path, "data file"):
            try:
                return self._stream.read(size)
            except ZIP_ERRORS as error:
                raise _zip_problem(self._path, error) from None


@contextlib.contextmanager
def open_data(path: str | os.PathLike, member: str | None = None) -> Iterator[tuple[_GuardedStream, str]]:
    """Open a text file, or a text member of a ``.zip``, for streaming.

    Args:
        path: a ``.txt``/``.tsv`` file, or a ``.zip`` archive (detected by content, not by name).
        member: for a zip, the member to read (default: see :func:`find_zip_member`).
    Yields:
        ``(stream, description)``: a binary stream with ``read(size)``, and ``"path"`` or
        ``"path:member"`` for messages. Nothing is read until the caller reads.
    Raises:
        DataError: missing or unreadable file, a corrupt, encrypted or bomb-like zip (also when the
            damage is only found while reading), a missing or ambiguous member.
    """
    path = Path(path)
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(open_user_file(path, "data file"))
        with user_file_errors(path, "data file"):
            is_zip = zipfile.is_zipfile(handle)
            handle.seek(0)
        if not is_zip:
            if member is not None:
                raise DataError(f"{path} is not a zip archive, so it has no member {member!r}")
            yield _GuardedStream(handle, path), str(path)
            return
        with user_file_errors(path, "data file"):
            try:
                archive = stack.enter_context(zipfile.ZipFile(handle))
                member = find_zip_member(archive, member, archive_name=str(path))
                description = f"{path}:{member}"
                info = archive.getinfo(member)
                if info.flag_bits & 0x1:
                    raise DataError(f"{description} is encrypted (password-protected); unzip it yourself "
                                    "and pass the text file")
                _check_compression_ratio(info, description)
                stream = stack.enter_context(archive.open(info))
            except ZIP_ERRORS as error:
                raise _zip_problem(path, error) from None
        yield _GuardedStream(stream, path, is_zip_member=True), description


def _raw_lines(stream: _GuardedStream, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(byte offset, line without its b"\\n")`` read in 1 MiB chunks; ``None`` for an over-long line."""
    pending, pending_offset, too_long = b"", 0, False
    chunk = stream.read(max(_CHUNK_BYTES, len(_UTF8_BOM)))
    if chunk.startswith(_UTF8_BOM):
        chunk, pending_offset = chunk[len(_UTF8_BOM):], len(_UTF8_BOM)
    while True:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield pending_offset, None if too_long or len(line) > max_line_bytes else line
            pending_offset += len(line) + 1
            too_long = False
        if len(pending) > max_line_bytes:  # keep only its length
            pending_offset += len(pending)
            pending, too_long = b"", True
        chunk = stream.read(_CHUNK_BYTES)
        if not chunk:
            break
    if pending or too_long:
        yield pending_offset, None if too_long else pending


def iter_lines(stream: _GuardedStream, description: str, max_line_bytes: int | None = None
               ) -> Iterator[tuple[int, str | None]]:
    """The lines of ``stream`` as ``(line_number, text)``, decoded one at a time.

    ``text`` is the line without its ``\\n`` (and ``\\r``), the file's BOM removed; it
    is ``None`` for a line longer than ``max_line_bytes`` (default :data:`MAX_LINE_BYTES`), which is
    skipped without being kept whole.
    Raises:
        DataError: bytes that are not UTF-8, naming ``description`` and the byte offset in the file.
    """
    limit = MAX_LINE_BYTES if max_line_bytes is None else max_line_bytes
    for line_number, (offset, raw) in enumerate(_raw_lines(stream, limit), start=1):
        if raw is None:
            yield line_number, None
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            stream.check_rest()  # bytes that are not UTF-8 in a zip are usually damage: say so if they are
            decode_utf8(raw, description, offset=offset)  # raises the DataError naming the byte offset
        yield line_number, text.rstrip("\r")


def read_pairs(
    path: str | os.PathLike,
    *,
    source_column: int = 1,
    target_column: int = 0,
    reverse: bool = False,
    strict: bool = False,
    member: str | None = None,
    max_lines: int | None = None,
) -> PairsResult:
    """Read ``(source, target)`` sentence pairs from a tab-separated file or a zip holding one.

    The file is streamed: memory grows with the pairs kept, never with the file's size, and
    reading stops after ``max_lines`` lines.

    Args:
        path: ``.txt``/``.tsv`` file or ``.zip`` archive (see :func:`open_data`).
        source_column: 0-based column of the source sentence (default 1: the non-English side).
        target_column: 0-based column of the target sentence (default 0: English).
        reverse: swap source and target after reading (English -> other language by default).
        strict: raise DataError at the first malformed line instead of skipping it.
        member: zip member to read (default: the single ``.txt`` that is not ``_about.txt``).
        max_lines: read only the first ``max_lines`` lines (malformed ones included); None: all.
    Returns:
        a :class:`PairsResult`: pairs (stripped, NFC-normalised), their line numbers, skipped lines.
    Raises:
        DataError: unreadable, corrupt or non-UTF-8 input, or (strict) a malformed line, naming
            file and line.
    """
    if source_column < 0 or target_column < 0 or source_column == target_column:
        raise ValueError(
            f"source_column and target_column must be two different indices >= 0, "
            f"got {source_column} and {target_column}"
        )
    needed_columns = max(source_column, target_column) + 1
    pairs: list[Pair] = []
    line_numbers: list[int] = []
    skipped: list[SkippedLine] = []
    with open_data(path, member) as (stream, description):
        for line_number, line in iter_lines(stream, description):
            if max_lines is not None and line_number > max_lines:
                break
            reason = None
            if line is None:
                reason = f"longer than {MAX_LINE_BYTES:,} bytes"
            else:
                columns = line.split("\t")
                if len(columns) < needed_columns:
                    reason = f"{len(columns)} tab-separated column(s), need at least {needed_columns}"
                else:
                    source, target = columns[source_column].strip(), columns[target_column].strip()
                    if not source or not target:
                        empty = source_column if not source else target_column
                        reason = f"column {empty} is empty"
            if reason is not None:
                if strict:
                    raise DataError(f"{description}, line {line_number}: malformed line: {reason}")
                skipped.append(SkippedLine(line_number, reason))
                continue
            source, target = _nfc(source), _nfc(target)
            pairs.append((target, source) if reverse else (source, target))
            line_numbers.append(line_number)
    return PairsResult(pairs=pairs, line_numbers=line_numbers, skipped=skipped, source=description)


def _nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)
