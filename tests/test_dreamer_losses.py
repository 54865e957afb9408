"""DreamerV2 losses and distributions as pure functions: lambda-returns, KL balancing, straight-through."""

import math

import pytest
import torch

from wmtransfer.dreamer import distributions as D
from wmtransfer.dreamer.losses import actor_loss, critic_loss, imagination_weight, kl_balance, lambda_return


def test_lambda_return_matches_hand_computation():
    # Three steps, one trajectory; lambda = 0.5.
    r = torch.tensor([[1.0], [2.0], [3.0]])
    v = torch.tensor([[10.0], [20.0], [30.0]])
    pcont = torch.tensor([[0.9], [0.8], [0.5]])
    boot = torch.tensor([40.0])
    lam = 0.5
    # By hand, backwards: V_3 = 40
    v2 = 3 + 0.5 * ((1 - lam) * 40 + lam * 40)  # = 23
    v1 = 2 + 0.8 * ((1 - lam) * 30 + lam * v2)  # = 2 + 0.8 * (15 + 11.5) = 23.2
    v0 = 1 + 0.9 * ((1 - lam) * 20 + lam * v1)  # = 1 + 0.9 * (10 + 11.6) = 20.44
    out = lambda_return(r, v, pcont, boot, lam)
    assert out.shape == (3, 1)
    torch.testing.assert_close(out[:, 0], torch.tensor([v0, v1, v2]))


def test_lambda_return_limits():
    torch.manual_seed(0)
    r, v, pcont = torch.randn(5, 4), torch.randn(5, 4), torch.rand(5, 4)
    boot = torch.randn(4)
    # lambda = 0: one-step TD targets r_t + pcont_t v_{t+1}
    next_v = torch.cat([v[1:], boot[None]])
    torch.testing.assert_close(lambda_return(r, v, pcont, boot, 0.0), r + pcont * next_v)
    # lambda = 1: discounted Monte-Carlo return bootstrapped at the end
    mc = boot.clone()
    expect = []
    for t in range(4, -1, -1):
        mc = r[t] + pcont[t] * mc
        expect.append(mc)
    torch.testing.assert_close(lambda_return(r, v, pcont, boot, 1.0), torch.stack(expect[::-1]))


def _kl(p, q):
    return D.categorical_kl(p[0], q[0])


def test_kl_balancing_splits_gradient_80_20():
    torch.manual_seed(0)
    post_logits = torch.randn(6, 4, 5, requires_grad=True)
    prior_logits = torch.randn(6, 4, 5, requires_grad=True)

    def params(lg):
        return [torch.log_softmax(lg, -1)]

    loss, value = kl_balance(_kl, params(post_logits), params(prior_logits), balance=True, mix=0.8)
    g_post, g_prior = torch.autograd.grad(loss, [post_logits, prior_logits])
    plain = _kl(params(post_logits), params(prior_logits)).mean()
    p_post, p_prior = torch.autograd.grad(plain, [post_logits, prior_logits])
    torch.testing.assert_close(loss, plain)  # forward value is the plain KL
    torch.testing.assert_close(value.mean(), plain)
    torch.testing.assert_close(g_prior, 0.8 * p_prior)  # the prior learns faster
    torch.testing.assert_close(g_post, 0.2 * p_post)
    # switched off (ablation): both get the full gradient
    loss_off, _ = kl_balance(_kl, params(post_logits), params(prior_logits), balance=False)
    o_post, o_prior = torch.autograd.grad(loss_off, [post_logits, prior_logits])
    torch.testing.assert_close(o_post, p_post)
    torch.testing.assert_close(o_prior, p_prior)


def test_free_nats_clip_the_kl():
    post = [torch.log_softmax(torch.randn(3, 2, 4), -1).requires_grad_()]
    prior = [torch.log_softmax(torch.randn(3, 2, 4), -1).requires_grad_()]
    loss, value = kl_balance(_kl, post, prior, balance=True, mix=0.8, free=100.0)
    assert value.mean().item() < 100.0
    assert loss.item() == pytest.approx(100.0)
    grads = torch.autograd.grad(loss, [post[0], prior[0]], allow_unused=True)
    assert all(g is None or torch.all(g == 0) for g in grads)


def test_categorical_kl_and_entropy_match_torch():
    torch.manual_seed(1)
    lp = torch.log_softmax(torch.randn(7, 3, 5), -1)
    lq = torch.log_softmax(torch.randn(7, 3, 5), -1)
    p = torch.distributions.Categorical(logits=lp)
    q = torch.distributions.Categorical(logits=lq)
    torch.testing.assert_close(D.categorical_kl(lp, lq), torch.distributions.kl_divergence(p, q).sum(-1))
    torch.testing.assert_close(D.categorical_entropy(lp), p.entropy().sum(-1))


