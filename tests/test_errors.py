"""translator.errors: the one reader of user files turns OS and decoding errors into one-line user errors."""
import pytest

from translator.errors import CheckpointError, ConfigError, DataError, TranslatorError, decode_utf8, read_user_file


def test_every_user_error_is_a_translator_error():
    for error in (DataError, ConfigError, CheckpointError):
        assert issubclass(error, TranslatorError)
    assert issubclass(ConfigError, ValueError)  # callers that catch ValueError keep working


def test_read_user_file_names_the_file_and_its_role(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"a\tb\n")
    assert read_user_file(path, "data file") == b"a\tb\n"
    with pytest.raises(DataError, match=r"^data file .*absent\.tsv does not exist$"):
        read_user_file(tmp_path / "absent.tsv", "data file")
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        read_user_file(tmp_path, "config file", ConfigError)
    with pytest.raises(CheckpointError, match="^no model here$"):
        read_user_file(tmp_path / "config.json", "model configuration", CheckpointError, missing="no model here")


def test_decode_utf8_drops_a_byte_order_mark_and_names_the_bad_byte():
    assert decode_utf8("\ufeffhola\n".encode("utf-8"), "input") == "hola\n"
    with pytest.raises(ConfigError, match=r"^in\.txt is not valid UTF-8: byte 0xf1 at byte offset 1; convert it"):
        decode_utf8("añ".encode("latin-1"), "in.txt", ConfigError)
