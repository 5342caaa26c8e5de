"""Typed options: dataclass fields that carry their help text and generate the CLI.

An option is declared once, as a field made with :func:`option`: its type annotation (``bool``,
``int``, ``float``, ``str``, or one of them ``| None``), its default, and metadata the CLI reads
(help text, the ``--help`` section it belongs to, the allowed choices). :class:`ModelConfig` and
:class:`TrainConfig` are built from such fields; :func:`check_types` checks every value against
its field in one pass, and ``spell`` turns a field name into the word the user typed: the field
name itself for ``ModelConfig`` (a Python caller wrote ``hidden_size=``), the flag for
``TrainConfig`` (``--hidden-size``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable

from translator.errors import ConfigError

Spell = Callable[[str], str]

_TYPES = (("bool", bool), ("int", int), ("float", float), ("str", str))
_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def option(default: Any, help: str, group: str, *, choices: tuple | None = None,  # noqa: A002
           metavar: str | None = None) -> Any:
    """A dataclass field with its CLI metadata (``group``: the ``--help`` section: data, model, training)."""
    return dataclasses.field(default=default, metadata={"help": help, "group": group, "choices": choices,
                                                        "metavar": metavar})


def flag_name(field_name: str) -> str:
    """The CLI flag of a field: ``hidden_size`` -> ``--hidden-size``."""
    return "--" + field_name.replace("_", "-")


def python_type(field: dataclasses.Field) -> type:
    """``bool``, ``int``, ``float`` or ``str``: the field's type without ``| None``."""
    text = str(field.type)
    for name, found in _TYPES:
        if text.startswith(name):
            return found
    raise TypeError(f"unsupported option type {text} for {field.name}")


def is_optional(field: dataclasses.Field) -> bool:
    """True when the field may be left unset (``None``)."""
    return "None" in str(field.type)


def type_words(field: dataclasses.Field) -> str:
    """What a value of the field must be, in words ("an integer (or unset)")."""
    return _TYPE_WORDS[python_type(field)] + (" (or unset)" if is_optional(field) else "")


def check_types(config: Any, fields: Iterable[dataclasses.Field], spell: Spell = str) -> None:
    """ConfigError for the first value of ``fields`` that has the wrong type or is not one of its choices.

    An integer is a number (``3`` in a TOML file means 3.0) but a bool is not an integer; numbers
    must be finite.
    """
    for field in fields:
        value = getattr(config, field.name)
        expected = python_type(field)
        if value is None and is_optional(field):
            continue
        accepted = (int, float) if expected is float else expected
        if not isinstance(value, accepted) or isinstance(value, bool) and expected is not bool:
            raise ConfigError(f"{spell(field.name)} must be {type_words(field)}, got {value!r}")
        if expected is float and not math.isfinite(value):
            raise ConfigError(f"{spell(field.name)} must be a finite number, got {value!r}")
        choices = field.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{spell(field.name)} must be one of {', '.join(choices)}, got {value!r}")


def require(condition: bool, name: str, value: Any, requirement: str, spell: Spell = str) -> None:
    """ConfigError "<option> must be <requirement>, got <value>" unless ``condition``."""
    if not condition:
        raise ConfigError(f"{spell(name)} must be {requirement}, got {value!r}")
