"""Typed config sections: unknown keys are named, and the schema's defaults equal the dataclasses'."""

import dataclasses
import importlib
import json
from pathlib import Path

import pytest
import yaml

from wmtransfer.config import SECTIONS, ConfigError, from_dict, load_json_or_file, to_dict

SCHEMA = yaml.safe_load((Path(__file__).parents[1] / "schemas" / "config.schema.yaml").read_text())


@dataclasses.dataclass
class Example:
    lr: float = 1e-3
    steps: int = 10
    name: str = "x"
    sizes: list[int] = dataclasses.field(default_factory=lambda: [1, 2])


def test_from_dict_builds_and_coerces():
    cfg = from_dict(Example, {"lr": 1, "steps": 5.0, "sizes": [3]})
    assert cfg == Example(lr=1.0, steps=5, name="x", sizes=[3])
    assert to_dict(cfg) == {"lr": 1.0, "steps": 5, "name": "x", "sizes": [3]}


@pytest.mark.parametrize("data, message", [
    ({"lrr": 0.1}, "unknown key.*lrr.*valid keys: lr, name, sizes, steps"),
    ({"steps": "ten"}, "steps: expected an integer"),
    ({"steps": 2.5}, "steps: expected an integer"),
    ({"lr": True}, "lr: expected a number"),
    ({"sizes": 3}, "sizes: expected a list"),
])
def test_from_dict_names_the_bad_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Example, data)


def test_load_json_or_file(tmp_path):
    assert load_json_or_file('{"a": 1}') == {"a": 1}
    (tmp_path / "c.yaml").write_text("a: 2\n")
    assert load_json_or_file(str(tmp_path / "c.yaml")) == {"a": 2}
    with pytest.raises(ConfigError, match="neither inline JSON nor an existing file"):
        load_json_or_file(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_json_or_file("{oops")


def _load(ref: str):
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_schema_defaults_equal_dataclass_defaults(section):
    """Every registered section: same keys in schema and dataclass, and the same default values."""
    cls = _load(SECTIONS[section])
    props = SCHEMA["properties"][section]["properties"]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(props) == set(fields), f"{section}: schema and {cls.__name__} keys differ"
    instance = cls()
    for name in fields:
        assert "default" in props[name], f"{section}.{name} has no documented default in the schema"
        assert "description" in props[name], f"{section}.{name} has no description in the schema"
        ours = json.loads(json.dumps(getattr(instance, name), default=lambda o: dataclasses.asdict(o)))
        schema_default = props[name]["default"]
        assert schema_default == ours, f"{section}.{name}: schema {schema_default!r} vs dataclass {ours!r}"


def test_every_schema_key_is_documented():
    def walk(node, path):
        if isinstance(node, dict) and "properties" in node:
            for key, sub in node["properties"].items():
                assert "description" in sub or "$ref" in sub, f"{path}{key} has no description"
                walk(sub, f"{path}{key}.")
    walk(SCHEMA, "")


def test_the_schema_accepts_an_override_of_every_dreamer_field():
    """A study may override any DreamerConfig field under dreamer.overrides: the schema's list of names is
    the dataclass's fields (ten were missing until 2026-12-02, head_target and decoder_offset among them,
    so a study could not set them), and the presets are the library's."""
    from wmtransfer.dreamer.config import PRESETS, DreamerConfig

    section = SCHEMA["properties"]["dreamer"]["properties"]
    names = set(section["overrides"]["propertyNames"]["enum"])
    assert names == {f.name for f in dataclasses.fields(DreamerConfig)} - {"name"}
    assert set(section["preset"]["enum"]) == set(PRESETS)
