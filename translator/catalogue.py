"""The datasets the translator knows, where they live on disk, and how to download them.

``fetch("spa-eng")`` returns the path of a verified local ``spa-eng.zip``: a cached copy if there
is a good one (no network needed), else a fresh download. A download goes to a temporary file in
the data directory, is verified (the published file's SHA-256, zip integrity, expected member,
plausible number of pairs) and only then renamed into place, so an interrupted or corrupt download
never leaves a file behind; a cached copy is verified the same way, and replaced when damaged.

Where: :func:`data_dir` (``--data-dir`` flag, else ``$TRANSLATE_DATA_DIR``, else the checkout's
``datasets/``, else ``~/.cache/translator/datasets``). The URL can be overridden by argument or
``$TRANSLATE_DATA_URL`` (any URL urllib opens, ``file://`` included).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Mapping

from tqdm import tqdm

from tinygrad_rnn.serialization import atomic_open
from translator.corpus import ZIP_ERRORS, read_pairs
from translator.errors import DataError

DATA_DIR_ENV = "TRANSLATE_DATA_DIR"
DATA_URL_ENV = "TRANSLATE_DATA_URL"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A downloadable parallel corpus in the manythings.org/anki format.

    Attributes:
        name: catalogue key, e.g. ``"spa-eng"``.
        url: where to download it.
        filename: the local file name in the data directory.
        member: the text file inside the zip.
        min_pairs: fewer readable pairs than this means a wrong or truncated file.
        source_language, target_language: ISO 639-3 codes of the default direction.
        attribution: licence and credit to show the user.
        sha256: hex SHA-256 of the published file; a copy that differs is damaged (None: not checked).
    """

    name: str
    url: str
    filename: str
    member: str
    min_pairs: int
    source_language: str
    target_language: str
    attribution: str
    sha256: str | None = None


CATALOGUE: dict[str, DatasetInfo] = {
    "spa-eng": DatasetInfo(
        name="spa-eng",
        url="http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip",
        filename="spa-eng.zip",
        member="spa-eng/spa.txt",
        min_pairs=100_000,
        source_language="spa",
        target_language="eng",
        attribution="Tatoeba Project sentences via www.manythings.org/anki, CC-BY 2.0 (France); "
        "attribution: www.manythings.org/anki and tatoeba.org",
        sha256="928f3baefb67d0d4a8d76ec0c8c46a10501caef260efdf1d143ca401348f52f5",
    ),
}


def get_dataset(name: str, catalogue: Mapping[str, DatasetInfo] = CATALOGUE) -> DatasetInfo:
    """The catalogue entry called ``name``; DataError listing the known names if there is none."""
    try:
        return catalogue[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(catalogue))}") from None


def _default_data_dir() -> Path:
    # An editable install finds the checkout beside the package; ``pip install .`` run from a
    # checkout leaves the package in site-packages, so the working directory's datasets/ comes next.
    for checkout_datasets in (Path(__file__).resolve().parents[1] / "datasets", Path.cwd() / "datasets"):
        if checkout_datasets.is_dir() and os.access(checkout_datasets, os.W_OK):
            return checkout_datasets
    return Path.home() / ".cache" / "translator" / "datasets"


def data_dir(flag_value: str | os.PathLike | None = None) -> Path:
    """The directory datasets are read from and downloaded to.

    Args:
        flag_value: the CLI's ``--data-dir``, if given.
    Returns:
        ``flag_value``, else ``$TRANSLATE_DATA_DIR``, else the checkout's ``datasets/`` directory
        (beside the package, or in the working directory) when it exists and is writable, else
        ``~/.cache/translator/datasets``. Not created here.
    """
    if flag_value is not None and str(flag_value) != "":
        return Path(flag_value).expanduser()
    from_environment = os.environ.get(DATA_DIR_ENV)
    if from_environment:
        return Path(from_environment).expanduser()
    return _default_data_dir()


