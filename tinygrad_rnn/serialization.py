"""``save``/``load``: nested checkpoints as a NumPy ``.npz`` plus JSON, never pickle.

``obj`` is any nesting of dicts, lists and tuples over ``str``, ``int``
(any size: RNG states hold 128-bit ints), ``float``, ``bool``, ``None``,
Tensors and NumPy/CuPy arrays, for example::

    save({"model": model.state_dict(), "optim": optimizer.state_dict(),
          "epoch": 3, "rng": get_rng_state()}, "checkpoint.npz")

The archive holds each array as ``a0``, ``a1``, ... and one JSON document
(``__structure__``, stored as UTF-8 bytes) describing the nesting; every JSON
object in it is a tagged node, so dict keys keep their types (an optimizer's
state is keyed by int positions) and tuples stay tuples. ``load`` opens the
archive with ``allow_pickle=False``: a file holding pickled objects is refused.

Writes are atomic (:func:`atomic_open`, the project's one atomic writer, which
the translator uses for its own files too): the archive is written to a
temporary file in the target's directory, flushed to disk and renamed over the
target, so an interrupted save leaves the previous file intact and no temporary
file behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile

from . import backend
from .npz_reader import NpzReader
from .tensor import Tensor

FORMAT = "tinygrad_rnn.checkpoint"
VERSION = 1
_STRUCTURE_KEY = "__structure__"
MAX_DEPTH = 100  # nesting levels of containers; real checkpoints use fewer than 10


class _Encoder:
    """Turns a nested object into JSON-ready nodes, collecting arrays as ``a<k>``."""

    def __init__(self):
        self.arrays = {}

    def _array(self, array):
        key = f"a{len(self.arrays)}"
        self.arrays[key] = backend.as_numpy(array)
        if self.arrays[key].dtype.kind not in "biufc":
            raise TypeError(f"cannot save an array of dtype {self.arrays[key].dtype}: only numeric and bool "
                            "arrays are stored (object arrays would need pickle)")
        return key

    def encode(self, obj, where="obj", depth=0):
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if depth >= MAX_DEPTH:  # load refuses deeper structures: never write one it cannot read
            raise ValueError(f"cannot save {where[:80]}...: nested deeper than {MAX_DEPTH} levels")
        if isinstance(obj, Tensor):
            return {"tensor": self._array(obj.data), "device": obj.device, "requires_grad": obj.requires_grad}
        if backend.is_array(obj):
            return {"array": self._array(obj), "device": backend.device_of(obj)}
        if isinstance(obj, backend.numpy.generic):  # a NumPy scalar: stored as the Python number
            return self.encode(obj.item(), where, depth)
        if isinstance(obj, dict):
            return {"dict": [[self.encode(key, f"a key of {where}", depth + 1),
                              self.encode(value, f"{where}[{key!r}]", depth + 1)] for key, value in obj.items()]}
        if isinstance(obj, tuple):
            return {"tuple": [self.encode(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(obj)]
        raise TypeError(f"cannot save {where} of type {type(obj).__name__}: save stores dicts, lists, tuples, "
                        "str, int, float, bool, None, Tensors and arrays (convert it to one of these)")


def save(obj, path) -> None:
    """Write ``obj`` (nested containers of numbers, strings, Tensors, arrays) to ``path`` atomically."""
    encoder = _Encoder()
    structure = {"format": FORMAT, "version": VERSION, "root": encoder.encode(obj)}
    text = json.dumps(structure, allow_nan=True)
    arrays = dict(encoder.arrays)
    arrays[_STRUCTURE_KEY] = backend.numpy.frombuffer(text.encode("utf-8"), dtype="uint8")

    with atomic_open(path, "wb") as file:
        backend.numpy.savez(file, **arrays)


@contextlib.contextmanager
def atomic_open(path, mode="wb", encoding="utf-8"):
    """Open a temporary file beside ``path``; when the ``with`` body ends cleanly it replaces ``path``.

    A reader, or a crash half-way through, never sees a half-written file: ``path`` keeps its old
    content or gets the complete new one. The temporary file is flushed to disk (``fsync``) before
    the rename, takes a normal file's permissions (``0o666`` less the umask) and lives in the same
    directory, because a rename is atomic only within one filesystem; the directory is synced after
    the rename so the rename itself survives a power cut. If the body raises, the temporary file is
    deleted and ``path`` is untouched.

    Args:
        path: the destination; its directory must exist.
        mode: ``"wb"`` (binary) or ``"w"`` (text).
        encoding: the text encoding for ``"w"``.
    Yields:
        the open temporary file; its ``name`` is the temporary path (to check the content
        before it replaces ``path``, e.g. a download).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes with mode 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(descriptor)
    try:
        with open(temporary, mode, encoding=None if "b" in mode else encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private (0600); give it a normal file's mode
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    _fsync_directory(directory)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class _Decoder:
    """Rebuilds the saved object from the structure, reading each array entry at most once."""

    def __init__(self, archive, path, device):
        self.archive, self.path, self.device = archive, path, device
        self.used = set()

    def damaged(self, detail: str) -> ValueError:
        return self.archive.damaged(f"its structure {detail}")

    def _array(self, node, tag):
        key, device = node[tag], node.get("device", "cpu")
        if not isinstance(key, str) or device not in ("cpu", "cuda"):
            raise self.damaged(f"has a malformed {tag} node {node!r:.80}")
        if key in self.used:  # each array is stored once; a repeat would multiply the memory read
            raise self.damaged(f"refers to array {key!r} twice")
        self.used.add(key)
        try:
            array = self.archive.read(key)
        except KeyError:
            raise self.damaged(f"refers to a missing array {key!r}") from None
        try:
            return backend.to_device(array, self.device or device)
        except RuntimeError as error:
            raise RuntimeError(f"{error}; to read this checkpoint on another device pass "
                               "load(path, device='cpu')") from error

    def decode(self, node, depth=0):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if depth >= MAX_DEPTH:
            raise self.damaged(f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, list):
            return [self.decode(item, depth + 1) for item in node]
        if not isinstance(node, dict):
            raise self.damaged(f"holds an unknown node {node!r:.80}")
        if "tensor" in node:
            array = self._array(node, "tensor")
            requires_grad = node.get("requires_grad", False)
            if requires_grad not in (True, False) or (requires_grad and array.dtype.kind != "f"):
                raise self.damaged(f"asks for requires_grad={requires_grad!r:.20} on an array of dtype {array.dtype}")
            return Tensor(array, requires_grad=requires_grad)
        if "array" in node:
            return self._array(node, "array")
        if "dict" in node and isinstance(node["dict"], list):
            result = {}
            for pair in node["dict"]:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise self.damaged(f"holds a malformed dict item {pair!r:.80}")
                key = _hashable(self.decode(pair[0], depth + 1))
                try:
                    hash(key)
                except TypeError:
                    raise self.damaged(f"has a dict key of type {type(key).__name__}") from None
                result[key] = self.decode(pair[1], depth + 1)
            return result
        if "tuple" in node and isinstance(node["tuple"], list):
            return tuple(self.decode(item, depth + 1) for item in node["tuple"])
        raise self.damaged(f"holds an unknown node {sorted(map(str, node))}")


def _hashable(key):
    return tuple(_hashable(item) for item in key) if isinstance(key, list) else key


def load(path, device=None):
    """Read what ``save`` wrote. Tensors and arrays go to ``device`` (default: where they were saved).

    Raises ``ValueError``, naming the file, for anything that is not an intact
    tinygrad_rnn checkpoint: another kind of file, a truncated or corrupt one,
    one holding pickled objects (never unpickled) or entries larger than the
    file can hold (checked before anything is allocated: see ``npz_reader``).
    A file that cannot be opened raises ``OSError``.
    """
    path = os.fspath(path)
    device = backend.normalize_device(device) if device is not None else None
    with NpzReader(path) as archive:
        if _STRUCTURE_KEY not in archive.names:
            raise ValueError(f"{path} is not a tinygrad_rnn checkpoint (no {_STRUCTURE_KEY!r} entry); "
                             "write checkpoints with tinygrad_rnn.save")
        text = archive.read(_STRUCTURE_KEY)
        if text.dtype != backend.numpy.uint8 or text.ndim != 1:
            raise archive.damaged(f"its structure entry has dtype {text.dtype} and shape {text.shape}")
        try:
            structure = json.loads(text.tobytes().decode("utf-8"))
        except RecursionError:
            raise archive.damaged(f"its structure is nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as error:  # bad UTF-8 or JSON
            raise archive.damaged(f"its structure is unreadable ({error})") from None
        if not isinstance(structure, dict) or structure.get("format") != FORMAT or "root" not in structure:
            raise ValueError(f"{path} is not a tinygrad_rnn checkpoint (unknown format)")
        version = structure.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise archive.damaged(f"its format version {version!r:.20} is not a number")
        if version > VERSION:
            raise ValueError(f"{path} was written by a newer tinygrad_rnn (format version "
                             f"{version}, this one reads up to {VERSION}); upgrade to load it")
        return _Decoder(archive, path, device).decode(structure["root"])


__all__ = ["save", "load", "atomic_open"]
