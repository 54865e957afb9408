"""Checks of a study config that a JSON schema cannot express, and the study's derived lists.

Snakemake validates the config against ``schemas/config.schema.yaml`` (types, ranges, defaults); this
module then checks what needs the game layer: that every game id exists, that every environment set
is one suite (one observation and action space), and that each target can use its set's
pre-trained model. Every message names the config key at fault.
"""

from __future__ import annotations

from typing import Any

from . import games
from .conditions import PRETRAINED as PRETRAINED_CONDITIONS


class StudyError(ValueError):
    """A study config that cannot run; the message names the key."""


def _check_game(game_id: str, key: str) -> games.GameSpec:
    try:
        return games.spec(game_id)
    except games.UnknownGameError as e:
        raise StudyError(f"{key}: {e}") from None


def check_sections(config: dict[str, Any]) -> None:
    """Build every hyperparameter section as the library will (types, cross-key checks such as
    ``dqn.checkpoint_steps <= dqn.total_steps``, DreamerV2 override names), so a bad value stops the
    study before any job runs rather than hours into it."""
    import copy
    import importlib

    from .config import SECTIONS, ConfigError, from_dict

    def build(section: str, data: dict[str, Any], key: str) -> None:
        module, _, name = SECTIONS[section].partition(":")
        cls = getattr(importlib.import_module(module), name)
        try:
            obj = from_dict(cls, data)
            for method in ("validate", "build"):
                if hasattr(obj, method):
                    getattr(obj, method)()
        except (ConfigError, ValueError, TypeError) as e:
            raise StudyError(f"{key}: {e}") from None

    for section in SECTIONS:
        if section in config:
            build(section, config[section], section)
    for name, variant in config.get("variants", {}).items():
        if variant.get("dreamer") and "dreamer" in config:
            section = copy.deepcopy(config["dreamer"])
            section["overrides"] = {**section.get("overrides", {}), **variant["dreamer"]}
            build("dreamer", section, f"variants.{name}.dreamer")


def check_study(config: dict[str, Any]) -> None:
    """Raise :class:`StudyError` naming the first wrong key of a (schema-validated) study config."""
    check_sections(config)
    set_specs: dict[str, games.GameSpec] = {}
    for name, ids in config.get("envsets", {}).items():
        specs = [_check_game(g, f"envsets.{name}[{i}]") for i, g in enumerate(ids)]
        for i, s in enumerate(specs[1:], start=1):
            if (s.obs_shape, s.n_actions) != (specs[0].obs_shape, specs[0].n_actions):
                raise StudyError(
                    f"envsets.{name}[{i}]: {s.game_id} has observation shape {s.obs_shape} and "
                    f"{s.n_actions} actions, but {specs[0].game_id} has {specs[0].obs_shape} and "
                    f"{specs[0].n_actions}; an environment set must share one observation and action space"
                )
        set_specs[name] = specs[0]
    study_conditions = config.get("conditions", [])
    for i, target in enumerate(config.get("targets", [])):
        key = f"targets[{i}]"
        spec = _check_game(target["game"], f"{key}.game")
        conditions = target.get("conditions", study_conditions)
        envsets = target_envsets(target)
        needs_set = [c for c in conditions if c in PRETRAINED_CONDITIONS]
        if needs_set and not envsets:
            raise StudyError(
                f"{key}.envset: conditions {needs_set} start from a pre-trained model, "
                f"so target {target['game']} needs an `envset`"
            )
        for envset in envsets:
            if envset not in set_specs:
                raise StudyError(
                    f"{key}.envset: unknown environment set {envset!r}; defined: {sorted(set_specs)}"
                )
            ref = set_specs[envset]
            if (spec.obs_shape, spec.n_actions) != (ref.obs_shape, ref.n_actions):
                raise StudyError(
                    f"{key}: target {spec.game_id} has observation shape {spec.obs_shape} and "
                    f"{spec.n_actions} actions, but environment set {envset!r} has {ref.obs_shape} and "
                    f"{ref.n_actions}; its world model cannot read this game"
                )


def target_envsets(target: dict[str, Any]) -> list[str]:
    """The environment sets a target's pre-trained conditions start from (a list, maybe empty)."""
    envset = target.get("envset")
    if envset is None:
        return []
    return [envset] if isinstance(envset, str) else list(envset)


def agent_runs(config: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every agent run of a study: ``(target game, label) -> {condition, envset, variant}``.

    The label names the run's folder ``results/agents/{study}/{target}/{label}/seed{seed}``: the
    condition itself, ``<condition>-<envset>`` when the target starts from several sets, and
    ``scratch-<variant>`` for each ablation variant of the from-scratch agent.
    """
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    variants = sorted(config.get("variants", {}))
    for target in config.get("targets", []):
        game, envsets = target["game"], target_envsets(target)
        for condition in target_conditions(config, target):
            if condition in PRETRAINED_CONDITIONS:
                for envset in envsets:
                    label = f"{condition}-{envset}" if len(envsets) > 1 else condition
                    runs[(game, label)] = {"condition": condition, "envset": envset, "variant": None}
            else:
                runs[(game, condition)] = {"condition": condition, "envset": None, "variant": None}
                for variant in variants:
                    runs[(game, f"{condition}-{variant}")] = {"condition": condition, "envset": None,
                                                              "variant": variant}
    return runs


def target_conditions(config: dict[str, Any], target: dict[str, Any]) -> list[str]:
    """The conditions one target is trained under."""
    return list(target.get("conditions", config.get("conditions", [])))


def all_games(config: dict[str, Any]) -> list[str]:
    """Every game the study touches: the games of its sets and its targets, sorted."""
    out = {g for ids in config.get("envsets", {}).values() for g in ids}
    out |= {t["game"] for t in config.get("targets", [])}
    return sorted(out)


def envset_games(config: dict[str, Any]) -> list[str]:
    """Games that need DQN policies and datasets: those of the environment sets."""
    return sorted({g for ids in config.get("envsets", {}).values() for g in ids})
