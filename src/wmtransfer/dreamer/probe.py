"""Collapse probe: does the posterior latent still read the frame, inside sequences?

A world model can drive its image loss down while its posterior ignores the observation (posterior
collapse: every frame maps to the code the prior predicts anyway, and the decoder draws the mean image).
The loss does not show it; these three measures do. All are taken on a training batch, at steps ``t >=
t_min`` that are not episode starts (so the recurrent state h_t carries the sequence's history):

``wm_probe_info``
    Nats the posterior's choices vary across the batch at a step: per latent, entropy of the batch's mean
    posterior minus the mean posterior entropy, summed over latents, averaged over steps (categorical
    latents; an estimate of I(z_t; x_t, history) bounded by log B per latent). Collapsed: ~0.
``wm_probe_swap``
    Fraction of latent choices (posterior modes) that change when the frame's embedding is replaced by
    another sequence's at the same step, h_t kept. Collapsed: 0. Gaussian latents: fraction of
    dimensions whose posterior mean moves by more than one posterior standard deviation.
``wm_probe_gap``
    Image NLL per frame when decoding the prior's mode [z^_t, h_t], minus the NLL when decoding the
    posterior's mode [z_t, h_t]: what the frame adds to the reconstruction beyond the history. Collapsed:
    ~0 (both decode the same image).

:func:`collapsed` applies the thresholds; the training loops print a warning to the job log when it holds.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import torch

from . import distributions as D
from .rssm import Latent

#: Below both of these the latent is reported as no longer reading the frame.
SWAP_MIN = 0.02
GAP_MIN = 0.5
#: No warning before this many updates: a fresh model's posterior is near uniform and reads nothing yet
#: (measured on MinAtar: the frame starts to move the latent after 100-300 updates).
WARMUP = 500
KEYS = ("wm_probe_info", "wm_probe_swap", "wm_probe_gap")


def _mode(rssm, stats: torch.Tensor) -> torch.Tensor:
    return rssm.sample(stats, sample=False)


@torch.no_grad()
def latent_probe(wm, data: Mapping[str, torch.Tensor], post: Latent, t_min: int = 1) -> dict[str, float]:
    """The three measures above for preprocessed sequences ``data`` and their posterior states ``post``
    ((B, T, ...), as returned by ``WorldModel.loss``). Empty when no step qualifies or B < 2."""
    rssm = wm.rssm
    b, t = post.deter.shape[:2]
    mask = data["is_first"][:, t_min:] < 0.5  # (B, T') steps that carry history
    if b < 2 or t <= t_min or not bool(mask.any()):
        return {}
    deter = post.deter[:, t_min:]
    embed = wm.encoder(data["image"][:, t_min:])
    swapped = embed.roll(1, dims=0)  # another sequence's frame at the same step
    stats = post.stats[:, t_min:]
    stats_swap = rssm._shape_stats(rssm.obs_dist(rssm.act(rssm.obs_out(torch.cat([deter, swapped], -1)))))
    m = mask.to(torch.float32)
    n = m.sum()
    out: dict[str, float] = {}
    if rssm.categorical:
        probs = D.mixed_probs(stats, rssm.cfg.unimix)  # (B, T', S, K)
        changed = (probs.argmax(-1) != stats_swap.argmax(-1)).to(torch.float32).mean(-1)
        w = m[..., None, None]
        mean_probs = (probs * w).sum(0) / w.sum(0).clamp_min(1.0)  # (T', S, K)
        h_mean = -(mean_probs * mean_probs.clamp_min(1e-12).log()).sum(-1).sum(-1)  # (T',)
        h_each = -(probs * probs.clamp_min(1e-12).log()).sum(-1).sum(-1)  # (B, T')
        h_cond = (h_each * m).sum(0) / m.sum(0).clamp_min(1.0)
        valid = m.sum(0) >= 2
        if bool(valid.any()):
            out["wm_probe_info"] = float((h_mean - h_cond)[valid].mean())
    else:
        mean, std = D.gaussian_stats(stats, rssm.cfg.min_std)
        mean_s, _ = D.gaussian_stats(stats_swap, rssm.cfg.min_std)
        changed = ((mean - mean_s).abs() > std).to(torch.float32).mean(-1)
    out["wm_probe_swap"] = float((changed * m).sum() / n)
    prior_stats = rssm.prior_stats(deter)
    feats = torch.cat([
        torch.cat([_mode(rssm, stats), deter], -1),
        torch.cat([_mode(rssm, prior_stats), deter], -1),
    ], 0)
    sub = {k: v[:, t_min:] for k, v in data.items() if k in ("obs", "image")}
    sub = {k: torch.cat([v, v], 0) for k, v in sub.items()}
    nll = wm.image_nll(wm.decoder(feats), sub)
    nll_post, nll_prior = nll[:b], nll[b:]
    out["wm_probe_gap"] = float(((nll_prior - nll_post) * m).sum() / n)
    return out


def collapsed(metrics: Mapping[str, float]) -> bool:
    """True when a probe ran and says the posterior no longer reads the frame (swap and gap both low)."""
    if "wm_probe_swap" not in metrics or "wm_probe_gap" not in metrics:
        return False
    return metrics["wm_probe_swap"] < SWAP_MIN and metrics["wm_probe_gap"] < GAP_MIN


def warn_if_collapsed(metrics: Mapping[str, float], where: str, update: int, stream=None) -> bool:
    """Print a loud warning to the job log (stderr) when :func:`collapsed` holds after :data:`WARMUP`
    updates; returns whether it did."""
    if update < WARMUP or not collapsed(metrics):
        return False
    print(f"WARNING: POSTERIOR COLLAPSE at {where}: the latent no longer reads the frame "
          f"(frame-swap changes {metrics['wm_probe_swap']:.1%} of latent choices, < {SWAP_MIN:.0%}; "
          f"posterior decodes the frame {metrics['wm_probe_gap']:.2f} nats better than the prior, "
          f"< {GAP_MIN}). See docs/dreamer.md, 'Posterior collapse'.", file=stream or sys.stderr, flush=True)
    return True
