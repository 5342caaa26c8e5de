"""TrainConfig: defaults, validation (one-line errors naming the flag), TOML files, precedence."""
import dataclasses

import pytest

from translator.config import FIELDS, ConfigError, TrainConfig, build_config, read_config_file
from translator.model_config import ModelConfig


def test_defaults_are_valid_and_map_onto_model_config():
    config = TrainConfig()
    model = ModelConfig(**config.model_options()).validate()
    assert model.cell == "gru" and model.bidirectional and model.attention == "additive"
    assert set(config.model_options()) == {field.name for field in dataclasses.fields(ModelConfig)}


def test_round_trip_through_dict():
    config = TrainConfig(epochs=3, lr=1e-3, max_time=60.0, attention="dot", bidirectional=False)
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("changes, flag", [
    ({"epochs": 0}, "--epochs"),
    ({"lr": -1.0}, "--lr"),
    ({"dropout": 1.0}, "--dropout"),
    ({"label_smoothing": 1.0}, "--label-smoothing"),
    ({"teacher_forcing": 1.5}, "--teacher-forcing"),
    ({"source_noise": 1.5}, "--source-noise"),
    ({"source_noise": -0.1}, "--source-noise"),
    ({"cell": "transformer"}, "--cell"),
    ({"attention": "cosine"}, "--attention"),
    ({"batch_size": "big"}, "--batch-size"),
    ({"bidirectional": 1}, "--bidirectional"),
    ({"max_time": 0.0}, "--max-time"),
    ({"lr_decay": 0.0}, "--lr-decay"),
    ({"device": "tpu"}, "--device"),
    ({"source_column": 0}, "--source-column"),
    ({"max_vocab_size": 4}, "--max-vocab-size"),
    ({"target_vocab_size": 4000, "joint_vocab": True}, "--target-vocab-size"),  # sizes a separate model only
    ({"target_vocab_size": 4, "joint_vocab": False}, "--target-vocab-size"),
    ({"attention": "none"}, "--input-feeding"),
    ({"data": "pairs.tsv", "dataset": "numbers"}, "--data"),
    ({"max_tokens": 12}, "--max-tokens"),  # must exceed --max-length (12): the longest pair fills a batch
    ({"data_member": "spa.txt"}, "--data-member"),  # without --data
    ({"embedding_size": 100_000_000}, "--embedding-size"),
    ({"encoder_layers": 1_000_000}, "--encoder-layers"),
])
def test_bad_values_give_one_line_naming_the_flag(changes, flag):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**changes)
    message = str(caught.value)
    assert flag in message and "\n" not in message


def test_integer_accepted_where_a_number_is_expected():
    assert build_config({"lr": 1}).lr == 1.0
    assert isinstance(build_config({"lr": 1}).lr, float)


def test_flags_win_over_file_and_file_over_defaults(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('epochs = 7\nhidden-size = 32\nattention = "general"\nlabel_smoothing = 0.0\n', encoding="utf-8")
    file_values = read_config_file(path)
    config = build_config(file_values, {"epochs": 2})
    assert config.epochs == 2  # flag wins
    assert config.hidden_size == 32 and config.attention == "general" and config.label_smoothing == 0.0  # file
    assert config.batch_size == FIELDS["batch_size"].default  # default


def test_train_table_is_accepted(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("[train]\nepochs = 3\n", encoding="utf-8")
    assert read_config_file(path) == {"epochs": 3}


@pytest.mark.parametrize("text, expected", [
    ("hiden-size = 3\n", "unknown option 'hiden-size'"),
    ("epochs = \n", "not valid TOML"),
    ("epochs = [1, 2]\n", "single value"),
])
def test_bad_config_files(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected):
        read_config_file(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "nope.toml")


def test_wrong_type_in_file_is_reported_with_the_flag(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('epochs = "many"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="--epochs must be an integer"):
        build_config(read_config_file(path))


def test_model_options_are_model_configs_own_fields():
    for field in dataclasses.fields(ModelConfig):
        assert FIELDS[field.name] is field  # declared once: the same field, default and help
    assert TrainConfig().model_config() == ModelConfig() and ModelConfig().dropout == 0.2
    # the same check, spelled as a flag for training and as the field name for ModelConfig
    with pytest.raises(ConfigError, match=r"^--hidden-size must be an integer in 1..65536, got 0$"):
        TrainConfig(hidden_size=0)
    with pytest.raises(ConfigError, match=r"^hidden_size must be an integer in 1..65536, got 0$"):
        ModelConfig(hidden_size=0)
