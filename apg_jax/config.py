"""Training configuration: one frozen dataclass, tuned defaults per (task, algo), one validation step.

Derived sizes (updates per chunk, number of chunks, ...) are computed by ``schedule`` and never written
back into the configuration."""
from __future__ import annotations

import dataclasses
import json
from typing import NamedTuple

ALGOS = ("apg", "ppo", "hybrid")
SEGMENT_ALGOS = ("apg", "hybrid")  #: learners that train on segments (APG's machinery)
AUTO = "auto"
BOOTSTRAPS = ("mc", "critic")
ADAPT_PROBES = ("start", "window")  #: how the adaptive rule measures g_K (``TrainConfig.adapt_probe``)
ADAPT_SNR_OVER = ("update", "chunk")  #: what a length's reliability is judged over (``TrainConfig.adapt_snr_over``)
HYBRID_ADVANTAGES = ("gae", "segment")  #: the hybrid's reuse-pass advantages (``TrainConfig.hybrid_advantages``)
#: PPO's tuned settings the hybrid takes for its stochastic policy and its PPO-style reuse passes (APG's
#: tuned settings, deterministic, say nothing about an exploration std), as ``{hybrid field: PPO field}``
HYBRID_FROM_PPO = {"init_log_std": "init_log_std", "ent_coef": "ent_coef", "clip_eps": "clip_eps",
                   "num_minibatches": "num_minibatches", "gae_lambda": "gae_lambda",
                   "hybrid_reuse_epochs": "ppo_epochs", "hybrid_reuse_learning_rate": "learning_rate"}


