"""Typed hyperparameter sections and their conversion from the study config.

Every hyperparameter is a field of a dataclass with a documented default. A rule hands the library one
section of the validated study config (a dict); :func:`from_dict` turns it into the dataclass and
refuses keys it does not know, naming them, so a typo never silently falls back to a default.
The JSON schema (``schemas/config.schema.yaml``) repeats these defaults; ``tests/test_config.py``
checks that both agree for every section listed in :data:`SECTIONS`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

#: Schema section name -> "module:Class" of the dataclass that holds it. Sections register here so the
#: schema/dataclass agreement test covers them.
SECTIONS: dict[str, str] = {
    "dqn": "wmtransfer.dqn.config:DQNConfig",
    "dataset": "wmtransfer.train.collect:DatasetConfig",
    "pretrain": "wmtransfer.train.config:PretrainConfig",
    "agent": "wmtransfer.train.config:AgentConfig",
    "dreamer": "wmtransfer.dreamer.config:DreamerSection",
    "report": "wmtransfer.analysis.stats:StatsConfig",
    "vmc": "wmtransfer.vmc.config:VMCConfig",
}


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names the key."""


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} is not a {tp}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (inner, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if typing.get_origin(tp) is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise :class:`ConfigError`."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(prefix + k for k in unknown)} for {cls.__name__}; "
            f"valid keys: {', '.join(sorted(fields))}"
        )
    kwargs = {name: _coerce(value, hints[name], prefix + name) for name, value in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """The dataclass as plain JSON-able data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def load_json_or_file(text: str | None) -> dict[str, Any]:
    """Read a config given on the command line: inline JSON, or a path to a .json/.yaml file."""
    if text is None or text == "":
        return {}
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--config is not valid JSON: {e}") from e
    path = Path(text)
    if not path.exists():
        raise ConfigError(f"--config: {text!r} is neither inline JSON nor an existing file")
    with path.open() as f:
        data = yaml.safe_load(f) if path.suffix in (".yaml", ".yml") else json.load(f)
    if not isinstance(data, dict):
        raise ConfigError(f"--config file {path} does not hold a mapping")
    return data
