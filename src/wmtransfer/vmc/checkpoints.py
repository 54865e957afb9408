"""The model files of V-M-C: ``vae.pt``, ``mdnrnn.pt``, ``controller.pt``.

Each is one ``torch.save`` of plain data (weights, shapes, game, seed, the config) written atomically
with :func:`wmtransfer.train.checkpoint.save_atomic`, and loads with ``torch.load(weights_only=True)``.
Loading checks the kind and the shapes and names any mismatch (an M trained on another V, a controller
of another game).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..train.checkpoint import load, save_atomic
from .mdnrnn import MDNRNN
from .vae import ConvVAE


def _read(path: str | Path, kind: str) -> dict[str, Any]:
    data = load(path)
    if data is None:
        raise FileNotFoundError(f"{path}: no such V-M-C model file")
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: expected a V-M-C {kind} file, found {found!r}")
    return data


def save_vae(path: str | Path, vae: ConvVAE, **meta) -> None:
    save_atomic({"kind": "vae", "obs_shape": list(vae.obs_shape), "latent": vae.latent, "depth": vae.depth,
                 "offset": vae.offset, "state_dict": vae.state_dict(), **meta}, path)


def load_vae(path: str | Path) -> ConvVAE:
    data = _read(path, "vae")
    vae = ConvVAE(tuple(data["obs_shape"]), data["latent"], data["depth"], data.get("offset", False))
    state = dict(data["state_dict"])
    for key, value in vae.state_dict().items():  # files from before the output offset: none, marked unset
        if key.startswith("out_offset"):
            state.setdefault(key, torch.zeros_like(value))
    vae.load_state_dict(state)
    vae.meta = {k: v for k, v in data.items() if k != "state_dict"}
    return vae.eval()


def save_mdnrnn(path: str | Path, mdn: MDNRNN, **meta) -> None:
    save_atomic({"kind": "mdnrnn", "latent": mdn.latent, "n_actions": mdn.n_actions, "hidden": mdn.hidden,
                 "gaussians": mdn.gaussians, "heads": mdn.heads, "state_dict": mdn.state_dict(), **meta},
                path)


def load_mdnrnn(path: str | Path, vae: ConvVAE | None = None) -> MDNRNN:
    data = _read(path, "mdnrnn")
    if vae is not None and vae.latent != data["latent"]:
        raise ValueError(f"{path}: M reads latents of size {data['latent']}, but V has latent {vae.latent}")
    mdn = MDNRNN(data["latent"], data["n_actions"], data["hidden"], data["gaussians"], data["heads"])
    mdn.load_state_dict(data["state_dict"])
    mdn.meta = {k: v for k, v in data.items() if k != "state_dict"}
    return mdn.eval()


def save_controller(path: str | Path, params, latent: int, hidden: int, n_actions: int, **meta) -> None:
    save_atomic({"kind": "controller", "params": torch.as_tensor(params, dtype=torch.float32),
                 "latent": latent, "hidden": hidden, "n_actions": n_actions, **meta}, path)


def load_controller(path: str | Path, mdn: MDNRNN | None = None) -> dict[str, Any]:
    """The controller file as a dict (``params`` a tensor); checked against ``mdn`` when given."""
    data = _read(path, "controller")
    if mdn is not None and (data["latent"], data["hidden"], data["n_actions"]) != (
            mdn.latent, mdn.hidden, mdn.n_actions):
        raise ValueError(f"{path}: controller for latent {data['latent']}, hidden {data['hidden']}, "
                         f"{data['n_actions']} actions; M has {mdn.latent}, {mdn.hidden}, {mdn.n_actions}")
    return data
