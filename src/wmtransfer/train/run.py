"""One run folder for every training stage: staging, resume, metrics, checkpoints, promotion, progress.

Layout of a run folder ``out`` (``results/agents/.../seed0``, ``results/pretrain/.../seed0``,
``results/dqn/.../seed0``)::

    out/partial/            the run's working copy: config.json, metrics.csv, and at the end summary.json
                            and the final artefacts (agent.pt, world_model.pt, checkpoints/...)
    out/ckpt/checkpoint.pt  the resumable state (model, optimisers, replay, every RNG, loop counters,
                            wall time, and how many metrics rows it accounts for)
    out/<declared outputs>  hard links (copies where links fail) to the finished files in partial/

Snakemake deletes a failed or incomplete job's declared outputs before rerunning it; nothing a resume
needs is among them. A rerun resumes from ``ckpt/checkpoint.pt``, cuts ``partial/metrics.csv`` back to the
rows that checkpoint accounted for (no repeated, no missing row), and checks that the configuration is
the one the checkpoint was made with (only budget keys may grow). The declared outputs appear when the
run is complete: :meth:`RunFolder.promote` links every finished file into place, ``metrics.csv`` last
but one and ``summary.json`` last. A job killed during promotion still has everything in ``partial/``.

One process at a time: :meth:`RunFolder.resume` takes an exclusive ``flock`` on ``out/.lock`` (holding the
holder's pid and host) and keeps it until :meth:`RunFolder.finish` or the process's end, a kill included,
so a second training run started into the same folder (the bare CLI beside a Snakemake job, a script
started twice) stops with :class:`RunFolderBusy` before it writes anything, where it would otherwise
interleave its metrics rows and checkpoints with the first run's. Snakemake's own lock covers only two
``snakemake`` calls on one working directory. On a file system without ``flock`` the run warns and goes on
unlocked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..io import write_json
from . import checkpoint as ckpt_io
from .metrics import COLUMNS, MetricsCSV

#: Config keys that may change when a run is resumed (extending a finished run's budget).
RESUMABLE_CHANGES = ("env_steps", "updates", "total_steps")


#: Fault injection for the resume tests: ``WMTRANSFER_KILL_AT=save:N`` kills the job (SIGKILL, as a
#: cluster or the OOM killer would) just before its N-th checkpoint of this process, ``finish`` after the
#: last checkpoint before any final file, ``promote:K`` after K files were promoted into place.
KILL_AT = "WMTRANSFER_KILL_AT"


def fault_point(name: str, count: int | None = None) -> None:
    """SIGKILL this process if ``$WMTRANSFER_KILL_AT`` names this point (``name`` or ``name:count``)."""
    want = os.environ.get(KILL_AT)
    if want and want in (name, f"{name}:{count}"):
        print(f"{KILL_AT}={want}: killing the job here", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


#: Config keys added after checkpoints of earlier versions were written, with the value that reproduces
#: the behaviour those checkpoints were trained with. A checkpoint without such a key is read as having
#: that value, so a field added with its old behaviour as default never blocks a resume. Add a line
#: here whenever a field is added to a config section that run folders store.
ADDED_KEYS: dict[str, Any] = {
    "dreamer.post_ent_scale": 0.0,
    "dreamer.bf16": False,
    "dreamer.compile_rssm": False,
    "dreamer.decoder_offset_transfer": "keep",
    "dreamer.head_target": "current",
    "dreamer.image_focal": 0.0,
}


class ConfigChanged(ValueError):
    """The checkpoint in a run folder was made with another configuration."""


class RunFolderBusy(ValueError):
    """Another process is training into this run folder (a ValueError: the CLIs report it as bad input)."""


#: Run folders whose lock this process holds: resolved path -> the lock file's descriptor.
_HELD_LOCKS: dict[Path, int] = {}


def lock_run_folder(out: Path) -> None:
    """Take the exclusive lock on ``out/.lock`` for this process, or raise :class:`RunFolderBusy` naming the
    holder. Re-entrant within one process; the kernel releases it when the process ends, however it ends."""
    key = out.resolve()
    if key in _HELD_LOCKS:
        return
    try:
        import fcntl
    except ImportError:  # not a POSIX system: nothing to lock with
        return
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderBusy(
            f"{out} is being trained into by another process ({holder}); two runs writing one folder "
            "would interleave their metrics and checkpoints. Let that run finish or stop it, then run "
            "this again (it resumes from the folder's checkpoint)") from None
    except OSError as e:  # a file system without flock (some NFS or Lustre mounts)
        os.close(fd)
        warnings.warn(f"cannot lock {out / '.lock'} ({e}); nothing stops a second run from writing "
                      "this folder at the same time", stacklevel=3)
        return
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    _HELD_LOCKS[key] = fd


def unlock_run_folder(out: Path) -> None:
    """Release this process's lock on ``out`` (no-op if it holds none)."""
    fd = _HELD_LOCKS.pop(out.resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    items: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            items.update(flatten(v, f"{prefix}{k}."))
        else:
            items[f"{prefix}{k}"] = v
    return items


def check_same_config(saved: Mapping[str, Any], current: Mapping[str, Any],
                      may_change: Iterable[str] = RESUMABLE_CHANGES) -> None:
    """A resumed run must continue the same experiment; only keys named in ``may_change`` may differ."""
    may_change = set(may_change)
    a = flatten(json.loads(json.dumps(saved, default=str)))
    b = flatten(json.loads(json.dumps(current, default=str)))
    a = {**{k: v for k, v in ADDED_KEYS.items() if k in b}, **a}
    differ = sorted(k for k in set(a) | set(b)
                    if a.get(k) != b.get(k) and k.rsplit(".", 1)[-1] not in may_change)
    if differ:
        raise ConfigChanged("the checkpoint in this run folder belongs to a different configuration; "
                            + "; ".join(f"{k}: checkpoint {a.get(k)!r}, now {b.get(k)!r}" for k in differ))


def link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst`` atomically: a hard link (a copy where links fail) beside it, then rename."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.promote")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


