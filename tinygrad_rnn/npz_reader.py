"""A bounded, pickle-free reader of ``.npz`` archives, for checkpoints that may be damaged or hostile.

``numpy.load`` trusts the file: an entry whose ``.npy`` header claims 400 GB
makes it allocate 400 GB before it reads a byte, and its errors speak of
``allow_pickle``. This reader checks every entry against the file first:

- only stored or deflated, unencrypted entries; a stored entry's size is its
  size on disk, a deflated one's at most ``MAX_DEFLATE_RATIO`` times that, and
  neither more than the file holds;
- the header must describe exactly the bytes the entry holds, with a numeric or
  bool dtype (an object dtype would need pickle and is refused);

so reading an entry allocates no more than its own bytes, and all entries
together at most ``MAX_DEFLATE_RATIO`` times the file's size. Anything wrong
raises ``ValueError`` naming the file and what is wrong with it; a file that
cannot be opened raises ``OSError`` as ``open`` does.
"""
from __future__ import annotations

import os
import struct
import zipfile
import zlib

from . import backend

MAX_DEFLATE_RATIO = 1100  # zlib's deflate cannot compress by more than about 1032:1
_NUMERIC_KINDS = "biufc"
# What a damaged zip or .npy header can raise inside zipfile, zlib and numpy.lib.format.
_PARSE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error, OverflowError,
                 NotImplementedError, RuntimeError, KeyError, IndexError, TypeError, SyntaxError)


class NpzReader:
    """``with NpzReader(path) as archive: archive.names, archive.read(name) -> ndarray``."""

    def __init__(self, path: str):
        self.path = path
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise

    def _open(self):
        start = self._file.read(6)
        if start.startswith(b"\x93NUMPY"):
            raise ValueError(f"{self.path} is a single .npy array, not a tinygrad_rnn checkpoint")
        if not start.startswith(b"PK"):
            raise ValueError(f"{self.path} is not a tinygrad_rnn checkpoint (not a .npz archive); "
                             "nothing in it was read, so it was never unpickled")
        self._file.seek(0)
        self.file_size = os.fstat(self._file.fileno()).st_size
        try:
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except _PARSE_ERRORS as error:
            raise self.damaged(f"its zip directory is unreadable ({_describe(error)})") from None
        self._entries = {info.filename[:-4]: info for info in infos if info.filename.endswith(".npy")}

    @property
    def names(self):
        return list(self._entries)

    def damaged(self, detail: str) -> ValueError:
        return ValueError(f"{self.path} is not a readable tinygrad_rnn checkpoint: {detail}")

    def read(self, name: str):
        """The array stored as ``name`` (a NumPy array); KeyError if there is none."""
        info = self._entries[name]
        self._check_entry_sizes(name, info)
        try:
            with self._zip.open(info) as entry:
                shape, fortran_order, dtype = _read_header(entry)
                self._check_dtype(name, dtype)
                count = 1
                for size in shape:
                    count *= size
                expected = count * dtype.itemsize
                held = info.file_size - entry.tell()
                if expected != held:
                    raise self.damaged(f"entry {name!r} claims shape {shape} of {dtype} ({expected:,} bytes) but "
                                       f"holds {held:,} bytes")
                array = backend.numpy.empty(count, dtype=dtype)  # bounded by the checks above
                _read_into(entry, array.view(backend.numpy.uint8), name, self)
        except ValueError as error:
            if str(error).startswith(self.path):
                raise
            raise self.damaged(f"entry {name!r}: {_describe(error)}") from None
        except _PARSE_ERRORS as error:
            raise self.damaged(f"entry {name!r}: {_describe(error)}") from None
        return array.reshape(shape, order="F" if fortran_order else "C")

    def _check_entry_sizes(self, name, info):
        if info.flag_bits & 0x1:
            raise self.damaged(f"entry {name!r} is encrypted")
        if info.compress_size > self.file_size:
            raise self.damaged(f"entry {name!r} claims {info.compress_size:,} bytes but the file has "
                               f"{self.file_size:,}")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise self.damaged(f"stored entry {name!r} claims {info.file_size:,} bytes but holds "
                                   f"{info.compress_size:,}")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024:
                raise self.damaged(f"entry {name!r} claims to inflate {info.compress_size:,} bytes to "
                                   f"{info.file_size:,}, more than deflate can")
        else:
            raise self.damaged(f"entry {name!r} uses zip compression method {info.compress_type} (checkpoints are "
                               "stored or deflated)")

    def _check_dtype(self, name, dtype):
        if dtype.hasobject:
            raise ValueError(f"{self.path}: entry {name!r} holds pickled Python objects; refusing to load it "
                             "(tinygrad_rnn checkpoints never contain pickles)")
        if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise self.damaged(f"entry {name!r} has dtype {dtype}; checkpoints hold numeric and bool arrays only")

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _read_header(entry):
    """``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``entry``, positioned at its data."""
    fmt = backend.numpy.lib.format
    version = fmt.read_magic(entry)
    if version == (1, 0):
        return fmt.read_array_header_1_0(entry)
    if version == (2, 0):
        return fmt.read_array_header_2_0(entry)
    raise ValueError(f".npy format version {version} is not supported")


def _read_into(entry, target, name, reader, chunk: int = 1 << 24) -> None:
    """Fill the uint8 array ``target`` from ``entry`` in chunks (no second full-size copy)."""
    position, total = 0, target.size
    while position < total:
        data = entry.read(min(chunk, total - position))
        if not data:
            raise reader.damaged(f"entry {name!r} is truncated")
        target[position:position + len(data)] = backend.numpy.frombuffer(data, dtype=backend.numpy.uint8)
        position += len(data)


def _describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


__all__ = ["NpzReader", "MAX_DEFLATE_RATIO"]
