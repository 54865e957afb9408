"""The tidy ``metrics.csv`` every training run writes (contract in ``docs/training.md``).

One row per logging event, one column per metric, empty where a metric was not measured at that row.
``env_step``, ``update`` and ``wall_time`` (seconds since the run *first* started, continued across
resumes) are on every row. The file is appended and flushed row by row, so a killed run keeps its
curve; a resumed run first cuts the file back to the rows its checkpoint knew about.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

#: Column order of metrics.csv (shared by DQN, Dreamer and pre-training runs; V-M-C's stages, which log
#: other quantities, pass their own, starting with the same three).
COLUMNS = (
    "env_step", "update", "wall_time",
    "episode_return", "episode_length", "game", "eval_return",
    "wm_loss", "wm_image", "wm_reward", "wm_discount", "wm_kl", "wm_prior_entropy", "wm_post_entropy",
    "wm_probe_info", "wm_probe_swap", "wm_probe_gap",
    "actor_loss", "critic_loss", "actor_entropy", "value_mean",
    "loss", "epsilon",
)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


class MetricsCSV:
    """Append-only writer of ``metrics.csv``; :attr:`rows` counts the rows written so far."""

    def __init__(self, path: str | Path, resume_rows: int | None = None, columns: tuple[str, ...] = COLUMNS):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns = tuple(columns)
        if resume_rows is not None and self.path.exists():
            self._truncate(resume_rows)
        else:
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.columns)
            self.rows = 0
        self._file = self.path.open("a", newline="")
        self._writer = csv.writer(self._file)

    def _truncate(self, n_rows: int) -> None:
        """Keep the header and the first ``n_rows`` rows (those a checkpoint accounted for)."""
        with self.path.open(newline="") as f:
            lines = list(csv.reader(f))
        header, body = lines[0], lines[1 : 1 + n_rows]
        if tuple(header) != self.columns:
            raise ValueError(f"{self.path}: unexpected header {header}")
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            csv.writer(f).writerows([header, *body])
        tmp.replace(self.path)
        self.rows = len(body)

    def write(self, env_step: int, update: int, wall_time: float, values: Mapping[str, object]) -> None:
        """Append one row; keys outside :attr:`columns` are ignored."""
        row = {"env_step": int(env_step), "update": int(update), "wall_time": round(float(wall_time), 3)}
        row.update({k: v for k, v in values.items() if k in self.columns and k not in row})
        self._writer.writerow([_fmt(row.get(c)) for c in self.columns])
        self._file.flush()
        self.rows += 1

    def close(self) -> None:
        self._file.close()
