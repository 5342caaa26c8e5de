"""Tests for translator.corpus: reading anki-format pairs from text files and zips."""

import tracemalloc
import unicodedata
import zipfile

import pytest

from translator import corpus
from translator.corpus import find_zip_member, read_pairs
from translator.errors import DataError

LINES = [
    "Go.\tVe.",
    "Hi.\tHola.\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM) & #431975 (Leono)",
    "Who?\t¿Quién?",
]


def write(path, lines, newline="\n", encoding="utf-8"):
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode())
    return path


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def test_default_columns_are_other_to_english(tmp_path):
    result = read_pairs(write(tmp_path / "spa.txt", LINES))
    assert result.pairs == [("Ve.", "Go."), ("Hola.", "Hi."), ("¿Quién?", "Who?")]
    assert result.line_numbers == [1, 2, 3]
    assert result.skipped == []
    assert result.source == str(tmp_path / "spa.txt")


def test_reverse_and_explicit_columns(tmp_path):
    path = write(tmp_path / "spa.tsv", LINES)
    assert read_pairs(path, reverse=True).pairs[0] == ("Go.", "Ve.")
    assert read_pairs(path, source_column=0, target_column=1).pairs[0] == ("Go.", "Ve.")
    with pytest.raises(ValueError, match="different"):
        read_pairs(path, source_column=1, target_column=1)


def test_malformed_lines_are_skipped_with_line_numbers(tmp_path):
    lines = ["Go.\tVe.", "no tab here", "\tVacío.", "Empty.\t  ", "", "Who?\t¿Quién?"]
    result = read_pairs(write(tmp_path / "bad.txt", lines))
    assert result.pairs == [("Ve.", "Go."), ("¿Quién?", "Who?")]
    assert result.line_numbers == [1, 6]
    assert result.skipped_line_numbers == [2, 3, 4, 5]
    assert "column" in result.skipped[0].reason
    assert "skipped 4 malformed lines (2, 3, 4, 5)" in result.summary()


def test_a_third_column_can_be_required(tmp_path):
    result = read_pairs(write(tmp_path / "spa.txt", LINES), source_column=2, target_column=0)
    assert result.pairs == [(LINES[1].split("\t")[2], "Hi.")]
    assert result.skipped_line_numbers == [1, 3]


def test_strict_raises_naming_file_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", ["Go.\tVe.", "Hi.\tHola.", "broken"])
    with pytest.raises(DataError, match=r"bad\.txt, line 3: malformed"):
        read_pairs(path, strict=True)


def test_crlf_bom_and_missing_final_newline(tmp_path):
    path = tmp_path / "windows.txt"
    path.write_bytes("\ufeffGo.\tVe.\r\nHi.\tHola.".encode("utf-8"))
    assert read_pairs(path).pairs == [("Ve.", "Go."), ("Hola.", "Hi.")]


def test_fields_are_stripped_and_nfc_normalised(tmp_path):
    path = write(tmp_path / "nfd.txt", [unicodedata.normalize("NFD", " Where? \t ¿Dónde está? ")])
    assert read_pairs(path).pairs == [("¿Dónde está?", "Where?")]


def test_non_utf8_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Go.\tVe.\nHi.\tAdiós.\n".encode("latin-1"))
    offset = len("Go.\tVe.\nHi.\tAdi".encode("utf-8"))
    with pytest.raises(DataError, match=rf"latin1\.txt is not valid UTF-8: byte 0xf3 at byte offset {offset}"):
        read_pairs(path)


def test_max_lines(tmp_path):
    result = read_pairs(write(tmp_path / "spa.txt", LINES), max_lines=2)
    assert len(result.pairs) == 2


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_pairs(tmp_path / "nothing.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_pairs(tmp_path)


def test_zip_member_is_found(tmp_path):
    path = make_zip(tmp_path / "spa-eng.zip", {"spa-eng/_about.txt": "about", "spa-eng/spa.txt": "\n".join(LINES)})
    result = read_pairs(path)
    assert len(result.pairs) == 3
    assert result.source == f"{path}:spa-eng/spa.txt"
    assert read_pairs(path, member="spa-eng/spa.txt").pairs == result.pairs


def test_zip_member_errors(tmp_path):
    two = make_zip(tmp_path / "two.zip", {"a.txt": "Go.\tVe.", "b.txt": "Go.\tVe.", "_about.txt": ""})
    with pytest.raises(DataError, match=r"several \.txt files \(a\.txt, b\.txt\)"):
        read_pairs(two)
    assert read_pairs(two, member="b.txt").pairs == [("Ve.", "Go.")]
    with pytest.raises(DataError, match="has no member 'c.txt'"):
        read_pairs(two, member="c.txt")
    none = make_zip(tmp_path / "none.zip", {"_about.txt": "", "data.csv": ""})
    with pytest.raises(DataError, match=r"no \.txt file"):
        read_pairs(none)
    with zipfile.ZipFile(two) as archive:
        assert find_zip_member(archive, "a.txt") == "a.txt"


def test_non_utf8_inside_zip_names_member(tmp_path):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("spa.txt", b"Go.\tVe.\n\xff\n")
    with pytest.raises(DataError, match=r"bad\.zip:spa\.txt is not valid UTF-8: byte 0xff at byte offset 8"):
        read_pairs(path)


def test_member_of_a_plain_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="not a zip"):
        read_pairs(write(tmp_path / "spa.txt", LINES), member="spa.txt")


