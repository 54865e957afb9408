"""DreamerV2 losses as pure functions of tensors (equation numbers of seed 003 §2.3).

Time is the leading axis of imagined sequences: (H+1, N) for H imagined steps from N start states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Params = Sequence[torch.Tensor]


def lambda_return(
    reward: torch.Tensor, value: torch.Tensor, pcont: torch.Tensor, bootstrap: torch.Tensor, lambda_: float,
) -> torch.Tensor:
    """lambda-returns along axis 0 (eq. 4, official ``common.lambda_return``).

    V_t = r_t + pcont_t ((1 - lambda) v_{t+1} + lambda V_{t+1}), with V_T = bootstrap after the last step;
    ``value`` holds v_t for t < T and ``bootstrap`` v_T. lambda = 1 gives the discounted Monte-Carlo
    return, lambda = 0 the one-step TD target.
    """
    next_values = torch.cat([value[1:], bootstrap[None]], 0)
    inputs = reward + pcont * next_values * (1.0 - lambda_)
    out = []
    last = bootstrap
    for t in range(reward.shape[0] - 1, -1, -1):
        last = inputs[t] + pcont[t] * lambda_ * last
        out.append(last)
    return torch.stack(out[::-1], 0)


def kl_balance(
    kl: Callable[[Params, Params], torch.Tensor], post: Params, prior: Params, *,
    balance: bool = True, mix: float = 0.8, free: float = 0.0, free_avg: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KL loss with balancing (DreamerV2 eq. 5 / Algorithm 2): returns (loss, KL[post || prior] per step).

    loss = mix KL[sg(post) || prior] + (1 - mix) KL[post || sg(prior)]: the prior receives ``mix`` of the
    gradient, the posterior ``1 - mix``; the forward value equals the plain KL. ``balance=False`` gives
    the plain KL with gradients to both. Free nats clip each term from below (of the batch mean when
    ``free_avg``, else per step).
    """
    sg = lambda params: [p.detach() for p in params]  # noqa: E731
    value = kl(post, prior)

    def floor(x: torch.Tensor) -> torch.Tensor:
        if free_avg:
            return torch.clamp(x.mean(), min=free) if free > 0 else x.mean()
        return torch.clamp(x, min=free).mean() if free > 0 else x.mean()

    if not balance:
        return floor(value), value
    loss_prior = floor(kl(sg(post), prior))
    loss_post = floor(kl(post, sg(prior)))
    return mix * loss_prior + (1.0 - mix) * loss_post, value


def imagination_weight(discount: torch.Tensor) -> torch.Tensor:
    """Cumulative product of predicted discounts, the weight of each imagined step (no gradient).

    weight_0 = 1, weight_t = prod_{i<t} discount_i (official ``seq['weight']``).
    """
    ones = torch.ones_like(discount[:1])
    return torch.cumprod(torch.cat([ones, discount[:-1]], 0), 0).detach()


def critic_loss(value_pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Eq. 5: weighted squared error of v(z_t) against sg(V^lambda_t), t = 0..H-1 (unit Gaussian NLL)."""
    return (weight * 0.5 * (value_pred - target.detach()) ** 2).mean()


def actor_loss(
    log_prob: torch.Tensor, entropy: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor,
    weight: torch.Tensor, *, grad: str, mix: float, ent_scale: float,
) -> torch.Tensor:
    """Eq. 6 with the official gradient options, over imagined steps t = 0..H-2.

    reinforce: log pi(a_t | z_t) sg(V^lambda_t - v_target(z_t)); dynamics: V^lambda_t itself (its gradient
    flows through the straight-through actions and the learned dynamics); both: ``mix`` dynamics +
    ``(1 - mix)`` reinforce. Plus ``ent_scale`` H[pi(. | z_t)]; weighted by sg(weight) and negated.
    ``target`` is V^lambda for t = 1..H-1 aligned to the actions a_t that led there (official
    ``target[1:]``).
    """
    reinforce = log_prob * (target - baseline).detach()
    if grad == "reinforce":
        objective = reinforce
    elif grad == "dynamics":
        objective = target
    elif grad == "both":
        objective = mix * target + (1.0 - mix) * reinforce
    else:
        raise ValueError(f"actor_grad {grad!r}")
    objective = objective + ent_scale * entropy
    return -(weight.detach() * objective).mean()
