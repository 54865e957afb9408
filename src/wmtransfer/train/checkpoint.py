"""Atomic checkpoints of a training run and the RNG states that make a resumed run continue.

A checkpoint is one ``torch.save`` file of plain data (tensors, dicts, lists, str, int, float), so it
loads with ``torch.load(weights_only=True)``. It is written to a temporary file in the same folder and
moved over the old one with :func:`os.replace`, so a run killed while saving keeps its previous
checkpoint intact.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_write, safe_load


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` through a temporary file and ``os.replace`` (atomic on POSIX)."""
    atomic_write(path, lambda p: torch.save(obj, p), fsync=True)


def load(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (loaded with ``weights_only=True``), or ``None`` if there is none."""
    path = Path(path)
    if not path.exists():
        return None
    return safe_load(path)


def rng_state(generators: dict[str, np.random.Generator] | None = None) -> dict[str, Any]:
    """Global torch, numpy and Python RNG states plus named numpy Generators, as plain data."""
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": json.dumps(np.random.get_state(legacy=False), default=_jsonable),  # noqa: NPY002
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
        "generators": {k: json.dumps(g.bit_generator.state) for k, g in (generators or {}).items()},
    }


def set_rng_state(state: dict[str, Any], generators: dict[str, np.random.Generator] | None = None) -> None:
    """Restore what :func:`rng_state` saved (the named Generators in place)."""
    torch.set_rng_state(state["torch"])
    np_state = json.loads(state["numpy"])
    np_state["state"]["key"] = np.asarray(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(np_state)  # noqa: NPY002
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    for k, g in (generators or {}).items():
        g.bit_generator.state = json.loads(state["generators"][k])


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.integer):
        return int(x)
    raise TypeError(type(x))