def test_real_corpus(spa_eng_path):
    result = read_pairs(spa_eng_path)
    assert len(result.pairs) >= 100_000
    assert result.skipped == []
    assert result.pairs[0] == ("Ve.", "Go.")


# ---------------------------------------------------------------- streaming and hostile files
def test_reading_stops_at_max_lines_and_memory_follows_the_lines_read(tmp_path):
    """A 40 MB file read with max_lines=3 reads only the start: a bad byte far away is never seen."""
    path = tmp_path / "big.txt"
    with path.open("wb") as handle:
        handle.write("\n".join(LINES).encode() + b"\n")
        handle.write(b"Go.\tVe.\n" * 5_000_000)
        handle.write(b"\xff\n")
    tracemalloc.start()
    try:
        result = read_pairs(path, max_lines=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(result.pairs) == 3
    assert peak < 8 * corpus._CHUNK_BYTES, peak  # a few chunks, not 40 MB


def test_a_zip_bomb_is_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("spa.txt", b"Go.\tVe.\n" * 2_000_000)  # 16 MB in about 20 KB
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"bomb.zip:spa.txt would inflate .* \(\d+x; .*unzip it"):
            read_pairs(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    genuine = tmp_path / "genuine.zip"  # ordinary text compresses far less: read as usual
    with zipfile.ZipFile(genuine, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("spa.txt", "".join(f"Sentence {i}.\tFrase {i}.\n" for i in range(100_000)))
    assert len(read_pairs(genuine).pairs) == 100_000


def test_an_over_long_line_is_skipped_without_being_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "MAX_LINE_BYTES", 100)
    path = tmp_path / "long.txt"
    path.write_bytes(b"Go.\tVe.\n" + b"x\t" + b"y" * 5000 + b"\nHi.\tHola.\n" + b"z" * 300)
    result = read_pairs(path)
    assert result.pairs == [("Ve.", "Go."), ("Hola.", "Hi.")]
    assert result.skipped_line_numbers == [2, 4]
    assert "longer than 100 bytes" in result.skipped[0].reason
    with pytest.raises(DataError, match="line 2: malformed line: longer than 100 bytes"):
        read_pairs(path, strict=True)


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 64])
def test_lines_and_byte_offsets_do_not_depend_on_chunk_boundaries(tmp_path, monkeypatch, chunk_bytes):
    monkeypatch.setattr(corpus, "_CHUNK_BYTES", chunk_bytes)
    path = tmp_path / "spa.txt"
    path.write_bytes("\ufeffGo.\tVe.\r\nHi.\tHola.\n\nWho?\t¿Quién?".encode())
    result = read_pairs(path)
    assert result.pairs == [("Ve.", "Go."), ("Hola.", "Hi."), ("¿Quién?", "Who?")]
    assert result.line_numbers == [1, 2, 4] and result.skipped_line_numbers == [3]
    path.write_bytes("\ufeffGo.\tVe.\nHi.\tAdiós".encode() + b"\xff.\n")
    offset = len("\ufeffGo.\tVe.\nHi.\tAdiós".encode())
    with pytest.raises(DataError, match=f"byte 0xff at byte offset {offset};"):
        read_pairs(path)


def _flag_encrypted(data: bytes) -> bytes:
    data = bytearray(data)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = data.find(signature)
        while position != -1:
            data[position + flag_offset] |= 1
            position = data.find(signature, position + 4)
    return bytes(data)


def test_damaged_and_encrypted_zips_are_one_line_errors(tmp_path):
    path = make_zip(tmp_path / "good.zip", {"spa.txt": "".join(f"Sentence {i}.\tFrase {i}.\n" for i in range(3000))})
    good = path.read_bytes()
    start = good.index(b"spa.txt") + len("spa.txt")
    deflate = bytearray(good)
    for position in range(start + 40, start + 80):
        deflate[position] ^= 0x5A
    cases = {"deflate": bytes(deflate), "truncated": good[: len(good) // 2] + good[-22:],
             "encrypted": _flag_encrypted(good), "header": good[:30] + b"\0" * 10 + good[40:]}
    for name, data in cases.items():
        path = tmp_path / f"{name}.zip"
        path.write_bytes(data)
        with pytest.raises(DataError) as raised:
            read_pairs(path)
        message = str(raised.value)
        assert "\n" not in message and str(path) in message, (name, message)
    assert "encrypted" in str(pytest.raises(DataError, read_pairs, tmp_path / "encrypted.zip").value)