class ConfigError(ValueError):
    """An impossible configuration; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    # ----- what to run
    task: str = "pointmass1d"  #: task name (apg_jax.envs.task_names())
    env_params: dict = dataclasses.field(default_factory=dict)  #: fields of the task's ``Params`` changed
    #: for training and evaluation (e.g. {"contact_width": 1e-6}); ``--env-set NAME=VALUE``
    randomize: dict = dataclasses.field(default_factory=dict)  #: ``{name: (low, high)}``: ``Params`` fields
    #: drawn uniformly per training episode (domain randomisation, ``apg_jax.envs.randomized``; evaluation
    #: keeps the nominal task); ``--env-randomize NAME=LOW:HIGH``
    algo: str = "apg"  #: "apg", "ppo" or "hybrid" (apg_jax.agents.hybrid)
    seed: int = 0  #: first seed; seeds of one run are seed, seed + 1, ...
    env_steps: int = 2_000_000  #: training budget in simulated transitions (all envs together)
    num_envs: int = 256  #: parallel training environments
    # ----- evaluation
    num_evals: int = 20  #: evaluations spread evenly over the budget (at least this many, see ``schedule``)
    num_eval_envs: int = 128  #: fixed evaluation environments (own RNG stream), deterministic policy
    eval_seed: int | None = None  #: None: each seed evaluates on starts drawn from its own key; an integer:
    #: every seed and every algorithm evaluates on the same starts (paired comparisons, experiments.protocol)
    # ----- starting point
    init_policy: str | None = None  #: a finished run directory whose trained actor (parameters and
    #: observation statistics) every seed starts from instead of a random one (fine-tuning, e.g. APG after
    #: PPO); its task, hidden sizes and activation must match. The critic starts fresh
    init_policy_seed: int | str | None = None  #: which of that run's seeds: an integer, None (its first), or
    #: "paired": each seed starts from the source's seed of the same number (fine-tuning every seed of a run)
    init_policy_log_std: float | None = None  #: replaces the source actor's log standard deviation (both
    #: action dimensions): the exploration scale of PPO / hybrid fine-tuning; None: the source's
    # ----- networks (shared by both algorithms)
    hidden_sizes: tuple = (64, 64)  #: hidden layer widths of actor and critic
    activation: str = "tanh"  #: tanh | relu | elu | swish
    init_log_std: float = -0.5  #: initial log standard deviation of the Gaussian policy
    # ----- optimizer (shared): Adam + global-norm clipping
    learning_rate: float = 1e-3  #: actor learning rate
    critic_learning_rate: float = 1e-3  #: critic learning rate
    lr_schedule: str = "constant"  #: constant | linear | cosine (decays to 0 over the run)
    max_grad_norm: float = 1.0  #: global-norm gradient clipping
    adam_betas: tuple = (0.9, 0.999)  #: Adam's (beta1, beta2), actor and critic
    gamma: float = 0.99  #: discount
    reward_scale: float = 1.0  #: rewards are multiplied by this in every learning signal (APG objective,
    #: critic targets, PPO advantages); evaluation returns are unscaled
    # ----- episodes
    train_episode_length: int | None = None  #: time limit of the training episodes in control steps (a
    #: truncation, as the task's own); evaluation keeps the task's horizon. None: the task's. Where a policy
    #: finishes early and then rests (tblock), shorter training episodes spend the budget on the part that
    #: learns
    stagger_clocks: bool = True  #: start training episodes at uniform random steps of the horizon (APG
    #: segments shorter than the horizon, and PPO); evaluation always starts fresh episodes
    curriculum: float = 0.0  #: fraction of env_steps over which training resets grow from near the solved
    #: state to the task's reset distribution (``difficulty`` = progress / curriculum, tasks with
    #: ``has_curriculum``); 0: off. Evaluation always uses the task's reset distribution
    truncation_bootstrap: bool = True  #: value targets (and APG's critic objective) bootstrap V(s_T) where
    #: an episode ends by the time limit; False treats the time limit as a termination (ablation)
    # ----- APG
    segment_length: int | str | None = None  #: K steps per backpropagated segment; None = the full horizon;
    #: "auto" = chosen during training from gradient statistics (``apg_jax.adaptive``)
    bootstrap: str = "mc"  #: mc (segment rewards only) | critic (+ gamma^K V(s_K))
    exploration_noise: bool = False  #: reparameterised Gaussian action noise (else deterministic)
    td_lambda: float = 0.95  #: lambda of the critic's TD(lambda) targets
    critic_epochs: int = 16  #: critic passes over each segment's states (SHAC: 16)
    critic_minibatches: int = 4  #: minibatches per pass (SHAC: 4)
    target_tau: float = 0.8  #: target critic <- (1 - tau) target + tau critic, once per update (SHAC's
    #: target_critic_alpha 0.2 is tau 0.8)
    critic_warmup_steps: int = 0  #: env steps (all envs) during which the critic is fitted but the actor
    #: ascends the mc objective; the bootstrap enters the actor's objective after them
    # ----- adaptive segment length (segment_length="auto")
    segment_ladder: tuple = (4, 8, 16, 32, 64)  #: the segment lengths auto chooses from; each divides the
    #: largest (one "macro-update" of the largest length is the unit of env steps); lengths above the horizon
    #: are dropped
    adapt_min_cosine: float = 0.9  #: K is long enough when cos(g_K, g_ref) reaches this (g_ref: the
    #: gradient of the longest length whose gradient is reliable)...
    adapt_cosine_z: float = 0.0  #: ...or falls short of it by less than this many jackknife standard errors
    #: (e.g. 1.645: rejected only when significantly below; measured in results/adaptive-v3, not the default)
    adapt_min_snr: float = 1.0  #: a gradient is reliable when its signal-to-noise ratio (batch mean) reaches this
    adapt_snr_over: str = "update"  #: the SNR that adapt_min_snr tests: "update", that of one update's batch-mean
    #: gradient; "chunk", that of the mean over the updates one chunk makes at K (the batch SNR times that
    #: number, the updates taken as independent: a long K that needs several updates to average out its noise
    #: stays reliable; ``adaptive.over_updates``)
    adapt_probe: str = "start"  #: what g_K is: "start", the gradient of the first K steps from the current
    #: states; "window", that of the largest length's window cut every K steps (what K-step training follows
    #: over the window's updates; measured in results/adaptive-v4: better on franka, worse on the point masses)
    adapt_hold_on_noise: bool = False  #: keep K when its gradient fades into noise (finite, SNR below
    #: adapt_min_snr) and only shorter lengths are reliable (``choose_length``); an exploding K is still left
    adapt_confirmations: int = 1  #: consecutive probes that must propose the same new length before K
    #: changes to it (1: at every proposal; an exploding current length is left at once; ``confirm_length``)
    adapt_reset_optimizer: bool = False  #: restart the actor's Adam moments when K changes (its second moment
    #: is calibrated to the old length's gradient scale, which grows steeply with K)
    adapt_rescale_optimizer: bool = False  #: instead of restarting them, rescale the actor's Adam moments when
    #: K changes by r = (new length's probed gradient norm) / (old one's), both clipped at max_grad_norm:
    #: the first moment by r, the second by r^2 (their history is kept, only its scale follows the new length)
    # ----- hybrid (algo="hybrid": APG's segments, analytic + likelihood-ratio gradient)
    hybrid_bias_z: float = 3.0  #: the analytic gradient is dropped (weight 0) when it differs from the
    #: likelihood-ratio one by more than this many standard errors of their difference
    hybrid_reuse_epochs: int = 4  #: after each mixed step, passes of PPO's clipped surrogate over the
    #: segment's transitions (``num_minibatches`` each, ``clip_eps``), their updates scaled by the
    #: likelihood-ratio weight 1 - alpha: where the analytic gradient is dropped the hybrid reuses its data
    #: as PPO does; 0: one mixed step per segment only
    hybrid_advantages: str = "segment"  #: the reuse passes' advantages: "gae", PPO's GAE(gae_lambda) from the
    #: critic (bootstrapped at the segment's cut and at truncations: the full return, as PPO); "segment",
    #: the segment objective's reward-to-go less the critic baseline (the first version's)
    hybrid_reuse_learning_rate: float | None = None  #: the reuse passes' own Adam learning rate (None:
    #: learning_rate); their schedule counts their own steps
    hybrid_explore_fraction: float = 1.0  #: fraction of the environments that act with the stochastic
    #: policy; 1: all do and both estimates come from every rollout; below 1 the rest act with the policy's
    #: mean and alone give the analytic estimate, the exploring ones alone the likelihood-ratio one
    # ----- PPO
    rollout_length: int = 32  #: steps per environment per PPO rollout
    ppo_epochs: int = 4  #: passes over each rollout
    num_minibatches: int = 8  #: minibatches per epoch
    clip_eps: float = 0.2  #: surrogate clipping
    ent_coef: float = 0.0  #: entropy bonus
    gae_lambda: float = 0.95  #: GAE lambda
    normalize_advantages: bool = True  #: per-minibatch advantage normalisation

    def replace(self, **changes) -> "TrainConfig":
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {', '.join(field_names())}")
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = set(field_names())
        data = {k: v for k, v in data.items() if k in names}  # run records add e.g. num_seeds
        for name in ("hidden_sizes", "adam_betas", "segment_ladder"):
            data[name] = tuple(data.get(name, getattr(cls, name)))
        data["env_params"] = dict(data.get("env_params", {}))
        data["randomize"] = {k: tuple(v) for k, v in data.get("randomize", {}).items()}
        return cls().replace(**data)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


# Tuned defaults, per task and per algorithm, on top of TrainConfig's. Keep them here and only here.
DEFAULTS: dict[tuple[str, str], dict] = {
    # pointmass1d: the best of 16 equal-effort trials each (experiments.tune, 1 M steps, tuning seeds 100-101,
    # results/tuning/pointmass1d-*; values to 4 significant digits)
    ("pointmass1d", "apg"): dict(env_steps=1_000_000, num_envs=32, learning_rate=1.550e-3, critic_learning_rate=2.283e-3,
                                 lr_schedule="linear", max_grad_norm=0.1170, reward_scale=10.0, init_log_std=-0.6770,
                                 segment_length=None, bootstrap="mc", exploration_noise=False),
    ("pointmass1d", "ppo"): dict(env_steps=1_000_000, num_envs=64, learning_rate=2.780e-4, critic_learning_rate=5.514e-3,
                                 lr_schedule="constant", max_grad_norm=0.3923, reward_scale=1.0, init_log_std=-0.5231,
                                 rollout_length=64, ppo_epochs=4, num_minibatches=4, clip_eps=0.2, ent_coef=0.0,
                                 gae_lambda=0.9),
    # pointmass2d: the best of 16 equal-effort trials each (3 M steps, tuning seeds 100-101, results/tuning/pointmass2d-*)
    ("pointmass2d", "apg"): dict(env_steps=3_000_000, num_envs=32, learning_rate=3.523e-3, critic_learning_rate=1.741e-3,
                                 lr_schedule="constant", max_grad_norm=0.1451, reward_scale=10.0, init_log_std=-1.094,
                                 segment_length=8, bootstrap="critic", exploration_noise=False),
    ("pointmass2d", "ppo"): dict(env_steps=3_000_000, num_envs=256, learning_rate=4.817e-4, critic_learning_rate=6.077e-3,
                                 lr_schedule="linear", max_grad_norm=4.868, reward_scale=10.0, init_log_std=-0.3937,
                                 rollout_length=32, ppo_epochs=8, num_minibatches=4, clip_eps=0.1, ent_coef=0.0,
                                 gae_lambda=0.9),
    # tblock: each the best of 16 equal-effort trials (5 M steps, seeds 100-101, results/tuning/tblock-*) by
    # tblock's objective, the mean maximum coverage (experiments.tune.OBJECTIVE_METRIC), with issue 14's
    # curriculum (not searched); then the training horizon, the best of the same grid of 50, 100, 150 and
    # 300 steps for both by the same objective on the same seeds (results/tuning/tblock-horizon); then at
    # that horizon, one at a time, the curriculum (0, 0.3, 0.6, 0.9 for both) and the segment length (APG:
    # 16, 32, 64, full) or rollout length (PPO: 16, 32, 64), the values within 0.1 of each grid's best re-run
    # on seeds 102-104 and chosen on all five (results/tuning/tblock-curriculum{,-confirm}), each setting at
    # the other's chosen value (a joint pass; results/tuning/tblock-curriculum-joint)
    ("tblock", "apg"): dict(env_steps=5_000_000, num_envs=32, learning_rate=7.447e-4, critic_learning_rate=1.127e-4,
                            lr_schedule="linear", max_grad_norm=0.3975, reward_scale=10.0, init_log_std=-0.9417,
                            segment_length=32, bootstrap="mc", exploration_noise=False, curriculum=0.3,
                            train_episode_length=150),
    ("tblock", "ppo"): dict(env_steps=5_000_000, num_envs=256, learning_rate=1.252e-3, critic_learning_rate=2.694e-3,
                            lr_schedule="linear", max_grad_norm=8.459, reward_scale=10.0, init_log_std=-0.9422,
                            rollout_length=32, ppo_epochs=8, num_minibatches=16, clip_eps=0.1, ent_coef=0.001,
                            gae_lambda=0.9, curriculum=0.3, train_episode_length=50),
    # franka: each the best of 16 equal-effort trials (2 M steps, seeds 100-101, results/tuning/franka-{apg,ppo})
    ("franka", "apg"): dict(env_steps=2_000_000, num_envs=32, learning_rate=1.656e-3, critic_learning_rate=9.798e-4,
                            lr_schedule="linear", max_grad_norm=2.341, reward_scale=1.0, init_log_std=-1.176,
                            segment_length=4, bootstrap="mc", exploration_noise=False),
    ("franka", "ppo"): dict(env_steps=2_000_000, num_envs=256, learning_rate=7.544e-4, critic_learning_rate=4.012e-3,
                            lr_schedule="linear", max_grad_norm=1.700, reward_scale=1.0, init_log_std=-1.986,
                            rollout_length=16, ppo_epochs=8, num_minibatches=16, clip_eps=0.3, ent_coef=0.0,
                            gae_lambda=0.9),
}


#: Named recipes applied on top of the tuned defaults (``--preset NAME``); ``shac`` is SHAC's (Xu et al.,
#: 2022) recipe: 32-step segments with the critic bootstrap, a stochastic actor, 16 critic passes of 4
#: minibatches to TD(0.95) targets of a target critic (alpha 0.2), Adam (0.7, 0.95), clipping at 1,
#: linearly decaying learning rates 2e-3.
PRESETS: dict[str, dict] = {
    "shac": dict(algo="apg", segment_length=32, bootstrap="critic", exploration_noise=True, critic_epochs=16,
                 critic_minibatches=4, target_tau=0.8, td_lambda=0.95, gamma=0.99, adam_betas=(0.7, 0.95),
                 max_grad_norm=1.0, learning_rate=2e-3, critic_learning_rate=2e-3, lr_schedule="linear"),
    # fine-tuning a trained policy (init_policy; experiments.switch's stage 2): no curriculum, a small
    # learning rate decayed to 0 (results/tblock-finetune: a constant 3e-4 forgot PPO's strategy)
    "finetune": dict(curriculum=0.0, learning_rate=1e-4, lr_schedule="linear"),
    # the hybrid with a small exploration std instead of PPO's tuned one (results/hybrid-isolation: on
    # tblock PPO's std stops the analytic gradient; log std -3 keeps the analytic weight near 1)
    "hybrid_lowstd": dict(algo="hybrid", init_log_std=-3.0),
    # the hybrid with a split batch: 3/4 of the environments act deterministically and give the analytic
    # estimate, 1/4 explore with PPO's std for the likelihood-ratio one, no reuse passes (results/hybrid-split)
    "hybrid_split": dict(algo="hybrid", hybrid_explore_fraction=0.25, hybrid_reuse_epochs=0),
    # training episodes of 10 s, any learner (results/tblock-horizon: the T-block's pushes are over in 3-5 s
    # and its policies then rest), and of the task's own horizon (tblock's defaults before the horizon grid)
    "short_episodes": dict(train_episode_length=100),
    "full_episodes": dict(train_episode_length=None),
}


def default_config(task: str, algo: str, preset: str | None = None, **overrides) -> TrainConfig:
    """Tuned defaults for ``(task, algo)``, then the named ``preset``, then ``overrides`` (a fresh object
    every call). A decaying learning-rate schedule among the tuned defaults gives way to a constant one
    when ``overrides`` ask for ``segment_length="auto"`` (whose number of updates is not known in
    advance) without naming a schedule."""
    if algo == "hybrid":  # APG's tuned segments with the stochastic policy the score function needs; its
        # exploration and reuse passes as PPO's tuned ones (HYBRID_FROM_PPO), advantages as PPO's (GAE)
        ppo = TrainConfig().replace(**DEFAULTS.get((task, "ppo"), {}))
        tuned = {**DEFAULTS.get((task, "apg"), {}), "exploration_noise": True, "hybrid_advantages": "gae",
                 **{mine: getattr(ppo, theirs) for mine, theirs in HYBRID_FROM_PPO.items()}}
    else:
        tuned = DEFAULTS.get((task, algo), {})
    config = TrainConfig(task=task, algo=algo).replace(**tuned)
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset '{preset}'; valid presets: {', '.join(PRESETS)}")
        recipe = PRESETS[preset]
        if recipe.get("algo", algo) != algo:
            raise ConfigError(f"preset '{preset}' is for --algo {recipe['algo']}, not {algo}")
        config = config.replace(**recipe)
    if overrides.get("segment_length") == AUTO and "lr_schedule" not in overrides:
        overrides = {**overrides, "lr_schedule": "constant"}
    return config.replace(**overrides)


class Schedule(NamedTuple):
    """Sizes derived from a config and its task."""

    steps_per_update: int  #: environment transitions per update (all envs)
    updates_per_chunk: int  #: updates between two evaluations
    num_chunks: int  #: evaluations over the run
    segment_length: int  #: APG segment length K (resolved), PPO rollout length
    actor_steps_per_update: int  #: optimizer steps of the actor per update
    critic_steps_per_update: int  #: optimizer steps of the critic per update
    segment_lengths: tuple = ()  #: APG lengths in use: (K,) or the auto ladder (K_max = segment_length)

    @property
    def num_updates(self) -> int:
        return self.updates_per_chunk * self.num_chunks


def validate(config: TrainConfig, episode_length: int) -> None:
    """Raise ``ConfigError`` with what to change if ``config`` cannot run on a task of this horizon."""
    from apg_jax.envs import task_names  # local: config must not import jax at module import

    if config.task not in task_names():
        raise ConfigError(f"unknown task '{config.task}'; valid tasks: {', '.join(task_names())}")
    for field in dataclasses.fields(config):  # a string 'false' would count as True
        value = getattr(config, field.name)
        if isinstance(field.default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{field.name} must be True or False, got {value!r} ({type(value).__name__}); "
                              f"e.g. --set {field.name}=True")
    if config.train_episode_length is not None and (isinstance(config.train_episode_length, bool) or not isinstance(
            config.train_episode_length, int) or config.train_episode_length < 1):
        raise ConfigError(f"train_episode_length must be a positive number of control steps or None (the task's "
                          f"horizon, {episode_length}), got {config.train_episode_length!r}")
    if config.algo not in ALGOS:
        raise ConfigError(f"unknown algo '{config.algo}'; valid: {', '.join(ALGOS)}")
    if config.bootstrap not in BOOTSTRAPS:
        raise ConfigError(f"unknown bootstrap mode '{config.bootstrap}'; valid: {', '.join(BOOTSTRAPS)}")
    if config.segment_length == AUTO:
        if config.algo not in SEGMENT_ALGOS:
            raise ConfigError("segment_length='auto' is for --algo apg or hybrid (PPO has no segments)")
        rungs = [int(k) for k in config.segment_ladder if int(k) <= episode_length]
        if not rungs or any(k < 1 for k in rungs) or rungs != sorted(set(rungs)):
            raise ConfigError(f"segment_ladder must be increasing positive lengths, at least one within the "
                              f"horizon {episode_length}; got {config.segment_ladder}")
        if any(rungs[-1] % k for k in rungs):
            raise ConfigError(f"every length of segment_ladder must divide the largest used ({rungs[-1]}), "
                              f"e.g. powers of two; got {tuple(rungs)}")
        if config.lr_schedule != "constant":
            raise ConfigError("segment_length='auto' needs lr_schedule='constant' (the number of updates "
                              "depends on the lengths chosen); set lr_schedule=constant")
        if config.adapt_snr_over not in ADAPT_SNR_OVER:
            raise ConfigError(f"unknown adapt_snr_over '{config.adapt_snr_over}'; valid: {', '.join(ADAPT_SNR_OVER)}")
        if config.adapt_probe not in ADAPT_PROBES:
            raise ConfigError(f"unknown adapt_probe '{config.adapt_probe}'; valid: {', '.join(ADAPT_PROBES)}")
        if config.adapt_confirmations < 1:
            raise ConfigError(f"adapt_confirmations must be >= 1 (1: change K at every proposal), "
                              f"got {config.adapt_confirmations}")
        if config.adapt_reset_optimizer and config.adapt_rescale_optimizer:
            raise ConfigError("adapt_reset_optimizer and adapt_rescale_optimizer exclude each other: set one of them")
        if not -1.0 <= config.adapt_min_cosine <= 1.0 or config.adapt_min_snr < 0.0 or config.adapt_cosine_z < 0.0:
            raise ConfigError(f"adapt_min_cosine must be in [-1, 1], adapt_min_snr >= 0 and adapt_cosine_z >= 0, got "
                              f"{config.adapt_min_cosine}, {config.adapt_min_snr}, {config.adapt_cosine_z}")
    elif config.segment_length is not None and (isinstance(config.segment_length, str)
                                                 or not 1 <= config.segment_length <= episode_length):
        raise ConfigError(
            f"segment_length must be between 1 and the training horizon {episode_length} (the task's, or "
            f"train_episode_length), 'auto', "
            f"or unset for the full horizon; got {config.segment_length!r}")
    positive = ["env_steps", "num_envs", "num_evals", "num_eval_envs", "rollout_length", "ppo_epochs",
                "num_minibatches", "critic_epochs", "critic_minibatches", "learning_rate",
                "critic_learning_rate", "max_grad_norm", "reward_scale"]
    for name in positive:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(config, name)}")
    if config.eval_seed is not None and (not isinstance(config.eval_seed, int) or config.eval_seed < 0):
        raise ConfigError(f"eval_seed must be a non-negative integer or None, got {config.eval_seed!r}")
    if not 0.0 < config.gamma <= 1.0:
        raise ConfigError(f"gamma must be in (0, 1], got {config.gamma}")
    for name in ("td_lambda", "gae_lambda", "target_tau"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1], got {getattr(config, name)}")
    if config.algo == "ppo" and (config.num_envs * config.rollout_length) % config.num_minibatches:
        raise ConfigError(
            f"num_envs * rollout_length = {config.num_envs * config.rollout_length} must be divisible "
            f"by num_minibatches = {config.num_minibatches}")
    if config.init_policy_seed is not None and not config.init_policy:
        raise ConfigError("init_policy_seed needs init_policy (the run directory to start from)")
    if config.init_policy_log_std is not None and not config.init_policy:
        raise ConfigError("init_policy_log_std needs init_policy (the run directory to start from)")
    if not (config.init_policy_seed in (None, "paired") or (isinstance(config.init_policy_seed, int)
                                                              and not isinstance(config.init_policy_seed, bool))):
        raise ConfigError(f"init_policy_seed must be a seed number, 'paired' or None, got {config.init_policy_seed!r}")
    if not 0.0 <= config.curriculum <= 1.0:
        raise ConfigError(f"curriculum must be a fraction of env_steps in [0, 1], got {config.curriculum}")
    if config.critic_warmup_steps < 0 or config.critic_warmup_steps > config.env_steps:
        raise ConfigError(f"critic_warmup_steps must be between 0 and env_steps = {config.env_steps}, "
                          f"got {config.critic_warmup_steps}")
    if len(config.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in config.adam_betas):
        raise ConfigError(f"adam_betas must be two numbers in [0, 1), got {config.adam_betas}")
    if config.algo == "hybrid":
        if config.hybrid_reuse_epochs < 0 or config.num_minibatches < 1:
            raise ConfigError(f"hybrid_reuse_epochs must be >= 0 and num_minibatches >= 1, got "
                              f"{config.hybrid_reuse_epochs}, {config.num_minibatches}")
        if not config.exploration_noise:
            raise ConfigError("--algo hybrid needs a stochastic policy for its likelihood-ratio gradient; "
                              "set exploration_noise=True")
        if config.hybrid_advantages not in HYBRID_ADVANTAGES:
            raise ConfigError(f"unknown hybrid_advantages '{config.hybrid_advantages}'; valid: "
                              f"{', '.join(HYBRID_ADVANTAGES)}")
        if config.hybrid_reuse_learning_rate is not None and config.hybrid_reuse_learning_rate <= 0:
            raise ConfigError(f"hybrid_reuse_learning_rate must be positive or None (learning_rate), got "
                              f"{config.hybrid_reuse_learning_rate}")
        if not 0.0 < config.hybrid_explore_fraction <= 1.0:
            raise ConfigError(f"hybrid_explore_fraction must be in (0, 1], got {config.hybrid_explore_fraction}")
        explorers = exploring_envs(config)
        if config.hybrid_explore_fraction < 1.0 and min(explorers, config.num_envs - explorers) < 2:
            raise ConfigError(f"hybrid_explore_fraction = {config.hybrid_explore_fraction} of num_envs = "
                              f"{config.num_envs} leaves {explorers} exploring and {config.num_envs - explorers} "
                              f"deterministic environments; each estimate needs at least 2: change either")
        transitions = explorers * segment_lengths(config, episode_length)[0]
        if config.hybrid_reuse_epochs and transitions < config.num_minibatches:
            raise ConfigError(f"a segment holds {transitions} exploring transitions (exploring envs * K), "
                              f"fewer than the reuse passes' num_minibatches = {config.num_minibatches}; "
                              "lower num_minibatches")
    if fits_critic(config):
        k = segment_lengths(config, episode_length)[0]
        if config.num_envs * k < config.critic_minibatches:
            raise ConfigError(f"a segment holds num_envs * K = {config.num_envs * k} states, fewer than "
                              f"critic_minibatches = {config.critic_minibatches}; lower critic_minibatches")
    if any(int(h) <= 0 for h in config.hidden_sizes):
        raise ConfigError(f"hidden_sizes must be positive integers, got {config.hidden_sizes}")
    sched = schedule(config, episode_length)
    if sched.num_updates < 1 or sched.updates_per_chunk < 1:
        raise ConfigError(
            f"env_steps = {config.env_steps} is less than one update "
            f"({sched.steps_per_update} transitions = num_envs x segment/rollout length); raise env_steps")


def exploring_envs(config: TrainConfig) -> int:
    """How many of the hybrid's ``num_envs`` environments act with the stochastic policy (the last ones)."""
    return config.num_envs if config.hybrid_explore_fraction >= 1.0 else round(config.hybrid_explore_fraction
                                                                               * config.num_envs)


