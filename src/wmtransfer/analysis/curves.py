"""Every run's ``metrics.csv`` into one tidy long table per study.

A run's metrics file is wide (one row per logging event, one column per metric, empty where a metric was
not measured; see the metrics CSV contract in SPEC.md). The study table is long: one row per
(run, logging event, metric) with the columns of :data:`LONG_COLUMNS`, so pandas/seaborn read it directly
and a figure selects ``metric == "episode_return"`` without knowing which runs logged what.

Where a run comes from is read from its path:

* ``.../{study}/{target}/{condition}/seed{seed}/metrics.csv`` under an ``agents`` folder
  (``results/agents/...``, the agent runs of a study);
* ``.../{stage}/{name}/seed{seed}/metrics.csv`` otherwise (``results/dqn/{game}/seed0``,
  ``results/pretrain/{envset}/seed0``): target ``name``, condition ``stage``, study from the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import conditions
from ..io import atomic_write  # noqa: F401 - the analysis modules import it from here

#: Columns every metrics.csv row carries (the x axes); ``env_step`` is required, the others may be absent.
AXIS_COLUMNS = ("env_step", "update", "wall_time")
#: Non-numeric per-row label kept as a column of the long table (the game of a multi-game episode).
LABEL_COLUMNS = ("game",)
#: Columns of the tidy study table, in order.
LONG_COLUMNS = (
    "study", "target", "condition", "seed", "game", "env_step", "update", "wall_time", "metric", "value",
)

#: Conditions in legend/table order (the conditions of SPEC.md, then pre-training and baseline runs).
KNOWN_CONDITIONS = (*conditions.NAMES, "pretrain", "pretrain_agent", "dqn", "random")

_SEED_DIR = re.compile(r"^seed(\d+)$")


class MetricsError(ValueError):
    """A metrics file or its path is not what the metrics CSV contract says; the message names the file."""


@dataclass(frozen=True)
class RunKey:
    """Identity of one training run in a study table."""

    study: str
    target: str
    condition: str
    seed: int


def parse_run_path(path: str | Path, study: str | None = None) -> RunKey:
    """Study, target, condition and seed of a run from its ``metrics.csv`` path (see module docstring).

    ``study``, when given, must agree with the study folder of an ``agents`` path, and names the study of
    a path of another stage (which carries none).
    """
    parts = Path(path).parts
    if len(parts) < 4:
        raise MetricsError(f"{path}: path too short to name target/condition/seed{{N}}")
    m = _SEED_DIR.match(parts[-2])
    if m is None:
        raise MetricsError(f"{path}: parent folder {parts[-2]!r} is not seed<N>")
    seed = int(m.group(1))
    if len(parts) >= 6 and parts[-6] == "agents":
        run_study, target, condition = parts[-5], parts[-4], parts[-3]
        if study is not None and run_study != study:
            raise MetricsError(f"{path}: run belongs to study {run_study!r}, not {study!r}")
        return RunKey(run_study, target, condition, seed)
    if study is None:
        raise MetricsError(f"{path}: not under agents/{{study}}/...; pass the study name")
    return RunKey(study, parts[-3], parts[-4], seed)


def read_metrics(path: str | Path) -> pd.DataFrame:
    """Read one wide metrics.csv; raises :class:`MetricsError` naming the file if it breaks the contract."""
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise MetricsError(f"{path}: cannot read metrics CSV ({e})") from e
    if "env_step" not in df.columns:
        raise MetricsError(f"{path}: no env_step column (columns: {list(df.columns)})")
    if df["env_step"].isna().any():
        raise MetricsError(f"{path}: env_step is empty on {int(df['env_step'].isna().sum())} rows")
    for col in AXIS_COLUMNS[1:]:
        if col not in df.columns:
            df[col] = np.nan
    return df


def to_long(df: pd.DataFrame, key: RunKey, source: str | Path = "?") -> pd.DataFrame:
    """One wide metrics frame -> long rows (one per measured value); empty cells are dropped."""
    metric_cols = [c for c in df.columns if c not in AXIS_COLUMNS and c not in LABEL_COLUMNS]
    bad = [c for c in metric_cols if not pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any()]
    if bad:
        raise MetricsError(f"{source}: non-numeric metric column(s) {bad}")
    game = df["game"].astype("string") if "game" in df.columns else pd.Series(pd.NA, index=df.index,
                                                                               dtype="string")
    base = pd.DataFrame({
        "env_step": df["env_step"].astype("int64"),
        "update": df["update"].astype("float64"),
        "wall_time": df["wall_time"].astype("float64"),
        "game": game,
    })
    pieces = []
    for col in metric_cols:
        values = pd.to_numeric(df[col], errors="coerce").astype("float64")
        keep = values.notna()
        if not keep.any():
            continue
        piece = base[keep].copy()
        piece["metric"] = col
        piece["value"] = values[keep]
        pieces.append(piece)
    if not pieces:
        return empty_table()
    long = pd.concat(pieces, ignore_index=True)
    long.insert(0, "study", key.study)
    long.insert(1, "target", key.target)
    long.insert(2, "condition", key.condition)
    long.insert(3, "seed", key.seed)
    return long[list(LONG_COLUMNS)]


def empty_table() -> pd.DataFrame:
    """A long table with no rows and the right column types."""
    return pd.DataFrame({
        "study": pd.Series(dtype="string"), "target": pd.Series(dtype="string"),
        "condition": pd.Series(dtype="string"), "seed": pd.Series(dtype="int64"),
        "game": pd.Series(dtype="string"), "env_step": pd.Series(dtype="int64"),
        "update": pd.Series(dtype="float64"), "wall_time": pd.Series(dtype="float64"),
        "metric": pd.Series(dtype="string"), "value": pd.Series(dtype="float64"),
    })


def aggregate(paths: Iterable[str | Path], study: str | None = None) -> pd.DataFrame:
    """Long table of every run in ``paths`` (metrics.csv files), sorted by run, metric and env step."""
    frames = []
    seen: dict[RunKey, Path] = {}
    for path in paths:
        key = parse_run_path(path, study)
        if key in seen:
            raise MetricsError(f"{path}: same run {key} as {seen[key]}")
        seen[key] = Path(path)
        frames.append(to_long(read_metrics(path), key, path))
    if not frames:
        return empty_table()
    table = pd.concat(frames, ignore_index=True)
    for col in ("study", "target", "condition", "game", "metric"):
        table[col] = table[col].astype("string")
    return table.sort_values(["target", "condition", "seed", "metric", "env_step"], kind="stable",
                             ignore_index=True)




def write_table(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """Write ``table`` as both ``{stem}.csv`` and ``{stem}.parquet`` next to ``out``; returns the paths."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".csv", ".parquet") else out
    csv_path, pq_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    atomic_write(pq_path, lambda p: table.to_parquet(p, index=False))
    atomic_write(csv_path, lambda p: table.to_csv(p, index=False))
    return [csv_path, pq_path]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a study table written by :func:`write_table` (CSV or Parquet)."""
    path = Path(path)
    if not path.exists():
        raise MetricsError(f"{path}: no such study table")
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    else:
        table = pd.read_csv(path, dtype={"game": "string"})
    missing = [c for c in LONG_COLUMNS if c not in table.columns]
    if missing:
        raise MetricsError(f"{path}: not a study table, missing columns {missing}")
    for col in ("study", "target", "condition", "game", "metric"):
        table[col] = table[col].astype("string")
    return table


def select(table: pd.DataFrame, **equal) -> pd.DataFrame:
    """Rows of ``table`` whose columns equal the given values (``None`` values are not filtered)."""
    mask = np.ones(len(table), dtype=bool)
    for col, value in equal.items():
        if value is not None:
            mask &= (table[col] == value).fillna(False).to_numpy(dtype=bool)
    return table[mask]


def curves_by_seed(rows: pd.DataFrame, axis: str = "env_step") -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{seed: (x, y)}`` of rows already selected to one metric (and run group), x = ``axis`` column."""
    out = {}
    for seed, g in rows.groupby("seed", sort=True):
        g = g[g[axis].notna()].sort_values(axis, kind="stable")
        if len(g):
            out[int(seed)] = (g[axis].to_numpy(dtype=float), g["value"].to_numpy(dtype=float))
    return out


def base_condition(label: str) -> str:
    """The condition of a run label ``<condition>[-<envset or variant>]`` (see ``study.agent_runs``)."""
    return str(label).split("-", 1)[0]


def order_conditions(conditions) -> list[str]:
    """Run labels in :data:`KNOWN_CONDITIONS` order of their condition (the plain condition first), then
    labels of other conditions, sorted."""
    rank = {c: i for i, c in enumerate(KNOWN_CONDITIONS)}

    def key(label: str):
        base = base_condition(label)
        return (rank.get(base, len(rank)), base if base not in rank else "", label != base, label)

    return sorted({str(c) for c in conditions}, key=key)


def prefill_end(table: pd.DataFrame, target: str | None = None) -> float:
    """Env step where training starts: the first logged row with an update (over the runs of ``target``,
    or all). Before it every condition acts at random, so their returns there agree by design."""
    rows = select(table, target=target)
    trained = rows[(rows["update"] > 0).fillna(False).to_numpy(dtype=bool)]
    return float(trained["env_step"].min()) if len(trained) else 0.0
