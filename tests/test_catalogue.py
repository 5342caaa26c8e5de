"""Tests for translator.catalogue: data directory, verification, download over a loopback HTTP server."""

import dataclasses
import hashlib
import http.server
import io
import os
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from translator import catalogue
from translator.catalogue import CATALOGUE, DatasetInfo, data_dir, fetch, get_dataset, verify
from translator.errors import DataError

PAIR_COUNT = 50
TINY = DatasetInfo(
    name="tiny",
    url="http://127.0.0.1:1/unused.zip",
    filename="tiny.zip",
    member="tiny/spa.txt",
    min_pairs=PAIR_COUNT,
    source_language="spa",
    target_language="eng",
    attribution="generated for tests",
)
TEST_CATALOGUE = {"tiny": TINY}


def make_zip_bytes(member=TINY.member, pairs=PAIR_COUNT, compression=zipfile.ZIP_DEFLATED) -> bytes:
    text = "".join(f"Sentence {index}.\tFrase {index}.\tCC-BY 2.0 (France)\n" for index in range(pairs))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        archive.writestr("tiny/_about.txt", "about")
        archive.writestr(member, text)
    return buffer.getvalue()


def make_crc_corrupt_zip() -> bytes:
    data = bytearray(make_zip_bytes(compression=zipfile.ZIP_STORED))
    position = data.index(b"Frase 7")
    data[position] = ord("G")  # same length, so only the CRC check can notice
    return bytes(data)


