"""Reading sentence pairs in the manythings.org/anki format.

Each line is ``english<TAB>other[<TAB>attribution]``, UTF-8, as published at manythings.org/anki
and in the TensorFlow tutorial's ``spa-eng.zip`` (member ``spa-eng/spa.txt``). The file may be
plain text (``.txt``/``.tsv``) or a ``.zip`` holding it. By default the source is column 1 (the
non-English language) and the target column 0 (English): Spanish -> English.

Malformed lines (too few columns, an empty field) are skipped and reported by line number, or,
with ``strict=True``, raise :class:`DataError`.
"""

from __future__ import annotations

import dataclasses
import io
import os
import unicodedata
import zipfile
from pathlib import PurePosixPath

from translator.errors import DataError, decode_utf8, read_user_file

Pair = tuple[str, str]


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
        raise DataError(f"{archive_name} contains {found} besides _about.txt; name the member to read explicitly")
    return candidates[0]


def read_text(path: str | os.PathLike, member: str | None = None) -> tuple[str, str]:
    """Read a UTF-8 text file, or a text member of a ``.zip``.

    Args:
        path: a ``.txt``/``.tsv`` file, or a ``.zip`` archive (detected by content, not by name).
        member: for a zip, the member to read (default: see :func:`find_zip_member`).
    Returns:
        ``(text, description)``, description being ``"path"`` or ``"path:member"``.
    Raises:
        DataError: missing or unreadable file, corrupt zip, or bytes that are not UTF-8 (the
            message names the file and the byte offset of the first bad byte).
    """
    data = read_user_file(path, "data file")
    description = str(path)
    if zipfile.is_zipfile(io.BytesIO(data)):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                member = find_zip_member(archive, member, archive_name=str(path))
                description = f"{path}:{member}"
                data = archive.read(member)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
            raise DataError(f"{path} is not a readable zip archive ({error}); download it again") from None
    elif member is not None:
        raise DataError(f"{path} is not a zip archive, so it has no member {member!r}")
    return decode_utf8(data, description), description


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

    Args:
        path: ``.txt``/``.tsv`` file or ``.zip`` archive (see :func:`read_text`).
        source_column: 0-based column of the source sentence (default 1: the non-English side).
        target_column: 0-based column of the target sentence (default 0: English).
        reverse: swap source and target after reading (English -> other language by default).
        strict: raise DataError at the first malformed line instead of skipping it.
        member: zip member to read (default: the single ``.txt`` that is not ``_about.txt``).
        max_lines: read only the first ``max_lines`` lines (malformed ones included); None: all.
    Returns:
        a :class:`PairsResult`: pairs (stripped, NFC-normalised), their line numbers, skipped lines.
    Raises:
        DataError: unreadable or non-UTF-8 input, or (strict) a malformed line, naming file and line.
    """
    if source_column < 0 or target_column < 0 or source_column == target_column:
        raise ValueError(
            f"source_column and target_column must be two different indices >= 0, "
            f"got {source_column} and {target_column}"
        )
    text, description = read_text(path, member)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    if max_lines is not None:
        lines = lines[:max_lines]
    needed_columns = max(source_column, target_column) + 1
    pairs: list[Pair] = []
    line_numbers: list[int] = []
    skipped: list[SkippedLine] = []
    for line_number, line in enumerate(lines, start=1):
        columns = line.rstrip("\r").split("\t")
        reason = None
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
