"""Latent-space analysis of a world model (seed 001 section 3.3), numpy/scipy only.

Inputs are plain arrays: ``features`` (n_frames, n_features), e.g. the RSSM's concatenated deterministic
and stochastic state on a set of real sequences, and a target variable (n_frames,) or (n_frames, q), e.g.
the player's x position. Three tools:

* :func:`kmeans`: Lloyd's algorithm with k-means++ seeding, best of ``n_init`` restarts;
* :func:`cca`: canonical correlation analysis; with whitening ``Wx = Cxx^{-1/2}``, ``Wy = Cyy^{-1/2}``
  (ridge ``reg`` on the diagonals), the canonical correlations are the singular values of
  ``Wx Cxy Wy`` and the weights ``Wx U``, ``Wy V``;
* :func:`latent_vs_target`: CCA and per-feature |Pearson r| of the features against the target, next to
  the same numbers for random Gaussian features of the same shape (the random-feature baseline: seed 001
  found one feature with six times the best random correlation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist


@dataclass
class KMeansResult:
    """Cluster index per row, centres (k, d) and the within-cluster sum of squared distances."""

    labels: np.ndarray
    centers: np.ndarray
    inertia: float


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centers = [x[rng.integers(len(x))]]
    d2 = np.sum((x - centers[0]) ** 2, axis=1)
    for _ in range(1, k):
        total = d2.sum()
        idx = rng.integers(len(x)) if total <= 0 else rng.choice(len(x), p=d2 / total)
        centers.append(x[idx])
        d2 = np.minimum(d2, np.sum((x - x[idx]) ** 2, axis=1))
    return np.array(centers)


def kmeans(x: np.ndarray, k: int, n_init: int = 4, max_iter: int = 100, tol: float = 1e-6,
           seed: int = 0) -> KMeansResult:
    """k-means of the rows of ``x`` (n, d): the best (lowest inertia) of ``n_init`` seeded runs."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or len(x) < k:
        raise ValueError(f"kmeans needs a 2-D array with at least k={k} rows, got shape {x.shape}")
    rng = np.random.default_rng(seed)
    best: KMeansResult | None = None
    for _ in range(n_init):
        centers = _kmeans_pp(x, k, rng)
        for _ in range(max_iter):
            labels = np.argmin(cdist(x, centers, "sqeuclidean"), axis=1)
            new = np.array([x[labels == j].mean(0) if np.any(labels == j) else centers[j] for j in range(k)])
            shift = float(np.max(np.abs(new - centers)))
            centers = new
            if shift <= tol:
                break
        d2 = cdist(x, centers, "sqeuclidean")
        labels = np.argmin(d2, axis=1)
        inertia = float(d2[np.arange(len(x)), labels].sum())
        if best is None or inertia < best.inertia:
            best = KMeansResult(labels, centers, inertia)
    return best


@dataclass
class CCAResult:
    """Canonical correlations (descending) and the weights mapping centred x / y onto the variates."""

    correlations: np.ndarray
    x_weights: np.ndarray
    y_weights: np.ndarray


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(c)
    return (vecs / np.sqrt(np.maximum(vals, 1e-12))) @ vecs.T