def fits_critic(config: TrainConfig) -> bool:
    """Whether a segment learner fits a critic: for the ``critic`` bootstrap, and always for the hybrid
    (its likelihood-ratio baseline)."""
    return config.algo in SEGMENT_ALGOS and (config.bootstrap == "critic" or config.algo == "hybrid")


def segment_lengths(config: TrainConfig, episode_length: int) -> tuple:
    """The APG segment lengths a run uses: ``(K,)``, or the ladder within the horizon for ``auto``."""
    if config.segment_length == AUTO:
        return tuple(int(k) for k in config.segment_ladder if int(k) <= episode_length)
    return (config.segment_length or episode_length,)


def schedule(config: TrainConfig, episode_length: int) -> Schedule:
    """Derived sizes. Updates are grouped in chunks of ``floor(updates / num_evals)``, each followed by an
    evaluation, and every whole chunk the budget holds is run: at least ``num_evals`` evaluations, and
    less than one chunk (under ``1 / num_evals`` of the budget) left unused, so algorithms with different
    update sizes train on nearly the same env steps. With
    ``segment_length="auto"`` an "update" is a macro-update of the largest length: ``K_max / K`` updates of
    the length in use, so every chunk holds the same env steps whatever the lengths chosen."""
    if config.algo in SEGMENT_ALGOS:
        lengths = segment_lengths(config, episode_length)
        k = lengths[-1]
        critic_steps = config.critic_epochs * config.critic_minibatches if fits_critic(config) else 0
        actor_steps = 1 + (config.hybrid_reuse_epochs * config.num_minibatches if config.algo == "hybrid" else 0)
    else:
        lengths = ()
        k = config.rollout_length
        actor_steps = critic_steps = config.ppo_epochs * config.num_minibatches
    steps_per_update = config.num_envs * k
    total_updates = config.env_steps // steps_per_update
    updates_per_chunk = max(total_updates // config.num_evals, 1) if total_updates else 0  # 0: refused by validate
    num_chunks = total_updates // updates_per_chunk if updates_per_chunk else 1
    return Schedule(steps_per_update, updates_per_chunk, num_chunks, k, actor_steps, critic_steps, lengths)
