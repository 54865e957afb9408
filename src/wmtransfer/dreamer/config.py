"""Every DreamerV2 hyperparameter as one typed, documented field, and the presets.

Numbers follow the official DreamerV2 configuration (``danijar/dreamerv2``, ``configs.yaml``, section
``atari``) unless a field says otherwise. The dataclass defaults are the ``minatar`` preset (the study's
main suite); :meth:`DreamerConfig.preset` gives ``atari`` (also used for ``mario``, seed 003 §5.2) and
``rajghugare_minatar``, the MinAtar configuration of RajGhugare19/dreamerv2 that the speed target of
``benchmarks/dreamer.py`` is measured against, ``kenjyoung_minatar`` (kenjyoung/dreamerv2_JAX) and
``minatar_dense``: the ``minatar`` preset with dense encoder and decoder, the official initialisation and
transition heads, the configuration under which the agent learnt Space Invaders and Breakout best here
(docs/dreamer.md).

MinAtar sizes (documented choices, the official code has no MinAtar setting): encoder and decoder per
seed 001 §2.3 (four 3x3 stride-1 convolutions down to 2x2x64, i.e. depth 8 doubling per layer;
transposed kernels 2, 3, 4, 4 with stride 1 back to 10x10xC); a 200-unit GRU and hidden layers like the
MinAtar configuration of RajGhugare19/dreamerv2 (deter 200); 32x32 categorical latents as DreamerV2;
heads, actor and critic 3x200 ELU instead of 4x400 ("smaller on MinAtar"); a Bernoulli image
likelihood because MinAtar channels are binary; discount 0.99 (seed 002, RajGhugare19).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from wmtransfer.config import ConfigError, from_dict, to_dict


@dataclass
class DreamerConfig:
    """DreamerV2 hyperparameters (defaults: the ``minatar`` preset)."""

    #: Name of the preset these values started from (informational; set by :meth:`preset`).
    name: str = "minatar"

    # --- observations and likelihoods -------------------------------------------------------------
    #: Pixel value that maps to 1.0: 255 for Atari/Mario grey images, 1 for MinAtar's binary channels.
    #: The encoder sees ``obs / obs_max - obs_offset``.
    obs_max: float = 1.0
    #: Subtracted from ``obs / obs_max`` (official 0.5; RajGhugare19's MinAtar code feeds 0/1, i.e. 0).
    obs_offset: float = 0.5
    #: Image likelihood: "bernoulli" (logits, target ``obs / obs_max``) or "mse" (unit-variance Gaussian
    #: on the encoder's input ``obs / obs_max - obs_offset``, official). Summed over C, H, W.
    image_dist: str = "bernoulli"
    #: Focal loss on the Bernoulli image (gamma; 0: the plain log-likelihood, official): each cell's NLL is
    #: weighted by (1 - p_t)^gamma, so the cells the model misses (MinAtar's one-cell cannon and bullets,
    #: which a plain-likelihood model ignores on Space Invaders) dominate the image term; ``wm_image``
    #: still reports the plain NLL. Bernoulli only.
    image_focal: float = 0.0
    #: Initial bias of the decoder's output layer (official: 0). With ``decoder_offset: none`` on MinAtar,
    #: -3.5 (the log-odds of the ~3% of cells that are on) prevents the collapse on several games but
    #: not on single-game Breakout; the ``data`` offset below replaces it (docs/dreamer.md).
    decoder_out_bias: float = 0.0
    #: Fixed per-cell offset added to the decoder's output: "none" (official) or "data": the log-odds
    #: (Bernoulli) or mean (MSE) of each cell over the first batch the model trains on, clipped to
    #: p in [0.005, 0.995]. A buffer of the world model, saved with every checkpoint (what a loaded model
    #: does with it: ``decoder_offset_transfer``). On
    #: single-game MinAtar (Breakout: ~30 brick cells on in 99% of frames) one scalar bias leaves the
    #: same large error on every frame, and the posterior collapses within ~150 updates; the per-cell
    #: offset removes that error (docs/dreamer.md, "Posterior collapse").
    decoder_offset: str = "data"
    #: A loaded (pre-trained) world model's ``data`` offset when a run trains it on a game (finetune,
    #: frozen_rssm, finetune_agent): "refit" sets it from the run's first batch, as a fresh model does, so
    #: pre-trained and fresh models meet the target with the same per-cell offset and differ only in
    #: learnt weights; "keep" keeps the pre-training data's offset (the behaviour before this field: on
    #: the unseen Space Invaders it cost the pre-trained model ~90 nats of image loss over its first 20
    #: updates, docs/dreamer.md "Decoder offset in transfer"). frozen_wm always keeps it (its world model
    #: is fixed).
    decoder_offset_transfer: str = "refit"
    #: World-model updates between two collapse probes (``wm_probe_*`` metrics: what the latent says
    #: about the frame inside sequences; wmtransfer.dreamer.probe). 0 turns the probe off.
    probe_every: int = 50
    #: Reward transform before the reward head's MSE loss: "identity" or "tanh" (official Atari).
    reward_transform: str = "identity"
    #: Which step the reward and discount heads predict. "current" (official DreamerV2): the heads at
    #: s_t = (h_t, z_t) predict r_t and gamma_t, the step into x_t. "next" (RajGhugare19/dreamerv2's
    #: MinAtar code): they predict r_{t+1} and gamma_{t+1}, the step out of x_t under the action taken
    #: there (not an input), so a reward the frame announces one step ahead (a MinAtar bullet next to an
    #: alien) is read from that frame instead of from the difference of two frames; pairs whose x_{t+1}
    #: starts a new episode carry no target. In imagination the reward and discount of state k then
    #: belong to the step k -> k+1 (the start state's from its own heads, zero at a terminal start).
    #: "transition" (kenjyoung/dreamerv2_JAX): the heads read [z_t, h_{t+1}], the latent of x_t with the
    #: recurrent state that has read the action a_t, and predict r_{t+1}, gamma_{t+1}: the reward of a
    #: state and an action, so an imagined reward never rests on a latent sampled from the prior.
    head_target: str = "current"

    # --- encoder / decoder (conv) -----------------------------------------------------------------
    #: Channels of the first conv layer; layer i has ``cnn_depth * 2**i`` (official 48 for 64x64).
    cnn_depth: int = 8
    #: Encoder kernel sizes (official 4,4,4,4 with stride 2; MinAtar 3,3,3,3 with stride 1, seed 001).
    encoder_kernels: list[int] = field(default_factory=lambda: [3, 3, 3, 3])
    #: Encoder conv stride (no padding).
    encoder_stride: int = 1
    #: 0: the flattened conv output is the embedding (official); > 0: a linear layer projects it to this
    #: size (RajGhugare19's MinAtar encoder, 200).
    embed_size: int = 0
    #: Decoder transposed-conv kernel sizes (official 5,5,6,6 stride 2; MinAtar 2,3,4,4 stride 1).
    decoder_kernels: list[int] = field(default_factory=lambda: [2, 3, 4, 4])
    #: Decoder transposed-conv stride (no padding).
    decoder_stride: int = 1
    #: The decoder's first feature map has ``decoder_in_mult * cnn_depth`` channels (official 32, at 1x1;
    #: RajGhugare19 4, at 4x4). Its spatial size follows from the kernels and the image size.
    decoder_in_mult: int = 32
    #: Activation of every hidden layer ("elu" official; "relu", "silu" also accepted).
    act: str = "elu"
    #: "conv" (the fields above) or "mlp": the frame flattened into ``mlp_layers`` dense layers of
    #: ``mlp_units`` (the official code's encoder for vector inputs, ``mlp_keys``). See docs/dreamer.md:
    #: on MinAtar's 10x10 frames the conv stack does not learn one-cell objects (Space Invaders' cannon
    #: and bullets) in thousands of updates; the dense one with ``weight_init: glorot`` does.
    encoder: str = "conv"
    #: "conv" or "mlp" (dense layers to one logit or mean per cell), as ``encoder``.
    decoder: str = "conv"
    #: Hidden layers of the "mlp" encoder and decoder (official 4).
    mlp_layers: int = 4
    #: Units of those layers (official 400); the "mlp" encoder's embedding has this size too.
    mlp_units: int = 400
    #: Weight initialisation of every dense and conv layer: "torch" (PyTorch's defaults) or "glorot" (the
    #: official code's Keras defaults: glorot-uniform kernels, zero biases).
    weight_init: str = "torch"

    # --- RSSM -------------------------------------------------------------------------------------
    #: Stochastic latent: "categorical" (DreamerV2) or "gaussian" (DreamerV1-style ablation, seed 002).
    latent: str = "categorical"
    #: Size of the deterministic GRU state h_t (official Atari 600).
    deter: int = 200
    #: Hidden units of the RSSM's input/prior/posterior layers (official Atari 600).
    hidden: int = 200
    #: Number of categorical latents (or Gaussian dimensions for latent="gaussian").
    stoch: int = 32
    #: Classes per categorical latent.
    classes: int = 32
    #: Uniform mix into every latent categorical: probs = (1 - unimix) softmax + unimix / classes
    #: (1% as the issue asks; the official DreamerV2 code uses 0).
    unimix: float = 0.01
    #: Recurrent cell: "layernorm" (official: one dense layer to 3 gates + LayerNorm, update bias -1)
    #: or "torch" (torch.nn.GRUCell, as RajGhugare19).
    gru: str = "layernorm"
    #: Minimum standard deviation of the Gaussian latent (std = 2 sigmoid(x / 2) + min_std, official).
    min_std: float = 0.1

    # --- heads, actor, critic ---------------------------------------------------------------------
    #: Hidden layers / units of the reward and discount heads (official 4 x 400).
    head_layers: int = 3
    head_units: int = 200
    #: Hidden layers / units of the actor (official 4 x 400).
    actor_layers: int = 3
    actor_units: int = 200
    #: Hidden layers / units of the critic (official 4 x 400).
    critic_layers: int = 3
    critic_units: int = 200

    # --- world-model loss (seed 003 eq. 3) --------------------------------------------------------
    #: Scale beta of the KL term (official Atari 0.1).
    kl_scale: float = 0.1
    #: KL balancing on (official) or off (ablation, seed 002: plain KL[q || p] with both gradients).
    kl_balance: bool = True
    #: Share of the KL gradient that trains the prior, alpha (official 0.8).
    kl_balance_mix: float = 0.8
    #: Free nats: the KL terms are clipped from below at this value (official Atari 0: off).
    free_nats: float = 0.0
    #: Apply free nats to the batch-averaged KL (official True) rather than per step.
    free_avg: bool = True
    #: Scale of the image, reward and discount log-likelihood terms (official 1, 1, 5 on Atari).
    image_scale: float = 1.0
    reward_scale: float = 1.0
    discount_scale: float = 5.0
    #: Bonus on the posterior's entropy, scale of -H[q(z_t | h_t, x_t)] in the loss (0: official;
    #: kenjyoung/dreamerv2_JAX uses 0.01 as KL[q || uniform] on MinAtar, "very helpful for stability").
    post_ent_scale: float = 0.0

    # --- optimisers (official: Adam, eps 1e-5, global-norm clip 100, decoupled weight decay 1e-6) -----
    model_lr: float = 2e-4
    actor_lr: float = 4e-5
    critic_lr: float = 1e-4
    adam_eps: float = 1e-5
    #: Global gradient-norm clip per optimiser.
    grad_clip: float = 100.0
    #: Decoupled weight decay: every update multiplies each trained weight by (1 - weight_decay)
    #: (the official rule; implemented as AdamW with weight_decay / lr). Frozen weights are never touched.
    weight_decay: float = 1e-6

    # --- behaviour learning (seed 003 eqs. 4-6) ---------------------------------------------------
    #: Discount gamma of imagined returns (official Atari 0.999; MinAtar 0.99). The discount head is
    #: trained on gamma * (1 - is_terminal), as official.
    discount: float = 0.99
    #: lambda of the lambda-returns (eq. 4).
    discount_lambda: float = 0.95
    #: Imagination horizon H.
    imag_horizon: int = 15
    #: Start imagination from every posterior state except each sequence's last one (RajGhugare19:
    #: B x (T-1) starts); False starts from all B x T (official).
    imag_drop_last_start: bool = False
    #: Actor gradient: "reinforce" (official Atari), "dynamics" (straight-through through the learned
    #: dynamics) or "both" (mix of the two, weight ``actor_grad_mix`` on dynamics).
    actor_grad: str = "reinforce"
    actor_grad_mix: float = 0.0
    #: Entropy regularisation scale eta of the actor (official Atari 1e-3).
    actor_ent: float = 1e-3
    #: Slow target critic: copy ``slow_target_fraction`` of the critic every ``slow_target_update``
    #: behaviour updates (official True, 100, 1.0); False uses the critic itself for targets.
    slow_target: bool = True
    slow_target_update: int = 100
    slow_target_fraction: float = 1.0

    # --- data and schedule (used by the training loops) -------------------------------------------
    #: Sequences per batch and their length (official Atari 16 x 50).
    batch_size: int = 16
    seq_length: int = 50
    #: One training step (world model + behaviour) every ``train_every`` env steps (official Atari 16).
    train_every: int = 16
    #: Updates per training step.
    train_steps: int = 1
    #: Env steps of random-policy data before training (official Atari 200000 frames; MinAtar 5000).
    prefill: int = 5000
    #: Probability of a uniformly random action while training (official 0: the sampled actor explores).
    expl_noise: float = 0.0
    #: Probability of a random action during evaluation (evaluation otherwise takes the actor's mode).
    eval_noise: float = 0.0

    # --- speed on a GPU (no effect on CPU; none changes the mathematics of a CPU run) -------------------
    #: bf16 autocast of the world-model and behaviour forward passes on CUDA (weights, optimiser state and
    #: gradients stay fp32; the losses and the posterior states handed to the behaviour are cast to fp32;
    #: softmax, log-softmax and reductions run in fp32 by autocast's own rules). Off: fp32 everywhere.
    #: Ignored on CPU (docs/speed.md).
    bf16: bool = False
    #: ``torch.compile`` of the RSSM's per-step functions: ``post_step`` (the observe loop's body, 50 per
    #: update), ``img_step`` / ``img_step_index`` (imagination, 15 per update) and ``obs_step`` (acting).
    #: Off by default: compiling costs minutes at start-up and pays only where kernel launches dominate
    #: (a GPU; docs/speed.md).
    compile_rssm: bool = False

    # --- construction -----------------------------------------------------------------------------
    def __post_init__(self) -> None:
        choices = {
            "image_dist": ("bernoulli", "mse"),
            "reward_transform": ("identity", "tanh"),
            "latent": ("categorical", "gaussian"),
            "gru": ("layernorm", "torch"),
            "actor_grad": ("reinforce", "dynamics", "both"),
            "act": ("elu", "relu", "silu", "tanh"),
            "decoder_offset": ("none", "data"),
            "decoder_offset_transfer": ("refit", "keep"),
            "head_target": ("current", "next", "transition"),
            "encoder": ("conv", "mlp"),
            "weight_init": ("torch", "glorot"),
            "decoder": ("conv", "mlp"),
        }
        for key, valid in choices.items():
            if getattr(self, key) not in valid:
                raise ConfigError(f"dreamer.{key}: {getattr(self, key)!r} is not one of {list(valid)}")
        if len(self.encoder_kernels) == 0 or len(self.decoder_kernels) == 0:
            raise ConfigError("dreamer.encoder_kernels / decoder_kernels must not be empty")
        if self.mlp_layers < 1 or self.mlp_units < 1:
            raise ConfigError(f"dreamer.mlp_layers / mlp_units must be >= 1, got {self.mlp_layers} / "
                              f"{self.mlp_units}")
        if self.probe_every < 0:
            raise ConfigError(f"dreamer.probe_every: {self.probe_every} must be >= 0 (0: probe off)")
        if self.image_focal < 0 or (self.image_focal and self.image_dist != "bernoulli"):
            raise ConfigError(f"dreamer.image_focal: {self.image_focal} must be >= 0, and > 0 only with "
                              f"image_dist bernoulli (image_dist is {self.image_dist!r})")
        if not 0.0 <= self.unimix < 1.0:
            raise ConfigError(f"dreamer.unimix: {self.unimix} not in [0, 1)")

    @property
    def stoch_size(self) -> int:
        """Length of the flattened stochastic state z_t."""
        return self.stoch * self.classes if self.latent == "categorical" else self.stoch

    @property
    def feat_size(self) -> int:
        """Length of the model state [z_t, h_t] that heads, actor and critic read."""
        return self.stoch_size + self.deter

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> DreamerConfig:
        """The named preset with ``overrides`` applied (types checked, unknown keys refused)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown dreamer preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
        values = {**PRESETS[name], **overrides, "name": name}
        return from_dict(cls, values)

    @classmethod
    def from_section(cls, section: dict[str, Any] | None) -> DreamerConfig:
        """Build from the study config's ``dreamer`` section (:class:`DreamerSection`:
        ``{"preset": ..., "overrides": {...}}``); flat field keys next to ``preset`` are accepted too."""
        section = dict(section or {})
        name = section.pop("preset", "minatar")
        overrides = dict(section.pop("overrides", None) or {})
        return cls.preset(name, **{**section, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def replace(self, **changes: Any) -> DreamerConfig:
        return dataclasses.replace(self, **changes)


@dataclass
class DreamerSection:
    """The study config's ``dreamer`` section: a preset name plus overrides of single fields.

    Kept apart from :class:`DreamerConfig` so that schema defaults filled in by Snakemake's validate()
    never overwrite a preset's values: only keys written in ``overrides`` change the preset.
    """

    #: Preset: minatar (default), minatar_dense, atari, mario (= atari), rajghugare_minatar or
    #: kenjyoung_minatar.
    preset: str = "minatar"
    #: Field name -> value, applied on top of the preset (e.g. {"imag_horizon": 10}).
    overrides: dict[str, Any] = field(default_factory=dict)

    def build(self) -> DreamerConfig:
        return DreamerConfig.preset(self.preset, **self.overrides)


_ATARI: dict[str, Any] = dict(
    obs_max=255.0, obs_offset=0.5, image_dist="mse", decoder_out_bias=0.0, decoder_offset="none",
    reward_transform="tanh",
    cnn_depth=48, encoder_kernels=[4, 4, 4, 4], encoder_stride=2, embed_size=0,
    decoder_kernels=[5, 5, 6, 6], decoder_stride=2, decoder_in_mult=32,
    deter=600, hidden=600, stoch=32, classes=32,
    head_layers=4, head_units=400, actor_layers=4, actor_units=400, critic_layers=4, critic_units=400,
    discount=0.999, prefill=200000,
)

_RAJGHUGARE_MINATAR: dict[str, Any] = dict(
    # RajGhugare19/dreamerv2, dreamerv2/training/config.py, MinAtarConfig.
    obs_max=1.0, obs_offset=0.0, image_dist="mse", decoder_out_bias=0.0, decoder_offset="none",
    reward_transform="identity",
    cnn_depth=16, encoder_kernels=[3, 3, 3], encoder_stride=1, embed_size=200,
    decoder_kernels=[3, 3, 3], decoder_stride=1, decoder_in_mult=4,
    deter=200, hidden=200, stoch=20, classes=20, unimix=0.0, gru="torch",
    head_layers=3, head_units=100, actor_layers=3, actor_units=100, critic_layers=3, critic_units=100,
    kl_scale=0.1, discount_scale=5.0, model_lr=2e-4, actor_lr=4e-5, critic_lr=1e-4,
    adam_eps=1e-8, weight_decay=0.0, grad_clip=100.0,
    discount=0.99, discount_lambda=0.95, imag_horizon=10, imag_drop_last_start=True,
    actor_grad="reinforce", actor_grad_mix=0.0, actor_ent=1e-3,
    # That code runs collect_intervals=5 updates every train_every=50 env steps (250 replayed steps per
    # env step: one update every 10), after seed_steps=4000 random steps, and acts epsilon-greedy on the
    # sampled actor with epsilon = max(0.05, 0.4 - env_step / 7000): 0.05 from env step 2450, i.e. on every
    # step after the random prefill. Its slow critic is copied every slow_target_update=100 env steps,
    # i.e. every 10 updates. Its heads at s_t predict the reward and continuation of the step out of x_t
    # (trainer.py: RewardDecoder(post[:-1]) against rewards[1:] of the shifted sample; head_target "next").
    batch_size=50, seq_length=50, train_every=10, prefill=4000, expl_noise=0.05, slow_target_update=10,
    head_target="next",
)

_KENJYOUNG_MINATAR: dict[str, Any] = dict(
    # kenjyoung/dreamerv2_JAX, config.json (MinAtar): binary frames fed as 0/1 with a Bernoulli image
    # likelihood and no offset; three 3x3 valid convs of 16, 32, 64 filters (a 4x4x64 embedding, no
    # projection); the decoder starts from a 4x4x64 map; a plain GRU of 200, 32 x 32 categorical latents
    # without uniform mix; heads, actor and critic 3 x 200; KL weights 0.08 (prior) / 0.02 (posterior) =
    # scale 0.1 with balance 0.8; posterior-entropy bonus 0.01; termination weight 1; Adam eps 1e-5 with
    # weight decay 1e-6; imagination horizon 10; batch 50 x 50 every 10 env steps after 5000 random
    # steps, no epsilon; target critic synced every 10 updates; the reward and termination heads read
    # [z_t, h_{t+1}] (``head_target`` "transition"). Not expressible here, so left at this project's
    # values: the posterior and prior MLPs (3 x 200 there, one hidden layer here), the decoder's widths
    # after its first map (64, 32 there; 32, 16 here) and the ELU after its input layer.
    obs_max=1.0, obs_offset=0.0, image_dist="bernoulli", decoder_out_bias=0.0, decoder_offset="none",
    reward_transform="identity",
    cnn_depth=16, encoder_kernels=[3, 3, 3], encoder_stride=1, embed_size=0,
    decoder_kernels=[3, 3, 3], decoder_stride=1, decoder_in_mult=4,
    deter=200, hidden=200, stoch=32, classes=32, unimix=0.0, gru="torch",
    head_layers=3, head_units=200, actor_layers=3, actor_units=200, critic_layers=3, critic_units=200,
    kl_scale=0.1, kl_balance_mix=0.8, post_ent_scale=0.01, image_scale=1.0, reward_scale=1.0,
    discount_scale=1.0, model_lr=2e-4, actor_lr=4e-5, critic_lr=1e-4, adam_eps=1e-5, weight_decay=1e-6,
    grad_clip=100.0, discount=0.99, discount_lambda=0.95, imag_horizon=10,
    actor_grad="reinforce", actor_grad_mix=0.0, actor_ent=1e-3,
    batch_size=50, seq_length=50, train_every=10, prefill=5000, expl_noise=0.0, slow_target_update=10,
    head_target="transition",
)

_MINATAR_DENSE: dict[str, Any] = dict(
    # The ``minatar`` preset with the networks and initialisation under which the agent learnt Space
    # Invaders and Breakout best here (docs/dreamer.md, "Learning on MinAtar", #5-#7): dense encoder and
    # decoder of 4 x 400 on the flattened frame (the official code's networks for vector inputs) instead of
    # seed 001's convolutions, which do not learn MinAtar's one-cell objects (the cannon, bullets) in
    # thousands of updates; the official glorot-uniform initialisation with zero biases instead of
    # PyTorch's; reward and discount heads on [z_t, h_{t+1}] (kenjyoung/dreamerv2_JAX); one 16 x 50 update
    # every 12 env steps (67 replayed steps per env step), the intensity of every measured run.
    encoder="mlp", decoder="mlp", mlp_layers=4, mlp_units=400, weight_init="glorot",
    head_target="transition", train_every=12,
)

#: Preset name -> field values that differ from the dataclass defaults (``minatar``).
PRESETS: dict[str, dict[str, Any]] = {
    "minatar": {},
    "minatar_dense": _MINATAR_DENSE,
    "atari": _ATARI,
    "mario": _ATARI,  # seed 003 §5.2: Mario reuses every Atari hyperparameter
    "rajghugare_minatar": _RAJGHUGARE_MINATAR,
    "kenjyoung_minatar": _KENJYOUNG_MINATAR,
}
