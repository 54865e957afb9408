"""Episode files: one compressed ``.npz`` per episode, their checksums and the dataset manifest.

Format (DreamerV2's convention; full description and alignment in ``docs/data.md``). For T
transitions an episode has L = T + 1 steps:

========================  ============  ==========================================================
key                       dtype, shape  meaning at step i
========================  ============  ==========================================================
``obs``                   uint8 (L,C,H,W) obs[0] the reset observation, obs[i] the one after action i
``action``                int16 (L,)    the action taken in obs[i-1] that led to obs[i]; action[0]=0
``reward``                float32 (L,)  reward of the transition into obs[i]; reward[0] = 0
``is_first``              bool (L,)     True only at i = 0
``is_last``               bool (L,)     True only at i = L-1 (termination or truncation)
``is_terminal``           bool (L,)     True at L-1 only if the game terminated (no time limit)
``policy``                int16 (L,)    index into ``policy_names`` of who chose action[i]; -1 at 0
``policy_names``          str (P,)      e.g. ``["random", "dqn@50000"]``
``game``                  str ()        game id
========================  ============  ==========================================================

Files are written deterministically (fixed zip timestamps), so the same data gives the same sha256.
A file that is truncated, corrupt, misses a key or breaks the format raises :class:`EpisodeError`
naming the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..io import atomic_write

#: Required keys and their dtypes (strings are checked as unicode).
KEYS = {
    "obs": np.uint8, "action": np.int16, "reward": np.float32, "is_first": np.bool_, "is_last": np.bool_,
    "is_terminal": np.bool_, "policy": np.int16, "policy_names": np.str_, "game": np.str_,
}
STEP_KEYS = ("obs", "action", "reward", "is_first", "is_last", "is_terminal", "policy")
MANIFEST_COLUMNS = ("file", "game", "length", "return", "sha256", "policies")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class EpisodeError(ValueError):
    """An episode file is missing, corrupt, truncated, or breaks the format; the message names it."""


def validate_episode(ep: dict[str, np.ndarray], name: str = "episode") -> None:
    """Check keys, dtypes, lengths and flags of an episode dict; raise :class:`EpisodeError`."""
    missing = [k for k in KEYS if k not in ep]
    if missing:
        raise EpisodeError(f"{name}: missing key(s) {', '.join(missing)}")
    for key, dtype in KEYS.items():
        arr = np.asarray(ep[key])
        ok = arr.dtype.kind == "U" if dtype is np.str_ else arr.dtype == dtype
        if not ok:
            raise EpisodeError(f"{name}: {key} has dtype {arr.dtype}, expected {np.dtype(dtype)}")
    n = len(ep["obs"])
    if n < 2:
        raise EpisodeError(f"{name}: an episode needs at least 2 steps (1 transition), has {n}")
    if ep["obs"].ndim != 4:
        raise EpisodeError(f"{name}: obs must be (L, C, H, W), got shape {ep['obs'].shape}")
    for key in STEP_KEYS[1:]:
        if ep[key].shape != (n,):
            raise EpisodeError(f"{name}: {key} has shape {ep[key].shape}, expected ({n},)")
    if not (ep["is_first"][0] and not ep["is_first"][1:].any()):
        raise EpisodeError(f"{name}: is_first must be True exactly at step 0")
    if not (ep["is_last"][-1] and not ep["is_last"][:-1].any()):
        raise EpisodeError(f"{name}: is_last must be True exactly at the last step")
    if ep["is_terminal"][:-1].any():
        raise EpisodeError(f"{name}: is_terminal set before the last step")
    n_pol = len(ep["policy_names"])
    if ep["policy"][0] != -1 or (ep["policy"][1:] < 0).any() or (ep["policy"][1:] >= n_pol).any():
        raise EpisodeError(f"{name}: policy must be -1 at step 0 and index policy_names ({n_pol}) after")


def _npz_bytes(ep: dict[str, np.ndarray]) -> bytes:
    """A compressed .npz in memory, with fixed timestamps so the bytes depend on the data only."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in KEYS:
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            arr_buf = io.BytesIO()
            np.lib.format.write_array(arr_buf, np.asarray(ep[key]), allow_pickle=False)
            zf.writestr(info, arr_buf.getvalue(), compresslevel=6)
    return buf.getvalue()


def write_episode(path: str | Path, ep: dict[str, np.ndarray]) -> str:
    """Validate and write one episode atomically; returns the file's sha256 (hex)."""
    path = Path(path)
    ep = {k: np.asarray(ep[k]) if k in ep else None for k in KEYS}
    validate_episode({k: v for k, v in ep.items() if v is not None}, str(path))
    data = _npz_bytes(ep)
    atomic_write(path, lambda p: p.write_bytes(data))
    return hashlib.sha256(data).hexdigest()


def read_episode(path: str | Path) -> dict[str, np.ndarray]:
    """Load and validate one episode file; any defect raises :class:`EpisodeError` naming ``path``."""
    path = Path(path)
    if not path.exists():
        raise EpisodeError(f"{path}: episode file does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            ep = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise EpisodeError(f"{path}: unreadable episode file ({type(e).__name__}: {e})") from e
    validate_episode(ep, str(path))
    return ep


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def episode_policies(ep: dict[str, np.ndarray]) -> list[str]:
    """Names of the policies that acted in an episode, in order of first appearance."""
    idx = ep["policy"][1:]
    _, first = np.unique(idx, return_index=True)
    return [str(ep["policy_names"][idx[i]]) for i in sorted(first)]


def manifest_row(file: str, ep: dict[str, np.ndarray], sha256: str) -> dict[str, object]:
    """The manifest line of an episode: ``file`` is relative to the dataset folder."""
    return {"file": file, "game": str(ep["game"]), "length": len(ep["obs"]) - 1,
            "return": float(np.sum(ep["reward"], dtype=np.float64)), "sha256": sha256,
            "policies": ";".join(episode_policies(ep))}


def write_manifest(path: str | Path, rows: Iterable[dict[str, object]]) -> None:
    """Write ``manifest.csv`` (columns :data:`MANIFEST_COLUMNS`; ``length`` counts transitions)."""

    rows = list(rows)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def read_manifest(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        raise EpisodeError(f"{path}: manifest does not exist")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise EpisodeError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
        return list(reader)
