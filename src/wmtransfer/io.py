"""Small file helpers every stage uses: atomic writes, so a killed job never leaves half a file."""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], None], fsync: bool = False) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it onto ``path`` (the one
    atomic-write helper of the project; ``fsync`` flushes the data to disk before the rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    return atomic_write(path, lambda p: p.write_text(text))


class UnsafeCheckpoint(ValueError):
    """A checkpoint holds more than plain data (it would run code when unpickled): refused."""


def safe_load(path: str | Path | Any, map_location: Any = "cpu", name: str | None = None) -> Any:
    """``torch.load(path, weights_only=True)``, but a file that needs more than plain data (tensors,
    numbers, strings, lists, dicts) is refused with :class:`UnsafeCheckpoint` naming the file and the
    offending object, never with advice to load it unsafely. ``path`` may be a file object (``name``
    then names it in messages)."""
    import torch

    label = name or str(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL ([^ ]+)", str(e))
        what = f"the object {found.group(1)!r}" if found else "an object that is not plain data"
        raise UnsafeCheckpoint(
            f"{label}: refused: it holds {what}, which loading would have to execute; wmtransfer checkpoints "
            "hold only tensors, numbers, strings, lists and dicts. Do not load this file unless you know "
            "where it came from and what it runs.") from None
