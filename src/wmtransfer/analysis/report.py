"""Every figure and table of one study, from its long table, into ``results/report/{study}/``.

Files written by :func:`build_figures` (each figure as ``.png`` and ``.svg``; ``{target}`` made path-safe):

* ``return_{target}``: train episode return vs env steps (and ``eval_return_{target}`` when evaluated;
  ``return_frames_{target}`` against frames when an ablation repeats actions);
* ``wm_loss_{target}``, ``wm_loss_zoom_{target}``: world-model loss terms vs updates, all / first 5000;
* ``compute_matched_{target}``: return vs env steps incl. pre-training cost (when a cost is known);
* ``per_level_return``: one panel per level/game, baselines dashed;
* ``aggregate``: with two or more targets, rliable's IQM, probability of improvement over scratch and
  performance profiles with stratified bootstrap CIs (:mod:`.aggregate`, also ``aggregate.json``);
* ``figures.json`` (name -> files, caption) and ``captions.md``.

:func:`build_tables` writes ``table.csv`` and ``table.md``. A figure with nothing to draw is skipped with a
log line; the manifests list what was written.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import conditions
from .aggregate import build_aggregate
from .baselines import Baseline
from .curves import MetricsError, atomic_write
from .figures import (
    condition_palette,
    plot_compute_matched,
    plot_compute_matched_mean,
    plot_per_level,
    plot_returns,
    plot_wm_losses,
    save_figure,
)
from .stats import StatsConfig
from .tables import study_table, write_tables

log = logging.getLogger(__name__)

#: Conditions whose pre-training is offline world-model training on a dataset (cost: dataset_env_steps).
OFFLINE_CONDITIONS = conditions.FROM_WORLD_MODEL
#: Conditions that start from an online multi-task agent (cost: that run's env_steps).
ONLINE_CONDITIONS = tuple(c.name for c in conditions.TABLE if c.starts_from == "agent")
_KIND = {**dict.fromkeys(OFFLINE_CONDITIONS, "offline"), **dict.fromkeys(ONLINE_CONDITIONS, "online")}


@dataclass(frozen=True)
class PretrainSummary:
    """One pre-training run's cost: ``kind`` offline (dataset_env_steps) or online (env_steps)."""

    path: str
    key: str | None
    kind: str
    envset: str | None
    cost: float


def read_pretrain_summaries(specs: list[str]) -> list[PretrainSummary]:
    """Read ``path``, ``LABEL=path`` or ``TARGET/LABEL=path`` specs of pre-training ``summary.json`` files.

    A summary with ``dataset_env_steps`` is offline world-model pre-training (its cost: the env steps of
    its dataset); one with only ``env_steps`` an online multi-task agent (its env steps).
    """
    out = []
    for spec in specs:
        key, sep, path = spec.partition("=")
        if not sep:
            key, path = "", spec
        try:
            summary = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise MetricsError(f"{path}: cannot read pre-training summary ({e})") from e
        if "dataset_env_steps" in summary:
            kind, cost = "offline", float(summary["dataset_env_steps"])
        elif "env_steps" in summary:
            kind, cost = "online", float(summary["env_steps"])
        else:
            raise MetricsError(f"{path}: summary has neither dataset_env_steps nor env_steps")
        envset = summary.get("envset")
        out.append(PretrainSummary(path, key or None, kind, None if envset is None else str(envset), cost))
    return out


def resolve_costs(summaries: list[PretrainSummary], runs,
                  amortise: bool = False) -> dict[tuple[str, str], float]:
    """Pre-training cost of each ``(target, label)`` run that starts from pre-training.

    Run labels are ``<condition>[-<envset or variant>]`` (``wmtransfer.study.agent_runs``). A run takes
    the summaries keyed ``target/label``, else those keyed ``label``, else the unkeyed summaries of its
    kind (offline for :data:`OFFLINE_CONDITIONS`, online for :data:`ONLINE_CONDITIONS`), restricted to
    its envset when its label names one. Several summaries (seeds) are averaged. ``amortise`` divides a
    cost by the number of targets that share the same summaries (one pre-training serves them all).
    """
    chosen: dict[tuple[str, str], tuple[PretrainSummary, ...]] = {}
    for target, label in sorted(set(runs)):
        base, *rest = label.split("-")
        picked = [s for s in summaries if s.key == f"{target}/{label}"]
        picked = picked or [s for s in summaries if s.key == label]
        if not picked:
            kind = _KIND.get(base)
            picked = [s for s in summaries if s.key is None and s.kind == kind]
            named = [s for s in picked if s.envset is not None and s.envset in rest]
            picked = named or picked
        if picked:
            chosen[(target, label)] = tuple(picked)
    out = {}
    for run, picked in chosen.items():
        cost = sum(s.cost for s in picked) / len(picked)
        if amortise:
            cost /= len({t for (t, _), p in chosen.items() if p == picked})
        out[run] = cost
    return out