def test_gaussian_kl_matches_torch():
    torch.manual_seed(2)
    m1, m2 = torch.randn(4, 6), torch.randn(4, 6)
    s1, s2 = torch.rand(4, 6) + 0.1, torch.rand(4, 6) + 0.1
    normal = torch.distributions.Normal
    ref = torch.distributions.kl_divergence(normal(m1, s1), normal(m2, s2))
    torch.testing.assert_close(D.gaussian_kl(m1, s1, m2, s2), ref.sum(-1))


def test_straight_through_sample_is_one_hot_with_probability_gradient():
    torch.manual_seed(3)
    logits = torch.randn(50, 4, 6, requires_grad=True)
    probs = D.mixed_probs(logits, 0.01)
    sample = D.straight_through(D.onehot_sample(probs), probs)
    # forward: exactly one-hot
    assert torch.all((sample == 0) | (sample == 1))
    torch.testing.assert_close(sample.sum(-1), torch.ones(50, 4))
    # backward: the gradient of the probabilities
    w = torch.randn(50, 4, 6)
    (g_st,) = torch.autograd.grad((w * sample).sum(), logits)
    (g_p,) = torch.autograd.grad((w * D.mixed_probs(logits, 0.01)).sum(), logits)
    torch.testing.assert_close(g_st, g_p)


def test_onehot_sample_follows_the_probabilities_and_unimix():
    torch.manual_seed(4)
    logits = torch.tensor([[4.0, 0.0, -50.0]]).expand(20000, 3)
    probs = D.mixed_probs(logits, 0.01)
    assert probs[0, 2].item() == pytest.approx(0.01 / 3, rel=1e-3)  # 1% uniform mix keeps every class
    freq = D.onehot_sample(probs).mean(0)
    torch.testing.assert_close(freq, probs[0], atol=0.01, rtol=0)
    torch.testing.assert_close(D.mixed_log_probs(logits, 0.01), probs.log())


def test_inverse_cdf_sampling_never_draws_an_impossible_class():
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.5, 0.0]])
    u = torch.tensor([0.0, 1e-9, 0.25, 0.5, 0.5000001, 0.999999, 1.0 - 2**-24])
    index = D.sample_index(probs.expand(len(u), 5), u)
    assert index.tolist() == [1, 1, 1, 1, 3, 3, 3]
    torch.manual_seed(5)
    draws = D.sample_index(torch.tensor([0.2, 0.0, 0.3, 0.5]).expand(40000, 4))
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    torch.testing.assert_close(freq, torch.tensor([0.2, 0.0, 0.3, 0.5]), atol=0.01, rtol=0)


def test_likelihoods():
    x = torch.tensor([0.0, 1.0])
    mu = torch.tensor([0.5, -1.0])
    ref = -torch.distributions.Normal(mu, 1.0).log_prob(x)
    torch.testing.assert_close(D.mse_nll(mu, x), ref)
    logits = torch.tensor([0.3, -2.0])
    ref = -torch.distributions.Bernoulli(logits=logits).log_prob(x)
    torch.testing.assert_close(D.bernoulli_nll(logits, x), ref)


def test_imagination_weight_and_critic_actor_losses():
    disc = torch.tensor([[1.0], [0.5], [0.5], [0.0]])
    torch.testing.assert_close(imagination_weight(disc)[:, 0], torch.tensor([1.0, 1.0, 0.5, 0.25]))
    pred = torch.tensor([[1.0], [2.0]], requires_grad=True)
    target = torch.tensor([[0.0], [0.0]], requires_grad=True)
    loss = critic_loss(pred, target, torch.tensor([[1.0], [0.5]]))
    assert loss.item() == pytest.approx((0.5 * 1 + 0.5 * 0.5 * 4) / 2)
    loss.backward()
    assert target.grad is None  # the target is a stop-gradient
    # REINFORCE: gradient = -weight * advantage * d log pi; advantage is a stop-gradient
    logp = torch.tensor([math.log(0.5)], requires_grad=True)
    ret = torch.tensor([3.0], requires_grad=True)
    loss = actor_loss(logp, torch.tensor([0.0]), ret, torch.tensor([1.0]), torch.tensor([2.0]),
                      grad="reinforce", mix=0.0, ent_scale=0.0)
    loss.backward()
    assert logp.grad.item() == pytest.approx(-2.0 * 2.0)
    assert ret.grad is None or ret.grad.item() == 0
    ret2 = torch.tensor([3.0], requires_grad=True)
    loss = actor_loss(logp.detach(), torch.tensor([0.0]), ret2, torch.tensor([1.0]), torch.tensor([1.0]),
                      grad="both", mix=0.25, ent_scale=0.0)
    loss.backward()
    assert ret2.grad.item() == pytest.approx(-0.25)  # straight-through/dynamics share of the mix
