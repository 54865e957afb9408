"""The ``vmc`` section: every hyperparameter of Ha & Schmidhuber's World Models as seed 004 ran them.

Defaults are seed 004's leaper values where it gives one (latent 512, LSTM 1024, 16 Gaussians, CMA-ES
population 30, fitness = mean return of 30 rollouts, 39 generations, 100 test episodes) and Ha &
Schmidhuber's (2018) otherwise (conv depths 32-256, Adam 1e-4 for V, sigma0 0.1). The schema
(``schemas/config.schema.yaml``, section ``vmc``) repeats them; ``tests/test_config.py`` checks both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError

TRAIN_IN = ("real", "dream")
VAE_OFFSETS = ("none", "data")


@dataclass
class VMCConfig:
    """V (ConvVAE), M (MDN-RNN) and C (linear controller, CMA-ES) on one game's dataset."""

    #: Train and evaluate V-M-C on every target game of the study, for every study seed.
    enabled: bool = False
    #: Frames read from the game's dataset for V and M (episodes in manifest order; 0: all of them).
    max_frames: int = 100_000
    #: Fraction of the episodes held out to measure V's reconstruction (at least one episode).
    holdout_frac: float = 0.05

    # --- V: ConvVAE ---
    #: Size of the latent z (seed 004: 512 reconstructed leaper best among 32-512).
    latent: int = 512
    #: Channels of the first convolution; the four convolutions have depth x 1, 2, 4, 8 (Ha: 32).
    vae_depth: int = 32
    #: Fixed per-pixel offset added to V's decoder output before the sigmoid: "none" (Ha & Schmidhuber)
    #: or "data", the log-odds of the first training batch's mean frame (as DreamerV2's
    #: ``decoder_offset: data``). Without it V decodes every frame to the mean frame (docs/vmc.md).
    vae_offset: str = "data"
    #: Frames per V update.
    vae_batch: int = 64
    #: Adam learning rate of V (Ha: 1e-4).
    vae_lr: float = 1e-4
    #: Updates of V in total.
    vae_updates: int = 50_000
    #: Reconstruction-only phase (beta 0) ends when the held-out mean squared error per pixel falls to
    #: this value ("once a meaningful reconstruction was obtained", seed 004)...
    vae_recon_target: float = 0.002
    #: ...or after this many updates at the latest.
    vae_recon_updates: int = 20_000
    #: Updates over which beta then rises linearly from 0 to ``vae_beta`` (seed 004: "incrementally").
    vae_beta_ramp: int = 10_000
    #: Final weight of the KL term (seed 004: 1).
    vae_beta: float = 1.0
    #: Stop V once beta rises and the held-out error exceeds (1 + this) x its value when the ramp began
    #: (seed 004 stopped "when the reconstruction started to degrade"); 0: never stop early.
    vae_stop_degrade: float = 0.0

    # --- M: MDN-RNN ---
    #: LSTM hidden size (seed 004: 1024).
    mdn_hidden: int = 1024
    #: Gaussians of the mixture over the next z (seed 004: 16).
    mdn_gaussians: int = 16
    #: Also predict the reward (MSE) and the episode's end (Bernoulli) from the LSTM state, so C can be
    #: trained inside the dream.
    mdn_heads: bool = True
    #: Sequences per M update.
    mdn_batch: int = 32
    #: Steps per training sequence (windows of an episode; shorter episodes are padded and masked).
    mdn_seq_length: int = 100
    #: Adam learning rate of M.
    mdn_lr: float = 1e-3
    #: Gradient norm clip of M.
    mdn_grad_clip: float = 1.0
    #: Updates of M in total.
    mdn_updates: int = 10_000

    # --- C: linear controller, CMA-ES ---
    #: CMA-ES population size (seed 004: 30).
    population: int = 30
    #: Rollouts per candidate; its fitness is their mean return (seed 004: 30).
    rollouts: int = 30
    #: CMA-ES generations (seed 004: 39).
    generations: int = 39
    #: Initial CMA-ES step size (Ha: 0.1).
    cma_sigma: float = 0.1
    #: Separable CMA-ES (diagonal covariance): with latent 512 and hidden 1024, C has 23k parameters and
    #: a full covariance matrix would need 4 GB and an O(n^3) eigendecomposition per update.
    cma_diagonal: bool = True
    #: Where candidates are scored: the real game (seed 004) or M's dream (Ha & Schmidhuber's Doom).
    train_in: str = "real"
    #: Sampling temperature of M in the dream (Ha's tau).
    dream_temperature: float = 1.0
    #: Rollouts (real or dreamed) are cut after this many steps.
    rollout_max_steps: int = 1000
    #: Test episodes of the final controller in the real game (seed 004: 100).
    eval_episodes: int = 100

    #: Updates of V and M between rows of their metrics (C logs every generation).
    log_every: int = 100
    #: Updates of V and M between resumable checkpoints (C checkpoints after every generation).
    checkpoint_every: int = 1000

    def validate(self) -> None:
        positive = ("max_frames", "latent", "vae_depth", "vae_batch", "vae_updates", "mdn_hidden",
                    "mdn_gaussians", "mdn_batch", "mdn_seq_length", "mdn_updates", "population", "rollouts",
                    "generations", "rollout_max_steps", "eval_episodes", "log_every", "checkpoint_every")
        for key in positive:
            if getattr(self, key) <= 0 and not (key == "max_frames" and self.max_frames == 0):
                raise ConfigError(f"vmc.{key} must be positive, got {getattr(self, key)}")
        for key in ("vae_recon_updates", "vae_beta_ramp"):
            if getattr(self, key) < 0:
                raise ConfigError(f"vmc.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("vae_lr", "mdn_lr", "cma_sigma", "dream_temperature", "mdn_grad_clip"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"vmc.{key} must be positive, got {getattr(self, key)}")
        for key in ("vae_beta", "vae_recon_target", "vae_stop_degrade"):
            if getattr(self, key) < 0:
                raise ConfigError(f"vmc.{key} must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.holdout_frac < 1.0:
            raise ConfigError(f"vmc.holdout_frac must lie in [0, 1), got {self.holdout_frac}")
        if self.vae_offset not in VAE_OFFSETS:
            raise ConfigError(f"vmc.vae_offset must be one of {list(VAE_OFFSETS)}, got {self.vae_offset!r}")
        if self.train_in not in TRAIN_IN:
            raise ConfigError(f"vmc.train_in must be one of {list(TRAIN_IN)}, got {self.train_in!r}")
        if self.population < 2:
            raise ConfigError(f"vmc.population must be >= 2 for CMA-ES, got {self.population}")
        if self.train_in == "dream" and not self.mdn_heads:
            raise ConfigError("vmc.train_in 'dream' needs vmc.mdn_heads (the dream's reward and end)")