def pretrain_costs(specs: list[str], table: pd.DataFrame, amortise: bool = False,
                   dqn_steps: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    """``{target: {label: cost}}`` for the runs of ``table`` from the summary ``specs``.

    ``dqn_steps``: envset -> env steps of the DQN runs that produced its datasets; given, an offline
    pre-training costs its dataset's steps plus these (the DQN policies are part of the price).
    """
    runs = table[["target", "condition"]].drop_duplicates().itertuples(index=False, name=None)
    summaries = read_pretrain_summaries(specs)
    if dqn_steps:
        summaries = [PretrainSummary(s.path, s.key, s.kind, s.envset,
                                     s.cost + float(dqn_steps.get(s.envset or "", 0.0)))
                     if s.kind == "offline" else s for s in summaries]
    out: dict[str, dict[str, float]] = {}
    for (target, label), cost in resolve_costs(summaries, runs, amortise).items():
        out.setdefault(target, {})[label] = cost
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def build_figures(table: pd.DataFrame, out_dir: str | Path, cfg: StatsConfig | None = None,
                  costs: dict[str, dict[str, float]] | None = None, baselines: list[Baseline] = (),
                  frames_per_step: dict[str, float] | None = None) -> dict:
    """Draw every figure of the study table into ``out_dir``; returns the manifest (also written).

    ``costs``: ``{target: {label: pre-training env steps}}`` (:func:`pretrain_costs`);
    ``frames_per_step``: label -> action repeat; where a target has a label with a repeat other than 1,
    its returns are also drawn against frames (``return_frames_{target}``).
    """
    cfg = cfg or StatsConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    palette = condition_palette(list(table["condition"].unique()) + ["dqn", "random"])
    manifest: dict[str, dict] = {}

    def emit(name: str, made) -> None:
        if made is None:
            log.info("figure %s: nothing to draw, skipped", name)
            return
        fig, caption = made
        files = save_figure(fig, out_dir, name)
        manifest[name] = {"files": [p.name for p in files], "caption": caption}
        log.info("figure %s: wrote %s", name, ", ".join(str(p) for p in files))

    for target in sorted(table["target"].unique()):
        t = _safe(target)
        for metric in ("episode_return", "eval_return"):
            name = f"return_{t}" if metric == "episode_return" else f"eval_return_{t}"
            emit(name, plot_returns(table, target, cfg, palette, baselines, metric))
        labels = set(table.loc[table["target"] == target, "condition"])
        repeats = {k: v for k, v in (frames_per_step or {}).items() if k in labels}
        if any(v != 1 for v in repeats.values()):
            emit(f"return_frames_{t}", plot_returns(table, target, cfg, palette, metric="episode_return",
                                                    frames_per_step=repeats))
        emit(f"wm_loss_{t}", plot_wm_losses(table, target, cfg, palette))
        emit(f"wm_loss_zoom_{t}", plot_wm_losses(table, target, cfg, palette, zoom=True))
        target_costs = (costs or {}).get(target, {})
        emit(f"compute_matched_{t}", plot_compute_matched(table, target, cfg, palette, target_costs))
    emit("per_level_return", plot_per_level(table, cfg, palette, baselines))
    emit("compute_matched_mean", plot_compute_matched_mean(table, cfg, palette, costs or {}))
    random_levels = {b.game: b.level for b in baselines if b.level is not None}
    result = build_aggregate(table, out_dir, cfg, random_levels)
    if result is None:
        log.info("figure aggregate: fewer than two targets with the same labels and seeds, skipped")
    else:
        manifest["aggregate"] = {
            "files": ["aggregate.png", "aggregate.svg"],
            "caption": result["summary"] + (
                ". Left: interquartile mean (IQM) of the normalised final returns of all runs and targets; "
                "middle: probability that a run of the label beats a scratch run on the same target, "
                "averaged over targets; right: performance profile (fraction of runs above each normalised "
                "score). Normalised per target: 0 = random policy (else the worst run), 1 = the best run. "
                "Bars and bands: stratified bootstrap CIs (runs resampled within each target), "
                "rliable's statistics (Agarwal et al. 2021).")}

    atomic_write(out_dir / "figures.json", lambda p: Path(p).write_text(json.dumps(manifest, indent=2)))
    lines = ["# Figures", ""] + [f"## {n}\n\n![{n}]({v['files'][0]})\n\n{v['caption']}\n" for n, v in
                                 manifest.items()]
    atomic_write(out_dir / "captions.md", lambda p: Path(p).write_text("\n".join(lines)))
    return manifest


def build_tables(table: pd.DataFrame, out_dir: str | Path, cfg: StatsConfig | None = None) -> pd.DataFrame:
    """Compute the results table of the study and write ``table.csv`` / ``table.md`` into ``out_dir``."""
    results = study_table(table, cfg)
    for path in write_tables(results, out_dir, cfg):
        log.info("table: wrote %s", path)
    return results


def build_report(table: pd.DataFrame, out_dir: str | Path, cfg: StatsConfig | None = None,
                 costs: dict[str, dict[str, float]] | None = None, baselines: list[Baseline] = ()) -> dict:
    """Figures and tables of one study (what ``plot-report`` and ``make-tables`` do together)."""
    manifest = build_figures(table, out_dir, cfg, costs, baselines)
    build_tables(table, out_dir, cfg)
    return manifest
