r"""Reinforcement learning of the VLM agent: GRPO, or PPO with a value head, with LoRA.

``tir train grpo [options]`` (``--algo ppo`` for PPO; or ``python -m agents.vlm.grpo``) runs
:func:`main`, which reads top to bottom:

1. Load the base model, merge the SFT adapter into it (so the *reference policy*, the model
   with the RL adapter disabled, is the SFT policy) and attach a fresh LoRA adapter, or the
   checkpoint's with ``--resume``.
2. Each step draws ``images_per_step`` training episodes (photo, combination, seed) and plays
   ``group_size`` rollouts of each through the env, all sharing one tool pool, so the
   group's identical calls on identical images are served by its cache.
3. Rewards: every successful tool call of a group is scored by the adaptive reward in one
   :meth:`~tir_env.adaptive_reward.AdaptiveReward.step_batch` call, so each metric is
   normalised by *this group's* spread and the agreement weights adapt per group; failed
   calls pay the failure penalty and malformed answers the format penalty.
4. Advantages. GRPO (Shao et al. 2024, DeepSeekMath, Eq. 3): the episode return normalised
   within its group, :math:`A_i = (R_i - \mathrm{mean}(R)) / (\mathrm{std}(R) + \epsilon)`,
   given to every token of the episode's answers. PPO (Schulman et al. 2017): a value head on
   the last hidden state before each answer, :math:`A_t = G_t - V(s_t)` with the return to go
   :math:`G_t = \sum_{k \ge t} r_k`, normalised over the batch.
5. Loss per answer token: the clipped surrogate
   :math:`-\min(\rho A, \mathrm{clip}(\rho, 1-\epsilon, 1+\epsilon) A)` with
   :math:`\rho = \pi_\theta / \pi_{old}`, plus ``kl_coef`` times the k3 estimator of
   :math:`KL(\pi_\theta \| \pi_{ref})` (Schulman 2020), :math:`e^{r} - r - 1` with
   :math:`r = \log \pi_{ref} - \log \pi_\theta`; PPO adds ``vf_coef`` times the value
   loss. Token losses are averaged over the batch's answer tokens.
6. Log to TensorBoard and ``log.jsonl`` (reward and each metric's gain, KL, clip fraction,
   format errors, tool executions, cache hits); evaluate on fixed training episodes every
   ``eval_every`` steps; checkpoint every ``save_every`` steps (``--resume`` continues).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from agents.vlm import policy, prompt
from agents.vlm.model import VLM, LoraSpec, load_vlm
from agents.vlm.trajectories import EpisodeKey
from tir_env import data
from tir_env.adaptive_reward import AdaptiveReward
from tir_env.config_cli import config_from_args
from tir_env.degradations.protocols import COMBOS
from tir_env.env import TIREnv
from tir_env.files import refuse_used_folder
from tir_env.tools.pool import default_pool
from tir_env.types import StepRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GRPOConfig:
    """Options of the RL recipe (every field is a ``--flag``).

    Attributes:
        model: Base model folder.
        sft_adapter: SFT adapter merged into the base (the reference policy); none: the base.
        out: Output folder (checkpoints, logs, final adapter).
        algo: ``grpo`` (group-normalised returns) or ``ppo`` (value head).
        baseline: What a GRPO rollout's return is compared with: ``group``, its group's mean;
            ``greedy``, the return of one greedy (argmax) rollout of the same episode, the
            self-critical baseline (Rennie et al., 2017), so a sample is reinforced only when
            it beats what the deployed, greedy policy does (scaled by the group's spread).
        resume: Continue from ``out/checkpoint`` when it exists.
        steps: Optimizer steps.
        images_per_step: Episodes (groups) per step.
        group_size: Rollouts per episode (G).
        epochs: Optimisation passes over each batch (the clip matters from the second on).
        lr: AdamW learning rate of the RL adapter (and value head).
        lora_r: Rank of the RL adapter.
        clip: Clip range of the probability ratio.
        kl_coef: Weight of the KL to the reference policy.
        vf_coef: Weight of the value loss (PPO).
        temperature: Sampling temperature of the rollouts.
        max_new_tokens: Longest answer.
        images: Clean-image source of the training episodes.
        combos: Degradation combinations of the training episodes.
        patch_size: Clean patch side.
        obs_size: Side of the square view the model is shown (the env's ``obs_size``).
        max_steps: Tool calls per episode.
        reward_metrics: Metrics of the adaptive reward (equal base weights).
        step_cost: Cost per tool call in the adaptive reward.
        eval_every: Steps between evaluations (0: only at the start and the end).
        eval_episodes: Fixed training episodes of each evaluation.
        save_every: Steps between checkpoints.
        detail: Tool-schema detail of the system prompt (``None``: as the SFT adapter was
            trained; ``brief`` when unrecorded).
        show_size: State the image size in the user turns (``None``: as the SFT adapter was
            trained, :class:`agents.vlm.prompt.TurnText`; stated when unrecorded).
        perception_hint: State perception v2's reading of each image in the user turns
            (``None``: as the SFT adapter was trained; off when unrecorded).
        seed: Seed of episode draws and sampling.
        device: ``cpu``, ``cuda`` or ``auto``.
        tensorboard: Write TensorBoard event files under ``out/tb``.
        guard: ``judge``: play every rollout (training, greedy baseline, evaluation) as the
            ``vlm`` agent plays under ``guard=judge`` (:mod:`agents.vlm.scene`): the judge rules
            on darkness and haze at the episode's start, a scene call it ruled out is vetoed
            (the model asked again), a task it ruled in that the model leaves undone runs at
            its STOP; GRPO only (the plan's call has no tokens for a value head). ``none``: the
            model's calls as it writes them.
    """

    model: str = "agents/vlm/weights/tiny-hint-base"
    sft_adapter: str | None = "agents/vlm/weights/tiny-hint-sft"
    out: str = "runs/vlm/grpo"
    algo: Literal["grpo", "ppo"] = "grpo"
    baseline: Literal["group", "greedy"] = "group"
    resume: bool = False
    steps: int = 60
    images_per_step: int = 2
    group_size: int = 8
    epochs: int = 1
    lr: float = 5e-4
    lora_r: int = 16
    clip: float = 0.2
    kl_coef: float = 0.02
    vf_coef: float = 0.5
    temperature: float = 1.0
    max_new_tokens: int = 48
    images: str = "train"
    combos: str = "mio-a"
    patch_size: int = 64
    obs_size: int = 64
    max_steps: int = 4
    reward_metrics: tuple[str, ...] = ("psnr", "ssim", "niqe")
    step_cost: float = 0.1
    eval_every: int = 10
    eval_episodes: int = 24
    save_every: int = 10
    detail: prompt.Detail | None = None
    show_size: bool | None = None
    perception_hint: bool | None = None
    seed: int = 0
    device: str = "cpu"
    tensorboard: bool = True
    guard: Literal["none", "judge"] = "none"

    def __post_init__(self) -> None:
        if self.algo not in ("grpo", "ppo"):
            raise ValueError(f"algo must be 'grpo' or 'ppo', got {self.algo!r}")
        if self.baseline not in ("group", "greedy"):
            raise ValueError(f"baseline must be 'group' or 'greedy', got {self.baseline!r}")
        if self.group_size < 2 and self.algo == "grpo":
            raise ValueError("GRPO needs group_size >= 2 (advantages are relative to the group)")
        if self.guard not in ("none", "judge"):
            raise ValueError(f"guard must be 'none' or 'judge', got {self.guard!r}")
        if self.guard == "judge" and self.algo != "grpo":
            raise ValueError("guard='judge' needs algo='grpo' (its plan calls have no tokens)")

    @property
    def judge(self) -> bool:
        """Whether the rollouts are played under the judge (``guard="judge"``)."""
        return self.guard == "judge"

    @property
    def self_critical(self) -> bool:
        """Whether each group also plays one greedy rollout, the baseline (``greedy``)."""
        return self.algo == "grpo" and self.baseline == "greedy"

    @functools.cached_property
    def turn(self) -> prompt.TurnText:
        """The user turns: these options, else what the SFT adapter was trained with.

        Read from the adapter folder once per config (every step and evaluation asks).
        """
        recorded = prompt.TurnText.load(self.sft_adapter)
        # The rollouts' budget is this run's: a GRPO adapter records the one it trained with.
        return recorded.told(self.show_size, self.perception_hint, self.detail, self.max_steps)

    @property
    def prompt_detail(self) -> prompt.Detail:
        """The system prompt's schema detail: :attr:`turn`'s, else ``brief``."""
        return self.turn.detail or "brief"


class ValueHead(torch.nn.Module):
    """PPO critic: a linear map of the last hidden state before an answer to a return."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Values of ``states`` (T x H) -> (T,)."""
        values: torch.Tensor = self.linear(states.float())[:, 0]
        return values


def main(cfg: GRPOConfig) -> dict[str, Any]:
    """Run the recipe (see the module docstring); return the final evaluation."""
    out = Path(cfg.out)
    ckpt = out / "checkpoint"
    if not cfg.resume:  # one folder, one run: a fresh run would truncate log.jsonl
        markers = ("checkpoint", "adapter", "log.jsonl", "summary.json")
        refuse_used_folder(out, markers, "pass --resume to continue it")
    out.mkdir(parents=True, exist_ok=True)

    # 1. model: SFT merged into the reference, RL adapter on top
    resume = cfg.resume and (ckpt / "state.json").is_file()
    merge = [cfg.sft_adapter] if cfg.sft_adapter else []
    lora = LoraSpec(r=cfg.lora_r, alpha=2 * cfg.lora_r)
    vlm = load_vlm(
        cfg.model,
        ckpt / "adapter" if resume else None,
        merge=merge,
        lora=lora,
        trainable=True,
        device=cfg.device,
    )
    hidden = int(vlm.base_model.config.get_text_config().hidden_size)
    value_head = ValueHead(hidden).to(vlm.device) if cfg.algo == "ppo" else None
    params = vlm.trainable_parameters() + (list(value_head.parameters()) if value_head else [])
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    reward_fn = AdaptiveReward(dict.fromkeys(cfg.reward_metrics, 1.0), step_cost=cfg.step_cost)
    first_step = 1
    if resume:
        first_step = _load_checkpoint(ckpt, optimizer, value_head, reward_fn) + 1
        logger.info("resumed from %s at step %d", ckpt, first_step)

    # 2. envs sharing one pool
    pool = default_pool()
    env_kwargs: dict[str, Any] = dict(
        images=cfg.images,
        combos=cfg.combos,
        patch_size=cfg.patch_size,
        obs_size=cfg.obs_size,
        max_steps=cfg.max_steps,
        reward="adaptive",
        reward_kwargs={"metrics": dict.fromkeys(cfg.reward_metrics, 1.0)},
    )
    n_envs = cfg.images_per_step * cfg.group_size
    n_greedy = cfg.images_per_step if cfg.self_critical else 0
    n_all = max(n_envs + n_greedy, cfg.eval_episodes)
    envs = [TIREnv(pool=pool, **env_kwargs) for _ in range(n_all)]
    eval_keys = _episode_keys(cfg, np.random.default_rng([cfg.seed, 10**6]), cfg.eval_episodes)
    writer = _writer(out / "tb") if cfg.tensorboard else None
    log_path = out / "log.jsonl"
    if not resume:
        log_path.write_text("")
    if not resume or log_path.stat().st_size == 0:  # a checkpoint moved to a new run: measure
        _log(log_path, writer, first_step - 1, evaluate(vlm, envs, eval_keys, cfg))

    sampling = policy.Sampling(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    for step in range(first_step, cfg.steps + 1):
        start = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, step])
        keys = _episode_keys(cfg, rng, cfg.images_per_step)
        stats_before = pool.stats.as_dict()

        # 2. G rollouts per episode, in lockstep
        batch_envs = envs[:n_envs]
        for i, env in enumerate(batch_envs):
            key = keys[i // cfg.group_size]
            env.reset(seed=key.seed, options=key.options())
        rollouts = policy.rollouts(
            vlm,
            batch_envs,
            sampling,
            cfg.seed * 10**6 + step,
            cfg.prompt_detail,
            cfg.turn,
            cfg.judge,
        )
        greedy = _greedy_rollouts(vlm, envs[n_envs : n_envs + n_greedy], keys, cfg)
        pool_delta = {k: v - stats_before[k] for k, v in pool.stats.as_dict().items()}

        # 3. rewards, 4. advantages
        groups = [
            rollouts[g * cfg.group_size : (g + 1) * cfg.group_size]
            for g in range(cfg.images_per_step)
        ]
        terms: list[dict[str, float]] = []
        turn_rewards, baselines = _scored(reward_fn, groups, greedy, terms)
        returns = [sum(r) for r in turn_rewards]
        if cfg.algo == "grpo":
            advantages = grpo_advantages(returns, cfg.group_size, baselines=baselines)
            loss_stats = update(vlm, rollouts, advantages, None, None, optimizer, params, cfg)
        else:
            loss_stats = update(
                vlm, rollouts, None, turn_rewards, value_head, optimizer, params, cfg
            )

        # 6. log, evaluate, checkpoint
        row = {
            **rollout_stats(rollouts, returns, cfg.group_size, terms),
            **_baseline_stats(returns, baselines, cfg.group_size),
            **loss_stats,
            "tool_executions": pool_delta["executions"],
            "cache_hits": pool_delta["cache_hits"],
            "seconds": time.perf_counter() - start,
        }
        if cfg.eval_every and step % cfg.eval_every == 0 or step == cfg.steps:
            row |= evaluate(vlm, envs, eval_keys, cfg)
        _log(log_path, writer, step, row)
        if step % cfg.save_every == 0 or step == cfg.steps:
            _save_checkpoint(ckpt, vlm, optimizer, value_head, reward_fn, step)
    vlm.save_adapter(out / "adapter")
    replace(cfg.turn.told(None, None, cfg.prompt_detail), patch=cfg.patch_size).save(
        out / "adapter"
    )
    if writer is not None:
        writer.close()
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    evals = [r for r in rows if "eval/greedy/psnr_gain" in r]
    summary = {"config": asdict(cfg), "first_eval": evals[0], "last_eval": evals[-1]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------- episodes
def _episode_keys(cfg: GRPOConfig, rng: np.random.Generator, n: int) -> list[EpisodeKey]:
    """``n`` training episodes: a photo, a combination and a seed each."""
    ids = data.source(cfg.images).ids
    combos = COMBOS[cfg.combos]
    return [
        EpisodeKey(
            ids[int(rng.integers(len(ids)))],
            tuple(combos[int(rng.integers(len(combos)))]),
            int(rng.integers(2**31)),
        )
        for _ in range(n)
    ]


# ---------------------------------------------------------------------------- rewards
def group_rewards(
    reward_fn: AdaptiveReward, group: Sequence[policy.Rollout], terms: list[dict[str, float]]
) -> list[list[float]]:
    """Per-answer rewards of one group, with one adaptive ``step_batch`` over its tool calls.

    The reward terms of every scored call (normalised improvement ``z/<metric>`` and weight
    ``weight/<metric>`` of each metric) are appended to ``terms``.
    """
    ok = [
        t.record
        for r in group
        for t in r.turns
        if t.record is not None and t.record.call is not None and t.record.ok
    ]
    scored = reward_fn.step_batch(
        [rec.metrics_before for rec in ok], [rec.metrics_after for rec in ok]
    )
    terms += [out.terms for out in scored]
    # records are not hashable (their metrics are dicts): key this group's by identity
    by_record = {id(rec): out.reward for rec, out in zip(ok, scored, strict=True)}
    return [
        [turn_reward(reward_fn, t, lambda rec: by_record[id(rec)]) for t in r.turns] for r in group
    ]


def turn_reward(
    reward_fn: AdaptiveReward, turn: policy.Turn, scored: Callable[[StepRecord], float]
) -> float:
    """The reward of one answer: the one place that says what each kind of turn earns.

    A malformed answer pays the format penalty, STOP earns 0, a failed tool call pays the
    failure penalty; a successful call earns ``scored(record)`` (its adaptive reward, computed
    by the caller: in a group's batch, or one by one with frozen statistics).
    """
    if turn.format_error:
        return reward_fn.format_penalty().reward
    if turn.record is None or turn.record.call is None:
        return 0.0  # STOP
    if not turn.record.ok:
        return reward_fn.failed().reward
    return scored(turn.record)


def grpo_advantages(
    returns: Sequence[float],
    group_size: int,
    eps: float = 1e-6,
    baselines: Sequence[float] | None = None,
) -> list[float]:
    """Returns normalised within consecutive groups of ``group_size``.

    Each return minus its group's mean, over the group's spread (0 when all are equal); with
    ``baselines`` (one per group: a greedy rollout's return, the self-critical baseline)
    minus that instead, over the spread (or 1 when the group has none).
    """
    out = []
    for i, g in enumerate(range(0, len(returns), group_size)):
        r = np.asarray(returns[g : g + group_size], dtype=np.float64)
        std = r.std()
        if baselines is not None:
            out += list((r - baselines[i]) / (std + eps if std > eps else 1.0))
        else:
            out += list((r - r.mean()) / (std + eps)) if std > eps else [0.0] * len(r)
    return [float(a) for a in out]


def _greedy_rollouts(
    vlm: VLM, envs: Sequence[TIREnv], keys: Sequence[EpisodeKey], cfg: GRPOConfig
) -> list[policy.Rollout]:
    """One greedy rollout of each episode (the self-critical baseline); none for ``group``."""
    if not envs:
        return []
    for env, key in zip(envs, keys, strict=True):
        env.reset(seed=key.seed, options=key.options())
    sampling = policy.Sampling(greedy=True, max_new_tokens=cfg.max_new_tokens)
    return policy.rollouts(vlm, envs, sampling, 0, cfg.prompt_detail, cfg.turn, cfg.judge)


def _scored(
    reward_fn: AdaptiveReward,
    groups: Sequence[Sequence[policy.Rollout]],
    greedy: Sequence[policy.Rollout],
    terms: list[dict[str, float]],
) -> tuple[list[list[float]], list[float] | None]:
    """Per-answer rewards of every sampled rollout, and each group's greedy return if any.

    A greedy rollout is scored in its group's batch (the same adaptive statistics).
    """
    rewards: list[list[float]] = []
    baselines: list[float] = []
    for i, group in enumerate(groups):
        extra = [greedy[i]] if greedy else []
        scored = group_rewards(reward_fn, [*group, *extra], terms)
        rewards += scored[: len(group)]
        baselines += [sum(scored[-1])] if greedy else []
    return rewards, baselines if greedy else None


def _baseline_stats(
    returns: Sequence[float], baselines: Sequence[float] | None, group_size: int
) -> dict[str, float]:
    """With the greedy baseline: its mean return and how often a sample beats it."""
    if baselines is None:
        return {}
    beats = [r > baselines[i // group_size] for i, r in enumerate(returns)]
    return {
        "baseline/greedy_return": float(np.mean(baselines)),
        "baseline/beaten": float(np.mean(beats)),
    }


# ----------------------------------------------------------------------------- update
@dataclass
class _Prepared:
    """What the first, gradient-free pass over one dialogue fixes for every epoch."""

    old: torch.Tensor | None  # log-probs at sampling time (None: one epoch, use detach)
    ref: torch.Tensor | None  # reference log-probs (None: no KL term)
    adv: torch.Tensor  # per-token advantages
    target: torch.Tensor | None  # per-turn return to go (PPO)


def update(
    vlm: VLM,
    rollouts: Sequence[policy.Rollout],
    advantages: Sequence[float] | None,
    turn_rewards: Sequence[Sequence[float]] | None,
    value_head: ValueHead | None,
    optimizer: torch.optim.Optimizer,
    params: Sequence[torch.nn.Parameter],
    cfg: GRPOConfig,
) -> dict[str, float]:
    """``cfg.epochs`` clipped-surrogate updates over the batch (see the module docstring)."""
    tokens = [r.dialogue.tokens for r in rollouts]
    n_tokens = max(1, sum(sum(t.action) for t in tokens))
    prep = _prepare(vlm, tokens, advantages, turn_rewards, value_head, cfg)
    stats: dict[str, float] = {"kl": 0.0, "clipfrac": 0.0, "pg_loss": 0.0, "value_loss": 0.0}
    for _ in range(cfg.epochs):
        optimizer.zero_grad()
        for tok, p in zip(tokens, prep, strict=True):
            s = policy.score(vlm, tok, hidden=value_head is not None, temperature=cfg.temperature)
            old = p.old if p.old is not None else s.logp.detach()
            ratio = torch.exp(s.logp - old)
            pg = -torch.minimum(ratio * p.adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * p.adv)
            loss = pg.sum() / n_tokens
            if p.ref is not None:
                diff = p.ref - s.logp
                kl = torch.exp(diff) - diff - 1
                loss = loss + cfg.kl_coef * kl.sum() / n_tokens
                stats["kl"] += float(kl.detach().sum()) / n_tokens / cfg.epochs
            if value_head is not None and s.hidden is not None and p.target is not None:
                vloss = ((value_head(s.hidden) - p.target) ** 2).mean() / len(tokens)
                loss = loss + cfg.vf_coef * vloss
                stats["value_loss"] += float(vloss.detach()) / cfg.epochs
            loss.backward()
            clipped = float(((ratio.detach() - 1).abs() > cfg.clip).float().sum())
            stats["clipfrac"] += clipped / n_tokens / cfg.epochs
            stats["pg_loss"] += float(pg.detach().sum()) / n_tokens / cfg.epochs
        stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
        optimizer.step()
    return stats


def _prepare(
    vlm: VLM,
    tokens: Sequence[policy.Tokens],
    advantages: Sequence[float] | None,
    turn_rewards: Sequence[Sequence[float]] | None,
    value_head: ValueHead | None,
    cfg: GRPOConfig,
) -> list[_Prepared]:
    """Old and reference log-probs, advantages and value targets, without gradients."""
    need_old = cfg.epochs > 1 or value_head is not None
    out: list[_Prepared] = []
    with torch.no_grad():
        for j, tok in enumerate(tokens):
            ref = None
            if cfg.kl_coef > 0:
                ref = policy.score(vlm, tok, reference=True, temperature=cfg.temperature).logp
            if advantages is not None and not need_old:
                # GRPO with one epoch: the old log-probs are never read, so skip that forward.
                adv = torch.full((sum(tok.action),), advantages[j], device=vlm.device)
                out.append(_Prepared(None, ref, adv, None))
                continue
            s = policy.score(vlm, tok, hidden=value_head is not None, temperature=cfg.temperature)
            if advantages is not None:
                adv, target = torch.full_like(s.logp, advantages[j]), None
            else:
                if turn_rewards is None or value_head is None or s.hidden is None:
                    raise ValueError("PPO needs per-turn rewards and a value head")
                rewards = torch.tensor(turn_rewards[j], dtype=torch.float32, device=vlm.device)
                target = rewards.flip(0).cumsum(0).flip(0)[: s.hidden.shape[0]]
                adv = (target - value_head(s.hidden))[s.turn.to(vlm.device)]
            out.append(_Prepared(s.logp if need_old else None, ref, adv, target))
    if advantages is None:  # PPO: normalise advantages over the batch's tokens
        flat = torch.cat([p.adv for p in out])
        mean, std = flat.mean(), flat.std() if flat.numel() > 1 else torch.tensor(1.0)
        for p in out:
            p.adv = (p.adv - mean) / (std + 1e-6)
    return out


# ------------------------------------------------------------------------ statistics
def metric_gain(rollout: policy.Rollout, name: str) -> float:
    """Final minus input value of a metric (0 when no tool ran)."""
    records = [t.record for t in rollout.turns if t.record is not None]
    if not records:
        return 0.0
    first, last = records[0].metrics_before, records[-1].metrics_after
    return float(last.get(name, math.nan) - first.get(name, math.nan))


def rollout_stats(
    rollouts: Sequence[policy.Rollout],
    returns: Sequence[float],
    group_size: int,
    terms: Sequence[dict[str, float]] = (),
) -> dict[str, float]:
    """Training-batch statistics: return, spread within groups, metrics, format errors."""
    r = np.asarray(returns, dtype=np.float64)
    groups = r.reshape(-1, group_size) if len(r) % group_size == 0 else r[None]
    out = {
        "reward/mean": float(r.mean()),
        "reward/group_std": float(groups.std(axis=1).mean()),
        "format_errors": float(np.mean([x.format_errors > 0 for x in rollouts])),
        "calls": float(np.mean([len(x.calls) for x in rollouts])),
    }
    if any(x.scene is not None for x in rollouts):  # played under the judge
        out["judge/vetoed"] = float(np.mean([sum(t.vetoed for t in x.turns) for x in rollouts]))
        out["judge/ruled_in_runs"] = float(
            np.mean([sum(t.from_plan for t in x.turns) for x in rollouts])
        )
    for name in rollouts[0].env.metric_names if rollouts else ():
        out[f"gain/{name}"] = float(np.nanmean([metric_gain(x, name) for x in rollouts]))
    for key in sorted({k for t in terms for k in t if k.startswith(("z/", "weight/"))}):
        out[f"reward/{key}"] = float(np.mean([t[key] for t in terms if key in t]))
    return out


def evaluate(
    vlm: VLM, envs: Sequence[TIREnv], keys: Sequence[EpisodeKey], cfg: GRPOConfig
) -> dict[str, float]:
    """Greedy and sampled play of fixed training episodes.

    The return is scored by the adaptive reward with *frozen* statistics (momentum 1: the
    default scales and weights), so evaluations at different steps are comparable.
    """
    frozen = AdaptiveReward(
        dict.fromkeys(cfg.reward_metrics, 1.0), momentum=1.0, step_cost=cfg.step_cost
    )
    out: dict[str, float] = {}
    for mode in ("greedy", "sample"):
        sampling = policy.Sampling(
            greedy=mode == "greedy", temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens
        )
        batch = list(envs[: len(keys)])
        for env, key in zip(batch, keys, strict=True):
            env.reset(seed=key.seed, options=key.options())
        rollouts = policy.rollouts(
            vlm,
            batch,
            sampling,
            seed=12345,
            detail=cfg.prompt_detail,
            turn=cfg.turn,
            judge=cfg.judge,
        )
        returns = [sum(_frozen_rewards(frozen, r)) for r in rollouts]
        stats = rollout_stats(rollouts, returns, 1)
        out |= {
            f"eval/{mode}/return": stats["reward/mean"],
            f"eval/{mode}/format_errors": stats["format_errors"],
            f"eval/{mode}/calls": stats["calls"],
        }
        for name in cfg.reward_metrics:
            out[f"eval/{mode}/{name}_gain"] = stats.get(f"gain/{name}", math.nan)
    return out


def _frozen_rewards(frozen: AdaptiveReward, rollout: policy.Rollout) -> list[float]:
    def step(record: StepRecord) -> float:
        return frozen.step(record.metrics_before, record.metrics_after).reward

    return [turn_reward(frozen, t, step) for t in rollout.turns]


# ---------------------------------------------------------------- logs, checkpoints
def _writer(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: log.jsonl has the same numbers
        logger.warning("tensorboard is not installed; logging to log.jsonl only")
        return None
    return SummaryWriter(str(folder))


def _log(path: Path, writer: Any, step: int, row: dict[str, float]) -> None:
    row = {"step": step, **row}
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    if writer is not None:
        for key, value in row.items():
            if key != "step" and isinstance(value, int | float) and math.isfinite(value):
                writer.add_scalar(key, value, step)
        writer.flush()
    logger.info("step %d: %s", step, {k: round(v, 4) for k, v in row.items()})


def _save_checkpoint(
    folder: Path,
    vlm: VLM,
    optimizer: torch.optim.Optimizer,
    value_head: ValueHead | None,
    reward_fn: AdaptiveReward,
    step: int,
) -> None:
    """Adapter, optimizer, value head and reward statistics; replaced atomically."""
    import shutil

    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    vlm.save_adapter(tmp / "adapter")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if value_head is not None:
        save_file(value_head.state_dict(), str(tmp / "value_head.safetensors"))
    state = {
        "step": step,
        "reward_scales": {k: s.value for k, s in reward_fn.scales.items()},
        "reward_agreement": dict(reward_fn.agreement),
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def _load_checkpoint(
    folder: Path,
    optimizer: torch.optim.Optimizer,
    value_head: ValueHead | None,
    reward_fn: AdaptiveReward,
) -> int:
    """Restore what :func:`_save_checkpoint` wrote (the adapter is loaded with the model)."""
    from safetensors.torch import load_file

    state = json.loads((folder / "state.json").read_text())
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    if value_head is not None:
        value_head.load_state_dict(load_file(str(folder / "value_head.safetensors")))
    for k, v in state["reward_scales"].items():
        reward_fn.scales[k].value = float(v)
    reward_fn.agreement.update({k: float(v) for k, v in state["reward_agreement"].items()})
    return int(state["step"])


# ------------------------------------------------------------------------------ CLI
def parse_args(argv: Sequence[str] | None = None) -> GRPOConfig:
    """``--field value`` for every :class:`GRPOConfig` field (tuples: comma-separated)."""
    return config_from_args(GRPOConfig, argv, "tir train grpo")


def cli(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse options, run, print the first and last evaluation."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    summary = main(parse_args(argv))
    sys.stdout.write(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
