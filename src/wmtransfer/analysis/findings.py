"""The findings page of a study: each claim of the seeds that its runs can test, answered with numbers.

A finding compares two groups of runs (one value per seed each) on a predicted direction and gets one of
three answers (:func:`~wmtransfer.analysis.stats.verdict`): **holds** (the 95% bootstrap CI of the
difference lies on the predicted side of zero, with at least ``min_seeds`` seeds per group), **does not
hold** (it lies on the other side) or **inconclusive** (too few seeds, or a CI that contains zero). No
ratio is ever printed here. Claims, each tested where the study has the runs:

seed 001 (MinAtar/Atari transfer)
  * ``001-wm-early``: the fine-tuned world model's loss (total, and the image term) falls faster than
    scratch's: it is below scratch's over updates ``early_from_frac`` x N .. N of the first N =
    ``early_updates`` (after a loaded model's start-up transient on a new game);
  * ``001-kl``: with the RSSM frozen, the KL loss is higher than fine-tuning everything;
  * ``001-frozen-return``: ... and the final return is lower;
  * ``001-return-early``: the fine-tuned agent's return is above scratch's early (mean over the first
    ``early_frac`` of the budget after the random prefill);
  * ``001-breakout-window``: on Breakout the gap is largest between 10k and 20k env steps (the gap in
    that window minus the gap elsewhere, budgets of at least 20k steps);
seed 003 (multi-task pre-training on Mario levels)
  * ``003-multitask``: one agent trained on N levels for T env steps returns more per level than one
    agent per level after T/N env steps (equal samples);
  * ``003-compute-matched``: a fine-tuned agent on a seen level, at the env step where its pre-training
    share plus its own steps equal scratch's budget, returns more than scratch at the budget;
  * ``003-transfer``: on unseen levels a pre-trained agent learns faster (larger area under the return
    curve) than scratch (seed 003 found it does not);
seed 002 (DreamerV2 ablations)
  * ``002-ablation``: plain DreamerV2 (categorical latents, KL balancing) ends with a higher return than
    each ablation variant (``scratch-no_kl_balance``, ``scratch-gaussian_latents``).

:func:`study_findings` computes them from the study's long table; :func:`write_summary` writes
``summary.md`` (the page), ``summary.json`` and the headline lines printed when the workflow ends.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .curves import atomic_write, base_condition, curves_by_seed, order_conditions, prefill_end, select
from .stats import (
    HOLDS,
    INCONCLUSIVE,
    Effect,
    StatsConfig,
    area_under_curve,
    common_grid,
    difference_ci,
    final_return,
    nanmean,
    seeds_on_grid,
    verdict,
)

RETURN = "episode_return"
PRETRAINED = ("finetune", "frozen_rssm", "frozen_wm", "finetune_agent")
#: Ablation variants of seed 002 with a claimed direction (plain DreamerV2 is better).
ABLATIONS = ("no_kl_balance", "gaussian_latents")
#: Seed 001 section 3.2: the Breakout gap is largest between these env steps.
BREAKOUT_WINDOW = (10_000, 20_000)


@dataclass
class Finding:
    """One tested claim: ``effect`` = mean(A) - mean(B) over seeds, ``answer`` on ``direction``."""

    key: str
    seed: str
    claim: str
    tested_on: str
    measure: str
    direction: int
    effect: Effect
    answer: str
    reason: str
    figure: str | None = None

    def headline(self) -> str:
        e = self.effect
        ci = f" [{_num(e.low)}, {_num(e.high)}]" if math.isfinite(e.low) else ""
        seeds = f"{e.n_a} vs {e.n_b} seeds" if e.n_b else f"{e.n_a} seeds"
        return f"{self.answer}: {self.claim} ({self.tested_on}): {_num(e.mean)}{ci}, {seeds}"


@dataclass
class Design:
    """What the study config says about its targets: the sets each starts from, seen or unseen."""

    envsets: dict[str, list[str]] = field(default_factory=dict)
    targets: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict) -> Design:
        """From a study config (its ``envsets`` and ``targets`` sections)."""
        targets = {}
        for t in config.get("targets", []):
            sets = t.get("envset") or []
            targets[t["game"]] = [sets] if isinstance(sets, str) else list(sets)
        return cls({k: list(v) for k, v in config.get("envsets", {}).items()}, targets)

    def seen(self, target: str, label: str | None = None) -> bool | None:
        """Whether ``target`` is in the pre-training set of run ``label`` (None: unknown)."""
        sets = self.targets.get(target)
        if not sets:
            return None
        suffix = str(label).split("-", 1)[1] if label and "-" in str(label) else None
        names = [s for s in sets if s == suffix] or sets
        return any(target in self.envsets.get(s, []) for s in names)


def _num(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def _finding(cfg: StatsConfig, key, seed, claim, tested_on, measure, direction, a, b, figure,
             salt: int) -> Finding:
    effect = difference_ci(np.asarray(list(a.values()) if isinstance(a, dict) else a, dtype=float),
                           np.asarray(list(b.values()) if isinstance(b, dict) else b, dtype=float),
                           cfg.n_boot, cfg.ci_level, cfg.seed + salt)
    answer, reason = verdict(effect, direction, cfg.min_seeds)
    return Finding(key, seed, claim, tested_on, measure, direction, effect, answer, reason, figure)


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _where(design: Design, target: str, label: str) -> str:
    seen = design.seen(target, label)
    return target if seen is None else f"{target}, {'seen' if seen else 'unseen'}"


def _per_seed_mean(rows: pd.DataFrame, lo: float = -math.inf, hi: float = math.inf,
                   axis: str = "update") -> dict[int, float]:
    """Per seed, the mean value of ``rows`` (one metric, one run group) with ``lo < axis <= hi``."""
    rows = rows[(rows[axis] > lo) & (rows[axis] <= hi)]
    return {int(s): float(g["value"].mean()) for s, g in rows.groupby("seed")}


def _return_values(table: pd.DataFrame, target: str, label: str, grid: np.ndarray,
                   cfg: StatsConfig) -> dict[int, np.ndarray]:
    curves = curves_by_seed(select(table, target=target, condition=label, metric=RETURN))
    if not curves:
        return {}
    values = seeds_on_grid(list(curves.values()), grid, cfg.smooth_window)
    return dict(zip(curves, values, strict=True))


def _labels(table: pd.DataFrame, target: str, base: str) -> list[str]:
    rows = select(table, target=target)
    return [c for c in order_conditions(rows["condition"].unique()) if base_condition(c) == base]


def _figure(figures: set[str] | None, *names: str) -> str | None:
    for name in names:
        if figures is None or name in figures:
            return f"figures/{name}.png"
    return None


def _seed001(table, design, cfg, figures) -> list[Finding]:
    out = []
    for target in sorted(table["target"].unique()):
        if "scratch" not in set(select(table, target=target)["condition"]):
            continue
        t = _safe(target)
        loss_rows = select(table, target=target)
        for label in _labels(table, target, "finetune"):
            where = _where(design, target, label)
            n_up = float(loss_rows[loss_rows["metric"] == "wm_loss"]["update"].max() or 0)
            upto = min(cfg.early_updates, n_up) if n_up else cfg.early_updates
            lo = math.floor(cfg.early_from_frac * upto)
            span = f"updates {lo + 1:,.0f}-{upto:,.0f}"
            for metric, name in (("wm_loss", "total loss"), ("wm_image", "image loss")):
                a = _per_seed_mean(select(loss_rows, condition=label, metric=metric), lo, upto)
                b = _per_seed_mean(select(loss_rows, condition="scratch", metric=metric), lo, upto)
                if a and b:
                    out.append(_finding(
                        cfg, "001-wm-early", "001 §3.1-3.2",
                        f"{label}'s world-model {name} falls faster than scratch's: below it over {span}",
                        where, f"mean {metric} over {span} (of the first {upto:,.0f}), {label} minus scratch",
                        -1, a, b, _figure(figures, f"wm_loss_zoom_{t}", f"wm_loss_{t}"), len(out)))
        frozen = _labels(table, target, "frozen_rssm")
        finetuned = _labels(table, target, "finetune")
        for fz in frozen:
            ft = next((f for f in finetuned if f.split("-", 1)[1:] == fz.split("-", 1)[1:]), None)
            if ft is None:
                continue
            where = _where(design, target, fz)
            a = _per_seed_mean(select(loss_rows, condition=fz, metric="wm_kl"))
            b = _per_seed_mean(select(loss_rows, condition=ft, metric="wm_kl"))
            if a and b:
                out.append(_finding(cfg, "001-kl", "001 §3.1", f"{fz} has a higher KL loss than {ft}",
                                    where, f"mean wm_kl over all updates, {fz} minus {ft}", +1, a, b,
                                    _figure(figures, f"wm_loss_{t}"), len(out)))
            budget = float(loss_rows["env_step"].max())
            grid = common_grid(budget, cfg.grid_points)
            va = _return_values(table, target, fz, grid, cfg)
            vb = _return_values(table, target, ft, grid, cfg)
            if va and vb:
                a = {s: float(final_return(grid, v, cfg.last_frac)) for s, v in va.items()}
                b = {s: float(final_return(grid, v, cfg.last_frac)) for s, v in vb.items()}
                out.append(_finding(cfg, "001-frozen-return", "001 §3.1",
                                    f"{fz} ends with a lower return than {ft}", where,
                                    f"final return (last {cfg.last_frac:.0%} of the budget), {fz} minus {ft}",
                                    -1, a, b, _figure(figures, f"return_{t}"), len(out)))
        out += _early_returns(table, design, cfg, figures, target)
    return out


def _early_returns(table, design, cfg, figures, target) -> list[Finding]:
    out = []
    t = _safe(target)
    budget = float(select(table, target=target)["env_step"].max())
    start = prefill_end(table, target)
    end = start + cfg.early_frac * (budget - start)
    grid = common_grid(budget, cfg.grid_points)
    window = (grid >= start) & (grid <= end)
    scratch = _return_values(table, target, "scratch", grid, cfg)
    for label in _labels(table, target, "finetune"):
        ft = _return_values(table, target, label, grid, cfg)
        if not (ft and scratch) or window.sum() < 2:
            continue
        a = {s: float(nanmean(v[window], 0)) for s, v in ft.items()}
        b = {s: float(nanmean(v[window], 0)) for s, v in scratch.items()}
        out.append(_finding(
            cfg, "001-return-early", "001 §3.1, §4", f"{label}'s return is above scratch's early", _where(
                design, target, label),
            f"mean return over env steps {start:,.0f}-{end:,.0f} (the first {cfg.early_frac:.0%} after the "
            f"random prefill), {label} minus scratch", +1, a, b, _figure(figures, f"return_{t}"), len(out)))
        if "breakout" in target and budget >= BREAKOUT_WINDOW[1]:
            lo, hi = BREAKOUT_WINDOW
            inside = (grid >= lo) & (grid <= hi)
            outside = ~inside & (grid >= start)

            def stat(v, inside=inside, outside=outside):
                return float(nanmean(v[inside], 0) - nanmean(v[outside], 0))

            out.append(_finding(
                cfg, "001-breakout-window", "001 §3.2",
                f"{label}'s lead over scratch is largest between {lo:,} and {hi:,} env steps",
                _where(design, target, label),
                f"(return gap {label} minus scratch inside {lo:,}-{hi:,}) minus (the gap elsewhere)", +1,
                {s: stat(v) for s, v in ft.items()}, {s: stat(v) for s, v in scratch.items()},
                _figure(figures, f"return_{t}"), len(out)))
    return out


def _across_targets(per_target: dict[str, dict[int, float]]) -> dict[int, float]:
    """Per seed, the mean over targets (seeds present on every target only)."""
    if not per_target:
        return {}
    seeds = set.intersection(*(set(v) for v in per_target.values()))
    return {s: float(np.mean([v[s] for v in per_target.values()])) for s in sorted(seeds)}


def _value_at(table, target, label, at: float, cfg, game: str | None = None) -> dict[int, float]:
    """Per seed, the return averaged over the last ``last_frac`` of [0, at] (only episodes of ``game``
    when given, a multi-task run's level); NaN for a seed whose run ended before ``at``."""
    run = select(table, target=target, condition=label)
    rows = select(run, metric=RETURN)
    if game is not None:
        rows = rows[(rows["game"] == game).fillna(False).to_numpy(dtype=bool)]
    curves = curves_by_seed(rows)
    if not curves or at <= 0:
        return {}
    ends = run.groupby("seed")["env_step"].max()
    grid = common_grid(at, cfg.grid_points)
    values = seeds_on_grid(list(curves.values()), grid, cfg.smooth_window)
    return {s: float(final_return(grid, v, cfg.last_frac)) if ends[s] >= at else float("nan")
            for s, v in zip(curves, values, strict=True)}


def _seed003(table, design, cfg, figures, costs) -> list[Finding]:
    out = []
    # one agent on N levels for T steps vs N agents at T/N each (equal samples)
    for envset in sorted(select(table, condition="pretrain_agent")["target"].unique()):
        levels = design.envsets.get(envset) or sorted(
            select(table, condition="pretrain_agent", target=envset)["game"].dropna().unique())
        multi_rows = select(table, condition="pretrain_agent", target=envset, metric=RETURN)
        total = float(multi_rows["env_step"].max())
        per_level_a, per_level_b = {}, {}
        for level in levels:
            a = _value_at(table, envset, "pretrain_agent", total, cfg, game=level)
            b = _value_at(table, level, "scratch", total / len(levels), cfg)
            if a and b:
                per_level_a[level], per_level_b[level] = a, b
        if per_level_a:
            out.append(_finding(
                cfg, "003-multitask", "003 §6, fig. 7",
                f"one agent on the {len(per_level_a)} levels of {envset} returns more per level than one "
                f"agent per level at equal samples", f"{envset}, mean over levels",
                f"return per level: multi-task run at {total:,.0f} env steps minus scratch at "
                f"{total / len(levels):,.0f}", +1, _across_targets(per_level_a), _across_targets(per_level_b),
                _figure(figures, "per_level_return"), len(out)))
    # fine-tuned vs scratch, compute-matched, on seen targets; transfer to unseen targets
    by_label: dict[str, dict[str, list[str]]] = {}
    for target in sorted(table["target"].unique()):
        conds = set(select(table, target=target)["condition"])
        if "scratch" not in conds:
            continue
        for label in conds:
            if base_condition(label) in ("finetune", "finetune_agent"):
                kind = {True: "seen", False: "unseen", None: None}[design.seen(target, label)]
                if kind:
                    by_label.setdefault(label, {}).setdefault(kind, []).append(target)
    for label in order_conditions(by_label):
        seen = by_label[label].get("seen", [])
        if seen:
            a_t, b_t, shares = {}, {}, []
            for target in seen:
                budget = float(select(table, target=target, condition="scratch")["env_step"].max())
                cost = (costs or {}).get(target, {}).get(label)
                if cost is None:
                    continue
                share = cost / len(seen)  # one pre-training serves every seen target (seed 003 fig. 7)
                shares.append(share / budget)
                a_t[target] = _value_at(table, target, label, budget - share, cfg)
                b_t[target] = _value_at(table, target, "scratch", budget, cfg)
            if shares:
                f = _finding(
                    cfg, "003-compute-matched", "003 §6, fig. 7",
                    f"{label} beats scratch at equal env steps, pre-training included",
                    f"{len(a_t)} seen target(s)", f"return of {label} at (budget minus its share of the "
                    f"pre-training cost, {np.mean(shares):.0%} of the budget) minus scratch's at the budget",
                    +1, _across_targets(a_t), _across_targets(b_t),
                    _figure(figures, "compute_matched_mean", f"compute_matched_{_safe(seen[0])}"), len(out))
                if max(shares) >= 1:
                    f.answer, f.reason = INCONCLUSIVE, "the pre-training cost exceeds the budget"
                out.append(f)
        unseen = by_label[label].get("unseen", [])
        if unseen:
            a_t, b_t = {}, {}
            for target in unseen:
                budget = float(select(table, target=target)["env_step"].max())
                grid = common_grid(budget, cfg.grid_points)
                va = _return_values(table, target, label, grid, cfg)
                vb = _return_values(table, target, "scratch", grid, cfg)
                if va and vb:
                    a_t[target] = {s: float(area_under_curve(grid, v)) for s, v in va.items()}
                    b_t[target] = {s: float(area_under_curve(grid, v)) for s, v in vb.items()}
            if a_t:
                out.append(_finding(
                    cfg, "003-transfer", "003 §6, fig. 6",
                    f"{label} learns unseen targets faster than scratch", f"{len(a_t)} unseen target(s)",
                    f"area under the return curve / budget, mean over targets, {label} minus scratch", +1,
                    _across_targets(a_t), _across_targets(b_t),
                    _figure(figures, "per_level_return", f"return_{_safe(unseen[0])}"), len(out)))
    return out


def _seed002(table, cfg, figures) -> list[Finding]:
    out = []
    for variant in ABLATIONS:
        label = f"scratch-{variant}"
        a_t, b_t = {}, {}
        for target in sorted(select(table, condition=label)["target"].unique()):
            budget = float(select(table, target=target)["env_step"].max())
            grid = common_grid(budget, cfg.grid_points)
            va = _return_values(table, target, "scratch", grid, cfg)
            vb = _return_values(table, target, label, grid, cfg)
            if va and vb:
                a_t[target] = {s: float(final_return(grid, v, cfg.last_frac)) for s, v in va.items()}
                b_t[target] = {s: float(final_return(grid, v, cfg.last_frac)) for s, v in vb.items()}
        if a_t:
            out.append(_finding(
                cfg, "002-ablation", "002 (ablations)",
                f"DreamerV2 (categorical latents, KL balancing) ends above {label}",
                f"{len(a_t)} target(s)", f"final return, mean over targets, scratch minus {label}", +1,
                _across_targets(a_t), _across_targets(b_t), _figure(figures, "aggregate"), len(out)))
    return out


def study_findings(table: pd.DataFrame, design: Design | None = None, cfg: StatsConfig | None = None,
                   costs: dict[str, dict[str, float]] | None = None,
                   figures: set[str] | None = None) -> list[Finding]:
    """Every finding the study table can test. ``costs``: ``{target: {label: pre-training env steps}}``;
    ``figures``: names of the figures that exist (links to others are left out; None: link anyway)."""
    cfg = cfg or StatsConfig()
    design = design or Design()
    return (_seed001(table, design, cfg, figures) + _seed003(table, design, cfg, figures, costs)
            + _seed002(table, cfg, figures))


#: Claims listed as not testable when a study has none of the runs they need.
CLAIMS = {
    "001-wm-early": "fine-tuned world-model loss below scratch early (needs finetune and scratch runs)",
    "001-kl": "frozen RSSM has the higher KL loss (needs frozen_rssm and finetune runs)",
    "001-frozen-return": "frozen RSSM ends with the lower return (needs frozen_rssm and finetune runs)",
    "001-return-early": "fine-tuned return above scratch early (needs finetune and scratch runs)",
    "001-breakout-window": "Breakout's largest gap at 10k-20k env steps (needs a Breakout target with "
                           "finetune, scratch and at least 20k env steps)",
    "003-multitask": "one agent on N levels vs N agents at T/N (needs a pretrain_agent run and scratch "
                     "runs on its levels)",
    "003-compute-matched": "fine-tuning beats scratch compute-matched (needs a fine-tuned seen target and "
                           "the pre-training cost)",
    "003-transfer": "pre-training speeds up unseen targets (needs a pre-trained unseen target)",
    "002-ablation": "DreamerV2 above its ablations (needs scratch-no_kl_balance / scratch-gaussian_latents)",
}


def to_markdown(study: str, findings: list[Finding], cfg: StatsConfig, extras: list[str] = ()) -> str:
    """The findings page."""
    lines = [
        f"# Findings of study `{study}`", "",
        "Each claim of the research seeds (`shared/seeds/`) that this study's runs can test. Effect: "
        "mean of A minus mean of B over seeds (the measure column says what A and B are); "
        f"{cfg.ci_level:.0%} percentile bootstrap CI resampling each group's seeds ({cfg.n_boot} resamples). "
        f"**holds**: the CI lies on the claimed side of zero with at least {cfg.min_seeds} seeds per group; "
        "**does not hold**: it lies on the other side; **inconclusive**: fewer seeds, or a CI that contains "
        "zero. No ratio is printed from noise.", "",
    ]
    if findings:
        lines += ["| answer | claim (seed) | tested on | effect [CI] | seeds | figure |",
                  "|---|---|---|---|---|---|"]
        for f in findings:
            e = f.effect
            ci = f"{_num(e.mean)} [{_num(e.low)}, {_num(e.high)}]" if math.isfinite(e.low) else _num(e.mean)
            fig = f"[{Path(f.figure).stem}]({f.figure})" if f.figure else "-"
            lines.append(f"| **{f.answer}** | {f.claim} (seed {f.seed}) | {f.tested_on} | {ci} | "
                         f"{e.n_a} vs {e.n_b} | {fig} |" if e.n_b else
                         f"| **{f.answer}** | {f.claim} (seed {f.seed}) | {f.tested_on} | {ci} | {e.n_a} | "
                         f"{fig} |")
        lines += ["", "## How each was measured", ""]
        for f in findings:
            lines.append(f"- **{f.answer}** — {f.claim} ({f.tested_on}): {f.measure}; "
                         f"{'lower' if f.direction < 0 else 'higher'} is the claim; {f.reason}.")
    else:
        lines.append("This study has none of the runs a seed's claim needs.")
    missing = [text for key, text in CLAIMS.items() if key not in {f.key for f in findings}]
    if missing:
        lines += ["", "## Not testable in this study", ""] + [f"- {m}" for m in missing]
    if extras:
        lines += ["", "## Also in this study", ""] + [f"- {e}" for e in extras]
    return "\n".join(lines) + "\n"


def write_summary(study: str, findings: list[Finding], out_dir: str | Path, cfg: StatsConfig,
                  extras: list[str] = ()) -> list[Path]:
    """Write ``summary.md`` and ``summary.json`` into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    md, js = out_dir / "summary.md", out_dir / "summary.json"
    text = to_markdown(study, findings, cfg, extras)
    data = {"study": study, "min_seeds": cfg.min_seeds, "ci_level": cfg.ci_level,
            "findings": [{**asdict(f), "headline": f.headline()} for f in findings], "extras": list(extras)}
    atomic_write(md, lambda p: Path(p).write_text(text))
    atomic_write(js, lambda p: Path(p).write_text(json.dumps(data, indent=2, allow_nan=True) + "\n"))
    return [md, js]


def headline_lines(summary_json: str | Path, limit: int = 12) -> list[str]:
    """The lines printed when the workflow ends: where the page is and each finding's answer."""
    path = Path(summary_json)
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    lines = [f"Findings of study {data['study']}: {path.with_suffix('.md')}"]
    found = data.get("findings", [])
    order = {HOLDS: 0, "does not hold": 1, INCONCLUSIVE: 2}
    for f in sorted(found, key=lambda f: order.get(f["answer"], 3))[:limit]:
        lines.append(f"  {f['headline']}")
    if len(found) > limit:
        lines.append(f"  ... and {len(found) - limit} more in the page")
    if not found:
        lines.append("  no seed claim is testable with this study's runs")
    return lines


def extras_from(paths: list[str | Path], out_dir: str | Path) -> list[str]:
    """One line per analysis output (``latent.json``, ``rollouts.json``, ``aggregate.json``, ...): its
    ``summary`` sentence and a link to the file relative to ``out_dir``. Files without one are listed
    by name; a missing file is an error naming it."""
    from .curves import MetricsError

    lines = []
    for p in paths:
        path = Path(p)
        target = path / "summary.json" if path.is_dir() else path
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            target = found[0] if found else target
        try:
            data = json.loads(target.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise MetricsError(f"{target}: cannot read analysis output ({e})") from e
        try:
            rel = target.resolve().relative_to(Path(out_dir).resolve())
        except ValueError:
            rel = target
        lines.append(f"{data.get('summary', target.stem)} ([{target.name}]({rel}))")
    return lines