ROUTES = {
    "/good.zip": make_zip_bytes(),
    "/not-a-zip.zip": b"<html>this is not a zip</html>",
    "/truncated.zip": make_zip_bytes()[:300],
    "/crc.zip": make_crc_corrupt_zip(),
    "/wrong-member.zip": make_zip_bytes(member="tiny/other.txt"),
    "/too-few.zip": make_zip_bytes(pairs=PAIR_COUNT - 1),
}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server API)
        if self.path == "/short-body.zip":
            # Promise more bytes than are sent, then close: the transfer is cut.
            body = ROUTES["/good.zip"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        body = ROUTES.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def server_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def dead_url():
    """A loopback URL where nothing listens (a port we bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny.zip"


@pytest.fixture(autouse=True)
def no_environment_overrides(monkeypatch):
    monkeypatch.delenv("TRANSLATE_DATA_URL", raising=False)
    monkeypatch.delenv("TRANSLATE_DATA_DIR", raising=False)


def tiny_fetch(directory, url=None, **options):
    return fetch("tiny", directory, url, progress=False, timeout=10, catalogue=TEST_CATALOGUE, **options)


def test_spa_eng_entry():
    info = get_dataset("spa-eng")
    assert info.url == "http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip"
    assert (info.filename, info.member) == ("spa-eng.zip", "spa-eng/spa.txt")
    assert (info.source_language, info.target_language) == ("spa", "eng")
    assert info.min_pairs == 100_000
    assert "tatoeba.org" in info.attribution
    with pytest.raises(DataError, match="unknown dataset 'fra-eng'; known datasets: spa-eng"):
        get_dataset("fra-eng")


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSLATE_DATA_DIR", str(tmp_path / "from-env"))
    assert data_dir(tmp_path / "from-flag") == tmp_path / "from-flag"
    assert data_dir() == tmp_path / "from-env"
    monkeypatch.delenv("TRANSLATE_DATA_DIR")
    checkout_datasets = Path(catalogue.__file__).resolve().parents[1] / "datasets"
    if checkout_datasets.is_dir() and os.access(checkout_datasets, os.W_OK):
        assert data_dir() == checkout_datasets
    else:
        assert data_dir() == Path.home() / ".cache" / "translator" / "datasets"


def test_data_dir_falls_back_to_user_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(catalogue, "__file__", str(tmp_path / "site-packages" / "translator" / "catalogue.py"))
    monkeypatch.chdir(tmp_path)
    assert data_dir() == Path.home() / ".cache" / "translator" / "datasets"


def test_installed_package_uses_the_working_directorys_datasets(monkeypatch, tmp_path):
    """``pip install .`` then ``translate train`` from the checkout: its datasets/ is the data dir."""
    monkeypatch.setattr(catalogue, "__file__", str(tmp_path / "site-packages" / "translator" / "catalogue.py"))
    (tmp_path / "checkout" / "datasets").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout")
    assert data_dir() == tmp_path / "checkout" / "datasets"


def test_download_verifies_and_places_file(tmp_path, server_url):
    directory = tmp_path / "data"
    path = tiny_fetch(directory, f"{server_url}/good.zip")
    assert path == directory / "tiny.zip"
    assert path.read_bytes() == ROUTES["/good.zip"]
    assert os.listdir(directory) == ["tiny.zip"]
    assert verify(path, TINY) == PAIR_COUNT


def test_cached_copy_is_reused_offline(tmp_path, server_url, dead_url):
    path = tiny_fetch(tmp_path, f"{server_url}/good.zip")
    modified = path.stat().st_mtime_ns
    assert tiny_fetch(tmp_path, dead_url) == path
    assert path.stat().st_mtime_ns == modified


@pytest.mark.parametrize(
    "route, problem",
    [
        ("/not-a-zip.zip", "not a valid zip"),
        ("/truncated.zip", "not a valid zip"),
        ("/crc.zip", "fails its CRC check"),
        ("/wrong-member.zip", "has no member tiny/spa.txt"),
        ("/too-few.zip", f"only {PAIR_COUNT - 1} pairs, expected at least {PAIR_COUNT}"),
        ("/short-body.zip", r"stopped after \d+ of \d+ bytes"),
    ],
)
def test_corrupt_download_leaves_nothing(tmp_path, server_url, route, problem):
    with pytest.raises(DataError, match=problem) as raised:
        tiny_fetch(tmp_path, server_url + route)
    assert os.listdir(tmp_path) == []
    assert str(tmp_path / "tiny.zip") in str(raised.value)


def test_http_404(tmp_path, server_url):
    with pytest.raises(DataError, match="HTTP 404") as raised:
        tiny_fetch(tmp_path, f"{server_url}/missing.zip")
    assert f"{server_url}/missing.zip" in str(raised.value)
    assert os.listdir(tmp_path) == []


def test_offline_without_cache_gives_one_clear_message(tmp_path, dead_url):
    with pytest.raises(DataError) as raised:
        tiny_fetch(tmp_path / "data", dead_url)
    message = str(raised.value)
    assert "\n" not in message
    assert dead_url in message
    assert message.endswith(f"put it at {(tmp_path / 'data' / 'tiny.zip').resolve()}")
    assert not (tmp_path / "data" / "tiny.zip").exists()


def test_corrupt_cached_copy_is_replaced(tmp_path, server_url):
    (tmp_path / "tiny.zip").write_bytes(b"garbage")
    path = tiny_fetch(tmp_path, f"{server_url}/good.zip")
    assert path.read_bytes() == ROUTES["/good.zip"]


def test_corrupt_cached_copy_offline_is_kept_and_reported(tmp_path, dead_url):
    (tmp_path / "tiny.zip").write_bytes(b"garbage")
    with pytest.raises(DataError, match="copy at .*tiny.zip is unusable .*not a valid zip.* cannot be reached"):
        tiny_fetch(tmp_path, dead_url)
    assert (tmp_path / "tiny.zip").read_bytes() == b"garbage"


def test_url_from_environment_and_argument_precedence(tmp_path, server_url, monkeypatch):
    monkeypatch.setenv("TRANSLATE_DATA_URL", f"{server_url}/good.zip")
    assert tiny_fetch(tmp_path / "env").exists()  # the catalogue URL is dead; the env one works
    with pytest.raises(DataError, match="HTTP 404"):
        tiny_fetch(tmp_path / "arg", f"{server_url}/missing.zip")


def test_data_dir_from_environment(tmp_path, server_url, monkeypatch):
    monkeypatch.setenv("TRANSLATE_DATA_DIR", str(tmp_path / "env-dir"))
    assert tiny_fetch(None, f"{server_url}/good.zip") == tmp_path / "env-dir" / "tiny.zip"


def test_real_dataset_verifies(spa_eng_path):
    assert verify(spa_eng_path, CATALOGUE["spa-eng"]) >= 100_000


def make_deflate_corrupt_zip() -> bytes:
    """A zip whose compressed bytes are damaged: zlib itself fails while inflating."""
    data = bytearray(make_zip_bytes(pairs=400))
    start = data.index(b"tiny/spa.txt") + len("tiny/spa.txt")  # the member's data follows its local header
    for position in range(start + 20, start + 60):
        data[position] ^= 0x5A
    return bytes(data)


@pytest.mark.parametrize("damage", ["deflate", "crc", "truncated", "encrypted"])
def test_damaged_cached_copy_is_one_error_never_a_traceback(tmp_path, dead_url, damage):
    good = make_zip_bytes()
    data = {"deflate": make_deflate_corrupt_zip(), "crc": make_crc_corrupt_zip(), "truncated": good[:-40],
            "encrypted": _encrypted(good)}[damage]
    (tmp_path / "tiny.zip").write_bytes(data)
    with pytest.raises(DataError, match="copy at .*tiny.zip is unusable") as raised:
        tiny_fetch(tmp_path, dead_url)
    assert "\n" not in str(raised.value)
    assert (tmp_path / "tiny.zip").read_bytes() == data  # kept: offline, nothing better to put there


def _encrypted(data: bytes) -> bytes:
    """Set the 'encrypted' flag bit of every member, as a password-protected zip has."""
    data = bytearray(data)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = data.find(signature)
        while position != -1:
            data[position + flag_offset] |= 1
            position = data.find(signature, position + 4)
    return bytes(data)


def test_checksum_catches_a_valid_zip_that_is_not_the_published_file(tmp_path, server_url):
    published = ROUTES["/good.zip"]
    checked = dataclasses.replace(TINY, sha256=hashlib.sha256(published).hexdigest())
    assert verify_bytes(tmp_path, published, checked) == PAIR_COUNT
    other = make_zip_bytes(pairs=PAIR_COUNT + 1)  # intact, plausible, but not the same file
    with pytest.raises(DataError, match="damaged or not the published tiny.zip: its SHA-256 is"):
        verify_bytes(tmp_path, other, checked)
    (tmp_path / "tiny.zip").write_bytes(other)  # a cached copy that differs is replaced by a download
    fetch("tiny", tmp_path, f"{server_url}/good.zip", progress=False, timeout=10, catalogue={"tiny": checked})
    assert (tmp_path / "tiny.zip").read_bytes() == published


def verify_bytes(directory, data, info):
    path = directory / "candidate.zip"
    path.write_bytes(data)
    return verify(path, info)


def test_spa_eng_has_the_published_checksum(spa_eng_path):
    assert catalogue.sha256_of(spa_eng_path) == CATALOGUE["spa-eng"].sha256