_resolve_data_dir = data_dir  # fetch() has a parameter of the same name


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str | os.PathLike, info: DatasetInfo) -> int:
    """Check that ``path`` is a complete copy of dataset ``info``.

    Returns:
        the number of readable pairs.
    Raises:
        DataError: a checksum that differs from the catalogue's, not a zip, a damaged or encrypted
            member, the member is missing, the text is not UTF-8, or fewer than ``info.min_pairs`` pairs.
    """
    path = Path(path)
    try:
        if info.sha256 is not None and (digest := sha256_of(path)) != info.sha256:
            raise DataError(f"{path} is damaged or not the published {info.filename}: its SHA-256 is "
                            f"{digest[:16]}..., expected {info.sha256[:16]}...")
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
            if bad_member is not None:
                raise DataError(f"{path} is corrupt: member {bad_member} fails its CRC check")
            if info.member not in archive.namelist():
                raise DataError(f"{path} has no member {info.member}; it contains: {', '.join(archive.namelist())}")
    except ZIP_ERRORS as error:
        raise DataError(f"{path} is not a valid zip archive ({error or type(error).__name__})") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    pair_count = len(read_pairs(path, member=info.member).pairs)
    if pair_count < info.min_pairs:
        raise DataError(
            f"{path} holds only {pair_count} pairs, expected at least {info.min_pairs} for {info.name}; "
            "the file is truncated or not the right dataset"
        )
    return pair_count


def _download(url: str, destination: Path, info: DatasetInfo, progress: bool, timeout: float) -> None:
    """Download ``url`` to a temporary file next to ``destination``, verify it, rename it into place."""
    with atomic_open(destination, "wb") as output, urllib.request.urlopen(url, timeout=timeout) as response:
        declared = response.headers.get("Content-Length")
        expected_size = int(declared) if declared and declared.isdigit() else None
        received = 0
        with tqdm(total=expected_size, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=f"downloading {destination.name}", disable=not progress, file=sys.stderr) as bar:
            while chunk := response.read(1 << 16):
                output.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if expected_size is not None and received != expected_size:
            raise DataError(f"download from {url} stopped after {received} of {expected_size} bytes")
        output.flush()
        try:
            verify(output.name, info)
        except DataError as error:
            reason = str(error).replace(output.name, "it")
            raise DataError(f"the file downloaded from {url} was rejected: {reason}") from None


def fetch(
    name: str,
    data_dir: str | os.PathLike | None = None,
    url: str | None = None,
    *,
    progress: bool = True,
    timeout: float = 60.0,
    catalogue: Mapping[str, DatasetInfo] = CATALOGUE,
) -> Path:
    """Local path of dataset ``name``, downloading it if there is no good cached copy.

    Args:
        name: catalogue key, e.g. ``"spa-eng"``.
        data_dir: directory to look in and download to (default: :func:`data_dir`).
        url: download URL (default: ``$TRANSLATE_DATA_URL``, else the catalogue's URL).
        progress: show a tqdm progress bar on stderr while downloading.
        timeout: seconds to wait for the server on each network operation.
        catalogue: where to look ``name`` up (tests pass their own).
    Returns:
        ``data_dir / info.filename``, verified with :func:`verify`.
    Raises:
        DataError: in one message, what failed and, when the download failed, the URL and the exact
            path where to put a copy obtained some other way. No partial file is left behind.
    """
    info = get_dataset(name, catalogue)
    directory = _resolve_data_dir(data_dir)
    destination = directory / info.filename
    cached_problem = None
    if destination.exists():
        try:
            verify(destination, info)
            return destination
        except DataError as error:
            cached_problem = str(error)
    url = url or os.environ.get(DATA_URL_ENV) or info.url
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create the data directory {directory} ({error.strerror or error}); "
                        f"choose another with --data-dir or ${DATA_DIR_ENV}") from None
    try:
        _download(url, destination, info, progress, timeout)
        return destination
    except DataError as error:
        problem = str(error)
    except urllib.error.HTTPError as error:
        problem = f"downloading {url} failed: the server answered HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        problem = f"{url} cannot be reached (no network? {error.reason})"
    except (OSError, http.client.HTTPException, ValueError) as error:
        problem = f"downloading {url} failed ({error})"
    where = destination.resolve()
    if cached_problem is None:
        situation = f"dataset {name!r} is not in {directory.resolve()} and {problem}"
    else:
        situation = f"dataset {name!r}: the copy at {where} is unusable ({cached_problem}) and {problem}"
    raise DataError(f"{situation}; download {url} by other means and put it at {where}")