def cca(x: np.ndarray, y: np.ndarray, reg: float = 1e-6) -> CCAResult:
    """Canonical correlation analysis of ``x`` (n, p) and ``y`` (n, q) (or (n,)); ridge ``reg`` * trace/p."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    y = y[:, None] if y.ndim == 1 else y
    if len(x) != len(y):
        raise ValueError(f"cca: x has {len(x)} rows, y has {len(y)}")
    x = x - x.mean(0)
    y = y - y.mean(0)
    n = len(x) - 1
    cxx, cyy, cxy = x.T @ x / n, y.T @ y / n, x.T @ y / n
    cxx += reg * (np.trace(cxx) / len(cxx) + 1e-12) * np.eye(len(cxx))
    cyy += reg * (np.trace(cyy) / len(cyy) + 1e-12) * np.eye(len(cyy))
    wx, wy = _inv_sqrt(cxx), _inv_sqrt(cyy)
    u, s, vt = np.linalg.svd(wx @ cxy @ wy, full_matrices=False)
    return CCAResult(np.clip(s, 0.0, 1.0), wx @ u, wy @ vt.T)


def feature_correlations(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """|Pearson correlation| of each column of ``x`` (n, p) with ``target`` (n,); 0 for constant columns."""
    x = np.asarray(x, dtype=float)
    t = np.asarray(target, dtype=float).ravel()
    xc, tc = x - x.mean(0), t - t.mean()
    denom = np.sqrt((xc**2).sum(0) * (tc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, np.abs(xc.T @ tc) / np.where(denom > 0, denom, 1.0), 0.0)


def latent_vs_target(features: np.ndarray, target: np.ndarray, n_random: int = 5, reg: float = 1e-6,
                     seed: int = 0) -> dict[str, float]:
    """CCA and best single-feature correlation of ``features`` with ``target``, against random features.

    The baseline draws ``n_random`` Gaussian feature matrices of the same shape (seeded) and reports the
    mean of their first canonical correlation and of their best single-feature |r|; ``*_ratio`` is the
    real value divided by the baseline.
    """
    features = np.asarray(features, dtype=float)
    rng = np.random.default_rng(seed)
    real_cca = float(cca(features, target, reg).correlations[0])
    per_feature = feature_correlations(features, target) if np.ndim(target) == 1 else None
    rand_cca, rand_top = [], []
    for _ in range(n_random):
        noise = rng.standard_normal(features.shape)
        rand_cca.append(float(cca(noise, target, reg).correlations[0]))
        if per_feature is not None:
            rand_top.append(float(feature_correlations(noise, target).max()))
    out = {"cca": real_cca, "random_cca": float(np.mean(rand_cca)),
           "cca_ratio": real_cca / max(float(np.mean(rand_cca)), 1e-12)}
    if per_feature is not None:
        top = int(np.argmax(per_feature))
        out.update({"top_feature": float(top), "top_feature_corr": float(per_feature[top]),
                    "random_top_corr": float(np.mean(rand_top)),
                    "top_ratio": float(per_feature[top]) / max(float(np.mean(rand_top)), 1e-12)})
    return out


def _ridge_map(x: np.ndarray, reg: float) -> np.ndarray:
    """``(X^T X + reg * trace/p * I)^-1 X^T`` of centred ``x`` (p, n): y's least-squares weights are this
    matrix times centred y, so refitting for a permuted y is one matrix-vector product."""
    p = x.shape[1]
    gram = x.T @ x
    gram += reg * (np.trace(gram) / p + 1e-12) * np.eye(p)
    return np.linalg.solve(gram, x.T)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def heldout_correlation(x: np.ndarray, y: np.ndarray, train: np.ndarray, reg: float = 1e-2) -> float:
    """Correlation, on the frames outside ``train``, between ``y`` and its ridge regression on the
    features fitted on the ``train`` frames: the first canonical correlation of a one-dimensional target,
    measured out of sample (in sample it grows with the number of features even for noise)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    mu = x[train].mean(0)
    w = _ridge_map(x[train] - mu, reg) @ (y[train] - y[train].mean())
    return _corr((x[~train] - mu) @ w, y[~train])


def circular_shifts(y: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``y`` rolled by a random offset within each group (episode): the null of no relation between
    features and target that keeps each episode's own autocorrelation (a frame-wise shuffle would not,
    and its null would be far too narrow)."""
    out = np.empty_like(y)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        out[idx] = np.roll(y[idx], int(rng.integers(len(idx))) if len(idx) > 1 else 0)
    return out


def permutation_test(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_perm: int = 200,
                     reg: float = 1e-2, seed: int = 0) -> dict[str, float]:
    """Held-out correlation of ``y`` with the features (train: episodes with an even group index, test: the
    others) and its permutation p-value against ``n_perm`` per-episode circular shifts of ``y``:
    ``p = (1 + #null >= observed) / (1 + n_perm)`` (seed 001 worried that one strong feature "might happen
    by accident"; this says how often it would)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    groups = np.asarray(groups)
    _, codes = np.unique(groups, return_inverse=True)
    train = codes % 2 == 0
    if train.all() or not train.any():
        raise ValueError("permutation_test needs at least two episodes (one to fit, one to test)")
    mu = x[train].mean(0)
    ridge = _ridge_map(x[train] - mu, reg)
    test_x = x[~train] - mu

    def score(target: np.ndarray) -> float:
        w = ridge @ (target[train] - target[train].mean())
        return _corr(test_x @ w, target[~train])

    observed = score(y)
    rng = np.random.default_rng(seed)
    null = np.array([score(circular_shifts(y, codes, rng)) for _ in range(n_perm)])
    return {"heldout_corr": observed, "null_mean": float(null.mean()),
            "null_95": float(np.quantile(null, 0.95)), "p_value": float((1 + np.sum(null >= observed)) /
                                                                        (1 + n_perm)),
            "n_perm": int(n_perm), "train_frames": int(train.sum()), "test_frames": int((~train).sum())}