class Every:
    """``due(n)`` is True once each time ``n`` reaches the next multiple of ``period`` (resumable: the next
    due point is recomputed from ``n``)."""

    def __init__(self, period: int, start: int = 0):
        self.period = int(period)
        self.next = (start // self.period + 1) * self.period

    def due(self, n: int) -> bool:
        if n < self.next:
            return False
        self.next = (n // self.period + 1) * self.period
        return True


class Progress:
    """A progress bar (tqdm) on a terminal; in a job log a plain line every ``every_s`` seconds. Both show
    the unit's rate, the latest return and the time left."""

    def __init__(self, total: int, done: int, unit: str, name: str, every_s: float = 60.0, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.unit, self.name, self.every_s = int(total), unit, name, float(every_s)
        self.start_n, self.start_t = int(done), time.time()
        self.last_print = self.start_t
        self.n = int(done)
        self.info: dict[str, Any] = {}
        self.bar = None
        if hasattr(self.stream, "isatty") and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.n, unit=unit, desc=name, file=self.stream,
                            dynamic_ncols=True)

    def update(self, n: int, **info: Any) -> None:
        self.info.update({k: v for k, v in info.items() if v is not None})
        if self.bar is not None:
            self.bar.update(n - self.n)
            self.n = n
            if info:
                self.bar.set_postfix({k: _short(v) for k, v in self.info.items()}, refresh=False)
            return
        self.n = n
        now = time.time()
        if now - self.last_print >= self.every_s:
            self.last_print = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None) -> str:
        now = now or time.time()
        rate = (self.n - self.start_n) / max(now - self.start_t, 1e-9)
        left = (self.total - self.n) / rate if rate > 0 else float("inf")
        extra = "".join(f", {k} {_short(v)}" for k, v in self.info.items())
        return (f"[{time.strftime('%H:%M:%S')}] {self.name}: {self.n}/{self.total} {self.unit} "
                f"({self.n / max(self.total, 1):.0%}), {rate:.1f} {self.unit}/s{extra}, "
                f"ETA {_duration(left)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            print(self.line(), file=self.stream, flush=True)


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _duration(s: float) -> str:
    if s == float("inf"):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class RunFolder:
    """The run folder of one training run (see the module docstring).

    Use::

        run = RunFolder(out, config)
        saved = run.resume()            # the checkpoint payload or None; config checked, config.json written
        metrics = run.metrics()         # partial/metrics.csv, cut back to the checkpoint's rows
        ... run.save({"agent": ..., "loop": ...})   # atomic; adds metrics_rows, config, wall_time
        run.finish(summary, {"agent.pt": lambda p: agent.save(p)})   # stage, then promote into place
    """

    def __init__(self, out: str | Path, config: Mapping[str, Any],
                 may_change: Iterable[str] = RESUMABLE_CHANGES):
        self.out = Path(out)
        self.partial = self.out / "partial"
        self.checkpoint_path = self.out / "ckpt" / "checkpoint.pt"
        self.config = dict(config)
        self.may_change = tuple(may_change)
        self._metrics: MetricsCSV | None = None
        self._saved: dict[str, Any] | None = None
        self._saves = 0
        self._start = time.time()

    # --- start / resume ---------------------------------------------------------------------------
    def resume(self) -> dict[str, Any] | None:
        """Load the checkpoint if there is one (checking the config), write ``partial/config.json``, start
        the wall clock (continued from the checkpoint). Returns the payload given to :meth:`save`. Locks
        the folder first (:class:`RunFolderBusy` if another process holds it)."""
        lock_run_folder(self.out)
        saved = ckpt_io.load(self.checkpoint_path)
        if saved is not None:
            check_same_config(saved["config"], self.config, self.may_change)
            if not (self.partial / "metrics.csv").exists() and saved.get("metrics_rows", 0) > 0:
                raise FileNotFoundError(
                    f"{self.checkpoint_path} accounts for {saved['metrics_rows']} rows of "
                    f"{self.partial / 'metrics.csv'}, which is missing; delete {self.out / 'ckpt'} "
                    "to start over")
            print(f"resuming from {self.checkpoint_path}", file=sys.stderr, flush=True)
        self._saved = saved
        self._start = time.time() - (float(saved.get("wall_time", 0.0)) if saved else 0.0)
        write_json(self.partial / "config.json", self.config)
        return saved

    def metrics(self, columns: tuple[str, ...] = COLUMNS) -> MetricsCSV:
        """``partial/metrics.csv``: new, or cut back to the rows the checkpoint accounted for."""
        rows = int(self._saved["metrics_rows"]) if self._saved else None
        if rows is None:  # a fresh start: never write through a link that a promoted output shares
            (self.partial / "metrics.csv").unlink(missing_ok=True)
        self._metrics = MetricsCSV(self.partial / "metrics.csv", resume_rows=rows, columns=columns)
        return self._metrics

    def wall(self) -> float:
        """Seconds since the run first started, continued across resumes."""
        return time.time() - self._start

    # --- checkpoints ------------------------------------------------------------------------------
    def save(self, payload: Mapping[str, Any]) -> None:
        """Atomic checkpoint of ``payload`` plus the config, the metrics rows so far and the wall time."""
        self._saves += 1
        fault_point("save", self._saves)
        state = {**payload, "config": self.config, "wall_time": self.wall(),
                 "metrics_rows": self._metrics.rows if self._metrics else 0}
        ckpt_io.save_atomic(state, self.checkpoint_path)

    # --- the end ----------------------------------------------------------------------------------
    def finish(self, summary: Mapping[str, Any], artefacts: Mapping[str, Any] | None = None) -> dict:
        """Write the final artefacts (``{relative path: writer(path)}``) and ``summary.json`` into
        ``partial/``, then :meth:`promote` them with ``metrics.csv`` and ``config.json``."""
        fault_point("finish")
        if self._metrics is not None:
            self._metrics.close()
        names = []
        for name, writer in (artefacts or {}).items():
            path = self.partial / name
            path.parent.mkdir(parents=True, exist_ok=True)
            writer(path)
            names.append(name)
        summary = {**summary, "wall_time": round(self.wall(), 3)}
        write_json(self.partial / "summary.json", summary)
        self.promote([*names, "config.json", "metrics.csv", "summary.json"])
        unlock_run_folder(self.out)
        return summary

    def promote(self, names: Iterable[str]) -> None:
        """Link ``partial/<name>`` to ``out/<name>`` for each name, in order (summary.json last)."""
        for i, name in enumerate(names):
            fault_point("promote", i)
            link_or_copy(self.partial / name, self.out / name)
